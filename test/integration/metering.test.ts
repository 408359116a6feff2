// Metering against each provider cluster's real Prometheus, fed by the real kube-state-metrics and
// the DCGM-shaped exporter: job pods built by the agent's own buildJobPod run on KWOK GPU nodes, and
// the metering queries must give exactly the GPU-milliseconds Kubernetes' own timestamps say, in both
// DCGM label shapes (alice's Prometheus honours the exporter's pod labels, bob's renames them to
// exported_pod like a ServiceMonitor does).
import { randomUUID } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { buildJobPod, jobsNamespace } from '../../operator/src/agent/jobpod.js';
import { AssignmentResource, type Assignment } from '../../operator/src/api/index.js';
import { Prometheus } from '../../operator/src/metering/prometheus.js';
import { podCompletedQuery, podEnergyQuery, podGpusQuery, podLabelsQuery, podLastRunningQuery, podStartedQuery, podUtilizationQuery } from '../../operator/src/metering/queries.js';
import { podGpuMs, podUsages, type PodUsage } from '../../operator/src/metering/usage.js';
import { sampleAssignmentSpec } from '../fixtures/assignments.js';
import { eventually, kubeConfig, testFederation } from '../support/federation.js';

const core = (cluster: string) => kubeConfig(cluster).makeApiClient(k8s.CoreV1Api);
const prometheus = (cluster: string) => new Prometheus(testFederation().plan.clusters.find((c) => c.name === cluster)?.prometheusUrl ?? '');
let seq = 0;
const namespaces: [string, string][] = [];

async function makeJobsNamespace(cluster: string): Promise<string> {
  const name = `gpufed-jobs-meter-${Date.now().toString(36)}-${seq++}`;
  await core(cluster).createNamespace({ body: jobsNamespace(name) });
  namespaces.push([cluster, name]);
  await eventually(`ServiceAccount default in ${name}`, () => core(cluster).readNamespacedServiceAccount({ name: 'default', namespace: name }));
  return name;
}

function assignment(name: string, model: string, count: number): Assignment {
  const spec = sampleAssignmentSpec({ jobRef: { namespace: 'carol', name, uid: randomUUID() }, model }, { count, models: [model] });
  return { apiVersion: AssignmentResource.apiVersion, kind: 'Assignment', metadata: { name: `carol-${name}-1`, namespace: 'gpufed-provider-x', uid: randomUUID() }, spec };
}

async function runPod(cluster: string, ns: string, a: Assignment, annotations: Record<string, string>): Promise<k8s.V1Pod> {
  const pod = buildJobPod(a, { namespace: ns, provider: cluster, resourceName: 'nvidia.com/gpu', annotations });
  await core(cluster).createNamespacedPod({ namespace: ns, body: pod });
  return pod;
}

const meterQueries = (ns: string, rangeSeconds = 300) => {
  const q = { jobsNamespace: ns, rangeSeconds, stepSeconds: 2 };
  return { gpus: podGpusQuery(q), started: podStartedQuery(q), completed: podCompletedQuery(q), lastRunning: podLastRunningQuery(q), labels: podLabelsQuery(q) };
};

/** Polls Prometheus until the pod's usage satisfies `ready`. */
function usageWhen(cluster: string, ns: string, assignmentUid: string, what: string, ready: (u: PodUsage) => boolean): Promise<PodUsage> {
  return eventually(`${what} in ${cluster}'s Prometheus`, async () => {
    const u = podUsages(await prometheus(cluster).queryAll(meterQueries(ns), Date.now())).find((p) => p.assignmentUid === assignmentUid);
    return u && ready(u) ? u : undefined;
  }, 60_000, 1000);
}

afterAll(async () => {
  for (const [cluster, ns] of namespaces) await core(cluster).deleteNamespace({ name: ns }).catch(() => undefined);
});

