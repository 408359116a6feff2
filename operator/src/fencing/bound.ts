// The one inequality that keeps a job from running on two providers at once: the registry declares
// a provider lost (and places its jobs again) only after every copy on that provider is certainly
// gone. Both processes check it at start-up from their flags (the charts pass their values as
// flags) and refuse to start on an unsafe combination: the registry with its own
// --provider-lost-timeout and the agents' fencing timeout it is told, an agent with its own
// --fencing-timeout and the registry's provider-lost timeout it is told.
//
// The timeline, from the start of the agent's last heartbeat the registry acknowledged (t0):
//  - the agent fences when no heartbeat was acknowledged for F, timed on its monotonic clock from
//    the moment each heartbeat was sent (a reply that comes late never stretches the hold), and
//    checks every FENCE_CHECK_MS: its pods are deleted by t0 + F + FENCE_CHECK_MS;
//  - a deleted job pod gets JOB_STOP_GRACE_SECONDS to exit, then the kubelet kills it;
//  - the registry sees that heartbeat at t0 or later (a heartbeat cannot change the Lease before it
//    is sent), and declares the provider lost L after the last change it saw, by its own clock.
// So the registry never re-places before the copy is gone when
//    L ≥ F + FENCE_CHECK_MS + JOB_STOP_GRACE_SECONDS + S,
// where S (the registry's --max-clock-skew) covers the two clocks running at slightly different
// rates and a slow kubelet. Wall clocks never enter it: both sides time durations.

/** How often the agent checks its hold on the registry (independent of the heartbeat period). */
export const FENCE_CHECK_MS = 1000;

/** A stopped job pod's termination grace (its spec and every delete the agent makes). */
export const JOB_STOP_GRACE_SECONDS = 10;

/** The registry's default --max-clock-skew, the margin an agent assumes when it checks. */
export const DEFAULT_MAX_CLOCK_SKEW_MS = 5000;

export interface FencingTimes {
  /** The agents' fencing timeout (agent --fencing-timeout). */
  fencingTimeoutMs: number;
  /** The registry's provider-lost timeout (registry --provider-lost-timeout). */
  providerLostTimeoutMs: number;
  /** The clock margin (registry --max-clock-skew). */
  maxClockSkewMs: number;
  /** The agent's heartbeat period, where known (the agent checks it; the registry cannot). */
  heartbeatMs?: number;
}

/** The latest a fenced copy can still run, counted from the send of its last acknowledged heartbeat. */
export function fencedCopyGoneWithinMs(fencingTimeoutMs: number): number {
  return fencingTimeoutMs + FENCE_CHECK_MS + JOB_STOP_GRACE_SECONDS * 1000;
}

/** The smallest provider-lost timeout that is safe with agents fencing at `fencingTimeoutMs`. */
export function minProviderLostTimeoutMs(fencingTimeoutMs: number, maxClockSkewMs: number): number {
  return fencedCopyGoneWithinMs(fencingTimeoutMs) + maxClockSkewMs;
}

/** Why the combination is unsafe, in words a person can act on; undefined when it is safe. */
export function unsafeFencing(t: FencingTimes): string | undefined {
  const s = (ms: number) => `${ms / 1000}s`;
  for (const [name, v] of Object.entries(t)) {
    if (v !== undefined && (!Number.isFinite(v) || v < 0)) return `${name} must be a duration of 0 or more, got ${v}`;
  }
  if (t.fencingTimeoutMs <= 0) return 'the fencing timeout must be above 0: an agent that never holds the registry cannot run jobs';
  if (t.heartbeatMs !== undefined && t.heartbeatMs * 2 > t.fencingTimeoutMs) {
    return `the heartbeat (${s(t.heartbeatMs)}) must be at most half the fencing timeout (${s(t.fencingTimeoutMs)}): one late heartbeat would fence every running job`;
  }
  const need = minProviderLostTimeoutMs(t.fencingTimeoutMs, t.maxClockSkewMs);
  if (t.providerLostTimeoutMs < need) {
    return (
      `the provider-lost timeout (${s(t.providerLostTimeoutMs)}) must be at least ${s(need)}: ` +
      `fencing timeout ${s(t.fencingTimeoutMs)} + fence check ${s(FENCE_CHECK_MS)} + job pod stop grace ${JOB_STOP_GRACE_SECONDS}s + clock skew ${s(t.maxClockSkewMs)}, ` +
      'or a lost provider\'s jobs could be placed again while their first copy still runs'
    );
  }
  return undefined;
}
