// The agent's money side: meter every period from the provider's Prometheus, propose settlements of
// what the registry verified, check a payer's grant to the provider's settlement account before a
// job starts, and stop the jobs of a payer who cannot pay. One loop, one step at a time, so there is
// one proposer and one settlement in flight (settler.ts).
import type { Logger } from 'pino';
import { SettlementResource, UsageRecordResource, type Assignment, type Settlement, type UsageRecord } from '../api/index.js';
import { hostname } from 'node:os';
import { Kube } from '../kube/client.js';
import { listCustom } from '../kube/informer.js';
import { LeaderElector } from '../kube/leader.js';
import { Meter } from '../metering/meter.js';
import type { Prometheus } from '../metering/prometheus.js';
import { parseCoin } from '../api/coin.js';
import type { Chain } from '../settlement/chain.js';
import { costOf, covers, type PayerFunds } from '../settlement/grants.js';
import { Settler, type SettleOutcome, type SettlerOptions } from '../settlement/settler.js';
import { publicKeyOf } from '../settlement/multisig.js';
import type * as k8s from '@kubernetes/client-node';
import { dashboardNumber, type Metrics } from '../telemetry/metrics.js';

export interface BillingOptions {
  prometheus: Prometheus;
  chain: Chain;
  /** The hot key: signs records and its half of every settlement; pays the settlement account's fees. */
  key: Uint8Array;
  /** Its address (the Provider's spec.wallet). */
  hotKey: string;
  /** Where payments go (the Provider's payout, or its wallet). */
  payee: string;
  /** The settlement period (default 5 min). */
  periodMs?: number;
  /** Prometheus's scrape interval (default 30 s). */
  scrapeIntervalMs?: number;
  /** How long after a period ends it is metered (default 3 scrape intervals). */
  lagMs?: number;
  /** Blocks a settlement transaction may wait (default 50). */
  timeoutBlocks?: number;
  /** How often the loop runs (default a fifth of the period, 1–30 s). */
  tickMs?: number;
  /** Settlement periods a payer's grant must cover before a job starts (default 1). */
  coverPeriods?: number;
  /** This process in the signer Lease (default <hostname>_<pid>). */
  identity?: string;
  /** The signer Lease's timing (client-go defaults 15 s / 10 s / 2 s). */
  lease?: { durationMs?: number; renewDeadlineMs?: number; retryPeriodMs?: number };
  hooks?: SettlerOptions['hooks'];
  /** False: meter and follow settlements, never propose one (a fault-test seam). */
  proposes?: boolean;
}

export const BILLING_FIELD_MANAGER = 'gpufed-agent/settlement';
/** The Lease in the provider's namespace on the registry: only its holder meters and signs (one signer per key). */
export const SIGNER_LEASE = 'gpufed-agent-signer';

export class Billing {
  readonly meter: Meter;
  readonly settler: Settler;
  private readonly elector: LeaderElector;
  private timer?: NodeJS.Timeout;
  private running?: Promise<void>;
  private stopped = false;
  lastOutcome?: SettleOutcome;
  /** Denoms each payer's grant has been seen with, so a grant that vanishes shows 0 rather than its last value. */
  private readonly grantDenoms = new Map<string, Set<string>>();

