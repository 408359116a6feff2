import { formatCoin, InvalidCoinError, parseCoin, tryParseCoin } from './coin.js';

describe('parseCoin', () => {
  it.each([
    ['1500000ustake', 1500000n, 'ustake'],
    ['0ustake', 0n, 'ustake'],
    ['123456789012345678901234567890uatom', 123456789012345678901234567890n, 'uatom'],
    ['9007199254740993ustake', 9007199254740993n, 'ustake'],
    ['5ibc/27394FB092D2ECCD56123C74F36E4C1F926001CEADA9CA97EA622B25F41E5EB2', 5n, 'ibc/27394FB092D2ECCD56123C74F36E4C1F926001CEADA9CA97EA622B25F41E5EB2'],
    ['7factory/cosmos1abc/u.x_y-z:w', 7n, 'factory/cosmos1abc/u.x_y-z:w'],
  ])('reads %s', (input, amount, denom) => {
    expect(parseCoin(input)).toEqual({ amount, denom });
  });

  it.each([
    ['', 'empty'],
    ['ustake', 'no amount'],
    ['1500000', 'no denom'],
    ['01ustake', 'leading zero'],
    ['-1ustake', 'negative'],
    ['+1ustake', 'sign'],
    ['1.5stake', 'decimal point'],
    ['1 ustake', 'space'],
    ['1us', 'denom too short'],
    ['1_stake', 'denom not starting with a letter'],
    [`1${'a'.repeat(129)}`, 'denom too long'],
    ['1ust ake', 'space in denom'],
    ['1ustake\n', 'trailing newline'],
    ['1e6', 'exponent, no denom'],
  ])('rejects %j (%s)', (input) => {
    expect(() => parseCoin(input)).toThrow(InvalidCoinError);
    expect(tryParseCoin(input)).toBeUndefined();
  });

  it('quotes the input in its error', () => {
    expect(() => parseCoin('1.5stake')).toThrow('Invalid coin "1.5stake"');
  });

  it('accepts the longest denom', () => {
    expect(parseCoin(`1${'a'.repeat(128)}`).denom).toHaveLength(128);
  });
});

describe('formatCoin', () => {
  it('round-trips beyond 2^53', () => {
    for (const s of ['0ustake', '1500000ustake', '18446744073709551616uatom']) expect(formatCoin(parseCoin(s))).toBe(s);
  });

  it('refuses a negative amount', () => {
    expect(() => formatCoin({ amount: -1n, denom: 'ustake' })).toThrow(RangeError);
  });
});
