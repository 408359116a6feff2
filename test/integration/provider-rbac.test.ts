// A provider's credentials on the real registry API server: two providers onboarded with
// `gpufed registry add-provider`, then provider A's agent kubeconfig (real token authentication, no
// impersonation) is put through the whole matrix of docs/onboarding.md, first as
// SelfSubjectAccessReviews, then as real requests. Also rotation (the old token gets 401),
// idempotency and the CLI's input checks.
import { randomBytes } from 'node:crypto';
import { copyFileSync, mkdtempSync, readFileSync, rmSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { fromBech32, toBech32 } from '@cosmjs/encoding';
import * as k8s from '@kubernetes/client-node';
import { parse } from 'yaml';
import { repoRoot } from '../../cli/src/dev/paths.js';
import { ProviderResource } from '../../operator/src/api/index.js';
import { Kube } from '../../operator/src/kube/client.js';
import { validComputeJob } from '../fixtures/computejobs.js';
import { eventually, kubeConfig, kubeconfigOf, run } from '../support/federation.js';
import { ALL_VERBS, allowedVerbs, checks, core, gpufed, MERGE, request } from '../support/requests.js';

const suffix = randomBytes(3).toString('hex');
const A = `rbac-a-${suffix}`;
const B = `rbac-b-${suffix}`;
const nsA = `gpufed-provider-${A}`;
const nsB = `gpufed-provider-${B}`;
const renterNs = `rbac-renter-${suffix}`;
const WALLET = 'cosmos187gn765gzkzqjt8sph428gl54v70c7ma2jkrvg';
const PAYOUT = 'cosmos1tlw2rnzhrexvp0rtwvtrq9527x6wpcmvcl5sk0';
const PRICE = 'NVIDIA-GeForce-RTX-4090=1200000ustake';

const dir = mkdtempSync(join(tmpdir(), 'gpufed-rbac-'));
const kubeconfigFile = (p: string) => join(dir, `${p}.kubeconfig`);
const admin = () => kubeConfig('registry');
const cli = (args: string[]) => run(process.execPath, [join(repoRoot(), 'dist/cli/src/gpufed.js'), ...args]);
const addProvider = (name: string, extra: string[] = []) =>
  cli(['registry', 'add-provider', name, '--wallet', WALLET, '--kubeconfig-out', kubeconfigFile(name), '--kubeconfig', kubeconfigOf('registry'), ...extra]);

function agentOf(provider: string, file = kubeconfigFile(provider)): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(file);
  return kc;
}

// Real requests (test/support/requests.ts), by path, so every row of the matrix is one HTTP call
// with the agent's own token. The paths and bodies of what the matrix touches:
const provider = (name = '', sub = '') => `/apis/gpufed.io/v1alpha1/providers${name ? `/${name}` : ''}${sub ? `/${sub}` : ''}`;
const sample = (file: string) => parse(readFileSync(join(repoRoot(), 'crds', 'samples', file), 'utf8')) as { metadata: Record<string, unknown>; spec: Record<string, unknown> };
const inNs = (m: { metadata: Record<string, unknown> }, namespace: string, name?: string) => ({ ...m, metadata: { ...m.metadata, namespace, ...(name ? { name } : {}) } });

function gpuNode(ns: string, name: string) {
  const s = sample('gpunode-alice-desktop.yaml');
  return { ...inNs(s, ns, name), spec: { ...s.spec, nodeName: name } };
}
const assignment = (ns: string, name: string) => inNs(sample('assignment-train.yaml'), ns, name);
const usageRecord = (ns: string, name: string) => inNs(sample('usagerecord-train-1-0001.yaml'), ns, name);
const settlement = (ns: string, name: string) => inNs(sample('settlement-alice-3.yaml'), ns, name);
const configMap = (ns: string, name: string) => ({ apiVersion: 'v1', kind: 'ConfigMap', metadata: { name, namespace: ns }, data: { 'log.txt': 'epoch 1 loss 0.5\n' } });
const secret = (ns: string, name: string) => ({ apiVersion: 'v1', kind: 'Secret', metadata: { name, namespace: ns }, stringData: { k: 'v' } });
const pod = (ns: string, name: string) => ({ apiVersion: 'v1', kind: 'Pod', metadata: { name, namespace: ns }, spec: { containers: [{ name: 'c', image: 'busybox' }] } });
const microTime = () => new Date().toISOString().replace(/\.(\d{3})Z$/, '.$1000Z');

beforeAll(async () => {
  for (const [name, extra] of [
    [A, ['--region', 'eu-west', '--price', PRICE, '--payout', PAYOUT]],
    [B, ['--region', 'eu-central', '--price', 'NVIDIA-A100-SXM4-80GB=350000ustake']],
  ] as const) {
    const r = await addProvider(name, [...extra]);
    if (r.code !== 0) throw new Error(`add-provider ${name} failed (${r.code}): ${r.stderr}`);
  }
  // What the registry and other providers own, created by the admin for the agent to (not) touch.
  const kube = new Kube(admin(), 'gpufed-test');
  await kube.apply({ apiVersion: 'v1', kind: 'Namespace', metadata: { name: renterNs } });
  for (const m of [
    gpuNode(nsB, 'b-node'),
    assignment(nsB, 'b-asgn'),
    usageRecord(nsB, 'b-urec'),
    configMap(nsB, 'b-logs'),
    secret(nsB, 'b-secret'),
    assignment(nsA, 'a-asgn'),
    validComputeJob('rbac-job', renterNs),
  ]) {
    await kube.apply(m);
  }
});

