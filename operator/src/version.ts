// The package this code ships in: its root directory, its version, and the Node.js it needs.
// No imports beyond node: builtins, so launchers can check the Node version before loading more.
import { existsSync, readFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

export const REQUIRED_NODE_MAJOR = 26;

/** The nearest parent of this file holding package.json (the repo, or /app in the image). */
export function packageRoot(): string {
  let dir = dirname(fileURLToPath(import.meta.url));
  while (!existsSync(join(dir, 'package.json'))) {
    const up = dirname(dir);
    if (up === dir) throw new Error('Could not find the gpufed package root (no package.json above this file)');
    dir = up;
  }
  return dir;
}

export function packageVersion(): string {
  return (JSON.parse(readFileSync(join(packageRoot(), 'package.json'), 'utf8')) as { version: string }).version;
}

/** An error message when `version` (like process.version) is too old, else undefined. */
export function nodeVersionProblem(version: string): string | undefined {
  const major = Number(/^v?(\d+)\./.exec(version)?.[1] ?? NaN);
  if (major >= REQUIRED_NODE_MAJOR) return undefined;
  return (
    `gpufed needs Node.js ${REQUIRED_NODE_MAJOR} or newer, and this is ${version}.\n` +
    `Use the project's Node: run it through make, \`. .gpufed/dev/env\`, or export PATH="$(tools/node.sh):$PATH".`
  );
}

/** Parses 10s, 2m, 500ms, 1h or a bare number of seconds into milliseconds. */
export function parseDuration(v: string): number {
  const m = /^(\d+)(ms|s|m|h)?$/.exec(v);
  if (!m) throw new Error(`"${v}" is not a duration like 10s, 2m or 500ms`);
  return Number(m[1]) * { ms: 1, s: 1000, m: 60_000, h: 3_600_000 }[(m[2] ?? 's') as 'ms' | 's' | 'm' | 'h'];
}
