// Fault matrix, "agent flapping while 50 jobs are submitted": alice's agent is stopped (SIGTERM, as a
// crash-looping or rolling pod) every 10 s for 2 minutes, each time for 3 s, while a renter submits
// 50 short jobs that either provider may run. Each stop is far shorter than the fencing timeout, so
// every new process adopts what the last one started: some of alice's jobs run across a stop. At every sampled moment each job runs at most
// once; every job succeeds and is settled; each is billed exactly its container's run time and paid
// once; each provider's payout and the renter's grants move by exactly the jobs' records.
import type { ComputeJob } from '../../operator/src/api/index.js';
import { chainProfiles, type ChainProfile } from '../support/profiles.js';
import { anyGpuJob, expectEachBilledOnce, expectPaidExactly, renterWithGrants, sampleAllJobs } from '../support/faults.js';
import { stopAgent } from '../support/operators.js';
import { agent, podRun, setUp, settled, sleep, submit, tearDown, type World } from '../support/money.js';

const profile = chainProfiles()[0] as ChainProfile;
const JOBS = 50;
const FLAP_MS = 120_000;
const UP_MS = 7000;
const DOWN_MS = 3000;
const PROVIDERS = ['alice', 'bob'];
const GRANT = 50_000_000n;

let w: World;
beforeAll(async () => (w = await setUp(profile, { agents: PROVIDERS })), 180_000);
afterAll(() => tearDown(w));

it('runs, bills and pays 50 jobs exactly while the agent of one provider flaps for 2 minutes', async () => {
  const { renter: hank, marks } = await renterWithGrants(w, 'hank', GRANT, PROVIDERS);

  // Sampling: any moment with two running copies of one job is a failure.
  const sampling = sampleAllJobs();

  // Flapping: up 7 s, down 3 s, for 2 minutes; the agent is left running at the end.
  const stops: { from: number; to: number }[] = [];
  const flapping = (async () => {
    const until = Date.now() + FLAP_MS;
    while (Date.now() < until) {
      await sleep(UP_MS);
      const from = Date.now();
      await stopAgent(w.agents.get('alice'));
      await sleep(DOWN_MS);
      agent(w, 'alice');
      stops.push({ from, to: Date.now() });
    }
    return stops.length;
  })();

  // The renter's burst, spread over the first minute: 5 jobs every 6 s.
  const names: string[] = [];
  for (let i = 0; i < JOBS; i++) {
    names.push(await submit(hank, anyGpuJob(w, `${3 + (i % 4)}s`)));
    if (i % 5 === 4) await sleep(6000);
  }
  const cycles = await flapping;
  expect(cycles).toBeGreaterThanOrEqual(8);
  const done: ComputeJob[] = [];
  for (const name of names) done.push(await settled(hank, name, 300_000));
  expect(await sampling.stop()).toEqual([]);
  const byProvider = await expectEachBilledOnce(w, done);
  // Adopted, not lost: alice's jobs whose container ran while no agent of hers did.
  const aliceJobs = done.filter((j) => j.status?.placement?.provider === 'alice');
  let acrossAStop = 0;
  for (const j of aliceJobs) {
    const run = await podRun('alice', j);
    if (stops.some((s) => run.startMs < s.to && run.endMs > s.from)) acrossAStop++;
  }
  expect(acrossAStop).toBeGreaterThan(0);
  process.stderr.write(`agent-flapping: ${cycles} stop/start cycles; jobs on alice ${aliceJobs.length} (${acrossAStop} ran across a stop), on bob ${done.filter((j) => j.status?.placement?.provider === 'bob').length}; records ${[...byProvider.values()].flat().length}\n`);
  // Both providers took part, and each was paid exactly its jobs' records, from exactly this grant.
  expect(PROVIDERS.filter((p) => (byProvider.get(p) ?? []).length > 0)).toEqual(PROVIDERS);
  await expectPaidExactly(w, hank, GRANT, marks, byProvider);
}, 600_000);
