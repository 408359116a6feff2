// The agent running Assignments on the real federation: through the real scheduler and KWOK to
// Succeeded or Failed, rejected when the capacity is gone, stopped when withdrawn or deleted,
// adopted (not restarted) by a new agent, and fenced when the registry goes away.
import * as k8s from '@kubernetes/client-node';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { parse } from 'yaml';
import { startComponent, stopComponent } from '../../cli/src/dev/federation.js';
import { repoRoot } from '../../cli/src/dev/paths.js';
import { Agent } from '../../operator/src/agent/agent.js';
import { AssignmentResource, type Assignment } from '../../operator/src/api/index.js';
import { Metrics } from '../../operator/src/telemetry/metrics.js';
import { agentRegistryConfig, withoutWork, eventually, kubeConfig, kubeconfigOf, run, testDir } from '../support/federation.js';

const PROVIDER = 'alice';
const NS = `gpufed-provider-${PROVIDER}`;
const JOBS = 'gpufed-jobs';
const ref = { group: AssignmentResource.group, version: AssignmentResource.version, plural: AssignmentResource.plural, namespace: NS };
const custom = () => kubeConfig('registry').makeApiClient(k8s.CustomObjectsApi);
const pods = () => kubeConfig(PROVIDER).makeApiClient(k8s.CoreV1Api);

let seq = 0;
/** An Assignment as the registry would write it, from crds/samples, with KWOK's run time and exit code. */
function assignment(model: string, count: number, sim: { duration?: string; exitCode?: number } = {}): Assignment {
  const a = parse(readFileSync(join(repoRoot(), 'crds/samples/assignment-train.yaml'), 'utf8')) as Assignment;
  const name = `job-${Date.now().toString(36)}-${seq++}`;
  a.metadata = { name, namespace: NS, annotations: { ...(sim.duration ? { 'sim.gpufed.io/duration': sim.duration } : {}), ...(sim.exitCode !== undefined ? { 'sim.gpufed.io/exit-code': String(sim.exitCode) } : {}) } };
  a.spec = { ...a.spec, model, resources: { ...a.spec.resources, gpu: { count, models: [model] }, cpu: '1', memory: '1Gi' }, jobRef: { ...a.spec.jobRef, name, uid: `00000000-0000-4000-8000-${String(seq).padStart(12, '0')}` } };
  delete a.spec.nodeName;
  return a;
}

async function create(a: Assignment): Promise<string> {
  await custom().createNamespacedCustomObject({ ...ref, body: a });
  return a.metadata?.name ?? '';
}
async function get(name: string): Promise<Assignment | undefined> {
  try {
    return (await custom().getNamespacedCustomObject({ ...ref, name })) as Assignment;
  } catch {
    return undefined;
  }
}
const phase = (name: string, want: string, timeoutMs = 60_000) => eventually(`assignment ${name} ${want}`, async () => ((await get(name))?.status?.phase === want ? get(name) : undefined), timeoutMs);
const jobPod = async (name: string) => (await pods().listNamespacedPod({ namespace: JOBS })).items.find((p) => p.metadata?.annotations?.['gpufed.io/assignment-name'] === name);

let scoped: k8s.KubeConfig;
function newAgent(fencingTimeoutMs = 120_000): Agent {
  return new Agent({ provider: PROVIDER, cluster: kubeConfig(PROVIDER), registry: scoped, heartbeatMs: 500, fencingTimeoutMs, rejectGraceMs: 2000, simulate: true, version: 'test', metrics: new Metrics({ defaultMetrics: false }), log: pino({ level: process.env.GPUFED_TEST_LOG ?? 'silent' }) });
}

beforeAll(async () => {
  // The agent runs with the credentials onboarding gives it, not the admin's.
  scoped = await agentRegistryConfig(PROVIDER, [
    { model: 'NVIDIA-GeForce-RTX-4090', pricePerGpuHour: '1200000ustake' },
    { model: 'NVIDIA-GeForce-RTX-3090', pricePerGpuHour: '800000ustake' },
  ]);
  await withoutWork(PROVIDER);
});

