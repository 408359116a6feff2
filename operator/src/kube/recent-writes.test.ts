import { RecentWrites } from './recent-writes.js';

const at = (rv: string) => ({ metadata: { resourceVersion: rv } });

describe('RecentWrites', () => {
  it('answers with our write while the cache is older, and lets go once it caught up', () => {
    const w = new RecentWrites<string>();
    w.remember('a', at('120'), 'mine');
    expect(w.newerThan('a', at('100'))).toBe('mine');
    expect(w.newerThan('a', undefined)).toBe('mine');
    expect(w.newerThan('a', at('120'))).toBeUndefined();
    expect(w.newerThan('a', at('100'))).toBeUndefined(); // forgotten once seen
  });

  it('ignores results without a numeric resourceVersion and unknown keys', () => {
    const w = new RecentWrites<string>();
    w.remember('a', {}, 'mine');
    expect(w.newerThan('a', at('1'))).toBeUndefined();
    expect(w.newerThan('b', at('1'))).toBeUndefined();
  });
});
