// The local federation: real etcd, kube-apiservers, controller-managers, schedulers and KWOK on
// loopback, started from the binaries tools/build.sh caches. Used by `gpufed dev`, the integration
// tests, `make demo` and the benchmarks.
import * as k8s from '@kubernetes/client-node';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { request as httpRequest, type IncomingMessage } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { createServer, type Server } from 'node:net';
import { dirname, join } from 'node:path';
import { explain, isConflict } from '../../../operator/src/kube/errors.js';
import { fromPlain, loadManifest } from '../../../operator/src/kube/manifests.js';
import { Kube, loadKubeConfig } from '../../../operator/src/kube/client.js';
import { onboardProvider, writePrivateFile } from '../../../operator/src/onboarding/apply.js';
import { nodeManifest, parseFleet, selectProviders, type Fleet, type FleetProvider } from './fleet.js';
import { binDir as defaultBinDir, devDir, repoRoot } from './paths.js';
import { ensurePki, ensureServiceAccountKey, pkiPaths, type Pki } from './pki.js';
import { agentKubeconfigPath, planFederation, portsNeeded, type ClusterPlan, type ComponentPlan, type FederationPlan, type HealthCheck, type Stage } from './plan.js';
import { onboardDevTenant } from './tenants.js';
import { devProviderHotKey, devProviderPayout } from './wallets.js';
import { CHAIN_BINARY, CHAIN_ID, CHAIN_PROFILES, chainHeight, waitForChainBlock, type ChainProfile } from './chain.js';
import { agentKeyPath, prepareDevChain, registryKeyPath } from './economy.js';
import { keyAddress } from '../../../operator/src/settlement/keys.js';
import { isAlive, processesMentioning, startDetached, stopProcess } from './process.js';

export const STATE_FILE = 'state.json';
const REQUIRED_BINARIES = ['etcd', 'kube-apiserver', 'kube-controller-manager', 'kube-scheduler', 'kwok', 'kube-state-metrics', CHAIN_BINARY];

export interface FederationState {
  version: 1;
  dir: string;
  startedAt: string;
  readyAt?: string;
  /** Milliseconds each start phase took, for the record (`dev status`, README numbers). */
  timings: Record<string, number>;
  plan: FederationPlan;
  pids: Record<string, number>;
}

export interface UpOptions {
  dir?: string;
  binDir?: string;
  /** A fleet file; default: cli/src/dev/fleets/default.yaml. */
  fleetFile?: string;
  /** How many provider clusters (default 2: alice and bob). */
  providers?: number;
  /** Progress lines; default: none. */
  log?: (line: string) => void;
  /** How long to wait for everything to become healthy. */
  timeoutMs?: number;
  /** Onboard every provider and run its gpufed agent (default true). */
  agents?: boolean;
  /** Run chains of these profiles beside the dev chain (CHAIN_PROFILES keys, e.g. `akash`), for tests. */
  extraChains?: string[];
}

export class AlreadyRunningError extends Error {
  constructor(readonly state: FederationState) {
    super(`The local federation in ${state.dir} is already running (since ${state.startedAt}); run \`gpufed dev down\` first to start a new one`);
    this.name = 'AlreadyRunningError';
  }
}

export class MissingToolsError extends Error {
  constructor(readonly missing: string[], binDir: string) {
    super(`Missing ${missing.join(', ')} in ${binDir}: build them with \`tools/build.sh\` (or \`make tools\`); the first build takes a while and is cached`);
    this.name = 'MissingToolsError';
  }
}

export function readState(dir: string = devDir()): FederationState | undefined {
  const file = join(dir, STATE_FILE);
  if (!existsSync(file)) return undefined;
  return JSON.parse(readFileSync(file, 'utf8')) as FederationState;
}

function writeState(state: FederationState): void {
  writeFileSync(join(state.dir, STATE_FILE), JSON.stringify(state, null, 2));
}

async function makePlan(dir: string, binDir: string, providers: FleetProvider[], withAgents: boolean, extraChains: ChainProfile[]): Promise<FederationPlan> {
  const agents = withAgents ? { agents: { entry: operatorEntry(), node: process.execPath } } : {};
  const kwokStages = join(repoRoot(), 'cli', 'src', 'dev', 'kwok-stages.yaml');
  const monitoring = { node: process.execPath, exporterEntry: compiled(join('test', 'support', 'dcgm-exporter.js')) };
  const chain = { agentKeyFile: (p: string) => agentKeyPath(dir, p), payout: devProviderPayout, registryKeyFile: registryKeyPath(dir) };
  return planFederation({ dir, binDir, providers, kwokStages, monitoring, chain, extraChains, ...agents }, await freePorts(portsNeeded(providers.length, withAgents, true, true, extraChains.length)));
}

