import { spawn } from 'node:child_process';
import { processesMentioning } from './process.js';

describe('processesMentioning', () => {
  it('finds a process naming a file inside the directory, not one in a sibling with a longer name', async () => {
    const child = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 10000)', '/tmp/gpufed-proc-test-x/data']);
    try {
      await new Promise((r) => setTimeout(r, 200));
      expect(processesMentioning('/tmp/gpufed-proc-test-x').map((p) => p.pid)).toContain(child.pid);
      expect(processesMentioning('/tmp/gpufed-proc-test-x/').map((p) => p.pid)).toContain(child.pid);
      expect(processesMentioning('/tmp/gpufed-proc-test').map((p) => p.pid)).not.toContain(child.pid);
    } finally {
      child.kill('SIGKILL');
    }
  });
});
