// Whether a provider's usage records are true, as far as the registry can know: each record is a
// claim the provider's agent wrote (even modified code can write anything its credentials allow),
// checked here against what the registry itself holds: the Assignment it created (job, epoch,
// payer, price, model, GPUs), the run window it observed (from placement to the earliest of the
// copy's end as it saw it, the fence, and its withdrawal: Assignment.spec.billableUntil, and never
// more than maxDurationSeconds of GPU time), the arithmetic of amounts, the chain of records, the
// registry's clock and the provider's signature. Pure.
//
// Verdicts are sticky: the registry alone writes a record's status, so a verdict it wrote is
// trusted as it stands; only records without one are decided, in the order of their periods, so a
// record added later can never unsettle one that was verified (and maybe paid) before it. What is
// accepted forms one chain of disjoint periods with non-decreasing cumulative GPU time, each
// amount floor(price × cumulative / 3.6e6) minus its predecessor's: the sum paid can never exceed
// floor(price × the last accepted cumulative / 3.6e6), which the run window bounds.
import { VerificationReason, findCondition, UsageRecordConditionType } from '../../api/conditions.js';
import { formatCoin, tryParseCoin } from '../../api/coin.js';
import type { Assignment, UsageRecord } from '../../api/index.js';
import { usageRecordSignedBy } from '../../metering/evidence.js';
import { billedTotal } from '../../metering/usage.js';
import { createdMs } from '../../settlement/coverage.js';

export type Verdict = { status: 'True'; reason: typeof VerificationReason.Verified; message: string } | { status: 'False'; reason: DisputeReason; message: string };
export type DisputeReason = Exclude<VerificationReason, 'Verified'>;

/** The GPU time an Assignment's copy may be paid for, as the registry observed it. */
export interface RunWindow {
  /** Placement: the Assignment's creation (the API server's clock). */
  startMs: number;
  /** The earliest end the registry knows of (spec.billableUntil, the fence); undefined while the copy may still run. */
  endMs?: number;
  /** GPU units it pays for. */
  units: number;
  /** units × maxDurationSeconds: never more GPU time than that, however long it ran. */
  maxGpuMs: number;
}

/**
 * The run window of an Assignment: from its placement to the earliest of spec.billableUntil (set
 * by the registry when it saw the copy end, withdrew it, or saw no heartbeat for the fencing
 * timeout) and `fenceMs` (the last heartbeat the registry saw plus the agents' fencing timeout:
 * after that, an agent that holds to the protocol has stopped the pod).
 */
export function runWindow(a: Assignment, fenceMs?: number): RunWindow {
  const startMs = createdMs(a);
  const billable = Date.parse(a.spec.billableUntil ?? '');
  const ends = [Number.isNaN(billable) ? undefined : billable, fenceMs].filter((x): x is number => x !== undefined && Number.isFinite(x));
  const units = a.spec.resources.gpu.count;
  return { startMs, ...(ends.length ? { endMs: Math.min(...ends) } : {}), units, maxGpuMs: units * a.spec.maxDurationSeconds * 1000 };
}

export interface VerifyInput {
  /** The Assignment the records name (in their namespace), if it exists. */
  assignment?: Assignment;
  /** Every record naming that Assignment in the provider's namespace, with whatever verdict it has. */
  records: readonly UsageRecord[];
  provider: { wallet: string; payee: string };
  window?: RunWindow;
  nowMs: number;
  /** How far the provider's clocks may be from the registry's and still be believed. */
  skewMs: number;
}

/** The verdict the registry wrote on a record, if any. */
export function recordedVerdict(r: UsageRecord): 'True' | 'False' | undefined {
  const c = findCondition(r.status?.conditions, UsageRecordConditionType.Verified);
  return c?.status === 'True' || c?.status === 'False' ? c.status : undefined;
}

const periodOrder = (a: UsageRecord, b: UsageRecord) => ms(a.spec.period.end) - ms(b.spec.period.end) || createdMs(a) - createdMs(b) || (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '');

