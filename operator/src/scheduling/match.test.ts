import type { Condition, GpuNode, Provider, ResourcesGpu } from '../api/index.js';
import type { Coin } from '../api/coin.js';
import { matchProviders, providerVerdicts, type MatchJob, type MatchResult, type Reservation } from './match.js';

const now = new Date('2026-11-21T12:00:00Z');
const RTX4090 = 'NVIDIA-GeForce-RTX-4090';
const RTX3090 = 'NVIDIA-GeForce-RTX-3090';
const RTX3060 = 'NVIDIA-GeForce-RTX-3060';
const A100 = 'NVIDIA-A100-SXM4-80GB';
const secondsAgo = (s: number) => new Date(now.getTime() - s * 1000);

function condition(type: string, status: 'True' | 'False', reason: string): Condition {
  return { type, status, reason, message: '', lastTransitionTime: '2026-11-21T00:00:00Z' };
}

class ProviderBuilder {
  readonly p: Provider;
  /** When the registry saw its heartbeat (the snapshot's `heartbeats`), if ever. */
  seenAt?: number;
  constructor(name: string) {
    this.p = { apiVersion: 'gpufed.io/v1alpha1', kind: 'Provider', metadata: { name }, spec: { wallet: 'cosmos1x', region: 'eu-west', prices: [] }, status: {} };
  }
  price(model: string, pricePerGpuHour: string): this {
    // A list-map on model, as in the CRD: a second price for a model replaces the first.
    this.p.spec.prices = [...this.p.spec.prices.filter((x) => x.model !== model), { model, pricePerGpuHour }];
    return this;
  }
  ready(heartbeat: Date): this {
    this.seenAt = heartbeat.getTime();
    this.p.status = { ...this.p.status, lastHeartbeatTime: heartbeat.toISOString(), conditions: [condition('Ready', 'True', 'HeartbeatFresh')] };
    return this;
  }
  notReady(reason: string): this {
    this.p.status = { ...this.p.status, conditions: [condition('Ready', 'False', reason)] };
    return this;
  }
  region(region: string): this {
    this.p.spec.region = region;
    return this;
  }
  cordoned(): this {
    this.p.spec.cordoned = true;
    return this;
  }
  reputation(succeeded: number, failed: number, lost = 0): this {
    this.p.status = { ...this.p.status, reputation: { succeeded, failed, lost } };
    return this;
  }
}
const provider = (name: string) => new ProviderBuilder(name);
/** A Ready provider with a fresh heartbeat, pricing the RTX 4090 at 1.2 stake. */
const alice = (name = 'alice') => provider(name).price(RTX4090, '1200000ustake').ready(secondsAgo(5));

const okConditions = [condition('Ready', 'True', 'NodeReady'), condition('Schedulable', 'True', 'NodeSchedulable')];

class GpuNodeBuilder {
  readonly n: GpuNode;
  constructor(providerName: string, nodeName: string) {
    this.n = {
      apiVersion: 'gpufed.io/v1alpha1',
      kind: 'GpuNode',
      metadata: { name: nodeName, namespace: `gpufed-provider-${providerName}` },
      spec: { nodeName, product: RTX4090, memoryMiB: 24564, count: 1, resourceName: 'nvidia.com/gpu', sharing: { strategy: 'none', replicas: 1 } },
      status: { allocatable: 1, free: 1, conditions: okConditions },
    };
  }
  gpus(model: string, count: number, opts: { free?: number; memoryMiB?: number } = {}): this {
    Object.assign(this.n.spec, { product: model, count, memoryMiB: opts.memoryMiB ?? 24564 });
    this.n.status = { ...this.n.status, allocatable: count, free: opts.free ?? count };
    return this;
  }
  timeSliced(model: string, replicas: number, free: number): this {
    this.n.spec = { ...this.n.spec, product: model, count: 1, resourceName: 'nvidia.com/gpu.shared', sharing: { strategy: 'time-slicing', replicas } };
    this.n.status = { ...this.n.status, allocatable: replicas, free };
    return this;
  }
  mig(profile: string, count: number, memoryMiB: number, free: number): this {
    this.n.spec = { ...this.n.spec, product: A100, memoryMiB: 81920, resourceName: `nvidia.com/mig-${profile}`, sharing: { strategy: 'mig', replicas: 1, migProfiles: [{ profile, count, memoryMiB }] } };
    this.n.status = { ...this.n.status, allocatable: count, free, migProfiles: [{ profile, allocatable: count, free }] };
    return this;
  }
  unschedulable(): this {
    this.n.status = { ...this.n.status, conditions: [okConditions[0]!, condition('Schedulable', 'False', 'NodeCordoned')] };
    return this;
  }
}
const gpuNode = (providerName: string, nodeName: string) => new GpuNodeBuilder(providerName, nodeName);

