// Fault matrix, "the chain stopped for several settlement periods while jobs of two providers run":
// the only validator is stopped while a job runs on alice and another on bob, for at least five
// settlement periods (4 s each), and started again. While it is down both jobs are metered to their
// final records and nothing is paid; once it is back each provider is paid its job's records once,
// the renter's grants shrink by exactly those, and both jobs end Succeeded and Settled.
import { startComponent, stopComponent } from '../../cli/src/dev/federation.js';
import type { ComputeJob } from '../../operator/src/api/index.js';
import { expectEachBilledOnce, expectPaidExactly, renterWithGrants } from '../support/faults.js';
import { eventually, testDir } from '../support/federation.js';
import { chainProfiles, type ChainProfile } from '../support/profiles.js';
import { A6000, RTX4090, getJob, job, jobWhen, recordsOf, setUp, settled, sleep, submit, tearDown, type World } from '../support/money.js';

const profile = chainProfiles()[0] as ChainProfile;
const SETTLEMENT_PERIOD_MS = 4000; // the test agents' --settlement-period
const DOWN_MS = 5 * SETTLEMENT_PERIOD_MS;
const GRANT = 5_000_000n;

let w: World;
beforeAll(async () => (w = await setUp(profile, { agents: ['alice', 'bob'] })), 180_000);
afterAll(() => tearDown(w));

it('meters both jobs while the chain is down, pays nothing then, and pays each provider once when it is back', async () => {
  const { renter: gina, marks } = await renterWithGrants(w, 'gina', GRANT);
  const providers = [
    { provider: 'alice', model: RTX4090 },
    { provider: 'bob', model: A6000 },
  ];
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

  const done: ComputeJob[] = [];
  for (const { provider } of providers) done.push(await settled(gina, jobs.get(provider) ?? '', 120_000));
  const byProvider = await expectEachBilledOnce(w, done);
  expect(done.map((j) => j.status?.placement?.provider)).toEqual(['alice', 'bob']);
  await expectPaidExactly(w, gina, GRANT, marks, byProvider);
}, 300_000);
