#!/usr/bin/env node
// The `gpufed` / `kubectl-gpufed` executable. It checks the Node.js version before importing
// anything else: on an older Node the Kubernetes client fails deep inside its HTTP stack instead.
import { nodeVersionProblem } from '../../operator/src/version.js';

const problem = nodeVersionProblem(process.version);
if (problem) {
  process.stderr.write(`error: ${problem}\n`);
  process.exit(1);
}
await import('./main.js');
