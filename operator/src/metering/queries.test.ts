import { ksmFreshnessQuery, dcgmByWorkload, podCompletedQuery, podEnergyQuery, podGpusQuery, podLabelsQuery, podLastRunningQuery, podStartedQuery, podUtilizationQuery } from './queries.js';

// The queries run against a real Prometheus in test/integration/metering.test.ts; here their text is
// pinned, so a change to what is billed shows up in review as a change to this file.
const q = { jobsNamespace: 'gpufed-jobs', rangeSeconds: 900.2, stepSeconds: 2 };

describe('metering PromQL', () => {
  it('asks for every GPU resource kind of every job pod, over the whole open range', () => {
    expect(podGpusQuery(q)).toBe('sum by (namespace, pod, uid) (max_over_time(kube_pod_container_resource_limits{namespace="gpufed-jobs", resource=~"nvidia_com_gpu|nvidia_com_gpu_shared|nvidia_com_mig_.+", unit="integer"}[901s]))');
  });

  it('reads container start and completion as kube-state-metrics timestamps', () => {
    expect(podStartedQuery(q)).toBe('max by (namespace, pod, uid) (max_over_time(kube_pod_container_state_started{namespace="gpufed-jobs"}[901s]))');
    expect(podCompletedQuery(q)).toBe('max by (namespace, pod, uid) (max_over_time(kube_pod_completion_time{namespace="gpufed-jobs"}[901s]))');
  });

  it('finds the last sample that saw a pod Running with a subquery at the scrape resolution', () => {
    expect(podLastRunningQuery(q)).toBe('max by (namespace, pod, uid) (max_over_time(timestamp(kube_pod_status_phase{namespace="gpufed-jobs", phase="Running"} == 1)[901s:2s]))');
  });

  it("maps pods to Assignments through the agent's allowlisted pod labels", () => {
    expect(podLabelsQuery(q)).toBe(
      'max by (namespace, pod, uid, label_gpufed_io_assignment_uid, label_gpufed_io_assignment, label_gpufed_io_epoch, label_gpufed_io_job_uid) (max_over_time(kube_pod_labels{namespace="gpufed-jobs", label_gpufed_io_assignment_uid!=""}[901s]))',
    );
  });

  it("asks when kube-state-metrics was last scraped, so a window whose end fell in an outage waits", () => {
    expect(ksmFreshnessQuery()).toBe('max(timestamp(kube_node_info))');
  });

  it('reads DCGM series in both label shapes: exported_pod wins when a ServiceMonitor renamed it', () => {
    expect(dcgmByWorkload('X')).toBe('label_replace(label_replace(X, "pod", "$1", "exported_pod", "(.+)"), "namespace", "$1", "exported_namespace", "(.+)")');
    expect(podUtilizationQuery(300)).toContain('avg_over_time(DCGM_FI_DEV_GPU_UTIL[300s])');
    expect(podEnergyQuery(300)).toContain('increase(DCGM_FI_DEV_TOTAL_ENERGY_CONSUMPTION[300s])');
  });
});
