import type { Assignment, GpuNode, Provider, UsageRecord } from '../../api/index.js';
import { HEARTBEAT_RECORD_MS, capacityOf, decideProvider, reputationOf, reputationOutcome, type ProviderSituation } from './decide.js';

const NOW = new Date('2026-11-21T12:00:00Z');
const ago = (s: number) => NOW.getTime() - s * 1000;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');

function provider(edit: (p: Provider) => void = () => undefined): Provider {
  const p: Provider = {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'Provider',
    metadata: { name: 'bob', generation: 2 },
    spec: { wallet: 'cosmos1', region: 'us-east', prices: [{ model: 'A6000', pricePerGpuHour: '1ustake' }] },
  };
  edit(p);
  return p;
}

function gpuNode(name: string, allocatable: number, free: number, ready = true): GpuNode {
  const c = (type: string) => ({ type, status: ready ? ('True' as const) : ('False' as const), reason: 'x', message: '', lastTransitionTime: iso(ago(600)) });
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'GpuNode',
    metadata: { name, namespace: 'gpufed-provider-bob' },
    spec: { nodeName: name, product: 'A6000', memoryMiB: 49140, count: allocatable, resourceName: 'nvidia.com/gpu', sharing: { strategy: 'none', replicas: 1 } },
    status: { allocatable, free, conditions: [c('Ready'), c('Schedulable')] },
  };
}

function assignment(name: string, phase: string, reason?: string, withdrawn?: 'ProviderLost' | 'Cancelled'): Assignment {
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'Assignment',
    metadata: { name, namespace: 'gpufed-provider-bob' },
    spec: { jobRef: { namespace: 'c', name, uid: name }, epoch: 1, image: 'x', resources: { gpu: { count: 1 } }, model: 'A6000', pricePerGpuHour: '1ustake', maxDurationSeconds: 60, payer: 'cosmos1', ...(withdrawn ? { withdrawn: true, withdrawnReason: withdrawn } : {}) },
    status: { observedEpoch: 1, phase: phase as NonNullable<Assignment['status']>['phase'], ...(reason ? { reason } : {}) },
  };
}

function record(name: string, verified: 'True' | 'False' | 'Unknown' | undefined): UsageRecord {
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'UsageRecord',
    metadata: { name, namespace: 'gpufed-provider-bob' },
    spec: { assignmentName: 'a', jobRef: { namespace: 'c', name: 'j', uid: 'u' }, epoch: 1, model: 'A6000', gpus: 1, period: { start: iso(ago(20)), end: iso(ago(10)) }, gpuMilliseconds: { cumulative: 1, delta: 1 }, pricePerGpuHour: '1ustake', amount: '0ustake', payer: 'cosmos1', payee: 'cosmos1', evidenceDigest: 'x' },
    ...(verified ? { status: { state: 'Pending', conditions: [{ type: 'Verified', status: verified, reason: verified === 'True' ? 'Verified' : 'AmountMismatch', message: '', lastTransitionTime: iso(ago(5)) }] } } : {}),
  };
}

function situation(over: Partial<ProviderSituation> = {}): ProviderSituation {
  return { provider: provider(), heartbeat: { atMs: ago(5), agentVersion: '0.2.0' }, gpuNodes: [gpuNode('ws', 4, 3)], reservations: [], assignments: [], records: [], now: NOW, heartbeatTimeoutMs: 30_000, ...over };
}

const ready = (s: ProviderSituation) => decideProvider(s).status.conditions?.find((c) => c.type === 'Ready');

