// The cosigner controller: for each Settlement a provider proposes, decides (decideCosign) whether
// the registry adds its signature, writes the co-signed transaction to the Settlement's status
// BEFORE sending it (so the only signature that makes it valid is on record first: a restart,
// a failover or a second leader finds it there), then broadcasts it; for each co-signed one, looks
// it up on chain until it is decided (decideFollow), sending it again meanwhile. A negative
// verdict (expired, superseded) is reached only after every block the transaction could be in has
// been searched, never from an index that may lag.
import { fromBase64, toBase64 } from '@cosmjs/encoding';
import { isDeepStrictEqual } from 'node:util';
import { SettlementConditionType, SettlementState, setCondition } from '../../api/conditions.js';
import { SettlementResource, providerOfNamespace, type Settlement, type SettlementStatus } from '../../api/index.js';
import { listCustom } from '../../kube/informer.js';
import { normalized } from '../../kube/manifests.js';
import { txHash, type Chain, type FoundTx } from '../../settlement/chain.js';
import { assembleTx, settlementAccount, signMember, publicKeyOf, type SettlementAccount } from '../../settlement/multisig.js';
import type { CosignerOptions, RegistryContext } from '../context.js';
import { keyOf, type Obj } from '../state.js';
import { decideCosign, decideFollow, type FollowDecision } from './cosign.js';

/** The account a Provider's status publishes, rebuilt from its two public keys (never trusted as an address alone). */
export function publishedAccount(p: { status?: { settlementAccount?: { providerPubKey: string; registryPubKey: string; address: string } } }, prefix: string): { account: SettlementAccount; providerPubkey: Uint8Array } | undefined {
  const s = p.status?.settlementAccount;
  if (!s) return undefined;
  const providerPubkey = fromBase64(s.providerPubKey);
  const account = settlementAccount(providerPubkey, fromBase64(s.registryPubKey), prefix);
  return account.address === s.address ? { account, providerPubkey } : undefined;
}

export class CosignerController {
  private readonly lastSent = new Map<string, number>();
  private readonly registryPubkey: Uint8Array;

  constructor(
    private readonly ctx: RegistryContext,
    private readonly o: CosignerOptions,
  ) {
    this.registryPubkey = publicKeyOf(o.key);
  }

  private get chain(): Chain {
    return this.o.chain;
  }

  async reconcile(key: string): Promise<{ requeueAfterMs: number } | void> {
    const [namespace = '', name = ''] = key.split('/');
    const s = this.ctx.state.settlementsIn(namespace).find((x) => x.metadata.name === name);
    if (!s) return;
    const state = s.status?.state;
    if (state === undefined) return this.consider(s, namespace);
    if (state === SettlementState.Cosigned) return this.follow(s, namespace);
  }

  /** A proposal: co-sign it, refuse it, or look again soon. */
  private async consider(s: Obj<Settlement>, namespace: string): Promise<{ requeueAfterMs: number } | void> {
    const providerName = providerOfNamespace(namespace) ?? '';
    const provider = this.ctx.state.provider(providerName);
    const published = provider ? publishedAccount(provider, this.chain.prefix) : undefined;
    if (!provider || !published) return this.write(s, { state: SettlementState.Refused, message: `Provider ${providerName} has no settlement account published by this registry` });
    // Fresh reads for the decision that matters: what else claims these records, where the account is.
    const others = (await listCustom<Obj<Settlement>>(this.ctx.options.kc, SettlementResource, namespace)()).items;
    const [account, height] = await Promise.all([this.chain.account(published.account.address), this.chain.height()]);
    if (!account) return { requeueAfterMs: 2000 }; // the account appears with its first grant or fee allowance
    const records = new Map(this.ctx.state.recordsIn(namespace).map((r) => [r.metadata.name ?? '', r]));
    const d = decideCosign({
      settlement: s,
      provider: { name: providerName, payee: provider.spec.payout ?? provider.spec.wallet, hotKey: provider.spec.wallet, account: published.account, providerPubkey: published.providerPubkey },
      records,
      others,
      chain: { chainId: this.chain.chainId, accountNumber: account.accountNumber, sequence: account.sequence, height },
      prefix: this.chain.prefix,
      maxTimeoutBlocks: this.o.maxTimeoutBlocks ?? 100,
    });
    if (d.kind === 'wait') return { requeueAfterMs: 2000 };
    if (d.kind === 'refuse') {
      this.ctx.log.warn({ settlement: keyOf(s), reason: d.reason, message: d.message }, 'Refused to co-sign a settlement');
      return this.write(s, { state: SettlementState.Refused, message: `Refused (${d.reason}): ${d.message}` });
    }
    const providerSig = fromBase64(s.spec.providerSignature);
    const signatures = new Map([
      [toBase64(published.providerPubkey), providerSig],
      [toBase64(this.registryPubkey), signMember(d.digest, this.o.key)],
    ]);
    const bytes = assembleTx(d.tx, published.account, signatures);
    const hash = txHash(bytes);
    // Written (a compare-and-swap on the version decided from) before it leaves this process.
    await this.write(s, { state: SettlementState.Cosigned, txHash: hash, signedTx: toBase64(bytes), cosignedHeight: height, message: `Co-signed at height ${height}; waiting for a block` }, s.metadata.resourceVersion);
    this.ctx.log.info({ settlement: keyOf(s), txHash: hash, sequence: s.spec.sequence, records: s.spec.records.length, total: s.spec.total }, 'Co-signed a settlement');
    return this.send(s, namespace, bytes);
  }

