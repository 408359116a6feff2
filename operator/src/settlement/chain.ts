// The Cosmos SDK chain as gpufed uses it, through @cosmjs: read grants, fee allowances, balances,
// accounts, heights and the node's minimum gas price; sign a person's one-off transactions (a
// grant, a revoke, a fee allowance); simulate a settlement's gas; send fixed signed bytes (which can
// be persisted and re-broadcast); and find a transaction by hash, through the node's kv tx indexer
// or, where it has none, by scanning the blocks it can be in. Direct signing only (cosmjs has no
// Amino for authz). Settlement transactions themselves are built and signed in multisig.ts.
import { sha256 } from '@cosmjs/crypto';
import { toHex } from '@cosmjs/encoding';
import { decodeTxRaw, DirectSecp256k1Wallet, type EncodeObject } from '@cosmjs/proto-signing';
import { accountFromAny, BroadcastTxError, calculateFee, createProtobufRpcClient, GasPrice, QueryClient, SigningStargateClient, setupAuthExtension, setupAuthzExtension, setupBankExtension, type StdFee } from '@cosmjs/stargate';
import { connectComet, type CometClient } from '@cosmjs/tendermint-rpc';
import { QueryClientImpl as AuthQuery } from 'cosmjs-types/cosmos/auth/v1beta1/query';
import { ServiceClientImpl as NodeService } from 'cosmjs-types/cosmos/base/node/v1beta1/query';
import { BasicAllowance } from 'cosmjs-types/cosmos/feegrant/v1beta1/feegrant';
import { QueryClientImpl as FeegrantQuery } from 'cosmjs-types/cosmos/feegrant/v1beta1/query';
import { MsgGrantAllowance } from 'cosmjs-types/cosmos/feegrant/v1beta1/tx';
import { ServiceClientImpl as TxService } from 'cosmjs-types/cosmos/tx/v1beta1/service';
import { MsgExec, MsgGrant, MsgRevoke } from 'cosmjs-types/cosmos/authz/v1beta1/tx';
import { SendAuthorization } from 'cosmjs-types/cosmos/bank/v1beta1/authz';
import { MsgSend } from 'cosmjs-types/cosmos/bank/v1beta1/tx';
import { TxRaw } from 'cosmjs-types/cosmos/tx/v1beta1/tx';
import type { Coin } from '../api/coin.js';
import type { GrantView, PayerFunds } from './grants.js';

export const MSG_SEND_TYPE_URL = '/cosmos.bank.v1beta1.MsgSend';
export const MSG_EXEC_TYPE_URL = '/cosmos.authz.v1beta1.MsgExec';
export const MSG_GRANT_TYPE_URL = '/cosmos.authz.v1beta1.MsgGrant';
export const MSG_REVOKE_TYPE_URL = '/cosmos.authz.v1beta1.MsgRevoke';
export const SEND_AUTHORIZATION_TYPE_URL = '/cosmos.bank.v1beta1.SendAuthorization';
export const MSG_GRANT_ALLOWANCE_TYPE_URL = '/cosmos.feegrant.v1beta1.MsgGrantAllowance';
export const BASIC_ALLOWANCE_TYPE_URL = '/cosmos.feegrant.v1beta1.BasicAllowance';
/** CometBFT's answer to bytes it already holds (in its mempool or its cache of committed txs): thrown as a JSON-RPC error. */
const ALREADY_IN_CACHE = /tx already exists in cache/i;
/** The node's answer when it runs without the kv tx indexer (`[tx_index] indexer = "null"`). */
const INDEXING_DISABLED = /indexing is disabled/i;
/**
 * Gas the fee's own transfer to the fee collector costs (two balance writes, ~19.5k on wasmd 0.61).
 * cosmjs simulates with an empty fee, so its estimate leaves this out: measured 19.5k short on every
 * transaction type, which cosmjs's `'auto'` (×1.4) does not cover for small ones (a MsgGrant that
 * replaces a grant: 44.5k simulated, 64.0k used).
 */
export const FEE_TRANSFER_GAS = 25_000;

/** The gas limit to sign with for a transaction simulated at `simulated` gas. */
export function gasLimitFor(simulated: number, multiplier = 1.3): number {
  if (!Number.isFinite(simulated) || simulated < 0) throw new Error(`Simulated gas must be a non-negative number, got ${simulated}`);
  return Math.ceil(simulated * multiplier) + FEE_TRANSFER_GAS;
}

