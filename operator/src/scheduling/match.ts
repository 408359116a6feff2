// The registry's matcher: which provider and node a ComputeJob goes to, or why none can take it.
// Pure, with an injected clock (STYLE.md: gather → pure decide → apply): the placement controller
// gathers the snapshot from its informers and applies the result. The node check agrees with the
// agent's own (agent/fit.ts), so a placement made here is one the agent accepts.
import { findCondition, ProviderConditionType, ProviderReason } from '../api/conditions.js';
import { providerOfNamespace } from '../api/names.js';
import type { ComputeJobSpec, GpuNode, Provider, ResourcesGpu } from '../api/index.js';
import { freeUnits, memoryPerUnit, takesJobs, wantedResource } from './fit.js';
import { formatCoin, tryParseCoin, type Coin } from '../api/coin.js';


/** Units promised to an assignment whose pod is not bound yet; they are not free any more. */
export interface Reservation {
  provider: string;
  nodeName: string;
  resourceName: string;
  units: number;
  assignment: string;
}

/** What the matcher sees: the registry's informer caches at one moment. */
export interface MatchSnapshot {
  providers: readonly Provider[];
  /** Each in namespace gpufed-provider-<provider>. */
  gpuNodes: readonly GpuNode[];
  reservations: readonly Reservation[];
  /** A provider whose last heartbeat is older than this is not considered. */
  heartbeatTimeoutMs: number;
  /**
   * When the registry last saw each provider's heartbeat (Unix ms, its own clock; undefined: never).
   * Only the registry has it; without it (the CLI) liveness is the Ready condition the registry keeps.
   */
  heartbeats?: (provider: string) => number | undefined;
}

/** The parts of a ComputeJob's spec that decide placement, and providers to leave out this time. */
export type MatchJob = Pick<ComputeJobSpec, 'resources' | 'maxPricePerGpuHour' | 'placement'> & {
  /** Providers that rejected or lost this job, so a re-placement goes elsewhere. */
  excludeProviders?: readonly string[];
};

/** Whether the renter can pay this provider at this price (e.g. the grant covers it); synchronous. */
export type PaymentCheck = (provider: Provider, pricePerGpuHour: Coin) => { ok: true } | { ok: false; reason: string };

export interface MatchOptions {
  /** Default: always ok. */
  payment?: PaymentCheck;
}

export interface Placement {
  provider: string;
  nodeName: string;
  model: string;
  resourceName: string;
  units: number;
  /** The provider's price for the model, a coin string; never above the job's max. */
  pricePerGpuHour: string;
}

/** Why a provider was filtered out, as a stable code (metric label) beside the human message. */
export const UnfitReason = {
  Excluded: 'Excluded',
  NeverHeartbeated: 'NeverHeartbeated',
  HeartbeatStale: 'HeartbeatStale',
  NotReady: 'NotReady',
  Cordoned: 'Cordoned',
  Region: 'Region',
  NoFittingNode: 'NoFittingNode',
  PriceAboveMax: 'PriceAboveMax',
  NoPriceInDenom: 'NoPriceInDenom',
  Payment: 'Payment',
  InvalidJob: 'InvalidJob',
  NoProviders: 'NoProviders',
} as const;
export type UnfitReason = (typeof UnfitReason)[keyof typeof UnfitReason];

/** When nothing fits: the kube-scheduler-style message, and how many providers failed for each code. */
export type MatchResult = { placed: Placement } | { unschedulable: string; codes: Partial<Record<UnfitReason, number>> };

interface Candidate {
  provider: Provider;
  node: GpuNode;
  price: Coin;
  /** Free units left on the node after this job. */
  left: number;
}

type Unfit = { ok: false; reason: string; code: UnfitReason };
type Verdict = { ok: true; candidate: Candidate } | Unfit;

interface Context {
  job: MatchJob;
  max: Coin;
  resource: string;
  now: Date;
  snapshot: MatchSnapshot;
  nodesByProvider: ReadonlyMap<string, readonly GpuNode[]>;
  payment: PaymentCheck;
}

const alwaysOk: PaymentCheck = () => ({ ok: true });

