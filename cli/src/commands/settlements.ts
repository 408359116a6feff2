// `gpufed settlements list`: what was metered and paid on chain, for two audiences. A provider (its
// agent's kubeconfig) or an admin reads the UsageRecords: one per job and settlement period, with
// what the registry made of it (verified or disputed) and its payment's state, transaction and
// height as the registry found them on chain. A renter may not read UsageRecords (they live in the
// providers' namespaces), so for a renter the list falls back to what the registry copies into the
// renter's own jobs: verified GPU time, cost, paid, disputed, and the committed transactions.
import * as k8s from '@kubernetes/client-node';
import { Command, Option } from 'commander';
import { PROVIDER_NAMESPACE_PREFIX, providerNamespace, providerOfNamespace, UsageRecordResource, type ComputeJob, type ComputeJobStatus, type ComputeJobStatusSettlement, type UsageRecord, type UsageRecordList } from '../../../operator/src/api/index.js';
import { apiErrorCode } from '../../../operator/src/kube/errors.js';
import { tryParseCoin } from '../../../operator/src/api/coin.js';
import { contextNamespace } from '../kubeconfig.js';
import { apiFailure, dim, outputOption, print, table, UsageError, type OutputFormat } from '../output.js';
import { RenterJobs, renterKubeConfig, type RenterOptions } from '../renter.js';

// ---------------------------------------------------------------------------------------------
// Pure parts

/** Whose settlements to list. */
export type Scope =
  /** The UsageRecords of one provider's namespace. */
  | { kind: 'provider'; namespace: string }
  /** The UsageRecords of every provider. */
  | { kind: 'all' }
  /** A renter's namespace: the records of its jobs where the credentials may read them, else the jobs' status. */
  | { kind: 'renter'; namespace: string };

export interface ScopeFlags {
  provider?: string;
  allProviders?: boolean;
  namespace?: string;
}

/**
 * --all-providers, else --provider, else -n or the context's namespace: a provider's namespace
 * (gpufed-provider-<name>) lists its records, any other is a renter's.
 */
export function settlementScope(o: ScopeFlags, contextNamespace: string | undefined): Scope {
  if (o.allProviders && o.provider !== undefined) throw new UsageError('--all-providers and --provider: pass one');
  if (o.allProviders) {
    if (o.namespace !== undefined) throw new UsageError(`--all-providers and -n ${o.namespace}: pass one`);
    return { kind: 'all' };
  }
  if (o.provider !== undefined) {
    if (o.namespace !== undefined && o.namespace !== providerNamespace(o.provider)) throw new UsageError(`--provider ${o.provider} lists namespace ${providerNamespace(o.provider)}, not -n ${o.namespace}: pass one`);
    return { kind: 'provider', namespace: providerNamespace(o.provider) };
  }
  const ns = o.namespace ?? contextNamespace;
  if (!ns) throw new UsageError('no namespace: pass -n <namespace> (yours as a renter), --provider <name> or --all-providers');
  return providerOfNamespace(ns) !== undefined ? { kind: 'provider', namespace: ns } : { kind: 'renter', namespace: ns };
}

/** One UsageRecord as the list shows it. */
export interface RecordRow {
  provider: string;
  name: string;
  /** The job, namespace/name. */
  job: string;
  periodEnd: string;
  /** GPU time within the period. */
  gpuMilliseconds: number;
  amount: string;
  state: string;
  txHash: string | null;
  height: number | null;
}

export function recordRow(r: UsageRecord): RecordRow {
  return {
    provider: providerOfNamespace(r.metadata.namespace) ?? r.metadata.namespace ?? '',
    name: r.metadata.name ?? '',
    job: `${r.spec.jobRef.namespace}/${r.spec.jobRef.name}`,
    periodEnd: r.spec.period.end,
    gpuMilliseconds: r.spec.gpuMilliseconds.delta,
    amount: r.spec.amount,
    state: r.status?.state ?? 'Unverified',
    txHash: r.status?.txHash ?? null,
    height: r.status?.height ?? null,
  };
}

