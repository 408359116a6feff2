// The operator in registry mode: next to the registry's API server, it verifies tenants, keeps
// providers' Ready condition and reputation, places ComputeJobs and drives them to the end, keeps
// each job's money view, relays job logs to renters, and collects garbage. One folder per
// controller (jobs, providers, tenants, settlement, logs), each gather → pure decide → apply; this
// file only wires them: the caches' events to the controllers' queues, and the leader Lease to
// their start and stop. Every replica keeps its caches warm; only the leader runs the controllers,
// and every decisive write is a compare-and-swap on the object it was decided from, so even two
// processes that both believe they lead cannot place a job twice.
import * as k8s from '@kubernetes/client-node';
import type { Assignment, Settlement, UsageRecord } from '../api/index.js';
import { providerOfNamespace } from '../api/names.js';
import { assignmentEnded } from '../api/assignments.js';
import { apiErrorMessage } from '../kube/errors.js';
import { LeaderElector } from '../kube/leader.js';
import { Controller } from '../runtime/controller.js';
import { makeKubeFactory, settingsOf, type RegistryContext, type RegistryOptions } from './context.js';
import { JobController } from './jobs/controller.js';
import { GarbageCollector } from './jobs/gc.js';
import { LogRelayController } from './logs/controller.js';
import { ProviderController } from './providers/controller.js';
import { SettlementStatusController } from './settlement/controller.js';
import { RegistryState, keyOf, type Obj } from './state.js';
import { TenantController } from './tenants/controller.js';
import { UsageController } from './usage/controller.js';
import { CosignerController } from './settlement/cosigner.js';

export { REGISTRY_FIELD_MANAGER, type RegistryOptions } from './context.js';

export class Registry {
  readonly state: RegistryState;
  readonly jobController: Controller;
  readonly settlementController: Controller;
  readonly providerController: Controller;
  readonly tenantController: Controller;
  readonly logController: Controller;
  /** Verifies usage records and writes their status (registry/usage). */
  readonly usageController: Controller;
  /** Co-signs verified settlements and follows them on chain (registry/settlement/cosigner.ts); only with a chain and a key. */
  readonly cosignController?: Controller;
  private readonly jobs: JobController;
  private readonly gc: GarbageCollector;
  private readonly elector: LeaderElector;
  private readonly ctx: RegistryContext;
  private readonly o: RegistryOptions;
  private gcTimer?: NodeJS.Timeout;
  private leading = false;

  constructor(options: RegistryOptions) {
    // With a chain for co-signing, the matcher's payment check reads the same chain.
    const chain = options.settlement?.chain;
    const o: RegistryOptions = options.funds || !chain ? options : { ...options, funds: (payer, grantee) => chain.funds(payer, grantee) };
    this.o = o;
    const now = o.now ?? (() => new Date());
    const core = o.kc.makeApiClient(k8s.CoreV1Api);
    this.state = new RegistryState(
      o.kc,
      core,
      {
        job: (j) => this.jobController.enqueue(keyOf(j)),
        assignment: (a) => this.assignmentChanged(a),
        provider: (p) => this.providerChanged(p.metadata?.name ?? ''),
        gpuNode: () => this.enqueueWaitingJobs(),
        tenant: (t) => this.tenantChanged(t.metadata?.name ?? '', t.spec?.namespace),
        usageRecord: (r) => this.usageChanged(r),
        settlement: (stl) => this.settlementChanged(stl),
        log: (cm) => this.logController.enqueue(keyOf(cm)),
        heartbeat: (p) => this.providerController.enqueue(p),
      },
      o.log,
      now,
    );
    this.ctx = { options: o, settings: settingsOf(o), state: this.state, core, metrics: o.metrics, log: o.log, now, leading: () => this.leading, kube: makeKubeFactory(o.kc) };
    this.jobs = new JobController(this.ctx);
    this.gc = new GarbageCollector(this.ctx, (w) => this.jobs.withdraw(w), (stamp) => this.jobs.closeWindow(stamp));
    const providers = new ProviderController(this.ctx);
    const tenants = new TenantController(this.ctx);
    const settlement = new SettlementStatusController(this.ctx);
    const logs = new LogRelayController(this.ctx);
    const usage = new UsageController(this.ctx);
    const common = { metrics: o.metrics, log: o.log, resyncMs: o.resyncMs ?? 300_000 };
    const s = this.state;
    this.jobController = new Controller('computejob', (k) => this.jobs.reconcile(k), { ...common, keys: () => s.jobs.list().map(keyOf) });
    this.providerController = new Controller('provider', (k) => providers.reconcile(k), { ...common, keys: () => s.providers.list().map((p) => p.metadata?.name ?? '') });
    this.tenantController = new Controller('tenant', (k) => tenants.reconcile(k), { ...common, keys: () => s.tenants.list().map((t) => t.metadata?.name ?? '') });
    this.logController = new Controller('joblog', (k) => logs.reconcile(k), { ...common, keys: () => s.logs.list().map(keyOf) });
    this.settlementController = new Controller('settlement', (k) => settlement.reconcile(k), { ...common, keys: () => s.jobs.list().map(keyOf) });
    this.usageController = new Controller('usagerecord', (k) => usage.reconcile(k), { ...common, keys: () => new Set(s.usageRecords.list().map((r) => `${r.metadata.namespace ?? ''}/${r.spec.assignmentName}`)) });
    if (o.settlement) {
      const cosigner = new CosignerController(this.ctx, o.settlement);
      this.cosignController = new Controller('cosigner', (k) => cosigner.reconcile(k), { ...common, keys: () => s.settlements.list().map(keyOf) });
    }
    this.elector = new LeaderElector(o.kc, {
      lease: o.lease ?? { name: 'gpufed-registry', namespace: 'gpufed-system' },
      identity: o.identity,
      ...(o.leaseDurationMs ? { leaseDurationMs: o.leaseDurationMs } : {}),
      ...(o.renewDeadlineMs ? { renewDeadlineMs: o.renewDeadlineMs } : {}),
      ...(o.retryPeriodMs ? { retryPeriodMs: o.retryPeriodMs } : {}),
      onStartedLeading: () => this.startLeading(),
      onStoppedLeading: () => this.stopLeading(),
      onError: (err) => o.log.warn({ err: apiErrorMessage(err) }, 'Leader election round failed'),
      now,
    });
  }

