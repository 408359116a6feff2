// Output conventions shared by every command: -o table|json|yaml, colour only on a TTY (and never
// with NO_COLOR), progress on stderr so stdout stays parseable.
import { stringify } from 'yaml';

export type OutputFormat = 'table' | 'json' | 'yaml';
export const OUTPUT_FORMATS: readonly OutputFormat[] = ['table', 'json', 'yaml'];

export function parseOutputFormat(v: string): OutputFormat {
  if ((OUTPUT_FORMATS as readonly string[]).includes(v)) return v as OutputFormat;
  throw new UsageError(`-o ${v}: expected one of ${OUTPUT_FORMATS.join(', ')}`);
}

/** Bad command-line input: exit code 2, like a shell builtin. */
export class UsageError extends Error {
  override name = 'UsageError';
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

/** Progress for long work, on stderr, with elapsed seconds. */
export function progress(start = Date.now()): (line: string) => void {
  return (line) => process.stderr.write(`${dim(`[${((Date.now() - start) / 1000).toFixed(1).padStart(5)}s]`)} ${line}\n`);
}
