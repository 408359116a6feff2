// The job controller: gathers everything about one ComputeJob (its Assignments, its Tenant, the
// providers, the matcher over the registry's snapshot, the payer's grants on chain), asks the pure
// decideJob what to do, and applies it in the one safe order: withdraw, finalizer, status (a
// compare-and-swap on the version decided from), then the Assignment the status names.
import type * as k8s from '@kubernetes/client-node';
import { isDeepStrictEqual } from 'node:util';
import { AssignmentResource, ComputeJobResource, type Assignment, type ComputeJob, type ComputeJobStatus } from '../../api/index.js';
import { ComputeJobConditionType } from '../../api/conditions.js';
import { apiErrorCode, isNamespaceTerminating, isNotFound } from '../../kube/errors.js';
import { normalized } from '../../kube/manifests.js';
import { matchProviders, type PaymentCheck, type Reservation } from '../../scheduling/match.js';
import { reservationsFor } from '../../scheduling/reservations.js';
import { costOf, covers, type PayerFunds } from '../../settlement/grants.js';
import type { RegistryContext } from '../context.js';
import { confirmSilent, heartbeatAgeMs, lostProviders } from '../providers/liveness.js';
import { assignmentLive } from '../../api/assignments.js';
import { providerOfNamespace } from '../../api/names.js';
import { settledState } from '../settlement/status.js';
import { keyOf, type Obj } from '../state.js';
import { JOB_FINALIZER, decideJob, type JobDecision, type NewAssignment, type Withdrawal } from './decide.js';
import { billingStamps, type Stamp } from './window.js';

const REGISTRY_CONDITIONS: readonly string[] = [ComputeJobConditionType.Scheduled, ComputeJobConditionType.Running, ComputeJobConditionType.Succeeded, ComputeJobConditionType.Failed];
const REGISTRY_STATUS_FIELDS = ['observedGeneration', 'phase', 'placement', 'attempts', 'startTime', 'completionTime', 'exitCode', 'message', 'logRef'] as const;

/** The fields of a job's status this controller owns (the settlement fields are another's). */
function registryPart(status: ComputeJobStatus | undefined): ComputeJobStatus {
  const out: Record<string, unknown> = {};
  for (const k of REGISTRY_STATUS_FIELDS) if (status?.[k] !== undefined) out[k] = status[k];
  out.conditions = (status?.conditions ?? []).filter((c) => REGISTRY_CONDITIONS.includes(c.type));
  return normalized(out as ComputeJobStatus);
}

/** How long a payer's funds read from the chain answer the matcher's payment check. */
const FUNDS_CACHE_MS = 2000;

export class JobController {
  /** Payers' funds towards providers, read from the chain for the payment check, briefly cached. */
  private readonly fundsCache = new Map<string, { at: number; funds: PayerFunds }>(); // stale entries dropped on each check
  /** Why each waiting job waits (for the unschedulable gauge), by job key. */
  private readonly waiting = new Map<string, string[]>();

  constructor(private readonly ctx: RegistryContext) {}

  private get kube() {
    return this.ctx.kube('jobs');
  }

