import { describe, expect, it } from '@jest/globals';
import type { ComputeJob, ComputeJobStatus, UsageRecord, UsageRecordStatusState } from '../../../operator/src/api/index.js';
import { UsageError } from '../output.js';
import { jobBlock, jobSettlements, jobsSettlementsText, owedOf, recordRows, recordsTable, recordTotals, RENTER_NOTE, settlementScope, settlementsText } from './settlements.js';

const TX1 = 'A1'.repeat(32);
const TX2 = 'B2'.repeat(32);

let seq = 0;
/** A UsageRecord as an agent writes it: one period of one job on one provider. */
function record(provider: string, job: string, end: string, amount: string, state?: UsageRecordStatusState, tx?: { txHash: string; height: number }): UsageRecord {
  const [namespace, name] = job.split('/') as [string, string];
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'UsageRecord',
    metadata: { name: `${name}-${seq++}`, namespace: `gpufed-provider-${provider}` },
    spec: {
      assignmentName: `${namespace}-${name}-1`,
      jobRef: { namespace, name, uid: `uid-${name}` },
      epoch: 1,
      model: 'M',
      gpus: 1,
      period: { start: '2026-11-21T11:00:00Z', end },
      gpuMilliseconds: { cumulative: 120_000, delta: 60_000 },
      pricePerGpuHour: '1200000ustake',
      amount,
      payer: 'cosmos1carol',
      payee: 'cosmos1payout',
      evidenceDigest: '0'.repeat(64),
    },
    ...(state ? { status: { state, ...tx } } : {}),
  };
}

function job(name: string, status?: ComputeJobStatus): ComputeJob {
  return { apiVersion: 'gpufed.io/v1alpha1', kind: 'ComputeJob', metadata: { name, namespace: 'carol' }, spec: { image: 'python:3.13', resources: { gpu: { count: 1 } }, maxPricePerGpuHour: '1500000ustake' }, ...(status ? { status } : {}) };
}

describe('settlementScope', () => {
  it.each([
    ['--all-providers', { allProviders: true }, 'carol', { kind: 'all' }],
    ['--provider over the context', { provider: 'alice' }, 'carol', { kind: 'provider', namespace: 'gpufed-provider-alice' }],
    ['--provider with its own -n', { provider: 'alice', namespace: 'gpufed-provider-alice' }, undefined, { kind: 'provider', namespace: 'gpufed-provider-alice' }],
    ["an agent's context namespace", {}, 'gpufed-provider-bob', { kind: 'provider', namespace: 'gpufed-provider-bob' }],
    ["a renter's context namespace", {}, 'carol', { kind: 'renter', namespace: 'carol' }],
    ['-n over the context', { namespace: 'dave' }, 'carol', { kind: 'renter', namespace: 'dave' }],
  ])('reads %s', (_, flags, context, want) => {
    expect(settlementScope(flags, context)).toEqual(want);
  });

  it.each([
    ['no namespace at all', {}, 'no namespace: pass -n <namespace> (yours as a renter), --provider <name> or --all-providers'],
    ['--provider with another -n', { provider: 'alice', namespace: 'carol' }, '--provider alice lists namespace gpufed-provider-alice, not -n carol: pass one'],
    ['--all-providers with -n', { allProviders: true, namespace: 'carol' }, '--all-providers and -n carol: pass one'],
    ['--all-providers with --provider', { allProviders: true, provider: 'alice' }, '--all-providers and --provider: pass one'],
  ])('refuses %s', (_, flags, message) => {
    expect(() => settlementScope(flags, undefined)).toThrow(new UsageError(message));
  });
});

