import { sha256 } from '@cosmjs/crypto';
import { toBase64 } from '@cosmjs/encoding';
import { MsgExec } from 'cosmjs-types/cosmos/authz/v1beta1/tx';
import type { Settlement, UsageRecord } from '../../api/index.js';
import { execMessage, type ExecSend } from '../../settlement/chain.js';
import { keyAddress } from '../../settlement/keys.js';
import { buildTx, publicKeyOf, settlementAccount, signDocDigest, signMember, type TxFee } from '../../settlement/multisig.js';
import { decideCosign, decideFollow, type CosignInput } from './cosign.js';

const k = (s: string) => sha256(new TextEncoder().encode(`cosign-test:${s}`));
const HOT = k('alice-hot');
const REGISTRY = k('registry');
const HOT_ADDRESS = keyAddress(HOT);
const PAYOUT = keyAddress(k('payout'));
const CAROL = keyAddress(k('carol'));
const DAVE = keyAddress(k('dave'));
const ACCOUNT = settlementAccount(publicKeyOf(HOT), publicKeyOf(REGISTRY), 'cosmos');
const CHAIN = { chainId: 'gpufed-dev-1', accountNumber: 14, sequence: 3, height: 100 };
const MEMO = `gpufed/v1/alice/${'ab'.repeat(32)}`;

function record(name: string, payer: string, amount: string, verified: 'True' | 'False' | 'unchecked' = 'True'): UsageRecord {
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'UsageRecord',
    metadata: { name, namespace: 'gpufed-provider-alice' },
    spec: { assignmentName: 'a', jobRef: { namespace: 'carol', name: 'j', uid: 'u' }, epoch: 1, model: 'M', gpus: 1, period: { start: '2026-11-21T12:00:00Z', end: '2026-11-21T12:05:00Z' }, gpuMilliseconds: { cumulative: 1, delta: 1 }, pricePerGpuHour: '1ustake', amount, payer, payee: PAYOUT, evidenceDigest: '0'.repeat(64) },
    ...(verified !== 'unchecked' ? { status: { conditions: [{ type: 'Verified', status: verified, reason: verified === 'True' ? 'Verified' : 'OutsideRunWindow', message: '', lastTransitionTime: '2026-11-21T12:06:00Z' }] } } : {}),
  };
}

interface Draft {
  sends?: ExecSend[];
  records?: string[];
  total?: string;
  memo?: string;
  sequence?: number;
  timeoutHeight?: number;
  fee?: Partial<TxFee>;
  signer?: Uint8Array;
  grantee?: string;
  name?: string;
  state?: Settlement['status'];
}

/** A proposal as the agent writes it (settler.ts), with whatever `d` changes. */
function proposal(d: Draft = {}): Settlement {
  const sends = d.sends ?? [{ from: CAROL, to: PAYOUT, amount: { amount: 300n, denom: 'ustake' } }];
  const exec = execMessage(d.grantee ?? ACCOUNT.address, sends);
  const messages = [{ typeUrl: exec.typeUrl, value: MsgExec.encode(exec.value as MsgExec).finish() }];
  const sequence = d.sequence ?? CHAIN.sequence;
  const timeoutHeight = d.timeoutHeight ?? CHAIN.height + 20;
  const tx = buildTx({ account: ACCOUNT, messages, memo: d.memo ?? MEMO, timeoutHeight, sequence, fee: { amount: [{ denom: 'ustake', amount: '200' }], gasLimit: 200_000, granter: HOT_ADDRESS, ...d.fee } });
  const digest = signDocDigest(tx, CHAIN.chainId, CHAIN.accountNumber);
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'Settlement',
    metadata: { name: d.name ?? 'alice-3-x', namespace: 'gpufed-provider-alice' },
    spec: { chainId: CHAIN.chainId, account: ACCOUNT.address, accountNumber: CHAIN.accountNumber, sequence, timeoutHeight, records: d.records ?? ['r1', 'r2'], total: d.total ?? '300ustake', bodyBytes: toBase64(tx.bodyBytes), authInfoBytes: toBase64(tx.authInfoBytes), providerSignature: toBase64(signMember(digest, d.signer ?? HOT)) },
    ...(d.state ? { status: d.state } : {}),
  };
}

const records = new Map([['r1', record('r1', CAROL, '100ustake')], ['r2', record('r2', CAROL, '200ustake')], ['bad', record('bad', CAROL, '200ustake', 'False')], ['new', record('new', CAROL, '200ustake', 'unchecked')], ['d1', record('d1', DAVE, '50ustake')], ['zero', record('zero', CAROL, '0ustake')]]);

function input(s: Settlement, over: Partial<CosignInput> = {}): CosignInput {
  return { settlement: s, provider: { name: 'alice', payee: PAYOUT, hotKey: HOT_ADDRESS, account: ACCOUNT, providerPubkey: publicKeyOf(HOT) }, records, others: [], chain: CHAIN, prefix: 'cosmos', maxTimeoutBlocks: 100, ...over };
}
const outcome = (i: CosignInput) => {
  const d = decideCosign(i);
  return d.kind === 'refuse' ? d.reason : d.kind;
};

