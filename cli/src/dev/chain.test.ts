import { DirectSecp256k1Wallet } from '@cosmjs/proto-signing';
import { fromHex } from '@cosmjs/encoding';
import {
  AKASH_CHAIN,
  chainConfig,
  CHAIN_CONFIG,
  CHAIN_DENOM,
  CHAIN_ID,
  CHAIN_MIN_GAS_PRICE,
  CHAIN_PREFIX,
  chainComponent,
  chainEnvFile,
  devKey,
  genesisAccountsJson,
  parseCoins,
  portsNeededForChain,
  setTomlValues,
  statusHeight,
  type ChainEndpoints,
} from './chain.js';
import { devPrivateKey } from './wallets.js';

const ports = Array.from({ length: portsNeededForChain() }, (_, i) => 30000 + i);
const input = { home: '/tmp/fed/chain', binary: '/cache/bin/wasmd', log: '/tmp/fed/logs/chain.log' };
const arg = (args: string[], flag: string) => args.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);

describe('chainComponent', () => {
  const { component, endpoints } = chainComponent(input, ports);

  it('plans `wasmd start` on the given home, at stage 0, healthy when CometBFT answers /status', () => {
    expect(component).toMatchObject({ name: 'chain', binary: input.binary, log: input.log, stage: 0 });
    expect(component.args[0]).toBe('start');
    expect(arg(component.args, '--home')).toBe(input.home);
    expect(component.health).toEqual({ kind: 'http', url: 'http://127.0.0.1:30000/status' });
  });

  it('puts RPC, P2P, gRPC and the REST API on the given loopback ports, each once', () => {
    expect(endpoints).toEqual<ChainEndpoints>({
      rpcUrl: 'http://127.0.0.1:30000',
      p2pAddress: '127.0.0.1:30001',
      grpcAddress: '127.0.0.1:30002',
      restUrl: 'http://127.0.0.1:30003',
    });
    expect(arg(component.args, '--rpc.laddr')).toBe('tcp://127.0.0.1:30000');
    expect(arg(component.args, '--p2p.laddr')).toBe('tcp://127.0.0.1:30001');
    expect(arg(component.args, '--grpc.address')).toBe('127.0.0.1:30002');
    expect(arg(component.args, '--api.address')).toBe('tcp://127.0.0.1:30003');
    const listening = component.args.flatMap((a) => /:(\d+)$/.exec(a)?.[1] ?? []);
    expect(listening.sort()).toEqual(['30000', '30001', '30002', '30003']);
    expect(component.args.join(' ')).not.toMatch(/0\.0\.0\.0|localhost/);
  });

  it('turns pprof off, enables gRPC and the API, and asks a non-zero gas price in the one denom', () => {
    expect(arg(component.args, '--rpc.pprof_laddr')).toBe('');
    expect(arg(component.args, '--grpc.enable')).toBe('true');
    expect(arg(component.args, '--api.enable')).toBe('true');
    expect(arg(component.args, '--minimum-gas-prices')).toBe(CHAIN_MIN_GAS_PRICE);
    expect(CHAIN_MIN_GAS_PRICE).toMatch(new RegExp(`^0\\.0*[1-9][0-9]*${CHAIN_DENOM}$`));
    expect(arg(component.args, '--log_level')).toBe('warn');
  });

  it('refuses too few ports', () => {
    expect(() => chainComponent(input, ports.slice(1))).toThrow(/3 ports given, 4 needed/);
  });
});

const configToml = `# top comment
proxy_app = "tcp://127.0.0.1:26658"
moniker = "node"

[rpc]
laddr = "tcp://127.0.0.1:26657"
grpc_laddr = ""
pprof_laddr = "localhost:6060"
unsafe = false

[p2p]
laddr = "tcp://0.0.0.0:26656"
pex = true

[consensus]
timeout_propose = "3s"
timeout_propose_delta = "500ms"
timeout_prevote = "1s"
timeout_precommit = "1s"
timeout_commit = "5s"

[tx_index]
indexer = "kv"

[instrumentation]
prometheus = false
prometheus_listen_addr = ":26660"
`;

describe('setTomlValues', () => {
  it('sets each key in its own table only, formatting strings and booleans', () => {
    const out = setTomlValues(configToml, { rpc: { laddr: 'tcp://127.0.0.1:1', pprof_laddr: '' }, p2p: { pex: false }, '': { moniker: 'x' } });
    expect(out).toContain('[rpc]\nladdr = "tcp://127.0.0.1:1"\ngrpc_laddr = ""\npprof_laddr = ""\n');
    expect(out).toContain('[p2p]\nladdr = "tcp://0.0.0.0:26656"\npex = false\n');
    expect(out).toContain('moniker = "x"');
    expect(out.split('\n')).toHaveLength(configToml.split('\n').length);
  });

  it('fails on a key the file does not have, naming it', () => {
    expect(() => setTomlValues(configToml, { consensus: { timeout_vote: '1s' }, '': { nope: 1 } })).toThrow('Config keys not found: consensus.timeout_vote, nope');
  });

  it('applies the dev config: loopback, no pprof, fast blocks, kv index', () => {
    const out = setTomlValues(configToml, CHAIN_CONFIG['config.toml']);
    expect(out).not.toMatch(/0\.0\.0\.0|localhost/);
    expect(out).toContain('timeout_commit = "500ms"');
    expect(out).toContain('pprof_laddr = ""');
    expect(out).toContain('indexer = "kv"');
    expect(out).toContain('unsafe = true');
    // The second profile's node indexes nothing, as many public nodes: lookups there scan blocks.
    expect(setTomlValues(configToml, chainConfig(AKASH_CHAIN)['config.toml'])).toContain('indexer = "null"');
    const appToml = '# app\nminimum-gas-prices = ""\n[telemetry]\nenabled = false\n[api]\nenable = false\naddress = "tcp://localhost:1317"\n[grpc]\nenable = true\naddress = "localhost:9090"\n';
    const app = setTomlValues(appToml, CHAIN_CONFIG['app.toml']);
    expect(app).toContain(`minimum-gas-prices = "${CHAIN_MIN_GAS_PRICE}"`);
    expect(app).toContain('[api]\nenable = true\naddress = "tcp://127.0.0.1:1317"');
    expect(app).not.toContain('localhost');
    const client = setTomlValues('chain-id = ""\nkeyring-backend = "os"\n', CHAIN_CONFIG['client.toml']);
    expect(client).toBe(`chain-id = "${CHAIN_ID}"\nkeyring-backend = "test"\n`);
  });
});

