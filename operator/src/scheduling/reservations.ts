// GPUs the registry promised to Assignments that a provider's reported free counts may not show
// yet. Pure: derived from the Assignments and GpuNodes the registry sees, so a new leader holds
// exactly the reservations the old one did (nothing lives only in a dead process's memory).
//
// A promise ends when the Assignment ends (finished, rejected, withdrawn and acknowledged) or when
// the provider's report reflects it: its pod is bound, and the node's reported free count is no
// higher than allocatable minus every bound job of ours on it. Until then its units are held, so
// a burst of placements can never count the same free GPU twice.
import { AssignmentConditionType, findCondition } from '../api/conditions.js';
import type { Assignment, GpuNode } from '../api/index.js';
import { assignmentEnded, currentStatus } from '../api/assignments.js';
import { freeUnits, wantedResource } from './fit.js';
import { MIG_RESOURCE_PREFIX } from '../api/gpus.js';
import { providerOfNamespace } from '../api/names.js';
import type { Reservation } from './match.js';


/** The agent followed the pod after the scheduler bound it (the pod's own nodeName is reported). */
function isBound(a: Assignment): boolean {
  const s = currentStatus(a);
  return s?.nodeName !== undefined && findCondition(s.conditions, AssignmentConditionType.Running) !== undefined;
}


/** Allocatable units of `resource` on a node, from its status. */
function allocatableUnits(node: GpuNode, resource: string): number {
  if (resource.startsWith(MIG_RESOURCE_PREFIX)) {
    return node.status?.migProfiles?.find((p) => `${MIG_RESOURCE_PREFIX}${p.profile}` === resource)?.allocatable ?? 0;
  }
  return node.spec.resourceName === resource ? (node.status?.allocatable ?? 0) : 0;
}

interface Held {
  provider: string;
  nodeName: string;
  resourceName: string;
  units: number;
  assignment: string;
  bound: boolean;
}

/**
 * The reservations to hold now. `assignments` are every Assignment the registry knows of,
 * including ones it created that its cache does not show yet.
 */
export function reservationsFor(assignments: readonly Assignment[], gpuNodes: readonly GpuNode[]): Reservation[] {
  const held: Held[] = [];
  for (const a of assignments) {
    const provider = providerOfNamespace(a.metadata.namespace);
    const nodeName = currentStatus(a)?.nodeName ?? a.spec.nodeName;
    if (provider === undefined || nodeName === undefined || assignmentEnded(a)) continue;
    held.push({ provider, nodeName, resourceName: wantedResource(a.spec.resources.gpu), units: a.spec.resources.gpu.count, assignment: a.metadata.name ?? '', bound: isBound(a) });
  }
  const nodes = new Map(gpuNodes.map((n) => [`${providerOfNamespace(n.metadata.namespace) ?? ''}/${n.spec.nodeName}`, n]));
  const byNode = new Map<string, Held[]>();
  for (const h of held) {
    const key = `${h.provider}/${h.nodeName}/${h.resourceName}`;
    byNode.set(key, [...(byNode.get(key) ?? []), h]);
  }
  const out: Reservation[] = [];
  for (const group of byNode.values()) {
    const first = group[0] as Held;
    const node = nodes.get(`${first.provider}/${first.nodeName}`);
    const boundUnits = group.filter((h) => h.bound).reduce((s, h) => s + h.units, 0);
    const reflected = node !== undefined && freeUnits(node, first.resourceName) <= allocatableUnits(node, first.resourceName) - boundUnits;
    for (const h of group) {
      if (h.bound && reflected) continue;
      out.push({ provider: h.provider, nodeName: h.nodeName, resourceName: h.resourceName, units: h.units, assignment: h.assignment });
    }
  }
  return out;
}
