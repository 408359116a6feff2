// `gpufed dev demo` (what `make demo` runs after `dev up`): the main job on the local federation,
// told step by step. Renter carol makes sure each provider has a budget, applies the example
// ComputeJob, follows it to Succeeded, reads its log, waits until it is paid, and the demo shows
// the UsageRecords, the transaction on chain and the balances before and after, ending with one
// summary line. Every run submits a new job (a new name), so a second run is just as fast.
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { parse } from 'yaml';
import { pushedFrom } from '../../../operator/src/agent/joblogs.js';
import { ProviderResource, type ComputeJob, type Provider, type UsageRecord } from '../../../operator/src/api/index.js';
import { loadKubeConfig } from '../../../operator/src/kube/client.js';
import { Chain } from '../../../operator/src/settlement/chain.js';
import { keyAddress } from '../../../operator/src/settlement/keys.js';
import { RenterJobs } from '../renter.js';
import { CHAIN_DENOM, CHAIN_MIN_GAS_PRICE } from './chain.js';
import { readState, until } from './federation.js';
import { kubeconfigPath } from './plan.js';
import { DEV_TENANT, devTenantKey, tenantKubeconfigPath } from './tenants.js';

/** Each provider's budget from carol: topped up to this when less than half of it is left. */
export const DEMO_BUDGET = 100_000_000n;

export interface DemoResult {
  job: string;
  provider: string;
  node: string;
  model: string;
  gpuSeconds: number;
  amount: string;
  txHashes: string[];
  records: { name: string; periodEnd: string; gpuMs: number; amount: string; state: string; txHash: string }[];
  balances: { who: string; address: string; before: string; after: string; change: string }[];
  log: string;
}

const bal = async (chain: Chain, address: string) => (await chain.balances(address)).get(CHAIN_DENOM) ?? 0n;

/**
 * Tops up carol's grant to every provider's settlement account (a 2-of-2 of its hot key and the
 * registry's key; allowing only its payout), so the registry may place the job.
 */
async function ensureBudgets(chain: Chain, providers: Provider[], log: (line: string) => void): Promise<void> {
  const key = devTenantKey(DEV_TENANT);
  for (const p of providers) {
    const account = p.status?.settlementAccount?.address;
    if (!account) throw new Error(`Provider ${p.metadata.name ?? ''} has no settlement account yet`);
    const left = (await chain.grant(keyAddress(key), account))?.spendLimit.get(CHAIN_DENOM) ?? 0n;
    if (left >= DEMO_BUDGET / 2n) continue;
    const tx = await chain.grantSpend(key, account, { amount: DEMO_BUDGET, denom: CHAIN_DENOM }, [p.spec.payout ?? p.spec.wallet]);
    log(`${DEV_TENANT} granted ${p.metadata.name}'s settlement account ${account} up to ${DEMO_BUDGET}${CHAIN_DENOM} (tx ${tx.txHash.slice(0, 12)}…)`);
  }
}

/** The Providers once the registry published each one's settlement account (their agents announced their hot keys). */
async function providersWithAccounts(custom: k8s.CustomObjectsApi): Promise<Provider[]> {
  return until('every provider to have a settlement account', Date.now() + 60_000, async () => {
    const items = ((await custom.listClusterCustomObject({ group: ProviderResource.group, version: ProviderResource.version, plural: ProviderResource.plural })) as { items: Provider[] }).items;
    return items.length > 0 && items.every((p) => p.status?.settlementAccount) ? items : undefined;
  });
}

/** Follows the job to the end, saying each phase once. */
async function follow(jobs: RenterJobs, name: string, log: (line: string) => void): Promise<ComputeJob> {
  let last = '';
  return until(`${name} to finish`, Date.now() + 300_000, async () => {
    const j = await jobs.get(name);
    const phase = j.status?.phase ?? 'Pending';
    if (phase !== last) {
      const where = j.status?.placement?.provider ? ` on ${j.status.placement.provider} (${j.status.placement.nodeName}, ${j.status.placement.model})` : '';
      const why = j.status?.message && !['Running', 'Succeeded'].includes(phase) ? ` — ${j.status.message}` : '';
      log(`${name}: ${phase}${where}${why}`);
      last = phase;
    }
    return phase === 'Succeeded' || phase === 'Failed' ? j : undefined;
  });
}

