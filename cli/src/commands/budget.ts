// `gpufed budget grant|show|revoke`: a renter's spending grants to providers, on chain. A provider is
// paid for verified GPU time with an x/authz SendAuthorization the renter signed to the provider's
// settlement account (Provider status.settlementAccount: a 2-of-2 of its hot key and the registry's
// key, so neither alone can take anything), payable only to its payout address (spec.payout).
// These commands read both addresses from the registry, so a renter never types one, and sign with a
// key from a file, $GPUFED_KEY or the dev chain (wallet.ts), never from the command line.
import * as k8s from '@kubernetes/client-node';
import { Command, Option } from 'commander';
import { ProviderResource, type Provider, type ProviderList } from '../../../operator/src/api/index.js';
import { isNotFound } from '../../../operator/src/kube/errors.js';
import { addressProblem } from '../../../operator/src/onboarding/provider.js';
import { parseCoin, type Coin } from '../../../operator/src/api/coin.js';
import { Chain } from '../../../operator/src/settlement/chain.js';
import type { GrantView } from '../../../operator/src/settlement/grants.js';
import { apiFailure, bold, dim, ExitCode, ExitError, formatAge, outputOption, print, table, UsageError, type OutputFormat } from '../output.js';
import { renterKubeConfig, withRenterOptions, type RenterOptions } from '../renter.js';
import { addressOf, NO_KEY_HELP, resolveChain, resolveKey, withWalletOptions, type ChainEndpoint, type ChainFlags, type KeyFlags } from '../wallet.js';

// ---------------------------------------------------------------------------------------------
// Pure parts

/** How long a grant lasts: a duration in ms, or never expiring. */
export type GrantLifetime = { ms: number } | 'never';

export const DEFAULT_EXPIRES = '30d';
const UNIT_MS = { s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 } as const;
/** The chain refuses an expiry that is not after the block time; a minute leaves room for the commit. */
const MIN_LIFETIME_MS = 60_000;
/** Ten years: past that, a typo (30000d) is likelier than a plan. */
const MAX_LIFETIME_MS = 3650 * UNIT_MS.d;

/** `--expires`: 30d, 12h, 2w, 90m, 3600s, or never. */
export function parseExpires(v: string): GrantLifetime {
  if (v.trim().toLowerCase() === 'never') return 'never';
  const m = /^(\d+)([smhdw])$/.exec(v.trim());
  if (!m) throw new UsageError(`--expires ${v}: expected a duration like 30d, 12h, 2w or 90m, or never`);
  const ms = Number(m[1]) * UNIT_MS[m[2] as keyof typeof UNIT_MS];
  if (ms < MIN_LIFETIME_MS) throw new UsageError(`--expires ${v}: at least 1m (the grant must outlive the transaction that makes it)`);
  if (ms > MAX_LIFETIME_MS) throw new UsageError(`--expires ${v}: at most 3650d; for a grant that never expires, pass --expires never`);
  return { ms };
}

/** The grant's expiry in Unix ms for a lifetime starting `now`, undefined for never. */
export function expiryOf(lifetime: GrantLifetime, now: Date): number | undefined {
  return lifetime === 'never' ? undefined : now.getTime() + lifetime.ms;
}

/** `--limit`: a coin, an integer amount of the base denom, more than zero (x/authz refuses an empty limit). */
export function parseLimit(v: string): Coin {
  let coin: Coin;
  try {
    coin = parseCoin(v);
  } catch (e) {
    throw new UsageError(`--limit ${v}: expected a coin, an integer amount of the base denom and the denom, e.g. 5000000ustake`, { cause: e });
  }
  if (coin.amount === 0n) throw new UsageError(`--limit ${v}: must be more than 0; to stop a provider taking payments, run gpufed budget revoke`);
  return coin;
}

const coins = (m: ReadonlyMap<string, bigint>): string[] => [...m].map(([denom, amount]) => `${amount}${denom}`);

/** A grant as the CLI prints it. */
export interface GrantSummary {
  /** What is left to spend, e.g. ["5000000ustake"]. */
  spendLimit: string[];
  /** The recipients payments may go to; empty means any. */
  allowList: string[];
  /** RFC 3339, or null when it never expires. */
  expiresAt: string | null;
  expired: boolean;
}

export function summariseGrant(g: GrantView, now: Date): GrantSummary {
  return {
    spendLimit: coins(g.spendLimit),
    allowList: [...g.allowList],
    expiresAt: g.expiresAtMs === undefined ? null : new Date(g.expiresAtMs).toISOString(),
    expired: g.expiresAtMs !== undefined && g.expiresAtMs <= now.getTime(),
  };
}

