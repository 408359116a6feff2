// The renter's CLI on the real federation, as renter carol with her own kubeconfig: `gpufed quote`
// reads the live market and gives the registry's answer with costs and reasons; `gpufed jobs`
// submits, waits (with exit statuses scripts rely on), prints the relayed log, lists and cancels.
// A registry and both providers' agents run in-process, like registry.test.ts, with KWOK finishing
// the simulated pods.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { stringify } from 'yaml';
import { Agent } from '../../operator/src/agent/agent.js';
import type { ComputeJob, ComputeJobList } from '../../operator/src/api/index.js';
import { Registry } from '../../operator/src/registry/registry.js';
import { Metrics } from '../../operator/src/telemetry/metrics.js';
import { repoRoot } from '../../cli/src/dev/paths.js';
import type { Quote } from '../../cli/src/commands/quote.js';
import { agentRegistryConfig, eventually, kubeConfig, kubectl, run, withoutWork } from '../support/federation.js';
import { devTenant, type TestTenant } from '../support/tenants.js';

const A6000 = 'NVIDIA-RTX-A6000';
const RTX3090 = 'NVIDIA-GeForce-RTX-3090';
const RTX4090 = 'NVIDIA-GeForce-RTX-4090';
const log = () => pino({ level: process.env.GPUFED_TEST_LOG ?? 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'gpufed-cli-jobs-'));

let tenant: TestTenant;
let registry: Registry | undefined;
const agents: Agent[] = [];

/** The CLI as carol runs it: her kubeconfig in $KUBECONFIG, her namespace from its context. */
const gpufed = (args: string[], timeoutMs = 120_000) => run(process.execPath, [join(repoRoot(), 'dist/cli/src/gpufed.js'), ...args], { env: { ...process.env, KUBECONFIG: tenant.kubeconfig, NO_COLOR: '1' }, timeoutMs });

let seq = 0;
/** A job manifest file as carol writes it; KWOK ends its pod after `duration` with `exitCode`. */
function manifest(o: { models?: string[]; max?: string; duration?: string; exitCode?: number; log?: string } = {}): { name: string; file: string } {
  const name = `cli-${Date.now().toString(36)}-${seq++}`;
  const annotations: Record<string, string> = { 'sim.gpufed.io/duration': o.duration ?? '2s' };
  if (o.exitCode !== undefined) annotations['sim.gpufed.io/exit-code'] = String(o.exitCode);
  if (o.log !== undefined) annotations['sim.gpufed.io/log'] = o.log;
  const job: ComputeJob = {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'ComputeJob',
    metadata: { name, annotations },
    spec: { image: 'docker.io/library/python:3.13', command: ['python', 'train.py'], resources: { gpu: { count: 1, models: o.models ?? [A6000] }, cpu: '1', memory: '1Gi' }, maxPricePerGpuHour: o.max ?? '1500000ustake', maxDurationSeconds: 7200 },
  };
  const file = join(dir, `${name}.yaml`);
  writeFileSync(file, stringify(job));
  return { name, file };
}

beforeAll(async () => {
  tenant = await devTenant();
  const scoped = new Map<string, k8s.KubeConfig>([
    ['alice', await agentRegistryConfig('alice', [{ model: RTX4090, pricePerGpuHour: '1200000ustake' }, { model: RTX3090, pricePerGpuHour: '1450000ustake' }])],
    ['bob', await agentRegistryConfig('bob', [{ model: A6000, pricePerGpuHour: '1400000ustake' }])],
  ]);
  await Promise.all([withoutWork('alice'), withoutWork('bob')]);
  for (const [provider, registryKc] of scoped) {
    const agent = new Agent({ provider, cluster: kubeConfig(provider), registry: registryKc, heartbeatMs: 500, logEveryMs: 500, simulate: true, version: 'test', metrics: new Metrics({ defaultMetrics: false }), log: log() });
    agents.push(agent);
    await agent.start();
  }
  registry = new Registry({ kc: kubeConfig('registry'), identity: 'cli-jobs-test', leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500, heartbeatTimeoutMs: 5000, metrics: new Metrics({ defaultMetrics: false }), log: log() });
  await registry.start();
  await eventually('the registry to lead', () => Promise.resolve(registry?.isLeader ? true : undefined), 20_000);
});

afterAll(async () => {
  // While the registry still runs: its finalizer lets each job go once its Assignment is withdrawn.
  await kubectl('registry', ['delete', 'computejobs', '--all', '-n', tenant.namespace, '--wait=true', '--timeout=60s']);
  await registry?.stop();
  for (const a of agents) await a.stop();
  await kubectl('registry', ['patch', 'lease', 'gpufed-registry', '-n', 'gpufed-system', '--type=merge', '-p', '{"spec":{"holderIdentity":""}}']);
  rmSync(dir, { recursive: true, force: true });
});

