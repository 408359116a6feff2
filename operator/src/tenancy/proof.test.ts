import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { describe, expect, it } from '@jest/globals';
import { fromBase64, toBase64 } from '@cosmjs/encoding';
import { parse } from 'yaml';
import { signTenantProof, tenantChallenge, verifyTenantProof, type TenantProofSubject } from './proof.js';

const carol = parse(readFileSync(join(import.meta.dirname, '../../../crds/samples/tenant-carol.yaml'), 'utf8')) as TenantProofSubject;
const seed = (fill: number) => new Uint8Array(32).fill(fill);

function tenant(privateKey: Uint8Array, namespace: string, prefix?: string): TenantProofSubject {
  const { address, proof } = signTenantProof(privateKey, namespace, prefix);
  return { spec: { namespace, address, proof } };
}

function reasonOf(t: TenantProofSubject): string {
  const v = verifyTenantProof(t);
  return v.valid ? 'valid' : v.reason;
}

describe('tenantChallenge', () => {
  it('names the namespace, the address and the nonce, in the sample format', () => {
    expect(tenantChallenge('carol', carol.spec.address, 'b9153419cb5c5397')).toBe(carol.spec.proof.challenge);
  });

  it('draws a fresh nonce when none is given', () => {
    expect(tenantChallenge('a', 'cosmos1x')).toMatch(/^gpufed\.io\/tenant namespace=a address=cosmos1x nonce=[0-9a-f]{16}$/);
    expect(tenantChallenge('a', 'cosmos1x')).not.toBe(tenantChallenge('a', 'cosmos1x'));
  });

  it('rejects a nonce that is not hex', () => {
    expect(() => tenantChallenge('a', 'cosmos1x', 'zz zz')).toThrow(/nonce/);
  });
});

describe('verifyTenantProof', () => {
  it('verifies the real ADR-036 signature of the carol sample', () => {
    expect(verifyTenantProof(carol)).toEqual({ valid: true });
  });

  it('round-trips a proof signed with a fresh key', () => {
    const t = tenant(seed(7), 'dave');
    expect(t.spec.address).toMatch(/^cosmos1[02-9ac-hj-np-z]{38}$/);
    expect(fromBase64(t.spec.proof.pubKey)).toHaveLength(33);
    expect(fromBase64(t.spec.proof.signature)).toHaveLength(64);
    expect(t.spec.proof.challenge).toContain('namespace=dave');
    expect(t.spec.proof.challenge).toContain(`address=${t.spec.address}`);
    expect(verifyTenantProof(t)).toEqual({ valid: true });
  });

  it('honours another bech32 prefix', () => {
    const t = tenant(seed(7), 'dave', 'osmo');
    expect(t.spec.address.startsWith('osmo1')).toBe(true);
    expect(verifyTenantProof(t)).toEqual({ valid: true });
  });

  it('rejects a proof made for another namespace (ChallengeMismatch)', () => {
    const other = tenant(seed(7), 'erin');
    expect(reasonOf({ spec: { ...other.spec, namespace: 'dave' } })).toBe('ChallengeMismatch');
    expect(reasonOf({ spec: { ...carol.spec, namespace: 'mallory' } })).toBe('ChallengeMismatch');
  });

  it('rejects a challenge that does not follow the format (ChallengeMismatch)', () => {
    const t = tenant(seed(7), 'dave');
    expect(reasonOf({ spec: { ...t.spec, proof: { ...t.spec.proof, challenge: `${t.spec.proof.challenge} extra` } } })).toBe('ChallengeMismatch');
  });

  it('rejects a signature by another key (SignatureInvalid)', () => {
    const t = tenant(seed(7), 'dave');
    const other = signTenantProof(seed(9), 'dave');
    expect(reasonOf({ spec: { ...t.spec, proof: { ...t.spec.proof, signature: other.proof.signature } } })).toBe('SignatureInvalid');
  });

  it('rejects the pubKey of another address (PubKeyAddressMismatch)', () => {
    const t = tenant(seed(7), 'dave');
    const other = signTenantProof(seed(9), 'dave');
    expect(reasonOf({ spec: { ...t.spec, proof: { ...t.spec.proof, pubKey: other.proof.pubKey } } })).toBe('PubKeyAddressMismatch');
  });

  it('rejects a flipped signature byte (SignatureInvalid)', () => {
    const sig = fromBase64(carol.spec.proof.signature);
    sig[40] = (sig[40] ?? 0) ^ 0x01;
    expect(reasonOf({ spec: { ...carol.spec, proof: { ...carol.spec.proof, signature: toBase64(sig) } } })).toBe('SignatureInvalid');
  });

  it.each([
    ['garbage signature base64', { signature: '!!not base64!!' }],
    ['garbage pubKey base64', { pubKey: '%%%' }],
    ['short signature', { signature: toBase64(new Uint8Array(10)) }],
    ['uncompressed-length pubKey', { pubKey: toBase64(new Uint8Array(65).fill(4)) }],
  ])('never throws on %s (Malformed)', (_name, patch) => {
    expect(reasonOf({ spec: { ...carol.spec, proof: { ...carol.spec.proof, ...patch } } })).toBe('Malformed');
  });

  it('calls a non-bech32 address Malformed', () => {
    const address = 'cosmos1notbech32';
    const challenge = tenantChallenge('carol', address, '8f3a2c41d9e07b65');
    expect(reasonOf({ spec: { ...carol.spec, address, proof: { ...carol.spec.proof, challenge } } })).toBe('Malformed');
  });

  it('calls a missing or non-string field Malformed', () => {
    expect(reasonOf({ spec: { ...carol.spec, proof: { ...carol.spec.proof, pubKey: 42 as unknown as string } } })).toBe('Malformed');
    expect(reasonOf({} as TenantProofSubject)).toBe('Malformed');
    expect(reasonOf(null as unknown as TenantProofSubject)).toBe('Malformed');
  });
});
