import type { CoreV1Api, CoreV1ApiReadNamespacedPodLogRequest, V1ConfigMap, V1Pod } from '@kubernetes/client-node';
import { pino } from 'pino';
import { Metrics } from '../telemetry/metrics.js';
import {
  DEFAULT_LOG_BYTES,
  FINISHED_READ_ATTEMPTS,
  KubeLogSource,
  LogPusher,
  SimulatedLogSource,
  TRUNCATED_MARKER,
  jobLogConfigMap,
  nextPush,
  tailOf,
  type LogSource,
  type LogStore,
  type PushedLog,
} from './joblogs.js';
import { logConfigMapName } from '../api/labels.js';

// ---------------------------------------------------------------------------------------------
// Builders

const NS = 'gpufed-provider-alice';
const T0 = new Date('2025-03-01T12:00:00.000Z');
const at = (s: number) => new Date(T0.getTime() + s * 1000);
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

/** A job pod as the agent creates it (buildJobPod's labels and annotation), in a phase. */
function makePod(assignment: string, phase: string, epoch = 1): V1Pod {
  return {
    metadata: {
      name: `${assignment}-e${epoch}`,
      namespace: 'gpufed-jobs',
      uid: `uid-${assignment}-${epoch}`,
      labels: { 'gpufed.io/assignment': assignment, 'gpufed.io/epoch': String(epoch), 'app.kubernetes.io/managed-by': 'gpufed-agent' },
      annotations: { 'gpufed.io/assignment-name': assignment },
    },
    spec: { nodeName: 'alice-desktop', containers: [{ name: 'job' }] },
    status: { phase },
  };
}

/** The registry as a map of ConfigMaps; counts writes so tests can check "no write" as state. */
class MemoryStore implements LogStore {
  readonly objects = new Map<string, V1ConfigMap>();
  writes = 0;
  get(namespace: string, name: string): Promise<V1ConfigMap | undefined> {
    return Promise.resolve(structuredClone(this.objects.get(`${namespace}/${name}`)));
  }
  apply(cm: V1ConfigMap): Promise<void> {
    this.writes++;
    this.objects.set(`${cm.metadata?.namespace}/${cm.metadata?.name}`, structuredClone(cm));
    return Promise.resolve();
  }
  data(assignment: string): Record<string, string> | undefined {
    return this.objects.get(`${NS}/${logConfigMapName(assignment)}`)?.data;
  }
}

/** A log source whose text per pod the test sets; a pod without text has not written anything. */
class TextSource implements LogSource {
  readonly text = new Map<string, string | Error>();
  /** Pods whose read never ends (and ignores the abort signal, on purpose). */
  readonly hanging = new Set<string>();
  tail(pod: V1Pod): Promise<string> {
    if (this.hanging.has(pod.metadata?.name ?? '')) return new Promise<string>(() => {});
    const t = this.text.get(pod.metadata?.name ?? '') ?? '';
    return t instanceof Error ? Promise.reject(t) : Promise.resolve(t);
  }
}

function makePusher(opts: { maxBytes?: number; podTimeoutMs?: number; store?: MemoryStore } = {}) {
  const store = opts.store ?? new MemoryStore();
  const source = new TextSource();
  const metrics = new Metrics({ defaultMetrics: false });
  const pusher = new LogPusher({ namespace: NS, source, store, metrics, log: pino({ level: 'silent' }), ...opts });
  const configmapWrites = async () => (await metrics.registryWrites.get()).values.find((v) => v.labels.resource === 'configmaps')?.value ?? 0;
  return { pusher, store, source, configmapWrites };
}

// ---------------------------------------------------------------------------------------------

