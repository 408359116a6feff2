import { describe, expect, it } from '@jest/globals';
import { toHex } from '@cosmjs/encoding';
import { keyAddress } from '../../operator/src/settlement/keys.js';
import { chainEnvFile, devKey, type ChainEndpoints } from './dev/chain.js';
import { UsageError } from './output.js';
import { addressOf, devKeyVariable, NO_KEY_HELP, parseEnvFile, resolveChain, resolveKey } from './wallet.js';

const carol = devKey('carol', 'tenant/carol');
const hot = devKey('alice-hot', 'provider/alice/hot');
const other = devKey('other', 'test/other');
const endpoints: ChainEndpoints = { rpcUrl: 'http://127.0.0.1:26657', restUrl: 'http://127.0.0.1:1317', grpcAddress: '127.0.0.1:9090', p2pAddress: '127.0.0.1:26656' };
const chainEnv = chainEnvFile({ endpoints, home: '/fed/chain', keys: [carol, hot] });

/** A file system of a few files; anything else is ENOENT, as readFileSync says it. */
function files(entries: Record<string, string>): (path: string) => string {
  return (path) => {
    const text = entries[path];
    if (text === undefined) throw Object.assign(new Error(`ENOENT: no such file or directory, open '${path}'`), { code: 'ENOENT' });
    return text;
  };
}

const devFs = files({ '/fed/chain.env': chainEnv, '/keys/other.key': `0x${other.privateKeyHex.toUpperCase()}\n`, '/keys/bad.key': 'not a key\n' });
const hexOf = (k: { privateKey: Uint8Array }) => toHex(k.privateKey);

describe('parseEnvFile', () => {
  it('reads KEY=value lines, skipping comments, blanks and lines without a name', () => {
    expect(parseEnvFile('# comment\n\nA=1\n B = two words \n=x\nnoequals\nC=a=b\n')).toEqual(
      new Map([
        ['A', '1'],
        ['B', 'two words'],
        ['C', 'a=b'],
      ]),
    );
  });

  it('reads what `gpufed dev up` writes', () => {
    const vars = parseEnvFile(chainEnv);
    expect(vars.get('GPUFED_CHAIN_RPC_URL')).toBe(endpoints.rpcUrl);
    expect(vars.get(devKeyVariable('alice-hot'))).toBe(hot.privateKeyHex);
  });
});

describe('resolveKey', () => {
  const env = { GPUFED_DEV_DIR: '/fed' };

  it.each([
    ['--key-file over $GPUFED_KEY', { keyFile: '/keys/other.key' }, { ...env, GPUFED_KEY: carol.privateKeyHex }, other.privateKeyHex, '--key-file /keys/other.key'],
    ['$GPUFED_KEY with no flag', {}, { ...env, GPUFED_KEY: ` ${carol.privateKeyHex}\n` }, carol.privateKeyHex, '$GPUFED_KEY'],
    ['--dev-key from chain.env under $GPUFED_DEV_DIR', { devKey: 'carol' }, env, carol.privateKeyHex, '--dev-key carol'],
    ['--dev-key with a dash, under --dev-dir', { devKey: 'alice-hot', devDir: '/fed' }, {}, hot.privateKeyHex, '--dev-key alice-hot'],
    ['--dev-key when $GPUFED_KEY is empty', { devKey: 'carol' }, { ...env, GPUFED_KEY: '  ' }, carol.privateKeyHex, '--dev-key carol'],
  ])('takes %s', (_, flags, e, hex, source) => {
    const key = resolveKey(flags, e, devFs);
    expect(hexOf(key)).toBe(hex);
    expect(key.source).toBe(source);
  });

  it.each([
    ['no key at all, with what to do', {}, env, NO_KEY_HELP],
    ['--dev-key beside --key-file', { devKey: 'carol', keyFile: '/keys/other.key' }, env, '--dev-key carol and --key-file /keys/other.key both name a key: pass one'],
    ['--dev-key beside $GPUFED_KEY', { devKey: 'carol' }, { ...env, GPUFED_KEY: other.privateKeyHex }, '--dev-key carol and $GPUFED_KEY both name a key: unset GPUFED_KEY or drop --dev-key'],
    ['a missing key file', { keyFile: '/keys/none.key' }, env, '--key-file /keys/none.key: no such file'],
    ['a key file that holds no key', { keyFile: '/keys/bad.key' }, env, '--key-file /keys/bad.key must hold a secp256k1 private key as 64 hex digits'],
    ['$GPUFED_KEY that is no key', {}, { GPUFED_KEY: 'abc' }, '$GPUFED_KEY must hold a secp256k1 private key as 64 hex digits'],
    ['a key outside the curve', {}, { GPUFED_KEY: 'f'.repeat(64) }, '$GPUFED_KEY is not a valid secp256k1 private key'],
    ['--dev-key with no dev federation', { devKey: 'carol', devDir: '/nowhere' }, {}, "--dev-key carol: cannot read the dev chain's /nowhere/chain.env (no such file); start the local federation with `gpufed dev up`, or pass --dev-dir <dir>"],
    ['--dev-key the chain does not have, listing those it has', { devKey: 'dave' }, env, '--dev-key dave: /fed/chain.env has no key dave; it has: carol, alice-hot'],
  ])('refuses %s as a usage error', (_, flags, e, message) => {
    let thrown: unknown;
    try {
      resolveKey(flags, e, devFs);
    } catch (err) {
      thrown = err;
    }
    expect(thrown).toBeInstanceOf(UsageError);
    expect((thrown as Error).message).toBe(message);
  });

  it('says where the dev key comes from', () => {
    expect(NO_KEY_HELP).toBe('No key: pass --key-file <file> (64 hex digits), set $GPUFED_KEY, or use --dev-key carol with a running `gpufed dev up`');
  });

  it("gives the key's address on the chain's prefix", () => {
    const key = resolveKey({ devKey: 'carol' }, env, devFs);
    expect(addressOf(key, { prefix: 'cosmos' })).toBe(carol.address);
    expect(addressOf(key, { prefix: 'wasm' })).toBe(keyAddress(key.privateKey, 'wasm'));
  });
});

