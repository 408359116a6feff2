// Two registry processes and a burst of 200 renter submissions, with the leader killed (-9) in the
// middle: every job is placed exactly once, none is lost, none lands on two providers, and at no
// moment does the registry promise a node more GPUs than it has.
import * as k8s from '@kubernetes/client-node';
import { spawn, type ChildProcess } from 'node:child_process';
import { openSync } from 'node:fs';
import { join } from 'node:path';
import { pino } from 'pino';
import { repoRoot } from '../../cli/src/dev/paths.js';
import { Agent } from '../../operator/src/agent/agent.js';
import { AssignmentResource, ComputeJobResource, GpuNodeResource, type Assignment, type ComputeJob, type GpuNode } from '../../operator/src/api/index.js';
import { wantedResource } from '../../operator/src/scheduling/fit.js';
import { assignmentEnded } from '../../operator/src/api/assignments.js';
import { providerOfNamespace } from '../../operator/src/api/index.js';
import { JobLabel } from '../../operator/src/api/labels.js';
import { Metrics } from '../../operator/src/telemetry/metrics.js';
import { validComputeJob } from '../fixtures/computejobs.js';
import { agentRegistryConfig, eventually, kubeConfig, kubeconfigOf, kubectl, testDir, withoutWork } from '../support/federation.js';
import { devTenant, type TestTenant } from '../support/tenants.js';

const JOBS = 200;
const MODELS = ['NVIDIA-GeForce-RTX-4090', 'NVIDIA-GeForce-RTX-3090', 'NVIDIA-RTX-A6000'];
const jobRef = { group: ComputeJobResource.group, version: ComputeJobResource.version, plural: ComputeJobResource.plural };
const all = (ref: { group: string; version: string; plural: string }) => ({ group: ref.group, version: ref.version, plural: ref.plural });
const custom = () => kubeConfig('registry').makeApiClient(k8s.CustomObjectsApi);

let tenant: TestTenant;
const agents: Agent[] = [];
const replicas = new Map<string, ChildProcess>();

function startReplica(identity: string): void {
  const out = openSync(join(testDir(), 'logs', `test-${identity}.log`), 'a');
  const child = spawn(
    process.execPath,
    [
      join(repoRoot(), 'dist/operator/src/main.js'),
      'registry',
      `--kubeconfig=${kubeconfigOf('registry')}`,
      `--identity=${identity}`,
      '--lease-duration=3s',
      '--renew-deadline=2s',
      '--retry-period=500ms',
      '--heartbeat-timeout=5s',
      '--provider-lost-timeout=60s',
      '--fencing-timeout=40s', // the agents' (dev: 12 s); with the default 2 min, 60 s would be refused
      '--metrics-addr=127.0.0.1:0',
    ],
    { stdio: ['ignore', out, out] },
  );
  replicas.set(identity, child);
}

async function leaseHolder(): Promise<string | undefined> {
  const lease = await kubeConfig('registry').makeApiClient(k8s.CoordinationV1Api).readNamespacedLease({ name: 'gpufed-registry', namespace: 'gpufed-system' });
  return lease.spec?.holderIdentity || undefined;
}

/** Units the registry has promised per node (Assignments not over yet), against what the node has. */
function overCommitted(assignments: readonly Assignment[], nodes: readonly GpuNode[]): string[] {
  const promised = new Map<string, number>();
  for (const a of assignments) {
    if (assignmentEnded(a)) continue;
    const node = a.status?.nodeName ?? a.spec.nodeName ?? '';
    const key = `${providerOfNamespace(a.metadata.namespace) ?? ''}/${node}/${wantedResource(a.spec.resources.gpu)}`;
    promised.set(key, (promised.get(key) ?? 0) + a.spec.resources.gpu.count);
  }
  const out: string[] = [];
  for (const n of nodes) {
    const key = `${providerOfNamespace(n.metadata.namespace) ?? ''}/${n.spec.nodeName}/${n.spec.resourceName}`;
    const p = promised.get(key) ?? 0;
    if (p > (n.status?.allocatable ?? 0)) out.push(`${key}: ${p} promised, ${n.status?.allocatable ?? 0} allocatable`);
  }
  return out;
}

beforeAll(async () => {
  tenant = await devTenant();
  const prices = {
    alice: [
      { model: MODELS[0] as string, pricePerGpuHour: '1200000ustake' },
      { model: MODELS[1] as string, pricePerGpuHour: '800000ustake' },
    ],
    bob: [{ model: MODELS[2] as string, pricePerGpuHour: '1400000ustake' }],
  };
  for (const [provider, list] of Object.entries(prices)) {
    await withoutWork(provider);
    const agent = new Agent({ provider, cluster: kubeConfig(provider), registry: await agentRegistryConfig(provider, list), heartbeatMs: 1000, rejectGraceMs: 2000, simulate: true, version: 'test', metrics: new Metrics({ defaultMetrics: false }), log: pino({ level: process.env.GPUFED_TEST_LOG ?? 'silent' }) });
    agents.push(agent);
    await agent.start();
  }
  startReplica('replica-a');
  startReplica('replica-b');
  await eventually('a leader', leaseHolder, 30_000);
});