/** The records of a job (by name; and namespace, for a renter's) or all, by job and then period. */
export function recordRows(records: readonly UsageRecord[], filter: { job?: string; jobNamespace?: string }): RecordRow[] {
  return records
    .filter((r) => (filter.job === undefined || r.spec.jobRef.name === filter.job) && (filter.jobNamespace === undefined || r.spec.jobRef.namespace === filter.jobNamespace))
    .map(recordRow)
    .sort((a, b) => (a.job !== b.job ? (a.job < b.job ? -1 : 1) : a.periodEnd < b.periodEnd ? -1 : a.periodEnd > b.periodEnd ? 1 : 0));
}

/** Sums coins per denom, in bigint; amounts that are no coin are skipped. */
function sum(amounts: readonly string[]): string {
  const by = new Map<string, bigint>();
  for (const a of amounts) {
    const c = tryParseCoin(a);
    if (c) by.set(c.denom, (by.get(c.denom) ?? 0n) + c.amount);
  }
  return by.size > 0 ? [...by].map(([d, n]) => `${n}${d}`).join(',') : '0';
}

/** "3 records: 2 Committed (2800000ustake), 1 Pending (700000ustake)". */
export function recordTotals(rows: readonly RecordRow[]): string {
  const states = [...new Set(rows.map((r) => r.state))].sort();
  const parts = states.map((s) => {
    const of = rows.filter((r) => r.state === s);
    return `${of.length} ${s} (${sum(of.map((r) => r.amount))})`;
  });
  return `${rows.length} record${rows.length === 1 ? '' : 's'}${parts.length > 0 ? `: ${parts.join(', ')}` : ''}`;
}

export function recordsTable(rows: readonly RecordRow[]): string {
  const cells = rows.map((r) => [r.job, r.provider, r.periodEnd, String(r.gpuMilliseconds), r.amount, r.state, r.txHash ?? '-', r.height === null ? '-' : String(r.height)]);
  return [table(['job', 'provider', 'period end', 'gpu-ms', 'amount', 'state', 'tx hash', 'height'], cells), '', recordTotals(rows)].join('\n');
}

/** A renter's job as the fallback shows it: its money status and committed transactions. */
export interface JobSettlements {
  name: string;
  namespace: string;
  phase: string;
  provider: string | null;
  gpuMilliseconds: number;
  cost: string | null;
  paid: string | null;
  /** cost − paid; null when nothing was metered. */
  owed: string | null;
  /** What the provider claimed that the registry disputed (never paid); null when nothing was. */
  disputed: string | null;
  settlements: ComputeJobStatusSettlement[];
}

/** cost − paid in cost's denom (a paid in another denom counts as nothing), never below 0. */
export function owedOf(cost: string | undefined, paid: string | undefined): string | null {
  const c = cost === undefined ? undefined : tryParseCoin(cost);
  if (!c) return null;
  const p = paid === undefined ? undefined : tryParseCoin(paid);
  const paidAmount = p && p.denom === c.denom ? p.amount : 0n;
  return `${c.amount > paidAmount ? c.amount - paidAmount : 0n}${c.denom}`;
}

/** The money half of a job's status; a job the registry has not looked at yet has none. */
function money(s: ComputeJobStatus): Pick<JobSettlements, 'gpuMilliseconds' | 'cost' | 'paid' | 'owed' | 'disputed' | 'settlements'> {
  return { gpuMilliseconds: s.usage?.gpuMilliseconds ?? 0, cost: s.cost ?? null, paid: s.paid ?? null, owed: owedOf(s.cost, s.paid), disputed: s.disputed ?? null, settlements: s.settlements ?? [] };
}

export function jobSettlements(job: ComputeJob): JobSettlements {
  const s = job.status ?? {};
  return { name: job.metadata.name ?? '', namespace: job.metadata.namespace ?? '', phase: s.phase ?? 'Pending', provider: s.placement?.provider ?? null, ...money(s) };
}

const isZero = (coin: string | null): boolean => coin === null || tryParseCoin(coin)?.amount === 0n;

