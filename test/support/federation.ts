// What integration tests know about the shared local federation started in global-setup.ts.
import { execFile } from 'node:child_process';
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import { promisify } from 'node:util';
import * as k8s from '@kubernetes/client-node';
import { readState, type FederationState } from '../../cli/src/dev/federation.js';
import { binDir } from '../../cli/src/dev/paths.js';

/** The integration suite's federation directory (not the developer's .gpufed/dev). */
export function testDir(): string {
  const dir = process.env.GPUFED_TEST_DIR;
  if (!dir) throw new Error('GPUFED_TEST_DIR is not set; run the integration tests through jest.config.js');
  return dir;
}

export function testFederation(): FederationState {
  const state = readState(testDir());
  if (!state?.readyAt) throw new Error(`No ready test federation in ${testDir()}; global-setup.ts should have started it`);
  return state;
}

export function kubeconfigOf(cluster: string): string {
  const c = testFederation().plan.clusters.find((x) => x.name === cluster);
  if (!c) throw new Error(`No cluster ${cluster} in the test federation`);
  return c.kubeconfig;
}

export function kubeConfig(cluster: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfigOf(cluster));
  return kc;
}

export interface CommandResult {
  code: number;
  stdout: string;
  stderr: string;
}

const execFileP = promisify(execFile);

/** Runs a command, never throwing on a non-zero exit (tests assert on the code and output). */
export async function run(cmd: string, args: string[], opts: { input?: string; env?: NodeJS.ProcessEnv; timeoutMs?: number } = {}): Promise<CommandResult> {
  const child = execFileP(cmd, args, { env: opts.env ?? process.env, timeout: opts.timeoutMs ?? 60_000, maxBuffer: 16 << 20 });
  if (opts.input !== undefined) {
    child.child.stdin?.end(opts.input);
  }
  try {
    const { stdout, stderr } = await child;
    return { code: 0, stdout, stderr };
  } catch (e) {
    const err = e as { code?: number | string; stdout?: string; stderr?: string; message: string };
    return { code: typeof err.code === 'number' ? err.code : 1, stdout: err.stdout ?? '', stderr: err.stderr ?? err.message };
  }
}

/** kubectl (the one built with the control plane when present) against one cluster of the federation. */
export function kubectl(cluster: string, args: string[], input?: string): Promise<CommandResult> {
  const bin = join(binDir(), 'kubectl');
  return run(existsSync(bin) ? bin : 'kubectl', ['--kubeconfig', kubeconfigOf(cluster), ...args], input === undefined ? {} : { input });
}


/** Polls `fn` until it returns a value (not undefined) or `timeoutMs` passes. */
export async function eventually<T>(what: string, fn: () => Promise<T | undefined>, timeoutMs = 60_000, everyMs = 250): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  let last: unknown;
  while (Date.now() < deadline) {
    try {
      const v = await fn();
      if (v !== undefined) return v;
    } catch (e) {
      last = e;
    }
    await new Promise((r) => setTimeout(r, everyMs));
  }
  throw new Error(`Timed out after ${timeoutMs} ms waiting for ${what}${last ? `: ${(last as Error).message}` : ''}`);
}

/**
 * The registry as a provider's agent sees it: onboards the provider the way `gpufed registry
 * add-provider` does (idempotent) and returns the scoped kubeconfig, so tests run agents with
 * exactly the permissions a real home gets.
 */
export async function agentRegistryConfig(provider: string, prices: { model: string; pricePerGpuHour: string }[], prefix = 'cosmos'): Promise<k8s.KubeConfig> {
  const { onboardProvider } = await import('../../operator/src/onboarding/apply.js');
  const { Kube } = await import('../../operator/src/kube/client.js');
  const { devProviderHotKey, devProviderPayout } = await import('../../cli/src/dev/wallets.js');
  const { keyAddress } = await import('../../operator/src/settlement/keys.js');
  const done = await onboardProvider(new Kube(kubeConfig('registry'), 'gpufed-cli'), { name: provider, wallet: keyAddress(devProviderHotKey(provider), prefix), payout: devProviderPayout(provider, prefix), region: 'home', prices });
  const kc = new k8s.KubeConfig();
  kc.loadFromString(done.kubeconfig);
  return kc;
}

/**
 * A provider with no work on it: no Assignments in its namespace on the registry and no job pods in
 * its cluster, so a test file's agent starts from a clean slate whatever ran before it.
 */
export async function withoutWork(provider: string, jobsNamespace = 'gpufed-jobs'): Promise<void> {
  await kubectl('registry', ['delete', 'assignments', '--all', '-n', `gpufed-provider-${provider}`, '--ignore-not-found']);
  await kubectl(provider, ['delete', 'pods', '--all', '-n', jobsNamespace, '--ignore-not-found', '--wait=true', '--timeout=60s']);
}
