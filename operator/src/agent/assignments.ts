// Runs the provider's Assignments as pods and reports back. The rules that keep jobs from being
// lost or run twice:
//  - a pod is started at most once per (assignment, epoch), and the status naming it is written to
//    the registry before the pod is created (no hold on the registry, no new pod);
//  - a pod that ran and vanished is reported lost, never re-run by the agent (the registry decides);
//  - a pod is removed for a missing Assignment only after the registry confirms, by a direct read,
//    that the Assignment is gone; a restarted agent adopts its pods instead of deleting them;
//  - a withdrawn Assignment or a newer epoch stops the old pod at once;
//  - why the agent itself stopped a pod is written down in the provider's cluster before the pod is
//    deleted (stops.ts), so a restart reports Fenced, never PodLost.
import * as k8s from '@kubernetes/client-node';
import { isDeepStrictEqual } from 'node:util';
import { AssignmentConditionType, AssignmentReason, formatTime, setCondition } from '../api/conditions.js';
import { AssignmentResource, SIM_ANNOTATION_PREFIX, type Assignment, type AssignmentStatus } from '../api/index.js';
import { assignmentEnded, assignmentLive, currentPhase, currentStatus } from '../api/assignments.js';
import type { Kube } from '../kube/client.js';
import { apiErrorMessage, isConflict, isNotFound } from '../kube/errors.js';
import { Watched, listCustom } from '../kube/informer.js';
import { RecentWrites } from '../kube/recent-writes.js';
import { Controller } from '../runtime/controller.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import { chooseNode, type FitCandidate } from '../scheduling/fit.js';
import { podRequest, reclaimDeadline } from './gpunode.js';
import { AGENT_MANAGED_BY as MANAGED_BY, ASSIGNMENT_NAME_ANNOTATION, JobLabel } from '../api/labels.js';
import { InvalidAssignmentError, assignmentStatusFromPod, buildJobPod, jobsNamespace, jobsNetworkPolicy } from './jobpod.js';
import { normalized } from '../kube/manifests.js';
import { StopLedger, copyKey, deleteJobPod, type StopReason } from './stops.js';

export { SIM_ANNOTATION_PREFIX };
/** Longer than the pod cache can lag behind our own create. */
const UNSEEN_POD_MS = 10_000;

export interface AssignmentRunnerOptions {
  provider: string;
  namespace: string;
  jobsNamespace: string;
  runtimeClassName: string;
  cluster: k8s.KubeConfig;
  registryConfig: k8s.KubeConfig;
  registry: Kube;
  /** The GPU nodes as the agent sees them now. */
  candidates: () => FitCandidate[];
  /** A Node of the provider's cluster, from the agent's cache. */
  node: (name: string) => k8s.V1Node | undefined;
  /** Whether the agent holds the registry (heartbeats got through within the fencing timeout). */
  holdsRegistry: () => boolean;
  /** When the hold ran out, if it did: the end of a fenced copy's GPU time. */
  fenceTime: () => Date | undefined;
  /** Copy sim.gpufed.io/* annotations to pods (the local federation only). */
  simulate: boolean;
  /**
   * How long after an Assignment appears a GPU shortage is retried before it is rejected: the
   * agent's own caches may still count a pod that just ended.
   */
  rejectGraceMs: number;
  /**
   * Whether the payer can pay for the job here (its grant to this provider is live and covers the
   * first settlement periods); asked before a pod is started. Default: not checked.
   */
  paymentCheck?: (a: Assignment) => Promise<{ ok: true } | { ok: false; message: string }>;
  metrics: Metrics;
  log: Logger;
  now: () => Date;
}

type AssignmentObject = Assignment & k8s.KubernetesObject;


