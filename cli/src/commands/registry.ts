// `gpufed registry add-provider|rotate-provider-token|add-tenant`: what a registry admin runs to
// onboard a provider with credentials that reach only its own namespace and its own Provider, and a
// renter with credentials that reach only its own ComputeJobs (docs/onboarding.md).
import { existsSync, readFileSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Argument, Command, Option } from 'commander';
import { parse as parseYaml } from 'yaml';
import type { ProviderSpecPrice } from '../../../operator/src/api/index.js';
import { Kube } from '../../../operator/src/kube/client.js';
import { currentProvider, onboardProvider, rotateProviderToken, writePrivateFile, type Onboarded, type Rotated } from '../../../operator/src/onboarding/apply.js';
import {
  addressProblem,
  DEFAULT_ADDRESS_PREFIX,
  duplicateModel,
  parsePrice,
  providerNameProblem,
  regionProblem,
  type ProviderRequest,
} from '../../../operator/src/onboarding/provider.js';
import { onboardTenant, type TenantOnboarded } from '../../../operator/src/onboarding/tenant-apply.js';
import {
  proofFromDocument,
  tenantContextName,
  tenantNameProblem,
  tenantNamespaceProblem,
  tenantProofProblem,
  type ProofDocument,
  type TenantRequest,
} from '../../../operator/src/onboarding/tenant.js';
import { commandKubeConfig, type KubeconfigFlags } from '../kubeconfig.js';
import { bold, dim, green, outputOption, print, table, UsageError, type OutputFormat } from '../output.js';

/** The field manager of everything this CLI applies on the registry. */
const FIELD_MANAGER = 'gpufed-cli';

/** An argument parser that refuses what `problemOf` finds wrong, saying which input and why. */
function checked(problemOf: (v: string) => string | undefined, what: (v: string) => string): (v: string) => string {
  return (v) => {
    const problem = problemOf(v);
    if (problem) throw new UsageError(`${what(v)} ${problem}`);
    return v;
  };
}

const providerName = checked(providerNameProblem, (v) => `provider name "${v}"`);
const region = checked(regionProblem, (v) => `--region ${v}:`);

function collectPrice(v: string, previous: ProviderSpecPrice[]): ProviderSpecPrice[] {
  const p = parsePrice(v);
  if (typeof p === 'string') throw new UsageError(`--price ${v}: ${p}`);
  return [...previous, p];
}

/** Checks the output file's directory before anything is created on the registry. */
function kubeconfigOut(v: string): string {
  const path = resolve(v);
  const dir = dirname(path);
  if (!existsSync(dir) || !statSync(dir).isDirectory()) throw new UsageError(`--kubeconfig-out ${v}: directory ${dir} does not exist`);
  if (existsSync(path) && statSync(path).isDirectory()) throw new UsageError(`--kubeconfig-out ${v}: is a directory, expected a file name`);
  return path;
}

function checkAddress(flag: string, address: string, prefix: string): void {
  const problem = addressProblem(address, prefix);
  if (problem) throw new UsageError(`${flag} ${address}: ${problem}`);
}

export interface AdminOptions extends KubeconfigFlags {
  server?: string;
  kubeconfigOut: string;
  output: OutputFormat;
}

interface AddOptions extends AdminOptions {
  wallet: string;
  payout?: string;
  region?: string;
  price: ProviderSpecPrice[];
  addressPrefix: string;
}

function adminKube(o: AdminOptions): Kube {
  return new Kube(commandKubeConfig(o, "the registry admin's"), FIELD_MANAGER);
}

