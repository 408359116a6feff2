// The operator in agent mode: runs in a provider's cluster and talks to the registry outbound only.
// Registration: one GpuNode per GPU node in the provider's namespace on the registry, written only
// when the cluster changed; a heartbeat Lease in that namespace, renewed every --heartbeat (the
// kubelet's node-lease pattern). The agent writes nothing about its own standing: the registry
// times the heartbeat by its own clock and computes the Provider's status itself.
import * as k8s from '@kubernetes/client-node';
import { isDeepStrictEqual } from 'node:util';
import { hostname } from 'node:os';
import { performance } from 'node:perf_hooks';
import { FENCE_CHECK_MS } from '../fencing/bound.js';
import { GpuNodeResource, providerNamespace, type GpuNode, type GpuNodeSpec, type GpuNodeStatus, type ProviderStatus } from '../api/index.js';
import { AGENT_VERSION_ANNOTATION, HEARTBEAT_LEASE, HOT_KEY_ANNOTATION } from '../api/labels.js';
import { Kube } from '../kube/client.js';
import { apiErrorMessage } from '../kube/errors.js';
import { Watched, listCustom } from '../kube/informer.js';
import { RecentWrites } from '../kube/recent-writes.js';
import { Controller } from '../runtime/controller.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import { Billing, hotKeyAnnouncement, type BillingOptions } from './billing.js';
import { capacityByModel } from '../scheduling/capacity.js';
import { AssignmentRunner } from './assignments.js';
import { gpuNodeSpec, gpuNodeStatus, isGpuNode } from './gpunode.js';
import { DEFAULT_LOG_EVERY_MS, KubeLogSource, LOG_FIELD_MANAGER, LogPusher, SimulatedLogSource, registryLogStore, type LogSource } from './joblogs.js';

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
  /** Stop running job pods when no heartbeat got through for this long (default 2 min). */
  fencingTimeoutMs?: number;
  /** The local namespace job pods run in (default gpufed-jobs). */
  jobsNamespace?: string;
  /** The RuntimeClass of the NVIDIA container runtime (default nvidia). */
  runtimeClassName?: string;
  /** Copy sim.gpufed.io/* annotations from Assignments to pods (the local federation's KWOK). */
  simulate?: boolean;
  /** Retry a GPU shortage this long before rejecting an Assignment (default 10 s). */
  rejectGraceMs?: number;
  /** Where job logs are read (default the pod log API of the provider's cluster; KWOK pods have none). */
  logSource?: LogSource;
  /** How often running jobs' log tails are pushed to the registry when they changed (default 5 s). */
  logEveryMs?: number;
  /** Metering from the provider's Prometheus and settlement on chain; off when absent. */
  billing?: BillingOptions;
  version: string;
  metrics: Metrics;
  log: Logger;
  now?: () => Date;
  /** Milliseconds on a clock that never jumps (default performance.now()): the hold on the registry is timed on it. */
  monotonicMs?: () => number;
}

