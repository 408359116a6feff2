// The local federation itself, on the real components: health, GPU nodes as GFD labels them, and the
// real kube-scheduler placing GPU pods that KWOK then runs to completion.
import * as k8s from '@kubernetes/client-node';
import { status } from '../../cli/src/dev/federation.js';
import { eventually, kubeConfig, testDir, testFederation } from '../support/federation.js';

const core = (cluster: string) => kubeConfig(cluster).makeApiClient(k8s.CoreV1Api);

let seq = 0;
/** A fresh namespace with its default ServiceAccount (created by the real controller-manager). */
async function namespace(cluster: string): Promise<string> {
  const name = `it-${Date.now().toString(36)}-${seq++}`;
  await core(cluster).createNamespace({ body: { metadata: { name } } });
  await eventually(`ServiceAccount default in ${name}`, () => core(cluster).readNamespacedServiceAccount({ name: 'default', namespace: name }));
  return name;
}

interface GpuPod {
  resource?: string;
  count?: number;
  product?: string;
  duration?: string;
  exitCode?: number;
  tolerateGpuTaint?: boolean;
}

function gpuPod(name: string, p: GpuPod): k8s.V1Pod {
  const annotations: Record<string, string> = {};
  if (p.duration) annotations['sim.gpufed.io/duration'] = p.duration;
  if (p.exitCode !== undefined) annotations['sim.gpufed.io/exit-code'] = String(p.exitCode);
  return {
    metadata: { name, annotations },
    spec: {
      restartPolicy: 'Never',
      runtimeClassName: 'nvidia',
      automountServiceAccountToken: false,
      ...(p.product ? { nodeSelector: { 'nvidia.com/gpu.product': p.product } } : {}),
      ...(p.tolerateGpuTaint ? { tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }] } : {}),
      containers: [
        {
          name: 'main',
          image: 'pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime',
          command: ['python', 'train.py'],
          resources: { limits: { [p.resource ?? 'nvidia.com/gpu']: String(p.count ?? 1) } },
        },
      ],
    },
  };
}

async function podPhase(cluster: string, namespace: string, name: string, phase: string): Promise<k8s.V1Pod> {
  return eventually(`pod ${name} to be ${phase}`, async () => {
    const pod = await core(cluster).readNamespacedPod({ name, namespace });
    return pod.status?.phase === phase ? pod : undefined;
  });
}

