import { describe, expect, it } from '@jest/globals';
import { tailOf, TRUNCATED_MARKER, type PushedLog } from '../../../operator/src/agent/joblogs.js';
import type { ComputeJob, ComputeJobStatus } from '../../../operator/src/api/index.js';
import { appendedText, newLogText, noLogReason, SKIPPED_MARKER } from './job-logs.js';

const lines = (from: number, to: number) => Array.from({ length: to - from }, (_, i) => `step ${from + i}\n`).join('');
const view = (log: string, o: Partial<PushedLog> = {}): PushedLog => ({ pod: 'train-e1', epoch: '1', log, final: false, updated: '', ...o });

describe('appendedText', () => {
  it('is what follows in a log that grew without losing its start', () => {
    expect(appendedText('', 'hello\n')).toBe('hello\n');
    expect(appendedText('step 0\n', 'step 0\nstep 1\n')).toBe('step 1\n');
    expect(appendedText('step 0\n', 'step 0\n')).toBe('');
    expect(appendedText('', tailOf(lines(0, 100), 300))).toBe(tailOf(lines(0, 100), 300));
  });

  it('finds where the text printed last ends in a tail that lost its start (the agent cut it with tailOf)', () => {
    const before = tailOf(lines(0, 100), 300);
    const after = tailOf(lines(0, 120), 300);
    expect(before.startsWith(TRUNCATED_MARKER) && after.startsWith(TRUNCATED_MARKER)).toBe(true);
    expect(appendedText(before, after)).toBe(lines(100, 120));
    // The first read was whole, the next one truncated.
    expect(appendedText(lines(0, 10), tailOf(lines(0, 40), 300))).toBe(lines(10, 40));
    expect(appendedText(tailOf(lines(0, 1000), 4000), tailOf(lines(0, 1010), 4000))).toBe(lines(1000, 1010));
    // Only a few lines of the old tail are left in the new one (less than the anchor).
    expect(appendedText(tailOf(lines(0, 100), 300), tailOf(lines(0, 126), 300))).toBe(lines(100, 126));
  });

  it('is undefined when the end of what was printed is no longer in the tail', () => {
    expect(appendedText(tailOf(lines(0, 100), 300), tailOf(lines(0, 500), 300))).toBeUndefined();
    expect(appendedText('a\n', 'b\n')).toBeUndefined();
  });

  it('never prints repeated output twice: the last place the old text could end wins', () => {
    const before = `${TRUNCATED_MARKER}tick\ntick\n`;
    expect(appendedText(before, `${TRUNCATED_MARKER}tick\ntick\ntick\n`)).toBe('');
  });
});

describe('newLogText', () => {
  it('prints the whole first read, then only what is new', () => {
    expect(newLogText(undefined, view('a\n'))).toEqual({ text: 'a\n' });
    expect(newLogText(view('a\n'), view('a\nb\n'))).toEqual({ text: 'b\n' });
  });

  it("starts over with a header when a new attempt's log replaced the last one", () => {
    expect(newLogText(view('a\nb\n'), view('x\n', { pod: 'train-e2', epoch: '2' }))).toEqual({ header: '--- attempt 2 (pod train-e2) ---', text: 'x\n' });
  });

  it('marks output it could not see, then prints the tail it has', () => {
    const after = tailOf(lines(0, 500), 300);
    expect(newLogText(view(tailOf(lines(0, 100), 300)), view(after))).toEqual({ text: SKIPPED_MARKER + after.slice(TRUNCATED_MARKER.length) });
  });
});

describe('noLogReason', () => {
  const job = (status: ComputeJobStatus | undefined): ComputeJob => ({
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'ComputeJob',
    metadata: { name: 'train', namespace: 'carol' },
    spec: { image: 'x', resources: { gpu: { count: 1 } }, maxPricePerGpuHour: '1ustake' },
    ...(status ? { status } : {}),
  });
  const placed = { placement: { provider: 'bob', epoch: 1 }, logRef: 'train-log' };

  it.each([
    ['not looked at yet', undefined, /^ComputeJob train is not placed yet, so it has no log; follow it with: gpufed jobs logs -f train$/],
    ['waiting for a provider', { phase: 'Pending' as const, message: '0/2 providers are available: 2 cordoned.' }, /not placed yet, so it has no log \(0\/2 providers are available: 2 cordoned\.\)/],
    ['placed, not started', { ...placed, phase: 'Scheduled' as const, message: 'Waiting for bob to accept' }, /is placed on bob but has not started \(Waiting for bob to accept\)/],
    ['running, nothing pushed yet', { ...placed, phase: 'Running' as const }, /runs on bob, whose agent has not pushed its log yet/],
    ['finished without a log', { ...placed, phase: 'Failed' as const, message: 'Exited with code 3' }, /^ComputeJob train Failed but no log was relayed for it \(Exited with code 3\)$/],
  ])('says why when %s', (_what, status, want) => {
    expect(noLogReason(job(status))).toMatch(want);
  });
});