function checkTools(bins: string, extraChains: ChainProfile[]): void {
  const missing = [...REQUIRED_BINARIES, ...extraChains.map((p) => p.binary)].filter((b) => !existsSync(join(bins, b)));
  if (missing.length > 0) throw new MissingToolsError(missing, bins);
  if (!onPath('prometheus')) throw new Error('prometheus is not on PATH: install it with `tools/debian.sh` (or `make tools`); gpufed runs its own instance per provider, never the package service');
}

/** Each cluster's kubeconfig, and its Prometheus config where it has one. */
function writeClusterFiles(plan: FederationPlan, pki: Pki): void {
  for (const c of plan.clusters) {
    writeFileSync(c.kubeconfig, kubeconfigYaml(c, pki), { mode: 0o600 });
    if (c.prometheusConfig) {
      mkdirSync(dirname(c.prometheusConfig.path), { recursive: true });
      writeFileSync(c.prometheusConfig.path, c.prometheusConfig.text);
    }
  }
}

function onPath(binary: string): boolean {
  return (process.env.PATH ?? '').split(':').some((d) => d !== '' && existsSync(join(d, binary)));
}

/** A file of the compiled tree (`make build`), or a clear error when it is not built. */
function compiled(relative: string): string {
  const entry = join(repoRoot(), 'dist', relative);
  if (!existsSync(entry)) throw new Error(`${entry} is missing: build it with \`make build\``);
  return entry;
}

/** The compiled operator the dev agents run. */
function operatorEntry(): string {
  return compiled(join('operator', 'src', 'main.js'));
}

export function loadFleet(file?: string): Fleet {
  const path = file ?? join(repoRoot(), 'cli', 'src', 'dev', 'fleets', 'default.yaml');
  return parseFleet(readFileSync(path, 'utf8'));
}

function listenOn(port: number): Promise<Server | undefined> {
  return new Promise((resolve) => {
    const s = createServer();
    s.once('error', () => resolve(undefined));
    s.listen(port, '127.0.0.1', () => resolve(s));
  });
}

/** The kernel's ephemeral port range: ports it hands to outgoing connections. */
function ephemeralRange(): [number, number] {
  try {
    const [lo, hi] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    if (lo && hi) return [lo, hi];
  } catch {
    /* not Linux: use the IANA default below */
  }
  return [49152, 65535];
}

/**
 * Free loopback ports for the components, all held open together so none is handed out twice,
 * and chosen below the ephemeral range: between this check and a component's bind, an outgoing
 * connection (an API server's etcd client, say) could otherwise be given the same port.
 */
export async function freePorts(n: number): Promise<number[]> {
  const [ephemeralLow] = ephemeralRange();
  const low = 20000;
  const high = Math.min(ephemeralLow, 32768);
  const held: Server[] = [];
  for (let tries = 0; held.length < n && tries < 50 * n; tries++) {
    const port = low + Math.floor(Math.random() * (high - low));
    if (held.some((s) => (s.address() as { port: number }).port === port)) continue;
    const s = await listenOn(port);
    if (s) held.push(s);
  }
  const ports = held.map((s) => (s.address() as { port: number }).port);
  await Promise.all(held.map((s) => new Promise((r) => s.close(r))));
  if (ports.length < n) throw new Error(`Found only ${ports.length} of ${n} free loopback ports between ${low} and ${high}`);
  return ports;
}

function kubeconfigYaml(cluster: ClusterPlan, pki: Pki): string {
  const b64 = (f: string) => readFileSync(f).toString('base64');
  const name = `gpufed-${cluster.name}`;
  return JSON.stringify(
    {
      apiVersion: 'v1',
      kind: 'Config',
      clusters: [{ name, cluster: { server: cluster.server, 'certificate-authority-data': b64(pki.caCert) } }],
      users: [{ name: `${name}-admin`, user: { 'client-certificate-data': b64(pki.adminCert), 'client-key-data': b64(pki.adminKey) } }],
      contexts: [{ name, context: { cluster: name, user: `${name}-admin` } }],
      'current-context': name,
    },
    null,
    2,
  );
}

