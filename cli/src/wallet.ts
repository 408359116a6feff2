// Where the CLI gets a signing key and the chain's endpoint, in one place. A key never comes from a
// command-line argument (it would sit in the shell history and in `ps` for every user to read): it
// comes from a file, from $GPUFED_KEY, or, on the local federation, from the dev chain's chain.env
// by name. The endpoint comes from a flag, the environment, or the same chain.env.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Command } from 'commander';
import { keyAddress, parsePrivateKeyHex } from '../../operator/src/settlement/keys.js';
import { devDir } from './dev/paths.js';
import { UsageError } from './output.js';

export const KEY_ENV = 'GPUFED_KEY';
export const RPC_URL_ENV = 'GPUFED_CHAIN_RPC_URL';
export const GAS_PRICE_ENV = 'GPUFED_CHAIN_GAS_PRICE';
export const PREFIX_ENV = 'GPUFED_CHAIN_PREFIX';
/** The dev chain's minimum gas price; a real chain's node may ask for more (pass --gas-price). */
export const DEFAULT_GAS_PRICE = '0.001ustake';
export const DEFAULT_PREFIX = 'cosmos';
/** The file `gpufed dev up` writes in its directory: endpoints and dev keys as KEY=value lines. */
export const CHAIN_ENV_FILE = 'chain.env';

/** The flags of every command that reads the chain. */
export interface ChainFlags {
  chainRpc?: string;
  gasPrice?: string;
  devDir?: string;
}

/** The flags of every command that signs. */
export interface KeyFlags {
  keyFile?: string;
  devKey?: string;
}

/** Adds --chain-rpc, --gas-price and --dev-dir (and, with `signs`, --key-file and --dev-key). */
export function withWalletOptions(cmd: Command, signs: boolean): Command {
  if (signs) {
    cmd.option('--key-file <file>', `file holding your secp256k1 private key as 64 hex digits (default: $${KEY_ENV})`);
    cmd.option('--dev-key <name>', "on the local federation: the dev chain's key of that name, e.g. carol (from chain.env)");
  }
  cmd.option('--chain-rpc <url>', `the chain's CometBFT RPC endpoint (default: $${RPC_URL_ENV}, else the dev chain's)`);
  cmd.option('--gas-price <price>', `the fee per gas unit (default: $${GAS_PRICE_ENV}, else the dev chain's, else ${DEFAULT_GAS_PRICE})`);
  cmd.option('--dev-dir <dir>', 'the local federation\'s directory, for its chain.env (default: $GPUFED_DEV_DIR, else .gpufed/dev in the repo)');
  return cmd;
}

/** The KEY=value lines of an env file; comments, blank lines and lines without `=` are skipped. */
export function parseEnvFile(text: string): Map<string, string> {
  const vars = new Map<string, string>();
  for (const raw of text.split('\n')) {
    const line = raw.trim();
    const eq = line.indexOf('=');
    if (line === '' || line.startsWith('#') || eq <= 0) continue;
    vars.set(line.slice(0, eq).trim(), line.slice(eq + 1).trim());
  }
  return vars;
}

/** The dev chain's chain.env, as read from disk once, or why it could not be read. */
export interface DevChainEnv {
  path: string;
  vars?: Map<string, string>;
  error?: string;
}

