// The operator in registry mode: next to the registry's API server, it verifies tenants, keeps
// providers' Ready condition and reputation, places ComputeJobs and drives them to the end, relays
// job logs to renters, and collects garbage. Every replica keeps its caches warm; only the leader
// (a Lease) runs the controllers, and every decisive write is a compare-and-swap on the object it
// was decided from, so even two processes that both believe they lead cannot place a job twice.
import * as k8s from '@kubernetes/client-node';
import { isDeepStrictEqual } from 'node:util';
import { ComputeJobConditionType, ProviderConditionType } from '../api/conditions.js';
import { AssignmentResource, ComputeJobResource, GpuNodeResource, ProviderResource, TenantResource, UsageRecordResource, providerNamespace, providerOfNamespace } from '../api/index.js';
import type { Assignment, ComputeJob, ComputeJobStatus, GpuNode, Provider, Tenant, TenantStatus, UsageRecord } from '../api/index.js';
import { parseCoin } from '../scheduling/coin.js';
import { costOf, covers, type PayerFunds } from '../settlement/grants.js';
import { settledState, settlementStatus } from './settlement-status.js';
import { ASSIGNMENT_NAME_ANNOTATION, JobLabel, MANAGED_BY } from '../agent/jobpod.js';
import { Kube } from '../kube/client.js';
import { apiErrorCode, apiErrorMessage, isNamespaceTerminating, isNotFound } from '../kube/errors.js';
import { Watched, allPath, listAllCustom } from '../kube/informer.js';
import { LeaderElector } from '../kube/leader.js';
import { RecentWrites } from '../kube/recent-writes.js';
import { Controller } from '../runtime/controller.js';
import { matchProviders, type PaymentCheck, type Reservation } from '../scheduling/match.js';
import { assignmentEnded, reservationsFor } from '../scheduling/reservations.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import { JOB_FINALIZER, JOB_UID_LABEL, decideJob, type JobDecision, type NewAssignment, type Withdrawal } from './job-lifecycle.js';
import { relayedLog, RELAY_MANAGED_BY } from './log-relay.js';
import { decideProvider, REPUTATION_COUNTED_ANNOTATION } from './providers.js';
import { decideTenant } from './tenants.js';
import { normalized } from '../kube/manifests.js';

export const REGISTRY_FIELD_MANAGER = 'gpufed-registry';

export interface RegistryOptions {
  /** The registry API server, with the registry operator's credentials. */
  kc: k8s.KubeConfig;
  /** This replica's identity in the Lease. */
  identity: string;
  lease?: { name: string; namespace: string };
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** No new jobs go to a provider whose heartbeat is older than this (Ready False). Default 30 s. */
  heartbeatTimeoutMs?: number;
  /** A provider whose heartbeat is older than this is lost: its running jobs are placed again. Default 3 min. */
  providerLostTimeoutMs?: number;
  /** How long past maxDuration the registry waits for the agent to stop a job. Default 60 s. */
  deadlineGraceMs?: number;
  /** Finished jobs' Assignments and logs are deleted this long after they ended. Default 24 h. */
  retentionMs?: number;
  gcEveryMs?: number;
  resyncMs?: number;
  /**
   * What a payer has granted a provider's hot key and holds, read from the chain: the matcher's
   * payment check. Absent: every payer can pay (no chain).
   */
  funds?: (payer: string, grantee: string) => Promise<PayerFunds>;
  /** How much of a job a grant must cover before it is placed (default 5 min: the agents' default period). */
  paymentCoverMs?: number;
  /** How long a cancelled job waits for its final settlement before it is let go anyway (default 10 min). */
  settleWaitMs?: number;
  /** Called when this replica loses the lead; the operator process exits (a standby takes over). */
  onLostLeadership?: () => void;
  metrics: Metrics;
  log: Logger;
  now?: () => Date;
}

type Obj<T> = T & k8s.KubernetesObject;

const keyOf = (o: k8s.KubernetesObject): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;
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