/** Region and prices may be left out when the Provider exists: its current ones are kept. */
async function providerRequest(kube: Kube, name: string, o: AddOptions): Promise<ProviderRequest> {
  const existing = await currentProvider(kube, name);
  const reg = o.region ?? existing?.spec.region;
  const prices = o.price.length > 0 ? o.price : existing?.spec.prices;
  if (!reg) throw new UsageError(`--region is required to create Provider ${name}, e.g. --region eu-west`);
  if (!prices || prices.length === 0) throw new UsageError(`--price is required to create Provider ${name}, e.g. --price NVIDIA-GeForce-RTX-4090=1200000ustake`);
  return { name, wallet: o.wallet, ...(o.payout ? { payout: o.payout } : {}), region: reg, prices };
}

const colourResult = (r: string) => (r === 'unchanged' ? dim(r) : green(r));

/** What onboarding applied, one row per object (providers and tenants alike). */
function objectsTable(objects: readonly { kind: string; namespace?: string; name: string; result: string }[]): string {
  return table(
    ['kind', 'namespace', 'name', 'result'],
    objects.map((x) => [x.kind, x.namespace ?? '-', x.name, colourResult(x.result)]),
  );
}

function onboardedTable(r: Onboarded, path: string): string {
  const objects = objectsTable(r.objects);
  const token = r.tokenCreated ? `new token Secret ${r.tokenSecret}` : `existing token Secret ${r.tokenSecret}`;
  return [
    objects,
    '',
    `Wrote the agent's kubeconfig to ${bold(path)} (${token}, server ${r.server}, namespace ${r.namespace}).`,
    dim(`It holds a bearer token: hand it to the provider privately. Revoke or replace it with gpufed registry rotate-provider-token ${r.provider}.`),
  ].join('\n');
}

function rotatedTable(r: Rotated, path: string): string {
  const revoked = r.revoked.length > 0 ? `Deleted the old token Secret${r.revoked.length === 1 ? '' : 's'} ${r.revoked.join(', ')}: the API server rejects the old token within 10s.` : 'There was no old token to revoke.';
  return [`Wrote the agent's new kubeconfig to ${bold(path)} (token Secret ${r.tokenSecret}, server ${r.server}).`, revoked, dim('Give the new kubeconfig to the provider; its agent must restart with it.')].join('\n');
}

/** What -o json|yaml prints: the result with the kubeconfig's path instead of its token. */
const withoutKubeconfig = (r: Onboarded | Rotated | TenantOnboarded, path: string): Record<string, unknown> => ({
  ...Object.fromEntries(Object.entries(r).filter(([k]) => k !== 'kubeconfig')),
  kubeconfigPath: path,
});

