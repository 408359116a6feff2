// Who holds what on the local federation's chain: the dev tenant (a renter with a budget to grant),
// each provider's hot key (gas only) and payout address, and a faucet for tests. `dev up` writes the
// genesis from this, each agent's hot key file, and `.gpufed/dev/chain.env`.
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toHex } from '@cosmjs/encoding';
import { keyAddress } from '../../../operator/src/settlement/keys.js';
import { writePrivateFile } from '../../../operator/src/onboarding/apply.js';
import { CHAIN_BINARY, DEV_CHAIN, chainEnvFile, initChain, type ChainProfile, type DevKey, type GenesisAccount } from './chain.js';
import type { FederationPlan } from './plan.js';
import { DEV_TENANT, devTenantKey } from './tenants.js';
import { devFaucetKey, devProviderHotKey, devProviderPayout, devRegistryKey } from './wallets.js';

/** Genesis balances, in the base denom. */
export const DEV_BALANCES = {
  /** The dev tenant: enough for every demo and test job many times over. */
  tenant: 10_000_000_000n,
  /** A provider's hot key pays settlement fees only. */
  hotKey: 1_000_000_000n,
  faucet: 1_000_000_000_000n,
} as const;

/** The key file `dev up` writes for a provider's agent (hex, 0600), as a Secret would be mounted. */
export function agentKeyPath(dir: string, provider: string): string {
  return join(dir, `agent-${provider}.key`);
}

/** The registry's co-signing key file `dev up` writes (hex, 0600). */
export function registryKeyPath(dir: string): string {
  return join(dir, 'registry-cosign.key');
}

function key(name: string, privateKey: Uint8Array): DevKey {
  return { name, address: keyAddress(privateKey), privateKeyHex: toHex(privateKey) };
}

/** The dev chain's named keys for a set of providers. */
export function devChainKeys(providers: readonly string[]): DevKey[] {
  return [key(DEV_TENANT, devTenantKey(DEV_TENANT)), key('faucet', devFaucetKey()), ...providers.map((p) => key(`${p}-hot`, devProviderHotKey(p)))];
}

export function devGenesisAccounts(providers: readonly string[], profile: ChainProfile = DEV_CHAIN): GenesisAccount[] {
  const coins = (n: bigint) => `${n}${profile.denom}`;
  const address = (key: Uint8Array) => keyAddress(key, profile.prefix);
  return [
    { address: address(devTenantKey(DEV_TENANT)), coins: coins(DEV_BALANCES.tenant) },
    { address: address(devFaucetKey()), coins: coins(DEV_BALANCES.faucet) },
    ...providers.map((p) => ({ address: address(devProviderHotKey(p)), coins: coins(DEV_BALANCES.hotKey) })),
  ];
}

/** Genesis, the agents' key files and chain.env, before the chain starts. */
export async function prepareDevChain(plan: FederationPlan, log: (line: string) => void): Promise<void> {
  if (!plan.chain) return;
  const providers = plan.clusters.filter((c) => c.provider).map((c) => c.name);
  const keys = devChainKeys(providers);
  const t0 = Date.now();
  await initChain({ home: plan.chain.home, binary: join(plan.binDir, CHAIN_BINARY), accounts: devGenesisAccounts(providers), keys });
  for (const p of providers) writePrivateFile(agentKeyPath(plan.dir, p), `${toHex(devProviderHotKey(p))}\n`);
  writePrivateFile(registryKeyPath(plan.dir), `${toHex(devRegistryKey())}\n`);
  writeFileSync(join(plan.dir, 'chain.env'), chainEnvFile({ endpoints: plan.chain.endpoints, home: plan.chain.home, keys }));
  log(`chain: genesis for ${keys.map((k) => k.name).join(', ')} (${Date.now() - t0} ms); payouts ${providers.map((p) => `${p} → ${devProviderPayout(p)}`).join(', ')}`);
  for (const extra of plan.extraChains ?? []) {
    await initChain({ home: extra.home, binary: join(plan.binDir, extra.profile.binary), accounts: devGenesisAccounts(providers, extra.profile), profile: extra.profile });
    log(`${extra.profile.name}: genesis (${extra.profile.chainId}, ${extra.profile.prefix} addresses, ${extra.profile.denom})`);
  }
}