describe('decideCosign', () => {
  it('co-signs a proposal that pays exactly its verified records to the payout, at the account sequence', () => {
    expect(outcome(input(proposal()))).toBe('cosign');
    const two = proposal({ sends: [{ from: CAROL, to: PAYOUT, amount: { amount: 300n, denom: 'ustake' } }, { from: DAVE, to: PAYOUT, amount: { amount: 50n, denom: 'ustake' } }], records: ['d1', 'r1', 'r2'], total: '350ustake' });
    expect(outcome(input(two))).toBe('cosign');
  });

  it.each<[string, () => Settlement, Partial<CosignInput>, string]>([
    ['a payment to an address other than the payout', () => proposal({ sends: [{ from: CAROL, to: HOT_ADDRESS, amount: { amount: 300n, denom: 'ustake' } }] }), {}, 'NotASettlement'],
    ['more than its records owe', () => proposal({ sends: [{ from: CAROL, to: PAYOUT, amount: { amount: 3000n, denom: 'ustake' } }], total: '3000ustake' }), {}, 'AmountsMismatch'],
    ['a payer its records do not name', () => proposal({ sends: [{ from: DAVE, to: PAYOUT, amount: { amount: 300n, denom: 'ustake' } }] }), {}, 'AmountsMismatch'],
    ['a total that is not what it moves', () => proposal({ total: '1ustake' }), {}, 'AmountsMismatch'],
    ['a disputed record', () => proposal({ records: ['r1', 'bad'] }), {}, 'RecordNotPayable'],
    ['a record that does not exist', () => proposal({ records: ['r1', 'ghost'] }), {}, 'RecordNotPayable'],
    ['a record with nothing due', () => proposal({ records: ['r1', 'r2', 'zero'] }), {}, 'RecordNotPayable'],
    ['a record paid already', () => proposal(), { others: [proposal({ name: 'paid', state: { state: 'Committed', txHash: 'A'.repeat(64), signedTx: 'AA==', height: 90 } })] }, 'RecordNotPayable'],
    ['a stale sequence', () => proposal({ sequence: 2 }), {}, 'WrongSequence'],
    ['a sequence ahead of the account', () => proposal({ sequence: 4 }), {}, 'WrongSequence'],
    ['a timeout height that has passed', () => proposal({ timeoutHeight: 100 }), {}, 'BadTimeout'],
    ['a timeout height too far ahead', () => proposal({ timeoutHeight: 1000 }), {}, 'BadTimeout'],
    ['another chain', () => proposal(), { chain: { ...CHAIN, chainId: 'other-1' } }, 'WrongChain'],
    ['another account number', () => proposal(), { chain: { ...CHAIN, accountNumber: 15 } }, 'WrongAccount'],
    ["a signature that is not the provider's", () => proposal({ signer: k('mallory') }), {}, 'BadSignature'],
    ['a fee paid by someone else', () => proposal({ fee: { granter: CAROL } }), {}, 'NotASettlement'],
    ['a memo that names no batch', () => proposal({ memo: 'please pay me' }), {}, 'NotASettlement'],
    ['a MsgExec by another grantee', () => proposal({ grantee: HOT_ADDRESS }), {}, 'Malformed'],
  ])('refuses %s', (_what, make, over, reason) => {
    expect(outcome(input(make(), over))).toBe(reason);
  });

  it('waits for a record the registry has not checked yet, and for an older co-signed settlement of the same record to be decided', () => {
    expect(outcome(input(proposal({ records: ['r1', 'new'] })))).toBe('wait');
    const older = proposal({ name: 'older', sequence: 2, state: { state: 'Cosigned', txHash: 'B'.repeat(64), signedTx: 'AA==' } });
    expect(outcome(input(proposal(), { others: [older] }))).toBe('wait');
  });

  it('co-signs beside another co-signed settlement of the same records at the same sequence (at most one of them is ever included)', () => {
    const rival = proposal({ name: 'rival', state: { state: 'Cosigned', txHash: 'C'.repeat(64), signedTx: 'AA==' } });
    expect(outcome(input(proposal(), { others: [rival] }))).toBe('cosign');
    // A dead one does not hold its records.
    const dead = proposal({ name: 'dead', sequence: 1, state: { state: 'Expired', txHash: 'D'.repeat(64), signedTx: 'AA==' } });
    expect(outcome(input(proposal(), { others: [dead] }))).toBe('cosign');
  });
});

describe('decideFollow', () => {
  const base = { latestHeight: 110, accountSequence: 3, sequence: 3, timeoutHeight: 120 };
  it.each<[string, Parameters<typeof decideFollow>[0], string]>([
    ['in a block with code 0', { ...base, found: { height: 105, code: 0, log: '', gasUsed: 1 } }, 'committed'],
    ['in a block with an error (out of gas)', { ...base, found: { height: 105, code: 11, log: 'out of gas', gasUsed: 1 } }, 'failed'],
    ['nowhere and past its timeout height', { ...base, found: undefined, latestHeight: 121 }, 'expired'],
    ['nowhere and its sequence used by another transaction', { ...base, found: undefined, accountSequence: 4 }, 'superseded'],
    ['nowhere yet, still valid', { ...base, found: undefined }, 'pending'],
  ])('%s: %s', (_what, i, kind) => {
    expect(decideFollow(i).kind).toBe(kind);
  });
});
