// The operator in agent mode: runs in a provider's cluster and talks to the registry outbound only.
// Registration: one GpuNode per GPU node in the provider's namespace on the registry, written only
// when the cluster changed; a heartbeat on the provider's own Provider status.
import * as k8s from '@kubernetes/client-node';
import { isDeepStrictEqual } from 'node:util';
import { GpuNodeResource, ProviderResource, type GpuNode, type GpuNodeSpec, type GpuNodeStatus, type ProviderStatus } from '../api/index.js';
import { Kube } from '../kube/client.js';
import { Watched, listCustom } from '../kube/informer.js';
import { Controller } from '../runtime/controller.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import { capacityByModel } from './capacity.js';
import { gpuNodeSpec, gpuNodeStatus, isGpuNode } from './gpunode.js';

export interface AgentOptions {
  provider: string;
  /** The provider's namespace on the registry (default gpufed-provider-<provider>). */
  namespace?: string;
  /** The provider's own cluster. */
  cluster: k8s.KubeConfig;
  /** The registry, with the agent's scoped credentials. */
  registry: k8s.KubeConfig;
  heartbeatMs?: number;
  resyncMs?: number;
  version: string;
  metrics: Metrics;
  log: Logger;
  now?: () => Date;
}

export const AGENT_FIELD_MANAGER = 'gpufed-agent';

/** etcd-backed API servers hand out increasing integer resourceVersions; anything else is not compared. */
function resourceVersion(obj: k8s.KubernetesObject | undefined): bigint | undefined {
  const rv = obj?.metadata?.resourceVersion;
  return rv && /^\d+$/.test(rv) ? BigInt(rv) : undefined;
}
/** Labels on every GpuNode the agent writes, so a person can select them. */
const gpuNodeLabels = (provider: string) => ({ 'gpufed.io/provider': provider, 'app.kubernetes.io/managed-by': 'gpufed-agent' });

export class Agent {
  readonly namespace: string;
  private readonly registry: Kube;
  private readonly heartbeats: Kube;
  private readonly nodes: Watched<k8s.V1Node>;
  private readonly pods: Watched<k8s.V1Pod>;
  private readonly gpuNodes: Watched<GpuNode & k8s.KubernetesObject>;
  private readonly registration: Controller;
  private heartbeatTimer?: NodeJS.Timeout;
  private readonly now: () => Date;
  /** When the registry last accepted a heartbeat (the agent's hold on the registry). */
  lastHeartbeatOk?: Date;
  /**
   * What this agent last wrote per GpuNode, with the resourceVersion the server gave it. The watch
   * cache lags our own writes (the spec write's event arrives before the status write's), and
   * comparing with a stale cache would write the same status twice.
   */
  private readonly written = new Map<string, { rv: bigint; spec: GpuNodeSpec; status?: GpuNodeStatus }>();

  constructor(private readonly opts: AgentOptions) {
    this.namespace = opts.namespace ?? `gpufed-provider-${opts.provider}`;
    this.now = opts.now ?? (() => new Date());
    this.registry = new Kube(opts.registry, `${AGENT_FIELD_MANAGER}/registration`);
    this.heartbeats = new Kube(opts.registry, `${AGENT_FIELD_MANAGER}/heartbeat`);
    const core = opts.cluster.makeApiClient(k8s.CoreV1Api);
    this.registration = new Controller('gpunode', (key) => this.reconcileNode(key), {
      metrics: opts.metrics,
      log: opts.log,
      keys: () => new Set([...this.nodes.list().map((n) => n.metadata?.name ?? ''), ...this.gpuNodes.list().map((g) => g.metadata?.name ?? '')]),
      resyncMs: opts.resyncMs ?? 300_000,
    });
    const enqueue = (name: string | undefined) => name && this.registration.enqueue(name);
    const onError = (what: string) => (err: unknown) => opts.log.warn({ err: (err as Error)?.message ?? String(err) }, `Watch of ${what} failed; re-listing`);
    this.nodes = new Watched(opts.cluster, { path: '/api/v1/nodes', list: () => core.listNode(), onEvent: (n) => enqueue(n.metadata?.name), onError: onError('nodes') });
    this.pods = new Watched(opts.cluster, { path: '/api/v1/pods', list: () => core.listPodForAllNamespaces(), onEvent: (p) => enqueue(p.spec?.nodeName), onError: onError('pods') });
    this.gpuNodes = new Watched<GpuNode & k8s.KubernetesObject>(opts.registry, {
      path: `/apis/${GpuNodeResource.group}/${GpuNodeResource.version}/namespaces/${this.namespace}/${GpuNodeResource.plural}`,
      list: listCustom(opts.registry, GpuNodeResource, this.namespace),
      onEvent: (g) => enqueue(g.metadata?.name),
      onError: onError('gpunodes'),
    });
  }

  async start(): Promise<void> {
    this.opts.metrics.buildInfo.set({ version: this.opts.version, mode: 'agent' }, 1);
    await Promise.all([this.nodes.start(), this.pods.start(), this.gpuNodes.start()]);
    this.registration.start();
    for (const n of this.nodes.list()) this.registration.enqueue(n.metadata?.name ?? '');
    for (const g of this.gpuNodes.list()) this.registration.enqueue(g.metadata?.name ?? '');
    await this.heartbeat();
    this.heartbeatTimer = setInterval(() => void this.heartbeat(), this.opts.heartbeatMs ?? 10_000);
    this.opts.log.info({ provider: this.opts.provider, namespace: this.namespace }, 'Started agent');
  }

