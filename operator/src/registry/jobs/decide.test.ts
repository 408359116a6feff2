import type { Assignment, AssignmentStatus, ComputeJob, Provider, Tenant } from '../../api/index.js';
import type { MatchResult } from '../../scheduling/match.js';
import { JOB_FINALIZER, assignmentName, decideJob, newAssignment, type JobSituation } from './decide.js';

const NOW = new Date('2026-11-21T12:00:00Z');
const ago = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString();
const PAYER = 'cosmos1hgaht9uh5ng8aqvq75ft9ct44vc2unh2tqx662';
const A6000 = 'NVIDIA-RTX-A6000';

function job(edit: (j: ComputeJob) => void = () => undefined): ComputeJob {
  const j: ComputeJob = {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'ComputeJob',
    metadata: { name: 'train', namespace: 'carol', uid: '3f1c9a52-7b0e-4d6a-9c21-5e8f0b7d4a13', generation: 1, creationTimestamp: new Date(ago(5)), finalizers: [JOB_FINALIZER], annotations: { 'sim.gpufed.io/duration': '2s', 'note/private': 'x' } },
    spec: { image: 'pytorch:2.5', resources: { gpu: { count: 1, models: [A6000] } }, maxPricePerGpuHour: '1500000ustake', maxDurationSeconds: 600, retries: 0 },
  };
  edit(j);
  return j;
}

function placed(j: ComputeJob, provider: string, epoch: number): ComputeJob {
  j.status = { phase: 'Scheduled', attempts: epoch, placement: { provider, nodeName: `${provider}-node`, model: A6000, pricePerGpuHour: '1400000ustake', assignmentName: assignmentName(j, epoch), epoch } };
  return j;
}

function assignment(j: ComputeJob, provider: string, epoch: number, status?: Partial<AssignmentStatus>, withdrawn?: Assignment['spec']['withdrawnReason']): Assignment {
  const n = newAssignment(j, { provider, nodeName: `${provider}-node`, model: A6000, pricePerGpuHour: '1400000ustake' }, epoch, PAYER);
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'Assignment',
    metadata: { name: n.name, namespace: n.namespace, labels: n.labels },
    spec: { ...n.spec, ...(withdrawn ? { withdrawn: true, withdrawnReason: withdrawn } : {}) },
    ...(status ? { status: { observedEpoch: epoch, ...status } } : {}),
  };
}

const verified: Tenant = {
  apiVersion: 'gpufed.io/v1alpha1',
  kind: 'Tenant',
  metadata: { name: 'carol' },
  spec: { namespace: 'carol', address: PAYER, proof: { challenge: 'c', signature: 's', pubKey: 'k' } },
  status: { verifiedAddress: PAYER, conditions: [{ type: 'Verified', status: 'True', reason: 'SignatureValid', message: 'ok', lastTransitionTime: ago(60) }] },
};

const provider = (name: string, heartbeatSecondsAgo: number): Provider => ({
  apiVersion: 'gpufed.io/v1alpha1',
  kind: 'Provider',
  metadata: { name },
  spec: { wallet: PAYER, region: name === 'alice' ? 'eu-west' : 'us-east', prices: [{ model: A6000, pricePerGpuHour: '1400000ustake' }] },
  status: { lastHeartbeatTime: ago(heartbeatSecondsAgo) },
});

const defaultProviders = new Map([['alice', provider('alice', 1)], ['bob', provider('bob', 1)]]);

function situation(j: ComputeJob, over: Partial<JobSituation> = {}): JobSituation & { excluded: (readonly string[])[] } {
  const excluded: (readonly string[])[] = [];
  const onto = (p: string): MatchResult => ({ placed: { provider: p, nodeName: `${p}-node`, model: A6000, resourceName: 'nvidia.com/gpu', units: 1, pricePerGpuHour: '1400000ustake' } });
  return {
    job: j,
    tenant: verified,
    assignments: [],
    providers: defaultProviders,
    match: (exclude) => {
      excluded.push(exclude);
      return onto(exclude.includes('bob') ? 'alice' : 'bob');
    },
    now: NOW,
    providerLostTimeoutMs: 60_000,
    deadlineGraceMs: 30_000,
    excluded,
    ...over,
    // The test's providers carry when they were last seen in lastHeartbeatTime.
    heartbeatAgeMs: (p) => {
      const seen = Date.parse((over.providers ?? defaultProviders).get(p)?.status?.lastHeartbeatTime ?? '');
      return Number.isNaN(seen) ? Number.POSITIVE_INFINITY : NOW.getTime() - seen;
    },
  };
}

const condition = (j: { status?: { conditions?: { type: string; message: string }[] } }, type: string) => j.status?.conditions?.find((c) => c.type === type);