/** One job's block: its money line, then its committed transactions. */
export function jobBlock(j: JobSettlements): string {
  const where = j.provider ? `${j.phase} on ${j.provider}` : j.phase;
  const owed = isZero(j.owed) ? 'nothing owed' : `${j.owed ?? ''} owed`;
  const disputed = isZero(j.disputed) ? '' : `, ${j.disputed ?? ''} disputed (not paid)`;
  const money = j.cost === null ? `no GPU time metered, ${owed}` : `${j.gpuMilliseconds} GPU-ms verified, cost ${j.cost}, paid ${j.paid ?? '0'}, ${owed}${disputed}`;
  const lines = [`${j.name}   ${where}: ${money}`];
  if (j.settlements.length > 0) {
    const rows = j.settlements.map((t) => [t.txHash, t.height === undefined ? '-' : String(t.height), t.amount, t.time ?? '-']);
    lines.push(table(['tx hash', 'height', 'amount', 'time'], rows).replace(/^/gm, '  '));
  }
  return lines.join('\n');
}

export const RENTER_NOTE = "Your credentials may not read UsageRecords (they live in the providers' namespaces), so these are the payments the registry copied into your jobs' status: the newest 64 per job; paid is the total.";

export function jobsSettlementsText(jobs: readonly JobSettlements[], namespace: string): string {
  if (jobs.length === 0) return `No ComputeJobs in namespace ${namespace}: nothing owed.\n${dim(RENTER_NOTE)}`;
  return [...jobs.map(jobBlock), '', dim(RENTER_NOTE)].join('\n');
}

// ---------------------------------------------------------------------------------------------
// Reading the registry

const recordRef = { group: UsageRecordResource.group, version: UsageRecordResource.version, plural: UsageRecordResource.plural };
const PAGE = 500;

/** Every UsageRecord of a namespace (or of all, with none), page by page; throws the API error as is. */
export async function listRecords(kc: k8s.KubeConfig, namespace?: string): Promise<UsageRecord[]> {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const items: UsageRecord[] = [];
  let next: string | undefined;
  do {
    const page = { ...recordRef, limit: PAGE, ...(next ? { _continue: next } : {}) };
    const list = (namespace === undefined ? await api.listClusterCustomObject(page) : await api.listNamespacedCustomObject({ ...page, namespace })) as UsageRecordList;
    items.push(...list.items);
    next = list.metadata._continue;
  } while (next);
  return items;
}

const isForbidden = (e: unknown): boolean => apiErrorCode(e) === 403;

/** The output of `settlements list` as json and yaml print it. */
export type SettlementsOutput = { source: 'UsageRecords'; scope: string; records: RecordRow[] } | { source: 'ComputeJobs'; namespace: string; jobs: JobSettlements[] };

const scopeName = (s: Scope): string => (s.kind === 'all' ? `every ${PROVIDER_NAMESPACE_PREFIX}* namespace` : s.kind === 'provider' ? `namespace ${s.namespace}` : `the jobs of namespace ${s.namespace}`);

/** The records a provider's or admin's credentials read; a refusal is exit 3, with what a renter should run. */
async function providerRecords(kc: k8s.KubeConfig, scope: Exclude<Scope, { kind: 'renter' }>, job: string | undefined): Promise<SettlementsOutput> {
  try {
    const records = await listRecords(kc, scope.kind === 'all' ? undefined : scope.namespace);
    return { source: 'UsageRecords', scope: scopeName(scope), records: recordRows(records, job === undefined ? {} : { job }) };
  } catch (e) {
    const hint = isForbidden(e) ? "; as a renter, run gpufed settlements list without --provider or --all-providers to see your jobs' payments" : '';
    throw apiFailure(`Listing UsageRecords in ${scopeName(scope)}`, e, { hint });
  }
}

/** A renter's jobs, or the one --job names, as the registry's status has their money (RenterJobs says why it could not read them). */
async function renterJobsSettlements(kc: k8s.KubeConfig, namespace: string, job: string | undefined): Promise<SettlementsOutput> {
  const jobs = new RenterJobs(kc, namespace);
  const items = job !== undefined ? [await jobs.get(job)] : (await jobs.list()).items;
  return { source: 'ComputeJobs', namespace, jobs: items.map(jobSettlements).sort((a, b) => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0)) };
}

