import { describe, expect, it } from '@jest/globals';
import type { ComputeJob, ComputeJobStatus } from '../../../operator/src/api/index.js';
import { UsageError } from '../output.js';
import { gpuSummary, jobDetails, jobRow, jobsTable, nextSteps, submitNamespace } from './jobs.js';

const now = new Date('2026-11-21T12:00:00Z');
const minutesAgo = (m: number) => new Date(now.getTime() - m * 60_000).toISOString();

function job(name: string, status?: ComputeJobStatus): ComputeJob {
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'ComputeJob',
    metadata: { name, namespace: 'carol', creationTimestamp: minutesAgo(5) as unknown as Date },
    spec: { image: 'python:3.13', resources: { gpu: { count: 2, models: ['NVIDIA-RTX-A6000'] } }, maxPricePerGpuHour: '1500000ustake', maxDurationSeconds: 5400, retries: 1 },
    ...(status ? { status } : {}),
  };
}

const running: ComputeJobStatus = {
  phase: 'Running',
  message: 'Running on bob',
  placement: { provider: 'bob', region: 'home', nodeName: 'bob-ws', model: 'NVIDIA-RTX-A6000', pricePerGpuHour: '1400000ustake', assignmentName: 'carol-train-1a2b3c4d-1', epoch: 1 },
  attempts: 1,
  startTime: minutesAgo(3),
  logRef: 'train-log',
  conditions: [
    { type: 'Scheduled', status: 'True', reason: 'Placed', message: 'Placed on bob (bob-ws, 2× NVIDIA-RTX-A6000) at 1400000ustake per GPU-hour', lastTransitionTime: minutesAgo(4) },
    { type: 'Running', status: 'True', reason: 'PodRunning', message: 'Running on bob/bob-ws', lastTransitionTime: minutesAgo(3) },
  ],
};

describe('jobs list', () => {
  it('shows where each job runs, at what price, and the registry message, cut to fit', () => {
    expect(jobRow(job('train', running), now)).toEqual(['train', 'Running', 'bob', 'NVIDIA-RTX-A6000', '2', '1400000ustake', '5m', 'Running on bob']);
    const waiting = job('big', { phase: 'Pending', message: `0/2 providers are available: ${'1 cordoned, '.repeat(10)}` });
    const row = jobRow(waiting, now);
    expect(row.slice(0, 6)).toEqual(['big', 'Pending', '-', '-', '2', '-']);
    expect(row[7]).toHaveLength(60);
    expect(row[7]).toMatch(/^0\/2 providers are available: 1 cordoned, .*…$/);
    expect(jobRow(job('new'), now)[1]).toBe('Pending');
  });

  it('is a table with the columns of the brief', () => {
    expect(jobsTable([job('train', running)], now).split('\n')[0]).toMatch(/^NAME\s+PHASE\s+PROVIDER\s+MODEL\s+GPUS\s+PRICE\s+AGE\s+MESSAGE$/);
  });
});

describe('jobs get', () => {
  it('shows the request, the placement, the times and the conditions', () => {
    const text = jobDetails(job('train', running), now);
    expect(text).toMatch(/^Name:\s+train$/m);
    expect(text).toMatch(/^GPUs:\s+2× NVIDIA-RTX-A6000$/m);
    expect(text).toMatch(/^Max duration:\s+1h30m per attempt, 1 retries$/m);
    expect(text).toMatch(/^Placement:\s+bob \(home\), node bob-ws, NVIDIA-RTX-A6000 at 1400000ustake per GPU-hour, epoch 1$/m);
    expect(text).toMatch(/^Started:\s+2026-11-21T11:57:00.000Z \(3m ago\)$/m);
    expect(text).toMatch(/^Log:\s+ConfigMap train-log \(gpufed jobs logs train\)$/m);
    expect(text).toMatch(/^ {2}TYPE\s+STATUS\s+REASON\s+AGE\s+MESSAGE$/m);
    expect(text).toMatch(/^ {2}Running\s+True\s+PodRunning\s+3m\s+Running on bob\/bob-ws$/m);
    expect(text).not.toMatch(/Exit code|Completed/);
  });
});

describe('gpuSummary', () => {
  it.each([
    [{ count: 1 }, '1× any model'],
    [{ count: 1, models: ['A', 'B'], minMemoryMiB: 24000 }, '1× A or B (at least 24000 MiB each)'],
    [{ count: 3, sharing: 'MIG' as const, migProfile: '1g.10gb' }, '3× any model (MIG 1g.10gb)'],
  ])('%j → %s', (gpu, want) => {
    expect(gpuSummary(gpu)).toBe(want);
  });
});

describe('submitNamespace', () => {
  const context = () => 'carol';
  it("takes the manifest's, which -n may repeat, else -n, else the context's", () => {
    expect(submitNamespace('lab', undefined, context)).toBe('lab');
    expect(submitNamespace('lab', 'lab', context)).toBe('lab');
    expect(submitNamespace(undefined, 'lab', context)).toBe('lab');
    expect(submitNamespace(undefined, undefined, context)).toBe('carol');
  });

  it('refuses -n contradicting the manifest', () => {
    expect(() => submitNamespace('lab', 'carol', context)).toThrow(UsageError);
    expect(() => submitNamespace('lab', 'carol', context)).toThrow('-n carol: the manifest is for namespace lab; drop -n or change metadata.namespace');
  });
});

describe('nextSteps', () => {
  it('names the commands to follow the job, with -n when it is not the default namespace', () => {
    expect(nextSteps('train', '')).toMatch(/^ {2}gpufed jobs wait train\s+# until it ends/m);
    expect(nextSteps('train', ' -n lab')).toMatch(/^ {2}gpufed jobs logs -f train -n lab\s/m);
  });
});
