// What the provider's agent does next about money: a pure decision over its usage records (as the
// registry judged them), its Settlements (as the registry recorded them) and the clock. One
// Settlement in flight at a time: while one may still pay, the agent only follows it (and sends the
// co-signed bytes again: either party may broadcast, a duplicate is harmless). After a run of
// settlements that paid nothing (refused, failed in a block, expired, superseded) it backs off
// before proposing again, so a chain that keeps refusing (a fee under its minimum, say) is not hit
// with a new proposal every tick; the Settlements' statuses say why.
import { SettlementState, UsageRecordConditionType, findCondition } from '../api/conditions.js';
import { tryParseCoin } from '../api/coin.js';
import type { Settlement, UsageRecord } from '../api/index.js';
import { coverageOf, createdMs, isDead, isLive } from './coverage.js';

export type SettlementAction =
  /** No settlement account is published for this provider yet (the registry has not seen the agent's hot key, or runs without a chain). */
  | { kind: 'no-account' }
  /** A proposal the registry has not decided on yet. */
  | { kind: 'wait'; settlement: Settlement }
  /** A co-signed transaction not decided on chain yet: send it (again). */
  | { kind: 'broadcast'; settlement: Settlement; signedTx: string }
  /** Settlements kept paying nothing: propose again only after `untilMs`. */
  | { kind: 'backoff'; untilMs: number; failures: number; last: Settlement }
  /** Records to pay: verified, something due, in no settlement that paid or may pay them. */
  | { kind: 'propose'; records: UsageRecord[] }
  | { kind: 'idle' };

export interface SettlementSituation {
  records: readonly UsageRecord[];
  settlements: readonly Settlement[];
  hasAccount: boolean;
  nowMs: number;
  /** The settlement period: the unit of back-off. */
  periodMs: number;
}

/** The longest back-off, in periods. */
export const MAX_BACKOFF_PERIODS = 8;

const created = createdMs;
const byAge = (a: Settlement, b: Settlement) => created(a) - created(b) || (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '');

/** Whether the registry verified the record (its Verified condition is True). */
export function isVerified(r: UsageRecord): boolean {
  return findCondition(r.status?.conditions, UsageRecordConditionType.Verified)?.status === 'True';
}

/** The records the agent may propose now: verified, an amount above 0, and in no settlement that paid or may still pay them. */
export function payableRecords(records: readonly UsageRecord[], settlements: readonly Settlement[]): UsageRecord[] {
  const { committed, live } = coverageOf(settlements);
  return records.filter((r) => {
    const name = r.metadata.name ?? '';
    return isVerified(r) && (tryParseCoin(r.spec.amount)?.amount ?? 0n) > 0n && !committed.has(name) && !live.has(name);
  });
}

export function decideSettlement(s: SettlementSituation): SettlementAction {
  if (!s.hasAccount) return { kind: 'no-account' };
  const sorted = [...s.settlements].sort(byAge);
  const inFlight = sorted.find(isLive);
  if (inFlight) {
    const signedTx = inFlight.status?.signedTx;
    return inFlight.status?.state === SettlementState.Cosigned && signedTx ? { kind: 'broadcast', settlement: inFlight, signedTx } : { kind: 'wait', settlement: inFlight };
  }
  let failures = 0;
  for (let i = sorted.length - 1; i >= 0 && isDead(sorted[i] as Settlement); i--) failures++;
  const last = sorted.at(-1);
  if (failures > 0 && last) {
    const untilMs = created(last) + s.periodMs * Math.min(MAX_BACKOFF_PERIODS, 2 ** (failures - 1));
    if (s.nowMs < untilMs) return { kind: 'backoff', untilMs, failures, last };
  }
  const records = payableRecords(s.records, s.settlements);
  return records.length > 0 ? { kind: 'propose', records } : { kind: 'idle' };
}