/**
 * Places a job on the best provider that can take it: every provider is filtered (recording the
 * first reason it fails), the survivors are ranked by price, reputation, tightest fit, preferred
 * region, then name. When none survives, the message counts the reasons like the kube-scheduler.
 */
export function matchProviders(snapshot: MatchSnapshot, job: MatchJob, now: Date, options: MatchOptions = {}): MatchResult {
  const ctx = contextOf(snapshot, job, now, options);
  if (typeof ctx === 'string') return { unschedulable: ctx, codes: { InvalidJob: 1 } };
  const n = snapshot.providers.length;
  if (n === 0) return { unschedulable: '0/0 providers are available: no providers registered.', codes: { NoProviders: 1 } };
  const verdicts = snapshot.providers.map((p) => evaluate(ctx, p));
  const candidates = verdicts.flatMap((v) => (v.ok ? [v.candidate] : []));
  const best = candidates.sort((a, b) => compareCandidates(ctx, a, b))[0];
  if (best !== undefined) return { placed: toPlacement(ctx, best) };
  const unfit = verdicts.flatMap((v) => (v.ok ? [] : [v]));
  const codes: Partial<Record<UnfitReason, number>> = {};
  for (const v of unfit) codes[v.code] = (codes[v.code] ?? 0) + 1;
  return { unschedulable: aggregate(n, unfit.map((v) => v.reason)), codes };
}

/** Each provider on its own, as the matcher judges it: the placement it would get, or why not. */
export type ProviderVerdict = { provider: string; fits: true; placement: Placement } | { provider: string; fits: false; reason: string; code: UnfitReason };

/** The verdict for every provider, in the snapshot's order (`gpufed quote` shows them all). */
export function providerVerdicts(snapshot: MatchSnapshot, job: MatchJob, now: Date, options: MatchOptions = {}): ProviderVerdict[] {
  const ctx = contextOf(snapshot, job, now, options);
  return snapshot.providers.map((p): ProviderVerdict => {
    const provider = p.metadata.name ?? '';
    if (typeof ctx === 'string') return { provider, fits: false, reason: ctx, code: UnfitReason.InvalidJob };
    const v = evaluate(ctx, p);
    return v.ok ? { provider, fits: true, placement: toPlacement(ctx, v.candidate) } : { provider, fits: false, reason: v.reason, code: v.code };
  });
}

/** What every provider is judged against, or why the job itself cannot be matched. */
function contextOf(snapshot: MatchSnapshot, job: MatchJob, now: Date, options: MatchOptions): Context | string {
  const max = tryParseCoin(job.maxPricePerGpuHour);
  if (max === undefined) return `invalid maxPricePerGpuHour ${JSON.stringify(job.maxPricePerGpuHour)}`;
  return { job, max, resource: wantedResource(job.resources.gpu), now, snapshot, nodesByProvider: groupNodes(snapshot.gpuNodes), payment: options.payment ?? alwaysOk };
}

function groupNodes(nodes: readonly GpuNode[]): Map<string, GpuNode[]> {
  const byProvider = new Map<string, GpuNode[]>();
  for (const node of nodes) {
    const provider = providerOfNamespace(node.metadata.namespace);
    if (provider === undefined) continue;
    byProvider.set(provider, [...(byProvider.get(provider) ?? []), node]);
  }
  return byProvider;
}

function evaluate(ctx: Context, provider: Provider): Verdict {
  const gate = gateReason(ctx, provider);
  if (gate !== undefined) return gate;
  const fitting = fittingNodes(ctx, provider);
  if (fitting.length === 0) return { ok: false, reason: noNodeReason(ctx.job.resources.gpu), code: UnfitReason.NoFittingNode };
  const priced = fitting.map((f) => ({ ...f, price: priceOf(provider, f.node.spec.product, ctx.max.denom) }));
  const affordable = priced
    .flatMap((c) => (c.price !== undefined && c.price.amount <= ctx.max.amount ? [{ ...c, price: c.price }] : []))
    .sort((a, b) => compareCoins(a.price, b.price) || a.left - b.left || compareText(a.node.spec.nodeName, b.node.spec.nodeName));
  const best = affordable[0];
  if (best === undefined) return priceReason(ctx.max, priced);
  const paid = ctx.payment(provider, best.price);
  if (!paid.ok) return { ok: false, reason: paid.reason, code: UnfitReason.Payment };
  return { ok: true, candidate: { provider, ...best } };
}

