// What every registry controller reads: one watched cache per kind, with the registry's own recent
// writes laid over them (a watch lags the writes that caused it: controller-runtime's
// expectations). Controllers decide from these views and never from a cache alone, so a controller
// never acts twice on a state it already changed. Every replica keeps them warm; only the leader
// runs the controllers.
import * as k8s from '@kubernetes/client-node';
import { AssignmentResource, ComputeJobResource, GpuNodeResource, ProviderResource, SettlementResource, TenantResource, UsageRecordResource, type Assignment, type ComputeJob, type GpuNode, type Provider, type Settlement, type Tenant, type UsageRecord } from '../api/index.js';
import { AGENT_MANAGED_BY, HEARTBEAT_LEASE, JobLabel, REGISTRY_MANAGED_BY } from '../api/labels.js';
import { apiErrorMessage } from '../kube/errors.js';
import { Watched, allPath, listAllCustom } from '../kube/informer.js';
import { RecentWrites } from '../kube/recent-writes.js';
import type { Logger } from '../telemetry/log.js';
import { Heartbeats } from './providers/heartbeats.js';

export type Obj<T> = T & k8s.KubernetesObject;

/** The usage records' indexes: by their job's uid, and by `<namespace>/<assignment>`. */
export const RECORDS_BY_JOB = 'job';
export const RECORDS_BY_ASSIGNMENT = 'assignment';

export const keyOf = (o: k8s.KubernetesObject): string => `${o.metadata?.namespace ?? ''}/${o.metadata?.name ?? ''}`;

/** What the caches tell the registry when something changed (the Registry routes them to controllers). */
export interface StateEvents {
  job(j: Obj<ComputeJob>): void;
  assignment(a: Obj<Assignment>): void;
  provider(p: Obj<Provider>): void;
  gpuNode(g: Obj<GpuNode>): void;
  tenant(t: Obj<Tenant>): void;
  usageRecord(r: Obj<UsageRecord>): void;
  settlement(s: Obj<Settlement>): void;
  log(cm: k8s.V1ConfigMap): void;
  /** The registry saw a new heartbeat of this provider's agent. */
  heartbeat(provider: string): void;
}

export class RegistryState {
  readonly jobs: Watched<Obj<ComputeJob>>;
  readonly assignments: Watched<Obj<Assignment>>;
  readonly providers: Watched<Obj<Provider>>;
  readonly gpuNodes: Watched<Obj<GpuNode>>;
  readonly tenants: Watched<Obj<Tenant>>;
  readonly logs: Watched<k8s.V1ConfigMap>;
  readonly usageRecords: Watched<Obj<UsageRecord>>;
  readonly settlements: Watched<Obj<Settlement>>;
  /** The agents' heartbeat Leases, one per provider namespace, and when the registry saw each change. */
  readonly leases: Watched<k8s.V1Lease>;
  readonly heartbeats = new Heartbeats();
  /** Our own writes the caches may not show yet. */
  readonly jobWrites = new RecentWrites<Obj<ComputeJob>>();
  readonly assignmentWrites = new RecentWrites<Obj<Assignment>>();
  readonly providerWrites = new RecentWrites<Obj<Provider>>();
  readonly settlementWrites = new RecentWrites<Obj<Settlement>>();
  readonly recordWrites = new RecentWrites<Obj<UsageRecord>>();
  /** Assignments created that the cache does not show yet, by namespace/name. */
  readonly created = new Map<string, Obj<Assignment>>();

  constructor(kc: k8s.KubeConfig, core: k8s.CoreV1Api, events: StateEvents, log: Logger, now: () => Date) {
    const onError = (what: string) => (err: unknown) => log.warn({ err: apiErrorMessage(err) }, `Watch of ${what} failed; restarting it`);
    const watch = <T extends k8s.KubernetesObject>(ref: { group: string; version: string; plural: string }, onEvent: (obj: T) => void, indexes?: Record<string, (obj: T) => string>) =>
      new Watched<T>(kc, { path: allPath(ref), list: listAllCustom<T>(kc, ref), onEvent, onError: onError(ref.plural), ...(indexes ? { indexes } : {}) });
    this.jobs = watch<Obj<ComputeJob>>(ComputeJobResource, (j) => events.job(j));
    this.assignments = watch<Obj<Assignment>>(AssignmentResource, (a) => events.assignment(a));
    this.providers = watch<Obj<Provider>>(ProviderResource, (p) => events.provider(p));
    this.gpuNodes = watch<Obj<GpuNode>>(GpuNodeResource, (g) => events.gpuNode(g));
    this.tenants = watch<Obj<Tenant>>(TenantResource, (t) => events.tenant(t));
    // A job's records, and an Assignment's, without a scan of all of them (jobs × periods).
    this.usageRecords = watch<Obj<UsageRecord>>(UsageRecordResource, (r) => events.usageRecord(r), { [RECORDS_BY_JOB]: (r) => r.spec.jobRef.uid, [RECORDS_BY_ASSIGNMENT]: (r) => `${r.metadata.namespace ?? ''}/${r.spec.assignmentName}` });
    // A Settlement names its records; the records' views are recomputed when it changes.
    this.settlements = watch<Obj<Settlement>>(SettlementResource, (s) => events.settlement(s));
    const selector = `${JobLabel.ManagedBy} in (${AGENT_MANAGED_BY},${REGISTRY_MANAGED_BY})`;
    this.logs = new Watched<k8s.V1ConfigMap>(kc, {
      path: '/api/v1/configmaps',
      list: () => core.listConfigMapForAllNamespaces({ labelSelector: selector }),
      labelSelector: selector,
      onEvent: (cm) => events.log(cm),
      onError: onError('configmaps'),
    });
    const leaseSelector = `metadata.name=${HEARTBEAT_LEASE}`;
    const coordination = kc.makeApiClient(k8s.CoordinationV1Api);
    this.leases = new Watched<k8s.V1Lease>(kc, {
      path: '/apis/coordination.k8s.io/v1/leases',
      list: () => coordination.listLeaseForAllNamespaces({ fieldSelector: leaseSelector }),
      fieldSelector: leaseSelector,
      onEvent: (lease) => {
        const provider = this.heartbeats.observe(lease, now().getTime());
        if (provider !== undefined) events.heartbeat(provider);
      },
      onError: onError('heartbeat leases'),
    });
  }

