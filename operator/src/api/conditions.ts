// Condition types and reasons of every gpufed kind, and the one helper that sets a condition.
// Each controller owns its conditions (STYLE.md): only the writer named beside a type sets it.
// Reasons are CamelCase and stable: programs, alerts and tests match on them; messages are for
// humans and may change.
import type { Condition, ConditionStatus } from './types.generated.js';

/** ComputeJob condition types, all written by the registry. */
export const ComputeJobConditionType = {
  /** Placed on a provider: an Assignment exists for the current epoch. */
  Scheduled: 'Scheduled',
  /** The job's pod runs on the provider. */
  Running: 'Running',
  /** The job finished with exit code 0. */
  Succeeded: 'Succeeded',
  /** The job finished otherwise and will not be retried. */
  Failed: 'Failed',
  /** Everything metered for the job is paid on chain. */
  Settled: 'Settled',
} as const;
export type ComputeJobConditionType = (typeof ComputeJobConditionType)[keyof typeof ComputeJobConditionType];

export const ComputeJobReason = {
  // Scheduled
  Placed: 'Placed',
  NoMatchingProvider: 'NoMatchingProvider',
  TenantNotVerified: 'TenantNotVerified',
  GrantInsufficient: 'GrantInsufficient',
  AssignmentRejected: 'AssignmentRejected',
  ProviderLost: 'ProviderLost',
  // Running
  PodPending: 'PodPending',
  PodRunning: 'PodRunning',
  PodFinished: 'PodFinished',
  // Succeeded / Failed
  Completed: 'Completed',
  ContainerFailed: 'ContainerFailed',
  DeadlineExceeded: 'DeadlineExceeded',
  RetriesExhausted: 'RetriesExhausted',
  PaymentExhausted: 'PaymentExhausted',
  Cancelled: 'Cancelled',
  // Settled
  SettlementPending: 'SettlementPending',
  SettlementCommitted: 'SettlementCommitted',
} as const;
export type ComputeJobReason = (typeof ComputeJobReason)[keyof typeof ComputeJobReason];

/** Tenant condition types, written by the registry. */
export const TenantConditionType = {
  /** The proof's signature is valid for spec.address over spec.proof.challenge. */
  Verified: 'Verified',
} as const;
export type TenantConditionType = (typeof TenantConditionType)[keyof typeof TenantConditionType];

export const TenantReason = {
  SignatureValid: 'SignatureValid',
  SignatureInvalid: 'SignatureInvalid',
  PubKeyAddressMismatch: 'PubKeyAddressMismatch',
  /** The challenge does not name this namespace and address (a proof made for another binding). */
  ChallengeMismatch: 'ChallengeMismatch',
  /** A field of the proof is not valid base64, bech32 or key material. */
  Malformed: 'Malformed',
  NamespaceNotFound: 'NamespaceNotFound',
} as const;
export type TenantReason = (typeof TenantReason)[keyof typeof TenantReason];

/** Provider condition types, written by the registry from the agent's heartbeat. */
export const ProviderConditionType = {
  /** Heartbeat fresh, not cordoned, at least one priced GPU: new jobs may be placed. */
  Ready: 'Ready',
} as const;
export type ProviderConditionType = (typeof ProviderConditionType)[keyof typeof ProviderConditionType];

export const ProviderReason = {
  HeartbeatFresh: 'HeartbeatFresh',
  HeartbeatStale: 'HeartbeatStale',
  NeverHeartbeated: 'NeverHeartbeated',
  Cordoned: 'Cordoned',
  NoPricedGpus: 'NoPricedGpus',
} as const;
export type ProviderReason = (typeof ProviderReason)[keyof typeof ProviderReason];

/** GpuNode condition types, written by the provider's agent. */
export const GpuNodeConditionType = {
  /** The Node is Ready in the provider's cluster. */
  Ready: 'Ready',
  /** The Node is not cordoned and the device plugin advertises its GPUs. */
  Schedulable: 'Schedulable',
} as const;
export type GpuNodeConditionType = (typeof GpuNodeConditionType)[keyof typeof GpuNodeConditionType];

