// The fake dcgm-exporter's rendering: which GPU a Running pod gets, the labels and units of the
// real exporter, and an energy counter that only ever goes up.
import type { V1Node, V1Pod } from '@kubernetes/client-node';
import {
  accumulateEnergy,
  DEFAULT_BUSY_UTIL,
  gpuDevices,
  gpuUuid,
  modelName,
  nodeDevices,
  physicalGpuCount,
  podUtil,
  readGpus,
  renderMetrics,
  type EnergyState,
} from '../support/dcgm-render.js';

/** A GPU node the way the dev fleet labels it (cli/src/dev/fleet.ts). */
function gpuNode(name: string, o: { product?: string; count?: number; resources?: Record<string, string>; labels?: Record<string, string> } = {}): V1Node {
  const count = o.count ?? 1;
  const resources = { cpu: '16', memory: '64Gi', ...(o.resources ?? { 'nvidia.com/gpu': String(count) }) };
  return {
    metadata: {
      name,
      labels: {
        'nvidia.com/gpu.product': o.product ?? 'NVIDIA-GeForce-RTX-4090',
        'nvidia.com/gpu.memory': '24564',
        'nvidia.com/gpu.count': String(count),
        'nvidia.com/cuda.driver-version.full': '555.58.02',
        ...o.labels,
      },
    },
    status: { capacity: resources, allocatable: resources },
  };
}

const cpuNode = (name: string): V1Node => ({ metadata: { name }, status: { capacity: { cpu: '4', memory: '16Gi' } } });

let created = 0;
function pod(name: string, node: string, o: { phase?: string; gpus?: number; resource?: string; util?: string; namespace?: string; created?: number; container?: string } = {}): V1Pod {
  return {
    metadata: {
      name,
      namespace: o.namespace ?? 'gpufed-jobs',
      creationTimestamp: new Date(Date.UTC(2026, 0, 1, 0, 0, o.created ?? created++)),
      annotations: o.util === undefined ? {} : { 'sim.gpufed.io/gpu-util': o.util },
    },
    spec: { nodeName: node, containers: [{ name: o.container ?? 'job', resources: { limits: { [o.resource ?? 'nvidia.com/gpu']: String(o.gpus ?? 1) } } }] },
    status: { phase: o.phase ?? 'Running' },
  };
}

const holders = (devices: ReturnType<typeof gpuDevices>) => devices.map((d) => [d.gpu.node, d.gpu.index, d.mig?.profile ?? d.vgpu ?? '', d.holder?.pod ?? null]);

describe('GPU assignment', () => {
  it('gives each Running pod whole GPUs, oldest pod first, and leaves the rest idle', () => {
    const node = gpuNode('alice-tower', { count: 3 });
    const pods = [pod('young', 'alice-tower', { created: 20 }), pod('old', 'alice-tower', { created: 10, gpus: 2 })];
    expect(holders(nodeDevices(node, pods))).toEqual([
      ['alice-tower', 0, '', 'old'],
      ['alice-tower', 1, '', 'old'],
      ['alice-tower', 2, '', 'young'],
    ]);
  });

  it('breaks creation-time ties by namespace and name, so the assignment is deterministic', () => {
    const node = gpuNode('n', { count: 2 });
    const a = [pod('b', 'n', { created: 5 }), pod('a', 'n', { created: 5 })];
    expect(holders(nodeDevices(node, a))).toEqual(holders(nodeDevices(node, [...a].reverse())));
    expect(nodeDevices(node, a)[0]?.holder?.pod).toBe('a');
  });

  it.each(['Pending', 'Succeeded', 'Failed'])('gives nothing to a %s pod', (phase) => {
    expect(nodeDevices(gpuNode('n'), [pod('p', 'n', { phase })])[0]?.holder).toBeUndefined();
  });

  it('ignores pods on other nodes and nodes without GPUs', () => {
    expect(holders(gpuDevices([cpuNode('nas'), gpuNode('n')], [pod('p', 'elsewhere'), pod('q', 'nas')]))).toEqual([['n', 0, '', null]]);
  });

  it('never hands out more GPUs than the node has', () => {
    const devices = nodeDevices(gpuNode('n', { count: 1 }), [pod('a', 'n', { gpus: 1 }), pod('b', 'n', { gpus: 1 })]);
    expect(devices.map((d) => d.holder?.pod)).toEqual(['a']);
  });

  it('names the container that asked for the GPU', () => {
    expect(nodeDevices(gpuNode('n'), [pod('p', 'n', { container: 'trainer' })])[0]?.holder).toMatchObject({ namespace: 'gpufed-jobs', pod: 'p', container: 'trainer' });
  });

  it('places MIG instances on the physical GPU and gives pods instances of the profile they asked for', () => {
    const node = gpuNode('bob-a100', { product: 'NVIDIA-A100-SXM4-80GB', resources: { 'nvidia.com/mig-1g.10gb': '7' }, labels: { 'nvidia.com/gpu.memory': '81920' } });
    const devices = nodeDevices(node, [pod('slice', 'bob-a100', { resource: 'nvidia.com/mig-1g.10gb', gpus: 2 })]);
    expect(devices).toHaveLength(7);
    expect(devices.map((d) => [d.gpu.index, d.mig?.id, d.holder?.pod ?? null])).toEqual([
      [0, 1, 'slice'],
      [0, 2, 'slice'],
      [0, 3, null],
      [0, 4, null],
      [0, 5, null],
      [0, 6, null],
      [0, 7, null],
    ]);
  });

  it('on a time-sliced GPU gives each sharing pod its own row with a vgpu, and shows an idle GPU once', () => {
    const node = gpuNode('bob-shared', {
      product: 'NVIDIA-GeForce-RTX-3060',
      resources: { 'nvidia.com/gpu.shared': '4' },
      labels: { 'nvidia.com/gpu.replicas': '4', 'nvidia.com/gpu.sharing-strategy': 'time-slicing' },
    });
    expect(holders(nodeDevices(node, []))).toEqual([['bob-shared', 0, '', null]]);
    const two = [pod('a', 'bob-shared', { resource: 'nvidia.com/gpu.shared' }), pod('b', 'bob-shared', { resource: 'nvidia.com/gpu.shared' })];
    expect(holders(nodeDevices(node, two))).toEqual([
      ['bob-shared', 0, '0', 'a'],
      ['bob-shared', 0, '1', 'b'],
    ]);
  });

  it('counts physical GPUs from GFD, else from the resources', () => {
    expect(physicalGpuCount(gpuNode('n', { count: 4 }))).toBe(4);
    const unlabelled: V1Node = { metadata: { name: 'x' }, status: { capacity: { 'nvidia.com/gpu': '2' } } };
    expect(physicalGpuCount(unlabelled)).toBe(2);
    const mig: V1Node = { metadata: { name: 'm' }, status: { capacity: { 'nvidia.com/mig-3g.40gb': '4' } } };
    expect(physicalGpuCount(mig)).toBe(2);
  });
});

