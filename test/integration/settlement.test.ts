// Metering and settlement end to end on the real federation, on each chain profile the test
// federation runs (the dev chain, `cosmos` addresses and `ustake`; and a second wasmd built with the
// `akash` prefix, paying in `uakt`, whose node indexes no transactions): the providers' agents run as real processes (killed with
// SIGKILL at exact points), meter from their clusters' real Prometheus fed by kube-state-metrics,
// and propose settlements; the registry verifies every record, co-signs only what it verified
// with its half of each provider's 2-of-2 settlement account, and follows each transaction on the
// real wasmd chain. Every test checks money on chain: what the payout received equals the sum of
// the verified records, and nothing is ever paid twice.
import { readFileSync } from 'node:fs';
import { Secp256k1 } from '@cosmjs/crypto';
import type { Settlement } from '../../operator/src/api/index.js';
import { verifyUsageRecord } from '../../operator/src/metering/evidence.js';
import { devProviderHotKey, devProviderPayout, devSettlementAccount } from '../../cli/src/dev/wallets.js';
import { startComponent, stopComponent } from '../../cli/src/dev/federation.js';
import { balance, fundedTenant, send } from '../support/chain.js';
import { chainProfiles, type ChainProfile } from '../support/profiles.js';
import { eventually, kubectl, testDir } from '../support/federation.js';
import { stopAgent, type AgentProcess } from '../support/operators.js';
import { A6000, RTX3090, RTX4090, agent, condition, ensureFeeAllowance, expectBooks, expectPayoutGrew, payoutMark, flushingMempool, getJob, job, jobWhen, podRunMs, recordsOf, setUp, settled, settlementsOf, sleep, submit, sum, tearDown, type World } from '../support/money.js';

