import { describe, expect, it } from '@jest/globals';
import { durationArg, formatAge, formatSeconds, truncate, UsageError } from './output.js';

describe('output helpers', () => {
  const now = new Date('2026-11-21T12:00:00Z');
  it.each([
    [5, '5s'],
    [119, '119s'],
    [600, '10m'],
    [3 * 3600, '3h'],
    [50 * 3600, '2d'],
  ])('formatAge: %is ago is %s', (s, want) => {
    expect(formatAge(new Date(now.getTime() - s * 1000), now)).toBe(want);
  });

  it('formatAge: an unknown time is -', () => {
    expect(formatAge(undefined, now)).toBe('-');
  });

  it.each([
    [7200, '2h'],
    [5400, '1h30m'],
    [90, '1m30s'],
    [2_592_000, '30d'],
    [0, '0s'],
  ])('formatSeconds(%i) is %s', (s, want) => {
    expect(formatSeconds(s)).toBe(want);
  });

  it('truncate keeps one line of at most the width', () => {
    expect(truncate('short', 10)).toBe('short');
    expect(truncate('one\ntwo   three', 40)).toBe('one two three');
    expect(truncate('abcdefghij', 5)).toBe('abcd…');
  });

  it('durationArg names the flag', () => {
    expect(durationArg('--timeout')('10m')).toBe(600_000);
    expect(() => durationArg('--timeout')('soon')).toThrow(UsageError);
    expect(() => durationArg('--timeout')('soon')).toThrow(/^--timeout soon: /);
  });
});
