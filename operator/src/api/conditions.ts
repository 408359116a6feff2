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

/** Provider condition types, written by the registry from what it observed. */
export const ProviderConditionType = {
  /** Heartbeat fresh, not cordoned, at least one priced GPU: new jobs may be placed. */
  Ready: 'Ready',
  /** The provider's 2-of-2 settlement account is published (status.settlementAccount): it can be paid. */
  SettlementAccount: 'SettlementAccount',
} as const;
export type ProviderConditionType = (typeof ProviderConditionType)[keyof typeof ProviderConditionType];

export const ProviderReason = {
  HeartbeatFresh: 'HeartbeatFresh',
  HeartbeatStale: 'HeartbeatStale',
  NeverHeartbeated: 'NeverHeartbeated',
  Cordoned: 'Cordoned',
  NoPricedGpus: 'NoPricedGpus',
  // SettlementAccount
  Published: 'Published',
  /** The agent has not announced its hot key's public key on its heartbeat Lease yet. */
  NoHotKey: 'NoHotKey',
  /** The announced hot key is not the one spec.wallet names. */
  HotKeyMismatch: 'HotKeyMismatch',
  /** The registry runs without a co-signing key (no chain). */
  NoRegistryKey: 'NoRegistryKey',
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

/** UsageRecord condition types, written by the registry (an agent's credentials cannot write a record's status). */
export const UsageRecordConditionType = {
  /**
   * The registry checked the record against its Assignment and the run window it observed: True
   * (it may be paid) or False (disputed: the reason says which claim was false; never paid).
   */
  Verified: 'Verified',
  /** The record's payment is committed on chain, as the registry found it there. */
  Settled: 'Settled',
} as const;
export type UsageRecordConditionType = (typeof UsageRecordConditionType)[keyof typeof UsageRecordConditionType];

/** Reasons of a UsageRecord's Settled condition. */
export const UsageRecordReason = {
  /** Verified and not in any settlement yet. */
  Unpaid: 'Unpaid',
  /** In a Settlement the chain has not decided yet. */
  AwaitingCommit: 'AwaitingCommit',
  Committed: 'Committed',
  /** Its amount is 0 (the remainder carries in the cumulative GPU time): nothing to pay. */
  NothingDue: 'NothingDue',
  /** Disputed, or not verified yet: it is not to be paid (yet). */
  NotPayable: 'NotPayable',
} as const;
export type UsageRecordReason = (typeof UsageRecordReason)[keyof typeof UsageRecordReason];

/** Why a record is Verified or disputed. Every reason but Verified is a dispute. */
export const VerificationReason = {
  Verified: 'Verified',
  /** No Assignment of this provider has the record's name, or it is not the record's job. */
  NoAssignment: 'NoAssignment',
  /** jobRef, epoch, payer, payee, price, model or GPU count differs from the Assignment's. */
  AssignmentMismatch: 'AssignmentMismatch',
  /** The amount is not floor(price × cumulative / 3.6e6) minus the previous record's, or the delta is not cumulative minus the previous. */
  AmountMismatch: 'AmountMismatch',
  /** It does not continue its Assignment's chain of records (a gap, a fork, an overlap, a record after the final one). */
  ChainBroken: 'ChainBroken',
  /** It claims GPU time outside the run window the registry observed (before placement, after the end, past the fence or maxDurationSeconds). */
  OutsideRunWindow: 'OutsideRunWindow',
  /** Its period ends later than the registry's clock allows. */
  FuturePeriod: 'FuturePeriod',
  /** No valid signature of the provider's hot key over it. */
  BadSignature: 'BadSignature',
} as const;
export type VerificationReason = (typeof VerificationReason)[keyof typeof VerificationReason];

/** Where a UsageRecord stands, in its status.state (written by the registry's usage controller). */
export const UsageRecordState = {
  Unverified: 'Unverified',
  Disputed: 'Disputed',
  Pending: 'Pending',
  Settling: 'Settling',
  Committed: 'Committed',
  NothingDue: 'NothingDue',
} as const;
export type UsageRecordState = (typeof UsageRecordState)[keyof typeof UsageRecordState];

/** What the registry did with a Settlement, in its status.state; absent while only proposed. */
export const SettlementState = {
  Cosigned: 'Cosigned',
  Committed: 'Committed',
  Failed: 'Failed',
  Expired: 'Expired',
  Superseded: 'Superseded',
  Refused: 'Refused',
} as const;
export type SettlementState = (typeof SettlementState)[keyof typeof SettlementState];

/** States after which a Settlement can never pay anything (more): its records are free to be paid again. */
export const DEAD_SETTLEMENT_STATES: readonly string[] = [SettlementState.Failed, SettlementState.Expired, SettlementState.Superseded, SettlementState.Refused];

export const SettlementConditionType = {
  /** The last broadcast of the co-signed transaction was admitted to the node's mempool (False: refused, the reason is the chain's code). */
  Broadcast: 'Broadcast',
} as const;

/** Why the registry would not co-sign a Settlement (status.message says what exactly). */
export const RefusalReason = {
  Malformed: 'Malformed',
  WrongChain: 'WrongChain',
  WrongAccount: 'WrongAccount',
  WrongSequence: 'WrongSequence',
  BadTimeout: 'BadTimeout',
  NotASettlement: 'NotASettlement',
  RecordNotPayable: 'RecordNotPayable',
  AmountsMismatch: 'AmountsMismatch',
  BadSignature: 'BadSignature',
} as const;
export type RefusalReason = (typeof RefusalReason)[keyof typeof RefusalReason];

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
