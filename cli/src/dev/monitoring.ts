// Each provider cluster's metering stack in the local federation: the real kube-state-metrics, the
// stand-in dcgm-exporter (test/support/dcgm-exporter.ts; KWOK has no GPUs) and the real Prometheus
// (Debian's, see tools/debian.sh) that scrapes them and the cluster's gpufed agent. Pure, like
// plan.ts: ports are handed in, and the caller writes the Prometheus config before starting it.
import { createHash } from 'node:crypto';
import { join } from 'node:path';
import { stringify } from 'yaml';
import { MEMORY_LABEL, PRODUCT_LABEL } from '../../../operator/src/api/gpus.js';
import { ASSIGNMENT_NAME_ANNOTATION, JobLabel } from '../../../operator/src/api/labels.js';
import type { ComponentPlan } from './plan.js';

/**
 * Where the workload's pod ends up on DCGM series (gpu-metering.md §2.2): `pod` when the scrape
 * honours the exporter's labels; `exported`, the stock ServiceMonitor setup (`honorLabels: false`),
 * where the target's own pod/namespace/container win and the job's become `exported_pod` etc.
 */
export type DcgmLabelShape = 'pod' | 'exported';

/** Defaults for the local federation: scrapes fast enough for tests, a TSDB that only lives hours. */
export const MONITORING_DEFAULTS = { scrapeInterval: '2s', retention: '6h' } as const;

/** Pod labels kube-state-metrics copies into kube_pod_labels{label_gpufed_io_…}: how usage is joined to jobs. */
export const KSM_POD_LABELS = [JobLabel.JobUid, JobLabel.Assignment, JobLabel.AssignmentUid, JobLabel.Epoch, JobLabel.Provider, JobLabel.ManagedBy] as const;
/** Pod annotations into kube_pod_annotations: the Assignment's full name when the label had to be shortened. */
export const KSM_POD_ANNOTATIONS = [ASSIGNMENT_NAME_ANNOTATION] as const;
/** Node labels into kube_node_labels{label_nvidia_com_gpu_product,…}: the model a GPU-second is priced by. */
export const KSM_NODE_LABELS = [
  PRODUCT_LABEL,
  MEMORY_LABEL,
  'nvidia.com/gpu.count',
  'nvidia.com/gpu.replicas',
  'nvidia.com/gpu.sharing-strategy',
  'nvidia.com/mig.strategy',
] as const;
/** Namespace labels into kube_namespace_labels: which namespaces hold jobs. */
export const KSM_NAMESPACE_LABELS = [JobLabel.Jobs] as const;

/** Prometheus scrape job names (the `job` label); gpufed's queries select on them. */
export const ScrapeJob = { KubeStateMetrics: 'kube-state-metrics', Agent: 'gpufed-agent', Dcgm: 'dcgm-exporter' } as const;

export interface MonitoringInput {
  /** The provider cluster, e.g. `alice`; also Prometheus's `cluster` external label. */
  cluster: string;
  /** The cluster's admin kubeconfig (KSM and the exporter read Nodes and Pods with it). */
  kubeconfig: string;
  /** The federation's directory: logs/ and prometheus/<cluster>/ go there. */
  dir: string;
  /** Where tools/build.sh put kube-state-metrics. */
  binDir: string;
  /** The Node binary and the compiled exporter (dist/test/support/dcgm-exporter.js). */
  node: string;
  exporterEntry: string;
  /** The cluster's gpufed agent metrics endpoint, host:port; no scrape job for it when absent. */
  agentTarget?: string;
  dcgmShape: DcgmLabelShape;
  /** The exporter's hostname label: `Hostname` (releases) or `hostname` (main). Default Hostname. */
  hostnameLabel?: 'Hostname' | 'hostname';
  /** Global scrape interval, a Prometheus duration. Default MONITORING_DEFAULTS.scrapeInterval. */
  scrapeInterval?: string;
  /** TSDB retention. Default MONITORING_DEFAULTS.retention. */
  retention?: string;
  /** The Prometheus binary; default `prometheus` from PATH (Debian's /usr/bin/prometheus). */
  prometheus?: string;
}

