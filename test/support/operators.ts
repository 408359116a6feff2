// The gpufed operators as the money tests run them: provider agents as real processes (so they can
// be frozen with SIGSTOP or killed with SIGKILL at exact points), on the scoped credentials
// onboarding gives them, metering from their clusters' Prometheus and proposing settlements on the
// test chain; and an in-process registry holding the co-signing key, which verifies usage records,
// co-signs settlements and follows them on chain.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toHex } from '@cosmjs/encoding';
import { pino } from 'pino';
import { CHAIN_ID, CHAIN_MIN_GAS_PRICE, CHAIN_PREFIX } from '../../cli/src/dev/chain.js';
import { repoRoot } from '../../cli/src/dev/paths.js';
import { devProviderHotKey, devProviderPayout, devRegistryKey } from '../../cli/src/dev/wallets.js';
import { Registry, type RegistryOptions } from '../../operator/src/registry/registry.js';
import type { Chain } from '../../operator/src/settlement/chain.js';
import { Metrics } from '../../operator/src/telemetry/metrics.js';
import { agentRegistryConfig, eventually, kubeConfig, kubeconfigOf, testDir, testFederation } from './federation.js';

export const log = () => pino({ level: process.env.GPUFED_TEST_LOG ?? 'silent' });

/** The chain an operator is pointed at: the test federation's dev chain unless told otherwise. */
export interface ChainTarget {
  rpcUrl: string;
  chainId: string;
  prefix: string;
  gasPrice: string;
}

export function devChainTarget(): ChainTarget {
  const c = testFederation().plan.chain;
  if (!c) throw new Error('The test federation has no chain');
  return { rpcUrl: c.endpoints.rpcUrl, chainId: CHAIN_ID, prefix: CHAIN_PREFIX, gasPrice: CHAIN_MIN_GAS_PRICE };
}

export interface AgentProcess {
  proc: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  log: string;
}

let runs = 0;

/** Writes the provider's scoped registry kubeconfig (onboarding it if need be) and its hot key file; returns their paths. */
export async function agentFiles(provider: string, prices: { model: string; pricePerGpuHour: string }[], prefix = 'cosmos'): Promise<{ kubeconfig: string; keyFile: string }> {
  const kc = await agentRegistryConfig(provider, prices, prefix);
  const kubeconfig = join(testDir(), `agent-${provider}-registry.kubeconfig`);
  writeFileSync(kubeconfig, kc.exportConfig(), { mode: 0o600 });
  const keyFile = join(testDir(), `agent-${provider}.key`);
  writeFileSync(keyFile, toHex(devProviderHotKey(provider)), { mode: 0o600 });
  return { kubeconfig, keyFile };
}

export interface AgentArgs {
  provider: string;
  /** Runs the agent of this provider's cluster (default: the provider's own name). */
  cluster?: string;
  kubeconfig: string;
  keyFile: string;
  chain: ChainTarget;
  periodMs?: string;
  fencingTimeout?: string;
  /** The provider-lost timeout of the registry it works with (settlingRegistry's: 120 s). */
  providerLostTimeout?: string;
  heartbeat?: string;
  timeoutBlocks?: number;
  jobsNamespace?: string;
  env?: Record<string, string>;
  extra?: string[];
}

/** One agent process, its output in a log file of its own. */
export function startAgent(a: AgentArgs): AgentProcess {
  const clusterName = a.cluster ?? a.provider;
  const cluster = testFederation().plan.clusters.find((c) => c.name === clusterName);
  const args = [
    'agent',
    `--provider=${a.provider}`,
    `--kubeconfig=${kubeconfigOf(clusterName)}`,
    `--registry-kubeconfig=${a.kubeconfig}`,
    '--simulate',
    `--heartbeat=${a.heartbeat ?? '1s'}`,
    `--fencing-timeout=${a.fencingTimeout ?? '60s'}`,
    `--registry-provider-lost-timeout=${a.providerLostTimeout ?? '120s'}`,
    '--metrics-addr=127.0.0.1:0',
    `--prometheus-url=${cluster?.prometheusUrl ?? ''}`,
    `--chain-rpc=${a.chain.rpcUrl}`,
    `--chain-id=${a.chain.chainId}`,
    `--address-prefix=${a.chain.prefix}`,
    `--gas-price=${a.chain.gasPrice}`,
    `--wallet-key-file=${a.keyFile}`,
    `--payout=${devProviderPayout(a.provider, a.chain.prefix)}`,
    `--settlement-period=${a.periodMs ?? '4s'}`,
    '--scrape-interval=2s',
    // Long enough (~30 s) that a restarted agent normally finds its settlement still live.
    `--settlement-timeout-blocks=${a.timeoutBlocks ?? 60}`,
    // A killed proposer's Lease must run out before its replacement proposes: keep that short here.
    '--lease-duration=4s',
    '--renew-deadline=3s',
    '--retry-period=500ms',
    ...(a.jobsNamespace ? [`--jobs-namespace=${a.jobsNamespace}`] : []),
    ...(a.extra ?? []),
  ];
  return spawnOperator(`agent-${a.provider}`, args, a.env);
}

