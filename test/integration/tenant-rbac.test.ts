// A renter's credentials on the real registry API server: two tenants onboarded with
// `gpufed registry add-tenant` (dave from `gpufed tenant prove` piped in, erin from the proof's
// three flags, in a namespace named unlike the tenant), then dave's kubeconfig (real token
// authentication, no impersonation) is put through the matrix of docs/onboarding.md as access
// reviews, real requests and kubectl. Also the CLI's checks (a bad signature exits 2 and creates
// nothing), idempotency, and the dev federation's own tenant carol.
import { randomBytes } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { toHex } from '@cosmjs/encoding';
import * as k8s from '@kubernetes/client-node';
import { binDir, repoRoot } from '../../cli/src/dev/paths.js';
import { DEV_TENANT, devTenantRequest, tenantKeyPath, tenantKubeconfigPath } from '../../cli/src/dev/tenants.js';
import { TenantResource, type Tenant } from '../../operator/src/api/index.js';
import { Kube } from '../../operator/src/kube/client.js';
import { signTenantProof, verifyTenantProof } from '../../operator/src/tenancy/proof.js';
import { validComputeJob } from '../fixtures/computejobs.js';
import { eventually, kubeConfig, kubeconfigOf, run, testDir } from '../support/federation.js';
import { ALL_VERBS, allowedVerbs, checks, cluster, core, gpufed, MERGE, request, whoAmI } from '../support/requests.js';

const suffix = randomBytes(3).toString('hex');
const D = `dave-${suffix}`; // tenant dave, namespace dave-<suffix>
const E = `erin-${suffix}`; // tenant erin, in namespace erin-lab-<suffix>
const nsD = D;
const nsE = `erin-lab-${suffix}`;
const X = `mallory-${suffix}`; // never onboarded: bad input must create nothing for it

const dir = mkdtempSync(join(tmpdir(), 'gpufed-tenant-rbac-'));
const kubeconfigFile = (t: string) => join(dir, `${t}.kubeconfig`);
const admin = () => kubeConfig('registry');
const adminKube = () => new Kube(admin(), 'gpufed-test');
const cli = (args: string[], input?: string) => run(process.execPath, [join(repoRoot(), 'dist/cli/src/gpufed.js'), ...args], input === undefined ? {} : { input });
const kubectlAs = (kubeconfig: string, args: string[], input?: string) => run(join(binDir(), 'kubectl'), ['--kubeconfig', kubeconfig, ...args], input === undefined ? {} : { input });

function renterOf(file: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(file);
  return kc;
}
const dave = () => renterOf(kubeconfigFile(D));

// dave's payer key lives in a file, as a renter keeps it; erin's proof is signed here.
const daveKeyFile = join(dir, 'dave.key');
const erinSigned = signTenantProof(randomBytes(32), nsE);
let daveProof = '';
/** What the first add-tenant of dave printed (the table). */
let daveOnboarded = '';

const addTenant = (name: string, args: string[], input?: string) => cli(['registry', 'add-tenant', name, '--kubeconfig', kubeconfigOf('registry'), ...args], input);
const erinArgs = ['--namespace', nsE, '--address', erinSigned.address, '--challenge', erinSigned.proof.challenge, '--signature', erinSigned.proof.signature, '--pub-key', erinSigned.proof.pubKey];

const tenantsPath = '/apis/gpufed.io/v1alpha1/tenants';
const configMap = (ns: string, name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns }, data: { 'log.txt': 'epoch 1 loss 0.5\n' } });
const secret = (ns: string, name: string) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: ns }, stringData: { k: 'v' } });
const pod = (ns: string, name: string) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });
const bySelector = (name: string) => `fieldSelector=${encodeURIComponent(`metadata.name=${name}`)}`;

