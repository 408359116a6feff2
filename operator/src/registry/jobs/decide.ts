// What the registry does with one ComputeJob now: place it, create its Assignment, follow it,
// withdraw it, retry it, finish it. Pure (STYLE.md: gather → decide → apply): everything it needs
// is in the situation, including the matcher as a function, and the controller applies the result.
//
// Everything is derived from durable state, never from memory: the job's status names the current
// attempt (provider and epoch), and the job's Assignments (labelled with its uid) say how every
// attempt went. So a new leader decides exactly what the old one would have, and a crash between
// two writes is repaired by the next reconcile:
//  - the placement is written to the job's status (guarded by its resourceVersion) before the
//    Assignment is created, and the Assignment's name is deterministic: a job is never placed twice;
//  - a lost provider's Assignment is withdrawn before a new epoch is placed elsewhere, and the agent
//    fences the old pod, so two copies never run under a live epoch.
import { AssignmentReason, ComputeJobConditionType, ComputeJobReason, findCondition, formatTime, isConditionTrue, setCondition, type ConditionUpdate } from '../../api/conditions.js';
import type { Assignment, AssignmentSpec, AssignmentSpecWithdrawnReason, ComputeJob, ComputeJobStatus, ComputeJobStatusPhase, Provider, Tenant } from '../../api/index.js';
import type { MatchResult, Placement } from '../../scheduling/match.js';
import { assignmentEnded, currentStatus as statusOf } from '../../api/assignments.js';
import { JobLabel, REGISTRY_MANAGED_BY, logConfigMapName } from '../../api/labels.js';
import { SIM_ANNOTATION_PREFIX, providerNamespace, providerOfNamespace } from '../../api/names.js';
import { isTenantVerified } from '../tenants/decide.js';

/** Keeps a ComputeJob until its Assignment is withdrawn and its pod stopped. */
export const JOB_FINALIZER = 'gpufed.io/assignment';
export const DEFAULT_MAX_DURATION_SECONDS = 3600;

export interface JobSituation {
  job: ComputeJob;
  /** The Tenant of the job's namespace, if any. */
  tenant?: Tenant;
  /** Every Assignment of this job (any provider, any epoch), including ones just created. */
  assignments: readonly Assignment[];
  providers: ReadonlyMap<string, Provider>;
  /** How long ago the registry last saw each provider's heartbeat (its own clock); Infinity: never. */
  heartbeatAgeMs: (provider: string) => number;
  /** The matcher over the registry's snapshot, leaving these providers out. */
  match: (excludeProviders: readonly string[]) => MatchResult;
  now: Date;
  /** A provider whose heartbeat is older than this is lost: its running jobs are placed again. */
  providerLostTimeoutMs: number;
  /** How long past maxDuration the registry waits for the agent to stop a job before withdrawing it. */
  deadlineGraceMs: number;
  /** The agents' fencing timeout: when a silent provider's copy stops being billable (look again then). */
  fencingTimeoutMs?: number;
  /**
   * What the job still waits for to be fully paid (settlement-status.ts); a cancelled job is let go
   * only once it is empty, or after `settleWaitMs` from the deletion. Absent: not waited for.
   */
  unsettled?: readonly string[];
  settleWaitMs?: number;
}

export interface NewAssignment {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  annotations: Record<string, string>;
  spec: AssignmentSpec;
}

export interface Withdrawal {
  namespace: string;
  name: string;
  reason: AssignmentSpecWithdrawnReason;
}

export interface JobDecision {
  /** The registry's part of the job's status as it should be. */
  status: ComputeJobStatus;
  /** Withdraw these first. */
  withdraw: Withdrawal[];
  /** Then (after the status is written) create this Assignment unless it exists. */
  create?: NewAssignment;
  finalizer: 'add' | 'remove' | 'keep';
  requeueAfterMs?: number;
  /** Set when this decision placed a new epoch (for the placement latency metric). */
  placed?: Placement & { epoch: number };
  /** Why the job waits, when it does, as stable codes (for the unschedulable metric). */
  waiting?: string[];
}


