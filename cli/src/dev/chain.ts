// The local federation's chain: one validator node of wasmd (tools/wasmd: the Cosmos SDK 0.53
// modules simapp has, x/bank and x/authz among them, with simd's `cosmos` address prefix) on
// loopback ports, blocks every ~0.5 s. Like plan.ts, the plan is pure (ports are handed in); the
// caller starts it. initChain writes the chain's home once; chainHeight reads it back for `dev status`.
import { execFile } from 'node:child_process';
import { existsSync, mkdirSync, readFileSync, readdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { toHex } from '@cosmjs/encoding';
import { keyAddress } from '../../../operator/src/settlement/keys.js';
import { devPrivateKey } from './wallets.js';
import type { ComponentPlan } from './plan.js';

export const CHAIN_ID = 'gpufed-dev-1';
/** The one denom of the dev chain: balances, fees and the validator's stake. */
export const CHAIN_DENOM = 'ustake';
export const CHAIN_PREFIX = 'cosmos';
/**
 * Not zero, so fees are real and a signer without enough balance for them fails here as it would on
 * a real chain; small enough that a dev account's genesis balance pays for millions of txs.
 * cosmjs: `GasPrice.fromString(CHAIN_MIN_GAS_PRICE)`.
 */
export const CHAIN_MIN_GAS_PRICE = `0.001${CHAIN_DENOM}`;
/** The binary tools/build.sh builds for the chain (in its bin dir). */
export const CHAIN_BINARY = 'wasmd';
/**
 * A chain the local federation can run: the dev chain, and (in the test federation) a second one
 * with another address prefix and denom, so settlement is tested on a chain that is not `cosmos`.
 */
export interface ChainProfile {
  /** Its component's name in the federation, e.g. `chain`. */
  name: string;
  chainId: string;
  /** Its one denom: balances, fees and the validator's stake. */
  denom: string;
  /** The bech32 prefix of its account addresses (fixed in the binary at link time: tools/build.sh). */
  prefix: string;
  binary: string;
  /** CometBFT's tx indexer: `kv` (by hash and events) or `null`, as many public nodes run (lookups then scan blocks). Default kv. */
  txIndex?: 'kv' | 'null';
}

export const DEV_CHAIN: ChainProfile = { name: 'chain', chainId: 'gpufed-dev-1', denom: 'ustake', prefix: 'cosmos', binary: 'wasmd' };
/**
 * The second profile: wasmd linked with Akash's address prefix, paying in uakt (tools/build.sh
 * builds `wasmd-akash`), its node indexing no transactions: everything gpufed looks up there it
 * finds by scanning blocks.
 */
export const AKASH_CHAIN: ChainProfile = { name: 'chain-akash', chainId: 'gpufed-akash-1', denom: 'uakt', prefix: 'akash', binary: 'wasmd-akash', txIndex: 'null' };
export const CHAIN_PROFILES: Record<string, ChainProfile> = { dev: DEV_CHAIN, akash: AKASH_CHAIN };

/** The minimum gas price every node of a profile takes, and every dev operator signs with. */
export const minGasPrice = (p: ChainProfile): string => `0.001${p.denom}`;

/** Written last by initChain: its presence means the home holds a complete, initialised chain. */
export const CHAIN_READY_MARKER = '.gpufed-chain-ready';

/**
 * CometBFT consensus timeouts for fast blocks on 2 cores. With one validator only timeout_commit
 * paces blocks (~0.5 s plus execution); the others matter only when a step stalls.
 */
export const CHAIN_TIMING = {
  timeoutPropose: '300ms',
  timeoutProposeDelta: '100ms',
  timeoutPrevote: '300ms',
  timeoutPrecommit: '300ms',
  timeoutCommit: '500ms',
} as const;

/** The validator: a fixed dev key, so the validator address is the same on every machine. */
export const VALIDATOR_KEY_NAME = 'validator';
export const VALIDATOR_KEY_PURPOSE = 'chain/validator';
const VALIDATOR_BALANCE_AMOUNT = 1_000_000_000_000n;
const VALIDATOR_STAKE_AMOUNT = 100_000_000_000n;
export const VALIDATOR_BALANCE = `${VALIDATOR_BALANCE_AMOUNT}${CHAIN_DENOM}`;
export const VALIDATOR_STAKE = `${VALIDATOR_STAKE_AMOUNT}${CHAIN_DENOM}`;

export interface GenesisAccount {
  /** bech32, `cosmos1…` */
  address: string;
  /** SDK coins, e.g. `1000000000ustake` or `5ustake,7uatom`. */
  coins: string;
}

/** A dev key (see wallets.ts): a raw secp256k1 private key, hex, and its address. */
export interface DevKey {
  name: string;
  address: string;
  privateKeyHex: string;
}

export interface ChainEndpoints {
  /** CometBFT RPC, what cosmjs connects to: `http://127.0.0.1:<port>`. */
  rpcUrl: string;
  /** The SDK's REST (gRPC-gateway) API; also serves gRPC-web. */
  restUrl: string;
  /** gRPC, `127.0.0.1:<port>` (no scheme). */
  grpcAddress: string;
  /** CometBFT P2P; nothing dials it (one node), but it must not sit on a shared default port. */
  p2pAddress: string;
}

export interface ChainInput {
  /** The chain's home directory (initChain's). */
  home: string;
  /** The wasmd binary. */
  binary: string;
  log: string;
}

export interface ChainPlan {
  /** `chain`, stage 0: it needs nothing else of the federation. */
  component: ComponentPlan;
  endpoints: ChainEndpoints;
}

/** Ports chainComponent takes, in order: RPC, P2P, gRPC, REST API. */
export function portsNeededForChain(): number {
  return 4;
}

/**
 * The `wasmd start` of the dev chain. Every listener is on loopback and on a port handed in: CometBFT
 * RPC and P2P, the SDK's gRPC and REST API (gRPC-web shares the API's listener in SDK 0.50+).
 * Everything else that would listen on a fixed default port is off in the home's config (see
 * CHAIN_CONFIG): pprof (SDK default localhost:6060), CometBFT's Prometheus listener (:26660),
 * and CometBFT's gRPC broadcast API. The ABCI app runs in-process, so proxy_app does not listen.
 */
export function chainComponent(input: ChainInput, ports: number[], profile: ChainProfile = DEV_CHAIN): ChainPlan {
  if (ports.length < portsNeededForChain()) throw new Error(`chainComponent: ${ports.length} ports given, ${portsNeededForChain()} needed`);
  const [rpc, p2p, grpc, api] = ports as [number, number, number, number];
  const endpoints: ChainEndpoints = {
    rpcUrl: `http://127.0.0.1:${rpc}`,
    restUrl: `http://127.0.0.1:${api}`,
    grpcAddress: `127.0.0.1:${grpc}`,
    p2pAddress: `127.0.0.1:${p2p}`,
  };
  const component: ComponentPlan = {
    name: profile.name,
    binary: input.binary,
    stage: 0,
    log: input.log,
    health: { kind: 'http', url: `${endpoints.rpcUrl}/status` },
    args: [
      'start',
      `--home=${input.home}`,
      `--rpc.laddr=tcp://${endpoints.rpcUrl.slice('http://'.length)}`,
      `--p2p.laddr=tcp://${endpoints.p2pAddress}`,
      '--rpc.pprof_laddr=',
      '--grpc.enable=true',
      `--grpc.address=${endpoints.grpcAddress}`,
      '--api.enable=true',
      `--api.address=tcp://127.0.0.1:${api}`,
      `--minimum-gas-prices=${minGasPrice(profile)}`,
      '--log_level=warn',
      '--log_no_color',
    ],
  };
  return { component, endpoints };
}

type TomlValue = string | boolean | number;
/** Section (`''` for the keys before the first table) → key → value. */
export type TomlEdits = Record<string, Record<string, TomlValue>>;

/**
 * The home's config edits, per file under config/. Ports here are only the loopback fallbacks for a
 * bare `wasmd start --home …`; chainComponent's flags set the real ones.
 */
export function chainConfig(profile: ChainProfile): Record<'config.toml' | 'app.toml' | 'client.toml', TomlEdits> {
  return {
  'config.toml': {
    // unsafe: the mempool flush the settlement fault tests evict a transaction with (a loopback dev node only).
    rpc: { laddr: 'tcp://127.0.0.1:26657', pprof_laddr: '', grpc_laddr: '', unsafe: true },
    p2p: { laddr: 'tcp://127.0.0.1:26656', pex: false },
    consensus: {
      timeout_propose: CHAIN_TIMING.timeoutPropose,
      timeout_propose_delta: CHAIN_TIMING.timeoutProposeDelta,
      timeout_prevote: CHAIN_TIMING.timeoutPrevote,
      timeout_precommit: CHAIN_TIMING.timeoutPrecommit,
      timeout_commit: CHAIN_TIMING.timeoutCommit,
    },
    tx_index: { indexer: profile.txIndex ?? 'kv' },
    instrumentation: { prometheus: false },
  },
  'app.toml': {
    '': { 'minimum-gas-prices': minGasPrice(profile) },
    api: { enable: true, address: 'tcp://127.0.0.1:1317' },
    grpc: { enable: true, address: '127.0.0.1:9090' },
    telemetry: { enabled: false },
  },
  'client.toml': {
    '': { 'chain-id': profile.chainId, 'keyring-backend': 'test' },
  },
  };
}

/** The dev chain's config edits. */
export const CHAIN_CONFIG = chainConfig(DEV_CHAIN);

function tomlValue(v: TomlValue): string {
  return typeof v === 'string' ? JSON.stringify(v) : String(v);
}

/**
 * Sets single-line `key = value` entries in TOML text, each in its own table. Every key must
 * already be there: a key upstream renamed fails here instead of being silently appended.
 */
export function setTomlValues(text: string, edits: TomlEdits): string {
  const pending = new Map<string, TomlValue>();
  for (const [section, kv] of Object.entries(edits)) for (const [k, v] of Object.entries(kv)) pending.set(`${section}\0${k}`, v);
  let section = '';
  const lines = text.split('\n').map((line) => {
    const table = /^\s*\[([^[\]]+)\]\s*(#.*)?$/.exec(line);
    if (table) {
      section = (table[1] as string).trim();
      return line;
    }
    const entry = /^(\s*)([A-Za-z0-9_.-]+)\s*=/.exec(line);
    const id = entry ? `${section}\0${entry[2] as string}` : undefined;
    if (!entry || id === undefined || !pending.has(id)) return line;
    const value = pending.get(id) as TomlValue;
    pending.delete(id);
    return `${entry[1] as string}${entry[2] as string} = ${tomlValue(value)}`;
  });
  if (pending.size > 0) {
    const missing = [...pending.keys()].map((id) => id.replace('\0', '.').replace(/^\./, ''));
    throw new Error(`Config keys not found: ${missing.join(', ')}`);
  }
  return lines.join('\n');
}

const COIN = /^([0-9]+)([a-zA-Z][a-zA-Z0-9/:._-]{2,127})$/;

/** `5ustake,7uatom` → `[{denom, amount}]` as genesis JSON wants them; rejects what the SDK would. */
export function parseCoins(coins: string): { denom: string; amount: string }[] {
  const parsed = coins.split(',').map((c) => {
    const m = COIN.exec(c.trim());
    if (!m) throw new Error(`Not a coin: ${JSON.stringify(c)} (want e.g. 1000${CHAIN_DENOM})`);
    return { denom: m[2] as string, amount: BigInt(m[1] as string).toString() };
  });
  if (new Set(parsed.map((c) => c.denom)).size !== parsed.length) throw new Error(`Duplicate denom in ${JSON.stringify(coins)}`);
  return parsed;
}

/** The JSON `genesis bulk-add-genesis-account` reads; one entry per address (duplicates rejected). */
export function genesisAccountsJson(accounts: GenesisAccount[]): string {
  const seen = new Set<string>();
  for (const a of accounts) {
    if (seen.has(a.address)) throw new Error(`Genesis account ${a.address} given twice`);
    seen.add(a.address);
  }
  return JSON.stringify(accounts.map((a) => ({ address: a.address, coins: parseCoins(a.coins) })), null, 2);
}

/** A dev key from its purpose (wallets.ts), e.g. `devKey('renter', 'tenant/carol')`. */
export function devKey(name: string, purpose: string, prefix = CHAIN_PREFIX): DevKey {
  const key = devPrivateKey(purpose);
  return { name, address: keyAddress(key, prefix), privateKeyHex: toHex(key) };
}

const KEY_NAME = /^[a-z][a-z0-9-]{0,40}$/;

function envName(keyName: string): string {
  return keyName.toUpperCase().replace(/-/g, '_');
}

export interface ChainEnvInfo {
  endpoints: ChainEndpoints;
  home: string;
  keys: DevKey[];
}

/** `.gpufed/dev/chain.env`: KEY=value lines (sourceable by a shell, readable by dotenv). */
export function chainEnvFile(info: ChainEnvInfo): string {
  const names = new Set<string>();
  const keyLines = info.keys.flatMap((k) => {
    if (!KEY_NAME.test(k.name)) throw new Error(`Dev key name ${JSON.stringify(k.name)} must match ${KEY_NAME}`);
    if (!/^[0-9a-f]{64}$/.test(k.privateKeyHex)) throw new Error(`Dev key ${k.name}: privateKeyHex must be 64 lower-case hex digits`);
    const n = envName(k.name);
    if (names.has(n)) throw new Error(`Dev keys ${k.name} and another map to the same variable GPUFED_CHAIN_KEY_${n}`);
    names.add(n);
    return [`GPUFED_CHAIN_KEY_${n}_ADDRESS=${k.address}`, `GPUFED_CHAIN_KEY_${n}_PRIVATE_KEY=${k.privateKeyHex}`];
  });
  const lines = [
    '# The local federation chain (wasmd, one validator). Written by `gpufed dev up`; dev keys only.',
    `GPUFED_CHAIN_ID=${CHAIN_ID}`,
    `GPUFED_CHAIN_DENOM=${CHAIN_DENOM}`,
    `GPUFED_CHAIN_PREFIX=${CHAIN_PREFIX}`,
    `GPUFED_CHAIN_GAS_PRICE=${CHAIN_MIN_GAS_PRICE}`,
    `GPUFED_CHAIN_RPC_URL=${info.endpoints.rpcUrl}`,
    `GPUFED_CHAIN_REST_URL=${info.endpoints.restUrl}`,
    `GPUFED_CHAIN_GRPC_ADDRESS=${info.endpoints.grpcAddress}`,
    `GPUFED_CHAIN_HOME=${info.home}`,
    `GPUFED_CHAIN_KEYS=${info.keys.map((k) => k.name).join(',')}`,
    ...keyLines,
  ];
  return lines.join('\n') + '\n';
}

/** The latest height from a CometBFT `/status` body. */
export function statusHeight(body: unknown): number {
  const h = (body as { result?: { sync_info?: { latest_block_height?: unknown } } } | null)?.result?.sync_info?.latest_block_height;
  if (typeof h !== 'string' || !/^\d+$/.test(h)) throw new Error(`No latest_block_height in the node's /status: ${JSON.stringify(body)?.slice(0, 200)}`);
  return Number(h);
}

/** The chain's latest block height, from CometBFT RPC `/status` (`rpcUrl` as in ChainEndpoints). */
export async function chainHeight(rpcUrl: string, timeoutMs = 2000): Promise<number> {
  const res = await fetch(`${rpcUrl}/status`, { signal: AbortSignal.timeout(timeoutMs) });
  if (!res.ok) throw new Error(`${rpcUrl}/status answered ${res.status}`);
  return statusHeight(await res.json());
}

/**
 * Resolves with the height once the node has committed a block since it started (and the chain is
 * at height >= 2). Answering /status is not enough: after a restart, until the node's first new
 * commit, CheckTx runs at height 0 and rejects every signed tx ("signature verification failed;
 * please verify account number (0)"). Call this after the health check passes, before signing.
 */
export async function waitForChainBlock(rpcUrl: string, timeoutMs = 60_000, pollMs = 200): Promise<number> {
  const deadline = Date.now() + timeoutMs;
  let first: number | undefined;
  let last = 'no answer yet';
  while (Date.now() < deadline) {
    try {
      const h = await chainHeight(rpcUrl);
      first ??= h;
      if (h > first && h >= 2) return h;
      last = `height ${h}`;
    } catch (e) {
      last = e instanceof Error ? e.message : String(e);
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
  throw new Error(`The chain at ${rpcUrl} committed no new block in ${timeoutMs} ms (${last})`);
}

export interface InitChainOptions {
  home: string;
  binary: string;
  /** Funded at genesis besides the validator (which InitChainResult names). */
  accounts: GenesisAccount[];
  /** Imported into the home's test keyring too, so `wasmd tx … --from <name>` works by hand. */
  keys?: DevKey[];
  /** Each wasmd command's time limit. Default 60 s. */
  commandTimeoutMs?: number;
  /** Which chain (default the dev chain). */
  profile?: ChainProfile;
}

export interface InitChainResult {
  /** False when the home was already initialised (nothing was done). */
  created: boolean;
  validator: DevKey;
}

/** One wasmd command; rejects with its stderr. */
function wasmd(binary: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(binary, args, { timeout: timeoutMs, maxBuffer: 16 << 20 }, (err, stdout, stderr) => {
      if (err) reject(new Error(`${binary} ${args.slice(0, 3).join(' ')} failed: ${String(stderr).trim() || err.message}`, { cause: err }));
      else resolve(String(stdout));
    });
  });
}

function editConfig(home: string, profile: ChainProfile): void {
  for (const [file, edits] of Object.entries(chainConfig(profile))) {
    const path = join(home, 'config', file);
    writeFileSync(path, setTomlValues(readFileSync(path, 'utf8'), edits));
  }
}

/**
 * Creates the chain's home: genesis with the validator and `accounts` funded, fast-block config,
 * the validator's gentx. Idempotent: a home with CHAIN_READY_MARKER is left as it is; a home
 * without it (an init that was cut short) is removed and made again.
 */
export async function initChain(opts: InitChainOptions): Promise<InitChainResult> {
  const { home, binary } = opts;
  const profile = opts.profile ?? DEV_CHAIN;
  const validator = devKey(VALIDATOR_KEY_NAME, VALIDATOR_KEY_PURPOSE, profile.prefix);
  if (existsSync(join(home, CHAIN_READY_MARKER))) return { created: false, validator };
  const keys = opts.keys ?? [];
  if (keys.some((k) => k.name === VALIDATOR_KEY_NAME)) throw new Error(`Dev key name ${VALIDATOR_KEY_NAME} is the chain's own`);
  for (const k of keys) if (!KEY_NAME.test(k.name)) throw new Error(`Dev key name ${JSON.stringify(k.name)} must match ${KEY_NAME}`);
  const accountsJson = genesisAccountsJson([{ address: validator.address, coins: `${VALIDATOR_BALANCE_AMOUNT}${profile.denom}` }, ...opts.accounts]);

  if (existsSync(home) && readdirSync(home).length > 0) rmSync(home, { recursive: true, force: true });
  mkdirSync(home, { recursive: true });
  const run = (...args: string[]) => wasmd(binary, [...args, `--home=${home}`], opts.commandTimeoutMs ?? 60_000);
  const keyring = '--keyring-backend=test';

  await run('init', 'gpufed-dev', `--chain-id=${profile.chainId}`, `--default-denom=${profile.denom}`);
  editConfig(home, profile);
  for (const k of [validator, ...keys]) await run('keys', 'import-hex', k.name, k.privateKeyHex, keyring);
  const accountsFile = join(home, 'config', 'genesis-accounts.json');
  writeFileSync(accountsFile, accountsJson);
  await run('genesis', 'bulk-add-genesis-account', accountsFile);
  await run('genesis', 'gentx', VALIDATOR_KEY_NAME, `${VALIDATOR_STAKE_AMOUNT}${profile.denom}`, `--chain-id=${profile.chainId}`, keyring);
  await run('genesis', 'collect-gentxs');
  await run('genesis', 'validate');
  writeFileSync(join(home, CHAIN_READY_MARKER), `${new Date().toISOString()}\n`);
  return { created: true, validator };
}
