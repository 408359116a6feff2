// A keyed, de-duplicating, rate-limited work queue in the manner of client-go's: a key queued twice
// is processed once; a key re-added while it is being processed is processed again afterwards,
// never by two workers at once; failures come back with per-key exponential back-off.
import type { Metrics } from '../telemetry/metrics.js';

export class ExponentialBackoff {
  private readonly failures = new Map<string, number>();
  constructor(
    private readonly baseMs = 5,
    private readonly maxMs = 300_000,
  ) {}

  /** The delay before the next retry of key, doubling with every failure. */
  when(key: string): number {
    const n = this.failures.get(key) ?? 0;
    this.failures.set(key, n + 1);
    return Math.min(this.maxMs, this.baseMs * 2 ** n);
  }

  forget(key: string): void {
    this.failures.delete(key);
  }

  retries(key: string): number {
    return this.failures.get(key) ?? 0;
  }
}

export class WorkQueue {
  private readonly queue: string[] = [];
  private readonly dirty = new Set<string>();
  private readonly processing = new Set<string>();
  private readonly addedAt = new Map<string, number>();
  private readonly timers = new Map<string, { at: number; timer: NodeJS.Timeout }>();
  private readonly waiters: ((key: string | undefined) => void)[] = [];
  private shuttingDown = false;

  constructor(
    readonly name: string,
    private readonly metrics?: Metrics,
    readonly backoff = new ExponentialBackoff(),
  ) {}

  add(key: string): void {
    if (this.shuttingDown || this.dirty.has(key)) return;
    this.dirty.add(key);
    this.addedAt.set(key, Date.now());
    this.metrics?.queueAdds.inc({ name: this.name });
    if (this.processing.has(key)) return; // done() re-queues it
    this.push(key);
  }

  /** Adds key after ms; an earlier pending add-after for the same key wins. */
  addAfter(key: string, ms: number): void {
    if (this.shuttingDown) return;
    if (ms <= 0) return this.add(key);
    const at = Date.now() + ms;
    const pending = this.timers.get(key);
    if (pending && pending.at <= at) return;
    if (pending) clearTimeout(pending.timer);
    const timer = setTimeout(() => {
      this.timers.delete(key);
      this.add(key);
    }, ms);
    timer.unref();
    this.timers.set(key, { at, timer });
  }

  /** Re-adds a failed key with back-off. */
  addRateLimited(key: string): void {
    this.metrics?.queueRetries.inc({ name: this.name });
    this.addAfter(key, this.backoff.when(key));
  }

  /** Clears key's back-off after a success. */
  forget(key: string): void {
    this.backoff.forget(key);
  }

  /** The next key to process, or undefined once the queue is shut down. */
  get(): Promise<string | undefined> {
    const key = this.queue.shift();
    if (key !== undefined) return Promise.resolve(this.take(key));
    if (this.shuttingDown) return Promise.resolve(undefined);
    return new Promise((resolve) => this.waiters.push(resolve));
  }

  /** Marks key processed; if it was added meanwhile it goes back in the queue. */
  done(key: string): void {
    this.processing.delete(key);
    if (this.dirty.has(key)) this.push(key);
  }

  len(): number {
    return this.queue.length;
  }

  shutDown(): void {
    this.shuttingDown = true;
    for (const { timer } of this.timers.values()) clearTimeout(timer);
    this.timers.clear();
    for (const w of this.waiters.splice(0)) w(undefined);
  }

  private push(key: string): void {
    const waiter = this.waiters.shift();
    if (waiter) waiter(this.take(key));
    else this.queue.push(key);
    this.metrics?.queueDepth.set({ name: this.name }, this.queue.length);
  }

  private take(key: string): string {
    this.dirty.delete(key);
    this.processing.add(key);
    const added = this.addedAt.get(key);
    if (added !== undefined) this.metrics?.queueLatency.observe({ name: this.name }, (Date.now() - added) / 1000);
    this.addedAt.delete(key);
    this.metrics?.queueDepth.set({ name: this.name }, this.queue.length);
    return key;
  }
}
