// The conventions every command keeps, checked over the whole command tree so that a new command
// cannot miss them: an example in its --help, -o that refuses a bad format with exit status 2,
// and the exit status of each kind of failure. Nothing here reaches a cluster or the chain: every
// run ends in argument parsing, before an action starts.
import { describe, expect, it } from '@jest/globals';
import { ApiException } from '@kubernetes/client-node';
import type { Command } from 'commander';
import { colourFor, ExitCode, ExitError, RemoteError, UsageError } from './output.js';
import { asPlugin, exitCodeOf, invokedAs, program, runCli, type Io } from './program.js';

/** Every command below `cmd`, with the words that run it: ['jobs', 'get']. */
function walk(cmd: Command, path: string[] = []): { path: string[]; cmd: Command }[] {
  return cmd.commands.flatMap((sub) => {
    const p = [...path, sub.name()];
    return [{ path: p, cmd: sub }, ...walk(sub, p)];
  });
}

const all = walk(program('gpufed', { out: () => undefined, err: () => undefined }));
const leaves = all.filter((c) => c.cmd.commands.length === 0);
const withOutput = all.filter((c) => c.cmd.options.some((o) => o.long === '--output'));
const named = (list: { path: string[] }[]) => list.map((c) => [c.path.join(' ')] as const);

/**
 * Runs the CLI on `args` as `script` would be invoked, capturing what it prints. No action runs:
 * each is replaced by one that fails the test, so a command that let a bad flag through could not
 * start a federation or call a server here.
 */
async function run(args: string[], script = '/usr/local/bin/gpufed'): Promise<{ code: number; out: string; err: string }> {
  let out = '';
  let err = '';
  const io: Io = { out: (s) => (out += s), err: (s) => (err += s) };
  const cli = program(invokedAs(script), io);
  for (const { path, cmd } of walk(cli)) {
    if (cmd.commands.length === 0) {
      cmd.action(() => {
        throw new Error(`the action of gpufed ${path.join(' ')} ran`);
      });
    }
  }
  const code = await runCli(['node', script, ...args], io, cli);
  return { code, out, err };
}

/** The lines of the examples section of a help text. */
const examples = (help: string): string[] => help.split(/^Examples?:$/m)[1]?.split('\n') ?? [];

describe('the command tree', () => {
  it('has the commands the CLI promises', () => {
    const paths = all.map((c) => c.path.join(' '));
    for (const want of [
      'dev up', 'dev down', 'dev status', 'dev stop', 'dev start', 'dev demo',
      'registry add-provider', 'registry add-tenant', 'registry rotate-provider-token',
      'provider status', 'provider reclaim', 'provider release',
      'tenant prove',
      'budget grant', 'budget show', 'budget revoke',
      'quote',
      'jobs submit', 'jobs list', 'jobs get', 'jobs logs', 'jobs cancel', 'jobs wait',
      'settlements list',
      'offers',
    ]) {
      expect(paths).toContain(want);
    }
  });

  it.each(named([{ path: [] }, ...all]))('gpufed %s --help exits 0 with an example that runs it', async (path) => {
    const words = path === '' ? [] : path.split(' ');
    const r = await run([...words, '--help']);
    expect(r.code).toBe(ExitCode.Ok);
    const command = new RegExp(`^\\s+(\\$ |# ).*\\bgpufed ${words.join(' ')}`);
    expect(examples(r.out).filter((l) => command.test(l))).not.toHaveLength(0);
  });

  it('has leaves, and commands that print data', () => {
    expect(leaves.length).toBeGreaterThan(20);
    expect(withOutput.length).toBeGreaterThan(15);
  });

  it.each(named(withOutput))('gpufed %s -o xml is a usage error (exit 2) naming the flag', async (path) => {
    const r = await run([...path.split(' '), '-o', 'xml']);
    expect(r.code).toBe(ExitCode.Usage);
    expect(r.err).toMatch(/^error: -o xml: expected /);
    expect(r.out).toBe('');
  });

  it.each([
    ['an unknown command', ['jobs', 'restart'], /unknown command 'restart'[\s\S]*--help/],
    ['an unknown flag', ['jobs', 'list', '--bogus'], /unknown option '--bogus'/],
    ['a missing argument', ['jobs', 'get'], /missing required argument 'name'/],
    ['a missing mandatory flag', ['budget', 'revoke'], /required option '--provider <name>' not specified/],
    ['a bad duration', ['jobs', 'wait', 'train', '--timeout', 'soon'], /--timeout soon: /],
    ['a group without a command', ['jobs'], /Usage: gpufed jobs/],
  ])('exits 2 on %s', async (_what, args, message) => {
    const r = await run(args);
    expect(r.code).toBe(ExitCode.Usage);
    expect(r.err).toMatch(message);
  });
});

