import { nodeVersionProblem, parseDuration } from './version.js';

describe('nodeVersionProblem', () => {
  it.each(['v26.10.0', 'v27.0.0', '26.0.0'])('accepts %s', (v) => {
    expect(nodeVersionProblem(v)).toBeUndefined();
  });

  it.each(['v20.20.2', 'v24.9.0', 'v25.9.0', 'garbage'])('refuses %s and says how to get the right Node', (v) => {
    expect(nodeVersionProblem(v)).toMatch(new RegExp(`needs Node.js 26 or newer, and this is ${v}[\\s\\S]*tools/node.sh`));
  });
});

describe('parseDuration', () => {
  it.each([
    ['500ms', 500],
    ['10s', 10_000],
    ['10', 10_000],
    ['2m', 120_000],
    ['1h', 3_600_000],
    ['0', 0],
  ])('%s → %d ms', (v, ms) => {
    expect(parseDuration(v)).toBe(ms);
  });

  it.each(['', '5 m', '1.5m', '-3s', 'soon'])('rejects %p', (v) => {
    expect(() => parseDuration(v)).toThrow(/is not a duration/);
  });
});
