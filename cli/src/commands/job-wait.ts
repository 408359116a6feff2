// Waiting on a renter's ComputeJob (`gpufed jobs wait`, `submit --wait`, `cancel --wait`): polls the
// registry, says on stderr how the job moves along, and ends with an exit status scripts can trust.
// Polling rather than a watch: a wait is one object for minutes, and a poll cannot stall silently.
import type { ComputeJob } from '../../../operator/src/api/index.js';
import { apiErrorCode } from '../../../operator/src/kube/errors.js';
import { ExitCode, ExitError, formatSeconds, progress, UsageError } from '../output.js';
import type { RenterJobs } from '../renter.js';

/** Exit statuses of the waiting commands (documented in their --help), as every command uses them. */
export const ExitStatus = {
  /** The job failed, or was cancelled or deleted, so it will never reach what was waited for. */
  JobFailed: ExitCode.Failed,
  /** The registry refused the request (401/403) or could not be reached for REGISTRY_FAILURE_MS. */
  Registry: ExitCode.Remote,
  /** The timeout passed first, as timeout(1) says it. */
  Timeout: ExitCode.Timeout,
} as const;

export const POLL_MS = 1000;
/** How long the registry may keep failing (unreachable, 5xx) before a wait gives up. */
export const REGISTRY_FAILURE_MS = 30_000;

export const EXIT_STATUS_HELP = `
Exit status:
  0    the job reached what was waited for
  1    it failed, or was cancelled or deleted, so it never will (its message on stderr)
  2    bad usage, or there is no such job
  3    the registry refused the request or could not be reached for ${formatSeconds(REGISTRY_FAILURE_MS / 1000)}
  124  --timeout passed first`;

/** `--for`: Succeeded (exit 1 when it fails) or Finished (either way, exit 0). */
export type WaitFor = 'Succeeded' | 'Finished';
export const WAIT_FOR: readonly WaitFor[] = ['Succeeded', 'Finished'];

export function parseWaitFor(v: string): WaitFor {
  const found = WAIT_FOR.find((w) => w.toLowerCase() === v.toLowerCase());
  if (!found) throw new UsageError(`--for ${v}: expected ${WAIT_FOR.join(' or ')}`);
  return found;
}

/** How a wait ended: `ok` decides the exit status, `message` says why. */
export interface WaitEnd {
  ok: boolean;
  message: string;
}

/** Whether a wait for `want` is over for the job as read now (undefined: gone); undefined when not yet. */
export function waitOutcome(name: string, job: ComputeJob | undefined, want: WaitFor): WaitEnd | undefined {
  if (!job) return { ok: false, message: `ComputeJob ${name} was deleted` };
  const s = job.status;
  if (s?.phase === 'Succeeded') return { ok: true, message: `ComputeJob ${name} Succeeded${s.exitCode !== undefined ? ` (exit code ${s.exitCode})` : ''}` };
  if (s?.phase === 'Failed') return { ok: want === 'Finished', message: `ComputeJob ${name} Failed: ${s.message ?? 'no message'}` };
  if (job.metadata.deletionTimestamp) return { ok: false, message: `ComputeJob ${name} is being cancelled` };
  return undefined;
}

/** One line on how the job stands, for progress: "Running: Running on bob". */
export function jobProgress(job: ComputeJob): string {
  const phase = job.status?.phase ?? 'Pending';
  const message = job.status?.message ?? (job.status === undefined ? 'waiting for the registry to look at it' : '');
  return message ? `${phase}: ${message}` : phase;
}

/** A refusal is final; no answer, a 5xx or 429 may pass. */
const isTransient = (e: unknown): boolean => {
  const code = apiErrorCode(e);
  return code === undefined || code === 429 || code >= 500;
};

export interface PollOptions {
  /** What is waited for, for the timeout's message. */
  what: string;
  /** 0: no limit. */
  timeoutMs: number;
  sleep?: (ms: number) => Promise<void>;
  now?: () => number;
}

const delay = (ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms));

/**
 * Calls `step` every POLL_MS until it returns a value. Past the timeout: ExitError 124; the
 * registry refusing, or failing for REGISTRY_FAILURE_MS on end: ExitError 3. Usage and exit errors
 * from `step` pass through.
 */
export async function pollUntil<T>(o: PollOptions, step: () => Promise<T | undefined>): Promise<T> {
  const now = o.now ?? Date.now;
  const sleep = o.sleep ?? delay;
  const deadline = o.timeoutMs > 0 ? now() + o.timeoutMs : Number.POSITIVE_INFINITY;
  let failingSince: number | undefined;
  for (;;) {
    try {
      const v = await step();
      if (v !== undefined) return v;
      failingSince = undefined;
    } catch (e) {
      if (e instanceof UsageError || e instanceof ExitError) throw e;
      failingSince ??= now();
      if (!isTransient(e) || now() - failingSince >= REGISTRY_FAILURE_MS) throw new ExitError((e as Error).message, ExitStatus.Registry);
    }
    if (now() >= deadline) throw new ExitError(`timed out after ${formatSeconds(Math.round(o.timeoutMs / 1000))} waiting for ${o.what}`, ExitStatus.Timeout);
    await sleep(Math.min(POLL_MS, deadline - now()));
  }
}

/** Prints a line of progress each time it changes. */
function reporter(): (line: string) => void {
  const say = progress();
  let last: string | undefined;
  return (line) => {
    if (line !== last) say(line);
    last = line;
  };
}

/**
 * Waits until the job reached `want`: prints how it ended on stdout and returns when it did;
 * throws ExitError 1 when it never will, 124 or 3 as pollUntil.
 */
export async function waitForJob(jobs: RenterJobs, name: string, want: WaitFor, timeoutMs: number): Promise<void> {
  const report = reporter();
  const end = await pollUntil({ what: `ComputeJob ${jobs.namespace}/${name} to be ${want}`, timeoutMs }, async () => {
    const job = await jobs.find(name);
    if (job) report(jobProgress(job));
    return waitOutcome(name, job, want);
  });
  if (!end.ok) throw new ExitError(end.message, ExitStatus.JobFailed);
  process.stdout.write(`${end.message}\n`);
}

/** Waits until the job is gone (its finalizer released it), saying what the registry waits for. */
export async function waitGone(jobs: RenterJobs, name: string, timeoutMs: number): Promise<void> {
  const report = reporter();
  await pollUntil({ what: `ComputeJob ${jobs.namespace}/${name} to be gone`, timeoutMs }, async () => {
    const job = await jobs.find(name);
    if (job) report(jobProgress(job));
    return job ? undefined : true;
  });
  process.stdout.write(`ComputeJob ${name} is gone.\n`);
}
