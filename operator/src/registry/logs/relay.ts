// Renters cannot read providers' namespaces, where agents push job log tails. The registry copies
// the current attempt's tail into the job's own namespace, owned by the ComputeJob (same cluster,
// so the garbage collector deletes it with the job). Pure.
import type { V1ConfigMap } from '@kubernetes/client-node';
import { ComputeJobResource, type ComputeJob } from '../../api/index.js';
import { ASSIGNMENT_NAME_ANNOTATION, JobLabel, REGISTRY_MANAGED_BY, logConfigMapName } from '../../api/labels.js';

/** The relayed copy of a pushed log ConfigMap, for the job it belongs to. */
export function relayedLog(pushed: V1ConfigMap, job: ComputeJob): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: logConfigMapName(job.metadata.name ?? ''),
      namespace: job.metadata.namespace ?? '',
      labels: { [JobLabel.ManagedBy]: REGISTRY_MANAGED_BY, [JobLabel.JobUid]: job.metadata.uid ?? '' },
      annotations: { [ASSIGNMENT_NAME_ANNOTATION]: pushed.metadata?.annotations?.[ASSIGNMENT_NAME_ANNOTATION] ?? '' },
      ownerReferences: [{ apiVersion: ComputeJobResource.apiVersion, kind: ComputeJobResource.kind, name: job.metadata.name ?? '', uid: job.metadata.uid ?? '', blockOwnerDeletion: false }],
    },
    data: { ...(pushed.data ?? {}) },
  };
}