function job(gpu: Partial<ResourcesGpu> = {}, maxPricePerGpuHour = '1500000ustake', extra: Partial<MatchJob> = {}): MatchJob {
  return { resources: { gpu: { count: 1, models: [RTX4090], ...gpu } }, maxPricePerGpuHour, ...extra };
}

function match(providers: ProviderBuilder[], nodes: GpuNodeBuilder[], j: MatchJob, reservations: Reservation[] = [], payment?: (p: Provider, price: Coin) => { ok: true } | { ok: false; reason: string }): MatchResult {
  const seen = new Map(providers.map((p) => [p.p.metadata.name ?? '', p.seenAt]));
  return matchProviders({ providers: providers.map((p) => p.p), gpuNodes: nodes.map((n) => n.n), reservations, heartbeatTimeoutMs: 30000, heartbeats: (name) => seen.get(name) }, j, now, { payment });
}

const placedOn = (r: MatchResult) => ('placed' in r ? `${r.placed.provider}/${r.placed.nodeName}` : r.unschedulable);

describe('matchProviders', () => {
  it('places a job on the one fitting provider at its price', () => {
    expect(match([alice()], [gpuNode('alice', 'alice-desktop').gpus(RTX4090, 1)], job())).toEqual({
      placed: { provider: 'alice', nodeName: 'alice-desktop', model: RTX4090, resourceName: 'nvidia.com/gpu', units: 1, pricePerGpuHour: '1200000ustake' },
    });
  });

  it('says so when no provider is registered', () => {
    expect(match([], [], job())).toMatchObject({ unschedulable: '0/0 providers are available: no providers registered.' });
  });

  it('refuses an invalid max price instead of guessing', () => {
    expect(match([alice()], [gpuNode('alice', 'n').gpus(RTX4090, 1)], job({}, '1.5stake'))).toMatchObject({ unschedulable: 'invalid maxPricePerGpuHour "1.5stake"' });
  });

  describe('filters, recording the first reason a provider fails', () => {
    const node = () => gpuNode('p', 'p-node').gpus(RTX4090, 2);
    it.each<[string, ProviderBuilder, GpuNodeBuilder[], MatchJob, string]>([
      ['excluded', alice('p'), [node()], job({}, undefined, { excludeProviders: ['p'] }), 'excluded after rejection or loss'],
      ['excluded before anything else', provider('p').cordoned(), [node()], job({}, undefined, { excludeProviders: ['p'] }), 'excluded after rejection or loss'],
      ['never heartbeated', provider('p').price(RTX4090, '1ustake'), [node()], job(), 'never heartbeated'],
      ['stale heartbeat', alice('p').ready(secondsAgo(31)), [node()], job(), 'heartbeat older than 30s'],
      ['not Ready', alice('p').notReady('NoPricedGpus'), [node()], job(), 'not Ready (NoPricedGpus)'],
      ['cordoned', alice('p').cordoned(), [node()], job(), 'cordoned'],
      ['region', alice('p').region('us-east'), [node()], job({}, undefined, { placement: { regions: ['eu-west', 'eu-central'] } }), 'region us-east not allowed'],
      ['no node at all', alice('p'), [], job(), `no node with 1 free ${RTX4090}`],
      ['nodes of another provider only', alice('p'), [gpuNode('q', 'q-node').gpus(RTX4090, 8)], job(), `no node with 1 free ${RTX4090}`],
      ['too few free', alice('p'), [gpuNode('p', 'a').gpus(RTX4090, 4, { free: 1 })], job({ count: 2 }), `no node with 2 free ${RTX4090}`],
      ['GPUs split over nodes', alice('p'), [gpuNode('p', 'a').gpus(RTX4090, 1), gpuNode('p', 'b').gpus(RTX4090, 1)], job({ count: 2 }), `no node with 2 free ${RTX4090}`],
      ['other model', alice('p'), [gpuNode('p', 'a').gpus(RTX3090, 8)], job(), `no node with 1 free ${RTX4090}`],
      ['two models asked', alice('p'), [gpuNode('p', 'a').gpus(RTX3060, 8)], job({ models: [RTX4090, RTX3090] }), `no node with 1 free ${RTX4090} or ${RTX3090}`],
      ['too little memory', alice('p'), [node()], job({ models: [], minMemoryMiB: 49152 }), 'no node with 1 free GPU of at least 49152 MiB'],
      ['node not schedulable', alice('p'), [node().unschedulable()], job(), `no node with 1 free ${RTX4090}`],
      ['price above max', alice('p').price(RTX4090, '2000000ustake'), [node()], job(), 'price 2000000ustake above max 1500000ustake'],
      ['unpriced model', provider('p').price(RTX3090, '1ustake').ready(now), [node()], job(), `no ustake price for ${RTX4090}`],
      ['price in another denom', provider('p').price(RTX4090, '1uatom').ready(now), [node()], job(), `no ustake price for ${RTX4090}`],
      ['invalid price', provider('p').price(RTX4090, '01ustake').ready(now), [node()], job(), `no ustake price for ${RTX4090}`],
    ])('%s', (_name, p, nodes, j, reason) => {
      expect(match([p], nodes, j)).toMatchObject({ unschedulable: `0/1 providers are available: 1 ${reason}.` });
    });

    it('takes a heartbeat seen exactly at the timeout as fresh', () => {
      expect(placedOn(match([alice('p').ready(secondsAgo(30))], [node()], job()))).toBe('p/p-node');
    });

    it("judges liveness by the registry's Ready condition alone without its heartbeat sightings (the CLI's view)", () => {
      const snapshot = (p: ProviderBuilder) => ({ providers: [p.p], gpuNodes: [node().n], reservations: [], heartbeatTimeoutMs: 30000 });
      // The recorded heartbeat is old, but the registry says Ready: the registry's word stands.
      expect(placedOn(matchProviders(snapshot(alice('p').ready(secondsAgo(3600))), job(), now))).toBe('p/p-node');
      expect(matchProviders(snapshot(alice('p').notReady('HeartbeatStale')), job(), now)).toMatchObject({ unschedulable: '0/1 providers are available: 1 heartbeat stale.', codes: { HeartbeatStale: 1 } });
    });

    it('lets the payment hook refuse a provider with its own reason, given the price it would charge', () => {
      const seen: string[] = [];
      const r = match([alice('p')], [node()], job(), [], (p, price) => {
        seen.push(`${p.metadata.name}@${price.amount}${price.denom}`);
        return { ok: false, reason: 'grant 1000ustake below one hour' };
      });
      expect(r).toMatchObject({ unschedulable: '0/1 providers are available: 1 grant 1000ustake below one hour.' });
      expect(seen).toEqual(['p@1200000ustake']);
    });
  });

  it('aggregates reasons like the kube-scheduler: by count, then text', () => {
    const providers = [
      alice('a'),
      alice('b').price(RTX4090, '2000000ustake'),
      alice('c').ready(secondsAgo(60)),
      alice('d').cordoned(),
      alice('e').cordoned(),
    ];
    const r = match(providers, [gpuNode('b', 'b1').gpus(RTX4090, 2)], job({ count: 2 }));
    expect(r).toMatchObject({
      unschedulable: `0/5 providers are available: 2 cordoned, 1 heartbeat older than 30s, 1 no node with 2 free ${RTX4090}, 1 price 2000000ustake above max 1500000ustake.`,
    });
  });

  it('counts the reasons by stable code too, for the unschedulable metric', () => {
    const providers = [alice('a'), alice('b').price(RTX4090, '2000000ustake'), alice('c').ready(secondsAgo(60)), alice('d').cordoned(), alice('e').cordoned(), provider('f').price(RTX4090, '1ustake')];
    const r = match(providers, [gpuNode('b', 'b1').gpus(RTX4090, 2)], job({ count: 2 }));
    expect('codes' in r && r.codes).toEqual({ Cordoned: 2, HeartbeatStale: 1, NeverHeartbeated: 1, NoFittingNode: 1, PriceAboveMax: 1 });
  });

  it('reproduces the message of the issue', () => {
    const r = match([alice('a'), alice('b').price(RTX4090, '2000000ustake'), alice('c').ready(secondsAgo(31))], [gpuNode('b', 'b1').gpus(RTX4090, 2)], job({ count: 2 }));
    expect(r).toMatchObject({ unschedulable: `0/3 providers are available: 1 heartbeat older than 30s, 1 no node with 2 free ${RTX4090}, 1 price 2000000ustake above max 1500000ustake.` });
  });

  describe('scores the survivors', () => {
    it('by lowest price first', () => {
      const r = match([alice('a').reputation(10, 0), alice('b').price(RTX4090, '1100000ustake')], [gpuNode('a', 'a1').gpus(RTX4090, 1), gpuNode('b', 'b1').gpus(RTX4090, 8)], job());
      expect(placedOn(r)).toBe('b/b1');
    });

    it('then by reputation, no history counting as one half', () => {
      const nodes = [gpuNode('a', 'a1').gpus(RTX4090, 1), gpuNode('b', 'b1').gpus(RTX4090, 1)];
      expect(placedOn(match([alice('a').reputation(1, 1), alice('b').reputation(2, 1)], nodes, job()))).toBe('b/b1');
      expect(placedOn(match([alice('a').reputation(1, 2), alice('b')], nodes, job()))).toBe('b/b1');
      expect(placedOn(match([alice('a').reputation(3, 2), alice('b')], nodes, job()))).toBe('a/a1');
      expect(placedOn(match([alice('a').reputation(9, 0, 1), alice('b').reputation(10, 0)], nodes, job()))).toBe('b/b1');
    });

    it('then by tightest fit', () => {
      const r = match([alice('a'), alice('b')], [gpuNode('a', 'a1').gpus(RTX4090, 4), gpuNode('b', 'b1').gpus(RTX4090, 2)], job({ count: 2 }));
      expect(placedOn(r)).toBe('b/b1');
    });

    it('then by preferred region, earlier first', () => {
      const providers = [alice('a').region('eu-central'), alice('b').region('us-east'), alice('c').region('eu-west')];
      const nodes = [gpuNode('a', 'a1').gpus(RTX4090, 1), gpuNode('b', 'b1').gpus(RTX4090, 1), gpuNode('c', 'c1').gpus(RTX4090, 1)];
      expect(placedOn(match(providers, nodes, job({}, undefined, { placement: { preferredRegions: ['eu-west', 'eu-central'] } })))).toBe('c/c1');
      expect(placedOn(match(providers, nodes, job({}, undefined, { placement: { preferredRegions: ['eu-central', 'eu-west'] } })))).toBe('a/a1');
    });

    it('then by provider name, whatever the input order', () => {
      const nodes = [gpuNode('b', 'b1').gpus(RTX4090, 1), gpuNode('a', 'a1').gpus(RTX4090, 1)];
      expect(placedOn(match([alice('b'), alice('a')], nodes, job()))).toBe('a/a1');
    });

    it('within a provider: cheapest model, then tightest node, then node name', () => {
      const p = () => alice('a').price(RTX3090, '800000ustake');
      const anyModel = job({ models: [] });
      expect(placedOn(match([p()], [gpuNode('a', 'big').gpus(RTX4090, 1), gpuNode('a', 'old').gpus(RTX3090, 4)], anyModel))).toBe('a/old');
      expect(placedOn(match([p()], [gpuNode('a', 'x').gpus(RTX3090, 4), gpuNode('a', 'y').gpus(RTX3090, 2)], anyModel))).toBe('a/y');
      expect(placedOn(match([p()], [gpuNode('a', 'y').gpus(RTX3090, 2), gpuNode('a', 'x').gpus(RTX3090, 2)], anyModel))).toBe('a/x');
    });

    it('skips a node whose model is priced above the max for a cheaper one of the same provider', () => {
      const p = alice('a').price(RTX3090, '9000000ustake');
      const r = match([p], [gpuNode('a', 'a3090').gpus(RTX3090, 1), gpuNode('a', 'a4090').gpus(RTX4090, 1)], job({ models: [] }));
      expect(r).toMatchObject({ placed: { nodeName: 'a4090', model: RTX4090, pricePerGpuHour: '1200000ustake' } });
    });
  });

  it('places MIG jobs on a profile with enough free devices and memory', () => {
    const p = provider('lab').price(A100, '400000ustake').ready(now);
    const mig = (free: number) => [gpuNode('lab', 'a100').mig('1g.10gb', 7, 9728, free)];
    const migJob = (count: number, minMemoryMiB?: number) => job({ models: [A100], count, sharing: 'MIG', migProfile: '1g.10gb', ...(minMemoryMiB ? { minMemoryMiB } : {}) });
    expect(match([p], mig(3), migJob(3))).toEqual({ placed: { provider: 'lab', nodeName: 'a100', model: A100, resourceName: 'nvidia.com/mig-1g.10gb', units: 3, pricePerGpuHour: '400000ustake' } });
    expect(match([p], mig(3), migJob(4))).toMatchObject({ unschedulable: `0/1 providers are available: 1 no node with 4 free ${A100} MIG 1g.10gb.` });
    expect(match([p], mig(3), migJob(1, 20000))).toMatchObject({ unschedulable: `0/1 providers are available: 1 no node with 1 free ${A100} MIG 1g.10gb of at least 20000 MiB.` });
    expect(placedOn(match([p], mig(3), job({ models: [A100] })))).toMatch(/no node with 1 free/);
  });

  it('places time-sliced jobs only on nodes that share GPUs, and exclusive jobs never there', () => {
    const p = provider('p').price(RTX3060, '100000ustake').ready(now);
    const shared = [gpuNode('p', 's').timeSliced(RTX3060, 4, 2)];
    expect(match([p], shared, job({ models: [RTX3060], sharing: 'TimeSliced' }))).toMatchObject({ placed: { nodeName: 's', resourceName: 'nvidia.com/gpu.shared', units: 1 } });
    expect(match([p], shared, job({ models: [RTX3060] }))).toMatchObject({ unschedulable: `0/1 providers are available: 1 no node with 1 free ${RTX3060}.` });
    expect(match([p], [gpuNode('p', 'w').gpus(RTX3060, 1)], job({ models: [RTX3060], sharing: 'TimeSliced' }))).toMatchObject({
      unschedulable: `0/1 providers are available: 1 no node with 1 free ${RTX3060} time slice.`,
    });
  });

  it('does not over-commit in a burst: a reservation takes the one free GPU from the next job', () => {
    const providers = [alice()];
    const nodes = [gpuNode('alice', 'alice-desktop').gpus(RTX4090, 1)];
    const first = match(providers, nodes, job());
    if (!('placed' in first)) throw new Error(first.unschedulable);
    const reservation: Reservation = { ...first.placed, assignment: 'train-1' };
    expect(match(providers, nodes, job(), [reservation])).toMatchObject({ unschedulable: `0/1 providers are available: 1 no node with 1 free ${RTX4090}.` });
  });

  it('counts reservations only on their own provider, node and resource', () => {
    const nodes = [gpuNode('alice', 'n').gpus(RTX4090, 2)];
    const r = (over: Partial<Reservation>): Reservation => ({ provider: 'alice', nodeName: 'n', resourceName: 'nvidia.com/gpu', units: 1, assignment: 'x', ...over });
    const others = [r({ provider: 'bob' }), r({ nodeName: 'm' }), r({ resourceName: 'nvidia.com/gpu.shared' })];
    expect(placedOn(match([alice()], nodes, job({ count: 2 }), others))).toBe('alice/n');
    expect(placedOn(match([alice()], nodes, job({ count: 2 }), [...others, r({})]))).toMatch(/no node with 2 free/);
    expect(placedOn(match([alice()], nodes, job({ count: 1 }), [r({})]))).toBe('alice/n');
  });

  it('re-places elsewhere when the best provider is excluded', () => {
    const nodes = [gpuNode('a', 'a1').gpus(RTX4090, 1), gpuNode('b', 'b1').gpus(RTX4090, 1)];
    const providers = [alice('a'), alice('b').price(RTX4090, '1400000ustake')];
    expect(placedOn(match(providers, nodes, job()))).toBe('a/a1');
    expect(placedOn(match(providers, nodes, job({}, undefined, { excludeProviders: ['a'] })))).toBe('b/b1');
  });

  it('compares prices beyond 2^53 exactly', () => {
    const max = '9007199254740993ustake'; // 2^53 + 1: a number would round it to 2^53
    const nodes = [gpuNode('a', 'a1').gpus(RTX4090, 1), gpuNode('b', 'b1').gpus(RTX4090, 1)];
    const providers = [alice('a').price(RTX4090, '9007199254740993ustake'), alice('b').price(RTX4090, '9007199254740992ustake')];
    expect(match(providers, nodes, job({}, max))).toMatchObject({ placed: { provider: 'b', pricePerGpuHour: '9007199254740992ustake' } });
    expect(match([providers[0]!], [nodes[0]!], job({}, '9007199254740992ustake'))).toMatchObject({
      unschedulable: '0/1 providers are available: 1 price 9007199254740993ustake above max 9007199254740992ustake.',
    });
  });

  it('charges the provider price, never more than the max', () => {
    const prices = ['1ustake', '1499999ustake', '1500000ustake', '1500001ustake', '99999999999999999999ustake'];
    for (const price of prices) {
      const r = match([provider('p').price(RTX4090, price).ready(now)], [gpuNode('p', 'n').gpus(RTX4090, 1)], job());
      if ('placed' in r) {
        expect(r.placed.pricePerGpuHour).toBe(price);
        expect(BigInt(r.placed.pricePerGpuHour.replace('ustake', ''))).toBeLessThanOrEqual(1500000n);
      } else {
        expect(BigInt(price.replace('ustake', ''))).toBeGreaterThan(1500000n);
      }
    }
  });
});

