// Fault matrix, "the registry leader frozen, then killed, while 30 jobs are applied": two registry
// replicas run as processes, as the chart runs them. While a renter applies 15 jobs the leader is
// frozen (SIGSTOP) for 15 s, five times its lease, then resumed; the standby must take over, and
// the old leader, on waking, must find its lead gone and exit without writing. While 15 more are
// applied the new leader is killed (-9) and a fresh replica started. Every job is placed exactly
// once (one Assignment, epoch 1), runs once at every sampled moment, succeeds, is billed exactly its
// container's run time and paid once; payouts and the renter's grants move by exactly the records.
import { AssignmentResource, type Assignment, type ComputeJob } from '../../operator/src/api/index.js';
import type { FundedTenant } from '../support/chain.js';
import { eventually } from '../support/federation.js';
import { chainProfiles, type ChainProfile } from '../support/profiles.js';
import { anyGpuJob, expectEachBilledOnce, expectPaidExactly, renterWithGrants, sampleAllJobs } from '../support/faults.js';
import { startRegistry, type AgentProcess } from '../support/operators.js';
import { custom, leaseHolder, setUp, settled, sleep, submit, tearDown, type World } from '../support/money.js';

const profile = chainProfiles()[0] as ChainProfile;
const PROVIDERS = ['alice', 'bob'];
const GRANT = 50_000_000n;
const FREEZE_MS = 15_000;

let w: World;
beforeAll(async () => (w = await setUp(profile, { agents: PROVIDERS, registryProcesses: 2 })), 180_000);
afterAll(() => tearDown(w));

async function burst(t: FundedTenant, n: number, names: string[]): Promise<void> {
  for (let i = 0; i < n; i++) {
    names.push(await submit(t, anyGpuJob(w, `${3 + (i % 3)}s`)));
    await sleep(300);
  }
}

async function assignmentsOf(j: ComputeJob): Promise<Assignment[]> {
  const list = (await custom().listClusterCustomObject({ group: AssignmentResource.group, version: AssignmentResource.version, plural: AssignmentResource.plural, labelSelector: `gpufed.io/job-uid=${j.metadata.uid ?? ''}` })) as { items: Assignment[] };
  return list.items;
}

it('places, runs, bills and pays 30 jobs exactly once across a frozen and a killed registry leader', async () => {
  const { renter: ida, marks } = await renterWithGrants(w, 'ida', GRANT, PROVIDERS);

  const sampling = sampleAllJobs();

  const names: string[] = [];
  // 1. The leader frozen mid-burst for five lease durations, then woken.
  const frozenId = (await leaseHolder()) ?? '';
  const frozen = w.registries.get(frozenId) as AgentProcess;
  const first = burst(ida, 15, names);
  await sleep(2000);
  frozen.proc.kill('SIGSTOP');
  const standby = await eventually('the standby to take the lead', async () => {
    const h = await leaseHolder();
    return h && h !== frozenId ? h : undefined;
  }, FREEZE_MS);
  await sleep(Math.max(0, FREEZE_MS - 1000));
  frozen.proc.kill('SIGCONT');
  await first;
  // On waking it finds its lead gone and exits (1), as the chart's replicas do; a fresh one replaces it.
  expect(await frozen.exited).toMatchObject({ code: 1 });
  w.registries.set('faults-registry-2', startRegistry({ identity: 'faults-registry-2', chain: profile.target() }));

  // 2. The new leader killed mid-burst; a fresh replica started.
  const second = burst(ida, 15, names);
  await sleep(2000);
  const leader = w.registries.get(standby) as AgentProcess;
  leader.proc.kill('SIGKILL');
  expect(await leader.exited).toMatchObject({ signal: 'SIGKILL' });
  w.registries.set('faults-registry-3', startRegistry({ identity: 'faults-registry-3', chain: profile.target() }));
  await second;
  await eventually('a live replica to lead', async () => {
    const h = await leaseHolder();
    return h && h !== standby && h !== frozenId ? h : undefined;
  }, 30_000);

  const done: ComputeJob[] = [];
  for (const name of names) done.push(await settled(ida, name, 300_000));
  expect(await sampling.stop()).toEqual([]);
  for (const j of done) expect([j.metadata.name, (await assignmentsOf(j)).length]).toEqual([j.metadata.name, 1]);
  const byProvider = await expectEachBilledOnce(w, done);
  process.stderr.write(`registry-leader: ${frozenId} frozen, ${standby} took over and was killed; records on alice ${byProvider.get('alice')?.length ?? 0}, on bob ${byProvider.get('bob')?.length ?? 0}\n`);
  await expectPaidExactly(w, ida, GRANT, marks, byProvider);
}, 600_000);
