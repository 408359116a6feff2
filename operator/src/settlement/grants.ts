// What a renter's x/authz grant to a provider allows, as plain data, and the one rule that decides
// whether it covers an amount. The registry (before placing), the agent (before starting a pod) and
// the settlement planner (before signing) all ask this same question, each with data it fetched.
import type { Coin } from '../api/coin.js';

/** A SendAuthorization from a payer (granter) to a provider's hot key (grantee), as read from the chain. */
export interface GrantView {
  /** What is left to spend, per denom (base units). */
  spendLimit: ReadonlyMap<string, bigint>;
  /** Recipients allowed; empty means any. */
  allowList: readonly string[];
  /** Unix ms; undefined means it never expires. */
  expiresAtMs?: number;
}

/** Everything known about one payer towards one provider. */
export interface PayerFunds {
  /** Undefined when there is no SendAuthorization grant at all (never made, revoked, used up, or expired and pruned). */
  grant?: GrantView;
  /** The payer's spendable balance per denom. */
  balance: ReadonlyMap<string, bigint>;
}

export const FundsReason = {
  NoGrant: 'NoGrant',
  GrantExpired: 'GrantExpired',
  PayeeNotAllowed: 'PayeeNotAllowed',
  DenomNotGranted: 'DenomNotGranted',
  GrantExhausted: 'GrantExhausted',
  BalanceShort: 'BalanceShort',
} as const;
export type FundsReason = (typeof FundsReason)[keyof typeof FundsReason];

export type Coverage = { ok: true } | { ok: false; reason: FundsReason; message: string; /** How much of the amount can be paid now. */ payable: bigint };

/**
 * Whether `funds` let the provider take `amount` to `payee` at `nowMs`: a live grant that allows the
 * payee, in the amount's denom, with enough limit left, and a balance that holds it.
 */
export function covers(funds: PayerFunds, amount: Coin, payee: string, nowMs: number): Coverage {
  const g = funds.grant;
  const fmt = (n: bigint) => `${n}${amount.denom}`;
  if (!g) return { ok: false, reason: FundsReason.NoGrant, message: 'no spending grant (x/authz SendAuthorization) to this provider', payable: 0n };
  if (g.expiresAtMs !== undefined && g.expiresAtMs <= nowMs) return { ok: false, reason: FundsReason.GrantExpired, message: `the grant expired at ${new Date(g.expiresAtMs).toISOString()}`, payable: 0n };
  if (g.allowList.length > 0 && !g.allowList.includes(payee)) return { ok: false, reason: FundsReason.PayeeNotAllowed, message: `the grant does not allow paying ${payee}`, payable: 0n };
  const limit = g.spendLimit.get(amount.denom);
  if (limit === undefined) return { ok: false, reason: FundsReason.DenomNotGranted, message: `the grant has no limit in ${amount.denom} (it allows ${[...g.spendLimit.keys()].join(', ') || 'nothing'})`, payable: 0n };
  const balance = funds.balance.get(amount.denom) ?? 0n;
  if (limit < amount.amount) return { ok: false, reason: FundsReason.GrantExhausted, message: `the grant has ${fmt(limit)} left, ${fmt(amount.amount)} needed`, payable: limit < balance ? limit : balance };
  if (balance < amount.amount) return { ok: false, reason: FundsReason.BalanceShort, message: `the balance is ${fmt(balance)}, ${fmt(amount.amount)} needed`, payable: balance };
  return { ok: true };
}

/** What the first `seconds` of a job cost at `price` per GPU-hour for `units` GPUs, rounded up (the check errs for the provider). */
export function costOf(price: Coin, units: number, seconds: number): Coin {
  const ms = BigInt(Math.ceil(seconds * 1000)) * BigInt(units);
  return { amount: (price.amount * ms + 3_599_999n) / 3_600_000n, denom: price.denom };
}