const ms = (t: string) => Date.parse(t);
const overlaps = (a: UsageRecord, b: UsageRecord) => ms(a.spec.period.start) < ms(b.spec.period.end) && ms(b.spec.period.start) < ms(a.spec.period.end);
const disputed = (reason: DisputeReason, message: string): Verdict => ({ status: 'False', reason, message });

/** Decides every record of the chain that has no verdict yet; records that have one are left out of the result. */
export function verifyChain(input: VerifyInput): Map<string, Verdict> {
  const out = new Map<string, Verdict>();
  const sorted = [...input.records].sort(periodOrder);
  /** The chain so far: every record verified before (the registry's own verdicts) and those verified now. */
  const accepted: UsageRecord[] = sorted.filter((r) => recordedVerdict(r) === 'True');
  /** Every record judged either way, for finding a record's predecessor. */
  const judged: UsageRecord[] = sorted.filter((r) => recordedVerdict(r) !== undefined);
  for (const r of sorted) {
    if (recordedVerdict(r) !== undefined) continue;
    const v = verifyOne(r, input, accepted, judged);
    out.set(r.metadata.name ?? '', v);
    if (v.status === 'True') accepted.push(r);
    judged.push(r);
  }
  return out;
}

function verifyOne(r: UsageRecord, input: VerifyInput, accepted: readonly UsageRecord[], judged: readonly UsageRecord[]): Verdict {
  const a = input.assignment;
  if (!a || !input.window) return disputed(VerificationReason.NoAssignment, `No Assignment ${r.spec.assignmentName} of this provider exists: nothing was placed for this record`);
  return assignmentMismatch(r, a, input) ?? signatureProblem(r, input) ?? timeProblem(r, input) ?? chainProblem(r, accepted, judged) ?? amountProblem(r, accepted, judged) ?? windowProblem(r, input.window, input.skewMs) ?? { status: 'True', reason: VerificationReason.Verified, message: 'It matches its Assignment, its chain and the run window the registry observed' };
}

function assignmentMismatch(r: UsageRecord, a: Assignment, input: VerifyInput): Verdict | undefined {
  const s = r.spec;
  const want: [string, unknown, unknown][] = [
    ['jobRef', s.jobRef, a.spec.jobRef],
    ['epoch', s.epoch, a.spec.epoch],
    ['payer', s.payer, a.spec.payer],
    ['pricePerGpuHour', s.pricePerGpuHour, a.spec.pricePerGpuHour],
    ['model', s.model, a.spec.model],
    ['gpus', s.gpus, a.spec.resources.gpu.count],
    ['payee', s.payee, input.provider.payee],
  ];
  for (const [field, got, expected] of want) {
    if (JSON.stringify(got) !== JSON.stringify(expected)) return disputed(VerificationReason.AssignmentMismatch, `${field} is ${JSON.stringify(got)}, the Assignment's is ${JSON.stringify(expected)}`);
  }
  return undefined;
}

function signatureProblem(r: UsageRecord, input: VerifyInput): Verdict | undefined {
  if (usageRecordSignedBy(r.spec, input.provider.wallet)) return undefined;
  return disputed(VerificationReason.BadSignature, `It carries no valid signature of the provider's hot key ${input.provider.wallet}`);
}

function timeProblem(r: UsageRecord, input: VerifyInput): Verdict | undefined {
  const end = ms(r.spec.period.end);
  if (Number.isNaN(end) || Number.isNaN(ms(r.spec.period.start))) return disputed(VerificationReason.ChainBroken, 'Its period is not a pair of times');
  if (end > input.nowMs + input.skewMs) return disputed(VerificationReason.FuturePeriod, `Its period ends at ${r.spec.period.end}, later than the registry's clock allows (now ${new Date(input.nowMs).toISOString()}, ${input.skewMs / 1000}s of skew)`);
  return undefined;
}

/** The record the chain continues from: the accepted one ending where this one starts (else a judged one), if any. */
function predecessor(r: UsageRecord, accepted: readonly UsageRecord[], judged: readonly UsageRecord[]): UsageRecord | undefined {
  const start = r.spec.period.start;
  return [...accepted].reverse().find((x) => ms(x.spec.period.end) === ms(start)) ?? [...judged].reverse().find((x) => ms(x.spec.period.end) === ms(start));
}

