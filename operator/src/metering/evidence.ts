// What backs a UsageRecord: the digest of the evidence it was computed from (the queries, the
// window, the raw Prometheus answers for its pods), and the provider's signature over the record.
// Both are over canonical JSON (sorted keys, no spaces), so anyone holding the same data gets the
// same bytes: a renter disputing a record can recompute both.
import { rawSecp256k1PubkeyToRawAddress } from '@cosmjs/amino';
import { ExtendedSecp256k1Signature, Secp256k1, Secp256k1Signature, sha256 } from '@cosmjs/crypto';
import { fromBase64, fromBech32, toBase64, toHex } from '@cosmjs/encoding';
import type { UsageRecordSpec } from '../api/index.js';
import type { PromSample } from './usage.js';

/** JSON with object keys sorted at every level and no whitespace. */
export function canonicalJson(value: unknown): string {
  if (Array.isArray(value)) return `[${value.map(canonicalJson).join(',')}]`;
  if (value !== null && typeof value === 'object') {
    const entries = Object.entries(value as Record<string, unknown>).filter(([, v]) => v !== undefined).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `{${entries.map(([k, v]) => `${JSON.stringify(k)}:${canonicalJson(v)}`).join(',')}}`;
  }
  if (typeof value === 'bigint') return JSON.stringify(value.toString());
  return JSON.stringify(value) ?? 'null';
}

export interface Evidence {
  /** Each named query and the text sent to Prometheus. */
  queries: Record<string, string>;
  /** The evaluation time (the window's end), RFC 3339. */
  evaluatedAt: string;
  window: { start: string; end: string };
  /** Each query's answer rows for the record's pods only. */
  results: Record<string, PromSample[]>;
}

/** Keeps only the rows about the given pods (by kube-state-metrics' pod uid or, for DCGM rows, pod name). */
export function evidenceFor(all: Record<string, PromSample[]>, podUids: readonly string[], podNames: readonly string[]): Record<string, PromSample[]> {
  const uids = new Set(podUids);
  const names = new Set(podNames);
  return Object.fromEntries(Object.entries(all).map(([k, rows]) => [k, rows.filter((r) => uids.has(r.metric.uid ?? '') || (r.metric.uid === undefined && names.has(r.metric.pod ?? '')))]));
}

/** SHA-256 of the evidence's canonical JSON, 64 lowercase hex digits. */
export function evidenceDigest(e: Evidence): string {
  return toHex(sha256(new TextEncoder().encode(canonicalJson(e))));
}

function specHash(spec: UsageRecordSpec): Uint8Array {
  const { signature: _ignored, ...rest } = spec;
  return sha256(new TextEncoder().encode(canonicalJson(rest)));
}

/** The provider key's signature over the record (its spec without the signature), 64 bytes r‖s, base64. */
export function signUsageRecord(spec: UsageRecordSpec, privateKey: Uint8Array): string {
  const sig = Secp256k1.createSignature(specHash(spec), privateKey);
  return toBase64(new Uint8Array([...sig.r(32), ...sig.s(32)]));
}

/** Whether `spec.signature` is the holder of `pubKey`'s (compressed or not) over the record. */
export function verifyUsageRecord(spec: UsageRecordSpec, pubKey: Uint8Array): boolean {
  if (!spec.signature) return false;
  try {
    return Secp256k1.verifySignature(Secp256k1Signature.fromFixedLength(fromBase64(spec.signature)), specHash(spec), pubKey);
  } catch {
    return false;
  }
}

/**
 * Whether the record carries a signature by the key of `address` (the Provider's wallet): the
 * public key is recovered from the 64-byte signature, so the registry needs no key beyond the
 * address the registry admin put in the Provider.
 */
export function usageRecordSignedBy(spec: UsageRecordSpec, address: string): boolean {
  if (!spec.signature) return false;
  let sig: Uint8Array;
  let want: string;
  try {
    sig = fromBase64(spec.signature);
    want = toHex(fromBech32(address, 90).data);
  } catch {
    return false;
  }
  if (sig.length !== 64) return false;
  const hash = specHash(spec);
  for (const recovery of [0, 1]) {
    try {
      // fromFixedLength, not the constructor: r or s may begin with a zero byte (1 signature in 128),
      // which the constructor refuses as padded.
      const pub = Secp256k1.compressPubkey(Secp256k1.recoverPubkey(ExtendedSecp256k1Signature.fromFixedLength(new Uint8Array([...sig, recovery])), hash));
      if (toHex(rawSecp256k1PubkeyToRawAddress(pub)) === want && Secp256k1.verifySignature(Secp256k1Signature.fromFixedLength(sig), hash, pub)) return true;
    } catch {
      // Not a point for this recovery id: try the other.
    }
  }
  return false;
}
