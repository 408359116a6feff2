import { describe, expect, it } from '@jest/globals';
import type { V1Pod } from '@kubernetes/client-node';
import type { GpuNode, Provider } from '../../../operator/src/api/index.js';
import { clusterReport, podGpus, providerStatusTable, registryReport, statusProviderName, withRegistry } from './provider.js';
import { fleetNode as node } from '../../../test/fixtures/nodes.js';

const now = new Date('2026-11-21T12:00:00Z');
const JOBS = 'gpufed-jobs';


/** A pod on a node asking for `count` of `resource`; a gpufed job pod when in the jobs namespace. */
function pod(name: string, nodeName: string, o: { namespace?: string; resource?: string; count?: number; phase?: string; assignment?: string } = {}): V1Pod {
  const limits = o.count === undefined ? {} : { [o.resource ?? 'nvidia.com/gpu']: String(o.count) };
  return {
    metadata: {
      name,
      namespace: o.namespace ?? JOBS,
      creationTimestamp: new Date(now.getTime() - 90_000),
      labels: { 'gpufed.io/epoch': '1' },
      ...(o.assignment ? { annotations: { 'gpufed.io/assignment-name': o.assignment } } : {}),
    },
    spec: { nodeName, containers: [{ name: 'job', resources: { limits } }] },
    status: { phase: o.phase ?? 'Running' },
  };
}

const aliceNodes = () => [node('alice-desktop'), node('alice-tower'), node('alice-nas')];

describe('clusterReport', () => {
  it("lists the GPU nodes with allocatable and free (every unfinished pod counts, the owner's too) and the job pods", () => {
    const pods = [
      pod('job-a-1', 'alice-tower', { count: 1, assignment: 'carol-train-a' }),
      pod('job-b-1', 'alice-tower', { count: 1, phase: 'Succeeded' }), // finished: holds nothing
      pod('owner-game', 'alice-desktop', { namespace: 'default', count: 1 }), // the owner's own
    ];
    const r = clusterReport(aliceNodes(), pods, JOBS, now);
    expect(r.nodes).toEqual([
      { name: 'alice-desktop', model: 'NVIDIA-GeForce-RTX-4090', memoryMiB: 24564, resourceName: 'nvidia.com/gpu', allocatable: 1, free: 0, takesJobs: true, state: 'NodeSchedulable', reclaimed: false, jobs: 0 },
      { name: 'alice-tower', model: 'NVIDIA-GeForce-RTX-3090', memoryMiB: 24576, resourceName: 'nvidia.com/gpu', allocatable: 2, free: 1, takesJobs: true, state: 'NodeSchedulable', reclaimed: false, jobs: 1 },
    ]);
    expect(r.jobs).toEqual([
      { name: 'job-a-1', node: 'alice-tower', phase: 'Running', gpus: 1, resource: 'nvidia.com/gpu', assignment: 'carol-train-a', epoch: '1', created: '2026-11-21T11:58:30Z' },
      { name: 'job-b-1', node: 'alice-tower', phase: 'Succeeded', gpus: 1, resource: 'nvidia.com/gpu', epoch: '1', created: '2026-11-21T11:58:30Z' },
    ]);
  });

  it('marks a reclaimed node with its deadline, and one that is cordoned or not Ready as taking no jobs', () => {
    const nodes = [
      node('alice-desktop', (n) => (n.metadata!.annotations = { 'gpufed.io/reclaim-deadline': '2026-11-21T12:05:00Z' })),
      node('alice-tower', (n) => (n.spec = { ...n.spec, unschedulable: true })),
      node('bob-workstation', (n) => (n.status!.conditions = [{ type: 'Ready', status: 'False', reason: 'KubeletNotReady' }])),
    ];
    const r = clusterReport(nodes, [], JOBS, now);
    expect(r.nodes.map((n) => [n.name, n.takesJobs, n.state, n.reclaimed, n.reclaimDeadline])).toEqual([
      ['alice-desktop', false, 'NodeReclaimed', true, '2026-11-21T12:05:00Z'],
      ['alice-tower', false, 'NodeCordoned', false, undefined],
      ['bob-workstation', false, 'NodeNotReady', false, undefined],
    ]);
    const text = providerStatusTable(r, now);
    expect(text).toMatch(/^alice-desktop\s+NVIDIA-GeForce-RTX-4090\s+-\s+1\s+1\s+0\s+reclaimed\s+yes, jobs stop in 5m$/m);
    expect(text).toMatch(/^alice-tower\s+.*\s+cordoned\s+no$/m);
    expect(text).toMatch(/^bob-workstation\s+.*\s+not Ready\s+no$/m);
  });

  it('counts shares on time-sliced and MIG nodes', () => {
    const r = clusterReport([node('bob-shared'), node('bob-a100')], [pod('job-s', 'bob-shared', { resource: 'nvidia.com/gpu.shared', count: 1 }), pod('job-m', 'bob-a100', { resource: 'nvidia.com/mig-1g.10gb', count: 2 })], JOBS, now);
    expect(r.nodes.map((n) => [n.name, n.sharing, n.allocatable, n.free, n.jobs])).toEqual([
      ['bob-a100', 'mig 1g.10gb', 7, 5, 1],
      ['bob-shared', 'time-slicing ×4', 4, 3, 1],
    ]);
    expect(r.jobs.map((j) => [j.name, j.gpus, j.resource])).toEqual([['job-m', 2, 'nvidia.com/mig-1g.10gb'], ['job-s', 1, 'nvidia.com/gpu.shared']]);
  });
});

