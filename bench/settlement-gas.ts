// What one settlement transaction costs on the chain: the provider's 2-of-2 settlement account (its
// hot key and the registry's key) sends ONE x/authz MsgExec wrapping k MsgSends (one per renter,
// each under that renter's SendAuthorization) to the payout address, its fee paid by the hot key
// through an x/feegrant allowance, both members signing, as the agent proposes and the registry
// co-signs. Starts a fresh one-validator wasmd chain in a temp dir (genesis funds the renters, the
// hot key and the payout address), has every renter grant the settlement account, then sends
// MsgExecs of 1…50 sends and records gas used (the block's), gas wanted (the signed limit), tx bytes
// and fee. Also probes how many sends one MsgExec may carry (51, 98, 99, 100).
// Usage: node dist/bench/settlement-gas.js [renters=50] [runs=3]
// Prints Markdown tables for bench/RESULTS.md. Numbers are measurements, never test assertions.
import { randomBytes } from 'node:crypto';
import { existsSync, mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { EncodeObject } from '@cosmjs/proto-signing';
import type { StdFee } from '@cosmjs/stargate';
import { CHAIN_BINARY, CHAIN_DENOM, CHAIN_MIN_GAS_PRICE, chainComponent, initChain, portsNeededForChain, waitForChainBlock } from '../cli/src/dev/chain.js';
import { freePorts } from '../cli/src/dev/federation.js';
import { binDir } from '../cli/src/dev/paths.js';
import { isAlive, startDetached, stopProcess } from '../cli/src/dev/process.js';
import { toBase64 } from '@cosmjs/encoding';
import { MsgExec } from 'cosmjs-types/cosmos/authz/v1beta1/tx';
import { batchMemo, MAX_MESSAGES } from '../operator/src/settlement/batch.js';
import { Chain, execMessage, gasLimitFor, grantMessage, txHash, type ExecSend } from '../operator/src/settlement/chain.js';
import { keyAddress } from '../operator/src/settlement/keys.js';
import { assembleTx, buildTx, publicKeyOf, settlementAccount, signDocDigest, signMember, simulationTx, type SettlementAccount } from '../operator/src/settlement/multisig.js';
import { FEE_GRANT_GAS, feeAmount as feeFor } from '../operator/src/settlement/settler.js';

const SIZES = [1, 2, 5, 10, 25, 50];
const PROBES = [51, 98, 99, 100];
const SEND_AMOUNT = 1000n;
const BALANCE = 1_000_000_000n;
const GRANT_LIMIT = 100_000_000n;
const GRANT_CONCURRENCY = 10;
const TX_WAIT_MS = 30_000;

interface Key {
  key: Uint8Array;
  address: string;
}

interface Bench {
  chain: Chain;
  rpcUrl: string;
  hot: Key;
  /** The registry's co-signing key: the other half of the settlement account. */
  registry: Key;
  account: SettlementAccount;
  payout: string;
  renters: Key[];
}

interface Measured {
  gasUsed: number;
  gasWanted: number;
  bytes: number;
  fee: bigint;
  height: number;
  latencyMs: number;
}

type Attempt = { kind: 'ok'; m: Measured } | { kind: 'failed'; stage: string; message: string };

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const int = (n: number) => Math.round(n).toLocaleString('en-US');
const errorText = (e: unknown) => (e instanceof Error ? e.message : String(e));

function newKey(): Key {
  const key = new Uint8Array(randomBytes(32));
  return { key, address: keyAddress(key) };
}

function feeAmount(fee: StdFee): bigint {
  return fee.amount.filter((c) => c.denom === CHAIN_DENOM).reduce((sum, c) => sum + BigInt(c.amount), 0n);
}

/** Polls the tx indexer until a block holds the transaction. */
async function waitForTx(chain: Chain, hash: string): Promise<NonNullable<Awaited<ReturnType<Chain['findTx']>>>> {
  const deadline = Date.now() + TX_WAIT_MS;
  while (Date.now() < deadline) {
    const found = await chain.findTx(hash);
    if (found) return found;
    await sleep(100);
  }
  throw new Error(`Transaction ${hash} was not committed within ${TX_WAIT_MS} ms`);
}

/** Signs (explicit account number, sequence, fee, timeout height) and broadcasts; resolves once committed. */
async function signSendWait(chain: Chain, signer: Key, msgs: EncodeObject[], memo: string, fee: StdFee): Promise<Attempt> {
  const account = await chain.account(signer.address);
  if (!account) return { kind: 'failed', stage: 'account', message: `${signer.address} has no account` };
  const timeoutHeight = (await chain.height()) + 100;
  const tx = await chain.sign(signer.key, msgs, memo, { ...account, timeoutHeight, fee });
  const t = Date.now();
  const b = await chain.broadcast(tx.txBytes);
  if (b.kind === 'rejected') return { kind: 'failed', stage: 'CheckTx (broadcast)', message: `code ${b.code} (${b.codespace}): ${b.log}` };
  if (b.kind === 'unknown') return { kind: 'failed', stage: 'broadcast', message: b.error };
  const found = await waitForTx(chain, tx.txHash);
  if (found.code !== 0) return { kind: 'failed', stage: `DeliverTx (block ${found.height})`, message: `code ${found.code}: ${found.log}` };
  return { kind: 'ok', m: { gasUsed: found.gasUsed, gasWanted: Number(fee.gas), bytes: tx.txBytes.length, fee: feeAmount(fee), height: found.height, latencyMs: Date.now() - t } };
}

/** Runs `fn` over `items`, at most `limit` at a time. */
async function pool<T, R>(items: T[], limit: number, fn: (item: T) => Promise<R>): Promise<R[]> {
  const out: R[] = new Array<R>(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      out[i] = await fn(items[i] as T);
    }
  };
  await Promise.all(Array.from({ length: Math.min(limit, items.length) }, worker));
  return out;
}