export class AssignmentRunner {
  readonly controller: Controller;
  readonly assignments: Watched<AssignmentObject>;
  readonly pods: Watched<k8s.V1Pod>;
  private readonly core: k8s.CoreV1Api;
  /** Pods created but not seen bound yet: their GPUs are promised on the node they are pinned to. */
  private readonly unbound = new Map<string, { node: string; units: number; at: number }>();
  /** Why the agent itself stopped a pod, by (assignment uid, epoch), written down before the delete. */
  readonly stops: StopLedger;
  /** Our status writes the Assignment cache may not show yet. */
  private readonly statusWrites = new RecentWrites<AssignmentStatus>();
  /** Pods this agent created (by assignment/epoch) that the pod cache may not show yet. */
  private readonly created = new Map<string, string>();

  constructor(private readonly o: AssignmentRunnerOptions) {
    this.core = o.cluster.makeApiClient(k8s.CoreV1Api);
    this.stops = new StopLedger(this.core, o.jobsNamespace);
    this.controller = new Controller('assignment', (key) => this.reconcile(key), {
      metrics: o.metrics,
      log: o.log,
      keys: () => new Set([...this.assignments.list().map((a) => a.metadata?.name ?? ''), ...this.pods.list().map((p) => assignmentOf(p))]),
    });
    const enqueue = (name: string | undefined) => name && this.controller.enqueue(name);
    const onError = (what: string) => (err: unknown) => o.log.warn({ err: apiErrorMessage(err) }, `Watch of ${what} failed; restarting it`);
    this.assignments = new Watched<AssignmentObject>(o.registryConfig, {
      path: `/apis/${AssignmentResource.group}/${AssignmentResource.version}/namespaces/${o.namespace}/${AssignmentResource.plural}`,
      list: listCustom(o.registryConfig, AssignmentResource, o.namespace),
      onEvent: (a) => enqueue(a.metadata?.name),
      onError: onError('assignments'),
    });
    this.pods = new Watched(o.cluster, {
      path: `/api/v1/namespaces/${o.jobsNamespace}/pods`,
      list: () => this.core.listNamespacedPod({ namespace: o.jobsNamespace, labelSelector: `app.kubernetes.io/managed-by=${MANAGED_BY}` }),
      labelSelector: `app.kubernetes.io/managed-by=${MANAGED_BY}`,
      onEvent: (p) => enqueue(assignmentOf(p)),
      onError: onError('job pods'),
    });
  }

  /** Ensures the jobs namespace and its egress policy, fills the caches, starts the controller. */
  async start(cluster: Kube): Promise<void> {
    await cluster.apply(jobsNamespace(this.o.jobsNamespace));
    await cluster.apply(jobsNetworkPolicy(this.o.jobsNamespace));
    await this.stops.load();
    await Promise.all([this.assignments.start(), this.pods.start()]);
    // Stops of Assignments the registry no longer has: nobody will ask about them.
    const live = new Set(this.assignments.list().map((a) => copyKey(a.metadata?.uid ?? '', a.spec.epoch)));
    for (const key of this.stops.keys()) if (!live.has(key)) await this.stops.forget(key);
    this.controller.start();
    for (const a of this.assignments.list()) this.controller.enqueue(a.metadata?.name ?? '');
    for (const p of this.pods.list()) this.controller.enqueue(assignmentOf(p));
  }

  async stop(): Promise<void> {
    await this.controller.stop();
    await Promise.all([this.assignments.stop(), this.pods.stop()]);
  }

  /**
   * GPUs promised to pods that are not bound yet, per node. A promise ends when the pod is bound
   * (the node's free count has it then), deleted, or absent from the cache longer than a cache lag.
   */
  reserved(): Map<string, number> {
    const byNode = new Map<string, number>();
    const now = Date.now();
    for (const [name, r] of this.unbound) {
      const seen = this.pods.get(name, this.o.jobsNamespace);
      if (seen?.spec?.nodeName || (!seen && now - r.at > UNSEEN_POD_MS) || seen?.metadata?.deletionTimestamp) {
        this.unbound.delete(name);
        continue;
      }
      byNode.set(r.node, (byNode.get(r.node) ?? 0) + r.units);
    }
    return byNode;
  }