/** Reads chain.env from --dev-dir, else the dev federation's directory; a missing file is no error here. */
export function readDevChainEnv(flags: ChainFlags, env: NodeJS.ProcessEnv = process.env, read: (path: string) => string = (p) => readFileSync(p, 'utf8')): DevChainEnv {
  const path = join(flags.devDir ?? devDir(env), CHAIN_ENV_FILE);
  try {
    return { path, vars: parseEnvFile(read(path)) };
  } catch (e) {
    return { path, error: (e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message };
  }
}

/** The variable chain.env holds a dev key's private key in, as chainEnvFile names it. */
export const devKeyVariable = (name: string): string => `GPUFED_CHAIN_KEY_${name.toUpperCase().replace(/-/g, '_')}_PRIVATE_KEY`;

export interface ResolvedKey {
  privateKey: Uint8Array;
  /** Where it came from, for messages: `--key-file carol.key`, `$GPUFED_KEY`, `--dev-key carol`. */
  source: string;
}

export const NO_KEY_HELP = `No key: pass --key-file <file> (64 hex digits), set $${KEY_ENV}, or use --dev-key carol with a running \`gpufed dev up\``;

function keyFromFile(file: string, read: (path: string) => string): ResolvedKey {
  const source = `--key-file ${file}`;
  let text: string;
  try {
    text = read(file);
  } catch (e) {
    throw new UsageError(`${source}: ${(e as NodeJS.ErrnoException).code === 'ENOENT' ? 'no such file' : (e as Error).message}`, { cause: e });
  }
  return { privateKey: parseKey(text, source), source };
}

function parseKey(text: string, source: string): Uint8Array {
  try {
    return parsePrivateKeyHex(text, source);
  } catch (e) {
    throw new UsageError((e as Error).message, { cause: e });
  }
}

function keyFromDevChain(name: string, chainEnv: DevChainEnv): ResolvedKey {
  const source = `--dev-key ${name}`;
  if (!chainEnv.vars) throw new UsageError(`${source}: cannot read the dev chain's ${chainEnv.path} (${chainEnv.error ?? 'unknown error'}); start the local federation with \`gpufed dev up\`, or pass --dev-dir <dir>`);
  const hex = chainEnv.vars.get(devKeyVariable(name));
  if (hex === undefined) {
    const names = chainEnv.vars.get('GPUFED_CHAIN_KEYS');
    throw new UsageError(`${source}: ${chainEnv.path} has no key ${name}${names ? `; it has: ${names.split(',').join(', ')}` : ''}`);
  }
  return { privateKey: parseKey(hex, `${chainEnv.path} ${devKeyVariable(name)}`), source };
}

/**
 * The signing key: --key-file, else $GPUFED_KEY, else --dev-key from the dev chain's chain.env. A
 * --dev-key that a key file or $GPUFED_KEY would override is refused rather than silently ignored.
 */
export function resolveKey(flags: KeyFlags & ChainFlags, env: NodeJS.ProcessEnv = process.env, read: (path: string) => string = (p) => readFileSync(p, 'utf8')): ResolvedKey {
  const fromEnv = env[KEY_ENV]?.trim() ? env[KEY_ENV] : undefined;
  if (flags.devKey !== undefined && flags.keyFile !== undefined) throw new UsageError(`--dev-key ${flags.devKey} and --key-file ${flags.keyFile} both name a key: pass one`);
  if (flags.devKey !== undefined && fromEnv !== undefined) throw new UsageError(`--dev-key ${flags.devKey} and $${KEY_ENV} both name a key: unset ${KEY_ENV} or drop --dev-key`);
  if (flags.keyFile !== undefined) return keyFromFile(flags.keyFile, read);
  if (fromEnv !== undefined) return { privateKey: parseKey(fromEnv, `$${KEY_ENV}`), source: `$${KEY_ENV}` };
  if (flags.devKey !== undefined) return keyFromDevChain(flags.devKey, readDevChainEnv(flags, env, read));
  throw new UsageError(NO_KEY_HELP);
}

export interface ChainEndpoint {
  rpcUrl: string;
  gasPrice: string;
  prefix: string;
  /** Where the RPC URL came from, for messages. */
  source: string;
}

const GAS_PRICE = /^(\d+(\.\d+)?|\.\d+)[a-zA-Z][a-zA-Z0-9/:._-]{2,127}$/;

function checkRpcUrl(url: string, source: string): string {
  let parsed: URL;
  try {
    parsed = new URL(url);
  } catch {
    throw new UsageError(`${source} ${url}: not a URL; expected the CometBFT RPC endpoint, e.g. http://127.0.0.1:26657`);
  }
  if (!['http:', 'https:', 'ws:', 'wss:'].includes(parsed.protocol)) throw new UsageError(`${source} ${url}: expected an http(s) or ws(s) URL, e.g. http://127.0.0.1:26657`);
  return url;
}

/** The first value that is set, with its source's name. */
function first(...candidates: [value: string | undefined, source: string][]): [value: string, source: string] | undefined {
  for (const [v, source] of candidates) if (v !== undefined && v.trim() !== '') return [v.trim(), source];
  return undefined;
}

/**
 * The chain's endpoint: --chain-rpc, else $GPUFED_CHAIN_RPC_URL, else the dev chain's chain.env;
 * the gas price and address prefix likewise (defaults 0.001ustake and cosmos), taken from chain.env
 * only when the endpoint is the dev chain's.
 */
export function resolveChain(flags: ChainFlags, env: NodeJS.ProcessEnv = process.env, read: (path: string) => string = (p) => readFileSync(p, 'utf8')): ChainEndpoint {
  let dev: DevChainEnv | undefined;
  const devEnv = (): DevChainEnv => (dev ??= readDevChainEnv(flags, env, read));
  const devVar = (name: string): [string | undefined, string] => [devEnv().vars?.get(name), devEnv().path];
  const rpc = first([flags.chainRpc, '--chain-rpc'], [env[RPC_URL_ENV], `$${RPC_URL_ENV}`]) ?? first(devVar(RPC_URL_ENV));
  if (!rpc) {
    const d = devEnv();
    throw new UsageError(`No chain endpoint: pass --chain-rpc <url>, set $${RPC_URL_ENV}, or start the local federation with \`gpufed dev up\` (${d.path}: ${d.error ?? `no ${RPC_URL_ENV}`})`);
  }
  // The dev chain's gas price and prefix apply only to the dev chain, not to another one named by flag.
  const fromDev = (name: string): [string | undefined, string] => (devVar(RPC_URL_ENV)[0] === rpc[0] ? devVar(name) : [undefined, '']);
  const gas = first([flags.gasPrice, '--gas-price'], [env[GAS_PRICE_ENV], `$${GAS_PRICE_ENV}`]) ?? first(fromDev(GAS_PRICE_ENV)) ?? [DEFAULT_GAS_PRICE, 'the default gas price'];
  if (!GAS_PRICE.test(gas[0])) throw new UsageError(`${gas[1]} ${gas[0]}: expected a gas price, a decimal amount and a denom, e.g. ${DEFAULT_GAS_PRICE}`);
  const prefix = first([env[PREFIX_ENV], `$${PREFIX_ENV}`]) ?? first(fromDev(PREFIX_ENV)) ?? [DEFAULT_PREFIX, 'the default prefix'];
  return { rpcUrl: checkRpcUrl(rpc[0], rpc[1]), gasPrice: gas[0], prefix: prefix[0], source: rpc[1] };
}

/** The account address of a resolved key on a chain with this prefix. */
export const addressOf = (key: ResolvedKey, chain: Pick<ChainEndpoint, 'prefix'>): string => keyAddress(key.privateKey, chain.prefix);
