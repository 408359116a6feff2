// What the agent publishes about one GPU node: the GpuNode spec from GPU Feature Discovery's labels
// and the status from the Node and the pods on it. Pure: the registration controller gathers the
// Node and its pods, calls these, and writes only when the result differs from what the registry has.
import type { V1Container, V1Node, V1Pod } from '@kubernetes/client-node';
import { GpuNodeConditionType, GpuNodeReason, setCondition } from '../api/conditions.js';
import type { Condition, GpuNodeSpec, GpuNodeStatus, GpuNodeStatusMigProfile } from '../api/index.js';
import { GPU_RESOURCE, MEMORY_LABEL, MIG_RESOURCE_PREFIX, PRODUCT_LABEL, SHARED_GPU_RESOURCE } from '../api/gpus.js';

/** Job pods tolerate this taint, so it does not make a GPU node unschedulable for gpufed. */
export const GPU_TAINT_KEY = 'nvidia.com/gpu';
/**
 * Set by `gpufed provider reclaim` on a Node of the owner's cluster: the owner takes the node back.
 * No new jobs land there; running ones may finish until this RFC 3339 deadline, then stop.
 * An annotation, not a taint, so the owner's own pods still schedule on the node.
 */
export const RECLAIM_ANNOTATION = 'gpufed.io/reclaim-deadline';

/** When running jobs on a reclaimed node must stop, or undefined when the node is not reclaimed. */
export function reclaimDeadline(node: V1Node | undefined): Date | undefined {
  const v = node?.metadata?.annotations?.[RECLAIM_ANNOTATION];
  if (!v) return undefined;
  const t = Date.parse(v);
  return Number.isNaN(t) ? new Date(0) : new Date(t); // unreadable: treat as due now
}

const label = (node: V1Node, key: string): string | undefined => node.metadata?.labels?.[key];
const intLabel = (node: V1Node, key: string): number | undefined => {
  const v = label(node, key);
  return v !== undefined && /^\d+$/.test(v) ? Number(v) : undefined;
};

/** GPU extended resources the node offers, with their allocatable counts (quantities are integers). */
export function gpuResources(node: V1Node): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [name, qty] of Object.entries(node.status?.allocatable ?? {})) {
    if (name === GPU_RESOURCE || name === SHARED_GPU_RESOURCE || name.startsWith(MIG_RESOURCE_PREFIX)) {
      const n = Number(qty);
      if (Number.isInteger(n) && n > 0) out[name] = n;
    }
  }
  return out;
}

/** A GPU node has allocatable nvidia.com/gpu, nvidia.com/gpu.shared or nvidia.com/mig-*. */
export function isGpuNode(node: V1Node): boolean {
  return Object.keys(gpuResources(node)).length > 0;
}

/** The resource a pod asks for on this node: MIG profiles first (mixed strategy), then shared, then whole GPUs. */
function primaryResource(resources: Record<string, number>): string {
  const names = Object.keys(resources).sort();
  return names.find((n) => n.startsWith(MIG_RESOURCE_PREFIX)) ?? names.find((n) => n === SHARED_GPU_RESOURCE) ?? GPU_RESOURCE;
}

function sharing(node: V1Node, resources: Record<string, number>): GpuNodeSpec['sharing'] {
  const mig = Object.keys(resources)
    .filter((n) => n.startsWith(MIG_RESOURCE_PREFIX))
    .sort();
  if (mig.length > 0) {
    return {
      strategy: 'mig',
      // The API server defaults replicas to 1; setting it keeps desired == stored, so no idle writes.
      replicas: 1,
      migProfiles: mig.map((r) => {
        const profile = r.slice(MIG_RESOURCE_PREFIX.length);
        const memoryMiB = intLabel(node, `${r}.memory`);
        return { profile, count: resources[r] ?? 0, ...(memoryMiB === undefined ? {} : { memoryMiB }) };
      }),
    };
  }
  const strategy = label(node, 'nvidia.com/gpu.sharing-strategy');
  const replicas = intLabel(node, 'nvidia.com/gpu.replicas') ?? 1;
  if (strategy === 'time-slicing' || strategy === 'mps') return { strategy, replicas };
  return { strategy: 'none', replicas: 1 };
}