/** `<namespace>-<job>-<uid prefix>-<epoch>`, shortened to stay a valid name: unique per job and epoch. */
export function assignmentName(job: ComputeJob, epoch: number): string {
  const uid = (job.metadata.uid ?? '').slice(0, 8);
  const base = `${job.metadata.namespace ?? ''}-${job.metadata.name ?? ''}`.slice(0, 200).replace(/[.-]+$/, '');
  return `${base}-${uid}-${epoch}`.toLowerCase();
}

type Outcome =
  | { kind: 'active'; a: Assignment }
  | { kind: 'missing' }
  | { kind: 'succeeded'; a: Assignment }
  | { kind: 'failed'; a: Assignment; reason: string; message: string; retryable: boolean }
  | { kind: 'rejected'; a: Assignment; message: string }
  | { kind: 'lost'; a: Assignment };



/** How the current attempt went, from its Assignment. */
function outcomeOf(a: Assignment | undefined): Outcome {
  if (!a) return { kind: 'missing' };
  const s = statusOf(a);
  if (a.spec.withdrawn) return withdrawnOutcome(a);
  switch (s?.phase) {
    case 'Succeeded':
      return { kind: 'succeeded', a };
    case 'Rejected':
      return { kind: 'rejected', a, message: `${s.reason ?? 'Rejected'}: ${s.message ?? ''}`.trim() };
    case 'Failed':
    case 'Withdrawn':
      return failedOutcome(a, s);
    default:
      return { kind: 'active', a };
  }
}

/** An attempt that ended badly: retried unless it ran out of time or of the renter's money. */
function failedOutcome(a: Assignment, s: NonNullable<Assignment['status']>): Outcome {
  const deadline = s.reason === AssignmentReason.DeadlineExceeded;
  // The renter's grant or balance ran out: running it elsewhere would not get it paid either.
  const unpaid = s.reason === AssignmentReason.PaymentExhausted;
  const reason = deadline ? ComputeJobReason.DeadlineExceeded : unpaid ? ComputeJobReason.PaymentExhausted : ComputeJobReason.ContainerFailed;
  const message = s.exitCode !== undefined ? `Exited with code ${s.exitCode}${s.message ? `: ${s.message}` : ''}` : `${s.reason ?? 'Failed'}: ${s.message ?? ''}`;
  return { kind: 'failed', a, reason, message, retryable: !deadline && !unpaid };
}

/** An attempt the registry took back: lost, past its deadline, cancelled (unless it finished first). */
function withdrawnOutcome(a: Assignment): Outcome {
  if (statusOf(a)?.phase === 'Succeeded') return { kind: 'succeeded', a };
  if (a.spec.withdrawnReason === 'ProviderLost') return { kind: 'lost', a };
  const reason = a.spec.withdrawnReason === 'DeadlineExceeded' ? ComputeJobReason.DeadlineExceeded : (a.spec.withdrawnReason ?? ComputeJobReason.Cancelled);
  return { kind: 'failed', a, reason, message: `The registry withdrew the job (${reason})`, retryable: false };
}

/** Providers this job must not go back to: they rejected it or were lost while running it. */
function excludedProviders(assignments: readonly Assignment[]): string[] {
  const out = new Set<string>();
  for (const a of assignments) {
    const o = outcomeOf(a);
    if (o.kind === 'rejected' || o.kind === 'lost') out.add(providerFromNamespace(a.metadata.namespace));
  }
  return [...out].sort();
}

function providerFromNamespace(ns: string | undefined): string {
  return providerOfNamespace(ns) ?? '';
}

/** Attempts that used a try: every epoch placed, except ones the provider rejected before running. */
function attemptsUsed(assignments: readonly Assignment[]): number {
  return assignments.filter((a) => outcomeOf(a).kind !== 'rejected').length;
}

function nextEpoch(job: ComputeJob, assignments: readonly Assignment[]): number {
  return Math.max(job.status?.placement?.epoch ?? 0, ...assignments.map((a) => a.spec.epoch)) + 1;
}

