// Starts one local federation for the whole integration suite (real etcd, API servers,
// controller-managers, schedulers and KWOK), in .gpufed/test so a developer's .gpufed/dev is untouched.
import { down, up } from '../../cli/src/dev/federation.js';
import { testDir } from './federation.js';

export default async function globalSetup(): Promise<void> {
  const dir = testDir();
  await down(dir, { purge: true }); // a previous run that was killed may have left one behind
  const start = Date.now();
  const log = (line: string) => process.stderr.write(`[federation ${((Date.now() - start) / 1000).toFixed(1)}s] ${line}\n`);
  process.stderr.write(`\nStarting the test federation in ${dir}\n`);
  const state = await up({ dir, log, timeoutMs: 300_000 });
  process.stderr.write(`Test federation ready in ${((state.timings.total ?? 0) / 1000).toFixed(1)}s\n`);
}
