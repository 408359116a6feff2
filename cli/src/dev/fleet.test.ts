import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { FleetError, gfdLabels, gpuResources, nodeManifest, parseFleet, selectProviders } from './fleet.js';
import { repoRoot } from './paths.js';

const defaultFleet = () => parseFleet(readFileSync(join(repoRoot(), 'cli/src/dev/fleets/default.yaml'), 'utf8'));

const oneNode = (node: string) => `providers:\n  - name: p\n    nodes:\n      - ${node}\n`;

describe('parseFleet', () => {
  it('reads the default fleet: alice and bob with the homes the issue describes', () => {
    const fleet = defaultFleet();
    expect(fleet.providers.map((p) => p.name)).toEqual(['alice', 'bob']);
    const [alice, bob] = fleet.providers;
    expect(alice?.nodes.map((n) => [n.name, n.gpus?.product, n.gpus?.count])).toEqual([
      ['alice-desktop', 'NVIDIA-GeForce-RTX-4090', 1],
      ['alice-tower', 'NVIDIA-GeForce-RTX-3090', 2],
      ['alice-nas', undefined, undefined],
    ]);
    expect(bob?.nodes.find((n) => n.name === 'bob-a100')?.gpus?.mig).toEqual({ '1g.10gb': 7 });
    expect(bob?.nodes.find((n) => n.name === 'bob-shared')?.gpus?.timeSlicing).toEqual({ replicas: 4, rename: true });
  });

  it('reads prices per model and gives unpriced models the default', () => {
    const [alice, bob] = defaultFleet().providers;
    expect(alice?.prices).toEqual({ 'NVIDIA-GeForce-RTX-4090': '1200000ustake', 'NVIDIA-GeForce-RTX-3090': '800000ustake' });
    expect(bob?.prices['NVIDIA-A100-SXM4-80GB']).toBe('500000ustake');
    expect(parseFleet(oneNode('{name: n, gpus: {product: NVIDIA-L4, count: 1}}')).providers[0]?.prices).toEqual({ 'NVIDIA-L4': '1000000ustake' });
  });

  it('fills defaults for cpu, memory, pods, driver and CUDA', () => {
    const n = parseFleet(oneNode('{name: n1}')).providers[0]?.nodes[0];
    expect(n).toMatchObject({ cpu: '16', memory: '64Gi', pods: 110, driver: '570.153.02', cuda: '12.8', taints: [] });
  });

  it.each([
    ['not yaml', 'providers: [', /fleet: yaml/],
    ['no providers', 'foo: 1', /providers: expected a list/],
    ['empty node list', 'providers:\n  - name: p\n    nodes: []', /nodes: expected at least one node/],
    ['bad provider name', 'providers:\n  - name: Alice\n    nodes: [{name: n}]', /providers\[0\]\.name: "Alice" is not a DNS label/],
    ['reserved name', 'providers:\n  - name: registry\n    nodes: [{name: n}]', /"registry" is the hub/],
    ['duplicate provider', 'providers:\n  - {name: p, nodes: [{name: n}]}\n  - {name: p, nodes: [{name: n}]}', /duplicate provider name/],
    ['duplicate node', oneNode('{name: n}') + '      - {name: n}', /duplicate node name/],
    ['unknown GPU', oneNode('{name: n, gpus: {product: NVIDIA-Voodoo-2, count: 1}}'), /unknown GPU "NVIDIA-Voodoo-2"/],
    ['zero GPUs', oneNode('{name: n, gpus: {product: NVIDIA-GeForce-RTX-4090, count: 0}}'), /gpus\.count: expected an integer from 1 to 16/],
    ['fractional GPUs', oneNode('{name: n, gpus: {product: NVIDIA-GeForce-RTX-4090, count: 1.5}}'), /gpus\.count/],
    ['MIG on GeForce', oneNode("{name: n, gpus: {product: NVIDIA-GeForce-RTX-4090, count: 1, mig: {'1g.10gb': 7}}}"), /does not support MIG/],
    ['unknown MIG profile', oneNode("{name: n, gpus: {product: NVIDIA-A100-SXM4-80GB, count: 1, mig: {'1g.5gb': 7}}}"), /unknown profile "1g.5gb"/],
    ['too many MIG slices', oneNode("{name: n, gpus: {product: NVIDIA-A100-SXM4-80GB, count: 1, mig: {'3g.40gb': 3}}}"), /use 9 slices but 1 GPU\(s\) have 7/],
    ['MIG and time-slicing', oneNode("{name: n, gpus: {product: NVIDIA-A100-SXM4-80GB, count: 1, timeSlicing: {replicas: 2}, mig: {'1g.10gb': 7}}}"), /either time-sliced or MIG/],
    ['bad quantity', oneNode('{name: n, memory: lots}'), /memory: "lots" is not a Kubernetes quantity/],
    ['bad driver', oneNode('{name: n, driver: "570"}'), /driver: "570" is not a driver version/],
    ['bad taint effect', oneNode('{name: n, taints: [{key: k, effect: Sometimes}]}'), /effect: "Sometimes"/],
    ['unknown field', oneNode('{name: n, gpu: {product: x}}'), /nodes\[0\]\.gpu: unknown field/],
    ['price for a model it lacks', 'providers:\n  - name: p\n    prices: {NVIDIA-L4: 1ustake}\n    nodes: [{name: n}]', /prices\.NVIDIA-L4: no node of this provider has NVIDIA-L4/],
    ['price not a coin', 'providers:\n  - name: p\n    prices: {NVIDIA-L4: "1.5ustake"}\n    nodes: [{name: n, gpus: {product: NVIDIA-L4, count: 1}}]', /"1.5ustake" is not a Cosmos coin/],
  ])('rejects %s with an error naming the place', (_case, text, message) => {
    expect(() => parseFleet(text)).toThrow(FleetError);
    expect(() => parseFleet(text)).toThrow(message);
  });
});