export const GpuNodeReason = {
  NodeReady: 'NodeReady',
  NodeNotReady: 'NodeNotReady',
  NodeSchedulable: 'NodeSchedulable',
  NodeCordoned: 'NodeCordoned',
  /** A NoSchedule/NoExecute taint other than nvidia.com/gpu (which job pods tolerate) keeps jobs off. */
  NodeTainted: 'NodeTainted',
  /** The owner reclaimed the node (`gpufed provider reclaim`): no new jobs until it is released. */
  NodeReclaimed: 'NodeReclaimed',
  NoAllocatableGpus: 'NoAllocatableGpus',
} as const;
export type GpuNodeReason = (typeof GpuNodeReason)[keyof typeof GpuNodeReason];

/** Assignment condition types, written by the provider's agent. */
export const AssignmentConditionType = {
  /** The agent took the assignment and created its pod (False with a reason when rejected). */
  Accepted: 'Accepted',
  /** The pod's container runs. */
  Running: 'Running',
  /** The pod ended or was stopped; status.exitCode and status.reason say how. */
  Finished: 'Finished',
} as const;
export type AssignmentConditionType = (typeof AssignmentConditionType)[keyof typeof AssignmentConditionType];

export const AssignmentReason = {
  // Accepted
  PodCreated: 'PodCreated',
  InsufficientGpus: 'InsufficientGpus',
  UnknownModel: 'UnknownModel',
  PriceMismatch: 'PriceMismatch',
  GrantInsufficient: 'GrantInsufficient',
  EpochSuperseded: 'EpochSuperseded',
  // Running
  PodPending: 'PodPending',
  PodRunning: 'PodRunning',
  ImagePullFailed: 'ImagePullFailed',
  // Finished
  Completed: 'Completed',
  ContainerFailed: 'ContainerFailed',
  DeadlineExceeded: 'DeadlineExceeded',
  Withdrawn: 'Withdrawn',
  PodLost: 'PodLost',
  /** The agent lost its hold on the registry for fencingTimeout and stopped the pod itself. */
  Fenced: 'Fenced',
  /** The owner took the node back (`gpufed provider reclaim`) and the grace period ran out. */
  Reclaimed: 'Reclaimed',
  /** The renter's grant or balance could not pay what the job used: the agent stopped it. */
  PaymentExhausted: 'PaymentExhausted',
} as const;
export type AssignmentReason = (typeof AssignmentReason)[keyof typeof AssignmentReason];

/** UsageRecord condition types, written by the provider's agent. */
export const UsageRecordConditionType = {
  /** The record's payment is committed on chain. */
  Settled: 'Settled',
} as const;
export type UsageRecordConditionType = (typeof UsageRecordConditionType)[keyof typeof UsageRecordConditionType];

export const UsageRecordReason = {
  AwaitingSignature: 'AwaitingSignature',
  AwaitingCommit: 'AwaitingCommit',
  Committed: 'Committed',
  TxFailed: 'TxFailed',
  TxExpired: 'TxExpired',
  GrantExhausted: 'GrantExhausted',
} as const;
export type UsageRecordReason = (typeof UsageRecordReason)[keyof typeof UsageRecordReason];

/** A condition as a controller decides it; setCondition adds lastTransitionTime. */
export interface ConditionUpdate {
  type: string;
  status: ConditionStatus;
  reason: string;
  message: string;
  observedGeneration?: number;
}

/** RFC 3339 with second precision, as metav1.Time writes it. */
export function formatTime(now: Date): string {
  return now.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * Returns a copy of list with update applied to the condition of its type. lastTransitionTime
 * becomes now only when the status flips (or the condition is new); a change of reason, message
 * or observedGeneration alone keeps it. Other conditions keep their order and content.
 */
export function setCondition(list: readonly Condition[] | undefined, update: ConditionUpdate, now: Date): Condition[] {
  const current = list ?? [];
  const existing = current.find((c) => c.type === update.type);
  const lastTransitionTime =
    existing !== undefined && existing.status === update.status ? existing.lastTransitionTime : formatTime(now);
  const next: Condition = {
    type: update.type,
    status: update.status,
    ...(update.observedGeneration === undefined ? {} : { observedGeneration: update.observedGeneration }),
    lastTransitionTime,
    reason: update.reason,
    message: update.message,
  };
  if (existing === undefined) return [...current, next];
  return current.map((c) => (c.type === update.type ? next : c));
}

/** The condition of this type, if any. */
export function findCondition(list: readonly Condition[] | undefined, type: string): Condition | undefined {
  return list?.find((c) => c.type === type);
}

/** Whether the condition of this type is present with status True. */
export function isConditionTrue(list: readonly Condition[] | undefined, type: string): boolean {
  return findCondition(list, type)?.status === 'True';
}
