// Which UsageRecords one metering round writes: a pure decision over the provider's Assignments,
// the records already written (the durable state, on the registry) and what Prometheus says.
//
// Per Assignment the records form a chain: each starts where the previous one ended, carries the
// cumulative GPU-ms to its end, and is named after the Assignment and that end, so metering the same
// window twice (a restart, two agents) writes the same name once. A window with no new GPU time, or
// one whose amount rounds to zero, is not written: it merges into the next record, so the carry lives
// in the cumulative count. The last record of an ended Assignment is marked final.
import { createHash } from 'node:crypto';
import type { Assignment, UsageRecord, UsageRecordSpec } from '../api/index.js';
import { formatCoin, parseCoin } from '../api/coin.js';
import { assignmentEnded, currentStatus } from '../api/assignments.js';
import { assignmentGpuMs, periodAmount, type PodUsage } from './usage.js';

export interface MeteredPodExtras {
  /** Average GPU utilisation in percent over the window, by pod name. */
  utilization?: ReadonlyMap<string, number>;
  /** Energy in millijoules over the window, by pod name. */
  energyMj?: ReadonlyMap<string, number>;
}

export interface PlanRecordsInput {
  assignments: readonly Assignment[];
  records: readonly UsageRecord[];
  pods: readonly PodUsage[];
  /** The end of the window being metered (Unix ms): Prometheus has the data up to here. */
  windowEndMs: number;
  /** The provider's payout address. */
  payee: string;
  extras?: MeteredPodExtras;
}

export interface PlannedRecord {
  name: string;
  spec: Omit<UsageRecordSpec, 'evidenceDigest' | 'signature'>;
  /** The pods whose samples are this record's evidence. */
  podUids: string[];
}


/** A record's name: the Assignment's and the window end's Unix seconds; hashed down when that would exceed 253 characters. */
export function usageRecordName(assignmentName: string, endMs: number): string {
  const suffix = `-${Math.floor(endMs / 1000)}`;
  if (assignmentName.length + suffix.length <= 253) return `${assignmentName}${suffix}`;
  const hash = createHash('sha256').update(assignmentName).digest('hex').slice(0, 10);
  return `${assignmentName.slice(0, 253 - suffix.length - hash.length - 1).replace(/[-.]+$/, '')}-${hash}${suffix}`;
}

/** The newest record of each Assignment (by name), i.e. where its chain ends. */
export function lastRecords(records: readonly UsageRecord[]): Map<string, UsageRecord> {
  const out = new Map<string, UsageRecord>();
  for (const r of records) {
    const prev = out.get(r.spec.assignmentName);
    if (!prev || Date.parse(r.spec.period.end) > Date.parse(prev.spec.period.end)) out.set(r.spec.assignmentName, r);
  }
  return out;
}

/** When an Assignment ended for metering, or undefined while its pod may still run. */
function endedAt(a: Assignment): number | undefined {
  const s = currentStatus(a);
  if (!s?.completionTime || !assignmentEnded(a)) return undefined;
  return Date.parse(s.completionTime);
}

/** The registry's end of this copy's run window (spec.billableUntil): nothing after it is paid. */
function billableUntil(a: Assignment): number | undefined {
  const t = Date.parse(a.spec.billableUntil ?? '');
  return Number.isNaN(t) ? undefined : t;
}

function planOne(a: Assignment, last: UsageRecord | undefined, input: PlanRecordsInput): PlannedRecord | undefined {
  if (last?.spec.final) return undefined;
  const uid = a.metadata.uid ?? '';
  const pods = input.pods.filter((p) => p.assignmentUid === uid);
  const ended = endedAt(a);
  const final = ended !== undefined && ended <= input.windowEndMs;
  const prevCumulative = last?.spec.gpuMilliseconds.cumulative ?? 0;
  // Never billed past the moment the Assignment ended (e.g. withdrawn while its pod still ran), nor
  // past the end of the run window the registry set (it would dispute the record).
  const cap = [ended, billableUntil(a)].filter((x): x is number => x !== undefined).reduce((m, x) => Math.min(m, x), Number.POSITIVE_INFINITY);
  const cumulative = Math.max(prevCumulative, assignmentGpuMs(pods, uid, a.spec.resources.gpu.count, input.windowEndMs, cap));
  const startMs = chainStart(last, pods);
  if (!Number.isFinite(startMs) || startMs >= input.windowEndMs) return undefined; // never ran: nothing to bill
  const price = parseCoin(a.spec.pricePerGpuHour);
  const amount = periodAmount(price, prevCumulative, cumulative);
  // Nothing new, or less than one base unit so far: let it carry into the next record.
  if (!final && amount === 0n) return undefined;
  if (final && cumulative === prevCumulative && last) return { ...finalMarker(a, last, input, startMs), podUids: pods.map((p) => p.podUid) };
  const extras = podExtras(pods, input.extras);
  return {
    name: usageRecordName(a.metadata.name ?? '', input.windowEndMs),
    podUids: pods.map((p) => p.podUid),
    spec: {
      ...base(a, input, startMs),
      gpuMilliseconds: { cumulative, delta: cumulative - prevCumulative },
      amount: formatCoin({ amount, denom: price.denom }),
      final,
      ...extras,
    },
  };
}

