// gpufed: one CLI for providers, renters and federation operators (also `kubectl gpufed`).
import { runCli } from './program.js';

// `gpufed jobs list -o json | head -1`: the reader is gone, so is the need to write; end quietly
// instead of with a stack trace.
for (const stream of [process.stdout, process.stderr]) {
  stream.on('error', (e: NodeJS.ErrnoException) => {
    if (e.code !== 'EPIPE') throw e;
    process.exit(typeof process.exitCode === 'number' ? process.exitCode : 0);
  });
}

process.exitCode = await runCli(process.argv);
