// The registry on the real federation, with both providers' agents running on their scoped
// credentials: a renter's ComputeJob is placed on the cheapest provider that fits and followed to
// the end; a rejection goes elsewhere; a lost provider's job moves with a new epoch and the stale
// pod is fenced; cancellation withdraws; an unverified tenant's job waits and says why.
import { randomUUID } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { Agent } from '../../operator/src/agent/agent.js';
import { AssignmentResource, ComputeJobResource, type Assignment, type ComputeJob } from '../../operator/src/api/index.js';
import { Registry } from '../../operator/src/registry/registry.js';
import { newAssignment } from '../../operator/src/registry/jobs/decide.js';
import { JobLabel } from '../../operator/src/api/labels.js';
import { Metrics } from '../../operator/src/telemetry/metrics.js';
import { validComputeJob } from '../fixtures/computejobs.js';
import { providersReady } from '../support/money.js';
import { agentRegistryConfig, eventually, kubeConfig, kubectl, withoutWork } from '../support/federation.js';
import { devTenant, type TestTenant } from '../support/tenants.js';
import { Random } from '@cosmjs/crypto';
import { fromBase64, toBase64 } from '@cosmjs/encoding';
import { signTenantProof } from '../../operator/src/tenancy/proof.js';

const A6000 = 'NVIDIA-RTX-A6000';
const RTX3090 = 'NVIDIA-GeForce-RTX-3090';
const RTX4090 = 'NVIDIA-GeForce-RTX-4090';
const log = () => pino({ level: process.env.GPUFED_TEST_LOG ?? 'silent' });
const custom = () => kubeConfig('registry').makeApiClient(k8s.CustomObjectsApi);
const jobRef = { group: ComputeJobResource.group, version: ComputeJobResource.version, plural: ComputeJobResource.plural };

let tenant: TestTenant;
const agents = new Map<string, Agent>();
const scoped = new Map<string, k8s.KubeConfig>();
let registry: Registry;
let registryMetrics: Metrics;
/** One sample of the registry's own metrics, read from the exposition text Prometheus would scrape. */
async function metric(series: string): Promise<number | undefined> {
  const line = (await registryMetrics.registry.metrics()).split('\n').find((l) => l.startsWith(`${series} `));
  return line === undefined ? undefined : Number(line.slice(series.length + 1));
}

function newAgent(provider: string): Agent {
  return new Agent({ provider, cluster: kubeConfig(provider), registry: scoped.get(provider) as k8s.KubeConfig, heartbeatMs: 500, fencingTimeoutMs: 4000, rejectGraceMs: 1500, logEveryMs: 500, simulate: true, version: 'test', metrics: new Metrics({ defaultMetrics: false }), log: log() });
}
async function startAgent(provider: string): Promise<void> {
  const a = newAgent(provider);
  agents.set(provider, a);
  await a.start();
}
async function stopAgent(provider: string): Promise<void> {
  await agents.get(provider)?.stop();
  agents.delete(provider);
}

let seq = 0;
/** A job as the renter writes it, simulated by KWOK for `duration`. */
function job(models: string[], opts: { duration?: string; exitCode?: number; retries?: number; count?: number; max?: string } = {}): ComputeJob {
  const j = validComputeJob(`job-${Date.now().toString(36)}-${seq++}`, tenant.namespace);
  j.metadata.annotations = { 'sim.gpufed.io/duration': opts.duration ?? '2s', ...(opts.exitCode !== undefined ? { 'sim.gpufed.io/exit-code': String(opts.exitCode) } : {}) };
  j.spec = { ...j.spec, resources: { gpu: { count: opts.count ?? 1, models }, cpu: '1', memory: '1Gi' }, maxPricePerGpuHour: opts.max ?? '1500000ustake', retries: opts.retries ?? 0 };
  delete j.spec.placement;
  return j;
}

