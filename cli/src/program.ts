// The gpufed command tree and how one run of it ends: the exit status every command shares and the
// one line on stderr that says what went wrong. Apart from main.ts so that tests can walk and run
// the tree without a process of their own.
import { basename } from 'node:path';
import { ApiException } from '@kubernetes/client-node';
import { Command, CommanderError } from 'commander';
import { packageVersion } from '../../operator/src/version.js';
import { budgetCommand } from './commands/budget.js';
import { devCommand } from './commands/dev.js';
import { jobsCommand } from './commands/jobs.js';
import { offersCommand } from './commands/offers.js';
import { providerCommand } from './commands/provider.js';
import { quoteCommand } from './commands/quote.js';
import { registryCommand } from './commands/registry.js';
import { settlementsCommand } from './commands/settlements.js';
import { tenantCommand } from './commands/tenant.js';
import { EXIT_STATUS_HELP, ExitCode, ExitError, RemoteError, remoteExitCode, UsageError } from './output.js';

/** Where the two halves of a run's output go; a test passes its own. */
export interface Io {
  out: (s: string) => void;
  err: (s: string) => void;
}

const processIo: Io = { out: (s) => process.stdout.write(s), err: (s) => process.stderr.write(s) };

/** How the program is called: `gpufed`, or `kubectl gpufed` when kubectl runs it as the plugin kubectl-gpufed. */
export function invokedAs(scriptPath: string | undefined): string {
  return scriptPath !== undefined && basename(scriptPath).replace(/\.[cm]?js$/, '') === 'kubectl-gpufed' ? 'kubectl gpufed' : 'gpufed';
}

/**
 * Help text as the plugin shows it: every `gpufed <command>` in usage lines and examples reads
 * `kubectl gpufed <command>` (not gpufed-provider-…, gpufed.io/…, or one that already does).
 */
export function asPlugin(text: string): string {
  return text.replace(/(?<![\w./$-]|kubectl )gpufed(?= [a-z])/g, 'kubectl gpufed');
}

const ROOT_HELP = `
Configuration, most specific first:
  cluster      --kubeconfig, else $KUBECONFIG, else ~/.kube/config; --context, else its current one
  namespace    -n/--namespace, else the kubeconfig context's namespace
  chain        --chain-rpc, else $GPUFED_CHAIN_RPC_URL, else the local federation's chain.env
  signing key  --key-file, else $GPUFED_KEY (tenant prove: $GPUFED_TENANT_KEY), else --dev-key
  dev state    --dir, else $GPUFED_DEV_DIR, else .gpufed/dev

Commands that print data take -o table|json|yaml; progress goes to stderr. Colour only on a
terminal, never with NO_COLOR set.
${EXIT_STATUS_HELP}

Also a kubectl plugin: with kubectl-gpufed on your PATH, kubectl gpufed <command> runs the same.

Examples:
  $ gpufed dev up && gpufed dev demo     # the whole federation on this machine
  $ gpufed offers --kubeconfig carol.kubeconfig
  $ gpufed jobs submit train.yaml --wait
  $ kubectl gpufed jobs list -o json`;

/** Every command of the tree: usage errors exit 2 with a hint instead of commander's process.exit(1); `io` gets the output. */
function strict(cmd: Command, io: Io, plugin: boolean): Command {
  const write = (to: (s: string) => void) => (s: string) => to(plugin ? asPlugin(s) : s);
  cmd
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride()
    .configureOutput({ writeOut: write(io.out), writeErr: write(io.err) });
  for (const sub of cmd.commands) strict(sub, io, plugin);
  return cmd;
}

/** The whole command tree, named as it was invoked (`gpufed` or `kubectl gpufed`). */
export function program(name = 'gpufed', io: Io = processIo): Command {
  const p = new Command(name).description('Federate home GPU clusters into one market: run, rent and settle GPU time').version(packageVersion());
  p.addHelpText('after', ROOT_HELP);
  for (const sub of [budgetCommand(), devCommand(), jobsCommand(), offersCommand(), providerCommand(), quoteCommand(), registryCommand(), settlementsCommand(), tenantCommand()]) {
    p.addCommand(sub);
  }
  return strict(p, io, name !== 'gpufed');
}

/** The exit status an error ends a run with; see EXIT_STATUS_HELP. */
export function exitCodeOf(e: unknown): number {
  if (e instanceof CommanderError) return e.exitCode === 0 ? ExitCode.Ok : ExitCode.Usage;
  if (e instanceof UsageError) return ExitCode.Usage;
  if (e instanceof ExitError || e instanceof RemoteError) return e.exitCode;
  // The operator's shared code lets some API errors through as they are.
  if (e instanceof ApiException) return remoteExitCode(e.code);
  return ExitCode.Failed;
}

/**
 * Runs the program (or `cmd`, built with the same `io`) on `argv` (node, script, args...): its exit
 * status; an error's message on stderr.
 */
export async function runCli(argv: string[], io: Io = processIo, cmd: Command = program(invokedAs(argv[1]), io)): Promise<number> {
  try {
    await cmd.parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : ExitCode.Ok;
  } catch (e) {
    // Commander printed its own message (and the help hint) already.
    if (!(e instanceof CommanderError)) io.err(`error: ${(e as Error).message}\n`);
    return exitCodeOf(e);
  }
}
