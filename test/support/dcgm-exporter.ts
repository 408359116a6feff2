// The local federation's stand-in for NVIDIA's dcgm-exporter, one per provider cluster:
//   node dist/test/support/dcgm-exporter.js --kubeconfig FILE --listen 127.0.0.1:PORT [--hostname-label Hostname|hostname]
// It watches the cluster's GPU Nodes and the Pods bound to them and serves, on /metrics, what the
// real exporter would for each node's GPUs (dcgm-render.ts). KWOK nodes have no GPUs, kubelet or
// PodResources socket, so this is the one part of the metering path that is simulated; the
// kube-state-metrics and Prometheus beside it are real. /healthz answers 200 once both watches
// have listed.
import * as k8s from '@kubernetes/client-node';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { parseArgs } from 'node:util';
import { Watched } from '../../operator/src/kube/informer.js';
import { loadKubeConfig } from '../../operator/src/kube/client.js';
import { accumulateEnergy, gpuCapacity, gpuDevices, readGpus, renderMetrics, type EnergyState, type GpuReading, type HostnameLabel } from './dcgm-render.js';

/** How often the energy counters integrate power (the real exporter collects every 30 s; finer is harmless). */
const COLLECT_MS = 1000;

interface Options {
  kubeconfig: string;
  host: string;
  port: number;
  hostnameLabel: HostnameLabel;
}

function parseOptions(argv: string[]): Options {
  const { values } = parseArgs({
    args: argv,
    options: {
      kubeconfig: { type: 'string' },
      listen: { type: 'string', default: '127.0.0.1:9400' },
      'hostname-label': { type: 'string', default: 'Hostname' },
    },
    strict: true,
  });
  if (!values.kubeconfig) throw new Error('--kubeconfig is required');
  const m = /^(.*):(\d+)$/.exec(values.listen);
  if (!m) throw new Error(`--listen: expected host:port, got ${values.listen}`);
  const hostnameLabel = values['hostname-label'];
  if (hostnameLabel !== 'Hostname' && hostnameLabel !== 'hostname') throw new Error(`--hostname-label: expected Hostname or hostname, got ${hostnameLabel}`);
  return { kubeconfig: values.kubeconfig, host: m[1] || '127.0.0.1', port: Number(m[2]), hostnameLabel };
}

async function main(): Promise<void> {
  const opts = parseOptions(process.argv.slice(2));
  const kc = loadKubeConfig(opts.kubeconfig);
  const core = kc.makeApiClient(k8s.CoreV1Api);
  const watchError = (what: string) => (err: unknown) => console.error(`Watch of ${what} failed; restarting: ${err instanceof Error ? err.message : String(err)}`);
  const nodes = new Watched<k8s.V1Node>(kc, { path: '/api/v1/nodes', list: () => core.listNode(), onEvent: () => undefined, onError: watchError('nodes') });
  // Only pods bound to a node can hold a GPU.
  const fieldSelector = 'spec.nodeName!=';
  const pods = new Watched<k8s.V1Pod>(kc, {
    path: '/api/v1/pods',
    list: () => core.listPodForAllNamespaces({ fieldSelector }),
    fieldSelector,
    onEvent: () => undefined,
    onError: watchError('pods'),
  });

  let synced = false;
  let energy: EnergyState = new Map();
  const read = (): GpuReading[] => readGpus(gpuDevices(nodes.list().filter((n) => Object.keys(gpuCapacity(n)).length > 0), pods.list()));
  const collect = (): GpuReading[] => {
    const readings = read();
    energy = accumulateEnergy(energy, readings, Date.now());
    return readings;
  };

  const server = createServer((req: IncomingMessage, res: ServerResponse) => {
    const path = (req.url ?? '/').split('?')[0];
    if (path === '/healthz') {
      res.writeHead(synced ? 200 : 503, { 'Content-Type': 'text/plain' }).end(synced ? 'ok\n' : 'not synced\n');
    } else if (path === '/metrics') {
      const body = renderMetrics(collect(), energy, { hostnameLabel: opts.hostnameLabel });
      res.writeHead(200, { 'Content-Type': 'text/plain; version=0.0.4; charset=utf-8' }).end(body);
    } else {
      res.writeHead(404, { 'Content-Type': 'text/plain' }).end('not found\n');
    }
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(opts.port, opts.host, resolve);
  });
  console.log(`Serving fake DCGM metrics on http://${opts.host}:${opts.port}/metrics`);

  await Promise.all([nodes.start(), pods.start()]);
  synced = true;
  // Integrate power between scrapes too, so energy follows the pods' lifetimes, not the scrape times.
  const timer = setInterval(collect, COLLECT_MS);
  console.log(`Watching nodes and pods: ${read().length} GPU rows`);

  const shutdown = (signal: string) => {
    console.log(`Received ${signal}; stopping`);
    clearInterval(timer);
    server.close();
    void Promise.all([nodes.stop(), pods.stop()]).finally(() => process.exit(0));
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  console.error(err instanceof Error ? err.message : err);
  process.exit(1);
});
