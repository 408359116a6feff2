// Fault matrix, "agent flapping while 50 jobs are submitted": alice's agent is stopped (SIGTERM, as a
// crash-looping or rolling pod) and started again every 5 s for 2 minutes while a renter submits 50
// short jobs that either provider may run. Each stop is far shorter than the fencing timeout, so
// every new process adopts what the last one started. At every sampled moment each job runs at most
// once; every job succeeds and is settled; each is billed exactly its container's run time and paid
// once; each provider's payout and the renter's grants move by exactly the jobs' records.
import * as k8s from '@kubernetes/client-node';
import type { ComputeJob, UsageRecord } from '../../operator/src/api/index.js';
import { devProviderPayout, devSettlementAccount } from '../../cli/src/dev/wallets.js';
import { fundedTenant } from '../support/chain.js';
import { kubeConfig } from '../support/federation.js';
import { chainProfiles, type ChainProfile } from '../support/profiles.js';
import { expectChain } from '../support/faults.js';
import { stopAgent } from '../support/operators.js';
import { A6000, RTX3090, RTX4090, agent, expectPayoutGrew, job, payoutMark, type PayoutMark, podRunMs, recordsOf, setUp, settled, sleep, submit, sum, tearDown, type World } from '../support/money.js';

const profile = chainProfiles()[0] as ChainProfile;
const JOBS = 50;
const FLAP_MS = 120_000;
const HALF_CYCLE_MS = 5000;
const PROVIDERS = ['alice', 'bob'];
const GRANT = 50_000_000n;

let w: World;
beforeAll(async () => (w = await setUp(profile, { agents: PROVIDERS })), 180_000);
afterAll(() => tearDown(w));

/** Every job pod Running on the providers' API servers, by job uid (a server that does not answer is skipped). */
async function runningByJob(): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const provider of PROVIDERS) {
    try {
      const pods = await kubeConfig(provider).makeApiClient(k8s.CoreV1Api).listPodForAllNamespaces({ labelSelector: 'gpufed.io/job-uid' });
      for (const p of pods.items.filter((x) => x.status?.phase === 'Running')) {
        const uid = p.metadata?.labels?.['gpufed.io/job-uid'] ?? '';
        out.set(uid, [...(out.get(uid) ?? []), `${provider}/${p.metadata?.name ?? ''}`]);
      }
    } catch {
      // no sample of this provider this round
    }
  }
  return out;
}

it('runs, bills and pays 50 jobs exactly while the agent of one provider flaps for 2 minutes', async () => {
  const hank = await fundedTenant(w.chain, 'hank', 200_000_000n);
  for (const p of PROVIDERS) await w.chain.grantSpend(hank.key, devSettlementAccount(p, profile.prefix), { amount: GRANT, denom: profile.denom }, [devProviderPayout(p, profile.prefix)]);
  const marks = new Map<string, PayoutMark>();
  for (const p of PROVIDERS) marks.set(p, await payoutMark(w, p));

  // Sampling: any moment with two running copies of one job is a failure.
  const doubled: string[] = [];
  let sampling = true;
  const sampler = (async () => {
    while (sampling) {
      const at = new Date().toISOString();
      for (const [uid, pods] of await runningByJob()) if (pods.length > 1) doubled.push(`${at} ${uid}: ${pods.join(' + ')}`);
      await sleep(500);
    }
  })();

  // Flapping: down 5 s, up 5 s, for 2 minutes; the agent is left running at the end.
  const flapping = (async () => {
    const until = Date.now() + FLAP_MS;
    let cycles = 0;
    while (Date.now() < until) {
      await sleep(HALF_CYCLE_MS);
      await stopAgent(w.agents.get('alice'));
      await sleep(HALF_CYCLE_MS);
      agent(w, 'alice');
      cycles++;
    }
    return cycles;
  })();

  // The renter's burst, spread over the first minute: 5 jobs every 6 s.
  const names: string[] = [];
  for (let i = 0; i < JOBS; i++) {
    const spec = job(RTX4090, profile.denom, { duration: `${3 + (i % 4)}s` });
    spec.spec = { ...spec.spec, resources: { ...spec.spec.resources, gpu: { count: 1, models: [RTX4090, RTX3090, A6000] } } };
    names.push(await submit(hank, spec));
    if (i % 5 === 4) await sleep(6000);
  }
  const cycles = await flapping;
  expect(cycles).toBeGreaterThanOrEqual(10);
  const done: ComputeJob[] = [];
  for (const name of names) done.push(await settled(hank, name, 300_000));
  sampling = false;
  await sampler;

  expect(doubled).toEqual([]);
  const byProvider = new Map<string, UsageRecord[]>(PROVIDERS.map((p) => [p, []]));
  for (const j of done) {
    expect([j.metadata.name, j.status?.phase]).toEqual([j.metadata.name, 'Succeeded']);
    const provider = j.status?.placement?.provider ?? '';
    const records = await recordsOf(j);
    expectChain(records);
    // Billed exactly: the job ran once, in its first epoch, for its container's run time.
    expect(j.status?.placement?.epoch).toBe(1);
    const gpuMs = await podRunMs(provider, j);
    expect(records.at(-1)?.spec.gpuMilliseconds.cumulative).toBe(gpuMs);
    expect(sum(records)).toBe((w.price(records[0]?.spec.model ?? '') * BigInt(gpuMs)) / 3_600_000n);
    byProvider.get(provider)?.push(...records);
  }
  process.stderr.write(`agent-flapping: ${cycles} stop/start cycles; jobs on alice ${done.filter((j) => j.status?.placement?.provider === 'alice').length}, on bob ${done.filter((j) => j.status?.placement?.provider === 'bob').length}; records ${[...byProvider.values()].flat().length}\n`);
  // Both providers took part, and each was paid exactly its jobs' records, from exactly this grant.
  expect(PROVIDERS.filter((p) => (byProvider.get(p) ?? []).length > 0)).toEqual(PROVIDERS);
  for (const p of PROVIDERS) {
    const records = byProvider.get(p) ?? [];
    await expectPayoutGrew(w, marks.get(p) as PayoutMark, records);
    expect((await w.chain.grant(hank.address, devSettlementAccount(p, profile.prefix)))?.spendLimit.get(profile.denom)).toBe(GRANT - sum(records));
  }
}, 600_000);