describe('selectProviders', () => {
  it('takes the first N providers and generates simple homes beyond the file', () => {
    const fleet = defaultFleet();
    expect(selectProviders(fleet, 1).map((p) => p.name)).toEqual(['alice']);
    const four = selectProviders(fleet, 4);
    expect(four.map((p) => p.name)).toEqual(['alice', 'bob', 'provider-3', 'provider-4']);
    expect(four[3]?.nodes.map((n) => n.gpus?.product)).toEqual([undefined, 'NVIDIA-GeForce-RTX-3090']);
  });

  it.each([0, -1, 51, 1.5])('rejects %p providers', (n) => {
    expect(() => selectProviders(defaultFleet(), n)).toThrow(/--providers: expected 1 to 50/);
  });
});

describe('GPU resources and GFD labels', () => {
  const bob = () => defaultFleet().providers[1]!;
  const node = (name: string) => bob().nodes.find((n) => n.name === name)!;

  it('advertises whole GPUs as nvidia.com/gpu', () => {
    expect(gpuResources({ product: 'NVIDIA-RTX-A6000', count: 4 })).toEqual({ 'nvidia.com/gpu': '4' });
  });

  it('advertises time-sliced GPUs as gpu.shared when renamed, else as more nvidia.com/gpu', () => {
    expect(gpuResources({ product: 'NVIDIA-GeForce-RTX-3060', count: 1, timeSlicing: { replicas: 4, rename: true } })).toEqual({ 'nvidia.com/gpu.shared': '4' });
    expect(gpuResources({ product: 'NVIDIA-GeForce-RTX-3060', count: 2, timeSlicing: { replicas: 4, rename: false } })).toEqual({ 'nvidia.com/gpu': '8' });
  });

  it('advertises MIG slices by profile (mixed strategy) and no whole GPU', () => {
    expect(gpuResources({ product: 'NVIDIA-A100-SXM4-80GB', count: 1, mig: { '1g.10gb': 7 } })).toEqual({ 'nvidia.com/mig-1g.10gb': '7' });
  });

  it('labels a GeForce card the way GFD does', () => {
    const labels = gfdLabels(defaultFleet().providers[0]!.nodes[1]!);
    expect(labels).toMatchObject({
      'nvidia.com/gpu.present': 'true',
      'feature.node.kubernetes.io/pci-10de.present': 'true',
      'nvidia.com/gpu.product': 'NVIDIA-GeForce-RTX-3090',
      'nvidia.com/gpu.memory': '24576',
      'nvidia.com/gpu.count': '2',
      'nvidia.com/gpu.replicas': '1',
      'nvidia.com/gpu.sharing-strategy': 'none',
      'nvidia.com/gpu.family': 'ampere',
      'nvidia.com/gpu.compute.major': '8',
      'nvidia.com/gpu.compute.minor': '6',
      'nvidia.com/gpu.mode': 'graphics',
      'nvidia.com/cuda.driver-version.full': '555.58.02',
      'nvidia.com/cuda.driver-version.revision': '02',
      'nvidia.com/cuda.runtime-version.full': '12.5',
      'nvidia.com/mig.capable': 'false',
    });
    expect(labels['nvidia.com/mig.strategy']).toBeUndefined();
  });

  it('labels MIG slices with their count, memory and the mixed strategy', () => {
    expect(gfdLabels(node('bob-a100'))).toMatchObject({
      'nvidia.com/gpu.product': 'NVIDIA-A100-SXM4-80GB',
      'nvidia.com/mig.capable': 'true',
      'nvidia.com/mig.strategy': 'mixed',
      'nvidia.com/mig-1g.10gb.count': '7',
      'nvidia.com/mig-1g.10gb.memory': '9728',
      'nvidia.com/gpu.mode': 'compute',
    });
  });

  it('labels time-sliced GPUs with replicas; -SHARED only without rename', () => {
    expect(gfdLabels(node('bob-shared'))).toMatchObject({ 'nvidia.com/gpu.product': 'NVIDIA-GeForce-RTX-3060', 'nvidia.com/gpu.replicas': '4', 'nvidia.com/gpu.sharing-strategy': 'time-slicing', 'nvidia.com/gpu.count': '1' });
    const unrenamed = { ...node('bob-shared'), gpus: { product: 'NVIDIA-GeForce-RTX-3060', count: 1, timeSlicing: { replicas: 4, rename: false } } };
    expect(gfdLabels(unrenamed)['nvidia.com/gpu.product']).toBe('NVIDIA-GeForce-RTX-3060-SHARED');
  });

  it('gives CPU-only nodes no GPU labels or resources', () => {
    const m = nodeManifest(bob(), node('bob-server')) as { metadata: { labels: Record<string, string> }; status: { capacity: Record<string, string> } };
    expect(Object.keys(m.metadata.labels).filter((k) => k.startsWith('nvidia.com/'))).toEqual([]);
    expect(m.status.capacity).toEqual({ cpu: '4', memory: '16Gi', pods: '110' });
  });

  it('builds a KWOK-managed Node with matching capacity and allocatable, region and taints', () => {
    const m = nodeManifest(bob(), node('bob-a100')) as {
      metadata: { annotations: Record<string, string>; labels: Record<string, string> };
      spec: { taints?: unknown[] };
      status: { capacity: Record<string, string>; allocatable: Record<string, string> };
    };
    expect(m.metadata.annotations['kwok.x-k8s.io/node']).toBe('fake');
    expect(m.metadata.labels['topology.kubernetes.io/region']).toBe('us-east');
    expect(m.status.capacity).toEqual({ cpu: '32', memory: '256Gi', pods: '110', 'nvidia.com/mig-1g.10gb': '7' });
    expect(m.status.allocatable).toEqual(m.status.capacity);
    expect(m.spec.taints).toEqual([{ key: 'nvidia.com/gpu', effect: 'NoSchedule' }]);
  });
});
