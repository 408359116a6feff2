// The pure half of the local federation's stand-in for NVIDIA's dcgm-exporter: which physical GPUs
// (and MIG instances, and time-slice replicas) a simulated node has, which Running pod holds which,
// and the Prometheus text the real exporter would serve for them. KWOK nodes have no kubelet, no
// PodResources socket and no NVML, so this is the one component of the metering path that cannot
// run for real; everything it emits follows the real exporter's names, units and label layout
// (shared/research/gpu-metering.md §2), so the queries written against it work on real clusters.
// dcgm-exporter.ts watches Nodes and Pods and calls these.
import { createHash } from 'node:crypto';
import type { V1Container, V1Node, V1Pod } from '@kubernetes/client-node';
import { GPU_RESOURCE, MEMORY_LABEL, MIG_RESOURCE_PREFIX, PRODUCT_LABEL, SHARED_GPU_RESOURCE } from '../../operator/src/api/gpus.js';
import { SIM_ANNOTATION_PREFIX } from '../../operator/src/api/names.js';

/** A job pod's simulated GPU utilisation in percent (0–100); copied from the ComputeJob like the other sim annotations. */
export const GPU_UTIL_ANNOTATION = `${SIM_ANNOTATION_PREFIX}gpu-util`;
/** Utilisation of a held GPU whose pod does not say. */
export const DEFAULT_BUSY_UTIL = 90;
/** The driver GFD reports when a node has no label for it (the fleet's default). */
export const DEFAULT_DRIVER = '570.153.02';
/** Share of a held GPU's (or MIG instance's, or replica's) framebuffer a job uses. */
const BUSY_FB_FRACTION = 0.75;
/** Idle draw as a share of the board's power limit. */
const IDLE_POWER_FRACTION = 0.08;
const DEFAULT_MAX_POWER_W = 300;
const MIG_SLICES_PER_GPU = 7;

/** Board power limits (W) of the models the dev fleets use; others get DEFAULT_MAX_POWER_W. */
const MAX_POWER_W: Record<string, number> = {
  'NVIDIA-GeForce-RTX-3060': 170,
  'NVIDIA-GeForce-RTX-3090': 350,
  'NVIDIA-GeForce-RTX-4090': 450,
  'NVIDIA-GeForce-RTX-5090': 575,
  'NVIDIA-RTX-A6000': 300,
  'NVIDIA-L4': 72,
  'NVIDIA-A100-SXM4-40GB': 400,
  'NVIDIA-A100-SXM4-80GB': 400,
  'NVIDIA-H100-80GB-HBM3': 700,
};

/** dcgm-exporter 4.x releases say `Hostname`; its main branch says `hostname` (gpu-metering.md §2.2). */
export type HostnameLabel = 'Hostname' | 'hostname';

export interface PhysicalGpu {
  node: string;
  index: number;
  uuid: string;
  pciBusId: string;
  /** NVML's name, with spaces: `NVIDIA GeForce RTX 4090`. */
  modelName: string;
  driver: string;
  memoryMiB: number;
  maxPowerW: number;
  idlePowerW: number;
}

export interface Holder {
  namespace: string;
  pod: string;
  container: string;
  utilPercent: number;
}

/** One exposition row: a whole GPU, a MIG instance, or a time-slice replica held by a pod. */
export interface GpuDevice {
  gpu: PhysicalGpu;
  mig?: { profile: string; id: number; slices: number };
  /** The time-slice replica a pod holds (the real exporter's `--kubernetes-virtual-gpus`). */
  vgpu?: string;
  holder?: Holder;
  /** Share of the physical GPU's engine this row stands for: 1, or slices/7 for a MIG instance. */
  weight: number;
  /** Framebuffer the holder uses, MiB. */
  busyFbMiB: number;
}

export interface GpuReading {
  device: GpuDevice;
  utilPercent: number;
  fbUsedMiB: number;
  /** The physical GPU's draw: device-level, repeated on every row of that GPU (as DCGM does). */
  powerW: number;
}

