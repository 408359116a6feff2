// What the money tests share: jobs a renter submits, the records and Settlements they produce, the
// books of a settled job, and a "world" per chain profile (the providers onboarded with that
// profile's wallets, a registry co-signing on it, a funded renter granting both providers' settlement
// accounts, and the agent processes it starts).
import * as k8s from '@kubernetes/client-node';
import { ComputeJobResource, SettlementResource, type ComputeJob, type Settlement, type UsageRecord } from '../../operator/src/api/index.js';
import type { Registry } from '../../operator/src/registry/registry.js';
import type { Chain } from '../../operator/src/settlement/chain.js';
import { devProviderHotKey, devProviderPayout, devSettlementAccount } from '../../cli/src/dev/wallets.js';
import { keyAddress } from '../../operator/src/settlement/keys.js';
import { validComputeJob } from '../fixtures/computejobs.js';
import { balance, fundedTenant, type FundedTenant } from './chain.js';
import { parseCoin } from '../../operator/src/api/coin.js';
import type { ChainProfile } from './profiles.js';
import { eventually, kubeConfig, kubectl, withoutWork } from './federation.js';
import { agentFiles, settlingRegistry, startAgent, startRegistry, stopAgent, type AgentProcess } from './operators.js';
import type { RegistryOptions } from '../../operator/src/registry/registry.js';

export const RTX4090 = 'NVIDIA-GeForce-RTX-4090';
export const RTX3090 = 'NVIDIA-GeForce-RTX-3090';
export const A6000 = 'NVIDIA-RTX-A6000';
export const custom = () => kubeConfig('registry').makeApiClient(k8s.CustomObjectsApi);
const jobRef = { group: ComputeJobResource.group, version: ComputeJobResource.version, plural: ComputeJobResource.plural };
export const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ------------------------------------------------------------------------------------------------
// Jobs, records, money

let seq = 0;
export function job(model: string, denom: string, opts: { count?: number; duration: string; max?: string }): ComputeJob {
  const j = validComputeJob(`pay-${Date.now().toString(36)}-${seq++}`, 'placeholder');
  j.metadata.annotations = { 'sim.gpufed.io/duration': opts.duration };
  j.spec = { ...j.spec, resources: { gpu: { count: opts.count ?? 1, models: [model] }, cpu: '1', memory: '1Gi' }, maxPricePerGpuHour: opts.max ?? `2000000${denom}`, retries: 0 };
  delete j.spec.placement;
  return j;
}

export async function submit(t: FundedTenant, j: ComputeJob): Promise<string> {
  j.metadata.namespace = t.namespace;
  await t.kc.makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({ ...jobRef, namespace: t.namespace, body: j });
  return j.metadata.name ?? '';
}

export async function getJob(t: FundedTenant, name: string): Promise<ComputeJob> {
  return (await custom().getNamespacedCustomObject({ ...jobRef, namespace: t.namespace, name })) as ComputeJob;
}

export const condition = (j: ComputeJob, type: string) => j.status?.conditions?.find((c) => c.type === type);

export function jobWhen(t: FundedTenant, name: string, what: string, ok: (j: ComputeJob) => boolean, timeoutMs = 90_000): Promise<ComputeJob> {
  return eventually(`job ${name} ${what}`, async () => {
    const j = await getJob(t, name);
    if (ok(j)) return j;
    // What a timeout says: the job's phase, placement and conditions when last read.
    const conditions = (j.status?.conditions ?? []).map((c) => `${c.type}=${c.status} ${c.reason ?? ''}: ${c.message ?? ''}`);
    throw new Error(`phase ${j.status?.phase ?? 'none'}, placed on ${j.status?.placement?.provider ?? 'nobody'} (epoch ${j.status?.placement?.epoch ?? '-'}); ${conditions.join('; ')}`);
  }, timeoutMs, 500);
}
export const settled = (t: FundedTenant, name: string, timeoutMs?: number) => jobWhen(t, name, 'Settled', (j) => condition(j, 'Settled')?.status === 'True', timeoutMs);

