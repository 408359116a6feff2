import type { UsageRecord } from '../api/index.js';
import { batchMemo, checkMemo, planSettlement, totalOf } from './batch.js';
import { costOf, covers, type PayerFunds } from './grants.js';

const PAYEE = 'cosmos1tlw2rnzhrexvp0rtwvtrq9527x6wpcmvcl5sk0';
const CAROL = 'cosmos1hgaht9uh5ng8aqvq75ft9ct44vc2unh2tqx662';
const DAVE = 'cosmos1qypqxpq9qcrsszg2pvxq6rs0zqg3yyc5lzv7xu';
const NOW = Date.parse('2026-11-21T12:00:00Z');

let n = 0;
function record(payer: string, amount: string, opts: { end?: string; job?: string } = {}): UsageRecord {
  n++;
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'UsageRecord',
    metadata: { name: `r${String(n).padStart(3, '0')}` },
    spec: { assignmentName: 'a', jobRef: { namespace: payer === CAROL ? 'carol' : 'dave', name: opts.job ?? 'train', uid: 'u' }, epoch: 1, model: 'M', gpus: 1, period: { start: '2026-11-21T11:00:00Z', end: opts.end ?? `2026-11-21T11:${String(n % 60).padStart(2, '0')}:00Z` }, gpuMilliseconds: { cumulative: 1, delta: 1 }, pricePerGpuHour: '1ustake', amount, payer, payee: PAYEE, evidenceDigest: '0'.repeat(64) },
  };
}
const funds = (limit: bigint | undefined, balance: bigint, extra: Partial<NonNullable<PayerFunds['grant']>> = {}): PayerFunds => ({
  ...(limit === undefined ? {} : { grant: { spendLimit: new Map([['ustake', limit]]), allowList: [PAYEE], ...extra } }),
  balance: new Map([['ustake', balance]]),
});

describe('covers', () => {
  const amount = { amount: 100n, denom: 'ustake' };
  const cases: [string, PayerFunds, string | undefined, bigint][] = [
    ['a live grant with room and a balance', funds(1000n, 1000n), undefined, 0n],
    ['no grant at all (never made, revoked, or used up)', funds(undefined, 1000n), 'NoGrant', 0n],
    ['expired', funds(1000n, 1000n, { expiresAtMs: NOW - 1 }), 'GrantExpired', 0n],
    ['payee not in the allow list', funds(1000n, 1000n, { allowList: [CAROL] }), 'PayeeNotAllowed', 0n],
    ['another denom only', { grant: { spendLimit: new Map([['uatom', 1000n]]), allowList: [] }, balance: new Map([['ustake', 1000n]]) }, 'DenomNotGranted', 0n],
    ['limit too small: pays up to the limit', funds(60n, 1000n), 'GrantExhausted', 60n],
    ['balance short: pays up to the balance', funds(1000n, 30n), 'BalanceShort', 30n],
  ];
  it.each(cases)('%s', (_name, f, reason, payable) => {
    const v = covers(f, amount, PAYEE, NOW);
    if (reason === undefined) expect(v).toEqual({ ok: true });
    else expect(v).toMatchObject({ ok: false, reason, payable });
  });

  it('prices the first settlement periods rounded up: 2 GPUs for 5 minutes at 1.2 STAKE/h', () => {
    expect(costOf({ amount: 1_200_000n, denom: 'ustake' }, 2, 300)).toEqual({ amount: 200_000n, denom: 'ustake' });
    expect(costOf({ amount: 7n, denom: 'ustake' }, 1, 1)).toEqual({ amount: 1n, denom: 'ustake' });
  });
});

