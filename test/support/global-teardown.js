// Stops the integration suite's federation (keep it for debugging with GPUFED_TEST_KEEP=1).
import { down } from '../../dist/cli/src/dev/federation.js';

export default async function globalTeardown() {
  const dir = process.env.GPUFED_TEST_DIR;
  if (process.env.GPUFED_TEST_KEEP === '1') {
    process.stderr.write(`Keeping the test federation in ${dir} (GPUFED_TEST_KEEP=1)\n`);
    return;
  }
  const r = await down(dir);
  if (r.leftover.length > 0) throw new Error(`Processes left behind: ${r.leftover.map((p) => p.pid).join(', ')}`);
}