beforeAll(async () => {
  writeFileSync(daveKeyFile, `${toHex(randomBytes(32))}\n`, { mode: 0o600 });
  const proved = await cli(['tenant', 'prove', '--namespace', nsD, '--key-file', daveKeyFile, '-o', 'json']);
  if (proved.code !== 0) throw new Error(`tenant prove failed (${proved.code}): ${proved.stderr}`);
  daveProof = proved.stdout;
  for (const [name, args, input] of [
    [D, ['--proof', '-', '--kubeconfig-out', kubeconfigFile(D)], daveProof],
    [E, [...erinArgs, '--kubeconfig-out', kubeconfigFile(E)], undefined],
  ] as const) {
    const r = await addTenant(name, [...args], input);
    if (r.code !== 0) throw new Error(`add-tenant ${name} failed (${r.code}): ${r.stderr}`);
    if (name === D) daveOnboarded = r.stdout;
  }
  // What the registry relays into the tenants' namespaces, and what dave must not reach.
  const kube = adminKube();
  for (const m of [validComputeJob('e-job', nsE), configMap(nsE, 'e-logs'), configMap(nsD, 'd-logs'), secret(nsD, 'd-secret')]) await kube.apply(m);
});

afterAll(async () => {
  process.stderr.write(`tenant-rbac: ${checks.accessReviews} SelfSubjectAccessReviews and ${checks.requests} real requests with renter tokens\n`);
  const kube = adminKube();
  const rbac = kube.api(k8s.RbacAuthorizationV1Api);
  for (const ns of [nsD, nsE]) await kube.deleteCustom(TenantResource, ns);
  for (const t of [D, E]) {
    await rbac.deleteClusterRoleBinding({ name: `gpufed-renter-${t}` }).catch(() => undefined);
    await rbac.deleteClusterRoleBinding({ name: `gpufed-tenant-${t}` }).catch(() => undefined);
    await rbac.deleteClusterRole({ name: `gpufed-tenant-${t}` }).catch(() => undefined);
  }
  for (const ns of [nsD, nsE]) await kube.api(k8s.CoreV1Api).deleteNamespace({ name: ns }).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe('gpufed registry add-tenant', () => {
  it('says what it created and where the kubeconfig went, without the token', () => {
    expect(daveOnboarded).toMatch(new RegExp(`^KIND\\s+NAMESPACE\\s+NAME\\s+RESULT\\nTenant\\s+-\\s+${nsD}\\s+created\\n`));
    expect(daveOnboarded).toMatch(new RegExp(`ClusterRoleBinding\\s+-\\s+gpufed-tenant-${D}\\s+created`));
    expect(daveOnboarded).toMatch(new RegExp(`Wrote the renter's kubeconfig to ${kubeconfigFile(D)} \\(new token Secret gpufed-renter-token-\\w+, server https://127\\.0\\.0\\.1:\\d+, context gpufed-tenant-${D}, namespace ${nsD}\\)`));
    expect(daveOnboarded).not.toContain(dave().getCurrentUser()?.token);
  });

  it('creates the Tenant named after the namespace, with the payer and a proof that verifies', async () => {
    const kube = adminKube();
    const daves = await kube.getCustom<Tenant>(TenantResource, nsD);
    const prove = JSON.parse(daveProof) as { spec: Tenant['spec'] };
    expect(daves).toMatchObject({ metadata: { name: nsD, labels: { 'gpufed.io/tenant': D } }, spec: prove.spec });
    const erins = await kube.getCustom<Tenant>(TenantResource, nsE);
    expect(erins).toMatchObject({ metadata: { name: nsE, labels: { 'gpufed.io/tenant': E } }, spec: { namespace: nsE, address: erinSigned.address, proof: erinSigned.proof } });
    for (const t of [daves, erins]) expect(verifyTenantProof(t as Tenant)).toEqual({ valid: true });
    const ns = await kube.api(k8s.CoreV1Api).readNamespace({ name: nsE });
    expect(ns.metadata?.labels?.['gpufed.io/tenant']).toBe(E);
  });

  it('writes a private kubeconfig whose token authenticates as the renter service account of the namespace', async () => {
    for (const [t, ns] of [
      [D, nsD],
      [E, nsE],
    ] as const) {
      expect(statSync(kubeconfigFile(t)).mode & 0o777).toBe(0o600);
      const kc = renterOf(kubeconfigFile(t));
      expect(kc.getCurrentContext()).toBe(`gpufed-tenant-${t}`);
      expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBe(ns);
      expect(await whoAmI(kc)).toBe(`system:serviceaccount:${ns}:gpufed-renter`);
    }
  });

  it('changes nothing when run again with the same proof, and re-issues the same token', async () => {
    const token = dave().getCurrentUser()?.token;
    const r = await addTenant(D, ['--proof', '-', '--kubeconfig-out', kubeconfigFile(D), '-o', 'json'], daveProof);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { objects: { kind: string; name: string; result: string }[]; tokenCreated: boolean; address: string; kubeconfig?: string; kubeconfigPath: string };
    expect(out.objects.map((o) => `${o.kind} ${o.name}: ${o.result}`)).toEqual([
      `Tenant ${nsD}: unchanged`,
      `Namespace ${nsD}: unchanged`,
      'ServiceAccount gpufed-renter: unchanged',
      'Role gpufed-renter: unchanged',
      'RoleBinding gpufed-renter: unchanged',
      'ClusterRole gpufed-renter: unchanged',
      `ClusterRoleBinding gpufed-renter-${D}: unchanged`,
      `ClusterRole gpufed-tenant-${D}: unchanged`,
      `ClusterRoleBinding gpufed-tenant-${D}: unchanged`,
    ]);
    expect(out).toMatchObject({ tokenCreated: false, kubeconfigPath: kubeconfigFile(D), address: (JSON.parse(daveProof) as Tenant).spec.address });
    expect(out.kubeconfig).toBeUndefined(); // the token is written to the file only
    expect(dave().getCurrentUser()?.token).toBe(token);
  });
});

describe("what a renter's credentials may do", () => {
  // The matrix of docs/onboarding.md: resource → the verbs allowed in its namespace, every other denied.
  it.each([
    ['gpufed.io', 'computejobs', '', ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']],
    ['gpufed.io', 'computejobs', 'status', ['get']],
    ['', 'configmaps', '', ['get', 'list', 'watch']],
    ['', 'events', '', ['get', 'list', 'watch']],
    ['events.k8s.io', 'events', '', ['get', 'list', 'watch']],
    ['gpufed.io', 'gpunodes', '', ['get', 'list', 'watch']], // the market's, cluster-wide
    ['gpufed.io', 'assignments', '', []],
    ['gpufed.io', 'usagerecords', '', []],
    ['', 'secrets', '', []],
    ['', 'pods', '', []],
    ['', 'serviceaccounts', '', []],
    ['', 'serviceaccounts', 'token', []],
    ['rbac.authorization.k8s.io', 'rolebindings', '', []],
    ['coordination.k8s.io', 'leases', '', []],
  ])('access review in its namespace: %s %s %s', async (group, resource, subresource, verbs) => {
    expect(await allowedVerbs(dave(), ALL_VERBS, { group, resource, subresource, namespace: nsD })).toEqual(verbs);
  });

  it.each([
    ['its own Tenant', 'tenants', nsD, '', ['get', 'list', 'watch']],
    ['its own Tenant status', 'tenants', nsD, 'status', []],
    ["another tenant's Tenant", 'tenants', nsE, '', []],
    ['any Tenant, unnamed (a plain list or a create)', 'tenants', undefined, '', []],
    ['Providers', 'providers', undefined, '', ['get', 'list', 'watch']],
    ['Provider status', 'providers', undefined, 'status', []],
  ])('access review on %s', async (_what, resource, name, subresource, verbs) => {
    expect(await allowedVerbs(dave(), ALL_VERBS, { group: 'gpufed.io', resource, subresource, ...(name ? { name } : {}) })).toEqual(verbs);
  });

  it('creates, lists, watches, reads, patches and deletes a ComputeJob in its namespace', async () => {
    const kc = dave();
    expect((await request(kc, 'POST', gpufed(nsD, 'computejobs'), validComputeJob('train', nsD))).status).toBe(201);
    const listed = await request(kc, 'GET', gpufed(nsD, 'computejobs'));
    expect(listed.status).toBe(200);
    expect(listed.body?.items).toHaveLength(1);
    expect((await request(kc, 'GET', `${gpufed(nsD, 'computejobs')}?watch=true&timeoutSeconds=1`)).status).toBe(200);
    expect((await request(kc, 'GET', gpufed(nsD, 'computejobs', 'train'))).status).toBe(200);
    expect((await request(kc, 'GET', gpufed(nsD, 'computejobs', 'train', 'status'))).status).toBe(200);
    expect((await request(kc, 'PATCH', gpufed(nsD, 'computejobs', 'train'), { metadata: { labels: { experiment: 'a' } } }, MERGE)).status).toBe(200);
    expect((await request(kc, 'PATCH', gpufed(nsD, 'computejobs', 'train', 'status'), { status: { phase: 'Succeeded' } }, MERGE)).status).toBe(403);
    expect((await request(kc, 'DELETE', gpufed(nsD, 'computejobs', 'train'))).status).toBe(200);
  });

  it('reads the job logs and events the registry relays into its namespace, and writes neither', async () => {
    const kc = dave();
    expect((await request(kc, 'GET', core(nsD, 'configmaps', 'd-logs'))).status).toBe(200);
    expect((await request(kc, 'GET', core(nsD, 'configmaps'))).status).toBe(200);
    expect((await request(kc, 'GET', core(nsD, 'events'))).status).toBe(200);
    expect((await request(kc, 'GET', `/apis/events.k8s.io/v1/namespaces/${nsD}/events`)).status).toBe(200);
    expect((await request(kc, 'POST', core(nsD, 'configmaps'), configMap(nsD, 'forged'))).status).toBe(403);
    expect((await request(kc, 'PATCH', core(nsD, 'configmaps', 'd-logs'), { data: { 'log.txt': 'forged' } }, MERGE)).status).toBe(403);
  });

  it('reads its own Tenant, by name and by field selector, and the market', async () => {
    const kc = dave();
    const own = await request(kc, 'GET', cluster('tenants', nsD));
    expect(own.status).toBe(200);
    expect(own.body?.metadata?.name).toBe(nsD);
    expect((await request(kc, 'GET', `${tenantsPath}?${bySelector(nsD)}`)).body?.items).toHaveLength(1);
    expect((await request(kc, 'GET', `${tenantsPath}?watch=true&${bySelector(nsD)}`)).status).toBe(200);
    // A resource nobody read yet may answer 429 "storage is (re)initializing" for a moment, and
    // clients retry it (client-go honours Retry-After); so do these reads.
    const statusOf = (path: string) => eventually(`GET ${path} not 429`, async () => {
      const st = (await request(kc, 'GET', path)).status;
      return st === 429 ? undefined : st;
    }, 10_000);
    expect(await statusOf(cluster('providers'))).toBe(200);
    expect(await statusOf(cluster('gpunodes'))).toBe(200);
  });

  it('works with kubectl: apply, get and wait in its namespace as the default', async () => {
    const f = kubeconfigFile(D);
    const applied = await kubectlAs(f, ['apply', '-f', '-'], JSON.stringify({ ...validComputeJob('via-kubectl', nsD), metadata: { name: 'via-kubectl' } }));
    expect(applied.stderr).toBe('');
    expect(applied.stdout).toMatch(/computejob.gpufed.io\/via-kubectl created/);
    expect((await kubectlAs(f, ['get', 'computejobs', '-o', 'name'])).stdout.trim()).toBe('computejob.gpufed.io/via-kubectl');
    // kubectl wait lists and watches by field selector: the Tenant rule's resourceNames allow exactly that.
    const waited = await kubectlAs(f, ['wait', `tenant/${nsD}`, `--for=jsonpath={.spec.namespace}=${nsD}`, '--timeout=10s']);
    expect(waited.stderr).toBe('');
    expect(waited.code).toBe(0);
    expect((await kubectlAs(f, ['delete', 'computejob', 'via-kubectl'])).code).toBe(0);
    const denied = await kubectlAs(f, ['get', 'computejobs', '-n', nsE]);
    expect(denied.code).toBe(1);
    expect(denied.stderr).toMatch(/forbidden: User "system:serviceaccount:\S+:gpufed-renter" cannot list resource "computejobs"/);
  });
});

describe("what a renter's credentials may not do", () => {
  it.each([
    ['gpufed.io', 'computejobs'],
    ['', 'configmaps'],
    ['', 'events'],
    ['', 'secrets'],
    ['', 'pods'],
  ])("access review in another tenant's namespace: %s %s", async (group, resource) => {
    expect(await allowedVerbs(dave(), ALL_VERBS, { group, resource, namespace: nsE })).toEqual([]);
  });

  it.each([
    ['', 'namespaces'],
    ['', 'nodes'],
    ['rbac.authorization.k8s.io', 'clusterroles'],
    ['rbac.authorization.k8s.io', 'clusterrolebindings'],
    ['apiextensions.k8s.io', 'customresourcedefinitions'],
    ['gpufed.io', 'assignments'],
    ['gpufed.io', 'usagerecords'],
  ])('access review on %s %s, cluster-wide', async (group, resource) => {
    expect(await allowedVerbs(dave(), ALL_VERBS, { group, resource })).toEqual([]);
  });

  it.each(([
    // Another tenant's namespace: nothing at all.
    ['list ComputeJobs of another tenant', 'GET', gpufed(nsE, 'computejobs')],
    ['get a ComputeJob of another tenant', 'GET', gpufed(nsE, 'computejobs', 'e-job')],
    ['watch ComputeJobs of another tenant', 'GET', `${gpufed(nsE, 'computejobs')}?watch=true`],
    ['create a ComputeJob for another tenant', 'POST', gpufed(nsE, 'computejobs'), validComputeJob('intruder', nsE)],
    ['delete a ComputeJob of another tenant', 'DELETE', gpufed(nsE, 'computejobs', 'e-job')],
    ["read another tenant's job logs", 'GET', core(nsE, 'configmaps', 'e-logs')],
    ["list another tenant's events", 'GET', core(nsE, 'events')],
    ['list ComputeJobs in every namespace', 'GET', cluster('computejobs')],
    ['watch ComputeJobs in every namespace', 'GET', `${cluster('computejobs')}?watch=true`],
    // Secrets: none, its own namespace's included.
    ['list Secrets in its namespace', 'GET', core(nsD, 'secrets')],
    ['get a Secret in its namespace', 'GET', core(nsD, 'secrets', 'd-secret')],
    ['create a Secret in its namespace', 'POST', core(nsD, 'secrets'), secret(nsD, 'mine')],
    ['list Secrets of another tenant', 'GET', core(nsE, 'secrets')],
    // The registry's and the providers' objects.
    ['list Assignments in every namespace', 'GET', cluster('assignments')],
    ['list Assignments in its namespace', 'GET', gpufed(nsD, 'assignments')],
    ["list Assignments in a provider's namespace", 'GET', gpufed('gpufed-provider-alice', 'assignments')],
    ['list UsageRecords in every namespace', 'GET', cluster('usagerecords')],
    ["create a GpuNode in a provider's namespace", 'POST', gpufed('gpufed-provider-alice', 'gpunodes'), { apiVersion: 'gpufed.io/v1alpha1', kind: 'GpuNode', metadata: { name: 'fake' } }],
    // Tenants: its own read-only, no other.
    ["get another tenant's Tenant", 'GET', cluster('tenants', nsE)],
    ['list Tenants', 'GET', tenantsPath],
    ["list another tenant's Tenant by field selector", 'GET', `${tenantsPath}?${bySelector(nsE)}`],
    ['patch its own Tenant', 'PATCH', cluster('tenants', nsD), { spec: { address: erinSigned.address } }],
    ['verify its own Tenant (status)', 'PATCH', cluster('tenants', nsD, 'status'), { status: { verifiedAddress: erinSigned.address } }],
    ['delete its own Tenant', 'DELETE', cluster('tenants', nsD)],
    ['create a Tenant', 'POST', tenantsPath, { apiVersion: 'gpufed.io/v1alpha1', kind: 'Tenant', metadata: { name: X }, spec: { namespace: X, address: erinSigned.address, proof: erinSigned.proof } }],
    // The market: read-only.
    ['patch a Provider', 'PATCH', cluster('providers', 'alice'), { spec: { cordoned: true } }],
    ['create a Provider', 'POST', cluster('providers'), { apiVersion: 'gpufed.io/v1alpha1', kind: 'Provider', metadata: { name: X }, spec: {} }],
    // Anything else.
    ['create a Pod in its namespace', 'POST', core(nsD, 'pods'), pod(nsD, 'mine')],
    ['mint itself a token', 'POST', `${core(nsD, 'serviceaccounts', 'gpufed-renter')}/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: {} }],
    ['bind itself a role', 'POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${nsD}/rolebindings`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'x' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'admin' }, subjects: [{ kind: 'ServiceAccount', name: 'gpufed-renter', namespace: nsD }] }],
    ['list Namespaces', 'GET', '/api/v1/namespaces'],
    ['delete its own Namespace', 'DELETE', `/api/v1/namespaces/${nsD}`],
  ] as [string, string, string, unknown?][]).map(([what, method, path, body]) => [what, { method, path, body }] as const))('cannot %s (403)', async (_what, { method, path, body }) => {
    const r = await request(dave(), method, path, body, method === 'PATCH' ? MERGE : 'application/json');
    expect({ status: r.status, message: r.body?.message }).toMatchObject({ status: 403, message: expect.stringContaining(`system:serviceaccount:${nsD}:gpufed-renter`) as unknown });
  });

  it("cannot read its own token's Secret", async () => {
    const tokens = await adminKube().api(k8s.CoreV1Api).listNamespacedSecret({ namespace: nsD, labelSelector: 'gpufed.io/credential=renter-token' });
    expect(tokens.items).toHaveLength(1);
    expect((await request(dave(), 'GET', core(nsD, 'secrets', tokens.items[0]?.metadata?.name ?? 'missing'))).status).toBe(403);
  });

  it("left the other tenant's objects as they were", async () => {
    const kc = admin();
    for (const path of [gpufed(nsE, 'computejobs', 'e-job'), core(nsE, 'configmaps', 'e-logs'), cluster('tenants', nsE), cluster('tenants', nsD)]) {
      expect([path, (await request(kc, 'GET', path)).status]).toEqual([path, 200]);
    }
    expect((await request(kc, 'GET', gpufed(nsE, 'computejobs', 'intruder'))).status).toBe(404);
    expect((await request(kc, 'GET', cluster('tenants', X))).status).toBe(404);
    expect((await request(kc, 'GET', cluster('tenants', nsD))).body).toMatchObject({ spec: { address: (JSON.parse(daveProof) as Tenant).spec.address } });
  });
});

describe('gpufed registry add-tenant with bad input', () => {
  const out = () => ['--kubeconfig-out', kubeconfigFile(X)];
  const forX = signTenantProof(randomBytes(32), X);
  const flags = (p: { address?: string; challenge?: string; signature?: string; pubKey?: string }) => [
    '--address', p.address ?? forX.address,
    '--challenge', p.challenge ?? forX.proof.challenge,
    '--signature', p.signature ?? forX.proof.signature,
    '--pub-key', p.pubKey ?? forX.proof.pubKey,
  ];
  const flipped = (() => {
    const sig = Buffer.from(forX.proof.signature, 'base64');
    sig[0] = (sig[0] ?? 0) ^ 1;
    return sig.toString('base64');
  })();

  it.each([
    ['a signature that does not verify', X, flags({ signature: flipped }), /--signature: does not prove that cosmos1\S+ pays for namespace mallory-\S+ \(SignatureInvalid\): proof\.signature does not verify/],
    ["another key's public key", X, flags({ pubKey: erinSigned.proof.pubKey }), /\(PubKeyAddressMismatch\): proof\.pubKey belongs to cosmos1\S+, not cosmos1/],
    ["a proof for another namespace (erin's)", X, erinArgs.slice(2), /\(ChallengeMismatch\)/],
    ['a signature that is not base64 of 64 bytes', X, flags({ signature: 'c2hvcnQ=' }), /\(Malformed\): proof\.signature is 5 bytes, not 64/],
    ['no proof', X, ['--address', forX.address], /the payer's proof is required/],
    ['both --proof and --signature', X, ['--proof', '-', ...flags({})], /option '--proof <file\|->' cannot be used with option/],
    ['a reserved namespace', X, [...flags({}), '--namespace', 'kube-system'], /--namespace kube-system: is reserved/],
    ['a bad address checksum', X, flags({ address: `${forX.address.slice(0, -1)}${forX.address.endsWith('q') ? 'p' : 'q'}` }), /--address cosmos1\S+: is not a valid bech32 address/],
    ['a name that is no DNS label', 'Mallory_X', ['--namespace', X, ...flags({})], /tenant name "Mallory_X" must be a DNS label/],
  ])('exits 2 on %s, with a message naming it, and creates nothing', async (_what, name, args, message) => {
    const r = await addTenant(name, [...args, ...out()], '');
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
    expect((await request(admin(), 'GET', cluster('tenants', X))).status).toBe(404);
    expect((await request(admin(), 'GET', `/api/v1/namespaces/${X}`)).status).toBe(404);
    expect(() => statSync(kubeconfigFile(X))).toThrow();
  });

  it("exits 1 and changes nothing when the namespace is another tenant's", async () => {
    const before = (await request(admin(), 'GET', cluster('tenants', nsE))).body?.metadata?.resourceVersion;
    const taken = signTenantProof(randomBytes(32), nsE);
    const r = await addTenant(X, ['--namespace', nsE, '--address', taken.address, '--challenge', taken.proof.challenge, '--signature', taken.proof.signature, '--pub-key', taken.proof.pubKey, ...out()]);
    expect(r.stderr).toMatch(new RegExp(`Namespace ${nsE} belongs to tenant ${E}: choose tenant ${X} another namespace \\(nothing was changed\\)`));
    expect(r.code).toBe(1);
    expect((await request(admin(), 'GET', cluster('tenants', nsE))).body?.metadata?.resourceVersion).toBe(before);
    expect((await request(admin(), 'GET', `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/gpufed-renter-${X}`)).status).toBe(404);
  });
});

describe("the dev federation's tenant carol", () => {
  const file = () => tenantKubeconfigPath(testDir(), DEV_TENANT);

  it('exists with a proof that verifies, for the address of its derived key', async () => {
    const carol = await adminKube().getCustom<Tenant>(TenantResource, 'carol');
    expect(carol?.spec).toEqual({ namespace: 'carol', address: devTenantRequest('carol').address, proof: devTenantRequest('carol').proof });
    expect(verifyTenantProof(carol as Tenant)).toEqual({ valid: true });
  });

  it('has a private kubeconfig that lists ComputeJobs in namespace carol and nowhere else', async () => {
    expect(statSync(file()).mode & 0o777).toBe(0o600);
    const listed = await kubectlAs(file(), ['get', 'computejobs']);
    expect(listed.stderr).toMatch(/^(No resources found in carol namespace\.\n)?$/);
    expect(listed.code).toBe(0);
    expect((await kubectlAs(file(), ['get', 'computejobs', '-A'])).stderr).toMatch(/forbidden/);
    expect(await whoAmI(renterOf(file()))).toBe('system:serviceaccount:carol:gpufed-renter');
  });

  it('has a private key file that gpufed tenant prove signs with, for the same address', async () => {
    const key = tenantKeyPath(testDir(), DEV_TENANT);
    expect(statSync(key).mode & 0o777).toBe(0o600);
    expect(readFileSync(key, 'utf8')).toMatch(/^[0-9a-f]{64}\n$/);
    const proved = await cli(['tenant', 'prove', '--namespace', 'carol', '--key-file', key, '-o', 'json']);
    expect(proved.code).toBe(0);
    expect((JSON.parse(proved.stdout) as Tenant).spec.address).toBe(devTenantRequest('carol').address);
  });
});