describe('decideJob: placing', () => {
  it('places a new job: status first, then the Assignment the provider needs, with the tenant as payer', () => {
    const d = decideJob(situation(job((j) => (j.metadata.finalizers = []))));
    expect(d.finalizer).toBe('add');
    expect(d.status.phase).toBe('Scheduled');
    expect(d.status.placement).toEqual({ provider: 'bob', region: 'us-east', nodeName: 'bob-node', model: A6000, pricePerGpuHour: '1400000ustake', assignmentName: 'carol-train-3f1c9a52-1', epoch: 1 });
    expect(d.status.attempts).toBe(1);
    expect(d.status.logRef).toBe('train-log');
    expect(condition(d, 'Scheduled')).toMatchObject({ status: 'True', reason: 'Placed', observedGeneration: 1 });
    expect(d.create).toMatchObject({ namespace: 'gpufed-provider-bob', name: 'carol-train-3f1c9a52-1', labels: { 'gpufed.io/job-uid': '3f1c9a52-7b0e-4d6a-9c21-5e8f0b7d4a13', 'gpufed.io/job-namespace': 'carol' } });
    expect(d.create?.spec).toMatchObject({ jobRef: { namespace: 'carol', name: 'train', uid: '3f1c9a52-7b0e-4d6a-9c21-5e8f0b7d4a13' }, epoch: 1, payer: PAYER, model: A6000, pricePerGpuHour: '1400000ustake', maxDurationSeconds: 600, nodeName: 'bob-node' });
    // Only the simulation annotations travel to the provider, nothing else of the renter's.
    expect(d.create?.annotations).toEqual({ 'sim.gpufed.io/duration': '2s' });
    expect(d.placed?.epoch).toBe(1);
  });

  it.each<[string, Tenant | undefined, RegExp]>([
    ['no Tenant for the namespace', undefined, /No Tenant binds namespace carol/],
    ['a Tenant whose proof failed', { ...verified, status: { conditions: [{ type: 'Verified', status: 'False', reason: 'SignatureInvalid', message: 'proof.signature does not verify', lastTransitionTime: ago(1) }] } }, /not verified: proof.signature does not verify/],
    ['a Tenant not checked yet', { ...verified, status: {} }, /not verified: its proof has not been checked yet/],
    ['a Tenant whose address changed since it was verified', { ...verified, spec: { ...verified.spec, address: 'cosmos1mk8fzcygt80ykycmzejuh6nsrln63lszqw8vmh' } }, /not verified/],
  ])('does not place a job with %s', (_name, tenant, message) => {
    const s = situation(job());
    const d = decideJob({ ...s, ...(tenant ? { tenant } : { tenant: undefined }) });
    expect(d.create).toBeUndefined();
    expect(d.status.phase).toBe('Pending');
    expect(condition(d, 'Scheduled')).toMatchObject({ status: 'False', reason: 'TenantNotVerified' });
    expect(condition(d, 'Scheduled')?.message).toMatch(message);
    expect(d.waiting).toEqual(['TenantNotVerified']);
  });

  it("says why nothing fits, in the matcher's words, and looks again later", () => {
    const d = decideJob(situation(job(), { match: () => ({ unschedulable: '0/2 providers are available: 2 cordoned.', codes: { Cordoned: 2 } }) }));
    expect(d.status.phase).toBe('Pending');
    expect(condition(d, 'Scheduled')).toMatchObject({ status: 'False', reason: 'NoMatchingProvider', message: '0/2 providers are available: 2 cordoned.' });
    expect(d.create).toBeUndefined();
    expect(d.waiting).toEqual(['Cordoned']);
    expect(d.requeueAfterMs).toBeGreaterThan(0);
  });

  it('creates the Assignment the status names when a crash came between the two writes', () => {
    const j = placed(job(), 'bob', 1);
    const d = decideJob(situation(j));
    expect(d.create).toMatchObject({ namespace: 'gpufed-provider-bob', name: 'carol-train-3f1c9a52-1', spec: { epoch: 1, payer: PAYER } });
    expect(d.placed).toBeUndefined();
    expect(d.status.placement).toEqual(j.status?.placement);
  });

  it('names Assignments per job, uid and epoch, short enough for a name', () => {
    const long = job((j) => (j.metadata.name = 'x'.repeat(253)));
    expect(assignmentName(long, 12).length).toBeLessThanOrEqual(253);
    expect(assignmentName(long, 12)).toMatch(/-3f1c9a52-12$/);
    expect(assignmentName(job(), 1)).not.toBe(assignmentName(job((j) => (j.metadata.uid = 'ffffffff-0000')), 1));
  });
});

