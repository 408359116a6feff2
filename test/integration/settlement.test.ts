// Metering and settlement end to end on the real federation: the providers' agents run as real
// processes (so they can be killed with SIGKILL at exact points), meter from their clusters' real
// Prometheus fed by kube-state-metrics, and pay on the real wasmd chain from renters' x/authz grants;
// the registry places only what a grant covers. Every test checks money on chain: what the payout
// address received equals the sum of the UsageRecords, and nothing is ever paid twice.
import { spawn, type ChildProcess } from 'node:child_process';
import { createWriteStream, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { Secp256k1 } from '@cosmjs/crypto';
import { toHex } from '@cosmjs/encoding';
import { verifyUsageRecord } from '../../operator/src/metering/evidence.js';
import * as k8s from '@kubernetes/client-node';
import { pino } from 'pino';
import { ComputeJobResource, type ComputeJob, type UsageRecord } from '../../operator/src/api/index.js';
import { Registry } from '../../operator/src/registry/registry.js';
import type { Chain } from '../../operator/src/settlement/chain.js';
import { Metrics } from '../../operator/src/telemetry/metrics.js';
import { CHAIN_MIN_GAS_PRICE } from '../../cli/src/dev/chain.js';
import { devProviderHotKey, devProviderPayout } from '../../cli/src/dev/wallets.js';
import { startComponent, stopComponent } from '../../cli/src/dev/federation.js';
import { repoRoot } from '../../cli/src/dev/paths.js';
import { validComputeJob } from '../fixtures/computejobs.js';
import { balance, chainRpc, DENOM, fundedTenant, keyAddress, send, testChain, type FundedTenant } from '../support/chain.js';
import { agentRegistryConfig, eventually, kubeConfig, kubeconfigOf, kubectl, testDir, testFederation, withoutWork } from '../support/federation.js';
import { devTenant } from '../support/tenants.js';
import { devTenantKey } from '../../cli/src/dev/tenants.js';

const RTX4090 = 'NVIDIA-GeForce-RTX-4090';
const RTX3090 = 'NVIDIA-GeForce-RTX-3090';
const A6000 = 'NVIDIA-RTX-A6000';
// Odd prices, so almost every period's amount rounds and the carry is exercised.
const PRICES = { alice: [{ model: RTX4090, pricePerGpuHour: '1200000ustake' }, { model: RTX3090, pricePerGpuHour: '1000003ustake' }], bob: [{ model: A6000, pricePerGpuHour: '1400007ustake' }] };
const PERIOD = '4s';
const log = () => pino({ level: process.env.GPUFED_TEST_LOG ?? 'silent' });
const custom = () => kubeConfig('registry').makeApiClient(k8s.CustomObjectsApi);
const jobRef = { group: ComputeJobResource.group, version: ComputeJobResource.version, plural: ComputeJobResource.plural };

let chain: Chain;
let registry: Registry;
let carol: FundedTenant;
const agents = new Map<string, AgentProcess>();
const registryKubeconfigs = new Map<string, string>();

// ------------------------------------------------------------------------------------------------
// Agents as processes

interface AgentProcess {
  proc: ChildProcess;
  exited: Promise<{ code: number | null; signal: NodeJS.Signals | null }>;
  log: string;
}

let agentRuns = 0;
function startAgent(provider: string, env: Record<string, string> = {}): AgentProcess {
  const cluster = testFederation().plan.clusters.find((c) => c.name === provider);
  const keyFile = join(testDir(), `settlement-${provider}.key`);
  writeFileSync(keyFile, toHex(devProviderHotKey(provider)), { mode: 0o600 });
  const logs = join(testDir(), 'logs');
  mkdirSync(logs, { recursive: true });
  const logFile = join(logs, `settlement-agent-${provider}-${agentRuns++}.log`);
  const out = createWriteStream(logFile);
  const args = [
    join(repoRoot(), 'dist', 'operator', 'src', 'main.js'),
    'agent',
    `--provider=${provider}`,
    `--kubeconfig=${kubeconfigOf(provider)}`,
    `--registry-kubeconfig=${registryKubeconfigs.get(provider) ?? ''}`,
    '--simulate',
    '--heartbeat=1s',
    '--fencing-timeout=60s',
    '--metrics-addr=127.0.0.1:0',
    `--prometheus-url=${cluster?.prometheusUrl ?? ''}`,
    `--chain-rpc=${chainRpc()}`,
    `--gas-price=${CHAIN_MIN_GAS_PRICE}`,
    `--wallet-key-file=${keyFile}`,
    `--payout=${devProviderPayout(provider)}`,
    `--settlement-period=${PERIOD}`,
    '--scrape-interval=2s',
    // Long enough (~30 s) that a restarted agent normally finds its batch still live.
    '--settlement-timeout-blocks=60',
    // A killed signer's Lease must run out before its replacement signs: keep that short here.
    '--lease-duration=4s',
    '--renew-deadline=3s',
    '--retry-period=500ms',
  ];
  const proc = spawn(process.execPath, args, { env: { ...process.env, ...env }, stdio: ['ignore', 'pipe', 'pipe'] });
  proc.stdout?.pipe(out);
  proc.stderr?.pipe(out);
  const exited = new Promise<{ code: number | null; signal: NodeJS.Signals | null }>((resolve) => proc.once('exit', (code, signal) => resolve({ code, signal })));
  const a = { proc, exited, log: logFile };
  agents.set(provider, a);
  return a;
}

async function stopAgent(provider: string): Promise<void> {
  const a = agents.get(provider);
  agents.delete(provider);
  if (!a || a.proc.exitCode !== null || a.proc.signalCode !== null) return;
  a.proc.kill('SIGTERM');
  await a.exited;
}

// ------------------------------------------------------------------------------------------------
// Jobs, records, money

let seq = 0;
function job(model: string, opts: { count?: number; duration: string; max?: string }): ComputeJob {
  const j = validComputeJob(`pay-${Date.now().toString(36)}-${seq++}`, 'placeholder');
  j.metadata.annotations = { 'sim.gpufed.io/duration': opts.duration };
  j.spec = { ...j.spec, resources: { gpu: { count: opts.count ?? 1, models: [model] }, cpu: '1', memory: '1Gi' }, maxPricePerGpuHour: opts.max ?? '2000000ustake', retries: 0 };
  delete j.spec.placement;
  return j;
}

async function submit(t: FundedTenant, j: ComputeJob): Promise<string> {
  j.metadata.namespace = t.namespace;
  await t.kc.makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({ ...jobRef, namespace: t.namespace, body: j });
  return j.metadata.name ?? '';
}

async function getJob(t: FundedTenant, name: string): Promise<ComputeJob> {
  return (await custom().getNamespacedCustomObject({ ...jobRef, namespace: t.namespace, name })) as ComputeJob;
}

const condition = (j: ComputeJob, type: string) => j.status?.conditions?.find((c) => c.type === type);

function jobWhen(t: FundedTenant, name: string, what: string, ok: (j: ComputeJob) => boolean, timeoutMs = 90_000): Promise<ComputeJob> {
  return eventually(`job ${name} ${what}`, async () => {
    const j = await getJob(t, name);
    return ok(j) ? j : undefined;
  }, timeoutMs, 500);
}
const settled = (t: FundedTenant, name: string, timeoutMs?: number) => jobWhen(t, name, 'Settled', (j) => condition(j, 'Settled')?.status === 'True', timeoutMs);

async function recordsOf(j: ComputeJob): Promise<UsageRecord[]> {
  const list = (await custom().listClusterCustomObject({ group: 'gpufed.io', version: 'v1alpha1', plural: 'usagerecords', labelSelector: `gpufed.io/job-uid=${j.metadata.uid ?? ''}` })) as { items: UsageRecord[] };
  return list.items.sort((a, b) => a.spec.period.end.localeCompare(b.spec.period.end));
}

const amountOf = (r: UsageRecord) => BigInt(r.spec.amount.replace(/[a-z]+$/, ''));
const sum = (rs: UsageRecord[]) => rs.reduce((s, r) => s + amountOf(r), 0n);

/** The pod's run time in ms from the provider cluster's API: what the renter must pay for, exactly. */
async function podRunMs(provider: string, j: ComputeJob): Promise<number> {
  const pods = await kubeConfig(provider).makeApiClient(k8s.CoreV1Api).listPodForAllNamespaces({ labelSelector: `gpufed.io/job-uid=${j.metadata.uid ?? ''}` });
  const t = pods.items[0]?.status?.containerStatuses?.[0]?.state?.terminated;
  if (!t?.startedAt || !t.finishedAt) throw new Error(`The pod of ${j.metadata.name} has not finished`);
  return t.finishedAt.getTime() - t.startedAt.getTime();
}

/** Checks the books of a settled job: records chain without gaps, each is paid, and the sum is floor(price × GPU-ms / 3.6e6). */
function expectBooks(records: UsageRecord[], price: bigint, gpuMs: number): void {
  expect(records.length).toBeGreaterThan(0);
  for (let i = 1; i < records.length; i++) expect(records[i]?.spec.period.start).toBe(records[i - 1]?.spec.period.end);
  expect(records.at(-1)?.spec).toMatchObject({ final: true, gpuMilliseconds: { cumulative: gpuMs } });
  expect(sum(records)).toBe((price * BigInt(gpuMs)) / 3_600_000n);
  for (const r of records) expect(['Committed', 'NothingDue']).toContain(r.status?.state);
}

beforeAll(async () => {
  chain = await testChain();
  for (const p of ['alice', 'bob'] as const) {
    const kc = await agentRegistryConfig(p, PRICES[p]);
    const file = join(testDir(), `settlement-${p}-registry.kubeconfig`);
    writeFileSync(file, kc.exportConfig(), { mode: 0o600 });
    registryKubeconfigs.set(p, file);
  }
  await Promise.all([withoutWork('alice'), withoutWork('bob')]);
  registry = new Registry({
    kc: kubeConfig('registry'),
    identity: 'settlement-test',
    leaseDurationMs: 3000,
    renewDeadlineMs: 2000,
    retryPeriodMs: 500,
    heartbeatTimeoutMs: 5000,
    providerLostTimeoutMs: 120_000,
    funds: (payer, grantee) => chain.funds(payer, grantee),
    paymentCoverMs: 4000,
    settleWaitMs: 60_000,
    metrics: new Metrics({ defaultMetrics: false }),
    log: log(),
  });
  await registry.start();
  await eventually('the registry to lead', () => Promise.resolve(registry.isLeader ? true : undefined), 20_000);
  const dev = await devTenant();
  carol = { ...dev, key: devTenantKey(dev.namespace) };
  for (const p of ['alice', 'bob']) await chain.grantSpend(carol.key, keyAddress(devProviderHotKey(p)), { amount: 100_000_000n, denom: DENOM }, [devProviderPayout(p)]);
  startAgent('alice');
}, 120_000);

afterAll(async () => {
  await kubectl('registry', ['delete', 'computejobs', '--all', '-A', '--wait=false']);
  for (const p of [...agents.keys()]) await stopAgent(p);
  await registry?.stop();
  await kubectl('registry', ['patch', 'lease', 'gpufed-registry', '-n', 'gpufed-system', '--type=merge', '-p', '{"spec":{"holderIdentity":""}}']);
  chain?.disconnect();
});

describe('metering and settlement on the chain', () => {
  it('pays a 2-GPU job over several periods exactly floor(price × GPU-ms / 3.6e6), from the grant, once', async () => {
    const payout = devProviderPayout('alice');
    const before = await balance(chain, payout);
    const grantBefore = (await chain.grant(carol.address, keyAddress(devProviderHotKey('alice'))))?.spendLimit.get(DENOM) ?? 0n;
    const name = await submit(carol, job(RTX3090, { count: 2, duration: '9s' }));
    const done = await settled(carol, name);
    const records = await recordsOf(done);
    const gpuMs = 2 * (await podRunMs('alice', done));
    expect(records.length).toBeGreaterThan(1); // several periods, each rounded on its own total
    expectBooks(records, 1_000_003n, gpuMs);
    expect(await balance(chain, payout)).toBe(before + sum(records));
    expect((await chain.grant(carol.address, keyAddress(devProviderHotKey('alice'))))?.spendLimit.get(DENOM)).toBe(grantBefore - sum(records));
    expect(done.status).toMatchObject({ cost: `${sum(records)}ustake`, paid: `${sum(records)}ustake`, usage: { gpuMilliseconds: gpuMs } });
    // Every record is signed by alice's hot key and names its evidence.
    for (const r of records) {
      expect(r.spec).toMatchObject({ payer: carol.address, payee: payout });
      expect(r.spec.evidenceDigest).toMatch(/^[0-9a-f]{64}$/);
      expect(r.spec.signature).toMatch(/^[A-Za-z0-9+/]{86}==$/);
      expect(verifyUsageRecord(r.spec, Secp256k1.makeKeypair(devProviderHotKey('alice')).pubkey)).toBe(true);
    }
    // Utilisation and energy from the DCGM-shaped exporter (90 % is what it reports for a busy GPU).
    expect(records.some((r) => r.spec.gpuUtilizationPercent === 90 && (r.spec.energyMillijoules ?? 0) > 0)).toBe(true);
  });

  it.each([
    ['after signing, before broadcast', 'after-persist', 'Signed', false],
    ['after broadcast, before the record update', 'after-send', 'Signed', true],
    ['while confirming (committed, not yet recorded)', 'before-commit-record', 'Broadcast', true],
  ])('pays exactly once when the agent is killed -9 %s', async (_when, point, stateAtDeath, onChainAtDeath) => {
    const payout = devProviderPayout('bob');
    const before = await balance(chain, payout);
    const dying = startAgent('bob', { GPUFED_FAULT_KILL_AT: point });
    const name = await submit(carol, job(A6000, { duration: '5s' }));
    expect(await dying.exited).toMatchObject({ signal: 'SIGKILL' });
    const atDeath = (await recordsOf(await getJob(carol, name))).filter((r) => r.status?.txHash);
    expect(atDeath.length).toBeGreaterThan(0);
    const hash = atDeath[0]?.status?.txHash ?? '';
    expect(atDeath.every((r) => r.status?.txHash === hash && r.status.state === stateAtDeath)).toBe(true);
    // Give a sent transaction time to commit while nobody is recording it.
    await new Promise((r) => setTimeout(r, 3000));
    expect((await chain.findTx(hash)) !== undefined).toBe(onChainAtDeath);
    startAgent('bob');
    const done = await settled(carol, name);
    const records = await recordsOf(done);
    expectBooks(records, 1_400_007n, await podRunMs('bob', done));
    const again = atDeath.map((r) => records.find((x) => x.metadata.name === r.metadata.name)?.status);
    if (await chain.findTx(hash)) {
      // The batch signed before the kill is the one that paid: same bytes, same hash.
      for (const s of again) expect(s).toMatchObject({ state: 'Committed', txHash: hash });
    } else {
      // Only possible when the restart came after its timeout height with the sequence unused (a
      // slow machine): then it can never commit, and the same records were paid by a new one.
      expect(onChainAtDeath).toBe(false);
      expect(await chain.height()).toBeGreaterThan(atDeath[0]?.status?.timeoutHeight ?? Infinity);
      for (const s of again) expect(s?.state).toBe('Committed');
    }
    // Either way: one transfer for what was used.
    expect(await balance(chain, payout)).toBe(before + sum(records));
    await stopAgent('bob');
  });

  it('lets only one of two agent replicas of a provider meter and sign (the signer Lease)', async () => {
    const first = agents.get('alice') as AgentProcess;
    const second = startAgent('alice'); // a second replica, e.g. a rollout overlapping the old pod
    agents.set('alice-2', second);
    agents.set('alice', first);
    const payout = devProviderPayout('alice');
    const before = await balance(chain, payout);
    const name = await submit(carol, job(RTX4090, { duration: '6s' }));
    const done = await settled(carol, name);
    const records = await recordsOf(done);
    expectBooks(records, 1_200_000n, await podRunMs('alice', done));
    expect(await balance(chain, payout)).toBe(before + sum(records));
    const signedBy = [first, second].filter((a) => readFileSync(a.log, 'utf8').includes('Signed a settlement transaction'));
    expect(signedBy).toEqual([first]);
    await stopAgent('alice-2');
  });

  it('settles when the chain comes back after being stopped for a while, nothing twice', async () => {
    const payout = devProviderPayout('alice');
    const before = await balance(chain, payout);
    const name = await submit(carol, job(RTX4090, { duration: '10s' }));
    await jobWhen(carol, name, 'Running', (j) => j.status?.phase === 'Running');
    await stopComponent(testDir(), 'chain');
    try {
      // The job ends and is metered to its final record while the chain is down; nothing is paid.
      const j = await getJob(carol, name);
      const whileDown = await eventually('the final record', async () => {
        const rs = await recordsOf(j);
        return rs.some((r) => r.spec.final) ? rs : undefined;
      }, 40_000, 1000);
      expect(whileDown.every((r) => r.status?.state !== 'Committed')).toBe(true);
    } finally {
      await startComponent(testDir(), 'chain');
      chain.disconnect();
      chain = await testChain();
    }
    const done = await settled(carol, name);
    const records = await recordsOf(done);
    expectBooks(records, 1_200_000n, await podRunMs('alice', done));
    expect(await balance(chain, payout)).toBe(before + sum(records));
  });

  it("loses nothing when the provider's Prometheus is down for two periods of a running job", async () => {
    const name = await submit(carol, job(RTX4090, { duration: '14s' }));
    await jobWhen(carol, name, 'Running', (j) => j.status?.phase === 'Running');
    await stopComponent(testDir(), 'alice/prometheus');
    try {
      await new Promise((r) => setTimeout(r, 9000));
    } finally {
      await startComponent(testDir(), 'alice/prometheus');
    }
    const done = await settled(carol, name);
    // From the container's own timestamps: the gap is billed once, when the data after it arrives.
    expectBooks(await recordsOf(done), 1_200_000n, await podRunMs('alice', done));
  });

  it('pays up to an exhausted grant, never more, and stops the job with PaymentExhausted', async () => {
    const dave = await fundedTenant(chain, 'dave', 10_000_000n);
    const hot = keyAddress(devProviderHotKey('alice'));
    // 1.2 STAKE/h is 333.3 ustake a second: the limit covers the first period and a bit more.
    await chain.grantSpend(dave.key, hot, { amount: 3000n, denom: DENOM }, [devProviderPayout('alice')]);
    const payout = devProviderPayout('alice');
    const before = await balance(chain, payout);
    const name = await submit(dave, job(RTX4090, { duration: '60s' }));
    const failed = await jobWhen(dave, name, 'Failed with PaymentExhausted', (j) => condition(j, 'Failed')?.reason === 'PaymentExhausted', 60_000);
    expect(failed.status?.phase).toBe('Failed');
    await new Promise((r) => setTimeout(r, 6000)); // the last records are metered and offered
    const records = await recordsOf(failed);
    const paid = records.filter((r) => r.status?.state === 'Committed');
    expect(sum(paid)).toBeGreaterThan(0n);
    expect(sum(paid)).toBeLessThanOrEqual(3000n);
    expect(await balance(chain, payout)).toBe(before + sum(paid));
    expect(records.some((r) => r.status?.state !== 'Committed')).toBe(true); // what the cap did not cover stays owed
    const left = (await chain.grant(dave.address, hot))?.spendLimit.get(DENOM) ?? 0n;
    expect(left).toBe(3000n - sum(paid));
  });

  it('settles the other renter of a batch when one cannot pay, and stops only the broke one', async () => {
    const erin = await fundedTenant(chain, 'erin', 2_000_000n);
    const hot = keyAddress(devProviderHotKey('alice'));
    await chain.grantSpend(erin.key, hot, { amount: 1_000_000n, denom: DENOM }, [devProviderPayout('alice')]);
    const erinJob = await submit(erin, job(RTX3090, { duration: '40s' }));
    const carolJob = await submit(carol, job(RTX3090, { duration: '12s' }));
    await jobWhen(erin, erinJob, 'Running', (j) => j.status?.phase === 'Running');
    // erin spends her coins elsewhere: the grant stands, the balance does not.
    await send(chain, erin.key, keyAddress(devTenantKey('carol')), (await balance(chain, erin.address)) - 500n);
    const stopped = await jobWhen(erin, erinJob, 'Failed with PaymentExhausted', (j) => condition(j, 'Failed')?.reason === 'PaymentExhausted', 60_000);
    expect(stopped.status?.phase).toBe('Failed');
    const done = await settled(carol, carolJob);
    expectBooks(await recordsOf(done), 1_000_003n, await podRunMs('alice', done));
    expect((await recordsOf(stopped)).some((r) => r.status?.state !== 'Committed')).toBe(true);
  });

  it('stops a job whose renter revokes the grant mid-job', async () => {
    const frank = await fundedTenant(chain, 'frank', 5_000_000n);
    const hot = keyAddress(devProviderHotKey('alice'));
    await chain.grantSpend(frank.key, hot, { amount: 1_000_000n, denom: DENOM }, [devProviderPayout('alice')]);
    const name = await submit(frank, job(RTX4090, { duration: '60s' }));
    await jobWhen(frank, name, 'Running', (j) => j.status?.phase === 'Running');
    await chain.revokeSpend(frank.key, hot);
    const stopped = await jobWhen(frank, name, 'Failed with PaymentExhausted', (j) => condition(j, 'Failed')?.reason === 'PaymentExhausted', 60_000);
    expect(stopped.status?.message).toMatch(/grant|PaymentExhausted/);
  });

  it('does not place a job whose renter granted only another denom, and says why', async () => {
    const gina = await fundedTenant(chain, 'gina', 1_000_000n);
    await chain.grantSpend(gina.key, keyAddress(devProviderHotKey('alice')), { amount: 1_000_000n, denom: 'uatom' }, [devProviderPayout('alice')]);
    const name = await submit(gina, job(RTX4090, { duration: '5s' }));
    const waiting = await jobWhen(gina, name, 'unschedulable for payment', (j) => /payment: the grant has no limit in ustake/.test(condition(j, 'Scheduled')?.message ?? ''), 30_000);
    expect(waiting.status?.phase).toBe('Pending');
    await kubectl('registry', ['delete', 'computejob', '-n', gina.namespace, name, '--wait=false']);
  });
});