/** A provider's fence guard (`gpufed-operator fence-guard`), a process of its own like the chart's Deployment. */
export function startGuard(g: { provider: string; kubeconfig: string; fencingTimeout: string; providerLostTimeout: string }): AgentProcess {
  const args = [
    'fence-guard',
    `--provider=${g.provider}`,
    `--kubeconfig=${kubeconfigOf(g.provider)}`,
    `--registry-kubeconfig=${g.kubeconfig}`,
    `--fencing-timeout=${g.fencingTimeout}`,
    `--registry-provider-lost-timeout=${g.providerLostTimeout}`,
    '--metrics-addr=127.0.0.1:0',
  ];
  return spawnOperator(`guard-${g.provider}`, args);
}

/**
 * A registry replica as a process of its own (`gpufed-operator registry`), co-signing on `chain`
 * with the dev registry key, with settlingRegistry's timing. Like the chart's replicas it exits
 * when it loses the lead.
 */
export function startRegistry(r: { identity: string; chain: ChainTarget; extra?: string[] }): AgentProcess {
  const keyFile = join(testDir(), 'registry-process-cosign.key');
  writeFileSync(keyFile, toHex(devRegistryKey()), { mode: 0o600 });
  const args = [
    'registry',
    `--kubeconfig=${kubeconfigOf('registry')}`,
    `--identity=${r.identity}`,
    '--lease-duration=3s',
    '--renew-deadline=2s',
    '--retry-period=500ms',
    '--heartbeat-timeout=5s',
    '--provider-lost-timeout=120s',
    '--fencing-timeout=60s',
    '--max-clock-skew=2s',
    `--chain-rpc=${r.chain.rpcUrl}`,
    `--chain-id=${r.chain.chainId}`,
    `--address-prefix=${r.chain.prefix}`,
    `--gas-price=${r.chain.gasPrice}`,
    `--cosign-key-file=${keyFile}`,
    '--payment-cover=4s',
    '--settle-wait=60s',
    '--metrics-addr=127.0.0.1:0',
    ...(r.extra ?? []),
  ];
  return spawnOperator(`registry-${r.identity}`, args);
}

/** `gpufed-operator <args>` as a process, its output in a log file of its own (logs/<name>-<n>.log). */
function spawnOperator(name: string, args: string[], env: Record<string, string> = {}): AgentProcess {
  const logs = join(testDir(), 'logs');
  mkdirSync(logs, { recursive: true });
  const logFile = join(logs, `${name}-${runs++}.log`);
  const out = createWriteStream(logFile);
  const proc = spawn(process.execPath, [join(repoRoot(), 'dist', 'operator', 'src', 'main.js'), ...args], { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout?.pipe(out);
  proc.stderr?.pipe(out);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  return { proc, exited, log: logFile };
}

export async function stopAgent(a: AgentProcess | undefined): Promise<void> {
  if (!a || a.proc.exitCode !== null || a.proc.signalCode !== null) return;
  a.proc.kill('SIGCONT'); // a frozen one must wake to hear SIGTERM
  a.proc.kill('SIGTERM');
  await a.exited;
}

/**
 * A registry in this process, leading, with the dev registry's co-signing key on `chain`: it
 * publishes each provider's settlement account, verifies records and co-signs settlements.
 */
export async function settlingRegistry(identity: string, chain: Chain, over: Partial<RegistryOptions> = {}): Promise<Registry> {
  const registry = new Registry({
    kc: kubeConfig('registry'),
    identity,
    leaseDurationMs: 3000,
    renewDeadlineMs: 2000,
    retryPeriodMs: 500,
    heartbeatTimeoutMs: 5000,
    providerLostTimeoutMs: 120_000,
    fencingTimeoutMs: 60_000,
    clockSkewMs: 2000,
    settlement: { chain, key: devRegistryKey(), rebroadcastMs: 2000 },
    paymentCoverMs: 4000,
    settleWaitMs: 60_000,
    metrics: new Metrics({ defaultMetrics: false }),
    log: log(),
    ...over,
  });
  await registry.start();
  await eventually('the registry to lead', () => Promise.resolve(registry.isLeader ? true : undefined), 20_000);
  return registry;
}
