import {
  ComputeJobConditionType,
  ComputeJobReason,
  findCondition,
  formatTime,
  isConditionTrue,
  setCondition,
} from './conditions.js';
import type { Condition } from './types.generated.js';

const t0 = new Date('2025-06-01T12:00:00.123Z');
const t1 = new Date('2025-06-01T12:05:00.000Z');

const scheduled = (status: Condition['status'], reason: string, lastTransitionTime: string): Condition => ({
  type: ComputeJobConditionType.Scheduled,
  status,
  reason,
  message: '',
  lastTransitionTime,
});

describe('formatTime', () => {
  it('writes RFC 3339 with second precision, like metav1.Time', () => {
    expect(formatTime(t0)).toBe('2025-06-01T12:00:00Z');
  });
});

describe('setCondition', () => {
  it('adds a missing condition with lastTransitionTime now', () => {
    const update = { type: 'Scheduled', status: 'False', reason: ComputeJobReason.NoMatchingProvider, message: 'no fit' } as const;
    expect(setCondition(undefined, update, t0)).toEqual([
      { type: 'Scheduled', status: 'False', reason: 'NoMatchingProvider', message: 'no fit', lastTransitionTime: '2025-06-01T12:00:00Z' },
    ]);
  });

  it('keeps lastTransitionTime when only reason, message or observedGeneration change', () => {
    const list = [scheduled('False', 'NoMatchingProvider', '2025-06-01T12:00:00Z')];
    const next = setCondition(
      list,
      { type: 'Scheduled', status: 'False', reason: 'GrantInsufficient', message: 'grant too small', observedGeneration: 3 },
      t1,
    );
    expect(next).toEqual([
      {
        type: 'Scheduled',
        status: 'False',
        reason: 'GrantInsufficient',
        message: 'grant too small',
        observedGeneration: 3,
        lastTransitionTime: '2025-06-01T12:00:00Z',
      },
    ]);
  });

  it('moves lastTransitionTime when the status flips', () => {
    const list = [scheduled('False', 'NoMatchingProvider', '2025-06-01T12:00:00Z')];
    const next = setCondition(list, { type: 'Scheduled', status: 'True', reason: 'Placed', message: 'on alice' }, t1);
    expect(next[0]?.lastTransitionTime).toBe('2025-06-01T12:05:00Z');
    expect(next[0]?.status).toBe('True');
  });

  it('leaves other conditions and their order alone and does not mutate the input', () => {
    const running: Condition = { type: 'Running', status: 'False', reason: 'PodPending', message: '', lastTransitionTime: '2025-06-01T11:00:00Z' };
    const list = [scheduled('False', 'NoMatchingProvider', '2025-06-01T12:00:00Z'), running];
    const snapshot = structuredClone(list);
    const next = setCondition(list, { type: 'Scheduled', status: 'True', reason: 'Placed', message: '' }, t1);
    expect(next.map((c) => c.type)).toEqual(['Scheduled', 'Running']);
    expect(next[1]).toEqual(running);
    expect(list).toEqual(snapshot);
  });

  it('drops observedGeneration when the update has none', () => {
    const list: Condition[] = [{ ...scheduled('True', 'Placed', '2025-06-01T12:00:00Z'), observedGeneration: 1 }];
    const next = setCondition(list, { type: 'Scheduled', status: 'True', reason: 'Placed', message: '' }, t1);
    expect(next[0]).not.toHaveProperty('observedGeneration');
  });
});

describe('findCondition and isConditionTrue', () => {
  const list = [scheduled('True', 'Placed', '2025-06-01T12:00:00Z')];
  it.each([
    ['Scheduled', true],
    ['Running', false],
  ])('%s is true: %s', (type, expected) => {
    expect(isConditionTrue(list, type)).toBe(expected);
  });
  it('finds by type and tolerates an absent list', () => {
    expect(findCondition(list, 'Scheduled')?.reason).toBe('Placed');
    expect(findCondition(undefined, 'Scheduled')).toBeUndefined();
    expect(isConditionTrue(undefined, 'Scheduled')).toBe(false);
  });
});