/** Every renter grants the settlement account a SendAuthorization limited to the payout address; each signs its own tx. */
async function grantAll(b: Bench): Promise<Measured[]> {
  return pool(b.renters, GRANT_CONCURRENCY, async (r) => {
    const msgs = [grantMessage(r.address, b.account.address, { amount: GRANT_LIMIT, denom: CHAIN_DENOM }, [b.payout])];
    const memo = 'gpufed budget grant';
    const a = await signSendWait(b.chain, r, msgs, memo, await b.chain.estimateFee(r.key, msgs, memo));
    if (a.kind !== 'ok') throw new Error(`Grant from ${r.address} failed at ${a.stage}: ${a.message}`);
    return a.m;
  });
}

function sendsFrom(b: Bench, count: number, offset: number): ExecSend[] {
  return Array.from({ length: count }, (_, i) => ({ from: (b.renters[(offset + i) % b.renters.length] as Key).address, to: b.payout, amount: { amount: SEND_AMOUNT, denom: CHAIN_DENOM } }));
}

/** A memo shaped like the settler's (`gpufed/v1/<provider>/<sha256 hex>`), so the byte counts match. */
const newMemo = () => batchMemo('alice', Buffer.from(randomBytes(32)).toString('hex'));

/**
 * One settlement transaction as the agent proposes it and the registry co-signs it: built at the
 * account's sequence, its gas simulated (or `gasLimit` when given), both members' DIRECT signatures
 * assembled, broadcast, found in a block.
 */
async function settle(b: Bench, sends: ExecSend[], gasLimit?: number): Promise<Attempt> {
  const onChain = await b.chain.account(b.account.address);
  if (!onChain) return { kind: 'failed', stage: 'account', message: `${b.account.address} has no account` };
  const exec = execMessage(b.account.address, sends);
  const messages = [{ typeUrl: exec.typeUrl, value: MsgExec.encode(exec.value as MsgExec).finish() }];
  const memo = newMemo();
  const timeoutHeight = (await b.chain.height()) + 100;
  const draft = (gas: number) => buildTx({ account: b.account, messages, memo, timeoutHeight, sequence: onChain.sequence, fee: { amount: feeFor(CHAIN_MIN_GAS_PRICE, gas), gasLimit: gas, granter: b.hot.address } });
  let limit = gasLimit;
  if (limit === undefined) limit = gasLimitFor(await b.chain.simulateGas(simulationTx(draft(2_000_000), b.account))) + FEE_GRANT_GAS;
  const tx = draft(limit);
  const digest = signDocDigest(tx, b.chain.chainId, onChain.accountNumber);
  const signatures = new Map([b.hot, b.registry].map((k) => [toBase64(publicKeyOf(k.key)), signMember(digest, k.key)]));
  const bytes = assembleTx(tx, b.account, signatures);
  const fee = BigInt(feeFor(CHAIN_MIN_GAS_PRICE, limit)[0]?.amount ?? '0');
  const t = Date.now();
  const sent = await b.chain.broadcast(bytes);
  if (sent.kind === 'rejected') return { kind: 'failed', stage: 'CheckTx (broadcast)', message: `code ${sent.code} (${sent.codespace}): ${sent.log}` };
  if (sent.kind === 'unknown') return { kind: 'failed', stage: 'broadcast', message: sent.error };
  const found = await waitForTx(b.chain, txHash(bytes));
  if (found.code !== 0) return { kind: 'failed', stage: `DeliverTx (block ${found.height})`, message: `code ${found.code}: ${found.log}` };
  return { kind: 'ok', m: { gasUsed: found.gasUsed, gasWanted: limit, bytes: bytes.length, fee, height: found.height, latencyMs: Date.now() - t } };
}

