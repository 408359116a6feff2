// `gpufed dev up|status|down` as a person runs them: a second federation of its own (one provider),
// so stopping it does not disturb the shared one.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { processesMentioning } from '../../cli/src/dev/process.js';
import { repoRoot } from '../../cli/src/dev/paths.js';
import { run } from '../support/federation.js';

const cli = (args: string[]) => run(process.execPath, [join(repoRoot(), 'dist/cli/src/gpufed.js'), ...args], { timeoutMs: 240_000 });

describe('gpufed dev', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpufed-dev-cli-'));

  afterAll(async () => {
    await cli(['dev', 'down', '--dir', dir, '--purge']);
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts a federation from a fleet file, reports it healthy, refuses a second one, and stops leaving no process', async () => {
    const fleet = join(dir, 'fleet.yaml');
    writeFileSync(
      fleet,
      'providers:\n  - name: dave\n    region: ap-south\n    nodes:\n      - {name: dave-h100, gpus: {product: NVIDIA-H100-80GB-HBM3, count: 1, mig: {3g.40gb: 2}}}\n      - {name: dave-pi, cpu: "4", memory: 8Gi}\n  - name: erin\n    nodes: [{name: erin-1}]\n',
    );
    const upRun = await cli(['dev', 'up', '--dir', dir, '--fleet', fleet, '--providers', '1', '-o', 'json']);
    expect(upRun.stderr).toMatch(/Healthy: registry\/kube-apiserver, dave\/kube-apiserver/);
    expect(upRun.code).toBe(0);
    const report = JSON.parse(upRun.stdout) as { running: boolean; components: { name: string; healthy: boolean }[]; clusters: { name: string; nodesReady?: number; nodesTotal?: number }[] };
    expect(report.running).toBe(true);
    expect(report.clusters.map((c) => c.name)).toEqual(['registry', 'dave']);
    expect(report.clusters[1]).toMatchObject({ nodesReady: 2, nodesTotal: 2 });
    const pids = processesMentioning(dir);
    expect(pids.length).toBe(report.components.length);

    const again = await cli(['dev', 'up', '--dir', dir]);
    expect(again.stderr).toMatch(/already running/);
    expect(again.code).toBe(0);
    expect(processesMentioning(dir).map((p) => p.pid).sort()).toEqual(pids.map((p) => p.pid).sort());

    const st = await cli(['dev', 'status', '--dir', dir]);
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(/The local federation is running/);
    expect(st.stdout).toMatch(/dave\/kwok\s+\d+\s+healthy/);

    const downRun = await cli(['dev', 'down', '--dir', dir]);
    expect(downRun.code).toBe(0);
    expect(downRun.stdout).toMatch(/Stopped 7 processes; nothing of .* is left running/);
    expect(processesMentioning(dir)).toEqual([]);

    const after = await cli(['dev', 'status', '--dir', dir, '-o', 'yaml']);
    expect(after.code).toBe(1);
    expect(after.stdout).toMatch(/running: false/);
  });

  it('rejects bad input with exit code 2 and a message naming it', async () => {
    const bad = await cli(['dev', 'up', '--dir', dir, '--providers', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--providers 0: expected a whole number from 1 to 50/);
    const fmt = await cli(['dev', 'status', '--dir', dir, '-o', 'xml']);
    expect(fmt.code).toBe(2);
    expect(fmt.stderr).toMatch(/-o xml: expected one of table, json, yaml/);
    const unknown = await cli(['dev', 'restart']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'restart'[\s\S]*--help/);
    const help = await cli(['dev', 'up', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--providers <n>[\s\S]*Examples:/);
  });

  it('says how to build the tools when they are missing', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'gpufed-no-tools-'));
    const r = await run(process.execPath, [join(repoRoot(), 'dist/cli/src/gpufed.js'), 'dev', 'up', '--dir', join(empty, 'dev')], { env: { ...process.env, GPUFED_BIN_DIR: join(empty, 'bin') } });
    rmSync(empty, { recursive: true, force: true });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Missing etcd, kube-apiserver, .* build them with `tools\/build.sh`/);
  });
});