describe('gpufed quote', () => {
  it("lists every provider with the registry's choice, the cost for the maximum duration, or the reason it does not fit", async () => {
    // alice's 3090 is above this max, bob's A6000 is not: 1400000ustake × 1 GPU × 2 h.
    const { file } = manifest({ models: [A6000, RTX3090], max: '1420000ustake' });
    const q = await eventually('both providers heartbeating and Ready', async () => {
      const r = await gpufed(['quote', file, '-o', 'json']);
      const quote = JSON.parse(r.stdout) as Quote;
      return quote.chosen === 'bob' && quote.providers.some((p) => p.provider === 'alice' && !p.fits && p.code === 'PriceAboveMax') ? quote : undefined;
    }, 30_000);
    expect(q.providers.find((p) => p.provider === 'bob')).toEqual({ provider: 'bob', region: 'home', fits: true, chosen: true, nodeName: expect.any(String) as string, model: A6000, pricePerGpuHour: '1400000ustake', maxCost: '2800000ustake' });
    expect(q.providers.find((p) => p.provider === 'alice')).toEqual({ provider: 'alice', region: 'home', fits: false, code: 'PriceAboveMax', reason: 'price 1450000ustake above max 1420000ustake' });
    // carol may not read Assignments: the quote says what that leaves out.
    expect(q.reservationsCounted).toBe(false);
    expect(q.notes[0]).toMatch(/may not read Assignments/);

    const table = await gpufed(['quote', file, '--kubeconfig', tenant.kubeconfig]);
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(/^bob\s+home\s+NVIDIA-RTX-A6000\s+\S+\s+1400000ustake\s+2800000ustake\s+chosen$/m);
    expect(table.stdout).toMatch(/^alice\s+home\s+-\s+-\s+-\s+-\s+price 1450000ustake above max 1420000ustake$/m);
    expect(table.stdout).toMatch(/The registry would place it on bob .* at most 2800000ustake for 2h/);
  });

  it('refuses a manifest that is no ComputeJob, naming the field', async () => {
    const file = join(dir, 'provider.yaml');
    writeFileSync(file, 'apiVersion: gpufed.io/v1alpha1\nkind: Provider\n');
    const r = await gpufed(['quote', file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/provider\.yaml: kind: expected ComputeJob, got "Provider"/);
  });
});

describe('gpufed jobs', () => {
  it('submits a job, waits until it succeeded, prints its relayed log, lists it and cancels it', async () => {
    const { name, file } = manifest({ log: 'hello from carol\nstep 1 of 1\n' });
    const submitted = await gpufed(['jobs', 'submit', file]);
    expect(submitted.code).toBe(0);
    expect(submitted.stdout).toMatch(new RegExp(`^Submitted ComputeJob ${name}\\. Next:\\n {2}gpufed jobs wait ${name} `));

    const waited = await gpufed(['jobs', 'wait', name, '--timeout', '90s']);
    expect(waited).toMatchObject({ code: 0, stdout: `ComputeJob ${name} Succeeded (exit code 0)\n` });
    expect(waited.stderr).toMatch(/Running: Running on bob/);

    // -f ends once the last tail is relayed; the plain read then prints the same.
    const followed = await gpufed(['jobs', 'logs', '-f', name]);
    expect(followed).toMatchObject({ code: 0, stdout: 'hello from carol\nstep 1 of 1\n' });
    expect((await gpufed(['jobs', 'logs', name])).stdout).toBe('hello from carol\nstep 1 of 1\n');

    const listed = await gpufed(['jobs', 'list', '-o', 'json']);
    const mine = (JSON.parse(listed.stdout) as ComputeJobList).items.find((j) => j.metadata.name === name);
    expect(mine?.status).toMatchObject({ phase: 'Succeeded', exitCode: 0, placement: { provider: 'bob', model: A6000, pricePerGpuHour: '1400000ustake' } });
    expect((await gpufed(['jobs', 'list'])).stdout).toMatch(new RegExp(`^${name}\\s+Succeeded\\s+bob\\s+${A6000}\\s+1\\s+1400000ustake\\s+\\S+\\s+The job completed$`, 'm'));
    expect((await gpufed(['jobs', 'get', name])).stdout).toMatch(/^Placement:\s+bob \(home\), node \S+, NVIDIA-RTX-A6000 at 1400000ustake per GPU-hour, epoch 1$/m);

    const cancelled = await gpufed(['jobs', 'cancel', name, '--wait', '--timeout', '60s']);
    expect(cancelled).toMatchObject({ code: 0, stdout: expect.stringContaining(`ComputeJob ${name} is gone.`) as string });
    const gone = await gpufed(['jobs', 'get', name]);
    expect(gone.code).toBe(2);
    expect(gone.stderr).toBe(`error: no ComputeJob ${name} in namespace ${tenant.namespace}; list them with: gpufed jobs list -n ${tenant.namespace}\n`);
  });

  it('exits 1 with the reason when the job fails', async () => {
    const { name, file } = manifest({ duration: '1s', exitCode: 3 });
    const r = await gpufed(['jobs', 'submit', file, '--wait', '--timeout', '90s', '-o', 'json']);
    expect(JSON.parse(r.stdout)).toMatchObject({ metadata: { name, namespace: tenant.namespace } });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(new RegExp(`error: ComputeJob ${name} Failed: Exited with code 3`));
    expect((await gpufed(['jobs', 'wait', name, '--for', 'Finished'])).code).toBe(0);
  });

  it('cancels a running job: it is gone once its provider stopped the pod', async () => {
    const { name, file } = manifest({ duration: '300s' });
    expect((await gpufed(['jobs', 'submit', file])).code).toBe(0);
    await eventually(`${name} Running`, async () => {
      const r = await gpufed(['jobs', 'get', name, '-o', 'json']);
      return (JSON.parse(r.stdout) as ComputeJob).status?.phase === 'Running' ? true : undefined;
    }, 60_000);
    const timedOut = await gpufed(['jobs', 'wait', name, '--timeout', '2s']);
    expect(timedOut.code).toBe(124);
    expect(timedOut.stderr).toMatch(/timed out after 2s waiting for ComputeJob carol\/\S+ to be Succeeded/);
    const cancelled = await gpufed(['jobs', 'cancel', name, '--wait', '--timeout', '60s']);
    expect(cancelled.code).toBe(0);
    expect(cancelled.stdout).toMatch(/is gone/);
  });
});