interface SizeRow {
  k: number;
  runs: Measured[];
}

async function measureSizes(b: Bench, runs: number): Promise<SizeRow[]> {
  const rows: SizeRow[] = [];
  let offset = 0;
  for (const k of SIZES.filter((s) => s <= b.renters.length)) {
    const row: SizeRow = { k, runs: [] };
    for (let r = 0; r < runs; r++) {
      const a = await settle(b, sendsFrom(b, k, offset));
      offset = (offset + k) % b.renters.length;
      if (a.kind !== 'ok') throw new Error(`MsgExec with ${k} sends failed at ${a.stage}: ${a.message}`);
      row.runs.push(a.m);
      process.stderr.write(`k=${k} run ${r + 1}/${runs}: gasUsed ${a.m.gasUsed}, gasWanted ${a.m.gasWanted}, ${a.m.bytes} bytes, block ${a.m.height}\n`);
    }
    rows.push(row);
  }
  return rows;
}

interface ProbeRow {
  sends: number;
  simulate: string;
  result: Attempt;
}

/**
 * Tries a MsgExec of `count` sends. When simulation refuses it, signs anyway with a gas limit
 * extrapolated from the measured per-send gas, so the node's CheckTx answers too.
 */
async function probe(b: Bench, count: number, fallbackGas: number): Promise<ProbeRow> {
  const sends = sendsFrom(b, count, 0);
  try {
    return { sends: count, simulate: 'ok', result: await settle(b, sends) };
  } catch (e) {
    // Simulation refused it: sign anyway with a limit extrapolated from the measured gas, so CheckTx answers too.
    const simulate = errorText(e);
    try {
      return { sends: count, simulate, result: await settle(b, sends, gasLimitFor(fallbackGas) + FEE_GRANT_GAS) };
    } catch (e2) {
      return { sends: count, simulate, result: { kind: 'failed', stage: 'sign/broadcast', message: errorText(e2) } };
    }
  }
}

interface BlockTimes {
  blocks: number;
  meanMs: number;
  medianMs: number;
  maxMs: number;
}

/** Intervals between consecutive block times over [from, to] (CometBFT /blockchain, 20 headers a call). */
async function blockTimes(chain: Chain, from: number, to: number): Promise<BlockTimes> {
  const times = new Map<number, number>();
  for (let lo = from; lo <= to; lo += 20) {
    const r = await chain.comet.blockchain(lo, Math.min(to, lo + 19));
    for (const m of r.blockMetas) times.set(m.header.height, m.header.time.getTime());
  }
  const hs = [...times.keys()].sort((a, c) => a - c);
  const gaps = hs.slice(1).map((h, i) => (times.get(h) as number) - (times.get(hs[i] as number) as number));
  const first = times.get(hs[0] ?? 0) ?? 0;
  const last = times.get(hs[hs.length - 1] ?? 0) ?? 0;
  return { blocks: hs.length, meanMs: hs.length > 1 ? (last - first) / (hs.length - 1) : 0, medianMs: median(gaps), maxMs: Math.max(0, ...gaps) };
}

async function blockLimits(rpcUrl: string): Promise<{ maxGas: string; maxBytes: string }> {
  const res = await fetch(`${rpcUrl}/consensus_params`, { signal: AbortSignal.timeout(5000) });
  const body = (await res.json()) as { result?: { consensus_params?: { block?: { max_gas?: string; max_bytes?: string } } } };
  const block = body.result?.consensus_params?.block;
  return { maxGas: block?.max_gas ?? '?', maxBytes: block?.max_bytes ?? '?' };
}

// ---------------------------------------------------------------------------------------------
// Reporting

const med = (row: SizeRow, f: (m: Measured) => number) => median(row.runs.map(f));

