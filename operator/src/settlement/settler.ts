// The provider's settlement loop: pays its UsageRecords on chain, exactly once, across crashes.
//
// The durable state is the records' status on the registry (docs/settlement.md):
//   Pending → Signed (the signed bytes, hash, sequence and timeout height are written to every record
//   of the batch BEFORE anything is sent) → Broadcast → Committed; or → Failed once the transaction
//   provably cannot commit (rejected before entering the mempool, failed in its block, or past its
//   timeout height with the signer's sequence unused), after which the records are paid in a new one.
// One transaction is in flight at a time per signer. After a restart the loop looks the persisted
// hash up first and re-broadcasts the same bytes until the timeout height; it never signs a batch
// anew while an earlier signature of it might still commit. A batch whose records were only partly
// marked Signed when the process stopped was never sent (sending waits for all of them): its
// records go back to be paid.
import { fromBase64, toBase64 } from '@cosmjs/encoding';
import type { Logger } from 'pino';
import { UsageRecordReason, setCondition } from '../api/conditions.js';
import { UsageRecordResource, type UsageRecord, type UsageRecordStatus } from '../api/index.js';
import type { Kube } from '../kube/client.js';
import { parseCoin } from '../scheduling/coin.js';
import { batchMemo, checkMemo, payable, planSettlement, type Isolated, type SettlementPlan } from './batch.js';
import { decodeExecSends, execMessage, txHash, type Chain, type FoundTx, type SignedTx } from './chain.js';
import type { PayerFunds } from './grants.js';

/** CometBFT's "tx already exists in cache": the same bytes are in the mempool already. */
const TX_IN_MEMPOOL_CACHE = 19;

export interface SettlerOptions {
  provider: string;
  /** The provider's namespace on the registry (gpufed-provider-<provider>). */
  namespace: string;
  /** Writes record status under the settlement field manager. */
  registry: Kube;
  /** The provider's records as they are now (from the registry). */
  records: () => Promise<UsageRecord[]>;
  chain: Chain;
  /** The hot key: signs the MsgExec (and nothing else), holds gas only. */
  key: Uint8Array;
  /** The hot key's address: the grantee of every renter's grant. */
  grantee: string;
  /** The payout address: where renters' coins go. */
  payee: string;
  /** How many blocks a signed transaction may wait to be included. */
  timeoutBlocks: number;
  log: Logger;
  now?: () => Date;
  /** Payers that cannot pay what they owe: the caller stops their jobs. */
  onIsolated?: (isolated: Isolated[]) => Promise<void>;
  /**
   * Fault-injection seams for the crash tests (GPUFED_FAULT_KILL_AT in operator.ts): after the batch
   * is persisted and before it is sent; after it was sent and before that is recorded; after its
   * commit was found and before that is recorded.
   */
  hooks?: SettlerHooks;
  /** Counts per outcome for dashboards. */
  onOutcome?: (outcome: SettleOutcome) => void;
  /** The records a committed transaction paid, once per commit this process records (for dashboards). */
  onCommitted?: (records: readonly UsageRecord[]) => Promise<void>;
  /** Each payer's funds as read from the chain while planning (for dashboards). */
  onFunds?: (payer: string, funds: PayerFunds) => void;
}

export interface SettlerHooks {
  afterPersist?: (tx: SignedTx) => Promise<void>;
  afterSend?: (tx: SignedTx) => Promise<void>;
  beforeCommitRecord?: (txHash: string) => Promise<void>;
}

export type SettleOutcome =
  | { kind: 'idle' }
  | { kind: 'signed'; txHash: string; payments: number }
  | { kind: 'committed'; txHash: string; height: number; records: number }
  | { kind: 'failed'; txHash: string; reason: string }
  | { kind: 'pending'; txHash: string }
  | { kind: 'alert'; txHash: string; message: string };

const inFlight = (r: UsageRecord) => r.status?.state === 'Signed' || r.status?.state === 'Broadcast';

export class Settler {
  private readonly now: () => Date;

