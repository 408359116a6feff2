// The settlement status controller: what a renter sees of a job's money (usage, cost, paid, the
// payments and a Settled condition), written under its own field manager beside the lifecycle
// fields the job controller owns.
import { isDeepStrictEqual } from 'node:util';
import { ComputeJobConditionType } from '../../api/conditions.js';
import { tryParseCoin } from '../../api/coin.js';
import { ComputeJobResource } from '../../api/index.js';
import { normalized } from '../../kube/manifests.js';
import type { RegistryContext } from '../context.js';
import { lostProviders } from '../providers/liveness.js';
import { settlementStatus } from './status.js';

export class SettlementStatusController {
  constructor(private readonly ctx: RegistryContext) {}

  /** Writes the job's money fields (usage, cost, paid, settlements, Settled) when they changed. */
  async reconcile(key: string): Promise<void> {
    const { state } = this.ctx;
    const job = state.job(key);
    if (!job || tryParseCoin(job.spec.maxPricePerGpuHour) === undefined) return;
    const uid = job.metadata.uid ?? '';
    const records = state.recordsOfJob(uid);
    const assignments = state.assignmentsOf(uid);
    if (records.length === 0 && assignments.length === 0) return;
    const want = settlementStatus(job, assignments, records, this.ctx.now(), lostProviders(this.ctx));
    const have = { usage: job.status?.usage, cost: job.status?.cost, paid: job.status?.paid, disputed: job.status?.disputed, settlements: job.status?.settlements, conditions: (job.status?.conditions ?? []).filter((c) => c.type === ComputeJobConditionType.Settled) };
    if (isDeepStrictEqual(normalized(have), normalized(want))) return;
    await this.ctx.kube('settlement').applyStatus(ComputeJobResource, job.metadata.name ?? '', job.metadata.namespace, want);
    this.ctx.metrics.registryWrites.inc({ resource: 'computejobs', verb: 'apply_status' });
  }
}
