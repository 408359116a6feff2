// Raw secp256k1 keys as gpufed keeps them: 32 bytes in hex, in a file (a mounted Secret) or an
// environment variable, never on a command line. A raw key avoids any HD-path mismatch between tools.
import { Secp256k1 } from '@cosmjs/crypto';
import { fromHex, toBech32 } from '@cosmjs/encoding';
import { rawSecp256k1PubkeyToRawAddress } from '@cosmjs/amino';

/** The key a hex string holds (whitespace and a 0x prefix allowed); `source` names it in errors. */
export function parsePrivateKeyHex(text: string, source: string): Uint8Array {
  const hex = text.trim().replace(/^0x/i, '');
  if (!/^[0-9a-fA-F]{64}$/.test(hex)) throw new Error(`${source} must hold a secp256k1 private key as 64 hex digits`);
  const key = fromHex(hex);
  try {
    Secp256k1.makeKeypair(key);
  } catch {
    throw new Error(`${source} is not a valid secp256k1 private key`);
  }
  return key;
}

/** The bech32 account address of a private key. */
export function keyAddress(privateKey: Uint8Array, prefix = 'cosmos'): string {
  const pub = Secp256k1.compressPubkey(Secp256k1.makeKeypair(privateKey).pubkey);
  return toBech32(prefix, rawSecp256k1PubkeyToRawAddress(pub));
}