  constructor(private readonly o: SettlerOptions) {
    this.now = o.now ?? (() => new Date());
  }

  /** One step: follow the transaction in flight, or plan, sign, persist and send the next one. */
  async settleOnce(): Promise<SettleOutcome> {
    const records = await this.o.records();
    const flying = records.filter(inFlight);
    const outcome = flying.length > 0 ? await this.follow(flying) : await this.start(records);
    this.o.onOutcome?.(outcome);
    return outcome;
  }

  // ------------------------------------------------------------------------------------------
  // A new batch

  private async start(records: UsageRecord[]): Promise<SettleOutcome> {
    const plan = await this.plan(records);
    for (const name of plan.nothingDue) await this.write(name, { state: 'NothingDue', message: 'Nothing due: the amount rounds to zero; the remainder carries in the cumulative GPU time' }, 'True', UsageRecordReason.Committed);
    await this.isolate(plan.isolated);
    if (plan.payments.length === 0) return { kind: 'idle' };
    const tx = await this.sign(plan);
    const names = plan.payments.flatMap((p) => p.records);
    const byName = new Map(records.map((r) => [r.metadata.name ?? '', r]));
    // Write-ahead: every record of the batch holds the bytes before any of them leaves this process.
    for (const name of names) await this.writeSigned(byName.get(name), tx, plan.batchId);
    await this.o.hooks?.afterPersist?.(tx);
    const sent = await this.o.chain.broadcast(tx.txBytes);
    await this.o.hooks?.afterSend?.(tx);
    if (sent.kind === 'rejected' && sent.code !== TX_IN_MEMPOOL_CACHE) {
      // Refused before the mempool, and never sent anywhere else: it cannot commit.
      const reason = `The chain refused the transaction (code ${sent.code} ${sent.codespace}): ${sent.log}`;
      for (const name of names) await this.write(name, { ...signedFields(tx), state: 'Failed', message: reason }, 'False', UsageRecordReason.TxFailed);
      return { kind: 'failed', txHash: tx.txHash, reason };
    }
    // Accepted, or unknown (a timeout may still have delivered it): from here only the chain decides.
    for (const name of names) await this.write(name, { ...signedFields(tx), state: 'Broadcast', message: `Sent in batch ${plan.batchId}; waiting for a block` }, 'False', UsageRecordReason.AwaitingCommit);
    return { kind: 'signed', txHash: tx.txHash, payments: plan.payments.length };
  }

  private async isolate(isolated: Isolated[]): Promise<void> {
    if (isolated.length === 0) return;
    for (const i of isolated) this.o.log.warn({ payer: i.payer, reason: i.reason, records: i.records.length, jobs: i.jobs }, `Isolated a payer from settlement: ${i.message}`);
    await this.o.onIsolated?.(isolated);
  }

  private async plan(records: UsageRecord[]): Promise<SettlementPlan> {
    const payers = [...new Set(records.filter(payable).map((r) => r.spec.payer))].sort();
    const funds = new Map<string, PayerFunds>();
    for (const p of payers) {
      const f = await this.o.chain.funds(p, this.o.grantee);
      funds.set(p, f);
      this.o.onFunds?.(p, f);
    }
    return planSettlement({ records, funds, payee: this.o.payee, nowMs: this.now().getTime() });
  }

  private async sign(plan: SettlementPlan): Promise<SignedTx> {
    const memo = batchMemo(this.o.provider, plan.batchId);
    checkMemo(memo, await this.o.chain.maxMemoBytes());
    const account = await this.o.chain.account(this.o.grantee);
    if (!account) throw new Error(`The hot key ${this.o.grantee} has no account on the chain yet: send it a little of the fee denom for gas`);
    const msgs = [execMessage(this.o.grantee, plan.payments.map((p) => ({ from: p.payer, to: this.o.payee, amount: { amount: p.amount, denom: p.denom } })))];
    const fee = await this.o.chain.estimateFee(this.o.key, msgs, memo);
    const timeoutHeight = (await this.o.chain.height()) + this.o.timeoutBlocks;
    const tx = await this.o.chain.sign(this.o.key, msgs, memo, { ...account, timeoutHeight, fee });
    this.o.log.info({ txHash: tx.txHash, sequence: tx.sequence, timeoutHeight, payers: plan.payments.length, batch: plan.batchId, gas: fee.gas }, 'Signed a settlement transaction');
    return tx;
  }

