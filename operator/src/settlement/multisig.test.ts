import { encodeAminoPubkey, rawSecp256k1PubkeyToRawAddress } from '@cosmjs/amino';
import { sha256 } from '@cosmjs/crypto';
import { fromBech32, fromHex, toBase64, toBech32, toHex } from '@cosmjs/encoding';
import { MsgSend } from 'cosmjs-types/cosmos/bank/v1beta1/tx';
import { MultiSignature } from 'cosmjs-types/cosmos/crypto/multisig/v1beta1/multisig';
import { SignMode } from 'cosmjs-types/cosmos/tx/signing/v1beta1/signing';
import { TxBody, TxRaw } from 'cosmjs-types/cosmos/tx/v1beta1/tx';
import type { Any } from 'cosmjs-types/google/protobuf/any';
import { addressOfPubkey, assembleTx, buildTx, decodeTx, publicKeyOf, settlementAccount, signDocDigest, signMember, simulationTx, verifyMember, type SettlementAccount, type TxFee } from './multisig.js';

// Keys derived from names, as the local federation derives its dev keys (cli/src/dev/wallets.ts).
const key = (purpose: string) => sha256(new TextEncoder().encode(`gpufed-dev:${purpose}`));
const PROVIDER_KEY = key('provider/alice/hot');
const REGISTRY_KEY = key('registry/cosign');
const PROVIDER_PUB = publicKeyOf(PROVIDER_KEY);
const REGISTRY_PUB = publicKeyOf(REGISTRY_KEY);
const HOT = addressOfPubkey(PROVIDER_PUB, 'cosmos');
const CHAIN = 'gpufed-dev-1';
const ACCOUNT_NUMBER = 7;

const SECP256K1_HALF_ORDER = 0xfffffffffffffffffffffffffffffffebaaedce6af48a03bbfd25e8cd0364141n / 2n;

const rawAddress = (pub: Uint8Array) => toHex(rawSecp256k1PubkeyToRawAddress(pub));

function send(from: string, to: string, amount: string): Any {
  return { typeUrl: '/cosmos.bank.v1beta1.MsgSend', value: MsgSend.encode(MsgSend.fromPartial({ fromAddress: from, toAddress: to, amount: [{ denom: 'ustake', amount }] })).finish() };
}

function draft(account: SettlementAccount, over: { sequence?: number; fee?: Partial<TxFee>; memo?: string } = {}) {
  return buildTx({
    account,
    messages: [send(account.address, 'cosmos1tlw2rnzhrexvp0rtwvtrq9527x6wpcmvcl5sk0', '8333')],
    memo: over.memo ?? 'gpufed/v1/alice/batch',
    timeoutHeight: 120,
    sequence: over.sequence ?? 3,
    fee: { amount: [{ denom: 'ustake', amount: '200' }], gasLimit: 200_000, granter: HOT, ...over.fee },
  });
}

/** Both members' signatures over the transaction, keyed as assembleTx wants them. */
function signBoth(digest: Uint8Array): Map<string, Uint8Array> {
  return new Map([
    [toBase64(PROVIDER_PUB), signMember(digest, PROVIDER_KEY)],
    [toBase64(REGISTRY_PUB), signMember(digest, REGISTRY_KEY)],
  ]);
}

const ACCOUNT = settlementAccount(PROVIDER_PUB, REGISTRY_PUB, 'cosmos');