/** One provider in `budget show`. */
export interface ProviderBudget {
  provider: string;
  /** The provider's settlement account, the grantee. */
  grantee: string;
  /** Where its payments go. */
  payout: string;
  /** Null when there is no grant. */
  grant: GrantSummary | null;
  /** What keeps the grant from paying this provider, if anything. */
  problems: string[];
}

export interface BudgetReport {
  address: string;
  balance: string[];
  providers: ProviderBudget[];
}

export const payoutOf = (p: Provider): string => p.spec.payout ?? p.spec.wallet;

/** The grantee of a renter's grant to the provider: its settlement account, once the registry published it. */
export function granteeOf(p: Provider): string {
  const account = p.status?.settlementAccount?.address;
  if (!account) throw new ExitError(`Provider ${p.metadata.name ?? ''} has no settlement account yet: the registry publishes it once the provider's agent has announced its hot key (a 2-of-2 of that key and the registry's). Try again when kubectl get provider ${p.metadata.name ?? ''} -o wide shows one.`, ExitCode.Remote);
  return account;
}

/** The grantee to show for a provider: its settlement account, or none yet. */
const shownGrantee = (p: Provider): string => p.status?.settlementAccount?.address ?? '(no settlement account yet)';

/** The denoms a provider prices in. */
const priceDenoms = (p: Provider): string[] => [...new Set(p.spec.prices.map((x) => /[a-zA-Z].*$/.exec(x.pricePerGpuHour)?.[0] ?? ''))].filter((d) => d !== '');

/** Why a grant cannot pay a provider, in words; empty when nothing keeps it from paying. */
export function grantProblems(p: Provider, g: GrantSummary | null): string[] {
  if (!g) return [];
  const out: string[] = [];
  if (g.expired) out.push('expired');
  if (g.allowList.length > 0 && !g.allowList.includes(payoutOf(p))) out.push(`payout ${payoutOf(p)} not allowed`);
  const granted = g.spendLimit.map((c) => /[a-zA-Z].*$/.exec(c)?.[0] ?? '');
  const missing = priceDenoms(p).filter((d) => !granted.includes(d));
  if (missing.length > 0) out.push(`no limit in ${missing.join(', ')}`);
  return out;
}

export function providerBudget(p: Provider, g: GrantView | undefined, now: Date): ProviderBudget {
  const grant = g ? summariseGrant(g, now) : null;
  return { provider: p.metadata.name ?? '', grantee: shownGrantee(p), payout: payoutOf(p), grant, problems: grantProblems(p, grant) };
}

/** "2026-12-21T12:00:00.000Z (in 30d)", "never", or "… (expired 2h ago)". */
export function formatExpiry(expiresAt: string | null, now: Date): string {
  if (expiresAt === null) return 'never';
  const t = new Date(expiresAt);
  return t.getTime() > now.getTime() ? `${expiresAt} (in ${formatAge(now, t)})` : `${expiresAt} (expired ${formatAge(t, now)} ago)`;
}

/** `budget show` for people: one row per provider, then the balance. */
export function budgetTable(r: BudgetReport, now: Date): string {
  const rows = r.providers.map((p) => {
    const g = p.grant;
    if (!g) return [p.provider, p.grantee, 'none', '-', '-', ''];
    return [p.provider, p.grantee, g.spendLimit.join(',') || '0', g.allowList.length > 0 ? g.allowList.join(',') : 'any', formatExpiry(g.expiresAt, now), p.problems.join('; ')];
  });
  const lines = r.providers.length > 0 ? [table(['provider', 'grantee', 'remaining', 'allow list', 'expires', 'problem'], rows)] : ['No providers on the registry.'];
  lines.push('', `Balance of ${r.address}: ${r.balance.length > 0 ? r.balance.join(', ') : 'nothing'}`);
  if (r.providers.some((p) => !p.grant)) lines.push(dim('A provider without a grant cannot be paid by you, so the registry places none of your jobs there: gpufed budget grant --provider <name> --limit <coin>'));
  lines.push(dim('A grant caps what a provider may take; the coins stay in your account until it does, so keep the balance above what you granted.'));
  return lines.join('\n');
}

/** What `budget grant` did. */
export interface GrantResult {
  granter: string;
  provider: string;
  grantee: string;
  spendLimit: string;
  allowList: string[];
  expiresAt: string | null;
  /** The grant this one replaced (x/authz keeps one per granter and grantee), or null. */
  replaced: GrantSummary | null;
  txHash: string;
  height: number;
}

