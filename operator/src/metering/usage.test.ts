import { assignmentGpuMs, billedTotal, periodAmount, podGpuMs, podUsages, type PodUsage, type PromSample } from './usage.js';

const T0 = Date.parse('2026-11-21T12:00:00Z');
const sec = (ms: number) => String(ms / 1000);
const row = (uid: string, v: string, extra: Record<string, string> = {}): PromSample => ({ metric: { namespace: 'gpufed-jobs', pod: `pod-${uid}`, uid, ...extra }, value: [T0 / 1000, v] });
const pod = (p: Partial<PodUsage>): PodUsage => ({ podUid: 'u1', pod: 'p', assignmentUid: 'a1', assignment: 'carol-train-1', gpus: 1, ...p });

describe('podUsages', () => {
  it('joins the five answers by pod uid and keeps only pods labelled with an Assignment', () => {
    const usages = podUsages({
      labels: [
        row('u1', '1', { label_gpufed_io_assignment_uid: 'a1', label_gpufed_io_assignment: 'carol-train-1', label_gpufed_io_epoch: '2', label_gpufed_io_job_uid: 'j1' }),
        row('u2', '1', { label_gpufed_io_assignment_uid: '' }),
      ],
      gpus: [row('u1', '2'), row('u2', '1'), row('u3', '4')],
      started: [row('u1', sec(T0))],
      completed: [row('u1', sec(T0 + 90_000))],
      lastRunning: [row('u1', sec(T0 + 89_500))],
    });
    expect(usages).toEqual([{ podUid: 'u1', pod: 'pod-u1', assignmentUid: 'a1', assignment: 'carol-train-1', epoch: 2, jobUid: 'j1', gpus: 2, startedMs: T0, completedMs: T0 + 90_000, lastRunningMs: T0 + 89_500 }]);
  });

  it('ignores a zero completion time (kube-state-metrics exports none while running) and NaN values', () => {
    const [u] = podUsages({ labels: [row('u1', '1', { label_gpufed_io_assignment_uid: 'a1' })], gpus: [row('u1', 'NaN')], started: [row('u1', sec(T0))], completed: [row('u1', '0')], lastRunning: [] });
    expect(u).toMatchObject({ gpus: 0, startedMs: T0 });
    expect(u?.completedMs).toBeUndefined();
  });
});

describe('podGpuMs', () => {
  const cases: [string, Partial<PodUsage>, number, number | undefined, number][] = [
    ['finished pod: start to completion', { startedMs: T0, completedMs: T0 + 60_000, gpus: 2 }, T0 + 300_000, undefined, 120_000],
    ['still running: up to the last sample that saw it, not the query time', { startedMs: T0, lastRunningMs: T0 + 42_000 }, T0 + 300_000, undefined, 42_000],
    ['the window end cuts a longer run', { startedMs: T0, lastRunningMs: T0 + 400_000 }, T0 + 300_000, undefined, 300_000],
    ['an Assignment end caps a pod seen running after it', { startedMs: T0, lastRunningMs: T0 + 400_000 }, T0 + 600_000, T0 + 100_000, 100_000],
    ['never started (image pull, pending): nothing', { lastRunningMs: T0 + 10_000 }, T0 + 300_000, undefined, 0],
    ['no GPUs: nothing', { startedMs: T0, completedMs: T0 + 60_000, gpus: 0 }, T0 + 300_000, undefined, 0],
    ['no sample after the start: nothing billed without data', { startedMs: T0 }, T0 + 300_000, undefined, 0],
    ['seen only before the start (clock step): never negative', { startedMs: T0, lastRunningMs: T0 - 5_000 }, T0 + 300_000, undefined, 0],
  ];
  it.each(cases)('%s', (_name, p, at, cap, want) => {
    expect(podGpuMs(pod(p), at, cap)).toBe(want);
  });

  it('adds up every pod of one Assignment and leaves other Assignments out', () => {
    const pods = [pod({ podUid: 'x', startedMs: T0, completedMs: T0 + 10_000 }), pod({ podUid: 'y', startedMs: T0 + 20_000, completedMs: T0 + 25_000, gpus: 2 }), pod({ podUid: 'z', assignmentUid: 'other', startedMs: T0, completedMs: T0 + 99_000 })];
    expect(assignmentGpuMs(pods, 'a1', 2, T0 + 60_000)).toBe(20_000);
  });

  it('never bills more than the assigned GPUs: a pod counted with more, or two copies at once, is billed once', () => {
    // kube-state-metrics scraped twice (two series of the same limit) sums to 2 for a 1-GPU job.
    expect(assignmentGpuMs([pod({ startedMs: T0, completedMs: T0 + 4_000, gpus: 2 })], 'a1', 1, T0 + 60_000)).toBe(4_000);
    // A second pod of the same Assignment overlapping the first for 3 s: the wall time they cover, once.
    const both = [pod({ podUid: 'x', startedMs: T0, completedMs: T0 + 4_000 }), pod({ podUid: 'y', startedMs: T0 + 1_000, completedMs: T0 + 6_000 })];
    expect(assignmentGpuMs(both, 'a1', 1, T0 + 60_000)).toBe(6_000);
    // Re-created one after the other, the runs add up; with 2 GPUs assigned, each at its own count.
    const apart = [pod({ podUid: 'x', startedMs: T0, completedMs: T0 + 4_000, gpus: 2 }), pod({ podUid: 'y', startedMs: T0 + 10_000, completedMs: T0 + 13_000, gpus: 2 })];
    expect(assignmentGpuMs(apart, 'a1', 2, T0 + 60_000)).toBe(14_000);
    expect(assignmentGpuMs(apart, 'a1', 2, T0 + 11_000)).toBe(10_000);
  });
});

describe('amounts', () => {
  const price = { amount: 1_200_000n, denom: 'ustake' };

  it('charges floor(price × ms / 3.6e6): one GPU for five minutes at 1.2 STAKE/h is 100000ustake', () => {
    expect(billedTotal(price, 300_000)).toBe(100_000n);
    expect(billedTotal({ amount: 2_500_000n, denom: 'uatom' }, 3_723_500)).toBe(2_585_763n);
  });

  it('never drifts: the period amounts of a job add up to the floor of its total, whatever the periods', () => {
    const odd = { amount: 7n, denom: 'ustake' }; // 7 per hour: almost every period rounds
    const cumulative = [0, 1_000, 514_285, 514_286, 1_028_571, 3_600_000, 3_600_001, 9_999_999];
    let sum = 0n;
    for (let i = 1; i < cumulative.length; i++) sum += periodAmount(odd, cumulative[i - 1] ?? 0, cumulative[i] ?? 0);
    expect(sum).toBe(billedTotal(odd, 9_999_999));
    expect(sum).toBe(19n);
  });

  it('refuses GPU time that goes back, a fraction of a millisecond, or money as a float', () => {
    expect(() => periodAmount(price, 2_000, 1_000)).toThrow(/went back/);
    expect(() => billedTotal(price, 1.5)).toThrow(RangeError);
    expect(() => billedTotal(price, -1)).toThrow(RangeError);
  });
});
