// Starts one local federation for the whole integration suite (real etcd, API servers,
// controller-managers, schedulers and KWOK) in $GPUFED_TEST_DIR (set by jest.config.js), so a
// developer's .gpufed/dev is untouched. Plain JS on the compiled dist/: Jest loads this file with
// Node's own ESM loader, outside the TypeScript transform (`make test` builds dist/ first).
import { down, up } from '../../dist/cli/src/dev/federation.js';

export default async function globalSetup() {
  const dir = process.env.GPUFED_TEST_DIR;
  await down(dir, { purge: true }); // a previous run that was killed may have left one behind
  const start = Date.now();
  const log = (line) => process.stderr.write(`[federation ${((Date.now() - start) / 1000).toFixed(1)}s] ${line}\n`);
  process.stderr.write(`\nStarting the test federation in ${dir}\n`);
  // No dev agents: the integration tests run their own agents in-process, with options they choose.
  // And a second chain profile (the `akash` address prefix, `uakt`) for the settlement tests.
  const state = await up({ dir, log, timeoutMs: 300_000, agents: false, extraChains: ['akash'] });
  process.stderr.write(`Test federation ready in ${(state.timings.total / 1000).toFixed(1)}s\n`);
}