/** Submits as the renter, with the tenant's own kubeconfig. */
async function submit(j: ComputeJob): Promise<string> {
  await tenant.kc.makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({ ...jobRef, namespace: tenant.namespace, body: j });
  return j.metadata.name ?? '';
}
async function getJob(name: string, namespace = tenant.namespace): Promise<ComputeJob | undefined> {
  try {
    return (await custom().getNamespacedCustomObject({ ...jobRef, namespace, name })) as ComputeJob;
  } catch {
    return undefined;
  }
}
const jobPhase = (name: string, want: string, timeoutMs = 60_000, namespace = tenant.namespace) =>
  eventually(`job ${name} ${want}`, async () => {
    const j = await getJob(name, namespace);
    return j?.status?.phase === want ? j : undefined;
  }, timeoutMs);
async function assignmentsOf(j: ComputeJob): Promise<Assignment[]> {
  const list = (await custom().listClusterCustomObject({ group: AssignmentResource.group, version: AssignmentResource.version, plural: AssignmentResource.plural, labelSelector: `${JobLabel.JobUid}=${j.metadata.uid ?? ''}` })) as { items: Assignment[] };
  return list.items.sort((a, b) => a.spec.epoch - b.spec.epoch);
}

beforeAll(async () => {
  tenant = await devTenant();
  // bob's A6000 is cheaper than alice's 3090 here, so a job that takes either goes to bob first.
  scoped.set('alice', await agentRegistryConfig('alice', [
    { model: RTX4090, pricePerGpuHour: '1200000ustake' },
    { model: RTX3090, pricePerGpuHour: '1450000ustake' },
  ]));
  scoped.set('bob', await agentRegistryConfig('bob', [{ model: A6000, pricePerGpuHour: '1400000ustake' }]));
  // Another file's job left in carol's namespace would be placed by this registry and take a GPU.
  await kubectl('registry', ['delete', 'computejobs', '--all', '-n', tenant.namespace, '--wait=false']);
  await Promise.all([withoutWork('alice'), withoutWork('bob')]);
  await Promise.all([startAgent('alice'), startAgent('bob')]);
  // An earlier test file's agent may have stopped before it reported its last pod gone: wait until
  // the agents have brought every GpuNode up to date (all GPUs free again) before the registry places.
  for (const p of ['alice', 'bob']) {
    await eventually(`${p}'s GpuNodes all free`, async () => {
      const list = (await custom().listNamespacedCustomObject({ group: 'gpufed.io', version: 'v1alpha1', plural: 'gpunodes', namespace: `gpufed-provider-${p}` })) as { items: { status?: { allocatable?: number; free?: number } }[] };
      return list.items.length > 0 && list.items.every((g) => g.status?.free === g.status?.allocatable) ? true : undefined;
    }, 30_000);
  }
  registryMetrics = new Metrics({ defaultMetrics: false });
  registry = new Registry({ kc: kubeConfig('registry'), identity: 'test', leaseDurationMs: 3000, renewDeadlineMs: 2000, retryPeriodMs: 500, heartbeatTimeoutMs: 3000, providerLostTimeoutMs: 8000, deadlineGraceMs: 2000, metrics: registryMetrics, log: log() });
  await registry.start();
  await eventually('the registry to lead', () => Promise.resolve(registry.isLeader ? true : undefined), 20_000);
  // Both heartbeating since this registry leads (its watch has seen them): the first job must not go
  // to whichever agent it happened to see first.
  await providersReady(['alice', 'bob'], Date.now());
});

afterAll(async () => {
  // While the registry still runs: its finalizer lets each job go once its Assignment is withdrawn.
  await kubectl('registry', ['delete', 'computejobs', '--all', '-n', tenant.namespace, '--wait=true', '--timeout=60s']);
  await registry?.stop();
  for (const p of [...agents.keys()]) await stopAgent(p);
  await kubectl('registry', ['patch', 'lease', 'gpufed-registry', '-n', 'gpufed-system', '--type=merge', '-p', '{"spec":{"holderIdentity":""}}']);
});

