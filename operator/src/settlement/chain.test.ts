import { FEE_TRANSFER_GAS, gasLimitFor } from './chain.js';

describe('gasLimitFor', () => {
  it('covers what simulation leaves out (the fee transfer) on top of a margin', () => {
    // Measured on wasmd 0.61: simulated vs used for a MsgGrant that replaced a grant.
    expect(gasLimitFor(44_496)).toBeGreaterThanOrEqual(63_965);
    expect(gasLimitFor(0)).toBe(FEE_TRANSFER_GAS);
    expect(gasLimitFor(100, 2)).toBe(200 + FEE_TRANSFER_GAS);
    expect(() => gasLimitFor(Number.NaN)).toThrow();
  });
});
