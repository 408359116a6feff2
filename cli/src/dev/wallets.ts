// Addresses for the local federation's providers. Until the dev chain exists (the settlement work
// brings a keyring with funded keys), a provider's wallet is a fixed, valid bech32 address derived
// from its name, so onboarding and the Provider CRD see real-looking, stable values.
import { sha256 } from '@cosmjs/crypto';
import { toBech32 } from '@cosmjs/encoding';

export function devAddress(purpose: string, prefix = 'cosmos'): string {
  return toBech32(prefix, sha256(new TextEncoder().encode(`gpufed-dev:${purpose}`)).slice(0, 20));
}