describe('settlementAccount', () => {
  it('is the same account whichever order the two keys come in, members sorted by address', () => {
    const swapped = settlementAccount(REGISTRY_PUB, PROVIDER_PUB, 'cosmos');
    expect(swapped.address).toBe(ACCOUNT.address);
    expect(swapped.pubkey).toEqual(ACCOUNT.pubkey);
    expect(ACCOUNT.members.map(toHex)).toEqual(swapped.members.map(toHex));
    expect(ACCOUNT.members.map(rawAddress)).toEqual([rawAddress(PROVIDER_PUB), rawAddress(REGISTRY_PUB)].sort());
    expect(ACCOUNT.pubkey.value.threshold).toBe('2');
    expect(ACCOUNT.address).toMatch(/^cosmos1/);
    expect(ACCOUNT.address).not.toBe(HOT);
  });

  it('derives what `wasmd keys add --multisig=test3,test1 --multisig-threshold 2` derives (cosmjs testgroup3)', () => {
    // wasmd's test1 and test3 keys and the 2-of-2 it made of them (it sorts members by address data).
    const test1 = fromHex('038cb598ee54130d34f8e0818e7787aa06139a0e2d0026cadb662b55cf16859a67');
    const test3 = fromHex('03cc93519d61b686da6f0e8cff9431e356b45f91063ed6f81f79ddd898858800f3');
    const testgroup3 = fromBech32('wasmpub1ytql0csgqgfzd666axrjzquvkkvwu4qnp5603cyp3emc02sxzwdqutgqym9dke3t2h83dpv6vufzd666axrjzq7vjdge6cdksmdx7r5vl72rrc6kk30ezp376mup77wamzvgtzqq7vzjhugu', 1023).data;
    // The SDK's LegacyAminoPubKey.Address(): sha256 of its amino bytes, truncated to 20.
    const address = toBech32('wasm', sha256(testgroup3).slice(0, 20));
    for (const [a, b] of [[test3, test1], [test1, test3]] as const) {
      const account = settlementAccount(a, b, 'wasm');
      expect(toHex(encodeAminoPubkey(account.pubkey))).toBe(toHex(testgroup3));
      expect(account.address).toBe(address);
      expect(account.members.map(toHex)).toEqual([toHex(test1), toHex(test3)]);
    }
  });

  it('refuses one key for both members', () => {
    expect(() => settlementAccount(PROVIDER_PUB, new Uint8Array(PROVIDER_PUB), 'cosmos')).toThrow(/different keys/);
  });
});

describe('signing a settlement', () => {
  it('round-trips: each member signs the sign doc digest and each signature verifies for its own key only', () => {
    const digest = signDocDigest(draft(ACCOUNT), CHAIN, ACCOUNT_NUMBER);
    expect(digest).toHaveLength(32);
    const mine = signMember(digest, PROVIDER_KEY);
    const theirs = signMember(digest, REGISTRY_KEY);
    expect(mine).toHaveLength(64);
    // The SDK refuses a high-s signature: s must be at most half the curve order.
    for (const sig of [mine, theirs]) expect(BigInt(`0x${toHex(sig.slice(32))}`) <= SECP256K1_HALF_ORDER).toBe(true);
    expect(verifyMember(digest, mine, PROVIDER_PUB)).toBe(true);
    expect(verifyMember(digest, theirs, REGISTRY_PUB)).toBe(true);
    expect(verifyMember(digest, mine, REGISTRY_PUB)).toBe(false);
    expect(verifyMember(signDocDigest(draft(ACCOUNT), CHAIN, ACCOUNT_NUMBER + 1), mine, PROVIDER_PUB)).toBe(false);
    expect(verifyMember(signDocDigest(draft(ACCOUNT), 'other-chain', ACCOUNT_NUMBER), mine, PROVIDER_PUB)).toBe(false);
    expect(verifyMember(digest, mine.slice(0, 63), PROVIDER_PUB)).toBe(false);
    expect(verifyMember(digest, new Uint8Array(64), PROVIDER_PUB)).toBe(false);
  });

  it('signs what the AuthInfo says too: another fee is another digest', () => {
    const a = signDocDigest(draft(ACCOUNT), CHAIN, ACCOUNT_NUMBER);
    const b = signDocDigest(draft(ACCOUNT, { fee: { amount: [{ denom: 'ustake', amount: '201' }] } }), CHAIN, ACCOUNT_NUMBER);
    expect(toHex(a)).not.toBe(toHex(b));
  });

  it('is deterministic: the same inputs give the same bytes', () => {
    const once = () => {
      const tx = draft(ACCOUNT);
      return assembleTx(tx, ACCOUNT, signBoth(signDocDigest(tx, CHAIN, ACCOUNT_NUMBER)));
    };
    expect(toHex(once())).toBe(toHex(once()));
    expect(toHex(signMember(signDocDigest(draft(ACCOUNT), CHAIN, 1), PROVIDER_KEY))).toBe(toHex(signMember(signDocDigest(draft(ACCOUNT), CHAIN, 1), PROVIDER_KEY)));
  });
});