function envFile(plan: FederationPlan): string {
  const registry = plan.clusters.find((c) => c.role === 'registry') as ClusterPlan;
  const lines = [
    '# Source this file: `. .gpufed/dev/env`. Written by `gpufed dev up`.',
    `export GPUFED_DEV_DIR=${plan.dir}`,
    `export GPUFED_REGISTRY_KUBECONFIG=${registry.kubeconfig}`,
    ...plan.clusters.filter((c) => c.role === 'provider').map((c) => `export GPUFED_PROVIDER_${c.name.toUpperCase().replace(/-/g, '_')}_KUBECONFIG=${c.kubeconfig}`),
    `# Every cluster as a context (gpufed-registry, gpufed-alice, …); the registry is current.`,
    `export KUBECONFIG=${plan.clusters.map((c) => c.kubeconfig).join(':')}`,
    // The cluster tools (kubectl 1.34, helm) and the Node that ran `dev up`, so `npx gpufed` works.
    `export PATH=${plan.binDir}:${dirname(process.execPath)}:$PATH`,
  ];
  return lines.join('\n') + '\n';
}

/** One health probe (TLS verified against the federation's CA); resolves with whether it passed and why not. */
export function probe(check: HealthCheck, pki: Pki, timeoutMs = 2000): Promise<{ ok: boolean; detail: string }> {
  return new Promise((resolve) => {
    const url = new URL(check.url);
    const opts = { method: 'GET', timeout: timeoutMs };
    const done = (ok: boolean, detail: string) => resolve({ ok, detail });
    const onResponse = (res: IncomingMessage) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (body += c));
      res.on('end', () => {
        const ok = res.statusCode === 200 && (check.kind !== 'etcd' || /"health":\s*"true"/.test(body));
        done(ok, ok ? 'ok' : `HTTP ${res.statusCode}: ${body.trim().split('\n').slice(-3).join(' ').slice(0, 200)}`);
      });
    };
    const req =
      url.protocol === 'https:'
        ? httpsRequest(url, { ...opts, ca: readFileSync(pki.caCert), ...(check.kind === 'apiserver' ? { cert: readFileSync(pki.adminCert), key: readFileSync(pki.adminKey) } : {}) }, onResponse)
        : httpRequest(url, opts, onResponse);
    req.on('timeout', () => req.destroy(new Error('timed out')));
    req.on('error', (e) => done(false, e.message));
    req.end();
  });
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function logTail(file: string, lines = 15): string {
  try {
    return readFileSync(file, 'utf8').trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(no log)';
  }
}

async function waitHealthy(c: ComponentPlan, pid: number, pki: Pki, deadline: number): Promise<void> {
  let last = '';
  while (Date.now() < deadline) {
    if (!isAlive(pid)) throw new Error(`${c.name} exited during start-up; last lines of ${c.log}:\n${logTail(c.log)}`);
    const r = await probe(c.health, pki);
    if (r.ok) return;
    last = r.detail;
    await sleep(250);
  }
  throw new Error(`${c.name} did not become healthy at ${c.health.url} (${last}); last lines of ${c.log}:\n${logTail(c.log)}`);
}

/** Polls `fn` until it returns a value or `deadline` (epoch ms) passes; errors are retried and the last one reported. */
export async function until<T>(what: string, deadline: number, fn: () => Promise<T | undefined>): Promise<T> {
  let lastError = '';
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      lastError = (e as Error).message;
    }
    await sleep(300);
  }
  throw new Error(`Timed out waiting for ${what}${lastError ? ` (${lastError})` : ''}`);
}

export function objectClient(kubeconfig: string): k8s.KubernetesObjectApi {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  return k8s.KubernetesObjectApi.makeApiClient(kc);
}

async function createIfMissing(client: k8s.KubernetesObjectApi, obj: k8s.KubernetesObject): Promise<void> {
  try {
    await client.create(obj);
  } catch (e) {
    if (!isConflict(e)) throw explain(`Creating ${obj.kind} ${obj.metadata?.name ?? ''}`, e);
  }
}