afterAll(async () => {
  process.stderr.write(`provider-rbac: ${checks.accessReviews} SelfSubjectAccessReviews and ${checks.requests} real requests with agent tokens\n`);
  const kube = new Kube(admin(), 'gpufed-test');
  const core = kube.api(k8s.CoreV1Api);
  const rbac = kube.api(k8s.RbacAuthorizationV1Api);
  for (const p of [A, B]) {
    await kube.deleteCustom(ProviderResource, p);
    await rbac.deleteClusterRoleBinding({ name: `gpufed-provider-${p}` }).catch(() => undefined);
    await rbac.deleteClusterRole({ name: `gpufed-provider-${p}` }).catch(() => undefined);
  }
  for (const ns of [nsA, nsB, renterNs]) await core.deleteNamespace({ name: ns }).catch(() => undefined);
  rmSync(dir, { recursive: true, force: true });
});

describe('gpufed registry add-provider', () => {
  it("creates the Provider as asked, with the payout defaulting to the wallet", async () => {
    const kube = new Kube(admin(), 'gpufed-test');
    expect(await kube.getCustom(ProviderResource, A)).toMatchObject({
      spec: { wallet: WALLET, payout: PAYOUT, region: 'eu-west', prices: [{ model: 'NVIDIA-GeForce-RTX-4090', pricePerGpuHour: '1200000ustake' }] },
    });
    expect(await kube.getCustom(ProviderResource, B)).toMatchObject({ spec: { wallet: WALLET, payout: WALLET, region: 'eu-central' } });
  });

  it('writes a private kubeconfig whose token authenticates as the agent service account', async () => {
    expect(statSync(kubeconfigFile(A)).mode & 0o777).toBe(0o600);
    const kc = agentOf(A);
    expect(kc.getContextObject(kc.getCurrentContext())?.namespace).toBe(nsA);
    expect(kc.getCurrentUser()?.token).toMatch(/^ey/);
    const who = await kc.makeApiClient(k8s.AuthenticationV1Api).createSelfSubjectReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } });
    expect(who.status?.userInfo?.username).toBe(`system:serviceaccount:${nsA}:gpufed-agent`);
  });
});

