import type { Settlement, SettlementStatusState, UsageRecord } from '../api/index.js';
import { MAX_BACKOFF_PERIODS, decideSettlement, isVerified, payableRecords, type SettlementAction, type SettlementSituation } from './decide.js';
import { settlementFixture } from '../../../test/fixtures/settlements.js';

const T0 = Date.parse('2026-11-21T12:00:00Z');
const PERIOD = 60_000;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const min = (m: number) => T0 + m * 60_000;

type Verified = 'True' | 'False' | 'Unknown' | 'unchecked';

/** A record as the registry left it: Verified True, False (disputed) or Unknown, or not checked at all. */
function record(name: string, amount = '100ustake', verified: Verified = 'True'): UsageRecord {
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'UsageRecord',
    metadata: { name, namespace: 'gpufed-provider-alice' },
    spec: { assignmentName: 'a', jobRef: { namespace: 'carol', name: 'train', uid: 'u' }, epoch: 1, model: 'M', gpus: 1, period: { start: iso(min(-10)), end: iso(min(-5)) }, gpuMilliseconds: { cumulative: 1, delta: 1 }, pricePerGpuHour: '1ustake', amount, payer: 'cosmos1carol', payee: 'cosmos1alice', evidenceDigest: '0'.repeat(64) },
    ...(verified === 'unchecked' ? {} : { status: { conditions: [{ type: 'Verified', status: verified, reason: verified === 'True' ? 'Verified' : 'AmountMismatch', message: '', lastTransitionTime: iso(min(-4)) }] } }),
  };
}

const settlement = (name: string, createdMs: number, records: string[], state?: SettlementStatusState, signedTx?: string): Settlement =>
  settlementFixture(name, iso(createdMs), records, state || signedTx ? { ...(state ? { state } : {}), ...(signedTx ? { signedTx } : {}) } : undefined);

/** `n` dead settlements, one period apart, the newest created at `newestMs`. */
const deadRun = (n: number, newestMs: number, state: SettlementStatusState = 'Refused') => Array.from({ length: n }, (_, i) => settlement(`dead-${i}`, newestMs - (n - 1 - i) * PERIOD, ['old'], state));

function situation(over: Partial<SettlementSituation> = {}): SettlementSituation {
  return { records: [record('r1')], settlements: [], hasAccount: true, nowMs: min(0), periodMs: PERIOD, ...over };
}

/** What a decision comes to, in names: easier to read in a table than whole objects. */
function summary(a: SettlementAction): string {
  switch (a.kind) {
    case 'wait':
      return `wait ${a.settlement.metadata.name ?? ''}`;
    case 'broadcast':
      return `broadcast ${a.settlement.metadata.name ?? ''} ${a.signedTx}`;
    case 'backoff':
      return `backoff ${a.failures} until +${(a.untilMs - min(0)) / 1000}s from ${a.last.metadata.name ?? ''}`;
    case 'propose':
      return `propose ${a.records.map((r) => r.metadata.name).join(',')}`;
    default:
      return a.kind;
  }
}

