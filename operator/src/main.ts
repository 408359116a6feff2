#!/usr/bin/env node
// The operator's executable (the image's ENTRYPOINT): checks the Node version, then runs it.
import { nodeVersionProblem } from './version.js';

const problem = nodeVersionProblem(process.version);
if (problem) {
  process.stderr.write(`error: ${problem}\n`);
  process.exit(1);
}
await import('./operator.js');
