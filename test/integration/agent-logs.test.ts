// Logs through NAT on the real federation: the agent pushes each job's log tail to a ConfigMap in
// its namespace on the registry, while it runs, as it grows, once more when it finished (final),
// and not at all while it does not change. KWOK pods write no logs, so the text comes from a
// LogSource the test controls; KubeLogSource's answers for pods without a log are checked against
// the real API server.
import * as k8s from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { parse } from 'yaml';
import { repoRoot } from '../../cli/src/dev/paths.js';
import { Agent } from '../../operator/src/agent/agent.js';
import { DEFAULT_LOG_BYTES, KubeLogSource, TRUNCATED_MARKER, type LogSource } from '../../operator/src/agent/joblogs.js';
import { logConfigMapName } from '../../operator/src/api/labels.js';
import { AssignmentResource, type Assignment } from '../../operator/src/api/index.js';
import { Metrics } from '../../operator/src/telemetry/metrics.js';
import { agentRegistryConfig, eventually, kubeConfig, kubectl, withoutWork } from '../support/federation.js';

const PROVIDER = 'alice';
const NS = `gpufed-provider-${PROVIDER}`;
const EVERY_MS = 500;
const ref = { group: AssignmentResource.group, version: AssignmentResource.version, plural: AssignmentResource.plural, namespace: NS };
const custom = () => kubeConfig('registry').makeApiClient(k8s.CustomObjectsApi);
const registryCore = () => kubeConfig('registry').makeApiClient(k8s.CoreV1Api);

let seq = 0;
/** An Assignment as the registry would write it, from crds/samples, that KWOK runs for `duration`. */
function assignment(model: string, duration: string): Assignment {
  const a = parse(readFileSync(join(repoRoot(), 'crds/samples/assignment-train.yaml'), 'utf8')) as Assignment;
  const name = `logs-${Date.now().toString(36)}-${seq++}`;
  a.metadata = { name, namespace: NS, annotations: { 'sim.gpufed.io/duration': duration } };
  a.spec = { ...a.spec, model, resources: { ...a.spec.resources, gpu: { count: 1, models: [model] }, cpu: '1', memory: '1Gi' }, jobRef: { ...a.spec.jobRef, name, uid: `00000000-0000-4000-9000-${String(seq).padStart(12, '0')}` } };
  delete a.spec.nodeName;
  return a;
}

async function create(a: Assignment): Promise<string> {
  await custom().createNamespacedCustomObject({ ...ref, body: a });
  return a.metadata?.name ?? '';
}
const phaseOf = async (name: string) => ((await custom().getNamespacedCustomObject({ ...ref, name })) as Assignment).status?.phase;

async function logConfigMap(assignmentName: string): Promise<k8s.V1ConfigMap | undefined> {
  try {
    return await registryCore().readNamespacedConfigMap({ name: logConfigMapName(assignmentName), namespace: NS });
  } catch {
    return undefined;
  }
}

/**
 * A job that prints one line every 300 ms for its first four lines and then nothing (a training
 * run busy on its GPU); the time each line was "printed" is kept, to measure how late it reached
 * the registry.
 */
class GrowingLog implements LogSource {
  readonly lines = 4;
  readonly stepMs = 300;
  private readonly firstRead = new Map<string, number>();
  /** A pod whose job prints this instead (one big write). */
  readonly fixed = new Map<string, string>();

  tail(pod: k8s.V1Pod): Promise<string> {
    const name = pod.metadata?.name ?? '';
    const fixed = this.fixed.get(pod.metadata?.annotations?.['gpufed.io/assignment-name'] ?? '');
    if (fixed !== undefined) return Promise.resolve(fixed);
    if (!this.firstRead.has(name)) this.firstRead.set(name, Date.now());
    const printed = Math.min(this.lines, 1 + Math.floor((Date.now() - (this.firstRead.get(name) ?? 0)) / this.stepMs));
    return Promise.resolve(this.text(name, printed));
  }

  text(pod: string, n: number): string {
    return Array.from({ length: n }, (_, i) => `[${pod}] step ${i + 1}/${this.lines} loss=${(1 / (i + 2)).toFixed(3)}\n`).join('');
  }

  /** When line `i` (1-based) was printed for `pod`. */
  printedAt(pod: string, i: number): number {
    return (this.firstRead.get(pod) ?? NaN) + (i - 1) * this.stepMs;
  }
}