describe('tailOf', () => {
  it('keeps a log that fits as it is', () => {
    expect(tailOf('step 1\nstep 2\n', 64)).toBe('step 1\nstep 2\n');
    const exact = 'x'.repeat(64);
    expect(tailOf(exact, 64)).toBe(exact);
  });

  it('cuts a 200 KiB log to at most 64 KiB, keeping the end after a marker line', () => {
    const lines = Array.from({ length: 4000 }, (_, i) => `step ${String(i).padStart(5, '0')} loss=${(1 / (i + 1)).toFixed(12)}\n`);
    const log = lines.join('').padEnd(200 * 1024, '.') + 'the very end\n';
    const t = tailOf(log);
    expect(Buffer.byteLength(t)).toBeLessThanOrEqual(DEFAULT_LOG_BYTES);
    expect(Buffer.byteLength(t)).toBeGreaterThan(DEFAULT_LOG_BYTES - 4);
    expect(t.startsWith(TRUNCATED_MARKER)).toBe(true);
    expect(log.endsWith(t.slice(TRUNCATED_MARKER.length))).toBe(true);
    expect(t.endsWith('the very end\n')).toBe(true);
  });

  it.each([
    ['2-byte é', 'é'],
    ['3-byte €', '€'],
    ['4-byte 🚀', '🚀'],
  ])('cuts at a character boundary, never inside a %s', (_what, ch) => {
    const log = ch.repeat(5000);
    for (let max = 40; max < 60; max++) {
      const t = tailOf(log, max);
      const kept = t.slice(TRUNCATED_MARKER.length);
      expect(Buffer.byteLength(t)).toBeLessThanOrEqual(max);
      expect(t.startsWith(TRUNCATED_MARKER)).toBe(true);
      expect(kept).not.toContain('\uFFFD');
      expect(kept.length).toBeGreaterThan(0);
      expect(kept).toBe(ch.repeat([...kept].length));
      // as much as fits: one more character would not
      expect(Buffer.byteLength(t) + Buffer.byteLength(ch)).toBeGreaterThan(max);
    }
  });
});

describe('logConfigMapName', () => {
  it('is <assignment>-log', () => {
    expect(logConfigMapName('job-abc')).toBe('job-abc-log');
    const longest = 'a'.repeat(249);
    expect(logConfigMapName(longest)).toBe(`${longest}-log`);
  });

  it('shortens a name past 253 characters deterministically, keeping names apart', () => {
    const a = `${'a'.repeat(245)}.first`;
    const b = `${'a'.repeat(245)}.second`;
    const n = logConfigMapName(a);
    expect(n.length).toBeLessThanOrEqual(253);
    expect(n).toMatch(DNS_SUBDOMAIN);
    expect(n.endsWith('-log')).toBe(true);
    expect(logConfigMapName(a)).toBe(n);
    expect(logConfigMapName(b)).not.toBe(n);
    // a cut that would end in '.' or '-' is trimmed
    expect(logConfigMapName(`${'a'.repeat(239)}.${'b'.repeat(20)}`)).toMatch(DNS_SUBDOMAIN);
  });
});

describe('jobLogConfigMap', () => {
  it('carries the tail, the pod, the epoch and whether it is final, owned by nobody', () => {
    const cm = jobLogConfigMap(NS, { assignment: 'job-abc', pod: 'job-abc-e2', container: 'job', epoch: '2', log: 'hello\n', updated: '2025-03-01T12:00:00.000Z', final: true });
    expect(cm).toEqual({
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: {
        name: 'job-abc-log',
        namespace: NS,
        labels: { 'gpufed.io/assignment': 'job-abc', 'app.kubernetes.io/managed-by': 'gpufed-agent' },
        annotations: { 'gpufed.io/assignment-name': 'job-abc' },
      },
      data: { log: 'hello\n', pod: 'job-abc-e2', container: 'job', epoch: '2', updated: '2025-03-01T12:00:00.000Z', final: 'true' },
    });
  });

  it('labels a long name with a short value and keeps the full name in the annotation', () => {
    const name = `train-${'x'.repeat(80)}`;
    const cm = jobLogConfigMap(NS, { assignment: name, pod: 'p', container: 'job', epoch: '1', log: '', updated: '2025-03-01T12:00:00.000Z', final: false });
    const label = cm.metadata?.labels?.['gpufed.io/assignment'] ?? '';
    expect(label.length).toBeLessThanOrEqual(63);
    expect(label).toMatch(/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/);
    expect(cm.metadata?.annotations?.['gpufed.io/assignment-name']).toBe(name);
    expect(jobLogConfigMap(NS, { assignment: name, assignmentLabel: 'from-the-pod', pod: 'p', container: 'job', epoch: '1', log: '', updated: '', final: false }).metadata?.labels?.['gpufed.io/assignment']).toBe('from-the-pod');
  });
});