  async reconcile(key: string): Promise<{ requeueAfterMs: number } | void> {
    const { state, settings } = this.ctx;
    let job = state.job(key);
    if (!job) {
      this.waiting.delete(key);
      return this.recordJobGauges();
    }
    const uid = job.metadata.uid ?? '';
    const assignments = state.allAssignments();
    const mine = state.assignmentsOf(uid, assignments);
    if (await this.heardFromSilentProvider(mine)) return { requeueAfterMs: 0 };
    const now = this.ctx.now();
    const reservations = this.reservations(assignments);
    const providers = state.providers.list();
    const snapshot = { providers, gpuNodes: state.gpuNodes.list(), reservations, heartbeatTimeoutMs: settings.heartbeatTimeoutMs, heartbeats: (p: string) => state.heartbeats.lastMs(p) };
    const spec = job.spec;
    const payment = await this.paymentCheck(job);
    const tenant = state.tenants.get(job.metadata.namespace ?? '');
    const decision = decideJob({
      job,
      ...(tenant ? { tenant } : {}),
      assignments: mine,
      providers: new Map(providers.map((p) => [p.metadata.name ?? '', p])),
      heartbeatAgeMs: (p) => heartbeatAgeMs(this.ctx, p),
      match: (exclude) => matchProviders(snapshot, { resources: spec.resources, maxPricePerGpuHour: spec.maxPricePerGpuHour, ...(spec.placement ? { placement: spec.placement } : {}), excludeProviders: exclude }, now, payment ? { payment } : {}),
      now,
      providerLostTimeoutMs: settings.providerLostTimeoutMs,
      deadlineGraceMs: settings.deadlineGraceMs,
      fencingTimeoutMs: settings.fencingTimeoutMs,
      ...this.settlementWait(uid, mine),
    });
    for (const w of decision.withdraw) await this.withdraw(w);
    // The run windows that closed: nothing after them is paid (and the agents meter up to them).
    for (const stamp of billingStamps(mine, decision.withdraw, { now, heartbeatAgeMs: (p) => heartbeatAgeMs(this.ctx, p), fencingTimeoutMs: settings.fencingTimeoutMs, clockSkewMs: settings.clockSkewMs })) await this.closeWindow(stamp);
    if (decision.finalizer === 'add') job = await this.setFinalizer(job, true);
    job = await this.writeStatus(key, job, decision);
    if (decision.create) await this.createAssignment(decision.create, job);
    if (decision.finalizer === 'remove') await this.setFinalizer(job, false);
    this.recordPlacement(key, job, decision);
    this.recordJobGauges();
    return decision.requeueAfterMs === undefined ? undefined : { requeueAfterMs: decision.requeueAfterMs };
  }

  /**
   * Before acting on a provider's silence (fencing a copy's window, withdrawing it as lost), asks the
   * API server whether its heartbeat Lease really stood still; true when it did not (decide again).
   */
  private async heardFromSilentProvider(mine: readonly Assignment[]): Promise<boolean> {
    const silent = new Set(mine.filter((a) => assignmentLive(a)).map((a) => providerOfNamespace(a.metadata.namespace) ?? '').filter((p) => p !== '' && heartbeatAgeMs(this.ctx, p) >= Math.min(this.ctx.settings.fencingTimeoutMs, this.ctx.settings.providerLostTimeoutMs)));
    for (const p of silent) if (!(await confirmSilent(this.ctx, p))) return true;
    return false;
  }

  private reservations(assignments: readonly Assignment[]): Reservation[] {
    const r = reservationsFor(assignments, this.ctx.state.gpuNodes.list());
    const { metrics } = this.ctx;
    metrics.reservedGpus.reset();
    const byProvider = new Map<string, number>();
    for (const x of r) byProvider.set(x.provider, (byProvider.get(x.provider) ?? 0) + x.units);
    for (const [p, n] of byProvider) metrics.reservedGpus.set({ provider: p }, n);
    return r;
  }

  // ------------------------------------------------------------------------------------------
  // Money: the payment check before placing, and waiting for the last payment of a cancelled job

  /**
   * The matcher's payment check for a job that may be placed now: its payer's grant to each
   * provider's settlement account must be live, in the job's denom, and cover the first paymentCoverMs. The
   * chain is read here (async, briefly cached); the check itself stays a pure function of that.
   */
  private async paymentCheck(job: Obj<ComputeJob>): Promise<PaymentCheck | undefined> {
    const funds = this.ctx.options.funds;
    const payer = this.ctx.state.tenants.get(job.metadata.namespace ?? '')?.status?.verifiedAddress;
    if (!funds || !payer || ['Running', 'Succeeded', 'Failed', 'Cancelling'].includes(job.status?.phase ?? '') || job.metadata.deletionTimestamp) return undefined;
    const byWallet = await this.fundsByWallet(funds, payer);
    const units = job.spec.resources.gpu.count;
    const seconds = Math.min(job.spec.maxDurationSeconds ?? 86_400, this.ctx.settings.paymentCoverMs / 1000);
    const now = this.ctx.now().getTime();
    return (provider, price) => {
      const account = provider.status?.settlementAccount?.address;
      if (!account) return { ok: false, reason: 'payment: the provider has no settlement account yet (its agent has not announced its hot key)' };
      const need = costOf(price, units, seconds);
      const v = covers(byWallet.get(account) ?? { balance: new Map() }, need, provider.spec.payout ?? provider.spec.wallet, now);
      return v.ok ? v : { ok: false, reason: `payment: ${v.message} (${need.amount}${need.denom} for the first ${seconds}s)` };
    };
  }

