// The settlement edges that used to stall, each made to happen on the real dev chain: a node that
// refuses a transaction at CheckTx (its fee under the node's minimum), a second transaction taking
// the same sequence of the settlement account, a transaction that fails inside its block, and a
// transaction the node drops from its mempool. Proposals the agent would not make (a fee too low,
// a rival at the same sequence, too little grant left) are built here with the provider's own hot
// key and `proposalFor`, and created with the agent's own registry credentials; the agent runs
// with GPUFED_FAULT_NO_PROPOSE=1 (it meters and follows, never proposes) until the edge is over,
// then normally. After each edge the job's books are exact and nothing is paid twice.
import * as k8s from '@kubernetes/client-node';
import { createHash } from 'node:crypto';
import { readFileSync } from 'node:fs';
import { SettlementResource, type ComputeJob, type Settlement, type UsageRecord } from '../../operator/src/api/index.js';
import { parseCoin } from '../../operator/src/api/coin.js';
import { isVerified } from '../../operator/src/settlement/decide.js';
import { keyAddress } from '../../operator/src/settlement/keys.js';
import { publicKeyOf, settlementAccount } from '../../operator/src/settlement/multisig.js';
import { proposalFor } from '../../operator/src/settlement/settler.js';
import { devProviderHotKey, devProviderPayout, devRegistryKey } from '../../cli/src/dev/wallets.js';
import { fundedTenant, type FundedTenant } from '../support/chain.js';
import { chainProfiles, type ChainProfile } from '../support/profiles.js';
import { eventually } from '../support/federation.js';
import { stopAgent } from '../support/operators.js';
import { RTX4090, agent, custom, ensureFeeAllowance, expectBooks, expectPayoutGrew, payoutMark, type PayoutMark, flushingMempool, jobWhen, job, podRunMs, recordsOf, setUp, settled, settlementsOf, submit, tearDown, type World } from '../support/money.js';

const profile = chainProfiles()[0] as ChainProfile;
const PROVIDER = 'alice';
const namespace = `gpufed-provider-${PROVIDER}`;
const hot = devProviderHotKey(PROVIDER);
const account = settlementAccount(publicKeyOf(hot), publicKeyOf(devRegistryKey()), profile.prefix);
const payout = devProviderPayout(PROVIDER, profile.prefix);
/** A hundredth of the node's minimum gas price: CheckTx refuses every fee at it (code 13). */
const tooLow = (() => {
  const m = /^([0-9.]+)(.+)$/.exec(profile.target().gasPrice) as RegExpExecArray;
  return `${Number(m[1]) / 100}${m[2]}`;
})();
const NO_PROPOSE = { GPUFED_FAULT_NO_PROPOSE: '1' };

let w: World;

/** The records of a finished job once all are written and verified by the registry (no agent proposes them yet). */
async function meteredRecords(t: FundedTenant, name: string): Promise<{ done: ComputeJob; records: UsageRecord[] }> {
  const done = await jobWhen(t, name, 'Succeeded', (j) => j.status?.phase === 'Succeeded');
  const records = await eventually(`the verified final record of ${name}`, async () => {
    const rs = await recordsOf(done);
    if (rs.some((r) => r.spec.final) && rs.every(isVerified)) return rs;
    // What a timeout says: each record's period, final or not, and the registry's verdict.
    const states = rs.map((r) => `${r.spec.period.start}..${r.spec.period.end}${r.spec.final ? ' final' : ''} ${r.status?.conditions?.find((c) => c.type === 'Verified')?.reason ?? 'unverified'}`);
    throw new Error(`${rs.length} records: ${states.join('; ') || 'none'}`);
  }, 60_000, 500);
  return { done, records };
}

/** A proposal built here as the agent would, from `records` (its gas simulated now). */
async function proposal(records: UsageRecord[], o: { gasPrice?: string; timeoutBlocks?: number } = {}): Promise<Settlement & { metadata: { name: string } }> {
  const payments = new Map<string, { payer: string; denom: string; amount: bigint; records: string[] }>();
  for (const r of records) {
    const c = parseCoin(r.spec.amount);
    const p = payments.get(`${r.spec.payer} ${c.denom}`) ?? { payer: r.spec.payer, denom: c.denom, amount: 0n, records: [] };
    p.amount += c.amount;
    p.records.push(r.metadata.name ?? '');
    payments.set(`${r.spec.payer} ${c.denom}`, p);
  }
  const onChain = await w.chain.account(account.address);
  if (!onChain) throw new Error(`No account ${account.address} on chain`);
  return proposalFor({
    provider: PROVIDER,
    namespace,
    chain: w.chain,
    key: hot,
    hotKey: keyAddress(hot, profile.prefix),
    payee: payout,
    account,
    onChain,
    plan: { payments: [...payments.values()], batchId: createHash('sha256').update(records.map((r) => r.metadata.name).join(',')).update(String(Date.now())).digest('hex') },
    timeoutHeight: (await w.chain.height()) + (o.timeoutBlocks ?? 30),
    ...(o.gasPrice ? { gasPrice: o.gasPrice } : {}),
  });
}

