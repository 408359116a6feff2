import type { Assignment, ComputeJob, UsageRecord } from '../../api/index.js';
import { settledState, settlementStatus } from './status.js';

const NOW = new Date('2026-11-21T12:30:00Z');
const job = (phase?: string): ComputeJob => ({ apiVersion: 'gpufed.io/v1alpha1', kind: 'ComputeJob', metadata: { name: 'train', namespace: 'carol', uid: 'u1' }, spec: { image: 'x', resources: { gpu: { count: 1, models: ['M'] } }, maxPricePerGpuHour: '2000000ustake' }, ...(phase ? { status: { phase: phase as 'Running' } } : {}) });
const assignment = (name: string, provider = 'alice', ran = true): Assignment => ({ apiVersion: 'gpufed.io/v1alpha1', kind: 'Assignment', metadata: { name, namespace: `gpufed-provider-${provider}` }, spec: {} as Assignment['spec'], ...(ran ? { status: { startTime: '2026-11-21T12:00:00Z' } } : {}) });
type State = 'Unverified' | 'Disputed' | 'Pending' | 'Settling' | 'Committed' | 'NothingDue';
/** A record as the registry's usage controller leaves it: `state` is the registry's, never the agent's. */
function record(name: string, a: string, end: string, delta: number, amount: string, state?: State, tx?: { hash: string; height: number; time?: string }, final = false): UsageRecord {
  return {
    apiVersion: 'gpufed.io/v1alpha1', kind: 'UsageRecord', metadata: { name },
    spec: { assignmentName: a, jobRef: { namespace: 'carol', name: 'train', uid: 'u1' }, epoch: 1, model: 'M', gpus: 1, period: { start: '2026-11-21T12:00:00Z', end }, gpuMilliseconds: { cumulative: delta, delta }, pricePerGpuHour: '1200000ustake', amount, payer: 'p', payee: 'q', evidenceDigest: '0'.repeat(64), final },
    ...(state ? { status: { state, ...(tx ? { txHash: tx.hash, height: tx.height, ...(tx.time ? { time: tx.time } : {}) } : {}) } } : {}),
  };
}
const TX1 = { hash: 'A'.repeat(64), height: 10, time: '2026-11-21T12:05:03.251Z' };
const TX2 = { hash: 'B'.repeat(64), height: 20 };

describe('settlementStatus', () => {
  it('sums verified GPU time and cost over attempts, and paid over what the registry found committed, per transaction', () => {
    const records = [
      record('r1', 'a1', '2026-11-21T12:05:00Z', 300_000, '100000ustake', 'Committed', TX1),
      record('r2', 'a1', '2026-11-21T12:10:00Z', 300_000, '100000ustake', 'Settling'),
      record('r3', 'a2', '2026-11-21T12:05:00Z', 60_000, '20000ustake', 'Committed', TX1),
    ];
    const s = settlementStatus(job('Running'), [assignment('a1'), assignment('a2', 'bob')], records, NOW);
    expect(s).toMatchObject({ usage: { gpuMilliseconds: 660_000, meteredUntil: '2026-11-21T12:10:00Z' }, cost: '220000ustake', paid: '120000ustake', settlements: [{ txHash: TX1.hash, height: 10, time: TX1.time, amount: '120000ustake' }] });
    expect(s.disputed).toBeUndefined();
    expect(s.conditions).toHaveLength(1);
    expect(s.conditions?.[0]).toMatchObject({ type: 'Settled', status: 'False', reason: 'SettlementPending' });
    expect(s.conditions?.[0]?.message).toBe("Waiting for alice's final usage record and bob's final usage record and 1 unpaid usage record");
  });

  it('shows only verified usage: a disputed record is neither usage nor cost nor paid, and says so', () => {
    const records = [
      record('ok', 'a1', '2026-11-21T12:05:00Z', 300_000, '100000ustake', 'Committed', TX1),
      record('forged', 'a1', '2026-11-21T12:10:00Z', 3_600_000, '1200000ustake', 'Disputed', undefined, true),
      record('new', 'a2', '2026-11-21T12:10:00Z', 1000, '333ustake'),
    ];
    const s = settlementStatus(job('Running'), [assignment('a1'), assignment('a2', 'bob', false)], records, NOW);
    expect(s).toMatchObject({ usage: { gpuMilliseconds: 300_000, meteredUntil: '2026-11-21T12:05:00Z' }, cost: '100000ustake', paid: '100000ustake', disputed: '1200000ustake' });
    expect(s.conditions?.[0]?.message).toBe('Waiting for the registry to check 1 usage record; 1200000ustake the provider claimed was disputed and is not paid');
  });

  it('shows no payment the registry has not found on chain, whatever txHash a record carries', () => {
    const claimed = record('r1', 'a1', '2026-11-21T12:05:00Z', 300_000, '100000ustake', 'Pending', TX1, true);
    const s = settlementStatus(job('Succeeded'), [assignment('a1')], [claimed], NOW);
    expect(s).toMatchObject({ paid: '0ustake' });
    expect(s.settlements).toBeUndefined();
    expect(s.conditions?.[0]).toMatchObject({ status: 'False' });
  });

  it('is Settled once the job finished, every attempt that ran has its final record and all are paid, nothing due or disputed', () => {
    const records = [record('r1', 'a1', '2026-11-21T12:05:00Z', 300_000, '100000ustake', 'Committed', TX1), record('r2', 'a1', '2026-11-21T12:10:00Z', 10_000, '3333ustake', 'Committed', TX2, true), record('r3', 'a1', '2026-11-21T12:15:00Z', 0, '0ustake', 'NothingDue', undefined, true)];
    const s = settlementStatus(job('Succeeded'), [assignment('a1'), assignment('never-ran', 'bob', false)], records, NOW);
    expect(s.paid).toBe('103333ustake');
    expect(s.settlements?.map((t) => t.txHash)).toEqual([TX1.hash, TX2.hash]);
    expect(s.conditions?.[0]).toMatchObject({ status: 'True', reason: 'SettlementCommitted', message: 'Paid 103333ustake on chain' });
    const disputedFinal = [records[0] as UsageRecord, record('x', 'a1', '2026-11-21T12:10:00Z', 1, '1ustake', 'Disputed', undefined, true)];
    expect(settledState([assignment('a1')], disputedFinal)).toEqual({ settled: true, waitingFor: [] });
  });

  it('does not wait for a lost provider that may never write its final record, and says when nothing was owed', () => {
    expect(settledState([assignment('a1', 'bob')], [], new Set(['bob']))).toEqual({ settled: true, waitingFor: [] });
    expect(settlementStatus(job('Failed'), [assignment('a1', 'bob', false)], [], NOW).conditions?.[0]).toMatchObject({ status: 'True', message: 'Nothing was owed' });
  });
});