/** Phase for the printer column, from the conditions. */
function phaseOf(status: ComputeJobStatus, deleting: boolean): ComputeJobStatusPhase {
  const c = status.conditions;
  if (isConditionTrue(c, ComputeJobConditionType.Succeeded)) return 'Succeeded';
  if (isConditionTrue(c, ComputeJobConditionType.Failed)) return 'Failed';
  if (deleting) return 'Cancelling';
  if (isConditionTrue(c, ComputeJobConditionType.Running)) return 'Running';
  if (isConditionTrue(c, ComputeJobConditionType.Scheduled)) return 'Scheduled';
  return 'Pending';
}

class StatusBuilder {
  status: ComputeJobStatus;
  constructor(
    prev: ComputeJobStatus | undefined,
    private readonly now: Date,
    private readonly generation: number | undefined,
  ) {
    const { phase: _p, ...rest } = prev ?? {};
    this.status = { ...rest };
  }
  set(update: Omit<ConditionUpdate, 'observedGeneration'>): this {
    this.status.conditions = setCondition(this.status.conditions, { ...update, ...(this.generation ? { observedGeneration: this.generation } : {}) }, this.now);
    return this;
  }
  finish(type: 'Succeeded' | 'Failed', reason: string, message: string, a?: Assignment): this {
    const s = a ? statusOf(a) : undefined;
    this.set({ type, status: 'True', reason, message });
    if (findCondition(this.status.conditions, ComputeJobConditionType.Running)) this.set({ type: ComputeJobConditionType.Running, status: 'False', reason: ComputeJobReason.PodFinished, message });
    this.status.completionTime = s?.completionTime ?? this.status.completionTime ?? formatTime(this.now);
    if (s?.exitCode !== undefined) this.status.exitCode = s.exitCode;
    this.status.message = message;
    return this;
  }
  build(deleting: boolean): ComputeJobStatus {
    return { ...this.status, ...(this.generation ? { observedGeneration: this.generation } : {}), phase: phaseOf(this.status, deleting) };
  }
}

export function decideJob(s: JobSituation): JobDecision {
  const { job } = s;
  const deleting = job.metadata.deletionTimestamp !== undefined;
  const hasFinalizer = job.metadata.finalizers?.includes(JOB_FINALIZER) ?? false;
  const b = new StatusBuilder(job.status, s.now, job.metadata.generation);
  if (deleting) return decideDeleting(s, b, hasFinalizer);
  const finalizer = hasFinalizer ? 'keep' : 'add';
  const done = isConditionTrue(job.status?.conditions, ComputeJobConditionType.Succeeded) || isConditionTrue(job.status?.conditions, ComputeJobConditionType.Failed);
  if (done) return { status: b.build(false), withdraw: withdrawActive(s.assignments, 'Superseded'), finalizer };
  const placement = job.status?.placement;
  if (placement?.provider === undefined || placement.epoch === undefined) return place(s, b, finalizer, undefined);
  const current = s.assignments.find((a) => a.metadata.namespace === providerNamespace(placement.provider ?? '') && a.spec.epoch === placement.epoch);
  return follow(s, b, finalizer, outcomeOf(current));
}

/** Deleting: withdraw what runs, wait until the agents stopped it (or its provider is gone), then let go. */
function decideDeleting(s: JobSituation, b: StatusBuilder, hasFinalizer: boolean): JobDecision {
  if (!hasFinalizer) return { status: b.build(true), withdraw: [], finalizer: 'keep' };
  const withdraw = withdrawActive(s.assignments, 'Cancelled');
  const waitingFor = s.assignments.filter((a) => !assignmentEnded(a) && s.heartbeatAgeMs(providerFromNamespace(a.metadata.namespace)) < s.providerLostTimeoutMs);
  if (waitingFor.length > 0) {
    b.status.message = `Cancelling: waiting for ${waitingFor.map((a) => providerFromNamespace(a.metadata.namespace)).join(', ')} to stop the job`;
    return { status: b.build(true), withdraw, finalizer: 'keep', requeueAfterMs: 2000 };
  }
  const deletedAt = new Date(s.job.metadata.deletionTimestamp ?? s.now).getTime();
  const patience = (s.settleWaitMs ?? 0) - (s.now.getTime() - deletedAt);
  if (s.unsettled?.length && patience > 0) {
    b.status.message = `Cancelling: the job stopped; waiting for ${s.unsettled.join(' and ')} before letting it go`;
    return { status: b.build(true), withdraw, finalizer: 'keep', requeueAfterMs: Math.min(2000, patience) };
  }
  return { status: b.build(true), withdraw, finalizer: 'remove' };
}