const configmapWrites = async (metrics: Metrics) => (await metrics.registryWrites.get()).values.find((v) => v.labels.resource === 'configmaps' && v.labels.verb === 'apply')?.value ?? 0;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

let scoped: k8s.KubeConfig;
beforeAll(async () => {
  // The agent runs with the credentials onboarding gives it, and finds no work left by other files.
  scoped = await agentRegistryConfig(PROVIDER, [{ model: 'NVIDIA-GeForce-RTX-4090', pricePerGpuHour: '1200000ustake' }]);
  await withoutWork(PROVIDER);
});

describe('agent pushing job logs to the registry', () => {
  let agent: Agent | undefined;
  let metrics: Metrics;
  const source = new GrowingLog();
  beforeEach(async () => {
    metrics = new Metrics({ defaultMetrics: false });
    agent = new Agent({
      provider: PROVIDER,
      cluster: kubeConfig(PROVIDER),
      registry: scoped,
      heartbeatMs: 500,
      simulate: true,
      logSource: source,
      logEveryMs: EVERY_MS,
      version: 'test',
      metrics,
      log: pino({ level: process.env.GPUFED_TEST_LOG ?? 'silent' }),
    });
    await agent.start();
  });
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
  });

  it('pushes the tail while the job runs, as it grows, once more as final, and nothing while idle', async () => {
    const name = await create(assignment('NVIDIA-GeForce-RTX-4090', '3s'));
    const pod = `${name}-e1`;

    // Watch the registry's copy closely: every distinct text, and when each line first showed.
    const seen: { log: string; updated: string; final: string; at: number }[] = [];
    let watching = true;
    const watcher = (async () => {
      while (watching) {
        const data = (await logConfigMap(name))?.data;
        const last = seen[seen.length - 1];
        if (data && (data.log !== last?.log || data.final !== last?.final)) seen.push({ log: data.log ?? '', updated: data.updated ?? '', final: data.final ?? '', at: Date.now() });
        await sleep(25);
      }
    })();

    try {
      const first = await eventually('the log ConfigMap on the registry', () => logConfigMap(name), 30_000, 100);
      expect(first.metadata?.labels).toEqual({ 'gpufed.io/assignment': name, 'app.kubernetes.io/managed-by': 'gpufed-agent' });
      expect(first.metadata?.annotations).toMatchObject({ 'gpufed.io/assignment-name': name });
      expect(first.metadata?.ownerReferences).toBeUndefined();
      expect(first.data).toMatchObject({ pod, container: 'job', epoch: '1', final: 'false' });
      expect(first.data?.log?.startsWith(`[${pod}] step 1/4`)).toBe(true);
      expect(first.metadata?.managedFields?.map((f) => f.manager)).toEqual(['gpufed-agent/logs']);

      const full = source.text(pod, source.lines);
      await eventually('all four lines on the registry', () => Promise.resolve(seen.some((s) => s.log === full) ? true : undefined), 30_000, 50);
      await sleep(200); // the agent counts a write when the response reached it, a moment after the registry had it
      const writesWhenFull = await configmapWrites(metrics);
      expect(await phaseOf(name)).toBe('Running'); // the job runs on, printing nothing

      await eventually('the assignment Succeeded', async () => ((await phaseOf(name)) === 'Succeeded' ? true : undefined), 30_000, 50);
      const succeededAt = Date.now();
      const final = await eventually('the final log', () => Promise.resolve(seen.find((s) => s.final === 'true')), 30_000, 50);
      expect(final.log).toBe(full);
      await sleep(200);
      const writesWhenFinal = await configmapWrites(metrics);
      // Between the last line and the end the text did not change: the only write was the final flag.
      expect(writesWhenFinal - writesWhenFull).toBe(1);

      await sleep(6 * EVERY_MS);
      expect(await configmapWrites(metrics)).toBe(writesWhenFinal);

      // Each text showed up on the registry in order, and `updated` moved only with the text.
      const texts = seen.map((s) => s.log);
      expect(texts.length).toBeGreaterThanOrEqual(3); // at least two growing texts and the final one
      for (let i = 1; i < texts.length; i++) expect(texts[i]?.startsWith(texts[i - 1] ?? '')).toBe(true);
      const growing = seen.filter((s) => s.final === 'false');
      expect(new Set(growing.map((s) => s.updated)).size).toBe(new Set(growing.map((s) => s.log)).size);
      expect(final.updated).toBe(growing[growing.length - 1]?.updated);

      const delays = Array.from({ length: source.lines }, (_, k) => {
        const line = `[${pod}] step ${k + 1}/${source.lines}`;
        return (seen.find((s) => s.log.includes(line))?.at ?? NaN) - source.printedAt(pod, k + 1);
      });
      for (const d of delays) expect(d).toBeLessThan(EVERY_MS + 1000);
      const finalDelay = final.at - succeededAt;
      process.stderr.write(
        `agent-logs: every ${EVERY_MS} ms; line-to-registry delays ${delays.map((d) => Math.round(d)).join(', ')} ms; ` +
          `final on the registry ${finalDelay} ms after the Assignment read Succeeded; configmap writes ${writesWhenFinal} ` +
          `(+${writesWhenFinal - writesWhenFull} after the text stopped growing, +0 in ${6 * EVERY_MS} ms after final)\n`,
      );
    } finally {
      watching = false;
      await watcher;
    }
  });

  it('keeps the last 64 KiB of a 200 KiB log, cut at a character boundary', async () => {
    const a = assignment('NVIDIA-GeForce-RTX-3090', '2s');
    const name = a.metadata?.name ?? '';
    const big = `${'Époque ✓ 🚀 '.repeat(200 * 1024 / 16)}the end\n`;
    expect(Buffer.byteLength(big)).toBeGreaterThan(200 * 1024);
    source.fixed.set(name, big);
    await create(a);
    const cm = await eventually('the final log of the big job', async () => {
      const c = await logConfigMap(name);
      return c?.data?.final === 'true' ? c : undefined;
    }, 60_000, 100);
    const log = cm.data?.log ?? '';
    expect(Buffer.byteLength(log)).toBeLessThanOrEqual(DEFAULT_LOG_BYTES);
    expect(Buffer.byteLength(log)).toBeGreaterThan(DEFAULT_LOG_BYTES - 8);
    expect(log.startsWith(TRUNCATED_MARKER)).toBe(true);
    expect(log).not.toContain('\uFFFD');
    expect(big.endsWith(log.slice(TRUNCATED_MARKER.length))).toBe(true);
  });
});