describe('nextPush', () => {
  const pushed: PushedLog = { pod: 'a-e1', epoch: '1', log: 'one\n', final: false, updated: '2025-03-01T12:00:00.000Z' };
  it.each<[string, PushedLog | undefined, Omit<PushedLog, 'updated'>, PushedLog | undefined]>([
    ['nothing pushed yet', undefined, { pod: 'a-e1', epoch: '1', log: '', final: false }, { pod: 'a-e1', epoch: '1', log: '', final: false, updated: '2025-03-01T12:00:05.000Z' }],
    ['unchanged', pushed, { pod: 'a-e1', epoch: '1', log: 'one\n', final: false }, undefined],
    ['more text', pushed, { pod: 'a-e1', epoch: '1', log: 'one\ntwo\n', final: false }, { ...pushed, log: 'one\ntwo\n', updated: '2025-03-01T12:00:05.000Z' }],
    ['finished, same text: updated stays', pushed, { pod: 'a-e1', epoch: '1', log: 'one\n', final: true }, { ...pushed, final: true }],
    ['a new epoch with the same text', pushed, { pod: 'a-e2', epoch: '2', log: 'one\n', final: false }, { pod: 'a-e2', epoch: '2', log: 'one\n', final: false, updated: '2025-03-01T12:00:05.000Z' }],
  ])('%s', (_what, before, seen, want) => {
    expect(nextPush(before, seen, at(5))).toEqual(want);
  });
});