describe("what a provider's agent may do, in its own namespace and on its own Provider", () => {
  // The matrix of docs/onboarding.md: resource → the verbs allowed, every other verb denied.
  it.each([
    ['gpufed.io', 'gpunodes', '', ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']],
    ['gpufed.io', 'gpunodes', 'status', ['get', 'update', 'patch']],
    ['gpufed.io', 'assignments', '', ['get', 'list', 'watch']],
    ['gpufed.io', 'assignments', 'status', ['get', 'update', 'patch']],
    ['gpufed.io', 'usagerecords', '', ['get', 'list', 'watch', 'create']],
    ['gpufed.io', 'usagerecords', 'status', []],
    ['gpufed.io', 'settlements', '', ['get', 'list', 'watch', 'create']],
    ['gpufed.io', 'settlements', 'status', []],
    ['', 'configmaps', '', ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']],
    ['', 'events', '', ['create', 'patch']],
    ['events.k8s.io', 'events', '', ['create', 'patch']],
    ['coordination.k8s.io', 'leases', '', ['get', 'list', 'watch', 'create', 'update', 'patch']],
    ['', 'secrets', '', []],
    ['', 'pods', '', []],
    ['', 'serviceaccounts', '', []],
    ['', 'serviceaccounts', 'token', []],
    ['rbac.authorization.k8s.io', 'rolebindings', '', []],
    ['gpufed.io', 'computejobs', '', []],
  ])('access review in its namespace: %s %s %s', async (group, resource, subresource, verbs) => {
    expect(await allowedVerbs(agentOf(A), ALL_VERBS, { group, resource, subresource, namespace: nsA })).toEqual(verbs);
  });

  it.each([
    ['its own Provider', A, '', ['get', 'list', 'watch']],
    ['its own Provider status (the registry computes it)', A, 'status', []],
    ["another provider's Provider", B, '', []],
    ["another provider's Provider status", B, 'status', []],
    ['any Provider, unnamed (a plain list or a create)', undefined, '', []],
  ])('access review on %s', async (_what, name, subresource, verbs) => {
    expect(await allowedVerbs(agentOf(A), ALL_VERBS, { group: 'gpufed.io', resource: 'providers', subresource, ...(name ? { name } : {}) })).toEqual(verbs);
  });

  it('creates, reads, updates, patches, watches and deletes a GpuNode and writes its status', async () => {
    const kc = agentOf(A);
    expect((await request(kc, 'POST', gpufed(nsA, 'gpunodes'), gpuNode(nsA, 'desktop'))).status).toBe(201);
    expect((await request(kc, 'GET', gpufed(nsA, 'gpunodes'))).body?.items).toHaveLength(1);
    expect((await request(kc, 'GET', `${gpufed(nsA, 'gpunodes')}?watch=true&timeoutSeconds=1`)).status).toBe(200);
    const got = await request(kc, 'GET', gpufed(nsA, 'gpunodes', 'desktop'));
    expect(got.status).toBe(200);
    expect((await request(kc, 'PUT', gpufed(nsA, 'gpunodes', 'desktop'), { ...got.body, metadata: { ...got.body?.metadata, labels: { updated: 'yes' } } })).status).toBe(200);
    expect((await request(kc, 'PATCH', gpufed(nsA, 'gpunodes', 'desktop'), { spec: { driverVersion: '560.35.03' } }, MERGE)).status).toBe(200);
    const status = await request(kc, 'PATCH', gpufed(nsA, 'gpunodes', 'desktop', 'status'), { status: { allocatable: 1, free: 1 } }, MERGE);
    expect(status.status).toBe(200);
    expect(status.body?.status).toMatchObject({ allocatable: 1, free: 1 });
    expect((await request(kc, 'DELETE', gpufed(nsA, 'gpunodes', 'desktop'))).status).toBe(200);
  });

  it("reads an Assignment the registry created and reports in its status, but cannot change its spec", async () => {
    const kc = agentOf(A);
    expect((await request(kc, 'GET', gpufed(nsA, 'assignments'))).body?.items).toHaveLength(1);
    expect((await request(kc, 'GET', gpufed(nsA, 'assignments', 'a-asgn'))).status).toBe(200);
    const patched = await request(kc, 'PATCH', gpufed(nsA, 'assignments', 'a-asgn', 'status'), { status: { phase: 'Accepted', observedEpoch: 1 } }, MERGE);
    expect(patched.status).toBe(200);
    const asAdmin = await request(admin(), 'GET', gpufed(nsA, 'assignments', 'a-asgn'));
    expect(asAdmin.body?.status).toMatchObject({ phase: 'Accepted', observedEpoch: 1 });
  });

  it("creates UsageRecords and proposes Settlements, but writes neither's status (the registry's verdicts) and deletes neither", async () => {
    const kc = agentOf(A);
    expect((await request(kc, 'POST', gpufed(nsA, 'usagerecords'), usageRecord(nsA, 'a-urec-1'))).status).toBe(201);
    expect((await request(kc, 'GET', gpufed(nsA, 'usagerecords'))).body?.items).toHaveLength(1);
    // A record it wrote is a claim: it cannot relabel it, mark it verified or paid, or remove it.
    expect((await request(kc, 'PATCH', gpufed(nsA, 'usagerecords', 'a-urec-1'), { metadata: { labels: { settled: 'no' } } }, MERGE)).status).toBe(403);
    const forged = { status: { state: 'Committed', txHash: 'A'.repeat(64), height: 1, conditions: [{ type: 'Verified', status: 'True', reason: 'Verified', message: '', lastTransitionTime: '2026-01-01T00:00:00Z' }] } };
    expect((await request(kc, 'PATCH', gpufed(nsA, 'usagerecords', 'a-urec-1', 'status'), forged, MERGE)).status).toBe(403);
    expect((await request(kc, 'DELETE', gpufed(nsA, 'usagerecords', 'a-urec-1'))).status).toBe(403);
    expect((await request(kc, 'POST', gpufed(nsA, 'settlements'), settlement(nsA, 'a-stl-1'))).status).toBe(201);
    expect((await request(kc, 'PATCH', gpufed(nsA, 'settlements', 'a-stl-1', 'status'), { status: { state: 'Committed', txHash: 'A'.repeat(64), signedTx: 'AA==', height: 1 } }, MERGE)).status).toBe(403);
    expect((await request(kc, 'DELETE', gpufed(nsA, 'settlements', 'a-stl-1'))).status).toBe(403);
    expect((await request(admin(), 'GET', gpufed(nsA, 'usagerecords', 'a-urec-1'))).body?.status).toBeUndefined();
  });

  it('pushes log tails to ConfigMaps, records events and holds a leader-election lease', async () => {
    const kc = agentOf(A);
    expect((await request(kc, 'POST', core(nsA, 'configmaps'), configMap(nsA, 'logs-1'))).status).toBe(201);
    const cm = await request(kc, 'GET', core(nsA, 'configmaps', 'logs-1'));
    expect((await request(kc, 'PUT', core(nsA, 'configmaps', 'logs-1'), { ...cm.body, data: { 'log.txt': 'epoch 2\n' } })).status).toBe(200);
    expect((await request(kc, 'PATCH', core(nsA, 'configmaps', 'logs-1'), { data: { 'log.txt': 'epoch 3\n' } }, MERGE)).status).toBe(200);
    expect((await request(kc, 'GET', core(nsA, 'configmaps'))).status).toBe(200);
    expect((await request(kc, 'DELETE', core(nsA, 'configmaps', 'logs-1'))).status).toBe(200);

    const involved = { apiVersion: 'gpufed.io/v1alpha1', kind: 'Assignment', name: 'a-asgn', namespace: nsA };
    const event = { apiVersion: 'v1', kind: 'Event', metadata: { name: 'a-asgn.1', namespace: nsA }, involvedObject: involved, reason: 'Accepted', message: 'Pod created', type: 'Normal' };
    expect((await request(kc, 'POST', core(nsA, 'events'), event)).status).toBe(201);
    expect((await request(kc, 'PATCH', core(nsA, 'events', 'a-asgn.1'), { count: 2 }, MERGE)).status).toBe(200);
    const newEvent = {
      apiVersion: 'events.k8s.io/v1',
      kind: 'Event',
      metadata: { name: 'a-asgn.2', namespace: nsA },
      eventTime: microTime(),
      reportingController: 'gpufed.io/agent',
      reportingInstance: 'agent-0',
      action: 'Run',
      reason: 'Running',
      type: 'Normal',
      regarding: involved,
    };
    expect((await request(kc, 'POST', `/apis/events.k8s.io/v1/namespaces/${nsA}/events`, newEvent)).status).toBe(201);
    expect((await request(kc, 'GET', core(nsA, 'events'))).status).toBe(403);

    const leases = `/apis/coordination.k8s.io/v1/namespaces/${nsA}/leases`;
    const lease = { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'gpufed-agent', namespace: nsA }, spec: { holderIdentity: 'agent-0', leaseDurationSeconds: 15 } };
    expect((await request(kc, 'POST', leases, lease)).status).toBe(201);
    const held = await request(kc, 'GET', `${leases}/gpufed-agent`);
    expect((await request(kc, 'PUT', `${leases}/gpufed-agent`, { ...held.body, spec: { holderIdentity: 'agent-0', leaseDurationSeconds: 15, renewTime: microTime() } })).status).toBe(200);
    expect((await request(kc, 'GET', leases)).status).toBe(200);
    expect((await request(kc, 'DELETE', `${leases}/gpufed-agent`)).status).toBe(403);
  });

  it('reads its own Provider but cannot write a word of its status: no reputation, heartbeat or capacity of its own making', async () => {
    const kc = agentOf(A);
    expect((await request(kc, 'GET', provider(A))).status).toBe(200);
    const forged = { status: { reputation: { succeeded: 1000001 }, lastHeartbeatTime: '2099-01-01T00:00:00Z', capacity: [{ model: 'NVIDIA-GeForce-RTX-4090', total: 64, free: 64 }], conditions: [] } };
    for (const [method, type] of [['PATCH', MERGE], ['PUT', 'application/json']] as const) {
      const r = await request(kc, method, provider(A, 'status'), method === 'PUT' ? { ...(await request(kc, 'GET', provider(A))).body, ...forged } : forged, type);
      expect({ status: r.status, message: r.body?.message }).toMatchObject({ status: 403, message: expect.stringContaining(`system:serviceaccount:${nsA}:gpufed-agent`) as unknown });
    }
    const kept = (await request(admin(), 'GET', provider(A))).body?.status?.reputation as { succeeded?: number } | undefined;
    expect(kept?.succeeded ?? 0).not.toBe(1000001);
  });

  // Kubernetes authorizes a list or watch against resourceNames only when the request names the
  // object with a metadata.name field selector; without it the same rule forbids the list.
  it('lists and watches its own Provider with fieldSelector metadata.name, and nothing without it', async () => {
    const kc = agentOf(A);
    const sel = `fieldSelector=${encodeURIComponent(`metadata.name=${A}`)}`;
    const listed = await request(kc, 'GET', `${provider()}?${sel}`);
    expect(listed.status).toBe(200);
    expect(listed.body?.items).toHaveLength(1);
    expect((await request(kc, 'GET', provider())).status).toBe(403);
    expect((await request(kc, 'GET', `${provider()}?fieldSelector=${encodeURIComponent(`metadata.name=${B}`)}`)).status).toBe(403);
    expect((await request(kc, 'GET', `${provider()}?watch=true&${sel}`)).status).toBe(200);
    expect((await request(kc, 'GET', `${provider()}?watch=true`)).status).toBe(403);

    // And through the client an agent will use: the first event of the watch is its Provider.
    let ctl: AbortController | undefined;
    const seen = await new Promise<{ type: string; name: string }>((resolve, reject) => {
      const onEvent = (type: string, obj: { metadata: { name: string } }) => resolve({ type, name: obj.metadata.name });
      const onDone = (err: unknown) => (err ? reject(err instanceof Error ? err : new Error(JSON.stringify(err))) : undefined);
      void new k8s.Watch(kc).watch(provider(), { fieldSelector: `metadata.name=${A}` }, onEvent, onDone).then((c) => (ctl = c), reject);
    });
    ctl?.abort();
    checks.requests++;
    expect(seen).toEqual({ type: 'ADDED', name: A });
  });
});

describe("what a provider's agent may not do", () => {
  // Every verb on everything in another provider's namespace.
  it.each([
    ['gpufed.io', 'gpunodes'],
    ['gpufed.io', 'assignments'],
    ['gpufed.io', 'usagerecords'],
    ['gpufed.io', 'settlements'],
    ['', 'configmaps'],
    ['', 'secrets'],
    ['', 'pods'],
    ['', 'events'],
    ['coordination.k8s.io', 'leases'],
  ])("access review in another provider's namespace: %s %s", async (group, resource) => {
    expect(await allowedVerbs(agentOf(A), ALL_VERBS, { group, resource, namespace: nsB })).toEqual([]);
  });

  it.each([
    ['ComputeJobs, in every namespace', 'computejobs', ''],
    ["ComputeJobs, in a renter's namespace", 'computejobs', renterNs],
    ['ComputeJobs, in its own namespace', 'computejobs', nsA],
    ['Tenants', 'tenants', ''],
    ['GpuNodes, in every namespace', 'gpunodes', ''],
    ['Assignments, in every namespace', 'assignments', ''],
  ])('access review on %s', async (_what, resource, namespace) => {
    expect(await allowedVerbs(agentOf(A), ALL_VERBS, { group: 'gpufed.io', resource, namespace })).toEqual([]);
  });

  it.each([
    ['', 'namespaces'],
    ['', 'nodes'],
    ['rbac.authorization.k8s.io', 'clusterroles'],
    ['rbac.authorization.k8s.io', 'clusterrolebindings'],
    ['apiextensions.k8s.io', 'customresourcedefinitions'],
  ])('access review on cluster-scoped %s %s', async (group, resource) => {
    expect(await allowedVerbs(agentOf(A), ALL_VERBS, { group, resource })).toEqual([]);
  });

  const bNode = gpufed(nsB, 'gpunodes', 'b-node');
  it.each(([
    // Another provider's namespace: nothing at all.
    ['list GpuNodes', 'GET', gpufed(nsB, 'gpunodes')],
    ['get a GpuNode', 'GET', bNode],
    ['create a GpuNode', 'POST', gpufed(nsB, 'gpunodes'), gpuNode(nsB, 'intruder')],
    ['update a GpuNode', 'PUT', bNode, gpuNode(nsB, 'b-node')],
    ['patch a GpuNode', 'PATCH', bNode, { spec: { count: 8 } }],
    ['patch a GpuNode status', 'PATCH', `${bNode}/status`, { status: { free: 0 } }],
    ['delete a GpuNode', 'DELETE', bNode],
    ['list Assignments', 'GET', gpufed(nsB, 'assignments')],
    ['get an Assignment', 'GET', gpufed(nsB, 'assignments', 'b-asgn')],
    ['create an Assignment', 'POST', gpufed(nsB, 'assignments'), assignment(nsB, 'intruder')],
    ['update an Assignment', 'PUT', gpufed(nsB, 'assignments', 'b-asgn'), assignment(nsB, 'b-asgn')],
    ['patch an Assignment status', 'PATCH', gpufed(nsB, 'assignments', 'b-asgn', 'status'), { status: { phase: 'Running' } }],
    ['delete an Assignment', 'DELETE', gpufed(nsB, 'assignments', 'b-asgn')],
    ['list UsageRecords', 'GET', gpufed(nsB, 'usagerecords')],
    ['get a UsageRecord', 'GET', gpufed(nsB, 'usagerecords', 'b-urec')],
    ['create a UsageRecord', 'POST', gpufed(nsB, 'usagerecords'), usageRecord(nsB, 'intruder')],
    ['update a UsageRecord', 'PUT', gpufed(nsB, 'usagerecords', 'b-urec'), usageRecord(nsB, 'b-urec')],
    ['patch a UsageRecord status', 'PATCH', gpufed(nsB, 'usagerecords', 'b-urec', 'status'), { status: { state: 'Failed' } }],
    ['delete a UsageRecord', 'DELETE', gpufed(nsB, 'usagerecords', 'b-urec')],
    ['list ConfigMaps', 'GET', core(nsB, 'configmaps')],
    ['get a ConfigMap', 'GET', core(nsB, 'configmaps', 'b-logs')],
    ['create a ConfigMap', 'POST', core(nsB, 'configmaps'), configMap(nsB, 'intruder')],
    ['update a ConfigMap', 'PUT', core(nsB, 'configmaps', 'b-logs'), configMap(nsB, 'b-logs')],
    ['delete a ConfigMap', 'DELETE', core(nsB, 'configmaps', 'b-logs')],
    ['list Secrets', 'GET', core(nsB, 'secrets')],
    ['get a Secret', 'GET', core(nsB, 'secrets', 'b-secret')],
    ['create a Secret', 'POST', core(nsB, 'secrets'), secret(nsB, 'intruder')],
    ['update a Secret', 'PUT', core(nsB, 'secrets', 'b-secret'), secret(nsB, 'b-secret')],
    ['delete a Secret', 'DELETE', core(nsB, 'secrets', 'b-secret')],
    ['record an Event', 'POST', core(nsB, 'events'), { apiVersion: 'v1', kind: 'Event', metadata: { name: 'e', namespace: nsB }, involvedObject: { kind: 'GpuNode', name: 'b-node', namespace: nsB }, reason: 'Spoofed', message: 'x', type: 'Normal' }],
    ['list Leases', 'GET', `/apis/coordination.k8s.io/v1/namespaces/${nsB}/leases`],
    ['take a Lease', 'POST', `/apis/coordination.k8s.io/v1/namespaces/${nsB}/leases`, { apiVersion: 'coordination.k8s.io/v1', kind: 'Lease', metadata: { name: 'gpufed-agent', namespace: nsB }, spec: { holderIdentity: 'intruder' } }],
    ['list Pods', 'GET', core(nsB, 'pods')],
    ['get a Pod', 'GET', core(nsB, 'pods', 'p')],
    ['create a Pod', 'POST', core(nsB, 'pods'), pod(nsB, 'intruder')],
    ['update a Pod', 'PUT', core(nsB, 'pods', 'p'), pod(nsB, 'p')],
    ['delete a Pod', 'DELETE', core(nsB, 'pods', 'p')],
    // Another provider's Provider.
    ["get another provider's Provider", 'GET', provider(B)],
    ["patch another provider's Provider status", 'PATCH', provider(B, 'status'), { status: { agentVersion: 'evil' } }],
    // Jobs and tenants: never, anywhere.
    ['list ComputeJobs in every namespace', 'GET', '/apis/gpufed.io/v1alpha1/computejobs'],
    ["list ComputeJobs in a renter's namespace", 'GET', gpufed(renterNs, 'computejobs')],
    ['get a ComputeJob', 'GET', gpufed(renterNs, 'computejobs', 'rbac-job')],
    ['watch ComputeJobs', 'GET', '/apis/gpufed.io/v1alpha1/computejobs?watch=true'],
    ['list Tenants', 'GET', '/apis/gpufed.io/v1alpha1/tenants'],
    ['get a Tenant', 'GET', '/apis/gpufed.io/v1alpha1/tenants/carol'],
    // Providers: not create one, not change its own spec.
    ['create a Provider', 'POST', provider(), { apiVersion: 'gpufed.io/v1alpha1', kind: 'Provider', metadata: { name: `rbac-c-${suffix}` }, spec: { wallet: WALLET, region: 'eu-west', prices: [{ model: 'X1', pricePerGpuHour: '1ustake' }] } }],
    ['patch its own Provider spec', 'PATCH', provider(A), { spec: { cordoned: false, prices: [{ model: 'NVIDIA-GeForce-RTX-4090', pricePerGpuHour: '999999999ustake' }] } }],
    ['delete its own Provider', 'DELETE', provider(A)],
    // Its own namespace: the Assignment spec is the registry's; Secrets (its own token's included) are not readable.
    ['create an Assignment in its namespace', 'POST', gpufed(nsA, 'assignments'), assignment(nsA, 'self-made')],
    ['update an Assignment in its namespace', 'PUT', gpufed(nsA, 'assignments', 'a-asgn'), assignment(nsA, 'a-asgn')],
    ['patch an Assignment spec in its namespace', 'PATCH', gpufed(nsA, 'assignments', 'a-asgn'), { spec: { pricePerGpuHour: '999999999ustake' } }],
    ['delete an Assignment in its namespace', 'DELETE', gpufed(nsA, 'assignments', 'a-asgn')],
    ['list Secrets in its namespace', 'GET', core(nsA, 'secrets')],
    ['watch Secrets in its namespace', 'GET', `${core(nsA, 'secrets')}?watch=true`],
    ['create a Secret in its namespace', 'POST', core(nsA, 'secrets'), secret(nsA, 'mine')],
    ['mint itself a token', 'POST', `${core(nsA, 'serviceaccounts', 'gpufed-agent')}/token`, { apiVersion: 'authentication.k8s.io/v1', kind: 'TokenRequest', spec: {} }],
    ['create a Pod in its namespace', 'POST', core(nsA, 'pods'), pod(nsA, 'mine')],
    ['bind itself a role', 'POST', `/apis/rbac.authorization.k8s.io/v1/namespaces/${nsA}/rolebindings`, { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'RoleBinding', metadata: { name: 'x' }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: 'admin' }, subjects: [{ kind: 'ServiceAccount', name: 'gpufed-agent', namespace: nsA }] }],
    ['list Namespaces', 'GET', '/api/v1/namespaces'],
  ] as [string, string, string, unknown?][]).map(([what, method, path, body]) => [what, { method, path, body }] as const))('cannot %s (403)', async (_what, { method, path, body }) => {
    const r = await request(agentOf(A), method, path, body, method === 'PATCH' ? MERGE : 'application/json');
    expect({ status: r.status, message: r.body?.message }).toMatchObject({ status: 403, message: expect.stringContaining(`system:serviceaccount:${nsA}:gpufed-agent`) as unknown });
  });

  it("cannot read a Secret of its own namespace, not even its own token's", async () => {
    const kube = new Kube(admin(), 'gpufed-test');
    const tokens = await kube.api(k8s.CoreV1Api).listNamespacedSecret({ namespace: nsA, labelSelector: 'gpufed.io/credential=agent-token' });
    const own = tokens.items[0]?.metadata?.name ?? 'missing';
    expect((await request(agentOf(A), 'GET', core(nsA, 'secrets', own))).status).toBe(403);
  });

  it("left the other provider's objects as they were", async () => {
    const kc = admin();
    for (const path of [gpufed(nsB, 'gpunodes', 'b-node'), gpufed(nsB, 'assignments', 'b-asgn'), gpufed(nsB, 'usagerecords', 'b-urec'), core(nsB, 'configmaps', 'b-logs'), core(nsB, 'secrets', 'b-secret')]) {
      expect([path, (await request(kc, 'GET', path)).status]).toEqual([path, 200]);
    }
    const gone = [gpufed(nsB, 'gpunodes', 'intruder'), gpufed(nsB, 'assignments', 'intruder'), core(nsB, 'configmaps', 'intruder'), provider(`rbac-c-${suffix}`)];
    for (const path of gone) expect([path, (await request(kc, 'GET', path)).status]).toEqual([path, 404]);
    expect((await request(kc, 'GET', gpufed(nsB, 'gpunodes', 'b-node'))).body).toMatchObject({ spec: { count: 1 } });
    expect((await request(kc, 'GET', gpufed(nsB, 'gpunodes', 'b-node'))).body?.status).toBeUndefined();
    expect((await request(kc, 'GET', gpufed(nsB, 'assignments', 'b-asgn'))).body?.status).toBeUndefined();
    expect((await request(kc, 'GET', provider(B))).body?.status).toBeUndefined();
    expect((await request(kc, 'GET', provider(A))).body).toMatchObject({ spec: { prices: [{ pricePerGpuHour: '1200000ustake' }] } });
  });
});

