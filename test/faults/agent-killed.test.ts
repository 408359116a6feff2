// Fault matrix, "agent killed and restarted while a job runs": the agent of the provider running a
// job is killed with SIGKILL mid-job and started again 5 s later, inside the fencing timeout (12 s).
// The new process adopts the running pod (it neither re-creates nor fences it), the job succeeds on
// the same provider in its first epoch, one copy ran at every moment, and the job is billed exactly
// its run time and paid once.
import { chainProfiles, type ChainProfile } from '../support/profiles.js';
import { doubled, runningCopies, sampleCopies } from '../support/faults.js';
import { startGuard, stopAgent, type AgentProcess } from '../support/operators.js';
import { RTX4090, agent, expectBooks, expectPayoutGrew, job, jobWhen, payoutMark, podRunMs, providersReady, recordsOf, setUp, settled, sleep, submit, tearDown, type World } from '../support/money.js';

const profile = chainProfiles()[0] as ChainProfile;
const TIMING = ['--fencing-timeout=12s', '--registry-provider-lost-timeout=30s'];

let w: World;
let guard: AgentProcess | undefined;

beforeAll(async () => {
  w = await setUp(profile, { registry: { providerLostTimeoutMs: 30_000, fencingTimeoutMs: 12_000, heartbeatTimeoutMs: 5000 } });
  const since = Date.now();
  agent(w, 'alice', {}, 'alice', TIMING);
  await providersReady(['alice'], since);
  guard = startGuard({ provider: 'alice', kubeconfig: w.files.get('alice')?.kubeconfig ?? '', fencingTimeout: '12s', providerLostTimeout: '30s' });
}, 180_000);
afterAll(async () => {
  await stopAgent(guard);
  await tearDown(w);
});

it('adopts the running pod after a kill -9 and a restart inside the fencing timeout: one copy, first epoch, billed exactly, paid once', async () => {
  const mark = await payoutMark(w, 'alice');
  const name = await submit(w.renter, job(RTX4090, profile.denom, { duration: '20s' }));
  const placed = await jobWhen(w.renter, name, 'Running', (j) => j.status?.phase === 'Running', 90_000);
  const uid = placed.metadata.uid ?? '';
  const before = await runningCopies(uid);
  expect(before.running).toHaveLength(1);
  const sampling = sampleCopies(uid);
  const killed = w.agents.get('alice') as AgentProcess;
  killed.proc.kill('SIGKILL');
  expect(await killed.exited).toMatchObject({ signal: 'SIGKILL' });
  await sleep(5000);
  agent(w, 'alice', {}, 'alice', TIMING);
  const done = await settled(w.renter, name, 120_000);
  const samples = await sampling.stop();

  expect(done.status?.phase).toBe('Succeeded');
  expect(done.status?.placement).toMatchObject({ provider: 'alice', epoch: 1 });
  expect(doubled(samples)).toEqual([]);
  // The same pod all along: adopted, not re-created, not fenced.
  expect(new Set(samples.flatMap((s) => s.running.map((r) => r.pod)))).toEqual(new Set([before.running[0]?.pod]));
  const records = await recordsOf(done);
  expectBooks(records, w.price(RTX4090), await podRunMs('alice', done));
  await expectPayoutGrew(w, mark, records);
}, 240_000);
