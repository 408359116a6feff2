import { describe, expect, it } from '@jest/globals';
import { fromBase64, toBase64 } from '@cosmjs/encoding';
import * as k8s from '@kubernetes/client-node';
import { signTenantProof } from '../tenancy/proof.js';
import { tokenSecret, type Manifest, type PolicyRule } from './credentials.js';
import {
  namespaceTakenBy,
  proofFromDocument,
  RENTER_MARKET_RULES,
  RENTER_NAMESPACE_RULES,
  renterKubeconfigYaml,
  renterTokenSubject,
  tenantClusterRules,
  tenantNameProblem,
  tenantNamespaceProblem,
  tenantObjects,
  tenantProofProblem,
  type TenantRequest,
} from './tenant.js';

const key = (fill: number) => new Uint8Array(32).fill(fill);
const signed = signTenantProof(key(7), 'dave', 'cosmos', 'a1b2c3d4');
const dave: TenantRequest = { name: 'dave', namespace: 'dave', address: signed.address, proof: signed.proof };

describe('tenantNameProblem and tenantNamespaceProblem', () => {
  it.each(['dave', 'a', 'carol-lab-2', 'a'.repeat(63)])('accept %s', (name) => {
    expect(tenantNameProblem(name)).toBeUndefined();
    expect(tenantNamespaceProblem(name)).toBeUndefined();
  });
  it.each(['Dave', 'da_ve', '-dave', 'dave-', 'da.ve', '', 'a'.repeat(64)])('reject %s as no DNS label', (name) => {
    expect(tenantNameProblem(name)).toMatch(/DNS label of at most 63/);
    expect(tenantNamespaceProblem(name)).toMatch(/DNS label/);
  });
  it.each(['default', 'kube-system', 'kube-public', 'gpufed-provider-alice', 'gpufed-system'])('reserve namespace %s for the cluster and the federation', (ns) => {
    expect(tenantNameProblem(ns)).toBeUndefined();
    expect(tenantNamespaceProblem(ns)).toMatch(/is reserved/);
  });
});

