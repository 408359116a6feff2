// A Provider's status as the registry computes it: nothing in it is taken from the provider's word.
// Pure. Ready and the heartbeat come from when the registry itself saw the agent's heartbeat Lease
// change (its own clock: an agent's renewTime, in 2099 or in 1970, is never read); capacity from
// the provider's GpuNodes, never above what they have left once the registry's own live Assignments
// are counted; reputation recomputed from scratch on every pass from the Assignments and usage
// records the registry holds (level-triggered: nothing is added to a count, so nothing can be
// counted twice or inflated by a write). The agent cannot write any of it: its credentials reach
// neither Provider status nor anything this is computed from except its own claims, which are
// cross-checked here.
import { AssignmentReason, ProviderConditionType, ProviderReason, UsageRecordConditionType, findCondition, formatTime, setCondition } from '../../api/conditions.js';
import { currentStatus } from '../../api/assignments.js';
import type { Assignment, GpuNode, Provider, ProviderStatus, ProviderStatusCapacity, ProviderStatusReputation, ProviderStatusSettlementAccount, UsageRecord } from '../../api/index.js';
import { fromBase64, toBase64 } from '@cosmjs/encoding';
import { addressOfPubkey, settlementAccount } from '../../settlement/multisig.js';
import { capacityByModel } from '../../scheduling/capacity.js';
import type { Reservation } from '../../scheduling/match.js';

/**
 * How often the registry records a heartbeat it keeps seeing in Provider.status.lastHeartbeatTime.
 * The registry decides from its own in-memory observations; the status field is for people
 * (`kubectl get providers`), like a Node's lastHeartbeatTime, so it need not move on every beat.
 */
export const HEARTBEAT_RECORD_MS = 30_000;

/** The heartbeat as the registry observed it: when (its clock) it last saw the agent's Lease change. */
export interface ObservedHeartbeat {
  atMs: number;
  /** What the agent says its version is (informational). */
  agentVersion?: string;
  /** The hot key's public key the agent announces (base64, compressed); checked against spec.wallet. */
  hotKey?: string;
}

export interface ProviderSituation {
  provider: Provider;
  heartbeat?: ObservedHeartbeat;
  /** The provider's GpuNodes (its namespace's). */
  gpuNodes: readonly GpuNode[];
  /** GPUs the registry has promised that the GpuNodes may not show yet (reservationsFor). */
  reservations: readonly Reservation[];
  /** The provider's Assignments the registry holds (the retention window's). */
  assignments: readonly Assignment[];
  /** The provider's usage records the registry holds. */
  records: readonly UsageRecord[];
  now: Date;
  heartbeatTimeoutMs: number;
  /** The registry's co-signing key and the chain's address prefix; absent: the registry settles nothing. */
  registryKey?: { pubkey: Uint8Array; prefix: string };
}

export interface ProviderDecision {
  status: ProviderStatus;
  /** When the heartbeat goes stale if nothing changes. */
  requeueAfterMs?: number;
}

/** Failures that are the provider's, not the renter's code: its pod vanished, it was fenced or reclaimed. */
const PROVIDER_FAULTS: readonly string[] = [AssignmentReason.PodLost, AssignmentReason.Fenced, AssignmentReason.Reclaimed];

/** What an ended Assignment says about its provider, or nothing (a renter's failing code, a rejection, still running). */
export function reputationOutcome(a: Assignment): Exclude<keyof ProviderStatusReputation, 'disputed'> | undefined {
  if (a.spec.withdrawn && a.spec.withdrawnReason === 'ProviderLost') return 'lost';
  const s = currentStatus(a);
  if (s?.phase === 'Succeeded') return 'succeeded';
  if (s?.phase === 'Failed' && PROVIDER_FAULTS.includes(s.reason ?? '')) return 'failed';
  return undefined;
}

/** Whether the registry found this record's claim false (see registry/usage). */
export function isDisputed(r: UsageRecord): boolean {
  return findCondition(r.status?.conditions, UsageRecordConditionType.Verified)?.status === 'False';
}

/** The provider's reputation over what the registry holds now, counted from scratch. */
export function reputationOf(assignments: readonly Assignment[], records: readonly UsageRecord[]): Required<ProviderStatusReputation> {
  const r = { succeeded: 0, failed: 0, lost: 0, disputed: 0 };
  for (const a of assignments) {
    const k = reputationOutcome(a);
    if (k) r[k]++;
  }
  r.disputed = records.filter(isDisputed).length;
  return r;
}

/** Capacity by model from the GpuNodes, with free GPUs never above what the registry's own promises leave. */
export function capacityOf(gpuNodes: readonly GpuNode[], reservations: readonly Reservation[]): ProviderStatusCapacity[] {
  const held = new Map<string, number>();
  for (const r of reservations) held.set(r.nodeName, (held.get(r.nodeName) ?? 0) + r.units);
  return capacityByModel(
    gpuNodes.map((n) => {
      const allocatable = Math.max(0, n.status?.allocatable ?? 0);
      const free = Math.max(0, Math.min(n.status?.free ?? 0, allocatable) - (held.get(n.spec.nodeName) ?? 0));
      return { spec: n.spec, status: { ...n.status, allocatable, free } };
    }),
  );
}

type Readiness = { status: 'True' | 'False'; reason: string; message: string };