describe('registry placing jobs', () => {
  it("places a renter's job on the cheapest provider that fits and follows it to Succeeded", async () => {
    const name = await submit(job([A6000, RTX3090], { duration: '2s' }));
    const running = await jobPhase(name, 'Running', 30_000);
    expect(running.status?.placement).toMatchObject({ provider: 'bob', model: A6000, pricePerGpuHour: '1400000ustake', epoch: 1 });
    expect(running.status?.conditions?.find((c) => c.type === 'Scheduled')).toMatchObject({ status: 'True', reason: 'Placed' });
    const done = await jobPhase(name, 'Succeeded', 30_000);
    expect(done.status).toMatchObject({ exitCode: 0, attempts: 1 });
    expect(done.status?.completionTime).toBeDefined();
    const [a] = await assignmentsOf(done);
    expect(a?.metadata?.namespace).toBe('gpufed-provider-bob');
    expect(a?.spec).toMatchObject({ epoch: 1, model: A6000, payer: tenant.address, jobRef: { namespace: tenant.namespace, name } });
    const table = await kubectl('registry', ['get', 'computejobs', '-n', tenant.namespace, name]);
    expect(table.stdout).toMatch(/PHASE/);
    expect(table.stdout).toMatch(new RegExp(`${name}\\s+Succeeded\\s+bob\\s+1`));
    // What an operator's dashboard reads: this placement, its latency, the job's phase, the lead.
    expect(await metric('gpufed_placements_total{provider="bob",retry="false"}')).toBeGreaterThanOrEqual(1);
    expect(await metric('gpufed_placement_duration_seconds_count')).toBeGreaterThanOrEqual(1);
    expect(await metric('gpufed_placement_duration_seconds_sum')).toBeLessThan(30 * ((await metric('gpufed_placement_duration_seconds_count')) ?? 0));
    await eventually('the Succeeded gauge', async () => ((await metric('gpufed_computejobs{phase="Succeeded"}')) ?? 0) >= 1 || undefined, 10_000);
    expect(await metric('gpufed_leader')).toBe(1);
  });

  it('says why a job does not fit, like the kube-scheduler', async () => {
    const name = await submit(job([RTX4090], { max: '1000000ustake' }));
    const pending = await eventually('unschedulable condition', async () => {
      const j = await getJob(name);
      const c = j?.status?.conditions?.find((x) => x.type === 'Scheduled');
      return c?.status === 'False' ? c : undefined;
    });
    expect(pending.reason).toBe('NoMatchingProvider');
    expect(pending.message).toBe('0/2 providers are available: 1 no node with 1 free NVIDIA-GeForce-RTX-4090, 1 price 1200000ustake above max 1000000ustake.');
    // The same reasons, counted by stable code for the dashboard (one per provider that failed so).
    await eventually('the unschedulable gauges', async () => ((await metric('gpufed_unschedulable_jobs{reason="PriceAboveMax"}')) ?? 0) >= 1 || undefined, 10_000);
    expect(await metric('gpufed_unschedulable_jobs{reason="NoFittingNode"}')).toBeGreaterThanOrEqual(1);
    await kubectl('registry', ['delete', 'computejob', '-n', tenant.namespace, name]);
  });

  it("goes to the other provider when the first one rejects: its owner took the GPU the registry saw free", async () => {
    // alice's agent is away for a moment (her heartbeat still fresh), so the registry still sees
    // her 4090 free when her owner starts something of their own on it.
    await stopAgent('alice');
    const own = await ownerWorkload('alice', 'alice-desktop', 1);
    try {
      const name = await submit(job([RTX4090, A6000], { duration: '2s' }));
      const first = await eventually('placed on alice', async () => {
        const j = await getJob(name);
        return j?.status?.placement ? j : undefined;
      }, 20_000);
      expect(first.status?.placement).toMatchObject({ provider: 'alice', model: RTX4090, epoch: 1 });
      await startAgent('alice');
      const moved = await eventually('placed on bob after the rejection', async () => {
        const j = await getJob(name);
        return j?.status?.placement?.provider === 'bob' ? j : undefined;
      }, 30_000);
      expect(moved.status?.placement?.epoch).toBe(2);
      const done = await jobPhase(name, 'Succeeded', 30_000);
      expect(done.status?.attempts).toBe(1); // a rejection does not use up a try
      const [rejected, ran] = await assignmentsOf(done);
      expect(rejected?.metadata?.namespace).toBe('gpufed-provider-alice');
      expect(rejected?.status).toMatchObject({ phase: 'Rejected', reason: 'InsufficientGpus' });
      expect(ran?.metadata?.namespace).toBe('gpufed-provider-bob');
    } finally {
      await own.remove();
      if (!agents.has('alice')) await startAgent('alice');
    }
  });

  it("moves a lost provider's running job to another with a new epoch; the stale pod is fenced when the agent returns", async () => {
    const name = await submit(job([A6000, RTX3090], { duration: '120s', retries: 1 }));
    const onBob = await jobPhase(name, 'Running', 30_000);
    expect(onBob.status?.placement).toMatchObject({ provider: 'bob', epoch: 1 });
    const bobPod = async () => (await kubeConfig('bob').makeApiClient(k8s.CoreV1Api).listNamespacedPod({ namespace: 'gpufed-jobs' })).items.find((p) => p.metadata?.annotations?.['gpufed.io/assignment-name'] === onBob.status?.placement?.assignmentName);
    expect((await bobPod())?.status?.phase).toBe('Running');
    // bob's agent dies: nothing fences its pod, which runs on in bob's cluster.
    await stopAgent('bob');
    const notReady = await eventually('bob NotReady', async () => {
      const p = (await custom().getClusterCustomObject({ group: 'gpufed.io', version: 'v1alpha1', plural: 'providers', name: 'bob' })) as { status?: { conditions?: { type: string; status: string; reason: string }[] } };
      const ready = p.status?.conditions?.find((c) => c.type === 'Ready');
      return ready?.status === 'False' ? ready : undefined;
    }, 20_000);
    expect(notReady.reason).toBe('HeartbeatStale');
    const moved = await eventually('the job on alice with epoch 2', async () => {
      const j = await getJob(name);
      return j?.status?.placement?.provider === 'alice' && j.status.phase === 'Running' ? j : undefined;
    }, 30_000);
    expect(moved.status?.placement).toMatchObject({ provider: 'alice', model: RTX3090, epoch: 2 });
    expect(moved.status?.attempts).toBe(2);
    const [lost] = await assignmentsOf(moved);
    expect(lost?.spec).toMatchObject({ withdrawn: true, withdrawnReason: 'ProviderLost', epoch: 1 });
    expect((await bobPod())?.status?.phase).toBe('Running'); // still: nobody could stop it yet
    await startAgent('bob');
    await eventually("bob's stale pod stopped", async () => ((await bobPod()) === undefined || (await bobPod())?.metadata?.deletionTimestamp ? true : undefined), 30_000);
    const acked = await eventually('the withdrawal acknowledged', async () => {
      const [a] = await assignmentsOf(moved);
      return a?.status?.phase === 'Withdrawn' ? a : undefined;
    }, 30_000);
    expect(acked.status?.reason).toBe('ProviderLost');
    const rep = (await custom().getClusterCustomObject({ group: 'gpufed.io', version: 'v1alpha1', plural: 'providers', name: 'bob' })) as { status?: { reputation?: { lost?: number } } };
    expect(rep.status?.reputation?.lost).toBeGreaterThanOrEqual(1);
    await kubectl('registry', ['delete', 'computejob', '-n', tenant.namespace, name, '--wait=true', '--timeout=60s']);
  });

  it('retries a failed container while spec.retries allows, then fails for good', async () => {
    const name = await submit(job([A6000], { duration: '1s', exitCode: 3, retries: 1 }));
    const failed = await jobPhase(name, 'Failed', 40_000);
    expect(failed.status?.attempts).toBe(2);
    expect(failed.status?.conditions?.find((c) => c.type === 'Failed')).toMatchObject({ status: 'True', reason: 'RetriesExhausted' });
    expect(failed.status?.exitCode).toBe(3);
    expect((await assignmentsOf(failed)).map((a) => [a.spec.epoch, a.status?.phase])).toEqual([[1, 'Failed'], [2, 'Failed']]);
  });

  it('cancels a running job on delete: the Assignment is withdrawn, the pod stops, then the job goes', async () => {
    const name = await submit(job([A6000], { duration: '300s' }));
    const running = await jobPhase(name, 'Running', 30_000);
    expect(running.metadata?.finalizers).toContain('gpufed.io/assignment');
    await tenant.kc.makeApiClient(k8s.CustomObjectsApi).deleteNamespacedCustomObject({ ...jobRef, namespace: tenant.namespace, name });
    await eventually('the job gone', async () => ((await getJob(name)) === undefined ? true : undefined), 30_000);
    const [a] = await assignmentsOf(running);
    expect(a?.spec).toMatchObject({ withdrawn: true, withdrawnReason: 'Cancelled' });
    expect(a?.status?.phase).toBe('Withdrawn');
  });

  it("does not place a job whose namespace's tenant is not verified, and says why", async () => {
    const ns = `mallory-${Date.now().toString(36)}`;
    await kubectl('registry', ['create', 'namespace', ns]);
    // A proof for this namespace and address whose signature was tampered with.
    const { address, proof } = signTenantProof(Random.getBytes(32), ns);
    const sig = fromBase64(proof.signature);
    sig[10] = (sig[10] ?? 0) ^ 0xff;
    const tenantObj = { apiVersion: 'gpufed.io/v1alpha1', kind: 'Tenant', metadata: { name: ns }, spec: { namespace: ns, address, proof: { ...proof, signature: toBase64(sig) } } };
    try {
      const j = job([A6000]);
      j.metadata.namespace = ns;
      await custom().createNamespacedCustomObject({ ...jobRef, namespace: ns, body: j });
      const noTenant = await eventually('TenantNotVerified', async () => {
        const c = (await getJob(j.metadata.name ?? '', ns))?.status?.conditions?.find((x) => x.type === 'Scheduled');
        return c?.reason === 'TenantNotVerified' ? c : undefined;
      });
      expect(noTenant.message).toMatch(/No Tenant binds namespace/);
      await custom().createClusterCustomObject({ group: 'gpufed.io', version: 'v1alpha1', plural: 'tenants', body: tenantObj });
      // First "not checked yet" (the job may be seen before the tenant controller ran), then why.
      const unverified = await eventually('the proof checked', async () => {
        const c = (await getJob(j.metadata.name ?? '', ns))?.status?.conditions?.find((x) => x.type === 'Scheduled');
        return c?.message.includes('signature does not verify') ? c : undefined;
      });
      expect(unverified.reason).toBe('TenantNotVerified');
      expect(unverified.message).toMatch(/is not verified/);
      expect((await getJob(j.metadata.name ?? '', ns))?.status?.phase).toBe('Pending');
    } finally {
      await kubectl('registry', ['delete', 'namespace', ns, '--wait=false']);
      await kubectl('registry', ['delete', 'tenant', ns, '--ignore-not-found']);
    }
  });

  it("garbage-collects a finished job's Assignment and pushed log after the retention period", async () => {
    const name = await submit(job([A6000], { duration: '1s' }));
    const done = await jobPhase(name, 'Succeeded', 30_000);
    const [a] = await assignmentsOf(done);
    const ns = a?.metadata?.namespace ?? '';
    const logName = `${a?.metadata?.name ?? ''}-log`;
    const core = kubeConfig('registry').makeApiClient(k8s.CoreV1Api);
    await eventually('the pushed log', async () => (await core.readNamespacedConfigMap({ name: logName, namespace: ns })).data?.final === 'true' ? true : undefined, 20_000);
    // A second replica with no retention sweeps once by hand (it stands by: the lead is taken).
    const gc = new Registry({ kc: kubeConfig('registry'), identity: 'gc-test', retentionMs: 0, metrics: new Metrics({ defaultMetrics: false }), log: log() });
    await gc.start();
    try {
      expect(gc.isLeader).toBe(false);
      await gc.collectGarbage();
      expect(await assignmentsOf(done)).toEqual([]);
      await eventually('the log gone too', async () => {
        await gc.collectGarbage();
        return core.readNamespacedConfigMap({ name: logName, namespace: ns }).then(() => undefined, () => true);
      }, 20_000);
      // The job itself keeps its status.
      expect((await getJob(name))?.status?.phase).toBe('Succeeded');
    } finally {
      await gc.stop();
    }
  });
});