const label = (node: V1Node, key: string): string | undefined => node.metadata?.labels?.[key];
const intLabel = (node: V1Node, key: string): number | undefined => {
  const v = label(node, key);
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
};

/** The node's GPU extended resources (capacity, else allocatable) with positive integer counts. */
export function gpuCapacity(node: V1Node): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, qty] of Object.entries(node.status?.capacity ?? node.status?.allocatable ?? {})) {
    if (name !== GPU_RESOURCE && name !== SHARED_GPU_RESOURCE && !name.startsWith(MIG_RESOURCE_PREFIX)) continue;
    const n = Number(qty);
    if (Number.isInteger(n) && n > 0) out[name] = n;
  }
  return out;
}

/** `1g.10gb` → 1 slice (GPU instance size), `3g.40gb` → 3. */
export function migSlices(profile: string): number {
  const m = /^(\d+)g\./.exec(profile);
  return m ? Number(m[1]) : 1;
}

/** GFD's product label without its time-slicing `-SHARED` suffix. */
function product(node: V1Node): string | undefined {
  return label(node, PRODUCT_LABEL)?.replace(/-SHARED$/, '');
}

/** NVML's model name for a GFD product label: GFD replaced the spaces with dashes. */
export function modelName(productLabel: string | undefined): string {
  return productLabel ? productLabel.replace(/-SHARED$/, '').replaceAll('-', ' ') : 'NVIDIA GPU';
}