export const AGENT_FIELD_MANAGER = 'gpufed-agent';

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
  readonly runner: AssignmentRunner;
  /** Pushes job log tails to the registry (see joblogs.ts). */
  private readonly logs: LogPusher;
  /** Metering and settlement, when configured. */
  readonly billing?: Billing;
  private readonly cluster: Kube;
  private heartbeatTimer?: NodeJS.Timeout;
  private heartbeatInFlight?: Promise<void>;
  private fenceTimer?: NodeJS.Timeout;
  private fencing?: Promise<void>;
  private readonly now: () => Date;
  private readonly monotonicMs: () => number;
  /** When the registry last accepted a heartbeat, by the wall clock (for people and metrics only). */
  lastHeartbeatOk?: Date;
  /**
   * When the last heartbeat the registry accepted was sent, on the monotonic clock: the hold on the
   * registry. Timed from the send, not the reply: the registry cannot have seen it earlier, so a
   * reply that comes late (or after a freeze) never stretches the hold past what the registry allows.
   */
  private heldFromMs?: number;
  /** This process in the heartbeat Lease. */
  private readonly identity = `${hostname()}_${process.pid}`;
  /** The version, and the hot key's public key the registry builds the settlement account from. */
  private get leaseAnnotations(): Record<string, string> {
    return { [AGENT_VERSION_ANNOTATION]: this.opts.version, ...(this.opts.billing ? { [HOT_KEY_ANNOTATION]: hotKeyAnnouncement(this.opts.billing.key) } : {}) };
  }
  /** Our own GpuNode writes the watch cache may not show yet (else a status would be written twice). */
  private readonly written = new RecentWrites<{ spec: GpuNodeSpec; status?: GpuNodeStatus }>();

  constructor(private readonly opts: AgentOptions) {
    this.namespace = opts.namespace ?? providerNamespace(opts.provider);
    this.now = opts.now ?? (() => new Date());
    this.monotonicMs = opts.monotonicMs ?? (() => performance.now());
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
    const onError = (what: string) => (err: unknown) => opts.log.warn({ err: apiErrorMessage(err) }, `Watch of ${what} failed; restarting it`);
    this.nodes = new Watched(opts.cluster, {
      path: '/api/v1/nodes',
      list: () => core.listNode(),
      onEvent: (n) => {
        enqueue(n.metadata?.name);
        this.runner.enqueueNode(n.metadata?.name ?? ''); // e.g. reclaimed: its jobs' grace starts
      },
      onError: onError('nodes'),
    });
    this.pods = new Watched(opts.cluster, { path: '/api/v1/pods', list: () => core.listPodForAllNamespaces(), onEvent: (p) => enqueue(p.spec?.nodeName), onError: onError('pods') });
    this.cluster = new Kube(opts.cluster, AGENT_FIELD_MANAGER);
    this.runner = new AssignmentRunner({
      provider: opts.provider,
      namespace: this.namespace,
      jobsNamespace: opts.jobsNamespace ?? 'gpufed-jobs',
      runtimeClassName: opts.runtimeClassName ?? 'nvidia',
      cluster: opts.cluster,
      registryConfig: opts.registry,
      registry: new Kube(opts.registry, `${AGENT_FIELD_MANAGER}/assignments`),
      candidates: () => this.gpuNodesNow(),
      node: (name) => this.nodes.get(name),
      holdsRegistry: () => this.holdsRegistry(),
      fenceTime: () => this.fenceTime(),
      simulate: opts.simulate ?? false,
      rejectGraceMs: opts.rejectGraceMs ?? 10_000,
      ...(opts.billing ? { paymentCheck: (a) => (this.billing as Billing).paymentCheck(a) } : {}),
      metrics: opts.metrics,
      log: opts.log,
      now: this.now,
    });
    if (opts.billing) {
      this.billing = new Billing({
        ...opts.billing,
        provider: opts.provider,
        namespace: this.namespace,
        jobsNamespace: opts.jobsNamespace ?? 'gpufed-jobs',
        registry: opts.registry,
        assignments: () => this.runner.assignments.list(),
        stopUnpaid: (jobs) => this.runner.stopUnpaid(jobs),
        metrics: opts.metrics,
        log: opts.log,
        now: this.now,
      });
    }
    this.gpuNodes = new Watched<GpuNode & k8s.KubernetesObject>(opts.registry, {
      path: `/apis/${GpuNodeResource.group}/${GpuNodeResource.version}/namespaces/${this.namespace}/${GpuNodeResource.plural}`,
      list: listCustom(opts.registry, GpuNodeResource, this.namespace),
      onEvent: (g) => enqueue(g.metadata?.name),
      onError: onError('gpunodes'),
    });
    // Job logs: the registry cannot reach this cluster, so the agent pushes each job's log tail.
    this.logs = new LogPusher({
      namespace: this.namespace,
      source: opts.logSource ?? (opts.simulate ? new SimulatedLogSource() : new KubeLogSource(core)),
      store: registryLogStore(new Kube(opts.registry, LOG_FIELD_MANAGER)),
      metrics: opts.metrics,
      log: opts.log,
      now: this.now,
    });
    this.runner.pods.cache.on(k8s.UPDATE, (p) => this.logs.podChanged(p));
  }

  async start(): Promise<void> {
    this.opts.metrics.buildInfo.set({ version: this.opts.version, mode: 'agent' }, 1);
    await Promise.all([this.nodes.start(), this.pods.start(), this.gpuNodes.start()]);
    this.registration.start();
    for (const n of this.nodes.list()) this.registration.enqueue(n.metadata?.name ?? '');
    for (const g of this.gpuNodes.list()) this.registration.enqueue(g.metadata?.name ?? '');
    await this.heartbeat();
    await this.runner.start(this.cluster);
    this.logs.start(() => this.runner.pods.list(this.opts.jobsNamespace ?? 'gpufed-jobs'), this.opts.logEveryMs ?? DEFAULT_LOG_EVERY_MS);
    this.heartbeatTimer = setInterval(() => void this.tick(), this.opts.heartbeatMs ?? 10_000);
    // Checked on a timer of its own, often: a process that wakes from a freeze fences at once,
    // before any heartbeat sent after the wake could be answered.
    this.fenceTimer = setInterval(() => void this.fenceIfLost(), FENCE_CHECK_MS);
    this.billing?.start();
    this.opts.log.info({ provider: this.opts.provider, namespace: this.namespace }, 'Started agent');
  }

  async stop(): Promise<void> {
    if (this.heartbeatTimer) clearInterval(this.heartbeatTimer);
    if (this.fenceTimer) clearInterval(this.fenceTimer);
    await this.fencing;
    await this.billing?.stop();
    await this.logs.stop();
    await this.runner.stop();
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
    if (!cached) return undefined;
    const mine = this.written.newerThan(name, cached);
    if (mine) return { spec: mine.spec, status: mine.status ?? cached.status, labels: gpuNodeLabels(this.opts.provider) };
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
        this.written.forget(name);
        metrics.registryWrites.inc({ resource: 'gpunodes', verb: 'delete' });
        log.info({ node: name }, 'Removed GPU node from the registry');
      }
      return;
    }
    const labels = gpuNodeLabels(this.opts.provider);
    const labelsMatch = Object.entries(labels).every(([k, v]) => existing?.labels?.[k] === v);
    if (!existing || !labelsMatch || !isDeepStrictEqual(existing.spec, want.spec)) {
      const applied = await this.registry.apply({ apiVersion: GpuNodeResource.apiVersion, kind: GpuNodeResource.kind, metadata: { name, namespace: this.namespace, labels }, spec: want.spec });
      this.written.remember(name, applied, { spec: want.spec, ...(existing?.status ? { status: existing.status } : {}) });
      metrics.registryWrites.inc({ resource: 'gpunodes', verb: 'apply' });
      log.info({ node: name, product: want.spec.product, resource: want.spec.resourceName }, existing ? 'Updated GPU node on the registry' : 'Registered GPU node');
    }
    if (!isDeepStrictEqual(existing?.status, want.status)) {
      const applied = await this.registry.applyStatus(GpuNodeResource, name, this.namespace, want.status);
      this.written.remember(name, applied, { spec: want.spec, status: want.status });
      metrics.registryWrites.inc({ resource: 'gpunodes', verb: 'apply_status' });
    }
    this.recordGpuGauges();
  }

  private recordGpuGauges(): void {
    this.opts.metrics.gpus.reset();
    for (const c of this.capacity()) {
      this.opts.metrics.gpus.set({ state: 'allocatable', product: c.model }, c.total);
      this.opts.metrics.gpus.set({ state: 'free', product: c.model }, c.free);
    }
  }

  /** Every GPU node as the cluster has it now (not as the registry has it yet). */
  private gpuNodesNow(): { spec: GpuNodeSpec; status: GpuNodeStatus }[] {
    return this.nodes
      .list()
      .map((n) => this.desired(n.metadata?.name ?? '', this.gpuNodes.get(n.metadata?.name ?? '', this.namespace)?.status))
      .filter((d): d is { spec: GpuNodeSpec; status: GpuNodeStatus } => d !== undefined);
  }

  private capacity(): NonNullable<ProviderStatus['capacity']> {
    return capacityByModel(this.gpuNodesNow());
  }

  /**
   * When the hold on the registry ran out (the last heartbeat that got through plus the fencing
   * timeout): a copy stopped for want of it is billed up to here, not to the moment the agent
   * noticed (a frozen process notices late). Undefined while the agent holds the registry.
   */
  fenceTime(): Date | undefined {
    if (this.holdsRegistry()) return undefined;
    if (this.heldFromMs === undefined) return this.now();
    // The wall clock only places the end for the record; how long ago it was comes from the monotonic clock.
    return new Date(this.now().getTime() - (this.monotonicMs() - this.heldFromMs) + this.fencingTimeoutMs);
  }

  private get fencingTimeoutMs(): number {
    return this.opts.fencingTimeoutMs ?? 120_000;
  }

  /** The agent holds the registry while a heartbeat it sent less than the fencing timeout ago was accepted. */
  holdsRegistry(): boolean {
    return this.heldFromMs !== undefined && this.monotonicMs() - this.heldFromMs < this.fencingTimeoutMs;
  }

  /** One heartbeat, unless the last is still in flight (an unreachable registry can hang a request). */
  private tick(): void {
    if (this.heartbeatInFlight) return;
    this.heartbeatInFlight = this.heartbeat().finally(() => (this.heartbeatInFlight = undefined));
  }

  /** Fencing, which never waits on the registry: without a hold the registry may have placed our jobs elsewhere, so they stop here. */
  private async fenceIfLost(): Promise<void> {
    if (this.fencing || this.holdsRegistry()) return;
    this.fencing = (async () => {
      try {
        const stopped = await this.runner.fenceAll();
        if (stopped > 0) this.opts.log.warn({ stopped, since: this.lastHeartbeatOk?.toISOString() }, 'Lost the hold on the registry; stopped running jobs');
      } catch (e) {
        this.opts.log.error({ err: apiErrorMessage(e) }, 'Fencing failed; trying again');
      }
    })().finally(() => (this.fencing = undefined));
    await this.fencing;
  }

  /**
   * Renews the heartbeat Lease. What it holds is for people (the holder, the version, the fencing
   * timeout as the lease duration); the registry reads none of it as a fact, only that it changed.
   */
  async heartbeat(): Promise<void> {
    const now = this.now();
    const sentMs = this.monotonicMs();
    const lease = {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: HEARTBEAT_LEASE, namespace: this.namespace, labels: { 'app.kubernetes.io/managed-by': 'gpufed-agent' }, annotations: this.leaseAnnotations },
      spec: { holderIdentity: this.identity, leaseDurationSeconds: Math.ceil((this.opts.fencingTimeoutMs ?? 120_000) / 1000), renewTime: microTime(now) },
    };
    try {
      await this.heartbeats.apply(lease);
      this.opts.metrics.registryWrites.inc({ resource: 'leases', verb: 'apply' });
      this.heldFromMs = Math.max(this.heldFromMs ?? sentMs, sentMs);
      this.lastHeartbeatOk = this.now();
      this.opts.metrics.lastHeartbeat.set(this.lastHeartbeatOk.getTime() / 1000);
    } catch (e) {
      this.opts.metrics.heartbeatFailures.inc();
      this.opts.log.warn({ err: (e as Error).message }, 'Heartbeat to the registry failed');
    }
  }
}

/** metav1.MicroTime: RFC 3339 with six fractional digits. */
function microTime(d: Date): string {
  return d.toISOString().replace(/Z$/, '000Z');
}