  private get all(): { start(): Promise<void>; stop(): Promise<void> }[] {
    return [this.jobs, this.assignments, this.providers, this.gpuNodes, this.tenants, this.logs, this.usageRecords, this.settlements, this.leases];
  }

  /** Fills every cache, so a new leader decides from the whole picture at once. */
  async start(): Promise<void> {
    await Promise.all(this.all.map((w) => w.start()));
  }

  async stop(): Promise<void> {
    await Promise.all(this.all.map((w) => w.stop()));
  }

  /** A job as we know it: the cache, or our newer write of it. */
  job(key: string): Obj<ComputeJob> | undefined {
    const [ns, name] = key.split('/');
    const cached = this.jobs.get(name ?? '', ns);
    if (!cached) return undefined;
    return this.jobWrites.newerThan(key, cached) ?? cached;
  }

  /** A job's latest status phase as we know it. */
  jobPhase(j: Obj<ComputeJob>): string {
    return (this.jobWrites.newerThan(keyOf(j), j) ?? j).status?.phase ?? 'Pending';
  }

  /** Oldest first, so a queue of waiting jobs is served in the order they were submitted. */
  sortedJobs(): Obj<ComputeJob>[] {
    const at = (j: Obj<ComputeJob>) => String(j.metadata.creationTimestamp ? new Date(j.metadata.creationTimestamp).toISOString() : '');
    return [...this.jobs.list()].sort((a, b) => at(a).localeCompare(at(b)) || keyOf(a).localeCompare(keyOf(b)));
  }

  /** Every Assignment as we know it: the cache, our newer writes, and creations not in the cache yet. */
  allAssignments(): Obj<Assignment>[] {
    const out = this.assignments.list().map((a) => this.assignmentWrites.newerThan(keyOf(a), a) ?? a);
    for (const [k, a] of this.created) {
      if (this.assignments.get(a.metadata.name ?? '', a.metadata.namespace)) this.created.delete(k);
      else out.push(a);
    }
    return out;
  }

  /** A job's Assignments (any provider, any epoch), by the job-uid label the registry puts on each. */
  assignmentsOf(uid: string, all: readonly Obj<Assignment>[] = this.allAssignments()): Obj<Assignment>[] {
    return all.filter((a) => a.metadata.labels?.[JobLabel.JobUid] === uid);
  }

  /** A Provider as we know it: the cache, or our newer write of its status. */
  provider(name: string): Obj<Provider> | undefined {
    const cached = this.providers.get(name);
    if (!cached) return undefined;
    return this.providerWrites.newerThan(name, cached) ?? cached;
  }

  /** Remembers an Assignment we wrote (created or applied), so the next decision sees it. */
  rememberAssignment(written: Obj<Assignment>): void {
    const key = keyOf(written);
    this.assignmentWrites.remember(key, written, written);
    if (this.created.has(key)) this.created.set(key, written);
  }

  /** A job's usage records, with our newer status writes laid over. */
  recordsOfJob(uid: string): Obj<UsageRecord>[] {
    return this.usageRecords.indexed(RECORDS_BY_JOB, uid).map((r) => this.recordWrites.newerThan(keyOf(r), r) ?? r);
  }

  /** An Assignment's usage records (its chain), by the Assignment's namespace and name, with our newer status writes laid over. */
  recordsOfAssignment(namespace: string, name: string): Obj<UsageRecord>[] {
    return this.usageRecords.indexed(RECORDS_BY_ASSIGNMENT, `${namespace}/${name}`).map((r) => this.recordWrites.newerThan(keyOf(r), r) ?? r);
  }

  /** A provider namespace's usage records, with our newer status writes laid over. */
  recordsIn(namespace: string): Obj<UsageRecord>[] {
    return this.usageRecords.list(namespace).map((r) => this.recordWrites.newerThan(keyOf(r), r) ?? r);
  }

  /** A provider namespace's Settlements as we know them: the cache with our newer status writes laid over. */
  settlementsIn(namespace: string): Obj<Settlement>[] {
    return this.settlements.list(namespace).map((s) => this.settlementWrites.newerThan(keyOf(s), s) ?? s);
  }
}
