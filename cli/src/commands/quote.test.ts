import { describe, expect, it } from '@jest/globals';
import type { Assignment, ComputeJob, GpuNode, Provider } from '../../../operator/src/api/index.js';
import { parseCoin } from '../../../operator/src/api/coin.js';
import { maxCost, quoteJob, quoteTable, type Market } from './quote.js';

const now = new Date('2026-11-21T12:00:00Z');
const RTX4090 = 'NVIDIA-GeForce-RTX-4090';
const A6000 = 'NVIDIA-RTX-A6000';
const fresh = new Date(now.getTime() - 5000).toISOString();
const ready = [{ type: 'Ready', status: 'True' as const, reason: 'HeartbeatFresh', message: '', lastTransitionTime: fresh }];

const neverSeen = [{ type: 'Ready', status: 'False' as const, reason: 'NeverHeartbeated', message: '', lastTransitionTime: fresh }];
const stale = [{ type: 'Ready', status: 'False' as const, reason: 'HeartbeatStale', message: '', lastTransitionTime: fresh }];

function provider(name: string, prices: Record<string, string>, o: { heartbeat?: string; stale?: boolean; cordoned?: boolean; region?: string } = {}): Provider {
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'Provider',
    metadata: { name },
    spec: { wallet: 'cosmos1x', region: o.region ?? 'home', prices: Object.entries(prices).map(([model, pricePerGpuHour]) => ({ model, pricePerGpuHour })), ...(o.cordoned ? { cordoned: true } : {}) },
    // As the registry writes it: never seen → Ready False NeverHeartbeated.
    status: o.heartbeat === '' ? { conditions: neverSeen } : { lastHeartbeatTime: o.heartbeat ?? fresh, conditions: o.stale ? stale : ready },
  };
}

function gpuNode(providerName: string, nodeName: string, product: string, count: number, free = count): GpuNode {
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'GpuNode',
    metadata: { name: nodeName, namespace: `gpufed-provider-${providerName}` },
    spec: { nodeName, product, memoryMiB: 24564, count, resourceName: 'nvidia.com/gpu', sharing: { strategy: 'none', replicas: 1 } },
    status: { allocatable: count, free, conditions: [{ type: 'Ready', status: 'True', reason: 'NodeReady', message: '', lastTransitionTime: fresh }, { type: 'Schedulable', status: 'True', reason: 'NodeSchedulable', message: '', lastTransitionTime: fresh }] },
  };
}

function job(o: { models?: string[]; count?: number; max?: string; seconds?: number } = {}): ComputeJob {
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'ComputeJob',
    metadata: { name: 'train' },
    spec: { image: 'python:3.13', resources: { gpu: { count: o.count ?? 1, models: o.models ?? [RTX4090, A6000] } }, maxPricePerGpuHour: o.max ?? '1500000ustake', maxDurationSeconds: o.seconds ?? 7200 },
  };
}

/** alice: one 4090 at 1.2; bob: four A6000 at 1.4; erin: cordoned; zed: never heartbeated. */
const market = (assignments?: Assignment[]): Market => ({
  providers: [provider('bob', { [A6000]: '1400000ustake' }), provider('alice', { [RTX4090]: '1200000ustake' }), provider('erin', { [RTX4090]: '1000000ustake' }, { cordoned: true }), provider('zed', { [RTX4090]: '1000000ustake' }, { heartbeat: '' })],
  gpuNodes: [gpuNode('alice', 'alice-desktop', RTX4090, 1), gpuNode('bob', 'bob-ws', A6000, 4), gpuNode('erin', 'erin-1', RTX4090, 1), gpuNode('zed', 'zed-1', RTX4090, 1)],
  ...(assignments ? { assignments } : {}),
});

describe('maxCost', () => {
  it.each([
    ['1400000ustake', 1, 7200, '2800000ustake'],
    ['1200000ustake', 2, 3600, '2400000ustake'],
    ['1000000ustake', 1, 1, '277ustake'], // 277.77…, floored
    ['7ustake', 3, 1, '0ustake'],
    // Far past 2^53: a JS number would have lost the last digits.
    ['123456789012345678901ustake', 64, 2592000, '5688888837688888883758080ustake'],
    ['123456789012345678901ustake', 3, 7, '720164602572016460ustake'], // as a JS number: 720164602572016500
  ])('%s × %i GPUs × %is / 3600 = %s, floored, in bigint', (price, gpus, seconds, want) => {
    const c = maxCost(parseCoin(price), gpus, seconds);
    expect(`${c.amount}${c.denom}`).toBe(want);
  });
});

