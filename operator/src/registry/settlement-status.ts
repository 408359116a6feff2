// What a renter sees of the money in `kubectl get computejob -o yaml`: GPU time, cost so far, what
// is paid on chain, the last payments and a Settled condition. A pure function of the job's
// UsageRecords (written by the providers' agents) and Assignments; the registry writes it with its
// own field manager, beside the lifecycle fields the job controller owns.
import { ComputeJobConditionType, ComputeJobReason, setCondition } from '../api/conditions.js';
import type { Assignment, ComputeJob, ComputeJobStatus, ComputeJobStatusSettlement, UsageRecord } from '../api/index.js';
import { providerOfNamespace } from '../api/names.js';
import { formatCoin, parseCoin } from '../scheduling/coin.js';
import { lastRecords } from '../metering/records.js';

/** Newest payments kept on the job (the total is in `paid`). */
export const MAX_SETTLEMENTS = 64;

export type SettlementStatus = Pick<ComputeJobStatus, 'usage' | 'cost' | 'paid' | 'settlements' | 'conditions'>;

const DONE_STATES = ['Committed', 'NothingDue'];

/** The Assignments of a job that ran (their pod started), so GPU time may be owed for them. */
function ran(assignments: readonly Assignment[]): Assignment[] {
  return assignments.filter((a) => a.status?.startTime !== undefined);
}

/**
 * Whether everything the job owes is paid: every Assignment that ran has its final record and every
 * record is committed (or had nothing due). `lostProviders` are providers the registry declared lost,
 * whose agents may never write a final record; their Assignments do not hold the job.
 */
export function settledState(assignments: readonly Assignment[], records: readonly UsageRecord[], lostProviders: ReadonlySet<string> = new Set()): { settled: boolean; waitingFor: string[] } {
  const last = lastRecords(records);
  const waitingFor: string[] = [];
  for (const a of ran(assignments)) {
    const provider = providerOfNamespace(a.metadata.namespace ?? '') ?? '';
    if (!last.get(a.metadata.name ?? '')?.spec.final && !lostProviders.has(provider)) waitingFor.push(`${provider}'s final usage record`);
  }
  const unpaid = records.filter((r) => !DONE_STATES.includes(r.status?.state ?? 'Pending'));
  if (unpaid.length > 0) waitingFor.push(`${unpaid.length} unpaid usage record${unpaid.length === 1 ? '' : 's'}`);
  return { settled: waitingFor.length === 0, waitingFor };
}

/** What the records cost, what is paid, and the payments by transaction (newest last). */
function money(sorted: readonly UsageRecord[], denom: string): { cost: bigint; paid: bigint; settlements: ComputeJobStatusSettlement[] } {
  let cost = 0n;
  let paid = 0n;
  const byTx = new Map<string, { txHash: string; height?: number; time?: string; sum: bigint }>();
  for (const r of sorted) {
    const amount = parseCoin(r.spec.amount).amount;
    cost += amount;
    if (r.status?.state !== 'Committed' || !r.status.txHash) continue;
    paid += amount;
    const t = byTx.get(r.status.txHash) ?? { txHash: r.status.txHash, sum: 0n, ...(r.status.height ? { height: r.status.height } : {}), ...(r.status.time ? { time: r.status.time } : {}) };
    t.sum += amount;
    byTx.set(r.status.txHash, t);
  }
  const settlements = [...byTx.values()]
    .sort((a, b) => (a.height ?? 0) - (b.height ?? 0) || a.txHash.localeCompare(b.txHash))
    .slice(-MAX_SETTLEMENTS)
    .map(({ sum, ...t }) => ({ ...t, amount: formatCoin({ amount: sum, denom }) }));
  return { cost, paid, settlements };
}

export function settlementStatus(job: ComputeJob, assignments: readonly Assignment[], records: readonly UsageRecord[], now: Date, lostProviders?: ReadonlySet<string>): SettlementStatus {
  const denom = parseCoin(job.spec.maxPricePerGpuHour).denom;
  const sorted = [...records].sort((a, b) => a.spec.period.end.localeCompare(b.spec.period.end) || (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''));
  // Each Assignment's chain carries its own cumulative GPU time; the job's is their sum.
  const gpuMilliseconds = [...lastRecords(sorted).values()].reduce((s, r) => s + r.spec.gpuMilliseconds.cumulative, 0);
  const meteredUntil = sorted.at(-1)?.spec.period.end;
  const { cost, paid, settlements } = money(sorted, denom);
  const finished = ['Succeeded', 'Failed'].includes(job.status?.phase ?? '');
  const { settled, waitingFor } = settledState(assignments, sorted, lostProviders);
  const condition = finished && settled
    ? { type: ComputeJobConditionType.Settled, status: 'True' as const, reason: ComputeJobReason.SettlementCommitted, message: paid > 0n ? `Paid ${formatCoin({ amount: paid, denom })} on chain` : 'Nothing was owed' }
    : { type: ComputeJobConditionType.Settled, status: 'False' as const, reason: ComputeJobReason.SettlementPending, message: waitingFor.length ? `Waiting for ${waitingFor.join(' and ')}` : 'The job has not finished' };
  const settledCondition = setCondition(job.status?.conditions, condition, now).filter((c) => c.type === ComputeJobConditionType.Settled);
  return {
    usage: { gpuMilliseconds, ...(meteredUntil ? { meteredUntil } : {}) },
    cost: formatCoin({ amount: cost, denom }),
    paid: formatCoin({ amount: paid, denom }),
    ...(settlements.length ? { settlements } : {}),
    conditions: settledCondition,
  };
}