describe('readings', () => {
  const read = (node: V1Node, pods: V1Pod[]) => readGpus(nodeDevices(node, pods));

  it('reads a held GPU as busy at the pod annotation’s utilisation, or 90 without one', () => {
    const [annotated] = read(gpuNode('n'), [pod('p', 'n', { util: '40' })]);
    const [plain] = read(gpuNode('n'), [pod('p', 'n')]);
    expect(annotated?.utilPercent).toBe(40);
    expect(plain?.utilPercent).toBe(DEFAULT_BUSY_UTIL);
  });

  it.each([
    ['150', 100],
    ['-5', 0],
    ['lots', DEFAULT_BUSY_UTIL],
    ['', DEFAULT_BUSY_UTIL],
  ])('reads the annotation %p as %p%%', (v, want) => {
    expect(podUtil(pod('p', 'n', { util: v }))).toBe(want);
  });

  it('reads an idle GPU as 0% and 0 MiB, drawing its idle power, well under a busy one', () => {
    const [idle, busy] = read(gpuNode('n', { count: 2 }), [pod('p', 'n', { created: 1 })]).reverse();
    expect(idle).toMatchObject({ utilPercent: 0, fbUsedMiB: 0 });
    expect(busy?.fbUsedMiB).toBeGreaterThan(0);
    expect(idle?.powerW).toBe(36); // 8% of the RTX 4090's 450 W
    expect(busy?.powerW).toBeCloseTo(36 + (450 - 36) * 0.9, 3);
  });

  it('draws power in proportion to utilisation', () => {
    const p = (util: string) => read(gpuNode('n'), [pod('p', 'n', { util })])[0]?.powerW ?? 0;
    expect(p('100')).toBe(450);
    expect(p('50')).toBeCloseTo((36 + 450) / 2, 3);
  });

  it('repeats the physical GPU’s power on every MIG instance, while utilisation is per instance', () => {
    const node = gpuNode('m', { product: 'NVIDIA-A100-SXM4-80GB', resources: { 'nvidia.com/mig-1g.10gb': '7' } });
    const r = read(node, [pod('p', 'm', { resource: 'nvidia.com/mig-1g.10gb', util: '70' })]);
    expect(new Set(r.map((x) => x.powerW)).size).toBe(1);
    expect(r.map((x) => x.utilPercent)).toEqual([70, 0, 0, 0, 0, 0, 0]);
    expect(r[0]?.powerW).toBeCloseTo(32 + (400 - 32) * 0.1, 3); // one slice of seven at 70%
  });
});

