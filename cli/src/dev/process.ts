// Process control for the local federation's components: each runs detached in its own process
// group (so it outlives the `gpufed dev up` that started it) with its output in a log file.
import { spawn } from 'node:child_process';
import { closeSync, openSync, readdirSync, readFileSync } from 'node:fs';

/** Starts a detached process writing stdout and stderr to `log`; returns its pid (= its group id). */
export function startDetached(command: string, args: string[], log: string, env: NodeJS.ProcessEnv = process.env): number {
  const fd = openSync(log, 'a');
  try {
    const child = spawn(command, args, { detached: true, stdio: ['ignore', fd, fd], env });
    if (child.pid === undefined) throw new Error(`Could not start ${command}`);
    child.unref();
    return child.pid;
  } finally {
    closeSync(fd);
  }
}

export function isAlive(pid: number): boolean {
  try {
    process.kill(pid, 0);
  } catch {
    return false;
  }
  // A zombie (exited, not yet reaped by a parent that is still running) counts as gone.
  try {
    return !/^\d+ \(.*\) Z/.test(readFileSync(`/proc/${pid}/stat`, 'utf8'));
  } catch {
    return false;
  }
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function signal(pid: number, sig: NodeJS.Signals): void {
  try {
    process.kill(-pid, sig); // the whole process group
  } catch {
    try {
      process.kill(pid, sig);
    } catch {
      /* already gone */
    }
  }
}

/** SIGTERM to the process group, then SIGKILL after `graceMs`; resolves once the leader is gone. */
export async function stopProcess(pid: number, graceMs = 10_000): Promise<void> {
  if (!isAlive(pid)) return;
  signal(pid, 'SIGTERM');
  const deadline = Date.now() + graceMs;
  while (isAlive(pid) && Date.now() < deadline) await sleep(100);
  if (isAlive(pid)) {
    signal(pid, 'SIGKILL');
    while (isAlive(pid)) await sleep(50);
  }
}

/**
 * Every live process whose command line names a file inside directory `dir` (every component's
 * flags do). This is how `dev down` proves nothing was left behind. Matching `dir/` rather than
 * `dir` keeps /tmp/fed from also matching a neighbour's /tmp/fed-2.
 */
export function processesMentioning(dir: string): { pid: number; cmdline: string }[] {
  const needle = dir.endsWith('/') ? dir : `${dir}/`;
  const found: { pid: number; cmdline: string }[] = [];
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    const pid = Number(entry);
    if (pid === process.pid) continue;
    let cmdline: string;
    try {
      cmdline = readFileSync(`/proc/${entry}/cmdline`, 'utf8').split('\0').join(' ').trim();
    } catch {
      continue;
    }
    if (cmdline.includes(needle) && isAlive(pid)) found.push({ pid, cmdline });
  }
  return found;
}