/**
 * A renter's namespace: with credentials that may list UsageRecords everywhere (an admin's), the
 * records of its jobs; with a renter's (Forbidden), its jobs' status.
 */
async function renterSettlements(kc: k8s.KubeConfig, namespace: string, job: string | undefined): Promise<SettlementsOutput> {
  let records: UsageRecord[];
  try {
    records = await listRecords(kc);
  } catch (e) {
    if (isForbidden(e)) return renterJobsSettlements(kc, namespace, job);
    throw apiFailure('Listing UsageRecords on the registry', e);
  }
  return { source: 'UsageRecords', scope: scopeName({ kind: 'renter', namespace }), records: recordRows(records, { jobNamespace: namespace, ...(job === undefined ? {} : { job }) }) };
}

export async function readSettlements(kc: k8s.KubeConfig, scope: Scope, job: string | undefined): Promise<SettlementsOutput> {
  return scope.kind === 'renter' ? renterSettlements(kc, scope.namespace, job) : providerRecords(kc, scope, job);
}

export function settlementsText(out: SettlementsOutput, job: string | undefined): string {
  if (out.source === 'ComputeJobs') return jobsSettlementsText(out.jobs, out.namespace);
  if (out.records.length === 0) return `No UsageRecords${job === undefined ? '' : ` for job ${job}`} in ${out.scope}: nothing metered yet.`;
  return recordsTable(out.records);
}

// ---------------------------------------------------------------------------------------------
// Commands

interface ListOptions extends RenterOptions, ScopeFlags {
  job?: string;
  output: OutputFormat;
}

function listCommand(): Command {
  const cmd = new Command('list')
    .alias('ls')
    .description('List metered periods and their payments: UsageRecords (provider, admin), or your jobs\' payments (renter)')
    .option('--job <name>', 'only this ComputeJob')
    .option('--provider <name>', "this provider's records (namespace gpufed-provider-<name>)")
    .addOption(new Option('--all-providers', "every provider's records").conflicts('provider'))
    .option('-n, --namespace <ns>', "the namespace: a renter's own, or a provider's gpufed-provider-<name> (default: the kubeconfig context's)")
    .option('--kubeconfig <file>', "your kubeconfig for the registry: a renter's (gpufed registry add-tenant), a provider agent's or an admin's (default: $KUBECONFIG or ~/.kube/config)")
    .option('--context <name>', 'the kubeconfig context to use (default: its current context)')
    .addOption(outputOption());
  return cmd
    .addHelpText(
      'after',
      `
With credentials that may read UsageRecords (a provider's agent kubeconfig, an admin's), it lists the
records: one per job and settlement period, with the GPU time, the amount, what the registry made
of it (Unverified, Disputed: never paid) and where its payment is (Pending, Settling, Committed,
NothingDue: as the registry found it on chain), its transaction and height. The
namespace is --provider's, else -n, else the context's; --all-providers reads every provider's.

A renter may not read UsageRecords; with a renter's kubeconfig it lists your jobs instead (-n or the
context's namespace): GPU time metered, cost, paid, what is still owed, and each committed payment
transaction the registry copied into the job's status.

Exit status:
  0    listed (also when there is nothing to list)
  2    bad usage, or --job names no job of yours
  3    the registry refused the request or could not be reached

Examples:
  $ gpufed settlements list --kubeconfig carol.kubeconfig
  $ gpufed settlements list --job train -o json
  $ gpufed settlements list --kubeconfig agent-alice.kubeconfig
  $ gpufed settlements list --all-providers --kubeconfig admin.kubeconfig -o yaml`,
    )
    .action(async (o: ListOptions) => {
      const kc = renterKubeConfig(o);
      const scope = settlementScope(o, contextNamespace(kc));
      const out = await readSettlements(kc, scope, o.job);
      print(o.output, out, () => settlementsText(out, o.job));
    });
}

export function settlementsCommand(): Command {
  const s = new Command('settlements').description('What was metered and paid on chain: UsageRecords for providers and admins, job payments for renters');
  s.addHelpText('after', '\nExamples:\n  $ gpufed settlements list\n  $ gpufed settlements list --provider alice --job train');
  s.addCommand(listCommand());
  return s;
}