describe('tenantObjects', () => {
  const objects = tenantObjects({ ...dave, name: 'dave-lab' });
  const find = (kind: string, name?: string): Manifest => {
    const m = objects.find((o) => o.kind === kind && (name === undefined || o.metadata.name === name));
    if (!m) throw new Error(`no ${kind} ${name ?? ''}`);
    return m;
  };

  it('lists the Tenant first, then the namespace and what lives in it, then the cluster RBAC', () => {
    expect(objects.map((o) => [o.kind, o.metadata.namespace ?? '', o.metadata.name])).toEqual([
      ['Tenant', '', 'dave'],
      ['Namespace', '', 'dave'],
      ['ServiceAccount', 'dave', 'gpufed-renter'],
      ['Role', 'dave', 'gpufed-renter'],
      ['RoleBinding', 'dave', 'gpufed-renter'],
      ['ClusterRole', '', 'gpufed-renter'],
      ['ClusterRoleBinding', '', 'gpufed-renter-dave-lab'],
      ['ClusterRole', '', 'gpufed-tenant-dave-lab'],
      ['ClusterRoleBinding', '', 'gpufed-tenant-dave-lab'],
    ]);
  });

  it('labels everything of the tenant with its name, but not the ClusterRole all tenants share', () => {
    for (const o of objects.filter((x) => !(x.kind === 'ClusterRole' && x.metadata.name === 'gpufed-renter'))) {
      expect([o.kind, o.metadata.labels?.['gpufed.io/tenant']]).toEqual([o.kind, 'dave-lab']);
    }
    expect(find('ClusterRole', 'gpufed-renter').metadata.labels?.['gpufed.io/tenant']).toBeUndefined();
  });

  it('names the Tenant after the namespace and carries the payer and the proof', () => {
    expect(find('Tenant')).toMatchObject({ apiVersion: 'gpufed.io/v1alpha1', metadata: { name: 'dave' }, spec: { namespace: 'dave', address: dave.address, proof: dave.proof } });
  });

  it('binds every role to the renter service account of the namespace only', () => {
    const subjects = [{ kind: 'ServiceAccount', name: 'gpufed-renter', namespace: 'dave' }];
    expect(find('RoleBinding')).toMatchObject({ roleRef: { kind: 'Role', name: 'gpufed-renter' }, subjects });
    expect(find('ClusterRoleBinding', 'gpufed-renter-dave-lab')).toMatchObject({ roleRef: { kind: 'ClusterRole', name: 'gpufed-renter' }, subjects });
    expect(find('ClusterRoleBinding', 'gpufed-tenant-dave-lab')).toMatchObject({ roleRef: { kind: 'ClusterRole', name: 'gpufed-tenant-dave-lab' }, subjects });
    expect(find('ServiceAccount')).toMatchObject({ automountServiceAccountToken: false });
    expect(find('Role').rules).toEqual(RENTER_NAMESPACE_RULES);
    expect(find('ClusterRole', 'gpufed-renter').rules).toEqual(RENTER_MARKET_RULES);
  });

  it('reaches its own Tenant only, read-only, by name', () => {
    expect(find('ClusterRole', 'gpufed-tenant-dave-lab').rules).toEqual([{ apiGroups: ['gpufed.io'], resources: ['tenants'], resourceNames: ['dave'], verbs: ['get', 'list', 'watch'] }]);
    expect(tenantClusterRules('erin')[0]?.resourceNames).toEqual(['erin']);
  });

  // The matrix of docs/onboarding.md, as the roles grant it: resource → verbs.
  const grants = (rules: readonly PolicyRule[], resource: string) =>
    rules
      .filter((r) => r.resources.includes(resource))
      .flatMap((r) => r.verbs)
      .sort();
  it.each([
    ['computejobs', ['create', 'delete', 'get', 'list', 'patch', 'update', 'watch']],
    ['computejobs/status', ['get']],
    ['configmaps', ['get', 'list', 'watch']],
    ['events', ['get', 'list', 'watch']],
    ['secrets', []],
    ['pods', []],
    ['assignments', []],
    ['usagerecords', []],
    ['gpunodes', []],
    ['tenants', []],
    ['serviceaccounts', []],
    ['roles', []],
  ])('lets the renter do exactly this to %s in its namespace', (resource, verbs) => {
    expect(grants(RENTER_NAMESPACE_RULES, resource)).toEqual(verbs);
  });

  it.each([
    ['providers', ['get', 'list', 'watch']],
    ['gpunodes', ['get', 'list', 'watch']],
    ['providers/status', []],
    ['assignments', []],
    ['usagerecords', []],
    ['computejobs', []],
    ['tenants', []],
  ])('lets every renter read the market, exactly: %s', (resource, verbs) => {
    expect(grants(RENTER_MARKET_RULES, resource)).toEqual(verbs);
  });

  it('grants no wildcard and no write outside its own ComputeJobs', () => {
    const all = [...RENTER_NAMESPACE_RULES, ...RENTER_MARKET_RULES, ...tenantClusterRules('dave')];
    expect(all.flatMap((r) => [...r.apiGroups, ...r.resources, ...r.verbs])).not.toContain('*');
    const writes = all.filter((r) => r.verbs.some((v) => !['get', 'list', 'watch'].includes(v)));
    expect(writes.map((r) => r.resources)).toEqual([['computejobs']]);
  });
});

describe('renterTokenSubject', () => {
  it('makes generated service-account-token Secrets for the renter, labelled with the tenant', () => {
    expect(tokenSecret(renterTokenSubject({ name: 'dave-lab', namespace: 'dave' }))).toEqual({
      apiVersion: 'v1',
      kind: 'Secret',
      type: 'kubernetes.io/service-account-token',
      metadata: expect.objectContaining({
        generateName: 'gpufed-renter-token-',
        namespace: 'dave',
        labels: expect.objectContaining({ 'gpufed.io/tenant': 'dave-lab', 'gpufed.io/credential': 'renter-token' }) as unknown,
        annotations: { 'kubernetes.io/service-account.name': 'gpufed-renter' },
      }) as unknown,
    });
  });
});