/** The GpuNode spec for a GPU node, from GFD's labels and the node's allocatable resources. */
export function gpuNodeSpec(node: V1Node): GpuNodeSpec {
  const resources = gpuResources(node);
  const major = label(node, 'nvidia.com/gpu.compute.major');
  const minor = label(node, 'nvidia.com/gpu.compute.minor');
  const spec: GpuNodeSpec = {
    nodeName: node.metadata?.name ?? '',
    // Without GFD a node still has GPUs; the model is then unknown, and the matcher treats it so.
    product: label(node, PRODUCT_LABEL) ?? 'unknown',
    memoryMiB: intLabel(node, MEMORY_LABEL) ?? 0,
    count: intLabel(node, 'nvidia.com/gpu.count') ?? resources[GPU_RESOURCE] ?? 1,
    resourceName: primaryResource(resources),
  };
  const family = label(node, 'nvidia.com/gpu.family');
  const driver = label(node, 'nvidia.com/cuda.driver-version.full');
  const cuda = label(node, 'nvidia.com/cuda.runtime-version.full');
  if (family) spec.family = family;
  if (major !== undefined && minor !== undefined) spec.computeCapability = `${major}.${minor}`;
  if (driver) spec.driverVersion = driver;
  if (cuda) spec.cudaVersion = cuda;
  const sh = sharing(node, resources);
  if (sh) spec.sharing = sh;
  return spec;
}

/** A pod still holds its devices unless it has finished. */
export function holdsDevices(pod: V1Pod): boolean {
  const phase = pod.status?.phase;
  return phase !== 'Succeeded' && phase !== 'Failed';
}

/** Units of an extended resource one container asks for (limits; a request alone counts too). */
function containerRequest(c: V1Container, resource: string): number {
  const n = Number(c.resources?.limits?.[resource] ?? c.resources?.requests?.[resource] ?? 0);
  return Number.isFinite(n) ? n : 0;
}

/** Units of `resource` a pod holds: its containers together, or its largest init container if more. */
export function podRequest(pod: V1Pod, resource: string): number {
  const containers = (pod.spec?.containers ?? []).reduce((sum, c) => sum + containerRequest(c, resource), 0);
  const init = Math.max(0, ...(pod.spec?.initContainers ?? []).map((c) => containerRequest(c, resource)));
  return Math.max(containers, init);
}

function nodeConditions(node: V1Node, previous: readonly Condition[] | undefined, allocatable: number, now: Date): Condition[] {
  const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
  let conditions = setCondition(
    previous,
    ready?.status === 'True'
      ? { type: GpuNodeConditionType.Ready, status: 'True', reason: GpuNodeReason.NodeReady, message: 'The node is Ready' }
      : { type: GpuNodeConditionType.Ready, status: 'False', reason: GpuNodeReason.NodeNotReady, message: `The node is not Ready${ready?.reason ? ` (${ready.reason})` : ''}` },
    now,
  );
  const blocking = (node.spec?.taints ?? []).filter((t) => t.key !== GPU_TAINT_KEY && (t.effect === 'NoSchedule' || t.effect === 'NoExecute'));
  const reclaimed = reclaimDeadline(node);
  const schedulable = reclaimed
    ? { status: 'False' as const, reason: GpuNodeReason.NodeReclaimed, message: `The owner reclaimed the node; running jobs stop at ${reclaimed.toISOString()}` }
    : node.spec?.unschedulable
    ? { status: 'False' as const, reason: GpuNodeReason.NodeCordoned, message: 'The node is cordoned' }
    : blocking.length > 0
      ? { status: 'False' as const, reason: GpuNodeReason.NodeTainted, message: `The node has taints job pods do not tolerate: ${blocking.map((t) => `${t.key}:${t.effect}`).join(', ')}` }
      : allocatable === 0
        ? { status: 'False' as const, reason: GpuNodeReason.NoAllocatableGpus, message: 'The device plugin reports no allocatable GPUs' }
        : { status: 'True' as const, reason: GpuNodeReason.NodeSchedulable, message: 'Jobs can be placed on the node' };
  conditions = setCondition(conditions, { type: GpuNodeConditionType.Schedulable, ...schedulable }, now);
  return conditions;
}

/**
 * The GpuNode status: allocatable and free units of the primary resource (free = allocatable minus
 * what the node's unfinished pods request), per-profile MIG availability, and conditions.
 * `previous` keeps lastTransitionTime stable when nothing flipped, so an unchanged node yields an
 * unchanged status.
 */
export function gpuNodeStatus(node: V1Node, podsOnNode: readonly V1Pod[], previous: GpuNodeStatus | undefined, now: Date): GpuNodeStatus {
  const resources = gpuResources(node);
  const primary = primaryResource(resources);
  const live = podsOnNode.filter(holdsDevices);
  const used = (r: string) => live.reduce((sum, p) => sum + podRequest(p, r), 0);
  const allocatable = resources[primary] ?? 0;
  const status: GpuNodeStatus = {
    allocatable,
    free: Math.max(0, allocatable - used(primary)),
    conditions: nodeConditions(node, previous?.conditions, allocatable, now),
  };
  const migs = Object.keys(resources)
    .filter((r) => r.startsWith(MIG_RESOURCE_PREFIX))
    .sort();
  if (migs.length > 0) {
    status.migProfiles = migs.map((r): GpuNodeStatusMigProfile => ({ profile: r.slice(MIG_RESOURCE_PREFIX.length), allocatable: resources[r] ?? 0, free: Math.max(0, (resources[r] ?? 0) - used(r)) }));
  }
  return status;
}