describe('resolveChain', () => {
  const env = { GPUFED_DEV_DIR: '/fed' };

  it.each([
    ['--chain-rpc over everything, with the default gas price', { chainRpc: 'https://rpc.example.org' }, { ...env, GPUFED_CHAIN_RPC_URL: 'http://env:1' }, { rpcUrl: 'https://rpc.example.org', gasPrice: '0.001ustake', prefix: 'cosmos', source: '--chain-rpc' }],
    ['$GPUFED_CHAIN_RPC_URL over chain.env', {}, { ...env, GPUFED_CHAIN_RPC_URL: 'http://env:1', GPUFED_CHAIN_GAS_PRICE: '0.025uatom', GPUFED_CHAIN_PREFIX: 'wasm' }, { rpcUrl: 'http://env:1', gasPrice: '0.025uatom', prefix: 'wasm', source: '$GPUFED_CHAIN_RPC_URL' }],
    ['the dev chain from chain.env', {}, env, { rpcUrl: endpoints.rpcUrl, gasPrice: '0.001ustake', prefix: 'cosmos', source: '/fed/chain.env' }],
    ['--gas-price over $GPUFED_CHAIN_GAS_PRICE', { gasPrice: '0.5ustake' }, { ...env, GPUFED_CHAIN_GAS_PRICE: '0.025uatom' }, { rpcUrl: endpoints.rpcUrl, gasPrice: '0.5ustake', prefix: 'cosmos', source: '/fed/chain.env' }],
    ['the dev chain named by flag, with its gas price from chain.env', { chainRpc: endpoints.rpcUrl }, env, { rpcUrl: endpoints.rpcUrl, gasPrice: '0.001ustake', prefix: 'cosmos', source: '--chain-rpc' }],
  ])('takes %s', (_, flags, e, want) => {
    expect(resolveChain(flags, e, devFs)).toEqual(want);
  });

  it("takes chain.env's gas price and prefix only for the dev chain itself", () => {
    const dev = files({ '/fed/chain.env': chainEnv.replace('GPUFED_CHAIN_GAS_PRICE=0.001ustake', 'GPUFED_CHAIN_GAS_PRICE=7ustake').replace('GPUFED_CHAIN_PREFIX=cosmos', 'GPUFED_CHAIN_PREFIX=wasm') });
    expect(resolveChain({}, env, dev)).toMatchObject({ gasPrice: '7ustake', prefix: 'wasm' });
    expect(resolveChain({ chainRpc: endpoints.rpcUrl }, env, dev)).toMatchObject({ gasPrice: '7ustake', prefix: 'wasm' });
    expect(resolveChain({ chainRpc: 'https://rpc.example.org' }, env, dev)).toMatchObject({ gasPrice: '0.001ustake', prefix: 'cosmos' });
  });

  it.each([
    ['no endpoint anywhere, with what to do', {}, { GPUFED_DEV_DIR: '/nowhere' }, 'No chain endpoint: pass --chain-rpc <url>, set $GPUFED_CHAIN_RPC_URL, or start the local federation with `gpufed dev up` (/nowhere/chain.env: no such file)'],
    ['a URL that is none', { chainRpc: 'localhost:26657' }, env, '--chain-rpc localhost:26657: expected an http(s) or ws(s) URL, e.g. http://127.0.0.1:26657'],
    ['text that is no URL', { chainRpc: 'not a url' }, env, '--chain-rpc not a url: not a URL; expected the CometBFT RPC endpoint, e.g. http://127.0.0.1:26657'],
    ['a gas price without a denom', { gasPrice: '0.001' }, env, '--gas-price 0.001: expected a gas price, a decimal amount and a denom, e.g. 0.001ustake'],
    ['a bad gas price in the environment', {}, { ...env, GPUFED_CHAIN_GAS_PRICE: 'cheap' }, '$GPUFED_CHAIN_GAS_PRICE cheap: expected a gas price, a decimal amount and a denom, e.g. 0.001ustake'],
  ])('refuses %s as a usage error', (_, flags, e, message) => {
    expect(() => resolveChain(flags, e, devFs)).toThrow(new UsageError(message));
  });
});
