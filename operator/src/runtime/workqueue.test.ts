import { pino } from 'pino';
import { Metrics } from '../telemetry/metrics.js';
import { Controller, TerminalError } from './controller.js';
import { ExponentialBackoff, WorkQueue } from './workqueue.js';

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

describe('WorkQueue', () => {
  it('hands out a key queued twice only once', async () => {
    const q = new WorkQueue('t');
    q.add('a');
    q.add('a');
    q.add('b');
    expect(q.len()).toBe(2);
    expect(await q.get()).toBe('a');
    expect(await q.get()).toBe('b');
  });

  it('never hands a key being processed to a second worker; re-queues it after done', async () => {
    const q = new WorkQueue('t');
    q.add('a');
    const first = await q.get();
    q.add('a'); // changed while processing
    expect(q.len()).toBe(0);
    q.done(first as string);
    expect(q.len()).toBe(1);
    expect(await q.get()).toBe('a');
  });

  it('wakes a waiting worker when a key arrives, and releases it on shutdown', async () => {
    const q = new WorkQueue('t');
    const waiting = q.get();
    q.add('x');
    expect(await waiting).toBe('x');
    const idle = q.get();
    q.shutDown();
    expect(await idle).toBeUndefined();
  });

  it('lets the earliest of two delayed adds win', async () => {
    const q = new WorkQueue('t');
    q.addAfter('a', 500);
    q.addAfter('a', 20);
    await sleep(60);
    expect(q.len()).toBe(1);
    q.shutDown();
  });
});

describe('ExponentialBackoff', () => {
  it('doubles per failure up to the cap and resets on forget', () => {
    const b = new ExponentialBackoff(5, 30);
    expect([b.when('k'), b.when('k'), b.when('k'), b.when('k'), b.when('k')]).toEqual([5, 10, 20, 30, 30]);
    expect(b.retries('k')).toBe(5);
    b.forget('k');
    expect(b.when('k')).toBe(5);
  });
});

describe('Controller', () => {
  const make = (reconcile: (k: string) => Promise<void>) => {
    const metrics = new Metrics({ defaultMetrics: false });
    return { c: new Controller('test', reconcile, { metrics, log: pino({ level: 'silent' }) }), metrics };
  };
  const count = async (m: Metrics, result: string) => (await m.reconcileTotal.get()).values.find((v) => v.labels.result === result)?.value ?? 0;

  it('requeues a conflict at once, without back-off', async () => {
    const { c, metrics } = make(() => Promise.reject(Object.assign(new Error('conflict'), { code: 409 })));
    await c.processOne('k');
    expect(c.queue.len()).toBe(1);
    expect(c.queue.backoff.retries('k')).toBe(0);
    expect(await count(metrics, 'requeue')).toBe(1);
  });

  it('retries other errors with back-off', async () => {
    const { c, metrics } = make(() => Promise.reject(new Error('boom')));
    await c.processOne('k');
    await c.processOne('k');
    expect(c.queue.backoff.retries('k')).toBe(2);
    expect(await count(metrics, 'error')).toBe(2);
    c.queue.shutDown();
  });

  it('does not retry a terminal error', async () => {
    const { c } = make(() => Promise.reject(new TerminalError('bad spec')));
    await c.processOne('k');
    await sleep(20);
    expect(c.queue.len()).toBe(0);
  });

  it('processes keys with workers until stopped, and forgets back-off on success', async () => {
    const seen: string[] = [];
    const { c } = make((k) => {
      seen.push(k);
      return Promise.resolve();
    });
    c.start();
    c.enqueue('a');
    c.enqueue('b');
    await sleep(20);
    await c.stop();
    expect(seen).toEqual(['a', 'b']);
  });

  it('works again when started after a stop (a registry that lost the lead and won it back)', async () => {
    const seen: string[] = [];
    const { c } = make((k) => {
      seen.push(k);
      return Promise.resolve();
    });
    c.start();
    c.enqueue('a');
    await sleep(20);
    await c.stop();
    c.enqueue('b'); // while stopped: waits for the next start
    c.start();
    c.enqueue('c');
    await sleep(20);
    await c.stop();
    expect(seen).toEqual(['a', 'b', 'c']);
  });
});
