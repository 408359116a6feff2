// The agent's own check, before it starts a job, that a node still fits it: the registry matched
// on the last GpuNodes it saw, and the cluster may have changed since. Pure.
import { AssignmentReason } from '../api/conditions.js';
import type { GpuNodeSpec, GpuNodeStatus, ResourcesGpu } from '../api/index.js';
import { GPU_RESOURCE, MIG_RESOURCE_PREFIX, SHARED_GPU_RESOURCE } from '../api/gpus.js';

export interface FitCandidate {
  spec: GpuNodeSpec;
  status: GpuNodeStatus;
}

export type FitResult = { fits: true; nodeName: string; resourceName: string } | { fits: false; reason: AssignmentReason; message: string };

/** The extended resource a job asks for, given how it wants to share GPUs. */
export function wantedResource(gpu: ResourcesGpu): string {
  if (gpu.sharing === 'MIG') return `${MIG_RESOURCE_PREFIX}${gpu.migProfile ?? ''}`;
  if (gpu.sharing === 'TimeSliced') return SHARED_GPU_RESOURCE;
  return GPU_RESOURCE;
}

/** A GPU node as both the agent (from its cluster) and the registry's matcher (from GpuNodes) see it. */
export interface NodeView {
  spec: GpuNodeSpec;
  status?: GpuNodeStatus;
}

/** Ready and Schedulable: the node takes new jobs. */
export const takesJobs = (status: GpuNodeStatus | undefined): boolean => ['Ready', 'Schedulable'].every((t) => status?.conditions?.some((c) => c.type === t && c.status === 'True'));
const ready = takesJobs;

/** Free units of `resource` on a node, from its status. */
export function freeUnits(c: NodeView, resource: string): number {
  if (resource.startsWith(MIG_RESOURCE_PREFIX)) return c.status?.migProfiles?.find((p) => `${MIG_RESOURCE_PREFIX}${p.profile}` === resource)?.free ?? 0;
  return c.spec.resourceName === resource ? (c.status?.free ?? 0) : 0;
}

/** Memory one unit gives a job: a MIG device's own memory, else the GPU's. */
export function memoryPerUnit(c: NodeView, resource: string): number {
  if (resource.startsWith(MIG_RESOURCE_PREFIX)) return c.spec.sharing?.migProfiles?.find((p) => `${MIG_RESOURCE_PREFIX}${p.profile}` === resource)?.memoryMiB ?? 0;
  return c.spec.memoryMiB;
}

/**
 * Picks the node for a job: the model the registry placed it on, enough memory per GPU, enough free
 * units after `reserved` (units promised to jobs whose pods are not bound yet), Ready and
 * Schedulable. The registry's hint first if it fits, then the tightest fit, then by name.
 */
export function chooseNode(gpu: ResourcesGpu, model: string, candidates: readonly FitCandidate[], reserved: ReadonlyMap<string, number>, hint?: string): FitResult {
  const resource = wantedResource(gpu);
  const ofModel = candidates.filter((c) => c.spec.product === model);
  if (ofModel.length === 0) return { fits: false, reason: AssignmentReason.UnknownModel, message: `No node of this provider has ${model} any more` };
  const fitting = ofModel
    .filter((c) => ready(c.status) && memoryPerUnit(c, resource) >= (gpu.minMemoryMiB ?? 0))
    .map((c) => ({ c, left: freeUnits(c, resource) - (reserved.get(c.spec.nodeName) ?? 0) - gpu.count }))
    .filter((x) => x.left >= 0)
    .sort((a, b) => Number(b.c.spec.nodeName === hint) - Number(a.c.spec.nodeName === hint) || a.left - b.left || a.c.spec.nodeName.localeCompare(b.c.spec.nodeName));
  const best = fitting[0];
  if (best) return { fits: true, nodeName: best.c.spec.nodeName, resourceName: resource };
  const free = ofModel.map((c) => `${c.spec.nodeName}: ${Math.max(0, freeUnits(c, resource) - (reserved.get(c.spec.nodeName) ?? 0))} free${ready(c.status) ? '' : ', not schedulable'}`).join('; ');
  return { fits: false, reason: AssignmentReason.InsufficientGpus, message: `No ${model} node has ${gpu.count} free ${resource}${gpu.minMemoryMiB ? ` with ${gpu.minMemoryMiB} MiB` : ''} (${free})` };
}
