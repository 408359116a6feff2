import type { Assignment, UsageRecord } from '../api/index.js';
import { lastRecords, oldestOpenStart, planUsageRecords, usageRecordName } from './records.js';
import type { PodUsage } from './usage.js';

const T0 = Date.parse('2026-11-21T12:00:00Z');
const PAYER = 'cosmos1hgaht9uh5ng8aqvq75ft9ct44vc2unh2tqx662';
const PAYEE = 'cosmos1tlw2rnzhrexvp0rtwvtrq9527x6wpcmvcl5sk0';

function assignment(name: string, opts: { uid?: string; price?: string; ended?: number; phase?: string; gpus?: number } = {}): Assignment {
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'Assignment',
    metadata: { name, namespace: 'gpufed-provider-alice', uid: opts.uid ?? `uid-${name}`, creationTimestamp: new Date(T0 - 10_000) },
    spec: { jobRef: { namespace: 'carol', name: 'train', uid: '3f1c9a52-7b0e-4d6a-9c21-5e8f0b7d4a13' }, epoch: 1, image: 'x', resources: { gpu: { count: opts.gpus ?? 1, models: ['M'] } }, model: 'M', pricePerGpuHour: opts.price ?? '1200000ustake', maxDurationSeconds: 3600, payer: PAYER },
    status: { observedEpoch: 1, phase: (opts.phase ?? (opts.ended ? 'Succeeded' : 'Running')) as 'Running', startTime: new Date(T0).toISOString(), ...(opts.ended ? { completionTime: new Date(opts.ended).toISOString() } : {}) },
  };
}
const pod = (a: Assignment, p: Partial<PodUsage>): PodUsage => ({ podUid: `pod-${a.metadata.name}`, pod: `p-${a.metadata.name}`, assignmentUid: a.metadata.uid ?? '', assignment: a.metadata.name ?? '', gpus: 1, ...p });
function recorded(name: string, spec: Partial<UsageRecord['spec']>): UsageRecord {
  return { apiVersion: 'gpufed.io/v1alpha1', kind: 'UsageRecord', metadata: { name }, spec: { assignmentName: 'a', jobRef: { namespace: 'carol', name: 'train', uid: 'u' }, epoch: 1, model: 'M', gpus: 1, period: { start: '', end: '' }, gpuMilliseconds: { cumulative: 0, delta: 0 }, pricePerGpuHour: '1200000ustake', amount: '0ustake', payer: PAYER, payee: PAYEE, evidenceDigest: '0'.repeat(64), ...spec } };
}

