// The fleet file: which provider clusters the local federation runs and which simulated nodes each
// one has. Pure: parsing, validation and turning a node into the Node object KWOK will manage,
// labelled the way NVIDIA GPU Feature Discovery labels real hardware.
import { parse } from 'yaml';

/** Facts GFD would read from NVML for a GPU model (memory in MiB, as `nvidia.com/gpu.memory`). */
export interface GpuModel {
  memoryMiB: number;
  family: string;
  computeMajor: number;
  computeMinor: number;
  /** GeForce and workstation cards sit on the PCI VGA class, datacenter cards on 3D controller. */
  mode: 'graphics' | 'compute';
  migCapable: boolean;
}

/** Values as nvidia-smi / NVML report them on real cards; names as GFD sanitises them. */
export const GPU_MODELS: Readonly<Record<string, GpuModel>> = {
  'NVIDIA-GeForce-RTX-3060': { memoryMiB: 12288, family: 'ampere', computeMajor: 8, computeMinor: 6, mode: 'graphics', migCapable: false },
  'NVIDIA-GeForce-RTX-3090': { memoryMiB: 24576, family: 'ampere', computeMajor: 8, computeMinor: 6, mode: 'graphics', migCapable: false },
  'NVIDIA-GeForce-RTX-4090': { memoryMiB: 24564, family: 'ada-lovelace', computeMajor: 8, computeMinor: 9, mode: 'graphics', migCapable: false },
  'NVIDIA-GeForce-RTX-5090': { memoryMiB: 32607, family: 'blackwell', computeMajor: 12, computeMinor: 0, mode: 'graphics', migCapable: false },
  'NVIDIA-RTX-A6000': { memoryMiB: 49140, family: 'ampere', computeMajor: 8, computeMinor: 6, mode: 'graphics', migCapable: false },
  'NVIDIA-L4': { memoryMiB: 23034, family: 'ada-lovelace', computeMajor: 8, computeMinor: 9, mode: 'compute', migCapable: false },
  'NVIDIA-A100-SXM4-40GB': { memoryMiB: 40960, family: 'ampere', computeMajor: 8, computeMinor: 0, mode: 'compute', migCapable: true },
  'NVIDIA-A100-SXM4-80GB': { memoryMiB: 81920, family: 'ampere', computeMajor: 8, computeMinor: 0, mode: 'compute', migCapable: true },
  'NVIDIA-H100-80GB-HBM3': { memoryMiB: 81559, family: 'hopper', computeMajor: 9, computeMinor: 0, mode: 'compute', migCapable: true },
};

/** MIG profiles GFD labels, per parent model: slices (gi = ci here), memory MiB, SMs. */
export const MIG_PROFILES: Readonly<Record<string, Readonly<Record<string, { slices: number; memoryMiB: number; multiprocessors: number }>>>> = {
  'NVIDIA-A100-SXM4-40GB': {
    '1g.5gb': { slices: 1, memoryMiB: 4864, multiprocessors: 14 },
    '2g.10gb': { slices: 2, memoryMiB: 9856, multiprocessors: 28 },
    '3g.20gb': { slices: 3, memoryMiB: 19968, multiprocessors: 42 },
    '7g.40gb': { slices: 7, memoryMiB: 40192, multiprocessors: 98 },
  },
  'NVIDIA-A100-SXM4-80GB': {
    '1g.10gb': { slices: 1, memoryMiB: 9728, multiprocessors: 14 },
    '2g.20gb': { slices: 2, memoryMiB: 19968, multiprocessors: 28 },
    '3g.40gb': { slices: 3, memoryMiB: 40192, multiprocessors: 42 },
    '7g.80gb': { slices: 7, memoryMiB: 80896, multiprocessors: 98 },
  },
  'NVIDIA-H100-80GB-HBM3': {
    '1g.10gb': { slices: 1, memoryMiB: 9856, multiprocessors: 16 },
    '3g.40gb': { slices: 3, memoryMiB: 40192, multiprocessors: 60 },
    '7g.80gb': { slices: 7, memoryMiB: 80896, multiprocessors: 132 },
  },
};