describe('podGpus', () => {
  it('finds the GPU resource in limits or requests, and none in a CPU-only pod', () => {
    expect(podGpus(pod('a', 'n', { count: 2 }))).toEqual({ resource: 'nvidia.com/gpu', units: 2 });
    expect(podGpus({ spec: { containers: [{ name: 'c', resources: { requests: { 'nvidia.com/gpu.shared': '1', cpu: '1' } } }] } })).toEqual({ resource: 'nvidia.com/gpu.shared', units: 1 });
    expect(podGpus(pod('b', 'n'))).toEqual({ units: 0 });
  });
});

const aliceProvider = (status: Provider['status']): Provider => ({
  apiVersion: 'gpufed.io/v1alpha1',
  kind: 'Provider',
  metadata: { name: 'alice' },
  spec: { wallet: 'cosmos1x', region: 'eu-west', prices: [{ model: 'NVIDIA-GeForce-RTX-4090', pricePerGpuHour: '1200000ustake' }] },
  ...(status ? { status } : {}),
});
const published = (name: string): GpuNode => ({ apiVersion: 'gpufed.io/v1alpha1', kind: 'GpuNode', metadata: { name, namespace: 'gpufed-provider-alice' }, spec: { nodeName: name, product: 'x', memoryMiB: 1, count: 1, resourceName: 'nvidia.com/gpu' } });

describe('registryReport', () => {
  it("gives the registry's Ready condition, the heartbeat's age, capacity and reputation, and marks the nodes the agent published", () => {
    const provider = aliceProvider({
      lastHeartbeatTime: '2026-11-21T11:59:56Z',
      agentVersion: '0.1.0',
      capacity: [{ model: 'NVIDIA-GeForce-RTX-4090', total: 1, free: 1 }],
      reputation: { succeeded: 3, lost: 1 },
      conditions: [{ type: 'Ready', status: 'True', reason: 'HeartbeatFresh', message: 'Heartbeat fresh; 1/1 NVIDIA-GeForce-RTX-4090 free', lastTransitionTime: '2026-11-21T11:00:00Z' }],
    });
    const g = registryReport(provider, [published('alice-desktop')], now);
    expect(g).toEqual({
      provider: 'alice',
      region: 'eu-west',
      cordoned: false,
      ready: { status: 'True', reason: 'HeartbeatFresh', message: 'Heartbeat fresh; 1/1 NVIDIA-GeForce-RTX-4090 free', lastTransitionTime: '2026-11-21T11:00:00Z' },
      lastHeartbeatTime: '2026-11-21T11:59:56Z',
      heartbeatAgeSeconds: 4,
      agentVersion: '0.1.0',
      capacity: [{ model: 'NVIDIA-GeForce-RTX-4090', total: 1, free: 1 }],
      reputation: { succeeded: 3, failed: 0, lost: 1 },
      gpuNodes: ['alice-desktop'],
    });
    const r = withRegistry(clusterReport(aliceNodes(), [], JOBS, now), g);
    expect(r.nodes.map((n) => [n.name, n.registered])).toEqual([['alice-desktop', true], ['alice-tower', false]]);
    const text = providerStatusTable(r, now);
    expect(text).toMatch(/^Ready:\s+True \(HeartbeatFresh\): Heartbeat fresh/m);
    expect(text).toMatch(/^Last heartbeat:\s+2026-11-21T11:59:56Z \(4s ago\)$/m);
    expect(text).toMatch(/^Reputation:\s+3 succeeded, 0 failed, 1 lost$/m);
    expect(text).toMatch(/^alice-tower\s+.*\s+no\s+no$/m);
    expect(text).toMatch(/No GpuNode on the registry for alice-tower: is the agent running\?/);
  });

  it('says when the agent never heartbeated and the registry has not judged it', () => {
    const text = providerStatusTable(withRegistry(clusterReport([], [], JOBS, now), registryReport(aliceProvider(undefined), undefined, now)), now);
    expect(text).toMatch(/^Ready:\s+unknown/m);
    expect(text).toMatch(/^Last heartbeat:\s+never$/m);
    expect(text).toContain('No GPU nodes in this cluster');
  });

  it('shows a registry that could not be read, and how to add the registry when it is not given', () => {
    const cluster = clusterReport(aliceNodes(), [], JOBS, now);
    expect(providerStatusTable(withRegistry(cluster, { provider: 'alice', error: 'no Provider alice on the registry' }), now)).toMatch(/Registry: Provider alice\nno Provider alice on the registry$/);
    expect(providerStatusTable(cluster, now)).toMatch(/Add --registry-kubeconfig/);
    expect(providerStatusTable(cluster, now)).toMatch(/^Job pods in namespace gpufed-jobs\nnone$/m);
  });
});

describe('statusProviderName', () => {
  it("takes --provider, else the agent kubeconfig's namespace, else asks for --provider", () => {
    expect(statusProviderName('bob', 'gpufed-provider-alice')).toBe('bob');
    expect(statusProviderName(undefined, 'gpufed-provider-alice')).toBe('alice');
    expect(() => statusProviderName(undefined, 'carol')).toThrow(/--provider <name>: required/);
  });
});
