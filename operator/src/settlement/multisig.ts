// The provider's settlement account: a 2-of-2 multisig (the Cosmos SDK's LegacyAminoPubKey,
// threshold 2) of the provider's hot key and the registry's key. Renters grant it their spending
// cap, so a renter's coins move only in a transaction both keys signed: the provider proposes what
// its records say is due, the registry co-signs only what it verified.
//
// Both members sign in SIGN_MODE_DIRECT over the same sign doc (checked on wasmd 0.61 / SDK 0.53:
// a 2-of-2 of DIRECT members is accepted, a single member's signature is refused with code 4, and
// the grant, its allow list and its spend limit bind the multisig's MsgExec as they bind a single
// key's). cosmjs only assembles multisig transactions for Amino JSON signers (and its
// makeMultisignedTx fails on bech32 limits in 0.39), so the AuthInfo and the MultiSignature are
// built here from cosmjs-types. Members are sorted by address, as the SDK's `keys add --multisig`
// and cosmjs sort them, so every party derives the same account from the two public keys. Pure.
import { createMultisigThresholdPubkey, encodeSecp256k1Pubkey, pubkeyToAddress, type MultisigThresholdPubkey } from '@cosmjs/amino';
import { Secp256k1, Secp256k1Signature, sha256 } from '@cosmjs/crypto';
import { fromBase64, toBase64 } from '@cosmjs/encoding';
import { decodePubkey, encodePubkey, makeSignBytes } from '@cosmjs/proto-signing';
import { CompactBitArray, MultiSignature } from 'cosmjs-types/cosmos/crypto/multisig/v1beta1/multisig';
import { SignMode } from 'cosmjs-types/cosmos/tx/signing/v1beta1/signing';
import { AuthInfo, SignDoc, TxBody, TxRaw } from 'cosmjs-types/cosmos/tx/v1beta1/tx';
import type { Any } from 'cosmjs-types/google/protobuf/any';

export const SETTLEMENT_THRESHOLD = 2;

export interface SettlementAccount {
  /** The multisig's bech32 address: the grantee and the signer of settlements. */
  address: string;
  pubkey: MultisigThresholdPubkey;
  /** The members' compressed public keys, in the multisig's (address) order. */
  members: Uint8Array[];
}

/** The compressed secp256k1 public key of a private key. */
export function publicKeyOf(privateKey: Uint8Array): Uint8Array {
  return Secp256k1.compressPubkey(Secp256k1.makeKeypair(privateKey).pubkey);
}

/** The single-key account address of a compressed public key. */
export function addressOfPubkey(pubkey: Uint8Array, prefix: string): string {
  return pubkeyToAddress(encodeSecp256k1Pubkey(pubkey), prefix);
}

/** The 2-of-2 settlement account of a provider's hot key and the registry's key. */
export function settlementAccount(providerPubkey: Uint8Array, registryPubkey: Uint8Array, prefix: string): SettlementAccount {
  if (toBase64(providerPubkey) === toBase64(registryPubkey)) throw new Error('The provider and the registry must hold different keys');
  const pubkey = createMultisigThresholdPubkey([encodeSecp256k1Pubkey(providerPubkey), encodeSecp256k1Pubkey(registryPubkey)], SETTLEMENT_THRESHOLD);
  return { address: pubkeyToAddress(pubkey, prefix), pubkey, members: pubkey.value.pubkeys.map((p) => fromBase64(p.value)) };
}

export interface TxFee {
  amount: { denom: string; amount: string }[];
  gasLimit: number;
  /** Who pays the fee through an x/feegrant allowance (the provider's hot key), if anyone. */
  granter?: string;
}

export interface UnsignedTx {
  bodyBytes: Uint8Array;
  authInfoBytes: Uint8Array;
}

/** Both members signed, in the multisig's order: bits [1, 1], one DIRECT mode each. */
function bothSign(): CompactBitArray {
  return CompactBitArray.fromPartial({ elems: new Uint8Array([0b1100_0000]), extraBitsStored: SETTLEMENT_THRESHOLD });
}

/**
 * The transaction's body and AuthInfo, fixed before anyone signs: SIGN_MODE_DIRECT covers the
 * AuthInfo (the signer's mode infos included), so both members sign exactly these bytes.
 */
export function buildTx(o: { account: SettlementAccount; messages: Any[]; memo: string; timeoutHeight: number; sequence: number; fee: TxFee }): UnsignedTx {
  const bodyBytes = TxBody.encode(TxBody.fromPartial({ messages: o.messages, memo: o.memo, timeoutHeight: BigInt(o.timeoutHeight) })).finish();
  const signerInfo = {
    publicKey: encodePubkey(o.account.pubkey),
    modeInfo: { multi: { bitarray: bothSign(), modeInfos: o.account.members.map(() => ({ single: { mode: SignMode.SIGN_MODE_DIRECT } })) } },
    sequence: BigInt(o.sequence),
  };
  const authInfoBytes = AuthInfo.encode(AuthInfo.fromPartial({ signerInfos: [signerInfo], fee: { amount: o.fee.amount, gasLimit: BigInt(o.fee.gasLimit), granter: o.fee.granter ?? '', payer: '' } })).finish();
  return { bodyBytes, authInfoBytes };
}