export interface FleetGpus {
  product: string;
  count: number;
  /** Time-slicing: each GPU is advertised `replicas` times, as `nvidia.com/gpu.shared` when renamed. */
  timeSlicing?: { replicas: number; rename: boolean };
  /** MIG "mixed" strategy: the GPUs are split into these profiles, e.g. { '1g.10gb': 7 }. */
  mig?: Record<string, number>;
}

export interface FleetNode {
  name: string;
  cpu: string;
  memory: string;
  pods: number;
  gpus?: FleetGpus;
  /** Driver and CUDA versions GFD would report. */
  driver: string;
  cuda: string;
  taints: { key: string; value?: string; effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' }[];
}

export interface FleetProvider {
  name: string;
  region: string;
  /** Price per GPU-hour by model, as Cosmos coins (what `registry add-provider --price` sets). */
  prices: Record<string, string>;
  nodes: FleetNode[];
}

export interface Fleet {
  providers: FleetProvider[];
}

export class FleetError extends Error {
  constructor(where: string, message: string) {
    super(`fleet: ${where}: ${message}`);
    this.name = 'FleetError';
  }
}

const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const COIN = /^(0|[1-9][0-9]*)[a-zA-Z][a-zA-Z0-9/:._-]{2,127}$/;
/** Dev prices per GPU-hour when a fleet names none: roughly what such a card rents for, in ustake. */
const DEFAULT_PRICE = '1000000ustake';
const QUANTITY = /^[0-9]+(\.[0-9]+)?(m|k|M|G|T|Ki|Mi|Gi|Ti)?$/;
const DEFAULT_DRIVER = '570.153.02';
const DEFAULT_CUDA = '12.8';

type Raw = Record<string, unknown>;

function isRecord(v: unknown): v is Raw {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function str(where: string, v: unknown, fallback?: string): string {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v === 'number') return String(v);
  if (typeof v !== 'string' || v === '') throw new FleetError(where, `expected a non-empty string, got ${JSON.stringify(v)}`);
  return v;
}

function int(where: string, v: unknown, min: number, max: number, fallback?: number): number {
  if (v === undefined && fallback !== undefined) return fallback;
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new FleetError(where, `expected an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function name(where: string, v: unknown): string {
  const s = str(where, v);
  if (!DNS_LABEL.test(s) || s.length > 63) throw new FleetError(where, `"${s}" is not a DNS label (lowercase letters, digits and '-', at most 63)`);
  return s;
}

function quantity(where: string, v: unknown, fallback: string): string {
  const s = str(where, v, fallback);
  if (!QUANTITY.test(s)) throw new FleetError(where, `"${s}" is not a Kubernetes quantity (e.g. "16", "64Gi")`);
  return s;
}

function parseGpus(where: string, raw: unknown): FleetGpus {
  if (!isRecord(raw)) throw new FleetError(where, 'expected a mapping with product and count');
  const product = str(`${where}.product`, raw.product);
  const model = GPU_MODELS[product];
  if (!model) throw new FleetError(`${where}.product`, `unknown GPU "${product}"; known: ${Object.keys(GPU_MODELS).join(', ')}`);
  const gpus: FleetGpus = { product, count: int(`${where}.count`, raw.count, 1, 16) };
  if (raw.timeSlicing !== undefined) {
    const ts = raw.timeSlicing;
    if (!isRecord(ts)) throw new FleetError(`${where}.timeSlicing`, 'expected a mapping with replicas');
    gpus.timeSlicing = {
      replicas: int(`${where}.timeSlicing.replicas`, ts.replicas, 2, 64),
      rename: ts.rename === undefined ? true : ts.rename === true,
    };
  }
  if (raw.mig !== undefined) {
    if (gpus.timeSlicing) throw new FleetError(where, 'a node is either time-sliced or MIG-partitioned, not both');
    if (!model.migCapable) throw new FleetError(`${where}.mig`, `${product} does not support MIG`);
    if (!isRecord(raw.mig) || Object.keys(raw.mig).length === 0) throw new FleetError(`${where}.mig`, "expected profiles and counts, e.g. { '1g.10gb': 7 }");
    const known = MIG_PROFILES[product] ?? {};
    let slices = 0;
    gpus.mig = {};
    for (const [profile, count] of Object.entries(raw.mig)) {
      const p = known[profile];
      if (!p) throw new FleetError(`${where}.mig`, `unknown profile "${profile}" for ${product}; known: ${Object.keys(known).join(', ')}`);
      const n = int(`${where}.mig.${profile}`, count, 1, 7 * gpus.count);
      slices += n * p.slices;
      gpus.mig[profile] = n;
    }
    if (slices > 7 * gpus.count) throw new FleetError(`${where}.mig`, `profiles use ${slices} slices but ${gpus.count} GPU(s) have ${7 * gpus.count}`);
  }
  return gpus;
}

function parseTaints(where: string, raw: unknown): FleetNode['taints'] {
  if (raw === undefined) return [];
  if (!Array.isArray(raw)) throw new FleetError(where, 'expected a list of taints');
  return raw.map((t: unknown, i) => {
    const w = `${where}[${i}]`;
    if (!isRecord(t)) throw new FleetError(w, 'expected {key, value?, effect}');
    const effect = str(`${w}.effect`, t.effect, 'NoSchedule');
    if (effect !== 'NoSchedule' && effect !== 'PreferNoSchedule' && effect !== 'NoExecute') {
      throw new FleetError(`${w}.effect`, `"${effect}" is not NoSchedule, PreferNoSchedule or NoExecute`);
    }
    const taint: FleetNode['taints'][number] = { key: str(`${w}.key`, t.key), effect };
    if (t.value !== undefined) taint.value = str(`${w}.value`, t.value);
    return taint;
  });
}

function parsePrices(where: string, raw: unknown, nodes: FleetNode[]): Record<string, string> {
  const models = [...new Set(nodes.flatMap((n) => (n.gpus ? [n.gpus.timeSlicing && !n.gpus.timeSlicing.rename ? `${n.gpus.product}-SHARED` : n.gpus.product] : [])))];
  if (raw !== undefined && !isRecord(raw)) throw new FleetError(where, 'expected a mapping of GPU model to price, e.g. {NVIDIA-GeForce-RTX-4090: 1200000ustake}');
  const prices: Record<string, string> = {};
  for (const [model, price] of Object.entries(raw ?? {})) {
    if (!models.includes(model)) throw new FleetError(`${where}.${model}`, `no node of this provider has ${model} (it has ${models.join(', ') || 'no GPUs'})`);
    const coin = str(`${where}.${model}`, price);
    if (!COIN.test(coin)) throw new FleetError(`${where}.${model}`, `"${coin}" is not a Cosmos coin like 1200000ustake`);
    prices[model] = coin;
  }
  for (const m of models) prices[m] ??= DEFAULT_PRICE;
  return prices;
}

function parseNode(where: string, raw: unknown): FleetNode {
  if (!isRecord(raw)) throw new FleetError(where, 'expected a mapping with at least a name');
  const known = new Set(['name', 'cpu', 'memory', 'pods', 'gpus', 'driver', 'cuda', 'taints']);
  for (const k of Object.keys(raw)) if (!known.has(k)) throw new FleetError(`${where}.${k}`, `unknown field (known: ${[...known].join(', ')})`);
  const node: FleetNode = {
    name: name(`${where}.name`, raw.name),
    cpu: quantity(`${where}.cpu`, raw.cpu, '16'),
    memory: quantity(`${where}.memory`, raw.memory, '64Gi'),
    pods: int(`${where}.pods`, raw.pods, 1, 1000, 110),
    driver: str(`${where}.driver`, raw.driver, DEFAULT_DRIVER),
    cuda: str(`${where}.cuda`, raw.cuda, DEFAULT_CUDA),
    taints: parseTaints(`${where}.taints`, raw.taints),
  };
  if (!/^[0-9]+\.[0-9]+\.[0-9]+$/.test(node.driver)) throw new FleetError(`${where}.driver`, `"${node.driver}" is not a driver version like 570.153.02`);
  if (!/^[0-9]+\.[0-9]+$/.test(node.cuda)) throw new FleetError(`${where}.cuda`, `"${node.cuda}" is not a CUDA version like 12.8`);
  if (raw.gpus !== undefined) node.gpus = parseGpus(`${where}.gpus`, raw.gpus);
  return node;
}

/** Parses and validates a fleet file's text; errors name the offending path. */
export function parseFleet(text: string): Fleet {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (e) {
    throw new FleetError('yaml', (e as Error).message);
  }
  if (!isRecord(doc) || !Array.isArray(doc.providers)) throw new FleetError('providers', 'expected a list of providers');
  const providers = doc.providers.map((p: unknown, i): FleetProvider => {
    const where = `providers[${i}]`;
    if (!isRecord(p)) throw new FleetError(where, 'expected {name, region, nodes}');
    const nodesRaw = p.nodes;
    if (!Array.isArray(nodesRaw) || nodesRaw.length === 0) throw new FleetError(`${where}.nodes`, 'expected at least one node');
    const nodes = nodesRaw.map((n: unknown, j) => parseNode(`${where}.nodes[${j}]`, n));
    return { name: name(`${where}.name`, p.name), region: name(`${where}.region`, p.region ?? 'home'), prices: parsePrices(`${where}.prices`, p.prices, nodes), nodes };
  });
  if (providers.length === 0) throw new FleetError('providers', 'expected at least one provider');
  const seen = new Set<string>();
  for (const p of providers) {
    if (p.name === 'registry') throw new FleetError(`providers.${p.name}`, '"registry" is the hub cluster\'s name');
    if (seen.has(p.name)) throw new FleetError(`providers.${p.name}`, 'duplicate provider name');
    seen.add(p.name);
    const nodeNames = new Set<string>();
    for (const n of p.nodes) {
      if (nodeNames.has(n.name)) throw new FleetError(`providers.${p.name}.nodes.${n.name}`, 'duplicate node name');
      nodeNames.add(n.name);
    }
  }
  return { providers };
}

/**
 * Picks `count` providers: the fleet's first ones, then generated homes (`provider-3`, …) with a
 * CPU node and one RTX 3090, so `dev up --providers N` works for any N the machine can hold.
 */
export function selectProviders(fleet: Fleet, count: number): FleetProvider[] {
  if (!Number.isInteger(count) || count < 1 || count > 50) throw new FleetError('--providers', `expected 1 to 50, got ${count}`);
  const chosen = fleet.providers.slice(0, count);
  for (let i = chosen.length + 1; i <= count; i++) {
    const n = `provider-${i}`;
    chosen.push({
      name: n,
      region: 'home',
      prices: { 'NVIDIA-GeForce-RTX-3090': DEFAULT_PRICE },
      nodes: [
        { name: `${n}-cpu`, cpu: '8', memory: '32Gi', pods: 110, driver: DEFAULT_DRIVER, cuda: DEFAULT_CUDA, taints: [] },
        { name: `${n}-gpu`, cpu: '16', memory: '64Gi', pods: 110, driver: DEFAULT_DRIVER, cuda: DEFAULT_CUDA, taints: [], gpus: { product: 'NVIDIA-GeForce-RTX-3090', count: 1 } },
      ],
    });
  }
  return chosen;
}

/** The Kubernetes extended resources a node advertises for its GPUs. */
export function gpuResources(gpus: FleetGpus): Record<string, string> {
  if (gpus.mig) {
    return Object.fromEntries(Object.entries(gpus.mig).map(([profile, n]) => [`nvidia.com/mig-${profile}`, String(n)]));
  }
  if (gpus.timeSlicing) {
    const name = gpus.timeSlicing.rename ? 'nvidia.com/gpu.shared' : 'nvidia.com/gpu';
    return { [name]: String(gpus.count * gpus.timeSlicing.replicas) };
  }
  return { 'nvidia.com/gpu': String(gpus.count) };
}

/** The labels GPU Feature Discovery (with NFD and the GPU Operator's `gpu.present`) puts on a node. */
export function gfdLabels(node: FleetNode): Record<string, string> {
  const g = node.gpus;
  if (!g) return {};
  const model = GPU_MODELS[g.product];
  if (!model) throw new FleetError(node.name, `unknown GPU ${g.product}`);
  const [dMajor, dMinor, dRev] = node.driver.split('.') as [string, string, string]; // validated by parseNode
  const [cMajor, cMinor] = node.cuda.split('.') as [string, string];
  const sharing = g.timeSlicing ? 'time-slicing' : 'none';
  const labels: Record<string, string> = {
    'feature.node.kubernetes.io/pci-10de.present': 'true',
    'nvidia.com/gpu.present': 'true',
    // With time-slicing and no rename GFD appends -SHARED so exclusive and shared GPUs differ.
    'nvidia.com/gpu.product': g.timeSlicing && !g.timeSlicing.rename ? `${g.product}-SHARED` : g.product,
    'nvidia.com/gpu.memory': String(model.memoryMiB),
    'nvidia.com/gpu.count': String(g.count),
    'nvidia.com/gpu.replicas': g.mig ? '0' : String(g.timeSlicing?.replicas ?? 1),
    'nvidia.com/gpu.sharing-strategy': sharing,
    'nvidia.com/gpu.family': model.family,
    'nvidia.com/gpu.compute.major': String(model.computeMajor),
    'nvidia.com/gpu.compute.minor': String(model.computeMinor),
    'nvidia.com/gpu.mode': model.mode,
    'nvidia.com/gpu.machine': 'Home-Built',
    'nvidia.com/cuda.driver-version.major': dMajor,
    'nvidia.com/cuda.driver-version.minor': dMinor,
    'nvidia.com/cuda.driver-version.revision': dRev,
    'nvidia.com/cuda.driver-version.full': node.driver,
    'nvidia.com/cuda.driver.major': dMajor,
    'nvidia.com/cuda.driver.minor': dMinor,
    'nvidia.com/cuda.driver.rev': dRev,
    'nvidia.com/cuda.runtime-version.major': cMajor,
    'nvidia.com/cuda.runtime-version.minor': cMinor,
    'nvidia.com/cuda.runtime-version.full': node.cuda,
    'nvidia.com/cuda.runtime.major': cMajor,
    'nvidia.com/cuda.runtime.minor': cMinor,
    'nvidia.com/mig.capable': String(model.migCapable),
    'nvidia.com/mps.capable': 'false',
    'nvidia.com/vgpu.present': 'false',
  };
  return g.mig ? { ...labels, ...migLabels(g.product, g.mig) } : labels;
}

/** GFD's labels for the MIG "mixed" strategy: one family of labels per profile. */
function migLabels(product: string, mig: Record<string, number>): Record<string, string> {
  const labels: Record<string, string> = { 'nvidia.com/mig.strategy': 'mixed' };
  for (const [profile, count] of Object.entries(mig)) {
    const p = MIG_PROFILES[product]?.[profile];
    if (!p) continue;
    const k = `nvidia.com/mig-${profile}`;
    Object.assign(labels, {
      [`${k}.count`]: String(count),
      [`${k}.memory`]: String(p.memoryMiB),
      [`${k}.multiprocessors`]: String(p.multiprocessors),
      [`${k}.slices.gi`]: String(p.slices),
      [`${k}.slices.ci`]: String(p.slices),
      [`${k}.engines.copy`]: String(p.slices),
      [`${k}.engines.decoder`]: String(Math.floor(p.slices / 2)),
      [`${k}.engines.encoder`]: '0',
      [`${k}.engines.jpeg`]: String(p.slices === 7 ? 1 : 0),
      [`${k}.engines.ofa`]: String(p.slices === 7 ? 1 : 0),
    });
  }
  return labels;
}

/** Annotation selecting which nodes the KWOK controller manages. */
export const KWOK_NODE_ANNOTATION = 'kwok.x-k8s.io/node';

/** The Node object for one fleet node, ready to create on its provider's API server. */
export function nodeManifest(provider: FleetProvider, node: FleetNode): Record<string, unknown> {
  const resources = { cpu: node.cpu, memory: node.memory, pods: String(node.pods), ...(node.gpus ? gpuResources(node.gpus) : {}) };
  return {
    apiVersion: 'v1',
    kind: 'Node',
    metadata: {
      name: node.name,
      annotations: { [KWOK_NODE_ANNOTATION]: 'fake', 'node.alpha.kubernetes.io/ttl': '0' },
      labels: {
        type: 'kwok',
        'kubernetes.io/hostname': node.name,
        'kubernetes.io/os': 'linux',
        'kubernetes.io/arch': 'amd64',
        'topology.kubernetes.io/region': provider.region,
        ...gfdLabels(node),
      },
    },
    spec: node.taints.length > 0 ? { taints: node.taints } : {},
    status: { capacity: resources, allocatable: resources },
  };
}