describe('metering from the provider clusters\' Prometheus', () => {
  it("bills a finished 2-GPU job exactly its container's run time × 2, from kube-state-metrics' timestamps", async () => {
    const ns = await makeJobsNamespace('alice');
    const a = assignment('meter-3090', 'NVIDIA-GeForce-RTX-3090', 2);
    const pod = await runPod('alice', ns, a, { 'sim.gpufed.io/start-delay': '1s', 'sim.gpufed.io/duration': '3s', 'sim.gpufed.io/gpu-util': '64' });
    const u = await usageWhen('alice', ns, a.metadata.uid ?? '', 'its completion', (p) => p.completedMs !== undefined);
    const done = await core('alice').readNamespacedPod({ name: pod.metadata?.name ?? '', namespace: ns });
    const term = done.status?.containerStatuses?.[0]?.state?.terminated;
    expect(u).toMatchObject({ gpus: 2, assignment: a.metadata.name, epoch: 1, jobUid: a.spec.jobRef.uid, pod: pod.metadata?.name });
    expect(u.startedMs).toBe(term?.startedAt?.getTime());
    expect(u.completedMs).toBe(term?.finishedAt?.getTime());
    // What the API server says, to the millisecond (Kubernetes keeps whole seconds): no sampling error.
    const ms = (term?.finishedAt?.getTime() ?? 0) - (term?.startedAt?.getTime() ?? 0);
    expect(ms).toBeGreaterThanOrEqual(3000);
    expect(podGpuMs(u, Date.now())).toBe(2 * ms);
    // The image pull (start-delay) is not billed: billing starts at the container's start.
    expect(u.startedMs).toBeGreaterThan(done.metadata?.creationTimestamp?.getTime() ?? 0);
  });

  it('bills a running job up to the last sample that saw it Running, and keeps billing it once it is deleted mid-run', async () => {
    const ns = await makeJobsNamespace('alice');
    const a = assignment('meter-4090', 'NVIDIA-GeForce-RTX-4090', 1);
    const pod = await runPod('alice', ns, a, { 'sim.gpufed.io/gpu-util': '90' });
    const running = await usageWhen('alice', ns, a.metadata.uid ?? '', 'a few seconds of running', (p) => (p.lastRunningMs ?? 0) - (p.startedMs ?? Infinity) >= 4000);
    expect(running.completedMs).toBeUndefined();
    expect(podGpuMs(running, Date.now())).toBe((running.lastRunningMs ?? 0) - (running.startedMs ?? 0));
    const deletedAt = Date.now();
    await core('alice').deleteNamespacedPod({ name: pod.metadata?.name ?? '', namespace: ns, gracePeriodSeconds: 0 });
    await eventually('the pod gone', () => core('alice').readNamespacedPod({ name: pod.metadata?.name ?? '', namespace: ns }).then(() => undefined, () => true));
    // Gone from kube-state-metrics, still in Prometheus: billed until it was last seen, never after the deletion.
    await new Promise((r) => setTimeout(r, 5000));
    const gone = await usageWhen('alice', ns, a.metadata.uid ?? '', 'the deleted pod', () => true);
    expect(gone.lastRunningMs).toBeGreaterThanOrEqual(running.lastRunningMs ?? 0);
    expect(gone.lastRunningMs).toBeLessThanOrEqual(deletedAt + 2500);
    expect(podGpuMs(gone, Date.now() + 60_000)).toBe((gone.lastRunningMs ?? 0) - (gone.startedMs ?? 0));
  });

  it.each([
    ['alice', 'pod', 'NVIDIA-GeForce-RTX-4090'],
    ['bob', 'exported', 'NVIDIA-RTX-A6000'],
  ])("reads %s's DCGM utilisation and energy per job pod (%s label shape)", async (cluster, _shape, model) => {
    const ns = await makeJobsNamespace(cluster);
    const a = assignment(`meter-dcgm-${cluster}`, model, 1);
    const pod = await runPod(cluster, ns, a, { 'sim.gpufed.io/gpu-util': '73', 'sim.gpufed.io/duration': '60s' });
    const name = pod.metadata?.name ?? '';
    const row = await eventually('the pod in DCGM series', async () => {
      const rows = await prometheus(cluster).query(podUtilizationQuery(30), Date.now());
      return rows.find((r) => r.metric.pod === name && r.metric.namespace === ns);
    }, 60_000, 1000);
    expect(Number(row.value[1])).toBeCloseTo(73, 0);
    const energy = await eventually('energy for the pod', async () => {
      const rows = await prometheus(cluster).query(podEnergyQuery(30), Date.now());
      const r = rows.find((x) => x.metric.pod === name && x.metric.namespace === ns);
      return r && Number(r.value[1]) > 0 ? Number(r.value[1]) : undefined;
    }, 60_000, 1000);
    expect(energy).toBeGreaterThan(0);
    await core(cluster).deleteNamespacedPod({ name, namespace: ns, gracePeriodSeconds: 0 });
  });
});
