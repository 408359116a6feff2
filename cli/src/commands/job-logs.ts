// `gpufed jobs logs [-f]`: the job's log tail as the registry relays it into the renter's namespace
// (ConfigMap status.logRef, keys in LogKey; operator/src/agent/joblogs.ts). The tail is at most
// 64 KiB and starts with TRUNCATED_MARKER once earlier output was dropped, so following it means
// finding where the text printed last ends in the new tail and printing only what comes after.
import type { ComputeJob } from '../../../operator/src/api/index.js';
import { pushedFrom, TRUNCATED_MARKER, type PushedLog } from '../../../operator/src/agent/joblogs.js';
import { stderrColour } from '../output.js';
import type { RenterJobs } from '../renter.js';
import { pollUntil } from './job-wait.js';

/** Printed where output was written and dropped from the tail between two reads (a fast writer). */
export const SKIPPED_MARKER = '[... output skipped: more was written between two reads than the tail keeps ...]\n';
/** How long after the job finished to wait for the last tail (the agent pushes it, the registry relays it). */
export const FINAL_LOG_GRACE_MS = 15_000;
/** The end of the text printed last that is looked for in the next tail. */
const ANCHOR_CHARS = 256;
/**
 * The least overlap with the text printed last that counts as finding where it ends: a shorter one
 * (a newline) would match by chance when the whole tail is new, and drop its first characters.
 */
const MIN_OVERLAP_CHARS = 16;

const bodyOf = (tail: string): string => (tail.startsWith(TRUNCATED_MARKER) ? tail.slice(TRUNCATED_MARKER.length) : tail);

/** Where the end of `b` is in `a` at `end` or later, by the anchor (overlaps of at least ANCHOR_CHARS). */
function endByAnchor(a: string, b: string): number | undefined {
  const anchor = b.slice(-ANCHOR_CHARS);
  for (let i = a.lastIndexOf(anchor); i >= 0; i = i === 0 ? -1 : a.lastIndexOf(anchor, i - 1)) {
    const end = i + anchor.length;
    const overlap = Math.min(end, b.length);
    if (a.slice(end - overlap, end) === b.slice(b.length - overlap)) return end;
  }
  return undefined;
}

/** Where the end of `b` is in `a` when `a` starts within the anchor's length of it. */
function endByPrefix(a: string, b: string): number | undefined {
  for (let end = Math.min(a.length, ANCHOR_CHARS - 1, b.length); end >= MIN_OVERLAP_CHARS; end--) {
    if (b.endsWith(a.slice(0, end))) return end;
  }
  return undefined;
}

/**
 * What `after` has beyond `before`, two tails of one growing log; undefined when the end of
 * `before` is no longer in `after`. Of several places `before` could end (a log repeating itself),
 * the last: text is never printed twice (and a repeated line may be missed).
 */
export function appendedText(before: string, after: string): string | undefined {
  if (before === after) return '';
  if (!after.startsWith(TRUNCATED_MARKER)) return after.startsWith(before) ? after.slice(before.length) : undefined;
  const a = bodyOf(after);
  const b = bodyOf(before);
  if (b === '') return after; // nothing printed yet: all of it, with the marker saying what is missing
  const end = endByAnchor(a, b) ?? endByPrefix(a, b);
  return end === undefined ? undefined : a.slice(end);
}

/** What to print for a new read: a header (stderr) when a new attempt's log replaced the last, and the new text. */
export function newLogText(shown: PushedLog | undefined, next: PushedLog): { header?: string; text: string } {
  if (shown === undefined) return { text: next.log };
  if (shown.pod !== next.pod || shown.epoch !== next.epoch) return { header: `--- attempt ${next.epoch} (pod ${next.pod}) ---`, text: next.log };
  const added = appendedText(shown.log, next.log);
  return { text: added ?? SKIPPED_MARKER + bodyOf(next.log) };
}

const finished = (job: ComputeJob): boolean => job.status?.phase === 'Succeeded' || job.status?.phase === 'Failed';

/** Why a job has no relayed log (yet). */
export function noLogReason(job: ComputeJob): string {
  const name = job.metadata.name ?? '';
  const s = job.status;
  const provider = s?.placement?.provider;
  const why = s?.message ? ` (${s.message})` : '';
  if (finished(job)) return `ComputeJob ${name} ${s?.phase ?? ''} but no log was relayed for it${why}`;
  if (!provider || !s?.logRef) return `ComputeJob ${name} is not placed yet, so it has no log${why}; follow it with: gpufed jobs logs -f ${name}`;
  if (s.phase === 'Running') return `ComputeJob ${name} runs on ${provider}, whose agent has not pushed its log yet (it does every few seconds); follow it with: gpufed jobs logs -f ${name}`;
  return `ComputeJob ${name} is placed on ${provider} but has not started${why}; follow it with: gpufed jobs logs -f ${name}`;
}

/** The log the registry relayed for the job now, or undefined. */
async function readLog(jobs: RenterJobs, job: ComputeJob): Promise<PushedLog | undefined> {
  const ref = job.status?.logRef;
  return ref ? pushedFrom(await jobs.configMap(ref)) : undefined;
}

/** Prints the job's log tail once; an error saying why when there is none. */
export async function printLog(jobs: RenterJobs, name: string): Promise<void> {
  const job = await jobs.get(name);
  const log = await readLog(jobs, job);
  if (!log) throw new Error(noLogReason(job));
  process.stdout.write(log.log);
}

interface FollowState {
  shown?: PushedLog;
  finishedAt?: number;
  said?: string;
}

/** One poll of `logs -f`: prints what is new; true when there is nothing more to wait for. */
async function followStep(jobs: RenterJobs, name: string, st: FollowState): Promise<true | undefined> {
  const job = await jobs.find(name);
  if (!job) {
    process.stderr.write(stderrColour.dim(`ComputeJob ${name} was deleted.\n`));
    return true;
  }
  const log = await readLog(jobs, job);
  if (log) {
    const { header, text } = newLogText(st.shown, log);
    if (header) process.stderr.write(stderrColour.dim(`${header}\n`));
    process.stdout.write(text);
    st.shown = log;
  } else {
    const reason = noLogReason(job).replace(/; follow it with: .*$/, '');
    if (reason !== st.said) process.stderr.write(stderrColour.dim(`${reason}\n`));
    st.said = reason;
  }
  if (!finished(job)) return undefined;
  st.finishedAt ??= Date.now();
  // The agent pushes the last tail when the pod ends, and the registry relays it a moment later.
  const current = log !== undefined && log.epoch === String(job.status?.placement?.epoch ?? log.epoch);
  return (current && log.final) || Date.now() - st.finishedAt >= FINAL_LOG_GRACE_MS ? true : undefined;
}

/** `logs -f`: prints the log as it grows, until the job finished and its last tail is in. */
export async function followLog(jobs: RenterJobs, name: string): Promise<void> {
  await jobs.get(name);
  const st: FollowState = {};
  await pollUntil({ what: `the log of ComputeJob ${name}`, timeoutMs: 0 }, () => followStep(jobs, name, st));
  if (st.shown && st.shown.log !== '' && !st.shown.log.endsWith('\n')) process.stdout.write('\n');
}
