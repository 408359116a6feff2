// `gpufed offers`: the market across the federation, for renters. Each GPU model, who offers it, at
// what price per GPU-hour and in which region, how many are free now and how many there are, per
// provider and in total. Reads the Providers and GpuNodes from the registry (a renter's kubeconfig
// may read them) and takes each provider's standing from the registry: a provider that is not
// Ready (the registry's Ready condition, which it keeps from the heartbeats it saw itself, not
// True; or cordoned) takes no new jobs, so its GPUs are counted but none of them as free.
import { Command } from 'commander';
import { providerOfNamespace, type GpuNode, type GpuNodeSpec, type GpuNodeStatus, type Provider } from '../../../operator/src/api/index.js';
import { takesJobs } from '../../../operator/src/scheduling/fit.js';
import { tryParseCoin } from '../../../operator/src/api/coin.js';
import { readyReason, UnfitReason, type Reservation } from '../../../operator/src/scheduling/match.js';
import { reservationsFor } from '../../../operator/src/scheduling/reservations.js';
import { bold, dim, green, outputOption, print, red, table, type OutputFormat } from '../output.js';
import { renterKubeConfig, withRenterOptions, type RenterOptions } from '../renter.js';
import { readMarket, type Market } from './quote.js';

/** Why a provider takes no new jobs now: the matcher's code and its words. */
export interface NotReady {
  code: typeof UnfitReason.NeverHeartbeated | typeof UnfitReason.HeartbeatStale | typeof UnfitReason.NotReady | typeof UnfitReason.Cordoned;
  reason: string;
}

/** One provider's offer of one GPU model. */
export interface Offer {
  model: string;
  provider: string;
  region: string;
  /** The provider's price for one unit for one hour (a Cosmos coin), as its Provider spec says. */
  pricePerGpuHour: string;
  /**
   * Units of this model on the provider's GpuNodes: GPUs, or shares where GPUs are time-sliced or
   * MIG-partitioned (the price is per share then).
   */
  total: number;
  /** Units a new job could get now: none when the provider is not Ready, else the free units of nodes that take jobs. */
  free: number;
  /** The provider's GpuNodes of this model. */
  nodes: number;
  /** How those nodes share their GPUs, when they do: "time-slicing ×4", "mig 1g.10gb". */
  sharing: string[];
  ready: boolean;
  /** Only when not Ready. */
  notReady?: NotReady;
}

/** One GPU model over the whole federation. */
export interface ModelTotal {
  model: string;
  total: number;
  /** Free units on Ready providers. */
  free: number;
  /** Providers that price the model, and of those the Ready ones. */
  providers: number;
  readyProviders: number;
  /** The lowest price among Ready providers with a free unit (prices in one denom compare; see sorting). */
  cheapestFree?: string;
}

export interface Offers {
  /** By model, then price (cheapest first), then provider. */
  offers: Offer[];
  /** One per model, in the same order. */
  totals: ModelTotal[];
  /** False when Assignments could not be read: GPUs promised to jobs whose pods are not running yet look free. */
  reservationsCounted: boolean;
  notes: string[];
}

// ---------------------------------------------------------------------------------------------
// Pure parts

/** Units a GpuNode offers and has free: the MIG devices of every profile, else its primary resource. */
export function nodeUnits(node: { spec: GpuNodeSpec; status?: GpuNodeStatus }): { allocatable: number; free: number } {
  const mig = node.status?.migProfiles;
  if (mig !== undefined && mig.length > 0) {
    return { allocatable: mig.reduce((s, p) => s + (p.allocatable ?? 0), 0), free: mig.reduce((s, p) => s + p.free, 0) };
  }
  return { allocatable: node.status?.allocatable ?? 0, free: node.status?.free ?? 0 };
}

/** "time-slicing ×4", "mps ×2", "mig 1g.10gb+2g.20gb"; undefined for whole GPUs. */
export function sharingOf(spec: GpuNodeSpec): string | undefined {
  const s = spec.sharing;
  if (s === undefined || s.strategy === 'none') return undefined;
  if (s.strategy === 'mig') return `mig ${(s.migProfiles ?? []).map((p) => p.profile).join('+')}`;
  return `${s.strategy} ×${s.replicas ?? 1}`;
}