describe.each(chainProfiles())('metering and settlement on the $name chain ($prefix, $denom)', (profile) => {
  let w: World;
  beforeAll(async () => (w = await setUp(profile, { agents: ['alice'] })), 180_000);
  afterAll(() => tearDown(w));

  it('pays a 2-GPU job over several periods exactly floor(price × GPU-ms / 3.6e6), from the grant to the 2-of-2 account, once', async () => {
    const payout = devProviderPayout('alice', profile.prefix);
    const account = devSettlementAccount('alice', profile.prefix);
    const before = await payoutMark(w, 'alice');
    const grantBefore = (await w.chain.grant(w.renter.address, account))?.spendLimit.get(profile.denom) ?? 0n;
    const name = await submit(w.renter, job(RTX3090, profile.denom, { count: 2, duration: '9s' }));
    const done = await settled(w.renter, name);
    const records = await recordsOf(done);
    const gpuMs = 2 * (await podRunMs('alice', done));
    expect(records.length).toBeGreaterThan(1); // several periods, each rounded on its own total
    expectBooks(records, w.price(RTX3090), gpuMs);
    await expectPayoutGrew(w, before, records);
    expect((await w.chain.grant(w.renter.address, account))?.spendLimit.get(profile.denom)).toBe(grantBefore - sum(records));
    expect(done.status).toMatchObject({ cost: `${sum(records)}${profile.denom}`, paid: `${sum(records)}${profile.denom}`, usage: { gpuMilliseconds: gpuMs } });
    // Every record is signed by alice's hot key and names its evidence; every payment is a Settlement the registry co-signed and found committed.
    for (const r of records) {
      expect(r.spec).toMatchObject({ payer: w.renter.address, payee: payout, model: RTX3090, gpus: 2 });
      expect(r.spec.evidenceDigest).toMatch(/^[0-9a-f]{64}$/);
      expect(verifyUsageRecord(r.spec, Secp256k1.makeKeypair(devProviderHotKey('alice')).pubkey)).toBe(true);
    }
    const paidBy = new Set(records.filter((r) => r.status?.state === 'Committed').map((r) => r.status?.settlement));
    const stls = (await settlementsOf('alice')).filter((s) => paidBy.has(s.metadata.name));
    expect(stls.length).toBeGreaterThan(0);
    for (const s of stls) {
      expect(s.spec.account).toBe(account);
      expect(s.status).toMatchObject({ state: 'Committed' });
      // Within the blocks it can be in: the akash profile's node has no tx index, so this scans them.
      expect(await w.chain.findTx(s.status?.txHash ?? '', { fromHeight: s.status?.cosignedHeight ?? 1, toHeight: s.status?.height ?? 0 })).toMatchObject({ code: 0, height: s.status?.height });
    }
    // Utilisation and energy from the DCGM-shaped exporter (90 % is what it reports for a busy GPU).
    expect(records.some((r) => r.spec.gpuUtilizationPercent === 90 && (r.spec.energyMillijoules ?? 0) > 0)).toBe(true);
  });

  it.each([
    ['after proposing a settlement (the registry co-signs and sends it by itself)', 'after-propose'],
    ['after sending a co-signed settlement', 'after-broadcast'],
  ])('pays exactly once when the agent is killed -9 %s', async (_when, point) => {
    const before = await payoutMark(w, 'bob');
    // The agent sends a co-signed transaction only if it sees it co-signed before a block holds it,
    // and the registry sends it first: the mempool is emptied until the kill, so the agent does.
    if (point === 'after-broadcast') await ensureFeeAllowance(w, 'bob');
    const flushing = point === 'after-broadcast' ? flushingMempool(profile.rpcUrl) : undefined;
    const dying = agent(w, 'bob', { GPUFED_FAULT_KILL_AT: point });
    const name = await submit(w.renter, job(A6000, profile.denom, { duration: '5s' }));
    try {
      expect(await dying.exited).toMatchObject({ signal: 'SIGKILL' });
    } finally {
      await flushing?.stop();
    }
    // In flight: proposed (no state yet) or co-signed. Other files leave refused forgeries behind in bob's namespace.
    const atDeath = (await settlementsOf('bob')).filter((s) => s.status?.state === undefined || s.status.state === 'Cosigned');
    expect(atDeath).toHaveLength(1);
    // With the agent dead, the registry co-signs and sends the proposal: it commits all the same.
    const proposed = atDeath[0] as Settlement;
    const paid = await eventually('the settlement proposed before the kill to commit', async () => {
      const s = (await settlementsOf('bob')).find((x) => x.metadata.name === proposed.metadata.name);
      return s?.status?.state === 'Committed' ? s : undefined;
    }, 60_000, 500);
    agent(w, 'bob');
    const done = await settled(w.renter, name);
    const records = await recordsOf(done);
    expectBooks(records, w.price(A6000), await podRunMs('bob', done));
    for (const r of records.filter((x) => paid.spec.records.includes(x.metadata.name ?? ''))) expect(r.status).toMatchObject({ state: 'Committed', settlement: paid.metadata.name, txHash: paid.status?.txHash });
    await expectPayoutGrew(w, before, records);
    await stopAgent(w.agents.get('bob'));
  });

  it('lets only one of two agent replicas of a provider propose (the signer Lease)', async () => {
    const first = w.agents.get('alice') as AgentProcess;
    const second = agent(w, 'alice', {}, 'alice-2'); // a second replica, e.g. a rollout overlapping the old pod
    const before = await payoutMark(w, 'alice');
    const name = await submit(w.renter, job(RTX4090, profile.denom, { duration: '6s' }));
    const done = await settled(w.renter, name);
    const records = await recordsOf(done);
    expectBooks(records, w.price(RTX4090), await podRunMs('alice', done));
    await expectPayoutGrew(w, before, records);
    const proposedBy = [first, second].filter((a) => readFileSync(a.log, 'utf8').includes('Proposed a settlement'));
    expect(proposedBy).toEqual([first]);
    await stopAgent(second);
    w.agents.delete('alice-2');
  });
});

