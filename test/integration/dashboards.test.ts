// The charts' Grafana dashboards against the real federation: every dashboard is well-formed, and
// every panel's PromQL, with its variables replaced as Grafana would, runs on alice's real Prometheus
// and, for what this run produces, returns data. The run: a registry operator and alice's agent as
// real processes (metering and settling on the chain), scraped by alice's Prometheus for the length
// of the test: the agent as in `gpufed dev up`, the registry as a provider Prometheus never does in
// production (the federation and renter dashboards expect a Prometheus that sees the registry and
// all agents; alice's stands in for it here). One job runs and settles, one cannot be placed.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toHex } from '@cosmjs/encoding';
import * as k8s from '@kubernetes/client-node';
import { parse, stringify } from 'yaml';
import { ComputeJobResource, type ComputeJob } from '../../operator/src/api/index.js';
import { parseCoin } from '../../operator/src/api/coin.js';
import type { Chain } from '../../operator/src/settlement/chain.js';
import { CHAIN_ID, CHAIN_MIN_GAS_PRICE } from '../../cli/src/dev/chain.js';
import { freePorts } from '../../cli/src/dev/federation.js';
import { clusterTargetLabels, ScrapeJob } from '../../cli/src/dev/monitoring.js';
import { repoRoot } from '../../cli/src/dev/paths.js';
import { devTenantKey } from '../../cli/src/dev/tenants.js';
import { devProviderHotKey, devProviderPayout, devRegistryKey, devSettlementAccount } from '../../cli/src/dev/wallets.js';
import { validComputeJob } from '../fixtures/computejobs.js';
import { chainRpc, DENOM, keyAddress, testChain } from '../support/chain.js';
import {
  dashboardProblems,
  hasData,
  instantQuery,
  interpolate,
  labelValues,
  loadDashboards,
  panelsOf,
  parseLabelValues,
  rangeQuery,
  variableQuery,
  type GrafanaVariables,
} from '../support/dashboards.js';
import { agentRegistryConfig, eventually, kubeConfig, kubeconfigOf, kubectl, testDir, testFederation, withoutWork } from '../support/federation.js';
import { devTenant, type TestTenant } from '../support/tenants.js';

const PROVIDER = 'alice';
const RTX4090 = 'NVIDIA-GeForce-RTX-4090';
const PRICES = [{ model: RTX4090, pricePerGpuHour: '1200000ustake' }];
const REGISTRY_SCRAPE_JOB = 'gpufed-registry';
/** Grafana's variables as a 5-minute view would set them ($__interval for a stat panel about that wide). */
const VARS = { rateInterval: '30s', range: '5m', interval: '15s' } as const;
const EXPECTED_UIDS = ['gpufed-federation', 'gpufed-provider', 'gpufed-renter'];

/**
 * Panels that may have no data in this run, and why. Everything else must return at least one series
 * with a number, for `cluster` = .* (Grafana's All) and = alice.
 */
const MAY_BE_EMPTY: Record<string, string> = {
  'gpufed-federation/GPUs reserved by provider': 'a reservation lasts only from the placement to the agent’s next report (about a second here), so a scrape may never see it',
  'gpufed-federation/Settlement failures': 'nothing fails in this run: no Settlement refused, failed, expired or superseded',
  'gpufed-provider/Settlement failures': 'nothing fails in this run: no Settlement refused, failed, expired or superseded',
  'gpufed-renter/Jobs failed': 'no job fails in this run',
};

const dashboards = loadDashboards();
const custom = () => kubeConfig('registry').makeApiClient(k8s.CustomObjectsApi);
const jobRef = { group: ComputeJobResource.group, version: ComputeJobResource.version, plural: ComputeJobResource.plural };
const cluster = () => {
  const c = testFederation().plan.clusters.find((x) => x.name === PROVIDER);
  if (!c?.prometheusUrl || !c.prometheusConfig) throw new Error(`The test federation's ${PROVIDER} has no Prometheus`);
  return { prometheusUrl: c.prometheusUrl, configPath: c.prometheusConfig.path };
};

let chain: Chain;
let carol: TestTenant;
let originalConfig: string | undefined;
let runStart = 0;
const processes: ChildProcess[] = [];
const jobs: string[] = [];

// ------------------------------------------------------------------------------------------------
// The processes and Prometheus's view of them