describe('as kubectl gpufed', () => {
  it('is what kubectl runs as the plugin kubectl-gpufed, and nothing else', () => {
    expect(invokedAs('/usr/local/bin/kubectl-gpufed')).toBe('kubectl gpufed');
    expect(invokedAs('/home/carol/node_modules/.bin/kubectl-gpufed.js')).toBe('kubectl gpufed');
    expect(invokedAs('/usr/local/bin/gpufed')).toBe('gpufed');
    expect(invokedAs('/work/dist/cli/src/main.js')).toBe('gpufed');
  });

  it('names itself kubectl gpufed in usage and examples', async () => {
    const r = await run(['jobs', 'get', '--help'], '/usr/local/bin/kubectl-gpufed');
    expect(r.code).toBe(ExitCode.Ok);
    expect(r.out).toMatch(/^Usage: kubectl gpufed jobs get \[options\] <name>$/m);
    expect(r.out).toMatch(/^ {2}\$ kubectl gpufed jobs get train$/m);
    expect(r.out).not.toMatch(/(^|[^l] )gpufed jobs/m);
  });

  it('rewrites commands only', () => {
    expect(asPlugin('  $ gpufed jobs list && GPUFED_KEY=$(cat k) gpufed budget show')).toBe('  $ kubectl gpufed jobs list && GPUFED_KEY=$(cat k) kubectl gpufed budget show');
    expect(asPlugin('namespace gpufed-provider-alice, gpufed.io/tenant, $GPUFED_KEY, .gpufed/dev, kubectl gpufed jobs')).toBe('namespace gpufed-provider-alice, gpufed.io/tenant, $GPUFED_KEY, .gpufed/dev, kubectl gpufed jobs');
  });
});

describe('exitCodeOf', () => {
  it.each([
    ['a usage error', 2, new UsageError('x')],
    ['a failed job', 1, new ExitError('x', 1)],
    ['a timeout', 124, new ExitError('x', 124)],
    ['a refusal', 3, new RemoteError('x', 403)],
    ['bad credentials', 3, new RemoteError('x', 401)],
    ['no answer', 3, new RemoteError('x', undefined)],
    ['an overloaded server', 3, new RemoteError('x', 503)],
    ['an invalid object', 1, new RemoteError('x', 422)],
    ["an API error from the operator's code", 3, new ApiException(500, 'x', {}, {})],
    ['anything else', 1, new Error('x')],
  ])('%s exits %i', (_what, code, e) => {
    expect(exitCodeOf(e)).toBe(code);
  });
});

describe('colourFor', () => {
  it.each([
    ['a terminal', { isTTY: true }, {}, true],
    ['a pipe or file', { isTTY: false }, {}, false],
    ['a stream that does not say', {}, {}, false],
    ['a terminal with NO_COLOR', { isTTY: true }, { NO_COLOR: '1' }, false],
    ['a terminal with TERM=dumb', { isTTY: true }, { TERM: 'dumb' }, false],
  ])('%s', (_what, stream, env, want) => {
    expect(colourFor(stream, env)).toBe(want);
  });
});
