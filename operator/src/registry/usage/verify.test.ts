import { sha256 } from '@cosmjs/crypto';
import type { Assignment, UsageRecord, UsageRecordSpec } from '../../api/index.js';
import { signUsageRecord } from '../../metering/evidence.js';
import { keyAddress } from '../../settlement/keys.js';
import { runWindow, verifyChain, type VerifyInput } from './verify.js';

const key = sha256(new TextEncoder().encode('verify-test:alice-hot'));
const other = sha256(new TextEncoder().encode('verify-test:mallory'));
const WALLET = keyAddress(key);
const PAYEE = keyAddress(sha256(new TextEncoder().encode('verify-test:payout')));
const PAYER = keyAddress(sha256(new TextEncoder().encode('verify-test:carol')));
const T0 = Date.parse('2026-11-21T12:00:00Z');
const NOW = T0 + 3_600_000;
const iso = (ms: number) => new Date(ms).toISOString();
const PRICE = 1_200_000n; // per GPU-hour: 333.33 per GPU-second

function assignment(o: { count?: number; maxDurationSeconds?: number; billableUntil?: number } = {}): Assignment {
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'Assignment',
    metadata: { name: 'carol-train-1', namespace: 'gpufed-provider-alice', creationTimestamp: new Date(T0) },
    spec: {
      jobRef: { namespace: 'carol', name: 'train', uid: '3f1c9a52-7b0e-4d6a-9c21-5e8f0b7d4a13' },
      epoch: 1,
      image: 'x',
      resources: { gpu: { count: o.count ?? 2 } },
      model: 'NVIDIA-GeForce-RTX-4090',
      pricePerGpuHour: `${PRICE}ustake`,
      maxDurationSeconds: o.maxDurationSeconds ?? 3600,
      payer: PAYER,
      ...(o.billableUntil ? { billableUntil: iso(o.billableUntil).replace(/\.\d{3}Z$/, 'Z') } : {}),
    },
  };
}

const total = (gpuMs: number) => (PRICE * BigInt(gpuMs)) / 3_600_000n;

let n = 0;
/** A record as an honest agent writes it: amounts from cumulative GPU time, signed with the hot key; `edit` forges it. */
function record(startMs: number, endMs: number, prevCumulative: number, cumulative: number, o: { final?: boolean; edit?: (s: UsageRecordSpec) => void; sign?: Uint8Array | null; verdict?: 'True' | 'False' } = {}): UsageRecord {
  const a = assignment();
  const spec: UsageRecordSpec = {
    assignmentName: a.metadata.name ?? '',
    jobRef: a.spec.jobRef,
    epoch: 1,
    model: a.spec.model,
    gpus: 2,
    period: { start: iso(startMs), end: iso(endMs) },
    gpuMilliseconds: { cumulative, delta: cumulative - prevCumulative },
    pricePerGpuHour: a.spec.pricePerGpuHour,
    amount: `${total(cumulative) - total(prevCumulative)}ustake`,
    payer: PAYER,
    payee: PAYEE,
    final: o.final ?? false,
    evidenceDigest: '0'.repeat(64),
  };
  o.edit?.(spec);
  if (o.sign !== null) spec.signature = signUsageRecord(spec, o.sign ?? key);
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'UsageRecord',
    metadata: { name: `r${++n}`, namespace: 'gpufed-provider-alice', creationTimestamp: new Date(endMs + 5000) },
    spec,
    ...(o.verdict ? { status: { conditions: [{ type: 'Verified', status: o.verdict, reason: o.verdict === 'True' ? 'Verified' : 'AmountMismatch', message: '', lastTransitionTime: iso(endMs) }] } } : {}),
  };
}

const MIN = 60_000;
function input(records: UsageRecord[], over: Partial<VerifyInput> = {}): VerifyInput {
  const a = assignment();
  return { assignment: a, window: runWindow(a), records, provider: { wallet: WALLET, payee: PAYEE }, nowMs: NOW, skewMs: 2000, ...over };
}
const verdicts = (i: VerifyInput) => [...verifyChain(i).values()].map((v) => (v.status === 'True' ? 'Verified' : v.reason));

