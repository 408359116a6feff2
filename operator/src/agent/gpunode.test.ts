import type { V1Node, V1Pod } from '@kubernetes/client-node';
import { gpuNodeSpec, gpuNodeStatus, isGpuNode, podRequest } from './gpunode.js';
import { fleetNode as node } from '../../../test/fixtures/nodes.js';

const now = new Date('2026-11-21T12:00:00Z');
const later = new Date('2026-11-21T12:05:00Z');

function pod(resource: string, count: number, phase = 'Running'): V1Pod {
  return { metadata: { name: `p-${Math.random()}` }, spec: { containers: [{ name: 'c', resources: { limits: { [resource]: String(count) } } }] }, status: { phase } };
}

describe('isGpuNode', () => {
  it.each([
    ['alice-desktop', true],
    ['alice-tower', true],
    ['bob-a100', true],
    ['bob-shared', true],
    ['alice-nas', false],
    ['bob-server', false],
  ])('%s → %p', (name, expected) => {
    expect(isGpuNode(node(name))).toBe(expected);
  });

  it('ignores a GPU resource with zero allocatable (device plugin down)', () => {
    expect(isGpuNode(node('alice-desktop', (n) => (n.status!.allocatable!['nvidia.com/gpu'] = '0')))).toBe(false);
  });
});

describe('gpuNodeSpec', () => {
  it('describes whole GPUs from the GFD labels', () => {
    expect(gpuNodeSpec(node('alice-tower'))).toEqual({
      nodeName: 'alice-tower',
      product: 'NVIDIA-GeForce-RTX-3090',
      memoryMiB: 24576,
      count: 2,
      family: 'ampere',
      computeCapability: '8.6',
      driverVersion: '555.58.02',
      cudaVersion: '12.5',
      resourceName: 'nvidia.com/gpu',
      sharing: { strategy: 'none', replicas: 1 },
    });
  });

  it('describes MIG with its profiles, counts and memory', () => {
    expect(gpuNodeSpec(node('bob-a100'))).toMatchObject({
      product: 'NVIDIA-A100-SXM4-80GB',
      memoryMiB: 81920,
      count: 1,
      resourceName: 'nvidia.com/mig-1g.10gb',
      sharing: { strategy: 'mig', migProfiles: [{ profile: '1g.10gb', count: 7, memoryMiB: 9728 }] },
    });
  });

  it('describes time-slicing with its replicas and the renamed resource', () => {
    expect(gpuNodeSpec(node('bob-shared'))).toMatchObject({ product: 'NVIDIA-GeForce-RTX-3060', count: 1, resourceName: 'nvidia.com/gpu.shared', sharing: { strategy: 'time-slicing', replicas: 4 } });
  });

  it('still describes a GPU node without GFD labels, with an unknown model', () => {
    const bare: V1Node = { metadata: { name: 'bare' }, status: { allocatable: { 'nvidia.com/gpu': '2' } } };
    expect(gpuNodeSpec(bare)).toEqual({ nodeName: 'bare', product: 'unknown', memoryMiB: 0, count: 2, resourceName: 'nvidia.com/gpu', sharing: { strategy: 'none', replicas: 1 } });
  });
});

describe('podRequest', () => {
  it('counts limits of every container and the largest init container', () => {
    const p: V1Pod = {
      spec: {
        containers: [
          { name: 'a', resources: { limits: { 'nvidia.com/gpu': '1' } } },
          { name: 'b', resources: { requests: { 'nvidia.com/gpu': '1' } } },
        ],
        initContainers: [{ name: 'i', resources: { limits: { 'nvidia.com/gpu': '3' } } }],
      },
    };
    expect(podRequest(p, 'nvidia.com/gpu')).toBe(3);
    expect(podRequest(p, 'nvidia.com/gpu.shared')).toBe(0);
  });
});

describe('gpuNodeStatus', () => {
  it('counts free GPUs as allocatable minus what unfinished pods request', () => {
    const pods = [pod('nvidia.com/gpu', 1), pod('nvidia.com/gpu', 1, 'Pending'), pod('nvidia.com/gpu', 1, 'Succeeded'), pod('nvidia.com/gpu', 2, 'Failed')];
    const s = gpuNodeStatus(node('bob-workstation'), pods, undefined, now);
    expect(s).toMatchObject({ allocatable: 4, free: 2 });
  });

  it('never reports negative free GPUs (over-subscribed by a race)', () => {
    expect(gpuNodeStatus(node('alice-desktop'), [pod('nvidia.com/gpu', 1), pod('nvidia.com/gpu', 1)], undefined, now).free).toBe(0);
  });

  it('reports MIG availability per profile', () => {
    const s = gpuNodeStatus(node('bob-a100'), [pod('nvidia.com/mig-1g.10gb', 2)], undefined, now);
    expect(s).toMatchObject({ allocatable: 7, free: 5, migProfiles: [{ profile: '1g.10gb', allocatable: 7, free: 5 }] });
  });

  it('is Ready and Schedulable for a healthy node; the nvidia.com/gpu taint does not count', () => {
    const s = gpuNodeStatus(node('bob-a100'), [], undefined, now);
    expect(s.conditions?.map((c) => [c.type, c.status, c.reason])).toEqual([
      ['Ready', 'True', 'NodeReady'],
      ['Schedulable', 'True', 'NodeSchedulable'],
    ]);
  });

  it.each([
    ['NotReady', (n: V1Node) => (n.status!.conditions = [{ type: 'Ready', status: 'False', reason: 'KubeletNotReady' }]), 'Ready', 'NodeNotReady'],
    ['cordoned', (n: V1Node) => (n.spec = { unschedulable: true }), 'Schedulable', 'NodeCordoned'],
    ['tainted', (n: V1Node) => (n.spec = { taints: [{ key: 'gaming', value: 'owner', effect: 'NoSchedule' }] }), 'Schedulable', 'NodeTainted'],
    ['reclaimed by its owner', (n: V1Node) => (n.metadata!.annotations = { ...n.metadata!.annotations, 'gpufed.io/reclaim-deadline': '2026-11-21T12:05:00Z' }), 'Schedulable', 'NodeReclaimed'],
  ])('reports a %s node in its conditions', (_case, edit, type, reason) => {
    const c = gpuNodeStatus(node('alice-desktop', edit), [], undefined, now).conditions?.find((x) => x.type === type);
    expect(c).toMatchObject({ status: 'False', reason });
  });

  it('is identical for an unchanged node later (so nothing is written), and moves lastTransitionTime only on a flip', () => {
    const first = gpuNodeStatus(node('alice-desktop'), [], undefined, now);
    expect(gpuNodeStatus(node('alice-desktop'), [], first, later)).toEqual(first);
    const cordoned = gpuNodeStatus(node('alice-desktop', (n) => (n.spec = { unschedulable: true })), [], first, later);
    expect(cordoned.conditions?.find((c) => c.type === 'Schedulable')?.lastTransitionTime).toBe('2026-11-21T12:05:00Z');
    expect(cordoned.conditions?.find((c) => c.type === 'Ready')?.lastTransitionTime).toBe('2026-11-21T12:00:00Z');
  });
});