describe('providerVerdicts', () => {
  const snapshot = (providers: ProviderBuilder[], nodes: GpuNodeBuilder[]) => ({ providers: providers.map((p) => p.p), gpuNodes: nodes.map((n) => n.n), reservations: [], heartbeatTimeoutMs: 30000 });

  it("judges every provider on its own, with the matcher's placement or its reason and code", () => {
    const s = snapshot([alice('a'), alice('b').price(RTX4090, '2000000ustake'), alice('c').cordoned()], [gpuNode('a', 'a1').gpus(RTX4090, 1), gpuNode('b', 'b1').gpus(RTX4090, 1)]);
    expect(providerVerdicts(s, job(), now)).toEqual([
      { provider: 'a', fits: true, placement: { provider: 'a', nodeName: 'a1', model: RTX4090, resourceName: 'nvidia.com/gpu', units: 1, pricePerGpuHour: '1200000ustake' } },
      { provider: 'b', fits: false, reason: 'price 2000000ustake above max 1500000ustake', code: 'PriceAboveMax' },
      { provider: 'c', fits: false, reason: 'cordoned', code: 'Cordoned' },
    ]);
  });

  it('gives every provider the reason an invalid job cannot be matched', () => {
    expect(providerVerdicts(snapshot([alice('a')], []), job({}, '1.5stake'), now)).toEqual([{ provider: 'a', fits: false, reason: 'invalid maxPricePerGpuHour "1.5stake"', code: 'InvalidJob' }]);
  });
});
