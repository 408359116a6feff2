import { fromBech32, toBech32 } from '@cosmjs/encoding';
import * as k8s from '@kubernetes/client-node';
import {
  addressProblem,
  AGENT_NAMESPACE_RULES,
  agentKubeconfigYaml,
  agentTokenSecret,
  coinProblem,
  duplicateModel,
  parsePrice,
  providerClusterRules,
  providerNameProblem,
  providerObjects,
  regionProblem,
  type Manifest,
  type PolicyRule,
} from './provider.js';

const WALLET = 'cosmos187gn765gzkzqjt8sph428gl54v70c7ma2jkrvg';
const PAYOUT = 'cosmos1tlw2rnzhrexvp0rtwvtrq9527x6wpcmvcl5sk0';
const alice = { name: 'alice', wallet: WALLET, region: 'eu-west', prices: [{ model: 'NVIDIA-GeForce-RTX-4090', pricePerGpuHour: '1200000ustake' }] };

/** The same address with its last checksum character changed. */
const badChecksum = WALLET.slice(0, -1) + (WALLET.endsWith('q') ? 'p' : 'q');

describe('providerNameProblem', () => {
  it.each(['alice', 'a', 'rbac-a-1x2y', '0', 'a'.repeat(47)])('accepts %s', (name) => {
    expect(providerNameProblem(name)).toBeUndefined();
  });
  it.each([
    ['a'.repeat(48), /at most 47/],
    ['Alice', /DNS label/],
    ['-alice', /DNS label/],
    ['alice-', /DNS label/],
    ['al_ice', /DNS label/],
    ['al.ice', /DNS label/],
    ['', /DNS label/],
  ])('rejects %s', (name, message) => {
    expect(providerNameProblem(name)).toMatch(message);
  });
});

describe('regionProblem', () => {
  it.each(['eu-west', 'us1'])('accepts %s', (r) => expect(regionProblem(r)).toBeUndefined());
  it.each(['EU-West', 'eu_west', '', 'a'.repeat(64)])('rejects %s', (r) => expect(regionProblem(r)).toMatch(/DNS label/));
});

describe('addressProblem', () => {
  const data = fromBech32(WALLET, 90).data;
  it.each([
    ['a 20-byte account', WALLET],
    ['another sample', PAYOUT],
    ['a 32-byte account', toBech32('cosmos', new Uint8Array(32).fill(7))],
  ])('accepts %s', (_what, address) => {
    expect(addressProblem(address)).toBeUndefined();
  });
  it.each([
    ['a bad checksum', badChecksum, undefined, /not a valid bech32 address/],
    ['another chain', toBech32('osmo', data), undefined, /prefix "osmo", expected "cosmos"/],
    ['upper case', WALLET.toUpperCase(), undefined, /lower case/],
    ['not bech32 at all', 'alice', undefined, /not a valid bech32/],
    ['a 10-byte payload', toBech32('cosmos', new Uint8Array(10)), undefined, /10 bytes/],
    ['the default prefix on an akash chain', WALLET, 'akash', /expected "akash"/],
  ])('rejects %s', (_what, address, prefix, message) => {
    expect(addressProblem(address, prefix)).toMatch(message);
  });
});

describe('coins and prices', () => {
  it.each(['0ustake', '1200000ustake', '5ibc/27394FB092D2ECCD56123C74F36E4C1F926001CEADA9CA97EA622B25F41E5EB2'])('accepts coin %s', (c) => {
    expect(coinProblem(c)).toBeUndefined();
  });
  it.each(['1.5ustake', '-1ustake', '01ustake', 'ustake', '100', '100us', '100 ustake', ''])('rejects coin %s', (c) => {
    expect(coinProblem(c)).toMatch(/Cosmos coin/);
  });

  it('parses MODEL=COIN', () => {
    expect(parsePrice('NVIDIA-GeForce-RTX-4090=1200000ustake')).toEqual({ model: 'NVIDIA-GeForce-RTX-4090', pricePerGpuHour: '1200000ustake' });
  });
  it.each([
    ['NVIDIA-GeForce-RTX-4090', /expected MODEL=COIN/],
    ['=1200000ustake', /model ""/],
    ['NVIDIA GeForce=1ustake', /model "NVIDIA GeForce"/],
    ['NVIDIA-A100=1.2ustake', /price "1.2ustake" must be a Cosmos coin/],
  ])('rejects price %s', (text, message) => {
    expect(parsePrice(text)).toMatch(message);
  });

  it('finds a model priced twice', () => {
    expect(duplicateModel([...alice.prices, { model: 'NVIDIA-GeForce-RTX-4090', pricePerGpuHour: '1ustake' }])).toBe('NVIDIA-GeForce-RTX-4090');
    expect(duplicateModel(alice.prices)).toBeUndefined();
  });
});

