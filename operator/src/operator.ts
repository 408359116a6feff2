// The gpufed operator process. `agent` runs in a provider's cluster; `registry` (next) next to the
// registry's API server. Both serve /metrics, /healthz and /readyz.
import { Command, Option } from 'commander';
import { createServer } from 'node:http';
import { Agent } from './agent/agent.js';
import { loadKubeConfig } from './kube/client.js';
import { makeLogger } from './telemetry/log.js';
import { Metrics } from './telemetry/metrics.js';
import { packageVersion, parseDuration } from './version.js';

const version = packageVersion();


function serve(addr: string, metrics: Metrics, ready: () => boolean): Promise<string> {
  const at = addr.lastIndexOf(':');
  const [host, port] = at >= 0 ? [addr.slice(0, at), addr.slice(at + 1)] : ['127.0.0.1', addr];
  const server = createServer((req, res) => {
    if (req.url === '/metrics') {
      void metrics.registry.metrics().then((body) => res.writeHead(200, { 'content-type': metrics.registry.contentType }).end(body));
    } else if (req.url === '/healthz' || req.url === '/livez') {
      res.writeHead(200).end('ok');
    } else if (req.url === '/readyz') {
      res.writeHead(ready() ? 200 : 503).end(ready() ? 'ok' : 'not ready');
    } else {
      res.writeHead(404).end();
    }
  });
  return new Promise((resolve) => server.listen(Number(port), host, () => resolve(`${host}:${(server.address() as { port: number }).port}`)));
}

const program = new Command('gpufed-operator').description('The gpufed operator: agent mode in a provider cluster, registry mode next to the registry').version(version);

program
  .command('agent')
  .description("Register this cluster's GPU nodes with the registry and heartbeat (outbound only)")
  .requiredOption('--provider <name>', 'the Provider this cluster is')
  .option('--kubeconfig <file>', 'the provider cluster (default: $KUBECONFIG, ~/.kube/config or in-cluster)')
  .requiredOption('--registry-kubeconfig <file>', "the registry, with the agent's scoped credentials")
  .option('--namespace <ns>', "the provider's namespace on the registry (default gpufed-provider-<provider>)")
  .addOption(new Option('--heartbeat <duration>', 'heartbeat period').default(10_000, '10s').argParser(parseDuration))
  .addOption(new Option('--resync <duration>', 'full re-reconcile period').default(300_000, '5m').argParser(parseDuration))
  .addOption(new Option('--fencing-timeout <duration>', 'stop running jobs when no heartbeat got through for this long').default(120_000, '2m').argParser(parseDuration))
  .option('--jobs-namespace <ns>', 'the local namespace job pods run in', 'gpufed-jobs')
  .option('--runtime-class <name>', 'the RuntimeClass of the NVIDIA container runtime', 'nvidia')
  .option('--simulate', "copy sim.gpufed.io/* annotations to job pods (the local federation's KWOK nodes)")
  .option('--metrics-addr <host:port>', 'where to serve /metrics, /healthz and /readyz', '127.0.0.1:9464')
  .action(async (o: { provider: string; kubeconfig?: string; registryKubeconfig: string; namespace?: string; heartbeat: number; resync: number; fencingTimeout: number; jobsNamespace: string; runtimeClass: string; simulate?: boolean; metricsAddr: string }) => {
    const log = makeLogger('agent');
    const metrics = new Metrics();
    let ready = false;
    const agent = new Agent({
      provider: o.provider,
      ...(o.namespace ? { namespace: o.namespace } : {}),
      cluster: loadKubeConfig(o.kubeconfig),
      registry: loadKubeConfig(o.registryKubeconfig),
      heartbeatMs: o.heartbeat,
      resyncMs: o.resync,
      fencingTimeoutMs: o.fencingTimeout,
      jobsNamespace: o.jobsNamespace,
      runtimeClassName: o.runtimeClass,
      simulate: o.simulate === true,
      version,
      metrics,
      log,
    });
    const addr = await serve(o.metricsAddr, metrics, () => ready);
    log.info({ addr }, 'Serving metrics and health');
    await agent.start();
    ready = true;
    const stop = (signal: string) => {
      log.info({ signal }, 'Stopping agent');
      void agent.stop().then(() => process.exit(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });

await program.parseAsync(process.argv);