describe('the local federation', () => {
  it('has every component alive and healthy', async () => {
    const r = await status(testDir());
    expect(r.components.filter((c) => !c.healthy)).toEqual([]);
    expect(r.components.map((c) => c.name)).toEqual(
      expect.arrayContaining(['etcd', 'registry/kube-apiserver', 'registry/kube-controller-manager', 'alice/kube-scheduler', 'alice/kwok', 'bob/kube-scheduler', 'bob/kwok']),
    );
    expect(r.running).toBe(true);
  });

  it('runs real Kubernetes 1.34 API servers', async () => {
    for (const cluster of testFederation().plan.clusters) {
      const v = await kubeConfig(cluster.name).makeApiClient(k8s.VersionApi).getCode();
      expect(v.gitVersion).toMatch(/^v1\.34\.\d+$/);
    }
  });

  it("registers each provider's fleet as Ready KWOK nodes with GPU capacity and GFD labels", async () => {
    const nodes = (await core('alice').listNode()).items;
    expect(nodes.map((n) => n.metadata?.name).sort()).toEqual(['alice-desktop', 'alice-nas', 'alice-tower']);
    for (const n of nodes) expect(n.status?.conditions?.find((c) => c.type === 'Ready')?.status).toBe('True');
    const tower = nodes.find((n) => n.metadata?.name === 'alice-tower');
    expect(tower?.status?.allocatable?.['nvidia.com/gpu']).toBe('2');
    expect(tower?.metadata?.labels).toMatchObject({ 'nvidia.com/gpu.product': 'NVIDIA-GeForce-RTX-3090', 'nvidia.com/gpu.memory': '24576', 'nvidia.com/gpu.count': '2' });

    const bob = (await core('bob').listNode()).items;
    const a100 = bob.find((n) => n.metadata?.name === 'bob-a100');
    expect(a100?.status?.allocatable?.['nvidia.com/mig-1g.10gb']).toBe('7');
    expect(a100?.status?.allocatable?.['nvidia.com/gpu']).toBeUndefined();
    expect(bob.find((n) => n.metadata?.name === 'bob-shared')?.status?.allocatable?.['nvidia.com/gpu.shared']).toBe('4');
  });

  it('has the nvidia RuntimeClass that job pods name, on every provider', async () => {
    for (const cluster of ['alice', 'bob']) {
      const rc = await kubeConfig(cluster).makeApiClient(k8s.NodeV1Api).readRuntimeClass({ name: 'nvidia' });
      expect(rc.handler).toBe('nvidia');
    }
  });

  it('binds a GPU pod with a product selector to the right node, runs it and lets it succeed', async () => {
    const ns = await namespace('alice');
    await core('alice').createNamespacedPod({ namespace: ns, body: gpuPod('train', { product: 'NVIDIA-GeForce-RTX-3090', count: 1, duration: '2s' }) });
    const running = await podPhase('alice', ns, 'train', 'Running');
    expect(running.spec?.nodeName).toBe('alice-tower');
    const done = await podPhase('alice', ns, 'train', 'Succeeded');
    expect(done.status?.containerStatuses?.[0]?.state?.terminated?.exitCode).toBe(0);
    expect(done.status?.containerStatuses?.[0]?.state?.terminated?.reason).toBe('Completed');
  });

  it('fails a pod with the exit code its annotation chooses', async () => {
    const ns = await namespace('alice');
    await core('alice').createNamespacedPod({ namespace: ns, body: gpuPod('crash', { product: 'NVIDIA-GeForce-RTX-4090', duration: '1s', exitCode: 3 }) });
    const failed = await podPhase('alice', ns, 'crash', 'Failed');
    expect(failed.spec?.nodeName).toBe('alice-desktop');
    expect(failed.status?.containerStatuses?.[0]?.state?.terminated).toMatchObject({ exitCode: 3, reason: 'Error' });
  });

  it('keeps a pod without a duration Running until it is deleted', async () => {
    const ns = await namespace('alice');
    await core('alice').createNamespacedPod({ namespace: ns, body: gpuPod('serve', { product: 'NVIDIA-GeForce-RTX-4090' }) });
    await podPhase('alice', ns, 'serve', 'Running');
    await new Promise((r) => setTimeout(r, 1500));
    expect((await core('alice').readNamespacedPod({ name: 'serve', namespace: ns })).status?.phase).toBe('Running');
    await core('alice').deleteNamespacedPod({ name: 'serve', namespace: ns });
    await eventually('pod serve to be gone', async () => {
      try {
        await core('alice').readNamespacedPod({ name: 'serve', namespace: ns });
        return undefined;
      } catch {
        return true;
      }
    });
  });

  it('leaves a pod that wants more GPUs than any node has Pending with the Unschedulable reason', async () => {
    const ns = await namespace('alice');
    await core('alice').createNamespacedPod({ namespace: ns, body: gpuPod('too-big', { count: 3 }) });
    const cond = await eventually('PodScheduled=False', async () => {
      const pod = await core('alice').readNamespacedPod({ name: 'too-big', namespace: ns });
      const c = pod.status?.conditions?.find((x) => x.type === 'PodScheduled');
      return c?.status === 'False' ? c : undefined;
    });
    expect(cond.reason).toBe('Unschedulable');
    expect(cond.message).toMatch(/Insufficient nvidia\.com\/gpu/);
    const pod = await core('alice').readNamespacedPod({ name: 'too-big', namespace: ns });
    expect(pod.status?.phase).toBe('Pending');
    expect(pod.spec?.nodeName).toBeUndefined();
  });

  it('places a MIG pod on the MIG node (tolerating its nvidia.com/gpu taint)', async () => {
    const ns = await namespace('bob');
    await core('bob').createNamespacedPod({ namespace: ns, body: gpuPod('mig', { resource: 'nvidia.com/mig-1g.10gb', tolerateGpuTaint: true, duration: '1s' }) });
    const done = await podPhase('bob', ns, 'mig', 'Succeeded');
    expect(done.spec?.nodeName).toBe('bob-a100');
  });

  it('does not place a pod on the tainted MIG node without the toleration', async () => {
    const ns = await namespace('bob');
    await core('bob').createNamespacedPod({ namespace: ns, body: gpuPod('mig-untolerated', { resource: 'nvidia.com/mig-1g.10gb' }) });
    const cond = await eventually('PodScheduled=False', async () => {
      const pod = await core('bob').readNamespacedPod({ name: 'mig-untolerated', namespace: ns });
      const c = pod.status?.conditions?.find((x) => x.type === 'PodScheduled');
      return c?.status === 'False' ? c : undefined;
    });
    // The scheduler's reason counts nodes per filter: the MIG node fails on its taint, the rest on resources.
    expect(cond.reason).toBe('Unschedulable');
    expect(cond.message).toMatch(/1 node\(s\) had untolerated taint\(s\), 3 Insufficient nvidia\.com\/mig-1g\.10gb/);
  });

  it('places a time-sliced pod on the node that advertises nvidia.com/gpu.shared', async () => {
    const ns = await namespace('bob');
    await core('bob').createNamespacedPod({ namespace: ns, body: gpuPod('shared', { resource: 'nvidia.com/gpu.shared', duration: '1s' }) });
    const done = await podPhase('bob', ns, 'shared', 'Succeeded');
    expect(done.spec?.nodeName).toBe('bob-shared');
  });

  it('keeps the clusters apart: a namespace made on alice does not exist on bob or the registry', async () => {
    const ns = await namespace('alice');
    for (const other of ['bob', 'registry']) {
      await expect(core(other).readNamespace({ name: ns })).rejects.toMatchObject({ code: 404 });
    }
  });
});