describe('agent running assignments', () => {
  let agent: Agent | undefined;
  afterEach(async () => {
    await agent?.stop();
    agent = undefined;
  });

  it('runs an Assignment through the real scheduler and KWOK to Succeeded', async () => {
    agent = newAgent();
    await agent.start();
    const name = await create(assignment('NVIDIA-GeForce-RTX-3090', 2, { duration: '2s' }));
    const running = await phase(name, 'Running');
    expect(running?.status).toMatchObject({ nodeName: 'alice-tower', observedEpoch: 1, podName: `${name}-e1` });
    const done = await phase(name, 'Succeeded');
    expect(done?.status).toMatchObject({ exitCode: 0, reason: 'Completed' });
    expect(done?.status?.conditions?.find((c) => c.type === 'Accepted')).toMatchObject({ status: 'True', reason: 'PodCreated' });
    const pod = await jobPod(name);
    expect(pod?.spec?.securityContext?.runAsNonRoot).toBe(true);
    expect(pod?.spec?.containers[0]?.resources?.limits?.['nvidia.com/gpu']).toBe('2');
  });

  it('reports a failed job with its exit code and reason', async () => {
    agent = newAgent();
    await agent.start();
    const name = await create(assignment('NVIDIA-GeForce-RTX-4090', 1, { duration: '1s', exitCode: 3 }));
    const failed = await phase(name, 'Failed');
    expect(failed?.status).toMatchObject({ exitCode: 3, reason: 'Error', nodeName: 'alice-desktop' });
  });

  it('rejects an Assignment the cluster can no longer fit, saying why', async () => {
    agent = newAgent();
    await agent.start();
    const tooMany = await create(assignment('NVIDIA-GeForce-RTX-3090', 3));
    const r = await phase(tooMany, 'Rejected');
    expect(r?.status?.reason).toBe('InsufficientGpus');
    expect(r?.status?.message).toMatch(/No NVIDIA-GeForce-RTX-3090 node has 3 free nvidia\.com\/gpu \(alice-tower: 2 free\)/);
    const gone = await create(assignment('NVIDIA-RTX-A6000', 1));
    expect((await phase(gone, 'Rejected'))?.status?.reason).toBe('UnknownModel');
    expect(await jobPod(tooMany)).toBeUndefined();
  });

  it('stops the pod of a withdrawn Assignment and of a deleted one', async () => {
    agent = newAgent();
    await agent.start();
    const a = assignment('NVIDIA-GeForce-RTX-4090', 1);
    const name = await create(a);
    await phase(name, 'Running');
    await custom().patchNamespacedCustomObject({ ...ref, name, body: { spec: { withdrawn: true, withdrawnReason: 'Cancelled' } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    expect((await phase(name, 'Withdrawn'))?.status?.reason).toBe('Cancelled');
    await eventually('withdrawn pod gone', async () => ((await jobPod(name)) === undefined ? true : undefined));

    // The GPU the withdrawn job held is free again: the agent must not reject on a stale count.
    const other = await create(assignment('NVIDIA-GeForce-RTX-4090', 1));
    await phase(other, 'Running');
    await custom().deleteNamespacedCustomObject({ ...ref, name: other });
    await eventually('pod of the deleted assignment gone', async () => ((await jobPod(other)) === undefined ? true : undefined));

    // Withdrawing a job that already ended keeps its outcome.
    const ended = await create(assignment('NVIDIA-GeForce-RTX-4090', 1, { duration: '1s' }));
    await phase(ended, 'Succeeded');
    await custom().patchNamespacedCustomObject({ ...ref, name: ended, body: { spec: { withdrawn: true, withdrawnReason: 'Cancelled' } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
    await new Promise((r) => setTimeout(r, 2000));
    expect((await get(ended))?.status).toMatchObject({ phase: 'Succeeded', exitCode: 0 });
  });

  it('adopts running pods after a restart instead of deleting or re-creating them', async () => {
    agent = newAgent();
    await agent.start();
    const name = await create(assignment('NVIDIA-GeForce-RTX-3090', 1, { duration: '6s' }));
    await phase(name, 'Running');
    const before = await jobPod(name);
    await agent.stop(); // like a crash: the agent leaves its pods alone
    agent = newAgent();
    await agent.start();
    await new Promise((r) => setTimeout(r, 1500));
    expect((await jobPod(name))?.metadata?.uid).toBe(before?.metadata?.uid);
    const done = await phase(name, 'Succeeded');
    expect(done?.status?.podName).toBe(before?.metadata?.name);
  });

  it('lets the owner reclaim a node: no new jobs there, running ones stop after the grace period', async () => {
    agent = newAgent();
    await agent.start();
    const name = await create(assignment('NVIDIA-GeForce-RTX-4090', 1));
    await phase(name, 'Running');
    const cli = (args: string[]) => run(process.execPath, [join(repoRoot(), 'dist/cli/src/gpufed.js'), 'provider', ...args, '--kubeconfig', kubeconfigOf(PROVIDER)]);
    const reclaim = await cli(['reclaim', 'alice-desktop', '--grace', '3s']);
    expect(reclaim.stdout).toMatch(/Reclaimed alice-desktop: no new gpufed jobs will start there; running jobs stop at /);
    try {
      const cond = await eventually('GpuNode not schedulable', async () => {
        const g = (await custom().getNamespacedCustomObject({ ...ref, plural: 'gpunodes', name: 'alice-desktop' })) as { status?: { conditions?: { type: string; status: string; reason: string }[] } };
        return g.status?.conditions?.find((c) => c.type === 'Schedulable' && c.status === 'False');
      });
      expect(cond.reason).toBe('NodeReclaimed');
      await new Promise((r) => setTimeout(r, 1000));
      expect((await get(name))?.status?.phase).toBe('Running'); // still inside the grace period
      const stopped = await phase(name, 'Failed', 30_000);
      expect(stopped?.status?.reason).toBe('Reclaimed');
      const next = await create(assignment('NVIDIA-GeForce-RTX-4090', 1));
      expect((await phase(next, 'Rejected'))?.status?.message).toMatch(/alice-desktop: 1 free, not schedulable/);
    } finally {
      expect((await cli(['release', 'alice-desktop'])).stdout).toMatch(/Released alice-desktop/);
    }
    expect((await cli(['reclaim', 'no-such-node'])).stderr).toMatch(/No node no-such-node in this cluster/);
  });

  it('stops running jobs itself when it loses the registry, and reports them Fenced afterwards', async () => {
    agent = newAgent(3000);
    await agent.start();
    const name = await create(assignment('NVIDIA-GeForce-RTX-4090', 1));
    await phase(name, 'Running');
    await stopComponent(testDir(), 'registry/kube-apiserver');
    try {
      await eventually('the job pod to be stopped by fencing', async () => ((await jobPod(name)) === undefined ? true : undefined), 30_000);
    } finally {
      await startComponent(testDir(), 'registry/kube-apiserver');
    }
    const failed = await phase(name, 'Failed', 60_000);
    expect(failed?.status?.reason).toBe('Fenced');
  });

  it('reports a fence as Fenced from a restarted agent too: why and when were written in the provider cluster before the pod went', async () => {
    agent = newAgent(3000);
    await agent.start();
    const name = await create(assignment('NVIDIA-GeForce-RTX-4090', 1));
    const running = await phase(name, 'Running');
    const copy = `${running?.metadata?.uid}/1`;
    const stopOf = async () => (await pods().listNamespacedConfigMap({ namespace: JOBS, labelSelector: 'gpufed.io/stop=true' })).items.find((cm) => cm.data?.copy === copy);
    let written: k8s.V1ConfigMap | undefined;
    await stopComponent(testDir(), 'registry/kube-apiserver');
    try {
      await eventually('the job pod to be stopped by fencing', async () => ((await jobPod(name)) === undefined ? true : undefined), 30_000);
      written = await stopOf();
      expect(written?.data).toMatchObject({ reason: 'Fenced' });
      // The process that fenced ends before it could tell the registry: nothing in its memory survives.
      await agent.stop();
      agent = undefined;
    } finally {
      await startComponent(testDir(), 'registry/kube-apiserver');
    }
    agent = newAgent(3000);
    await agent.start();
    const failed = await phase(name, 'Failed', 60_000);
    expect(failed?.status?.reason).toBe('Fenced'); // not PodLost, which would count against the provider
    // Its GPU time ends where the hold ran out (last heartbeat + 3 s), not when the new process looked.
    expect(Math.abs(Date.parse(failed?.status?.completionTime ?? '') - Date.parse(written?.data?.at ?? ''))).toBeLessThan(1000);
    // Once the registry has the end, the note goes.
    await eventually('the stop note to be removed', async () => ((await stopOf()) === undefined ? true : undefined), 10_000);
  });
});
