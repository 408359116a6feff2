import type { Assignment, AssignmentStatusPhase } from '../../api/index.js';
import type { Withdrawal } from './decide.js';
import { WITHDRAWAL_GRACE_MS, billingStamps, type WindowSituation } from './window.js';

const NOW = Date.parse('2026-11-21T12:00:00Z');
const FENCING_MS = 120_000;
const SKEW_MS = 5_000;
const iso = (ms: number) => new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
const s = (seconds: number) => NOW + seconds * 1000;

interface Copy {
  name?: string;
  provider?: string;
  epoch?: number;
  phase?: AssignmentStatusPhase;
  /** The epoch the agent's status speaks of; the Assignment's own by default. */
  observedEpoch?: number;
  completionMs?: number;
  withdrawn?: boolean;
  billableUntil?: string;
}

/** An Assignment of carol/train in its provider's namespace, as the registry and the agent left it. */
function assignment(c: Copy = {}): Assignment {
  const epoch = c.epoch ?? 1;
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'Assignment',
    metadata: { name: c.name ?? `carol-train-${epoch}`, namespace: `gpufed-provider-${c.provider ?? 'alice'}` },
    spec: {
      jobRef: { namespace: 'carol', name: 'train', uid: 'u1' }, epoch, image: 'pytorch:2.5', resources: { gpu: { count: 1 } }, model: 'M', pricePerGpuHour: '1200000ustake', maxDurationSeconds: 7200, payer: 'cosmos1carol',
      ...(c.withdrawn ? { withdrawn: true, withdrawnReason: 'Cancelled' as const } : {}),
      ...(c.billableUntil ? { billableUntil: c.billableUntil } : {}),
    },
    ...(c.phase ? { status: { observedEpoch: c.observedEpoch ?? epoch, phase: c.phase, ...(c.completionMs === undefined ? {} : { completionTime: iso(c.completionMs) }) } } : {}),
  };
}

/** The registry's view: each provider's last heartbeat, seconds ago (absent: never seen). */
function situation(heartbeatSecondsAgo: Record<string, number> = { alice: 1 }, nowMs = NOW): WindowSituation {
  return { now: new Date(nowMs), heartbeatAgeMs: (p) => (p in heartbeatSecondsAgo ? (heartbeatSecondsAgo[p] ?? 0) * 1000 : Number.POSITIVE_INFINITY), fencingTimeoutMs: FENCING_MS, clockSkewMs: SKEW_MS };
}

const withdrawal = (a: Assignment): Withdrawal => ({ namespace: a.metadata.namespace ?? '', name: a.metadata.name ?? '', reason: 'Cancelled' });

/** The billableUntil the Assignment should carry now, or undefined when it needs none. */
function stampOf(a: Assignment, sit: WindowSituation = situation(), withdrawing: Withdrawal[] = []): string | undefined {
  const stamps = billingStamps([a], withdrawing, sit);
  expect(stamps.length).toBeLessThanOrEqual(1);
  if (stamps[0]) expect(stamps[0]).toMatchObject({ namespace: a.metadata.namespace, name: a.metadata.name });
  return stamps[0]?.billableUntil;
}