describe('renterKubeconfigYaml', () => {
  it('is a kubeconfig that client-node loads: token user, context gpufed-tenant-<name>, the namespace as default', () => {
    const caData = Buffer.from('-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n').toString('base64');
    const kc = new k8s.KubeConfig();
    kc.loadFromString(renterKubeconfigYaml({ tenant: 'dave-lab', namespace: 'dave', server: 'https://registry.example.org:6443', caData, token: 'abc.def.ghi' }));
    expect(kc.getCurrentContext()).toBe('gpufed-tenant-dave-lab');
    expect(kc.getContextObject('gpufed-tenant-dave-lab')?.namespace).toBe('dave');
    expect(kc.getCurrentCluster()).toMatchObject({ server: 'https://registry.example.org:6443', caData });
    expect(kc.getCurrentUser()).toMatchObject({ token: 'abc.def.ghi' });
  });
});

describe('proofFromDocument', () => {
  const manifest = { apiVersion: 'gpufed.io/v1alpha1', kind: 'Tenant', metadata: { name: 'dave' }, spec: { namespace: 'dave', address: dave.address, proof: dave.proof } };

  it('takes the Tenant gpufed tenant prove prints, with the binding it names', () => {
    expect(proofFromDocument(manifest)).toEqual({ proof: dave.proof, namespace: 'dave', address: dave.address });
  });

  it('takes a bare proof, and only its three fields', () => {
    expect(proofFromDocument({ ...dave.proof, extra: 1 })).toEqual({ proof: dave.proof });
  });

  it.each([
    ['a Tenant without a proof', { spec: { namespace: 'dave' } }, /no spec.proof/],
    ['a proof with a number', { ...dave.proof, pubKey: 42 }, /neither a Tenant/],
    ['a list', [dave.proof], /neither a Tenant/],
    ['a string', 'hello', /neither a Tenant/],
    ['nothing', null, /neither a Tenant/],
  ])('says what is wrong with %s', (_what, doc, message) => {
    expect(proofFromDocument(doc)).toMatch(message);
  });
});

describe('tenantProofProblem', () => {
  it('accepts a proof signed for this namespace and address', () => {
    expect(tenantProofProblem(dave)).toBeUndefined();
  });

  it('rejects a signature over something else, naming the reason', () => {
    const sig = fromBase64(dave.proof.signature);
    sig[5] = (sig[5] ?? 0) ^ 1;
    expect(tenantProofProblem({ ...dave, proof: { ...dave.proof, signature: toBase64(sig) } })).toMatch(
      new RegExp(`^does not prove that ${dave.address} pays for namespace dave \\(SignatureInvalid\\)`),
    );
  });

  it("rejects another key's signature for the address", () => {
    const other = signTenantProof(key(8), 'dave', 'cosmos', 'a1b2c3d4');
    expect(tenantProofProblem({ ...dave, proof: { ...other.proof, challenge: dave.proof.challenge } })).toMatch(/PubKeyAddressMismatch/);
  });

  it('rejects a proof made for another namespace', () => {
    expect(tenantProofProblem({ ...dave, namespace: 'erin' })).toMatch(/ChallengeMismatch/);
  });
});

describe('namespaceTakenBy', () => {
  it.each([
    ['a new namespace', {}, undefined],
    ['a namespace the admin made by hand', { namespace: { team: 'x' } }, undefined],
    ['its own namespace and Tenant', { namespace: { 'gpufed.io/tenant': 'dave' }, tenant: { 'gpufed.io/tenant': 'dave' } }, undefined],
    ["a Tenant made with kubectl from the renter's proof", { tenant: {} }, undefined],
    ["a provider's namespace", { namespace: { 'gpufed.io/provider': 'alice' } }, 'provider alice'],
    ["another tenant's namespace", { namespace: { 'gpufed.io/tenant': 'erin' } }, 'tenant erin'],
    ["another tenant's Tenant", { namespace: {}, tenant: { 'gpufed.io/tenant': 'erin' } }, 'tenant erin'],
  ])('%s', (_what, labels, holder) => {
    expect(namespaceTakenBy('dave', labels)).toBe(holder);
  });
});