  /** Stops every running job pod: called when the agent lost its hold on the registry. */
  async fenceAll(): Promise<number> {
    let n = 0;
    for (const p of this.pods.list(this.o.jobsNamespace)) {
      if (p.metadata?.deletionTimestamp || !['Pending', 'Running'].includes(p.status?.phase ?? '')) continue;
      const key = copyKey(p.metadata?.labels?.[JobLabel.AssignmentUid] ?? '', p.metadata?.labels?.[JobLabel.Epoch] ?? '');
      await this.stopPod(p, key, AssignmentReason.Fenced, this.o.fenceTime() ?? this.o.now());
      n++;
    }
    return n;
  }

  /** Writes down why (and, for a fence, when the hold ran out), then deletes the pod. */
  private async stopPod(p: k8s.V1Pod, key: string, reason: StopReason, at: Date): Promise<void> {
    await this.stops.record(key, { reason, at });
    await this.deletePod(p, reason);
  }

  private async deletePod(p: k8s.V1Pod, why: string): Promise<void> {
    this.unbound.delete(p.metadata?.name ?? '');
    if (await deleteJobPod(this.core, this.o.jobsNamespace, p.metadata?.name ?? '')) this.o.log.info({ pod: p.metadata?.name, why }, 'Stopped job pod');
  }

  private async writeStatus(a: AssignmentObject, status: AssignmentStatus): Promise<void> {
    const want = normalized({ ...status, observedEpoch: a.spec.epoch, ...(a.metadata?.generation ? { observedGeneration: a.metadata.generation } : {}) });
    if (isDeepStrictEqual(normalized(a.status), want)) return;
    const result = await this.o.registry.applyStatus(AssignmentResource, a.metadata?.name ?? '', this.o.namespace, want);
    this.statusWrites.remember(a.metadata?.name ?? '', result, want);
    this.o.metrics.registryWrites.inc({ resource: 'assignments', verb: 'apply_status' });
  }

  private finish(a: AssignmentObject, phase: 'Failed' | 'Rejected' | 'Withdrawn', reason: string, message: string, accepted?: boolean, endedAt?: Date): AssignmentStatus {
    const now = this.o.now();
    let conditions = a.status?.conditions;
    if (accepted === false) conditions = setCondition(conditions, { type: AssignmentConditionType.Accepted, status: 'False', reason, message }, now);
    conditions = setCondition(conditions, { type: AssignmentConditionType.Finished, status: 'True', reason, message }, now);
    const { exitCode: _exit, ...rest } = a.status ?? {};
    return { ...rest, phase, reason, message, conditions, completionTime: a.status?.completionTime ?? formatTime(endedAt ?? this.o.fenceTime() ?? now) };
  }

  private recordPhases(): void {
    const counts = new Map<string, number>();
    for (const a of this.assignments.list(this.o.namespace)) {
      const phase = (this.statusWrites.newerThan(a.metadata?.name ?? '', a) ?? a.status)?.phase ?? 'Pending';
      counts.set(phase, (counts.get(phase) ?? 0) + 1);
    }
    this.o.metrics.assignments.reset();
    for (const [phase, n] of counts) this.o.metrics.assignments.set({ phase }, n);
  }

  private async reconcile(name: string): Promise<{ requeueAfterMs: number } | void> {
    try {
      return await this.reconcileOne(name);
    } finally {
      this.recordPhases();
    }
  }

