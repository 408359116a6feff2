// Fault matrix, "the chain stopped for several settlement periods while jobs of two providers run":
// the only validator is stopped while a job runs on alice and another on bob, for at least five
// settlement periods (4 s each), and started again. While it is down both jobs are metered to their
// final records and nothing is paid; once it is back each provider is paid its job's records once,
// the renter's grants shrink by exactly those, and both jobs end Succeeded and Settled.
import { startComponent, stopComponent } from '../../cli/src/dev/federation.js';
import { devProviderPayout, devSettlementAccount } from '../../cli/src/dev/wallets.js';
import { fundedTenant } from '../support/chain.js';
import { eventually, testDir } from '../support/federation.js';
import { chainProfiles, type ChainProfile } from '../support/profiles.js';
import { A6000, RTX4090, expectBooks, expectPayoutGrew, getJob, job, jobWhen, payoutMark, type PayoutMark, podRunMs, recordsOf, setUp, settled, sleep, submit, sum, tearDown, type World } from '../support/money.js';

const profile = chainProfiles()[0] as ChainProfile;
const SETTLEMENT_PERIOD_MS = 4000; // the test agents' --settlement-period
const DOWN_MS = 5 * SETTLEMENT_PERIOD_MS;

let w: World;
beforeAll(async () => (w = await setUp(profile, { agents: ['alice', 'bob'] })), 180_000);
afterAll(() => tearDown(w));

it('meters both jobs while the chain is down, pays nothing then, and pays each provider once when it is back', async () => {
  const gina = await fundedTenant(w.chain, 'gina', 10_000_000n);
  const providers = [
    { provider: 'alice', model: RTX4090 },
    { provider: 'bob', model: A6000 },
  ];
  for (const { provider } of providers) await w.chain.grantSpend(gina.key, devSettlementAccount(provider, profile.prefix), { amount: 5_000_000n, denom: profile.denom }, [devProviderPayout(provider, profile.prefix)]);
  const grantOf = async (p: string) => (await w.chain.grant(gina.address, devSettlementAccount(p, profile.prefix)))?.spendLimit.get(profile.denom) ?? 0n;
  const marks = new Map<string, PayoutMark>();
  for (const { provider } of providers) marks.set(provider, await payoutMark(w, provider));
  const jobs = new Map<string, string>();
  for (const { provider, model } of providers) jobs.set(provider, await submit(gina, job(model, profile.denom, { duration: '12s' })));
  for (const [provider, name] of jobs) await jobWhen(gina, name, `Running on ${provider}`, (j) => j.status?.phase === 'Running' && j.status.placement?.provider === provider);

  await stopComponent(testDir(), 'chain');
  const downAt = Date.now();
  try {
    for (const [provider, name] of jobs) {
      const j = await getJob(gina, name);
      const whileDown = await eventually(`${provider}'s final record while the chain is down`, async () => {
        const rs = await recordsOf(j);
        return rs.some((r) => r.spec.final) ? rs : undefined;
      }, 60_000, 1000);
      expect(whileDown.filter((r) => r.status?.state === 'Committed')).toEqual([]);
    }
    await sleep(Math.max(0, downAt + DOWN_MS - Date.now()));
  } finally {
    await startComponent(testDir(), 'chain');
  }

  for (const { provider, model } of providers) {
    const done = await settled(gina, jobs.get(provider) ?? '', 120_000);
    expect(done.status?.phase).toBe('Succeeded');
    expect(done.status?.placement).toMatchObject({ provider, epoch: 1 });
    const records = await recordsOf(done);
    expectBooks(records, w.price(model), await podRunMs(provider, done));
    await expectPayoutGrew(w, marks.get(provider) as PayoutMark, records);
    expect(await grantOf(provider)).toBe(5_000_000n - sum(records));
  }
}, 300_000);
