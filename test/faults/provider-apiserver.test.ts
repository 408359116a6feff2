// Fault matrix, "a provider's kube-apiserver killed mid-job and back after 30 s": alice's API server
// is stopped 3 s after her job's pod started and started again 30 s later. Her agent and fence
// guard are blind to their cluster meanwhile, but the pod goes on (as a kubelet keeps running its
// containers), so the agent must keep the job: the registry does not re-place it (one copy, never a
// second on bob), the job succeeds on alice in its first epoch, the gap in metering is billed once
// from the container's own start and finish, and the renter pays that once.
import { doubled, downFor, firstRunningCopy, sampleCopies } from '../support/faults.js';
import { chainProfiles, type ChainProfile } from '../support/profiles.js';
import { startGuard, stopAgent, type AgentProcess } from '../support/operators.js';
import { A6000, RTX4090, agent, expectBooks, expectPayoutGrew, job, jobWhen, payoutMark, podRunMs, providersReady, recordsOf, setUp, settled, sleep, submit, tearDown, type World } from '../support/money.js';

const profile = chainProfiles()[0] as ChainProfile;
const FENCING = '12s';
const LOST = '30s';
const DOWN_MS = 30_000;

let w: World;
let guard: AgentProcess | undefined;

beforeAll(async () => {
  w = await setUp(profile, { registry: { providerLostTimeoutMs: 30_000, fencingTimeoutMs: 12_000, heartbeatTimeoutMs: 5000 } });
  const since = Date.now();
  for (const p of ['alice', 'bob']) agent(w, p, {}, p, [`--fencing-timeout=${FENCING}`, `--registry-provider-lost-timeout=${LOST}`]);
  await providersReady(['alice', 'bob'], since);
  guard = startGuard({ provider: 'alice', kubeconfig: w.files.get('alice')?.kubeconfig ?? '', fencingTimeout: FENCING, providerLostTimeout: LOST });
}, 180_000);
afterAll(async () => {
  await stopAgent(guard);
  await tearDown(w);
});

it('keeps the job on its provider while that provider API server is down, one copy, billed exactly, paid once', async () => {
  const mark = await payoutMark(w, 'alice');
  // Either model, so that bob could take it if the registry wrongly gave up on alice.
  const spec = job(RTX4090, profile.denom, { duration: '20s' });
  spec.spec = { ...spec.spec, resources: { ...spec.spec.resources, gpu: { count: 1, models: [RTX4090, A6000] } }, retries: 1 };
  const name = await submit(w.renter, spec);
  const placed = await jobWhen(w.renter, name, 'Running on alice', (j) => j.status?.phase === 'Running' && j.status.placement?.provider === 'alice');
  const uid = placed.metadata.uid ?? '';
  const first = await firstRunningCopy(uid, 'alice');
  await sleep(Math.max(0, (first.startedAt ?? 0) + 3000 - Date.now()));

  const sampling = sampleCopies(uid);
  await downFor('alice/kube-apiserver', DOWN_MS);
  const done = await settled(w.renter, name, 180_000);
  const samples = await sampling.stop();

  expect(done.status?.phase).toBe('Succeeded');
  expect(done.status?.placement).toMatchObject({ provider: 'alice', epoch: 1 });
  // alice's API did not answer for a while, and no copy ever ran on bob, before, during or after.
  expect(samples.some((s) => s.unreachable.includes('alice'))).toBe(true);
  expect(samples.filter((s) => s.running.some((r) => r.provider === 'bob'))).toEqual([]);
  expect(doubled(samples)).toEqual([]);
  // The same pod all along, not fenced: its run covers the outage.
  expect(new Set(samples.flatMap((s) => s.running.map((r) => r.pod)))).toEqual(new Set([first.pod]));
  const runMs = await podRunMs('alice', done);
  expect(runMs).toBeGreaterThanOrEqual(20_000);
  const records = await recordsOf(done);
  expectBooks(records, w.price(RTX4090), runMs);
  await expectPayoutGrew(w, mark, records);
  expect(guard?.proc.exitCode).toBeNull();
}, 300_000);
