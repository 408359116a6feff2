import { down } from '../../cli/src/dev/federation.js';
import { testDir } from './federation.js';

export default async function globalTeardown(): Promise<void> {
  if (process.env.GPUFED_TEST_KEEP === '1') {
    process.stderr.write(`Keeping the test federation in ${testDir()} (GPUFED_TEST_KEEP=1)\n`);
    return;
  }
  const r = await down(testDir());
  if (r.leftover.length > 0) throw new Error(`Processes left behind: ${r.leftover.map((p) => p.pid).join(', ')}`);
}
