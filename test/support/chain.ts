// The test federation's chain as tests use it: a client, the faucet, balances, and renters made on
// the spot (a key, a proven Tenant, a kubeconfig with the renter's RBAC, coins from the faucet).
import { randomBytes } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { Kube } from '../../operator/src/kube/client.js';
import { onboardTenant } from '../../operator/src/onboarding/tenant-apply.js';
import { Chain, MSG_SEND_TYPE_URL } from '../../operator/src/settlement/chain.js';
import { keyAddress } from '../../operator/src/settlement/keys.js';
import { signTenantProof } from '../../operator/src/tenancy/proof.js';
import { MsgSend } from 'cosmjs-types/cosmos/bank/v1beta1/tx';
import { CHAIN_DENOM, CHAIN_MIN_GAS_PRICE, waitForChainBlock } from '../../cli/src/dev/chain.js';
import { devFaucetKey } from '../../cli/src/dev/wallets.js';
import { eventually, kubeConfig, testFederation } from './federation.js';
import type { TestTenant } from './tenants.js';

export const DENOM = CHAIN_DENOM;

export function chainRpc(): string {
  const c = testFederation().plan.chain;
  if (!c) throw new Error('The test federation has no chain');
  return c.endpoints.rpcUrl;
}

/** A client of the test chain (disconnect it in afterAll). Waits for a fresh block first: after a restart the node refuses signed transactions until it commits one. */
export async function testChain(): Promise<Chain> {
  await waitForChainBlock(chainRpc());
  return Chain.connect({ rpcUrl: chainRpc(), gasPrice: CHAIN_MIN_GAS_PRICE });
}

export async function balance(chain: Chain, address: string, denom = DENOM): Promise<bigint> {
  return (await chain.balances(address)).get(denom) ?? 0n;
}

/** Sends `amount` from `key`'s account to `to` (e.g. to drain a renter, or from the faucet), in the chain's address prefix and `denom`. */
export async function send(chain: Chain, key: Uint8Array, to: string, amount: bigint, denom = DENOM): Promise<void> {
  const from = keyAddress(key, chain.prefix);
  await chain.submit(key, [{ typeUrl: MSG_SEND_TYPE_URL, value: MsgSend.fromPartial({ fromAddress: from, toAddress: to, amount: [{ denom, amount: amount.toString() }] }) }], 'gpufed test transfer');
}

export interface FundedTenant extends TestTenant {
  key: Uint8Array;
}

/** A new renter: its own key and namespace, a verified Tenant, the renter kubeconfig, and `coins` (of the chain's `denom`) from the faucet. */
export async function fundedTenant(chain: Chain, prefix: string, coins: bigint, on: { denom: string } = { denom: DENOM }): Promise<FundedTenant> {
  const key = new Uint8Array(randomBytes(32));
  const namespace = `${prefix}-${Date.now().toString(36)}`;
  const { address, proof } = signTenantProof(key, namespace, chain.prefix);
  const done = await onboardTenant(new Kube(kubeConfig('registry'), 'gpufed-cli'), { name: namespace, namespace, address, proof });
  const kc = new k8s.KubeConfig();
  kc.loadFromString(done.kubeconfig);
  if (coins > 0n) await send(chain, devFaucetKey(), address, coins, on.denom);
  const custom = kubeConfig('registry').makeApiClient(k8s.CustomObjectsApi);
  await eventually(`tenant ${namespace} verified`, async () => {
    const t = (await custom.getClusterCustomObject({ group: 'gpufed.io', version: 'v1alpha1', plural: 'tenants', name: namespace })) as { status?: { verifiedAddress?: string } };
    return t.status?.verifiedAddress === address ? true : undefined;
  }, 30_000);
  return { namespace, address, kubeconfig: '', kc, key };
}

export { keyAddress };