function addProviderCommand(): Command {
  return new Command('add-provider')
    .description("Onboard a provider: create or update its Provider, namespace, service account and RBAC on the registry, and write its agent's kubeconfig")
    .addArgument(new Argument('<name>', 'the provider, a DNS label of at most 47 characters (namespace gpufed-provider-<name>)').argParser(providerName))
    .requiredOption('--wallet <address>', "the agent's hot wallet (bech32): renters grant it a spending cap and it signs settlements")
    .option('--payout <address>', 'the address that receives payments (bech32; default: the wallet)')
    .addOption(new Option('--region <region>', "where the GPUs are, e.g. eu-west (required for a new Provider; default: the existing Provider's)").argParser(region))
    .addOption(new Option('--price <model=coin>', 'price per GPU-hour of a GPU model, repeatable, e.g. NVIDIA-GeForce-RTX-4090=1200000ustake (required for a new Provider)').argParser(collectPrice).default([], "the existing Provider's"))
    .addOption(new Option('--kubeconfig-out <file>', "where to write the agent's kubeconfig (mode 0600)").makeOptionMandatory().argParser(kubeconfigOut))
    .option('--server <url>', "the registry's API server as the provider's agent reaches it (default: the admin kubeconfig's server)")
    .option('--kubeconfig <file>', "the registry admin's kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
    .option('--context <name>', 'the context of the admin kubeconfig to use (default: its current context)')
    .option('--address-prefix <hrp>', "the chain's bech32 address prefix", DEFAULT_ADDRESS_PREFIX)
    .addOption(outputOption())
    .addHelpText(
      'after',
      `
Runs with the registry admin's credentials. Server-side apply (field manager ${FIELD_MANAGER}): running it
again with the same flags changes nothing and re-issues the existing token. --region and --price may
be left out for an existing Provider (its current ones are kept); --payout defaults to the wallet.

Examples:
  $ gpufed registry add-provider alice --wallet cosmos187gn765gzkzqjt8sph428gl54v70c7ma2jkrvg \\
      --region eu-west --price NVIDIA-GeForce-RTX-4090=1200000ustake \\
      --price NVIDIA-GeForce-RTX-3090=800000ustake --kubeconfig-out alice-agent.kubeconfig
  $ gpufed registry add-provider bob --wallet cosmos137vk4nm9wfdkclmq64t7qrzrwknwed0jkddawl \\
      --payout cosmos1m2hsep5nmhdfzttqkn93ypd8amte8xzshg9322 --region eu-central \\
      --price NVIDIA-A100-SXM4-80GB=350000ustake --kubeconfig-out bob.kubeconfig \\
      --server https://registry.example.org:6443 -o json`,
    )
    .action(async (name: string, o: AddOptions) => {
      checkAddress('--wallet', o.wallet, o.addressPrefix);
      if (o.payout) checkAddress('--payout', o.payout, o.addressPrefix);
      const dup = duplicateModel(o.price);
      if (dup) throw new UsageError(`--price ${dup}: the model is priced twice`);
      const kube = adminKube(o);
      const r = await onboardProvider(kube, await providerRequest(kube, name, o), o.server ? { server: o.server } : {});
      writePrivateFile(o.kubeconfigOut, r.kubeconfig);
      print(o.output, withoutKubeconfig(r, o.kubeconfigOut), () => onboardedTable(r, o.kubeconfigOut));
    });
}

function rotateCommand(): Command {
  return new Command('rotate-provider-token')
    .description("Replace a provider's agent token: issue a new one, write its kubeconfig, then delete the old token so it stops working")
    .addArgument(new Argument('<name>', 'the provider').argParser(providerName))
    .addOption(new Option('--kubeconfig-out <file>', "where to write the agent's new kubeconfig (mode 0600)").makeOptionMandatory().argParser(kubeconfigOut))
    .option('--server <url>', "the registry's API server as the provider's agent reaches it (default: the admin kubeconfig's server)")
    .option('--kubeconfig <file>', "the registry admin's kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
    .option('--context <name>', 'the context of the admin kubeconfig to use (default: its current context)')
    .addOption(outputOption())
    .addHelpText(
      'after',
      `
The old token Secrets are deleted only after the new kubeconfig is written; from then on the API
server rejects the old token (401), at the latest 10 s later (kube-apiserver caches a successful
token check that long). Use it when a kubeconfig leaked, and regularly.

Examples:
  $ gpufed registry rotate-provider-token alice --kubeconfig-out alice-agent.kubeconfig
  $ gpufed registry rotate-provider-token alice --kubeconfig-out new.kubeconfig -o yaml`,
    )
    .action(async (name: string, o: AdminOptions) => {
      const r = await rotateProviderToken(adminKube(o), name, (text) => writePrivateFile(o.kubeconfigOut, text), o.server ? { server: o.server } : {});
      print(o.output, withoutKubeconfig(r, o.kubeconfigOut), () => rotatedTable(r, o.kubeconfigOut));
    });
}

const tenantName = checked(tenantNameProblem, (v) => `tenant name "${v}"`);
const tenantNamespace = checked(tenantNamespaceProblem, (v) => `--namespace ${v}:`);

export interface AddTenantOptions extends AdminOptions {
  namespace?: string;
  address?: string;
  proof?: string;
  challenge?: string;
  signature?: string;
  pubKey?: string;
  addressPrefix: string;
}

/** The proof document of --proof: a file, or stdin for `-`, YAML or JSON. */
function readProof(file: string): ProofDocument {
  let doc: unknown;
  try {
    doc = parseYaml(readFileSync(file === '-' ? 0 : file, 'utf8'));
  } catch (e) {
    throw new UsageError(`--proof ${file}: ${(e as Error).message}`, { cause: e });
  }
  const proof = proofFromDocument(doc);
  if (typeof proof === 'string') throw new UsageError(`--proof ${file}: ${proof}`);
  return proof;
}

/** The proof from --proof, or from --challenge, --signature and --pub-key together. */
function proofOf(o: AddTenantOptions): ProofDocument & { flag: string } {
  if (o.proof !== undefined) return { ...readProof(o.proof), flag: `--proof ${o.proof}` };
  const missing = [
    ['--challenge', o.challenge],
    ['--signature', o.signature],
    ['--pub-key', o.pubKey],
  ].filter(([, v]) => v === undefined);
  if (o.challenge === undefined || o.signature === undefined || o.pubKey === undefined) {
    throw new UsageError(
      `the payer's proof is required: --proof <file|-> with the output of gpufed tenant prove, or --challenge, --signature and --pub-key together (missing ${missing.map(([f]) => f).join(', ')})`,
    );
  }
  return { proof: { challenge: o.challenge, signature: o.signature, pubKey: o.pubKey }, flag: '--signature' };
}

/**
 * The request from the flags and the proof, checked as the registry will check it: the namespace
 * and address the proof names (when it is a whole Tenant) must be the ones asked for, and the
 * signature must verify. Throws a UsageError naming the flag otherwise.
 */
export function tenantRequest(name: string, o: AddTenantOptions): TenantRequest {
  const doc = proofOf(o);
  const namespace = o.namespace ?? name;
  if (doc.namespace !== undefined && doc.namespace !== namespace) {
    throw new UsageError(`${doc.flag}: the proof is for namespace ${doc.namespace}, not ${namespace}${o.namespace === undefined ? ` (bind that one with --namespace ${doc.namespace})` : ''}`);
  }
  const address = o.address ?? doc.address;
  if (address === undefined) throw new UsageError("--address is required: the payer's bech32 address, e.g. cosmos1... (or --proof with the output of gpufed tenant prove, which names it)");
  if (doc.address !== undefined && doc.address !== address) throw new UsageError(`--address ${address}: the proof in ${doc.flag} is for ${doc.address}`);
  checkAddress(o.address === undefined ? doc.flag : '--address', address, o.addressPrefix);
  const req = { name, namespace, address, proof: doc.proof };
  const problem = tenantProofProblem(req);
  if (problem) throw new UsageError(`${doc.flag}: ${problem}`);
  return req;
}

function tenantTable(r: TenantOnboarded, path: string): string {
  const objects = objectsTable(r.objects);
  const token = r.tokenCreated ? `new token Secret ${r.tokenSecret}` : `existing token Secret ${r.tokenSecret}`;
  return [
    objects,
    '',
    `Wrote the renter's kubeconfig to ${bold(path)} (${token}, server ${r.server}, context ${tenantContextName(r.tenant)}, namespace ${r.namespace}).`,
    `Jobs in namespace ${r.namespace} are paid by ${r.address} once the registry has verified the proof: kubectl get tenant ${r.namespace}.`,
    dim("It holds a bearer token: hand it to the renter privately."),
  ].join('\n');
}

function addTenantCommand(): Command {
  const manual = ['challenge', 'signature', 'pubKey'];
  return new Command('add-tenant')
    .description("Onboard a renter: bind its namespace to the address that pays (a Tenant with the payer's signed proof), create its namespace, service account and RBAC on the registry, and write its kubeconfig")
    .addArgument(new Argument('<name>', 'the tenant, a DNS label (labels, RBAC names and the kubeconfig context gpufed-tenant-<name>)').argParser(tenantName))
    .addOption(new Option('--namespace <ns>', "the renter's namespace on the registry, and the Tenant's name (default: <name>)").argParser(tenantNamespace))
    .option('--address <address>', "the payer's bech32 address (default: the one the --proof Tenant names)")
    .addOption(new Option('--proof <file|->', 'the output of gpufed tenant prove (YAML or JSON; - reads stdin), or a proof {challenge, signature, pubKey}').conflicts(manual))
    .option('--challenge <text>', 'the exact text the payer signed (instead of --proof)')
    .option('--signature <base64>', 'the ADR-036 signature, 64 bytes r||s (instead of --proof)')
    .option('--pub-key <base64>', "the payer's compressed secp256k1 public key, 33 bytes (instead of --proof)")
    .addOption(new Option('--kubeconfig-out <file>', "where to write the renter's kubeconfig (mode 0600)").makeOptionMandatory().argParser(kubeconfigOut))
    .option('--server <url>', "the registry's API server as the renter reaches it (default: the admin kubeconfig's server)")
    .option('--kubeconfig <file>', "the registry admin's kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
    .option('--context <name>', 'the context of the admin kubeconfig to use (default: its current context)')
    .option('--address-prefix <hrp>', "the chain's bech32 address prefix", DEFAULT_ADDRESS_PREFIX)
    .addOption(outputOption())
    .addHelpText(
      'after',
      `
The renter signs the proof offline with the payer's key (gpufed tenant prove) and sends it; its
signature is verified here before anything is sent, and again by the registry, which sets the
Tenant's Verified condition. Every ComputeJob of the namespace is paid from that address only.
Runs with the registry admin's credentials. Server-side apply (field manager ${FIELD_MANAGER}): running
it again with the same proof changes nothing and re-issues the existing token.

Examples:
  # the renter, offline:
  $ gpufed tenant prove --namespace carol --key-file carol.key -o json > carol-proof.json
  # the admin:
  $ gpufed registry add-tenant carol --proof carol-proof.json --kubeconfig-out carol.kubeconfig
  $ gpufed tenant prove --namespace carol --key-file carol.key | \\
      gpufed registry add-tenant carol --proof - --kubeconfig-out carol.kubeconfig -o json
  $ gpufed registry add-tenant lab --namespace carol-lab --address cosmos1mk8f... \\
      --challenge 'gpufed.io/tenant namespace=carol-lab address=cosmos1mk8f... nonce=8f3a2c41' \\
      --signature 74ybKApA...== --pub-key AnP97NcJ... --kubeconfig-out lab.kubeconfig`,
    )
    .action(async (name: string, o: AddTenantOptions) => {
      const req = tenantRequest(name, o);
      const r = await onboardTenant(adminKube(o), req, o.server ? { server: o.server } : {});
      writePrivateFile(o.kubeconfigOut, r.kubeconfig);
      print(o.output, withoutKubeconfig(r, o.kubeconfigOut), () => tenantTable(r, o.kubeconfigOut));
    });
}

export function registryCommand(): Command {
  const registry = new Command('registry').description("Administer the federation's registry: onboard providers and renters and manage their credentials");
  registry.addHelpText(
    'after',
    `
Every subcommand runs with the registry admin's kubeconfig: --kubeconfig, else $KUBECONFIG, else
~/.kube/config; --context, else its current context.

Examples:
  $ gpufed registry add-provider alice --wallet cosmos1... --region eu-west \\
      --price NVIDIA-GeForce-RTX-4090=1200000ustake --kubeconfig-out alice-agent.kubeconfig
  $ gpufed registry rotate-provider-token alice --kubeconfig-out alice-agent.kubeconfig
  $ gpufed registry add-tenant carol --proof carol-proof.json --kubeconfig-out carol.kubeconfig

See docs/onboarding.md for what a provider's and a renter's credentials can and cannot do.`,
  );
  registry.addCommand(addProviderCommand());
  registry.addCommand(rotateCommand());
  registry.addCommand(addTenantCommand());
  return registry;
}