describe('gpufed registry add-provider, again and with bad input', () => {
  const resourceVersions = async (p: string): Promise<string[]> => {
    const ns = `gpufed-provider-${p}`;
    const kc = admin();
    const paths = [
      provider(p),
      `/api/v1/namespaces/${ns}`,
      core(ns, 'serviceaccounts', 'gpufed-agent'),
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/roles/gpufed-agent`,
      `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings/gpufed-agent`,
      `/apis/rbac.authorization.k8s.io/v1/clusterroles/${ns}`,
      `/apis/rbac.authorization.k8s.io/v1/clusterrolebindings/${ns}`,
    ];
    return Promise.all(paths.map(async (path) => `${path}@${(await request(kc, 'GET', path)).body?.metadata?.resourceVersion}`));
  };
  const tokenSecrets = async (p: string) =>
    (await new Kube(admin(), 'gpufed-test').api(k8s.CoreV1Api).listNamespacedSecret({ namespace: `gpufed-provider-${p}`, labelSelector: 'gpufed.io/credential=agent-token' })).items.map((s) => s.metadata?.name);

  it('changes nothing when run again, with or without the region and prices, and re-issues the same token', async () => {
    const before = await resourceVersions(B);
    const tokens = await tokenSecrets(B);
    const token = agentOf(B).getCurrentUser()?.token;
    for (const extra of [['--region', 'eu-central', '--price', 'NVIDIA-A100-SXM4-80GB=350000ustake'], []]) {
      const r = await addProvider(B, [...extra, '-o', 'json']);
      expect(r.stderr).toBe('');
      expect(r.code).toBe(0);
      const out = JSON.parse(r.stdout) as { objects: { kind: string; result: string }[]; tokenCreated: boolean; tokenSecret: string; kubeconfig?: string };
      expect(out.objects.map((o) => `${o.kind}: ${o.result}`)).toEqual(
        ['Provider', 'Namespace', 'ServiceAccount', 'Role', 'RoleBinding', 'ClusterRole', 'ClusterRoleBinding'].map((k) => `${k}: unchanged`),
      );
      expect(out).toMatchObject({ tokenCreated: false, tokenSecret: tokens[0] });
      expect(out.kubeconfig).toBeUndefined(); // the token is written to the file only
    }
    expect(await resourceVersions(B)).toEqual(before);
    expect(await tokenSecrets(B)).toEqual(tokens);
    expect(agentOf(B).getCurrentUser()?.token).toBe(token);
  });

  it('updates only the Provider when a price changes', async () => {
    const r = await addProvider(B, ['--price', 'NVIDIA-A100-SXM4-80GB=360000ustake', '-o', 'json']);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { objects: { kind: string; result: string }[] };
    expect(out.objects.filter((o) => o.result !== 'unchanged')).toEqual([{ kind: 'Provider', name: B, result: 'configured' }]);
  });

  const bad = `rbac-bad-${suffix}`;
  /** add-provider's arguments: a valid request for provider `bad`, with `change` replacing flags. */
  const badArgs = (change: { name?: string; wallet?: string; payout?: string; region?: string | null; prices?: string[]; out?: string | null; extra?: string[] }) => [
    'registry', 'add-provider', change.name ?? bad,
    '--wallet', change.wallet ?? WALLET,
    ...(change.payout ? ['--payout', change.payout] : []),
    ...(change.region === null ? [] : ['--region', change.region ?? 'eu-west']),
    ...(change.prices ?? [PRICE]).flatMap((p) => ['--price', p]),
    ...(change.out === null ? [] : ['--kubeconfig-out', change.out ?? kubeconfigFile('bad')]),
    '--kubeconfig', kubeconfigOf('registry'),
    ...(change.extra ?? []),
  ];
  const osmo = toBech32('osmo', fromBech32(WALLET, 90).data);
  it.each([
    ['a bad bech32 checksum', { wallet: `${WALLET.slice(0, -1)}q` }, /--wallet cosmos1\S+: is not a valid bech32 address/],
    ['a payout of another chain', { payout: osmo }, /--payout osmo1\S+: has prefix "osmo", expected "cosmos"/],
    ['a name that is no DNS label', { name: 'Rbac_Bad' }, /provider name "Rbac_Bad" must be a DNS label/],
    ['a name over 47 characters', { name: `rbac-${'x'.repeat(43)}` }, /provider name "rbac-x+" must be at most 47 characters/],
    ['a decimal price', { prices: ['NVIDIA-A100=1.5ustake'] }, /--price NVIDIA-A100=1.5ustake: price "1.5ustake" must be a Cosmos coin/],
    ['a price without a model', { prices: ['1200000ustake'] }, /--price 1200000ustake: expected MODEL=COIN/],
    ['a model priced twice', { prices: ['X1=1ustake', 'X1=2ustake'] }, /--price X1: the model is priced twice/],
    ['a bad region', { region: 'EU West' }, /--region EU West: must be a DNS label/],
    ['a new provider without a region', { region: null }, /--region is required to create Provider/],
    ['an output directory that does not exist', { out: join(dir, 'nope', 'x.kubeconfig') }, /--kubeconfig-out \S+: directory \S+ does not exist/],
    ['an unknown output format', { extra: ['-o', 'xml'] }, /-o xml: expected one of table, json, yaml/],
    ['no --kubeconfig-out', { out: null }, /required option '--kubeconfig-out <file>' not specified/],
  ])('exits 2 on %s, naming the flag, and creates nothing', async (_what, change, message) => {
    const r = await cli(badArgs(change));
    expect(r.stderr).toMatch(message);
    expect(r.code).toBe(2);
    expect((await request(admin(), 'GET', provider(bad))).status).toBe(404);
    expect((await request(admin(), 'GET', `/api/v1/namespaces/gpufed-provider-${bad}`)).status).toBe(404);
  });

  it("exits 1 with the API server's own message when the server rejects the Provider, and creates nothing else", async () => {
    const r = await cli(badArgs({ prices: Array.from({ length: 33 }, (_, i) => `GPU-${i}=1ustake`) }));
    expect(r.stderr).toMatch(/Applying Provider rbac-bad-\S+: .*spec\.prices: Too many: 33: must have at most 32 items.*\(HTTP 422\)/);
    expect(r.code).toBe(1);
    expect((await request(admin(), 'GET', `/api/v1/namespaces/gpufed-provider-${bad}`)).status).toBe(404);
  });
});

describe('gpufed registry rotate-provider-token', () => {
  it('issues a new token, writes it, and revokes the old one (401) while the new one works', async () => {
    const oldFile = join(dir, 'old.kubeconfig');
    copyFileSync(kubeconfigFile(A), oldFile);
    expect((await request(agentOf(A, oldFile), 'GET', provider(A))).status).toBe(200);

    const r = await cli(['registry', 'rotate-provider-token', A, '--kubeconfig-out', kubeconfigFile(A), '--kubeconfig', kubeconfigOf('registry'), '-o', 'json']);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as { tokenSecret: string; revoked: string[] };
    expect(out.revoked).toHaveLength(1);
    expect(out.revoked).not.toContain(out.tokenSecret);
    const rotatedAt = Date.now();
    expect(statSync(kubeconfigFile(A)).mode & 0o777).toBe(0o600);
    expect(agentOf(A).getCurrentUser()?.token).not.toBe(agentOf(A, oldFile).getCurrentUser()?.token);
    expect((await request(agentOf(A), 'GET', provider(A))).status).toBe(200);

    // kube-apiserver caches a successful token authentication for 10 s (not configurable), so a
    // token used just before its Secret was deleted may work up to 10 s longer; never more.
    const status = await eventually('the old token to be rejected', async () => {
      const s = (await request(agentOf(A, oldFile), 'GET', provider(A))).status;
      return s === 200 ? undefined : s;
    }, 15_000, 200);
    expect(status).toBe(401);
    process.stderr.write(`provider-rbac: the old token was rejected ${Date.now() - rotatedAt} ms after rotation\n`);
    expect((await request(agentOf(A), 'GET', provider(A))).status).toBe(200);
    const left = await new Kube(admin(), 'gpufed-test').api(k8s.CoreV1Api).listNamespacedSecret({ namespace: nsA, labelSelector: 'gpufed.io/credential=agent-token' });
    expect(left.items.map((s) => s.metadata?.name)).toEqual([out.tokenSecret]);
  });

  it('rejects a token that was never used at once (no authentication cache to outlive)', async () => {
    const unused = join(dir, 'unused.kubeconfig');
    expect((await cli(['registry', 'rotate-provider-token', A, '--kubeconfig-out', unused, '--kubeconfig', kubeconfigOf('registry')])).code).toBe(0);
    expect((await cli(['registry', 'rotate-provider-token', A, '--kubeconfig-out', kubeconfigFile(A), '--kubeconfig', kubeconfigOf('registry')])).code).toBe(0);
    expect((await request(agentOf(A, unused), 'GET', provider(A))).status).toBe(401);
    expect((await request(agentOf(A), 'GET', provider(A))).status).toBe(200);
  });

  it('says what to do for a provider that was never onboarded', async () => {
    const r = await cli(['registry', 'rotate-provider-token', `rbac-none-${suffix}`, '--kubeconfig-out', kubeconfigFile('none'), '--kubeconfig', kubeconfigOf('registry')]);
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/is not onboarded .*run gpufed registry add-provider rbac-none-\S+ first/);
  });
});