  constructor(
    private readonly o: BillingOptions & {
      provider: string;
      namespace: string;
      jobsNamespace: string;
      registry: k8s.KubeConfig;
      assignments: () => readonly Assignment[];
      stopUnpaid: (jobs: ReadonlySet<string>) => Promise<void>;
      metrics: Metrics;
      log: Logger;
      now: () => Date;
    },
  ) {
    const kube = new Kube(o.registry, BILLING_FIELD_MANAGER);
    const list = listCustom<UsageRecord & k8s.KubernetesObject>(o.registry, UsageRecordResource, o.namespace);
    const records = async () => (await list()).items as UsageRecord[];
    const listSettlements = listCustom<Settlement & k8s.KubernetesObject>(o.registry, SettlementResource, o.namespace);
    const scrapeIntervalMs = o.scrapeIntervalMs ?? 30_000;
    this.meter = new Meter({
      namespace: o.namespace,
      jobsNamespace: o.jobsNamespace,
      registry: kube,
      assignments: o.assignments,
      records,
      prometheus: o.prometheus,
      periodMs: this.periodMs,
      lagMs: o.lagMs ?? 3 * scrapeIntervalMs,
      scrapeIntervalMs,
      payee: o.payee,
      key: o.key,
      log: o.log,
      now: o.now,
    });
    this.settler = new Settler({
      provider: o.provider,
      namespace: o.namespace,
      registry: kube,
      records,
      settlements: async () => (await listSettlements()).items,
      chain: o.chain,
      key: o.key,
      hotKey: o.hotKey,
      payee: o.payee,
      timeoutBlocks: o.timeoutBlocks ?? 50,
      periodMs: this.periodMs,
      log: o.log,
      now: o.now,
      onIsolated: (isolated) => o.stopUnpaid(new Set(isolated.flatMap((i) => i.jobs))),
      onDecided: (s) => this.o.metrics.settlements.inc({ state: s.status?.state ?? '' }),
      onCommitted: (_s, paid) => this.observePaid(paid),
      onFunds: (payer, funds) => this.observeGrant(payer, funds),
      ...(o.hooks ? { hooks: o.hooks } : {}),
      ...(o.proposes === false ? { proposes: false } : {}),
    });
    // Two agent replicas (or an old process not quite dead) must never sign with the same key at
    // once: the holder of this Lease is the only one that meters and settles. The account sequence
    // (at most one transaction per sequence commits) stays the backstop.
    this.elector = new LeaderElector(o.registry, {
      lease: { name: SIGNER_LEASE, namespace: o.namespace },
      identity: o.identity ?? `${hostname()}_${process.pid}`,
      ...(o.lease?.durationMs ? { leaseDurationMs: o.lease.durationMs } : {}),
      ...(o.lease?.renewDeadlineMs ? { renewDeadlineMs: o.lease.renewDeadlineMs } : {}),
      ...(o.lease?.retryPeriodMs ? { retryPeriodMs: o.lease.retryPeriodMs } : {}),
      onStartedLeading: () => o.log.info({ lease: SIGNER_LEASE }, 'Became the signer: metering and settling'),
      onStoppedLeading: () => o.log.warn({ lease: SIGNER_LEASE }, 'No longer the signer: not settling'),
      onError: (err) => o.log.warn({ err: (err as Error).message }, 'Signer lease round failed'),
      now: o.now,
    });
  }

  /** Whether this process holds the signer Lease. */
  get isSigner(): boolean {
    return this.elector.isLeader;
  }

  get periodMs(): number {
    return this.o.periodMs ?? 300_000;
  }

  start(): void {
    this.elector.start();
    const tick = this.o.tickMs ?? Math.min(30_000, Math.max(1000, Math.floor(this.periodMs / 5)));
    this.timer = setInterval(() => void this.step(), tick);
    this.timer.unref();
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    await this.running;
    await this.elector.stop(); // releases the Lease: a replacement signs at once
  }

  /** One round: meter what is due, then one settlement step. Never two at once. */
  step(): Promise<void> {
    if (this.running || this.stopped || !this.elector.isLeader) return this.running ?? Promise.resolve();
    this.running = this.round().finally(() => (this.running = undefined));
    return this.running;
  }

