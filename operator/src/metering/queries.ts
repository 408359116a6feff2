// The PromQL the agent meters with: named builders, one per question, each with a test. All of them
// answer for every job pod of the provider at once (a constant number of queries per period, however
// many jobs run), and all are evaluated as instant queries at the period's end with a range that
// reaches back to the oldest unmetered start, so a scrape gap or a Prometheus restart inside the range
// changes nothing: what is billed comes from Kubernetes timestamps that kube-state-metrics exports,
// not from counting samples.

/** kube-state-metrics names extended resources with [^a-zA-Z0-9_] replaced by `_`. */
export const GPU_RESOURCES_REGEX = 'nvidia_com_gpu|nvidia_com_gpu_shared|nvidia_com_mig_.+';

/** The pod labels the agent puts on job pods, as kube-state-metrics exports them (allowlisted). */
export const KSM_POD_LABEL = {
  assignmentUid: 'label_gpufed_io_assignment_uid',
  assignment: 'label_gpufed_io_assignment',
  epoch: 'label_gpufed_io_epoch',
  jobUid: 'label_gpufed_io_job_uid',
} as const;

export interface MeterQueryInput {
  /** The provider cluster's namespace that job pods run in. */
  jobsNamespace: string;
  /** How far back to look, in whole seconds (covers the oldest unmetered window). */
  rangeSeconds: number;
  /** The subquery resolution for "last seen Running", in whole seconds (the scrape interval). */
  stepSeconds: number;
}

const sel = (ns: string, extra = ''): string => `namespace="${ns}"${extra}`;
const range = (s: number): string => `${Math.max(1, Math.ceil(s))}s`;

/** GPU units each pod holds (limits summed over its containers, every NVIDIA resource kind). */
export function podGpusQuery(q: MeterQueryInput): string {
  return `sum by (namespace, pod, uid) (max_over_time(kube_pod_container_resource_limits{${sel(q.jobsNamespace, `, resource=~"${GPU_RESOURCES_REGEX}", unit="integer"`)}}[${range(q.rangeSeconds)}]))`;
}

/**
 * When each pod's container last started running (Unix seconds): after the image pull, so pulls
 * are not billed; a restarted container reports its latest start, so a crash loop is billed only
 * from its last start (in the renter's favour).
 */
export function podStartedQuery(q: MeterQueryInput): string {
  return `max by (namespace, pod, uid) (max_over_time(kube_pod_container_state_started{${sel(q.jobsNamespace)}}[${range(q.rangeSeconds)}]))`;
}

/** When each finished pod's container ended (Unix seconds). */
export function podCompletedQuery(q: MeterQueryInput): string {
  return `max by (namespace, pod, uid) (max_over_time(kube_pod_completion_time{${sel(q.jobsNamespace)}}[${range(q.rangeSeconds)}]))`;
}

/**
 * The timestamp of the last sample that saw each pod in phase Running: the end of billing for a pod
 * that is still running, or that was deleted before kube-state-metrics saw it finish.
 */
export function podLastRunningQuery(q: MeterQueryInput): string {
  return `max by (namespace, pod, uid) (max_over_time(timestamp(kube_pod_status_phase{${sel(q.jobsNamespace, ', phase="Running"')}} == 1)[${range(q.rangeSeconds)}:${range(q.stepSeconds)}]))`;
}

/** Which Assignment (uid, name, epoch) and job each pod belongs to, from the pod's labels. */
export function podLabelsQuery(q: MeterQueryInput): string {
  const by = ['namespace', 'pod', 'uid', ...Object.values(KSM_POD_LABEL)].join(', ');
  return `max by (${by}) (max_over_time(kube_pod_labels{${sel(q.jobsNamespace, `, ${KSM_POD_LABEL.assignmentUid}!=""`)}}[${range(q.rangeSeconds)}]))`;
}

/**
 * dcgm-exporter series name the workload pod in `pod`/`namespace` when scraped with honorLabels,
 * or in `exported_pod`/`exported_namespace` behind a ServiceMonitor that does not honour them.
 * This takes the exported_* value when present, so both setups read the same. (Relabelled after
 * the range function: a range cannot follow a function call. Callers keep the jobs namespace's
 * rows, since a selector cannot filter on a label made by label_replace.)
 */
export function dcgmByWorkload(expr: string): string {
  return `label_replace(label_replace(${expr}, "pod", "$1", "exported_pod", "(.+)"), "namespace", "$1", "exported_namespace", "(.+)")`;
}

/** Each pod's average GPU utilisation over the window, in percent (DCGM_FI_DEV_GPU_UTIL over the GPUs it holds). */
export function podUtilizationQuery(windowSeconds: number): string {
  return `avg by (namespace, pod) (${dcgmByWorkload(`avg_over_time(DCGM_FI_DEV_GPU_UTIL[${range(windowSeconds)}])`)})`;
}

/** Energy each pod's GPUs used over the window, in millijoules (the DCGM counter's increase while the pod held them). */
export function podEnergyQuery(windowSeconds: number): string {
  return `sum by (namespace, pod) (${dcgmByWorkload(`increase(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[${range(windowSeconds)}])`)})`;
}

/**
 * When kube-state-metrics was last scraped, as of the evaluation time: a window is metered only when
 * this is fresh at its end. After a Prometheus or KSM outage the lookback still finds the samples from
 * before it, so without this check a job that ended during the outage would be closed as final with
 * the time seen before the outage (and never billed the rest).
 */
export function ksmFreshnessQuery(): string {
  return 'max(timestamp(kube_node_info))';
}
