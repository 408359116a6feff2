import type { GpuNodeSpec, GpuNodeStatus } from '../api/index.js';
import { chooseNode, type FitCandidate } from './fit.js';

const ok = [
  { type: 'Ready', status: 'True' as const, reason: 'NodeReady', message: '', lastTransitionTime: '2026-11-21T00:00:00Z' },
  { type: 'Schedulable', status: 'True' as const, reason: 'NodeSchedulable', message: '', lastTransitionTime: '2026-11-21T00:00:00Z' },
];
function node(name: string, product: string, free: number, extra: Partial<GpuNodeSpec> = {}, status: Partial<GpuNodeStatus> = {}): FitCandidate {
  return {
    spec: { nodeName: name, product, memoryMiB: 24576, count: free, resourceName: 'nvidia.com/gpu', sharing: { strategy: 'none', replicas: 1 }, ...extra },
    status: { allocatable: free, free, conditions: ok, ...status },
  };
}
const a100 = node('a100', 'NVIDIA-A100-SXM4-80GB', 0, { resourceName: 'nvidia.com/mig-1g.10gb', sharing: { strategy: 'mig', replicas: 1, migProfiles: [{ profile: '1g.10gb', count: 7, memoryMiB: 9728 }] } }, { allocatable: 7, free: 3, migProfiles: [{ profile: '1g.10gb', allocatable: 7, free: 3 }] });
const none = new Map<string, number>();

describe('chooseNode', () => {
  const nodes = [node('big', 'RTX-3090', 4), node('small', 'RTX-3090', 2), node('other', 'RTX-4090', 8)];

  it('picks the tightest node of the placed model', () => {
    expect(chooseNode({ count: 2 }, 'RTX-3090', nodes, none)).toEqual({ fits: true, nodeName: 'small', resourceName: 'nvidia.com/gpu' });
  });

  it("prefers the registry's hint when it fits", () => {
    expect(chooseNode({ count: 2 }, 'RTX-3090', nodes, none, 'big')).toMatchObject({ fits: true, nodeName: 'big' });
    expect(chooseNode({ count: 3 }, 'RTX-3090', nodes, none, 'small')).toMatchObject({ fits: true, nodeName: 'big' });
  });

  it('counts GPUs reserved for pods that are not bound yet', () => {
    expect(chooseNode({ count: 2 }, 'RTX-3090', nodes, new Map([['small', 1]]))).toMatchObject({ nodeName: 'big' });
    expect(chooseNode({ count: 2 }, 'RTX-3090', nodes, new Map([['small', 1], ['big', 3]]))).toMatchObject({ fits: false, reason: 'InsufficientGpus' });
  });

  it('rejects with InsufficientGpus and says what is free', () => {
    const r = chooseNode({ count: 5 }, 'RTX-3090', nodes, none);
    expect(r).toEqual({ fits: false, reason: 'InsufficientGpus', message: 'No RTX-3090 node has 5 free nvidia.com/gpu (big: 4 free; small: 2 free)' });
  });

  it('rejects with UnknownModel when the model is gone', () => {
    expect(chooseNode({ count: 1 }, 'RTX-5090', nodes, none)).toMatchObject({ fits: false, reason: 'UnknownModel' });
  });

  it('skips nodes that are not Schedulable', () => {
    const cordoned = node('c', 'RTX-3090', 8, {}, { conditions: [ok[0]!, { ...ok[1]!, status: 'False', reason: 'NodeCordoned' }] });
    const r = chooseNode({ count: 1 }, 'RTX-3090', [cordoned], none);
    expect(r).toMatchObject({ fits: false, reason: 'InsufficientGpus' });
    expect(r.fits ? '' : r.message).toMatch(/c: 8 free, not schedulable/);
  });

  it('checks memory per GPU', () => {
    expect(chooseNode({ count: 1, minMemoryMiB: 30000 }, 'RTX-3090', nodes, none)).toMatchObject({ fits: false });
    expect(chooseNode({ count: 1, minMemoryMiB: 24000 }, 'RTX-3090', nodes, none)).toMatchObject({ fits: true });
  });

  it('fits MIG jobs on the profile with its own memory', () => {
    expect(chooseNode({ count: 3, sharing: 'MIG', migProfile: '1g.10gb' }, 'NVIDIA-A100-SXM4-80GB', [a100], none)).toEqual({ fits: true, nodeName: 'a100', resourceName: 'nvidia.com/mig-1g.10gb' });
    expect(chooseNode({ count: 4, sharing: 'MIG', migProfile: '1g.10gb' }, 'NVIDIA-A100-SXM4-80GB', [a100], none)).toMatchObject({ fits: false });
    expect(chooseNode({ count: 1, sharing: 'MIG', migProfile: '1g.10gb', minMemoryMiB: 20000 }, 'NVIDIA-A100-SXM4-80GB', [a100], none)).toMatchObject({ fits: false });
  });

  it('fits time-sliced jobs only on nodes that share GPUs', () => {
    const shared = node('s', 'RTX-3060', 4, { resourceName: 'nvidia.com/gpu.shared', sharing: { strategy: 'time-slicing', replicas: 4 } });
    expect(chooseNode({ count: 1, sharing: 'TimeSliced' }, 'RTX-3060', [shared], none)).toEqual({ fits: true, nodeName: 's', resourceName: 'nvidia.com/gpu.shared' });
    expect(chooseNode({ count: 1 }, 'RTX-3060', [shared], none)).toMatchObject({ fits: false });
  });
});