/** The CRDs from crds/ (the one source of truth), as client-node models. */
export function crdManifests(): k8s.V1CustomResourceDefinition[] {
  const dir = join(repoRoot(), 'crds');
  return readdirSync(dir)
    .filter((f) => f.endsWith('.yaml'))
    .sort()
    .map((f) => loadManifest<k8s.V1CustomResourceDefinition>(readFileSync(join(dir, f), 'utf8')));
}

async function bootstrapRegistry(cluster: ClusterPlan, deadline: number): Promise<number> {
  const client = objectClient(cluster.kubeconfig);
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cluster.kubeconfig);
  const ext = kc.makeApiClient(k8s.ApiextensionsV1Api);
  const crds = crdManifests();
  for (const crd of crds) await createIfMissing(client, crd);
  // The registry replicas' leader Lease lives here (as in the registry chart).
  await createIfMissing(client, fromPlain({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: 'gpufed-system' } }));
  for (const crd of crds) {
    const name = crd.metadata?.name ?? '';
    await until(`CRD ${name} to be Established`, deadline, async () => {
      const got = await ext.readCustomResourceDefinition({ name });
      return got.status?.conditions?.some((c) => c.type === 'Established' && c.status === 'True') ? true : undefined;
    });
  }
  return crds.length;
}