describe('planUsageRecords', () => {
  it('writes the first record of a running job from its container start to the window end', () => {
    const a = assignment('carol-train-1');
    const [r, ...rest] = planUsageRecords({ assignments: [a], records: [], pods: [pod(a, { startedMs: T0, lastRunningMs: T0 + 298_000 })], windowEndMs: T0 + 300_000, payee: PAYEE });
    expect(rest).toEqual([]);
    expect(r).toEqual({
      name: `carol-train-1-${(T0 + 300_000) / 1000}`,
      podUids: ['pod-carol-train-1'],
      spec: {
        assignmentName: 'carol-train-1',
        jobRef: a.spec.jobRef,
        epoch: 1,
        model: 'M',
        gpus: 1,
        period: { start: '2026-11-21T12:00:00.000Z', end: '2026-11-21T12:05:00.000Z' },
        gpuMilliseconds: { cumulative: 298_000, delta: 298_000 },
        pricePerGpuHour: '1200000ustake',
        amount: '99333ustake',
        payer: PAYER,
        payee: PAYEE,
        final: false,
      },
    });
  });

  it('continues the chain from the last record: no window twice, none skipped, the remainder carried', () => {
    const a = assignment('carol-train-1');
    const prev = recorded('carol-train-1-x', { assignmentName: 'carol-train-1', period: { start: new Date(T0).toISOString(), end: new Date(T0 + 300_000).toISOString() }, gpuMilliseconds: { cumulative: 298_000, delta: 298_000 }, amount: '99333ustake' });
    // Prometheus was away for a period: the next round covers both windows in one record.
    const [r] = planUsageRecords({ assignments: [a], records: [prev], pods: [pod(a, { startedMs: T0, lastRunningMs: T0 + 899_000 })], windowEndMs: T0 + 900_000, payee: PAYEE });
    expect(r?.spec.period).toEqual({ start: new Date(T0 + 300_000).toISOString(), end: new Date(T0 + 900_000).toISOString() });
    expect(r?.spec.gpuMilliseconds).toEqual({ cumulative: 899_000, delta: 601_000 });
    // floor(1.2e6 × 899000 / 3.6e6) = 299666, minus 99333 already billed.
    expect(r?.spec.amount).toBe('200333ustake');
  });

  it('marks the last record of an ended Assignment final and bills exactly to the container end', () => {
    const a = assignment('carol-train-1', { ended: T0 + 61_000, gpus: 2 });
    const [r] = planUsageRecords({ assignments: [a], records: [], pods: [pod(a, { startedMs: T0, completedMs: T0 + 61_000, lastRunningMs: T0 + 60_000, gpus: 2 })], windowEndMs: T0 + 300_000, payee: PAYEE });
    expect(r?.spec).toMatchObject({ final: true, gpuMilliseconds: { cumulative: 122_000, delta: 122_000 }, amount: '40666ustake' });
  });

  it('closes a chain with a zero final record when the last period added nothing, and stops after a final one', () => {
    const a = assignment('carol-train-1', { ended: T0 + 200_000 });
    const prev = recorded('r1', { assignmentName: 'carol-train-1', period: { start: new Date(T0).toISOString(), end: new Date(T0 + 300_000).toISOString() }, gpuMilliseconds: { cumulative: 200_000, delta: 200_000 }, amount: '66666ustake' });
    const pods = [pod(a, { startedMs: T0, completedMs: T0 + 200_000 })];
    const [r] = planUsageRecords({ assignments: [a], records: [prev], pods, windowEndMs: T0 + 600_000, payee: PAYEE });
    expect(r?.spec).toMatchObject({ final: true, gpuMilliseconds: { cumulative: 200_000, delta: 0 }, amount: '0ustake' });
    const closed = recorded('r2', { ...r?.spec, final: true });
    expect(planUsageRecords({ assignments: [a], records: [prev, closed], pods, windowEndMs: T0 + 900_000, payee: PAYEE })).toEqual([]);
  });

  it('writes nothing for a job that never ran, nor while less than one base unit is due (it carries)', () => {
    const never = assignment('carol-never-1', { ended: T0 + 5_000, phase: 'Withdrawn' });
    const tiny = assignment('carol-tiny-1', { price: '1ustake' });
    const pods = [pod(never, {}), pod(tiny, { startedMs: T0, lastRunningMs: T0 + 60_000 })];
    expect(planUsageRecords({ assignments: [never, tiny], records: [], pods, windowEndMs: T0 + 300_000, payee: PAYEE })).toEqual([]);
  });

  it('never bills a withdrawn Assignment past its end, even if its pod was seen running later', () => {
    const a = assignment('carol-lost-1', { ended: T0 + 30_000, phase: 'Withdrawn' });
    const [r] = planUsageRecords({ assignments: [a], records: [], pods: [pod(a, { startedMs: T0, lastRunningMs: T0 + 250_000 })], windowEndMs: T0 + 300_000, payee: PAYEE });
    expect(r?.spec).toMatchObject({ final: true, gpuMilliseconds: { cumulative: 30_000 } });
  });

  it("never bills past the end of the run window the registry set (spec.billableUntil), though the pod still runs", () => {
    const a = assignment('carol-fenced-1');
    a.spec.billableUntil = new Date(T0 + 20_000).toISOString().replace(/\.\d{3}Z$/, 'Z');
    const [r] = planUsageRecords({ assignments: [a], records: [], pods: [pod(a, { startedMs: T0, lastRunningMs: T0 + 250_000 })], windowEndMs: T0 + 300_000, payee: PAYEE });
    // Not final: the copy has not ended, it is only paid no further.
    expect(r?.spec).toMatchObject({ final: false, gpuMilliseconds: { cumulative: 20_000 } });
  });

  it('takes the average utilisation and the summed energy of the pods when the exporter has them', () => {
    const a = assignment('carol-train-1');
    const [r] = planUsageRecords({
      assignments: [a], records: [], pods: [pod(a, { startedMs: T0, lastRunningMs: T0 + 300_000 })], windowEndMs: T0 + 300_000, payee: PAYEE,
      extras: { utilization: new Map([['p-carol-train-1', 87.4]]), energyMj: new Map([['p-carol-train-1', 105_000_000.4]]) },
    });
    expect(r?.spec).toMatchObject({ gpuUtilizationPercent: 87, energyMillijoules: 105_000_000 });
  });
});

describe('record names and chain ends', () => {
  it('names a record after its Assignment and window end, hashing names that would be too long', () => {
    expect(usageRecordName('carol-train-3f1c9a52-1', T0 + 300_000)).toBe(`carol-train-3f1c9a52-1-${(T0 + 300_000) / 1000}`);
    const long = usageRecordName('x'.repeat(250), T0);
    expect(long.length).toBeLessThanOrEqual(253);
    expect(long).toMatch(/^x+-[0-9a-f]{10}-\d+$/);
    expect(usageRecordName('x'.repeat(250), T0)).toBe(long);
  });

  it('finds the newest record per Assignment and the oldest start still open', () => {
    const r1 = recorded('r1', { assignmentName: 'a', period: { start: '', end: new Date(T0 + 300_000).toISOString() } });
    const r2 = recorded('r2', { assignmentName: 'a', period: { start: '', end: new Date(T0 + 600_000).toISOString() } });
    expect(lastRecords([r2, r1]).get('a')?.metadata.name).toBe('r2');
    const open = assignment('b');
    expect(oldestOpenStart([assignment('a'), open], [r1, r2], T0 + 999_000)).toBe(T0);
    expect(oldestOpenStart([assignment('a')], [r1, r2], T0 + 999_000)).toBe(T0 + 600_000);
  });
});
