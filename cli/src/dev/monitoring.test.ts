import { parse } from 'yaml';
import { dcgmTargetLabels, monitoringComponents, portsNeededForMonitoring, prometheusConfig, ScrapeJob, type MonitoringInput, type PrometheusConfigInput } from './monitoring.js';

const input = (o: Partial<MonitoringInput> = {}): MonitoringInput => ({
  cluster: 'alice',
  kubeconfig: '/tmp/fed/provider-alice.kubeconfig',
  dir: '/tmp/fed',
  binDir: '/cache/bin',
  node: '/usr/bin/node',
  exporterEntry: '/repo/dist/test/support/dcgm-exporter.js',
  agentTarget: '127.0.0.1:21000',
  dcgmShape: 'pod',
  ...o,
});
const ports = Array.from({ length: portsNeededForMonitoring() }, (_, i) => 30000 + i);
const arg = (args: string[], flag: string) => args.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);

interface ScrapeConfig {
  job_name: string;
  honor_labels?: boolean;
  static_configs: { targets: string[]; labels?: Record<string, string> }[];
}
interface Config {
  global: { scrape_interval: string; scrape_timeout: string; external_labels: Record<string, string> };
  scrape_configs: ScrapeConfig[];
}
const config = (o: Partial<PrometheusConfigInput> = {}): Config =>
  parse(prometheusConfig({ cluster: 'bob', targets: { kubeStateMetrics: '127.0.0.1:1', dcgmExporter: '127.0.0.1:2', agent: '127.0.0.1:3' }, dcgmShape: 'pod', ...o })) as Config;
const job = (c: Config, name: string) => c.scrape_configs.find((s) => s.job_name === name);

describe('monitoringComponents', () => {
  const plan = monitoringComponents(input(), ports);
  const component = (suffix: string) => plan.components.find((c) => c.name === `alice/${suffix}`)!;

  it('plans KSM, the DCGM exporter and Prometheus for the cluster, after its API server', () => {
    expect(plan.components.map((c) => [c.name, c.cluster, c.stage])).toEqual([
      ['alice/kube-state-metrics', 'alice', 2],
      ['alice/dcgm-exporter', 'alice', 2],
      ['alice/prometheus', 'alice', 2],
    ]);
  });

  it('gives every endpoint its own port from those handed in', () => {
    const ksm = component('kube-state-metrics');
    const used = [arg(ksm.args, '--port'), arg(ksm.args, '--telemetry-port'), ...plan.components.map((c) => new URL(c.health.url).port)];
    expect(new Set(used.slice(1)).size).toBe(4);
    expect(used.map(Number).sort()).toEqual([30000, 30000, 30001, 30002, 30003]);
    expect(() => monitoringComponents(input(), ports.slice(1))).toThrow(/3 ports given, 4 needed/);
  });

  it('runs the real kube-state-metrics on loopback, with the labels gpufed joins on', () => {
    const ksm = component('kube-state-metrics');
    expect(ksm.binary).toBe('/cache/bin/kube-state-metrics');
    expect(arg(ksm.args, '--kubeconfig')).toBe('/tmp/fed/provider-alice.kubeconfig');
    expect(arg(ksm.args, '--host')).toBe('127.0.0.1');
    expect(arg(ksm.args, '--telemetry-host')).toBe('127.0.0.1');
    expect(arg(ksm.args, '--resources')?.split(',')).toEqual(expect.arrayContaining(['pods', 'nodes', 'namespaces']));
    const allow = arg(ksm.args, '--metric-labels-allowlist') ?? '';
    expect(allow).toMatch(/^pods=\[[^\]]*gpufed\.io\/job-uid[^\]]*\],nodes=\[[^\]]*nvidia\.com\/gpu\.product[^\]]*\],namespaces=\[gpufed\.io\/jobs\]$/);
    expect(allow).toContain('gpufed.io/assignment,');
    expect(arg(ksm.args, '--metric-annotations-allowlist')).toBe('pods=[gpufed.io/assignment-name]');
    expect(ksm.health).toEqual({ kind: 'http', url: 'http://127.0.0.1:30000/healthz' });
  });

  it('runs the fake exporter under Node against the cluster', () => {
    const e = component('dcgm-exporter');
    expect(e.binary).toBe('/usr/bin/node');
    expect(e.args).toEqual([
      '/repo/dist/test/support/dcgm-exporter.js',
      '--kubeconfig=/tmp/fed/provider-alice.kubeconfig',
      '--listen=127.0.0.1:30002',
      '--hostname-label=Hostname',
    ]);
    expect(arg(monitoringComponents(input({ hostnameLabel: 'hostname' }), ports).components[1]!.args, '--hostname-label')).toBe('hostname');
    expect(e.health.url).toBe('http://127.0.0.1:30002/healthz');
  });

  it('runs Prometheus from PATH with its own config and TSDB under the federation directory', () => {
    const p = component('prometheus');
    expect(p.binary).toBe('prometheus');
    expect(arg(p.args, '--config.file')).toBe(plan.prometheusConfig.path);
    expect(plan.prometheusConfig.path).toBe('/tmp/fed/prometheus/alice/prometheus.yml');
    expect(arg(p.args, '--storage.tsdb.path')).toBe('/tmp/fed/prometheus/alice/data');
    expect(arg(p.args, '--storage.tsdb.retention.time')).toBe('6h');
    expect(arg(p.args, '--web.listen-address')).toBe('127.0.0.1:30003');
    expect(p.health).toEqual({ kind: 'http', url: 'http://127.0.0.1:30003/-/ready' });
    expect(plan.prometheusUrl).toBe('http://127.0.0.1:30003');
    expect(p.log).toBe('/tmp/fed/logs/alice-prometheus.log');
    expect(monitoringComponents(input({ prometheus: '/usr/local/bin/prometheus', retention: '2h' }), ports).components[2]).toMatchObject({
      binary: '/usr/local/bin/prometheus',
      args: expect.arrayContaining(['--storage.tsdb.retention.time=2h']) as unknown,
    });
  });

  it('writes a config that scrapes the planned targets', () => {
    const c = parse(plan.prometheusConfig.text) as Config;
    expect(c.scrape_configs.map((s) => [s.job_name, s.static_configs[0]?.targets])).toEqual([
      ['kube-state-metrics', ['127.0.0.1:30000']],
      ['gpufed-agent', ['127.0.0.1:21000']],
      ['dcgm-exporter', ['127.0.0.1:30002']],
    ]);
    expect(c.global.external_labels).toEqual({ cluster: 'alice' });
  });

  it('scrapes no agent when there is none', () => {
    const c = parse(monitoringComponents(input({ agentTarget: undefined }), ports).prometheusConfig.text) as Config;
    expect(c.scrape_configs.map((s) => s.job_name)).toEqual(['kube-state-metrics', 'dcgm-exporter']);
  });
});

