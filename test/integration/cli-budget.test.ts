// `gpufed budget` and `gpufed settlements list` on the real federation: renter carol, with her own
// kubeconfig and key, grants a provider a spending limit on the federation's wasmd chain, shows it,
// replaces it and revokes it, each checked on chain; and the settlements list falls back to her
// jobs' status because she may not read UsageRecords. The CLI runs as a child process, as a renter
// runs it. The provider here is one of this file's own, so no other test's grants are touched.
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { ComputeJobResource, type ComputeJob } from '../../operator/src/api/index.js';
import { Chain } from '../../operator/src/settlement/chain.js';
import { repoRoot } from '../../cli/src/dev/paths.js';
import { devProviderHotKey, devProviderPayout, devRegistryKey, devSettlementAccount } from '../../cli/src/dev/wallets.js';
import { toBase64 } from '@cosmjs/encoding';
import { publicKeyOf } from '../../operator/src/settlement/multisig.js';
import type { BudgetReport, GrantResult, RevokeResult } from '../../cli/src/commands/budget.js';
import type { SettlementsOutput } from '../../cli/src/commands/settlements.js';
import { parseEnvFile } from '../../cli/src/wallet.js';
import { agentRegistryConfig, kubectl, run, testDir, testFederation } from '../support/federation.js';
import { devTenant, type TestTenant } from '../support/tenants.js';

/** This file's provider: onboarded here, deleted after, so the other files' market is unchanged. */
const PROVIDER = 'cli-budget';
/** The grantee: the provider's 2-of-2 settlement account (its hot key and the registry's key). */
const ACCOUNT = devSettlementAccount(PROVIDER);
const PAYOUT = devProviderPayout(PROVIDER);
const DAY = 86_400_000;
const dir = mkdtempSync(join(tmpdir(), 'gpufed-cli-budget-'));

let tenant: TestTenant;
let chain: Chain;
let rpcUrl: string;
let carolKey: string;
let agentKubeconfig: string;

/**
 * The CLI as carol runs it: her kubeconfig in $KUBECONFIG; no key, no chain and no dev federation
 * from the environment this test runs in, only what `env` adds.
 */
function gpufed(args: string[], env: NodeJS.ProcessEnv = {}) {
  const base = Object.fromEntries(Object.entries(process.env).filter(([k]) => k !== 'GPUFED_KEY' && !k.startsWith('GPUFED_CHAIN_')));
  return run(process.execPath, [join(repoRoot(), 'dist/cli/src/gpufed.js'), ...args], { env: { ...base, KUBECONFIG: tenant.kubeconfig, GPUFED_DEV_DIR: join(dir, 'no-dev-federation'), NO_COLOR: '1', ...env }, timeoutMs: 90_000 });
}
/** With carol's key in $GPUFED_KEY and the chain named by flag. */
const asCarol = (args: string[]) => gpufed([...args, '--chain-rpc', rpcUrl], { GPUFED_KEY: carolKey });

beforeAll(async () => {
  tenant = await devTenant();
  const plan = testFederation().plan;
  if (!plan.chain) throw new Error('The test federation runs no chain');
  rpcUrl = plan.chain.endpoints.rpcUrl;
  carolKey = parseEnvFile(readFileSync(join(testDir(), 'chain.env'), 'utf8')).get('GPUFED_CHAIN_KEY_CAROL_PRIVATE_KEY') ?? '';
  const agent = await agentRegistryConfig(PROVIDER, [{ model: 'NVIDIA-GeForce-RTX-4090', pricePerGpuHour: '1200000ustake' }]);
  agentKubeconfig = join(dir, `agent-${PROVIDER}.kubeconfig`);
  writeFileSync(agentKubeconfig, agent.exportConfig(), { mode: 0o600 });
  chain = await Chain.connect({ rpcUrl, gasPrice: '0.001ustake' });
});

/**
 * What the registry publishes once the provider's agent announced its hot key (no registry or agent
 * runs in this file: the CLI is under test here; registry tests cover the publishing itself).
 */
