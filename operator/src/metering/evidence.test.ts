import { Secp256k1, sha256 } from '@cosmjs/crypto';
import type { UsageRecordSpec } from '../api/index.js';
import { rawSecp256k1PubkeyToRawAddress } from '@cosmjs/amino';
import { toBech32 } from '@cosmjs/encoding';
import { canonicalJson, evidenceDigest, evidenceFor, signUsageRecord, usageRecordSignedBy, verifyUsageRecord } from './evidence.js';

const spec: UsageRecordSpec = {
  assignmentName: 'carol-train-1',
  jobRef: { namespace: 'carol', name: 'train', uid: '3f1c9a52-7b0e-4d6a-9c21-5e8f0b7d4a13' },
  epoch: 1,
  model: 'NVIDIA-GeForce-RTX-4090',
  gpus: 1,
  period: { start: '2026-11-21T12:00:00.000Z', end: '2026-11-21T12:05:00.000Z' },
  gpuMilliseconds: { cumulative: 300000, delta: 300000 },
  pricePerGpuHour: '1200000ustake',
  amount: '100000ustake',
  payer: 'cosmos1hgaht9uh5ng8aqvq75ft9ct44vc2unh2tqx662',
  payee: 'cosmos1tlw2rnzhrexvp0rtwvtrq9527x6wpcmvcl5sk0',
  evidenceDigest: 'a'.repeat(64),
};

describe('canonical JSON', () => {
  it('sorts keys at every level, drops undefined, and writes bigints as strings', () => {
    expect(canonicalJson({ b: 1, a: { d: [2, { z: 1, y: undefined, x: 0 }], c: 7n } })).toBe('{"a":{"c":"7","d":[2,{"x":0,"z":1}]},"b":1}');
  });
});

describe('evidence', () => {
  const rows = {
    started: [{ metric: { uid: 'u1', pod: 'p1' }, value: [1, '10'] as [number, string] }, { metric: { uid: 'u2', pod: 'p2' }, value: [1, '20'] as [number, string] }],
    utilization: [{ metric: { pod: 'p1', namespace: 'gpufed-jobs' }, value: [1, '90'] as [number, string] }],
  };

  it("keeps only the record's own pods: a renter sees no one else's jobs", () => {
    expect(evidenceFor(rows, ['u1'], ['p1'])).toEqual({ started: [rows.started[0]], utilization: rows.utilization });
  });

  it('digests the same evidence to the same 64 hex digits whatever the key order, and different evidence differently', () => {
    const e = { queries: { started: 'q' }, evaluatedAt: 'T', window: { start: 'S', end: 'T' }, results: evidenceFor(rows, ['u1'], ['p1']) };
    const reordered = { window: { end: 'T', start: 'S' }, results: e.results, evaluatedAt: 'T', queries: { started: 'q' } };
    expect(evidenceDigest(e)).toMatch(/^[0-9a-f]{64}$/);
    expect(evidenceDigest(reordered)).toBe(evidenceDigest(e));
    expect(evidenceDigest({ ...e, evaluatedAt: 'U' })).not.toBe(evidenceDigest(e));
  });
});

describe('record signature', () => {
  const key = sha256(new TextEncoder().encode('test provider key'));
  const pub = Secp256k1.makeKeypair(key).pubkey;

  it("verifies with the provider's key and fails once any field changes", () => {
    const signed = { ...spec, signature: signUsageRecord(spec, key) };
    expect(Buffer.from(signed.signature, 'base64')).toHaveLength(64);
    expect(verifyUsageRecord(signed, pub)).toBe(true);
    expect(verifyUsageRecord(signed, Secp256k1.compressPubkey(pub))).toBe(true);
    expect(verifyUsageRecord({ ...signed, amount: '100001ustake' }, pub)).toBe(false);
    expect(verifyUsageRecord({ ...spec }, pub)).toBe(false);
    const other = Secp256k1.makeKeypair(sha256(new TextEncoder().encode('someone else'))).pubkey;
    expect(verifyUsageRecord(signed, other)).toBe(false);
  });

  it("recognises the provider's address on every signature, also one whose r or s begins with a zero byte", () => {
    const address = toBech32('cosmos', rawSecp256k1PubkeyToRawAddress(Secp256k1.compressPubkey(pub)));
    const stranger = toBech32('cosmos', rawSecp256k1PubkeyToRawAddress(Secp256k1.compressPubkey(Secp256k1.makeKeypair(sha256(new TextEncoder().encode('someone else'))).pubkey)));
    // Signing is deterministic (RFC 6979): walk the amounts until both kinds of short integer have come up (1 in 256 each).
    const seen = { r: 0, s: 0 };
    for (let i = 0; i < 4000 && (seen.r === 0 || seen.s === 0); i++) {
      const unsigned = { ...spec, amount: `${i}ustake` };
      const signed = { ...unsigned, signature: signUsageRecord(unsigned, key) };
      const raw = Buffer.from(signed.signature, 'base64');
      if (raw[0] === 0) seen.r++;
      if (raw[32] === 0) seen.s++;
      expect([i, usageRecordSignedBy(signed, address)]).toEqual([i, true]);
      expect(usageRecordSignedBy(signed, stranger)).toBe(false);
    }
    expect(seen.r).toBeGreaterThan(0);
    expect(seen.s).toBeGreaterThan(0);
  });
});