export interface ChainOptions {
  rpcUrl: string;
  /** The fee price, e.g. 0.001ustake (the node's minimum gas price or above), or `auto`: the node's own minimum. */
  gasPrice: string;
  /** With gasPrice `auto` and a node that takes several fee denoms: which one. */
  feeDenom?: string;
  /** The bech32 prefix of the chain's account addresses (default cosmos). */
  prefix?: string;
  /** The chain the caller means to use: connecting refuses a node of another chain. */
  chainId?: string;
}

export interface SignedTx {
  txBytes: Uint8Array;
  /** sha256 of the bytes, 64 uppercase hex digits: the hash the chain reports. */
  txHash: string;
  sequence: number;
  timeoutHeight: number;
  fee: StdFee;
}

/** accepted: in the node's mempool now (or it held these bytes already); rejected: CheckTx refused them; unknown: no answer. */
export type BroadcastResult = { kind: 'accepted' } | { kind: 'rejected'; code: number; codespace: string; log: string } | { kind: 'unknown'; error: string };

export interface FoundTx {
  height: number;
  code: number;
  log: string;
  gasUsed: number;
}

/** A payment inside a MsgExec: one MsgSend from a granter. */
export interface ExecSend {
  from: string;
  to: string;
  amount: Coin;
}

export class Chain {
  private constructor(
    readonly comet: CometClient,
    readonly query: ReturnType<typeof makeQueries>,
    readonly chainId: string,
    private readonly o: ChainOptions,
  ) {}

  static async connect(o: ChainOptions): Promise<Chain> {
    const comet = await connectComet(o.rpcUrl);
    const status = await comet.status();
    const network = status.nodeInfo.network;
    if (o.chainId !== undefined && o.chainId !== network) {
      comet.disconnect();
      throw new Error(`The node at ${o.rpcUrl} is on chain ${network}, not ${o.chainId} (--chain-id): refusing to sign for another chain`);
    }
    const query = makeQueries(comet);
    const gasPrice = o.gasPrice === 'auto' ? await nodeGasPrice(query, o.feeDenom) : o.gasPrice;
    GasPrice.fromString(gasPrice); // fails here, at start-up, on a malformed price
    return new Chain(comet, query, network, { ...o, gasPrice });
  }

  /** The fee price this client signs with (resolved from the node when it was `auto`). */
  get gasPrice(): string {
    return this.o.gasPrice;
  }

  disconnect(): void {
    this.comet.disconnect();
  }

  get prefix(): string {
    return this.o.prefix ?? 'cosmos';
  }

  async height(): Promise<number> {
    return (await this.comet.status()).syncInfo.latestBlockHeight;
  }

  /** The account's number and next sequence; undefined when the chain has never seen it (no funds ever). */
  async account(address: string): Promise<{ accountNumber: number; sequence: number } | undefined> {
    try {
      const a = await this.query.auth.account(address);
      if (!a) return undefined;
      const acc = accountFromAny(a);
      return { accountNumber: Number(acc.accountNumber), sequence: acc.sequence };
    } catch (e) {
      if (/not found/i.test((e as Error).message)) return undefined;
      throw e;
    }
  }

  async balances(address: string): Promise<Map<string, bigint>> {
    const all = await this.query.bank.allBalances(address);
    return new Map(all.map((c) => [c.denom, BigInt(c.amount)]));
  }

  /** The payer's SendAuthorization to the grantee, or undefined when there is none. */
  async grant(granter: string, grantee: string): Promise<GrantView | undefined> {
    let grants;
    try {
      grants = (await this.query.authz.grants(granter, grantee, MSG_SEND_TYPE_URL)).grants;
    } catch (e) {
      // authz answers NotFound when no grant exists for the triple.
      if (/not found|authorization not found/i.test((e as Error).message)) return undefined;
      throw e;
    }
    const g = grants.find((x) => x.authorization?.typeUrl === SEND_AUTHORIZATION_TYPE_URL);
    if (!g?.authorization) return undefined;
    const auth = SendAuthorization.decode(g.authorization.value);
    return {
      spendLimit: new Map(auth.spendLimit.map((c) => [c.denom, BigInt(c.amount)])),
      allowList: auth.allowList,
      ...(g.expiration ? { expiresAtMs: Number(g.expiration.seconds) * 1000 + Math.floor(g.expiration.nanos / 1e6) } : {}),
    };
  }

  async funds(payer: string, grantee: string): Promise<PayerFunds> {
    const [grant, balance] = await Promise.all([this.grant(payer, grantee), this.balances(payer)]);
    return { ...(grant ? { grant } : {}), balance };
  }

