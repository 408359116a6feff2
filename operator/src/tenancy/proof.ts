// A Tenant's proof: an ADR-036 off-chain signature (cosmjs/Keplr `signArbitrary`) by the payer
// address's key over a challenge naming both the namespace and the address, so it cannot be
// replayed for another binding. Pure: no network, no clock.
import { encodeSecp256k1Pubkey, pubkeyToAddress, serializeSignDoc, type StdSignDoc } from '@cosmjs/amino';
import { Random, Secp256k1, Secp256k1Signature, sha256 } from '@cosmjs/crypto';
import { fromBase64, fromBech32, toBase64, toHex, toUtf8 } from '@cosmjs/encoding';
import { TenantReason } from '../api/conditions.js';

export interface TenantProof {
  /** The exact text that was signed. */
  challenge: string;
  /** The 64-byte secp256k1 signature r||s, base64. */
  signature: string;
  /** The 33-byte compressed secp256k1 public key, base64. */
  pubKey: string;
}

export interface TenantProofSubject {
  spec: { namespace: string; address: string; proof: TenantProof };
}

export type ProofFailureReason = typeof TenantReason.SignatureInvalid | typeof TenantReason.PubKeyAddressMismatch | typeof TenantReason.ChallengeMismatch | typeof TenantReason.Malformed;

export type ProofVerdict = { valid: true } | { valid: false; reason: ProofFailureReason; message: string };

const CHALLENGE_PREFIX = 'gpufed.io/tenant';
const NONCE = /^[0-9a-f]{6,64}$/;
const CHALLENGE = /^gpufed\.io\/tenant namespace=\S+ address=\S+ nonce=([0-9a-f]{6,64})$/;

/**
 * The text a renter signs to bind `namespace` to `address`, e.g.
 * `gpufed.io/tenant namespace=carol address=cosmos1... nonce=8f3a2c41d9e07b65`. The nonce (lower-case
 * hex, 6 to 64 digits) makes each proof distinct; a fresh random one is drawn when it is left out.
 */
export function tenantChallenge(namespace: string, address: string, nonce: string = toHex(Random.getBytes(8))): string {
  if (!NONCE.test(nonce)) throw new Error(`nonce ${JSON.stringify(nonce)}: expected 6 to 64 lower-case hex digits`);
  return `${CHALLENGE_PREFIX} namespace=${namespace} address=${address} nonce=${nonce}`;
}

/** The ADR-036 sign doc that `signArbitrary(chainId, signer, data)` signs. */
export function adr036SignDoc(signer: string, data: string): StdSignDoc {
  return {
    chain_id: '',
    account_number: '0',
    sequence: '0',
    fee: { gas: '0', amount: [] },
    msgs: [{ type: 'sign/MsgSignData', value: { signer, data: toBase64(toUtf8(data)) } }],
    memo: '',
  };
}

/** The Tenant binding for `namespace`, signed with a 32-byte secp256k1 private key. */
export function signTenantProof(privateKey: Uint8Array, namespace: string, prefix = 'cosmos', nonce?: string): { address: string; proof: TenantProof } {
  const keypair = Secp256k1.makeKeypair(privateKey);
  const pubKey = Secp256k1.compressPubkey(keypair.pubkey);
  const address = pubkeyToAddress(encodeSecp256k1Pubkey(pubKey), prefix);
  const challenge = nonce === undefined ? tenantChallenge(namespace, address) : tenantChallenge(namespace, address, nonce);
  const hash = sha256(serializeSignDoc(adr036SignDoc(address, challenge)));
  const signature = Secp256k1.trimRecoveryByte(Secp256k1.createSignature(hash, privateKey).toFixedLength());
  return { address, proof: { challenge, signature: toBase64(signature), pubKey: toBase64(pubKey) } };
}

const fail = (reason: ProofFailureReason, message: string): ProofVerdict => ({ valid: false, reason, message });

interface Decoded {
  prefix: string;
  pubKey: Uint8Array;
  signature: Secp256k1Signature;
}

/** Decodes the address prefix, public key and signature, or says which one is malformed. */
function decode(address: string, proof: TenantProof): Decoded | string {
  let prefix: string;
  try {
    prefix = fromBech32(address, 90).prefix;
  } catch (e) {
    return `address ${JSON.stringify(address)} is not bech32: ${(e as Error).message}`;
  }
  let pubKey: Uint8Array;
  try {
    pubKey = fromBase64(proof.pubKey);
  } catch {
    return 'proof.pubKey is not base64';
  }
  if (pubKey.length !== 33 || (pubKey[0] !== 0x02 && pubKey[0] !== 0x03)) return `proof.pubKey is ${pubKey.length} bytes, not a 33-byte compressed secp256k1 key`;
  let raw: Uint8Array;
  try {
    raw = fromBase64(proof.signature);
  } catch {
    return 'proof.signature is not base64';
  }
  if (raw.length !== 64) return `proof.signature is ${raw.length} bytes, not 64 (r||s)`;
  try {
    return { prefix, pubKey, signature: Secp256k1Signature.fromFixedLength(raw) };
  } catch (e) {
    return `proof.signature: ${(e as Error).message}`;
  }
}

function hasStrings(tenant: unknown): tenant is TenantProofSubject {
  const spec = (tenant as { spec?: { namespace?: unknown; address?: unknown; proof?: Partial<Record<keyof TenantProof, unknown>> } } | null)?.spec;
  const proof = spec?.proof;
  return typeof spec?.namespace === 'string' && typeof spec.address === 'string' && typeof proof?.challenge === 'string' && typeof proof.signature === 'string' && typeof proof.pubKey === 'string';
}

/**
 * Checks a Tenant's proof: the challenge names this namespace and address, the public key is the
 * address's, and the signature over the ADR-036 sign doc verifies. Never throws.
 */
export function verifyTenantProof(tenant: TenantProofSubject): ProofVerdict {
  if (!hasStrings(tenant)) return fail('Malformed', 'spec.namespace, spec.address and spec.proof {challenge, signature, pubKey} must all be strings');
  const { namespace, address, proof } = tenant.spec;
  const nonce = CHALLENGE.exec(proof.challenge)?.[1];
  if (nonce === undefined || proof.challenge !== tenantChallenge(namespace, address, nonce)) {
    return fail('ChallengeMismatch', `proof.challenge must be "${CHALLENGE_PREFIX} namespace=${namespace} address=${address} nonce=<hex>", got ${JSON.stringify(proof.challenge)}`);
  }
  const decoded = decode(address, proof);
  if (typeof decoded === 'string') return fail('Malformed', decoded);
  let keyAddress: string;
  try {
    keyAddress = pubkeyToAddress(encodeSecp256k1Pubkey(decoded.pubKey), decoded.prefix);
  } catch (e) {
    return fail('Malformed', `proof.pubKey: ${(e as Error).message}`);
  }
  if (keyAddress !== address) return fail(TenantReason.PubKeyAddressMismatch, `proof.pubKey belongs to ${keyAddress}, not ${address}`);
  let ok: boolean;
  try {
    ok = Secp256k1.verifySignature(decoded.signature, sha256(serializeSignDoc(adr036SignDoc(address, proof.challenge))), decoded.pubKey);
  } catch (e) {
    return fail(TenantReason.SignatureInvalid, `proof.signature does not verify: ${(e as Error).message}`);
  }
  return ok ? { valid: true } : fail(TenantReason.SignatureInvalid, `proof.signature does not verify for ${address} over the challenge`);
}