describe('decideJob: following the current attempt', () => {
  it('reports a running pod', () => {
    const j = placed(job(), 'bob', 1);
    const d = decideJob(situation(j, { assignments: [assignment(j, 'bob', 1, { phase: 'Running', nodeName: 'bob-node', startTime: ago(10) })] }));
    expect(d.status.phase).toBe('Running');
    expect(d.status.startTime).toBe(ago(10));
    expect(condition(d, 'Running')).toMatchObject({ status: 'True', reason: 'PodRunning' });
    expect(d.create).toBeUndefined();
    expect(d.withdraw).toEqual([]);
  });

  it('finishes a job whose pod succeeded, with its exit code and completion time', () => {
    const j = placed(job(), 'bob', 1);
    const d = decideJob(situation(j, { assignments: [assignment(j, 'bob', 1, { phase: 'Succeeded', exitCode: 0, startTime: ago(10), completionTime: ago(2) })] }));
    expect(d.status).toMatchObject({ phase: 'Succeeded', exitCode: 0, completionTime: ago(2) });
    expect(condition(d, 'Succeeded')).toMatchObject({ status: 'True', reason: 'Completed' });
  });

  it('places a rejected job again without the provider that rejected it, without using up a try', () => {
    const j = placed(job(), 'bob', 1);
    const s = situation(j, { assignments: [assignment(j, 'bob', 1, { phase: 'Rejected', reason: 'InsufficientGpus', message: 'no free A6000' })] });
    const d = decideJob(s);
    expect(s.excluded).toEqual([['bob']]);
    expect(d.status.placement).toMatchObject({ provider: 'alice', epoch: 2 });
    expect(d.status.attempts).toBe(1);
    expect(d.create?.name).toBe('carol-train-3f1c9a52-2');
    expect(d.status.message).toMatch(/^Rejected by bob \(InsufficientGpus: no free A6000\); Placed on alice/);
  });

  it('moves the job of a provider lost mid-run: withdraws its Assignment and places a new epoch elsewhere', () => {
    const j = placed(job((x) => (x.spec.retries = 1)), 'bob', 1);
    const s = situation(j, { assignments: [assignment(j, 'bob', 1, { phase: 'Running', startTime: ago(100) })], providers: new Map([['alice', provider('alice', 1)], ['bob', provider('bob', 61)]]) });
    const d = decideJob(s);
    expect(d.withdraw).toEqual([{ namespace: 'gpufed-provider-bob', name: 'carol-train-3f1c9a52-1', reason: 'ProviderLost' }]);
    expect(s.excluded).toEqual([['bob']]);
    expect(d.status.placement).toMatchObject({ provider: 'alice', epoch: 2 });
    expect(d.status.attempts).toBe(2);
    expect(d.status.startTime).toBeUndefined();
    expect(d.create?.spec.epoch).toBe(2);
  });

  it('fails the job of a lost provider when no retry is left', () => {
    const j = placed(job(), 'bob', 1);
    const d = decideJob(situation(j, { assignments: [assignment(j, 'bob', 1, { phase: 'Running' })], providers: new Map([['bob', provider('bob', 600)]]) }));
    expect(d.withdraw).toEqual([{ namespace: 'gpufed-provider-bob', name: 'carol-train-3f1c9a52-1', reason: 'ProviderLost' }]);
    expect(d.status.phase).toBe('Failed');
    expect(condition(d, 'Failed')).toMatchObject({ reason: 'ProviderLost' });
    expect(d.create).toBeUndefined();
  });

  it('keeps following a withdrawn lost attempt only to retry it: it never waits for the lost agent', () => {
    const j = placed(job((x) => (x.spec.retries = 2)), 'bob', 1);
    const d = decideJob(situation(j, { assignments: [assignment(j, 'bob', 1, { phase: 'Running' }, 'ProviderLost')] }));
    expect(d.status.placement).toMatchObject({ provider: 'alice', epoch: 2 });
  });

  it.each<[string, number, Partial<AssignmentStatus>[], string, number | undefined]>([
    ['a failed container without retries', 0, [{ phase: 'Failed', exitCode: 3, reason: 'Error' }], 'ContainerFailed', 3],
    ['a second failure with one retry', 1, [{ phase: 'Failed', exitCode: 1 }, { phase: 'Failed', exitCode: 2 }], 'RetriesExhausted', 2],
    ['a pod past its deadline, never retried', 3, [{ phase: 'Failed', reason: 'DeadlineExceeded' }], 'DeadlineExceeded', undefined],
  ])('fails for good after %s', (_name, retries, attempts, reason, exitCode) => {
    const j = placed(job((x) => (x.spec.retries = retries)), 'bob', attempts.length);
    const d = decideJob(situation(j, { assignments: attempts.map((st, i) => assignment(j, 'bob', i + 1, st)) }));
    expect(d.status.phase).toBe('Failed');
    expect(condition(d, 'Failed')).toMatchObject({ status: 'True', reason });
    expect(d.status.exitCode).toBe(exitCode);
    expect(d.create).toBeUndefined();
  });

  it('retries a failed container while retries are left, on any provider', () => {
    const j = placed(job((x) => (x.spec.retries = 1)), 'bob', 1);
    const s = situation(j, { assignments: [assignment(j, 'bob', 1, { phase: 'Failed', exitCode: 1 })] });
    const d = decideJob(s);
    expect(s.excluded).toEqual([[]]);
    expect(d.status.placement).toMatchObject({ provider: 'bob', epoch: 2 });
    expect(d.status.message).toMatch(/^Exited with code 1; retrying; Placed on bob/);
  });

  it('withdraws and fails a job its agent did not stop past maxDuration and the grace', () => {
    const j = placed(job(), 'bob', 1);
    const late = decideJob(situation(j, { assignments: [assignment(j, 'bob', 1, { phase: 'Running', startTime: ago(631) })] }));
    expect(late.status.phase).toBe('Failed');
    expect(condition(late, 'Failed')).toMatchObject({ reason: 'DeadlineExceeded' });
    expect(late.withdraw).toEqual([{ namespace: 'gpufed-provider-bob', name: 'carol-train-3f1c9a52-1', reason: 'DeadlineExceeded' }]);
    const inTime = decideJob(situation(j, { assignments: [assignment(j, 'bob', 1, { phase: 'Running', startTime: ago(600) })] }));
    expect(inTime.status.phase).toBe('Running');
    expect(inTime.requeueAfterMs).toBe(30_000);
  });

  it('leaves a finished job as it is', () => {
    const j = placed(job(), 'bob', 1);
    const done = decideJob(situation(j, { assignments: [assignment(j, 'bob', 1, { phase: 'Succeeded', exitCode: 0 })] }));
    const again = decideJob(situation({ ...j, status: done.status }, { assignments: [assignment(j, 'bob', 1, { phase: 'Succeeded', exitCode: 0 })] }));
    expect(again.status).toEqual(done.status);
    expect(again.create).toBeUndefined();
    expect(again.withdraw).toEqual([]);
  });
});