/** Why a provider cannot take any job now, before looking at its nodes. */
function gateReason(ctx: Context, provider: Provider): Unfit | undefined {
  const name = provider.metadata.name ?? '';
  if (ctx.job.excludeProviders?.includes(name)) return { ok: false, reason: 'excluded after rejection or loss', code: UnfitReason.Excluded };
  const liveness = livenessReason(ctx, provider);
  if (liveness !== undefined) return liveness;
  if (provider.spec.cordoned === true) return { ok: false, reason: 'cordoned', code: UnfitReason.Cordoned };
  const regions = ctx.job.placement?.regions ?? [];
  if (regions.length > 0 && !regions.includes(provider.spec.region)) return { ok: false, reason: `region ${provider.spec.region} not allowed`, code: UnfitReason.Region };
  return undefined;
}

/** The heartbeat the registry saw first, as it is the fresher fact; then the Ready condition the registry keeps. */
function livenessReason(ctx: Context, provider: Provider): Unfit | undefined {
  if (ctx.snapshot.heartbeats) {
    const heartbeat = ctx.snapshot.heartbeats(provider.metadata.name ?? '');
    if (heartbeat === undefined) return { ok: false, reason: 'never heartbeated', code: UnfitReason.NeverHeartbeated };
    if (ctx.now.getTime() - heartbeat > ctx.snapshot.heartbeatTimeoutMs) {
      return { ok: false, reason: `heartbeat older than ${formatDuration(ctx.snapshot.heartbeatTimeoutMs)}`, code: UnfitReason.HeartbeatStale };
    }
  }
  const notReady = readyReason(provider);
  return notReady && { ok: false, ...notReady };
}

/**
 * Why the registry does not hold the provider Ready, in the matcher's words, or undefined when it
 * does. The registry's own heartbeat reasons keep their codes, so the CLI, which has only the
 * Provider to go by, says what the registry would.
 */
export function readyReason(provider: Provider): { reason: string; code: typeof UnfitReason.NeverHeartbeated | typeof UnfitReason.HeartbeatStale | typeof UnfitReason.NotReady } | undefined {
  const ready = findCondition(provider.status?.conditions, ProviderConditionType.Ready);
  if (ready?.status === 'True') return undefined;
  if (ready?.reason === ProviderReason.NeverHeartbeated) return { reason: 'never heartbeated', code: UnfitReason.NeverHeartbeated };
  if (ready?.reason === ProviderReason.HeartbeatStale) return { reason: 'heartbeat stale', code: UnfitReason.HeartbeatStale };
  return { reason: ready === undefined ? 'not Ready' : `not Ready (${ready.reason})`, code: UnfitReason.NotReady };
}

/** The provider's nodes that fit the job on their own, with the units each would have left. */
function fittingNodes(ctx: Context, provider: Provider): { node: GpuNode; left: number }[] {
  const { gpu } = ctx.job.resources;
  const models = gpu.models ?? [];
  const name = provider.metadata.name ?? '';
  return (ctx.nodesByProvider.get(name) ?? [])
    .filter((node) => models.length === 0 || models.includes(node.spec.product))
    .filter((node) => takesJobs(node.status) && memoryPerUnit(node, ctx.resource) >= (gpu.minMemoryMiB ?? 0))
    .map((node) => ({ node, left: freeUnits(node, ctx.resource) - reserved(ctx.snapshot.reservations, name, node.spec.nodeName, ctx.resource) - gpu.count }))
    .filter((x) => x.left >= 0);
}


function reserved(reservations: readonly Reservation[], provider: string, nodeName: string, resource: string): number {
  return reservations
    .filter((r) => r.provider === provider && r.nodeName === nodeName && r.resourceName === resource)
    .reduce((sum, r) => sum + r.units, 0);
}

/** The provider's price for a model in the job's denom; a price in another denom is no price. */
function priceOf(provider: Provider, model: string, denom: string): Coin | undefined {
  const entry = provider.spec.prices.find((p) => p.model === model);
  const coin = entry === undefined ? undefined : tryParseCoin(entry.pricePerGpuHour);
  return coin?.denom === denom ? coin : undefined;
}

