// The provider's settlement loop: proposes the payment of its verified usage records, and follows
// each proposal until the registry has decided it and the chain has.
//
// The renters' grants go to the provider's settlement account, a 2-of-2 of the hot key and the
// registry's key (multisig.ts), so the agent cannot pay itself: it builds the transaction (one
// MsgExec of one MsgSend per payer, the fee granted by its hot key through x/feegrant), signs its
// half and writes it down as a Settlement (the write-ahead: the only durable state is on the
// registry, there is none in this process). The registry co-signs only what it verified, records
// the full transaction in the Settlement's status before anyone sends it, and decides its fate on
// chain; either party broadcasts. At most one Settlement is in flight at a time; a transaction is
// signed at the settlement account's current sequence, of which the chain includes at most one.
import { fromBase64, toBase64 } from '@cosmjs/encoding';
import { MsgExec as MsgExecCodec } from 'cosmjs-types/cosmos/authz/v1beta1/tx';
import { createHash } from 'node:crypto';
import type { Logger } from 'pino';
import { SettlementState } from '../api/conditions.js';
import { ProviderResource, SettlementResource, type Provider, type Settlement, type UsageRecord } from '../api/index.js';
import type { Kube } from '../kube/client.js';
import { batchMemo, checkMemo, planSettlement, totalOf, type Isolated, type SettlementPlan } from './batch.js';
import { execMessage, gasLimitFor, type Chain } from './chain.js';
import { isDead } from './coverage.js';
import { decideSettlement, type SettlementAction } from './decide.js';
import type { PayerFunds } from './grants.js';
import { buildTx, publicKeyOf, settlementAccount, signDocDigest, signMember, simulationTx, type SettlementAccount } from './multisig.js';

/** What the fee grant's bookkeeping costs on top of what a simulation without a fee shows (measured ~20k on wasmd 0.61). */
export const FEE_GRANT_GAS = 30_000;

export interface SettlerOptions {
  provider: string;
  /** The provider's namespace on the registry (gpufed-provider-<provider>). */
  namespace: string;
  /** Creates Settlements (the agent's only write here). */
  registry: Kube;
  /** The provider's records as they are now (from the registry, with the registry's verdicts). */
  records: () => Promise<UsageRecord[]>;
  /** The provider's Settlements as they are now. */
  settlements: () => Promise<Settlement[]>;
  chain: Chain;
  /** The hot key: signs its half of every settlement, grants the account its fees, holds gas only. */
  key: Uint8Array;
  /** The hot key's address (the Provider's spec.wallet). */
  hotKey: string;
  /** The payout address: where renters' coins go. */
  payee: string;
  /** How many blocks a signed transaction may wait to be included. */
  timeoutBlocks: number;
  /** The settlement period (the unit of back-off). */
  periodMs: number;
  log: Logger;
  now?: () => Date;
  /** Payers that cannot pay what they owe: the caller stops their jobs. */
  onIsolated?: (isolated: Isolated[]) => Promise<void>;
  /** Fault-injection seams for the crash tests (GPUFED_FAULT_KILL_AT in operator.ts). */
  hooks?: SettlerHooks;
  /** False: meter and follow, never propose (GPUFED_FAULT_NO_PROPOSE: the fault tests propose by hand). Default true. */
  proposes?: boolean;
  /** Each payer's funds as read from the chain while planning (for dashboards). */
  onFunds?: (payer: string, funds: PayerFunds) => void;
  /** A Settlement of this provider the registry decided (any final state), once per process (for dashboards). */
  onDecided?: (s: Settlement) => void;
  /** A Settlement of this provider the registry found committed, once per process (for dashboards). */
  onCommitted?: (s: Settlement, records: readonly UsageRecord[]) => Promise<void>;
}

export interface SettlerHooks {
  /** After a Settlement is proposed (written), before anything else. */
  afterPropose?: (s: Settlement) => Promise<void>;
  /** After the agent sent a co-signed transaction. */
  afterBroadcast?: (s: Settlement) => Promise<void>;
}

export type SettleOutcome =
  | { kind: 'idle' }
  | { kind: 'no-account' }
  | { kind: 'proposed'; settlement: string; payments: number }
  | { kind: 'waiting'; settlement: string }
  | { kind: 'broadcast'; settlement: string; accepted: boolean }
  | { kind: 'backoff'; untilMs: number; failures: number };

export class Settler {
  private readonly now: () => Date;
  private readonly pubkey: Uint8Array;
  /** Decided Settlements already reported by this process (the first pass reports none: they were decided before it started). */
  private counted?: Set<string>;
  private feeAllowanceFor?: string;

  constructor(private readonly o: SettlerOptions) {
    this.now = o.now ?? (() => new Date());
    this.pubkey = publicKeyOf(o.key);
  }

