// What a UsageRecord's status says, as the registry writes it (agents cannot write it): the
// verdict on the claim, and where its payment is, read from the provider's Settlements as the
// registry recorded them (a payment shows only once the registry found its transaction in a
// block). Pure.
import { UsageRecordConditionType, UsageRecordReason, UsageRecordState, setCondition, type ConditionUpdate } from '../../api/conditions.js';
import { tryParseCoin } from '../../api/coin.js';
import type { Settlement, UsageRecord, UsageRecordStatus } from '../../api/index.js';
import type { Coverage } from '../../settlement/coverage.js';
import type { Verdict } from './verify.js';

/** The record's status given its verdict (undefined: not checked yet) and the Settlements' coverage. */
export function recordStatus(r: UsageRecord, verdict: Verdict | undefined, coverage: Coverage, now: Date): UsageRecordStatus {
  const g = r.metadata.generation === undefined ? {} : { observedGeneration: r.metadata.generation };
  const cond = (list: UsageRecordStatus['conditions'], u: ConditionUpdate) => setCondition(list, { ...u, ...g }, now);
  let conditions = r.status?.conditions;
  if (!verdict) {
    conditions = cond(conditions, { type: UsageRecordConditionType.Settled, status: 'False', reason: UsageRecordReason.NotPayable, message: 'Not verified yet' });
    return { ...g, state: UsageRecordState.Unverified, message: 'The registry has not checked this record yet', conditions };
  }
  conditions = cond(conditions, { type: UsageRecordConditionType.Verified, status: verdict.status, reason: verdict.reason, message: verdict.message });
  if (verdict.status === 'False') {
    conditions = cond(conditions, { type: UsageRecordConditionType.Settled, status: 'False', reason: UsageRecordReason.NotPayable, message: 'Disputed: never paid' });
    return { ...g, state: UsageRecordState.Disputed, message: `Disputed (${verdict.reason}): ${verdict.message}`, conditions };
  }
  const view = paymentView(r, coverage);
  return { ...g, ...view.status, conditions: cond(conditions, view.settled) };
}

type PaymentView = { status: Omit<UsageRecordStatus, 'conditions' | 'observedGeneration'>; settled: ConditionUpdate };
const settledAs = (status: 'True' | 'False', reason: string, message: string): ConditionUpdate => ({ type: UsageRecordConditionType.Settled, status, reason, message });

function committedView(paidBy: Settlement): PaymentView {
  const s = paidBy.status;
  const where = { settlement: paidBy.metadata.name ?? '', ...(s?.txHash ? { txHash: s.txHash } : {}), ...(s?.height ? { height: s.height } : {}), ...(s?.time ? { time: s.time } : {}) };
  return { status: { state: UsageRecordState.Committed, ...where, message: `Paid in block ${s?.height ?? '?'}` }, settled: settledAs('True', UsageRecordReason.Committed, `Paid in block ${s?.height ?? '?'} (${s?.txHash ?? ''})`) };
}

function settlingView(paying: Settlement): PaymentView {
  const tx = paying.status?.txHash;
  const name = paying.metadata.name ?? '';
  return { status: { state: UsageRecordState.Settling, settlement: name, ...(tx ? { txHash: tx } : {}), message: 'Verified; its payment is on its way' }, settled: settledAs('False', UsageRecordReason.AwaitingCommit, `In Settlement ${name}${tx ? ` (${tx})` : ''}, not in a block yet`) };
}

/** Where a verified record's payment is, from the Settlements: its status fields and its Settled condition. */
function paymentView(r: UsageRecord, coverage: Coverage): PaymentView {
  const name = r.metadata.name ?? '';
  const paidBy = coverage.committed.get(name);
  if (paidBy) return committedView(paidBy);
  if ((tryParseCoin(r.spec.amount)?.amount ?? 0n) === 0n) {
    return { status: { state: UsageRecordState.NothingDue, message: 'Nothing due' }, settled: settledAs('True', UsageRecordReason.NothingDue, 'Nothing due: the amount rounds to zero; the remainder carries in the cumulative GPU time') };
  }
  const paying = coverage.live.get(name)?.at(-1);
  if (paying) return settlingView(paying);
  return { status: { state: UsageRecordState.Pending, message: 'Verified; waiting to be paid' }, settled: settledAs('False', UsageRecordReason.Unpaid, 'Verified; not in a settlement yet') };
}
