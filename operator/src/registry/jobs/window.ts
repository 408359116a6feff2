// When each copy of a job stops being billable, as the registry sees it: Assignment.spec.billableUntil,
// the end of the run window against which the provider's usage records are verified (and up to
// which an honest agent meters). Set once the window closes, never moved later. Pure.
//  - The copy ended (the agent reported it over): when the registry saw that, or the completion
//    time the agent itself gave plus the clock skew allowed, whichever is earlier.
//  - It is withdrawn (cancelled, past its deadline, superseded, its provider lost): the withdrawal
//    plus WITHDRAWAL_GRACE_MS (the pod's termination grace and the agent's watch lag), never past
//    the fence.
//  - No heartbeat of its provider for the agents' fencing timeout: the last heartbeat the registry
//    saw plus that timeout (the fence: an agent that keeps to the protocol stopped the pod then).
import { assignmentEnded, currentStatus } from '../../api/assignments.js';
import { formatTime } from '../../api/conditions.js';
import type { Assignment } from '../../api/index.js';
import { providerOfNamespace } from '../../api/names.js';
import type { Withdrawal } from './decide.js';

/** What a withdrawn copy is still paid for after its withdrawal: the pod's 30 s termination grace, and the agent's lag in seeing the withdrawal. */
export const WITHDRAWAL_GRACE_MS = 60_000;

export interface WindowSituation {
  now: Date;
  /** How long ago the registry last saw the provider's heartbeat; Infinity: never. */
  heartbeatAgeMs: (provider: string) => number;
  fencingTimeoutMs: number;
  clockSkewMs: number;
}

export interface Stamp {
  namespace: string;
  name: string;
  billableUntil: string;
}

const parsed = (t: string | undefined) => {
  const v = Date.parse(t ?? '');
  return Number.isNaN(v) ? undefined : v;
};

/** The billableUntil each Assignment should carry now (only those that need a new, earlier one). */
export function billingStamps(assignments: readonly Assignment[], withdrawing: readonly Withdrawal[], s: WindowSituation): Stamp[] {
  const out: Stamp[] = [];
  for (const a of assignments) {
    const withdrawn = a.spec.withdrawn === true || withdrawing.some((w) => w.namespace === a.metadata.namespace && w.name === a.metadata.name);
    const end = windowEnd(a, withdrawn, s);
    if (end === undefined) continue;
    // Whole seconds (the API's time format); only ever earlier.
    const at = Math.floor(end / 1000) * 1000;
    const have = parsed(a.spec.billableUntil);
    if (have !== undefined && have <= at) continue;
    out.push({ namespace: a.metadata.namespace ?? '', name: a.metadata.name ?? '', billableUntil: formatTime(new Date(at)) });
  }
  return out;
}

/** Where one copy's run window ends now, or undefined while it is open. */
function windowEnd(a: Assignment, withdrawn: boolean, s: WindowSituation): number | undefined {
  const now = s.now.getTime();
  const age = s.heartbeatAgeMs(providerOfNamespace(a.metadata.namespace) ?? '');
  const fence = Number.isFinite(age) ? now - age + s.fencingTimeoutMs : undefined;
  if (assignmentEnded(a)) {
    const claimed = parsed(currentStatus(a)?.completionTime);
    return Math.min(now, claimed === undefined ? now : claimed + s.clockSkewMs, fence ?? Number.POSITIVE_INFINITY);
  }
  if (withdrawn) return Math.min(now + WITHDRAWAL_GRACE_MS, fence ?? Number.POSITIVE_INFINITY);
  return age >= s.fencingTimeoutMs ? fence : undefined;
}
