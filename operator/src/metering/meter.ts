// The agent's metering loop: once per period (after a lag for the last scrapes to land), ask the
// provider's Prometheus about every job pod at once, decide the records (records.ts), and write each
// with its evidence digest and the provider's signature. A record's name is fixed by its Assignment
// and window end, so a restart or a retry writes nothing twice; when Prometheus cannot be reached the
// period waits, and the next round meters from where each chain ended, from Prometheus's retained data.
import type { Logger } from 'pino';
import { UsageRecordResource, type Assignment, type UsageRecord, type UsageRecordSpec } from '../api/index.js';
import { JobLabel } from '../api/labels.js';
import type { Kube } from '../kube/client.js';
import { evidenceDigest, evidenceFor, signUsageRecord } from './evidence.js';
import { PrometheusError, type Prometheus } from './prometheus.js';
import { ksmFreshnessQuery, podCompletedQuery, podEnergyQuery, podGpusQuery, podLabelsQuery, podLastRunningQuery, podStartedQuery, podUtilizationQuery } from './queries.js';
import { lastRecords, oldestOpenStart, planUsageRecords } from './records.js';
import { podUsages, type PromSample } from './usage.js';

/** How far back a query may reach: a week, well inside Prometheus's default 15-day retention. */
const MAX_RANGE_MS = 7 * 86_400_000;

export interface MeterOptions {
  /** The provider's namespace on the registry, where the records go. */
  namespace: string;
  /** The local namespace job pods run in. */
  jobsNamespace: string;
  /** Creates records under the metering field manager. */
  registry: Kube;
  /** The provider's Assignments (the agent's cache). */
  assignments: () => readonly Assignment[];
  /** The provider's records as the registry has them now. */
  records: () => Promise<UsageRecord[]>;
  prometheus: Prometheus;
  /** The settlement period. */
  periodMs: number;
  /** How long after a period's end its data is complete in Prometheus (a few scrape intervals). */
  lagMs: number;
  /** Prometheus's scrape interval (the resolution of "last seen Running"). */
  scrapeIntervalMs: number;
  payee: string;
  /** The provider's hot key, which signs every record. */
  key: Uint8Array;
  log: Logger;
  now?: () => Date;
}

export interface MeterOutcome {
  /** The window end metered, or undefined when there was nothing to do. */
  windowEndMs?: number;
  /** The records this round created (a record metered before, by a restart or a second agent, is not among them). */
  written: { name: string; spec: UsageRecordSpec }[];
}

export class Meter {
  private readonly now: () => Date;

  constructor(private readonly o: MeterOptions) {
    this.now = o.now ?? (() => new Date());
  }

  /** The latest period boundary whose data is complete. */
  windowEnd(): number {
    return Math.floor((this.now().getTime() - this.o.lagMs) / this.o.periodMs) * this.o.periodMs;
  }

  async meterOnce(): Promise<MeterOutcome> {
    const windowEndMs = this.windowEnd();
    const records = await this.o.records();
    const last = lastRecords(records);
    const open = this.o.assignments().filter((a) => {
      const r = last.get(a.metadata.name ?? '');
      return !r?.spec.final && (!r || Date.parse(r.spec.period.end) < windowEndMs);
    });
    if (open.length === 0) return { written: [] };
    const from = Math.max(windowEndMs - MAX_RANGE_MS, oldestOpenStart(open, records, windowEndMs));
    const rangeSeconds = Math.ceil((windowEndMs - from + this.o.periodMs) / 1000);
    const q = { jobsNamespace: this.o.jobsNamespace, rangeSeconds, stepSeconds: Math.max(1, Math.round(this.o.scrapeIntervalMs / 1000)) };
    const queries = { gpus: podGpusQuery(q), started: podStartedQuery(q), completed: podCompletedQuery(q), lastRunning: podLastRunningQuery(q), labels: podLabelsQuery(q) };
    const windowSeconds = this.o.periodMs / 1000;
    const extraQueries = { utilization: podUtilizationQuery(windowSeconds), energy: podEnergyQuery(windowSeconds) };
    const answers = await this.o.prometheus.queryAll({ ...queries, ...extraQueries, freshness: ksmFreshnessQuery() }, windowEndMs);
    const lastScrapeMs = Number(answers.freshness[0]?.value[1] ?? 0) * 1000;
    if (windowEndMs - lastScrapeMs > 3 * this.o.scrapeIntervalMs) {
      // Prometheus (or kube-state-metrics) had a gap at this window's end: its data is not complete
      // there. Wait; a later window end after the gap sees everything, including ends in the gap.
      throw new PrometheusError(`kube-state-metrics was last scraped ${Math.round((windowEndMs - lastScrapeMs) / 1000)} s before the window end ${new Date(windowEndMs).toISOString()}; metering waits for fresh data`);
    }
    const pods = podUsages(answers);
    const inJobs = (rows: PromSample[]) => new Map(rows.filter((r) => r.metric.namespace === this.o.jobsNamespace).map((r) => [r.metric.pod ?? '', Number(r.value[1])]));
    const planned = planUsageRecords({ assignments: open, records, pods, windowEndMs, payee: this.o.payee, extras: { utilization: inJobs(answers.utilization), energyMj: inJobs(answers.energy) } });
    const written: MeterOutcome['written'] = [];
    for (const p of planned) {
      const podNames = pods.filter((x) => p.podUids.includes(x.podUid)).map((x) => x.pod);
      const evidence = { queries: { ...queries, ...extraQueries }, evaluatedAt: new Date(windowEndMs).toISOString(), window: p.spec.period, results: evidenceFor(answers, p.podUids, podNames) };
      const unsigned: UsageRecordSpec = { ...p.spec, evidenceDigest: evidenceDigest(evidence) };
      const spec: UsageRecordSpec = { ...unsigned, signature: signUsageRecord(unsigned, this.o.key) };
      const labels = { [JobLabel.JobUid]: spec.jobRef.uid, [JobLabel.Epoch]: String(spec.epoch), 'app.kubernetes.io/managed-by': 'gpufed-agent' };
      const created = await this.o.registry.createCustom<UsageRecord>(UsageRecordResource, { apiVersion: UsageRecordResource.apiVersion, kind: 'UsageRecord', metadata: { name: p.name, namespace: this.o.namespace, labels }, spec });
      if (created === false) continue; // metered before (a restart, or a second agent): same name, same window
      written.push({ name: p.name, spec });
      this.o.log.info({ record: p.name, job: `${spec.jobRef.namespace}/${spec.jobRef.name}`, gpuMs: spec.gpuMilliseconds.delta, amount: spec.amount, final: spec.final }, 'Metered a period');
    }
    return { windowEndMs, written };
  }
}
