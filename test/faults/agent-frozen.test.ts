// Fault matrix, "agent frozen": a provider's agent process is stopped (SIGSTOP, as a GC pause or a
// suspended VM would) 3 s after its job pod started, for longer than the registry's provider-lost
// timeout, then resumed. The fence guard beside it stops the pod at the fencing timeout; the
// registry places the job again on the other provider only after the provider-lost timeout; the
// frozen copy is billed up to its fence, the second copy in full, each once; the renter pays the
// sum of the verified records, and the job succeeds. Timing as the local federation's: fencing
// 12 s, provider lost 30 s (30 ≥ 12 + 1 + 10 + 5, operator/src/fencing/bound.ts).
import { devSettlementAccount } from '../../cli/src/dev/wallets.js';
import { fencedCopyGoneWithinMs } from '../../operator/src/fencing/bound.js';
import { doubled, expectChain, firstRunningCopy, sampleCopies } from '../support/faults.js';
import { chainProfiles, type ChainProfile } from '../support/profiles.js';
import { startGuard, stopAgent, type AgentProcess } from '../support/operators.js';
import { A6000, RTX4090, agent, expectBooks, expectPayoutGrew, job, jobWhen, payoutMark, podRunMs, providersReady, recordsOf, setUp, settled, sleep, submit, sum, tearDown, type World } from '../support/money.js';

const profile = chainProfiles()[0] as ChainProfile;
const FENCING = { flag: '12s', ms: 12_000 };
const LOST = { flag: '30s', ms: 30_000 };
const HEARTBEAT_MS = 1000; // the test agents' --heartbeat
const SCRAPE_MS = 2000; // the test agents' --scrape-interval: metering resolution

let w: World;
let guard: AgentProcess | undefined;

beforeAll(async () => {
  w = await setUp(profile, { registry: { providerLostTimeoutMs: LOST.ms, fencingTimeoutMs: FENCING.ms, heartbeatTimeoutMs: 5000 } });
  const timing = [`--fencing-timeout=${FENCING.flag}`, `--registry-provider-lost-timeout=${LOST.flag}`];
  const since = Date.now();
  for (const p of ['alice', 'bob']) agent(w, p, {}, p, timing);
  // Both heartbeating before the job: it must start on alice (cheaper), not on whoever came up first.
  await providersReady(['alice', 'bob'], since);
  guard = startGuard({ provider: 'alice', kubeconfig: w.files.get('alice')?.kubeconfig ?? '', fencingTimeout: FENCING.flag, providerLostTimeout: LOST.flag });
}, 180_000);
afterAll(async () => {
  await stopAgent(guard);
  await tearDown(w);
});

it('stops the frozen copy by the fencing bound, re-places only after the provider-lost timeout, bills each copy once up to its fence, and the job succeeds', async () => {
  const marks = { alice: await payoutMark(w, 'alice'), bob: await payoutMark(w, 'bob') };
  const grantOf = async (p: string) => (await w.chain.grant(w.renter.address, devSettlementAccount(p, profile.prefix)))?.spendLimit.get(profile.denom) ?? 0n;
  const grants = { alice: await grantOf('alice'), bob: await grantOf('bob') };
  // Either model: alice's RTX 4090 is cheaper, so it goes there first; bob's A6000 takes it after.
  const spec = job(RTX4090, profile.denom, { duration: '40s' });
  spec.spec = { ...spec.spec, resources: { ...spec.spec.resources, gpu: { count: 1, models: [RTX4090, A6000] } }, retries: 1 };
  const name = await submit(w.renter, spec);
  const placed = await jobWhen(w.renter, name, 'Running on alice', (j) => j.status?.phase === 'Running' && j.status.placement?.provider === 'alice', 90_000);
  const uid = placed.metadata.uid ?? '';
  const first = await firstRunningCopy(uid, 'alice');
  await sleep(Math.max(0, (first.startedAt ?? 0) + 3000 - Date.now()));

  const alice = w.agents.get('alice') as AgentProcess;
  alice.proc.kill('SIGSTOP');
  const frozenAt = Date.now();
  const sampling = sampleCopies(uid);
  try {
    await sleep(LOST.ms + 15_000);
  } finally {
    alice.proc.kill('SIGCONT');
  }
  const done = await settled(w.renter, name, 180_000);
  const samples = await sampling.stop();
  expect(done.status?.phase).toBe('Succeeded');
  expect(done.status?.placement?.provider).toBe('bob');
  expect(done.status?.placement?.epoch).toBe(2);

  // At most one running copy at every moment sampled.
  expect(doubled(samples)).toEqual([]);
  // The frozen copy is gone by the fencing bound (from its last heartbeat, at most one heartbeat before the freeze),
  // with no help from its agent; the registry re-places only after the provider-lost timeout.
  const aliceLast = Math.max(...samples.filter((s) => s.running.some((r) => r.provider === 'alice')).map((s) => s.at));
  expect(aliceLast).toBeLessThanOrEqual(frozenAt + fencedCopyGoneWithinMs(FENCING.ms) + 1000);
  const bobFirst = Math.min(...samples.filter((s) => s.running.some((r) => r.provider === 'bob')).map((s) => s.at));
  expect(bobFirst).toBeGreaterThanOrEqual(frozenAt - HEARTBEAT_MS + LOST.ms);
  expect(guard?.proc.exitCode).toBeNull();

  // Money: each copy's records chain, are verified and paid once; the frozen copy is billed at most
  // to its fence (it ran until the guard stopped it), the second copy exactly as long as it ran.
  const records = await recordsOf(done);
  const byEpoch = (e: number) => records.filter((r) => r.spec.epoch === e).sort((a, b) => a.spec.period.end.localeCompare(b.spec.period.end));
  const [one, two] = [byEpoch(1), byEpoch(2)];
  expect(one.length + two.length).toBe(records.length);
  expectBooks(two, w.price(A6000), await podRunMs('bob', done));
  expectChain(one);
  const billedOne = one.at(-1)?.spec.gpuMilliseconds.cumulative ?? 0;
  const ranOne = aliceLast - (first.startedAt ?? 0);
  expect(billedOne).toBeGreaterThan(0);
  expect(billedOne).toBeLessThanOrEqual(ranOne + 500 + SCRAPE_MS);
  expect(billedOne).toBeLessThanOrEqual(frozenAt + FENCING.ms - (first.startedAt ?? 0) + SCRAPE_MS);
  expect(sum(one)).toBe((w.price(RTX4090) * BigInt(billedOne)) / 3_600_000n);
  // What arrived at each payout is those records, and what left each grant.
  await expectPayoutGrew(w, marks.alice, one);
  await expectPayoutGrew(w, marks.bob, two);
  expect(await grantOf('alice')).toBe(grants.alice - sum(one));
  expect(await grantOf('bob')).toBe(grants.bob - sum(two));
}, 360_000);