  get isLeader(): boolean {
    return this.leading;
  }

  private get controllers(): Controller[] {
    return [this.tenantController, this.providerController, this.jobController, this.logController, this.settlementController, this.usageController, ...(this.cosignController ? [this.cosignController] : [])];
  }

  /** Fills every cache (so a new leader decides from the whole picture at once), then campaigns. */
  async start(): Promise<void> {
    this.o.metrics.leader.set(0);
    await this.state.start();
    this.elector.start();
    this.o.log.info({ identity: this.o.identity }, 'Started registry; campaigning for the lead');
  }

  async stop(): Promise<void> {
    await this.elector.stop();
    await this.stopControllers();
    await this.state.stop();
  }

  /** Deletes finished jobs' Assignments and logs after the retention period; withdraws orphans. */
  collectGarbage(): Promise<void> {
    return this.gc.collect();
  }

  private startLeading(): void {
    this.leading = true;
    this.o.metrics.leader.set(1);
    this.o.log.info({ identity: this.o.identity }, 'Became the leader; placing jobs');
    for (const c of this.controllers) c.start();
    this.enqueueEverything();
    this.gcTimer = setInterval(() => void this.collectGarbage().catch((e: unknown) => this.o.log.error({ err: apiErrorMessage(e) }, 'Garbage collection failed')), this.o.gcEveryMs ?? 60_000);
    this.gcTimer.unref();
  }

  /** A new leader looks at everything once: it decides from the whole picture, not from events it missed. */
  private enqueueEverything(): void {
    const s = this.state;
    for (const t of s.tenants.list()) this.tenantController.enqueue(t.metadata?.name ?? '');
    for (const p of s.providers.list()) this.providerController.enqueue(p.metadata?.name ?? '');
    for (const j of s.sortedJobs()) this.jobController.enqueue(keyOf(j));
    for (const cm of s.logs.list()) this.logController.enqueue(keyOf(cm));
    for (const j of s.jobs.list()) this.settlementController.enqueue(keyOf(j));
    for (const r of s.usageRecords.list()) this.usageController.enqueue(`${r.metadata.namespace ?? ''}/${r.spec.assignmentName}`);
    for (const stl of s.settlements.list()) this.cosignController?.enqueue(keyOf(stl));
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
    await Promise.all(this.controllers.map((c) => c.stop()));
  }

  // ------------------------------------------------------------------------------------------
  // Events: which controllers look again when something changed

  private assignmentChanged(a: Obj<Assignment>): void {
    // Its run window may have closed: its records are judged against it.
    if (this.state.recordsOfAssignment(a.metadata.namespace ?? '', a.metadata.name ?? '').length > 0) this.usageController.enqueue(keyOf(a));
    const ref = a.spec?.jobRef;
    if (ref) this.jobController.enqueue(`${ref.namespace}/${ref.name}`);
    const provider = providerOfNamespace(a.metadata?.namespace);
    if (provider && assignmentEnded(a)) {
      this.providerController.enqueue(provider);
      this.enqueueWaitingJobs(); // its GPUs are free again
    }
  }

  private providerChanged(name: string): void {
    this.providerController.enqueue(name);
    for (const j of this.state.jobs.list()) if (j.status?.placement?.provider === name) this.jobController.enqueue(keyOf(j));
    this.enqueueWaitingJobs();
  }

  private tenantChanged(name: string, namespace: string | undefined): void {
    this.tenantController.enqueue(name);
    for (const j of this.state.jobs.list(namespace)) this.jobController.enqueue(keyOf(j));
  }

  private usageChanged(r: Obj<UsageRecord>): void {
    const jobKey = `${r.spec.jobRef.namespace}/${r.spec.jobRef.name}`;
    this.usageController.enqueue(`${r.metadata.namespace ?? ''}/${r.spec.assignmentName}`);
    this.settlementController.enqueue(jobKey);
    this.jobController.enqueue(jobKey); // a cancelled job may be waiting for its final payment
    const provider = providerOfNamespace(r.metadata.namespace);
    if (provider) this.providerController.enqueue(provider); // its reputation counts disputed records
  }

  /** A proposal to co-sign or follow; its records' statuses show where their payment is. */
  private settlementChanged(stl: Obj<Settlement>): void {
    this.cosignController?.enqueue(keyOf(stl));
    const ns = stl.metadata.namespace ?? '';
    const chains = new Set(stl.spec.records.map((name) => this.state.usageRecords.get(name, ns)?.spec.assignmentName).filter((x): x is string => x !== undefined));
    for (const a of chains) this.usageController.enqueue(`${ns}/${a}`);
  }

  /** Jobs not placed yet: capacity or a provider changed, so they may fit now. */
  private enqueueWaitingJobs(): void {
    if (!this.leading) return;
    for (const j of this.state.sortedJobs()) {
      const phase = j.status?.phase;
      if (phase === undefined || phase === 'Pending') this.jobController.enqueue(keyOf(j));
    }
  }
}
