import { describe, expect, it } from '@jest/globals';
import type { Assignment, Condition, GpuNode, GpuNodeSpec, Provider } from '../../../operator/src/api/index.js';
import { comparePrices, marketOffers, offersTable, providerNotReady, type Offer } from './offers.js';
import type { Market } from './quote.js';

const now = new Date('2026-11-21T12:00:00Z');
const RTX4090 = 'NVIDIA-GeForce-RTX-4090';
const RTX3090 = 'NVIDIA-GeForce-RTX-3090';
const RTX3060 = 'NVIDIA-GeForce-RTX-3060';
const A100 = 'NVIDIA-A100-SXM4-80GB';
const fresh = new Date(now.getTime() - 5000).toISOString();
const cond = (type: string, status: 'True' | 'False', reason: string): Condition => ({ type, status, reason, message: '', lastTransitionTime: fresh });

/** A Provider builder: Ready with a fresh heartbeat unless told otherwise. */
function provider(name: string, prices: Record<string, string>, o: { heartbeat?: string; ready?: Condition; cordoned?: boolean; region?: string } = {}): Provider {
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'Provider',
    metadata: { name },
    spec: { wallet: 'cosmos1x', region: o.region ?? 'eu-west', prices: Object.entries(prices).map(([model, pricePerGpuHour]) => ({ model, pricePerGpuHour })), ...(o.cordoned ? { cordoned: true } : {}) },
    status: o.heartbeat === '' ? {} : { lastHeartbeatTime: o.heartbeat ?? fresh, conditions: [o.ready ?? cond('Ready', 'True', 'HeartbeatFresh')] },
  };
}

/** A GpuNode builder: whole GPUs, Ready and Schedulable, all free unless told otherwise. */
function gpuNode(owner: string, nodeName: string, product: string, allocatable: number, o: { free?: number; schedulable?: Condition; sharing?: GpuNodeSpec['sharing']; resourceName?: string; mig?: { profile: string; allocatable: number; free: number }[] } = {}): GpuNode {
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'GpuNode',
    metadata: { name: nodeName, namespace: `gpufed-provider-${owner}` },
    spec: { nodeName, product, memoryMiB: 24564, count: 1, resourceName: o.resourceName ?? 'nvidia.com/gpu', sharing: o.sharing ?? { strategy: 'none', replicas: 1 } },
    status: {
      allocatable,
      free: o.free ?? allocatable,
      conditions: [cond('Ready', 'True', 'NodeReady'), o.schedulable ?? cond('Schedulable', 'True', 'NodeSchedulable')],
      ...(o.mig ? { migProfiles: o.mig } : {}),
    },
  };
}

const row = (offers: readonly Offer[], provider: string, model: string) => offers.find((o) => o.provider === provider && o.model === model);

