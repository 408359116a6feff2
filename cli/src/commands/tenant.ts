// `gpufed tenant prove`: a renter binds their namespace to the address that pays for its jobs by
// signing an ADR-036 proof with that address's key, and hands the printed Tenant to the registry's
// admin. Offline: the key never leaves this machine and is read from a file or the environment,
// never from the command line (where it would land in shell history and `ps`).
import { readFileSync } from 'node:fs';
import { fromBase64, fromHex } from '@cosmjs/encoding';
import { Command, Option } from 'commander';
import { stringify } from 'yaml';
import { signTenantProof } from '../../../operator/src/tenancy/proof.js';
import { parseOutputFormat, print, UsageError, type OutputFormat } from '../output.js';

export const TENANT_KEY_ENV = 'GPUFED_TENANT_KEY';
const NAMESPACE = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const PREFIX = /^[a-z]{1,83}$/;

/**
 * A 32-byte secp256k1 private key from text: 64 hex digits (optionally 0x-prefixed) or base64.
 * `source` names where it came from (a flag or the environment variable) for the error message.
 */
export function parsePrivateKey(text: string, source: string): Uint8Array {
  const s = text.trim();
  if (s === '') throw new UsageError(`${source}: the key is empty; expected 64 hex digits or base64 of 32 bytes`);
  const hex = s.replace(/^0x/i, '');
  let key: Uint8Array | undefined;
  if (/^[0-9a-fA-F]{64}$/.test(hex)) key = fromHex(hex.toLowerCase());
  else {
    try {
      key = fromBase64(s);
    } catch {
      key = undefined;
    }
  }
  if (key?.length !== 32) throw new UsageError(`${source}: expected a 32-byte secp256k1 private key as 64 hex digits or base64`);
  return key;
}

/** Reads the key from `keyFile`, or from $GPUFED_TENANT_KEY when no file is given. */
export function readPrivateKey(keyFile: string | undefined, env: NodeJS.ProcessEnv = process.env): Uint8Array {
  if (keyFile === undefined) {
    const fromEnv = env[TENANT_KEY_ENV];
    if (fromEnv === undefined || fromEnv.trim() === '') throw new UsageError(`--key-file: no key file given and ${TENANT_KEY_ENV} is not set`);
    return parsePrivateKey(fromEnv, TENANT_KEY_ENV);
  }
  let text: string;
  try {
    text = readFileSync(keyFile, 'utf8');
  } catch (e) {
    throw new UsageError(`--key-file ${keyFile}: ${(e as Error).message}`, { cause: e });
  }
  return parsePrivateKey(text, `--key-file ${keyFile}`);
}

function namespaceArg(v: string): string {
  if (v.length > 63 || !NAMESPACE.test(v)) throw new UsageError(`--namespace ${v}: expected a DNS label (lower-case letters, digits and '-', at most 63)`);
  return v;
}

function prefixArg(v: string): string {
  if (!PREFIX.test(v)) throw new UsageError(`--prefix ${v}: expected a bech32 prefix of lower-case letters, e.g. cosmos`);
  return v;
}

function outputArg(v: string): OutputFormat {
  const f = parseOutputFormat(v);
  if (f === 'table') throw new UsageError(`-o ${v}: expected yaml or json`);
  return f;
}

/** The Tenant manifest binding `namespace` to the key's address. */
export function tenantManifest(privateKey: Uint8Array, namespace: string, prefix: string): object {
  let signed: ReturnType<typeof signTenantProof>;
  try {
    signed = signTenantProof(privateKey, namespace, prefix);
  } catch (e) {
    throw new UsageError(`--key-file: not a valid secp256k1 private key (${(e as Error).message})`, { cause: e });
  }
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'Tenant',
    metadata: { name: namespace },
    spec: { namespace, address: signed.address, proof: signed.proof },
  };
}

export function tenantCommand(): Command {
  const tenant = new Command('tenant').description("Bind a renter's namespace to the address that pays for its jobs");
  tenant.addHelpText(
    'after',
    `
Examples:
  # the renter, offline:
  $ gpufed tenant prove --namespace carol --key-file ~/.gpufed/carol.key > carol-tenant.yaml
  # the registry admin, with what the renter sent:
  $ gpufed registry add-tenant carol --proof carol-tenant.yaml --kubeconfig-out carol.kubeconfig`,
  );
  tenant
    .command('prove')
    .description('Sign an ADR-036 proof with the payer key and print the Tenant for the registry admin (offline)')
    .requiredOption('--namespace <ns>', 'your namespace on the registry', namespaceArg)
    .option('--key-file <file>', `file holding the 32-byte secp256k1 private key, hex or base64 (default: $${TENANT_KEY_ENV})`)
    .addOption(new Option('--prefix <prefix>', 'bech32 prefix of the address').default('cosmos').argParser(prefixArg))
    .addOption(new Option('-o, --output <format>', 'yaml or json').default('yaml').argParser(outputArg))
    .addHelpText(
      'after',
      '\nExamples:\n  $ gpufed tenant prove --namespace carol --key-file ~/.gpufed/carol.key > tenant.yaml\n  $ GPUFED_TENANT_KEY=$(cat key.hex) gpufed tenant prove --namespace carol -o json\n\n' +
        'Send the output to the registry admin, who onboards the namespace with it:\n  $ gpufed registry add-tenant carol --proof tenant.yaml --kubeconfig-out carol.kubeconfig',
    )
    .action((o: { namespace: string; keyFile?: string; prefix: string; output: OutputFormat }) => {
      const manifest = tenantManifest(readPrivateKey(o.keyFile), o.namespace, o.prefix);
      // Unfolded YAML: the challenge stays on one line, easy to compare with what was signed.
      if (o.output === 'yaml') process.stdout.write(stringify(manifest, { lineWidth: 0 }));
      else print(o.output, manifest, () => '');
    });
  return tenant;
}