function noNodeReason(gpu: ResourcesGpu): string {
  const models = gpu.models ?? [];
  const what = models.length > 0 ? models.join(' or ') : 'GPU';
  const share = gpu.sharing === 'MIG' ? ` MIG ${gpu.migProfile ?? ''}` : gpu.sharing === 'TimeSliced' ? ' time slice' : '';
  const memory = gpu.minMemoryMiB ? ` of at least ${gpu.minMemoryMiB} MiB` : '';
  return `no node with ${gpu.count} free ${what}${share}${memory}`;
}

function priceReason(max: Coin, priced: readonly { node: GpuNode; price: Coin | undefined }[]): Unfit {
  const cheapest = priced.flatMap((c) => (c.price === undefined ? [] : [c.price])).sort(compareCoins)[0];
  if (cheapest !== undefined) return { ok: false, reason: `price ${formatCoin(cheapest)} above max ${formatCoin(max)}`, code: UnfitReason.PriceAboveMax };
  const models = [...new Set(priced.map((c) => c.node.spec.product))].sort(compareText);
  return { ok: false, reason: `no ${max.denom} price for ${models.join(' or ')}`, code: UnfitReason.NoPriceInDenom };
}

function compareCandidates(ctx: Context, a: Candidate, b: Candidate): number {
  return (
    compareCoins(a.price, b.price) ||
    compareReputation(b.provider, a.provider) ||
    a.left - b.left ||
    regionRank(ctx, a.provider) - regionRank(ctx, b.provider) ||
    compareText(a.provider.metadata.name ?? '', b.provider.metadata.name ?? '') ||
    compareText(a.node.spec.nodeName, b.node.spec.nodeName)
  );
}

/** succeeded / (succeeded + failed + lost) as a fraction; no history counts as 1/2. */
function reputation(provider: Provider): { num: bigint; den: bigint } {
  const r = provider.status?.reputation;
  const succeeded = BigInt(r?.succeeded ?? 0);
  const total = succeeded + BigInt(r?.failed ?? 0) + BigInt(r?.lost ?? 0);
  return total === 0n ? { num: 1n, den: 2n } : { num: succeeded, den: total };
}

/** Negative when a's reputation is lower than b's; exact, by cross-multiplying. */
function compareReputation(a: Provider, b: Provider): number {
  const ra = reputation(a);
  const rb = reputation(b);
  return compareBigints(ra.num * rb.den, rb.num * ra.den);
}

function regionRank(ctx: Context, provider: Provider): number {
  const i = (ctx.job.placement?.preferredRegions ?? []).indexOf(provider.spec.region);
  return i < 0 ? Number.MAX_SAFE_INTEGER : i;
}

function compareCoins(a: Coin, b: Coin): number {
  return compareBigints(a.amount, b.amount);
}

function compareBigints(a: bigint, b: bigint): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

/** By UTF-16 code units, so the order does not depend on the process's locale. */
function compareText(a: string, b: string): number {
  return a < b ? -1 : a > b ? 1 : 0;
}

function toPlacement(ctx: Context, c: Candidate): Placement {
  return {
    provider: c.provider.metadata.name ?? '',
    nodeName: c.node.spec.nodeName,
    model: c.node.spec.product,
    resourceName: ctx.resource,
    units: ctx.job.resources.gpu.count,
    pricePerGpuHour: formatCoin(c.price),
  };
}

/** "0/3 providers are available: 2 cordoned, 1 never heartbeated." — most frequent reason first. */
function aggregate(total: number, reasons: readonly string[]): string {
  const counts = new Map<string, number>();
  for (const r of reasons) counts.set(r, (counts.get(r) ?? 0) + 1);
  const parts = [...counts]
    .sort(([ta, ca], [tb, cb]) => cb - ca || compareText(ta, tb))
    .map(([text, count]) => `${count} ${text}`);
  return `0/${total} providers are available: ${parts.join(', ')}.`;
}

/** 30000 → "30s", 120000 → "2m", 1500 → "1500ms". */
function formatDuration(ms: number): string {
  if (ms > 0 && ms % 60000 === 0) return `${ms / 60000}m`;
  if (ms % 1000 === 0) return `${ms / 1000}s`;
  return `${ms}ms`;
}