/** Creates a proposal with the agent's own registry credentials; the registry takes it from there. */
async function create(body: Settlement & { metadata: { name: string } }): Promise<string> {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(w.files.get(PROVIDER)?.kubeconfig ?? '');
  await kc.makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({ group: SettlementResource.group, version: SettlementResource.version, plural: SettlementResource.plural, namespace, body });
  return body.metadata.name;
}

const propose = async (records: UsageRecord[], o: { gasPrice?: string; timeoutBlocks?: number } = {}) => create(await proposal(records, o));

async function settlement(name: string): Promise<Settlement> {
  return (await custom().getNamespacedCustomObject({ group: SettlementResource.group, version: SettlementResource.version, plural: SettlementResource.plural, namespace, name })) as Settlement;
}

function settlementWhen(name: string, what: string, ok: (s: Settlement) => boolean, timeoutMs = 60_000): Promise<Settlement> {
  return eventually(`settlement ${name} ${what}`, async () => {
    const s = await settlement(name);
    return ok(s) ? s : undefined;
  }, timeoutMs, 100);
}

const broadcast = (s: Settlement) => s.status?.conditions?.find((c) => c.type === 'Broadcast');
const createdAt = (s: Settlement) => Date.parse(String(s.metadata.creationTimestamp));

/** Restarts the provider's agent as it normally runs, and checks the job's books: exact, paid once, the payout up by exactly that. */
async function paysOnceNormally(t: FundedTenant, name: string, payoutBefore: PayoutMark): Promise<UsageRecord[]> {
  await stopAgent(w.agents.get(PROVIDER));
  agent(w, PROVIDER);
  const done = await settled(t, name);
  const records = await recordsOf(done);
  expectBooks(records, w.price(RTX4090), await podRunMs(PROVIDER, done));
  await expectPayoutGrew(w, payoutBefore, records);
  return records;
}

beforeAll(async () => {
  w = await setUp(profile);
  // Hand-built proposals pay their fees as the agent's do: from the hot key, through the account's allowance.
  await ensureFeeAllowance(w, PROVIDER);
}, 180_000);
afterAll(() => tearDown(w));
afterEach(async () => {
  await stopAgent(w.agents.get(PROVIDER));
  w.agents.delete(PROVIDER);
});

it('backs off when the node refuses the fee (code 13), says so in a condition, and pays once the fee is right', async () => {
  const before = await payoutMark(w, PROVIDER);
  const seen = new Set((await settlementsOf(PROVIDER)).map((s) => s.metadata.name));
  const a = agent(w, PROVIDER, {}, PROVIDER, [`--gas-price=${tooLow}`, '--settlement-timeout-blocks=5']);
  const name = await submit(w.renter, job(RTX4090, profile.denom, { duration: '4s' }));
  const { records } = await meteredRecords(w.renter, name);
  const names = new Set(records.map((r) => r.metadata.name));
  const mine = async () => (await settlementsOf(PROVIDER)).filter((s) => !seen.has(s.metadata.name) && s.spec.records.some((r) => names.has(r))).sort((x, y) => createdAt(x) - createdAt(y));
  const dead = await eventually('three refused proposals to expire', async () => {
    const ss = await mine();
    return ss.filter((s) => s.status?.state === 'Expired').length >= 3 ? ss : undefined;
  }, 120_000, 1000);
  for (const s of dead.filter((x) => x.status?.state === 'Expired')) {
    expect(broadcast(s)).toMatchObject({ status: 'False', reason: 'Code13' });
    expect(broadcast(s)?.message).toMatch(/insufficient fee/);
    expect(s.status?.message).toMatch(/timeout height/);
  }
  // Not a new proposal every tick (2 s scrapes, 4 s periods): after two failures it waited two periods.
  const [, second, third] = dead;
  expect(createdAt(third as Settlement) - createdAt(second as Settlement)).toBeGreaterThanOrEqual(2 * 4000 - 1000);
  expect(readFileSync(a.log, 'utf8')).toMatch(/Backing off: the last settlements paid nothing/);
  await expectPayoutGrew(w, before, [], records);
  expect((await recordsOf((await jobWhen(w.renter, name, 'read', () => true)))).every((r) => r.status?.state !== 'Committed')).toBe(true);
  await paysOnceNormally(w.renter, name, before);
  expect((await mine()).filter((s) => s.status?.state === 'Committed')).toHaveLength(1);
});