export async function recordsOf(j: ComputeJob): Promise<UsageRecord[]> {
  const list = (await custom().listClusterCustomObject({ group: 'gpufed.io', version: 'v1alpha1', plural: 'usagerecords', labelSelector: `gpufed.io/job-uid=${j.metadata.uid ?? ''}` })) as { items: UsageRecord[] };
  return list.items.sort((a, b) => a.spec.period.end.localeCompare(b.spec.period.end));
}

export async function settlementsOf(provider: string): Promise<Settlement[]> {
  const list = (await custom().listNamespacedCustomObject({ group: SettlementResource.group, version: SettlementResource.version, plural: SettlementResource.plural, namespace: `gpufed-provider-${provider}` })) as { items: Settlement[] };
  return list.items;
}

export const amountOf = (r: UsageRecord) => BigInt(r.spec.amount.replace(/[a-z]+$/, ''));
export const sum = (rs: UsageRecord[]) => rs.reduce((s, r) => s + amountOf(r), 0n);

/** A provider payout's balance at one height: read between two equal heights, so no block came in between. */
export interface PayoutMark {
  provider: string;
  balance: bigint;
  height: number;
}

export async function payoutMark(w: World, provider: string): Promise<PayoutMark> {
  const payout = devProviderPayout(provider, w.profile.prefix);
  for (;;) {
    const height = await w.chain.height();
    const b = await balance(w.chain, payout, w.profile.denom);
    if ((await w.chain.height()) === height) return { provider, balance: b, height };
  }
}

/**
 * Checks that the payout grew since `mark` by exactly what `paid` records are worth, plus what the
 * provider's other Committed Settlements of blocks after the mark paid (an earlier test's leftover
 * records are paid whenever an agent of the provider runs): every base unit that arrived is
 * accounted for by a Settlement the registry co-signed and found committed, and `paid` only once.
 * Settlements paying any record of `ofJob` (the job's records, `paid` by default) are not "other".
 * The registry marks a Settlement Committed a moment after its block, so this waits up to 20 s.
 */
export async function expectPayoutGrew(w: World, mark: PayoutMark, paid: UsageRecord[], ofJob: UsageRecord[] = paid): Promise<void> {
  const names = new Set([...paid, ...ofJob].map((r) => r.metadata.name ?? ''));
  const payout = devProviderPayout(mark.provider, w.profile.prefix);
  const books = async () => {
    const now = await payoutMark(w, mark.provider);
    const others = (await settlementsOf(mark.provider)).filter(
      (s) => s.status?.state === 'Committed' && (s.status.height ?? 0) > mark.height && (s.status.height ?? 0) <= now.height && !s.spec.records.some((r) => names.has(r)),
    );
    const othersPaid = others.reduce((t, s) => t + totalIn(s.spec.total, w.profile.denom), 0n);
    return { received: now.balance - mark.balance, expected: sum(paid) + othersPaid, others: others.map((s) => `${s.metadata.name}=${s.spec.total}@${s.status?.height}`) };
  };
  let last = await books();
  const deadline = Date.now() + 20_000;
  while (last.received !== last.expected && Date.now() < deadline) {
    await sleep(500);
    last = await books();
  }
  expect({ payout, ...last }).toEqual({ payout, received: last.expected, expected: last.expected, others: last.others });
}

/** What a Settlement's `total` (coins separated by commas) moves in `denom`. */
const totalIn = (total: string, denom: string) =>
  total
    .split(',')
    .filter((c) => c.trim() !== '')
    .map((c) => parseCoin(c.trim()))
    .filter((c) => c.denom === denom)
    .reduce((t, c) => t + c.amount, 0n);

/** The pod's run time in ms from the provider cluster's API: what the renter must pay for, exactly. */
/** When the job's (one) container started and finished, from the provider's API. */
export async function podRun(provider: string, j: ComputeJob): Promise<{ startMs: number; endMs: number }> {
  const pods = await kubeConfig(provider).makeApiClient(k8s.CoreV1Api).listPodForAllNamespaces({ labelSelector: `gpufed.io/job-uid=${j.metadata.uid ?? ''}` });
  const t = pods.items[0]?.status?.containerStatuses?.[0]?.state?.terminated;
  if (!t?.startedAt || !t.finishedAt) throw new Error(`The pod of ${j.metadata.name} has not finished`);
  return { startMs: t.startedAt.getTime(), endMs: t.finishedAt.getTime() };
}

