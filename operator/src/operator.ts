// The gpufed operator process. `agent` runs in a provider's cluster; `registry` next to the
// registry's API server. Both serve /metrics, /healthz and /readyz.
import { Command, Option } from 'commander';
import { createServer } from 'node:http';
import { hostname } from 'node:os';
import { readFileSync } from 'node:fs';
import { Agent } from './agent/agent.js';
import type { BillingOptions } from './agent/billing.js';
import { Prometheus } from './metering/prometheus.js';
import { Chain } from './settlement/chain.js';
import type { SettlerHooks } from './settlement/settler.js';
import { keyAddress, parsePrivateKeyHex } from './settlement/keys.js';
import { loadKubeConfig } from './kube/client.js';
import { Registry } from './registry/registry.js';
import { makeLogger, type Logger } from './telemetry/log.js';
import { DEFAULT_MAX_CLOCK_SKEW_MS, unsafeFencing, type FencingTimes } from './fencing/bound.js';
import { FenceGuard } from './fencing/guard.js';
import { providerNamespace } from './api/index.js';
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

/** How the operator reaches the chain: any Cosmos SDK chain, told by these flags (and checked against the node). */
interface ChainFlags {
  chainRpc?: string;
  chainId?: string;
  addressPrefix: string;
  gasPrice: string;
  feeDenom?: string;
}

interface BillingFlags extends ChainFlags {
  prometheusUrl?: string;
  walletKeyFile?: string;
  payout?: string;
  settlementPeriod: number;
  scrapeInterval: number;
  settlementTimeoutBlocks: string;
  coverPeriods: string;
  leaseDuration: number;
  renewDeadline: number;
  retryPeriod: number;
}

/**
 * Fault injection for the exactly-once tests: GPUFED_FAULT_KILL_AT=after-propose|after-broadcast
 * makes the agent kill itself with SIGKILL at that point of its first settlement, like a power cut.
 */
function faultHooks(): SettlerHooks | undefined {
  const at = process.env.GPUFED_FAULT_KILL_AT;
  if (!at) return undefined;
  const die = () => {
    process.stderr.write(`GPUFED_FAULT_KILL_AT=${at}: killing the agent with SIGKILL\n`);
    process.kill(process.pid, 'SIGKILL');
    return new Promise<void>(() => undefined);
  };
  const points: Record<string, keyof SettlerHooks> = { 'after-propose': 'afterPropose', 'after-broadcast': 'afterBroadcast' };
  const point = points[at];
  if (!point) throw new Error(`GPUFED_FAULT_KILL_AT must be one of ${Object.keys(points).join(', ')}`);
  return { [point]: die };
}

/** Metering and settlement from the agent's flags: all three of Prometheus, chain and key, or none. */
async function billingFrom(o: BillingFlags): Promise<BillingOptions | undefined> {
  const given = [o.prometheusUrl, o.chainRpc, o.walletKeyFile].filter((x) => x !== undefined).length;
  if (given === 0) return undefined;
  if (given < 3) throw new Error('Metering and settlement need all of --prometheus-url, --chain-rpc and --wallet-key-file');
  const key = parsePrivateKeyHex(readFileSync(o.walletKeyFile ?? '', 'utf8'), o.walletKeyFile ?? '');
  const chain = await connectChain(o);
  const hotKey = keyAddress(key, chain.prefix);
  return {
    prometheus: new Prometheus(o.prometheusUrl ?? ''),
    chain,
    key,
    hotKey,
    payee: o.payout ?? hotKey,
    periodMs: o.settlementPeriod,
    scrapeIntervalMs: o.scrapeInterval,
    timeoutBlocks: Number(o.settlementTimeoutBlocks),
    coverPeriods: Number(o.coverPeriods),
    lease: { durationMs: o.leaseDuration, renewDeadlineMs: o.renewDeadline, retryPeriodMs: o.retryPeriod },
    ...(faultHooks() ? { hooks: faultHooks() } : {}),
    // GPUFED_FAULT_NO_PROPOSE=1: meter, never propose (the settlement fault tests propose by hand).
    ...(process.env.GPUFED_FAULT_NO_PROPOSE === '1' ? { proposes: false } : {}),
  };
}

function connectChain(o: ChainFlags): Promise<Chain> {
  return Chain.connect({ rpcUrl: o.chainRpc ?? '', gasPrice: o.gasPrice, prefix: o.addressPrefix, ...(o.chainId ? { chainId: o.chainId } : {}), ...(o.feeDenom ? { feeDenom: o.feeDenom } : {}) });
}