export class Registry {
  readonly jobs: Watched<Obj<ComputeJob>>;
  readonly assignments: Watched<Obj<Assignment>>;
  readonly providers: Watched<Obj<Provider>>;
  readonly gpuNodes: Watched<Obj<GpuNode>>;
  readonly tenants: Watched<Obj<Tenant>>;
  readonly logs: Watched<k8s.V1ConfigMap>;
  readonly usageRecords: Watched<Obj<UsageRecord>>;
  readonly jobController: Controller;
  readonly settlementController: Controller;
  readonly providerController: Controller;
  readonly tenantController: Controller;
  readonly logController: Controller;
  private readonly elector: LeaderElector;
  private readonly kube: Kube;
  private readonly kubeFinalizer: Kube;
  private readonly kubeReputation: Kube;
  private readonly kubeSettlement: Kube;
  /** Payers' funds towards providers, read from the chain for the payment check, briefly cached. */
  private readonly fundsCache = new Map<string, { at: number; funds: PayerFunds }>(); // stale entries dropped on each check
  private readonly core: k8s.CoreV1Api;
  private readonly now: () => Date;
  /** Our own writes the caches may not show yet (controller-runtime's expectations). */
  private readonly jobWrites = new RecentWrites<Obj<ComputeJob>>();
  private readonly assignmentWrites = new RecentWrites<Obj<Assignment>>();
  private readonly providerWrites = new RecentWrites<Obj<Provider>>();
  /** Assignments created that the cache does not show yet, by namespace/name. */
  private readonly created = new Map<string, Obj<Assignment>>();
  /** Why each waiting job waits (for the unschedulable gauge), by job key. */
  private readonly waiting = new Map<string, string[]>();
  private gcTimer?: NodeJS.Timeout;
  private leading = false;

  constructor(private readonly o: RegistryOptions) {
    this.now = o.now ?? (() => new Date());
    this.kube = new Kube(o.kc, `${REGISTRY_FIELD_MANAGER}/jobs`);
    this.kubeFinalizer = new Kube(o.kc, `${REGISTRY_FIELD_MANAGER}/finalizer`);
    this.kubeReputation = new Kube(o.kc, `${REGISTRY_FIELD_MANAGER}/providers`);
    this.kubeSettlement = new Kube(o.kc, `${REGISTRY_FIELD_MANAGER}/settlement`);
    this.core = o.kc.makeApiClient(k8s.CoreV1Api);
    const common = { metrics: o.metrics, log: o.log, resyncMs: o.resyncMs ?? 300_000 };
    this.jobController = new Controller('computejob', (k) => this.reconcileJob(k), { ...common, keys: () => this.jobs.list().map(keyOf) });
    this.providerController = new Controller('provider', (k) => this.reconcileProvider(k), { ...common, keys: () => this.providers.list().map((p) => p.metadata?.name ?? '') });
    this.tenantController = new Controller('tenant', (k) => this.reconcileTenant(k), { ...common, keys: () => this.tenants.list().map((t) => t.metadata?.name ?? '') });
    this.logController = new Controller('joblog', (k) => this.reconcileLog(k), { ...common, keys: () => this.logs.list().map(keyOf) });
    this.settlementController = new Controller('settlement', (k) => this.reconcileSettlement(k), { ...common, keys: () => this.jobs.list().map(keyOf) });
    const onError = (what: string) => (err: unknown) => o.log.warn({ err: apiErrorMessage(err) }, `Watch of ${what} failed; restarting it`);
    const watch = <T extends k8s.KubernetesObject>(ref: typeof ComputeJobResource | typeof AssignmentResource | typeof ProviderResource | typeof GpuNodeResource | typeof TenantResource, onEvent: (obj: T) => void) =>
      new Watched<T>(o.kc, { path: allPath(ref), list: listAllCustom<T>(o.kc, ref), onEvent, onError: onError(ref.plural) });
    this.jobs = watch<Obj<ComputeJob>>(ComputeJobResource, (j) => this.jobController.enqueue(keyOf(j)));
    this.assignments = watch<Obj<Assignment>>(AssignmentResource, (a) => this.assignmentChanged(a));
    this.providers = watch<Obj<Provider>>(ProviderResource, (p) => this.providerChanged(p));
    this.gpuNodes = watch<Obj<GpuNode>>(GpuNodeResource, () => this.enqueueWaitingJobs());
    this.tenants = watch<Obj<Tenant>>(TenantResource, (t) => this.tenantChanged(t));
    this.usageRecords = new Watched<Obj<UsageRecord>>(o.kc, {
      path: allPath(UsageRecordResource),
      list: listAllCustom<Obj<UsageRecord>>(o.kc, UsageRecordResource),
      onEvent: (r) => this.usageChanged(r),
      onError: onError(UsageRecordResource.plural),
      indexBy: (r) => r.spec.jobRef.uid, // a job's records without a scan of all of them (jobs × periods)
    });
    const selector = `${JobLabel.ManagedBy} in (${MANAGED_BY},${RELAY_MANAGED_BY})`;
    this.logs = new Watched<k8s.V1ConfigMap>(o.kc, {
      path: '/api/v1/configmaps',
      list: () => this.core.listConfigMapForAllNamespaces({ labelSelector: selector }),
      labelSelector: selector,
      onEvent: (cm) => this.logController.enqueue(keyOf(cm)),
      onError: onError('configmaps'),
    });
    this.elector = new LeaderElector(o.kc, {
      lease: o.lease ?? { name: 'gpufed-registry', namespace: 'gpufed-system' },
      identity: o.identity,
      ...(o.leaseDurationMs ? { leaseDurationMs: o.leaseDurationMs } : {}),
      ...(o.renewDeadlineMs ? { renewDeadlineMs: o.renewDeadlineMs } : {}),
      ...(o.retryPeriodMs ? { retryPeriodMs: o.retryPeriodMs } : {}),
      onStartedLeading: () => this.startLeading(),
      onStoppedLeading: () => this.stopLeading(),
      onError: (err) => o.log.warn({ err: apiErrorMessage(err) }, 'Leader election round failed'),
      now: this.now,
    });
  }