/** Where the next record's window starts: the last record's end, or the first container start. */
function chainStart(last: UsageRecord | undefined, pods: readonly PodUsage[]): number {
  if (last) return Date.parse(last.spec.period.end);
  return Math.min(...pods.map((p) => p.startedMs ?? Number.POSITIVE_INFINITY));
}

/** A zero record that only closes the chain: the last period had no new GPU time. */
function finalMarker(a: Assignment, last: UsageRecord, input: PlanRecordsInput, startMs: number): Omit<PlannedRecord, 'podUids'> {
  const denom = parseCoin(a.spec.pricePerGpuHour).denom;
  const cumulative = last.spec.gpuMilliseconds.cumulative;
  return {
    name: usageRecordName(a.metadata.name ?? '', input.windowEndMs),
    spec: { ...base(a, input, startMs), gpuMilliseconds: { cumulative, delta: 0 }, amount: formatCoin({ amount: 0n, denom }), final: true },
  };
}

function base(a: Assignment, input: PlanRecordsInput, startMs: number): Pick<UsageRecordSpec, 'assignmentName' | 'jobRef' | 'epoch' | 'period' | 'pricePerGpuHour' | 'payer' | 'payee' | 'model' | 'gpus'> {
  return {
    assignmentName: a.metadata.name ?? '',
    jobRef: a.spec.jobRef,
    epoch: a.spec.epoch,
    model: a.spec.model,
    gpus: a.spec.resources.gpu.count,
    period: { start: new Date(startMs).toISOString(), end: new Date(input.windowEndMs).toISOString() },
    pricePerGpuHour: a.spec.pricePerGpuHour,
    payer: a.spec.payer,
    payee: input.payee,
  };
}

function podExtras(pods: readonly PodUsage[], extras: MeteredPodExtras | undefined): Pick<UsageRecordSpec, 'gpuUtilizationPercent' | 'energyMillijoules'> {
  const util = pods.map((p) => extras?.utilization?.get(p.pod)).filter((v): v is number => v !== undefined && Number.isFinite(v));
  const energy = pods.map((p) => extras?.energyMj?.get(p.pod)).filter((v): v is number => v !== undefined && Number.isFinite(v));
  return {
    ...(util.length ? { gpuUtilizationPercent: Math.min(100, Math.max(0, Math.round(util.reduce((s, v) => s + v, 0) / util.length))) } : {}),
    ...(energy.length ? { energyMillijoules: Math.max(0, Math.round(energy.reduce((s, v) => s + v, 0))) } : {}),
  };
}

/** The records one metering round writes, in a stable order. */
export function planUsageRecords(input: PlanRecordsInput): PlannedRecord[] {
  const last = lastRecords(input.records);
  const out: PlannedRecord[] = [];
  for (const a of input.assignments) {
    const r = planOne(a, last.get(a.metadata.name ?? ''), input);
    if (r) out.push(r);
  }
  return out.sort((x, y) => x.name.localeCompare(y.name));
}

/**
 * The oldest instant any unfinished chain still needs data from: the next query's range reaches
 * back to it (a window not metered yet because Prometheus was away is metered from here later).
 */
export function oldestOpenStart(assignments: readonly Assignment[], records: readonly UsageRecord[], fallbackMs: number): number {
  const last = lastRecords(records);
  let oldest = fallbackMs;
  for (const a of assignments) {
    const r = last.get(a.metadata.name ?? '');
    if (r?.spec.final) continue;
    const from = r ? Date.parse(r.spec.period.end) : a.status?.startTime ? Date.parse(a.status.startTime) : Date.parse(a.metadata.creationTimestamp?.toString() ?? '');
    if (Number.isFinite(from)) oldest = Math.min(oldest, from);
  }
  return oldest;
}