function printSizes(rows: SizeRow[], runs: number): void {
  const one = rows.find((r) => r.k === 1);
  const g1 = one ? med(one, (m) => m.gasUsed) : 0;
  const b1 = one ? med(one, (m) => m.bytes) : 0;
  console.log(`| sends in the MsgExec (k) | gas used (median of ${runs}) | gas wanted (signed limit) | gas used per renter | marginal gas per renter | tx bytes | marginal bytes per renter | fee (at ${CHAIN_MIN_GAS_PRICE}) | broadcast → found |`);
  console.log('|---|---|---|---|---|---|---|---|---|');
  for (const r of rows) {
    const gas = med(r, (m) => m.gasUsed);
    const bytes = med(r, (m) => m.bytes);
    const marginalGas = r.k > 1 ? int((gas - g1) / (r.k - 1)) : '';
    const marginalBytes = r.k > 1 ? ((bytes - b1) / (r.k - 1)).toFixed(1) : '';
    const spread = `${int(Math.min(...r.runs.map((m) => m.gasUsed)))}–${int(Math.max(...r.runs.map((m) => m.gasUsed)))}`;
    console.log(`| ${r.k} | ${int(gas)} (${spread}) | ${int(med(r, (m) => m.gasWanted))} | ${int(gas / r.k)} | ${marginalGas} | ${int(bytes)} | ${marginalBytes} | ${int(med(r, (m) => Number(m.fee)))} ${CHAIN_DENOM} | ${(med(r, (m) => m.latencyMs) / 1000).toFixed(2)} s |`);
  }
}

function printProbes(probes: ProbeRow[], renters: number): void {
  console.log('');
  console.log(`| sends in one MsgExec (from ${renters} renters, cycled) | simulate | result | gas used | tx bytes |`);
  console.log('|---|---|---|---|---|');
  for (const p of probes) {
    const sim = p.simulate === 'ok' ? 'ok' : `refused: ${p.simulate.replace(/\|/g, '\\|').slice(0, 200)}`;
    if (p.result.kind === 'ok') console.log(`| ${p.sends} | ${sim} | committed (block ${p.result.m.height}) | ${int(p.result.m.gasUsed)} | ${int(p.result.m.bytes)} |`);
    else console.log(`| ${p.sends} | ${sim} | ${p.result.stage}: ${p.result.message.replace(/\|/g, '\\|').slice(0, 300)} | | |`);
  }
}

function printRounds(rows: SizeRow[]): void {
  const full = rows.find((r) => r.k === MAX_MESSAGES);
  const one = rows.find((r) => r.k === 1);
  if (!full || !one) return;
  const gFull = med(full, (m) => m.gasUsed);
  const g1 = med(one, (m) => m.gasUsed);
  const marginal = (gFull - g1) / (MAX_MESSAGES - 1);
  const gasFor = (k: number) => (k === 0 ? 0 : g1 + marginal * (k - 1));
  console.log('');
  console.log(`| renters with something due (R) | transactions per round, ceil(R/${MAX_MESSAGES}) | gas used (estimated from the fit above) | fee (signed limits, estimated) |`);
  console.log('|---|---|---|---|');
  const wantedRatio = med(full, (m) => m.gasWanted) / gFull;
  for (const R of [1, 10, 50, 51, 100, 500, 1000]) {
    const txs = Math.ceil(R / MAX_MESSAGES);
    const gas = Math.floor(R / MAX_MESSAGES) * gFull + gasFor(R % MAX_MESSAGES);
    console.log(`| ${R} | ${txs} | ${int(gas)} | ~${int((gas * wantedRatio) / 1000)} ${CHAIN_DENOM} |`);
  }
}

// ---------------------------------------------------------------------------------------------
// The chain

async function startChain(dir: string, funded: string[]): Promise<{ pid: number; rpcUrl: string; log: string }> {
  const binary = join(binDir(), CHAIN_BINARY);
  if (!existsSync(binary)) throw new Error(`${binary} is missing: build it with tools/build.sh (or make tools)`);
  const home = join(dir, 'chain');
  const log = join(dir, 'chain.log');
  const t = Date.now();
  await initChain({ home, binary, accounts: funded.map((address) => ({ address, coins: `${BALANCE}${CHAIN_DENOM}` })) });
  process.stderr.write(`chain home initialised in ${((Date.now() - t) / 1000).toFixed(1)} s\n`);
  const { component, endpoints } = chainComponent({ home, binary, log }, await freePorts(portsNeededForChain()));
  const pid = startDetached(component.binary, component.args, log);
  return { pid, rpcUrl: endpoints.rpcUrl, log };
}

function logTail(log: string): string {
  try {
    return readFileSync(log, 'utf8').split('\n').slice(-20).join('\n');
  } catch {
    return '(no log)';
  }
}