  get isLeader(): boolean {
    return this.leading;
  }

  /** Fills every cache (so a new leader decides from the whole picture at once), then campaigns. */
  async start(): Promise<void> {
    this.o.metrics.leader.set(0);
    await Promise.all([this.jobs, this.assignments, this.providers, this.gpuNodes, this.tenants, this.logs, this.usageRecords].map((w) => w.start()));
    this.elector.start();
    this.o.log.info({ identity: this.o.identity }, 'Started registry; campaigning for the lead');
  }

  async stop(): Promise<void> {
    await this.elector.stop();
    await this.stopControllers();
    await Promise.all([this.jobs, this.assignments, this.providers, this.gpuNodes, this.tenants, this.logs, this.usageRecords].map((w) => w.stop()));
  }

  private startLeading(): void {
    this.leading = true;
    this.o.metrics.leader.set(1);
    this.o.log.info({ identity: this.o.identity }, 'Became the leader; placing jobs');
    for (const c of [this.tenantController, this.providerController, this.jobController, this.logController, this.settlementController]) c.start();
    for (const t of this.tenants.list()) this.tenantController.enqueue(t.metadata?.name ?? '');
    for (const p of this.providers.list()) this.providerController.enqueue(p.metadata?.name ?? '');
    for (const j of this.sortedJobs()) this.jobController.enqueue(keyOf(j));
    for (const cm of this.logs.list()) this.logController.enqueue(keyOf(cm));
    for (const j of this.jobs.list()) this.settlementController.enqueue(keyOf(j));
    this.gcTimer = setInterval(() => void this.collectGarbage().catch((e: unknown) => this.o.log.error({ err: apiErrorMessage(e) }, 'Garbage collection failed')), this.o.gcEveryMs ?? 60_000);
    this.gcTimer.unref();
  }

  private stopLeading(): void {
    const was = this.leading;
    this.leading = false;
    this.o.metrics.leader.set(0);
    if (!was) return;
    this.o.log.warn({ identity: this.o.identity }, 'Lost the lead; stopping');
    void this.stopControllers();
    this.o.onLostLeadership?.();
  }

  private async stopControllers(): Promise<void> {
    if (this.gcTimer) clearInterval(this.gcTimer);
    await Promise.all([this.tenantController, this.providerController, this.jobController, this.logController, this.settlementController].map((c) => c.stop()));
  }

  /** Oldest first, so a queue of waiting jobs is served in the order they were submitted. */
  private sortedJobs(): Obj<ComputeJob>[] {
    const at = (j: Obj<ComputeJob>) => String(j.metadata.creationTimestamp ? new Date(j.metadata.creationTimestamp).toISOString() : '');
    return [...this.jobs.list()].sort((a, b) => at(a).localeCompare(at(b)) || keyOf(a).localeCompare(keyOf(b)));
  }

  // ------------------------------------------------------------------------------------------
  // Views: the caches with our own writes laid over them

  private job(key: string): Obj<ComputeJob> | undefined {
    const [ns, name] = key.split('/');
    const cached = this.jobs.get(name ?? '', ns);
    if (!cached) return undefined;
    return this.jobWrites.newerThan(key, cached) ?? cached;
  }

