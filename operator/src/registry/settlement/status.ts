// What a renter sees of the money in `kubectl get computejob -o yaml`: the verified GPU time, its
// cost, what is paid on chain, the last payments, what the registry disputed, and a Settled
// condition. A pure function of the job's UsageRecords as the registry judged them (their status
// is the registry's own: verdicts, and payments it found in a block) and of its Assignments; the
// registry writes it with its own field manager, beside the lifecycle fields the job controller
// owns. Nothing here takes an agent's word: a record counts once the registry verified it, a
// payment once the registry found its transaction on chain.
import { ComputeJobConditionType, ComputeJobReason, UsageRecordState, setCondition } from '../../api/conditions.js';
import type { Assignment, ComputeJob, ComputeJobStatus, ComputeJobStatusSettlement, UsageRecord } from '../../api/index.js';
import { providerOfNamespace } from '../../api/names.js';
import { formatCoin, parseCoin } from '../../api/coin.js';

/** Newest payments kept on the job (the total is in `paid`). */
export const MAX_SETTLEMENTS = 64;

export type SettlementStatus = Pick<ComputeJobStatus, 'usage' | 'cost' | 'paid' | 'disputed' | 'settlements' | 'conditions'>;

/** Records that owe nothing more: paid, nothing due, or disputed (never paid). */
const DONE_STATES: readonly string[] = [UsageRecordState.Committed, UsageRecordState.NothingDue, UsageRecordState.Disputed];
const isVerified = (r: UsageRecord) => ![UsageRecordState.Unverified, UsageRecordState.Disputed].includes((r.status?.state ?? UsageRecordState.Unverified) as 'Unverified');

/** The Assignments of a job that ran (their pod started), so GPU time may be owed for them. */
function ran(assignments: readonly Assignment[]): Assignment[] {
  return assignments.filter((a) => a.status?.startTime !== undefined);
}

/**
 * Whether everything the job owes is paid: every Assignment that ran has its final record (a
 * disputed one too: it ends the chain) and every record is paid, has nothing due, or is disputed.
 * `lostProviders` are providers the registry declared lost, whose agents may never write a final
 * record; their Assignments do not hold the job.
 */
export function settledState(assignments: readonly Assignment[], records: readonly UsageRecord[], lostProviders: ReadonlySet<string> = new Set()): { settled: boolean; waitingFor: string[] } {
  const waitingFor: string[] = [];
  for (const a of ran(assignments)) {
    const provider = providerOfNamespace(a.metadata.namespace ?? '') ?? '';
    const final = records.some((r) => r.spec.assignmentName === a.metadata.name && r.spec.final);
    if (!final && !lostProviders.has(provider)) waitingFor.push(`${provider}'s final usage record`);
  }
  const unchecked = records.filter((r) => (r.status?.state ?? UsageRecordState.Unverified) === UsageRecordState.Unverified);
  if (unchecked.length > 0) waitingFor.push(`the registry to check ${unchecked.length} usage record${unchecked.length === 1 ? '' : 's'}`);
  const unpaid = records.filter((r) => isVerified(r) && !DONE_STATES.includes(r.status?.state ?? ''));
  if (unpaid.length > 0) waitingFor.push(`${unpaid.length} unpaid usage record${unpaid.length === 1 ? '' : 's'}`);
  return { settled: waitingFor.length === 0, waitingFor };
}

/** What the verified records cost, what is paid and disputed, and the payments by transaction (newest last). */
function money(sorted: readonly UsageRecord[], denom: string): { cost: bigint; paid: bigint; disputed: bigint; gpuMs: number; settlements: ComputeJobStatusSettlement[] } {
  let cost = 0n;
  let paid = 0n;
  let disputed = 0n;
  let gpuMs = 0;
  const byTx = new Map<string, { txHash: string; height?: number; time?: string; sum: bigint }>();
  for (const r of sorted) {
    const amount = parseCoin(r.spec.amount).amount;
    if (r.status?.state === UsageRecordState.Disputed) disputed += amount;
    if (!isVerified(r)) continue;
    cost += amount;
    gpuMs += r.spec.gpuMilliseconds.delta;
    if (r.status?.state !== UsageRecordState.Committed || !r.status.txHash) continue;
    paid += amount;
    const t = byTx.get(r.status.txHash) ?? { txHash: r.status.txHash, sum: 0n, ...(r.status.height ? { height: r.status.height } : {}), ...(r.status.time ? { time: r.status.time } : {}) };
    t.sum += amount;
    byTx.set(r.status.txHash, t);
  }
  const settlements = [...byTx.values()]
    .sort((a, b) => (a.height ?? 0) - (b.height ?? 0) || a.txHash.localeCompare(b.txHash))
    .slice(-MAX_SETTLEMENTS)
    .map(({ sum, ...t }) => ({ ...t, amount: formatCoin({ amount: sum, denom }) }));
  return { cost, paid, disputed, gpuMs, settlements };
}

export function settlementStatus(job: ComputeJob, assignments: readonly Assignment[], records: readonly UsageRecord[], now: Date, lostProviders?: ReadonlySet<string>): SettlementStatus {
  const denom = parseCoin(job.spec.maxPricePerGpuHour).denom;
  const sorted = [...records].sort((a, b) => a.spec.period.end.localeCompare(b.spec.period.end) || (a.metadata.name ?? '').localeCompare(b.metadata.name ?? ''));
  const meteredUntil = sorted.filter(isVerified).at(-1)?.spec.period.end;
  const { cost, paid, disputed, gpuMs, settlements } = money(sorted, denom);
  const finished = ['Succeeded', 'Failed'].includes(job.status?.phase ?? '');
  const { settled, waitingFor } = settledState(assignments, sorted, lostProviders);
  const disputedNote = disputed > 0n ? `; ${formatCoin({ amount: disputed, denom })} the provider claimed was disputed and is not paid` : '';
  const condition = finished && settled
    ? { type: ComputeJobConditionType.Settled, status: 'True' as const, reason: ComputeJobReason.SettlementCommitted, message: `${paid > 0n ? `Paid ${formatCoin({ amount: paid, denom })} on chain` : 'Nothing was owed'}${disputedNote}` }
    : { type: ComputeJobConditionType.Settled, status: 'False' as const, reason: ComputeJobReason.SettlementPending, message: `${waitingFor.length ? `Waiting for ${waitingFor.join(' and ')}` : 'The job has not finished'}${disputedNote}` };
  const settledCondition = setCondition(job.status?.conditions, condition, now).filter((c) => c.type === ComputeJobConditionType.Settled);
  return {
    usage: { gpuMilliseconds: gpuMs, ...(meteredUntil ? { meteredUntil } : {}) },
    cost: formatCoin({ amount: cost, denom }),
    paid: formatCoin({ amount: paid, denom }),
    ...(disputed > 0n ? { disputed: formatCoin({ amount: disputed, denom }) } : {}),
    ...(settlements.length ? { settlements } : {}),
    conditions: settledCondition,
  };
}
