// What the chart tests need beyond test/support/federation.ts: Helm, kubectl with another identity,
// service-account tokens turned into kubeconfigs, and the operator as a real child process.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, existsSync, mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { binDir, repoRoot } from '../../cli/src/dev/paths.js';
import { kubeConfig, kubectl, run, testDir, type CommandResult } from './federation.js';

export const chartDir = (chart: string): string => join(repoRoot(), 'charts', chart);

/** Helm as tools/build.sh built it (GPUFED_BIN_DIR overrides), against one cluster of the federation when given. */
export function helm(args: string[], kubeconfig?: string): Promise<CommandResult> {
  const bin = join(binDir(), 'helm');
  return run(existsSync(bin) ? bin : 'helm', [...(kubeconfig ? ['--kubeconfig', kubeconfig] : []), ...args], { timeoutMs: 120_000 });
}

/** kubectl with any kubeconfig (e.g. a service account's), not a cluster's admin one. */
export function kubectlAs(kubeconfig: string, args: string[]): Promise<CommandResult> {
  const bin = join(binDir(), 'kubectl');
  return run(existsSync(bin) ? bin : 'kubectl', ['--kubeconfig', kubeconfig, ...args]);
}

/**
 * A kubeconfig for a service account of one cluster: a short-lived token from the TokenRequest API
 * (`kubectl create token`), the cluster's own server and CA, nothing of the admin's. Written under
 * `dir`; returns its path.
 */
export async function serviceAccountKubeconfig(cluster: string, namespace: string, serviceAccount: string, dir: string): Promise<string> {
  const token = await kubectl(cluster, ['create', 'token', serviceAccount, '-n', namespace, '--duration=1h']);
  if (token.code !== 0) throw new Error(`kubectl create token ${namespace}/${serviceAccount} on ${cluster}: ${token.stderr}`);
  const server = kubeConfig(cluster).getCurrentCluster();
  if (!server) throw new Error(`No current cluster in ${cluster}'s kubeconfig`);
  const user = `${namespace}-${serviceAccount}`;
  const kc = new k8s.KubeConfig();
  kc.loadFromOptions({
    clusters: [{ ...server, name: cluster }],
    users: [{ name: user, token: token.stdout.trim() }],
    contexts: [{ name: user, cluster, user, namespace }],
    currentContext: user,
  });
  const file = join(dir, `${cluster}-${user}.kubeconfig`);
  writeFileSync(file, kc.exportConfig(), { mode: 0o600 });
  return file;
}

/**
 * Container args as a chart rendered them (`--flag=value`), adapted to run outside the pod: flags
 * dropped, values replaced (each must be there: the chart has to pass it), flags added.
 */
export function adaptArgs(args: readonly string[], change: { drop?: string[]; replace?: Record<string, string>; add?: string[] }): string[] {
  const flag = (a: string) => a.split('=')[0] ?? a;
  for (const f of Object.keys(change.replace ?? {})) if (!args.some((a) => flag(a) === f)) throw new Error(`The chart does not pass ${f}: ${args.join(' ')}`);
  const kept = args.filter((a) => !(change.drop ?? []).includes(flag(a)));
  return [...kept.map((a) => (change.replace?.[flag(a)] !== undefined ? `${flag(a)}=${change.replace[flag(a)]}` : a)), ...(change.add ?? [])];
}

/** The operator (dist/operator/src/main.js) as a child process, its output kept for assertions and in the test logs. */
export class OperatorProcess {
  private output = '';
  private readonly proc: ChildProcess;
  readonly exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  readonly logFile: string;

  constructor(name: string, args: string[]) {
    const logs = join(testDir(), 'logs');
    mkdirSync(logs, { recursive: true });
    this.logFile = join(logs, `${name}.log`);
    const file = createWriteStream(this.logFile);
    this.proc = spawn(process.execPath, [join(repoRoot(), 'dist', 'operator', 'src', 'main.js'), ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
    for (const stream of [this.proc.stdout, this.proc.stderr]) {
      stream?.on('data', (chunk: Buffer) => {
        this.output += chunk.toString();
        file.write(chunk);
      });
    }
    this.exited = new Promise((resolve) => this.proc.once('exit', (code, signal) => {
      file.end();
      resolve({ code, signal });
    }));
  }

  get log(): string {
    return this.output;
  }

  get running(): boolean {
    return this.proc.exitCode === null && this.proc.signalCode === null;
  }

  /** The pino lines (JSON) it wrote so far. */
  lines(): Record<string, unknown>[] {
    const complete = this.output.split('\n').slice(0, -1);
    return complete.filter((l) => l.startsWith('{')).map((l) => JSON.parse(l) as Record<string, unknown>);
  }

  /** SIGTERM, as the kubelet stops a pod; resolves with how it exited. */
  async stop(): Promise<{ code: number | null; signal: NodeJS.Signals | null }> {
    if (this.running) this.proc.kill('SIGTERM');
    return this.exited;
  }
}