describe('decideProvider: Ready, from what the registry saw', () => {
  it.each<[string, Partial<ProviderSituation>, string, string]>([
    ['a heartbeat it saw 5 s ago and priced GPUs', {}, 'True', 'HeartbeatFresh'],
    ['no heartbeat ever seen', { heartbeat: undefined }, 'False', 'NeverHeartbeated'],
    ['a heartbeat it saw 31 s ago', { heartbeat: { atMs: ago(31) } }, 'False', 'HeartbeatStale'],
    ['a cordon', { provider: provider((p) => (p.spec.cordoned = true)) }, 'False', 'Cordoned'],
    ['no price for any GPU it has', { provider: provider((p) => (p.spec.prices = [{ model: 'RTX', pricePerGpuHour: '1ustake' }])) }, 'False', 'NoPricedGpus'],
    ['no GpuNodes', { gpuNodes: [] }, 'False', 'NoPricedGpus'],
  ])('with %s', (_name, over, status, reason) => {
    expect(ready(situation(over))).toMatchObject({ status, reason, observedGeneration: 2 });
  });

  it("ignores everything the provider's old status says: a heartbeat in 2099, a forged Ready, a forged reputation", () => {
    const forged = provider((p) => {
      p.status = {
        lastHeartbeatTime: '2099-01-01T00:00:00Z',
        reputation: { succeeded: 1000001, failed: 0, lost: 0 },
        capacity: [{ model: 'A6000', total: 64, free: 64 }],
        conditions: [{ type: 'Ready', status: 'True', reason: 'HeartbeatFresh', message: '', lastTransitionTime: iso(ago(60)) }],
      };
    });
    const d = decideProvider(situation({ provider: forged, heartbeat: { atMs: ago(45) } }));
    expect(d.status.conditions?.find((c) => c.type === 'Ready')).toMatchObject({ status: 'False', reason: 'HeartbeatStale' });
    expect(d.status.reputation).toEqual({ succeeded: 0, failed: 0, lost: 0, disputed: 0 });
    expect(d.status.capacity).toEqual([{ model: 'A6000', total: 4, free: 3, memoryMiB: 49140 }]);
    // Ready flipped: the heartbeat it records is the one it saw, not the forged one.
    expect(d.status.lastHeartbeatTime).toBe(iso(ago(45)));
  });

  it('records the heartbeat it saw at most every HEARTBEAT_RECORD_MS while Ready stays as it is', () => {
    const at = (recorded: number, seen: number) => {
      const p = provider((x) => (x.status = { lastHeartbeatTime: iso(recorded), conditions: [{ type: 'Ready', status: 'True', reason: 'HeartbeatFresh', message: '', lastTransitionTime: iso(ago(600)) }] }));
      return decideProvider(situation({ provider: p, heartbeat: { atMs: seen } })).status.lastHeartbeatTime;
    };
    expect(at(ago(10), ago(1))).toBe(iso(ago(10)));
    expect(at(ago(1) - HEARTBEAT_RECORD_MS, ago(1))).toBe(iso(ago(1)));
    // A recorded time ahead of what was seen (a clock that went back, a forged value) is replaced.
    expect(at(ago(-3600), ago(1))).toBe(iso(ago(1)));
  });

  it('takes the agent version from the heartbeat, and looks again when the heartbeat would go stale', () => {
    const d = decideProvider(situation());
    expect(d.status.agentVersion).toBe('0.2.0');
    expect(d.requeueAfterMs).toBe(25_500);
  });
});

describe('capacityOf: cross-checked against the registry own placements', () => {
  it('counts allocatable and free per model, free only on Ready nodes', () => {
    expect(capacityOf([gpuNode('a', 4, 3), gpuNode('b', 2, 2, false)], [])).toEqual([{ model: 'A6000', total: 6, free: 3, memoryMiB: 49140 }]);
  });

  it('never counts more free than allocatable, nor GPUs the registry placed jobs on that the node does not show taken', () => {
    const overclaimed = { ...gpuNode('a', 2, 2), status: { ...gpuNode('a', 2, 2).status, free: 9 } };
    expect(capacityOf([overclaimed], [])[0]).toMatchObject({ total: 2, free: 2 });
    expect(capacityOf([gpuNode('a', 4, 4)], [{ provider: 'bob', nodeName: 'a', resourceName: 'nvidia.com/gpu', units: 3, assignment: 'x' }])[0]).toMatchObject({ total: 4, free: 1 });
  });
});

describe('reputation: recounted from scratch', () => {
  it("counts the provider's own outcomes: succeeded, its failures, losses, disputed records; never the renter's failing code", () => {
    const list = [
      assignment('ok', 'Succeeded'),
      assignment('ok2', 'Succeeded'),
      assignment('lost-pod', 'Failed', 'PodLost'),
      assignment('fenced', 'Failed', 'Fenced'),
      assignment('code', 'Failed', 'ContainerFailed'),
      assignment('lost', 'Running', undefined, 'ProviderLost'),
      assignment('cancel', 'Withdrawn', undefined, 'Cancelled'),
      assignment('running', 'Running'),
    ];
    const records = [record('r1', 'True'), record('r2', 'False'), record('r3', 'Unknown'), record('r4', undefined), record('r5', 'False')];
    expect(reputationOf(list, records)).toEqual({ succeeded: 2, failed: 2, lost: 1, disputed: 2 });
    expect(reputationOutcome(assignment('code', 'Failed', 'ContainerFailed'))).toBeUndefined();
  });

  it('is the same on every pass (level-triggered): deciding twice counts nothing twice', () => {
    const s = situation({ assignments: [assignment('ok', 'Succeeded')] });
    const once = decideProvider(s).status;
    const twice = decideProvider({ ...s, provider: { ...s.provider, status: once } }).status;
    expect(twice.reputation).toEqual(once.reputation);
    expect(twice.reputation).toEqual({ succeeded: 1, failed: 0, lost: 0, disputed: 0 });
  });
});