describe('marketOffers', () => {
  it('lists each provider and priced model, sorted by model then price as bigint, with totals per model', () => {
    const market: Market = {
      providers: [
        provider('bob', { [RTX4090]: '1100000ustake' }, { region: 'us-east' }),
        provider('alice', { [RTX4090]: '1200000ustake', [RTX3090]: '800000ustake' }),
        // 900000 < 1000000 as numbers, but not as strings: the sort must not be textual.
        provider('carl', { [RTX4090]: '900000ustake' }),
      ],
      gpuNodes: [gpuNode('alice', 'alice-desktop', RTX4090, 1), gpuNode('alice', 'alice-tower', RTX3090, 2, { free: 1 }), gpuNode('bob', 'bob-1', RTX4090, 2, { free: 0 }), gpuNode('bob', 'bob-2', RTX4090, 1), gpuNode('carl', 'carl-1', RTX4090, 1, { free: 0 })],
    };
    const m = marketOffers(market);
    expect(m.offers.map((o) => [o.model, o.provider, o.pricePerGpuHour, o.free, o.total, o.nodes, o.ready])).toEqual([
      [RTX3090, 'alice', '800000ustake', 1, 2, 1, true],
      [RTX4090, 'carl', '900000ustake', 0, 1, 1, true],
      [RTX4090, 'bob', '1100000ustake', 1, 3, 2, true],
      [RTX4090, 'alice', '1200000ustake', 1, 1, 1, true],
    ]);
    expect(row(m.offers, 'bob', RTX4090)).toEqual({ model: RTX4090, provider: 'bob', region: 'us-east', pricePerGpuHour: '1100000ustake', total: 3, free: 1, nodes: 2, sharing: [], ready: true });
    // The cheapest price with a free GPU: carl is cheaper but has none free.
    expect(m.totals).toEqual([
      { model: RTX3090, total: 2, free: 1, providers: 1, readyProviders: 1, cheapestFree: '800000ustake' },
      { model: RTX4090, total: 5, free: 2, providers: 3, readyProviders: 3, cheapestFree: '1100000ustake' },
    ]);
  });

  it.each([
    ['not judged by the registry yet', provider('zed', { [RTX4090]: '1ustake' }, { heartbeat: '' }), { code: 'NotReady', reason: 'not Ready' }],
    ['never heartbeated, as the registry says', provider('zed', { [RTX4090]: '1ustake' }, { ready: cond('Ready', 'False', 'NeverHeartbeated') }), { code: 'NeverHeartbeated', reason: 'never heartbeated' }],
    ['a stale heartbeat, as the registry says', provider('zed', { [RTX4090]: '1ustake' }, { ready: cond('Ready', 'False', 'HeartbeatStale') }), { code: 'HeartbeatStale', reason: 'heartbeat stale' }],
    ["the registry's Ready False", provider('zed', { [RTX4090]: '1ustake' }, { ready: cond('Ready', 'False', 'NoPricedGpus') }), { code: 'NotReady', reason: 'not Ready (NoPricedGpus)' }],
    ['cordoned', provider('zed', { [RTX4090]: '1ustake' }, { cordoned: true }), { code: 'Cordoned', reason: 'cordoned' }],
  ])('shows a provider that is not Ready (%s) with why, counting its GPUs but none as free', (_what, p, notReady) => {
    const m = marketOffers({ providers: [p], gpuNodes: [gpuNode('zed', 'zed-1', RTX4090, 4)] });
    expect(m.offers).toEqual([{ model: RTX4090, provider: 'zed', region: 'eu-west', pricePerGpuHour: '1ustake', total: 4, free: 0, nodes: 1, sharing: [], ready: false, notReady }]);
    expect(m.totals).toEqual([{ model: RTX4090, total: 4, free: 0, providers: 1, readyProviders: 0 }]);
  });

  it("takes the registry's Ready as the judge of liveness, not the heartbeat time it recorded", () => {
    // The registry records the heartbeat it sees only every 30 s; a Provider it holds Ready is Ready.
    const p = provider('alice', { [RTX4090]: '1ustake' }, { heartbeat: new Date(now.getTime() - 45_000).toISOString() });
    expect(providerNotReady(p)).toBeUndefined();
    expect(providerNotReady(provider('alice', { [RTX4090]: '1ustake' }, { heartbeat: '2099-01-01T00:00:00Z', ready: cond('Ready', 'False', 'HeartbeatStale') }))?.code).toBe('HeartbeatStale');
  });

  it("does not count the free GPUs of a node that takes no jobs (reclaimed by its owner, cordoned, not Ready)", () => {
    const market: Market = {
      providers: [provider('alice', { [RTX3090]: '800000ustake' })],
      gpuNodes: [gpuNode('alice', 'alice-tower', RTX3090, 2), gpuNode('alice', 'alice-gaming', RTX3090, 1, { schedulable: cond('Schedulable', 'False', 'NodeReclaimed') })],
    };
    expect(marketOffers(market).offers[0]).toMatchObject({ total: 3, free: 2, nodes: 2, ready: true });
  });

  it('counts shares on time-sliced and MIG nodes (the price is per share) and says how they are shared', () => {
    const market: Market = {
      providers: [provider('bob', { [RTX3060]: '150000ustake', [A100]: '500000ustake' })],
      gpuNodes: [
        gpuNode('bob', 'bob-shared', RTX3060, 4, { free: 3, resourceName: 'nvidia.com/gpu.shared', sharing: { strategy: 'time-slicing', replicas: 4 } }),
        gpuNode('bob', 'bob-a100', A100, 7, {
          resourceName: 'nvidia.com/mig-1g.10gb',
          sharing: { strategy: 'mig', replicas: 1, migProfiles: [{ profile: '1g.10gb', count: 3 }, { profile: '2g.20gb', count: 2 }] },
          mig: [{ profile: '1g.10gb', allocatable: 3, free: 1 }, { profile: '2g.20gb', allocatable: 2, free: 2 }],
        }),
      ],
    };
    const m = marketOffers(market);
    expect(row(m.offers, 'bob', RTX3060)).toMatchObject({ total: 4, free: 3, sharing: ['time-slicing ×4'] });
    expect(row(m.offers, 'bob', A100)).toMatchObject({ total: 5, free: 3, sharing: ['mig 1g.10gb+2g.20gb'] });
  });

  it('shows a priced model with no GPUs as 0 of 0, and leaves out GPUs without a price (not rented out)', () => {
    const market: Market = { providers: [provider('alice', { [RTX3090]: '800000ustake' })], gpuNodes: [gpuNode('alice', 'alice-desktop', RTX4090, 1)] };
    const m = marketOffers(market);
    expect(m.offers.map((o) => [o.model, o.free, o.total, o.nodes])).toEqual([[RTX3090, 0, 0, 0]]);
    expect(m.totals).toEqual([{ model: RTX3090, total: 0, free: 0, providers: 1, readyProviders: 1 }]);
  });

  it('keeps one model with --model, in any case', () => {
    const market: Market = { providers: [provider('alice', { [RTX4090]: '1200000ustake', [RTX3090]: '800000ustake' })], gpuNodes: [gpuNode('alice', 'alice-desktop', RTX4090, 1)] };
    expect(marketOffers(market, { model: 'nvidia-geforce-rtx-4090' }).offers.map((o) => o.model)).toEqual([RTX4090]);
    expect(marketOffers(market, { model: 'NVIDIA-H100' })).toMatchObject({ offers: [], totals: [] });
  });

  it('subtracts GPUs promised to Assignments when it may read them, and says so when it may not', () => {
    const promised: Assignment = {
      apiVersion: 'gpufed.io/v1alpha1',
      kind: 'Assignment',
      metadata: { name: 'other-1', namespace: 'gpufed-provider-alice' },
      spec: { jobRef: { namespace: 'dave', name: 'other', uid: 'u' }, epoch: 1, image: 'x', resources: { gpu: { count: 1 } }, model: RTX3090, pricePerGpuHour: '800000ustake', maxDurationSeconds: 60, payer: 'cosmos1y', nodeName: 'alice-tower' },
    };
    const market = (assignments?: Assignment[]): Market => ({ providers: [provider('alice', { [RTX3090]: '800000ustake' })], gpuNodes: [gpuNode('alice', 'alice-tower', RTX3090, 2)], ...(assignments ? { assignments } : {}) });
    expect(marketOffers(market([promised]))).toMatchObject({ offers: [{ free: 1, total: 2 }], reservationsCounted: true, notes: [] });
    const blind = marketOffers(market());
    expect(blind).toMatchObject({ offers: [{ free: 2, total: 2 }], reservationsCounted: false });
    expect(blind.notes[0]).toMatch(/may not read Assignments/);
  });
});

