// `gpufed quote <job.yaml>`: what a ComputeJob would cost and where it would go, before it is
// submitted. Reads the market from the live registry and runs the registry's own pure matcher on
// it, read-only, so the answer and every reason are exactly the ones the registry would give now.
import * as k8s from '@kubernetes/client-node';
import { Argument, Command } from 'commander';
import { AssignmentResource, GpuNodeResource, ProviderResource, type Assignment, type ComputeJob, type GpuNode, type Provider } from '../../../operator/src/api/index.js';
import { DEFAULT_MAX_DURATION_SECONDS } from '../../../operator/src/registry/jobs/decide.js';
import { apiErrorCode } from '../../../operator/src/kube/errors.js';
import { formatCoin, parseCoin, type Coin } from '../../../operator/src/api/coin.js';
import { matchProviders, providerVerdicts, type MatchJob, type MatchSnapshot, type ProviderVerdict, type UnfitReason } from '../../../operator/src/scheduling/match.js';
import { reservationsFor } from '../../../operator/src/scheduling/reservations.js';
import { apiFailure, bold, dim, formatSeconds, green, outputOption, print, table, type OutputFormat } from '../output.js';
import { readComputeJob, renterKubeConfig, withRenterOptions, type RenterOptions } from '../renter.js';


/**
 * The most one attempt can cost: price × GPUs × maxDurationSeconds / 3600, floored to the base
 * denom, in bigint end to end.
 */
export function maxCost(pricePerGpuHour: Coin, gpus: number, maxDurationSeconds: number): Coin {
  return { amount: (pricePerGpuHour.amount * BigInt(gpus) * BigInt(maxDurationSeconds)) / 3600n, denom: pricePerGpuHour.denom };
}

/** One provider's answer: where and for how much it would run the job, or why it would not. */
export type ProviderQuote =
  | { provider: string; region: string; fits: true; chosen: boolean; nodeName: string; model: string; pricePerGpuHour: string; maxCost: string }
  | { provider: string; region: string; fits: false; code: UnfitReason; reason: string };

export interface Quote {
  job: { name?: string; gpus: number; models: string[]; maxPricePerGpuHour: string; maxDurationSeconds: number };
  /** The provider the registry would place the job on now, if any. */
  chosen?: string;
  /** The matcher's kube-scheduler-style message when no provider fits. */
  unschedulable?: string;
  /** False when the Assignments could not be read: GPUs promised to jobs not running yet look free. */
  reservationsCounted: boolean;
  /** Every provider: the chosen one first, then the others that fit by price, then the rest by name. */
  providers: ProviderQuote[];
  notes: string[];
}

/** What the quote is computed from: the registry's objects at one moment. */
export interface Market {
  providers: readonly Provider[];
  gpuNodes: readonly GpuNode[];
  /** Undefined when the renter's credentials may not list them. */
  assignments?: readonly Assignment[];
}

function matchJob(job: ComputeJob): MatchJob {
  const { resources, maxPricePerGpuHour, placement } = job.spec;
  return { resources, maxPricePerGpuHour, ...(placement ? { placement } : {}) };
}

/** One provider's verdict from the same matcher: its best node and the cost, or the reason it gives. */
function providerQuote(v: ProviderVerdict, region: string, job: ComputeJob, chosen: string | undefined): ProviderQuote {
  if (!v.fits) return { provider: v.provider, region, fits: false, code: v.code, reason: v.reason };
  const p = v.placement;
  const cost = maxCost(parseCoin(p.pricePerGpuHour), p.units, job.spec.maxDurationSeconds ?? DEFAULT_MAX_DURATION_SECONDS);
  return { provider: v.provider, region, fits: true, chosen: v.provider === chosen, nodeName: p.nodeName, model: p.model, pricePerGpuHour: p.pricePerGpuHour, maxCost: formatCoin(cost) };
}

/** Chosen first; then those that fit, cheapest first; then the rest; by name within each. */
function rank(q: ProviderQuote): [number, bigint] {
  if (!q.fits) return [2, 0n];
  return [q.chosen ? 0 : 1, parseCoin(q.pricePerGpuHour).amount];
}

function compareQuotes(a: ProviderQuote, b: ProviderQuote): number {
  const [ga, pa] = rank(a);
  const [gb, pb] = rank(b);
  if (ga !== gb) return ga - gb;
  if (pa !== pb) return pa < pb ? -1 : 1;
  return a.provider < b.provider ? -1 : a.provider > b.provider ? 1 : 0;
}

