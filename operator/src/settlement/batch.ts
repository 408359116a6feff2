// Which payments one settlement transaction carries: a pure decision over the provider's payable
// UsageRecords (verified by the registry, in no settlement that paid or may pay them:
// decide.ts payableRecords) and what the chain says about each payer. One MsgSend per payer and denom (the sum of
// its records), at most MAX_MESSAGES per transaction, payers in address order so the split is the
// same on every run. A payer whose grant or balance cannot cover everything owed pays what it can,
// oldest records first, and is isolated: its jobs are stopped, the other payers still settle.
import { createHash } from 'node:crypto';
import type { UsageRecord } from '../api/index.js';
import { canonicalJson } from '../metering/evidence.js';
import { parseCoin } from '../api/coin.js';
import { covers, type FundsReason, type PayerFunds } from './grants.js';

/** Inner messages per MsgExec: the SDK decodes at most 100 Anys per message, the MsgExec included (99 sends; bench/RESULTS.md); half keeps a failure cheap. */
export const MAX_MESSAGES = 50;
/** The Cosmos SDK's default max_memo_characters (bytes, in fact); chains may set their own. */
export const DEFAULT_MAX_MEMO_BYTES = 256;

export interface Payment {
  payer: string;
  denom: string;
  amount: bigint;
  /** The records this payment settles, oldest first. */
  records: string[];
}

export interface Isolated {
  payer: string;
  reason: FundsReason;
  message: string;
  /** Records left unpaid this round. */
  records: string[];
  /** Jobs (namespace/name) whose records are left unpaid: they are stopped. */
  jobs: string[];
}

export interface SettlementPlan {
  payments: Payment[];
  isolated: Isolated[];
  /** Payers left for a later transaction because this one is full. */
  deferred: string[];
  /** sha256 of the payments' canonical JSON: names the batch in the memo. */
  batchId: string;
}

export interface PlanSettlementInput {
  /** The records to pay (payableRecords). */
  records: readonly UsageRecord[];
  funds: ReadonlyMap<string, PayerFunds>;
  payee: string;
  nowMs: number;
  maxMessages?: number;
}

const byAge = (a: UsageRecord, b: UsageRecord) => a.spec.period.end.localeCompare(b.spec.period.end) || (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '');

function groupByPayer(records: readonly UsageRecord[]): Map<string, UsageRecord[]> {
  const groups = new Map<string, UsageRecord[]>();
  for (const r of records) {
    const key = `${r.spec.payer} ${parseCoin(r.spec.amount).denom}`;
    groups.set(key, [...(groups.get(key) ?? []), r]);
  }
  for (const g of groups.values()) g.sort(byAge);
  return new Map([...groups].sort(([a], [b]) => a.localeCompare(b)));
}

/** The oldest records whose sum fits in `budget`. */
function prefixWithin(records: readonly UsageRecord[], budget: bigint): UsageRecord[] {
  const out: UsageRecord[] = [];
  let sum = 0n;
  for (const r of records) {
    const a = parseCoin(r.spec.amount).amount;
    if (sum + a > budget) break;
    sum += a;
    out.push(r);
  }
  return out;
}

const sumOf = (records: readonly UsageRecord[]) => records.reduce((s, r) => s + parseCoin(r.spec.amount).amount, 0n);
const names = (records: readonly UsageRecord[]) => records.map((r) => r.metadata.name ?? '');

export function planSettlement(input: PlanSettlementInput): SettlementPlan {
  const owed = input.records.filter((r) => parseCoin(r.spec.amount).amount > 0n);
  const payments: Payment[] = [];
  const isolated: Isolated[] = [];
  const deferred: string[] = [];
  for (const [key, records] of groupByPayer(owed)) {
    const [payer = '', denom = ''] = key.split(' ');
    const total = sumOf(records);
    const verdict = covers(input.funds.get(payer) ?? { balance: new Map() }, { amount: total, denom }, input.payee, input.nowMs);
    const paid = verdict.ok ? records : prefixWithin(records, verdict.payable);
    if (!verdict.ok) {
      const unpaid = records.slice(paid.length);
      isolated.push({ payer, reason: verdict.reason, message: verdict.message, records: names(unpaid), jobs: [...new Set(unpaid.map((r) => `${r.spec.jobRef.namespace}/${r.spec.jobRef.name}`))].sort() });
    }
    if (paid.length === 0) continue;
    if (payments.length >= (input.maxMessages ?? MAX_MESSAGES)) {
      deferred.push(payer);
      continue;
    }
    payments.push({ payer, denom, amount: sumOf(paid), records: names(paid) });
  }
  const batchId = createHash('sha256').update(canonicalJson(payments)).digest('hex');
  return { payments, isolated, deferred, batchId };
}

/** What a plan's payments move in all, per denom, as `spec.total` writes it: `8333ustake` (denoms sorted, comma-separated). */
export function totalOf(payments: readonly Payment[]): string {
  const byDenom = new Map<string, bigint>();
  for (const p of payments) byDenom.set(p.denom, (byDenom.get(p.denom) ?? 0n) + p.amount);
  return [...byDenom].sort(([a], [b]) => a.localeCompare(b)).map(([d, v]) => `${v}${d}`).join(',');
}

/** The memo naming a batch: `gpufed/v1/<provider>/<batchId>`. */
export function batchMemo(provider: string, batchId: string): string {
  return `gpufed/v1/${provider}/${batchId}`;
}

/** Refuses a memo the chain would reject (it counts bytes), before anything is signed. */
export function checkMemo(memo: string, maxBytes = DEFAULT_MAX_MEMO_BYTES): void {
  const bytes = Buffer.byteLength(memo, 'utf8');
  if (bytes > maxBytes) throw new RangeError(`The settlement memo is ${bytes} bytes; the chain allows ${maxBytes}. Nothing was signed.`);
}
