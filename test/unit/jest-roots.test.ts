// Jest looks only where the tests live. After `make demo`, etcd keeps its WAL snapshots in
// .gpufed/dev/etcd/member/snap/*.snap; Jest used to take them for obsolete snapshot files and exit
// 1 with every test passing. This runs Jest as `make test-unit` does, on one small suite, with such
// a file in a runtime folder, and wants a clean exit.
import { spawnSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { repoRoot } from '../../cli/src/dev/paths.js';

const root = repoRoot();

it.each(['.gpufed', 'dist'])('finds no snapshot files in %s/ (etcd leaves member/snap/*.snap there)', (folder) => {
  mkdirSync(join(root, folder), { recursive: true });
  const dir = mkdtempSync(join(root, folder, 'jest-roots-'));
  try {
    mkdirSync(join(dir, 'member', 'snap'), { recursive: true });
    writeFileSync(join(dir, 'member', 'snap', '0000000000000002-0000000000000001.snap'), 'not a Jest snapshot');
    const run = spawnSync(process.execPath, ['--experimental-vm-modules', join(root, 'node_modules', 'jest', 'bin', 'jest.js'), 'operator/src/api/coin.test.ts', '--selectProjects', 'unit', '--ci=false', '--coverage=false'], { cwd: root, encoding: 'utf8', timeout: 120_000 });
    const out = `${run.stdout}${run.stderr}`;
    expect(out).toMatch(/Tests:\s+\d+ passed/);
    expect(out).not.toMatch(/obsolete/);
    expect(run.status).toBe(0);
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}, 150_000);