describe('verifyChain: an honest chain', () => {
  it('verifies records that continue each other, amounts floor(price × cumulative) minus the previous, within the window', () => {
    // 2 GPUs from 30 s after placement: 5-minute periods.
    const r1 = record(T0 + 30_000, T0 + 5 * MIN, 0, 2 * (5 * MIN - 30_000));
    const r2 = record(T0 + 5 * MIN, T0 + 10 * MIN, 2 * (5 * MIN - 30_000), 2 * (10 * MIN - 30_000), { final: true });
    expect(verdicts(input([r2, r1]))).toEqual(['Verified', 'Verified']);
  });
});

describe('verifyChain: what a provider cannot make the registry believe', () => {
  const honest = () => record(T0 + 30_000, T0 + 5 * MIN, 0, 2 * (5 * MIN - 30_000));
  it.each<[string, () => UsageRecord, Partial<VerifyInput>, string]>([
    ['a record for a job never placed here (no Assignment)', honest, { assignment: undefined, window: undefined }, 'NoAssignment'],
    ['another payer', () => record(T0 + 30_000, T0 + 5 * MIN, 0, 1000, { edit: (s) => (s.payer = WALLET) }), {}, 'AssignmentMismatch'],
    ['a price above the Assignment’s', () => record(T0 + 30_000, T0 + 5 * MIN, 0, 1000, { edit: (s) => { s.pricePerGpuHour = '9999999ustake'; s.amount = `${(9_999_999n * 1000n) / 3_600_000n}ustake`; } }), {}, 'AssignmentMismatch'],
    ['another job of the same tenant', () => record(T0 + 30_000, T0 + 5 * MIN, 0, 1000, { edit: (s) => (s.jobRef = { ...s.jobRef, uid: '00000000-0000-0000-0000-000000000000' }) }), {}, 'AssignmentMismatch'],
    ['another epoch', () => record(T0 + 30_000, T0 + 5 * MIN, 0, 1000, { edit: (s) => (s.epoch = 2) }), {}, 'AssignmentMismatch'],
    ['more GPUs than placed', () => record(T0 + 30_000, T0 + 5 * MIN, 0, 1000, { edit: (s) => (s.gpus = 8) }), {}, 'AssignmentMismatch'],
    ['another model', () => record(T0 + 30_000, T0 + 5 * MIN, 0, 1000, { edit: (s) => (s.model = 'NVIDIA-H100') }), {}, 'AssignmentMismatch'],
    ['a payee that is not the payout', () => record(T0 + 30_000, T0 + 5 * MIN, 0, 1000, { edit: (s) => (s.payee = WALLET) }), {}, 'AssignmentMismatch'],
    ['no signature', () => record(T0 + 30_000, T0 + 5 * MIN, 0, 1000, { sign: null }), {}, 'BadSignature'],
    ["someone else's signature", () => record(T0 + 30_000, T0 + 5 * MIN, 0, 1000, { sign: other }), {}, 'BadSignature'],
    ['an amount that is not price × GPU-ms', () => record(T0 + 30_000, T0 + 5 * MIN, 0, 1000, { edit: (s) => (s.amount = '1000000ustake') }), {}, 'AmountMismatch'],
    ['a delta that is not cumulative minus the previous', () => record(T0 + 30_000, T0 + 5 * MIN, 0, 1000, { edit: (s) => (s.gpuMilliseconds.delta = 999) }), {}, 'AmountMismatch'],
    ['a period in 2099', () => record(Date.parse('2099-01-01T00:00:00Z'), Date.parse('2099-01-01T00:05:00Z'), 0, 1000), {}, 'FuturePeriod'],
    ['GPU time before the job was placed', () => record(T0 - 10 * MIN, T0 + 5 * MIN, 0, 1000), {}, 'OutsideRunWindow'],
    ['a GPU-hour in five minutes', () => record(T0 + 30_000, T0 + 5 * MIN, 0, 3_600_000), {}, 'OutsideRunWindow'],
  ])('disputes %s', (_what, make, over, reason) => {
    expect(verdicts(input([make()], over))).toEqual([reason]);
  });

  it('never pays past the fence or the withdrawal (billableUntil), nor past maxDurationSeconds', () => {
    const a = assignment({ billableUntil: T0 + 2 * MIN });
    const withinFence = record(T0 + 30_000, T0 + 5 * MIN, 0, 2 * (2 * MIN - 30_000), { final: true });
    const pastFence = record(T0 + 30_000, T0 + 5 * MIN, 0, 2 * (5 * MIN - 30_000), { final: true });
    expect(verdicts(input([withinFence], { assignment: a, window: runWindow(a) }))).toEqual(['Verified']);
    expect(verdicts(input([pastFence], { assignment: a, window: runWindow(a) }))).toEqual(['OutsideRunWindow']);
    // The fence the registry sees live (the last heartbeat it saw plus the fencing timeout) bounds it too.
    expect(verdicts(input([pastFence], { window: runWindow(assignment(), T0 + 2 * MIN) }))).toEqual(['OutsideRunWindow']);
    const short = assignment({ maxDurationSeconds: 60 });
    expect(verdicts(input([record(T0, T0 + 5 * MIN, 0, 2 * 5 * MIN)], { assignment: short, window: runWindow(short) }))).toEqual(['OutsideRunWindow']);
  });
});

