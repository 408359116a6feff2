// The local federation's plan: which clusters, which processes, on which loopback ports, with which
// flags. Pure (ports are handed in), so the harness's configuration is unit-tested without starting
// anything; federation.ts turns a plan into running processes.
import { join } from 'node:path';
import type { FleetProvider } from './fleet.js';
import { CHAIN_ID, CHAIN_MIN_GAS_PRICE, CHAIN_PREFIX, DEV_CHAIN, chainComponent, portsNeededForChain, type ChainEndpoints, type ChainProfile } from './chain.js';
import { monitoringComponents, portsNeededForMonitoring, type DcgmLabelShape } from './monitoring.js';

export type Role = 'registry' | 'provider';
export type Stage = 0 | 1 | 2 | 3;
export type HealthCheck =
  | { kind: 'etcd'; url: string }
  | { kind: 'apiserver'; url: string }
  | { kind: 'https'; url: string } // our CA's serving cert, anonymous /healthz
  | { kind: 'http'; url: string };

export interface ComponentPlan {
  /** Unique, e.g. `etcd`, `registry/kube-apiserver`, `alice/kwok`. */
  name: string;
  cluster?: string;
  binary: string;
  args: string[];
  log: string;
  health: HealthCheck;
  /** Start order: 0 etcd, 1 API servers, 2 what talks to an API server, 3 the gpufed agents and registry replicas. */
  stage: Stage;
}

export interface ClusterPlan {
  name: string;
  role: Role;
  server: string;
  /** Admin kubeconfig (system:masters), also used by the cluster's own components. */
  kubeconfig: string;
  etcdPrefix: string;
  provider?: FleetProvider;
  /** The provider cluster's own Prometheus (kube-state-metrics, the DCGM exporter, the agent). */
  prometheusUrl?: string;
  /** Where the cluster's Prometheus config goes (written before it starts). */
  prometheusConfig?: { path: string; text: string };
}

export interface FederationPlan {
  dir: string;
  binDir: string;
  etcd: { clientUrl: string };
  /** The dev chain (one validator) every provider settles on; absent in plans made without one. */
  chain?: { home: string; endpoints: ChainEndpoints; profile: ChainProfile };
  /** More chains of other profiles nothing settles on by default (the test federation's second profile). */
  extraChains?: { home: string; endpoints: ChainEndpoints; profile: ChainProfile }[];
  clusters: ClusterPlan[];
  components: ComponentPlan[];
}

export interface PlanInput {
  dir: string;
  binDir: string;
  providers: FleetProvider[];
  /** The KWOK stage file (see kwok-stages.yaml). */
  kwokStages: string;
  /** Run each provider's gpufed agent: the operator's entry file and the Node that runs it. */
  agents?: { entry: string; node: string };
  /** Run kube-state-metrics, the DCGM-shaped exporter and Prometheus in each provider cluster. */
  monitoring?: { node: string; exporterEntry: string };
  /** Run the dev chain; the agents meter and settle on it (their hot keys are in these files), the registry co-signs (its key is in registryKeyFile). */
  chain?: { agentKeyFile: (provider: string) => string; payout: (provider: string) => string; registryKeyFile: string };
  /** Run chains of these profiles too (with `chain`), for tests that settle on a chain that is not `cosmos`. */
  extraChains?: ChainProfile[];
}

/** Registry operator replicas `dev up` runs (one leads, one stands by), named registry-1, registry-2. */
export const REGISTRY_REPLICAS = 2;

/**
 * The local federation's clocks, faster than the defaults so tests and the demo see losses within
 * seconds. The order matters for safety: an agent fences its own jobs (stops them) before the
 * registry declares its provider lost and places them elsewhere; both check it at start-up
 * (operator/src/fencing/bound.ts: 30 s ≥ 12 s + 1 s + 10 s + 5 s).
 */
export const DEV_TIMING = {
  agentHeartbeat: '2s',
  agentFencingTimeout: '12s',
  registryHeartbeatTimeout: '8s',
  providerLostTimeout: '30s',
  leaseDuration: '6s',
  renewDeadline: '4s',
  retryPeriod: '1s',
  retention: '10m',
  /** Meter and settle every 10 s, so a demo job is paid while you watch. */
  settlementPeriod: '10s',
  /** Each provider Prometheus's scrape interval (monitoring.ts). */
  scrapeInterval: '2s',
  /** A settlement transaction may wait 20 blocks (~10 s) before it is signed anew. */
  settlementTimeoutBlocks: '20',
  /** Every process here shares one clock; a little slack for rounding and scrape steps. */
  clockSkew: '2s',
} as const;

