// Output conventions shared by every command: -o table|json|yaml, colour only on a TTY (and never
// with NO_COLOR), progress on stderr so stdout stays parseable.
import { Option } from 'commander';
import { stringify } from 'yaml';
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

const colour = (code: number) => (s: string) => (process.stdout.isTTY && !process.env.NO_COLOR ? `\u001b[${code}m${s}\u001b[0m` : s);
export const green = colour(32);
export const red = colour(31);
export const dim = colour(2);
export const bold = colour(1);

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
  return (line) => process.stderr.write(`${dim(`[${((Date.now() - start) / 1000).toFixed(1).padStart(5)}s]`)} ${line}\n`);
}