  /** The settlement account the registry published for this provider, if it is this hot key's. */
  async account(): Promise<SettlementAccount | undefined> {
    const p = await this.o.registry.getCustom<Provider>(ProviderResource, this.o.provider);
    const s = p?.status?.settlementAccount;
    if (!s || s.providerPubKey !== toBase64(this.pubkey)) return undefined;
    const account = settlementAccount(this.pubkey, fromBase64(s.registryPubKey), this.o.chain.prefix);
    return account.address === s.address ? account : undefined;
  }

  /** One step: follow the settlement in flight, or propose the next one. */
  async settleOnce(): Promise<SettleOutcome> {
    const [records, settlements, account] = await Promise.all([this.o.records(), this.o.settlements(), this.account()]);
    await this.countDecided(settlements, records);
    const action = decideSettlement({ records, settlements, hasAccount: account !== undefined, nowMs: this.now().getTime(), periodMs: this.o.periodMs });
    return this.act(action, account);
  }

  private async act(action: SettlementAction, account: SettlementAccount | undefined): Promise<SettleOutcome> {
    switch (action.kind) {
      case 'no-account':
        return { kind: 'no-account' };
      case 'idle':
        return { kind: 'idle' };
      case 'wait':
        return { kind: 'waiting', settlement: action.settlement.metadata.name ?? '' };
      case 'backoff':
        this.o.log.info({ failures: action.failures, last: action.last.metadata.name, state: action.last.status?.state, message: action.last.status?.message, until: new Date(action.untilMs).toISOString() }, 'Backing off: the last settlements paid nothing');
        return { kind: 'backoff', untilMs: action.untilMs, failures: action.failures };
      case 'broadcast': {
        const sent = await this.o.chain.broadcast(fromBase64(action.signedTx));
        await this.o.hooks?.afterBroadcast?.(action.settlement);
        return { kind: 'broadcast', settlement: action.settlement.metadata.name ?? '', accepted: sent.kind === 'accepted' };
      }
      case 'propose':
        if (this.o.proposes === false) return { kind: 'idle' };
        return this.propose(action.records, account as SettlementAccount);
    }
  }

  private async propose(records: UsageRecord[], account: SettlementAccount): Promise<SettleOutcome> {
    const plan = await this.plan(records, account);
    await this.isolate(plan.isolated);
    if (plan.payments.length === 0) return { kind: 'idle' };
    await this.ensureFeeAllowance(account);
    const onChain = await this.o.chain.account(account.address);
    if (!onChain) throw new Error(`The settlement account ${account.address} has no account on the chain yet (a renter's grant or the fee allowance creates it)`);
    checkMemo(batchMemo(this.o.provider, plan.batchId), await this.o.chain.maxMemoBytes());
    const body = await proposalFor({ ...this.o, account, onChain, plan, timeoutHeight: (await this.o.chain.height()) + this.o.timeoutBlocks });
    const made = await this.o.registry.createCustom(SettlementResource, body);
    this.o.log.info({ settlement: body.metadata.name, sequence: onChain.sequence, timeoutHeight: body.spec.timeoutHeight, payers: plan.payments.length, total: body.spec.total, created: made !== false }, 'Proposed a settlement');
    await this.o.hooks?.afterPropose?.(body);
    return { kind: 'proposed', settlement: body.metadata.name ?? '', payments: plan.payments.length };
  }

  /** The account pays its fees from the hot key's balance, through an x/feegrant allowance made once. */
  private async ensureFeeAllowance(account: SettlementAccount): Promise<void> {
    if (this.feeAllowanceFor === account.address) return;
    if (!(await this.o.chain.hasFeeAllowance(this.o.hotKey, account.address))) {
      const r = await this.o.chain.grantFeeAllowance(this.o.key, account.address);
      this.o.log.info({ account: account.address, txHash: r.txHash }, "Granted the settlement account its fees from the hot key's balance");
    }
    this.feeAllowanceFor = account.address;
  }

  private async isolate(isolated: Isolated[]): Promise<void> {
    if (isolated.length === 0) return;
    for (const i of isolated) this.o.log.warn({ payer: i.payer, reason: i.reason, records: i.records.length, jobs: i.jobs }, `Isolated a payer from settlement: ${i.message}`);
    await this.o.onIsolated?.(isolated);
  }

  private async plan(records: UsageRecord[], account: SettlementAccount): Promise<SettlementPlan> {
    const payers = [...new Set(records.map((r) => r.spec.payer))].sort();
    const funds = new Map<string, PayerFunds>();
    for (const p of payers) {
      const f = await this.o.chain.funds(p, account.address);
      funds.set(p, f);
      this.o.onFunds?.(p, f);
    }
    return planSettlement({ records, funds, payee: this.o.payee, nowMs: this.now().getTime() });
  }