  /** Every Assignment as we know it: the cache, our newer writes, and creations not in the cache yet. */
  private allAssignments(): Obj<Assignment>[] {
    const out = this.assignments.list().map((a) => this.assignmentWrites.newerThan(keyOf(a), a) ?? a);
    for (const [k, a] of this.created) {
      if (this.assignments.get(a.metadata.name ?? '', a.metadata.namespace)) this.created.delete(k);
      else out.push(a);
    }
    return out;
  }

  private reservations(assignments: readonly Assignment[]): Reservation[] {
    const r = reservationsFor(assignments, this.gpuNodes.list());
    this.o.metrics.reservedGpus.reset();
    const byProvider = new Map<string, number>();
    for (const x of r) byProvider.set(x.provider, (byProvider.get(x.provider) ?? 0) + x.units);
    for (const [p, n] of byProvider) this.o.metrics.reservedGpus.set({ provider: p }, n);
    return r;
  }

  // ------------------------------------------------------------------------------------------
  // Events

  private assignmentChanged(a: Obj<Assignment>): void {
    const ref = a.spec?.jobRef;
    if (ref) this.jobController.enqueue(`${ref.namespace}/${ref.name}`);
    const provider = providerOfNamespace(a.metadata?.namespace);
    if (provider && assignmentEnded(a)) {
      this.providerController.enqueue(provider);
      this.enqueueWaitingJobs(); // its GPUs are free again
    }
  }

  private providerChanged(p: Obj<Provider>): void {
    const name = p.metadata?.name ?? '';
    this.providerController.enqueue(name);
    for (const j of this.jobs.list()) if (j.status?.placement?.provider === name) this.jobController.enqueue(keyOf(j));
    this.enqueueWaitingJobs();
  }

  private tenantChanged(t: Obj<Tenant>): void {
    this.tenantController.enqueue(t.metadata?.name ?? '');
    for (const j of this.jobs.list(t.spec?.namespace)) this.jobController.enqueue(keyOf(j));
  }

  /** Jobs not placed yet: capacity or a provider changed, so they may fit now. */
  private enqueueWaitingJobs(): void {
    if (!this.leading) return;
    for (const j of this.sortedJobs()) {
      const phase = j.status?.phase;
      if (phase === undefined || phase === 'Pending') this.jobController.enqueue(keyOf(j));
    }
  }

  // ------------------------------------------------------------------------------------------
  // ComputeJobs

  private async reconcileJob(key: string): Promise<{ requeueAfterMs: number } | void> {
    let job = this.job(key);
    if (!job) {
      this.waiting.delete(key);
      return this.recordJobGauges();
    }
    const uid = job.metadata.uid ?? '';
    const assignments = this.allAssignments();
    const mine = assignments.filter((a) => a.metadata.labels?.[JOB_UID_LABEL] === uid);
    const now = this.now();
    const reservations = this.reservations(assignments);
    const snapshot = { providers: this.providers.list(), gpuNodes: this.gpuNodes.list(), reservations, heartbeatTimeoutMs: this.o.heartbeatTimeoutMs ?? 30_000 };
    const spec = job.spec;
    const payment = await this.paymentCheck(job);
    const decision = decideJob({
      job,
      ...(this.tenants.get(job.metadata.namespace ?? '') ? { tenant: this.tenants.get(job.metadata.namespace ?? '') } : {}),
      assignments: mine,
      providers: new Map(this.providers.list().map((p) => [p.metadata.name ?? '', p])),
      match: (exclude) => matchProviders(snapshot, { resources: spec.resources, maxPricePerGpuHour: spec.maxPricePerGpuHour, ...(spec.placement ? { placement: spec.placement } : {}), excludeProviders: exclude }, now, payment ? { payment } : {}),
      now,
      providerLostTimeoutMs: this.o.providerLostTimeoutMs ?? 180_000,
      deadlineGraceMs: this.o.deadlineGraceMs ?? 60_000,
      ...this.settlementWait(uid, mine),
    });
    for (const w of decision.withdraw) await this.withdraw(w);
    if (decision.finalizer === 'add') job = await this.setFinalizer(job, true);
    job = await this.writeJobStatus(key, job, decision);
    if (decision.create) await this.createAssignment(decision.create, job);
    if (decision.finalizer === 'remove') await this.setFinalizer(job, false);
    this.recordPlacement(key, job, decision);
    this.recordJobGauges();
    return decision.requeueAfterMs === undefined ? undefined : { requeueAfterMs: decision.requeueAfterMs };
  }

