import { describe, expect, it } from '@jest/globals';
import type { Provider } from '../../../operator/src/api/index.js';
import type { GrantView } from '../../../operator/src/settlement/grants.js';
import { UsageError } from '../output.js';
import { budgetTable, expiryOf, formatExpiry, grantProblems, grantText, parseExpires, parseLimit, providerBudget, revokeText, summariseGrant, type BudgetReport, type GrantResult } from './budget.js';

const now = new Date('2026-11-21T12:00:00Z');
const DAY = 86_400_000;
const ACCOUNT = 'cosmos1alice2of2';
const PAYOUT = 'cosmos1alicepayout';

function provider(name: string, o: { payout?: string; prices?: string[] } = {}): Provider {
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'Provider',
    metadata: { name },
    spec: { wallet: `cosmos1${name}hot`, ...(o.payout ? { payout: o.payout } : {}), region: 'home', prices: (o.prices ?? ['1200000ustake']).map((p) => ({ model: 'NVIDIA-GeForce-RTX-4090', pricePerGpuHour: p })) },
    // The grantee: the 2-of-2 settlement account the registry publishes.
    status: { settlementAccount: { address: `cosmos1${name}2of2`, providerPubKey: 'AA==', registryPubKey: 'AA==' } },
  };
}

const grant = (o: Partial<GrantView> = {}): GrantView => ({ spendLimit: new Map([['ustake', 5_000_000n]]), allowList: [PAYOUT], expiresAtMs: now.getTime() + 30 * DAY, ...o });

describe('--expires', () => {
  it.each([
    ['30d', 30 * DAY],
    ['12h', 12 * 3_600_000],
    ['2w', 14 * DAY],
    ['90m', 90 * 60_000],
    ['60s', 60_000],
    ['3650d', 3650 * DAY],
  ])('reads %s', (v, ms) => {
    expect(parseExpires(v)).toEqual({ ms });
    expect(expiryOf(parseExpires(v), now)).toBe(now.getTime() + ms);
  });

  it('reads never as no expiry', () => {
    expect(parseExpires('never')).toBe('never');
    expect(parseExpires('Never')).toBe('never');
    expect(expiryOf('never', now)).toBeUndefined();
  });

  it.each([
    ['30', '--expires 30: expected a duration like 30d, 12h, 2w or 90m, or never'],
    ['1.5d', '--expires 1.5d: expected a duration like 30d, 12h, 2w or 90m, or never'],
    ['-1d', '--expires -1d: expected a duration like 30d, 12h, 2w or 90m, or never'],
    ['0d', '--expires 0d: at least 1m (the grant must outlive the transaction that makes it)'],
    ['59s', '--expires 59s: at least 1m (the grant must outlive the transaction that makes it)'],
    ['3651d', '--expires 3651d: at most 3650d; for a grant that never expires, pass --expires never'],
  ])('refuses %s', (v, message) => {
    expect(() => parseExpires(v)).toThrow(new UsageError(message));
  });
});

describe('--limit', () => {
  it('reads a coin in bigint', () => {
    expect(parseLimit('5000000ustake')).toEqual({ amount: 5_000_000n, denom: 'ustake' });
    expect(parseLimit('123456789012345678901234567890ibc/ABC')).toEqual({ amount: 123456789012345678901234567890n, denom: 'ibc/ABC' });
  });

  it.each([
    ['5stake!', '--limit 5stake!: expected a coin, an integer amount of the base denom and the denom, e.g. 5000000ustake'],
    ['1.5ustake', '--limit 1.5ustake: expected a coin, an integer amount of the base denom and the denom, e.g. 5000000ustake'],
    ['ustake', '--limit ustake: expected a coin, an integer amount of the base denom and the denom, e.g. 5000000ustake'],
    ['0ustake', '--limit 0ustake: must be more than 0; to stop a provider taking payments, run gpufed budget revoke'],
  ])('refuses %s as a usage error', (v, message) => {
    expect(() => parseLimit(v)).toThrow(UsageError);
    expect(() => parseLimit(v)).toThrow(message);
  });
});