  /** Reports each Settlement the registry decided (committed, or one that paid nothing) once per process; the first pass reports none: they were decided before it started. */
  private async countDecided(settlements: readonly Settlement[], records: readonly UsageRecord[]): Promise<void> {
    const decided = settlements.filter((s) => s.status?.state === SettlementState.Committed || isDead(s));
    if (!this.counted) {
      this.counted = new Set(decided.map((s) => s.metadata.name ?? ''));
      return;
    }
    for (const s of decided) {
      if (this.counted.has(s.metadata.name ?? '')) continue;
      this.counted.add(s.metadata.name ?? '');
      this.o.onDecided?.(s);
      if (s.status?.state === SettlementState.Committed) await this.o.onCommitted?.(s, records.filter((r) => s.spec.records.includes(r.metadata.name ?? '')));
    }
  }

}

export interface ProposalInput {
  provider: string;
  namespace: string;
  chain: Chain;
  key: Uint8Array;
  hotKey: string;
  payee: string;
  account: SettlementAccount;
  onChain: { accountNumber: number; sequence: number };
  plan: Pick<SettlementPlan, 'payments' | 'batchId'>;
  timeoutHeight: number;
  /** The gas limit to sign with, from the simulated gas (default: gasLimitFor it, plus FEE_GRANT_GAS). */
  gasLimit?: (simulated: number) => number;
  /** The fee price (default the chain client's). */
  gasPrice?: string;
}

/**
 * A Settlement proposal: the one MsgExec of the plan's payments by the settlement account, its gas
 * simulated and its fee granted by the hot key, signed with the hot key's half (SIGN_MODE_DIRECT).
 * Named `<provider>-<sequence>-<hash>`, so the same transaction proposed twice is one object.
 */
export async function proposalFor(i: ProposalInput): Promise<Settlement & { metadata: { name: string } }> {
  const messages = [execMessage(i.account.address, i.plan.payments.map((p) => ({ from: p.payer, to: i.payee, amount: { amount: p.amount, denom: p.denom } })))].map((m) => ({ typeUrl: m.typeUrl, value: encodeExec(m.value) }));
  const memo = batchMemo(i.provider, i.plan.batchId);
  const price = i.gasPrice ?? i.chain.gasPrice;
  const draft = (gasLimit: number) => buildTx({ account: i.account, messages, memo, timeoutHeight: i.timeoutHeight, sequence: i.onChain.sequence, fee: { amount: feeAmount(price, gasLimit), gasLimit, granter: i.hotKey } });
  const simulated = await i.chain.simulateGas(simulationTx(draft(2_000_000), i.account));
  const tx = draft((i.gasLimit ?? ((g) => gasLimitFor(g) + FEE_GRANT_GAS))(simulated));
  const digest = signDocDigest(tx, i.chain.chainId, i.onChain.accountNumber);
  const name = `${i.provider}-${i.onChain.sequence}-${createHash('sha256').update(tx.bodyBytes).update(tx.authInfoBytes).digest('hex').slice(0, 10)}`.slice(0, 253);
  return {
    apiVersion: SettlementResource.apiVersion,
    kind: SettlementResource.kind,
    metadata: { name, namespace: i.namespace, labels: { 'app.kubernetes.io/managed-by': 'gpufed-agent' } },
    spec: {
      chainId: i.chain.chainId,
      account: i.account.address,
      accountNumber: i.onChain.accountNumber,
      sequence: i.onChain.sequence,
      timeoutHeight: i.timeoutHeight,
      records: i.plan.payments.flatMap((p) => p.records).sort(),
      total: totalOf(i.plan.payments),
      bodyBytes: toBase64(tx.bodyBytes),
      authInfoBytes: toBase64(tx.authInfoBytes),
      providerSignature: toBase64(signMember(digest, i.key)),
    },
  };
}

/** The fee for `gasLimit` at a price like `0.001ustake`, rounded up to a whole base unit. */
export function feeAmount(gasPrice: string, gasLimit: number): { denom: string; amount: string }[] {
  const m = /^([0-9]+(?:\.[0-9]+)?)([a-zA-Z][a-zA-Z0-9/:._-]*)$/.exec(gasPrice);
  if (!m) throw new Error(`Not a gas price: ${gasPrice}`);
  const [whole = '0', frac = ''] = (m[1] ?? '0').split('.');
  const scale = 10n ** BigInt(frac.length);
  const units = BigInt(whole) * scale + BigInt(frac === '' ? '0' : frac);
  const amount = (units * BigInt(gasLimit) + scale - 1n) / scale;
  return [{ denom: m[2] ?? '', amount: amount.toString() }];
}

/** MsgExec as protobuf bytes for an Any (the multisig transaction is assembled by hand, outside cosmjs's registry). */
function encodeExec(value: unknown): Uint8Array {
  return MsgExecCodec.encode(value as Parameters<typeof MsgExecCodec.encode>[0]).finish();
}

