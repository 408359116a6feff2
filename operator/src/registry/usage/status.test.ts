import type { Condition, Settlement, UsageRecord } from '../../api/index.js';
import { coverageOf } from '../../settlement/coverage.js';
import { recordStatus } from './status.js';
import type { Verdict } from './verify.js';
import { settlementFixture } from '../../../../test/fixtures/settlements.js';

const NOW = new Date('2026-11-21T12:30:00Z');
const EARLIER = '2026-11-21T12:06:00Z';
const TX = 'A'.repeat(64);

/** A record of alice's, at metadata.generation 2 unless said otherwise, with whatever conditions the registry wrote before. */
function record(name: string, amount = '100ustake', o: { generation?: number | null; conditions?: Condition[] } = {}): UsageRecord {
  const generation = o.generation === null ? {} : { generation: o.generation ?? 2 };
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'UsageRecord',
    metadata: { name, namespace: 'gpufed-provider-alice', ...generation },
    spec: { assignmentName: 'carol-train-1', jobRef: { namespace: 'carol', name: 'train', uid: 'u1' }, epoch: 1, model: 'M', gpus: 1, period: { start: '2026-11-21T12:00:00Z', end: '2026-11-21T12:05:00Z' }, gpuMilliseconds: { cumulative: 300_000, delta: 300_000 }, pricePerGpuHour: '1200000ustake', amount, payer: 'cosmos1carol', payee: 'cosmos1alice', evidenceDigest: '0'.repeat(64) },
    ...(o.conditions ? { status: { conditions: o.conditions } } : {}),
  };
}

const settlement = settlementFixture;

const VERIFIED: Verdict = { status: 'True', reason: 'Verified', message: 'Matches its Assignment and run window' };
const DISPUTED: Verdict = { status: 'False', reason: 'OutsideRunWindow', message: 'Claims GPU time after 12:03:00Z' };
const none = coverageOf([]);
const condition = (list: Condition[] | undefined, type: string) => list?.find((c) => c.type === type);
const settled = (list: Condition[] | undefined) => condition(list, 'Settled');