describe('LogPusher', () => {
  it('pushes a running job\'s log, then only when it changed', async () => {
    const { pusher, store, source, configmapWrites } = makePusher();
    const pod = makePod('job-a', 'Running');
    source.text.set('job-a-e1', 'epoch 1\n');
    await pusher.sync([pod], at(0));
    expect(store.data('job-a')).toEqual({ log: 'epoch 1\n', pod: 'job-a-e1', container: 'job', epoch: '1', updated: '2025-03-01T12:00:00.000Z', final: 'false' });

    for (let s = 1; s <= 10; s++) await pusher.sync([pod], at(s)); // idle
    expect(store.writes).toBe(1);
    expect(await configmapWrites()).toBe(1);

    source.text.set('job-a-e1', 'epoch 1\nepoch 2\n');
    await pusher.sync([pod], at(11));
    expect(store.data('job-a')).toMatchObject({ log: 'epoch 1\nepoch 2\n', updated: '2025-03-01T12:00:11.000Z', final: 'false' });
    expect(await configmapWrites()).toBe(2);
  });

  it('pushes a finished job\'s last tail once, marked final, and leaves it alone afterwards', async () => {
    const { pusher, store, source } = makePusher();
    source.text.set('job-a-e1', 'done\n');
    await pusher.sync([makePod('job-a', 'Running')], at(0));
    await pusher.sync([makePod('job-a', 'Succeeded')], at(1));
    expect(store.data('job-a')).toMatchObject({ log: 'done\n', final: 'true', updated: '2025-03-01T12:00:00.000Z' });
    source.text.set('job-a-e1', new Error('the kubelet is gone'));
    for (let s = 2; s <= 5; s++) await pusher.sync([makePod('job-a', 'Succeeded')], at(s));
    expect(store.writes).toBe(2);
  });

  it('pushes a job that finished before it was ever seen running', async () => {
    const { pusher, store, source } = makePusher();
    source.text.set('job-f-e1', 'Traceback: CUDA out of memory\n');
    await pusher.sync([makePod('job-f', 'Failed')], at(0));
    expect(store.data('job-f')).toMatchObject({ log: 'Traceback: CUDA out of memory\n', final: 'true' });
  });

  it('closes a finished job\'s record with the text pushed last when its log cannot be read any more', async () => {
    const { pusher, store, source } = makePusher();
    source.text.set('job-a-e1', 'epoch 1\n');
    await pusher.sync([makePod('job-a', 'Running')], at(0));
    source.text.set('job-a-e1', new Error('dial tcp 192.168.1.20:10250: connect: no route to host'));
    for (let s = 1; s <= FINISHED_READ_ATTEMPTS; s++) {
      await pusher.sync([makePod('job-a', 'Succeeded')], at(s));
      expect(store.data('job-a')?.final).toBe('false');
    }
    await pusher.sync([makePod('job-a', 'Succeeded')], at(10));
    expect(store.data('job-a')).toMatchObject({ log: 'epoch 1\n', final: 'true', updated: '2025-03-01T12:00:00.000Z' });
    const writes = store.writes;
    await pusher.sync([makePod('job-a', 'Succeeded')], at(11));
    expect(store.writes).toBe(writes);
  });

  it('keeps trying a running job whose log cannot be read', async () => {
    const { pusher, store, source } = makePusher();
    source.text.set('job-a-e1', new Error('connection refused'));
    for (let s = 0; s < 2 * FINISHED_READ_ATTEMPTS; s++) await pusher.sync([makePod('job-a', 'Running')], at(s));
    expect(store.data('job-a')).toBeUndefined();
    source.text.set('job-a-e1', 'there it is\n');
    await pusher.sync([makePod('job-a', 'Running')], at(10));
    expect(store.data('job-a')?.log).toBe('there it is\n');
  });

  it('skips pods that have not started', async () => {
    const { pusher, store } = makePusher();
    await pusher.sync([makePod('job-p', 'Pending'), makePod('job-u', 'Unknown')], at(0));
    expect(store.objects.size).toBe(0);
  });

  it('cuts what the source returns to its limit', async () => {
    const { pusher, store, source } = makePusher({ maxBytes: 1024 });
    source.text.set('job-a-e1', `${'ü'.repeat(2000)}end\n`);
    await pusher.sync([makePod('job-a', 'Running')], at(0));
    const log = store.data('job-a')?.log ?? '';
    expect(Buffer.byteLength(log)).toBeLessThanOrEqual(1024);
    expect(log.startsWith(TRUNCATED_MARKER) && log.endsWith('üend\n')).toBe(true);
  });

  it('carries on with the other pods when one fails or hangs', async () => {
    const { pusher, store, source } = makePusher({ podTimeoutMs: 50 });
    source.text.set('job-a-e1', new Error('connection refused'));
    source.hanging.add('job-b-e1');
    source.text.set('job-c-e1', 'fine\n');
    const started = Date.now();
    await pusher.sync([makePod('job-a', 'Running'), makePod('job-b', 'Running'), makePod('job-c', 'Running')], at(0));
    expect(Date.now() - started).toBeLessThan(1000);
    expect(store.data('job-a')).toBeUndefined();
    expect(store.data('job-b')).toBeUndefined();
    expect(store.data('job-c')?.log).toBe('fine\n');
    source.text.set('job-a-e1', 'recovered\n');
    await pusher.sync([makePod('job-a', 'Running')], at(1));
    expect(store.data('job-a')?.log).toBe('recovered\n');
  });

  it('after a restart, picks up what the registry has instead of writing it again', async () => {
    const store = new MemoryStore();
    const first = makePusher({ store });
    first.source.text.set('job-a-e1', 'all of it\n');
    first.source.text.set('job-r-e1', 'half\n');
    await first.pusher.sync([makePod('job-a', 'Succeeded'), makePod('job-r', 'Running')], at(0));
    expect(store.writes).toBe(2);

    const second = makePusher({ store });
    second.source.text.set('job-a-e1', 'all of it\n');
    second.source.text.set('job-r-e1', 'half\n');
    await second.pusher.sync([makePod('job-a', 'Succeeded'), makePod('job-r', 'Running')], at(30));
    expect(store.writes).toBe(2);
    second.source.text.set('job-r-e1', 'half\nand more\n');
    await second.pusher.sync([makePod('job-a', 'Succeeded'), makePod('job-r', 'Running')], at(31));
    expect(store.writes).toBe(3);
    expect(store.data('job-r')).toMatchObject({ log: 'half\nand more\n', updated: '2025-03-01T12:00:31.000Z' });
  });

  it('follows the newest epoch and keeps the log of a deleted pod as the record', async () => {
    const { pusher, store, source } = makePusher();
    source.text.set('job-a-e1', 'first try\n');
    source.text.set('job-a-e2', 'second try\n');
    await pusher.sync([makePod('job-a', 'Running', 1)], at(0));
    await pusher.sync([makePod('job-a', 'Running', 1), makePod('job-a', 'Pending', 2)], at(1));
    expect(store.data('job-a')).toMatchObject({ log: 'first try\n', epoch: '1' });
    await pusher.sync([makePod('job-a', 'Running', 1), makePod('job-a', 'Running', 2)], at(2));
    expect(store.data('job-a')).toMatchObject({ log: 'second try\n', epoch: '2', pod: 'job-a-e2' });
    await pusher.sync([], at(3));
    expect(store.data('job-a')).toMatchObject({ log: 'second try\n', epoch: '2', final: 'false' });
  });

  it('runs on an interval, pushes a finished pod when nudged, and stops', async () => {
    const { pusher, store, source } = makePusher();
    let pods = [makePod('job-a', 'Running')];
    source.text.set('job-a-e1', 'tick\n');
    pusher.start(() => pods, 20);
    const until = async (ok: () => boolean) => {
      for (let i = 0; i < 100 && !ok(); i++) await new Promise((r) => setTimeout(r, 10));
    };
    await until(() => store.data('job-a') !== undefined);
    expect(store.data('job-a')?.final).toBe('false');
    pods = [makePod('job-a', 'Succeeded')];
    pusher.podChanged(pods[0] as V1Pod);
    await until(() => store.data('job-a')?.final === 'true');
    expect(store.data('job-a')?.final).toBe('true');
    await pusher.stop();
    const writes = store.writes;
    source.text.set('job-a-e1', 'after stop\n');
    pods = [makePod('job-a', 'Running', 2)];
    await new Promise((r) => setTimeout(r, 60));
    expect(store.writes).toBe(writes);
  });
});