/**
 * Whether the provider takes new jobs, as the registry judges it: its Ready condition (the registry
 * keeps it from the heartbeats it saw, by its own clock: the only judge of a provider's liveness),
 * then cordoned. Undefined when it is Ready.
 */
export function providerNotReady(provider: Provider): NotReady | undefined {
  const notReady = readyReason(provider);
  if (notReady) return notReady;
  if (provider.spec.cordoned === true) return { code: UnfitReason.Cordoned, reason: 'cordoned' };
  return undefined;
}

/** By UTF-16 code units, so the order does not depend on the locale. */
const compareText = (a: string, b: string): number => (a < b ? -1 : a > b ? 1 : 0);

/** Cheapest first within a denom (bigint); denoms by name; a price that is no coin last. */
export function comparePrices(a: string, b: string): number {
  const ca = tryParseCoin(a);
  const cb = tryParseCoin(b);
  if (ca === undefined || cb === undefined) return Number(ca === undefined) - Number(cb === undefined) || compareText(a, b);
  if (ca.denom !== cb.denom) return compareText(ca.denom, cb.denom);
  return ca.amount < cb.amount ? -1 : ca.amount > cb.amount ? 1 : 0;
}

const compareOffers = (a: Offer, b: Offer): number => compareText(a.model, b.model) || comparePrices(a.pricePerGpuHour, b.pricePerGpuHour) || compareText(a.provider, b.provider);

/** Units reserved per provider/node: promised to jobs whose pods are not bound yet. */
function reservedByNode(reservations: readonly Reservation[]): Map<string, number> {
  const out = new Map<string, number>();
  for (const r of reservations) out.set(`${r.provider}/${r.nodeName}`, (out.get(`${r.provider}/${r.nodeName}`) ?? 0) + r.units);
  return out;
}

/** One provider's offer of one model, from its GpuNodes of that model. */
function offerOf(provider: Provider, model: string, price: string, nodes: readonly GpuNode[], reserved: ReadonlyMap<string, number>, notReady: NotReady | undefined): Offer {
  const name = provider.metadata.name ?? '';
  let total = 0;
  let free = 0;
  for (const node of nodes) {
    const units = nodeUnits(node);
    total += units.allocatable;
    // A node that is not Ready or not schedulable (cordoned, tainted, reclaimed by its owner) takes no new job.
    if (takesJobs(node.status)) free += Math.max(0, units.free - (reserved.get(`${name}/${node.spec.nodeName}`) ?? 0));
  }
  const sharing = [...new Set(nodes.flatMap((n) => sharingOf(n.spec) ?? []))].sort(compareText);
  return {
    model,
    provider: name,
    region: provider.spec.region,
    pricePerGpuHour: price,
    total,
    free: notReady === undefined ? free : 0,
    nodes: nodes.length,
    sharing,
    ready: notReady === undefined,
    ...(notReady === undefined ? {} : { notReady }),
  };
}

function totalsOf(offers: readonly Offer[]): ModelTotal[] {
  const byModel = new Map<string, ModelTotal>();
  for (const o of offers) {
    const t = byModel.get(o.model) ?? { model: o.model, total: 0, free: 0, providers: 0, readyProviders: 0 };
    t.total += o.total;
    t.free += o.free;
    t.providers += 1;
    if (o.ready) t.readyProviders += 1;
    // Offers come sorted by price, so the first Ready one with a free unit is the cheapest.
    if (t.cheapestFree === undefined && o.ready && o.free > 0) t.cheapestFree = o.pricePerGpuHour;
    byModel.set(o.model, t);
  }
  return [...byModel.values()];
}

/**
 * The market at `now`: one offer per provider and model it prices (a model without a price is not
 * rented out; a priced model with no GPUs shows 0 of 0), `model` (case-insensitive) keeping one
 * model only. Pure.
 */