describe('providerObjects', () => {
  const objects = providerObjects(alice);
  const find = (kind: string): Manifest => {
    const m = objects.find((o) => o.kind === kind);
    if (!m) throw new Error(`no ${kind}`);
    return m;
  };

  it('lists the Provider first, then the namespace and what lives in it, then the cluster RBAC', () => {
    expect(objects.map((o) => [o.kind, o.metadata.namespace ?? '', o.metadata.name])).toEqual([
      ['Provider', '', 'alice'],
      ['Namespace', '', 'gpufed-provider-alice'],
      ['ServiceAccount', 'gpufed-provider-alice', 'gpufed-agent'],
      ['Role', 'gpufed-provider-alice', 'gpufed-agent'],
      ['RoleBinding', 'gpufed-provider-alice', 'gpufed-agent'],
      ['ClusterRole', '', 'gpufed-provider-alice'],
      ['ClusterRoleBinding', '', 'gpufed-provider-alice'],
    ]);
    for (const o of objects) expect(o.metadata.labels?.['gpufed.io/provider']).toBe('alice');
  });

  it.each([
    ['defaults the payout to the wallet', {}, WALLET],
    ['keeps an explicit payout', { payout: PAYOUT }, PAYOUT],
  ])('%s', (_what, extra, payout) => {
    expect(providerObjects({ ...alice, ...extra })[0]).toMatchObject({
      apiVersion: 'gpufed.io/v1alpha1',
      spec: { wallet: WALLET, payout, region: 'eu-west', prices: alice.prices },
    });
  });

  it('binds both roles to the agent service account only', () => {
    const subject = [{ kind: 'ServiceAccount', name: 'gpufed-agent', namespace: 'gpufed-provider-alice' }];
    expect(find('RoleBinding')).toMatchObject({ roleRef: { kind: 'Role', name: 'gpufed-agent' }, subjects: subject });
    expect(find('ClusterRoleBinding')).toMatchObject({ roleRef: { kind: 'ClusterRole', name: 'gpufed-provider-alice' }, subjects: subject });
    expect(find('ServiceAccount')).toMatchObject({ automountServiceAccountToken: false });
  });

  it('scopes every cluster-wide rule to the provider itself', () => {
    const rules = find('ClusterRole').rules as PolicyRule[];
    expect(rules).toEqual(providerClusterRules('alice'));
    for (const r of rules) {
      expect(r.resourceNames).toEqual(['alice']);
      expect(r.resources).toEqual(['providers']);
    }
    expect(rules.find((r) => r.resources.includes('providers'))?.verbs).toEqual(['get', 'list', 'watch']);
  });

  // The matrix of docs/onboarding.md, as the Role grants it: resource → verbs.
  const grants = (resource: string) =>
    AGENT_NAMESPACE_RULES.filter((r) => r.resources.includes(resource))
      .flatMap((r) => r.verbs)
      .sort();
  it.each([
    ['gpunodes', ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']],
    ['gpunodes/status', ['get', 'patch', 'update']],
    ['assignments', ['get', 'list', 'watch']],
    ['assignments/status', ['get', 'patch', 'update']],
    ['usagerecords', ['create', 'get', 'list', 'watch']],
    ['usagerecords/status', []],
    ['settlements', ['create', 'get', 'list', 'watch']],
    ['settlements/status', []],
    ['configmaps', ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']],
    ['events', ['create', 'patch']],
    ['leases', ['create', 'get', 'list', 'patch', 'update', 'watch']],
    ['secrets', []],
    ['pods', []],
    ['computejobs', []],
    ['tenants', []],
    ['providers', []],
    ['roles', []],
    ['serviceaccounts', []],
  ])('lets the agent do exactly this to %s in its namespace', (resource, verbs) => {
    expect(grants(resource)).toEqual(verbs);
  });

  it('grants no wildcard anywhere', () => {
    const all = [...AGENT_NAMESPACE_RULES, ...providerClusterRules('alice')];
    expect(all.flatMap((r) => [...r.apiGroups, ...r.resources, ...r.verbs])).not.toContain('*');
    expect(find('Role').rules).toEqual(AGENT_NAMESPACE_RULES);
  });
});

describe('agentTokenSecret', () => {
  it('is a generated service-account-token Secret for the agent, labelled for rotation', () => {
    expect(agentTokenSecret('alice')).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/service-account-token',
      metadata: expect.objectContaining({
        generateName: 'gpufed-agent-token-',
        namespace: 'gpufed-provider-alice',
        labels: expect.objectContaining({ 'gpufed.io/provider': 'alice', 'gpufed.io/credential': 'agent-token' }) as unknown,
        annotations: { 'kubernetes.io/service-account.name': 'gpufed-agent' },
      }) as unknown,
    });
  });
});

describe('agentKubeconfigYaml', () => {
  it('is a kubeconfig that client-node loads: token user, the registry server, the provider namespace', () => {
    const caData = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64');
    const kc = new k8s.KubeConfig();
    kc.loadFromString(agentKubeconfigYaml({ provider: 'alice', server: 'https://registry.example.org:6443', caData, token: 'abc.def.ghi' }));
    expect(kc.getCurrentContext()).toBe('gpufed-provider-alice');
    expect(kc.getContextObject('gpufed-provider-alice')?.namespace).toBe('gpufed-provider-alice');
    expect(kc.getCurrentCluster()).toMatchObject({ server: 'https://registry.example.org:6443', caData });
    expect(kc.getCurrentUser()).toMatchObject({ token: 'abc.def.ghi' });
  });
});