/** What each member signs: sha256 of the SIGN_MODE_DIRECT sign doc. */
export function signDocDigest(tx: UnsignedTx, chainId: string, accountNumber: number): Uint8Array {
  return sha256(makeSignBytes(SignDoc.fromPartial({ bodyBytes: tx.bodyBytes, authInfoBytes: tx.authInfoBytes, chainId, accountNumber: BigInt(accountNumber) })));
}

/** One member's signature over the digest: 64 bytes r‖s. */
export function signMember(digest: Uint8Array, privateKey: Uint8Array): Uint8Array {
  const sig = Secp256k1.createSignature(digest, privateKey);
  return new Uint8Array([...sig.r(32), ...sig.s(32)]);
}

/** Whether `signature` (64 bytes r‖s) is `pubkey`'s over the digest. */
export function verifyMember(digest: Uint8Array, signature: Uint8Array, pubkey: Uint8Array): boolean {
  try {
    return Secp256k1.verifySignature(Secp256k1Signature.fromFixedLength(signature), digest, pubkey);
  } catch {
    return false;
  }
}

/** The signed transaction: one MultiSignature with each member's signature in the multisig's order. */
export function assembleTx(tx: UnsignedTx, account: SettlementAccount, signatures: ReadonlyMap<string, Uint8Array>): Uint8Array {
  const ordered = account.members.map((m) => {
    const sig = signatures.get(toBase64(m));
    if (!sig) throw new Error(`No signature of member ${toBase64(m)} of ${account.address}`);
    return sig;
  });
  const multi = MultiSignature.encode(MultiSignature.fromPartial({ signatures: ordered })).finish();
  return TxRaw.encode(TxRaw.fromPartial({ bodyBytes: tx.bodyBytes, authInfoBytes: tx.authInfoBytes, signatures: [multi] })).finish();
}

/** The transaction with zero signatures in their places, for simulating its gas (signatures are not checked there). */
export function simulationTx(tx: UnsignedTx, account: SettlementAccount): Uint8Array {
  return assembleTx(tx, account, new Map(account.members.map((m) => [toBase64(m), new Uint8Array(64)])));
}

/** What a proposed transaction says, decoded for the co-signer's checks. Throws on bytes that are no transaction. */
export interface DecodedTx {
  messages: Any[];
  memo: string;
  timeoutHeight: number;
  /** Body fields a settlement never uses; any of them makes it refused. */
  extensions: number;
  signer: { pubkeyAddress?: string; multiModes: SignMode[]; bits: number; sequence: number } | undefined;
  signerCount: number;
  fee: { amount: { denom: string; amount: string }[]; gasLimit: number; granter: string; payer: string };
}

export function decodeTx(tx: UnsignedTx, prefix: string): DecodedTx {
  const body = TxBody.decode(tx.bodyBytes);
  const auth = AuthInfo.decode(tx.authInfoBytes);
  const info = auth.signerInfos[0];
  return {
    messages: body.messages,
    memo: body.memo,
    timeoutHeight: Number(body.timeoutHeight),
    extensions: body.extensionOptions.length + body.nonCriticalExtensionOptions.length + (body.unordered ? 1 : 0) + (body.timeoutTimestamp ? 1 : 0),
    signer: info && signerOf(info, prefix),
    signerCount: auth.signerInfos.length,
    fee: { amount: auth.fee?.amount ?? [], gasLimit: Number(auth.fee?.gasLimit ?? 0n), granter: auth.fee?.granter ?? '', payer: auth.fee?.payer ?? '' },
  };
}

function signerOf(info: AuthInfo['signerInfos'][number], prefix: string): NonNullable<DecodedTx['signer']> {
  const multi = info.modeInfo?.multi;
  const pubkey = info.publicKey ? decodePubkey(info.publicKey) : undefined;
  return {
    ...(pubkey ? { pubkeyAddress: pubkeyToAddress(pubkey, prefix) } : {}),
    multiModes: (multi?.modeInfos ?? []).map((m) => m.single?.mode ?? SignMode.UNRECOGNIZED),
    bits: multi?.bitarray ? countBits(multi.bitarray) : 0,
    sequence: Number(info.sequence),
  };
}

function countBits(b: CompactBitArray): number {
  let n = 0;
  const total = (b.elems.length - 1) * 8 + (b.extraBitsStored || 8);
  for (let i = 0; i < total; i++) if (((b.elems[i >> 3] ?? 0) >> (7 - (i & 7))) & 1) n++;
  return n;
}
