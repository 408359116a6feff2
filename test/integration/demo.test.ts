// `make demo`'s main job, as `make demo` runs it: a fresh default federation (providers alice and
// bob, their agents, two registry replicas, the chain), then `gpufed dev demo`: renter carol's job
// is placed, runs to Succeeded, its log is relayed, and it is paid on chain; the balances move by
// exactly what its records say.
import { mkdtempSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { repoRoot } from '../../cli/src/dev/paths.js';
import type { DemoResult } from '../../cli/src/dev/demo.js';
import { run } from '../support/federation.js';

const cli = (args: string[]) => run(process.execPath, [join(repoRoot(), 'dist/cli/src/gpufed.js'), ...args], { timeoutMs: 300_000 });

describe('make demo', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpufed-demo-'));

  afterAll(async () => {
    await cli(['dev', 'down', '--dir', dir, '--purge']);
    rmSync(dir, { recursive: true, force: true });
  });

  it('runs the main job from apply to paid on chain and ends with one summary line', async () => {
    expect((await cli(['dev', 'up', '--dir', dir])).code).toBe(0);
    const table = await cli(['dev', 'demo', '--dir', dir]);
    expect(table.code).toBe(0);
    const last = table.stdout.trimEnd().split('\n').at(-1) ?? '';
    expect(last).toMatch(/^carol\/train-\w+ ran on (alice|bob) \(.+\): \d+\.\d GPU-seconds, paid \d+ustake, tx [0-9A-F]{64}/);
    expect(table.stderr).toMatch(/carol applied ComputeJob train-/);
    expect(table.stderr).toMatch(/Succeeded on (alice|bob)/);

    // A second run is just as fast (a new job; budgets are already granted) and its numbers add up.
    const second = await cli(['dev', 'demo', '--dir', dir, '-o', 'json']);
    expect(second.code).toBe(0);
    const r = JSON.parse(second.stdout) as DemoResult;
    expect(second.stderr).not.toMatch(/granted/);
    expect(r.log).toMatch(/epoch 3\/3/);
    const paid = BigInt(r.amount.replace(/ustake$/, ''));
    expect(paid).toBeGreaterThan(0n);
    expect(r.records.reduce((s, x) => s + BigInt(x.amount.replace(/ustake$/, '')), 0n)).toBe(paid);
    expect(r.records.every((x) => ['Committed', 'NothingDue'].includes(x.state))).toBe(true);
    const carol = r.balances.find((b) => b.who === 'carol');
    const payout = r.balances.find((b) => b.who === `${r.provider} payout`);
    expect(BigInt(carol?.change ?? '0')).toBe(-paid);
    expect(BigInt(payout?.change ?? '0')).toBe(paid);
    expect(r.gpuSeconds).toBeGreaterThanOrEqual(20);
  });
});