/** The quote of a job on a market at `now`. Pure. */
export function quoteJob(market: Market, job: ComputeJob, now: Date): Quote {
  const reservations = market.assignments === undefined ? [] : reservationsFor(market.assignments, market.gpuNodes);
  // No heartbeat sightings here (only the registry has them): liveness is the Ready it keeps.
  const snapshot: MatchSnapshot = { providers: market.providers, gpuNodes: market.gpuNodes, reservations, heartbeatTimeoutMs: 0 };
  const all = matchProviders(snapshot, matchJob(job), now);
  const chosen = 'placed' in all ? all.placed.provider : undefined;
  const regions = new Map(market.providers.map((p) => [p.metadata.name ?? '', p.spec.region]));
  const providers = providerVerdicts(snapshot, matchJob(job), now)
    .map((v) => providerQuote(v, regions.get(v.provider) ?? '', job, chosen))
    .sort(compareQuotes);
  const notes: string[] = [];
  if (market.assignments === undefined) {
    notes.push('Your credentials may not read Assignments, so GPUs the registry has just promised to jobs that are not running yet count as free here: a provider may be busier than shown.');
  }
  const { gpu } = job.spec.resources;
  return {
    job: { ...(job.metadata.name ? { name: job.metadata.name } : {}), gpus: gpu.count, models: gpu.models ?? [], maxPricePerGpuHour: job.spec.maxPricePerGpuHour, maxDurationSeconds: job.spec.maxDurationSeconds ?? DEFAULT_MAX_DURATION_SECONDS },
    ...(chosen !== undefined ? { chosen } : { unschedulable: 'unschedulable' in all ? all.unschedulable : '' }),
    reservationsCounted: market.assignments !== undefined,
    providers,
    notes,
  };
}

function verdict(q: ProviderQuote): string {
  if (!q.fits) return q.reason;
  return q.chosen ? green('chosen') : 'fits';
}

/** The quote for people: one row per provider, then what the registry would do. */
export function quoteTable(q: Quote): string {
  const duration = formatSeconds(q.job.maxDurationSeconds);
  const rows = q.providers.map((p) => [
    p.fits && p.chosen ? bold(p.provider) : p.provider,
    p.region,
    p.fits ? p.model : '-',
    p.fits ? p.nodeName : '-',
    p.fits ? p.pricePerGpuHour : '-',
    p.fits ? p.maxCost : '-',
    verdict(p),
  ]);
  const lines = [table(['provider', 'region', 'model', 'node', 'price/gpu-hour', 'max cost', 'verdict'], rows), ''];
  const best = q.providers.find((p) => p.fits && p.chosen);
  if (best?.fits) {
    lines.push(`The registry would place it on ${bold(best.provider)} (${best.nodeName}, ${q.job.gpus}× ${best.model}) at ${best.pricePerGpuHour} per GPU-hour: at most ${bold(best.maxCost)} for ${duration} (maxDurationSeconds ${q.job.maxDurationSeconds}).`);
  } else {
    lines.push(`No provider can take it now (${q.unschedulable ?? ''}); submitted, it would wait as Pending until one can.`);
  }
  for (const note of q.notes) lines.push(dim(note));
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// Reading the market

async function listAll<T>(api: k8s.CustomObjectsApi, ref: { group: string; version: string; plural: string }): Promise<T[]> {
  const list = (await api.listClusterCustomObject({ group: ref.group, version: ref.version, plural: ref.plural })) as { items: T[] };
  return list.items;
}

/** Providers and GpuNodes (every namespace) must be readable; Assignments may not be, for a renter. */
export async function readMarket(kc: k8s.KubeConfig): Promise<Market> {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  const read = async <T>(ref: typeof ProviderResource | typeof GpuNodeResource): Promise<T[]> => {
    try {
      return await listAll<T>(api, ref);
    } catch (e) {
      throw apiFailure(`Listing ${ref.plural} on the registry`, e);
    }
  };
  const [providers, gpuNodes] = await Promise.all([read<Provider>(ProviderResource), read<GpuNode>(GpuNodeResource)]);
  try {
    return { providers, gpuNodes, assignments: await listAll<Assignment>(api, AssignmentResource) };
  } catch (e) {
    if (apiErrorCode(e) === 403) return { providers, gpuNodes };
    throw apiFailure('Listing assignments on the registry', e);
  }
}

interface QuoteOptions extends RenterOptions {
  output: OutputFormat;
}

export function quoteCommand(): Command {
  const cmd = new Command('quote')
    .description("Show what a ComputeJob would cost on each provider and where the registry would place it now, without submitting it")
    .addArgument(new Argument('<job.yaml>', 'the ComputeJob manifest, YAML or JSON; - reads stdin'))
    .addOption(outputOption());
  withRenterOptions(cmd, false);
  return cmd
    .addHelpText(
      'after',
      `
Runs the registry's own matcher on the Providers and GpuNodes it reads from the registry, and lists
every provider: those that fit with their price per GPU-hour, the node and model the job would get and
the most one attempt can cost (price × GPUs × maxDurationSeconds / 3600, in the base denom); the
others with the reason the registry gives. The one the registry would choose now is marked; prices
and free GPUs change, and the registry decides when the job is submitted.

Examples:
  $ gpufed quote train.yaml --kubeconfig carol.kubeconfig
  $ gpufed quote crds/samples/computejob-train-rtx4090.yaml -o json
  $ cat train.yaml | gpufed quote - -o yaml`,
    )
    .action(async (file: string, o: QuoteOptions) => {
      const job = readComputeJob(file);
      const market = await readMarket(renterKubeConfig(o));
      const q = quoteJob(market, job, new Date());
      print(o.output, q, () => quoteTable(q));
    });
}