  private async reconcileOne(name: string): Promise<{ requeueAfterMs: number } | void> {
    const cached = this.assignments.get(name, this.o.namespace);
    const pods = this.pods.list(this.o.jobsNamespace).filter((p) => assignmentOf(p) === name);
    if (!cached) return this.orphaned(name, pods);
    const ours = this.statusWrites.newerThan(name, cached);
    const a: AssignmentObject = ours ? { ...cached, status: ours } : cached;
    const key = copyKey(a.metadata?.uid ?? '', a.spec.epoch);
    if (assignmentEnded(a) && this.stops.get(key)) await this.stops.forget(key); // the registry has its end
    const epoch = String(a.spec.epoch);
    const stale = pods.filter((p) => p.metadata?.labels?.[JobLabel.Epoch] !== epoch);
    for (const p of stale) if (!p.metadata?.deletionTimestamp) await this.deletePod(p, 'EpochSuperseded');
    const current = pods.find((p) => p.metadata?.labels?.[JobLabel.Epoch] === epoch);
    if (a.spec.withdrawn) return this.withdraw(a, current);
    if (!current && (await this.createdButUnseen(name, a.spec.epoch))) return { requeueAfterMs: 300 };
    if (current) return this.follow(a, current);
    return this.startIfDue(a);
  }

  private async withdraw(a: AssignmentObject, current: k8s.V1Pod | undefined): Promise<void> {
    if (current && !current.metadata?.deletionTimestamp) await this.deletePod(current, 'Withdrawn');
    // A job that already ended keeps its outcome (Succeeded stays Succeeded, for billing too).
    if (assignmentEnded(a)) return;
    const reason = a.spec.withdrawnReason ?? AssignmentReason.Withdrawn;
    // Fenced before the withdrawal reached us (the registry lost us meanwhile): the copy ended at the fence.
    const fenced = this.stops.get(copyKey(a.metadata?.uid ?? '', a.spec.epoch));
    await this.writeStatus(a, this.finish(a, 'Withdrawn', reason, `The registry withdrew the job (${reason})`, undefined, fenced?.reason === AssignmentReason.Fenced ? fenced.at : undefined));
  }

  /** Reports the pod's progress; on a node its owner reclaimed, stops it at the deadline. */
  private async follow(a: AssignmentObject, pod: k8s.V1Pod): Promise<{ requeueAfterMs: number } | void> {
    if (this.stoppedAndLeaving(a, pod)) return this.reportVanished(a);
    await this.writeStatus(a, assignmentStatusFromPod(pod, this.o.now(), a.status));
    const deadline = reclaimDeadline(this.o.node(pod.spec?.nodeName ?? ''));
    if (!deadline || pod.metadata?.deletionTimestamp || !['Pending', 'Running'].includes(pod.status?.phase ?? '')) return;
    const wait = deadline.getTime() - this.o.now().getTime();
    if (wait > 0) return { requeueAfterMs: wait };
    await this.stopPod(pod, copyKey(a.metadata?.uid ?? '', a.spec.epoch), AssignmentReason.Reclaimed, this.o.now());
  }

  /** Stopped by the agent and on its way out (a real kubelet gives it the stop grace): its status says why, not how it exited. */
  private stoppedAndLeaving(a: AssignmentObject, pod: k8s.V1Pod): boolean {
    if (!this.stops.get(copyKey(a.metadata?.uid ?? '', a.spec.epoch))) return false;
    return Boolean(pod.metadata?.deletionTimestamp) || !['Pending', 'Running'].includes(pod.status?.phase ?? '');
  }

  /**
   * Stops the running jobs of a payer who cannot pay (settlement isolated them): the pods go, and
   * each Assignment ends Failed with reason PaymentExhausted, so the provider risks one period at most.
   */
  async stopUnpaid(jobs: ReadonlySet<string>): Promise<void> {
    for (const a of this.assignments.list()) {
      if (!jobs.has(`${a.spec.jobRef.namespace}/${a.spec.jobRef.name}`) || !assignmentLive(a)) continue;
      const key = copyKey(a.metadata?.uid ?? '', a.spec.epoch);
      await this.stops.record(key, { reason: AssignmentReason.PaymentExhausted, at: this.o.now() });
      for (const p of this.pods.list(this.o.jobsNamespace)) if (assignmentOf(p) === a.metadata?.name && !p.metadata?.deletionTimestamp) await this.deletePod(p, AssignmentReason.PaymentExhausted);
      this.controller.enqueue(a.metadata?.name ?? '');
    }
  }

