// Which usage records a provider's Settlements pay, have paid, or may still pay: the one reading of
// Settlement statuses that both the agent (what to propose next) and the registry (what a record's
// status says, what it may co-sign) use. Only the registry writes a Settlement's status, and it marks
// one Committed only after it found the transaction in a block. Pure.
import { DEAD_SETTLEMENT_STATES, SettlementState } from '../api/conditions.js';
import type { Settlement } from '../api/index.js';

/** A settlement that may still pay: proposed (no status) or co-signed and not decided on chain yet. */
export function isLive(s: Settlement): boolean {
  const state = s.status?.state;
  return state === undefined || state === SettlementState.Cosigned;
}

/** A co-signed settlement whose transaction may still be included (a real claim on its records). */
export function isCosignedLive(s: Settlement): boolean {
  return s.status?.state === SettlementState.Cosigned;
}

export function isDead(s: Settlement): boolean {
  return DEAD_SETTLEMENT_STATES.includes(s.status?.state ?? '');
}

export interface Coverage {
  /** Record name → the Settlement that paid it (the registry found it in a block). */
  committed: Map<string, Settlement>;
  /** Record name → the live Settlements that may pay it (proposed or co-signed), oldest first. */
  live: Map<string, Settlement[]>;
}

/** Creation time in ms: watches deliver RFC 3339 text where the type says Date, so parse either. */
export const createdMs = (o: { metadata: { creationTimestamp?: Date | string } }): number => Date.parse(String(o.metadata.creationTimestamp instanceof Date ? o.metadata.creationTimestamp.toISOString() : (o.metadata.creationTimestamp ?? ''))) || 0;
const byAge = (a: Settlement, b: Settlement) => createdMs(a) - createdMs(b) || (a.metadata.name ?? '').localeCompare(b.metadata.name ?? '');

export function coverageOf(settlements: readonly Settlement[]): Coverage {
  const committed = new Map<string, Settlement>();
  const live = new Map<string, Settlement[]>();
  for (const s of [...settlements].sort(byAge)) {
    for (const r of s.spec.records) {
      if (s.status?.state === SettlementState.Committed) committed.set(r, s);
      else if (isLive(s)) live.set(r, [...(live.get(r) ?? []), s]);
    }
  }
  return { committed, live };
}
