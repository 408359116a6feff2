// Whether the registry co-signs a Settlement the provider proposed, and what a co-signed one's fate
// on chain is. Pure: the cosigner controller gathers (a fresh list of the provider's Settlements,
// the settlement account's number and sequence and the height from the chain, the records with
// the registry's own verdicts) and applies.
//
// The registry's signature is the second half of the only key that can move the renters' coins
// (the 2-of-2 settlement account), so this is where "no money moves for usage the registry has not
// verified" and "nothing is paid twice" are decided:
//  - the transaction is exactly one MsgExec by the settlement account of MsgSends from each payer
//    to the provider's payout, each payer's sum equal to its listed records', every record
//    verified by the registry and not paid;
//  - it is signed at the account's current sequence, and no record of it is claimed by a
//    co-signed Settlement at another sequence that may still be included. At most one transaction
//    per sequence is ever included, so two co-signed Settlements at the same sequence can never
//    both pay; one at an older sequence is decided on chain (the sequence moved on) and must be
//    recorded as such first.
import { RefusalReason, SettlementState, type RefusalReason as Reason } from '../../api/conditions.js';
import { parseCoin, tryParseCoin } from '../../api/coin.js';
import type { Settlement, UsageRecord } from '../../api/index.js';
import { fromBase64 } from '@cosmjs/encoding';
import { MsgExec } from 'cosmjs-types/cosmos/authz/v1beta1/tx';
import { MsgSend } from 'cosmjs-types/cosmos/bank/v1beta1/tx';
import { SignMode } from 'cosmjs-types/cosmos/tx/signing/v1beta1/signing';
import { MSG_EXEC_TYPE_URL, MSG_SEND_TYPE_URL, type FoundTx } from '../../settlement/chain.js';
import { isCosignedLive } from '../../settlement/coverage.js';
import { decodeTx, signDocDigest, verifyMember, type SettlementAccount, type UnsignedTx } from '../../settlement/multisig.js';
import { recordedVerdict } from '../usage/verify.js';

export type CosignDecision = { kind: 'cosign'; tx: UnsignedTx; digest: Uint8Array } | { kind: 'refuse'; reason: Reason; message: string } | { kind: 'wait'; message: string };

export interface CosignInput {
  settlement: Settlement;
  provider: { name: string; payee: string; hotKey: string; account: SettlementAccount; providerPubkey: Uint8Array };
  /** The provider's records, with the registry's verdicts. */
  records: ReadonlyMap<string, UsageRecord>;
  /** The provider's other Settlements, freshly read from the API server. */
  others: readonly Settlement[];
  chain: { chainId: string; accountNumber: number; sequence: number; height: number };
  prefix: string;
  maxTimeoutBlocks: number;
}

const refuse = (reason: Reason, message: string): CosignDecision => ({ kind: 'refuse', reason, message });

export function decideCosign(i: CosignInput): CosignDecision {
  const s = i.settlement.spec;
  if (s.chainId !== i.chain.chainId) return refuse(RefusalReason.WrongChain, `It is signed for chain ${s.chainId}; the registry settles on ${i.chain.chainId}`);
  if (s.account !== i.provider.account.address) return refuse(RefusalReason.WrongAccount, `Its account ${s.account} is not the provider's settlement account ${i.provider.account.address}`);
  if (s.accountNumber !== i.chain.accountNumber) return refuse(RefusalReason.WrongAccount, `Its account number ${s.accountNumber} is not the chain's ${i.chain.accountNumber}`);
  if (s.sequence !== i.chain.sequence) return refuse(RefusalReason.WrongSequence, `It is signed at sequence ${s.sequence}; the settlement account is at ${i.chain.sequence}`);
  if (s.timeoutHeight <= i.chain.height) return refuse(RefusalReason.BadTimeout, `Its timeout height ${s.timeoutHeight} has passed (the chain is at ${i.chain.height})`);
  if (s.timeoutHeight > i.chain.height + i.maxTimeoutBlocks) return refuse(RefusalReason.BadTimeout, `Its timeout height ${s.timeoutHeight} is more than ${i.maxTimeoutBlocks} blocks ahead (the chain is at ${i.chain.height})`);
  let tx: UnsignedTx;
  let sends: { from: string; to: string; denom: string; amount: bigint }[];
  try {
    tx = { bodyBytes: fromBase64(s.bodyBytes), authInfoBytes: fromBase64(s.authInfoBytes) };
    const shape = txShapeProblem(tx, i);
    if (shape) return refuse(RefusalReason.NotASettlement, shape);
    sends = execSends(tx, i.prefix);
  } catch (e) {
    return refuse(RefusalReason.Malformed, `Its transaction cannot be read: ${(e as Error).message}`);
  }
  const sendProblem = sends.find((x) => x.to !== i.provider.payee || x.amount <= 0n);
  if (sendProblem) return refuse(RefusalReason.NotASettlement, `It sends ${sendProblem.amount}${sendProblem.denom} to ${sendProblem.to}; a settlement pays only the provider's payout ${i.provider.payee}, positive amounts`);
  const records = recordsProblem(i);
  if (records) return records;
  const sums = sumsProblem(i, sends);
  if (sums) return refuse(RefusalReason.AmountsMismatch, sums);
  const digest = signDocDigest(tx, s.chainId, s.accountNumber);
  let providerSig: Uint8Array;
  try {
    providerSig = fromBase64(s.providerSignature);
  } catch {
    return refuse(RefusalReason.BadSignature, 'Its provider signature is not base64');
  }
  if (!verifyMember(digest, providerSig, i.provider.providerPubkey)) return refuse(RefusalReason.BadSignature, "Its provider signature is not the hot key's over this transaction");
  return { kind: 'cosign', tx, digest };
}