describe('recordStatus', () => {
  it('not checked yet: Unverified, Settled False NotPayable, no Verified condition', () => {
    const s = recordStatus(record('r1'), undefined, none, NOW);
    expect(s).toMatchObject({ observedGeneration: 2, state: 'Unverified', message: 'The registry has not checked this record yet' });
    expect(s.conditions).toEqual([{ type: 'Settled', status: 'False', observedGeneration: 2, lastTransitionTime: '2026-11-21T12:30:00Z', reason: 'NotPayable', message: 'Not verified yet' }]);
  });

  it('disputed: Disputed with the reason, Verified False, Settled False NotPayable', () => {
    const s = recordStatus(record('r1'), DISPUTED, none, NOW);
    expect(s).toMatchObject({ state: 'Disputed', message: 'Disputed (OutsideRunWindow): Claims GPU time after 12:03:00Z' });
    expect(s.settlement).toBeUndefined();
    expect(condition(s.conditions, 'Verified')).toEqual({ type: 'Verified', status: 'False', observedGeneration: 2, lastTransitionTime: '2026-11-21T12:30:00Z', reason: 'OutsideRunWindow', message: 'Claims GPU time after 12:03:00Z' });
    expect(settled(s.conditions)).toMatchObject({ status: 'False', reason: 'NotPayable', message: 'Disputed: never paid' });
  });

  it('verified and paid by a committed settlement: Committed, where it was paid, Settled True', () => {
    const coverage = coverageOf([
      settlement('s0', '2026-11-21T12:06:00Z', ['r1'], { state: 'Expired' }),
      settlement('s1', '2026-11-21T12:10:00Z', ['r1', 'r2'], { state: 'Committed', txHash: TX, height: 42, time: '2026-11-21T12:11:03Z' }),
    ]);
    const s = recordStatus(record('r1'), VERIFIED, coverage, NOW);
    expect(s).toEqual({
      observedGeneration: 2,
      state: 'Committed',
      settlement: 's1',
      txHash: TX,
      height: 42,
      time: '2026-11-21T12:11:03Z',
      message: 'Paid in block 42',
      conditions: [
        { type: 'Verified', status: 'True', observedGeneration: 2, lastTransitionTime: '2026-11-21T12:30:00Z', reason: 'Verified', message: 'Matches its Assignment and run window' },
        { type: 'Settled', status: 'True', observedGeneration: 2, lastTransitionTime: '2026-11-21T12:30:00Z', reason: 'Committed', message: `Paid in block 42 (${TX})` },
      ],
    });
  });

  it.each<[string, string, Settlement[], Record<string, unknown>, Partial<Condition>]>([
    ['amount 0: nothing due', '0ustake', [], { state: 'NothingDue', message: 'Nothing due' }, { status: 'True', reason: 'NothingDue' }],
    ['amount 0 in a committed settlement: Committed', '0ustake', [settlement('s1', EARLIER, ['r1'], { state: 'Committed', txHash: TX, height: 42 })], { state: 'Committed', settlement: 's1' }, { status: 'True', reason: 'Committed' }],
    ['in a proposal not decided yet: Settling', '100ustake', [settlement('s1', EARLIER, ['r1'])], { state: 'Settling', settlement: 's1', message: 'Verified; its payment is on its way' }, { status: 'False', reason: 'AwaitingCommit', message: 'In Settlement s1, not in a block yet' }],
    ['co-signed, not in a block yet: Settling with its hash', '100ustake', [settlement('s1', EARLIER, ['r1'], { state: 'Cosigned', txHash: TX })], { state: 'Settling', settlement: 's1', txHash: TX }, { status: 'False', reason: 'AwaitingCommit', message: `In Settlement s1 (${TX}), not in a block yet` }],
    ['in no settlement: Pending', '100ustake', [settlement('other', EARLIER, ['r9'])], { state: 'Pending', message: 'Verified; waiting to be paid' }, { status: 'False', reason: 'Unpaid', message: 'Verified; not in a settlement yet' }],
    ['only in settlements that died: Pending again', '100ustake', [settlement('s1', EARLIER, ['r1'], { state: 'Refused' }), settlement('s2', '2026-11-21T12:20:00Z', ['r1'], { state: 'Failed', txHash: TX, height: 40 })], { state: 'Pending' }, { status: 'False', reason: 'Unpaid' }],
  ])('verified, %s', (_name, amount, settlements, want, wantSettled) => {
    const s = recordStatus(record('r1', amount), VERIFIED, coverageOf(settlements), NOW);
    expect(s).toMatchObject(want);
    expect(condition(s.conditions, 'Verified')).toMatchObject({ status: 'True', reason: 'Verified' });
    expect(settled(s.conditions)).toMatchObject(wantSettled);
    if (want.state !== 'Committed' && want.state !== 'Settling') expect([s.settlement, s.txHash, s.height, s.time]).toEqual([undefined, undefined, undefined, undefined]);
  });

  it('keeps lastTransitionTime while a condition keeps its status (Pending to Settling), and moves it when it flips (to Committed)', () => {
    const before: Condition[] = [
      { type: 'Verified', status: 'True', observedGeneration: 2, lastTransitionTime: EARLIER, reason: 'Verified', message: 'ok' },
      { type: 'Settled', status: 'False', observedGeneration: 2, lastTransitionTime: EARLIER, reason: 'Unpaid', message: 'Verified; not in a settlement yet' },
    ];
    const settling = recordStatus(record('r1', '100ustake', { conditions: before }), VERIFIED, coverageOf([settlement('s1', EARLIER, ['r1'])]), NOW);
    expect(settling.conditions?.map((c) => [c.type, c.lastTransitionTime])).toEqual([['Verified', EARLIER], ['Settled', EARLIER]]);
    const paid = recordStatus(record('r1', '100ustake', { conditions: settling.conditions ?? [] }), VERIFIED, coverageOf([settlement('s1', EARLIER, ['r1'], { state: 'Committed', txHash: TX, height: 42 })]), NOW);
    expect(settled(paid.conditions)).toMatchObject({ status: 'True', lastTransitionTime: '2026-11-21T12:30:00Z' });
  });

  it('leaves observedGeneration out when the record has no generation', () => {
    const s = recordStatus(record('r1', '100ustake', { generation: null }), VERIFIED, none, NOW);
    expect(s.observedGeneration).toBeUndefined();
    expect(s.conditions?.every((c) => c.observedGeneration === undefined)).toBe(true);
  });
});
