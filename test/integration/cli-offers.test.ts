// `gpufed offers` and `gpufed provider status` on the real federation. alice's agent (in-process,
// with the scoped kubeconfig `gpufed registry add-provider` gives a home) publishes her GpuNodes and
// heartbeats, and a registry judges her Ready; bob is onboarded with no agent running, so he is not
// Ready. Renter carol, with her own kubeconfig, sees alice's models with the free counts alice's
// cluster has and the prices of her Provider, bob's GPUs as not free; alice, with her cluster's admin
// kubeconfig and her agent's registry kubeconfig, sees her nodes, her job pods and what the registry
// thinks. Reclaiming a node shows in both.
import { mkdtempSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { delimiter, dirname, join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { parse } from 'yaml';
import { Agent } from '../../operator/src/agent/agent.js';
import { Registry } from '../../operator/src/registry/registry.js';
import { HEARTBEAT_RECORD_MS } from '../../operator/src/registry/providers/decide.js';
import { Metrics } from '../../operator/src/telemetry/metrics.js';
import { binDir, repoRoot } from '../../cli/src/dev/paths.js';
import type { Offer, Offers } from '../../cli/src/commands/offers.js';
import type { ProviderStatusReport } from '../../cli/src/commands/provider.js';
import { agentRegistryConfig, eventually, kubeConfig, kubeconfigOf, kubectl, run, withoutWork } from '../support/federation.js';
import { devTenant, type TestTenant } from '../support/tenants.js';

const RTX4090 = 'NVIDIA-GeForce-RTX-4090';
const RTX3090 = 'NVIDIA-GeForce-RTX-3090';
const A6000 = 'NVIDIA-RTX-A6000';
const PRICES: Record<string, string> = { [RTX4090]: '1200000ustake', [RTX3090]: '800000ustake' };
const log = () => pino({ level: process.env.GPUFED_TEST_LOG ?? 'silent' });
const dir = mkdtempSync(join(tmpdir(), 'gpufed-cli-offers-'));
const agentKubeconfig = join(dir, 'alice-agent.kubeconfig');

let tenant: TestTenant;
let agent: Agent | undefined;
let registry: Registry | undefined;

const gpufed = (args: string[]) => run(process.execPath, [join(repoRoot(), 'dist/cli/src/gpufed.js'), ...args], { env: { ...process.env, NO_COLOR: '1' } });
/** As renter carol, with her kubeconfig. */
const offers = (args: string[] = []) => gpufed(['offers', '--kubeconfig', tenant.kubeconfig, ...args]);
/** As alice, with her cluster's admin kubeconfig. */
const providerStatus = (args: string[] = []) => gpufed(['provider', 'status', '--kubeconfig', kubeconfigOf('alice'), ...args]);

interface Pod {
  metadata: { namespace: string };
  spec: { nodeName?: string; containers: { resources?: { limits?: Record<string, string>; requests?: Record<string, string> } }[] };
  status: { phase?: string };
}
interface Node {
  metadata: { name: string; labels?: Record<string, string> };
  status: { allocatable?: Record<string, string> };
}

/**
 * alice's whole GPUs per model as her cluster has them, counted here from the Nodes and Pods
 * kubectl returns (not by the code under test): allocatable, and allocatable minus what unfinished
 * pods request.
 */
async function aliceGpus(): Promise<Map<string, { total: number; free: number; nodes: string[] }>> {
  const nodes = (JSON.parse((await kubectl('alice', ['get', 'nodes', '-o', 'json'])).stdout) as { items: Node[] }).items;
  const pods = (JSON.parse((await kubectl('alice', ['get', 'pods', '-A', '-o', 'json'])).stdout) as { items: Pod[] }).items;
  const byModel = new Map<string, { total: number; free: number; nodes: string[] }>();
  for (const n of nodes) {
    const total = Number(n.status.allocatable?.['nvidia.com/gpu'] ?? 0);
    if (total === 0) continue;
    const used = pods
      .filter((p) => p.spec.nodeName === n.metadata.name && p.status.phase !== 'Succeeded' && p.status.phase !== 'Failed')
      .flatMap((p) => p.spec.containers)
      .reduce((s, c) => s + Number(c.resources?.limits?.['nvidia.com/gpu'] ?? c.resources?.requests?.['nvidia.com/gpu'] ?? 0), 0);
    const model = n.metadata.labels?.['nvidia.com/gpu.product'] ?? 'unknown';
    const row = byModel.get(model) ?? { total: 0, free: 0, nodes: [] };
    byModel.set(model, { total: row.total + total, free: row.free + Math.max(0, total - used), nodes: [...row.nodes, n.metadata.name].sort() });
  }
  return byModel;
}

const offerOf = (m: Offers, provider: string, model: string): Offer | undefined => m.offers.find((o) => o.provider === provider && o.model === model);

/** The market once alice is Ready with her 4090 free `free` (the agent and the registry caught up). */
async function marketWhen(what: string, ok: (m: Offers) => boolean): Promise<Offers> {
  return eventually(what, async () => {
    const r = await offers(['-o', 'json']);
    if (r.code !== 0) throw new Error(r.stderr);
    const m = JSON.parse(r.stdout) as Offers;
    return ok(m) ? m : undefined;
  }, 60_000, 500);
}

beforeAll(async () => {
  tenant = await devTenant();
  const aliceRegistry: k8s.KubeConfig = await agentRegistryConfig('alice', Object.entries(PRICES).map(([model, pricePerGpuHour]) => ({ model, pricePerGpuHour })));
  // bob is onboarded but runs no agent here.
  await agentRegistryConfig('bob', [{ model: A6000, pricePerGpuHour: '1400000ustake' }]);
  // An agent of bob's in the previous test file may have stopped seconds ago; its heartbeat Lease
  // would count as just seen when this file's registry starts. Remove it: bob never heartbeated.
  const gone = await kubectl('registry', ['delete', 'lease', 'gpufed-agent', '-n', 'gpufed-provider-bob', '--ignore-not-found']);
  if (gone.code !== 0) throw new Error(`Could not remove bob's heartbeat Lease: ${gone.stderr}`);
  writeFileSync(agentKubeconfig, aliceRegistry.exportConfig(), { mode: 0o600 });
  await withoutWork('alice');
  await kubectl('alice', ['annotate', 'node', 'alice-desktop', 'gpufed.io/reclaim-deadline-']);
  agent = new Agent({ provider: 'alice', cluster: kubeConfig('alice'), registry: aliceRegistry, heartbeatMs: 500, logEveryMs: 500, simulate: true, version: 'test', metrics: new Metrics({ defaultMetrics: false }), log: log() });
  await agent.start();
  registry = new Registry({ kc: kubeConfig('registry'), identity: 'cli-offers-test', leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500, heartbeatTimeoutMs: 5000, metrics: new Metrics({ defaultMetrics: false }), log: log() });
  await registry.start();
  await eventually('the registry to lead', () => Promise.resolve(registry?.isLeader ? true : undefined), 20_000);
});

afterAll(async () => {
  await kubectl('alice', ['annotate', 'node', 'alice-desktop', 'gpufed.io/reclaim-deadline-']);
  await registry?.stop();
  await agent?.stop();
  await kubectl('registry', ['patch', 'lease', 'gpufed-registry', '-n', 'gpufed-system', '--type=merge', '-p', '{"spec":{"holderIdentity":""}}']);
  rmSync(dir, { recursive: true, force: true });
});

describe('gpufed offers', () => {
  it("lists alice's models with the free GPUs her cluster has and her Provider's prices; bob, not Ready, with none free", async () => {
    const cluster = await aliceGpus();
    expect([...cluster.keys()].sort()).toEqual([RTX3090, RTX4090]);
    const m = await marketWhen('alice Ready with her GPUs published', (x) => [RTX4090, RTX3090].every((model) => offerOf(x, 'alice', model)?.ready === true && offerOf(x, 'alice', model)?.total === cluster.get(model)?.total));
    for (const model of [RTX4090, RTX3090]) {
      const c = cluster.get(model);
      expect(offerOf(m, 'alice', model)).toEqual({ model, provider: 'alice', region: 'home', pricePerGpuHour: PRICES[model], total: c?.total, free: c?.free, nodes: c?.nodes.length, sharing: [], ready: true });
      // Only alice runs an agent here, so every free GPU of her models in the federation is hers.
      expect(m.totals.find((t) => t.model === model)).toMatchObject({ free: c?.free, cheapestFree: PRICES[model] });
    }
    const bob = offerOf(m, 'bob', A6000);
    expect(bob).toMatchObject({ provider: 'bob', pricePerGpuHour: '1400000ustake', free: 0, ready: false });
    expect(['NeverHeartbeated', 'HeartbeatStale', 'NotReady']).toContain(bob?.notReady?.code);
    // By model, then price.
    const keys = m.offers.map((o) => o.model);
    expect(keys).toEqual([...keys].sort());
    // carol may not read Assignments, and is told what that leaves out.
    expect(m.reservationsCounted).toBe(false);

    const table = await offers();
    expect(table.code).toBe(0);
    expect(table.stdout).toMatch(new RegExp(`^${RTX4090}\\s+alice\\s+home\\s+1200000ustake\\s+${cluster.get(RTX4090)?.free}\\s+${cluster.get(RTX4090)?.total}\\s+-\\s+yes$`, 'm'));
    expect(table.stdout).toMatch(/^NVIDIA-RTX-A6000\s+bob\s+home\s+1400000ustake\s+0\s+\d+\s+-\s+no: /m);

    const one = await offers(['--model', 'nvidia-geforce-rtx-3090', '-o', 'yaml']);
    expect(new Set((parse(one.stdout) as Offers).offers.map((o) => o.model))).toEqual(new Set([RTX3090]));
  });

  it('runs as `kubectl gpufed`, the kubectl plugin, installed the way npm links a package bin', async () => {
    // npm links bin entries as symlinks to the file; kubectl finds plugins as kubectl-<name> on PATH.
    const bin = mkdtempSync(join(tmpdir(), 'gpufed-plugin-'));
    try {
      symlinkSync(join(repoRoot(), 'dist/cli/src/gpufed.js'), join(bin, 'kubectl-gpufed'));
      const env = { ...process.env, NO_COLOR: '1', PATH: [bin, dirname(process.execPath), process.env.PATH ?? ''].join(delimiter) };
      const kubectlBin = join(binDir(), 'kubectl');
      const plugins = await run(kubectlBin, ['plugin', 'list'], { env });
      expect(plugins.stdout).toContain(join(bin, 'kubectl-gpufed'));
      const help = await run(kubectlBin, ['gpufed', 'offers', '--help'], { env });
      expect(help.code).toBe(0);
      expect(help.stdout).toMatch(/^Usage: kubectl gpufed offers /m);
      const viaKubectl = await run(kubectlBin, ['gpufed', 'offers', '--kubeconfig', tenant.kubeconfig, '-o', 'json'], { env });
      expect(viaKubectl.code).toBe(0);
      const direct = await offers(['-o', 'json']);
      const models = (o: Offers) => o.offers.map((x) => `${x.provider} ${x.model} ${x.pricePerGpuHour}`).sort();
      expect(models(JSON.parse(viaKubectl.stdout) as Offers)).toEqual(models(JSON.parse(direct.stdout) as Offers));
      const bad = await run(kubectlBin, ['gpufed', 'offers', '-o', 'xml'], { env });
      expect(bad.code).toBe(2);
    } finally {
      rmSync(bin, { recursive: true, force: true });
    }
  });

  it('answers a usage error with exit status 2', async () => {
    const r = await offers(['-o', 'xml']);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/-o xml: expected one of table, json, yaml/);
  });
});

describe('gpufed provider status', () => {
  it("lists alice's GPU nodes as her cluster has them, her job pods, and the registry's view with the agent's kubeconfig", async () => {
    const cluster = await aliceGpus();
    const local = await providerStatus(['-o', 'json']);
    expect(local.code).toBe(0);
    const r = JSON.parse(local.stdout) as ProviderStatusReport;
    expect(r.nodes.map((n) => n.name)).toEqual([...cluster.values()].flatMap((c) => c.nodes).sort());
    for (const [model, c] of cluster) {
      const nodes = r.nodes.filter((n) => n.model === model);
      expect([model, nodes.reduce((s, n) => s + n.allocatable, 0), nodes.reduce((s, n) => s + n.free, 0)]).toEqual([model, c.total, c.free]);
    }
    expect(r.nodes.every((n) => n.takesJobs && !n.reclaimed && n.registered === undefined)).toBe(true);
    // Whatever job pods alice runs right now (another test file's job may still be there), as her cluster lists them.
    const pods = await kubeConfig('alice').makeApiClient(k8s.CoreV1Api).listNamespacedPod({ namespace: 'gpufed-jobs' });
    expect(r.jobsNamespace).toBe('gpufed-jobs');
    expect(r.jobs.map((j) => j.name).sort()).toEqual(pods.items.filter((p) => !p.metadata?.deletionTimestamp).map((p) => p.metadata?.name ?? '').sort());
    expect(r.registry).toBeUndefined();

    const withRegistry = await eventually('the registry to judge alice Ready', async () => {
      const x = JSON.parse((await providerStatus(['-o', 'json', '--registry-kubeconfig', agentKubeconfig])).stdout) as ProviderStatusReport;
      return x.registry?.ready?.status === 'True' ? x : undefined;
    }, 30_000, 500);
    expect(withRegistry.registry).toMatchObject({ provider: 'alice', region: 'home', cordoned: false, ready: { status: 'True', reason: 'HeartbeatFresh' }, agentVersion: 'test' });
    // The registry records the heartbeats it sees at most every HEARTBEAT_RECORD_MS (30 s).
    expect(withRegistry.registry?.heartbeatAgeSeconds).toBeLessThanOrEqual(HEARTBEAT_RECORD_MS / 1000 + 5);
    expect(withRegistry.registry?.capacity).toEqual(expect.arrayContaining([expect.objectContaining({ model: RTX4090, total: cluster.get(RTX4090)?.total })]));
    expect(withRegistry.nodes.every((n) => n.registered === true)).toBe(true);

    const table = await providerStatus(['--registry-kubeconfig', agentKubeconfig]);
    expect(table.stdout).toMatch(/^alice-desktop\s+NVIDIA-GeForce-RTX-4090\s+-\s+1\s+\d\s+0\s+takes jobs\s+no\s+yes$/m);
    expect(table.stdout).toMatch(/^Ready:\s+True \(HeartbeatFresh\)/m);
  });

  it('shows a reclaimed node in the status and takes its GPUs out of the offers until it is released', async () => {
    const reclaim = await gpufed(['provider', 'reclaim', 'alice-desktop', '--grace', '0', '--kubeconfig', kubeconfigOf('alice')]);
    expect(reclaim.code).toBe(0);
    const r = JSON.parse((await providerStatus(['-o', 'json'])).stdout) as ProviderStatusReport;
    expect(r.nodes.find((n) => n.name === 'alice-desktop')).toMatchObject({ reclaimed: true, takesJobs: false, state: 'NodeReclaimed', reclaimDeadline: expect.stringMatching(/Z$/) as string });
    expect(r.nodes.filter((n) => n.name !== 'alice-desktop').every((n) => n.takesJobs)).toBe(true);
    const total = (await aliceGpus()).get(RTX4090)?.total;
    await marketWhen("alice's 4090 out of the market", (m) => offerOf(m, 'alice', RTX4090)?.free === 0 && offerOf(m, 'alice', RTX4090)?.total === total && offerOf(m, 'alice', RTX4090)?.ready === true);

    const release = await gpufed(['provider', 'release', 'alice-desktop', '--kubeconfig', kubeconfigOf('alice')]);
    expect(release.code).toBe(0);
    const free = (await aliceGpus()).get(RTX4090)?.free;
    expect(free).toBeGreaterThan(0);
    await marketWhen("alice's 4090 back on the market", (m) => offerOf(m, 'alice', RTX4090)?.free === free);
  });

  it('prints the cluster part and exits 3 when the registry refuses, and asks for --provider when the kubeconfig does not say', async () => {
    // alice's agent may read only her own Provider.
    const refused = await providerStatus(['-o', 'json', '--registry-kubeconfig', agentKubeconfig, '--provider', 'bob']);
    expect(refused.code).toBe(3);
    const r = JSON.parse(refused.stdout) as ProviderStatusReport;
    expect(r.nodes.length).toBeGreaterThan(0);
    expect(r.registry?.error).toMatch(/Reading Provider bob on the registry: .*forbidden/);
    expect(refused.stderr).toMatch(/^error: Reading Provider bob/m);

    const noName = await providerStatus(['--registry-kubeconfig', tenant.kubeconfig]);
    expect(noName.code).toBe(2);
    expect(noName.stderr).toMatch(/--provider <name>: required when the registry kubeconfig's context namespace \(carol\) is not gpufed-provider-<name>/);
  });
});
