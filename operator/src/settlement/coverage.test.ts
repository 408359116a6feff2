import type { Settlement, SettlementStatusState } from '../api/index.js';
import { coverageOf, isCosignedLive, isDead, isLive } from './coverage.js';
import { settlementFixture } from '../../../test/fixtures/settlements.js';

const settlement = (name: string, created: string, records: string[], state?: SettlementStatusState): Settlement => settlementFixture(name, created, records, state ? { state } : undefined);

const names = (m: Map<string, Settlement[]>, record: string) => m.get(record)?.map((s) => s.metadata.name);

describe('isLive, isCosignedLive, isDead', () => {
  it.each<[SettlementStatusState | undefined, boolean, boolean, boolean]>([
    [undefined, true, false, false],
    ['Cosigned', true, true, false],
    ['Committed', false, false, false],
    ['Failed', false, false, true],
    ['Expired', false, false, true],
    ['Superseded', false, false, true],
    ['Refused', false, false, true],
  ])('state %s: live %s, co-signed live %s, dead %s', (state, live, cosigned, dead) => {
    const s = settlement('s', '2026-11-21T12:00:00Z', ['r1'], state);
    expect([isLive(s), isCosignedLive(s), isDead(s)]).toEqual([live, cosigned, dead]);
  });
});

describe('coverageOf', () => {
  it('sorts records into committed (paid), live (may still pay) and neither (dead settlements)', () => {
    const c = coverageOf([
      settlement('paid', '2026-11-21T12:00:00Z', ['r1', 'r2'], 'Committed'),
      settlement('proposed', '2026-11-21T12:10:00Z', ['r3']),
      settlement('cosigned', '2026-11-21T12:11:00Z', ['r4'], 'Cosigned'),
      settlement('refused', '2026-11-21T12:05:00Z', ['r5'], 'Refused'),
      settlement('expired', '2026-11-21T12:06:00Z', ['r6'], 'Expired'),
    ]);
    expect([...c.committed].map(([r, s]) => [r, s.metadata.name])).toEqual([['r1', 'paid'], ['r2', 'paid']]);
    expect([...c.live.keys()].sort()).toEqual(['r3', 'r4']);
    expect(names(c.live, 'r3')).toEqual(['proposed']);
    expect(names(c.live, 'r4')).toEqual(['cosigned']);
    expect(c.committed.has('r5') || c.live.has('r5') || c.committed.has('r6') || c.live.has('r6')).toBe(false);
  });

  it('keeps a record that a dead settlement tried and a later one paid as committed', () => {
    for (const order of [
      [settlement('failed', '2026-11-21T12:00:00Z', ['r1'], 'Failed'), settlement('paid', '2026-11-21T12:10:00Z', ['r1'], 'Committed')],
      [settlement('paid', '2026-11-21T12:10:00Z', ['r1'], 'Committed'), settlement('failed', '2026-11-21T12:00:00Z', ['r1'], 'Failed')],
    ]) {
      const c = coverageOf(order);
      expect(c.committed.get('r1')?.metadata.name).toBe('paid');
      expect(c.live.has('r1')).toBe(false);
    }
  });

  it('lists the live settlements of a record oldest first, whatever order they come in (name breaks a tie)', () => {
    const c = coverageOf([
      settlement('c-newest', '2026-11-21T12:20:00Z', ['r1'], 'Cosigned'),
      settlement('b-oldest', '2026-11-21T12:00:00Z', ['r1']),
      settlement('d-middle', '2026-11-21T12:10:00Z', ['r1']),
      settlement('a-middle', '2026-11-21T12:10:00Z', ['r1']),
    ]);
    expect(names(c.live, 'r1')).toEqual(['b-oldest', 'a-middle', 'd-middle', 'c-newest']);
  });

  it('covers nothing without settlements', () => {
    expect(coverageOf([])).toEqual({ committed: new Map(), live: new Map() });
  });

  // V1ObjectMeta declares creationTimestamp a Date: String(date) is "Mon Nov 23 2026 …", which
  // sorts by weekday name, not by time. Passes only when the timestamps are strings.
  it('orders by time when creationTimestamp is a Date, as V1ObjectMeta declares it', () => {
    const at = (name: string, iso: string): Settlement => ({ ...settlement(name, iso, ['r1']), metadata: { name, creationTimestamp: new Date(iso) } });
    const c = coverageOf([at('monday', '2026-11-23T12:00:00Z'), at('saturday', '2026-11-21T12:00:00Z')]);
    expect(names(c.live, 'r1')).toEqual(['saturday', 'monday']);
  });
});