export function grantText(r: GrantResult, now: Date): string {
  const lines = [
    `Granted provider ${bold(r.provider)} up to ${bold(r.spendLimit)}, payable only to ${r.allowList.join(', ')}, expiring ${formatExpiry(r.expiresAt, now)}.`,
    `  granter ${r.granter}`,
    `  grantee ${r.grantee} (${r.provider}'s settlement account: its hot key and the registry's, both needed for a payment)`,
  ];
  if (r.replaced) {
    lines.push(`This replaced your previous grant to ${r.provider} (${r.replaced.spendLimit.join(',') || 'nothing'} left): a grant's limit is absolute, not added to what was left.`);
  } else {
    lines.push(`A later grant to ${r.provider} replaces this one: a grant's limit is absolute, not added to what is left.`);
  }
  lines.push(`Transaction ${r.txHash} committed at height ${r.height}.`);
  return lines.join('\n');
}

/** What `budget revoke` did. */
export interface RevokeResult {
  granter: string;
  provider: string;
  grantee: string;
  /** The grant that was revoked. */
  revoked: GrantSummary;
  txHash: string;
  height: number;
}

export function revokeText(r: RevokeResult): string {
  return [
    `Revoked your grant to provider ${bold(r.provider)} (${r.grantee}; ${r.revoked.spendLimit.join(',') || 'nothing'} was left): it can take no more payments from you, so jobs that still owe it cannot settle and the registry places no new ones there.`,
    `Transaction ${r.txHash} committed at height ${r.height}.`,
  ].join('\n');
}

// ---------------------------------------------------------------------------------------------
// The registry and the chain

const providerRef = { group: ProviderResource.group, version: ProviderResource.version, plural: ProviderResource.plural };

/** The Provider; a usage error when there is none. */
export async function readProvider(kc: k8s.KubeConfig, name: string): Promise<Provider> {
  try {
    return (await kc.makeApiClient(k8s.CustomObjectsApi).getClusterCustomObject({ ...providerRef, name })) as Provider;
  } catch (e) {
    if (isNotFound(e)) throw new UsageError(`no Provider ${name} on the registry; see them with: gpufed budget show (or kubectl get providers)`, { cause: e });
    throw apiFailure(`Reading Provider ${name} on the registry`, e);
  }
}

/** Every Provider, by name. */
export async function listProviders(kc: k8s.KubeConfig): Promise<Provider[]> {
  try {
    const list = (await kc.makeApiClient(k8s.CustomObjectsApi).listClusterCustomObject(providerRef)) as ProviderList;
    return [...list.items].sort((a, b) => ((a.metadata.name ?? '') < (b.metadata.name ?? '') ? -1 : 1));
  } catch (e) {
    throw apiFailure('Listing Providers on the registry', e);
  }
}

/** Connects to the chain, or exits 3 saying where it looked and what to check. */
export async function connectChain(endpoint: ChainEndpoint): Promise<Chain> {
  try {
    return await Chain.connect({ rpcUrl: endpoint.rpcUrl, gasPrice: endpoint.gasPrice, prefix: endpoint.prefix });
  } catch (e) {
    throw new ExitError(`Cannot reach the chain at ${endpoint.rpcUrl} (from ${endpoint.source}): ${(e as Error).message}; check the URL, or that the local federation runs (gpufed dev status)`, ExitCode.Remote);
  }
}

/** Runs `fn` with a connected chain and disconnects after. */
async function withChain<T>(endpoint: ChainEndpoint, fn: (chain: Chain) => Promise<T>): Promise<T> {
  const chain = await connectChain(endpoint);
  try {
    return await fn(chain);
  } finally {
    chain.disconnect();
  }
}

/** A read of the chain that failed: exit 3, like a registry failure. */
async function chainRead<T>(doing: string, endpoint: ChainEndpoint, read: () => Promise<T>): Promise<T> {
  try {
    return await read();
  } catch (e) {
    throw new ExitError(`${doing} on the chain at ${endpoint.rpcUrl}: ${(e as Error).message}`, ExitCode.Remote);
  }
}

const isNoGrant = (e: unknown): boolean => /authorization not found/i.test((e as Error).message);

// ---------------------------------------------------------------------------------------------
// Commands

type BudgetOptions = RenterOptions & ChainFlags & KeyFlags & { provider?: string; output: OutputFormat };

const providerOption = (required: boolean) => {
  const o = new Option('--provider <name>', 'the provider, as the registry names it (gpufed quote lists them)');
  return required ? o.makeOptionMandatory() : o;
};