describe('planSettlement', () => {
  it('sends one MsgSend per payer with the sum of its records, payers in address order', () => {
    const rs = [record(CAROL, '100ustake'), record(DAVE, '5ustake'), record(CAROL, '50ustake')];
    const plan = planSettlement({ records: rs, funds: new Map([[CAROL, funds(1000n, 1000n)], [DAVE, funds(10n, 10n)]]), payee: PAYEE, nowMs: NOW });
    expect(plan.payments).toEqual([
      { payer: CAROL, denom: 'ustake', amount: 150n, records: ['r001', 'r003'] },
      { payer: DAVE, denom: 'ustake', amount: 5n, records: ['r002'] },
    ].sort((a, b) => a.payer.localeCompare(b.payer)));
    expect(plan.isolated).toEqual([]);
    expect(plan.batchId).toMatch(/^[0-9a-f]{64}$/);
    expect(planSettlement({ records: [...rs].reverse(), funds: new Map([[CAROL, funds(1000n, 1000n)], [DAVE, funds(10n, 10n)]]), payee: PAYEE, nowMs: NOW }).batchId).toBe(plan.batchId);
  });

  it('isolates a broke payer and still pays the other one', () => {
    const plan = planSettlement({ records: [record(CAROL, '100ustake', { job: 'a' }), record(DAVE, '5ustake', { job: 'b' })], funds: new Map([[CAROL, funds(1000n, 0n)], [DAVE, funds(10n, 10n)]]), payee: PAYEE, nowMs: NOW });
    expect(plan.payments.map((p) => p.payer)).toEqual([DAVE]);
    expect(plan.isolated).toEqual([expect.objectContaining({ payer: CAROL, reason: 'BalanceShort', jobs: ['carol/a'] })]);
  });

  it('pays an exhausted grant up to its cap, oldest records first, and never more', () => {
    const rs = [record(CAROL, '40ustake', { end: '2026-11-21T11:05:00Z' }), record(CAROL, '40ustake', { end: '2026-11-21T11:10:00Z' }), record(CAROL, '40ustake', { end: '2026-11-21T11:15:00Z' })];
    const plan = planSettlement({ records: rs, funds: new Map([[CAROL, funds(90n, 1000n)]]), payee: PAYEE, nowMs: NOW });
    expect(plan.payments).toEqual([{ payer: CAROL, denom: 'ustake', amount: 80n, records: [rs[0]?.metadata.name, rs[1]?.metadata.name] }]);
    expect(plan.isolated[0]).toMatchObject({ reason: 'GrantExhausted', records: [rs[2]?.metadata.name] });
  });

  it('sends nothing for zero amounts (the carry lives in the cumulative GPU time)', () => {
    const rs = [record(CAROL, '0ustake'), record(CAROL, '10ustake')];
    const plan = planSettlement({ records: rs, funds: new Map([[CAROL, funds(1000n, 1000n)]]), payee: PAYEE, nowMs: NOW });
    expect(plan.payments).toEqual([{ payer: CAROL, denom: 'ustake', amount: 10n, records: [rs[1]?.metadata.name] }]);
  });

  it('totals what a plan moves per denom, as a Settlement writes it', () => {
    expect(totalOf([{ payer: CAROL, denom: 'ustake', amount: 5n, records: [] }, { payer: DAVE, denom: 'uatom', amount: 2n, records: [] }, { payer: DAVE, denom: 'ustake', amount: 7n, records: [] }])).toBe('2uatom,12ustake');
  });

  it('puts at most 50 payers in one transaction and defers the rest, the same ones on every run', () => {
    const payers = Array.from({ length: 53 }, (_, i) => `cosmos1${String(i).padStart(3, '0')}`);
    const rs = payers.map((p) => record(p, '1ustake'));
    const f = new Map(payers.map((p) => [p, funds(10n, 10n)]));
    const plan = planSettlement({ records: rs, funds: f, payee: PAYEE, nowMs: NOW });
    expect(plan.payments).toHaveLength(50);
    expect(plan.deferred).toEqual(payers.slice(50));
  });
});

describe('memo', () => {
  it('names the provider and the batch, and a memo over the chain limit is refused before signing', () => {
    const memo = batchMemo('alice', 'f'.repeat(64));
    expect(memo).toBe(`gpufed/v1/alice/${'f'.repeat(64)}`);
    expect(() => checkMemo(memo)).not.toThrow();
    expect(() => checkMemo(batchMemo('a'.repeat(200), 'f'.repeat(64)))).toThrow(/275 bytes; the chain allows 256\. Nothing was signed/);
    expect(() => checkMemo('é'.repeat(129))).toThrow(/258 bytes/);
  });
});
