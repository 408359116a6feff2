// The chain profiles the test federation runs, as the money tests use them: the dev chain (`cosmos`
// addresses, `ustake`) and, where the federation runs it, a second wasmd linked with the `akash`
// prefix and paying in `uakt` (cli/src/dev/chain.ts AKASH_CHAIN). Providers keep their GPUs and
// their hot keys; their wallets, payouts, prices and renters are in the profile's addresses and denom.
import { minGasPrice, waitForChainBlock, type ChainProfile as DevChainProfile } from '../../cli/src/dev/chain.js';
import { Chain } from '../../operator/src/settlement/chain.js';
import { testFederation } from './federation.js';
import type { ChainTarget } from './operators.js';

export interface ChainProfile extends DevChainProfile {
  rpcUrl: string;
  /** What an operator is given to reach it. */
  target(): ChainTarget;
  /** A client, once the node has committed a block since it started. */
  connect(): Promise<Chain>;
  /** The prices a provider charges on this chain. */
  prices(provider: string): { model: string; pricePerGpuHour: string }[];
}

/** Odd prices, so almost every period's amount rounds and the carry is exercised. */
const PRICES: Record<string, [string, bigint][]> = {
  alice: [['NVIDIA-GeForce-RTX-4090', 1_200_000n], ['NVIDIA-GeForce-RTX-3090', 1_000_003n]],
  bob: [['NVIDIA-RTX-A6000', 1_400_007n]],
};

function profileOf(p: DevChainProfile, rpcUrl: string): ChainProfile {
  return {
    ...p,
    rpcUrl,
    target: () => ({ rpcUrl, chainId: p.chainId, prefix: p.prefix, gasPrice: minGasPrice(p) }),
    connect: async () => {
      await waitForChainBlock(rpcUrl);
      return Chain.connect({ rpcUrl, gasPrice: minGasPrice(p), prefix: p.prefix, chainId: p.chainId });
    },
    prices: (provider) => (PRICES[provider] ?? []).map(([model, amount]) => ({ model, pricePerGpuHour: `${amount}${p.denom}` })),
  };
}

/** Every chain profile of the test federation, the dev chain first. */
export function chainProfiles(): ChainProfile[] {
  const plan = testFederation().plan;
  if (!plan.chain) throw new Error('The test federation has no chain');
  return [profileOf(plan.chain.profile, plan.chain.endpoints.rpcUrl), ...(plan.extraChains ?? []).map((c) => profileOf(c.profile, c.endpoints.rpcUrl))];
}