describe('parseCoins and genesisAccountsJson', () => {
  it('turns SDK coin strings into genesis JSON coins, amounts kept exact', () => {
    expect(parseCoins('5ustake, 18446744073709551617uatom')).toEqual([
      { denom: 'ustake', amount: '5' },
      { denom: 'uatom', amount: '18446744073709551617' },
    ]);
    expect(JSON.parse(genesisAccountsJson([{ address: 'cosmos1a', coins: '10ustake' }]))).toEqual([{ address: 'cosmos1a', coins: [{ denom: 'ustake', amount: '10' }] }]);
  });

  it.each(['', 'ustake', '1.5ustake', '-1ustake', '1u', '1ustake,2ustake'])('rejects %j', (coins) => {
    expect(() => parseCoins(coins)).toThrow();
  });

  it('rejects an address given twice', () => {
    expect(() => genesisAccountsJson([{ address: 'cosmos1a', coins: '1ustake' }, { address: 'cosmos1a', coins: '2ustake' }])).toThrow(/cosmos1a given twice/);
  });
});

describe('devKey', () => {
  it('gives the address cosmjs signs as for the same dev private key', async () => {
    const k = devKey('renter', 'tenant/carol');
    expect(k.privateKeyHex).toBe(Buffer.from(devPrivateKey('tenant/carol')).toString('hex'));
    const [account] = await (await DirectSecp256k1Wallet.fromKey(fromHex(k.privateKeyHex), CHAIN_PREFIX)).getAccounts();
    expect(k.address).toBe(account?.address);
    expect(k.address).toMatch(/^cosmos1[02-9ac-hj-np-z]{38}$/);
  });
});

describe('chainEnvFile', () => {
  const endpoints: ChainEndpoints = { rpcUrl: 'http://127.0.0.1:1', restUrl: 'http://127.0.0.1:4', grpcAddress: '127.0.0.1:3', p2pAddress: '127.0.0.1:2' };
  const env = (text: string): Record<string, string> =>
    Object.fromEntries(text.split('\n').filter((l) => l && !l.startsWith('#')).map((l): [string, string] => [l.slice(0, l.indexOf('=')), l.slice(l.indexOf('=') + 1)]));

  it('writes the endpoints, chain id, denom and each dev key as KEY=value lines', () => {
    const hot = devKey('hot-wallet', 'settlement/hot');
    const vars = env(chainEnvFile({ endpoints, home: '/tmp/fed/chain', keys: [hot] }));
    expect(vars).toEqual({
      GPUFED_CHAIN_ID: CHAIN_ID,
      GPUFED_CHAIN_DENOM: 'ustake',
      GPUFED_CHAIN_PREFIX: 'cosmos',
      GPUFED_CHAIN_GAS_PRICE: CHAIN_MIN_GAS_PRICE,
      GPUFED_CHAIN_RPC_URL: 'http://127.0.0.1:1',
      GPUFED_CHAIN_REST_URL: 'http://127.0.0.1:4',
      GPUFED_CHAIN_GRPC_ADDRESS: '127.0.0.1:3',
      GPUFED_CHAIN_HOME: '/tmp/fed/chain',
      GPUFED_CHAIN_KEYS: 'hot-wallet',
      GPUFED_CHAIN_KEY_HOT_WALLET_ADDRESS: hot.address,
      GPUFED_CHAIN_KEY_HOT_WALLET_PRIVATE_KEY: hot.privateKeyHex,
    });
  });

  it('rejects key names a shell variable cannot carry, or that collide', () => {
    const k = devKey('a', 'x');
    expect(() => chainEnvFile({ endpoints, home: '/h', keys: [{ ...k, name: 'bad name' }] })).toThrow(/must match/);
    expect(() => chainEnvFile({ endpoints, home: '/h', keys: [{ ...k, privateKeyHex: 'zz' }] })).toThrow(/64 lower-case hex/);
    expect(() => chainEnvFile({ endpoints, home: '/h', keys: [k, k] })).toThrow(/same variable GPUFED_CHAIN_KEY_A/);
  });
});

describe('statusHeight', () => {
  it('reads latest_block_height from a CometBFT /status body', () => {
    expect(statusHeight({ jsonrpc: '2.0', id: -1, result: { sync_info: { latest_block_height: '42', catching_up: false } } })).toBe(42);
  });

  it.each([null, {}, { result: { sync_info: { latest_block_height: 42 } } }, { error: { code: -32603 } }])('rejects %j', (body) => {
    expect(() => statusHeight(body)).toThrow(/latest_block_height/);
  });
});