async function publishSettlementAccount(): Promise<void> {
  const status = { settlementAccount: { address: ACCOUNT, providerPubKey: toBase64(publicKeyOf(devProviderHotKey(PROVIDER))), registryPubKey: toBase64(publicKeyOf(devRegistryKey())) } };
  const r = await kubectl('registry', ['patch', 'provider', PROVIDER, '--subresource=status', '--type=merge', '-p', JSON.stringify({ status })]);
  if (r.code !== 0) throw new Error(r.stderr);
}

afterAll(async () => {
  chain.disconnect();
  await kubectl('registry', ['delete', 'computejobs', '-n', tenant.namespace, '-l', 'test=cli-budget', '--wait=true', '--timeout=60s']); // not with --all: kubectl refuses --all with a selector
  await kubectl('registry', ['delete', 'provider', PROVIDER, '--ignore-not-found', '--wait=true', '--timeout=60s']);
  await kubectl('registry', ['delete', 'namespace', `gpufed-provider-${PROVIDER}`, '--ignore-not-found', '--wait=false']);
  rmSync(dir, { recursive: true, force: true });
});

describe('gpufed budget', () => {
  it('refuses bad input before anything is signed, and says where a key comes from', async () => {
    const badCoin = await asCarol(['budget', 'grant', '--provider', PROVIDER, '--limit', '5stake!']);
    expect(badCoin.code).toBe(2);
    expect(badCoin.stderr).toMatch(/^error: --limit 5stake!: expected a coin, an integer amount of the base denom and the denom, e\.g\. 5000000ustake$/m);
    const badExpiry = await asCarol(['budget', 'grant', '--provider', PROVIDER, '--limit', '5000000ustake', '--expires', 'soon']);
    expect(badExpiry.code).toBe(2);
    expect(badExpiry.stderr).toMatch(/--expires soon: expected a duration like 30d/);
    const noProvider = await asCarol(['budget', 'grant', '--provider', 'nobody', '--limit', '5000000ustake']);
    expect(noProvider.code).toBe(2);
    expect(noProvider.stderr).toMatch(/no Provider nobody on the registry/);
    expect(await chain.grant(tenant.address, ACCOUNT)).toBeUndefined();

    const noKey = await gpufed(['budget', 'grant', '--provider', PROVIDER, '--limit', '5000000ustake', '--chain-rpc', rpcUrl]);
    expect(noKey).toMatchObject({ code: 2, stdout: '' });
    expect(noKey.stderr).toBe('error: No key: pass --key-file <file> (64 hex digits), set $GPUFED_KEY, or use --dev-key carol with a running `gpufed dev up`\n');
    const noChain = await gpufed(['budget', 'show', '--address', tenant.address, '--chain-rpc', 'http://127.0.0.1:1']);
    expect(noChain.code).toBe(3);
    expect(noChain.stderr).toMatch(/^error: Cannot reach the chain at http:\/\/127\.0\.0\.1:1 \(from --chain-rpc\): .*; check the URL, or that the local federation runs \(gpufed dev status\)$/m);
    const badAddress = await gpufed(['budget', 'show', '--address', 'cosmos1nope', '--chain-rpc', rpcUrl]);
    expect(badAddress.code).toBe(2);
    expect(badAddress.stderr).toMatch(/^error: --address cosmos1nope: is not a valid bech32 address/m);
    const noDevChain = await gpufed(['budget', 'show', '--dev-key', 'carol']);
    expect(noDevChain.code).toBe(2);
    expect(noDevChain.stderr).toMatch(/No chain endpoint: pass --chain-rpc <url>, set \$GPUFED_CHAIN_RPC_URL, or start the local federation with `gpufed dev up`/);
  });

  it('grants, shows, replaces and revokes a spending limit, as the chain has it', async () => {
    // No settlement account yet (the provider's agent never announced its hot key): nothing to grant to.
    const early = await asCarol(['budget', 'grant', '--provider', PROVIDER, '--limit', '5000000ustake']);
    expect(early.code).toBe(3);
    expect(early.stderr).toMatch(new RegExp(`^error: Provider ${PROVIDER} has no settlement account yet`, 'm'));
    await publishSettlementAccount();
    // A grant to the provider's settlement account, payable only to its payout, for 7 days.
    const before = Date.now();
    const granted = await asCarol(['budget', 'grant', '--provider', PROVIDER, '--limit', '5000000ustake', '--expires', '7d', '-o', 'json']);
    const after = Date.now();
    expect(granted.code).toBe(0);
    const g = JSON.parse(granted.stdout) as GrantResult;
    expect(g).toMatchObject({ granter: tenant.address, provider: PROVIDER, grantee: ACCOUNT, spendLimit: '5000000ustake', allowList: [PAYOUT], replaced: null, txHash: expect.stringMatching(/^[0-9A-F]{64}$/) as string });
    expect(g.height).toBeGreaterThan(0);
    expect(await chain.findTx(g.txHash)).toMatchObject({ height: g.height, code: 0 });
    const onChain = await chain.grant(tenant.address, ACCOUNT);
    expect(onChain?.spendLimit).toEqual(new Map([['ustake', 5_000_000n]]));
    expect(onChain?.allowList).toEqual([PAYOUT]);
    expect(onChain?.expiresAtMs).toBeGreaterThanOrEqual(Math.floor((before + 7 * DAY) / 1000) * 1000);
    expect(onChain?.expiresAtMs).toBeLessThanOrEqual(after + 7 * DAY);
    expect(g.expiresAt).toBe(new Date(onChain?.expiresAtMs ?? 0).toISOString());

    // show agrees with the chain, and has the balance.
    const shown = await asCarol(['budget', 'show', '-o', 'json']);
    expect(shown.code).toBe(0);
    const report = JSON.parse(shown.stdout) as BudgetReport;
    expect(report.address).toBe(tenant.address);
    expect(report.providers.find((p) => p.provider === PROVIDER)).toEqual({
      provider: PROVIDER,
      grantee: ACCOUNT,
      payout: PAYOUT,
      grant: { spendLimit: ['5000000ustake'], allowList: [PAYOUT], expiresAt: g.expiresAt, expired: false },
      problems: [],
    });
    const balance = (await chain.balances(tenant.address)).get('ustake') ?? 0n;
    expect(report.balance).toEqual([`${balance}ustake`]);
    const table = await asCarol(['budget', 'show', '--provider', PROVIDER]);
    expect(table.stdout).toMatch(new RegExp(`^${PROVIDER}\\s+${ACCOUNT}\\s+5000000ustake\\s+${PAYOUT}\\s+\\S+ \\(in 6d\\)$`, 'm'));

    // A second grant, signed with the dev key from the federation's chain.env, replaces the first: absolute, not added.
    const replaced = await gpufed(['budget', 'grant', '--provider', PROVIDER, '--limit', '2000000ustake', '--expires', 'never', '--dev-key', 'carol', '--dev-dir', testDir()]);
    expect(replaced.code).toBe(0);
    expect(replaced.stdout).toMatch(new RegExp(`^Granted provider ${PROVIDER} up to 2000000ustake, payable only to ${PAYOUT}, expiring never\\.$`, 'm'));
    expect(replaced.stdout).toContain(`This replaced your previous grant to ${PROVIDER} (5000000ustake left): a grant's limit is absolute, not added to what was left.`);
    expect(replaced.stdout).toMatch(/^Transaction [0-9A-F]{64} committed at height \d+\.$/m);
    const after2 = await chain.grant(tenant.address, ACCOUNT);
    expect(after2).toEqual({ spendLimit: new Map([['ustake', 2_000_000n]]), allowList: [PAYOUT] });
    const shown2 = JSON.parse((await asCarol(['budget', 'show', '--provider', PROVIDER, '-o', 'json'])).stdout) as BudgetReport;
    expect(shown2.providers).toEqual([expect.objectContaining({ provider: PROVIDER, grant: { spendLimit: ['2000000ustake'], allowList: [PAYOUT], expiresAt: null, expired: false } })]);

    // Revoked, it is gone; a second revoke has nothing to revoke.
    const revoked = await asCarol(['budget', 'revoke', '--provider', PROVIDER, '-o', 'json']);
    expect(revoked.code).toBe(0);
    expect(JSON.parse(revoked.stdout) as RevokeResult).toMatchObject({ granter: tenant.address, provider: PROVIDER, grantee: ACCOUNT, revoked: { spendLimit: ['2000000ustake'] } });
    expect(await chain.grant(tenant.address, ACCOUNT)).toBeUndefined();
    const again = await asCarol(['budget', 'revoke', '--provider', PROVIDER]);
    expect(again).toMatchObject({ code: 2, stdout: '' });
    expect(again.stderr).toBe(`error: no grant from ${tenant.address} to provider ${PROVIDER} (${ACCOUNT}) to revoke; see your grants with: gpufed budget show\n`);
    const none = await asCarol(['budget', 'show', '--provider', PROVIDER]);
    expect(none.stdout).toMatch(new RegExp(`^${PROVIDER}\\s+${ACCOUNT}\\s+none\\s+-\\s+-$`, 'm'));
  });
});