/** How the operators reach the dev chain: its id, address prefix and fee price, checked against the node at start-up. */
function chainFlags(): string[] {
  return [`--chain-id=${CHAIN_ID}`, `--address-prefix=${CHAIN_PREFIX}`, `--gas-price=${CHAIN_MIN_GAS_PRICE}`];
}

/**
 * Ports a plan needs: etcd client+peer, API server + KCM per cluster, scheduler + KWOK (+ agent and fence guard) per
 * provider, the registry replicas, and each provider's monitoring.
 */
export function portsNeeded(providers: number, agents = false, monitoring = false, chain = false, extraChains = 0): number {
  return 2 + 2 * (providers + 1) + (agents ? 4 : 2) * providers + (agents ? REGISTRY_REPLICAS : 0) + (monitoring ? portsNeededForMonitoring() * providers : 0) + (chain ? portsNeededForChain() * (1 + extraChains) : 0);
}

/**
 * Which label shape each provider's DCGM exporter is scraped in: the first provider honours the
 * exporter's pod labels, the others get them renamed to exported_pod like behind a ServiceMonitor,
 * so the federation always exercises both setups people run.
 */
export function dcgmShapeOf(providerIndex: number): DcgmLabelShape {
  return providerIndex === 0 ? 'pod' : 'exported';
}

/** The scoped kubeconfig `dev up` writes for a provider's agent (registry credentials from onboarding). */
export function agentKubeconfigPath(dir: string, provider: string): string {
  return join(dir, `agent-${provider}.kubeconfig`);
}

export function kubeconfigPath(dir: string, cluster: string): string {
  return join(dir, cluster === 'registry' ? 'registry.kubeconfig' : `provider-${cluster}.kubeconfig`);
}

/** Flags shared by the controller-manager and the scheduler: delegated auth, open health paths, our serving cert. */
function delegated(kubeconfig: string, port: number, pki: string): string[] {
  return [
    `--kubeconfig=${kubeconfig}`,
    `--authentication-kubeconfig=${kubeconfig}`,
    `--authorization-kubeconfig=${kubeconfig}`,
    '--authorization-always-allow-paths=/healthz,/readyz,/livez,/metrics',
    '--leader-elect=false',
    '--bind-address=127.0.0.1',
    `--secure-port=${port}`,
    `--tls-cert-file=${join(pki, 'serving.crt')}`,
    `--tls-private-key-file=${join(pki, 'serving.key')}`,
  ];
}

/** Registry operator replica `i`; with a chain it places only what the payer's grant covers. */
function registryComponent(agents: NonNullable<PlanInput['agents']>, registry: ClusterPlan, i: number, metricsPort: number, chain: FederationPlan['chain'], keyFile: string | undefined, logs: string): ComponentPlan {
  return {
    name: `registry-${i}`,
    cluster: 'registry',
    binary: agents.node,
    stage: 3,
    log: join(logs, `registry-${i}.log`),
    health: { kind: 'http', url: `http://127.0.0.1:${metricsPort}/readyz` },
    args: [
      agents.entry,
      'registry',
      `--kubeconfig=${registry.kubeconfig}`,
      `--identity=registry-${i}`,
      `--lease-duration=${DEV_TIMING.leaseDuration}`,
      `--renew-deadline=${DEV_TIMING.renewDeadline}`,
      `--retry-period=${DEV_TIMING.retryPeriod}`,
      `--heartbeat-timeout=${DEV_TIMING.registryHeartbeatTimeout}`,
      `--provider-lost-timeout=${DEV_TIMING.providerLostTimeout}`,
      `--retention=${DEV_TIMING.retention}`,
      `--metrics-addr=127.0.0.1:${metricsPort}`,
      `--fencing-timeout=${DEV_TIMING.agentFencingTimeout}`,
      `--max-clock-skew=${DEV_TIMING.clockSkew}`,
      ...(chain && keyFile ? [`--chain-rpc=${chain.endpoints.rpcUrl}`, ...chainFlags(), `--cosign-key-file=${keyFile}`, `--payment-cover=${DEV_TIMING.settlementPeriod}`] : []),
    ],
  };
}

