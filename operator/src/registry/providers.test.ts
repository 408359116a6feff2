import type { Assignment, Provider } from '../api/index.js';
import { decideProvider, REPUTATION_COUNTED_ANNOTATION, reputationOutcome } from './providers.js';

const NOW = new Date('2026-11-21T12:00:00Z');
const ago = (s: number) => new Date(NOW.getTime() - s * 1000).toISOString().replace(/\.\d{3}Z$/, 'Z');

function provider(edit: (p: Provider) => void = () => undefined): Provider {
  const p: Provider = {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'Provider',
    metadata: { name: 'bob', generation: 2 },
    spec: { wallet: 'cosmos1', region: 'us-east', prices: [{ model: 'A6000', pricePerGpuHour: '1ustake' }] },
    status: { lastHeartbeatTime: ago(5), capacity: [{ model: 'A6000', total: 4, free: 3 }] },
  };
  edit(p);
  return p;
}

function assignment(name: string, phase: string, reason?: string, withdrawn?: 'ProviderLost' | 'Cancelled', counted = false): Assignment {
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'Assignment',
    metadata: { name, namespace: 'gpufed-provider-bob', ...(counted ? { annotations: { [REPUTATION_COUNTED_ANNOTATION]: 'true' } } : {}) },
    spec: { jobRef: { namespace: 'c', name, uid: name }, epoch: 1, image: 'x', resources: { gpu: { count: 1 } }, model: 'A6000', pricePerGpuHour: '1ustake', maxDurationSeconds: 60, payer: 'cosmos1', ...(withdrawn ? { withdrawn: true, withdrawnReason: withdrawn } : {}) },
    status: { observedEpoch: 1, phase: phase as NonNullable<Assignment['status']>['phase'], ...(reason ? { reason } : {}) },
  };
}

const ready = (p: Provider) => decideProvider(p, [], NOW, 30_000).status.conditions?.find((c) => c.type === 'Ready');

describe('decideProvider: Ready', () => {
  it.each<[string, (p: Provider) => void, string, string]>([
    ['a fresh heartbeat and priced GPUs', () => undefined, 'True', 'HeartbeatFresh'],
    ['no heartbeat ever', (p) => delete p.status?.lastHeartbeatTime, 'False', 'NeverHeartbeated'],
    ['a stale heartbeat', (p) => ((p.status ?? {}).lastHeartbeatTime = ago(31)), 'False', 'HeartbeatStale'],
    ['a cordon', (p) => (p.spec.cordoned = true), 'False', 'Cordoned'],
    ['no price for any GPU it has', (p) => (p.spec.prices = [{ model: 'RTX', pricePerGpuHour: '1ustake' }]), 'False', 'NoPricedGpus'],
  ])('with %s', (_name, edit, status, reason) => {
    expect(ready(provider(edit))).toMatchObject({ status, reason, observedGeneration: 2 });
  });

  it('looks again when the heartbeat would go stale', () => {
    expect(decideProvider(provider(), [], NOW, 30_000).requeueAfterMs).toBe(25_500);
  });
});

describe('decideProvider: reputation', () => {
  it("counts the provider's own outcomes once: succeeded, its failures, losses; never the renter's failing code", () => {
    const list = [
      assignment('ok', 'Succeeded'),
      assignment('lost-pod', 'Failed', 'PodLost'),
      assignment('fenced', 'Failed', 'Fenced'),
      assignment('code', 'Failed', 'ContainerFailed'),
      assignment('lost', 'Running', undefined, 'ProviderLost'),
      assignment('cancel', 'Withdrawn', undefined, 'Cancelled'),
      assignment('before', 'Succeeded', undefined, undefined, true),
    ];
    const d = decideProvider(provider((p) => ((p.status ?? {}).reputation = { succeeded: 10, failed: 1, lost: 0 })), list, NOW, 30_000);
    expect(d.status.reputation).toEqual({ succeeded: 11, failed: 3, lost: 1 });
    expect(d.counted.map((a) => a.metadata.name)).toEqual(['ok', 'lost-pod', 'fenced', 'lost']);
    expect(reputationOutcome(assignment('code', 'Failed', 'ContainerFailed'))).toBeUndefined();
  });
});
