import type { Assignment, ComputeJob, UsageRecord } from '../api/index.js';
import { settledState, settlementStatus } from './settlement-status.js';

const NOW = new Date('2026-11-21T12:30:00Z');
const job = (phase?: string): ComputeJob => ({ apiVersion: 'gpufed.io/v1alpha1', kind: 'ComputeJob', metadata: { name: 'train', namespace: 'carol', uid: 'u1' }, spec: { image: 'x', resources: { gpu: { count: 1, models: ['M'] } }, maxPricePerGpuHour: '2000000ustake' }, ...(phase ? { status: { phase: phase as 'Running' } } : {}) });
const assignment = (name: string, provider = 'alice', ran = true): Assignment => ({ apiVersion: 'gpufed.io/v1alpha1', kind: 'Assignment', metadata: { name, namespace: `gpufed-provider-${provider}` }, spec: {} as Assignment['spec'], ...(ran ? { status: { startTime: '2026-11-21T12:00:00Z' } } : {}) });
function record(name: string, a: string, end: string, cumulative: number, amount: string, state?: string, tx?: { hash: string; height: number; time?: string }, final = false): UsageRecord {
  return {
    apiVersion: 'gpufed.io/v1alpha1', kind: 'UsageRecord', metadata: { name },
    spec: { assignmentName: a, jobRef: { namespace: 'carol', name: 'train', uid: 'u1' }, epoch: 1, period: { start: '2026-11-21T12:00:00Z', end }, gpuMilliseconds: { cumulative, delta: 0 }, pricePerGpuHour: '1200000ustake', amount, payer: 'p', payee: 'q', evidenceDigest: '0'.repeat(64), final },
    ...(state ? { status: { state: state as 'Committed', ...(tx ? { txHash: tx.hash, height: tx.height, signedTx: 'AA==', ...(tx.time ? { time: tx.time } : {}) } : {}) } } : {}),
  };
}
const TX1 = { hash: 'A'.repeat(64), height: 10, time: '2026-11-21T12:05:03.251Z' };
const TX2 = { hash: 'B'.repeat(64), height: 20 };

describe('settlementStatus', () => {
  it('sums GPU time over attempts, cost over records, and paid over committed ones, per transaction', () => {
    const records = [
      record('r1', 'a1', '2026-11-21T12:05:00Z', 300_000, '100000ustake', 'Committed', TX1),
      record('r2', 'a1', '2026-11-21T12:10:00Z', 600_000, '100000ustake', 'Broadcast'),
      record('r3', 'a2', '2026-11-21T12:05:00Z', 60_000, '20000ustake', 'Committed', TX1),
    ];
    const s = settlementStatus(job('Running'), [assignment('a1'), assignment('a2', 'bob')], records, NOW);
    expect(s).toMatchObject({ usage: { gpuMilliseconds: 660_000, meteredUntil: '2026-11-21T12:10:00Z' }, cost: '220000ustake', paid: '120000ustake', settlements: [{ txHash: TX1.hash, height: 10, time: TX1.time, amount: '120000ustake' }] });
    expect(s.conditions).toHaveLength(1);
    expect(s.conditions?.[0]).toMatchObject({ type: 'Settled', status: 'False', reason: 'SettlementPending' });
    expect(s.conditions?.[0]?.message).toBe("Waiting for alice's final usage record and bob's final usage record and 1 unpaid usage record");
  });

  it('is Settled once the job finished, every attempt that ran has its final record and all are paid', () => {
    const records = [record('r1', 'a1', '2026-11-21T12:05:00Z', 300_000, '100000ustake', 'Committed', TX1), record('r2', 'a1', '2026-11-21T12:10:00Z', 310_000, '3333ustake', 'Committed', TX2, true), record('r3', 'a1', '2026-11-21T12:15:00Z', 310_000, '0ustake', 'NothingDue', undefined, true)];
    const s = settlementStatus(job('Succeeded'), [assignment('a1'), assignment('never-ran', 'bob', false)], records, NOW);
    expect(s.paid).toBe('103333ustake');
    expect(s.settlements?.map((t) => t.txHash)).toEqual([TX1.hash, TX2.hash]);
    expect(s.conditions?.[0]).toMatchObject({ status: 'True', reason: 'SettlementCommitted', message: 'Paid 103333ustake on chain' });
  });

  it('does not wait for a lost provider that may never write its final record, and says when nothing was owed', () => {
    expect(settledState([assignment('a1', 'bob')], [], new Set(['bob']))).toEqual({ settled: true, waitingFor: [] });
    expect(settlementStatus(job('Failed'), [assignment('a1', 'bob', false)], [], NOW).conditions?.[0]).toMatchObject({ status: 'True', message: 'Nothing was owed' });
  });
});