  /** The assignments of the job pods on a node (a node change may concern them, e.g. reclaim). */
  enqueueNode(nodeName: string): void {
    for (const p of this.pods.list(this.o.jobsNamespace)) if (p.spec?.nodeName === nodeName) this.controller.enqueue(assignmentOf(p));
  }

  /** It ran and its pod is gone (fenced, reclaimed, evicted, deleted by hand): report it, never re-run it. */
  private async reportVanished(a: AssignmentObject): Promise<void> {
    const key = copyKey(a.metadata?.uid ?? '', a.spec.epoch);
    const by = this.stops.get(key);
    const message = by ? STOPPED_BY_AGENT[by.reason] ?? `The agent stopped the job (${by.reason})` : 'The job pod disappeared while it ran';
    // A fence ends the copy's GPU time where the hold ran out; other stops where the agent stopped it.
    await this.writeStatus(a, this.finish(a, 'Failed', by?.reason ?? AssignmentReason.PodLost, message, undefined, by?.reason === AssignmentReason.Fenced ? by.at : undefined));
    await this.stops.forget(key); // the registry has it now
  }

  /** Whether we created this epoch's pod and it exists, only not in the pod cache yet. */
  private async createdButUnseen(name: string, epoch: number): Promise<boolean> {
    const key = `${name}/${epoch}`;
    const podName = this.created.get(key);
    if (podName === undefined) return false;
    if (this.pods.get(podName, this.o.jobsNamespace)) {
      this.created.delete(key);
      return false;
    }
    try {
      await this.core.readNamespacedPod({ name: podName, namespace: this.o.jobsNamespace });
      return true;
    } catch (e) {
      if (!isNotFound(e)) throw e;
      this.created.delete(key); // it is really gone
      return false;
    }
  }

  /** No pod for the current epoch: start one if it never started, else say what happened. */
  private async startIfDue(a: AssignmentObject): Promise<{ requeueAfterMs: number } | void> {
    const phase = currentPhase(a);
    if (assignmentEnded(a)) return;
    // It ran, or the agent stopped it itself: report what happened, never start it again.
    if (phase === 'Running' || this.stops.get(copyKey(a.metadata?.uid ?? '', a.spec.epoch))) return this.reportVanished(a);
    if (!this.o.holdsRegistry()) return { requeueAfterMs: 2000 };
    const fit = chooseNode(a.spec.resources.gpu, a.spec.model, this.o.candidates(), this.reserved(), a.spec.nodeName);
    if (!fit.fits) return this.rejectUnlessShortLived(a, fit.reason, fit.message);
    if (await this.rejectedUnpaid(a)) return;
    let pod: k8s.V1Pod;
    try {
      pod = this.podFor(a, fit.resourceName, fit.nodeName);
    } catch (e) {
      if (!(e instanceof InvalidAssignmentError)) throw e;
      await this.writeStatus(a, this.finish(a, 'Rejected', e.reason, e.message, false));
      return;
    }
    await this.create(a, pod, fit.nodeName, fit.resourceName);
  }

  /** Rejects the Assignment when its payer cannot pay for it here; true when it did. */
  private async rejectedUnpaid(a: AssignmentObject): Promise<boolean> {
    const paid = await this.o.paymentCheck?.(a);
    if (!paid || paid.ok) return false;
    await this.writeStatus(a, this.finish(a, 'Rejected', AssignmentReason.GrantInsufficient, paid.message, false));
    this.o.log.info({ assignment: a.metadata?.name, payer: a.spec.payer }, 'Rejected assignment: the payer cannot pay');
    return true;
  }

