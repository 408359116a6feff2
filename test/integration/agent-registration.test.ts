// The agent's registration on the real federation: a provider cluster's GPU nodes appear on the
// registry as GpuNodes, follow the cluster (pods, cordon, deletion), and nothing is written that
// did not change — not while idle, not after a restart. Its heartbeat is a Lease; it never writes
// its own Provider (the registry computes that).
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { Agent } from '../../operator/src/agent/agent.js';
import { GpuNodeResource, ProviderResource, type GpuNode, type Provider } from '../../operator/src/api/index.js';
import { Metrics } from '../../operator/src/telemetry/metrics.js';
import { agentRegistryConfig, eventually, kubeConfig, kubectl } from '../support/federation.js';

const HEARTBEAT_MS = 1000;
const ns = (provider: string) => `gpufed-provider-${provider}`;
const custom = () => kubeConfig('registry').makeApiClient(k8s.CustomObjectsApi);
const core = (cluster: string) => kubeConfig(cluster).makeApiClient(k8s.CoreV1Api);
const coordination = () => kubeConfig('registry').makeApiClient(k8s.CoordinationV1Api);

async function gpuNodes(provider: string): Promise<GpuNode[]> {
  const r = (await custom().listNamespacedCustomObject({ group: GpuNodeResource.group, version: GpuNodeResource.version, plural: GpuNodeResource.plural, namespace: ns(provider) })) as { items: GpuNode[] };
  return r.items;
}
async function gpuNode(provider: string, name: string): Promise<GpuNode | undefined> {
  return (await gpuNodes(provider)).find((g) => g.metadata?.name === name);
}
async function writes(m: Metrics, resource: string): Promise<number> {
  return (await m.registryWrites.get()).values.filter((v) => v.labels.resource === resource).reduce((s, v) => s + v.value, 0);
}

const scoped = new Map<string, k8s.KubeConfig>();
function startAgent(provider: string): { agent: Agent; metrics: Metrics } {
  const metrics = new Metrics({ defaultMetrics: false });
  const agent = new Agent({ provider, cluster: kubeConfig(provider), registry: scoped.get(provider) as k8s.KubeConfig, heartbeatMs: HEARTBEAT_MS, version: 'test', metrics, log: pino({ level: process.env.GPUFED_TEST_LOG ?? 'silent' }) });
  return { agent, metrics };
}

beforeAll(async () => {
  // Agents run with the scoped credentials onboarding gives them, never the admin's.
  scoped.set('alice', await agentRegistryConfig('alice', [{ model: 'NVIDIA-GeForce-RTX-4090', pricePerGpuHour: '1200000ustake' }]));
  scoped.set('bob', await agentRegistryConfig('bob', [{ model: 'NVIDIA-RTX-A6000', pricePerGpuHour: '1400000ustake' }]));
});