describe('comparePrices', () => {
  it.each([
    ['900ustake', '1000ustake', -1],
    ['1000ustake', '1000ustake', 0],
    ['123456789012345678902ustake', '123456789012345678901ustake', 1], // beyond 2^53
    ['1000uatom', '1ustake', -1], // another denom: by denom, as amounts do not compare
    ['not-a-coin', '1ustake', 1],
  ])('%s against %s: %i', (a, b, sign) => {
    expect(Math.sign(comparePrices(a, b))).toBe(sign);
  });
});

describe('offersTable', () => {
  it('shows one row per offer, with why a provider is not Ready, then one row per model', () => {
    const market: Market = {
      providers: [provider('alice', { [RTX4090]: '1200000ustake' }), provider('zed', { [RTX4090]: '1000000ustake' }, { ready: cond('Ready', 'False', 'NeverHeartbeated') })],
      gpuNodes: [gpuNode('alice', 'alice-desktop', RTX4090, 1), gpuNode('zed', 'zed-1', RTX4090, 2)],
    };
    const lines = offersTable(marketOffers(market)).split('\n');
    expect(lines[0]).toMatch(/^MODEL\s+PROVIDER\s+REGION\s+PRICE\/GPU-HOUR\s+FREE\s+TOTAL\s+SHARING\s+READY$/);
    expect(lines[1]).toMatch(/^NVIDIA-GeForce-RTX-4090\s+zed\s+eu-west\s+1000000ustake\s+0\s+2\s+-\s+no: never heartbeated$/);
    expect(lines[2]).toMatch(/^NVIDIA-GeForce-RTX-4090\s+alice\s+eu-west\s+1200000ustake\s+1\s+1\s+-\s+yes$/);
    expect(lines[3]).toBe('');
    expect(lines[4]).toMatch(/^MODEL\s+FREE\s+TOTAL\s+READY PROVIDERS\s+FROM$/);
    expect(lines[5]).toMatch(/^NVIDIA-GeForce-RTX-4090\s+1\s+3\s+1\/2\s+1200000ustake$/);
    expect(lines[6]).toMatch(/may not read Assignments/);
  });
});