afterAll(async () => {
  for (const c of replicas.values()) c.kill('SIGKILL');
  for (const a of agents) await a.stop();
  await kubectl('registry', ['delete', 'computejobs', '--all', '-n', tenant.namespace, '--wait=false']);
  // The finalizers need a registry to go; a later test file starts its own, but leave nothing stuck.
  const left = await kubectl('registry', ['get', 'computejobs', '-n', tenant.namespace, '-o', 'name']);
  for (const name of left.stdout.split('\n').filter(Boolean)) await kubectl('registry', ['patch', name, '-n', tenant.namespace, '--type=merge', '-p', '{"metadata":{"finalizers":null}}']);
  await kubectl('registry', ['patch', 'lease', 'gpufed-registry', '-n', 'gpufed-system', '--type=merge', '-p', '{"spec":{"holderIdentity":""}}']);
});

it(`places each of ${JOBS} jobs exactly once and never over-commits a node, with the leader killed mid-burst`, async () => {
  const api = tenant.kc.makeApiClient(k8s.CustomObjectsApi);
  const run = Date.now().toString(36);
  const names = Array.from({ length: JOBS }, (_, i) => `burst-${run}-${i}`);
  const leader = (await leaseHolder()) as string;
  let killedAt = -1;
  let submitted = 0;
  const violations: string[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const as = (await custom().listClusterCustomObject(all(AssignmentResource))) as { items: Assignment[] };
      const ns = (await custom().listClusterCustomObject(all(GpuNodeResource))) as { items: GpuNode[] };
      violations.push(...overCommitted(as.items, ns.items));
      await new Promise((r) => setTimeout(r, 200));
    }
  })();

  // 20 renters' requests in flight at a time; the leader dies after half of them.
  const queue = [...names];
  await Promise.all(
    Array.from({ length: 20 }, async () => {
      for (let name = queue.shift(); name !== undefined; name = queue.shift()) {
        const j = validComputeJob(name, tenant.namespace);
        j.metadata.annotations = { 'sim.gpufed.io/duration': '1s' };
        j.spec = { ...j.spec, resources: { gpu: { count: 1, models: MODELS }, cpu: '1', memory: '1Gi' } };
        delete j.spec.placement;
        await api.createNamespacedCustomObject({ ...jobRef, namespace: tenant.namespace, body: j });
        if (++submitted === JOBS / 2) {
          killedAt = submitted;
          replicas.get(leader)?.kill('SIGKILL');
        }
      }
    }),
  );
  expect(killedAt).toBe(JOBS / 2);
  const successor = await eventually('the standby to take over', async () => {
    const h = await leaseHolder();
    return h !== undefined && h !== leader ? h : undefined;
  }, 30_000);
  expect(successor).not.toBe(leader);

  const done = await eventually(
    `all ${JOBS} jobs Succeeded`,
    async () => {
      const list = (await api.listNamespacedCustomObject({ ...jobRef, namespace: tenant.namespace })) as { items: ComputeJob[] };
      const ours = list.items.filter((j) => names.includes(j.metadata.name ?? ''));
      return ours.length === JOBS && ours.every((j) => j.status?.phase === 'Succeeded') ? ours : undefined;
    },
    300_000,
    1000,
  );
  sampling = false;
  await sampler;

  const assignments = ((await custom().listClusterCustomObject(all(AssignmentResource))) as { items: Assignment[] }).items;
  const byJob = new Map<string, Assignment[]>();
  for (const a of assignments) {
    const uid = a.metadata?.labels?.[JobLabel.JobUid] ?? '';
    byJob.set(uid, [...(byJob.get(uid) ?? []), a]);
  }
  for (const j of done) {
    const mine = byJob.get(j.metadata.uid ?? '') ?? [];
    // Exactly one Assignment per job: placed once, on one provider, never rejected for lack of GPUs.
    expect({ job: j.metadata.name, assignments: mine.map((a) => `${a.metadata?.namespace}/${a.spec.epoch}/${a.status?.phase}`) }).toEqual({ job: j.metadata.name, assignments: [`${mine[0]?.metadata?.namespace}/1/Succeeded`] });
    expect(j.status?.placement?.epoch).toBe(1);
  }
  expect(violations).toEqual([]);
});