function startOperator(name: string, args: string[]): ChildProcess {
  const logs = join(testDir(), 'logs');
  mkdirSync(logs, { recursive: true });
  const out = createWriteStream(join(logs, `dashboards-${name}.log`));
  const proc = spawn(process.execPath, [join(repoRoot(), 'dist', 'operator', 'src', 'main.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout?.pipe(out);
  proc.stderr?.pipe(out);
  processes.push(proc);
  return proc;
}

async function stopProcess(proc: ChildProcess): Promise<void> {
  if (proc.exitCode !== null || proc.signalCode !== null) return;
  const exited = new Promise((resolve) => proc.once('exit', resolve));
  proc.kill('SIGTERM');
  const timer = setTimeout(() => proc.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

async function reloadPrometheus(): Promise<void> {
  const res = await fetch(new URL('/-/reload', cluster().prometheusUrl), { method: 'POST' });
  if (!res.ok) throw new Error(`Prometheus refused to reload: HTTP ${res.status} ${await res.text()}`);
}

interface ScrapeConfig {
  job_name: string;
  static_configs: { targets: string[]; labels?: Record<string, string> }[];
}

/** Adds scrape jobs to alice's Prometheus (replacing any of the same name) and reloads it. */
async function scrapeAlso(jobsToAdd: ScrapeConfig[]): Promise<void> {
  const { configPath } = cluster();
  originalConfig ??= readFileSync(configPath, 'utf8');
  const config = parse(originalConfig) as { scrape_configs: ScrapeConfig[] };
  const names = new Set(jobsToAdd.map((j) => j.job_name));
  config.scrape_configs = [...config.scrape_configs.filter((s) => !names.has(s.job_name)), ...jobsToAdd];
  writeFileSync(configPath, `# Rewritten by test/integration/dashboards.test.ts for the length of the test.\n${stringify(config)}`);
  await reloadPrometheus();
  await eventually(`${[...names].join(' and ')} up in ${PROVIDER}'s Prometheus`, async () => {
    const res = (await (await fetch(new URL('/api/v1/targets?state=active', cluster().prometheusUrl))).json()) as { data: { activeTargets: { labels: Record<string, string>; health: string }[] } };
    const up = res.data.activeTargets.filter((t) => names.has(t.labels.job ?? '') && t.health === 'up');
    return up.length === names.size ? true : undefined;
  }, 30_000, 500);
}

// ------------------------------------------------------------------------------------------------
// Jobs

let seq = 0;
async function submit(count: number, duration: string): Promise<string> {
  const j = validComputeJob(`dash-${Date.now().toString(36)}-${seq++}`, carol.namespace);
  j.metadata.annotations = { 'sim.gpufed.io/duration': duration, 'sim.gpufed.io/gpu-util': '81' };
  j.spec = { ...j.spec, resources: { gpu: { count, models: [RTX4090] }, cpu: '1', memory: '1Gi' }, maxPricePerGpuHour: '2000000ustake', retries: 0 };
  delete j.spec.placement;
  await carol.kc.makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({ ...jobRef, namespace: carol.namespace, body: j });
  jobs.push(j.metadata.name ?? '');
  return j.metadata.name ?? '';
}

function jobWhen(name: string, what: string, ok: (j: ComputeJob) => boolean, timeoutMs = 60_000): Promise<ComputeJob> {
  return eventually(`job ${name} ${what}`, async () => {
    const j = (await custom().getNamespacedCustomObject({ ...jobRef, namespace: carol.namespace, name })) as ComputeJob;
    return ok(j) ? j : undefined;
  }, timeoutMs, 500);
}

/** Polls alice's Prometheus until `expr` returns a series. */
function seen(what: string, expr: string, timeoutMs = 30_000): Promise<true> {
  return eventually(`${what} in ${PROVIDER}'s Prometheus`, async () => (hasData(await instantQuery(cluster().prometheusUrl, expr)) ? true : undefined), timeoutMs, 500);
}

// ------------------------------------------------------------------------------------------------
// Every target of every panel, as Grafana would send it

interface TargetRun {
  /** `<dashboard uid>/<panel title>`. */
  key: string;
  refId: string;
  cluster: string;
  error?: string;
  data: boolean;
  /** The instant query's numbers (what a stat or table shows). */
  values: number[];
}

async function runTargets(clusterValue: string): Promise<TargetRun[]> {
  const { prometheusUrl } = cluster();
  const vars: GrafanaVariables = { cluster: clusterValue, ...VARS };
  const now = Date.now();
  const runs = dashboards.flatMap(({ dashboard: d }) =>
    panelsOf(d).flatMap((p) =>
      (p.targets ?? []).map(async (t): Promise<TargetRun> => {
        const run = { key: `${d.uid}/${p.title}`, refId: t.refId ?? '', cluster: clusterValue };
        const expr = interpolate(t.expr ?? '', vars);
        const instant = await instantQuery(prometheusUrl, expr, now);
        if (instant.status !== 'success') return { ...run, error: `instant: ${instant.error} in ${expr}`, data: false, values: [] };
        const values = instant.series.flatMap((x) => x.values.map(Number));
        if (!t.range) return { ...run, data: hasData(instant), values };
        const range = await rangeQuery(prometheusUrl, expr, runStart, now, VARS.interval);
        if (range.status !== 'success') return { ...run, error: `range: ${range.error} in ${expr}`, data: false, values };
        return { ...run, data: hasData(range), values };
      }),
    ),
  );
  return Promise.all(runs);
}

// ------------------------------------------------------------------------------------------------

beforeAll(async () => {
  chain = await testChain();
  const kcFile = join(testDir(), `dashboards-${PROVIDER}-registry.kubeconfig`);
  writeFileSync(kcFile, (await agentRegistryConfig(PROVIDER, PRICES)).exportConfig(), { mode: 0o600 });
  const keyFile = join(testDir(), `dashboards-${PROVIDER}.key`);
  writeFileSync(keyFile, toHex(devProviderHotKey(PROVIDER)), { mode: 0o600 });
  await withoutWork(PROVIDER);
  carol = await devTenant();
  // To the provider's 2-of-2 settlement account (its hot key and the registry's), which the registry publishes.
  await chain.grantSpend(devTenantKey(carol.namespace), devSettlementAccount(PROVIDER), { amount: 100_000_000n, denom: DENOM }, [devProviderPayout(PROVIDER)]);
  const registryKeyFile = join(testDir(), 'dashboards-registry-cosign.key');
  writeFileSync(registryKeyFile, toHex(devRegistryKey()), { mode: 0o600 });

  const [agentPort, registryPort] = (await freePorts(2)) as [number, number];
  const registry = startOperator('registry', [
    'registry',
    `--kubeconfig=${kubeconfigOf('registry')}`,
    '--identity=dashboards-test',
    '--lease-duration=3s',
    '--renew-deadline=2s',
    '--retry-period=500ms',
    '--heartbeat-timeout=5s',
    '--provider-lost-timeout=120s',
    `--metrics-addr=127.0.0.1:${registryPort}`,
    `--chain-rpc=${chainRpc()}`,
    `--chain-id=${CHAIN_ID}`,
    `--cosign-key-file=${registryKeyFile}`,
    '--fencing-timeout=60s',
    '--max-clock-skew=2s',
    '--payment-cover=4s',
    '--settle-wait=60s',
  ]);
  startOperator('agent', [
    'agent',
    `--provider=${PROVIDER}`,
    `--kubeconfig=${kubeconfigOf(PROVIDER)}`,
    `--registry-kubeconfig=${kcFile}`,
    '--simulate',
    '--heartbeat=1s',
    '--fencing-timeout=60s',
    `--metrics-addr=127.0.0.1:${agentPort}`,
    `--prometheus-url=${cluster().prometheusUrl}`,
    `--chain-rpc=${chainRpc()}`,
    `--chain-id=${CHAIN_ID}`,
    `--gas-price=${CHAIN_MIN_GAS_PRICE}`,
    `--wallet-key-file=${keyFile}`,
    `--payout=${devProviderPayout(PROVIDER)}`,
    '--settlement-period=4s',
    '--scrape-interval=2s',
    '--settlement-timeout-blocks=20',
    '--lease-duration=4s',
    '--renew-deadline=3s',
    '--retry-period=500ms',
  ]);
  // The agent as `gpufed dev up` has its cluster's Prometheus scrape it; the registry under its own cluster's name.
  await scrapeAlso([
    { job_name: ScrapeJob.Agent, static_configs: [{ targets: [`127.0.0.1:${agentPort}`], labels: clusterTargetLabels(PROVIDER) }] },
    { job_name: REGISTRY_SCRAPE_JOB, static_configs: [{ targets: [`127.0.0.1:${registryPort}`], labels: clusterTargetLabels('registry') }] },
  ]);
  await eventually('the registry to lead', async () => {
    if (registry.exitCode !== null) throw new Error(`The registry exited with ${registry.exitCode}`);
    const text = await (await fetch(`http://127.0.0.1:${registryPort}/metrics`)).text();
    return /^gpufed_leader 1$/m.test(text) ? true : undefined;
  }, 30_000, 250);
  runStart = Date.now();
}, 120_000);

afterAll(async () => {
  // Jobs first, while the registry and agent run to let them go (a job keeps its finalizer until settled).
  for (const name of jobs) await kubectl('registry', ['delete', 'computejob', '-n', carol.namespace, name, '--ignore-not-found', '--timeout=30s']);
  for (const p of processes) await stopProcess(p);
  if (originalConfig !== undefined) {
    writeFileSync(cluster().configPath, originalConfig);
    await reloadPrometheus();
  }
  await kubectl('registry', ['patch', 'lease', 'gpufed-registry', '-n', 'gpufed-system', '--type=merge', '-p', '{"spec":{"holderIdentity":""}}']);
  chain?.disconnect();
}, 90_000);

describe('the Grafana dashboards', () => {
  it('are well-formed: fixed unique uids, the datasource and cluster variables, every panel described, with a unit and targets on ${datasource}', () => {
    expect(dashboards.map((d) => d.dashboard.uid).sort()).toEqual(EXPECTED_UIDS);
    expect(dashboards.flatMap((d) => dashboardProblems(d.file, d.dashboard))).toEqual([]);
  });

  it('run every panel query on the real Prometheus, with data for all this run produced', async () => {
    const { prometheusUrl } = cluster();
    // A job that runs (and is metered and paid) and one that no provider can take.
    const running = await submit(1, '25s');
    const waiting = await submit(64, '5s');
    await jobWhen(running, 'Running', (j) => j.status?.phase === 'Running');
    await jobWhen(waiting, 'unschedulable', (j) => j.status?.conditions?.some((c) => c.type === 'Scheduled' && c.status === 'False') === true);
    await seen('the job pod using its GPU (81 %, as the job asks)', `DCGM_FI_DEV_GPU_UTIL{cluster="${PROVIDER}"} == 81`);
    await seen('the unschedulable job', 'gpufed_unschedulable_jobs > 0');
    // The exporter and kube-state-metrics are scraped independently: the exporter's 81 % says nothing
    // about whether kube-state-metrics' last scrape already saw the pod Running.
    await seen('the job pod Running in kube-state-metrics', `(kube_pod_status_phase{cluster="${PROVIDER}", phase="Running"} == 1) * on (namespace, pod, uid) group_left () kube_pod_labels{cluster="${PROVIDER}", label_app_kubernetes_io_managed_by="gpufed-agent"}`);
    // While it runs: what is true only now (pods running, GPUs sold now).
    const during = [...(await runTargets('.*')), ...(await runTargets(PROVIDER))];
    const settled = await jobWhen(running, 'Succeeded and Settled', (j) => j.status?.phase === 'Succeeded' && j.status.conditions?.some((c) => c.type === 'Settled' && c.status === 'True') === true, 90_000);
    await seen('a committed settlement', 'gpufed_settlements_total{state="Committed"}');
    // The money series, exactly: this agent started with this test and metered and paid this one job;
    // the grant was made with 100000000 in beforeAll and only this job drew on it.
    const paid = parseCoin(settled.status?.paid ?? '0ustake');
    expect(paid.amount).toBeGreaterThan(0n);
    // Each payment says when its block was made, as the chain says (within this run).
    const times = (settled.status?.settlements ?? []).map((t) => Date.parse(t.time ?? ''));
    expect(times.length).toBeGreaterThan(0);
    for (const t of times) expect(t >= runStart - 5000 && t <= Date.now() + 5000).toBe(true);
    const money = `{cluster="${PROVIDER}", tenant="${carol.namespace}", denom="${paid.denom}"}`;
    await seen(`gpufed_paid_total of ${paid.amount}`, `gpufed_paid_total${money} == ${paid.amount}`);
    await seen(`gpufed_billed_total of ${paid.amount}`, `gpufed_billed_total${money} == ${paid.amount}`);
    await seen('the GPU-seconds billed (one GPU for 25 s)', `gpufed_billed_gpu_seconds_total{cluster="${PROVIDER}", tenant="${carol.namespace}"} > 20 < 30`);
    await seen(`the grant left after paying ${paid.amount}`, `gpufed_grant_remaining{cluster="${PROVIDER}", payer="${keyAddress(devTenantKey(carol.namespace))}", denom="${paid.denom}"} == ${100_000_000n - paid.amount}`);
    await seen('the succeeded job', 'gpufed_computejobs{phase="Succeeded"} > 0');
    const after = [...(await runTargets('.*')), ...(await runTargets(PROVIDER))];

    const all = [...during, ...after];
    expect(all.length).toBe(4 * dashboards.reduce((n, d) => n + panelsOf(d.dashboard).reduce((m, p) => m + (p.targets?.length ?? 0), 0), 0));
    expect(all.filter((r) => r.error).map((r) => `${r.key} ${r.refId} (cluster ${r.cluster}): ${r.error}`)).toEqual([]);
    // A few panels' numbers, for cluster = alice: what the run did.
    const value = (runs: TargetRun[], key: string, refId = 'A') => runs.find((r) => r.key === key && r.refId === refId && r.cluster === PROVIDER)?.values ?? [];
    expect(value(during, 'gpufed-provider/GPUs sold now')).toEqual([1]);
    expect(value(during, 'gpufed-provider/Job pods running')).toEqual([1]);
    expect(value(during, 'gpufed-provider/GPU utilisation by job pod')).toEqual([81]);
    expect(value(after, 'gpufed-federation/Registry leaders')).toEqual([1]);
    expect(value(after, 'gpufed-federation/Providers Ready')[0]).toBeGreaterThanOrEqual(1);
    // Registry-wide counts: jobs other test files left behind may add to them.
    expect(value(after, 'gpufed-renter/Jobs waiting')[0]).toBeGreaterThanOrEqual(1);
    expect(value(after, 'gpufed-renter/Jobs succeeded')[0]).toBeGreaterThanOrEqual(1);
    expect(value(after, 'gpufed-provider/Energy by job pod')[0]).toBeGreaterThan(0);
    // The money panels see this run's payment (increase() extrapolates, so not to the unit).
    expect(value(after, 'gpufed-provider/Earnings')[0]).toBeGreaterThan(0);
    expect(value(after, 'gpufed-federation/Settlement volume')[0]).toBeGreaterThan(0);
    // GPU-hours over this run only (earlier test files' pods may have run on alice in the last 5
    // minutes): one GPU for 25 s, sampled every 15 s, is 15 to 45 GPU-seconds.
    const sold = dashboards.flatMap((d) => (d.dashboard.uid === 'gpufed-provider' ? panelsOf(d.dashboard) : [])).find((p) => p.title === 'GPU-hours sold')?.targets?.[0]?.expr ?? '';
    const thisRun = await instantQuery(prometheusUrl, interpolate(sold, { ...VARS, cluster: PROVIDER, range: `${Math.ceil((Date.now() - runStart) / 1000)}s` }));
    const gpuSeconds = Number(thisRun.series[0]?.values[0]) * 3600;
    expect(gpuSeconds).toBeGreaterThanOrEqual(15);
    expect(gpuSeconds).toBeLessThanOrEqual(45);

    // A panel has data when any of its targets had data in either pass.
    const panels = [...new Set(all.map((r) => r.key))];
    const withData = new Set(all.filter((r) => r.data).map((r) => r.key));
    const empty = panels.filter((k) => !withData.has(k));
    writeFileSync(join(testDir(), 'logs', 'dashboards-panels.json'), `${JSON.stringify({ withData: [...withData].sort(), empty }, null, 2)}\n`);
    expect(empty.filter((k) => !(k in MAY_BE_EMPTY))).toEqual([]);
    // The allowlist names real panels only.
    for (const k of Object.keys(MAY_BE_EMPTY)) expect(panels).toContain(k);

    // The cluster variable lists the provider, as Grafana's label_values() would.
    for (const { dashboard: d } of dashboards) {
      const q = parseLabelValues(variableQuery(d.templating?.list?.find((v) => v.name === 'cluster') ?? { name: '', type: '' }));
      expect(q && (await labelValues(prometheusUrl, q.label, q.match))).toContain(PROVIDER);
    }
  });
});