  /** The payer's funds towards every provider's settlement account, from the chain or read in the last FUNDS_CACHE_MS. */
  private async fundsByWallet(funds: NonNullable<RegistryContext['options']['funds']>, payer: string): Promise<Map<string, PayerFunds>> {
    const byAccount = new Map<string, PayerFunds>();
    const nowMs = this.ctx.now().getTime();
    for (const [key, hit] of this.fundsCache) if (nowMs - hit.at >= FUNDS_CACHE_MS) this.fundsCache.delete(key);
    for (const p of this.ctx.state.providers.list()) {
      const account = p.status?.settlementAccount?.address;
      if (!account) continue;
      const key = `${payer}/${account}`;
      const hit = this.fundsCache.get(key);
      if (hit) byAccount.set(account, hit.funds);
      else {
        const f = await funds(payer, account);
        this.fundsCache.set(key, { at: this.ctx.now().getTime(), funds: f });
        byAccount.set(account, f);
      }
    }
    return byAccount;
  }

  /** With a chain, a cancelled job is let go once it is paid; without one nothing is ever paid. */
  private settlementWait(uid: string, mine: readonly Assignment[]): { unsettled?: string[]; settleWaitMs?: number } {
    if (!this.ctx.options.funds) return {};
    const records = this.ctx.state.recordsOfJob(uid);
    return { unsettled: settledState(mine, records, lostProviders(this.ctx)).waitingFor, settleWaitMs: this.ctx.settings.settleWaitMs };
  }

  // ------------------------------------------------------------------------------------------
  // Writes

  /** Writes the registry's part of the status if it changed, as a compare-and-swap on the version decided from. */
  private async writeStatus(key: string, job: Obj<ComputeJob>, decision: JobDecision): Promise<Obj<ComputeJob>> {
    const want = registryPart(decision.status);
    if (isDeepStrictEqual(registryPart(job.status), want)) return job;
    if (job.metadata.deletionTimestamp && decision.finalizer !== 'keep' && !job.metadata.finalizers?.includes(JOB_FINALIZER)) return job;
    const written = (await this.kube.applyStatus(ComputeJobResource, job.metadata.name ?? '', job.metadata.namespace, want, job.metadata.resourceVersion)) as Obj<ComputeJob>;
    this.ctx.state.jobWrites.remember(key, written, written);
    this.ctx.metrics.registryWrites.inc({ resource: 'computejobs', verb: 'apply_status' });
    return written;
  }

  private async setFinalizer(job: Obj<ComputeJob>, present: boolean): Promise<Obj<ComputeJob>> {
    const body = { apiVersion: ComputeJobResource.apiVersion, kind: ComputeJobResource.kind, metadata: { name: job.metadata.name ?? '', namespace: job.metadata.namespace ?? '', finalizers: present ? [JOB_FINALIZER] : [] } };
    try {
      const written = (await this.ctx.kube('finalizer').apply<k8s.KubernetesObject>(body)) as unknown as Obj<ComputeJob>;
      this.ctx.state.jobWrites.remember(keyOf(job), written, written);
      this.ctx.metrics.registryWrites.inc({ resource: 'computejobs', verb: 'apply' });
      if (!present) this.ctx.log.info({ job: keyOf(job) }, 'Released cancelled job');
      return written;
    } catch (e) {
      // Releasing a job that is already gone: an apply to a missing object is a create, which the
      // schema refuses (422) for want of a spec, or a namespace being deleted refuses (403). Either
      // way there is nothing left to release.
      if (!present && (isNotFound(e) || apiErrorCode(e) === 422 || isNamespaceTerminating(e))) return job;
      throw e;
    }
  }