/** The flags every budget command shares, after its own. */
function withBudgetOptions(cmd: Command, signs: boolean): Command {
  withRenterOptions(cmd, false);
  withWalletOptions(cmd, signs);
  return cmd.addOption(outputOption());
}

const KEY_HELP = `
Your key is read from --key-file <file> (64 hex digits), else $GPUFED_KEY, else, on the local
federation, --dev-key <name> from its chain.env; never from the command line. The chain is
--chain-rpc, else $GPUFED_CHAIN_RPC_URL, else the local federation's.`;

const EXIT_HELP = `
Exit status:
  0    done
  1    the chain rejected the transaction (its message on stderr)
  2    bad usage, no such provider, or (revoke) no grant to revoke
  3    the registry or the chain refused the request or could not be reached`;

function grantCommand(): Command {
  const cmd = new Command('grant')
    .description("Let a provider take up to a limit from your account for your jobs (an x/authz grant to its settlement account, payable only to its payout address)")
    .addOption(providerOption(true))
    .addOption(new Option('--limit <coin>', 'the most the provider may take in all, e.g. 5000000ustake').makeOptionMandatory().argParser(parseLimit))
    .addOption(new Option('--expires <duration>', 'how long the grant lasts: 30d, 12h, 2w, ... or never').default(parseExpires(DEFAULT_EXPIRES), DEFAULT_EXPIRES).argParser(parseExpires));
  return withBudgetOptions(cmd, true)
    .addHelpText(
      'after',
      `
Reads the provider's settlement account (status.settlementAccount: a 2-of-2 of its hot key and the
registry's key, so a payment needs both: the registry co-signs only GPU time it verified) and payout
address (spec.payout) from the registry and signs a SendAuthorization to the settlement account
with the limit, allowing payments to the payout address only. There is one grant per provider: a new grant replaces the old one, and its limit is absolute,
not added to what was left. The coins stay in your account until the provider takes them for
metered GPU time; keep the balance above what you grant.
${KEY_HELP}
${EXIT_HELP}

Examples:
  $ gpufed budget grant --provider alice --limit 5000000ustake --key-file ~/.gpufed/carol.key
  $ GPUFED_KEY=$(cat carol.key) gpufed budget grant --provider bob --limit 20000000ustake --expires 7d
  $ gpufed budget grant --provider alice --limit 5000000ustake --dev-key carol -o json`,
    )
    .action(async (o: BudgetOptions & { limit: Coin; expires: GrantLifetime }) => {
      const key = resolveKey(o);
      const endpoint = resolveChain(o);
      const granter = addressOf(key, endpoint);
      const provider = await readProvider(renterKubeConfig(o), o.provider ?? '');
      const name = provider.metadata.name ?? '';
      const grantee = granteeOf(provider);
      if (grantee === granter) throw new UsageError(`--provider ${name}: its settlement account is your own address ${granter}; a key cannot grant to itself`);
      const denoms = priceDenoms(provider);
      if (denoms.length > 0 && !denoms.includes(o.limit.denom)) process.stderr.write(`warning: ${name} prices in ${denoms.join(', ')}, not ${o.limit.denom}: this grant cannot pay for its GPU time\n`);
      const result = await withChain(endpoint, async (chain) => {
        const now = new Date();
        const previous = await chainRead('Reading your grant', endpoint, () => chain.grant(granter, grantee));
        const expiresAtMs = expiryOf(o.expires, now);
        const tx = await chain.grantSpend(key.privateKey, grantee, o.limit, [payoutOf(provider)], expiresAtMs);
        const r: GrantResult = {
          granter,
          provider: name,
          grantee,
          spendLimit: `${o.limit.amount}${o.limit.denom}`,
          allowList: [payoutOf(provider)],
          expiresAt: expiresAtMs === undefined ? null : new Date(Math.floor(expiresAtMs / 1000) * 1000).toISOString(),
          replaced: previous ? summariseGrant(previous, now) : null,
          txHash: tx.txHash,
          height: tx.height,
        };
        return r;
      });
      print(o.output, result, () => grantText(result, new Date()));
    });
}

/** The address whose grants `budget show` reads: --address, else the key's. */
function showAddress(o: BudgetOptions & { address?: string }, endpoint: ChainEndpoint): string {
  if (o.address !== undefined) {
    const problem = addressProblem(o.address, endpoint.prefix);
    if (problem) throw new UsageError(`--address ${o.address}: ${problem}`);
    return o.address;
  }
  try {
    return addressOf(resolveKey(o), endpoint);
  } catch (e) {
    if (e instanceof UsageError && e.message === NO_KEY_HELP) throw new UsageError(`${NO_KEY_HELP}; or pass --address <address> to show any account's grants`, { cause: e });
    throw e;
  }
}