  /** The chain's memo limit in bytes (x/auth params). */
  async maxMemoBytes(): Promise<number> {
    const { params } = await new AuthQuery(createProtobufRpcClient(this.query)).Params({});
    return Number(params.maxMemoCharacters);
  }

  private async signer(privateKey: Uint8Array): Promise<{ client: SigningStargateClient; address: string }> {
    const wallet = await DirectSecp256k1Wallet.fromKey(privateKey, this.prefix);
    const [acc] = await wallet.getAccounts();
    return { client: SigningStargateClient.createWithSigner(this.comet, wallet, { gasPrice: GasPrice.fromString(this.o.gasPrice) }), address: acc?.address ?? '' };
  }

  /** The gas a message set needs (simulated, see gasLimitFor), and the fee at the configured price: fixed before signing. */
  async estimateFee(privateKey: Uint8Array, msgs: EncodeObject[], memo: string): Promise<StdFee> {
    const { client, address } = await this.signer(privateKey);
    const gas = await client.simulate(address, msgs, memo);
    return calculateFee(gasLimitFor(gas), GasPrice.fromString(this.o.gasPrice));
  }

  /**
   * Signs without sending: explicit account number, sequence, fee and timeout height, so the bytes
   * are fixed and can be persisted before anything reaches the network.
   */
  async sign(privateKey: Uint8Array, msgs: EncodeObject[], memo: string, at: { accountNumber: number; sequence: number; timeoutHeight: number; fee: StdFee }): Promise<SignedTx> {
    const { client, address } = await this.signer(privateKey);
    const raw = await client.sign(address, msgs, at.fee, memo, { accountNumber: BigInt(at.accountNumber), sequence: at.sequence, chainId: this.chainId }, BigInt(at.timeoutHeight));
    const txBytes = TxRaw.encode(raw).finish();
    return { txBytes, txHash: txHash(txBytes), sequence: at.sequence, timeoutHeight: at.timeoutHeight, fee: at.fee };
  }

  /** Sends signed bytes to the mempool (CheckTx only). Never throws: the caller decides what each outcome means. */
  async broadcast(txBytes: Uint8Array): Promise<BroadcastResult> {
    try {
      const r = await this.comet.broadcastTxSync({ tx: txBytes });
      if (r.code === 0) return { kind: 'accepted' };
      return { kind: 'rejected', code: r.code, codespace: r.codespace ?? '', log: r.log ?? '' };
    } catch (e) {
      if (e instanceof BroadcastTxError) return { kind: 'rejected', code: e.code, codespace: e.codespace, log: e.log ?? '' };
      // The same bytes sent again (by us or by the other party): harmless, and as good as accepted.
      if (ALREADY_IN_CACHE.test(errorText(e))) return { kind: 'accepted' };
      return { kind: 'unknown', error: (e as Error).message };
    }
  }

  /**
   * The transaction with this hash if a block holds it. Through the node's kv tx indexer when it
   * has one; without one (or for a node that pruned its index), by scanning `within` — the blocks
   * it can be in: from when it was signed to its timeout height (at most the latest block).
   */
  async findTx(hash: string, within?: { fromHeight: number; toHeight: number }): Promise<FoundTx | undefined> {
    try {
      const r = await this.comet.tx({ hash: Buffer.from(hash, 'hex') });
      return { height: r.height, code: r.result.code, log: r.result.log ?? '', gasUsed: Number(r.result.gasUsed) };
    } catch (e) {
      const text = errorText(e);
      if (within && INDEXING_DISABLED.test(text)) return this.scanBlocks(hash, within.fromHeight, within.toHeight);
      if (/not found/i.test(text)) return undefined;
      throw e;
    }
  }

  /** Looks for the hash in blocks from..to (capped at the latest), newest last; block results give its code. */
  async scanBlocks(hash: string, fromHeight: number, toHeight: number): Promise<FoundTx | undefined> {
    const to = Math.min(toHeight, await this.height());
    for (let h = Math.max(1, fromHeight); h <= to; h++) {
      const block = await this.comet.block(h);
      const i = block.block.txs.findIndex((tx) => txHash(tx) === hash);
      if (i < 0) continue;
      const result = (await this.comet.blockResults(h)).results[i];
      if (!result) throw new Error(`Block ${h} holds transaction ${hash} but its results do not`);
      return { height: h, code: result.code, log: result.log ?? '', gasUsed: Number(result.gasUsed) };
    }
    return undefined;
  }