async function run(dir: string, renterCount: number, runs: number, started: { pid?: number }): Promise<void> {
  const renters = Array.from({ length: renterCount }, newKey);
  const hot = newKey();
  const registry = newKey();
  const account = settlementAccount(publicKeyOf(hot.key), publicKeyOf(registry.key), 'cosmos');
  const payout = newKey().address;
  // The payout address is funded at genesis so that it exists, as after a provider's first payment.
  const { pid, rpcUrl, log } = await startChain(dir, [...renters.map((r) => r.address), hot.address, payout]);
  started.pid = pid;
  try {
    await waitForChainBlock(rpcUrl, 90_000);
  } catch (e) {
    throw new Error(`${errorText(e)}; alive: ${isAlive(pid)}; log:\n${logTail(log)}`, { cause: e });
  }
  const chain = await Chain.connect({ rpcUrl, gasPrice: CHAIN_MIN_GAS_PRICE });
  try {
    const b: Bench = { chain, rpcUrl, hot, registry, account, payout, renters };
    // The hot key pays the account's fees (x/feegrant), which also creates the account on chain.
    await chain.grantFeeAllowance(hot.key, account.address);
    const t = Date.now();
    const grants = await grantAll(b);
    const grantSeconds = ((Date.now() - t) / 1000).toFixed(1);
    process.stderr.write(`${grants.length} grants committed in ${grantSeconds} s (gas used median ${median(grants.map((g) => g.gasUsed))})\n`);
    const from = await chain.height();
    const rows = await measureSizes(b, runs);
    const to = await chain.height();
    const last = rows[rows.length - 1];
    const perSend = last && last.k > 1 ? med(last, (m) => m.gasUsed) / last.k : 30_000;
    const probes: ProbeRow[] = [];
    for (const n of PROBES) {
      probes.push(await probe(b, n, perSend * n));
      process.stderr.write(`probe ${n}: ${probes[probes.length - 1]?.result.kind}\n`);
    }
    const times = await blockTimes(chain, from, to);
    const limits = await blockLimits(rpcUrl);
    console.log(`Chain: wasmd, one validator, timeout_commit 500ms, minimum gas price ${CHAIN_MIN_GAS_PRICE}; block max_gas ${limits.maxGas}, max_bytes ${limits.maxBytes}. ${renterCount} renters.`);
    console.log(`Grants (MsgGrant of a SendAuthorization, one tx per renter, ${GRANT_CONCURRENCY} at a time): gas used median ${int(median(grants.map((g) => g.gasUsed)))}, ${int(median(grants.map((g) => g.bytes)))} bytes; all ${grants.length} committed in ${grantSeconds} s.`);
    console.log(`Block time over the measured heights ${from}–${to} (${times.blocks} blocks): mean ${(times.meanMs / 1000).toFixed(2)} s, median ${(times.medianMs / 1000).toFixed(2)} s, max ${(times.maxMs / 1000).toFixed(2)} s.`);
    console.log('');
    printSizes(rows, runs);
    printProbes(probes, renterCount);
    printRounds(rows);
  } finally {
    chain.disconnect();
  }
}

async function main(): Promise<void> {
  const renterCount = Number(process.argv[2] ?? 50);
  const runs = Number(process.argv[3] ?? 3);
  if (!Number.isInteger(renterCount) || renterCount < 1) throw new Error(`renters must be a positive integer, got ${process.argv[2]}`);
  if (!Number.isInteger(runs) || runs < 1) throw new Error(`runs must be a positive integer, got ${process.argv[3]}`);
  const dir = mkdtempSync(join(tmpdir(), 'gpufed-bench-gas-'));
  const started: { pid?: number } = {};
  const cleanup = async () => {
    if (started.pid !== undefined) await stopProcess(started.pid);
    rmSync(dir, { recursive: true, force: true });
  };
  // The chain runs in its own process group, so a Ctrl-C does not reach it: stop it here.
  let interrupted = false;
  const onSignal = (sig: NodeJS.Signals) => {
    interrupted = true;
    void cleanup().finally(() => process.exit(sig === 'SIGINT' ? 130 : 143));
  };
  process.once('SIGINT', onSignal);
  process.once('SIGTERM', onSignal);
  try {
    await run(dir, renterCount, runs, started);
  } catch (e) {
    // Once interrupted, requests to the stopped chain fail; the signal handler exits.
    if (!interrupted) throw e;
  } finally {
    await cleanup();
  }
}

await main();