describe('agent registration', () => {
  const running: Agent[] = [];
  afterEach(async () => {
    for (const a of running.splice(0)) await a.stop();
  });
  const start = async (provider: string) => {
    const a = startAgent(provider);
    running.push(a.agent);
    await a.agent.start();
    return a;
  };

  it("publishes every GPU node of the provider's fleet, and no CPU-only node", async () => {
    await start('bob');
    const nodes = await eventually('bob GpuNodes', async () => {
      const g = await gpuNodes('bob');
      return g.length === 3 && g.every((x) => x.status?.allocatable !== undefined) ? g : undefined;
    });
    const by: Record<string, GpuNode> = Object.fromEntries(nodes.map((g) => [g.metadata?.name ?? '', g]));
    expect(Object.keys(by).sort()).toEqual(['bob-a100', 'bob-shared', 'bob-workstation']);
    expect(by['bob-workstation']?.spec).toMatchObject({ product: 'NVIDIA-RTX-A6000', memoryMiB: 49140, count: 4, resourceName: 'nvidia.com/gpu', sharing: { strategy: 'none' } });
    expect(by['bob-a100']?.spec).toMatchObject({ product: 'NVIDIA-A100-SXM4-80GB', resourceName: 'nvidia.com/mig-1g.10gb', sharing: { strategy: 'mig', migProfiles: [{ profile: '1g.10gb', count: 7 }] } });
    expect(by['bob-a100']?.status).toMatchObject({ allocatable: 7, migProfiles: [{ profile: '1g.10gb', allocatable: 7 }] });
    expect(by['bob-shared']?.spec).toMatchObject({ product: 'NVIDIA-GeForce-RTX-3060', resourceName: 'nvidia.com/gpu.shared', sharing: { strategy: 'time-slicing', replicas: 4 } });
    expect(by['bob-shared']?.status?.allocatable).toBe(4);
    for (const g of nodes) expect(g.metadata?.labels?.['gpufed.io/provider']).toBe('bob');
  });

  it('heartbeats a Lease in its namespace, kubelet-style, and writes nothing of its Provider', async () => {
    await start('alice');
    const lease = () => coordination().readNamespacedLease({ name: 'gpufed-agent', namespace: ns('alice') });
    const first = await eventually('alice heartbeat Lease', async () => (await lease()).spec?.renewTime);
    const held = await lease();
    expect(held.metadata?.annotations?.['gpufed.io/agent-version']).toBe('test');
    expect(held.spec?.holderIdentity).toMatch(/_\d+$/);
    // renewTime as the API returns it (client-node leaves MicroTime a string).
    const renewed = async () => Date.parse(String((await lease()).spec?.renewTime));
    const at = Date.parse(String(first));
    expect(Number.isNaN(at)).toBe(false);
    await eventually('a later heartbeat', async () => ((await renewed()) > at ? true : undefined));
    // The Provider's status is the registry's: no field of it is the agent's.
    const p = (await custom().getClusterCustomObject({ group: ProviderResource.group, version: ProviderResource.version, plural: ProviderResource.plural, name: 'alice' })) as Provider;
    expect((p.metadata.managedFields ?? []).map((f) => f.manager).filter((m) => m?.startsWith('gpufed-agent'))).toEqual([]);
  });

  it("follows the node's pods: free GPUs drop while a pod holds one and come back when it ends", async () => {
    await start('bob');
    const before = await eventually('bob-workstation status', async () => (await gpuNode('bob', 'bob-workstation'))?.status?.free);
    const name = `hold-${Date.now().toString(36)}`;
    await core('bob').createNamespacedPod({
      namespace: 'default',
      body: {
        metadata: { name, annotations: { 'sim.gpufed.io/duration': '4s' } },
        spec: { restartPolicy: 'Never', nodeName: 'bob-workstation', containers: [{ name: 'c', image: 'busybox', resources: { limits: { 'nvidia.com/gpu': '2' } } }] },
      },
    });
    await eventually('free to drop by 2', async () => ((await gpuNode('bob', 'bob-workstation'))?.status?.free === before - 2 ? true : undefined));
    await eventually('free to come back', async () => ((await gpuNode('bob', 'bob-workstation'))?.status?.free === before ? true : undefined), 30_000);
  });

  it('reports a cordoned node as not Schedulable and a deleted node by deleting its GpuNode', async () => {
    await start('alice');
    await eventually('alice-desktop', () => gpuNode('alice', 'alice-desktop'));
    expect((await kubectl('alice', ['cordon', 'alice-desktop'])).code).toBe(0);
    const cond = await eventually('Schedulable=False', async () => (await gpuNode('alice', 'alice-desktop'))?.status?.conditions?.find((c) => c.type === 'Schedulable' && c.status === 'False'));
    expect(cond.reason).toBe('NodeCordoned');
    expect((await kubectl('alice', ['uncordon', 'alice-desktop'])).code).toBe(0);
    await eventually('Schedulable=True', async () => (await gpuNode('alice', 'alice-desktop'))?.status?.conditions?.find((c) => c.type === 'Schedulable' && c.status === 'True'));

    const node = await core('alice').readNode({ name: 'alice-desktop' });
    await core('alice').deleteNode({ name: 'alice-desktop' });
    await eventually('GpuNode alice-desktop to be deleted', async () => ((await gpuNode('alice', 'alice-desktop')) === undefined ? true : undefined));
    // Put the node back as it was for the other tests; KWOK makes it Ready again.
    await core('alice').createNode({ body: { metadata: { name: 'alice-desktop', labels: node.metadata?.labels ?? {}, annotations: node.metadata?.annotations ?? {} }, spec: {}, status: { capacity: node.status?.capacity ?? {}, allocatable: node.status?.allocatable ?? {} } } });
    await eventually('GpuNode alice-desktop back', async () => (await gpuNode('alice', 'alice-desktop'))?.status?.conditions?.find((c) => c.type === 'Ready' && c.status === 'True'));
  });

  it('writes only heartbeats while the cluster is idle, and nothing but heartbeats after a restart', async () => {
    const first = await start('bob');
    await eventually('bob registered', async () => ((await gpuNodes('bob')).length === 3 ? true : undefined));
    await new Promise((r) => setTimeout(r, 1000)); // let the first reconciles settle
    const nodeWritesBefore = await writes(first.metrics, 'gpunodes');
    const beatsBefore = await writes(first.metrics, 'leases');
    await new Promise((r) => setTimeout(r, 6 * HEARTBEAT_MS));
    expect(await writes(first.metrics, 'gpunodes')).toBe(nodeWritesBefore);
    expect((await writes(first.metrics, 'leases')) - beatsBefore).toBeGreaterThanOrEqual(5);
    expect(await writes(first.metrics, 'providers')).toBe(0);
    await first.agent.stop();

    const second = await start('bob');
    await new Promise((r) => setTimeout(r, 3 * HEARTBEAT_MS));
    expect(await writes(second.metrics, 'gpunodes')).toBe(0);
    expect(await writes(second.metrics, 'leases')).toBeGreaterThanOrEqual(2);
  });
});