export async function runDemo(dir: string, file: string, log: (line: string) => void): Promise<DemoResult> {
  const state = readState(dir);
  if (!state?.readyAt || !state.plan.chain) throw new Error(`No running local federation with a chain in ${dir}: start it with \`gpufed dev up\``);
  const admin = loadKubeConfig(kubeconfigPath(dir, 'registry'));
  const custom = admin.makeApiClient(k8s.CustomObjectsApi);
  const chain = await Chain.connect({ rpcUrl: state.plan.chain.endpoints.rpcUrl, gasPrice: CHAIN_MIN_GAS_PRICE });
  try {
    const providers = await providersWithAccounts(custom);
    await ensureBudgets(chain, providers, log);
    const carol = keyAddress(devTenantKey(DEV_TENANT));
    const watched = [{ who: DEV_TENANT, address: carol }, ...providers.map((p) => ({ who: `${p.metadata.name} payout`, address: p.spec.payout ?? p.spec.wallet }))];
    const before = await Promise.all(watched.map((w) => bal(chain, w.address)));

    const manifest = parse(readFileSync(file, 'utf8')) as ComputeJob;
    const name = `${manifest.metadata.name ?? 'job'}-${Date.now().toString(36)}`;
    const jobs = new RenterJobs(loadKubeConfig(tenantKubeconfigPath(dir, DEV_TENANT)), DEV_TENANT);
    await jobs.create({ ...manifest, metadata: { ...manifest.metadata, name } });
    log(`${DEV_TENANT} applied ComputeJob ${name} (${file})`);
    const done = await follow(jobs, name, log);
    if (done.status?.phase !== 'Succeeded') throw new Error(`${name} ended ${done.status?.phase}: ${done.status?.message ?? ''}`);
    const pushed = done.status?.logRef ? pushedFrom(await jobs.configMap(done.status.logRef)) : undefined;

    log(`${name}: waiting for its metering and payment (the providers settle every 10 s)`);
    const paid = await until(`${name} to be paid`, Date.now() + 120_000, async () => {
      const j = await jobs.get(name);
      return j.status?.conditions?.find((c) => c.type === 'Settled' && c.status === 'True') ? j : undefined;
    });
    const records = ((await custom.listClusterCustomObject({ group: 'gpufed.io', version: 'v1alpha1', plural: 'usagerecords', labelSelector: `gpufed.io/job-uid=${paid.metadata.uid ?? ''}` })) as { items: UsageRecord[] }).items.sort((a, b) => a.spec.period.end.localeCompare(b.spec.period.end));
    const after = await Promise.all(watched.map((w) => bal(chain, w.address)));
    return demoResult(paid, records, watched.map((w, i) => ({ ...w, before: before[i] ?? 0n, after: after[i] ?? 0n })), pushed?.log ?? '');
  } finally {
    chain.disconnect();
  }
}

const recordRow = (r: UsageRecord): DemoResult['records'][number] => ({ name: r.metadata.name ?? '', periodEnd: r.spec.period.end, gpuMs: r.spec.gpuMilliseconds.delta, amount: r.spec.amount, state: r.status?.state ?? 'Pending', txHash: r.status?.txHash ?? '' });

/** What the demo shows, from the paid job, its records and the balances. */
export function demoResult(paid: ComputeJob, records: readonly UsageRecord[], balances: { who: string; address: string; before: bigint; after: bigint }[], log: string): DemoResult {
  const { placement = {}, usage = {}, settlements = [] } = paid.status ?? {};
  return {
    job: `${paid.metadata.namespace}/${paid.metadata.name}`,
    provider: placement.provider ?? '',
    node: placement.nodeName ?? '',
    model: placement.model ?? '',
    gpuSeconds: (usage.gpuMilliseconds ?? 0) / 1000,
    amount: paid.status?.paid ?? `0${CHAIN_DENOM}`,
    txHashes: settlements.map((x) => x.txHash),
    records: records.map(recordRow),
    balances: balances.map((b) => ({ who: b.who, address: b.address, before: `${b.before}`, after: `${b.after}`, change: `${b.after - b.before}` })),
    log,
  };
}

/** The one line the demo ends with. */
export function demoSummary(r: DemoResult): string {
  const tx = r.txHashes.length === 0 ? 'nothing to pay' : `tx ${r.txHashes.join(', ')}`;
  return `${r.job} ran on ${r.provider} (${r.node}, ${r.model}): ${r.gpuSeconds.toFixed(1)} GPU-seconds, paid ${r.amount}, ${tx}`;
}