export function marketOffers(market: Market, o: { model?: string } = {}): Offers {
  const wanted = o.model?.toLowerCase();
  const reserved = reservedByNode(market.assignments === undefined ? [] : reservationsFor(market.assignments, market.gpuNodes));
  const offers: Offer[] = [];
  for (const provider of market.providers) {
    const name = provider.metadata.name ?? '';
    const own = market.gpuNodes.filter((n) => providerOfNamespace(n.metadata.namespace) === name);
    const notReady = providerNotReady(provider);
    for (const { model, pricePerGpuHour } of provider.spec.prices) {
      if (wanted !== undefined && model.toLowerCase() !== wanted) continue;
      offers.push(offerOf(provider, model, pricePerGpuHour, own.filter((n) => n.spec.product === model), reserved, notReady));
    }
  }
  offers.sort(compareOffers);
  const notes: string[] = [];
  if (market.assignments === undefined) {
    notes.push('Your credentials may not read Assignments, so GPUs the registry has just promised to jobs that are not running yet count as free here.');
  }
  return { offers, totals: totalsOf(offers), reservationsCounted: market.assignments !== undefined, notes };
}

function readyCell(o: Offer): string {
  return o.ready ? green('yes') : red(`no: ${o.notReady?.reason ?? ''}`);
}

/** The market for people: one row per offer, then one per model, then the notes. */
export function offersTable(m: Offers): string {
  const rows = m.offers.map((o) => [o.model, o.provider, o.region, o.pricePerGpuHour, String(o.free), String(o.total), o.sharing.length > 0 ? o.sharing.join(', ') : '-', readyCell(o)]);
  const totals = m.totals.map((t) => [bold(t.model), String(t.free), String(t.total), `${t.readyProviders}/${t.providers}`, t.cheapestFree ?? '-']);
  const lines = [
    table(['model', 'provider', 'region', 'price/gpu-hour', 'free', 'total', 'sharing', 'ready'], rows),
    '',
    table(['model', 'free', 'total', 'ready providers', 'from'], totals),
  ];
  for (const note of m.notes) lines.push(dim(note));
  return lines.join('\n');
}

interface OffersOptions extends RenterOptions {
  model?: string;
  output: OutputFormat;
}

export function offersCommand(): Command {
  const cmd = new Command('offers')
    .description('Show the market: every GPU model on offer, by whom, where, at what price per GPU-hour, and how many are free now')
    .option('--model <model>', 'only this GPU model (nvidia.com/gpu.product, any case), e.g. NVIDIA-GeForce-RTX-4090')
    .addOption(outputOption());
  withRenterOptions(cmd, false);
  return cmd
    .addHelpText(
      'after',
      `
One row per provider and GPU model it prices, sorted by model, then price (cheapest first): the
region, the price per GPU-hour (per share on time-sliced or MIG nodes), the units free now and in
all. A provider the registry does not hold Ready (no heartbeat it saw lately, no priced GPUs) or
that is cordoned takes no new jobs: its row says why, and none of its GPUs count as free. A second table sums each
model over the federation, with the cheapest price that has a free GPU now. To see where one job
would go and what it would cost, use gpufed quote.

Examples:
  $ gpufed offers --kubeconfig carol.kubeconfig
  $ gpufed offers --model NVIDIA-GeForce-RTX-4090
  $ gpufed offers -o json | jq '.totals[] | select(.free > 0)'`,
    )
    .action(async (o: OffersOptions) => {
      const market = await readMarket(renterKubeConfig(o));
      const m = marketOffers(market, o.model === undefined ? {} : { model: o.model });
      if (m.offers.length === 0 && o.output === 'table') {
        const models = [...new Set(market.providers.flatMap((p) => p.spec.prices.map((x) => x.model)))].sort(compareText);
        const what = o.model === undefined ? 'No provider prices any GPU model yet.' : `No provider prices ${o.model}.`;
        process.stderr.write(`${what}${models.length > 0 ? ` Models on offer: ${models.join(', ')}` : ''}\n`);
        return;
      }
      print(o.output, m, () => offersTable(m));
    });
}