function withdrawActive(assignments: readonly Assignment[], reason: AssignmentSpecWithdrawnReason): Withdrawal[] {
  return assignments
    .filter((a) => !a.spec.withdrawn && !assignmentEnded(a))
    .map((a) => ({ namespace: a.metadata.namespace ?? '', name: a.metadata.name ?? '', reason }));
}

/** The current attempt exists (or should): follow it, or act on how it ended. */
function follow(s: JobSituation, b: StatusBuilder, finalizer: JobDecision['finalizer'], o: Outcome): JobDecision {
  switch (o.kind) {
    case 'missing':
      // The placement was written but its Assignment not created (a crash in between): create it now.
      return { status: b.build(false), withdraw: [], finalizer, ...recreate(s) };
    case 'succeeded':
      return { status: b.finish('Succeeded', ComputeJobReason.Completed, 'The job completed', o.a).build(false), withdraw: [], finalizer };
    case 'rejected': {
      const provider = providerFromNamespace(o.a.metadata.namespace);
      return place(s, b, finalizer, { reason: ComputeJobReason.AssignmentRejected, message: `Rejected by ${provider} (${o.message})` });
    }
    case 'lost':
      return retryOrFail(s, b, finalizer, ComputeJobReason.ProviderLost, `Provider ${providerFromNamespace(o.a.metadata.namespace)} was lost while running the job`, [], o.a);
    case 'failed':
      if (!o.retryable) return { status: b.finish('Failed', o.reason, o.message, o.a).build(false), withdraw: [], finalizer };
      return retryOrFail(s, b, finalizer, o.reason, o.message, [], o.a);
    case 'active':
      return followActive(s, b, finalizer, o.a);
  }
}

/** The Assignment that the job's status says exists, rebuilt from the status (deterministic). */
function recreate(s: JobSituation): { create?: NewAssignment; requeueAfterMs?: number } {
  const p = s.job.status?.placement;
  const payer = s.tenant?.status?.verifiedAddress;
  if (!p?.provider || !p.epoch || !p.model || !p.pricePerGpuHour || !payer) return { requeueAfterMs: 5000 };
  return { create: newAssignment(s.job, { provider: p.provider, nodeName: p.nodeName ?? '', model: p.model, pricePerGpuHour: p.pricePerGpuHour }, p.epoch, payer) };
}

function followActive(s: JobSituation, b: StatusBuilder, finalizer: JobDecision['finalizer'], a: Assignment): JobDecision {
  const provider = providerFromNamespace(a.metadata.namespace);
  const age = s.heartbeatAgeMs(provider);
  if (age >= s.providerLostTimeoutMs) {
    const withdraw: Withdrawal = { namespace: a.metadata.namespace ?? '', name: a.metadata.name ?? '', reason: 'ProviderLost' };
    return retryOrFail(s, b, finalizer, ComputeJobReason.ProviderLost, `Provider ${provider} stopped heartbeating while running the job`, [withdraw], a, [provider]);
  }
  const deadline = deadlineOf(s, a);
  if (deadline !== undefined && s.now.getTime() >= deadline) {
    const message = `Ran longer than maxDurationSeconds (${s.job.spec.maxDurationSeconds ?? DEFAULT_MAX_DURATION_SECONDS}s)`;
    return { status: b.finish('Failed', ComputeJobReason.DeadlineExceeded, message, a).build(false), withdraw: [{ namespace: a.metadata.namespace ?? '', name: a.metadata.name ?? '', reason: 'DeadlineExceeded' }], finalizer };
  }
  reportProgress(b, provider, statusOf(a));
  const untilLost = s.providerLostTimeoutMs - age;
  const untilDeadline = deadline === undefined ? Number.POSITIVE_INFINITY : deadline - s.now.getTime();
  const untilFence = s.fencingTimeoutMs !== undefined && age < s.fencingTimeoutMs ? s.fencingTimeoutMs - age + 250 : Number.POSITIVE_INFINITY;
  return { status: b.build(false), withdraw: [], finalizer, requeueAfterMs: Math.max(1000, Math.min(untilLost, untilDeadline, untilFence, 60_000)) };
}