export async function podRunMs(provider: string, j: ComputeJob): Promise<number> {
  const run = await podRun(provider, j);
  return run.endMs - run.startMs;
}

/** Checks the books of a settled job: records chain without gaps, each verified and paid (or nothing due), the sum floor(price × GPU-ms / 3.6e6). */
export function expectBooks(records: UsageRecord[], price: bigint, gpuMs: number): void {
  expect(records.length).toBeGreaterThan(0);
  for (let i = 1; i < records.length; i++) expect(records[i]?.spec.period.start).toBe(records[i - 1]?.spec.period.end);
  expect(records.at(-1)?.spec).toMatchObject({ final: true, gpuMilliseconds: { cumulative: gpuMs } });
  expect(sum(records)).toBe((price * BigInt(gpuMs)) / 3_600_000n);
  for (const r of records) {
    expect(r.status?.conditions?.find((c) => c.type === 'Verified')).toMatchObject({ status: 'True', reason: 'Verified' });
    expect(['Committed', 'NothingDue']).toContain(r.status?.state);
  }
}

// ------------------------------------------------------------------------------------------------
// One chain profile: its providers' wallets, a renter, a registry co-signing on it

export interface World {
  profile: ChainProfile;
  chain: Chain;
  /** The in-process registry, or (with `registryProcesses`) what stops every replica in `registries`. */
  registry: Pick<Registry, 'stop'>;
  /** Registry replicas running as processes, by identity (a test may kill some and start others). */
  registries: Map<string, AgentProcess>;
  renter: FundedTenant;
  files: Map<string, { kubeconfig: string; keyFile: string }>;
  agents: Map<string, AgentProcess>;
  price: (model: string) => bigint;
}

/** The world of one profile, with the agents of `o.agents` started (as they normally run). */
export async function setUp(profile: ChainProfile, o: { registry?: Partial<RegistryOptions>; registryProcesses?: number; agents?: string[] } = {}): Promise<World> {
  const chain = await profile.connect();
  const files = new Map<string, { kubeconfig: string; keyFile: string }>();
  for (const p of ['alice', 'bob']) files.set(p, await agentFiles(p, profile.prices(p), profile.prefix));
  await Promise.all([withoutWork('alice'), withoutWork('bob')]);
  const registries = new Map<string, AgentProcess>();
  const registry = o.registryProcesses ? await registryProcesses(profile, o.registryProcesses, registries) : await settlingRegistry(`settlement-test-${profile.name}`, chain, o.registry);
  const agents = new Map<string, AgentProcess>();
  try {
    const renter = await fundedTenant(chain, `pay-${profile.name}`, 2_000_000_000n, profile);
    for (const p of ['alice', 'bob']) await chain.grantSpend(renter.key, devSettlementAccount(p, profile.prefix), { amount: 100_000_000n, denom: profile.denom }, [devProviderPayout(p, profile.prefix)]);
    const prices = new Map(['alice', 'bob'].flatMap((p) => profile.prices(p)).map((x) => [x.model, BigInt(x.pricePerGpuHour.replace(/[a-z]+$/, ''))]));
    const w: World = { profile, chain, registry, registries, renter, files, agents, price: (m) => prices.get(m) ?? 0n };
    const since = Date.now();
    for (const p of o.agents ?? []) agent(w, p);
    if (o.agents?.length) await providersReady(o.agents, since);
    return w;
  } catch (e) {
    // A half-built world must not keep Jest alive: stop what was started, then fail.
    for (const a of agents.values()) await stopAgent(a);
    await registry.stop();
    chain.disconnect();
    throw e;
  }
}

/** `n` registry replicas as processes, once one of them leads; `stop` ends every replica in `registries` then. */
async function registryProcesses(profile: ChainProfile, n: number, registries: Map<string, AgentProcess>): Promise<Pick<Registry, 'stop'>> {
  for (let i = 0; i < n; i++) {
    const identity = `faults-registry-${i}`;
    registries.set(identity, startRegistry({ identity, chain: profile.target() }));
  }
  await eventually('a registry process to lead', async () => {
    const holder = await leaseHolder();
    return holder && registries.has(holder) ? holder : undefined;
  }, 30_000);
  return { stop: async () => void (await Promise.all([...registries.values()].map((r) => stopAgent(r)))) };
}