describe('registry garbage collection of orphans', () => {
  it('withdraws a running Assignment whose job no longer exists, then deletes it once its pod stopped', async () => {
    // As if the job had been deleted past its finalizer: an Assignment nobody owns, running on bob.
    const ghost = job([A6000], { duration: '300s' });
    ghost.metadata.uid = randomUUID();
    const a = newAssignment(ghost, { provider: 'bob', nodeName: '', model: A6000, pricePerGpuHour: '1400000ustake' }, 1, tenant.address);
    const ref = { group: AssignmentResource.group, version: AssignmentResource.version, plural: AssignmentResource.plural, namespace: a.namespace };
    await custom().createNamespacedCustomObject({ ...ref, body: { apiVersion: `${AssignmentResource.group}/${AssignmentResource.version}`, kind: 'Assignment', metadata: { name: a.name, labels: a.labels, annotations: a.annotations }, spec: a.spec } });
    const read = () => custom().getNamespacedCustomObject({ ...ref, name: a.name }) as Promise<Assignment>;
    await eventually('the orphan running on bob', async () => ((await read()).status?.phase === 'Running' ? true : undefined), 30_000);
    const gc = new Registry({ kc: kubeConfig('registry'), identity: 'gc-orphans', retentionMs: 0, metrics: new Metrics({ defaultMetrics: false }), log: log() });
    await gc.start();
    try {
      await gc.collectGarbage();
      expect((await read()).spec).toMatchObject({ withdrawn: true, withdrawnReason: 'Cancelled' });
      // Still there until bob's agent has stopped the pod; then the next sweep deletes it.
      await eventually('the orphan stopped and collected', async () => {
        await gc.collectGarbage();
        return read().then(() => undefined, (e: unknown) => ((e as { code?: number }).code === 404 ? true : undefined));
      }, 30_000);
      const pods = await kubeConfig('bob').makeApiClient(k8s.CoreV1Api).listPodForAllNamespaces({ labelSelector: `${JobLabel.JobUid}=${ghost.metadata.uid}` });
      expect(pods.items.filter((p) => p.status?.phase === 'Running')).toEqual([]);
    } finally {
      await gc.stop();
    }
  });
});

/** A pod of the provider's owner, outside gpufed, holding GPUs of one node until removed. */
async function ownerWorkload(provider: string, nodeName: string, gpus: number): Promise<{ remove: () => Promise<void> }> {
  const core = kubeConfig(provider).makeApiClient(k8s.CoreV1Api);
  const name = `owner-${Date.now().toString(36)}`;
  await core.createNamespacedPod({
    namespace: 'default',
    body: { metadata: { name }, spec: { nodeName, containers: [{ name: 'c', image: 'busybox', resources: { limits: { 'nvidia.com/gpu': String(gpus) } } }], tolerations: [{ operator: 'Exists' }] } },
  });
  await eventually(`owner pod ${name} running`, async () => ((await core.readNamespacedPod({ name, namespace: 'default' })).status?.phase === 'Running' ? true : undefined));
  return { remove: async () => void (await core.deleteNamespacedPod({ name, namespace: 'default', gracePeriodSeconds: 0 })) };
}