  /** The gas a signed (or placeholder-signed) transaction uses, as the node simulates it. */
  async simulateGas(txBytes: Uint8Array): Promise<number> {
    const r = await new TxService(createProtobufRpcClient(this.query)).Simulate({ txBytes, tx: undefined });
    return Number(r.gasInfo?.gasUsed ?? 0n);
  }

  /** Whether `granter` pays `grantee`'s fees through an x/feegrant allowance now. */
  async hasFeeAllowance(granter: string, grantee: string): Promise<boolean> {
    try {
      const r = await new FeegrantQuery(createProtobufRpcClient(this.query)).Allowance({ granter, grantee });
      return r.allowance !== undefined;
    } catch (e) {
      if (/not found/i.test(errorText(e))) return false;
      throw e;
    }
  }

  /** Lets `grantee` (a settlement account) pay its fees from the key's balance (x/feegrant, no limit but the balance). */
  async grantFeeAllowance(privateKey: Uint8Array, grantee: string): Promise<FoundTx & { txHash: string }> {
    const { address } = await this.signer(privateKey);
    const allowance = { typeUrl: BASIC_ALLOWANCE_TYPE_URL, value: BasicAllowance.encode(BasicAllowance.fromPartial({})).finish() };
    return this.submit(privateKey, [{ typeUrl: MSG_GRANT_ALLOWANCE_TYPE_URL, value: MsgGrantAllowance.fromPartial({ granter: address, grantee, allowance }) }], 'gpufed settlement fees');
  }

  /** When the block at `height` was made (RFC 3339), from its header. */
  async blockTime(height: number): Promise<string> {
    const r = await this.comet.blockchain(height, height);
    const meta = r.blockMetas[0];
    if (!meta) throw new Error(`The chain returned no header for height ${height}`);
    return meta.header.time.toISOString();
  }

  /** Signs and sends a payer's grant to a provider's hot key, waiting for it to commit. */
  async grantSpend(privateKey: Uint8Array, grantee: string, limit: Coin, allowList: string[], expiresAtMs?: number): Promise<FoundTx & { txHash: string }> {
    const { address } = await this.signer(privateKey);
    return this.submit(privateKey, [grantMessage(address, grantee, limit, allowList, expiresAtMs)], 'gpufed budget grant');
  }

  async revokeSpend(privateKey: Uint8Array, grantee: string): Promise<FoundTx & { txHash: string }> {
    const { address } = await this.signer(privateKey);
    return this.submit(privateKey, [{ typeUrl: MSG_REVOKE_TYPE_URL, value: MsgRevoke.fromPartial({ granter: address, grantee, msgTypeUrl: MSG_SEND_TYPE_URL }) }], 'gpufed budget revoke');
  }

  /**
   * Sign, send and wait for a commit; for one-off transactions of a person (a grant, a revoke, a
   * transfer), not for settlement. Followed by its hash, block by block where the node has no
   * index, so it works against any node that serves blocks.
   */
  async submit(privateKey: Uint8Array, msgs: EncodeObject[], memo: string, timeoutMs = SUBMIT_TIMEOUT_MS): Promise<FoundTx & { txHash: string }> {
    const { client, address } = await this.signer(privateKey);
    const fee = await this.estimateFee(privateKey, msgs, memo);
    const txBytes = TxRaw.encode(await client.sign(address, msgs, fee, memo)).finish();
    const hash = txHash(txBytes);
    let next = (await this.height()) + 1;
    const sent = await this.broadcast(txBytes);
    if (sent.kind === 'rejected') throw new Error(`The node refused the transaction ${hash} (code ${sent.code} ${sent.codespace}): ${sent.log}`);
    if (sent.kind === 'unknown') throw new Error(`No answer from the node for the transaction ${hash}: ${sent.error}`);
    for (const deadline = Date.now() + timeoutMs; Date.now() < deadline; await sleep(SUBMIT_POLL_MS)) {
      const latest = await this.height();
      const found = await this.findTx(hash, { fromHeight: next, toHeight: latest });
      next = latest + 1;
      if (!found) continue;
      if (found.code !== 0) throw new Error(`The chain rejected the transaction ${hash} in block ${found.height} (code ${found.code}): ${found.log}`);
      return { ...found, txHash: hash };
    }
    throw new Error(`The transaction ${hash} was in no block after ${timeoutMs / 1000} s; it may still be included (look it up by hash before sending it again)`);
  }
}