export interface MonitoringTargets {
  kubeStateMetrics: string;
  dcgmExporter: string;
  agent?: string;
}

export interface PrometheusConfigInput {
  cluster: string;
  targets: MonitoringTargets;
  dcgmShape: DcgmLabelShape;
  scrapeInterval?: string;
}

export interface MonitoringPlan {
  /** `<cluster>/kube-state-metrics`, `<cluster>/dcgm-exporter`, `<cluster>/prometheus`, all stage 2. */
  components: ComponentPlan[];
  /** Write `text` to `path` before starting Prometheus. */
  prometheusConfig: { path: string; text: string };
  /** Prometheus's base URL, e.g. for /api/v1/query. */
  prometheusUrl: string;
  targets: MonitoringTargets;
}

/** Ports one cluster's monitoring takes: KSM metrics + telemetry, the exporter, Prometheus. */
export function portsNeededForMonitoring(): number {
  return 4;
}

/** The cluster's Prometheus directory (config and TSDB), under the federation's. */
export function prometheusDir(dir: string, cluster: string): string {
  return join(dir, 'prometheus', cluster);
}

/** `pods=[a,b],nodes=[c]`: KSM's allowlist syntax. */
function allowlist(byResource: Record<string, readonly string[]>): string {
  return Object.entries(byResource)
    .map(([resource, keys]) => `${resource}=[${keys.join(',')}]`)
    .join(',');
}

/**
 * What a ServiceMonitor would attach to the exporter's target in a stock install: the exporter
 * pod's own namespace, pod, container, service and endpoint (dcgm-exporter#340). The pod name
 * carries a stable DaemonSet-style suffix per cluster.
 */
export function dcgmTargetLabels(cluster: string): Record<string, string> {
  const alphabet = 'bcdfghjklmnpqrstvwxz2456789'; // Kubernetes' random-suffix alphabet
  const h = createHash('sha256').update(cluster).digest();
  const suffix = Array.from(h.subarray(0, 5), (b) => alphabet[b % alphabet.length]).join('');
  return { namespace: 'monitoring', pod: `dcgm-exporter-${suffix}`, container: 'exporter', service: 'dcgm-exporter', endpoint: 'metrics' };
}

/** The target label every scrape job of a cluster's Prometheus attaches: `cluster=<name>`. */
export function clusterTargetLabels(cluster: string): { cluster: string } {
  return { cluster };
}

/** The cluster's Prometheus configuration (YAML). */
export function prometheusConfig(input: PrometheusConfigInput): string {
  const interval = input.scrapeInterval ?? MONITORING_DEFAULTS.scrapeInterval;
  // external_labels reach only data that leaves this Prometheus; a target label puts `cluster` on
  // every local series too, so the dashboards' `cluster` variable and filters work here as well
  // (none of the scraped exporters emits a `cluster` label of its own, so honor_labels changes nothing).
  const cluster = clusterTargetLabels(input.cluster);
  const dcgm =
    input.dcgmShape === 'pod'
      ? { job_name: ScrapeJob.Dcgm, honor_labels: true, static_configs: [{ targets: [input.targets.dcgmExporter], labels: cluster }] }
      : { job_name: ScrapeJob.Dcgm, honor_labels: false, static_configs: [{ targets: [input.targets.dcgmExporter], labels: { ...dcgmTargetLabels(input.cluster), ...cluster } }] };
  const config = {
    global: {
      scrape_interval: interval,
      // Never longer than the interval (Prometheus rejects that); loopback answers fast anyway.
      scrape_timeout: interval,
      evaluation_interval: interval,
      // Attached when the data leaves this Prometheus (federation, remote write), not to local queries.
      external_labels: { cluster: input.cluster },
    },
    scrape_configs: [
      // KSM's series carry the objects' namespace/pod: keep them (kube-prometheus-stack does too).
      { job_name: ScrapeJob.KubeStateMetrics, honor_labels: true, static_configs: [{ targets: [input.targets.kubeStateMetrics], labels: cluster }] },
      ...(input.targets.agent ? [{ job_name: ScrapeJob.Agent, static_configs: [{ targets: [input.targets.agent], labels: cluster }] }] : []),
      dcgm,
    ],
  };
  return `# Generated by gpufed (cli/src/dev/monitoring.ts) for cluster ${input.cluster}.\n${stringify(config)}`;
}