describe('decideSettlement', () => {
  it.each<[string, Partial<SettlementSituation>, string]>([
    ['no settlement account published yet', { hasAccount: false, settlements: [settlement('s', min(-1), ['r1'], 'Cosigned', 'dHg=')] }, 'no-account'],
    ['a proposal the registry has not looked at', { settlements: [settlement('s1', min(-1), ['r1'])] }, 'wait s1'],
    ['co-signed, no signed bytes yet', { settlements: [settlement('s1', min(-1), ['r1'], 'Cosigned')] }, 'wait s1'],
    ['co-signed with its signed bytes: send them (again)', { settlements: [settlement('s1', min(-1), ['r1'], 'Cosigned', 'dHg=')] }, 'broadcast s1 dHg='],
    ['follows the oldest live one, whatever order they come in', { settlements: [settlement('s2', min(-1), ['r2']), settlement('s1', min(-2), ['r1'], 'Cosigned', 'dHg=')] }, 'broadcast s1 dHg='],
    ['a live one after dead ones: wait, no back-off', { settlements: [...deadRun(3, min(-2)), settlement('s', min(-1), ['r1'])] }, 'wait s'],
    ['nothing in flight, a payable record', {}, 'propose r1'],
    ['nothing in flight, nothing payable', { records: [record('r1', '0ustake')] }, 'idle'],
    ['no records at all', { records: [] }, 'idle'],
  ])('%s', (_name, over, want) => {
    expect(summary(decideSettlement(situation(over)))).toBe(want);
  });

  describe('backs off after settlements that paid nothing, doubling per failure, at most MAX_BACKOFF_PERIODS periods', () => {
    it.each<[number, number]>([
      [1, 1],
      [2, 2],
      [3, 4],
      [4, 8],
      [5, MAX_BACKOFF_PERIODS],
      [12, MAX_BACKOFF_PERIODS],
    ])('%i failed in a row: %i periods from the newest one', (failures, periods) => {
      const newest = min(0) - 1000;
      const a = decideSettlement(situation({ settlements: deadRun(failures, newest) }));
      expect(a).toMatchObject({ kind: 'backoff', failures, untilMs: newest + periods * PERIOD, last: { metadata: { name: `dead-${failures - 1}` } } });
    });

    it.each<[string, Settlement[], string]>([
      ['every kind of dead counts', [settlement('f', min(-3), ['x'], 'Failed'), settlement('e', min(-2), ['x'], 'Expired'), settlement('s', min(-1) + 30_000, ['x'], 'Superseded')], 'backoff 3 until +210s from s'],
      ['measured from the newest dead one, whatever order they come in', [settlement('newest', min(0) - 10_000, ['x'], 'Refused'), settlement('older', min(-5), ['x'], 'Refused')], 'backoff 2 until +110s from newest'],
      ['a committed one ends the run: only the failures after it count', [...deadRun(4, min(-20)), settlement('paid', min(-10), ['x'], 'Committed'), settlement('late', min(0) - 5_000, ['x'], 'Failed')], 'backoff 1 until +55s from late'],
      ['the newest one committed: no back-off', [...deadRun(4, min(-2)), settlement('paid', min(-1), ['x'], 'Committed')], 'propose r1'],
      ['the back-off is over', deadRun(2, min(-2)), 'propose r1'],
      ['over exactly at untilMs', deadRun(1, min(-1)), 'propose r1'],
    ])('%s', (_name, settlements, want) => {
      expect(summary(decideSettlement(situation({ settlements })))).toBe(want);
    });

    it('backs off even with nothing to propose, and goes idle after', () => {
      const settlements = deadRun(1, min(0) - 1000);
      expect(decideSettlement(situation({ settlements, records: [] })).kind).toBe('backoff');
      expect(decideSettlement(situation({ settlements, records: [], nowMs: min(2) })).kind).toBe('idle');
    });
  });
});

describe('payableRecords', () => {
  const settlements = [
    settlement('paid', min(-30), ['committed'], 'Committed'),
    settlement('proposed', min(-3), ['in-proposal']),
    settlement('cosigned', min(-2), ['in-cosigned'], 'Cosigned'),
    settlement('refused', min(-20), ['after-refusal'], 'Refused'),
    settlement('expired', min(-25), ['after-expiry', 'committed'], 'Expired'),
  ];

  it.each<[string, boolean, UsageRecord]>([
    ['verified, something due, in no settlement', true, record('fresh')],
    ['not checked by the registry yet', false, record('unchecked', '100ustake', 'unchecked')],
    ['Verified Unknown', false, record('unknown', '100ustake', 'Unknown')],
    ['disputed (Verified False)', false, record('disputed', '100ustake', 'False')],
    ['nothing due (0)', false, record('zero', '0ustake')],
    ['an amount that is no coin', false, record('garbled', '-5ustake')],
    ['paid by a committed settlement (and tried by an expired one)', false, record('committed')],
    ['in a proposal not decided yet', false, record('in-proposal')],
    ['in a co-signed settlement not decided on chain yet', false, record('in-cosigned')],
    ['only in a refused settlement: payable again', true, record('after-refusal')],
    ['only in an expired settlement: payable again', true, record('after-expiry')],
  ])('%s: payable %s', (_name, payable, r) => {
    expect(payableRecords([r], settlements).map((x) => x.metadata.name)).toEqual(payable ? [r.metadata.name] : []);
  });

  it('is what a proposal lists, exactly, in the records order', () => {
    const records = [record('after-refusal'), record('disputed', '1ustake', 'False'), record('committed'), record('fresh'), record('zero', '0ustake'), record('in-cosigned'), record('after-expiry')];
    // Without the live settlements (the agent would follow those instead of proposing).
    const decided = settlements.filter((s) => s.status?.state !== 'Cosigned' && s.status?.state !== undefined);
    const want = [records[0], records[3], records[5], records[6]];
    expect(payableRecords(records, decided)).toEqual(want);
    expect(decideSettlement(situation({ records, settlements: decided }))).toEqual({ kind: 'propose', records: want });
  });

  it('reads the Verified condition only', () => {
    expect([record('a'), record('b', '1ustake', 'False'), record('c', '1ustake', 'unchecked')].map(isVerified)).toEqual([true, false, false]);
  });
});
