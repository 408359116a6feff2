import { describe, expect, it } from '@jest/globals';
import { ApiException } from '@kubernetes/client-node';
import type { ComputeJob, ComputeJobStatus } from '../../../operator/src/api/index.js';
import { ExitError, UsageError } from '../output.js';
import { ExitStatus, jobProgress, parseWaitFor, pollUntil, REGISTRY_FAILURE_MS, waitOutcome, type WaitFor } from './job-wait.js';

function job(status?: ComputeJobStatus, deleting = false): ComputeJob {
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'ComputeJob',
    metadata: { name: 'train', namespace: 'carol', ...(deleting ? { deletionTimestamp: new Date('2026-11-21T12:00:00Z') } : {}) },
    spec: { image: 'x', resources: { gpu: { count: 1 } }, maxPricePerGpuHour: '1ustake' },
    ...(status ? { status } : {}),
  };
}

describe('waitOutcome', () => {
  it.each<[string, ComputeJob | undefined, WaitFor, { ok: boolean; message: RegExp } | undefined]>([
    ['running', job({ phase: 'Running' }), 'Succeeded', undefined],
    ['not looked at yet', job(), 'Finished', undefined],
    ['succeeded', job({ phase: 'Succeeded', exitCode: 0 }), 'Succeeded', { ok: true, message: /^ComputeJob train Succeeded \(exit code 0\)$/ }],
    ['failed, waiting for success', job({ phase: 'Failed', message: 'Exited with code 3' }), 'Succeeded', { ok: false, message: /^ComputeJob train Failed: Exited with code 3$/ }],
    ['failed, waiting for the end', job({ phase: 'Failed', message: 'Exited with code 3' }), 'Finished', { ok: true, message: /Failed: Exited with code 3/ }],
    ['succeeded while cancelled', job({ phase: 'Succeeded' }, true), 'Succeeded', { ok: true, message: /Succeeded/ }],
    ['being cancelled', job({ phase: 'Cancelling' }, true), 'Finished', { ok: false, message: /is being cancelled/ }],
    ['gone', undefined, 'Succeeded', { ok: false, message: /^ComputeJob train was deleted$/ }],
  ])('%s', (_what, j, want, end) => {
    const got = waitOutcome('train', j, want);
    if (end === undefined) expect(got).toBeUndefined();
    else expect(got).toEqual({ ok: end.ok, message: expect.stringMatching(end.message) });
  });
});

describe('jobProgress', () => {
  it('says the phase and the registry message', () => {
    expect(jobProgress(job({ phase: 'Running', message: 'Running on bob' }))).toBe('Running: Running on bob');
    expect(jobProgress(job())).toBe('Pending: waiting for the registry to look at it');
  });
});

describe('parseWaitFor', () => {
  it('takes Succeeded or Finished in any case, and nothing else', () => {
    expect(parseWaitFor('finished')).toBe('Finished');
    expect(() => parseWaitFor('Running')).toThrow(UsageError);
  });
});

/** A clock that only moves when the poller sleeps. */
function fakeClock() {
  let t = 0;
  return { now: () => t, sleep: (ms: number) => ((t += ms), Promise.resolve()) };
}
const httpError = (code: number) => new ApiException(code, 'failed', { message: `HTTP ${code}` }, {});

describe('pollUntil', () => {
  it('returns the first value, polling once a second', async () => {
    const clock = fakeClock();
    let calls = 0;
    await expect(pollUntil({ what: 'x', timeoutMs: 60_000, ...clock }, () => Promise.resolve(++calls === 4 ? 'done' : undefined))).resolves.toBe('done');
    expect(clock.now()).toBe(3000);
  });

  it('exits 124 when the timeout passes, and never with 0', async () => {
    const clock = fakeClock();
    const never = pollUntil({ what: 'ComputeJob carol/train to be Succeeded', timeoutMs: 5000, ...clock }, () => Promise.resolve(undefined));
    await expect(never).rejects.toMatchObject({ exitCode: ExitStatus.Timeout, message: 'timed out after 5s waiting for ComputeJob carol/train to be Succeeded' });
    const clock2 = fakeClock();
    let calls = 0;
    await expect(pollUntil({ what: 'x', timeoutMs: 0, ...clock2 }, () => Promise.resolve(++calls === 1000 ? true : undefined))).resolves.toBe(true);
  });

  it('exits 3 at once when the registry refuses, and after a while when it cannot be reached', async () => {
    await expect(pollUntil({ what: 'x', timeoutMs: 60_000, ...fakeClock() }, () => Promise.reject(httpError(403)))).rejects.toMatchObject({ exitCode: ExitStatus.Registry });
    const clock = fakeClock();
    await expect(pollUntil({ what: 'x', timeoutMs: 0, ...clock }, () => Promise.reject(new Error('connect ECONNREFUSED')))).rejects.toMatchObject({ exitCode: ExitStatus.Registry, message: 'connect ECONNREFUSED' });
    expect(clock.now()).toBe(REGISTRY_FAILURE_MS);
  });

  it('rides out a short outage', async () => {
    let calls = 0;
    const step = () => (++calls < 5 ? Promise.reject(httpError(503)) : Promise.resolve('back'));
    await expect(pollUntil({ what: 'x', timeoutMs: 60_000, ...fakeClock() }, step)).resolves.toBe('back');
  });

  it('passes usage and exit errors through', async () => {
    await expect(pollUntil({ what: 'x', timeoutMs: 0, ...fakeClock() }, () => Promise.reject(new ExitError('failed', 1)))).rejects.toMatchObject({ exitCode: 1 });
    await expect(pollUntil({ what: 'x', timeoutMs: 0, ...fakeClock() }, () => Promise.reject(new UsageError('no such job')))).rejects.toBeInstanceOf(UsageError);
  });
});
