// `gpufed jobs submit|list|get|logs|wait|cancel`: a renter's ComputeJobs on the registry, with the
// renter's own kubeconfig (one namespace: the tenant's). Everything here is also plain kubectl on
// `computejobs`; these commands add the waiting, the relayed logs and messages that say what to do.
import { Argument, Command, Option } from 'commander';
import type { ComputeJob, ComputeJobStatusPlacement, ResourcesGpu } from '../../../operator/src/api/index.js';
import { DEFAULT_MAX_DURATION_SECONDS } from '../../../operator/src/registry/jobs/decide.js';
import { contextNamespace } from '../kubeconfig.js';
import { dim, durationArg, formatAge, formatSeconds, green, outputOption, print, red, table, truncate, UsageError, type OutputFormat } from '../output.js';
import { readComputeJob, RenterJobs, renterKubeConfig, renterNamespace, withRenterOptions, type RenterOptions } from '../renter.js';
import { followLog, printLog } from './job-logs.js';
import { EXIT_STATUS_HELP, parseWaitFor, REGISTRY_FAILURE_MS, waitForJob, waitGone, type WaitFor } from './job-wait.js';

const MESSAGE_WIDTH = 60;

/** The renter's jobs in the namespace from -n or the kubeconfig's context. */
function renterJobs(o: RenterOptions): RenterJobs {
  const kc = renterKubeConfig(o);
  return new RenterJobs(kc, renterNamespace(o.namespace, kc));
}

function colourPhase(phase: string): string {
  if (phase === 'Succeeded') return green(phase);
  if (phase === 'Failed') return red(phase);
  return phase;
}

/** One row of `jobs list`: NAME, PHASE, PROVIDER, MODEL, GPUS, PRICE, AGE, MESSAGE. */
export function jobRow(job: ComputeJob, now: Date): string[] {
  const s = job.status;
  const p = s?.placement;
  return [
    job.metadata.name ?? '',
    colourPhase(s?.phase ?? 'Pending'),
    p?.provider ?? '-',
    p?.model ?? '-',
    String(job.spec.resources.gpu.count),
    p?.pricePerGpuHour ?? '-',
    formatAge(job.metadata.creationTimestamp, now),
    truncate(s?.message ?? '', MESSAGE_WIDTH),
  ];
}

export function jobsTable(jobs: readonly ComputeJob[], now: Date): string {
  return table(['name', 'phase', 'provider', 'model', 'gpus', 'price', 'age', 'message'], jobs.map((j) => jobRow(j, now)));
}

/** "2× NVIDIA-GeForce-RTX-4090 or NVIDIA-GeForce-RTX-3090 (at least 24000 MiB each)". */
export function gpuSummary(gpu: ResourcesGpu): string {
  const models = gpu.models && gpu.models.length > 0 ? gpu.models.join(' or ') : 'any model';
  const extras = [gpu.minMemoryMiB ? `at least ${gpu.minMemoryMiB} MiB each` : '', gpu.sharing && gpu.sharing !== 'Exclusive' ? `${gpu.sharing}${gpu.migProfile ? ` ${gpu.migProfile}` : ''}` : ''].filter((x) => x !== '');
  return `${gpu.count}× ${models}${extras.length > 0 ? ` (${extras.join(', ')})` : ''}`;
}

function placementSummary(p: ComputeJobStatusPlacement | undefined): string | undefined {
  if (!p?.provider) return undefined;
  return `${p.provider}${p.region ? ` (${p.region})` : ''}, node ${p.nodeName ?? '-'}, ${p.model ?? '-'} at ${p.pricePerGpuHour ?? '-'} per GPU-hour, epoch ${p.epoch ?? '-'}`;
}

const timeAndAge = (t: string | Date | undefined, now: Date): string | undefined => (t === undefined ? undefined : `${new Date(t).toISOString()} (${formatAge(t, now)} ago)`);

type Field = [label: string, value: string | number | undefined];

/** What the renter asked for. */
function specFields(job: ComputeJob): Field[] {
  const spec = job.spec;
  return [
    ['Image', spec.image],
    ['GPUs', gpuSummary(spec.resources.gpu)],
    ['Max price', `${spec.maxPricePerGpuHour} per GPU-hour`],
    ['Max duration', `${formatSeconds(spec.maxDurationSeconds ?? DEFAULT_MAX_DURATION_SECONDS)} per attempt, ${spec.retries ?? 0} retries`],
  ];
}

/** Where it runs and how it went, as the registry wrote it. */
function statusFields(job: ComputeJob, now: Date): Field[] {
  const s = job.status;
  return [
    ['Placement', placementSummary(s?.placement)],
    ['Assignment', s?.placement?.assignmentName],
    ['Attempts', s?.attempts],
    ['Created', timeAndAge(job.metadata.creationTimestamp, now)],
    ['Started', timeAndAge(s?.startTime, now)],
    ['Completed', timeAndAge(s?.completionTime, now)],
    ['Exit code', s?.exitCode],
    ['Cost', s?.cost],
    ['Paid', s?.paid],
    ['Log', s?.logRef ? `ConfigMap ${s.logRef} (gpufed jobs logs ${job.metadata.name ?? ''})` : undefined],
  ];
}

