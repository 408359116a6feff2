// Output conventions shared by every command: -o table|json|yaml, exit statuses scripts can rely
// on, colour only on a terminal (and never with NO_COLOR), progress on stderr so stdout stays
// parseable.
import { Option } from 'commander';
import { stringify } from 'yaml';
import { apiErrorCode, apiErrorMessage } from '../../operator/src/kube/errors.js';
import { parseDuration } from '../../operator/src/version.js';

export type OutputFormat = 'table' | 'json' | 'yaml';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json', 'yaml'];

export function parseOutputFormat(v: string): OutputFormat {
  if ((OUTPUT_FORMATS as readonly string[]).includes(v)) return v as OutputFormat;
  throw new UsageError(`-o ${v}: expected one of ${OUTPUT_FORMATS.join(', ')}`);
}

/** The `-o, --output` option of a command that prints a table by default. */
export function outputOption(): Option {
  return new Option('-o, --output <format>', 'output format: table, json or yaml').default('table').argParser(parseOutputFormat);
}

/** The exit statuses of every command; the root --help lists them (EXIT_STATUS_HELP). */
export const ExitCode = {
  Ok: 0,
  /** The operation failed: a job failed, a server or the chain rejected the request, something broke. */
  Failed: 1,
  /** Bad usage: flags, arguments, input files, or a name that does not exist. */
  Usage: 2,
  /** A server (the registry, a provider's cluster) or the chain refused the credentials or could not be reached. */
  Remote: 3,
  /** A --timeout passed first, as timeout(1) says it. */
  Timeout: 124,
} as const;

export const EXIT_STATUS_HELP = `
Exit status (every command):
  0    done
  1    it failed: a job failed, a server or the chain rejected the request
  2    bad usage: a flag, an argument or an input file, or no such object
  3    a server or the chain refused your credentials or could not be reached
  124  a --timeout passed first`;

/** Bad command-line input: exit code 2, like a shell builtin. */
export class UsageError extends Error {
  override name = 'UsageError';
}

/**
 * A failure with an exit code of its own that scripts can rely on (e.g. `gpufed jobs wait`: 1 when
 * the job failed, 124 when the timeout passed); the message goes to stderr like any error.
 */
export class ExitError extends Error {
  override name = 'ExitError';
  constructor(
    message: string,
    readonly exitCode: number,
  ) {
    super(message);
  }
}

/**
 * A request to an API server that failed. `code` is its HTTP status, undefined when none answered;
 * pollers read it to retry what may pass (job-wait.ts), so this is no ExitError. Exit status 3 when
 * the server refused the credentials, was overloaded or never answered; 1 when it rejected the
 * request itself (an invalid object, a conflict).
 */
export class RemoteError extends Error {
  override name = 'RemoteError';
  constructor(
    message: string,
    readonly code: number | undefined,
    options?: ErrorOptions,
  ) {
    super(message, options);
  }

  get exitCode(): number {
    return remoteExitCode(this.code);
  }
}

/** The exit status for an API server's answer (undefined: none). */
export function remoteExitCode(code: number | undefined): number {
  return code === undefined || code === 401 || code === 403 || code === 429 || code >= 500 ? ExitCode.Remote : ExitCode.Failed;
}

/** Why a request got no answer, from the network error under `fetch failed`: "connect ECONNREFUSED 127.0.0.1:6443". */
function networkReason(e: unknown): string | undefined {
  for (let c = (e as { cause?: unknown } | null)?.cause; c instanceof Error; c = c.cause) {
    if (c.message) return c.message;
  }
  return undefined;
}

/**
 * A failed request to an API server as a RemoteError that says what was being done and why; when
 * no server answered, which one (`server`, "the registry") and what to check.
 */
export function apiFailure(doing: string, e: unknown, o: { server?: string; hint?: string } = {}): RemoteError {
  const code = apiErrorCode(e);
  const reason = networkReason(e);
  const why = code !== undefined ? ` (HTTP ${code})` : `${reason ? ` (${reason})` : ''}; ${o.server ?? 'the registry'} could not be reached: check the server in your kubeconfig`;
  return new RemoteError(`${doing}: ${apiErrorMessage(e)}${why}${o.hint ?? ''}`, code, { cause: e });
}

