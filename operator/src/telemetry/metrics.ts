// The one prom-client registry of an operator process, with the metric families every part shares:
// controller-runtime-shaped reconcile and work-queue metrics, and gpufed's own. Names follow
// Prometheus conventions (`_total` counters, `_seconds` durations); no job or pod names in labels.
import { Counter, Gauge, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export class Metrics {
  readonly registry = new Registry();

  readonly reconcileTotal = new Counter({
    name: 'controller_runtime_reconcile_total',
    help: 'Reconciliations per controller and result (success, error, requeue, requeue_after).',
    labelNames: ['controller', 'result'] as const,
    registers: [this.registry],
  });
  readonly reconcileErrors = new Counter({ name: 'controller_runtime_reconcile_errors_total', help: 'Reconciliations that failed, per controller.', labelNames: ['controller'] as const, registers: [this.registry] });
  readonly reconcileTime = new Histogram({
    name: 'controller_runtime_reconcile_time_seconds',
    help: 'Time per reconciliation, per controller.',
    labelNames: ['controller'] as const,
    buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
    registers: [this.registry],
  });
  readonly queueDepth = new Gauge({ name: 'workqueue_depth', help: 'Keys waiting in a work queue.', labelNames: ['name'] as const, registers: [this.registry] });
  readonly queueAdds = new Counter({ name: 'workqueue_adds_total', help: 'Keys added to a work queue.', labelNames: ['name'] as const, registers: [this.registry] });
  readonly queueRetries = new Counter({ name: 'workqueue_retries_total', help: 'Rate-limited re-adds to a work queue.', labelNames: ['name'] as const, registers: [this.registry] });
  readonly queueLatency = new Histogram({
    name: 'workqueue_queue_duration_seconds',
    help: 'Time a key waits in a work queue before it is processed.',
    labelNames: ['name'] as const,
    buckets: [0.001, 0.01, 0.1, 0.5, 1, 5, 10, 60],
    registers: [this.registry],
  });
  readonly registryWrites = new Counter({
    name: 'gpufed_registry_writes_total',
    help: 'Writes the operator made to the registry API server, per resource and verb (apply, apply_status, delete).',
    labelNames: ['resource', 'verb'] as const,
    registers: [this.registry],
  });
  readonly heartbeatFailures = new Counter({ name: 'gpufed_heartbeat_failures_total', help: "Provider heartbeats that could not be written to the registry.", registers: [this.registry] });
  readonly lastHeartbeat = new Gauge({ name: 'gpufed_heartbeat_last_success_timestamp_seconds', help: 'When the last heartbeat reached the registry (Unix seconds).', registers: [this.registry] });
  readonly gpus = new Gauge({ name: 'gpufed_gpus', help: 'GPU units on this provider by state (allocatable, free) and product.', labelNames: ['state', 'product'] as const, registers: [this.registry] });
  readonly assignments = new Gauge({ name: 'gpufed_assignments', help: "The provider's Assignments by phase (Pending, Accepted, Running, Succeeded, Failed, Rejected, Withdrawn).", labelNames: ['phase'] as const, registers: [this.registry] });
  // Registry mode.
  readonly placementSeconds = new Histogram({
    name: 'gpufed_placement_duration_seconds',
    help: "Time from a ComputeJob's creation to its first Assignment (the renter's apply to placed).",
    buckets: [0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 300],
    registers: [this.registry],
  });
  readonly computeJobs = new Gauge({ name: 'gpufed_computejobs', help: 'ComputeJobs on the registry by phase (Pending, Scheduled, Running, Succeeded, Failed, Cancelling).', labelNames: ['phase'] as const, registers: [this.registry] });
  readonly unschedulableJobs = new Gauge({
    name: 'gpufed_unschedulable_jobs',
    help: 'Waiting ComputeJobs by why a provider could not take them (NoFittingNode, PriceAboveMax, Cordoned, HeartbeatStale, TenantNotVerified, …); a job counts once per reason.',
    labelNames: ['reason'] as const,
    registers: [this.registry],
  });
  readonly placements = new Counter({ name: 'gpufed_placements_total', help: 'Assignments created, per provider and whether it was a retry (epoch > 1).', labelNames: ['provider', 'retry'] as const, registers: [this.registry] });
  readonly reservedGpus = new Gauge({ name: 'gpufed_reserved_gpus', help: "GPU units promised to Assignments that the provider's reported free counts do not show yet, per provider.", labelNames: ['provider'] as const, registers: [this.registry] });
  readonly leader = new Gauge({ name: 'gpufed_leader', help: '1 while this registry process is the leader (the only one that places jobs), else 0.', registers: [this.registry] });
  readonly usageRecords = new Counter({ name: 'gpufed_usage_records_total', help: 'UsageRecords the agent wrote (one per job per metered period).', registers: [this.registry] });
  readonly meteringFailures = new Counter({ name: 'gpufed_metering_failures_total', help: 'Metering rounds that could not complete (e.g. Prometheus unreachable); the period is metered later.', registers: [this.registry] });
  readonly settlementOutcomes = new Counter({
    name: 'gpufed_settlement_steps_total',
    help: "Settlement rounds of the agent by outcome: idle, no-account (no settlement account published yet), proposed, waiting (on the registry or the chain), broadcast (sent a co-signed one), backoff, error.",
    labelNames: ['outcome'] as const,
    registers: [this.registry],
  });
  readonly settlements = new Counter({
    name: 'gpufed_settlements_total',
    help: "This provider's Settlements as the registry decided them, by state: Committed (paid), or paid nothing: Refused (not co-signed), Failed (in its block), Expired, Superseded.",
    labelNames: ['state'] as const,
    registers: [this.registry],
  });
  // Money, per the agent that metered and paid it. Amounts are base units of the denom; Prometheus
  // stores every sample as a float64, so these are for dashboards only (exact below 2^53), never
  // for accounting: the UsageRecords and the chain are the books.
  readonly billed = new Counter({
    name: 'gpufed_billed_total',
    help: "What the agent metered into UsageRecords, in base units of the denom, per tenant (the job's namespace on the registry).",
    labelNames: ['tenant', 'denom'] as const,
    registers: [this.registry],
  });
  readonly paid = new Counter({
    name: 'gpufed_paid_total',
    help: 'What committed on chain to this provider, in base units of the denom, per tenant (counted when the agent reads that the registry found the Settlement in a block).',
    labelNames: ['tenant', 'denom'] as const,
    registers: [this.registry],
  });
  readonly billedGpuSeconds = new Counter({
    name: 'gpufed_billed_gpu_seconds_total',
    help: "GPU time the agent metered into UsageRecords, in GPU-seconds, per tenant (the job's namespace on the registry).",
    labelNames: ['tenant'] as const,
    registers: [this.registry],
  });
  readonly grantRemaining = new Gauge({
    name: 'gpufed_grant_remaining',
    help: "What each payer's spending grant to this provider has left, in base units of the denom, as last read from the chain (0 once revoked, used up or expired).",
    labelNames: ['payer', 'denom'] as const,
    registers: [this.registry],
  });
  // Registry mode.
  readonly providers = new Gauge({ name: 'gpufed_providers', help: 'Providers on the registry by their Ready condition (True, False, Unknown).', labelNames: ['ready'] as const, registers: [this.registry] });
  readonly buildInfo = new Gauge({ name: 'gpufed_build_info', help: 'Always 1; labels say which gpufed runs in which mode.', labelNames: ['version', 'mode'] as const, registers: [this.registry] });

  constructor(opts: { defaultMetrics?: boolean } = {}) {
    if (opts.defaultMetrics !== false) collectDefaultMetrics({ register: this.registry });
  }
}

/**
 * A base-unit amount as a sample value. Prometheus samples are float64: exact up to 2^53, rounded
 * beyond. Only for dashboards; the UsageRecords and the chain keep the exact integers.
 */
export function dashboardNumber(amount: bigint): number {
  return Number(amount);
}