  /** A co-signed transaction: decided on chain yet? */
  private async follow(s: Obj<Settlement>, namespace: string): Promise<{ requeueAfterMs: number } | void> {
    const hash = s.status?.txHash ?? '';
    const from = s.status?.cosignedHeight ?? 0;
    const [latest, account] = await Promise.all([this.chain.height(), this.chain.account(s.spec.account)]);
    const view = { latestHeight: latest, accountSequence: account?.sequence ?? 0, sequence: s.spec.sequence, timeoutHeight: s.spec.timeoutHeight };
    const found: FoundTx | undefined = await this.chain.findTx(hash, { fromHeight: from, toHeight: s.spec.timeoutHeight });
    let decided = decideFollow({ ...view, found });
    // Only the blocks themselves say a transaction is not there (an index may lag its blocks).
    if (decided.kind === 'expired' || decided.kind === 'superseded') decided = decideFollow({ ...view, found: await this.chain.scanBlocks(hash, from, s.spec.timeoutHeight) });
    if (decided.kind !== 'pending') return this.write(s, { ...this.kept(s), ...(await this.decidedStatus(decided)) });
    const due = Date.now() - (this.lastSent.get(keyOf(s)) ?? 0) >= (this.o.rebroadcastMs ?? 5000);
    return due ? this.send(s, namespace, fromBase64(s.status?.signedTx ?? '')) : { requeueAfterMs: 1000 };
  }

  /** The status of a transaction the chain decided. */
  private async decidedStatus(d: Exclude<FollowDecision, { kind: 'pending' }>): Promise<SettlementStatus> {
    switch (d.kind) {
      case 'committed': {
        const time = await this.chain.blockTime(d.height).catch(() => undefined);
        return { state: SettlementState.Committed, height: d.height, ...(time ? { time } : {}), message: `Paid in block ${d.height}` };
      }
      case 'failed':
        return { state: SettlementState.Failed, height: d.height, message: d.message };
      case 'expired':
        return { state: SettlementState.Expired, message: d.message };
      case 'superseded':
        return { state: SettlementState.Superseded, message: d.message };
    }
  }

  /** Sends the co-signed bytes and records whether the node took them; either party may send, a duplicate is harmless. */
  private async send(s: Obj<Settlement>, namespace: string, bytes: Uint8Array): Promise<{ requeueAfterMs: number }> {
    this.lastSent.set(keyOf(s), Date.now());
    const sent = await this.chain.broadcast(bytes);
    const latest = this.ctx.state.settlementsIn(namespace).find((x) => x.metadata.name === s.metadata.name) ?? s;
    const now = this.ctx.now();
    const update =
      sent.kind === 'rejected'
        ? { type: SettlementConditionType.Broadcast, status: 'False' as const, reason: `Code${sent.code}`, message: `The node refused it (code ${sent.code} ${sent.codespace}): ${sent.log}` }
        : sent.kind === 'accepted'
          ? { type: SettlementConditionType.Broadcast, status: 'True' as const, reason: 'InMempool', message: 'The node took it into its mempool' }
          : { type: SettlementConditionType.Broadcast, status: 'Unknown' as const, reason: 'NoAnswer', message: `No answer from the node: ${sent.error}` };
    if (sent.kind === 'rejected') this.ctx.log.warn({ settlement: keyOf(s), code: sent.code, log: sent.log }, 'The node refused a co-signed settlement; it stays co-signed until it is decided on chain');
    const conditions = setCondition(latest.status?.conditions, update, now);
    if (latest.status?.state === SettlementState.Cosigned && !isDeepStrictEqual(normalized(conditions), normalized(latest.status.conditions ?? []))) await this.write(latest, { ...this.kept(latest), state: SettlementState.Cosigned, message: latest.status.message ?? '', conditions });
    return { requeueAfterMs: 1000 };
  }

  private kept(s: Settlement): Pick<SettlementStatus, 'txHash' | 'signedTx' | 'cosignedHeight' | 'conditions'> {
    const st = s.status;
    return { ...(st?.txHash ? { txHash: st.txHash } : {}), ...(st?.signedTx ? { signedTx: st.signedTx } : {}), ...(st?.cosignedHeight !== undefined ? { cosignedHeight: st.cosignedHeight } : {}), ...(st?.conditions ? { conditions: st.conditions } : {}) };
  }

  private async write(s: Obj<Settlement>, status: SettlementStatus, resourceVersion?: string): Promise<void> {
    if (status.state && status.state !== SettlementState.Cosigned) this.ctx.log.info({ settlement: keyOf(s), state: status.state, txHash: status.txHash, height: status.height }, `Settlement ${status.state.toLowerCase()}`);
    const written = (await this.ctx.kube('settlement').applyStatus(SettlementResource, s.metadata.name ?? '', s.metadata.namespace, status, resourceVersion)) as Obj<Settlement>;
    this.ctx.state.settlementWrites.remember(keyOf(s), written, written);
    this.ctx.metrics.registryWrites.inc({ resource: 'settlements', verb: 'apply_status' });
  }
}