/** When the registry stops waiting for the agent to end a running attempt: start + maxDuration + grace. */
function deadlineOf(s: JobSituation, a: Assignment): number | undefined {
  const started = Date.parse(statusOf(a)?.startTime ?? '');
  if (Number.isNaN(started)) return undefined;
  return started + (s.job.spec.maxDurationSeconds ?? DEFAULT_MAX_DURATION_SECONDS) * 1000 + s.deadlineGraceMs;
}

/** The Running condition and message from the current attempt's Assignment. */
function reportProgress(b: StatusBuilder, provider: string, st: Assignment['status']): void {
  if (st?.phase === 'Running') {
    b.set({ type: ComputeJobConditionType.Running, status: 'True', reason: ComputeJobReason.PodRunning, message: `Running on ${provider}/${st.nodeName ?? ''}` });
    b.status.startTime = st.startTime ?? b.status.startTime;
    b.status.message = `Running on ${provider}`;
    return;
  }
  const why = st?.phase === 'Accepted' ? `Accepted by ${provider}; ${st.message ?? 'starting'}` : `Waiting for ${provider} to accept`;
  b.set({ type: ComputeJobConditionType.Running, status: 'False', reason: ComputeJobReason.PodPending, message: why });
  b.status.message = why;
}

/** An attempt failed: place a new epoch if spec.retries allows, else the job failed. */
function retryOrFail(s: JobSituation, b: StatusBuilder, finalizer: JobDecision['finalizer'], reason: string, message: string, withdraw: Withdrawal[], a: Assignment, exclude: string[] = []): JobDecision {
  const retries = s.job.spec.retries ?? 0;
  if (attemptsUsed(s.assignments) > retries) {
    const why = retries > 0 ? `${message}; no retries left (${retries} allowed)` : message;
    return { status: b.finish('Failed', retries > 0 ? ComputeJobReason.RetriesExhausted : reason, why, a).build(false), withdraw, finalizer };
  }
  const d = place(s, b, finalizer, { reason, message: `${message}; retrying` }, exclude);
  return { ...d, withdraw: [...withdraw, ...d.withdraw] };
}

