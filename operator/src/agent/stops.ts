// Why the agent itself stopped a job pod (Fenced, Reclaimed, PaymentExhausted), written down in
// the provider's own cluster before the pod is deleted, as the Assignment's status is written
// before a pod is created. The provider's API server, not the registry: a fenced agent has lost the
// registry by definition, and must still be able to say afterwards, even from a restarted
// process, that the pod went because it fenced it (not PodLost, a provider fault) and when its
// hold ran out (the end of the copy's GPU time). Withdrawals need no entry: the Assignment's spec
// says so.
//
// One ConfigMap per stop, in the jobs namespace (job pods carry no service-account token), named by
// the Assignment's uid and epoch: created before the delete (an existing one means it is written),
// read back at start-up, deleted once the Assignment's status says how the copy ended.
import * as k8s from '@kubernetes/client-node';
import { AssignmentReason } from '../api/conditions.js';
import { AGENT_MANAGED_BY } from '../api/labels.js';
import { isConflict, isNotFound } from '../kube/errors.js';
import { JOB_STOP_GRACE_SECONDS } from '../fencing/bound.js';

export type StopReason = typeof AssignmentReason.Fenced | typeof AssignmentReason.Reclaimed | typeof AssignmentReason.PaymentExhausted;

export interface Stop {
  reason: StopReason;
  /** When the copy's GPU time ended as the agent sees it: the fence (hold ran out), or the moment it stopped the pod. */
  at: Date;
}

/** The label that marks a stop ConfigMap, and the value. */
export const STOP_LABEL = 'gpufed.io/stop';
const REASONS: readonly string[] = [AssignmentReason.Fenced, AssignmentReason.Reclaimed, AssignmentReason.PaymentExhausted];

/** The key of a copy: its Assignment's uid and epoch. */
export const copyKey = (assignmentUid: string, epoch: string | number) => `${assignmentUid}/${epoch}`;

/** The ConfigMap name for a copy (uids are lowercase hex and dashes: a valid name as they are). */
export const stopConfigMapName = (key: string) => `gpufed-stop-${key.replace('/', '-')}`;

/** Deletes a job pod with the stop grace the registry's provider-lost timeout counts on; false when it was gone already. */
export async function deleteJobPod(core: k8s.CoreV1Api, namespace: string, name: string): Promise<boolean> {
  try {
    await core.deleteNamespacedPod({ name, namespace, gracePeriodSeconds: JOB_STOP_GRACE_SECONDS });
    return true;
  } catch (e) {
    if (isNotFound(e)) return false;
    throw e;
  }
}

export class StopLedger {
  /** What is written, mirrored: loaded at start, added to only after the write succeeded. */
  private readonly stops = new Map<string, Stop>();

  constructor(
    private readonly core: k8s.CoreV1Api,
    private readonly namespace: string,
  ) {}

  /** Reads every stop written before (by this process or an earlier one). */
  async load(): Promise<void> {
    const list = await this.core.listNamespacedConfigMap({ namespace: this.namespace, labelSelector: `${STOP_LABEL}=true` });
    for (const cm of list.items) {
      const key = cm.data?.copy;
      const reason = cm.data?.reason;
      const at = Date.parse(cm.data?.at ?? '');
      if (key && reason && REASONS.includes(reason) && Number.isFinite(at)) this.stops.set(key, { reason: reason as StopReason, at: new Date(at) });
    }
  }

  get(key: string): Stop | undefined {
    return this.stops.get(key);
  }

  /** Every copy with a stop written down. */
  keys(): string[] {
    return [...this.stops.keys()];
  }

  /** Writes the stop down; the first one written for a copy stands (a later reason never overwrites it). */
  async record(key: string, stop: Stop): Promise<Stop> {
    const have = this.stops.get(key);
    if (have) return have;
    const body: k8s.V1ConfigMap = {
      metadata: { name: stopConfigMapName(key), namespace: this.namespace, labels: { [STOP_LABEL]: 'true', 'app.kubernetes.io/managed-by': AGENT_MANAGED_BY } },
      data: { copy: key, reason: stop.reason, at: stop.at.toISOString() },
    };
    try {
      await this.core.createNamespacedConfigMap({ namespace: this.namespace, body });
      this.stops.set(key, stop);
      return stop;
    } catch (e) {
      if (!isConflict(e)) throw e;
      // Written before (by an earlier process whose load this one missed): that one stands.
      await this.load();
      return this.stops.get(key) ?? stop;
    }
  }

  /** Forgets a copy whose end the registry has now. */
  async forget(key: string): Promise<void> {
    if (!this.stops.has(key)) return;
    try {
      await this.core.deleteNamespacedConfigMap({ name: stopConfigMapName(key), namespace: this.namespace });
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
    this.stops.delete(key);
  }
}