/** How long submit waits for a block to include its transaction, and how often it looks. */
const SUBMIT_TIMEOUT_MS = 60_000;
const SUBMIT_POLL_MS = 500;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

function makeQueries(comet: CometClient) {
  return QueryClient.withExtensions(comet, setupAuthExtension, setupAuthzExtension, setupBankExtension);
}

/** A JSON-RPC error's text: cosmjs puts the node's own words in `data`. */
function errorText(e: unknown): string {
  return `${(e as Error).message ?? ''} ${JSON.stringify((e as { data?: unknown }).data ?? '')}`;
}

/** The node's minimum gas price (SDK node service), in `feeDenom` or its only denom, e.g. `0.001ustake`. */
export async function nodeGasPrice(query: ReturnType<typeof makeQueries>, feeDenom?: string): Promise<string> {
  const { minimumGasPrice } = await new NodeService(createProtobufRpcClient(query)).Config({});
  return pickGasPrice(minimumGasPrice, feeDenom);
}

/** One price out of the SDK's DecCoins text (`0.001000000000000000ustake,0.1uatom`), trailing zeros dropped. */
export function pickGasPrice(decCoins: string, feeDenom?: string): string {
  const prices = decCoins.split(',').map((c) => c.trim()).filter((c) => c !== '').map((c) => /^([0-9.]+)([a-zA-Z][a-zA-Z0-9/:._-]*)$/.exec(c)).filter((m): m is RegExpExecArray => m !== null);
  const chosen = feeDenom === undefined ? (prices.length === 1 ? prices[0] : undefined) : prices.find((m) => m[2] === feeDenom);
  if (!chosen) {
    const have = prices.map((m) => m[2]).join(', ') || 'none';
    throw new Error(feeDenom === undefined ? `The node's minimum gas price names ${have}: say which fee denom to use (--fee-denom)` : `The node has no minimum gas price in ${feeDenom} (it has ${have})`);
  }
  const amount = (chosen[1] ?? '0').replace(/(\.\d*?)0+$/, '$1').replace(/\.$/, '');
  // A node without a minimum (0) still needs a price a fee can be computed from.
  return `${amount === '0' || amount === '' ? '0' : amount}${chosen[2] ?? ''}`;
}

export function txHash(txBytes: Uint8Array): string {
  return toHex(sha256(txBytes)).toUpperCase();
}

/** A MsgGrant of a SendAuthorization: spend limit, allow list, optional expiry. */
export function grantMessage(granter: string, grantee: string, limit: Coin, allowList: string[], expiresAtMs?: number): EncodeObject {
  const authorization = { typeUrl: SEND_AUTHORIZATION_TYPE_URL, value: SendAuthorization.encode(SendAuthorization.fromPartial({ spendLimit: [{ denom: limit.denom, amount: limit.amount.toString() }], allowList })).finish() };
  return {
    typeUrl: MSG_GRANT_TYPE_URL,
    value: MsgGrant.fromPartial({ granter, grantee, grant: { authorization, ...(expiresAtMs !== undefined ? { expiration: { seconds: BigInt(Math.floor(expiresAtMs / 1000)), nanos: 0 } } : {}) } }),
  };
}

/** One MsgExec by the grantee wrapping a MsgSend per payment. */
export function execMessage(grantee: string, sends: readonly ExecSend[]): EncodeObject {
  const msgs = sends.map((s) => ({ typeUrl: MSG_SEND_TYPE_URL, value: MsgSend.encode(MsgSend.fromPartial({ fromAddress: s.from, toAddress: s.to, amount: [{ denom: s.amount.denom, amount: s.amount.amount.toString() }] })).finish() }));
  return { typeUrl: MSG_EXEC_TYPE_URL, value: MsgExec.fromPartial({ grantee, msgs }) };
}

/** The MsgSends inside a signed MsgExec transaction, for checking a persisted batch against its records. */
export function decodeExecSends(txBytes: Uint8Array): ExecSend[] {
  const tx = decodeTxRaw(txBytes);
  const out: ExecSend[] = [];
  for (const m of tx.body.messages) {
    if (m.typeUrl !== MSG_EXEC_TYPE_URL) continue;
    for (const inner of MsgExec.decode(m.value).msgs) {
      if (inner.typeUrl !== MSG_SEND_TYPE_URL) continue;
      const send = MsgSend.decode(inner.value);
      for (const c of send.amount) out.push({ from: send.fromAddress, to: send.toAddress, amount: { amount: BigInt(c.amount), denom: c.denom } });
    }
  }
  return out;
}