  // ------------------------------------------------------------------------------------------
  // Money: the payment check before placing, and the job's settlement status

  /**
   * The matcher's payment check for a job that may be placed now: its payer's grant to each
   * provider's hot key must be live, in the job's denom, and cover the first paymentCoverMs. The
   * chain is read here (async, briefly cached); the check itself stays a pure function of that.
   */
  private async paymentCheck(job: Obj<ComputeJob>): Promise<PaymentCheck | undefined> {
    const funds = this.o.funds;
    const payer = this.tenants.get(job.metadata.namespace ?? '')?.status?.verifiedAddress;
    if (!funds || !payer || ['Running', 'Succeeded', 'Failed', 'Cancelling'].includes(job.status?.phase ?? '') || job.metadata.deletionTimestamp) return undefined;
    const byWallet = await this.fundsByWallet(funds, payer);
    const units = job.spec.resources.gpu.count;
    const seconds = Math.min(job.spec.maxDurationSeconds ?? 86_400, (this.o.paymentCoverMs ?? 300_000) / 1000);
    const now = this.now().getTime();
    return (provider, price) => {
      const need = costOf(price, units, seconds);
      const v = covers(byWallet.get(provider.spec.wallet) ?? { balance: new Map() }, need, provider.spec.payout ?? provider.spec.wallet, now);
      return v.ok ? v : { ok: false, reason: `payment: ${v.message} (${need.amount}${need.denom} for the first ${seconds}s)` };
    };
  }

  /** The payer's funds towards every provider's hot key, from the chain or read in the last FUNDS_CACHE_MS. */
  private async fundsByWallet(funds: NonNullable<RegistryOptions['funds']>, payer: string): Promise<Map<string, PayerFunds>> {
    const byWallet = new Map<string, PayerFunds>();
    const nowMs = this.now().getTime();
    for (const [key, hit] of this.fundsCache) if (nowMs - hit.at >= FUNDS_CACHE_MS) this.fundsCache.delete(key);
    for (const p of this.providers.list()) {
      const key = `${payer}/${p.spec.wallet}`;
      const hit = this.fundsCache.get(key);
      if (hit) byWallet.set(p.spec.wallet, hit.funds);
      else {
        const f = await funds(payer, p.spec.wallet);
        this.fundsCache.set(key, { at: this.now().getTime(), funds: f });
        byWallet.set(p.spec.wallet, f);
      }
    }
    return byWallet;
  }

  /** With a chain, a cancelled job is let go once it is paid; without one nothing is ever paid. */
  private settlementWait(uid: string, mine: readonly Assignment[]): { unsettled?: string[]; settleWaitMs?: number } {
    if (!this.o.funds) return {};
    const records = this.usageRecords.indexed(uid);
    return { unsettled: settledState(mine, records, this.lostProviders()).waitingFor, settleWaitMs: this.o.settleWaitMs ?? 600_000 };
  }

  /** Providers the registry considers lost (their agents may never write a final record). */
  private lostProviders(): Set<string> {
    const limit = this.o.providerLostTimeoutMs ?? 180_000;
    const now = this.now().getTime();
    return new Set(this.providers.list().filter((p) => now - Date.parse(p.status?.lastHeartbeatTime ?? '') >= limit || !p.status?.lastHeartbeatTime).map((p) => p.metadata.name ?? ''));
  }

  private usageChanged(r: Obj<UsageRecord>): void {
    const key = `${r.spec.jobRef.namespace}/${r.spec.jobRef.name}`;
    this.settlementController.enqueue(key);
    this.jobController.enqueue(key); // a cancelled job may be waiting for its final payment
  }

  /** Writes the job's money fields (usage, cost, paid, settlements, Settled) when they changed. */
  private async reconcileSettlement(key: string): Promise<void> {
    const job = this.job(key);
    if (!job || parseCoinSafe(job.spec.maxPricePerGpuHour) === undefined) return;
    const uid = job.metadata.uid ?? '';
    const records = this.usageRecords.indexed(uid);
    const assignments = this.allAssignments().filter((a) => a.metadata.labels?.[JOB_UID_LABEL] === uid);
    if (records.length === 0 && assignments.length === 0) return;
    const want = settlementStatus(job, assignments, records, this.now(), this.lostProviders());
    const have = { usage: job.status?.usage, cost: job.status?.cost, paid: job.status?.paid, settlements: job.status?.settlements, conditions: (job.status?.conditions ?? []).filter((c) => c.type === ComputeJobConditionType.Settled) };
    if (isDeepStrictEqual(normalized(have), normalized(want))) return;
    await this.kubeSettlement.applyStatus(ComputeJobResource, job.metadata.name ?? '', job.metadata.namespace, want);
    this.o.metrics.registryWrites.inc({ resource: 'computejobs', verb: 'apply_status' });
  }

