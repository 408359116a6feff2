// Keys and addresses for the local federation, derived from names so every machine and run has the
// same ones: a dev tenant's key (its Tenant proof and its grants), each provider's hot key (signs
// settlements, holds gas) and payout address, and a faucet that funds test accounts. Public by
// construction: local federation only.
import { Secp256k1, sha256 } from '@cosmjs/crypto';
import { toBech32 } from '@cosmjs/encoding';
import { publicKeyOf, settlementAccount } from '../../../operator/src/settlement/multisig.js';

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

/** A provider's hot key: its Provider's wallet, the grantee of renters' grants, the settlement signer. */
export const devProviderHotKey = (provider: string): Uint8Array => devPrivateKey(`provider/${provider}/hot`);
/** Where a provider's payments go (a cold address: no key is needed to receive). */
export const devProviderPayout = (provider: string, prefix = 'cosmos'): string => devAddress(`provider/${provider}/payout`, prefix);
/** The dev chain's faucet: funded at genesis so tests and the demo can fund new accounts. */
export const devFaucetKey = (): Uint8Array => devPrivateKey('chain/faucet');
/** The registry's co-signing key: one member of every provider's 2-of-2 settlement account. */
export const devRegistryKey = (): Uint8Array => devPrivateKey('registry/cosign');
/** A provider's settlement account with the dev registry (the grantee of renters' grants), as the registry publishes it. */
export const devSettlementAccount = (provider: string, prefix = 'cosmos'): string => settlementAccount(publicKeyOf(devProviderHotKey(provider)), publicKeyOf(devRegistryKey()), prefix).address;