  /** Rejects, except a GPU shortage young enough to be a stale count: that is retried first. */
  private async rejectUnlessShortLived(a: AssignmentObject, reason: AssignmentReason, message: string): Promise<{ requeueAfterMs: number } | void> {
    const age = this.o.now().getTime() - Date.parse(a.metadata?.creationTimestamp?.toString() ?? '');
    if (reason === AssignmentReason.InsufficientGpus && age < this.o.rejectGraceMs) return { requeueAfterMs: 1000 };
    await this.writeStatus(a, this.finish(a, 'Rejected', reason, message, false));
    this.o.log.info({ assignment: a.metadata?.name, reason }, 'Rejected assignment');
  }

  private podFor(a: AssignmentObject, resourceName: string, nodeName: string): k8s.V1Pod {
    const annotations = this.o.simulate ? { annotations: simAnnotations(a) } : {};
    return buildJobPod(a, { namespace: this.o.jobsNamespace, runtimeClassName: this.o.runtimeClassName, resourceName, provider: this.o.provider, nodeName, ...annotations });
  }

  private async create(a: AssignmentObject, pod: k8s.V1Pod, nodeName: string, resourceName: string): Promise<void> {
    const podName = pod.metadata?.name ?? '';
    // Say which pod will run before creating it: a crash in between leaves an Accepted
    // assignment whose pod is simply created on the next pass, never a pod nobody knows of.
    // A new epoch starts from a clean status: nothing of the previous placement carries over.
    const previous = currentStatus(a);
    const accepted: AssignmentStatus = {
      ...(previous ?? {}),
      phase: 'Accepted',
      podName,
      nodeName,
      reason: AssignmentReason.PodCreated,
      message: `Starting on ${nodeName}`,
      conditions: setCondition(previous?.conditions, { type: AssignmentConditionType.Accepted, status: 'True', reason: AssignmentReason.PodCreated, message: `The job's pod ${podName} is created on ${nodeName}` }, this.o.now()),
    };
    await this.writeStatus(a, accepted);
    try {
      await this.core.createNamespacedPod({ namespace: this.o.jobsNamespace, body: pod });
      this.o.log.info({ assignment: a.metadata?.name, pod: podName, node: nodeName }, 'Started job pod');
    } catch (e) {
      if (!isConflict(e)) throw e; // already there: adopt it
    }
    this.created.set(`${a.metadata?.name}/${a.spec.epoch}`, podName);
    this.unbound.set(podName, { node: nodeName, units: podRequest(pod, resourceName), at: Date.now() });
  }

  /** The Assignment is not in the cache: remove its pods only if the registry says it is gone. */
  private async orphaned(name: string, pods: k8s.V1Pod[]): Promise<{ requeueAfterMs: number } | void> {
    const live = pods.filter((p) => !p.metadata?.deletionTimestamp);
    if (live.length === 0) return;
    const onRegistry = await this.o.registry.getCustom(AssignmentResource, name, this.o.namespace); // throws when unreachable: retried
    if (onRegistry) return { requeueAfterMs: 1000 }; // the cache is behind
    for (const p of live) await this.deletePod(p, 'AssignmentDeleted');
  }
}


/** Why the agent itself stopped a job, as the Assignment's message says it. */
const STOPPED_BY_AGENT: Record<string, string> = {
  [AssignmentReason.Fenced]: 'The agent lost its hold on the registry and stopped the job',
  [AssignmentReason.Reclaimed]: "The provider's owner reclaimed the node and the grace period ran out",
  [AssignmentReason.PaymentExhausted]: "The renter's grant or balance could not pay for the job's GPU time, so the agent stopped it",
};

/** The Assignment a job pod belongs to (full name, from the annotation). */
export function assignmentOf(p: k8s.V1Pod): string {
  return p.metadata?.annotations?.[ASSIGNMENT_NAME_ANNOTATION] ?? p.metadata?.labels?.[JobLabel.Assignment] ?? '';
}

function simAnnotations(a: AssignmentObject): Record<string, string> {
  return Object.fromEntries(Object.entries(a.metadata?.annotations ?? {}).filter(([k]) => k.startsWith(SIM_ANNOTATION_PREFIX)));
}