describe('quoteJob', () => {
  it('lists every provider: the chosen one first with its node and cost, then the others with the reason the matcher gives', () => {
    const q = quoteJob(market(), job(), now);
    expect(q.chosen).toBe('alice');
    expect(q.providers).toEqual([
      { provider: 'alice', region: 'home', fits: true, chosen: true, nodeName: 'alice-desktop', model: RTX4090, pricePerGpuHour: '1200000ustake', maxCost: '2400000ustake' },
      { provider: 'bob', region: 'home', fits: true, chosen: false, nodeName: 'bob-ws', model: A6000, pricePerGpuHour: '1400000ustake', maxCost: '2800000ustake' },
      { provider: 'erin', region: 'home', fits: false, code: 'Cordoned', reason: 'cordoned' },
      { provider: 'zed', region: 'home', fits: false, code: 'NeverHeartbeated', reason: 'never heartbeated' },
    ]);
    expect(q.job).toEqual({ name: 'train', gpus: 1, models: [RTX4090, A6000], maxPricePerGpuHour: '1500000ustake', maxDurationSeconds: 7200 });
  });

  it('gives the reasons word for word as the registry writes them, and its message when none fits', () => {
    const q = quoteJob(market(), job({ count: 2, max: '1300000ustake' }), now);
    expect(q.chosen).toBeUndefined();
    expect(q.unschedulable).toBe('0/4 providers are available: 1 cordoned, 1 never heartbeated, 1 no node with 2 free NVIDIA-GeForce-RTX-4090 or NVIDIA-RTX-A6000, 1 price 1400000ustake above max 1300000ustake.');
    expect(q.providers.map((p) => [p.provider, p.fits ? 'fits' : p.reason])).toEqual([
      ['alice', 'no node with 2 free NVIDIA-GeForce-RTX-4090 or NVIDIA-RTX-A6000'],
      ['bob', 'price 1400000ustake above max 1300000ustake'],
      ['erin', 'cordoned'],
      ['zed', 'never heartbeated'],
    ]);
  });

  it("leaves out a provider the registry holds not Ready for a stale heartbeat, whatever heartbeat time it shows", () => {
    const m = market();
    const stale = { ...m, providers: [provider('alice', { [RTX4090]: '1200000ustake' }, { heartbeat: '2099-01-01T00:00:00Z', stale: true })] };
    expect(quoteJob(stale, job(), now).providers[0]).toMatchObject({ fits: false, code: 'HeartbeatStale', reason: 'heartbeat stale' });
  });

  it('counts GPUs promised to Assignments when it may read them, and says so when it may not', () => {
    const promised: Assignment = {
      apiVersion: 'gpufed.io/v1alpha1',
      kind: 'Assignment',
      metadata: { name: 'other-1', namespace: 'gpufed-provider-alice' },
      spec: { jobRef: { namespace: 'dave', name: 'other', uid: 'u' }, epoch: 1, image: 'x', resources: { gpu: { count: 1 } }, model: RTX4090, pricePerGpuHour: '1200000ustake', maxDurationSeconds: 60, payer: 'cosmos1y', nodeName: 'alice-desktop' },
    };
    const counted = quoteJob(market([promised]), job(), now);
    expect(counted).toMatchObject({ chosen: 'bob', reservationsCounted: true, notes: [] });
    expect(counted.providers.find((p) => p.provider === 'alice')).toMatchObject({ fits: false, code: 'NoFittingNode' });
    const blind = quoteJob(market(), job(), now);
    expect(blind).toMatchObject({ chosen: 'alice', reservationsCounted: false });
    expect(blind.notes[0]).toMatch(/may not read Assignments/);
  });
});

describe('quoteTable', () => {
  it('shows one row per provider with the cost for the maximum duration, and what the registry would do', () => {
    const text = quoteTable(quoteJob(market(), job(), now));
    const lines = text.split('\n');
    expect(lines[0]).toMatch(/^PROVIDER\s+REGION\s+MODEL\s+NODE\s+PRICE\/GPU-HOUR\s+MAX COST\s+VERDICT$/);
    expect(lines[1]).toMatch(/^alice\s+home\s+NVIDIA-GeForce-RTX-4090\s+alice-desktop\s+1200000ustake\s+2400000ustake\s+chosen$/);
    expect(lines[2]).toMatch(/^bob\s+.*\s+2800000ustake\s+fits$/);
    expect(lines[3]).toMatch(/^erin\s+home\s+-\s+-\s+-\s+-\s+cordoned$/);
    expect(text).toContain('The registry would place it on alice (alice-desktop, 1× NVIDIA-GeForce-RTX-4090) at 1200000ustake per GPU-hour: at most 2400000ustake for 2h');
  });

  it('says the job would wait when nothing fits', () => {
    expect(quoteTable(quoteJob(market(), job({ max: '1ustake' }), now))).toMatch(/No provider can take it now \(0\/4 providers are available: .*\); submitted, it would wait as Pending/);
  });
});