/** A provider's gpufed agent; with a chain and a Prometheus it meters and settles too. */
function agentComponent(input: PlanInput, cl: ClusterPlan, metricsPort: number, chain: FederationPlan['chain'], logs: string): ComponentPlan {
  const billing =
    chain && input.chain && cl.prometheusUrl
      ? [
          `--prometheus-url=${cl.prometheusUrl}`,
          `--chain-rpc=${chain.endpoints.rpcUrl}`,
          ...chainFlags(),
          `--wallet-key-file=${input.chain.agentKeyFile(cl.name)}`,
          `--payout=${input.chain.payout(cl.name)}`,
          `--settlement-period=${DEV_TIMING.settlementPeriod}`,
          `--scrape-interval=${DEV_TIMING.scrapeInterval}`,
          `--settlement-timeout-blocks=${DEV_TIMING.settlementTimeoutBlocks}`,
          `--lease-duration=${DEV_TIMING.leaseDuration}`,
          `--renew-deadline=${DEV_TIMING.renewDeadline}`,
          `--retry-period=${DEV_TIMING.retryPeriod}`,
        ]
      : [];
  return {
    name: `agent-${cl.name}`,
    cluster: cl.name,
    binary: input.agents?.node ?? '',
    stage: 3,
    log: join(logs, `agent-${cl.name}.log`),
    health: { kind: 'http', url: `http://127.0.0.1:${metricsPort}/readyz` },
    args: [
      input.agents?.entry ?? '',
      'agent',
      `--provider=${cl.name}`,
      `--kubeconfig=${cl.kubeconfig}`,
      `--registry-kubeconfig=${agentKubeconfigPath(input.dir, cl.name)}`,
      // KWOK nodes run pods by their sim.gpufed.io annotations: pass them through.
      '--simulate',
      `--heartbeat=${DEV_TIMING.agentHeartbeat}`,
      `--fencing-timeout=${DEV_TIMING.agentFencingTimeout}`,
      `--registry-provider-lost-timeout=${DEV_TIMING.providerLostTimeout}`,
      `--metrics-addr=127.0.0.1:${metricsPort}`,
      ...billing,
    ],
  };
}

/** A chain's home, endpoints and process. */
function chainOf(dir: string, binDir: string, logs: string, ports: number[], profile: ChainProfile = DEV_CHAIN): NonNullable<FederationPlan['chain']> & { component: ComponentPlan } {
  const home = join(dir, profile.name);
  const c = chainComponent({ home, binary: join(binDir, profile.binary), log: join(logs, `${profile.name}.log`) }, ports, profile);
  return { home, endpoints: c.endpoints, profile, component: c.component };
}

/** The extra chains a plan runs (only beside the dev chain), after checking enough ports were handed in. */
function extraChainsOf(input: PlanInput, ports: readonly number[]): ChainProfile[] {
  const extra = input.chain ? (input.extraChains ?? []) : [];
  const needed = portsNeeded(input.providers.length, input.agents !== undefined, input.monitoring !== undefined, input.chain !== undefined, extra.length);
  if (ports.length < needed) throw new Error(`planFederation: ${ports.length} ports given, ${needed} needed`);
  return extra;
}