describe('billingStamps', () => {
  describe('an ended copy: the earlier of now and the completion time the agent gave plus the skew', () => {
    it.each<[string, Copy, number]>([
      ['completed a minute ago', { phase: 'Succeeded', completionMs: s(-60) }, s(-55)],
      ['failed a minute ago', { phase: 'Failed', completionMs: s(-60) }, s(-55)],
      ['completion claimed just now: no later than when the registry saw it', { phase: 'Succeeded', completionMs: s(-2) }, s(0)],
      ['completion claimed in the future', { phase: 'Succeeded', completionMs: s(3600) }, s(0)],
      ['no completion time: when the registry saw it', { phase: 'Rejected' }, s(0)],
      ['stopped because withdrawn, and said so', { phase: 'Withdrawn', withdrawn: true, completionMs: s(-30) }, s(-25)],
    ])('%s', (_name, copy, want) => {
      expect(stampOf(assignment(copy))).toBe(iso(want));
    });

    it('reads only a status of the current epoch: an older epoch that ended says nothing', () => {
      expect(stampOf(assignment({ epoch: 2, observedEpoch: 1, phase: 'Succeeded', completionMs: s(-60) }))).toBeUndefined();
    });
  });

  describe('a withdrawn copy: the withdrawal plus WITHDRAWAL_GRACE_MS, never past the fence', () => {
    it.each<[string, Record<string, number>, number]>([
      ['its provider heartbeats', { alice: 1 }, s(0) + WITHDRAWAL_GRACE_MS],
      ['the fence comes first (last heartbeat 100 s ago: fence in 20 s)', { alice: 100 }, s(-100) + FENCING_MS],
      ['the fence has passed (last heartbeat 300 s ago)', { alice: 300 }, s(-300) + FENCING_MS],
      ['no heartbeat ever seen: no fence to cap it', {}, s(0) + WITHDRAWAL_GRACE_MS],
    ])('%s', (_name, heartbeats, want) => {
      expect(stampOf(assignment({ withdrawn: true, phase: 'Running' }), situation(heartbeats))).toBe(iso(want));
    });

    it('counts a copy this decision withdraws as withdrawn, and no other', () => {
      const a = assignment({ phase: 'Running' });
      expect(stampOf(a, situation({ alice: 100 }), [withdrawal(a)])).toBe(iso(s(20)));
      expect(stampOf(a, situation(), [withdrawal(a)])).toBe(iso(s(0) + WITHDRAWAL_GRACE_MS));
      expect(stampOf(a, situation(), [{ ...withdrawal(a), name: 'carol-train-2' }])).toBeUndefined();
      expect(stampOf(a, situation(), [{ ...withdrawal(a), namespace: 'gpufed-provider-bob' }])).toBeUndefined();
    });
  });

  describe('a live copy', () => {
    it.each<[string, Record<string, number>, number | undefined]>([
      ['its provider heartbeats: still billable, no stamp', { alice: 1 }, undefined],
      ['silent just under the fencing timeout', { alice: 119 }, undefined],
      ['silent for exactly the fencing timeout: the fence is now', { alice: 120 }, s(0)],
      ['silent for 5 minutes: the last heartbeat plus the fencing timeout', { alice: 300 }, s(-300) + FENCING_MS],
      ['its provider never seen: no fence to stamp', {}, undefined],
      ['another provider is silent, not this one', { alice: 1, bob: 600 }, undefined],
    ])('%s', (_name, heartbeats, want) => {
      expect(stampOf(assignment({ phase: 'Running' }), situation(heartbeats))).toBe(want === undefined ? undefined : iso(want));
    });

    it('asks about the provider its namespace names', () => {
      expect(stampOf(assignment({ provider: 'bob', phase: 'Running' }), situation({ alice: 1, bob: 600 }))).toBe(iso(s(-600) + FENCING_MS));
    });
  });

  describe('billableUntil only ever moves earlier', () => {
    it.each<[string, string | undefined, string | undefined]>([
      ['none yet', undefined, iso(s(-55))],
      ['already this time', iso(s(-55)), undefined],
      ['already earlier', iso(s(-120)), undefined],
      ['later: moved earlier', iso(s(30)), iso(s(-55))],
      ['not a time: written anew', 'yesterday', iso(s(-55))],
    ])('%s', (_name, billableUntil, want) => {
      expect(stampOf(assignment({ phase: 'Succeeded', completionMs: s(-60), ...(billableUntil ? { billableUntil } : {}) }))).toBe(want);
    });

    it('does not push a withdrawn copy later on every pass', () => {
      const first = stampOf(assignment({ withdrawn: true }));
      expect(first).toBe(iso(s(60)));
      expect(stampOf(assignment({ withdrawn: true, billableUntil: first }), situation({ alice: 1 }, s(30)))).toBeUndefined();
    });
  });

  it('rounds down to whole seconds and writes RFC 3339 without fractions', () => {
    const at = Date.parse('2026-11-21T12:00:00.999Z');
    expect(stampOf(assignment({ phase: 'Succeeded' }), situation({ alice: 1 }, at))).toBe('2026-11-21T12:00:00Z');
    expect(stampOf(assignment({ phase: 'Running' }), { ...situation({}, at), heartbeatAgeMs: () => 130_250 })).toBe('2026-11-21T11:59:50Z');
    expect(stampOf(assignment({ phase: 'Succeeded' }), situation({ alice: 1 }, at), [])).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
  });

  it('stamps only the copies that need one, in their order', () => {
    const copies = [
      assignment({ name: 'running', phase: 'Running' }),
      assignment({ name: 'done', phase: 'Succeeded', completionMs: s(-60) }),
      assignment({ name: 'stamped', phase: 'Succeeded', completionMs: s(-60), billableUntil: iso(s(-55)) }),
      assignment({ name: 'lost', provider: 'bob', phase: 'Running' }),
    ];
    expect(billingStamps(copies, [], situation({ alice: 1, bob: 600 }))).toEqual([
      { namespace: 'gpufed-provider-alice', name: 'done', billableUntil: iso(s(-55)) },
      { namespace: 'gpufed-provider-bob', name: 'lost', billableUntil: iso(s(-480)) },
    ]);
  });
});
