import { nodeVersionProblem } from './version.js';

describe('nodeVersionProblem', () => {
  it.each(['v26.10.0', 'v27.0.0', '26.0.0'])('accepts %s', (v) => {
    expect(nodeVersionProblem(v)).toBeUndefined();
  });

  it.each(['v20.20.2', 'v24.9.0', 'v25.9.0', 'garbage'])('refuses %s and says how to get the right Node', (v) => {
    expect(nodeVersionProblem(v)).toMatch(new RegExp(`needs Node.js 26 or newer, and this is ${v}[\\s\\S]*tools/node.sh`));
  });
});