describe('decideJob: cancelling', () => {
  const deleting = () => placed(job((j) => (j.metadata.deletionTimestamp = new Date(ago(1)))), 'bob', 1);

  it('withdraws the running attempt and keeps the job until the agent stopped it', () => {
    const j = deleting();
    const d = decideJob(situation(j, { assignments: [assignment(j, 'bob', 1, { phase: 'Running' })] }));
    expect(d.withdraw).toEqual([{ namespace: 'gpufed-provider-bob', name: 'carol-train-3f1c9a52-1', reason: 'Cancelled' }]);
    expect(d.finalizer).toBe('keep');
    expect(d.status.phase).toBe('Cancelling');
  });

  it('lets the job go once the attempt is over', () => {
    const j = deleting();
    const d = decideJob(situation(j, { assignments: [assignment(j, 'bob', 1, { phase: 'Withdrawn' }, 'Cancelled')] }));
    expect(d.withdraw).toEqual([]);
    expect(d.finalizer).toBe('remove');
  });

  it('does not wait for a lost provider that cannot answer', () => {
    const j = deleting();
    const d = decideJob(situation(j, { assignments: [assignment(j, 'bob', 1, { phase: 'Running' }, 'Cancelled')], providers: new Map([['bob', provider('bob', 600)]]) }));
    expect(d.finalizer).toBe('remove');
  });

  it('keeps a stopped job until its final payment is committed, then lets it go', () => {
    const j = deleting();
    const stopped = [assignment(j, 'bob', 1, { phase: 'Withdrawn' }, 'Cancelled')];
    const waiting = decideJob(situation(j, { assignments: stopped, unsettled: ["bob's final usage record"], settleWaitMs: 600_000 }));
    expect(waiting.finalizer).toBe('keep');
    expect(waiting.status.message).toBe("Cancelling: the job stopped; waiting for bob's final usage record before letting it go");
    expect(waiting.requeueAfterMs).toBeGreaterThan(0);
    expect(decideJob(situation(j, { assignments: stopped, unsettled: [], settleWaitMs: 600_000 })).finalizer).toBe('remove');
  });

  it('lets a job go unpaid once the settlement wait is over: a payment that never comes cannot keep it forever', () => {
    const j = deleting(); // deleted a second ago
    const d = decideJob(situation(j, { assignments: [assignment(j, 'bob', 1, { phase: 'Withdrawn' }, 'Cancelled')], unsettled: ['1 unpaid usage record'], settleWaitMs: 500 }));
    expect(d.finalizer).toBe('remove');
  });
});
