// The fencing inequality at start-up (operator/src/fencing/bound.ts, docs/fencing.md): the real
// operator binary, in both modes, refuses flags with which a lost provider's jobs could be placed
// again while their first copy still runs, and says which numbers to change. The charts' defaults
// pass (charts.test starts both operators with the Deployments' own args).
import { join } from 'node:path';
import { repoRoot } from '../../cli/src/dev/paths.js';
import { run } from '../support/federation.js';

const operator = (args: string[]) => run(process.execPath, [join(repoRoot(), 'dist', 'operator', 'src', 'main.js'), ...args], { timeoutMs: 30_000 });
const registry = (flags: string[]) => operator(['registry', '--kubeconfig=/nonexistent/registry.kubeconfig', '--metrics-addr=127.0.0.1:0', ...flags]);
const agent = (flags: string[]) => operator(['agent', '--provider=alice', '--kubeconfig=/nonexistent/alice.kubeconfig', '--registry-kubeconfig=/nonexistent/agent.kubeconfig', '--metrics-addr=127.0.0.1:0', ...flags]);

describe('the operator refuses an unsafe fencing timing at start-up', () => {
  it.each([
    ['a registry losing providers before their agents fence (60s vs the default 2m)', () => registry(['--provider-lost-timeout=60s']), /provider-lost timeout \(60s\) must be at least 136s/],
    ['a registry whose margin is a second short', () => registry(['--provider-lost-timeout=27s', '--fencing-timeout=12s', '--max-clock-skew=5s']), /provider-lost timeout \(27s\) must be at least 28s/],
    ['an agent told of a registry that loses providers sooner', () => agent(['--fencing-timeout=2m', '--registry-provider-lost-timeout=2m']), /provider-lost timeout \(120s\) must be at least 136s/],
    ['an agent whose heartbeat is slower than half its fencing timeout', () => agent(['--heartbeat=40s', '--fencing-timeout=60s']), /heartbeat \(40s\) must be at most half the fencing timeout \(60s\)/],
  ])('refuses %s, exit 2, saying what to change', async (_what, start, why) => {
    const r = await start();
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/refusing to start/);
    expect(r.stderr).toMatch(why);
  });

  it.each([
    ["the registry chart's defaults (3m lost, 2m agents' fencing, 5s skew)", () => registry([])],
    ['the local federation (30s lost, 12s fencing)', () => registry(['--provider-lost-timeout=30s', '--fencing-timeout=12s'])],
    ["the provider chart's defaults (2m fencing, 10s heartbeat, a registry at 3m)", () => agent([])],
    ['the local federation agent (12s fencing, 2s heartbeat, a registry at 30s)', () => agent(['--fencing-timeout=12s', '--heartbeat=2s', '--registry-provider-lost-timeout=30s'])],
  ])('lets %s through the check (it then fails on the missing kubeconfig, nothing else)', async (_what, start) => {
    const r = await start();
    expect(r.stderr).not.toMatch(/refusing to start/);
    expect(`${r.stdout}${r.stderr}`).toMatch(/nonexistent/);
  });
});