it('recovers when another transaction takes the sequence: the first is Superseded, the records it alone held are paid later, once', async () => {
  const before = await payoutMark(w, PROVIDER);
  agent(w, PROVIDER, NO_PROPOSE);
  const name = await submit(w.renter, job(RTX4090, profile.denom, { duration: '9s' }));
  const { records } = await meteredRecords(w.renter, name);
  const due = records.filter((r) => parseCoin(r.spec.amount).amount > 0n);
  expect(due.length).toBeGreaterThan(1);
  // S1: every record, at a fee the node refuses; co-signed, it sits at the account's sequence without a block.
  const s1 = await propose(due, { gasPrice: tooLow, timeoutBlocks: 60 });
  const refused = await settlementWhen(s1, 'co-signed and refused by the node', (s) => s.status?.state === 'Cosigned' && broadcast(s)?.status === 'False');
  // S2: the first record only, at the same sequence, a proper fee: it takes the sequence.
  const s2 = await propose(due.slice(0, 1));
  const paid = await settlementWhen(s2, 'Committed', (s) => s.status?.state === 'Committed');
  expect(paid.spec.sequence).toBe(refused.spec.sequence);
  const superseded = await settlementWhen(s1, 'Superseded', (s) => s.status?.state === 'Superseded');
  expect(superseded.status?.message).toMatch(/Another transaction used sequence/);
  await expectPayoutGrew(w, before, due.slice(0, 1), records);
  // The rest: proposed by the agent as usual, at the next sequence; nothing of S2 again.
  const books = await paysOnceNormally(w.renter, name, before);
  const first = books.find((r) => r.metadata.name === due[0]?.metadata.name);
  expect(first?.status).toMatchObject({ state: 'Committed', settlement: s2 });
});

it('pays nothing for a transaction that fails in its block (the grant too small when it ran), and pays its records once the renter grants enough', async () => {
  const hal = await fundedTenant(w.chain, 'hal', 50_000_000n, profile);
  await w.chain.grantSpend(hal.key, account.address, { amount: 100_000_000n, denom: profile.denom }, [payout]);
  const before = await payoutMark(w, PROVIDER);
  agent(w, PROVIDER, NO_PROPOSE);
  const name = await submit(hal, job(RTX4090, profile.denom, { duration: '5s' }));
  const { records } = await meteredRecords(hal, name);
  // Proposed (its gas simulated) while the grant covers it; then the renter lowers its grant to 1
  // base unit before it runs: CheckTx (fees and signatures only) passes, the MsgExec fails in the block.
  const body = await proposal(records.filter((r) => parseCoin(r.spec.amount).amount > 0n));
  await w.chain.grantSpend(hal.key, account.address, { amount: 1n, denom: profile.denom }, [payout]);
  const s = await create(body);
  const failed = await settlementWhen(s, 'Failed', (x) => x.status?.state === 'Failed');
  expect(failed.status?.message).toMatch(/failed in block \d+ \(code \d+\).*spend limit/);
  expect(await w.chain.findTx(failed.status?.txHash ?? '', { fromHeight: failed.status?.cosignedHeight ?? 1, toHeight: failed.status?.height ?? 0 })).toMatchObject({ height: failed.status?.height });
  await expectPayoutGrew(w, before, [], records);
  await w.chain.grantSpend(hal.key, account.address, { amount: 100_000_000n, denom: profile.denom }, [payout]);
  await paysOnceNormally(hal, name, before);
});

it('sends again a transaction the node dropped from its mempool, and it commits once', async () => {
  agent(w, PROVIDER, NO_PROPOSE);
  // Flushing races the node's block proposals (every 0.5 s): a send that lands between two flushes
  // and right before a proposal is committed before it can be dropped. Such an attempt shows nothing
  // about dropped transactions (it is paid, and its books are checked below); try again with a new job.
  const paidEarly: string[] = [];
  for (let attempt = 1; ; attempt++) {
    const before = await payoutMark(w, PROVIDER);
    const name = await submit(w.renter, job(RTX4090, profile.denom, { duration: '5s' }));
    const { records } = await meteredRecords(w.renter, name);
    // Empty the node's mempool for 4 s after the registry first got the transaction into it: every
    // send of it meanwhile is dropped.
    const flushing = flushingMempool(profile.rpcUrl);
    const s = await (async () => {
      try {
        const proposed = await propose(records.filter((r) => parseCoin(r.spec.amount).amount > 0n), { timeoutBlocks: 60 });
        await settlementWhen(proposed, 'in the mempool', (x) => broadcast(x)?.reason === 'InMempool');
        await new Promise((r) => setTimeout(r, 4000));
        return proposed;
      } finally {
        await flushing.stop();
      }
    })();
    const stoppedAt = await w.chain.height();
    const dropped = await settlement(s);
    if (dropped.status?.state !== 'Cosigned' && attempt < 3) {
      expect(dropped.status?.state).toBe('Committed');
      paidEarly.push(name);
      continue;
    }
    // Evicted: in no block so far and not in the mempool, though the node once took it.
    expect(dropped.status?.state).toBe('Cosigned');
    expect(await w.chain.scanBlocks(dropped.status?.txHash ?? '', dropped.status?.cosignedHeight ?? 1, stoppedAt)).toBeUndefined();
    // The registry sends it again (every 2 s here) until it is in a block or past its timeout height.
    const paid = await settlementWhen(s, 'Committed', (x) => x.status?.state === 'Committed', 60_000);
    expect(paid.status?.height).toBeGreaterThan(stoppedAt);
    expect(paid.status?.txHash).toBe(dropped.status?.txHash);
    await paysOnceNormally(w.renter, name, before);
    break;
  }
  for (const name of paidEarly) {
    const done = await settled(w.renter, name);
    expectBooks(await recordsOf(done), w.price(RTX4090), await podRunMs(PROVIDER, done));
  }
}, 300_000);
