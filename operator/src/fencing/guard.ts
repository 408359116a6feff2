// The fence guard: a process of its own in the provider's cluster that stops the job pods when the
// registry has stopped hearing from this provider, whatever the agent is doing (alive, frozen by
// a GC pause or a suspended VM, killed, crash-looping, or cut off from the registry). It watches
// what the registry watches, the provider's heartbeat Lease on the registry, and times it the way
// the registry does: by when it saw the Lease change, on its own monotonic clock. When it saw no
// change for the fencing timeout (or cannot read the Lease at all for that long) it writes down why
// (stops.ts) and deletes every job pod, as the agent's own fence does.
//
// Why this holds the inequality of bound.ts: the registry declares the provider lost L after the
// last change it saw; the guard saw that change no later than one poll after it happened (a read
// that takes longer than a poll is not counted as seeing anything), so it fences within
// F + POLL after the change, and the pod is gone G later. The poll is inside the clock margin S.
import * as k8s from '@kubernetes/client-node';
import { performance } from 'node:perf_hooks';
import { AssignmentReason } from '../api/conditions.js';
import { HEARTBEAT_LEASE, JobLabel, AGENT_MANAGED_BY } from '../api/labels.js';
import { isNotFound } from '../kube/errors.js';
import { StopLedger, copyKey, deleteJobPod } from '../agent/stops.js';
import type { Logger } from '../telemetry/log.js';
import { FENCE_CHECK_MS } from './bound.js';

export interface FenceGuardOptions {
  /** The provider's namespace on the registry (where the heartbeat Lease is). */
  namespace: string;
  /** The registry, with the agent's scoped credentials (the guard only reads the Lease). */
  registry: k8s.KubeConfig;
  /** The provider's own cluster. */
  cluster: k8s.KubeConfig;
  /** The local namespace job pods run in. */
  jobsNamespace: string;
  /** The agents' fencing timeout. */
  fencingTimeoutMs: number;
  /** How often the Lease is read (default FENCE_CHECK_MS); a read slower than this sees nothing. */
  pollMs?: number;
  log: Logger;
  now?: () => Date;
  monotonicMs?: () => number;
}

export class FenceGuard {
  private readonly coordination: k8s.CoordinationV1Api;
  private readonly core: k8s.CoreV1Api;
  private readonly stops: StopLedger;
  private readonly now: () => Date;
  private readonly mono: () => number;
  private timer?: NodeJS.Timeout;
  private round?: Promise<void>;
  /** The Lease as last seen, and when (monotonic) it was first seen so. */
  private seen?: { version: string; atMs: number };
  /** When the guard started: until it sees a change, the hold counts from here. */
  private readonly startedMs: number;
  /** Pods stopped so far (for tests and the log). */
  fenced = 0;

  constructor(private readonly o: FenceGuardOptions) {
    this.coordination = o.registry.makeApiClient(k8s.CoordinationV1Api);
    this.core = o.cluster.makeApiClient(k8s.CoreV1Api);
    this.stops = new StopLedger(this.core, o.jobsNamespace);
    this.now = o.now ?? (() => new Date());
    this.mono = o.monotonicMs ?? (() => performance.now());
    this.startedMs = this.mono();
  }

  get pollMs(): number {
    return this.o.pollMs ?? FENCE_CHECK_MS;
  }

  start(): void {
    this.timer = setInterval(() => void this.step(), this.pollMs);
  }

  async stop(): Promise<void> {
    if (this.timer) clearInterval(this.timer);
    await this.round;
  }

  /** Whether the registry heard from the provider within the fencing timeout, as far as the guard can tell. */
  holds(): boolean {
    return this.mono() - (this.seen?.atMs ?? this.startedMs) < this.o.fencingTimeoutMs;
  }

  /** One poll, then a fence if the hold ran out. Never two at once. */
  step(): Promise<void> {
    if (this.round) return this.round;
    this.round = (async () => {
      await this.observe();
      if (!this.holds()) await this.fence();
    })().finally(() => (this.round = undefined));
    return this.round;
  }

  /** Reads the heartbeat Lease; a change counts from the moment the read was sent (never later than the change plus one poll). */
  private async observe(): Promise<void> {
    const sentMs = this.mono();
    let version: string | undefined;
    try {
      const lease = await withTimeout(this.coordination.readNamespacedLease({ name: HEARTBEAT_LEASE, namespace: this.o.namespace }), this.pollMs);
      version = lease?.metadata?.resourceVersion;
    } catch (e) {
      if (!isNotFound(e)) this.o.log.debug({ err: (e as Error).message }, 'Could not read the heartbeat Lease');
      return;
    }
    if (version === undefined) return; // too slow to count
    if (this.seen?.version !== version) this.seen = { version, atMs: sentMs };
  }

  /** Writes down each copy's fence and deletes every running job pod. */
  private async fence(): Promise<void> {
    const pods = await this.core.listNamespacedPod({ namespace: this.o.jobsNamespace, labelSelector: `${JobLabel.ManagedBy}=${AGENT_MANAGED_BY}` });
    const live = pods.items.filter((p) => !p.metadata?.deletionTimestamp && ['Pending', 'Running'].includes(p.status?.phase ?? ''));
    if (live.length === 0) return;
    // The end of the copies' GPU time: where the hold ran out, placed on the wall clock only for the record.
    const at = new Date(this.now().getTime() - (this.mono() - (this.seen?.atMs ?? this.startedMs)) + this.o.fencingTimeoutMs);
    await this.stops.load();
    for (const p of live) {
      await this.stops.record(copyKey(p.metadata?.labels?.[JobLabel.AssignmentUid] ?? '', p.metadata?.labels?.[JobLabel.Epoch] ?? ''), { reason: AssignmentReason.Fenced, at });
      if (await deleteJobPod(this.core, this.o.jobsNamespace, p.metadata?.name ?? '')) this.fenced++;
      this.o.log.warn({ pod: p.metadata?.name, holdEnded: at.toISOString() }, 'Fenced job pod: the registry has not heard from this provider for the fencing timeout');
    }
  }
}

/** The promise's value, or undefined when it takes longer than `ms` (its late answer is dropped). */
async function withTimeout<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: NodeJS.Timeout | undefined;
  const late = new Promise<undefined>((r) => (timer = setTimeout(() => r(undefined), ms)));
  try {
    return await Promise.race([p, late]);
  } finally {
    clearTimeout(timer);
  }
}