describe('verifyChain: the chain', () => {
  const r1 = () => record(T0, T0 + 5 * MIN, 0, 100_000);
  it('disputes a fork (a second record for GPU time already claimed), a gap, and anything after the final record', () => {
    const first = r1();
    const fork = record(T0, T0 + 6 * MIN, 0, 100_000);
    expect(verdicts(input([first, fork]))).toEqual(['Verified', 'ChainBroken']);
    const gap = record(T0 + 7 * MIN, T0 + 8 * MIN, 100_000, 110_000);
    expect(verdicts(input([r1(), gap]))).toEqual(['Verified', 'ChainBroken']);
    const final = record(T0, T0 + 5 * MIN, 0, 100_000, { final: true });
    const after = record(T0 + 5 * MIN, T0 + 6 * MIN, 100_000, 110_000);
    expect(verdicts(input([final, after]))).toEqual(['Verified', 'ChainBroken']);
  });

  it('disputes cumulative GPU time that goes back', () => {
    const back = record(T0 + 5 * MIN, T0 + 10 * MIN, 100_000, 90_000, { edit: (s) => { s.gpuMilliseconds = { cumulative: 90_000, delta: 0 }; s.amount = '0ustake'; } });
    expect(verdicts(input([r1(), back]))).toEqual(['Verified', 'AmountMismatch']);
  });

  it('keeps the verdicts it wrote (sticky): a record inserted later cannot unsettle a verified one, and is disputed itself', () => {
    const verified = record(T0, T0 + 5 * MIN, 0, 100_000, { verdict: 'True' });
    // Backdated: its period ends before the verified one's, so it sorts first.
    const inserted = record(T0, T0 + 4 * MIN, 0, 90_000);
    const out = verifyChain(input([verified, inserted]));
    expect([...out.keys()]).toEqual([inserted.metadata.name]);
    expect(out.get(inserted.metadata.name ?? '')).toMatchObject({ status: 'False', reason: 'ChainBroken' });
  });

  it('continues the chain from a disputed record without paying for it twice', () => {
    const wrongAmount = record(T0, T0 + 5 * MIN, 0, 100_000, { edit: (s) => (s.amount = '1ustake') });
    const next = record(T0 + 5 * MIN, T0 + 10 * MIN, 100_000, 200_000);
    expect(verdicts(input([wrongAmount, next]))).toEqual(['AmountMismatch', 'Verified']);
  });
});