  /** Writes the registry's part of the status if it changed, as a compare-and-swap on the version decided from. */
  private async writeJobStatus(key: string, job: Obj<ComputeJob>, decision: JobDecision): Promise<Obj<ComputeJob>> {
    const want = registryPart(decision.status);
    if (isDeepStrictEqual(registryPart(job.status), want)) return job;
    if (job.metadata.deletionTimestamp && decision.finalizer !== 'keep' && !job.metadata.finalizers?.includes(JOB_FINALIZER)) return job;
    const written = (await this.kube.applyStatus(ComputeJobResource, job.metadata.name ?? '', job.metadata.namespace, want, job.metadata.resourceVersion)) as Obj<ComputeJob>;
    this.jobWrites.remember(key, written, written);
    this.o.metrics.registryWrites.inc({ resource: 'computejobs', verb: 'apply_status' });
    return written;
  }

  private async setFinalizer(job: Obj<ComputeJob>, present: boolean): Promise<Obj<ComputeJob>> {
    const body = { apiVersion: ComputeJobResource.apiVersion, kind: ComputeJobResource.kind, metadata: { name: job.metadata.name ?? '', namespace: job.metadata.namespace ?? '', finalizers: present ? [JOB_FINALIZER] : [] } };
    try {
      const written = (await this.kubeFinalizer.apply<k8s.KubernetesObject>(body)) as unknown as Obj<ComputeJob>;
      this.jobWrites.remember(keyOf(job), written, written);
      this.o.metrics.registryWrites.inc({ resource: 'computejobs', verb: 'apply' });
      if (!present) this.o.log.info({ job: keyOf(job) }, 'Released cancelled job');
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
    const key = `${n.namespace}/${n.name}`;
    if (this.assignments.get(n.name, n.namespace) || this.created.has(key)) return;
    const body: Obj<Assignment> = { apiVersion: AssignmentResource.apiVersion, kind: AssignmentResource.kind, metadata: { name: n.name, namespace: n.namespace, labels: n.labels, annotations: n.annotations }, spec: n.spec };
    const made = await this.kube.createCustom(AssignmentResource, body);
    this.o.metrics.registryWrites.inc({ resource: 'assignments', verb: 'create' });
    if (made === false) {
      // Exists already: ours from before a crash (same job and epoch), never another job's.
      const existing = await this.kube.getCustom<Obj<Assignment>>(AssignmentResource, n.name, n.namespace);
      if (existing && existing.spec.jobRef.uid !== job.metadata.uid) throw new Error(`Assignment ${key} belongs to another job (${existing.spec.jobRef.uid})`);
      if (existing) this.created.set(key, existing);
      return;
    }
    this.created.set(key, made);
    this.o.log.info({ job: keyOf(job), assignment: key, node: n.spec.nodeName, epoch: n.spec.epoch }, 'Placed job');
  }

  private async withdraw(w: Withdrawal): Promise<void> {
    const body = { apiVersion: AssignmentResource.apiVersion, kind: AssignmentResource.kind, metadata: { name: w.name, namespace: w.namespace }, spec: { withdrawn: true, withdrawnReason: w.reason } };
    try {
      const written = (await this.kube.apply<k8s.KubernetesObject>(body)) as unknown as Obj<Assignment>;
      this.assignmentWrites.remember(`${w.namespace}/${w.name}`, written, written);
      const pending = this.created.get(`${w.namespace}/${w.name}`);
      if (pending) this.created.set(`${w.namespace}/${w.name}`, written);
      this.o.metrics.registryWrites.inc({ resource: 'assignments', verb: 'apply' });
      this.o.log.info({ assignment: `${w.namespace}/${w.name}`, reason: w.reason }, 'Withdrew assignment');
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  private recordPlacement(key: string, job: Obj<ComputeJob>, d: JobDecision): void {
    if (d.placed) {
      this.o.metrics.placements.inc({ provider: d.placed.provider, retry: String(d.placed.epoch > 1) });
      const created = job.metadata.creationTimestamp ? new Date(job.metadata.creationTimestamp).getTime() : undefined;
      if (d.placed.epoch === 1 && created !== undefined) this.o.metrics.placementSeconds.observe(Math.max(0, (this.now().getTime() - created) / 1000));
    }
    if (d.waiting) this.waiting.set(key, d.waiting);
    else this.waiting.delete(key);
  }

  private recordJobGauges(): void {
    const phases = new Map<string, number>();
    for (const j of this.jobs.list()) {
      const phase = (this.jobWrites.newerThan(keyOf(j), j) ?? j).status?.phase ?? 'Pending';
      phases.set(phase, (phases.get(phase) ?? 0) + 1);
    }
    this.o.metrics.computeJobs.reset();
    for (const [phase, n] of phases) this.o.metrics.computeJobs.set({ phase }, n);
    const reasons = new Map<string, number>();
    for (const list of this.waiting.values()) for (const r of list) reasons.set(r, (reasons.get(r) ?? 0) + 1);
    this.o.metrics.unschedulableJobs.reset();
    for (const [reason, n] of reasons) this.o.metrics.unschedulableJobs.set({ reason }, n);
  }

  // ------------------------------------------------------------------------------------------
  // Providers and tenants

  private async reconcileProvider(name: string): Promise<{ requeueAfterMs: number } | void> {
    const cached = this.providers.get(name);
    if (!cached) return this.recordProviderGauge();
    const provider = this.providerWrites.newerThan(name, cached) ?? cached;
    const ns = providerNamespace(name);
    const assignments = this.allAssignments().filter((a) => a.metadata.namespace === ns);
    const d = decideProvider(provider, assignments, this.now(), this.o.heartbeatTimeoutMs ?? 30_000);
    const have = normalized({ conditions: provider.status?.conditions, reputation: provider.status?.reputation, observedGeneration: provider.status?.observedGeneration });
    if (!isDeepStrictEqual(have, normalized(d.status))) {
      // Compare-and-swap: the reputation is a count, never added twice from a stale read.
      const written = (await this.kubeReputation.applyStatus(ProviderResource, name, undefined, d.status, provider.metadata.resourceVersion)) as Obj<Provider>;
      this.providerWrites.remember(name, written, written);
      this.o.metrics.registryWrites.inc({ resource: 'providers', verb: 'apply_status' });
    }
    for (const a of d.counted) await this.markCounted(a);
    this.recordProviderGauge();
    return d.requeueAfterMs === undefined ? undefined : { requeueAfterMs: d.requeueAfterMs };
  }

  private recordProviderGauge(): void {
    const ready = new Map<string, number>([['True', 0], ['False', 0], ['Unknown', 0]]);
    for (const p of this.providers.list()) {
      const latest = this.providerWrites.newerThan(p.metadata.name ?? '', p) ?? p;
      const status = latest.status?.conditions?.find((c) => c.type === ProviderConditionType.Ready)?.status ?? 'Unknown';
      ready.set(status, (ready.get(status) ?? 0) + 1);
    }
    for (const [r, n] of ready) this.o.metrics.providers.set({ ready: r }, n);
  }

  private async markCounted(a: Obj<Assignment>): Promise<void> {
    const body = { apiVersion: AssignmentResource.apiVersion, kind: AssignmentResource.kind, metadata: { name: a.metadata.name ?? '', namespace: a.metadata.namespace ?? '', annotations: { [REPUTATION_COUNTED_ANNOTATION]: 'true' } } };
    try {
      const written = (await this.kubeReputation.apply<k8s.KubernetesObject>(body)) as unknown as Obj<Assignment>;
      this.assignmentWrites.remember(keyOf(a), written, written);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }

  private async reconcileTenant(name: string): Promise<{ requeueAfterMs: number } | void> {
    const tenant = this.tenants.get(name);
    if (!tenant) return;
    let exists = true;
    try {
      await this.core.readNamespace({ name: tenant.spec.namespace });
    } catch (e) {
      if (!isNotFound(e)) throw e;
      exists = false;
    }
    const want: TenantStatus = decideTenant(tenant, exists, this.now());
    // Namespaces are not watched: onboarding may create the namespace just after the Tenant, so look again soon.
    const again = exists ? undefined : { requeueAfterMs: 2000 };
    if (isDeepStrictEqual(normalized(tenant.status), normalized(want))) return again;
    await this.kube.applyStatus(TenantResource, name, undefined, want);
    this.o.metrics.registryWrites.inc({ resource: 'tenants', verb: 'apply_status' });
    this.o.log.info({ tenant: name, verified: want.verifiedAddress !== undefined }, 'Checked tenant proof');
    return again;
  }

  // ------------------------------------------------------------------------------------------
  // Logs and garbage

  /** Copies the current attempt's log tail from the provider's namespace into the job's. */
  private async reconcileLog(key: string): Promise<void> {
    const [ns, name] = key.split('/');
    const cm = this.logs.get(name ?? '', ns);
    const job = cm ? this.jobOfLog(cm) : undefined;
    if (!cm || !job) return;
    const want = relayedLog(cm, job);
    const have = this.logs.get(want.metadata?.name ?? '', want.metadata?.namespace);
    if (have && isDeepStrictEqual(have.data, want.data)) return;
    await this.kube.apply(want);
    this.o.metrics.registryWrites.inc({ resource: 'configmaps', verb: 'apply' });
  }

  /** The job a pushed log belongs to, if it is its current attempt's. */
  private jobOfLog(cm: k8s.V1ConfigMap): Obj<ComputeJob> | undefined {
    const ns = cm.metadata?.namespace;
    if (providerOfNamespace(ns) === undefined) return undefined;
    const assignmentName = cm.metadata?.annotations?.[ASSIGNMENT_NAME_ANNOTATION] ?? '';
    const a = this.allAssignments().find((x) => x.metadata.namespace === ns && x.metadata.name === assignmentName);
    if (!a) return undefined;
    const job = this.job(`${a.spec.jobRef.namespace}/${a.spec.jobRef.name}`);
    const current = job?.metadata.uid === a.spec.jobRef.uid && job.status?.placement?.assignmentName === assignmentName;
    return current ? job : undefined;
  }

  /** Deletes finished jobs' Assignments and logs after the retention period; withdraws orphans. */
  async collectGarbage(): Promise<void> {
    const now = this.now().getTime();
    const retention = this.o.retentionMs ?? 86_400_000;
    const jobsByUid = new Map(this.jobs.list().map((j) => [j.metadata.uid ?? '', j]));
    for (const a of this.allAssignments()) {
      const job = jobsByUid.get(a.spec.jobRef.uid);
      if (job && !['Succeeded', 'Failed'].includes(job.status?.phase ?? '')) continue; // the job's controller owns it
      if (!a.spec.withdrawn && !assignmentEnded(a)) {
        // Its job is gone (deleted past the finalizer) or over, yet it runs: take it back.
        await this.withdraw({ namespace: a.metadata.namespace ?? '', name: a.metadata.name ?? '', reason: job ? 'Superseded' : 'Cancelled' });
      } else if (now - endedAt(a) >= retention) {
        await this.kube.deleteCustom(AssignmentResource, a.metadata.name ?? '', a.metadata.namespace);
        this.o.metrics.registryWrites.inc({ resource: 'assignments', verb: 'delete' });
        this.o.log.info({ assignment: keyOf(a) }, 'Deleted finished assignment after retention');
      }
    }
    await this.collectLogs();
  }

  /** Pushed logs whose Assignment is gone (collected above, or deleted by hand). */
  private async collectLogs(): Promise<void> {
    const live = new Set(this.allAssignments().map(keyOf));
    for (const cm of this.logs.list()) {
      const ns = cm.metadata?.namespace ?? '';
      const assignment = cm.metadata?.annotations?.[ASSIGNMENT_NAME_ANNOTATION];
      if (providerOfNamespace(ns) === undefined || !assignment || live.has(`${ns}/${assignment}`)) continue;
      try {
        await this.core.deleteNamespacedConfigMap({ name: cm.metadata?.name ?? '', namespace: ns });
        this.o.metrics.registryWrites.inc({ resource: 'configmaps', verb: 'delete' });
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
  }
}

function parseCoinSafe(coin: string): bigint | undefined {
  try {
    return parseCoin(coin).amount;
  } catch {
    return undefined;
  }
}

/** When an Assignment ended: its completion time, else (withdrawn before it ran) its creation. */
function endedAt(a: Assignment): number {
  return Date.parse(a.status?.completionTime ?? '') || Date.parse(String(a.metadata.creationTimestamp ?? '')) || 0;
}