async function bootstrapProvider(cluster: ClusterPlan, deadline: number): Promise<number> {
  const client = objectClient(cluster.kubeconfig);
  // k3s ships this RuntimeClass when it finds the NVIDIA container runtime; job pods name it.
  await createIfMissing(client, fromPlain({ apiVersion: 'node.k8s.io/v1', kind: 'RuntimeClass', metadata: { name: 'nvidia' }, handler: 'nvidia' }));
  const provider = cluster.provider;
  if (!provider) return 0;
  for (const node of provider.nodes) await createIfMissing(client, fromPlain(nodeManifest(provider, node)));
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(cluster.kubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  await until(`${provider.nodes.length} nodes of ${cluster.name} to be Ready`, deadline, async () => {
    const nodes = await core.listNode();
    const ready = nodes.items.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True'));
    return ready.length >= provider.nodes.length ? true : undefined;
  });
  // The controller-manager creates each namespace's `default` ServiceAccount; pods need it.
  await until(`the default ServiceAccount in ${cluster.name}`, deadline, async () => {
    await core.readNamespacedServiceAccount({ name: 'default', namespace: 'default' });
    return true;
  });
  return provider.nodes.length;
}

const STAGE_NAMES = ['etcd', 'apiservers', 'controllers+bootstrap', 'agents'] as const;

/**
 * Onboards each provider on the registry the way a registry admin does (`gpufed registry
 * add-provider`): Provider, namespace, ServiceAccount, scoped RBAC and a token; the agent then runs
 * with that kubeconfig, so the federation exercises exactly the credentials a real home gets.
 */
async function onboardAgents(plan: FederationPlan, log: (line: string) => void): Promise<void> {
  const registry = plan.clusters.find((c) => c.role === 'registry') as ClusterPlan;
  const kube = new Kube(loadKubeConfig(registry.kubeconfig), 'gpufed-cli');
  for (const cl of plan.clusters) {
    const p = cl.provider;
    if (!p) continue;
    const prices = Object.entries(p.prices).map(([model, pricePerGpuHour]) => ({ model, pricePerGpuHour }));
    const done = await onboardProvider(kube, { name: p.name, wallet: keyAddress(devProviderHotKey(p.name)), payout: devProviderPayout(p.name), region: p.region, prices });
    writePrivateFile(agentKubeconfigPath(plan.dir, p.name), done.kubeconfig);
  }
  log(`registry: onboarded ${plan.clusters.filter((c) => c.provider).map((c) => c.name).join(', ')} with scoped agent credentials`);
}

/** Starts one stage's processes (recording each pid at once) and waits for them and, in stage 2, the bootstrap. */
async function startStage(state: FederationState, stage: Stage, pki: Pki, deadline: number, log: (line: string) => void): Promise<void> {
  const ts = Date.now();
  const batch = state.plan.components.filter((c) => c.stage === stage);
  if (batch.length === 0) return;
  if (stage === 3) {
    // After a (re)start the node rejects signed transactions until it commits a block: the agents sign.
    if (state.plan.chain) await waitForChainBlock(state.plan.chain.endpoints.rpcUrl, Math.max(1000, deadline - Date.now()));
    await onboardAgents(state.plan, log);
  }
  for (const c of batch) {
    state.pids[c.name] = startDetached(c.binary, c.args, c.log);
    writeState(state);
  }
  log(`Started ${batch.map((c) => c.name).join(', ')}`);
  const boot =
    stage === 2
      ? state.plan.clusters.map(async (cl) => {
          const n = cl.role === 'registry' ? await bootstrapRegistry(cl, deadline) : await bootstrapProvider(cl, deadline);
          log(cl.role === 'registry' ? `registry: ${n} CRDs established` : `${cl.name}: ${n} KWOK nodes Ready`);
        })
      : [];
  await Promise.all([...batch.map((c) => waitHealthy(c, state.pids[c.name] as number, pki, deadline)), ...boot]);
  state.timings[STAGE_NAMES[stage]] = Date.now() - ts;
  log(`Healthy: ${batch.map((c) => c.name).join(', ')} (${((Date.now() - ts) / 1000).toFixed(1)}s)`);
}

/**
 * Starts the local federation and waits until every component is healthy, the registry serves the
 * CRDs, and every provider's nodes are Ready. Throws AlreadyRunningError when one is running in `dir`.
 */
export async function up(opts: UpOptions = {}): Promise<FederationState> {
  const dir = opts.dir ?? devDir();
  const bins = opts.binDir ?? defaultBinDir();
  const log = opts.log ?? (() => undefined);
  const deadline = Date.now() + (opts.timeoutMs ?? 180_000);
  const existing = readState(dir);
  if (existing && Object.values(existing.pids).some(isAlive)) throw new AlreadyRunningError(existing);
  if (existing) rmSync(dir, { recursive: true, force: true }); // stale: its processes are gone

  const extraChains = (opts.extraChains ?? []).map((name) => {
    const p = CHAIN_PROFILES[name];
    if (!p) throw new Error(`No chain profile ${name}; there are ${Object.keys(CHAIN_PROFILES).join(', ')}`);
    return p;
  });
  checkTools(bins, extraChains);
  const providers = selectProviders(loadFleet(opts.fleetFile), opts.providers ?? 2);

  const t0 = Date.now();
  const timings: Record<string, number> = {};
  // Every `up` is a fresh federation: no objects, metrics or chain state from an earlier run, only the certificates reused.
  for (const d of ['etcd', 'logs', 'prometheus', ...Object.values(CHAIN_PROFILES).map((p) => p.name)]) rmSync(join(dir, d), { recursive: true, force: true });
  const mark = (phase: string, since: number) => (timings[phase] = Date.now() - since);
  mkdirSync(join(dir, 'logs'), { recursive: true });
  const pki = await ensurePki(dir);
  await Promise.all(['registry', ...providers.map((p) => p.name)].map((c) => ensureServiceAccountKey(pki, c)));
  mark('pki', t0);

  const plan = await makePlan(dir, bins, providers, opts.agents !== false, extraChains);
  writeClusterFiles(plan, pki);
  writeFileSync(join(dir, 'env'), envFile(plan));
  const state: FederationState = { version: 1, dir, startedAt: new Date().toISOString(), timings, plan, pids: {} };
  writeState(state);

  try {
    await prepareDevChain(plan, log);
    for (const stage of [0, 1, 2, 3] as const) await startStage(state, stage, pki, deadline, log);
    await onboardDevTenant(plan, log); // with or without agents: the integration tests use carol too
  } catch (e) {
    log(`Start-up failed; stopping what was started`);
    await down(dir);
    throw e;
  }
  mark('total', t0);
  state.readyAt = new Date().toISOString();
  writeState(state);
  return state;
}

export interface DownResult {
  stopped: string[];
  /** Processes still mentioning the directory afterwards (should be none). */
  leftover: { pid: number; cmdline: string }[];
}

/** Stops every component (controllers first, etcd last) and any straggler naming the directory. */
export async function down(dir: string = devDir(), opts: { purge?: boolean } = {}): Promise<DownResult> {
  const state = readState(dir);
  const stopped: string[] = [];
  if (state) {
    const byStage = [3, 2, 1, 0].map((s) => state.plan.components.filter((c) => c.stage === s));
    for (const batch of byStage) {
      await Promise.all(
        batch.map(async (c) => {
          const pid = state.pids[c.name];
          if (pid !== undefined && isAlive(pid)) {
            await stopProcess(pid);
            stopped.push(c.name);
          }
        }),
      );
    }
  }
  for (const p of processesMentioning(dir)) await stopProcess(p.pid, 2000);
  const leftover = processesMentioning(dir);
  if (state && leftover.length === 0) {
    rmSync(join(dir, STATE_FILE), { force: true });
    if (opts.purge) rmSync(dir, { recursive: true, force: true });
  }
  return { stopped, leftover };
}

export interface ComponentStatus {
  name: string;
  pid?: number;
  running: boolean;
  healthy: boolean;
  detail: string;
  endpoint: string;
}

export interface StatusReport {
  dir: string;
  running: boolean;
  startedAt?: string;
  readyAt?: string;
  timings?: Record<string, number>;
  components: ComponentStatus[];
  clusters: { name: string; role: string; server: string; kubeconfig: string; nodesReady?: number; nodesTotal?: number }[];
  /** The dev chain: its RPC endpoint and, when it answers, its latest block height. */
  chain?: { chainId: string; rpcUrl: string; height?: number };
}

/** Probes every component of the federation in `dir`; `running` means all are alive and healthy. */
export async function status(dir: string = devDir()): Promise<StatusReport> {
  const state = readState(dir);
  if (!state) return { dir, running: false, components: [], clusters: [] };
  const pki = pkiPaths(dir);
  const components = await Promise.all(
    state.plan.components.map(async (c): Promise<ComponentStatus> => {
      const pid = state.pids[c.name];
      const running = pid !== undefined && isAlive(pid);
      const r = running ? await probe(c.health, pki) : { ok: false, detail: pid === undefined ? 'not started' : 'not running' };
      return { name: c.name, ...(pid !== undefined ? { pid } : {}), running, healthy: r.ok, detail: r.detail, endpoint: c.health.url };
    }),
  );
  const clusters = await Promise.all(
    state.plan.clusters.map(async (cl) => {
      const row: StatusReport['clusters'][number] = { name: cl.name, role: cl.role, server: cl.server, kubeconfig: cl.kubeconfig };
      if (cl.role === 'provider' && components.find((c) => c.name === `${cl.name}/kube-apiserver`)?.healthy) {
        const kc = new k8s.KubeConfig();
        kc.loadFromFile(cl.kubeconfig);
        const nodes = await kc.makeApiClient(k8s.CoreV1Api).listNode();
        row.nodesTotal = nodes.items.length;
        row.nodesReady = nodes.items.filter((n) => n.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True')).length;
      }
      return row;
    }),
  );
  const report: StatusReport = { dir, running: components.every((c) => c.healthy), startedAt: state.startedAt, timings: state.timings, components, clusters };
  if (state.plan.chain) {
    const rpcUrl = state.plan.chain.endpoints.rpcUrl;
    const height = await chainHeight(rpcUrl).catch(() => undefined);
    report.chain = { chainId: CHAIN_ID, rpcUrl, ...(height !== undefined ? { height } : {}) };
  }
  if (state.readyAt) report.readyAt = state.readyAt;
  return report;
}

function componentOf(state: FederationState, name: string): ComponentPlan {
  const c = state.plan.components.find((x) => x.name === name);
  if (!c) throw new Error(`No component ${name}; the federation has ${state.plan.components.map((x) => x.name).join(', ')}`);
  return c;
}

/** Stops one component of a running federation (for fault tests and demos); it can be started again. */
export async function stopComponent(dir: string, name: string): Promise<void> {
  const state = readState(dir);
  if (!state) throw new Error(`No local federation in ${dir}`);
  componentOf(state, name);
  const pid = state.pids[name];
  if (pid !== undefined) await stopProcess(pid);
}

/** Starts a stopped component again with the same flags, and waits until it is healthy. */
export async function startComponent(dir: string, name: string, timeoutMs = 90_000): Promise<void> {
  const state = readState(dir);
  if (!state) throw new Error(`No local federation in ${dir}`);
  const c = componentOf(state, name);
  const pid = state.pids[name];
  if (pid !== undefined && isAlive(pid)) return;
  state.pids[name] = startDetached(c.binary, c.args, c.log);
  writeState(state);
  await waitHealthy(c, state.pids[name], pkiPaths(dir), Date.now() + timeoutMs);
}
