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
  private current: WorkQueue;
  private resync?: NodeJS.Timeout;
  private running: Promise<void>[] = [];

  constructor(
    readonly name: string,
    private readonly reconcile: Reconcile,
    private readonly opts: ControllerOptions,
  ) {
    this.current = new WorkQueue(name, opts.metrics);
  }

  /** The queue the next (or running) workers take keys from. */
  get queue(): WorkQueue {
    return this.current;
  }

  enqueue(key: string): void {
    this.queue.add(key);
  }

  /**
   * Starts the workers. A stopped controller starts again with a fresh queue (a registry that lost
   * the lead for a moment and won it back): whoever starts it enqueues what it must look at.
   */
  start(): void {
    const workers = this.opts.workers ?? 1;
    for (let i = 0; i < workers; i++) this.running.push(this.worker(this.queue));
    const keys = this.opts.keys;
    if (keys) {
      this.resync = setInterval(() => {
        for (const k of keys()) this.queue.add(k);
      }, this.opts.resyncMs ?? 300_000);
      this.resync.unref();
    }
  }

  /** Shuts the queue down (its workers finish the key in hand); keys enqueued from now on wait for the next start. */
  async stop(): Promise<void> {
    if (this.resync) clearInterval(this.resync);
    this.resync = undefined;
    const stopped = this.current;
    this.current = new WorkQueue(this.name, this.opts.metrics);
    stopped.shutDown();
    await Promise.all(this.running.splice(0));
  }

  /** Processes one key with metrics and error handling; exported for tests that drive it directly. */
  async processOne(key: string, queue = this.queue): Promise<void> {
    const { metrics, log } = this.opts;
    const end = metrics.reconcileTime.startTimer({ controller: this.name });
    try {
      const result = await this.reconcile(key);
      queue.forget(key);
      if (result?.requeueAfterMs !== undefined) {
        queue.addAfter(key, result.requeueAfterMs);
        metrics.reconcileTotal.inc({ controller: this.name, result: 'requeue_after' });
      } else {
        metrics.reconcileTotal.inc({ controller: this.name, result: 'success' });
      }
    } catch (e) {
      if (isConflict(e)) {
        // Someone else wrote first: re-read and try again, which is normal, not an error.
        queue.add(key);
        metrics.reconcileTotal.inc({ controller: this.name, result: 'requeue' });
      } else if (e instanceof TerminalError) {
        queue.forget(key);
        metrics.reconcileTotal.inc({ controller: this.name, result: 'error' });
        metrics.reconcileErrors.inc({ controller: this.name });
        log.warn({ controller: this.name, key, err: e.message }, 'Gave up reconciling');
      } else {
        queue.addRateLimited(key);
        metrics.reconcileTotal.inc({ controller: this.name, result: 'error' });
        metrics.reconcileErrors.inc({ controller: this.name });
        log.error({ controller: this.name, key, err: (e as Error).message, retries: queue.backoff.retries(key) }, 'Failed to reconcile; will retry');
      }
    } finally {
      end();
    }
  }

  private async worker(queue: WorkQueue): Promise<void> {
    for (;;) {
      const key = await queue.get();
      if (key === undefined) return;
      try {
        await this.processOne(key, queue);
      } finally {
        queue.done(key);
      }
    }
  }
}