describe('KubeLogSource on the real API server', () => {
  const NS_LOCAL = 'gpufed-logs-test';
  const core = () => kubeConfig(PROVIDER).makeApiClient(k8s.CoreV1Api);
  beforeAll(async () => {
    const r = await kubectl(PROVIDER, ['create', 'namespace', NS_LOCAL]);
    if (r.code !== 0 && !/AlreadyExists/.test(r.stderr)) throw new Error(r.stderr);
  });
  afterAll(async () => {
    await kubectl(PROVIDER, ['delete', 'namespace', NS_LOCAL, '--wait=false']);
  });

  it('reads a gone pod and a pod without a node as no log, and reports a node it cannot reach', async () => {
    const source = new KubeLogSource(core());
    expect(await source.tail({ metadata: { name: 'never-was', namespace: NS_LOCAL }, spec: { nodeName: 'alice-desktop', containers: [] } }, 'job', 1024)).toBe('');
    // No node fits it: it stays Pending without a host (the API server answers an empty 200).
    const pending = (await core().createNamespacedPod({
      namespace: NS_LOCAL,
      body: { metadata: { name: 'waits' }, spec: { nodeSelector: { 'gpufed.io/no-such-node': 'true' }, containers: [{ name: 'job', image: 'registry.invalid/none:1' }] } },
    }));
    expect(await source.tail(pending, 'job', 1024)).toBe('');
    // A KWOK node runs the pod but has no kubelet to serve its log: that is an error, not "no log".
    const running = await core().createNamespacedPod({
      namespace: NS_LOCAL,
      body: {
        metadata: { name: 'runs' },
        spec: { nodeName: 'alice-desktop', tolerations: [{ operator: 'Exists' }], containers: [{ name: 'job', image: 'registry.invalid/none:1' }] },
      },
    });
    await eventually('the KWOK pod Running', async () => ((await core().readNamespacedPod({ name: 'runs', namespace: NS_LOCAL })).status?.phase === 'Running' ? true : undefined), 30_000);
    await expect(source.tail(running, 'job', 1024)).rejects.toMatchObject({ code: 500 });
    // The pusher's per-pod timeout aborts the request itself, not only the wait for it.
    await expect(source.tail(running, 'job', 1024, AbortSignal.abort(new Error('took too long')))).rejects.toThrow('took too long');
  });
});