export function planFederation(input: PlanInput, ports: number[]): FederationPlan {
  const extra = extraChainsOf(input, ports);
  const queue = [...ports];
  const port = (): number => queue.shift() as number;
  const { dir, binDir } = input;
  const pki = join(dir, 'pki');
  const logs = join(dir, 'logs');
  const bin = (b: string) => join(binDir, b);
  const [etcdClient, etcdPeer] = [port(), port()];
  const etcdUrl = `http://127.0.0.1:${etcdClient}`;

  const components: ComponentPlan[] = [
    {
      name: 'etcd',
      binary: bin('etcd'),
      stage: 0,
      log: join(logs, 'etcd.log'),
      health: { kind: 'etcd', url: `${etcdUrl}/health` },
      args: [
        '--name=gpufed-dev',
        `--data-dir=${join(dir, 'etcd')}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=gpufed-dev=http://127.0.0.1:${etcdPeer}`,
        '--initial-cluster-state=new',
        // A throwaway dev store on loopback: durability is not worth fsync latency on 2 cores.
        '--unsafe-no-fsync=true',
        '--auto-compaction-retention=1',
        '--quota-backend-bytes=4294967296',
        '--log-level=warn',
      ],
    },
  ];

  const chainPorts = () => Array.from({ length: portsNeededForChain() }, port);
  const chain = input.chain ? chainOf(dir, binDir, logs, chainPorts()) : undefined;
  if (chain) components.push(chain.component);
  const extraChains = extra.map((p) => chainOf(dir, binDir, logs, chainPorts(), p));
  components.push(...extraChains.map((c) => c.component));

  const clusters: ClusterPlan[] = [];
  const roles: { name: string; role: Role; provider?: FleetProvider }[] = [
    { name: 'registry', role: 'registry' },
    ...input.providers.map((p) => ({ name: p.name, role: 'provider' as const, provider: p })),
  ];
  for (const r of roles) {
    const apiPort = port();
    const server = `https://127.0.0.1:${apiPort}`;
    const kubeconfig = kubeconfigPath(dir, r.name);
    const cluster: ClusterPlan = { name: r.name, role: r.role, server, kubeconfig, etcdPrefix: `/gpufed/${r.name}` };
    if (r.provider) cluster.provider = r.provider;
    clusters.push(cluster);
    components.push({
      name: `${r.name}/kube-apiserver`,
      cluster: r.name,
      binary: bin('kube-apiserver'),
      stage: 1,
      log: join(logs, `${r.name}-kube-apiserver.log`),
      health: { kind: 'apiserver', url: `${server}/readyz` },
      args: [
        `--etcd-servers=${etcdUrl}`,
        `--etcd-prefix=${cluster.etcdPrefix}`,
        '--bind-address=127.0.0.1',
        `--secure-port=${apiPort}`,
        // Loopback advertise address is only accepted with no endpoint reconciler; nothing here
        // needs the `kubernetes` Service endpoints.
        '--advertise-address=127.0.0.1',
        '--endpoint-reconciler-type=none',
        `--tls-cert-file=${join(pki, 'serving.crt')}`,
        `--tls-private-key-file=${join(pki, 'serving.key')}`,
        `--client-ca-file=${join(pki, 'ca.crt')}`,
        `--service-account-issuer=https://${r.name}.gpufed.local`,
        `--service-account-key-file=${join(pki, `sa-${r.name}.pub`)}`,
        `--service-account-signing-key-file=${join(pki, `sa-${r.name}.key`)}`,
        '--service-cluster-ip-range=10.0.0.0/24',
        '--authorization-mode=Node,RBAC',
        '--allow-privileged=true',
        '--enable-priority-and-fairness=false',
        '--profiling=false',
        '--event-ttl=1h',
      ],
    });
    const kcmPort = port();
    components.push({
      name: `${r.name}/kube-controller-manager`,
      cluster: r.name,
      binary: bin('kube-controller-manager'),
      stage: 2,
      log: join(logs, `${r.name}-kube-controller-manager.log`),
      health: { kind: 'https', url: `https://127.0.0.1:${kcmPort}/healthz` },
      args: [
        ...delegated(kubeconfig, kcmPort, pki),
        `--root-ca-file=${join(pki, 'ca.crt')}`,
        `--service-account-private-key-file=${join(pki, `sa-${r.name}.key`)}`,
        `--cluster-signing-cert-file=${join(pki, 'ca.crt')}`,
        `--cluster-signing-key-file=${join(pki, 'ca.key')}`,
        '--controllers=*',
        '--use-service-account-credentials=false',
      ],
    });
  }
  for (const cl of clusters) {
    if (cl.role !== 'provider') continue;
    const schedPort = port();
    const kwokPort = port();
    components.push({
      name: `${cl.name}/kube-scheduler`,
      cluster: cl.name,
      binary: bin('kube-scheduler'),
      stage: 2,
      log: join(logs, `${cl.name}-kube-scheduler.log`),
      health: { kind: 'https', url: `https://127.0.0.1:${schedPort}/healthz` },
      args: delegated(cl.kubeconfig, schedPort, pki),
    });
    components.push({
      name: `${cl.name}/kwok`,
      cluster: cl.name,
      binary: bin('kwok'),
      stage: 2,
      log: join(logs, `${cl.name}-kwok.log`),
      health: { kind: 'http', url: `http://127.0.0.1:${kwokPort}/healthz` },
      args: [
        `--kubeconfig=${cl.kubeconfig}`,
        `--config=${input.kwokStages}`,
        '--manage-all-nodes=false',
        '--manage-nodes-with-annotation-selector=kwok.x-k8s.io/node=fake',
        '--node-ip=127.0.0.1',
        '--node-lease-duration-seconds=40',
        `--server-address=127.0.0.1:${kwokPort}`,
      ],
    });
  }
  const providers = clusters.filter((c) => c.role === 'provider');
  // Agents' metrics ports first: each provider's Prometheus scrapes its agent, and the agent meters from it.
  const agentMetrics = new Map<string, number>();
  if (input.agents) for (const cl of providers) agentMetrics.set(cl.name, port());
  if (input.monitoring) {
    const monitoring = input.monitoring;
    providers.forEach((cl, i) => {
      const metricsPort = agentMetrics.get(cl.name);
      const m = monitoringComponents(
        { cluster: cl.name, kubeconfig: cl.kubeconfig, dir, binDir, node: monitoring.node, exporterEntry: monitoring.exporterEntry, dcgmShape: dcgmShapeOf(i), ...(metricsPort ? { agentTarget: `127.0.0.1:${metricsPort}` } : {}) },
        Array.from({ length: portsNeededForMonitoring() }, port),
      );
      components.push(...m.components);
      cl.prometheusUrl = m.prometheusUrl;
      cl.prometheusConfig = m.prometheusConfig;
    });
  }
  const strip = (c: typeof chain & object) => ({ home: c.home, endpoints: c.endpoints, profile: c.profile });
  const chainPlan = chain ? strip(chain) : undefined;
  if (input.agents) components.push(...operatorComponents(input, input.agents, clusters, agentMetrics, chainPlan, logs, port));
  return { dir, binDir, etcd: { clientUrl: etcdUrl }, ...(chainPlan ? { chain: chainPlan } : {}), ...(extraChains.length ? { extraChains: extraChains.map(strip) } : {}), clusters, components };
}

