// Fault matrix, "the renter revokes a grant mid-job, then grants again": the job stops with a
// clear PaymentExhausted condition; no transaction pays the renter's records while there is no
// grant; after the new grant, what was owed is paid, each record once, and nothing more.
import { devProviderPayout, devSettlementAccount } from '../../cli/src/dev/wallets.js';
import { parseCoin } from '../../operator/src/api/coin.js';
import { fundedTenant } from '../support/chain.js';
import { eventually } from '../support/federation.js';
import { chainProfiles, type ChainProfile } from '../support/profiles.js';
import { expectChain } from '../support/faults.js';
import { RTX4090, condition, expectPayoutGrew, job, jobWhen, payoutMark, recordsOf, setUp, settlementsOf, submit, sum, tearDown, type World } from '../support/money.js';

const profile = chainProfiles()[0] as ChainProfile;
let w: World;

beforeAll(async () => (w = await setUp(profile, { agents: ['alice'] })), 180_000);
afterAll(() => tearDown(w));

it('stops the job when the grant is revoked, pays nothing without a grant, and pays what was owed once the renter grants again', async () => {
  const ivy = await fundedTenant(w.chain, 'ivy', 5_000_000n);
  const account = devSettlementAccount('alice', profile.prefix);
  const grant = () => w.chain.grantSpend(ivy.key, account, { amount: 1_000_000n, denom: profile.denom }, [devProviderPayout('alice', profile.prefix)]);
  await grant();
  const mark = await payoutMark(w, 'alice');
  const name = await submit(ivy, job(RTX4090, profile.denom, { duration: '60s' }));
  await jobWhen(ivy, name, 'Running', (j) => j.status?.phase === 'Running');
  // At least one period paid while the grant stands.
  const running = await jobWhen(ivy, name, 'paid in part', (j) => j.status?.phase === 'Running' && j.status.paid !== undefined && parseCoin(j.status.paid).amount > 0n, 60_000);
  expect(running.status?.phase).toBe('Running');

  await w.chain.revokeSpend(ivy.key, account);
  const revokedAt = await w.chain.height();
  const stopped = await jobWhen(ivy, name, 'Failed with PaymentExhausted', (j) => condition(j, 'Failed')?.reason === 'PaymentExhausted', 60_000);
  expect(stopped.status?.phase).toBe('Failed');
  expect(condition(stopped, 'Failed')?.message).toMatch(/grant|pay/i);
  // The last records are metered; while there is no grant none of them is paid.
  const owed = await eventually('the final record, unpaid', async () => {
    const rs = await recordsOf(stopped);
    return rs.some((r) => r.spec.final) ? rs : undefined;
  }, 60_000, 1000);
  expect(owed.some((r) => r.status?.state !== 'Committed')).toBe(true);
  const regrantAt = await w.chain.height();
  await grant();

  // Paid after the new grant: every record of the job, each once.
  const paid = await eventually('every record paid after the new grant', async () => {
    const rs = await recordsOf(stopped);
    return rs.length > 0 && rs.every((r) => ['Committed', 'NothingDue'].includes(r.status?.state ?? '')) ? rs : undefined;
  }, 90_000, 1000);
  expectChain(paid);
  expect(sum(paid)).toBe((w.price(RTX4090) * BigInt(paid.at(-1)?.spec.gpuMilliseconds.cumulative ?? 0)) / 3_600_000n);
  await expectPayoutGrew(w, mark, paid);
  // No settlement of these records committed between the revocation and the new grant.
  const names = new Set(paid.map((r) => r.metadata.name));
  const commits = (await settlementsOf('alice')).filter((s) => s.status?.state === 'Committed' && s.spec.records.some((r) => names.has(r)));
  expect(commits.filter((s) => (s.status?.height ?? 0) > revokedAt && (s.status?.height ?? 0) <= regrantAt)).toEqual([]);
  expect(commits.some((s) => (s.status?.height ?? 0) > regrantAt)).toBe(true);
  // The new grant paid exactly what was still owed.
  const afterRegrant = paid.filter((r) => commits.some((s) => (s.status?.height ?? 0) > regrantAt && s.spec.records.includes(r.metadata.name ?? '')));
  expect((await w.chain.grant(ivy.address, account))?.spendLimit.get(profile.denom)).toBe(1_000_000n - sum(afterRegrant));
}, 300_000);
