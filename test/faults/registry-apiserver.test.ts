// Fault matrix, "the registry's kube-apiserver killed just after a settlement transaction was
// signed": the moment a Settlement of alice's is Cosigned (the transaction signed by both keys and
// written to its status, write-ahead, before it is sent), the registry's API server is stopped for
// 15 s and started again. Everyone is blind to the registry meanwhile; the chain is not. Once it is
// back, the registry finds the co-signed bytes in the status and follows them to their block:
// each record is paid exactly once (no second transaction pays what the first one did), the
// payout grows by exactly the job's records, and the job ends Succeeded and Settled.
import { downFor } from '../support/faults.js';
import { chainProfiles, type ChainProfile } from '../support/profiles.js';
import { RTX4090, expectBooks, expectPayoutGrew, job, jobWhen, payoutMark, podRunMs, recordsOf, setUp, settled, settlementsOf, sleep, submit, tearDown, type World } from '../support/money.js';

const profile = chainProfiles()[0] as ChainProfile;
const DOWN_MS = 15_000;

let w: World;
beforeAll(async () => (w = await setUp(profile, { agents: ['alice'] })), 180_000);
afterAll(async () => {
  await tearDown(w);
  // The registry's kube-controller-manager outlived its API server's restart but its token controller
  // filled no new Secret for over 30 s afterwards (the next file could onboard no tenant): restart it,
  // so each cell starts on a healthy federation.
  await downFor('registry/kube-controller-manager', 0);
});

it('follows a settlement co-signed just before the registry API went down to its block, and pays each record once', async () => {
  const mark = await payoutMark(w, 'alice');
  const seen = new Set((await settlementsOf('alice')).map((s) => s.metadata.name));
  const name = await submit(w.renter, job(RTX4090, profile.denom, { duration: '10s' }));
  await jobWhen(w.renter, name, 'Running', (j) => j.status?.phase === 'Running');
  // The first Settlement of this file to be co-signed: the API server goes down within a poll (100 ms) of it.
  let cosigned: string | undefined;
  for (const deadline = Date.now() + 90_000; !cosigned && Date.now() < deadline; await sleep(100)) {
    cosigned = (await settlementsOf('alice')).find((s) => !seen.has(s.metadata.name) && s.status?.state === 'Cosigned')?.metadata.name;
  }
  expect(cosigned).toBeDefined();
  await downFor('registry/kube-apiserver', DOWN_MS);

  const done = await settled(w.renter, name, 180_000);
  expect(done.status?.phase).toBe('Succeeded');
  expect(done.status?.placement).toMatchObject({ provider: 'alice', epoch: 1 });
  const records = await recordsOf(done);
  expectBooks(records, w.price(RTX4090), await podRunMs('alice', done));
  await expectPayoutGrew(w, mark, records);
  // The one signed at the outage committed; no record of the job is in two committed Settlements.
  const mine = (await settlementsOf('alice')).filter((s) => !seen.has(s.metadata.name));
  expect(mine.find((s) => s.metadata.name === cosigned)?.status?.state).toBe('Committed');
  const names = records.map((r) => r.metadata.name ?? '');
  const committed = mine.filter((s) => s.status?.state === 'Committed').flatMap((s) => s.spec.records.filter((r) => names.includes(r)));
  expect(committed.sort()).toEqual([...new Set(committed)].sort());
}, 300_000);
