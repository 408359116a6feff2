// gpufed: one CLI for providers, renters and federation operators (also `kubectl gpufed`).
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
import { ExitError, UsageError } from './output.js';

const version = packageVersion();

/** Usage errors anywhere in the tree exit 2 with a hint, instead of commander's process.exit(1). */
function strict(cmd: Command): Command {
  cmd.showHelpAfterError('(run with --help for usage)').exitOverride();
  for (const sub of cmd.commands) strict(sub);
  return cmd;
}

export function program(): Command {
  const p = new Command('gpufed').description('Federate home GPU clusters into one market: run, rent and settle GPU time').version(version);
  p.addCommand(budgetCommand());
  p.addCommand(devCommand());
  p.addCommand(jobsCommand());
  p.addCommand(offersCommand());
  p.addCommand(providerCommand());
  p.addCommand(quoteCommand());
  p.addCommand(registryCommand());
  p.addCommand(settlementsCommand());
  p.addCommand(tenantCommand());
  return strict(p);
}

async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof UsageError || e instanceof ExitError) {
      process.stderr.write(`error: ${e.message}\n`);
      return e instanceof ExitError ? e.exitCode : 2;
    }
    process.stderr.write(`error: ${(e as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv);