describe('assembleTx', () => {
  it("puts one MultiSignature in the TxRaw, the members' signatures in the multisig's order", () => {
    const tx = draft(ACCOUNT);
    const sigs = signBoth(signDocDigest(tx, CHAIN, ACCOUNT_NUMBER));
    const raw = TxRaw.decode(assembleTx(tx, ACCOUNT, sigs));
    expect(toHex(raw.bodyBytes)).toBe(toHex(tx.bodyBytes));
    expect(toHex(raw.authInfoBytes)).toBe(toHex(tx.authInfoBytes));
    expect(raw.signatures).toHaveLength(1);
    const multi = MultiSignature.decode(raw.signatures[0] ?? new Uint8Array());
    expect(multi.signatures.map(toHex)).toEqual(ACCOUNT.members.map((m) => toHex(sigs.get(toBase64(m)) ?? new Uint8Array())));
  });

  it('assembles the same bytes whichever order the signatures were collected in', () => {
    const tx = draft(ACCOUNT);
    const sigs = signBoth(signDocDigest(tx, CHAIN, ACCOUNT_NUMBER));
    const reversed = new Map([...sigs].reverse());
    expect(toHex(assembleTx(tx, ACCOUNT, reversed))).toBe(toHex(assembleTx(tx, ACCOUNT, sigs)));
  });

  it('refuses to assemble without every member signature', () => {
    const tx = draft(ACCOUNT);
    const digest = signDocDigest(tx, CHAIN, ACCOUNT_NUMBER);
    expect(() => assembleTx(tx, ACCOUNT, new Map([[toBase64(PROVIDER_PUB), signMember(digest, PROVIDER_KEY)]]))).toThrow(`No signature of member ${toBase64(REGISTRY_PUB)} of ${ACCOUNT.address}`);
  });
});

describe('simulationTx', () => {
  it('carries two 64-byte zero signatures in their places', () => {
    const tx = draft(ACCOUNT);
    const raw = TxRaw.decode(simulationTx(tx, ACCOUNT));
    expect(toHex(raw.bodyBytes)).toBe(toHex(tx.bodyBytes));
    const multi = MultiSignature.decode(raw.signatures[0] ?? new Uint8Array());
    expect(multi.signatures.map(toHex)).toEqual(['00'.repeat(64), '00'.repeat(64)]);
  });
});

describe('decodeTx', () => {
  it('reads back what buildTx wrote: the multisig signer, both members in DIRECT, bits 2, sequence, fee and granter', () => {
    const d = decodeTx(draft(ACCOUNT, { sequence: 9 }), 'cosmos');
    expect(d).toEqual({
      messages: [send(ACCOUNT.address, 'cosmos1tlw2rnzhrexvp0rtwvtrq9527x6wpcmvcl5sk0', '8333')],
      memo: 'gpufed/v1/alice/batch',
      timeoutHeight: 120,
      extensions: 0,
      signer: { pubkeyAddress: ACCOUNT.address, multiModes: [SignMode.SIGN_MODE_DIRECT, SignMode.SIGN_MODE_DIRECT], bits: 2, sequence: 9 },
      signerCount: 1,
      fee: { amount: [{ denom: 'ustake', amount: '200' }], gasLimit: 200_000, granter: HOT, payer: '' },
    });
  });

  it('says no granter when nobody grants the fee', () => {
    const { granter: _granter, ...noGranter } = { amount: [{ denom: 'ustake', amount: '200' }], gasLimit: 200_000, granter: HOT };
    const tx = buildTx({ account: ACCOUNT, messages: [], memo: '', timeoutHeight: 1, sequence: 0, fee: noGranter });
    expect(decodeTx(tx, 'cosmos').fee.granter).toBe('');
  });

  it.each<[string, Partial<TxBody>, number]>([
    ['an extension option', { extensionOptions: [{ typeUrl: '/x.Ext', value: new Uint8Array([1]) }] }, 1],
    ['a non-critical extension option', { nonCriticalExtensionOptions: [{ typeUrl: '/x.Ext', value: new Uint8Array([1]) }, { typeUrl: '/x.Ext', value: new Uint8Array([2]) }] }, 2],
    ['unordered', { unordered: true }, 1],
  ])('counts the body fields a settlement never uses: %s', (_name, extra, extensions) => {
    const tx = draft(ACCOUNT);
    const body = TxBody.encode(TxBody.fromPartial({ ...TxBody.decode(tx.bodyBytes), ...extra })).finish();
    expect(decodeTx({ ...tx, bodyBytes: body }, 'cosmos').extensions).toBe(extensions);
  });

  it('throws on bytes that are no transaction', () => {
    expect(() => decodeTx({ bodyBytes: new Uint8Array([0xff, 0xff, 0xff]), authInfoBytes: new Uint8Array() }, 'cosmos')).toThrow();
  });
});