describe('energy', () => {
  const readings = (util?: string) => readGpus(nodeDevices(gpuNode('n'), util === undefined ? [] : [pod('p', 'n', { util })]));
  const mJ = (e: EnergyState) => e.get(gpuUuid('n', 0))?.mJ;

  it('starts at 0 and integrates power over wall time (W × ms = mJ)', () => {
    let e: EnergyState = new Map();
    e = accumulateEnergy(e, readings('100'), 1_000);
    expect(mJ(e)).toBe(0);
    e = accumulateEnergy(e, readings(), 3_000);
    expect(mJ(e)).toBe(450 * 2_000);
    e = accumulateEnergy(e, readings(), 4_000);
    expect(mJ(e)).toBe(450 * 2_000 + 36 * 1_000);
  });

  it('never goes down: not when the clock steps back, not when the GPU disappears', () => {
    let e = accumulateEnergy(new Map(), readings('100'), 10_000);
    e = accumulateEnergy(e, readings('100'), 11_000);
    const before = mJ(e) ?? 0;
    e = accumulateEnergy(e, readings('100'), 9_000);
    expect(mJ(e)).toBe(before);
    e = accumulateEnergy(e, [], 12_000);
    e = accumulateEnergy(e, [], 20_000);
    const gone = mJ(e) ?? 0;
    expect(gone).toBeGreaterThanOrEqual(before);
    e = accumulateEnergy(e, readings(), 21_000);
    expect(mJ(e)).toBe(gone);
  });
});

describe('the exposition', () => {
  const node = gpuNode('alice-desktop');

  it('renders the four DCGM families with HELP, TYPE and the real exporter’s labels', () => {
    const r = readGpus(nodeDevices(node, [pod('job-x-0', 'alice-desktop', { util: '87' })]));
    const text = renderMetrics(r, accumulateEnergy(new Map(), r, 0));
    const uuid = gpuUuid('alice-desktop', 0);
    const labels = `gpu="0",UUID="${uuid}",pci_bus_id="00000000:01:00.0",device="nvidia0",modelName="NVIDIA GeForce RTX 4090",Hostname="alice-desktop",DCGM_FI_DRIVER_VERSION="555.58.02",pod="job-x-0",namespace="gpufed-jobs",container="job"`;
    expect(text.split('\n')).toEqual([
      '# HELP DCGM_FI_DEV_GPU_UTIL GPU utilization (in %).',
      '# TYPE DCGM_FI_DEV_GPU_UTIL gauge',
      `DCGM_FI_DEV_GPU_UTIL{${labels}} 87`,
      '# HELP DCGM_FI_DEV_FB_USED Framebuffer memory used (in MiB).',
      '# TYPE DCGM_FI_DEV_FB_USED gauge',
      `DCGM_FI_DEV_FB_USED{${labels}} 18423`,
      '# HELP DCGM_FI_DEV_POWER_USAGE Power draw (in W).',
      '# TYPE DCGM_FI_DEV_POWER_USAGE gauge',
      `DCGM_FI_DEV_POWER_USAGE{${labels}} 396.18`,
      '# HELP DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION Total energy consumption since boot (in mJ).',
      '# TYPE DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION counter',
      `DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION{${labels}} 0`,
      '',
    ]);
  });

  it('leaves pod labels off an idle GPU', () => {
    const text = renderMetrics(readGpus(nodeDevices(node, [])), new Map());
    expect(text).toContain('DCGM_FI_DEV_GPU_UTIL{gpu="0",');
    expect(text).not.toMatch(/pod=|namespace=|container=/);
  });

  it('says hostname instead of Hostname when asked (dcgm-exporter main)', () => {
    const text = renderMetrics(readGpus(nodeDevices(node, [])), new Map(), { hostnameLabel: 'hostname' });
    expect(text).toContain('hostname="alice-desktop"');
    expect(text).not.toContain('Hostname=');
  });

  it('labels MIG instances with GPU_I_PROFILE and GPU_I_ID, and shared replicas with vgpu', () => {
    const a100 = gpuNode('m', { product: 'NVIDIA-A100-SXM4-80GB', resources: { 'nvidia.com/mig-3g.40gb': '2' } });
    const mig = renderMetrics(readGpus(nodeDevices(a100, [])), new Map());
    expect(mig).toContain('modelName="NVIDIA A100 SXM4 80GB",GPU_I_PROFILE="3g.40gb",GPU_I_ID="2",Hostname="m"');
    const shared = gpuNode('s', { product: 'NVIDIA-GeForce-RTX-3060-SHARED', resources: { 'nvidia.com/gpu': '4' }, labels: { 'nvidia.com/gpu.replicas': '4' } });
    const text = renderMetrics(readGpus(nodeDevices(shared, [pod('p', 's')])), new Map());
    expect(text).toContain('modelName="NVIDIA GeForce RTX 3060"');
    expect(text).toContain('container="job",vgpu="0"}');
  });

  it('escapes quotes and backslashes in label values', () => {
    const odd = nodeDevices(node, [pod('p', 'alice-desktop', { container: 'a"b\\c' })]);
    expect(renderMetrics(readGpus(odd), new Map())).toContain('container="a\\"b\\\\c"');
  });

  it('turns the GFD product into NVML’s name', () => {
    expect(modelName('NVIDIA-GeForce-RTX-4090')).toBe('NVIDIA GeForce RTX 4090');
    expect(modelName(undefined)).toBe('NVIDIA GPU');
  });

  it('gives every GPU a stable UUID in NVML’s shape', () => {
    expect(gpuUuid('n', 0)).toMatch(/^GPU-[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/);
    expect(gpuUuid('n', 0)).toBe(gpuUuid('n', 0));
    expect(gpuUuid('n', 0)).not.toBe(gpuUuid('n', 1));
  });
});
