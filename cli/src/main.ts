#!/usr/bin/env node
// gpufed: one CLI for providers, renters and federation operators (also `kubectl gpufed`).
import { Command, CommanderError } from 'commander';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { devCommand } from './commands/dev.js';
import { repoRoot } from './dev/paths.js';
import { UsageError } from './output.js';

const { version } = JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { version: string };

export function program(): Command {
  const p = new Command('gpufed')
    .description('Federate home GPU clusters into one market: run, rent and settle GPU time')
    .version(version)
    .showHelpAfterError('(run with --help for usage)')
    .exitOverride();
  p.addCommand(devCommand());
  return p;
}

async function main(argv: string[]): Promise<number> {
  try {
    await program().parseAsync(argv);
    return typeof process.exitCode === 'number' ? process.exitCode : 0;
  } catch (e) {
    if (e instanceof CommanderError) return e.exitCode === 0 ? 0 : 2;
    if (e instanceof UsageError) {
      process.stderr.write(`error: ${e.message}\n`);
      return 2;
    }
    process.stderr.write(`error: ${(e as Error).message}\n`);
    return 1;
  }
}

process.exitCode = await main(process.argv);