/**
 * A chain has one start: cumulative GPU time counts from the copy's first container start, so a
 * second record without a predecessor would claim that time again. Once anything is verified,
 * every new record must continue from a record that ends where it starts.
 */
function chainProblem(r: UsageRecord, accepted: readonly UsageRecord[], judged: readonly UsageRecord[]): Verdict | undefined {
  const final = accepted.find((x) => x.spec.final && ms(x.spec.period.end) <= ms(r.spec.period.start));
  if (final) return disputed(VerificationReason.ChainBroken, `It comes after the final record ${final.metadata.name ?? ''} of its Assignment`);
  const clash = accepted.find((x) => overlaps(x, r));
  if (clash) return disputed(VerificationReason.ChainBroken, `Its period overlaps the verified record ${clash.metadata.name ?? ''}: that GPU time is claimed already`);
  if (!predecessor(r, accepted, judged) && (accepted.length > 0 || judged.some((x) => ms(x.spec.period.end) <= ms(r.spec.period.start)))) {
    return disputed(VerificationReason.ChainBroken, `No record of its Assignment ends where it starts (${r.spec.period.start}): it does not continue the chain`);
  }
  return undefined;
}

function amountProblem(r: UsageRecord, accepted: readonly UsageRecord[], judged: readonly UsageRecord[]): Verdict | undefined {
  const s = r.spec;
  const prev = predecessor(r, accepted, judged)?.spec.gpuMilliseconds.cumulative ?? 0;
  const { cumulative, delta } = s.gpuMilliseconds;
  if (cumulative < prev) return disputed(VerificationReason.AmountMismatch, `Cumulative GPU time went back from ${prev} to ${cumulative} ms`);
  if (delta !== cumulative - prev) return disputed(VerificationReason.AmountMismatch, `delta is ${delta} ms, cumulative minus the previous record's is ${cumulative - prev}`);
  const price = tryParseCoin(s.pricePerGpuHour);
  if (!price || !Number.isSafeInteger(cumulative)) return disputed(VerificationReason.AmountMismatch, `The price ${s.pricePerGpuHour} or the GPU time ${cumulative} is not a number the registry can check`);
  const want = formatCoin({ amount: billedTotal(price, cumulative) - billedTotal(price, prev), denom: price.denom });
  if (s.amount !== want) return disputed(VerificationReason.AmountMismatch, `The amount is ${s.amount}; floor(price × cumulative / 3.6e6) minus the previous record's is ${want}`);
  return undefined;
}

function windowProblem(r: UsageRecord, w: RunWindow, skewMs: number): Verdict | undefined {
  const start = ms(r.spec.period.start);
  const end = ms(r.spec.period.end);
  const cumulative = r.spec.gpuMilliseconds.cumulative;
  if (start < w.startMs - skewMs) return disputed(VerificationReason.OutsideRunWindow, `Its period starts at ${r.spec.period.start}, before the job was placed (${new Date(w.startMs).toISOString()})`);
  const until = Math.min(end, w.endMs ?? Number.POSITIVE_INFINITY);
  const possible = w.units * Math.max(0, until - w.startMs + skewMs);
  if (cumulative > possible) {
    const why = w.endMs !== undefined && w.endMs < end ? `the run window the registry observed ended at ${new Date(w.endMs).toISOString()}` : `the job was placed at ${new Date(w.startMs).toISOString()}`;
    return disputed(VerificationReason.OutsideRunWindow, `It claims ${cumulative} GPU-ms up to ${r.spec.period.end}; ${w.units} GPU(s) could have run at most ${possible} (${why})`);
  }
  if (cumulative > w.maxGpuMs + w.units * skewMs) return disputed(VerificationReason.OutsideRunWindow, `It claims ${cumulative} GPU-ms; maxDurationSeconds allows ${w.maxGpuMs}`);
  return undefined;
}
