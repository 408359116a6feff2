// Three projects: `unit` (pure logic, no processes), `integration` (the real local federation,
// started once in globalSetup and shared by every integration test file) and `faults` (the fault
// matrix on that federation, run by `make test-faults`).
import { join } from 'node:path';

// The integration federation's directory, decided once here so globalSetup, the tests (workers
// inherit the environment) and globalTeardown agree. Not .gpufed/dev: a developer's demo stays up.
process.env.GPUFED_TEST_DIR ??= join(import.meta.dirname, '.gpufed', 'test');
// Only the source folders: the runtime folders (.gpufed/ with etcd's member/snap/*.snap, dist/,
// the caches) are no business of Jest's, and a stray .snap there fails a green run as an
// "obsolete snapshot" (test/unit/jest-roots.test.ts).
const roots = ['operator', 'cli', 'tools', 'test'].map((d) => `<rootDir>/${d}`);
const common = {
  roots,
  extensionsToTreatAsEsm: ['.ts'],
  moduleNameMapper: { '^(\\.{1,2}/.*)\\.js$': '$1' },
  transform: { '^.+\\.ts$': ['ts-jest', { useESM: true, tsconfig: 'tsconfig.json' }] },
  testEnvironment: 'node',
};

// The real local federation, started once in globalSetup and shared by every file of a project.
const federation = {
  globalSetup: '<rootDir>/test/support/global-setup.js',
  globalTeardown: '<rootDir>/test/support/global-teardown.js',
  slowTestThreshold: 60,
  setupFilesAfterEnv: ['<rootDir>/test/support/integration-timeout.ts'],
};

export default {
  projects: [
    {
      ...common,
      displayName: 'unit',
      testMatch: ['<rootDir>/operator/src/**/*.test.ts', '<rootDir>/cli/src/**/*.test.ts', '<rootDir>/tools/**/*.test.ts', '<rootDir>/test/unit/**/*.test.ts'],
    },
    {
      ...common,
      displayName: 'integration',
      testMatch: ['<rootDir>/test/integration/**/*.test.ts'],
      ...federation,
    },
    // The fault matrix (docs/fault-matrix.md): processes frozen, killed and cut off on the same
    // real federation; `make test-faults`, which CI runs after `make test`.
    {
      ...common,
      displayName: 'faults',
      testMatch: ['<rootDir>/test/faults/**/*.test.ts'],
      ...federation,
    },
  ],
};
