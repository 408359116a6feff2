// Where things live: the repo (for crds/ and the dev assets), the tool cache, the dev federation.
import { homedir } from 'node:os';
import { join, resolve } from 'node:path';
import { packageRoot } from '../../../operator/src/version.js';

/** The repository root (works from src and dist). */
export const repoRoot = packageRoot;

/** The cache tools/build.sh and tools/node.sh fill: GPUFED_CACHE, else $XDG_CACHE_HOME/gpufed. */
export function cacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.GPUFED_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), '.cache'), 'gpufed');
}

/** Where tools/build.sh links the built binaries (GPUFED_BIN_DIR overrides). */
export function binDir(env: NodeJS.ProcessEnv = process.env): string {
  return env.GPUFED_BIN_DIR ?? join(cacheDir(env), 'bin');
}

/** The dev federation's state directory: GPUFED_DEV_DIR, else .gpufed/dev in the repo. */
export function devDir(env: NodeJS.ProcessEnv = process.env): string {
  return resolve(env.GPUFED_DEV_DIR ?? join(repoRoot(), '.gpufed', 'dev'));
}
