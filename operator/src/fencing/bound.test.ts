import { FENCE_CHECK_MS, JOB_STOP_GRACE_SECONDS, fencedCopyGoneWithinMs, minProviderLostTimeoutMs, unsafeFencing } from './bound.js';

describe('the fencing inequality: provider-lost ≥ fencing + fence check + job stop grace + clock skew', () => {
  it('bounds a fenced copy by its fencing timeout, one fence check and the pod stop grace', () => {
    expect(fencedCopyGoneWithinMs(120_000)).toBe(120_000 + FENCE_CHECK_MS + JOB_STOP_GRACE_SECONDS * 1000);
    expect(minProviderLostTimeoutMs(120_000, 5000)).toBe(136_000);
  });

  it.each([
    ['the charts\' defaults (3m / 2m / 5s)', { providerLostTimeoutMs: 180_000, fencingTimeoutMs: 120_000, maxClockSkewMs: 5000, heartbeatMs: 10_000 }],
    ['the local federation (30s / 12s / 5s, 2s heartbeats)', { providerLostTimeoutMs: 30_000, fencingTimeoutMs: 12_000, maxClockSkewMs: 5000, heartbeatMs: 2000 }],
    ['exactly the bound', { providerLostTimeoutMs: 136_000, fencingTimeoutMs: 120_000, maxClockSkewMs: 5000 }],
    ['no skew margin asked for', { providerLostTimeoutMs: 131_000, fencingTimeoutMs: 120_000, maxClockSkewMs: 0 }],
  ])('accepts %s', (_name, t) => {
    expect(unsafeFencing(t)).toBeUndefined();
  });

  it.each([
    ['a provider-lost timeout below the fencing timeout', { providerLostTimeoutMs: 60_000, fencingTimeoutMs: 120_000, maxClockSkewMs: 5000 }, /provider-lost timeout \(60s\) must be at least 136s/],
    ['one millisecond short of the bound', { providerLostTimeoutMs: 135_999, fencingTimeoutMs: 120_000, maxClockSkewMs: 5000 }, /must be at least 136s/],
    ['the old local federation timing (20s / 12s)', { providerLostTimeoutMs: 20_000, fencingTimeoutMs: 12_000, maxClockSkewMs: 5000 }, /fencing timeout 12s \+ fence check 1s \+ job pod stop grace 10s \+ clock skew 5s/],
    ['a heartbeat slower than half the fencing timeout', { providerLostTimeoutMs: 180_000, fencingTimeoutMs: 120_000, maxClockSkewMs: 5000, heartbeatMs: 61_000 }, /heartbeat \(61s\) must be at most half the fencing timeout \(120s\)/],
    ['no fencing timeout', { providerLostTimeoutMs: 180_000, fencingTimeoutMs: 0, maxClockSkewMs: 5000 }, /must be above 0/],
    ['a negative skew', { providerLostTimeoutMs: 180_000, fencingTimeoutMs: 120_000, maxClockSkewMs: -1 }, /maxClockSkewMs must be a duration of 0 or more/],
    ['a timeout that is not a number', { providerLostTimeoutMs: Number.NaN, fencingTimeoutMs: 120_000, maxClockSkewMs: 5000 }, /providerLostTimeoutMs must be a duration/],
  ])('refuses %s, saying why', (_name, t, why) => {
    expect(unsafeFencing(t)).toMatch(why);
  });
});