/** The chain flags both modes take. */
function withChainOptions(cmd: Command, gasPriceHelp: string): Command {
  return cmd
    .option('--chain-rpc <url>', "the chain's CometBFT RPC endpoint, e.g. http://127.0.0.1:26657")
    .option('--chain-id <id>', 'the chain to settle on; the node must be on it (default: whatever chain the node is on)')
    .option('--address-prefix <prefix>', "the chain's bech32 account prefix", 'cosmos')
    .option('--gas-price <price>', gasPriceHelp, 'auto')
    .option('--fee-denom <denom>', "with --gas-price auto, the fee denom to use when the node takes several");
}

/** Exits with the reason when the fencing timing could let a job run on two providers at once. */
function refuseUnsafeFencing(log: Logger, t: FencingTimes): void {
  const why = unsafeFencing(t);
  if (why === undefined) return;
  log.fatal({ ...t }, `Refusing to start: ${why}`);
  process.stderr.write(`gpufed-operator: refusing to start: ${why}\n`);
  process.exit(2);
}

const program = new Command('gpufed-operator').description('The gpufed operator: agent mode in a provider cluster, registry mode next to the registry').version(version);

withChainOptions(program
  .command('agent'), "the fee price for settlement transactions, e.g. 0.001ustake, or auto: the node's minimum gas price")
  .description("Register this cluster's GPU nodes with the registry and heartbeat (outbound only)")
  .requiredOption('--provider <name>', 'the Provider this cluster is')
  .option('--kubeconfig <file>', 'the provider cluster (default: $KUBECONFIG, ~/.kube/config or in-cluster)')
  .requiredOption('--registry-kubeconfig <file>', "the registry, with the agent's scoped credentials")
  .option('--namespace <ns>', "the provider's namespace on the registry (default gpufed-provider-<provider>)")
  .addOption(new Option('--heartbeat <duration>', 'heartbeat period').default(10_000, '10s').argParser(parseDuration))
  .addOption(new Option('--resync <duration>', 'full re-reconcile period').default(300_000, '5m').argParser(parseDuration))
  .addOption(new Option('--fencing-timeout <duration>', 'stop running jobs when no heartbeat got through for this long').default(120_000, '2m').argParser(parseDuration))
  .addOption(
    new Option('--registry-provider-lost-timeout <duration>', "the registry's --provider-lost-timeout: the agent refuses to start unless its fencing stops every job before the registry can place it again (docs/fencing.md)")
      .default(180_000, '3m')
      .argParser(parseDuration),
  )
  .option('--jobs-namespace <ns>', 'the local namespace job pods run in', 'gpufed-jobs')
  .option('--runtime-class <name>', 'the RuntimeClass of the NVIDIA container runtime', 'nvidia')
  .option('--simulate', "copy sim.gpufed.io/* annotations to job pods (the local federation's KWOK nodes)")
  .option('--metrics-addr <host:port>', 'where to serve /metrics, /healthz and /readyz', '127.0.0.1:9464')
  .option('--prometheus-url <url>', "the provider cluster's Prometheus, which meters job GPU time (with kube-state-metrics)")
  .option('--wallet-key-file <file>', 'the hot key (32-byte secp256k1, hex): signs records and its half of each settlement, pays their fees; hold gas only in it')
  .option('--payout <address>', 'where payments go (default the hot key address; use a cold wallet)')
  .addOption(new Option('--settlement-period <duration>', 'how often usage is metered and settled').default(300_000, '5m').argParser(parseDuration))
  .addOption(new Option('--scrape-interval <duration>', "the Prometheus scrape interval of kube-state-metrics").default(30_000, '30s').argParser(parseDuration))
  .option('--settlement-timeout-blocks <n>', 'blocks a settlement transaction may wait before it is signed anew', '50')
  .option('--cover-periods <n>', "settlement periods a payer's grant must cover before a job starts", '1')
  .addOption(new Option('--lease-duration <duration>', 'the signer Lease (one agent replica meters and signs): how long it lasts without renewal').default(15_000, '15s').argParser(parseDuration))
  .addOption(new Option('--renew-deadline <duration>', 'the signer gives up signing when it could not renew the Lease for this long').default(10_000, '10s').argParser(parseDuration))
  .addOption(new Option('--retry-period <duration>', 'how often to renew or try to acquire the signer Lease').default(2_000, '2s').argParser(parseDuration))
  .action(async (o: { provider: string; kubeconfig?: string; registryKubeconfig: string; namespace?: string; heartbeat: number; resync: number; fencingTimeout: number; registryProviderLostTimeout: number; jobsNamespace: string; runtimeClass: string; simulate?: boolean; metricsAddr: string } & BillingFlags) => {
    const log = makeLogger('agent');
    refuseUnsafeFencing(log, { fencingTimeoutMs: o.fencingTimeout, heartbeatMs: o.heartbeat, providerLostTimeoutMs: o.registryProviderLostTimeout, maxClockSkewMs: DEFAULT_MAX_CLOCK_SKEW_MS });
    const metrics = new Metrics();
    let ready = false;
    const billing = await billingFrom(o);
    const agent = new Agent({
      ...(billing ? { billing } : {}),
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

withChainOptions(program
  .command('registry'), 'the gas price (only for the fee estimate of the one-off transactions a registry never makes; settlements carry the agent\'s fee)')
  .description('Place ComputeJobs on providers and drive them to the end (run two replicas: one leads, one stands by)')
  .option('--kubeconfig <file>', 'the registry API server (default: $KUBECONFIG, ~/.kube/config or in-cluster)')
  .option('--identity <id>', 'this replica in the leader Lease (default <hostname>_<pid>)')
  .option('--lease-namespace <ns>', 'the namespace of the leader Lease', 'gpufed-system')
  .option('--lease-name <name>', 'the leader Lease', 'gpufed-registry')
  .addOption(new Option('--lease-duration <duration>', 'how long a lease lasts without renewal').default(15_000, '15s').argParser(parseDuration))
  .addOption(new Option('--renew-deadline <duration>', 'the leader gives up (and exits) when it could not renew for this long').default(10_000, '10s').argParser(parseDuration))
  .addOption(new Option('--retry-period <duration>', 'how often to renew or try to acquire the lease').default(2_000, '2s').argParser(parseDuration))
  .addOption(new Option('--heartbeat-timeout <duration>', 'no new jobs for a provider whose heartbeat is older (Ready False)').default(30_000, '30s').argParser(parseDuration))
  .addOption(
    new Option('--provider-lost-timeout <duration>', "a provider whose heartbeat is older is lost: its jobs are placed again; at least --fencing-timeout + 11s + --max-clock-skew, checked at start-up (docs/fencing.md)")
      .default(180_000, '3m')
      .argParser(parseDuration),
  )
  .addOption(new Option('--deadline-grace <duration>', "how long past a job's maxDurationSeconds to wait for its agent to stop it").default(60_000, '1m').argParser(parseDuration))
  .addOption(new Option('--retention <duration>', "keep finished jobs' Assignments and logs this long").default(86_400_000, '24h').argParser(parseDuration))
  .addOption(new Option('--resync <duration>', 'full re-reconcile period').default(300_000, '5m').argParser(parseDuration))
  .option('--metrics-addr <host:port>', 'where to serve /metrics, /healthz and /readyz', '127.0.0.1:9465')
  .option('--cosign-key-file <file>', "the registry's co-signing key (32-byte secp256k1, hex), one member of every provider's 2-of-2 settlement account; required with --chain-rpc")
  .addOption(new Option('--fencing-timeout <duration>', "the agents' --fencing-timeout: a copy whose provider the registry has not heard from for this long is paid up to its last heartbeat plus this").default(120_000, '2m').argParser(parseDuration))
  .addOption(new Option('--max-clock-skew <duration>', "how far a provider's clocks may be from the registry's and its usage records still be believed").default(5_000, '5s').argParser(parseDuration))
  .option('--settlement-max-timeout-blocks <n>', 'the most blocks ahead a proposed settlement\'s timeout height may be', '100')
  .addOption(new Option('--payment-cover <duration>', "how much of a job the payer's grant to a provider must cover before it is placed there").default(300_000, '5m').argParser(parseDuration))
  .addOption(new Option('--settle-wait <duration>', 'how long a cancelled job waits for its final payment before it is let go').default(600_000, '10m').argParser(parseDuration))
  .action(async (o: { kubeconfig?: string; identity?: string; leaseNamespace: string; leaseName: string; leaseDuration: number; renewDeadline: number; retryPeriod: number; heartbeatTimeout: number; providerLostTimeout: number; deadlineGrace: number; retention: number; resync: number; metricsAddr: string; paymentCover: number; settleWait: number; cosignKeyFile?: string; fencingTimeout: number; maxClockSkew: number; settlementMaxTimeoutBlocks: string } & ChainFlags) => {
    const log = makeLogger('registry');
    refuseUnsafeFencing(log, { fencingTimeoutMs: o.fencingTimeout, providerLostTimeoutMs: o.providerLostTimeout, maxClockSkewMs: o.maxClockSkew });
    const metrics = new Metrics();
    metrics.buildInfo.set({ version, mode: 'registry' }, 1);
    let ready = false;
    if (o.chainRpc !== undefined && o.cosignKeyFile === undefined) throw new Error('--chain-rpc needs --cosign-key-file: the registry co-signs every settlement it verified');
    const chain = o.chainRpc ? await connectChain(o) : undefined;
    const cosignKey = o.cosignKeyFile ? parsePrivateKeyHex(readFileSync(o.cosignKeyFile, 'utf8'), o.cosignKeyFile) : undefined;
    const registry = new Registry({
      ...(chain && cosignKey ? { settlement: { chain, key: cosignKey, maxTimeoutBlocks: Number(o.settlementMaxTimeoutBlocks) } } : {}),
      fencingTimeoutMs: o.fencingTimeout,
      clockSkewMs: o.maxClockSkew,
      paymentCoverMs: o.paymentCover,
      settleWaitMs: o.settleWait,
      kc: loadKubeConfig(o.kubeconfig),
      identity: o.identity ?? `${hostname()}_${process.pid}`,
      lease: { name: o.leaseName, namespace: o.leaseNamespace },
      leaseDurationMs: o.leaseDuration,
      renewDeadlineMs: o.renewDeadline,
      retryPeriodMs: o.retryPeriod,
      heartbeatTimeoutMs: o.heartbeatTimeout,
      providerLostTimeoutMs: o.providerLostTimeout,
      deadlineGraceMs: o.deadlineGrace,
      retentionMs: o.retention,
      resyncMs: o.resync,
      // Like controller-runtime: a replica that may no longer lead must not write; its supervisor restarts it.
      onLostLeadership: () => process.exit(1),
      metrics,
      log,
    });
    const addr = await serve(o.metricsAddr, metrics, () => ready);
    log.info({ addr }, 'Serving metrics and health');
    await registry.start();
    ready = true; // ready = caches filled; a standby is ready too (it takes over without a cold start)
    const stop = (signal: string) => {
      log.info({ signal }, 'Stopping registry');
      void registry.stop().then(() => process.exit(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });

program
  .command('fence-guard')
  .description("Stop this cluster's job pods when the registry stops hearing from the provider, whatever the agent is doing (run it beside the agent, not in its pod)")
  .requiredOption('--provider <name>', 'the Provider this cluster is')
  .option('--kubeconfig <file>', 'the provider cluster (default: $KUBECONFIG, ~/.kube/config or in-cluster)')
  .requiredOption('--registry-kubeconfig <file>', "the registry, with the agent's scoped credentials (only its heartbeat Lease is read)")
  .option('--namespace <ns>', "the provider's namespace on the registry (default gpufed-provider-<provider>)")
  .option('--jobs-namespace <ns>', 'the local namespace job pods run in', 'gpufed-jobs')
  .addOption(new Option('--fencing-timeout <duration>', "the agent's --fencing-timeout: stop the job pods when the heartbeat Lease did not change for this long").default(120_000, '2m').argParser(parseDuration))
  .addOption(new Option('--registry-provider-lost-timeout <duration>', "the registry's --provider-lost-timeout (checked at start-up, docs/fencing.md)").default(180_000, '3m').argParser(parseDuration))
  .option('--metrics-addr <host:port>', 'where to serve /metrics, /healthz and /readyz', '127.0.0.1:9466')
  .action(async (o: { provider: string; kubeconfig?: string; registryKubeconfig: string; namespace?: string; jobsNamespace: string; fencingTimeout: number; registryProviderLostTimeout: number; metricsAddr: string }) => {
    const log = makeLogger('fence-guard');
    refuseUnsafeFencing(log, { fencingTimeoutMs: o.fencingTimeout, providerLostTimeoutMs: o.registryProviderLostTimeout, maxClockSkewMs: DEFAULT_MAX_CLOCK_SKEW_MS });
    const metrics = new Metrics();
    metrics.buildInfo.set({ version, mode: 'fence-guard' }, 1);
    const guard = new FenceGuard({
      namespace: o.namespace ?? providerNamespace(o.provider),
      registry: loadKubeConfig(o.registryKubeconfig),
      cluster: loadKubeConfig(o.kubeconfig),
      jobsNamespace: o.jobsNamespace,
      fencingTimeoutMs: o.fencingTimeout,
      log,
    });
    const addr = await serve(o.metricsAddr, metrics, () => true);
    guard.start();
    log.info({ addr, provider: o.provider, fencingTimeoutMs: o.fencingTimeout }, 'Started fence guard');
    const stop = (signal: string) => {
      log.info({ signal }, 'Stopping fence guard');
      void guard.stop().then(() => process.exit(0));
    };
    process.once('SIGTERM', () => stop('SIGTERM'));
    process.once('SIGINT', () => stop('SIGINT'));
  });

await program.parseAsync(process.argv);