/** Each provider's agent, then the registry replicas. */
function operatorComponents(input: PlanInput, agents: NonNullable<PlanInput['agents']>, clusters: ClusterPlan[], agentMetrics: ReadonlyMap<string, number>, chain: FederationPlan['chain'], logs: string, port: () => number): ComponentPlan[] {
  const out = clusters.filter((c) => c.role === 'provider').map((cl) => agentComponent(input, cl, agentMetrics.get(cl.name) ?? 0, chain, logs));
  const registry = clusters.find((c) => c.role === 'registry') as ClusterPlan;
  for (let i = 1; i <= REGISTRY_REPLICAS; i++) out.push(registryComponent(agents, registry, i, port(), chain, input.chain?.registryKeyFile, logs));
  for (const cl of clusters.filter((c) => c.role === 'provider')) out.push(guardComponent(input, agents, cl, port(), logs));
  return out;
}

/** A provider's fence guard, as the provider chart runs it beside the agent: it stops job pods when the agent's heartbeats stop. */
function guardComponent(input: PlanInput, agents: NonNullable<PlanInput['agents']>, cl: ClusterPlan, metricsPort: number, logs: string): ComponentPlan {
  return {
    name: `fence-guard-${cl.name}`,
    cluster: cl.name,
    binary: agents.node,
    stage: 3,
    log: join(logs, `fence-guard-${cl.name}.log`),
    health: { kind: 'http', url: `http://127.0.0.1:${metricsPort}/readyz` },
    args: [
      agents.entry,
      'fence-guard',
      `--provider=${cl.name}`,
      `--kubeconfig=${cl.kubeconfig}`,
      `--registry-kubeconfig=${agentKubeconfigPath(input.dir, cl.name)}`,
      `--fencing-timeout=${DEV_TIMING.agentFencingTimeout}`,
      `--registry-provider-lost-timeout=${DEV_TIMING.providerLostTimeout}`,
      `--metrics-addr=127.0.0.1:${metricsPort}`,
    ],
  };
}