/** What must hold of the transaction's envelope: one signer (the settlement account, both members DIRECT, at spec.sequence), no extras, the fee paid by the account or the provider's hot key. */
function txShapeProblem(tx: UnsignedTx, i: CosignInput): string | undefined {
  const s = i.settlement.spec;
  const d = decodeTx(tx, i.prefix);
  if (d.extensions > 0) return 'Its body carries extension options, an unordered flag or a timeout timestamp';
  if (d.timeoutHeight !== s.timeoutHeight) return `Its body's timeout height ${d.timeoutHeight} is not spec.timeoutHeight ${s.timeoutHeight}`;
  if (!new RegExp(`^gpufed/v1/${i.provider.name}/[0-9a-f]{64}$`).test(d.memo)) return `Its memo ${JSON.stringify(d.memo)} does not name a gpufed batch of ${i.provider.name}`;
  if (d.messages.length !== 1 || d.messages[0]?.typeUrl !== MSG_EXEC_TYPE_URL) return 'It is not exactly one MsgExec';
  return authInfoProblem(d, i);
}

/** The AuthInfo: the settlement account as the one signer, both members DIRECT at spec.sequence, the fee from the account or the provider's hot key. */
function authInfoProblem(d: ReturnType<typeof decodeTx>, i: CosignInput): string | undefined {
  const s = i.settlement.spec;
  if (d.signerCount !== 1 || !d.signer) return `It has ${d.signerCount} signers; a settlement has one, the settlement account`;
  if (d.signer.pubkeyAddress !== i.provider.account.address) return `Its signer's key is not the settlement account ${i.provider.account.address}`;
  if (d.signer.bits !== 2 || d.signer.multiModes.length !== 2 || d.signer.multiModes.some((m) => m !== SignMode.SIGN_MODE_DIRECT)) return 'Its signer info is not both members in SIGN_MODE_DIRECT';
  if (d.signer.sequence !== s.sequence) return `Its signer sequence ${d.signer.sequence} is not spec.sequence ${s.sequence}`;
  if (d.fee.payer !== '') return `Its fee is paid by ${d.fee.payer}; a settlement's fee comes from the settlement account or the provider's hot key`;
  if (d.fee.granter !== '' && d.fee.granter !== i.provider.hotKey) return `Its fee is granted by ${d.fee.granter}, not the provider's hot key ${i.provider.hotKey}`;
  return undefined;
}

/** The MsgSends inside the one MsgExec, which must be the settlement account's. */
function execSends(tx: UnsignedTx, prefix: string): { from: string; to: string; denom: string; amount: bigint }[] {
  const d = decodeTx(tx, prefix);
  const exec = MsgExec.decode(d.messages[0]?.value ?? new Uint8Array());
  if (exec.grantee !== d.signer?.pubkeyAddress) throw new Error(`its MsgExec's grantee ${exec.grantee} is not the signer`);
  if (exec.msgs.length === 0) throw new Error('its MsgExec is empty');
  return exec.msgs.map((m) => {
    if (m.typeUrl !== MSG_SEND_TYPE_URL) throw new Error(`its MsgExec carries a ${m.typeUrl}`);
    const send = MsgSend.decode(m.value);
    if (send.amount.length !== 1) throw new Error('a MsgSend of it moves more than one coin');
    const coin = send.amount[0] as { denom: string; amount: string };
    if (!/^[0-9]+$/.test(coin.amount)) throw new Error(`a MsgSend of it moves ${coin.amount}`);
    return { from: send.fromAddress, to: send.toAddress, denom: coin.denom, amount: BigInt(coin.amount) };
  });
}

