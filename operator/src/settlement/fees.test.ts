import { pickGasPrice } from './chain.js';
import { feeAmount } from './settler.js';

describe('pickGasPrice', () => {
  it.each<[string, string | undefined, string]>([
    ['0.001000000000000000ustake', undefined, '0.001ustake'],
    ['0.000000000000000000ustake', undefined, '0ustake'],
    ['1.000000000000000000ustake', undefined, '1ustake'],
    ['10.000000000000000000ustake', undefined, '10ustake'],
    ['0.025000000000000000uatom', undefined, '0.025uatom'],
    ['10ustake', undefined, '10ustake'],
    [' 0.001000000000000000ustake ', undefined, '0.001ustake'],
    ['0.001000000000000000ustake,0.100000000000000000uatom', 'uatom', '0.1uatom'],
    ['0.001000000000000000ustake,0.100000000000000000uatom', 'ustake', '0.001ustake'],
    ['0.500000000000000000ibc/27394FB092D2ECCD56123C74F36E4C1F926001CEADA9CA97EA622B25F41E5EB2', undefined, '0.5ibc/27394FB092D2ECCD56123C74F36E4C1F926001CEADA9CA97EA622B25F41E5EB2'],
  ])('%s (fee denom %s): %s', (decCoins, feeDenom, want) => {
    expect(pickGasPrice(decCoins, feeDenom)).toBe(want);
  });

  it('needs the fee denom when the node names several', () => {
    expect(() => pickGasPrice('0.001000000000000000ustake,0.100000000000000000uatom')).toThrow("The node's minimum gas price names ustake, uatom: say which fee denom to use (--fee-denom)");
  });

  it('refuses a fee denom the node has no price in, naming the ones it has', () => {
    expect(() => pickGasPrice('0.001000000000000000ustake,0.100000000000000000uatom', 'uosmo')).toThrow('The node has no minimum gas price in uosmo (it has ustake, uatom)');
    expect(() => pickGasPrice('', 'ustake')).toThrow('The node has no minimum gas price in ustake (it has none)');
  });
});

describe('feeAmount', () => {
  it.each<[string, number, string]>([
    ['0.001ustake', 200_000, '200'],
    ['0.001ustake', 200_001, '201'],
    ['0.001ustake', 1, '1'],
    ['0.025uatom', 100_000, '2500'],
    ['0ustake', 200_000, '0'],
    ['2ustake', 150_000, '300000'],
    ['0.000000000000000001ustake', 1, '1'],
  ])('%s × %i gas: %s', (price, gas, want) => {
    expect(feeAmount(price, gas)).toEqual([{ denom: price.replace(/^[0-9.]+/, ''), amount: want }]);
  });

  it('is exact in bigint where a double product would round', () => {
    // 123.456789 × (2^53 − 1) = 1111999897873515775.537899: as a double, 1111999897873515800.
    expect(feeAmount('123.456789ustake', Number.MAX_SAFE_INTEGER)).toEqual([{ denom: 'ustake', amount: '1111999897873515776' }]);
    // 18 decimals, as the SDK writes DecCoins: 1111999897984715.82… rounds up to …716.
    expect(feeAmount('0.123456789012345678ustake', Number.MAX_SAFE_INTEGER)).toEqual([{ denom: 'ustake', amount: '1111999897984716' }]);
    expect(feeAmount('0.000000000000000001ustake', Number.MAX_SAFE_INTEGER)).toEqual([{ denom: 'ustake', amount: '1' }]);
    expect(feeAmount('3ustake', Number.MAX_SAFE_INTEGER)).toEqual([{ denom: 'ustake', amount: '27021597764222973' }]);
  });

  it('prices with what pickGasPrice makes of the node minimum', () => {
    expect(feeAmount(pickGasPrice('0.001000000000000000ustake'), 63_965)).toEqual([{ denom: 'ustake', amount: '64' }]);
  });

  it('refuses what is no gas price', () => {
    for (const bad of ['', 'ustake', '-1ustake', '0.001', '.5ustake', '1.ustake']) expect(() => feeAmount(bad, 1)).toThrow(`Not a gas price: ${bad}`);
  });
});