describe('gpufed settlements list', () => {
  it("shows a renter her jobs' payments, since she may not read UsageRecords: nothing owed for a job with none", async () => {
    const name = `budget-${Date.now().toString(36)}`;
    const job: ComputeJob = {
      apiVersion: 'gpufed.io/v1alpha1',
      kind: 'ComputeJob',
      metadata: { name, namespace: tenant.namespace, labels: { test: 'cli-budget' } },
      spec: { image: 'docker.io/library/python:3.13', resources: { gpu: { count: 1 } }, maxPricePerGpuHour: '1500000ustake', maxDurationSeconds: 600 },
    };
    await tenant.kc.makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({ group: ComputeJobResource.group, version: ComputeJobResource.version, plural: ComputeJobResource.plural, namespace: tenant.namespace, body: job });

    const listed = await gpufed(['settlements', 'list', '--job', name]);
    expect(listed.code).toBe(0);
    expect(listed.stdout).toMatch(new RegExp(`^${name} {3}Pending: no GPU time metered, nothing owed$`, 'm'));
    expect(listed.stdout).toMatch(/may not read UsageRecords/);
    const json = JSON.parse((await gpufed(['settlements', 'list', '-o', 'json'])).stdout) as SettlementsOutput;
    expect(json.source).toBe('ComputeJobs');
    expect(json.source === 'ComputeJobs' ? json.jobs.find((j) => j.name === name) : undefined).toEqual({ name, namespace: tenant.namespace, phase: 'Pending', provider: null, gpuMilliseconds: 0, cost: null, paid: null, owed: null, disputed: null, settlements: [] });

    const missing = await gpufed(['settlements', 'list', '--job', 'no-such-job']);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toMatch(/no ComputeJob no-such-job in namespace carol/);
  });

  it("refuses a renter a provider's records with exit 3, and lists them for the provider's agent", async () => {
    const refused = await gpufed(['settlements', 'list', '--provider', PROVIDER]);
    expect(refused.code).toBe(3);
    expect(refused.stderr).toMatch(new RegExp(`^error: Listing UsageRecords in namespace gpufed-provider-${PROVIDER}: .*forbidden.* \\(HTTP 403\\); as a renter, run gpufed settlements list without --provider or --all-providers`, 'm'));

    const agent = await gpufed(['settlements', 'list', '--kubeconfig', agentKubeconfig]);
    expect(agent).toMatchObject({ code: 0, stdout: `No UsageRecords in namespace gpufed-provider-${PROVIDER}: nothing metered yet.\n` });
    const agentJson = JSON.parse((await gpufed(['settlements', 'list', '--kubeconfig', agentKubeconfig, '-o', 'json'])).stdout) as SettlementsOutput;
    expect(agentJson).toEqual({ source: 'UsageRecords', scope: `namespace gpufed-provider-${PROVIDER}`, records: [] });
  });
});