describe('UsageRecords', () => {
  const records = [
    record('bob', 'carol/train', '2026-11-21T11:02:00Z', '20000ustake', 'Committed', { txHash: TX2, height: 12 }),
    record('alice', 'carol/train', '2026-11-21T11:01:00Z', '20000ustake', 'Committed', { txHash: TX1, height: 10 }),
    record('alice', 'carol/eval', '2026-11-21T11:01:00Z', '0ustake', 'NothingDue'),
    // Not checked by the registry yet (no status).
    record('alice', 'dave/train', '2026-11-21T11:03:00Z', '20000ustake'),
  ];

  it('lists them by job, then period, with the payment state, transaction and height', () => {
    expect(recordRows(records, {}).map((r) => [r.job, r.provider, r.periodEnd, r.state, r.txHash, r.height])).toEqual([
      ['carol/eval', 'alice', '2026-11-21T11:01:00Z', 'NothingDue', null, null],
      ['carol/train', 'alice', '2026-11-21T11:01:00Z', 'Committed', TX1, 10],
      ['carol/train', 'bob', '2026-11-21T11:02:00Z', 'Committed', TX2, 12],
      ['dave/train', 'alice', '2026-11-21T11:03:00Z', 'Unverified', null, null],
    ]);
  });

  it("selects a job by name, and a renter's jobs by namespace", () => {
    expect(recordRows(records, { job: 'train' }).map((r) => r.job)).toEqual(['carol/train', 'carol/train', 'dave/train']);
    expect(recordRows(records, { job: 'train', jobNamespace: 'carol' })).toHaveLength(2);
    expect(recordRows(records, { jobNamespace: 'dave' }).map((r) => r.name)).toEqual([records[3]?.metadata.name]);
  });

  it('renders a table with totals per state', () => {
    const lines = recordsTable(recordRows(records, {})).split('\n');
    expect(lines[0]).toMatch(/^JOB\s+PROVIDER\s+PERIOD END\s+GPU-MS\s+AMOUNT\s+STATE\s+TX HASH\s+HEIGHT$/);
    expect(lines[2]).toMatch(new RegExp(`^carol/train\\s+alice\\s+2026-11-21T11:01:00Z\\s+60000\\s+20000ustake\\s+Committed\\s+${TX1}\\s+10$`));
    expect(lines[4]).toMatch(/^dave\/train\s+alice\s+2026-11-21T11:03:00Z\s+60000\s+20000ustake\s+Unverified\s+-\s+-$/);
    expect(lines[6]).toBe('4 records: 2 Committed (40000ustake), 1 NothingDue (0ustake), 1 Unverified (20000ustake)');
    expect(recordTotals([])).toBe('0 records');
  });

  it('says when there is nothing', () => {
    expect(settlementsText({ source: 'UsageRecords', scope: 'namespace gpufed-provider-alice', records: [] }, 'train')).toBe('No UsageRecords for job train in namespace gpufed-provider-alice: nothing metered yet.');
  });
});

describe("a renter's jobs", () => {
  const paid: ComputeJobStatus = {
    phase: 'Succeeded',
    placement: { provider: 'bob' },
    usage: { gpuMilliseconds: 7_200_000 },
    cost: '2800000ustake',
    paid: '2100000ustake',
    settlements: [
      { txHash: TX1, height: 10, amount: '1400000ustake', time: '2026-11-21T11:01:00Z' },
      { txHash: TX2, height: 12, amount: '700000ustake' },
    ],
  };

  it.each([
    [undefined, undefined, null],
    ['2800000ustake', undefined, '2800000ustake'],
    ['2800000ustake', '2100000ustake', '700000ustake'],
    ['2800000ustake', '2800000ustake', '0ustake'],
    ['2800000ustake', '3000000ustake', '0ustake'],
    ['2800000ustake', '5uatom', '2800000ustake'],
  ])('owes cost %s minus paid %s: %s', (cost, p, owed) => {
    expect(owedOf(cost, p)).toBe(owed);
  });

  it('shows the money and each committed transaction of a job', () => {
    const lines = jobBlock(jobSettlements(job('train', paid))).split('\n');
    expect(lines[0]).toBe('train   Succeeded on bob: 7200000 GPU-ms verified, cost 2800000ustake, paid 2100000ustake, 700000ustake owed');
    expect(lines[1]).toMatch(/^ {2}TX HASH\s+HEIGHT\s+AMOUNT\s+TIME$/);
    expect(lines[2]).toMatch(new RegExp(`^  ${TX1}\\s+10\\s+1400000ustake\\s+2026-11-21T11:01:00Z$`));
    expect(lines[3]).toMatch(new RegExp(`^  ${TX2}\\s+12\\s+700000ustake\\s+-$`));
  });

  it('says a job with nothing metered owes nothing', () => {
    expect(jobSettlements(job('idle'))).toEqual({ name: 'idle', namespace: 'carol', phase: 'Pending', provider: null, gpuMilliseconds: 0, cost: null, paid: null, owed: null, disputed: null, settlements: [] });
    expect(jobBlock(jobSettlements(job('idle')))).toBe('idle   Pending: no GPU time metered, nothing owed');
    expect(jobBlock(jobSettlements(job('done', { ...paid, paid: '2800000ustake', settlements: [] })))).toBe('done   Succeeded on bob: 7200000 GPU-ms verified, cost 2800000ustake, paid 2800000ustake, nothing owed');
    expect(jobBlock(jobSettlements(job('claimed', { ...paid, disputed: '500ustake', settlements: [] })))).toMatch(/, 500ustake disputed \(not paid\)$/);
  });

  it('says why it shows jobs, not records, and when there are none', () => {
    expect(jobsSettlementsText([jobSettlements(job('idle'))], 'carol')).toBe(`idle   Pending: no GPU time metered, nothing owed\n\n${RENTER_NOTE}`);
    expect(jobsSettlementsText([], 'carol')).toBe(`No ComputeJobs in namespace carol: nothing owed.\n${RENTER_NOTE}`);
  });
});