describe('a grant as shown', () => {
  it('summarises what is left, to whom and until when', () => {
    expect(summariseGrant(grant(), now)).toEqual({ spendLimit: ['5000000ustake'], allowList: [PAYOUT], expiresAt: '2026-12-21T12:00:00.000Z', expired: false });
    expect(summariseGrant(grant({ expiresAtMs: undefined }), now)).toMatchObject({ expiresAt: null, expired: false });
    expect(summariseGrant(grant({ expiresAtMs: now.getTime() }), now)).toMatchObject({ expired: true });
  });

  it.each([
    ['nothing for a live grant to the payout', grant(), []],
    ['nothing for a grant to anyone', grant({ allowList: [] }), []],
    ['an expired grant not yet pruned', grant({ expiresAtMs: now.getTime() - 1000 }), ['expired']],
    ['an allow list without the payout', grant({ allowList: ['cosmos1else'] }), [`payout ${PAYOUT} not allowed`]],
    ['a limit in another denom than the prices', grant({ spendLimit: new Map([['uatom', 5n]]) }), ['no limit in ustake']],
  ])('names as a problem %s', (_, g, problems) => {
    expect(grantProblems(provider('alice', { payout: PAYOUT }), summariseGrant(g, now))).toEqual(problems);
  });

  it("pays the wallet itself when the provider names no payout", () => {
    const p = provider('bob');
    expect(providerBudget(p, grant({ allowList: ['cosmos1bobhot'] }), now)).toMatchObject({ provider: 'bob', grantee: 'cosmos1bob2of2', payout: 'cosmos1bobhot', problems: [] });
    expect(providerBudget(p, undefined, now)).toEqual({ provider: 'bob', grantee: 'cosmos1bob2of2', payout: 'cosmos1bobhot', grant: null, problems: [] });
  });

  it.each([
    [null, 'never'],
    ['2026-12-21T12:00:00.000Z', '2026-12-21T12:00:00.000Z (in 30d)'],
    ['2026-11-21T14:00:00.000Z', '2026-11-21T14:00:00.000Z (in 2h)'],
    ['2026-11-21T10:00:00.000Z', '2026-11-21T10:00:00.000Z (expired 2h ago)'],
  ])('writes expiry %s as %s', (at, text) => {
    expect(formatExpiry(at, now)).toBe(text);
  });
});

describe('budget show', () => {
  const report: BudgetReport = {
    address: 'cosmos1carol',
    balance: ['9990000000ustake'],
    providers: [providerBudget(provider('alice', { payout: PAYOUT }), grant(), now), providerBudget(provider('bob'), undefined, now), providerBudget(provider('dora', { payout: 'cosmos1dorapayout' }), grant({ expiresAtMs: undefined }), now)],
  };

  it('shows one row per provider, "none" without a grant, the problem when one cannot pay, and the balance', () => {
    const lines = budgetTable(report, now).split('\n');
    expect(lines[0]).toMatch(/^PROVIDER\s+GRANTEE\s+REMAINING\s+ALLOW LIST\s+EXPIRES\s+PROBLEM$/);
    expect(lines[1]).toMatch(new RegExp(`^alice\\s+cosmos1alice2of2\\s+5000000ustake\\s+${PAYOUT}\\s+2026-12-21T12:00:00.000Z \\(in 30d\\)$`));
    expect(lines[2]).toMatch(/^bob\s+cosmos1bob2of2\s+none\s+-\s+-$/);
    expect(lines[3]).toMatch(new RegExp(`^dora\\s+cosmos1dora2of2\\s+5000000ustake\\s+${PAYOUT}\\s+never\\s+payout cosmos1dorapayout not allowed$`));
    expect(lines[5]).toBe('Balance of cosmos1carol: 9990000000ustake');
    expect(lines[6]).toMatch(/^A provider without a grant cannot be paid by you.*gpufed budget grant --provider <name> --limit <coin>$/);
  });

  it('says when there is no provider and no balance', () => {
    expect(budgetTable({ address: 'cosmos1new', balance: [], providers: [] }, now)).toMatch(/^No providers on the registry\.\n\nBalance of cosmos1new: nothing\n/);
  });
});

describe('budget grant and revoke', () => {
  const result: GrantResult = { granter: 'cosmos1carol', provider: 'alice', grantee: ACCOUNT, spendLimit: '5000000ustake', allowList: [PAYOUT], expiresAt: '2026-12-21T12:00:00.000Z', replaced: null, txHash: 'AB'.repeat(32), height: 42 };

  it('says what was granted, that a new grant replaces this one, and where the transaction is', () => {
    expect(grantText(result, now)).toBe(
      [
        `Granted provider alice up to 5000000ustake, payable only to ${PAYOUT}, expiring 2026-12-21T12:00:00.000Z (in 30d).`,
        '  granter cosmos1carol',
        `  grantee ${ACCOUNT} (alice's settlement account: its hot key and the registry's, both needed for a payment)`,
        "A later grant to alice replaces this one: a grant's limit is absolute, not added to what is left.",
        `Transaction ${'AB'.repeat(32)} committed at height 42.`,
      ].join('\n'),
    );
  });

  it('says which grant it replaced, and that the limits do not add up', () => {
    const text = grantText({ ...result, spendLimit: '9000000ustake', replaced: summariseGrant(grant({ spendLimit: new Map([['ustake', 1_250_000n]]) }), now) }, now);
    expect(text).toMatch(/^Granted provider alice up to 9000000ustake,/);
    expect(text).toContain("This replaced your previous grant to alice (1250000ustake left): a grant's limit is absolute, not added to what was left.");
  });

  it('says what a revoke left the provider', () => {
    const text = revokeText({ granter: 'cosmos1carol', provider: 'alice', grantee: ACCOUNT, revoked: summariseGrant(grant(), now), txHash: 'CD'.repeat(32), height: 43 });
    expect(text).toMatch(/^Revoked your grant to provider alice \(cosmos1alice2of2; 5000000ustake was left\): it can take no more payments from you/);
    expect(text).toMatch(/Transaction (CD){32} committed at height 43\.$/);
  });
});