  // ------------------------------------------------------------------------------------------
  // The transaction in flight

  private async follow(flying: UsageRecord[]): Promise<SettleOutcome> {
    const hashes = [...new Set(flying.map((r) => r.status?.txHash ?? ''))].sort();
    if (hashes.length > 1) this.o.log.warn({ hashes }, 'More than one settlement transaction in flight; following them one at a time');
    const hash = hashes[0] ?? '';
    const mine = flying.filter((r) => r.status?.txHash === hash);
    const first = mine[0]?.status;
    const bytes = fromBase64(first?.signedTx ?? '');
    if (txHash(bytes) !== hash) throw new Error(`Record ${mine[0]?.metadata.name} holds bytes that do not hash to its txHash ${hash}`);
    if (!complete(bytes, mine)) {
      // Stopped while persisting the batch: sending waits for all of them, so it was never sent.
      if (mine.every((r) => r.status?.state === 'Signed')) return this.fail(mine, hash, 'Signed but never sent (the agent stopped while recording the batch); it will be paid in a new transaction', UsageRecordReason.TxFailed);
      this.o.log.error({ txHash: hash }, 'A broadcast settlement batch is missing records; leaving it for an operator');
      return { kind: 'alert', txHash: hash, message: 'broadcast batch incomplete' };
    }
    const found = await this.o.chain.findTx(hash);
    if (found && found.code === 0) return this.committed(mine, hash, found);
    if (found) return this.fail(mine, hash, `The transaction failed in block ${found.height} (code ${found.code}): ${found.log}; nothing was transferred and it will be paid in a new one`, UsageRecordReason.TxFailed);
    return this.pending(mine, hash, bytes, first);
  }

  private async committed(mine: UsageRecord[], hash: string, found: FoundTx): Promise<SettleOutcome> {
    await this.o.hooks?.beforeCommitRecord?.(hash);
    const time = await this.o.chain.blockTime(found.height).catch((e: unknown) => {
      this.o.log.warn({ height: found.height, err: (e as Error).message }, 'Could not read the block time; recording the payment without it');
      return undefined;
    });
    for (const r of mine) await this.write(r.metadata.name ?? '', { ...keep(r.status), state: 'Committed', height: found.height, ...(time ? { time } : {}), message: `Paid in block ${found.height}` }, 'True', UsageRecordReason.Committed);
    await this.o.onCommitted?.(mine);
    this.o.log.info({ txHash: hash, height: found.height, records: mine.length, gasUsed: found.gasUsed }, 'Settlement transaction committed');
    return { kind: 'committed', txHash: hash, height: found.height, records: mine.length };
  }

  private async pending(mine: UsageRecord[], hash: string, bytes: Uint8Array, s: UsageRecordStatus | undefined): Promise<SettleOutcome> {
    const timeoutHeight = s?.timeoutHeight ?? 0;
    const sequence = s?.sequence ?? 0;
    if ((await this.o.chain.height()) <= timeoutHeight) return this.resend(mine, hash, bytes, s?.state);
    const account = await this.o.chain.account(this.o.grantee);
    if ((account?.sequence ?? 0) <= sequence) {
      return this.fail(mine, hash, `Expired: the chain passed height ${timeoutHeight} without including it, and sequence ${sequence} is unused; it will be paid in a new transaction`, UsageRecordReason.TxExpired);
    }
    // The sequence moved on without our transaction: another signer used the key. Never guess.
    const message = `Sequence ${sequence} of ${this.o.grantee} was used by a transaction other than ${hash}; the hot key is in use elsewhere. Not retrying: check the key.`;
    this.o.log.error({ txHash: hash, sequence, chainSequence: account?.sequence }, message);
    return { kind: 'alert', txHash: hash, message };
  }