describe('settlement under faults, on the dev chain', () => {
  const profile = chainProfiles()[0] as ChainProfile;
  let w: World;
  beforeAll(async () => (w = await setUp(profile, { agents: ['alice'] })), 180_000);
  afterAll(() => tearDown(w));

  it('settles when the chain comes back after being stopped for a while, nothing twice', async () => {
    const before = await payoutMark(w, 'alice');
    const name = await submit(w.renter, job(RTX4090, profile.denom, { duration: '10s' }));
    await jobWhen(w.renter, name, 'Running', (j) => j.status?.phase === 'Running');
    await stopComponent(testDir(), 'chain');
    try {
      // The job ends and is metered to its final record while the chain is down; nothing is paid.
      const j = await getJob(w.renter, name);
      const whileDown = await eventually('the final record', async () => {
        const rs = await recordsOf(j);
        return rs.some((r) => r.spec.final) ? rs : undefined;
      }, 40_000, 1000);
      expect(whileDown.every((r) => r.status?.state !== 'Committed')).toBe(true);
    } finally {
      await startComponent(testDir(), 'chain');
    }
    const done = await settled(w.renter, name);
    const records = await recordsOf(done);
    expectBooks(records, w.price(RTX4090), await podRunMs('alice', done));
    await expectPayoutGrew(w, before, records);
  });

  it("loses nothing when the provider's Prometheus is down for two periods of a running job", async () => {
    const name = await submit(w.renter, job(RTX4090, profile.denom, { duration: '14s' }));
    await jobWhen(w.renter, name, 'Running', (j) => j.status?.phase === 'Running');
    await stopComponent(testDir(), 'alice/prometheus');
    try {
      await sleep(9000);
    } finally {
      await startComponent(testDir(), 'alice/prometheus');
    }
    const done = await settled(w.renter, name);
    // From the container's own timestamps: the gap is billed once, when the data after it arrives.
    expectBooks(await recordsOf(done), w.price(RTX4090), await podRunMs('alice', done));
  });

  it('pays up to an exhausted grant, never more, and stops the job with PaymentExhausted', async () => {
    const dave = await fundedTenant(w.chain, 'dave', 10_000_000n);
    const account = devSettlementAccount('alice');
    // 1.2 STAKE/h is 333.3 ustake a second: the limit covers the first period and a bit more.
    await w.chain.grantSpend(dave.key, account, { amount: 3000n, denom: profile.denom }, [devProviderPayout('alice')]);
    const before = await payoutMark(w, 'alice');
    const name = await submit(dave, job(RTX4090, profile.denom, { duration: '60s' }));
    const failed = await jobWhen(dave, name, 'Failed with PaymentExhausted', (j) => condition(j, 'Failed')?.reason === 'PaymentExhausted', 60_000);
    expect(failed.status?.phase).toBe('Failed');
    await sleep(6000); // the last records are metered and offered
    const records = await recordsOf(failed);
    const paid = records.filter((r) => r.status?.state === 'Committed');
    expect(sum(paid)).toBeGreaterThan(0n);
    expect(sum(paid)).toBeLessThanOrEqual(3000n);
    await expectPayoutGrew(w, before, paid, records);
    expect(records.some((r) => r.status?.state !== 'Committed')).toBe(true); // what the cap did not cover stays owed
    const left = (await w.chain.grant(dave.address, account))?.spendLimit.get(profile.denom) ?? 0n;
    expect(left).toBe(3000n - sum(paid));
  });

  it('settles the other renter of a batch when one cannot pay, and stops only the broke one', async () => {
    const erin = await fundedTenant(w.chain, 'erin', 2_000_000n);
    await w.chain.grantSpend(erin.key, devSettlementAccount('alice'), { amount: 1_000_000n, denom: profile.denom }, [devProviderPayout('alice')]);
    const erinJob = await submit(erin, job(RTX3090, profile.denom, { duration: '40s' }));
    const carolJob = await submit(w.renter, job(RTX3090, profile.denom, { duration: '12s' }));
    await jobWhen(erin, erinJob, 'Running', (j) => j.status?.phase === 'Running');
    // erin spends her coins elsewhere: the grant stands, the balance does not.
    await send(w.chain, erin.key, w.renter.address, (await balance(w.chain, erin.address)) - 500n);
    const stopped = await jobWhen(erin, erinJob, 'Failed with PaymentExhausted', (j) => condition(j, 'Failed')?.reason === 'PaymentExhausted', 60_000);
    expect(stopped.status?.phase).toBe('Failed');
    const done = await settled(w.renter, carolJob);
    expectBooks(await recordsOf(done), w.price(RTX3090), await podRunMs('alice', done));
    expect((await recordsOf(stopped)).some((r) => r.status?.state !== 'Committed')).toBe(true);
  });

  it('stops a job whose renter revokes the grant mid-job', async () => {
    const frank = await fundedTenant(w.chain, 'frank', 5_000_000n);
    const account = devSettlementAccount('alice');
    await w.chain.grantSpend(frank.key, account, { amount: 1_000_000n, denom: profile.denom }, [devProviderPayout('alice')]);
    const name = await submit(frank, job(RTX4090, profile.denom, { duration: '60s' }));
    await jobWhen(frank, name, 'Running', (j) => j.status?.phase === 'Running');
    await w.chain.revokeSpend(frank.key, account);
    const stopped = await jobWhen(frank, name, 'Failed with PaymentExhausted', (j) => condition(j, 'Failed')?.reason === 'PaymentExhausted', 60_000);
    expect(stopped.status?.message).toMatch(/grant|PaymentExhausted/);
  });

  it('does not place a job whose renter granted only another denom, and says why', async () => {
    const gina = await fundedTenant(w.chain, 'gina', 1_000_000n);
    await w.chain.grantSpend(gina.key, devSettlementAccount('alice'), { amount: 1_000_000n, denom: 'uatom' }, [devProviderPayout('alice')]);
    const name = await submit(gina, job(RTX4090, profile.denom, { duration: '5s' }));
    const waiting = await jobWhen(gina, name, 'unschedulable for payment', (j) => /payment: the grant has no limit in ustake/.test(condition(j, 'Scheduled')?.message ?? ''), 30_000);
    expect(waiting.status?.phase).toBe('Pending');
    await kubectl('registry', ['delete', 'computejob', '-n', gina.namespace, name, '--wait=false']);
  });
});
