// A controller: informer callbacks enqueue keys; workers take keys from the queue and call
// reconcile(key), which re-reads the caches and converges. Errors decide what happens next:
// conflicts requeue at once without an error log, terminal errors are not retried, anything else
// comes back with back-off. A periodic resync re-enqueues every key (level-triggered; a watch that
// silently stalls cannot leave an object unreconciled for ever).
import { isConflict } from '../kube/errors.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import { WorkQueue } from './workqueue.js';

export interface ReconcileResult {
  /** Reconcile this key again after this long, even if nothing changes (e.g. a deadline). */
  requeueAfterMs?: number;
}

export type Reconcile = (key: string) => Promise<ReconcileResult | void>;

/** A failure retrying cannot fix (a bad spec); recorded by the reconciler in a condition, not retried. */
export class TerminalError extends Error {
  override name = 'TerminalError';
}

export interface ControllerOptions {
  workers?: number;
  metrics: Metrics;
  log: Logger;
  /** All keys that should exist now, for the periodic resync. */
  keys?: () => Iterable<string>;
  resyncMs?: number;
}

export class Controller {
  readonly queue: WorkQueue;
  private resync?: NodeJS.Timeout;
  private running: Promise<void>[] = [];

  constructor(
    readonly name: string,
    private readonly reconcile: Reconcile,
    private readonly opts: ControllerOptions,
  ) {
    this.queue = new WorkQueue(name, opts.metrics);
  }

  enqueue(key: string): void {
    this.queue.add(key);
  }

  start(): void {
    const workers = this.opts.workers ?? 1;
    for (let i = 0; i < workers; i++) this.running.push(this.worker());
    const keys = this.opts.keys;
    if (keys) {
      this.resync = setInterval(() => {
        for (const k of keys()) this.queue.add(k);
      }, this.opts.resyncMs ?? 300_000);
      this.resync.unref();
    }
  }

  async stop(): Promise<void> {
    if (this.resync) clearInterval(this.resync);
    this.queue.shutDown();
    await Promise.all(this.running);
  }

  /** Processes one key with metrics and error handling; exported for tests that drive it directly. */
  async processOne(key: string): Promise<void> {
    const { metrics, log } = this.opts;
    const end = metrics.reconcileTime.startTimer({ controller: this.name });
    try {
      const result = await this.reconcile(key);
      this.queue.forget(key);
      if (result?.requeueAfterMs !== undefined) {
        this.queue.addAfter(key, result.requeueAfterMs);
        metrics.reconcileTotal.inc({ controller: this.name, result: 'requeue_after' });
      } else {
        metrics.reconcileTotal.inc({ controller: this.name, result: 'success' });
      }
    } catch (e) {
      if (isConflict(e)) {
        // Someone else wrote first: re-read and try again, which is normal, not an error.
        this.queue.add(key);
        metrics.reconcileTotal.inc({ controller: this.name, result: 'requeue' });
      } else if (e instanceof TerminalError) {
        this.queue.forget(key);
        metrics.reconcileTotal.inc({ controller: this.name, result: 'error' });
        metrics.reconcileErrors.inc({ controller: this.name });
        log.warn({ controller: this.name, key, err: e.message }, 'Gave up reconciling');
      } else {
        this.queue.addRateLimited(key);
        metrics.reconcileTotal.inc({ controller: this.name, result: 'error' });
        metrics.reconcileErrors.inc({ controller: this.name });
        log.error({ controller: this.name, key, err: (e as Error).message, retries: this.queue.backoff.retries(key) }, 'Failed to reconcile; will retry');
      }
    } finally {
      end();
    }
  }

  private async worker(): Promise<void> {
    for (;;) {
      const key = await this.queue.get();
      if (key === undefined) return;
      try {
        await this.processOne(key);
      } finally {
        this.queue.done(key);
      }
    }
  }
}