/** Every listed record: present, verified by the registry, not paid, not claimed by a co-signed Settlement that may still be included at another sequence. */
function recordsProblem(i: CosignInput): CosignDecision | undefined {
  const s = i.settlement.spec;
  if (new Set(s.records).size !== s.records.length) return refuse(RefusalReason.RecordNotPayable, 'It lists a record twice');
  const claims = i.others.filter((o) => o.metadata.name !== i.settlement.metadata.name);
  for (const name of s.records) {
    const r = i.records.get(name);
    if (!r) return refuse(RefusalReason.RecordNotPayable, `Record ${name} does not exist in the provider's namespace`);
    const verdict = recordedVerdict(r);
    if (verdict === undefined) return { kind: 'wait', message: `Record ${name} is not checked yet` };
    if (verdict === 'False') return refuse(RefusalReason.RecordNotPayable, `Record ${name} is disputed: it is never paid`);
    if ((tryParseCoin(r.spec.amount)?.amount ?? 0n) <= 0n) return refuse(RefusalReason.RecordNotPayable, `Record ${name} has nothing due`);
    const paid = claims.find((o) => o.status?.state === SettlementState.Committed && o.spec.records.includes(name));
    if (paid) return refuse(RefusalReason.RecordNotPayable, `Record ${name} was paid by Settlement ${paid.metadata.name ?? ''}`);
    const rival = claims.find((o) => isCosignedLive(o) && o.spec.records.includes(name) && o.spec.sequence !== s.sequence);
    // An older sequence is decided on chain already (the account moved on): wait until it is recorded.
    if (rival) return { kind: 'wait', message: `Record ${name} is in Settlement ${rival.metadata.name ?? ''} (sequence ${rival.spec.sequence}), not decided yet` };
  }
  return undefined;
}

/** The transaction's sends, per payer and denom, are exactly the listed records' amounts. */
function sumsProblem(i: CosignInput, sends: readonly { from: string; denom: string; amount: bigint }[]): string | undefined {
  const owed = new Map<string, bigint>();
  for (const name of i.settlement.spec.records) {
    const r = i.records.get(name) as UsageRecord;
    const c = parseCoin(r.spec.amount);
    const key = `${r.spec.payer} ${c.denom}`;
    owed.set(key, (owed.get(key) ?? 0n) + c.amount);
  }
  const sent = new Map<string, bigint>();
  for (const x of sends) sent.set(`${x.from} ${x.denom}`, (sent.get(`${x.from} ${x.denom}`) ?? 0n) + x.amount);
  for (const [key, amount] of sent) if (owed.get(key) !== amount) return `It moves ${amount} ${key.split(' ')[1] ?? ''} from ${key.split(' ')[0] ?? ''}; its records owe ${owed.get(key) ?? 0n}`;
  for (const [key, amount] of owed) if (!sent.has(key)) return `Its records owe ${amount} ${key.split(' ')[1] ?? ''} from ${key.split(' ')[0] ?? ''} that it does not move`;
  const total = [...sent.entries()].reduce((m, [k, v]) => m.set(k.split(' ')[1] ?? '', (m.get(k.split(' ')[1] ?? '') ?? 0n) + v), new Map<string, bigint>());
  const declared = [...total].sort(([a], [b]) => a.localeCompare(b)).map(([d, v]) => `${v}${d}`).join(',');
  if (i.settlement.spec.total !== declared) return `spec.total is ${i.settlement.spec.total}; the transaction moves ${declared}`;
  return undefined;
}

/** What a co-signed Settlement's transaction came to, from what the chain says now. */
export type FollowDecision =
  | { kind: 'committed'; height: number }
  | { kind: 'failed'; height: number; message: string }
  | { kind: 'expired'; message: string }
  | { kind: 'superseded'; message: string }
  | { kind: 'pending' };

export interface FollowInput {
  /** The transaction if a block holds it; `undefined` must come from a search of every block it can be in. */
  found: FoundTx | undefined;
  latestHeight: number;
  /** The settlement account's sequence now. */
  accountSequence: number;
  sequence: number;
  timeoutHeight: number;
}

export function decideFollow(i: FollowInput): FollowDecision {
  if (i.found && i.found.code === 0) return { kind: 'committed', height: i.found.height };
  if (i.found) return { kind: 'failed', height: i.found.height, message: `It failed in block ${i.found.height} (code ${i.found.code}): ${i.found.log}; nothing moved, its records are to be paid again` };
  if (i.latestHeight > i.timeoutHeight) return { kind: 'expired', message: `The chain passed its timeout height ${i.timeoutHeight} without including it; its records are to be paid again` };
  if (i.accountSequence > i.sequence) return { kind: 'superseded', message: `Another transaction used sequence ${i.sequence} and it is in no block; its records are to be paid again` };
  return { kind: 'pending' };
}