  /** It may still commit: send the very same bytes again (a duplicate is harmless). */
  private async resend(mine: UsageRecord[], hash: string, bytes: Uint8Array, state: string | undefined): Promise<SettleOutcome> {
    const sent = await this.o.chain.broadcast(bytes);
    const admitted = sent.kind !== 'rejected' || sent.code === TX_IN_MEMPOOL_CACHE;
    if (state === 'Signed' && admitted) {
      for (const r of mine) await this.write(r.metadata.name ?? '', { ...keep(r.status), state: 'Broadcast', message: 'Sent; waiting for a block' }, 'False', UsageRecordReason.AwaitingCommit);
    }
    return { kind: 'pending', txHash: hash };
  }

  private async fail(mine: UsageRecord[], hash: string, message: string, reason: string): Promise<SettleOutcome> {
    for (const r of mine) await this.write(r.metadata.name ?? '', { ...keep(r.status), state: 'Failed', message }, 'False', reason);
    this.o.log.warn({ txHash: hash, records: mine.length }, message);
    return { kind: 'failed', txHash: hash, reason: message };
  }

  // ------------------------------------------------------------------------------------------
  // Writes

  private async writeSigned(r: UsageRecord | undefined, tx: SignedTx, batchId: string): Promise<void> {
    if (!r) throw new Error('A planned record vanished while signing');
    await this.write(r.metadata.name ?? '', { ...signedFields(tx), state: 'Signed', message: `Signed in batch ${batchId} at sequence ${tx.sequence}` }, 'False', UsageRecordReason.AwaitingCommit);
  }

  private async write(name: string, status: Omit<UsageRecordStatus, 'conditions'>, settled: 'True' | 'False', reason: string): Promise<void> {
    const conditions = setCondition(undefined, { type: 'Settled', status: settled, reason, message: status.message ?? '' }, this.now());
    await this.o.registry.applyStatus(UsageRecordResource, name, this.o.namespace, { ...status, conditions });
  }
}

function signedFields(tx: SignedTx): Pick<UsageRecordStatus, 'txHash' | 'signedTx' | 'sequence' | 'timeoutHeight'> {
  return { txHash: tx.txHash, signedTx: toBase64(tx.txBytes), sequence: tx.sequence, timeoutHeight: tx.timeoutHeight };
}

/** The transaction fields a record keeps through every later state (the CRD requires them). */
function keep(s: UsageRecordStatus | undefined): Pick<UsageRecordStatus, 'txHash' | 'signedTx' | 'sequence' | 'timeoutHeight'> {
  return { ...(s?.txHash ? { txHash: s.txHash } : {}), ...(s?.signedTx ? { signedTx: s.signedTx } : {}), ...(s?.sequence !== undefined ? { sequence: s.sequence } : {}), ...(s?.timeoutHeight !== undefined ? { timeoutHeight: s.timeoutHeight } : {}) };
}

/**
 * Whether the records holding a transaction are all of its batch: for every payer and denom, their
 * amounts add up to what the transaction sends (amounts are positive, so a missing record shows).
 */
export function complete(txBytes: Uint8Array, records: readonly UsageRecord[]): boolean {
  const want = new Map<string, bigint>();
  for (const s of decodeExecSends(txBytes)) want.set(`${s.from} ${s.amount.denom}`, (want.get(`${s.from} ${s.amount.denom}`) ?? 0n) + s.amount.amount);
  const have = new Map<string, bigint>();
  for (const r of records) {
    const c = parseCoin(r.spec.amount);
    have.set(`${r.spec.payer} ${c.denom}`, (have.get(`${r.spec.payer} ${c.denom}`) ?? 0n) + c.amount);
  }
  return want.size === have.size && [...want].every(([k, v]) => have.get(k) === v);
}
