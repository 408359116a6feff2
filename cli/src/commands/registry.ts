// `gpufed registry add-provider|rotate-provider-token`: what a registry admin runs to onboard a
// provider with credentials that reach only its own namespace and its own Provider (docs/onboarding.md).
import { existsSync, statSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { Argument, Command, Option } from 'commander';
import type { ProviderSpecPrice } from '../../../operator/src/api/index.js';
import { Kube, loadKubeConfig } from '../../../operator/src/kube/client.js';
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
import { bold, dim, green, parseOutputFormat, print, table, UsageError, type OutputFormat } from '../output.js';

/** The field manager of everything this CLI applies on the registry. */
const FIELD_MANAGER = 'gpufed-cli';

function outputOption(): Option {
  return new Option('-o, --output <format>', 'output format: table, json or yaml').default('table').argParser(parseOutputFormat);
}

function providerName(v: string): string {
  const problem = providerNameProblem(v);
  if (problem) throw new UsageError(`provider name "${v}" ${problem}`);
  return v;
}

function region(v: string): string {
  const problem = regionProblem(v);
  if (problem) throw new UsageError(`--region ${v}: ${problem}`);
  return v;
}

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

interface AdminOptions {
  kubeconfig?: string;
  context?: string;
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
  const kc = loadKubeConfig(o.kubeconfig);
  if (o.context) {
    if (!kc.getContextObject(o.context)) throw new UsageError(`--context ${o.context}: no such context in ${o.kubeconfig ?? 'the default kubeconfig'}`);
    kc.setCurrentContext(o.context);
  }
  return new Kube(kc, FIELD_MANAGER);
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

function onboardedTable(r: Onboarded, path: string): string {
  const objects = table(
    ['kind', 'namespace', 'name', 'result'],
    r.objects.map((x) => [x.kind, x.namespace ?? '-', x.name, colourResult(x.result)]),
  );
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
const withoutKubeconfig = (r: Onboarded | Rotated, path: string): Record<string, unknown> => ({
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

export function registryCommand(): Command {
  const registry = new Command('registry').description("Administer the federation's registry: onboard providers and manage their credentials");
  registry.addHelpText(
    'after',
    `
Examples:
  $ gpufed registry add-provider alice --wallet cosmos1... --region eu-west \\
      --price NVIDIA-GeForce-RTX-4090=1200000ustake --kubeconfig-out alice-agent.kubeconfig
  $ gpufed registry rotate-provider-token alice --kubeconfig-out alice-agent.kubeconfig

See docs/onboarding.md for what a provider's credentials can and cannot do.`,
  );
  registry.addCommand(addProviderCommand());
  registry.addCommand(rotateCommand());
  return registry;
}