function readiness(provider: Provider, capacity: readonly ProviderStatusCapacity[], age: number | undefined, heartbeatTimeoutMs: number): Readiness {
  const priced = new Set(provider.spec.prices.map((p) => p.model));
  const sellable = capacity.filter((c) => c.total > 0 && priced.has(c.model));
  if (age === undefined) return { status: 'False', reason: ProviderReason.NeverHeartbeated, message: "The registry has not seen the provider's agent heartbeat" };
  if (age > heartbeatTimeoutMs) return { status: 'False', reason: ProviderReason.HeartbeatStale, message: `The registry last saw a heartbeat ${Math.round(age / 1000)}s ago (timeout ${heartbeatTimeoutMs / 1000}s)` };
  if (provider.spec.cordoned) return { status: 'False', reason: ProviderReason.Cordoned, message: 'Cordoned by the registry admin: no new jobs' };
  if (sellable.length === 0) return { status: 'False', reason: ProviderReason.NoPricedGpus, message: 'No GPU model of this provider has a price' };
  return { status: 'True', reason: ProviderReason.HeartbeatFresh, message: `Heartbeat fresh; ${sellable.map((c) => `${c.free}/${c.total} ${c.model}`).join(', ')} free` };
}

/**
 * The settlement account to publish: the agent's announced hot key, if it is the key of
 * spec.wallet (the address the registry admin onboarded), with the registry's own key.
 */
function settlementAccountOf(s: ProviderSituation): { published?: ProviderStatusSettlementAccount; condition: { status: 'True' | 'False'; reason: string; message: string } } {
  const wallet = s.provider.spec.wallet;
  if (!s.registryKey) return { condition: { status: 'False', reason: ProviderReason.NoRegistryKey, message: 'The registry runs without a co-signing key: nothing is settled' } };
  const announced = s.heartbeat?.hotKey ?? s.provider.status?.settlementAccount?.providerPubKey;
  if (!announced) return { condition: { status: 'False', reason: ProviderReason.NoHotKey, message: "The agent has not announced its hot key's public key on its heartbeat Lease" } };
  let providerPubkey: Uint8Array;
  try {
    providerPubkey = fromBase64(announced);
    if (providerPubkey.length !== 33 || addressOfPubkey(providerPubkey, s.registryKey.prefix) !== wallet) throw new Error('mismatch');
  } catch {
    return { condition: { status: 'False', reason: ProviderReason.HotKeyMismatch, message: `The hot key the agent announces is not the key of spec.wallet ${wallet}` } };
  }
  const account = settlementAccount(providerPubkey, s.registryKey.pubkey, s.registryKey.prefix);
  const published = { address: account.address, providerPubKey: toBase64(providerPubkey), registryPubKey: toBase64(s.registryKey.pubkey) };
  return { published, condition: { status: 'True', reason: ProviderReason.Published, message: `Renters grant their spending cap to ${account.address}, a 2-of-2 of the provider's hot key and the registry's key` } };
}

/**
 * The heartbeat time to record: the observed one once it moved HEARTBEAT_RECORD_MS past the
 * recorded one, or at once when Ready flipped (so the two never disagree in `kubectl get`).
 */
function recordedHeartbeat(previous: string | undefined, observedMs: number | undefined, readyFlipped: boolean): string | undefined {
  if (observedMs === undefined) return previous;
  const prev = Date.parse(previous ?? '');
  if (!readyFlipped && !Number.isNaN(prev) && observedMs >= prev && observedMs - prev < HEARTBEAT_RECORD_MS) return previous;
  return formatTime(new Date(observedMs));
}

export function decideProvider(s: ProviderSituation): ProviderDecision {
  const { provider, now } = s;
  const age = s.heartbeat === undefined ? undefined : now.getTime() - s.heartbeat.atMs;
  const capacity = capacityOf(s.gpuNodes, s.reservations);
  const ready = readiness(provider, capacity, age, s.heartbeatTimeoutMs);
  const generation = provider.metadata.generation;
  const g = generation === undefined ? {} : { observedGeneration: generation };
  const conditions = setCondition(provider.status?.conditions, { type: ProviderConditionType.Ready, ...ready, ...g }, now);
  const flipped = findCondition(provider.status?.conditions, ProviderConditionType.Ready)?.status !== ready.status;
  const heartbeat = recordedHeartbeat(provider.status?.lastHeartbeatTime, s.heartbeat?.atMs, flipped);
  const account = settlementAccountOf(s);
  const status: ProviderStatus = {
    ...g,
    ...(heartbeat ? { lastHeartbeatTime: heartbeat } : {}),
    ...(s.heartbeat?.agentVersion ? { agentVersion: s.heartbeat.agentVersion } : {}),
    capacity,
    reputation: reputationOf(s.assignments, s.records),
    ...(account.published ? { settlementAccount: account.published } : {}),
    conditions: setCondition(conditions, { type: ProviderConditionType.SettlementAccount, ...account.condition, ...g }, now),
  };
  // Each new heartbeat brings the provider back here; only going stale needs a timer.
  const requeueAfterMs = age !== undefined && age <= s.heartbeatTimeoutMs ? s.heartbeatTimeoutMs - age + 500 : undefined;
  return { status, ...(requeueAfterMs === undefined ? {} : { requeueAfterMs }) };
}