describe('KubeLogSource', () => {
  /**
   * The kubelet's reading of the pod log API (the local federation's KWOK pods have no kubelet to
   * ask): tailLines picks the last lines, then limitBytes cuts from their start.
   */
  function kubelet(log: () => string) {
    const requests: CoreV1ApiReadNamespacedPodLogRequest[] = [];
    const core = {
      readNamespacedPodLog: (req: CoreV1ApiReadNamespacedPodLogRequest) => {
        requests.push(req);
        let lines = log().split(/(?<=\n)/);
        if (req.tailLines !== undefined) lines = lines.slice(-req.tailLines);
        let bytes = Buffer.from(lines.join(''));
        if (req.limitBytes !== undefined) bytes = bytes.subarray(0, req.limitBytes);
        return Promise.resolve(bytes.toString('utf8'));
      },
    };
    return { source: new KubeLogSource(core as unknown as CoreV1Api), requests };
  }
  const lines = (n: number, width: number) => Array.from({ length: n }, (_, i) => `${String(i).padStart(width - 1, '0')}\n`).join('');

  it('does not ask about a pod without a node', async () => {
    const { source, requests } = kubelet(() => 'never read\n');
    const pod = makePod('job-a', 'Failed');
    delete pod.spec?.nodeName;
    expect(await source.tail(pod, 'job', 1024)).toBe('');
    expect(requests).toEqual([]);
  });

  it('reads a short log whole, in one request, from the job container', async () => {
    const { source, requests } = kubelet(() => 'hello\nworld\n');
    expect(await source.tail(makePod('job-a', 'Running'), 'job', 1024)).toBe('hello\nworld\n');
    expect(requests).toEqual([expect.objectContaining({ name: 'job-a-e1', namespace: 'gpufed-jobs', container: 'job' })]);
  });

  it('narrows the window until it holds the end of a long log, then keeps that window', async () => {
    const log = lines(4000, 50); // 200 000 bytes
    const { source, requests } = kubelet(() => log);
    const pod = makePod('job-a', 'Running');
    const first = tailOf(await source.tail(pod, 'job', DEFAULT_LOG_BYTES), DEFAULT_LOG_BYTES);
    expect(log.endsWith(first.slice(TRUNCATED_MARKER.length))).toBe(true);
    expect(Buffer.byteLength(first)).toBeGreaterThan(DEFAULT_LOG_BYTES - 64);
    const before = requests.length;
    await source.tail(pod, 'job', DEFAULT_LOG_BYTES);
    expect(requests.length - before).toBe(1);
  });

  it('ends on a single line longer than the window, showing its start', async () => {
    const { source } = kubelet(() => `${lines(10, 10)}${'#'.repeat(300_000)}`);
    const t = await source.tail(makePod('job-a', 'Running'), 'job', 1024);
    expect(t).toBe('#'.repeat(2048));
  });
});

describe('SimulatedLogSource', () => {
  it("reads a KWOK pod's output from its sim.gpufed.io/log annotation", async () => {
    const src = new SimulatedLogSource();
    expect(await src.tail({ metadata: { annotations: { 'sim.gpufed.io/log': 'epoch 1 loss 0.42\n' } } })).toBe('epoch 1 loss 0.42\n');
    expect(await src.tail({ metadata: {} })).toBe('');
  });
});