/** Places a new epoch, or says why it waits. `after` is why a previous attempt did not go on. */
function place(s: JobSituation, b: StatusBuilder, finalizer: JobDecision['finalizer'], after: { reason: string; message: string } | undefined, exclude: readonly string[] = []): JobDecision {
  const payer = s.tenant?.status?.verifiedAddress;
  if (!isTenantVerified(s.tenant) || payer === undefined) {
    const message = unverifiedMessage(s);
    b.set({ type: ComputeJobConditionType.Scheduled, status: 'False', reason: ComputeJobReason.TenantNotVerified, message });
    b.status.message = message;
    return { status: b.build(false), withdraw: [], finalizer, requeueAfterMs: 30_000, waiting: [ComputeJobReason.TenantNotVerified] };
  }
  const result = s.match([...new Set([...excludedProviders(s.assignments), ...exclude])].sort());
  if ('unschedulable' in result) {
    const message = after ? `${after.message}; waiting: ${result.unschedulable}` : result.unschedulable;
    b.set({ type: ComputeJobConditionType.Scheduled, status: 'False', reason: after?.reason ?? ComputeJobReason.NoMatchingProvider, message });
    if (findCondition(b.status.conditions, ComputeJobConditionType.Running)) b.set({ type: ComputeJobConditionType.Running, status: 'False', reason: ComputeJobReason.PodPending, message: 'Waiting to be placed' });
    b.status.message = message;
    return { status: b.build(false), withdraw: [], finalizer, requeueAfterMs: 15_000, waiting: Object.keys(result.codes).sort() };
  }
  const p = result.placed;
  const epoch = nextEpoch(s.job, s.assignments);
  const create = newAssignment(s.job, p, epoch, payer);
  startAttempt(s, b, p, create.name, epoch);
  const message = `Placed on ${p.provider} (${p.nodeName}, ${p.units}× ${p.model}) at ${p.pricePerGpuHour} per GPU-hour${epoch > 1 ? `, epoch ${epoch}` : ''}`;
  b.set({ type: ComputeJobConditionType.Scheduled, status: 'True', reason: ComputeJobReason.Placed, message });
  b.set({ type: ComputeJobConditionType.Running, status: 'False', reason: ComputeJobReason.PodPending, message: `Waiting for ${p.provider} to accept` });
  b.status.message = after ? `${after.message}; ${message}` : message;
  return { status: b.build(false), withdraw: [], create, finalizer, placed: { ...p, epoch } };
}

/** The status of a new attempt: where it goes, and nothing left of the previous one's run. */
function startAttempt(s: JobSituation, b: StatusBuilder, p: Placement, assignmentName: string, epoch: number): void {
  const region = s.providers.get(p.provider)?.spec.region;
  b.status.placement = { provider: p.provider, ...(region ? { region } : {}), nodeName: p.nodeName, model: p.model, pricePerGpuHour: p.pricePerGpuHour, assignmentName, epoch };
  b.status.attempts = attemptsUsed(s.assignments) + 1;
  // The registry relays the current attempt's log tail into the job's namespace under this name.
  b.status.logRef = logConfigMapName(s.job.metadata.name ?? '');
  delete b.status.startTime;
  delete b.status.completionTime;
  delete b.status.exitCode;
}

function unverifiedMessage(s: JobSituation): string {
  if (!s.tenant) return `No Tenant binds namespace ${s.job.metadata.namespace ?? ''} to a payer; ask the registry admin to run gpufed registry add-tenant`;
  const verified = findCondition(s.tenant.status?.conditions, 'Verified');
  return `Tenant ${s.tenant.metadata.name ?? ''} is not verified: ${verified?.message ?? 'its proof has not been checked yet'}`;
}

/** What the provider gets: a copy of what it needs to run the job, never the tenant's other data. */
export function newAssignment(job: ComputeJob, p: Pick<Placement, 'provider' | 'nodeName' | 'model' | 'pricePerGpuHour'>, epoch: number, payer: string): NewAssignment {
  const j = job.spec;
  const spec: AssignmentSpec = {
    jobRef: { namespace: job.metadata.namespace ?? '', name: job.metadata.name ?? '', uid: job.metadata.uid ?? '' },
    epoch,
    image: j.image,
    ...(j.command ? { command: j.command } : {}),
    ...(j.args ? { args: j.args } : {}),
    ...(j.env ? { env: j.env } : {}),
    resources: j.resources,
    model: p.model,
    pricePerGpuHour: p.pricePerGpuHour,
    maxDurationSeconds: j.maxDurationSeconds ?? DEFAULT_MAX_DURATION_SECONDS,
    payer,
    ...(p.nodeName ? { nodeName: p.nodeName } : {}),
  };
  const annotations = Object.fromEntries(Object.entries(job.metadata.annotations ?? {}).filter(([k]) => k.startsWith(SIM_ANNOTATION_PREFIX)));
  return {
    namespace: providerNamespace(p.provider),
    name: assignmentName(job, epoch),
    labels: { [JobLabel.JobUid]: job.metadata.uid ?? '', [JobLabel.JobNamespace]: job.metadata.namespace ?? '', [JobLabel.ManagedBy]: REGISTRY_MANAGED_BY },
    annotations,
    spec,
  };
}