  async stop(): Promise<void> {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    await this.registration.stop();
    await Promise.all([this.nodes.stop(), this.pods.stop(), this.gpuNodes.stop()]);
  }

  /** The GpuNode a Node should have on the registry now, or undefined when it is no GPU node. */
  private desired(nodeName: string, previous: GpuNodeStatus | undefined): { spec: GpuNodeSpec; status: GpuNodeStatus } | undefined {
    const node = this.nodes.get(nodeName);
    if (!node || !isGpuNode(node)) return undefined;
    const pods = this.pods.list().filter((p) => p.spec?.nodeName === nodeName);
    return { spec: gpuNodeSpec(node), status: gpuNodeStatus(node, pods, previous, this.now()) };
  }

  /** The GpuNode as the registry has it: the cache, unless our own later write has not reached it yet. */
  private current(name: string): { spec?: GpuNodeSpec; status?: GpuNodeStatus; labels?: Record<string, string> } | undefined {
    const cached = this.gpuNodes.get(name, this.namespace);
    const mine = this.written.get(name);
    if (!cached) return undefined;
    const rv = resourceVersion(cached);
    if (mine && rv !== undefined && rv < mine.rv) return { spec: mine.spec, status: mine.status ?? cached.status, labels: gpuNodeLabels(this.opts.provider) };
    return { spec: cached.spec, status: cached.status, ...(cached.metadata?.labels ? { labels: cached.metadata.labels } : {}) };
  }

  /** gather → decide → write only what differs. */
  private async reconcileNode(name: string): Promise<void> {
    const existing = this.current(name);
    const want = this.desired(name, existing?.status);
    const { metrics, log } = this.opts;
    if (!want) {
      if (existing) {
        await this.registry.deleteCustom(GpuNodeResource, name, this.namespace);
        this.written.delete(name);
        metrics.registryWrites.inc({ resource: 'gpunodes', verb: 'delete' });
        log.info({ node: name }, 'Removed GPU node from the registry');
      }
      return;
    }
    const labels = gpuNodeLabels(this.opts.provider);
    const labelsMatch = Object.entries(labels).every(([k, v]) => existing?.labels?.[k] === v);
    if (!existing || !labelsMatch || !isDeepStrictEqual(existing.spec, want.spec)) {
      const applied = await this.registry.apply({ apiVersion: GpuNodeResource.apiVersion, kind: GpuNodeResource.kind, metadata: { name, namespace: this.namespace, labels }, spec: want.spec });
      this.remember(name, applied, want.spec);
      metrics.registryWrites.inc({ resource: 'gpunodes', verb: 'apply' });
      log.info({ node: name, product: want.spec.product, resource: want.spec.resourceName }, existing ? 'Updated GPU node on the registry' : 'Registered GPU node');
    }
    if (!isDeepStrictEqual(existing?.status, want.status)) {
      const applied = await this.registry.applyStatus(GpuNodeResource, name, this.namespace, want.status);
      this.remember(name, applied, want.spec, want.status);
      metrics.registryWrites.inc({ resource: 'gpunodes', verb: 'apply_status' });
    }
    this.recordGpuGauges();
  }

  private remember(name: string, applied: unknown, spec: GpuNodeSpec, status?: GpuNodeStatus): void {
    const rv = resourceVersion(applied as k8s.KubernetesObject);
    const prev = this.written.get(name);
    if (rv !== undefined) this.written.set(name, { rv, spec, ...(status ?? prev?.status ? { status: status ?? prev?.status } : {}) });
  }

  private recordGpuGauges(): void {
    this.opts.metrics.gpus.reset();
    for (const c of this.capacity()) {
      this.opts.metrics.gpus.set({ state: 'allocatable', product: c.model }, c.total);
      this.opts.metrics.gpus.set({ state: 'free', product: c.model }, c.free);
    }
  }

  /** Capacity by model, from the cluster as it is now (not from what the registry has yet). */
  private capacity(): ProviderStatus['capacity'] & object {
    const desired = this.nodes
      .list()
      .map((n) => this.desired(n.metadata?.name ?? '', this.gpuNodes.get(n.metadata?.name ?? '', this.namespace)?.status))
      .filter((d): d is { spec: GpuNodeSpec; status: GpuNodeStatus } => d !== undefined);
    return capacityByModel(desired);
  }

  /** Writes lastHeartbeatTime, capacity and version to the provider's own Provider status. */
  async heartbeat(): Promise<void> {
    const status: ProviderStatus = { lastHeartbeatTime: this.now().toISOString().replace(/\.\d{3}Z$/, 'Z'), agentVersion: this.opts.version, capacity: this.capacity() };
    try {
      await this.heartbeats.applyStatus(ProviderResource, this.opts.provider, undefined, status);
      this.opts.metrics.registryWrites.inc({ resource: 'providers', verb: 'apply_status' });
      this.lastHeartbeatOk = this.now();
      this.opts.metrics.lastHeartbeat.set(this.lastHeartbeatOk.getTime() / 1000);
    } catch (e) {
      this.opts.metrics.heartbeatFailures.inc();
      this.opts.log.warn({ err: (e as Error).message }, 'Heartbeat to the registry failed');
    }
  }
}
