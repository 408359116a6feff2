// The fence guard (operator/src/fencing/guard.ts) against the real registry and alice's cluster,
// with the wall clock it is given lying: it times the heartbeat Lease on its monotonic clock only.
// While the Lease keeps changing it never fences, even as the wall clock jumps a day either way or
// stands still; once the Lease stops changing it writes each copy's stop down and deletes the job
// pods within the fencing timeout plus one poll, whatever the wall clock says.
import * as k8s from '@kubernetes/client-node';
import { performance } from 'node:perf_hooks';
import { pino } from 'pino';
import { AGENT_MANAGED_BY, HEARTBEAT_LEASE, JobLabel } from '../../operator/src/api/labels.js';
import { STOP_LABEL, copyKey, stopConfigMapName } from '../../operator/src/agent/stops.js';
import { FenceGuard } from '../../operator/src/fencing/guard.js';
import { agentRegistryConfig, eventually, kubeConfig } from '../support/federation.js';

const FENCING_MS = 3000;
const POLL_MS = 250;
const namespace = 'gpufed-provider-alice';
const jobsNamespace = `guard-test-${Date.now().toString(36)}`;
const coordination = () => kubeConfig('registry').makeApiClient(k8s.CoordinationV1Api);
const core = () => kubeConfig('alice').makeApiClient(k8s.CoreV1Api);

/** Renews alice's heartbeat Lease as her agent would (admin credentials here: the test plays the agent). */
async function heartbeat(): Promise<void> {
  const spec: k8s.V1LeaseSpec = { holderIdentity: 'guard-test', leaseDurationSeconds: 3, renewTime: new k8s.V1MicroTime(Date.now()) };
  let lease: k8s.V1Lease | undefined;
  try {
    lease = await coordination().readNamespacedLease({ name: HEARTBEAT_LEASE, namespace });
  } catch {
    await coordination().createNamespacedLease({ namespace, body: { metadata: { name: HEARTBEAT_LEASE, namespace }, spec } });
    return;
  }
  await coordination().replaceNamespacedLease({ name: HEARTBEAT_LEASE, namespace, body: { ...lease, spec } });
}

function jobPod(name: string, uid: string): k8s.V1Pod {
  return {
    metadata: { name, namespace: jobsNamespace, labels: { [JobLabel.ManagedBy]: AGENT_MANAGED_BY, [JobLabel.AssignmentUid]: uid, [JobLabel.Epoch]: '1' } },
    spec: { nodeName: 'alice-desktop', terminationGracePeriodSeconds: 1, containers: [{ name: 'job', image: 'registry.example/train:1' }] },
  };
}

let guard: FenceGuard | undefined;
let wall = Date.UTC(2001, 0, 1);
let scoped: k8s.KubeConfig;

beforeAll(async () => {
  // Onboarded as `gpufed registry add-provider` does: the namespace with the Lease, and the agent's credentials the guard uses.
  scoped = await agentRegistryConfig('alice', [{ model: 'NVIDIA-GeForce-RTX-4090', pricePerGpuHour: '1200000ustake' }]);
  await core().createNamespace({ body: { metadata: { name: jobsNamespace } } });
}, 60_000);
afterAll(async () => {
  await guard?.stop();
  await core().deleteNamespace({ name: jobsNamespace });
  // This file's heartbeats are no agent's: leave no Lease that would look like one to the next registry.
  await coordination().deleteNamespacedLease({ name: HEARTBEAT_LEASE, namespace }).catch(() => undefined);
});

it('times the heartbeat on its monotonic clock: no fence while it changes whatever the wall clock does, a fence within F + one poll once it stops', async () => {
  await heartbeat();
  for (const [name, uid] of [['copy-a', 'uid-a'], ['copy-b', 'uid-b']]) await core().createNamespacedPod({ namespace: jobsNamespace, body: jobPod(name as string, uid as string) });
  guard = new FenceGuard({ namespace, registry: scoped, cluster: kubeConfig('alice'), jobsNamespace, fencingTimeoutMs: FENCING_MS, pollMs: POLL_MS, log: pino({ level: 'silent' }), now: () => new Date(wall) });
  guard.start();

  // Three fencing timeouts of heartbeats every 500 ms, the wall clock standing still, then a day ahead, then a day behind.
  const until = performance.now() + 3 * FENCING_MS;
  let step = 0;
  let lastBeat = 0;
  while (performance.now() < until) {
    lastBeat = performance.now();
    await heartbeat();
    if (++step % 4 === 0) wall += (step % 8 === 0 ? -2 : 1) * 86_400_000;
    await new Promise((r) => setTimeout(r, 500));
  }
  expect(guard.fenced).toBe(0);
  expect((await core().listNamespacedPod({ namespace: jobsNamespace })).items.filter((p) => !p.metadata?.deletionTimestamp)).toHaveLength(2);

  // Heartbeats stop (the agent frozen, dead or cut off); the wall clock stands still. The fence
  // comes F after the guard saw the last change: no earlier than F less one poll from the write
  // (a read a poll old may have seen it), no later than F plus two polls.
  const fencedAfter = await eventually('both copies fenced', () => Promise.resolve(guard?.fenced === 2 ? performance.now() - lastBeat : undefined), 4 * FENCING_MS, 50);
  expect(fencedAfter).toBeGreaterThanOrEqual(FENCING_MS - POLL_MS);
  expect(fencedAfter).toBeLessThan(FENCING_MS + 2 * POLL_MS + 1000);
  const live = (await core().listNamespacedPod({ namespace: jobsNamespace })).items.filter((p) => !p.metadata?.deletionTimestamp);
  expect(live).toEqual([]);
  // Each copy's stop written down before its pod went, with the fence time placed on the (lying) wall clock.
  const stops = (await core().listNamespacedConfigMap({ namespace: jobsNamespace, labelSelector: `${STOP_LABEL}=true` })).items;
  expect(stops.map((c) => c.metadata?.name).sort()).toEqual([stopConfigMapName(copyKey('uid-a', '1')), stopConfigMapName(copyKey('uid-b', '1'))].sort());
  for (const c of stops) {
    expect(c.data?.reason).toBe('Fenced');
    expect(Math.abs(Date.parse(c.data?.at ?? '') - wall)).toBeLessThan(FENCING_MS + 2000);
  }
}, 120_000);