/**
 * The processes of one provider cluster's monitoring, on four loopback ports (in this order: KSM,
 * KSM telemetry, the exporter, Prometheus). All start at stage 2, after the cluster's API server;
 * Prometheus keeps scraping targets that come up later.
 */
export function monitoringComponents(input: MonitoringInput, ports: number[]): MonitoringPlan {
  const needed = portsNeededForMonitoring();
  if (ports.length < needed) throw new Error(`monitoringComponents: ${ports.length} ports given, ${needed} needed`);
  const [ksmPort, ksmTelemetryPort, exporterPort, promPort] = ports as [number, number, number, number];
  const { cluster, dir } = input;
  const logs = join(dir, 'logs');
  const promDir = prometheusDir(dir, cluster);
  const targets: MonitoringTargets = {
    kubeStateMetrics: `127.0.0.1:${ksmPort}`,
    dcgmExporter: `127.0.0.1:${exporterPort}`,
    ...(input.agentTarget ? { agent: input.agentTarget } : {}),
  };
  const configPath = join(promDir, 'prometheus.yml');
  const prometheusUrl = `http://127.0.0.1:${promPort}`;
  const components: ComponentPlan[] = [
    {
      name: `${cluster}/kube-state-metrics`,
      cluster,
      binary: join(input.binDir, 'kube-state-metrics'),
      stage: 2,
      log: join(logs, `${cluster}-kube-state-metrics.log`),
      health: { kind: 'http', url: `http://127.0.0.1:${ksmPort}/healthz` },
      args: [
        `--kubeconfig=${input.kubeconfig}`,
        '--host=127.0.0.1',
        `--port=${ksmPort}`,
        '--telemetry-host=127.0.0.1',
        `--telemetry-port=${ksmTelemetryPort}`,
        '--resources=pods,nodes,namespaces',
        `--metric-labels-allowlist=${allowlist({ pods: KSM_POD_LABELS, nodes: KSM_NODE_LABELS, namespaces: KSM_NAMESPACE_LABELS })}`,
        `--metric-annotations-allowlist=${allowlist({ pods: KSM_POD_ANNOTATIONS })}`,
      ],
    },
    {
      name: `${cluster}/dcgm-exporter`,
      cluster,
      binary: input.node,
      stage: 2,
      log: join(logs, `${cluster}-dcgm-exporter.log`),
      health: { kind: 'http', url: `http://${targets.dcgmExporter}/healthz` },
      args: [input.exporterEntry, `--kubeconfig=${input.kubeconfig}`, `--listen=${targets.dcgmExporter}`, `--hostname-label=${input.hostnameLabel ?? 'Hostname'}`],
    },
    {
      name: `${cluster}/prometheus`,
      cluster,
      binary: input.prometheus ?? 'prometheus',
      stage: 2,
      log: join(logs, `${cluster}-prometheus.log`),
      health: { kind: 'http', url: `${prometheusUrl}/-/ready` },
      args: [
        `--config.file=${configPath}`,
        `--storage.tsdb.path=${join(promDir, 'data')}`,
        `--storage.tsdb.retention.time=${input.retention ?? MONITORING_DEFAULTS.retention}`,
        `--web.listen-address=127.0.0.1:${promPort}`,
        '--web.enable-lifecycle',
      ],
    },
  ];
  const text = prometheusConfig({ cluster, targets, dcgmShape: input.dcgmShape, ...(input.scrapeInterval ? { scrapeInterval: input.scrapeInterval } : {}) });
  return { components, prometheusConfig: { path: configPath, text }, prometheusUrl, targets };
}