/** `jobs get`: what the renter asked for, where it runs, how it went, and its conditions. */
export function jobDetails(job: ComputeJob, now: Date): string {
  const s = job.status;
  const head: Field[] = [
    ['Name', job.metadata.name],
    ['Namespace', job.metadata.namespace],
    ['Phase', colourPhase(s?.phase ?? 'Pending')],
    ['Message', s?.message],
  ];
  const fields = [...head, ...specFields(job), ...statusFields(job, now)];
  const lines = fields.filter(([, v]) => v !== undefined && v !== '').map(([label, v]) => `${`${label}:`.padEnd(14)}${String(v)}`);
  const conditions = s?.conditions ?? [];
  if (conditions.length > 0) {
    const rows = conditions.map((c) => [c.type, c.status, c.reason, formatAge(c.lastTransitionTime, now), c.message]);
    lines.push('Conditions:', table(['type', 'status', 'reason', 'age', 'message'], rows).replace(/^/gm, '  '));
  }
  return lines.join('\n');
}

/** The namespace a manifest goes to: its own, which -n may repeat but not contradict, else -n or the context's. */
export function submitNamespace(manifest: string | undefined, flag: string | undefined, contextNamespace: () => string): string {
  if (manifest !== undefined && flag !== undefined && manifest !== flag) throw new UsageError(`-n ${flag}: the manifest is for namespace ${manifest}; drop -n or change metadata.namespace`);
  return manifest ?? flag ?? contextNamespace();
}

/** What to run next, after a submission. */
export function nextSteps(name: string, nsFlag: string): string {
  return [
    `Submitted ComputeJob ${name}. Next:`,
    `  gpufed jobs wait ${name}${nsFlag}        ${dim('# until it ends: exit 0 when it succeeded, 1 when it failed')}`,
    `  gpufed jobs logs -f ${name}${nsFlag}     ${dim('# its log as it runs')}`,
    `  gpufed jobs get ${name}${nsFlag}         ${dim('# where it runs and why')}`,
    `  gpufed jobs cancel ${name}${nsFlag}      ${dim('# stop it')}`,
  ].join('\n');
}

const timeoutOption = (fallback: number, shown: string) =>
  new Option('--timeout <duration>', 'how long to wait, e.g. 30s, 10m, 2h; 0 waits for ever').default(fallback, shown).argParser(durationArg('--timeout'));
const forOption = () => new Option('--for <state>', 'Succeeded (exit 1 when it fails) or Finished (succeeded or failed)').default('Succeeded').argParser(parseWaitFor);

interface SubmitOptions extends RenterOptions {
  wait?: boolean;
  for: WaitFor;
  timeout: number;
  output: OutputFormat;
}

function submitCommand(): Command {
  const cmd = new Command('submit')
    .description('Create a ComputeJob on the registry from a manifest')
    .addArgument(new Argument('<job.yaml>', 'the ComputeJob manifest, YAML or JSON; - reads stdin'))
    .option('--wait', 'then wait until it ends, like gpufed jobs wait')
    .addOption(forOption())
    .addOption(timeoutOption(600_000, '10m'))
    .addOption(outputOption());
  return withRenterOptions(cmd)
    .addHelpText(
      'after',
      `
The namespace is the manifest's metadata.namespace, else -n, else the kubeconfig context's. See
what it would cost first with gpufed quote. With --wait, the exit status is gpufed jobs wait's.

Examples:
  $ gpufed jobs submit train.yaml --kubeconfig carol.kubeconfig
  $ gpufed jobs submit train.yaml --wait --timeout 2h
  $ gpufed jobs submit - -o json < train.json`,
    )
    .action(async (file: string, o: SubmitOptions) => {
      const manifest = readComputeJob(file);
      if (!manifest.metadata.name && !manifest.metadata.generateName) throw new UsageError(`${file === '-' ? 'stdin' : file}: metadata.name: required (or metadata.generateName)`);
      const kc = renterKubeConfig(o);
      const contextNs = () => renterNamespace(undefined, kc);
      const jobs = new RenterJobs(kc, submitNamespace(manifest.metadata.namespace, o.namespace, contextNs));
      const created = await jobs.create(manifest);
      const name = created.metadata.name ?? '';
      const nsFlag = contextNamespace(kc) === jobs.namespace ? '' : ` -n ${jobs.namespace}`;
      print(o.output, created, () => nextSteps(name, nsFlag));
      if (o.wait) await waitForJob(jobs, name, o.for, o.timeout);
    });
}

