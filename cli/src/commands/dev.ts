// `gpufed dev up|status|down`: the local federation for demos, tests and development.
import { join } from 'node:path';
import { Command, Option } from 'commander';
import { AlreadyRunningError, down, readState, startComponent, status, stopComponent, up, type StatusReport } from '../dev/federation.js';
import { demoSummary, runDemo, type DemoResult } from '../dev/demo.js';
import { devDir, repoRoot } from '../dev/paths.js';
import { bold, dim, green, outputOption, print, progress, red, stderrColour, table, UsageError, type OutputFormat } from '../output.js';

function positiveInt(v: string): number {
  const n = Number(v);
  if (!/^[0-9]+$/.test(v) || n < 1 || n > 50) throw new UsageError(`--providers ${v}: expected a whole number from 1 to 50`);
  return n;
}

function seconds(ms: number | undefined): string {
  return ms === undefined ? '-' : `${(ms / 1000).toFixed(1)}s`;
}

function statusTable(r: StatusReport): string {
  if (r.components.length === 0) return `No local federation in ${r.dir}. Start one with ${bold('gpufed dev up')}.`;
  const comps = table(
    ['component', 'pid', 'health', 'endpoint'],
    r.components.map((c) => [c.name, String(c.pid ?? '-'), c.healthy ? green('healthy') : red(c.detail), c.endpoint]),
  );
  const clusters = table(
    ['cluster', 'role', 'server', 'nodes ready', 'kubeconfig'],
    r.clusters.map((c) => [c.name, c.role, c.server, c.nodesTotal === undefined ? '-' : `${c.nodesReady}/${c.nodesTotal}`, c.kubeconfig]),
  );
  const head = r.running ? green('The local federation is running.') : red('The local federation is not healthy.');
  const when = r.startedAt ? dim(`Started ${r.startedAt}, ready after ${seconds(r.timings?.total)}. Dir: ${r.dir}`) : '';
  const chain = r.chain ? `Chain ${r.chain.chainId} at ${r.chain.rpcUrl}: ${r.chain.height === undefined ? red('not answering') : `height ${r.chain.height}`} (endpoints and dev keys: ${r.dir}/chain.env)` : '';
  return [head, when, '', comps, '', clusters, ...(chain ? ['', chain] : []), '', `Use it: ${bold(`. ${r.dir}/env`)} then ${bold('kubectl --context gpufed-alice get nodes')}`].join('\n');
}

const HEALTH_EXIT_HELP = `Exit status:
  0    every component is healthy
  1    some component is not, or there is no local federation
  2    bad usage`;

