// Cosmos coins as the API writes them ("1500000ustake"): an integer amount of a base denom. Money
// is never a JS number (STYLE.md), so amounts are bigint from the moment a string is read.

/** An amount of one base denom. */
export interface Coin {
  amount: bigint;
  denom: string;
}

/** No sign, no decimal point, no leading zeros; the denom as the Cosmos SDK allows it. */
const COIN_PATTERN = /^(0|[1-9][0-9]*)([a-zA-Z][a-zA-Z0-9/:._-]{2,127})$/;

/** Thrown by parseCoin for a string that is not a coin; the message quotes it. */
export class InvalidCoinError extends Error {
  constructor(readonly input: string) {
    super(`Invalid coin ${JSON.stringify(input)}: want an integer amount followed by a denom, e.g. 1500000ustake`);
    this.name = 'InvalidCoinError';
  }
}

/** The coin a string names, or undefined when it is not a coin. */
export function tryParseCoin(input: string): Coin | undefined {
  const m = COIN_PATTERN.exec(input);
  if (m === null) return undefined;
  return { amount: BigInt(m[1] ?? ''), denom: m[2] ?? '' };
}

/** The coin a string names; throws InvalidCoinError when it is not one. */
export function parseCoin(input: string): Coin {
  const coin = tryParseCoin(input);
  if (coin === undefined) throw new InvalidCoinError(input);
  return coin;
}

/** The coin as the API writes it; the inverse of parseCoin for a non-negative amount. */
export function formatCoin(coin: Coin): string {
  if (coin.amount < 0n) throw new RangeError(`A coin cannot be negative: ${coin.amount}${coin.denom}`);
  return `${coin.amount}${coin.denom}`;
}