/** A stable GPU UUID in NVML's shape, derived from the node name and the index. */
export function gpuUuid(node: string, index: number): string {
  const h = createHash('sha256').update(`${node}/${index}`).digest('hex');
  return `GPU-${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

function replicas(node: V1Node, cap: Record<string, number>, count: number): number {
  const r = intLabel(node, 'nvidia.com/gpu.replicas');
  if (r !== undefined && r > 0) return r;
  const units = cap[SHARED_GPU_RESOURCE] ?? cap[GPU_RESOURCE] ?? count;
  return Math.max(1, Math.floor(units / count));
}

/** How many physical GPUs a node has: GFD's count label, else what its resources imply. */
export function physicalGpuCount(node: V1Node): number {
  const labelled = intLabel(node, 'nvidia.com/gpu.count');
  if (labelled !== undefined && labelled > 0) return labelled;
  const cap = gpuCapacity(node);
  const migSliceTotal = Object.entries(cap)
    .filter(([r]) => r.startsWith(MIG_RESOURCE_PREFIX))
    .reduce((sum, [r, n]) => sum + n * migSlices(r.slice(MIG_RESOURCE_PREFIX.length)), 0);
  if (migSliceTotal > 0) return Math.ceil(migSliceTotal / MIG_SLICES_PER_GPU);
  const r = intLabel(node, 'nvidia.com/gpu.replicas') ?? 1;
  return Math.max(1, Math.ceil((cap[SHARED_GPU_RESOURCE] ?? cap[GPU_RESOURCE] ?? 1) / Math.max(1, r)));
}

/** The node's physical GPUs, indexes 0..n-1, or none when it offers no GPU resource. */
export function physicalGpus(node: V1Node): PhysicalGpu[] {
  const name = node.metadata?.name ?? '';
  if (Object.keys(gpuCapacity(node)).length === 0) return [];
  const p = product(node);
  const maxPowerW = (p && MAX_POWER_W[p]) || DEFAULT_MAX_POWER_W;
  return Array.from({ length: physicalGpuCount(node) }, (_, index) => ({
    node: name,
    index,
    uuid: gpuUuid(name, index),
    pciBusId: `00000000:${(index + 1).toString(16).toUpperCase().padStart(2, '0')}:00.0`,
    modelName: modelName(p),
    driver: label(node, 'nvidia.com/cuda.driver-version.full') ?? DEFAULT_DRIVER,
    memoryMiB: intLabel(node, MEMORY_LABEL) ?? 0,
    maxPowerW,
    idlePowerW: Math.round(maxPowerW * IDLE_POWER_FRACTION * 10) / 10,
  }));
}

/** Something a pod can be given: a whole GPU, a MIG instance or a replica, under one resource name. */
interface Slot {
  resource: string;
  device: GpuDevice;
}

/** MIG instances placed first-fit (largest first) onto the GPUs, with per-GPU instance ids from 1. */
function migSlots(gpus: PhysicalGpu[], cap: Record<string, number>): Slot[] {
  const wanted = Object.entries(cap)
    .filter(([r]) => r.startsWith(MIG_RESOURCE_PREFIX))
    .flatMap(([r, n]) => Array.from({ length: n }, () => r))
    .map((resource) => ({ resource, profile: resource.slice(MIG_RESOURCE_PREFIX.length) }))
    .sort((a, b) => migSlices(b.profile) - migSlices(a.profile) || a.profile.localeCompare(b.profile));
  const free = gpus.map(() => MIG_SLICES_PER_GPU);
  const nextId = gpus.map(() => 1);
  const slots: Slot[] = [];
  for (const w of wanted) {
    const slices = migSlices(w.profile);
    const i = free.findIndex((f) => f >= slices);
    const gpu = gpus[i];
    if (!gpu) continue; // more slices advertised than the GPUs have: leave the rest out
    free[i] = (free[i] ?? 0) - slices;
    const id = nextId[i] ?? 1;
    nextId[i] = id + 1;
    const memMatch = /\.(\d+)gb/.exec(w.profile);
    const memoryMiB = memMatch ? Number(memMatch[1]) * 1024 : (gpu.memoryMiB * slices) / MIG_SLICES_PER_GPU;
    slots.push({ resource: w.resource, device: { gpu, mig: { profile: w.profile, id, slices }, weight: slices / MIG_SLICES_PER_GPU, busyFbMiB: Math.round(memoryMiB * BUSY_FB_FRACTION) } });
  }
  return slots;
}

/** The slots a node offers, in the order pods are given them. */
function nodeSlots(node: V1Node, gpus: PhysicalGpu[]): { slots: Slot[]; shared: boolean } {
  const cap = gpuCapacity(node);
  if (Object.keys(cap).some((r) => r.startsWith(MIG_RESOURCE_PREFIX))) return { slots: migSlots(gpus, cap), shared: false };
  const r = replicas(node, cap, gpus.length);
  const resource = cap[SHARED_GPU_RESOURCE] !== undefined ? SHARED_GPU_RESOURCE : GPU_RESOURCE;
  if (r === 1 && resource === GPU_RESOURCE) {
    return { slots: gpus.map((gpu) => ({ resource, device: { gpu, weight: 1, busyFbMiB: Math.round(gpu.memoryMiB * BUSY_FB_FRACTION) } })), shared: false };
  }
  // Time-slicing: replica s of the node is replica s % r of GPU floor(s / r).
  const slots = gpus.flatMap((gpu) =>
    Array.from({ length: r }, (_, k) => ({ resource, device: { gpu, vgpu: String(k), weight: 1, busyFbMiB: Math.round((gpu.memoryMiB * BUSY_FB_FRACTION) / r) } })),
  );
  return { slots, shared: true };
}

function createdMs(pod: V1Pod): number {
  const t = pod.metadata?.creationTimestamp as Date | string | undefined;
  if (t === undefined) return 0;
  const ms = t instanceof Date ? t.getTime() : Date.parse(t);
  return Number.isNaN(ms) ? 0 : ms;
}

/** Running pods bound to a node, oldest first (then by namespace and name), the order they get devices. */
export function runningPodsOn(node: string, pods: readonly V1Pod[]): V1Pod[] {
  const key = (p: V1Pod) => `${p.metadata?.namespace ?? ''}/${p.metadata?.name ?? ''}`;
  return pods
    .filter((p) => p.spec?.nodeName === node && p.status?.phase === 'Running')
    .sort((a, b) => createdMs(a) - createdMs(b) || key(a).localeCompare(key(b)));
}

/** A pod's simulated utilisation: its sim annotation when it is a number in 0..100, else DEFAULT_BUSY_UTIL. */
export function podUtil(pod: V1Pod): number {
  const v = pod.metadata?.annotations?.[GPU_UTIL_ANNOTATION];
  const n = v === undefined || v.trim() === '' ? NaN : Number(v);
  return Number.isFinite(n) ? Math.min(100, Math.max(0, n)) : DEFAULT_BUSY_UTIL;
}

function containerUnits(c: V1Container, resource: string): number {
  const n = Number(c.resources?.limits?.[resource] ?? c.resources?.requests?.[resource] ?? 0);
  return Number.isInteger(n) && n > 0 ? n : 0;
}

/** Hands the node's free slots to its Running pods' containers, per resource name, in pod order. */
function assign(slots: Slot[], pods: V1Pod[]): void {
  const resources = [...new Set(slots.map((s) => s.resource))];
  for (const pod of pods) {
    const util = podUtil(pod);
    for (const c of pod.spec?.containers ?? []) {
      for (const resource of resources) {
        const free = slots.filter((s) => s.resource === resource && !s.device.holder).slice(0, containerUnits(c, resource));
        for (const s of free) s.device.holder = { namespace: pod.metadata?.namespace ?? '', pod: pod.metadata?.name ?? '', container: c.name, utilPercent: util };
      }
    }
  }
}

/**
 * The rows the exporter serves for one node: every GPU (whole) or MIG instance, held or idle; on a
 * time-sliced GPU one row per held replica (with `vgpu`), or one row without pod labels when idle.
 */
export function nodeDevices(node: V1Node, pods: readonly V1Pod[]): GpuDevice[] {
  const gpus = physicalGpus(node);
  if (gpus.length === 0) return [];
  const { slots, shared } = nodeSlots(node, gpus);
  assign(slots, runningPodsOn(node.metadata?.name ?? '', pods));
  if (!shared) return slots.map((s) => s.device);
  return gpus.flatMap((gpu) => {
    const held = slots.filter((s) => s.device.gpu === gpu && s.device.holder).map((s) => s.device);
    return held.length > 0 ? held : [{ gpu, weight: 1, busyFbMiB: 0 }];
  });
}

/** Every GPU node's rows, nodes in name order. */
export function gpuDevices(nodes: readonly V1Node[], pods: readonly V1Pod[]): GpuDevice[] {
  return [...nodes].sort((a, b) => (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? '')).flatMap((n) => nodeDevices(n, pods));
}

const round3 = (x: number): number => Math.round(x * 1000) / 1000;

/**
 * What the GPUs read now. A MIG instance reports its own holder's utilisation and memory; a whole or
 * time-sliced GPU reports the device (utilisation summed over its holders, at most 100). Power is
 * the physical GPU's, idle draw plus the busy share of the rest, on every row of that GPU.
 */
export function readGpus(devices: readonly GpuDevice[]): GpuReading[] {
  const perGpu = new Map<string, { util: number; fb: number; load: number }>();
  for (const d of devices) {
    const g = perGpu.get(d.gpu.uuid) ?? { util: 0, fb: 0, load: 0 };
    if (d.holder) {
      g.util += d.holder.utilPercent;
      g.fb += d.busyFbMiB;
      g.load += (d.weight * d.holder.utilPercent) / 100;
    }
    perGpu.set(d.gpu.uuid, g);
  }
  return devices.map((d) => {
    const g = perGpu.get(d.gpu.uuid) ?? { util: 0, fb: 0, load: 0 };
    const powerW = round3(d.gpu.idlePowerW + (d.gpu.maxPowerW - d.gpu.idlePowerW) * Math.min(1, g.load));
    if (d.mig) return { device: d, utilPercent: Math.round(d.holder?.utilPercent ?? 0), fbUsedMiB: d.holder ? d.busyFbMiB : 0, powerW };
    return { device: d, utilPercent: Math.round(Math.min(100, g.util)), fbUsedMiB: Math.min(d.gpu.memoryMiB || Infinity, g.fb), powerW };
  });
}

/** The energy counter of each GPU (by UUID): millijoules so far, and the draw since the last step. */
export type EnergyState = ReadonlyMap<string, { mJ: number; powerW: number; atMs: number }>;

/**
 * Advances the energy counters to `nowMs`: each GPU adds the power it drew since the previous step
 * (W × ms = mJ), then remembers its current draw. A GPU seen for the first time starts at 0 (the
 * counter counts since the exporter started); one that disappeared keeps its total and draws 0, so
 * no counter ever goes down.
 */
export function accumulateEnergy(prev: EnergyState, readings: readonly GpuReading[], nowMs: number): EnergyState {
  const power = new Map(readings.map((r) => [r.device.gpu.uuid, r.powerW]));
  const next = new Map<string, { mJ: number; powerW: number; atMs: number }>();
  for (const [uuid, e] of prev) {
    next.set(uuid, { mJ: e.mJ + e.powerW * Math.max(0, nowMs - e.atMs), powerW: power.get(uuid) ?? 0, atMs: Math.max(nowMs, e.atMs) });
  }
  for (const [uuid, w] of power) if (!next.has(uuid)) next.set(uuid, { mJ: 0, powerW: w, atMs: nowMs });
  return next;
}

const escape = (v: string): string => v.replaceAll('\\', '\\\\').replaceAll('"', '\\"').replaceAll('\n', '\\n');

/** The labels of one row, in the real exporter's order. */
export function deviceLabels(d: GpuDevice, hostnameLabel: HostnameLabel = 'Hostname'): [string, string][] {
  const l: [string, string][] = [
    ['gpu', String(d.gpu.index)],
    ['UUID', d.gpu.uuid],
    ['pci_bus_id', d.gpu.pciBusId],
    ['device', `nvidia${d.gpu.index}`],
    ['modelName', d.gpu.modelName],
  ];
  if (d.mig) l.push(['GPU_I_PROFILE', d.mig.profile], ['GPU_I_ID', String(d.mig.id)]);
  l.push([hostnameLabel, d.gpu.node], ['DCGM_FI_DRIVER_VERSION', d.gpu.driver]);
  if (d.holder) l.push(['pod', d.holder.pod], ['namespace', d.holder.namespace], ['container', d.holder.container]);
  if (d.vgpu !== undefined && d.holder) l.push(['vgpu', d.vgpu]);
  return l;
}

interface Family {
  name: string;
  type: 'gauge' | 'counter';
  help: string;
  value: (r: GpuReading, energy: EnergyState) => number;
}

const FAMILIES: Family[] = [
  { name: 'DCGM_FI_DEV_GPU_UTIL', type: 'gauge', help: 'GPU utilization (in %).', value: (r) => r.utilPercent },
  { name: 'DCGM_FI_DEV_FB_USED', type: 'gauge', help: 'Framebuffer memory used (in MiB).', value: (r) => r.fbUsedMiB },
  { name: 'DCGM_FI_DEV_POWER_USAGE', type: 'gauge', help: 'Power draw (in W).', value: (r) => r.powerW },
  {
    name: 'DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION',
    type: 'counter',
    help: 'Total energy consumption since boot (in mJ).',
    value: (r, energy) => Math.floor(energy.get(r.device.gpu.uuid)?.mJ ?? 0),
  },
];

/** The Prometheus text exposition of the readings, as dcgm-exporter serves it on /metrics. */
export function renderMetrics(readings: readonly GpuReading[], energy: EnergyState, opts: { hostnameLabel?: HostnameLabel } = {}): string {
  const lines: string[] = [];
  for (const f of FAMILIES) {
    lines.push(`# HELP ${f.name} ${f.help}`, `# TYPE ${f.name} ${f.type}`);
    for (const r of readings) {
      const labels = deviceLabels(r.device, opts.hostnameLabel)
        .map(([k, v]) => `${k}="${escape(v)}"`)
        .join(',');
      lines.push(`${f.name}{${labels}} ${f.value(r, energy)}`);
    }
  }
  return `${lines.join('\n')}\n`;
}
