// Addresses and keys for the local federation. Until the dev chain exists (the settlement work
// brings a keyring with funded keys), a provider's wallet is a fixed, valid bech32 address derived
// from its name, so onboarding and the Provider CRD see real-looking, stable values. A dev tenant
// signs its Tenant proof, so it gets a real private key, derived the same way.
import { Secp256k1, sha256 } from '@cosmjs/crypto';
import { toBech32 } from '@cosmjs/encoding';

export function devAddress(purpose: string, prefix = 'cosmos'): string {
  return toBech32(prefix, sha256(new TextEncoder().encode(`gpufed-dev:${purpose}`)).slice(0, 20));
}

/**
 * A secp256k1 private key derived from `purpose` (e.g. `tenant/carol`): the same on every machine
 * and run, so a dev tenant's address never changes. Public by construction: local federation only.
 */
export function devPrivateKey(purpose: string): Uint8Array {
  const key = sha256(new TextEncoder().encode(`gpufed-dev:${purpose}`));
  // A hash is a valid key unless it is 0 or at least the curve order (odds about 2^-128): checked, not assumed.
  try {
    Secp256k1.makeKeypair(key);
  } catch (e) {
    throw new Error(`The dev key for ${purpose} is not a valid secp256k1 private key; choose another purpose`, { cause: e });
  }
  return key;
}