export function devCommand(): Command {
  const dev = new Command('dev').description('Run the local federation: a registry and provider clusters on loopback, with simulated GPU nodes');
  dev.addHelpText(
    'after',
    `
Examples:
  $ gpufed dev up                  # registry + providers alice and bob
  $ gpufed dev up --providers 3    # a third, generated provider
  $ gpufed dev status -o json
  $ . .gpufed/dev/env && kubectl --context gpufed-bob get nodes
  $ gpufed dev stop agent-alice && gpufed dev start agent-alice
  $ gpufed dev down`,
  );

  dev
    .command('up')
    .description('Start the local federation (etcd, kube-apiservers, controller-managers, schedulers, KWOK) and wait until it is healthy')
    .addOption(new Option('--providers <n>', 'number of provider clusters').default(2).argParser(positiveInt))
    .option('--fleet <file>', 'fleet file describing providers and their GPU nodes (default: cli/src/dev/fleets/default.yaml)')
    .option('--dir <dir>', 'state directory (default: $GPUFED_DEV_DIR or .gpufed/dev)')
    .option('--no-agents', "don't onboard the providers or run their gpufed agents")
    .addOption(outputOption())
    .addHelpText('after', `\n${HEALTH_EXIT_HELP}\n\nExamples:\n  $ gpufed dev up\n  $ gpufed dev up --providers 1 --fleet my-fleet.yaml`)
    .action(async (o: { providers: number; fleet?: string; dir?: string; agents: boolean; output: OutputFormat }) => {
      const dir = o.dir ?? devDir();
      const log = progress();
      try {
        log(`Starting the local federation in ${dir} (${o.providers} provider${o.providers === 1 ? '' : 's'})`);
        await up({ dir, providers: o.providers, log, agents: o.agents, ...(o.fleet ? { fleetFile: o.fleet } : {}) });
      } catch (e) {
        if (!(e instanceof AlreadyRunningError)) throw e;
        process.stderr.write(`${e.message}\n`);
      }
      const r = await status(dir);
      print(o.output, r, () => statusTable(r));
      if (!r.running) process.exitCode = 1;
    });

  dev
    .command('status')
    .description('Show each component of the local federation and whether it is healthy')
    .option('--dir <dir>', 'state directory (default: $GPUFED_DEV_DIR or .gpufed/dev)')
    .addOption(outputOption())
    .addHelpText('after', `\n${HEALTH_EXIT_HELP}\n\nExamples:\n  $ gpufed dev status\n  $ gpufed dev status -o yaml`)
    .action(async (o: { dir?: string; output: OutputFormat }) => {
      const r = await status(o.dir ?? devDir());
      print(o.output, r, () => statusTable(r));
      if (!r.running) process.exitCode = 1;
    });

  for (const verb of ['stop', 'start'] as const) {
    dev
      .command(verb)
      .description(verb === 'stop' ? 'Stop one component of the running federation (for demos and fault tests)' : 'Start a stopped component again, with the same flags, and wait until it is healthy')
      .argument('<component>', 'e.g. agent-alice, registry/kube-apiserver, bob/kwok (see gpufed dev status)')
      .option('--dir <dir>', 'state directory (default: $GPUFED_DEV_DIR or .gpufed/dev)')
      .addHelpText('after', `\nExamples:\n  $ gpufed dev ${verb} agent-alice\n  $ gpufed dev ${verb} registry/kube-apiserver`)
      .action(async (component: string, o: { dir?: string }) => {
        const dir = o.dir ?? devDir();
        const state = readState(dir);
        if (!state) throw new UsageError(`No local federation in ${dir}; start one with: gpufed dev up`);
        if (!state.plan.components.some((c) => c.name === component)) {
          throw new UsageError(`No component ${component}; the federation has: ${state.plan.components.map((c) => c.name).join(', ')}`);
        }
        await (verb === 'stop' ? stopComponent(dir, component) : startComponent(dir, component));
        process.stdout.write(`${verb === 'stop' ? 'Stopped' : 'Started'} ${component}.\n`);
      });
  }

  dev
    .command('down')
    .description('Stop every process of the local federation (and anything else still using its directory)')
    .option('--dir <dir>', 'state directory (default: $GPUFED_DEV_DIR or .gpufed/dev)')
    .option('--purge', 'also delete the state directory (etcd data, certificates, logs)')
    .addHelpText('after', '\nExamples:\n  $ gpufed dev down\n  $ gpufed dev down --purge')
    .action(async (o: { dir?: string; purge?: boolean }) => {
      const dir = o.dir ?? devDir();
      const r = await down(dir, { purge: o.purge === true });
      if (r.leftover.length > 0) {
        process.stderr.write(stderrColour.red(`Could not stop: ${r.leftover.map((p) => `${p.pid} ${p.cmdline.slice(0, 80)}`).join('; ')}\n`));
        process.exitCode = 1;
        return;
      }
      process.stdout.write(r.stopped.length > 0 ? `Stopped ${r.stopped.length} processes; nothing of ${dir} is left running.\n` : `Nothing was running in ${dir}.\n`);
    });
  dev
    .command('demo')
    .description("The main job: renter carol applies a ComputeJob, follows it to Succeeded, reads its log, and sees it paid on chain")
    .option('-f, --file <job.yaml>', 'the ComputeJob to run (its name gets a unique suffix)', join(repoRoot(), 'examples', 'computejob-train.yaml'))
    .option('--dir <dir>', 'state directory (default: $GPUFED_DEV_DIR or .gpufed/dev)')
    .addOption(outputOption())
    .addHelpText('after', '\nExamples:\n  $ gpufed dev up && gpufed dev demo\n  $ gpufed dev demo -f my-job.yaml -o json')
    .action(async (o: { file: string; dir?: string; output: OutputFormat }) => {
      const r = await runDemo(o.dir ?? devDir(), o.file, progress());
      print(o.output, r, () => demoReport(r));
    });

  return dev;
}

function demoReport(r: DemoResult): string {
  const log = r.log ? `${bold('Its log')} (relayed by the registry):\n${r.log.trimEnd().split('\n').map((l) => `  ${l}`).join('\n')}` : dim('No log was pushed.');
  const records = table(
    ['usage record', 'period end', 'gpu-ms', 'amount', 'state', 'tx'],
    r.records.map((x) => [x.name, x.periodEnd, String(x.gpuMs), x.amount, x.state, x.txHash ? `${x.txHash.slice(0, 16)}…` : '-']),
  );
  const balances = table(
    ['account', 'address', 'before', 'after', 'change'],
    r.balances.map((b) => [b.who, b.address, b.before, b.after, b.change.startsWith('-') ? b.change : `+${b.change}`]),
  );
  return [log, '', bold('Metered and settled:'), records, '', bold('Balances (ustake):'), balances, '', green(demoSummary(r))].join('\n');
}