  private async round(): Promise<void> {
    try {
      const metered = await this.meter.meterOnce();
      if (metered.written.length > 0) this.o.metrics.usageRecords.inc(metered.written.length);
      for (const w of metered.written) {
        countAmount(this.o.metrics.billed, w.spec);
        this.o.metrics.billedGpuSeconds.inc({ tenant: w.spec.jobRef.namespace }, w.spec.gpuMilliseconds.delta / 1000);
      }
    } catch (e) {
      // Prometheus away, or the registry: this period waits and is metered from retained data later.
      this.o.log.warn({ err: (e as Error).message }, 'Metering failed; the period will be metered later');
      this.o.metrics.meteringFailures.inc();
    }
    try {
      this.lastOutcome = await this.settler.settleOnce();
      this.o.metrics.settlementOutcomes.inc({ outcome: this.lastOutcome.kind });
    } catch (e) {
      this.o.log.warn({ err: (e as Error).message }, 'Settlement step failed; retrying next round');
      this.o.metrics.settlementOutcomes.inc({ outcome: 'error' });
    }
  }

  /** Counts what a committed transaction paid, and reads its payers' grants again so the dashboards show what is left now. */
  private async observePaid(paid: readonly UsageRecord[]): Promise<void> {
    for (const r of paid) countAmount(this.o.metrics.paid, r.spec);
    const account = await this.settler.account().catch(() => undefined);
    for (const payer of new Set(paid.map((r) => r.spec.payer))) {
      if (!account) break;
      try {
        this.observeGrant(payer, await this.o.chain.funds(payer, account.address));
      } catch (e) {
        this.o.log.debug({ payer, err: (e as Error).message }, 'Could not read the grant after a payment; the gauge updates next round');
      }
    }
  }

  /** Shows what the payer's grant has left; a denom seen before and gone now (revoked, used up, expired) shows 0. */
  private observeGrant(payer: string, funds: PayerFunds): void {
    const expired = funds.grant?.expiresAtMs !== undefined && funds.grant.expiresAtMs <= this.o.now().getTime();
    const now = expired ? new Map<string, bigint>() : (funds.grant?.spendLimit ?? new Map<string, bigint>());
    const denoms = new Set([...(this.grantDenoms.get(payer) ?? []), ...now.keys()]);
    for (const denom of denoms) this.o.metrics.grantRemaining.set({ payer, denom }, dashboardNumber(now.get(denom) ?? 0n));
    this.grantDenoms.set(payer, denoms);
  }

  /** The pre-start check: the payer's grant to this provider's settlement account is live, in the job's denom, and covers the first periods. */
  async paymentCheck(a: Assignment): Promise<{ ok: true } | { ok: false; message: string }> {
    const price = parseCoin(a.spec.pricePerGpuHour);
    const seconds = Math.min(a.spec.maxDurationSeconds, ((this.o.coverPeriods ?? 1) * this.periodMs) / 1000);
    const need = costOf(price, a.spec.resources.gpu.count, seconds);
    const account = await this.settler.account();
    if (!account) return { ok: false, message: 'The registry has not published this provider\'s settlement account yet: nothing could be paid' };
    const funds = await this.o.chain.funds(a.spec.payer, account.address);
    this.observeGrant(a.spec.payer, funds);
    // The tenant's money series start at 0 before its first record: rate() and increase() never see a counter's first value.
    const labels = { tenant: a.spec.jobRef.namespace, denom: price.denom };
    this.o.metrics.billed.inc(labels, 0);
    this.o.metrics.paid.inc(labels, 0);
    this.o.metrics.billedGpuSeconds.inc({ tenant: labels.tenant }, 0);
    const v = covers(funds, need, this.o.payee, this.o.now().getTime());
    return v.ok ? v : { ok: false, message: `The payer ${a.spec.payer} cannot pay ${need.amount}${need.denom} for the first ${seconds}s here: ${v.message}` };
  }
}

/** Adds a record's amount to a per-tenant money counter (billed or paid). */
function countAmount(counter: Metrics['billed'], spec: UsageRecord['spec']): void {
  const c = parseCoin(spec.amount);
  counter.inc({ tenant: spec.jobRef.namespace, denom: c.denom }, dashboardNumber(c.amount));
}

/** The hot key's public key as the agent announces it on its heartbeat Lease (base64, compressed). */
export function hotKeyAnnouncement(key: Uint8Array): string {
  return Buffer.from(publicKeyOf(key)).toString('base64');
}