function listCommand(): Command {
  const cmd = new Command('list').alias('ls').description('List your ComputeJobs: phase, where they run, at what price').addOption(outputOption());
  return withRenterOptions(cmd)
    .addHelpText('after', '\nExamples:\n  $ gpufed jobs list\n  $ gpufed jobs list -n carol -o json')
    .action(async (o: RenterOptions & { output: OutputFormat }) => {
      const jobs = renterJobs(o);
      const list = await jobs.list();
      if (list.items.length === 0 && o.output === 'table') {
        process.stderr.write(`No ComputeJobs in namespace ${jobs.namespace}; submit one with: gpufed jobs submit job.yaml\n`);
        return;
      }
      print(o.output, list, () => jobsTable(list.items, new Date()));
    });
}

function getCommand(): Command {
  const cmd = new Command('get').description('Show one ComputeJob: placement, times, exit code, conditions').addArgument(new Argument('<name>', 'the job')).addOption(outputOption());
  return withRenterOptions(cmd)
    .addHelpText('after', '\nExamples:\n  $ gpufed jobs get train\n  $ gpufed jobs get train -o yaml')
    .action(async (name: string, o: RenterOptions & { output: OutputFormat }) => {
      const job = await renterJobs(o).get(name);
      print(o.output, job, () => jobDetails(job, new Date()));
    });
}

function logsCommand(): Command {
  const cmd = new Command('logs').description("Print a job's log (the last 64 KiB of its current attempt, as its provider pushed it)").addArgument(new Argument('<name>', 'the job')).option('-f, --follow', 'keep printing new output until the job ends');
  return withRenterOptions(cmd)
    .addHelpText(
      'after',
      `
Providers sit behind NAT, so their agents push each running job's log tail to the registry every few
seconds, and the registry relays it into your namespace (ConfigMap status.logRef). A tail that lost
its start begins with "[... earlier output truncated ...]". A retried job shows its current attempt.

Examples:
  $ gpufed jobs logs train
  $ gpufed jobs logs -f train`,
    )
    .action(async (name: string, o: RenterOptions & { follow?: boolean }) => {
      const jobs = renterJobs(o);
      await (o.follow ? followLog(jobs, name) : printLog(jobs, name));
    });
}

function waitCommand(): Command {
  const cmd = new Command('wait')
    .description('Wait until a job succeeded (or, with --for Finished, ended either way)')
    .addArgument(new Argument('<name>', 'the job'))
    .addOption(forOption())
    .addOption(timeoutOption(600_000, '10m'));
  return withRenterOptions(cmd)
    .addHelpText('after', `\nProgress goes to stderr, the outcome to stdout.\n${EXIT_STATUS_HELP}\n\nExamples:\n  $ gpufed jobs wait train && echo done\n  $ gpufed jobs wait train --for Finished --timeout 2h`)
    .action(async (name: string, o: RenterOptions & { for: WaitFor; timeout: number }) => {
      const jobs = renterJobs(o);
      await jobs.get(name);
      await waitForJob(jobs, name, o.for, o.timeout);
    });
}

function cancelCommand(): Command {
  const cmd = new Command('cancel')
    .description('Cancel a job: delete it; the registry withdraws it from its provider and keeps it until the pod stopped')
    .addArgument(new Argument('<name>', 'the job'))
    .option('--wait', 'wait until the job is gone')
    .addOption(timeoutOption(300_000, '5m'));
  return withRenterOptions(cmd)
    .addHelpText(
      'after',
      `
Without --wait it returns at once; the job shows phase Cancelling until its pod stopped.

Exit status:
  0    deleted (with --wait: gone)
  2    bad usage, or there is no such job
  3    the registry refused the request or could not be reached for ${formatSeconds(REGISTRY_FAILURE_MS / 1000)}
  124  --timeout passed first

Examples:
  $ gpufed jobs cancel train
  $ gpufed jobs cancel train --wait`,
    )
    .action(async (name: string, o: RenterOptions & { wait?: boolean; timeout: number }) => {
      const jobs = renterJobs(o);
      await jobs.delete(name);
      process.stdout.write(`Cancelling ComputeJob ${name}: the registry withdraws it from its provider and deletes it once the pod stopped.\n`);
      if (o.wait) await waitGone(jobs, name, o.timeout);
    });
}

export function jobsCommand(): Command {
  const jobs = new Command('jobs').description("Submit, follow and cancel your ComputeJobs on the registry (as a renter, with your tenant's kubeconfig)");
  jobs.addHelpText(
    'after',
    `
Every subcommand takes --kubeconfig (default $KUBECONFIG or ~/.kube/config) and -n (default: the
context's namespace, which gpufed registry add-tenant sets to your tenant's).

Examples:
  $ export KUBECONFIG=carol.kubeconfig
  $ gpufed quote train.yaml
  $ gpufed jobs submit train.yaml
  $ gpufed jobs logs -f train
  $ gpufed jobs wait train
  $ gpufed jobs list`,
  );
  for (const sub of [submitCommand(), listCommand(), getCommand(), logsCommand(), waitCommand(), cancelCommand()]) jobs.addCommand(sub);
  return jobs;
}
