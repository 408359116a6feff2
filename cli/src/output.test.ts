import { describe, expect, it } from '@jest/globals';
import { ApiException } from '@kubernetes/client-node';
import { apiFailure, durationArg, ExitCode, formatAge, formatSeconds, RemoteError, truncate, UsageError } from './output.js';

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

  it('apiFailure says what was done, and the HTTP status or which server to check', () => {
    const refused = apiFailure('Listing providers on the registry', new ApiException(403, 'Forbidden', { message: 'providers is forbidden' }, {}));
    expect(refused).toBeInstanceOf(RemoteError);
    expect(refused).toMatchObject({ message: 'Listing providers on the registry: providers is forbidden (HTTP 403)', code: 403, exitCode: ExitCode.Remote });

    const down = new Error('fetch failed', { cause: new Error('connect ECONNREFUSED 127.0.0.1:6443') });
    expect(apiFailure('Updating node n1', down, { server: "the provider's cluster", hint: '; or try later' })).toMatchObject({
      message: "Updating node n1: fetch failed (connect ECONNREFUSED 127.0.0.1:6443); the provider's cluster could not be reached: check the server in your kubeconfig; or try later",
      code: undefined,
      exitCode: ExitCode.Remote,
    });

    expect(apiFailure('Creating ComputeJob carol/x', new ApiException(422, 'Invalid', { message: 'spec.image: Required value' }, {})).exitCode).toBe(ExitCode.Failed);
  });
});