describe('prometheusConfig', () => {
  it('labels the data with the cluster and scrapes as often as asked, never timing out later than that', () => {
    const c = config({ scrapeInterval: '500ms' });
    expect(c.global).toMatchObject({ scrape_interval: '500ms', scrape_timeout: '500ms', external_labels: { cluster: 'bob' } });
    expect(config().global.scrape_interval).toBe('2s');
  });

  it('labels every target with its cluster, so local queries (the dashboards) can select on it', () => {
    for (const shape of ['pod', 'exported'] as const) {
      const c = config({ dcgmShape: shape });
      expect(c.scrape_configs.map((s) => s.job_name)).toEqual(['kube-state-metrics', 'gpufed-agent', 'dcgm-exporter']);
      for (const s of c.scrape_configs) expect(s.static_configs.map((t) => t.labels?.cluster)).toEqual(['bob']);
    }
  });

  it('keeps kube-state-metrics’ own namespace and pod labels', () => {
    expect(job(config(), ScrapeJob.KubeStateMetrics)?.honor_labels).toBe(true);
  });

  it('shape pod: keeps the workload’s pod, namespace and container on DCGM series', () => {
    const dcgm = job(config({ dcgmShape: 'pod' }), ScrapeJob.Dcgm);
    expect(dcgm).toEqual({ job_name: 'dcgm-exporter', honor_labels: true, static_configs: [{ targets: ['127.0.0.1:2'], labels: { cluster: 'bob' } }] });
  });

  it('shape exported: attaches the exporter pod’s own labels, as a stock ServiceMonitor does, so the workload’s become exported_*', () => {
    const dcgm = job(config({ dcgmShape: 'exported' }), ScrapeJob.Dcgm);
    expect(dcgm?.honor_labels).toBe(false);
    expect(dcgm?.static_configs).toEqual([{ targets: ['127.0.0.1:2'], labels: { ...dcgmTargetLabels('bob'), cluster: 'bob' } }]);
    expect(Object.keys(dcgmTargetLabels('bob')).sort()).toEqual(['container', 'endpoint', 'namespace', 'pod', 'service']);
  });

  it('names the exporter pod like a DaemonSet pod, stable per cluster', () => {
    expect(dcgmTargetLabels('bob').pod).toMatch(/^dcgm-exporter-[bcdfghjklmnpqrstvwxz2456789]{5}$/);
    expect(dcgmTargetLabels('bob')).toEqual(dcgmTargetLabels('bob'));
    expect(dcgmTargetLabels('bob').pod).not.toBe(dcgmTargetLabels('alice').pod);
  });
});
