// The NVIDIA names gpufed reads and requests, wherever they are used (the agent's GpuNodes and job
// pods, the registry's matcher, the CLI, the local federation): the device plugin's extended
// resources and GPU Feature Discovery's node labels.

export const GPU_RESOURCE = 'nvidia.com/gpu';
/** A time-sliced share of a GPU (the device plugin's `renameByDefault` sharing). */
export const SHARED_GPU_RESOURCE = 'nvidia.com/gpu.shared';
/** MIG devices are `nvidia.com/mig-<profile>`, e.g. nvidia.com/mig-1g.10gb. */
export const MIG_RESOURCE_PREFIX = 'nvidia.com/mig-';
/** GPU Feature Discovery's labels for the GPU model and the memory per GPU (MiB). */
export const PRODUCT_LABEL = 'nvidia.com/gpu.product';
export const MEMORY_LABEL = 'nvidia.com/gpu.memory';