/** An argument parser for a duration flag (10s, 5m, 500ms) in milliseconds, naming the flag when it is not one. */
export function durationArg(flag: string): (v: string) => number {
  return (v) => {
    try {
      return parseDuration(v);
    } catch (e) {
      throw new UsageError(`${flag} ${v}: ${(e as Error).message}`, { cause: e });
    }
  };
}

/** Whether text for `stream` may be coloured: a terminal, without NO_COLOR (https://no-color.org) or TERM=dumb. */
export function colourFor(stream: { isTTY?: boolean }, env: NodeJS.ProcessEnv = process.env): boolean {
  return stream.isTTY === true && !env.NO_COLOR && env.TERM !== 'dumb';
}

/** The colours for text written to one stream, decided when each is written (a test may swap the stream). */
function palette(stream: () => { isTTY?: boolean }) {
  const colour = (code: number) => (s: string) => (colourFor(stream()) ? `\u001b[${code}m${s}\u001b[0m` : s);
  return { green: colour(32), red: colour(31), dim: colour(2), bold: colour(1) };
}

/** Colours for stdout. */
export const { green, red, dim, bold } = palette(() => process.stdout);
/** Colours for stderr (progress, warnings): it may be a terminal while stdout is a file, or the other way round. */
export const stderrColour = palette(() => process.stderr);

/** Prints `data` as JSON or YAML, or calls `table` for the human format. */
export function print(format: OutputFormat, data: unknown, table: () => string): void {
  if (format === 'json') process.stdout.write(JSON.stringify(data, null, 2) + '\n');
  else if (format === 'yaml') process.stdout.write(stringify(data));
  else process.stdout.write(table() + '\n');
}

// eslint-disable-next-line no-control-regex
const visibleLength = (s: string) => s.replace(/\u001b\[[0-9;]*m/g, '').length;

/** A kubectl-style table: upper-case headers, columns padded by 3 spaces. */
export function table(headers: string[], rows: string[][]): string {
  const widths = headers.map((h, i) => Math.max(h.length, ...rows.map((r) => visibleLength(r[i] ?? ''))));
  const line = (cells: string[]) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? c : c + ' '.repeat((widths[i] ?? 0) - visibleLength(c) + 3)))
      .join('')
      .trimEnd();
  return [line(headers.map((h) => h.toUpperCase())), ...rows.map(line)].join('\n');
}

/** `s` cut to `max` characters with an ellipsis, on one line (for table cells). */
export function truncate(s: string, max: number): string {
  const line = s.replace(/\s+/g, ' ').trim();
  return line.length <= max ? line : `${line.slice(0, Math.max(0, max - 1))}…`;
}

/** kubectl's AGE: 45s, 12m, 5h, 3d. */
export function formatAge(since: Date | string | undefined, now: Date): string {
  const t = since === undefined ? Number.NaN : new Date(since).getTime();
  if (Number.isNaN(t)) return '-';
  const s = Math.max(0, Math.floor((now.getTime() - t) / 1000));
  if (s < 120) return `${s}s`;
  if (s < 7200) return `${Math.floor(s / 60)}m`;
  if (s < 172_800) return `${Math.floor(s / 3600)}h`;
  return `${Math.floor(s / 86_400)}d`;
}

/** Seconds as the largest whole units: 7200 → 2h, 5400 → 1h30m, 90 → 1m30s. */
export function formatSeconds(total: number): string {
  const parts: string[] = [];
  let rest = total;
  for (const [unit, size] of [['d', 86_400], ['h', 3600], ['m', 60], ['s', 1]] as const) {
    const n = Math.floor(rest / size);
    rest -= n * size;
    if (n > 0) parts.push(`${n}${unit}`);
  }
  return parts.length > 0 ? parts.join('') : '0s';
}

/** Progress for long work, on stderr, with elapsed seconds. */
export function progress(start = Date.now()): (line: string) => void {
  return (line) => process.stderr.write(`${stderrColour.dim(`[${((Date.now() - start) / 1000).toFixed(1).padStart(5)}s]`)} ${line}\n`);
}