function showCommand(): Command {
  const cmd = new Command('show')
    .description('Show your grant to each provider (what is left, to whom it may be paid, until when) and your balance')
    .addOption(providerOption(false))
    .option('--address <address>', "show this account instead of your key's (no key needed)");
  return withBudgetOptions(cmd, true)
    .addHelpText(
      'after',
      `
Every provider on the registry (or the one --provider names), with the grant your address gave its
settlement account: the limit left, the allow list and the expiry, or "none"; and a problem when the grant
cannot pay the provider (expired, its payout not allowed, no limit in the denom it prices in).
${KEY_HELP}

Examples:
  $ gpufed budget show --key-file ~/.gpufed/carol.key
  $ gpufed budget show --provider alice --dev-key carol -o json
  $ gpufed budget show --address cosmos1... -o yaml`,
    )
    .action(async (o: BudgetOptions & { address?: string }) => {
      const endpoint = resolveChain(o);
      const address = showAddress(o, endpoint);
      const kc = renterKubeConfig(o);
      const providers = o.provider !== undefined ? [await readProvider(kc, o.provider)] : await listProviders(kc);
      const report = await withChain(endpoint, async (chain): Promise<BudgetReport> => {
        const now = new Date();
        const [balance, grants] = await chainRead(`Reading ${address}'s grants and balance`, endpoint, () => Promise.all([chain.balances(address), Promise.all(providers.map(async (p) => (p.status?.settlementAccount ? chain.grant(address, p.status.settlementAccount.address) : undefined)))]));
        return { address, balance: coins(balance), providers: providers.map((p, i) => providerBudget(p, grants[i], now)) };
      });
      print(o.output, report, () => budgetTable(report, new Date()));
    });
}

function revokeCommand(): Command {
  const cmd = new Command('revoke').description('Revoke your grant to a provider: it can take no more payments from you').addOption(providerOption(true));
  return withBudgetOptions(cmd, true)
    .addHelpText(
      'after',
      `
Jobs that still owe the provider cannot settle once the grant is gone, and the registry places no
new jobs of yours there until you grant again.
${KEY_HELP}
${EXIT_HELP}

Examples:
  $ gpufed budget revoke --provider alice --key-file ~/.gpufed/carol.key
  $ gpufed budget revoke --provider alice --dev-key carol -o json`,
    )
    .action(async (o: BudgetOptions) => {
      const key = resolveKey(o);
      const endpoint = resolveChain(o);
      const granter = addressOf(key, endpoint);
      const provider = await readProvider(renterKubeConfig(o), o.provider ?? '');
      const name = provider.metadata.name ?? '';
      const grantee = granteeOf(provider);
      const noGrant = () => new UsageError(`no grant from ${granter} to provider ${name} (${grantee}) to revoke; see your grants with: gpufed budget show`);
      const result = await withChain(endpoint, async (chain): Promise<RevokeResult> => {
        const now = new Date();
        const existing = await chainRead('Reading your grant', endpoint, () => chain.grant(granter, grantee));
        if (!existing) throw noGrant();
        try {
          const tx = await chain.revokeSpend(key.privateKey, grantee);
          return { granter, provider: name, grantee, revoked: summariseGrant(existing, now), txHash: tx.txHash, height: tx.height };
        } catch (e) {
          // Used up, expired and pruned, or revoked elsewhere since it was read.
          if (isNoGrant(e)) throw noGrant();
          throw e;
        }
      });
      print(o.output, result, () => revokeText(result));
    });
}

export function budgetCommand(): Command {
  const budget = new Command('budget').description('Grant, show and revoke what each provider may take from your account for your jobs (x/authz grants on the chain)');
  budget.addHelpText(
    'after',
    `
A provider is paid for your jobs' metered GPU time from a spending grant you sign to it: the
registry places your jobs only on providers your grants can pay. Providers and their addresses come
from the registry (--kubeconfig, default $KUBECONFIG), the grants from the chain.
${KEY_HELP}

Examples:
  $ export KUBECONFIG=carol.kubeconfig GPUFED_KEY=$(cat carol.key)
  $ gpufed budget grant --provider alice --limit 5000000ustake --expires 30d
  $ gpufed budget show
  $ gpufed budget revoke --provider alice`,
  );
  for (const sub of [grantCommand(), showCommand(), revokeCommand()]) budget.addCommand(sub);
  return budget;
}