  private async createAssignment(n: NewAssignment, job: Obj<ComputeJob>): Promise<void> {
    const { state } = this.ctx;
    const key = `${n.namespace}/${n.name}`;
    if (state.assignments.get(n.name, n.namespace) || state.created.has(key)) return;
    const body: Obj<Assignment> = { apiVersion: AssignmentResource.apiVersion, kind: AssignmentResource.kind, metadata: { name: n.name, namespace: n.namespace, labels: n.labels, annotations: n.annotations }, spec: n.spec };
    const made = await this.kube.createCustom(AssignmentResource, body);
    this.ctx.metrics.registryWrites.inc({ resource: 'assignments', verb: 'create' });
    if (made === false) {
      // Exists already: ours from before a crash (same job and epoch), never another job's.
      const existing = await this.kube.getCustom<Obj<Assignment>>(AssignmentResource, n.name, n.namespace);
      if (existing && existing.spec.jobRef.uid !== job.metadata.uid) throw new Error(`Assignment ${key} belongs to another job (${existing.spec.jobRef.uid})`);
      if (existing) state.created.set(key, existing);
      return;
    }
    state.created.set(key, made);
    this.ctx.log.info({ job: keyOf(job), assignment: key, node: n.spec.nodeName, epoch: n.spec.epoch }, 'Placed job');
  }

  /** Takes an Assignment back (the agent stops its pod); "not found" means there is nothing to take back. */
  async withdraw(w: Withdrawal): Promise<void> {
    const body = { apiVersion: AssignmentResource.apiVersion, kind: AssignmentResource.kind, metadata: { name: w.name, namespace: w.namespace }, spec: { withdrawn: true, withdrawnReason: w.reason } };
    try {
      const written = (await this.kube.apply<k8s.KubernetesObject>(body)) as unknown as Obj<Assignment>;
      this.ctx.state.rememberAssignment(written);
      this.ctx.metrics.registryWrites.inc({ resource: 'assignments', verb: 'apply' });
      this.ctx.log.info({ assignment: `${w.namespace}/${w.name}`, reason: w.reason }, 'Withdrew assignment');
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  /**
   * Sets an Assignment's billableUntil, under a field manager of its own (it owns nothing else, so
   * its apply never drops a field another apply of the registry's set).
   */
  async closeWindow(stamp: Stamp): Promise<void> {
    const body = { apiVersion: AssignmentResource.apiVersion, kind: AssignmentResource.kind, metadata: { name: stamp.name, namespace: stamp.namespace }, spec: { billableUntil: stamp.billableUntil } };
    try {
      const written = (await this.ctx.kube('billing').apply<k8s.KubernetesObject>(body)) as unknown as Obj<Assignment>;
      this.ctx.state.rememberAssignment(written);
      this.ctx.metrics.registryWrites.inc({ resource: 'assignments', verb: 'apply' });
      this.ctx.log.info({ assignment: `${stamp.namespace}/${stamp.name}`, billableUntil: stamp.billableUntil }, 'Closed the run window of an assignment');
    } catch (e) {
      if (!isNotFound(e) && apiErrorCode(e) !== 422) throw e; // gone, or (422) already deleted and so no spec to apply to
    }
  }

  // ------------------------------------------------------------------------------------------
  // Metrics

  private recordPlacement(key: string, job: Obj<ComputeJob>, d: JobDecision): void {
    const { metrics } = this.ctx;
    if (d.placed) {
      metrics.placements.inc({ provider: d.placed.provider, retry: String(d.placed.epoch > 1) });
      const created = job.metadata.creationTimestamp ? new Date(job.metadata.creationTimestamp).getTime() : undefined;
      if (d.placed.epoch === 1 && created !== undefined) metrics.placementSeconds.observe(Math.max(0, (this.ctx.now().getTime() - created) / 1000));
    }
    if (d.waiting) this.waiting.set(key, d.waiting);
    else this.waiting.delete(key);
  }

  private recordJobGauges(): void {
    const { metrics, state } = this.ctx;
    const phases = new Map<string, number>();
    for (const j of state.jobs.list()) {
      const phase = state.jobPhase(j);
      phases.set(phase, (phases.get(phase) ?? 0) + 1);
    }
    metrics.computeJobs.reset();
    for (const [phase, n] of phases) metrics.computeJobs.set({ phase }, n);
    const reasons = new Map<string, number>();
    for (const list of this.waiting.values()) for (const r of list) reasons.set(r, (reasons.get(r) ?? 0) + 1);
    metrics.unschedulableJobs.reset();
    for (const [reason, n] of reasons) metrics.unschedulableJobs.set({ reason }, n);
  }
}
