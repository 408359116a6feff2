// A Provider's Ready condition and reputation, as the registry keeps them. Pure. The agent writes
// the heartbeat, capacity and version (its own field manager); the registry only reads those.
import { ProviderConditionType, ProviderReason, setCondition } from '../api/conditions.js';
import type { Assignment, Provider, ProviderStatus, ProviderStatusReputation } from '../api/index.js';
import { AssignmentReason } from '../api/conditions.js';

/** Marks an Assignment whose outcome is already in its provider's reputation. */
export const REPUTATION_COUNTED_ANNOTATION = 'gpufed.io/reputation-counted';

export interface ProviderDecision {
  status: Pick<ProviderStatus, 'conditions' | 'reputation' | 'observedGeneration'>;
  /** Assignments whose outcomes this status counts for the first time. */
  counted: Assignment[];
  /** When the heartbeat goes stale if nothing changes. */
  requeueAfterMs?: number;
}

/** Failures that are the provider's, not the renter's code: its pod vanished, it was fenced or reclaimed. */
const PROVIDER_FAULTS: readonly string[] = [AssignmentReason.PodLost, AssignmentReason.Fenced, AssignmentReason.Reclaimed];

/** What an ended Assignment says about its provider, or nothing (a renter's failing code, a rejection). */
export function reputationOutcome(a: Assignment): keyof ProviderStatusReputation | undefined {
  if (a.spec.withdrawn && a.spec.withdrawnReason === 'ProviderLost') return 'lost';
  const s = a.status?.observedEpoch === a.spec.epoch ? a.status : undefined;
  if (s?.phase === 'Succeeded') return 'succeeded';
  if (s?.phase === 'Failed' && PROVIDER_FAULTS.includes(s.reason ?? '')) return 'failed';
  return undefined;
}

type Readiness = { status: 'True' | 'False'; reason: string; message: string };

function readiness(provider: Provider, age: number | undefined, heartbeatTimeoutMs: number): Readiness {
  const priced = new Set(provider.spec.prices.map((p) => p.model));
  const sellable = (provider.status?.capacity ?? []).filter((c) => c.total > 0 && priced.has(c.model));
  if (age === undefined) return { status: 'False', reason: ProviderReason.NeverHeartbeated, message: "The provider's agent has not heartbeated yet" };
  if (age > heartbeatTimeoutMs) return { status: 'False', reason: ProviderReason.HeartbeatStale, message: `Last heartbeat ${Math.round(age / 1000)}s ago (timeout ${heartbeatTimeoutMs / 1000}s)` };
  if (provider.spec.cordoned) return { status: 'False', reason: ProviderReason.Cordoned, message: 'Cordoned by the registry admin: no new jobs' };
  if (sellable.length === 0) return { status: 'False', reason: ProviderReason.NoPricedGpus, message: 'No GPU model of this provider has a price' };
  return { status: 'True', reason: ProviderReason.HeartbeatFresh, message: `Heartbeat fresh; ${sellable.map((c) => `${c.free}/${c.total} ${c.model}`).join(', ')} free` };
}

export function decideProvider(provider: Provider, assignments: readonly Assignment[], now: Date, heartbeatTimeoutMs: number): ProviderDecision {
  const heartbeat = Date.parse(provider.status?.lastHeartbeatTime ?? '');
  const age = Number.isNaN(heartbeat) ? undefined : now.getTime() - heartbeat;
  const ready = readiness(provider, age, heartbeatTimeoutMs);
  const generation = provider.metadata.generation;
  const g = generation === undefined ? {} : { observedGeneration: generation };
  const conditions = setCondition(provider.status?.conditions, { type: ProviderConditionType.Ready, ...ready, ...g }, now);
  const counted = assignments.filter((a) => a.metadata.annotations?.[REPUTATION_COUNTED_ANNOTATION] === undefined && reputationOutcome(a) !== undefined);
  const reputation = { succeeded: 0, failed: 0, lost: 0, ...provider.status?.reputation };
  for (const a of counted) {
    const k = reputationOutcome(a) as keyof ProviderStatusReputation;
    reputation[k] = (reputation[k] ?? 0) + 1;
  }
  const requeueAfterMs = age !== undefined && age <= heartbeatTimeoutMs ? heartbeatTimeoutMs - age + 500 : undefined;
  return { status: { ...g, conditions, reputation }, counted, ...(requeueAfterMs === undefined ? {} : { requeueAfterMs }) };
}
