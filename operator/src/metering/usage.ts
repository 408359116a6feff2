// Metering as pure functions: Prometheus answers in, GPU-milliseconds and UsageRecords out.
//
// What is billed (docs/metering.md): for each job pod, its GPU units (the limits of every NVIDIA
// resource, so a MIG slice or a time-sliced share counts as one unit at the provider's price per unit)
// times the time its container ran: from the container's start (after the image pull) to its end
// (kube_pod_completion_time), or, for a pod still running or deleted before it was seen finishing,
// to the last sample that saw it Running. Everything is an integer number of milliseconds from
// Kubernetes timestamps, so the same data always gives the same number, a scrape gap is billed once
// the data after it arrives, and nothing is billed without data.
import type { Coin } from '../api/coin.js';
import { KSM_POD_LABEL } from './queries.js';

/** One element of a Prometheus instant-vector answer. */
export interface PromSample {
  metric: Record<string, string>;
  value: [number, string];
}

/** What Prometheus knows about one job pod. Times are Unix milliseconds. */
export interface PodUsage {
  /** The pod's uid (kube-state-metrics' `uid`). */
  podUid: string;
  pod: string;
  assignmentUid: string;
  assignment: string;
  epoch?: number;
  jobUid?: string;
  gpus: number;
  startedMs?: number;
  completedMs?: number;
  lastRunningMs?: number;
}

export interface MeterAnswers {
  gpus: PromSample[];
  started: PromSample[];
  completed: PromSample[];
  lastRunning: PromSample[];
  labels: PromSample[];
}

const num = (s: PromSample): number => Number(s.value[1]);
const secondsToMs = (s: number): number => Math.round(s * 1000);

/** Joins the five answers by pod uid; pods without the agent's assignment label are not jobs and are left out. */
export function podUsages(a: MeterAnswers): PodUsage[] {
  const byUid = new Map<string, PodUsage>();
  for (const s of a.labels) {
    const podUid = s.metric.uid ?? '';
    const assignmentUid = s.metric[KSM_POD_LABEL.assignmentUid] ?? '';
    if (!podUid || !assignmentUid) continue;
    const epoch = Number(s.metric[KSM_POD_LABEL.epoch]);
    byUid.set(podUid, {
      podUid,
      pod: s.metric.pod ?? '',
      assignmentUid,
      assignment: s.metric[KSM_POD_LABEL.assignment] ?? '',
      ...(Number.isInteger(epoch) && epoch > 0 ? { epoch } : {}),
      ...(s.metric[KSM_POD_LABEL.jobUid] ? { jobUid: s.metric[KSM_POD_LABEL.jobUid] } : {}),
      gpus: 0,
    });
  }
  const each = (samples: PromSample[], set: (p: PodUsage, v: number) => void) => {
    for (const s of samples) {
      const p = byUid.get(s.metric.uid ?? '');
      const v = num(s);
      if (p && Number.isFinite(v)) set(p, v);
    }
  };
  each(a.gpus, (p, v) => (p.gpus = Math.max(0, Math.round(v))));
  each(a.started, (p, v) => v > 0 && (p.startedMs = secondsToMs(v)));
  each(a.completed, (p, v) => v > 0 && (p.completedMs = secondsToMs(v)));
  each(a.lastRunning, (p, v) => v > 0 && (p.lastRunningMs = secondsToMs(v)));
  return [...byUid.values()].sort((x, y) => x.podUid.localeCompare(y.podUid));
}

/** The time a pod ran up to `atMs` (and never past `capMs`): from its container's start to its end or last sighting. */
function podInterval(p: PodUsage, atMs: number, capMs: number): [number, number] | undefined {
  if (p.startedMs === undefined) return undefined;
  const seenUntil = p.completedMs ?? p.lastRunningMs;
  if (seenUntil === undefined) return undefined;
  const end = Math.min(seenUntil, atMs, capMs);
  return end > p.startedMs ? [p.startedMs, end] : undefined;
}

/**
 * GPU-milliseconds a pod used up to `atMs` (and never past `capMs`, e.g. when its Assignment was
 * withdrawn): its GPU units, never more than the `units` it was assigned, times its run time.
 */
export function podGpuMs(p: PodUsage, atMs: number, capMs = Number.POSITIVE_INFINITY, units = Number.POSITIVE_INFINITY): number {
  const run = podInterval(p, atMs, capMs);
  return run ? (run[1] - run[0]) * Math.min(p.gpus, units) : 0;
}

/** How long at least one of the intervals covers. */
function coveredMs(intervals: [number, number][]): number {
  let total = 0;
  let reach = Number.NEGATIVE_INFINITY;
  for (const [start, end] of [...intervals].sort((x, y) => x[0] - y[0])) {
    if (end <= reach) continue;
    total += end - Math.max(start, reach);
    reach = end;
  }
  return total;
}

/**
 * An Assignment's GPU-milliseconds up to `atMs` over all its pods: a pod re-created for the same
 * Assignment adds up, but never beyond its `units` GPUs for the wall time its pods covered, so a
 * second copy running alongside, or a GPU counted twice (duplicate series), is not billed.
 */
export function assignmentGpuMs(pods: readonly PodUsage[], assignmentUid: string, units: number, atMs: number, capMs = Number.POSITIVE_INFINITY): number {
  const mine = pods.filter((p) => p.assignmentUid === assignmentUid);
  const sum = mine.reduce((total, p) => total + podGpuMs(p, atMs, capMs, units), 0);
  const runs = mine.map((p) => podInterval(p, atMs, capMs)).filter((r): r is [number, number] => r !== undefined);
  return Math.min(sum, units * coveredMs(runs));
}

const MS_PER_HOUR = 3_600_000n;

/** What `cumulativeMs` of GPU time costs in total at `price` per GPU-hour: rounded down, in the renter's favour. */
export function billedTotal(price: Coin, cumulativeMs: number): bigint {
  if (!Number.isSafeInteger(cumulativeMs) || cumulativeMs < 0) throw new RangeError(`GPU-milliseconds must be a non-negative integer, got ${cumulativeMs}`);
  return (price.amount * BigInt(cumulativeMs)) / MS_PER_HOUR;
}

/**
 * What one period costs: the total to its end minus the total to the previous record's end. Each
 * total is rounded down on its own, so the sum of a job's amounts is exactly
 * floor(price × all its GPU-ms / 3.6e6): the rounding never drifts, and a remainder carries.
 */
export function periodAmount(price: Coin, previousCumulativeMs: number, cumulativeMs: number): bigint {
  if (cumulativeMs < previousCumulativeMs) throw new RangeError(`Metered GPU time went back from ${previousCumulativeMs} to ${cumulativeMs} ms`);
  return billedTotal(price, cumulativeMs) - billedTotal(price, previousCumulativeMs);
}
