// A provider's capacity summary: GPUs per model over its GPU nodes (the agent's gauges, the
// registry's Provider status). Pure.
import type { GpuNodeSpec, GpuNodeStatus, ProviderStatusCapacity } from '../api/index.js';

export function capacityByModel(nodes: readonly { spec: GpuNodeSpec; status?: GpuNodeStatus }[]): ProviderStatusCapacity[] {
  const byModel = new Map<string, ProviderStatusCapacity>();
  for (const n of nodes) {
    const ready = n.status?.conditions?.every((c) => c.status === 'True') ?? false;
    const row = byModel.get(n.spec.product) ?? { model: n.spec.product, total: 0, free: 0, memoryMiB: n.spec.memoryMiB };
    row.total += n.status?.allocatable ?? 0;
    // GPUs on a node that is not Ready or not schedulable are not free for new jobs.
    if (ready) row.free += n.status?.free ?? 0;
    byModel.set(n.spec.product, row);
  }
  return [...byModel.values()].sort((a, b) => a.model.localeCompare(b.model));
}