/** Who holds the registry's leader Lease now. */
export async function leaseHolder(): Promise<string | undefined> {
  const lease = await kubeConfig('registry').makeApiClient(k8s.CoordinationV1Api).readNamespacedLease({ name: 'gpufed-registry', namespace: 'gpufed-system' });
  return lease.spec?.holderIdentity || undefined;
}

/**
 * Waits until each provider heartbeats from an agent started at or after `since` (its heartbeat
 * Lease renewed since then) and the registry judges it Ready: a job submitted after this is
 * matched against all of them, not against whichever agent came up first.
 */
export async function providersReady(providers: string[], since: number, timeoutMs = 60_000): Promise<void> {
  const coordination = kubeConfig('registry').makeApiClient(k8s.CoordinationV1Api);
  for (const provider of providers) {
    await eventually(`${provider} heartbeating since ${new Date(since).toISOString()} and Ready`, async () => {
      const lease = await coordination.readNamespacedLease({ name: 'gpufed-agent', namespace: `gpufed-provider-${provider}` });
      const renewed = lease.spec?.renewTime ? new Date(lease.spec.renewTime).getTime() : 0;
      const p = (await custom().getClusterCustomObject({ group: 'gpufed.io', version: 'v1alpha1', plural: 'providers', name: provider })) as { status?: { conditions?: { type: string; status: string; reason?: string }[] } };
      const ready = p.status?.conditions?.find((c) => c.type === 'Ready');
      if (renewed >= since && ready?.status === 'True') return true;
      throw new Error(`lease renewed ${renewed ? new Date(renewed).toISOString() : 'never'}, Ready=${ready?.status ?? 'unknown'} ${ready?.reason ?? ''}`);
    }, timeoutMs, 250);
  }
}

export function agent(w: World, provider: string, env: Record<string, string> = {}, key = provider, extra: string[] = []): AgentProcess {
  const f = w.files.get(provider);
  if (!f) throw new Error(`No files for ${provider}`);
  const a = startAgent({ provider, kubeconfig: f.kubeconfig, keyFile: f.keyFile, chain: w.profile.target(), env, extra });
  w.agents.set(key, a);
  return a;
}

export async function tearDown(w: World | undefined): Promise<void> {
  if (!w) return;
  await kubectl('registry', ['delete', 'computejobs', '--all', '-n', w.renter.namespace, '--wait=false']);
  for (const a of w.agents.values()) await stopAgent(a);
  await w.registry.stop();
  await kubectl('registry', ['patch', 'lease', 'gpufed-registry', '-n', 'gpufed-system', '--type=merge', '-p', '{"spec":{"holderIdentity":""}}']);
  w.chain.disconnect();
}


/** What an agent does before its first proposal, done here for tests that must not wait on it: the provider's settlement account pays its fees from the hot key. */
export async function ensureFeeAllowance(w: World, provider: string): Promise<void> {
  const hot = devProviderHotKey(provider);
  const account = devSettlementAccount(provider, w.profile.prefix);
  if (!(await w.chain.hasFeeAllowance(keyAddress(hot, w.profile.prefix), account))) await w.chain.grantFeeAllowance(hot, account);
}

/**
 * Empties the node's mempool (and its cache of seen transactions) as fast as it answers, until
 * stopped: every transaction sent meanwhile is dropped, as a restarted or overloaded node drops
 * it. Through CometBFT's unsafe RPC, which the dev chains enable on loopback (cli/src/dev/chain.ts).
 */
export function flushingMempool(rpcUrl: string): { stop: () => Promise<void> } {
  let on = true;
  const loop = (async () => {
    while (on) await fetch(`${rpcUrl.replace(/\/$/, '')}/unsafe_flush_mempool`).then((r) => r.text());
  })();
  return {
    stop: async () => {
      on = false;
      await loop;
    },
  };
}
