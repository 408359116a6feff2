// The Helm charts on the real federation: both lint clean and render; bad values fail with the
// schema's message; the registry chart's CRDs are the repository's crds/ byte for byte; the jobs
// namespace and NetworkPolicy are exactly what the agent applies. Then both charts are installed
// (gpufed-registry into the registry, gpufed-provider into alice's cluster) and the real operators
// run with nothing but the charts' service accounts (tokens from the TokenRequest API) and the
// Deployments' own args: a renter's job goes to Succeeded and neither process is refused anything.
// The charts' pods themselves never run here (no image; KWOK only fakes pods on its nodes).
import { mkdtempSync, readdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import * as k8s from '@kubernetes/client-node';
import { parse, parseAllDocuments } from 'yaml';
import { repoRoot } from '../../cli/src/dev/paths.js';
import { devProviderHotKey } from '../../cli/src/dev/wallets.js';
import { jobsNamespace, jobsNetworkPolicy } from '../../operator/src/agent/jobpod.js';
import { ComputeJobResource, type ComputeJob } from '../../operator/src/api/index.js';
import { validComputeJob } from '../fixtures/computejobs.js';
import { OperatorProcess, adaptArgs, chartDir, helm, kubectlAs, serviceAccountKubeconfig } from '../support/charts.js';
import { agentRegistryConfig, eventually, kubeConfig, kubeconfigOf, kubectl, testFederation, withoutWork } from '../support/federation.js';
import { devTenant, type TestTenant } from '../support/tenants.js';

const PROVIDER = 'alice';
const RTX4090 = 'NVIDIA-GeForce-RTX-4090';
const RTX3090 = 'NVIDIA-GeForce-RTX-3090';
/** Not the in-process agents' gpufed-jobs: uninstalling the chart deletes its jobs namespace. */
const JOBS = 'gpufed-charts-jobs';
const AGENT_NS = 'gpufed-agent';
const SYSTEM_NS = 'gpufed-system';
const REGISTRY_RELEASE = 'gpufed-registry';
const PROVIDER_RELEASE = 'gpufed-provider';
const lintValues = (chart: string) => join(chartDir(chart), 'ci', 'lint-values.yaml');
const jobRef = { group: ComputeJobResource.group, version: ComputeJobResource.version, plural: ComputeJobResource.plural };

interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  spec?: unknown;
}

function manifests(yaml: string): Manifest[] {
  return parseAllDocuments(yaml)
    .map((d) => d.toJS() as Manifest | null)
    .filter((m): m is Manifest => m !== null);
}

const ok = (r: { code: number; stdout: string; stderr: string }, what: string) => {
  if (r.code !== 0) throw new Error(`${what} failed (${r.code}): ${r.stderr || r.stdout}`);
  return r.stdout;
};

describe('the Helm charts, offline', () => {
  it.each([
    ['gpufed-registry', []],
    ['gpufed-registry', ['-f', lintValues('gpufed-registry')]],
    ['gpufed-provider', ['-f', lintValues('gpufed-provider')]],
  ])('%s passes helm lint --strict %s', async (chart, args) => {
    const r = await helm(['lint', '--strict', chartDir(chart), ...args]);
    expect(r.stderr + r.stdout).toMatch(/1 chart\(s\) linted, 0 chart\(s\) failed/);
    expect(r.stdout).not.toMatch(/\[(WARNING|ERROR)\]/);
    expect(r.code).toBe(0);
  });

  it.each([
    ['gpufed-registry', ['--set', 'replicas=-1'], /at '\/replicas': minimum: got -1, want 1/],
    ['gpufed-registry', ['--set', 'replica=2'], /additional properties 'replica' not allowed/],
    ['gpufed-registry', ['--set', 'leaderElection.leaseDuration=15 seconds'], /at '\/leaderElection\/leaseDuration': '15 seconds' does not match pattern/],
    ['gpufed-registry', ['--set', 'chainRpc=rpc.example.org:26657'], /at '\/chainRpc': 'rpc.example.org:26657' does not match pattern/],
    ['gpufed-provider', [], /at '\/provider\/name': minLength: got 0, want 1/],
    ['gpufed-provider', ['-f', lintValues('gpufed-provider'), '--set', 'provider.name=Alice_1'], /at '\/provider\/name': 'Alice_1' does not match pattern/],
    ['gpufed-provider', ['-f', lintValues('gpufed-provider'), '--set', 'agent.fencingTimout=1m'], /at '\/agent': additional properties 'fencingTimout' not allowed/],
    ['gpufed-provider', ['-f', lintValues('gpufed-provider'), '--set', 'metrics.port=70000'], /at '\/metrics\/port': maximum: got 70,000, want 65,535/],
    ['gpufed-provider', ['-f', lintValues('gpufed-provider'), '--set', 'provider.prices[0].pricePerGpuHour=1.2stake'], /at '\/provider\/prices\/0\/pricePerGpuHour': '1.2stake' does not match pattern/],
  ])('%s rejects %j with the schema\'s message', async (chart, args, message) => {
    const r = await helm(['template', 'x', chartDir(chart), ...args]);
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/values don't meet the specifications of the schema/);
    expect(r.stderr).toMatch(message);
  });

  it("keeps the registry chart's CRDs byte-identical to crds/ (Helm cannot read files outside the chart)", () => {
    const top = readdirSync(join(repoRoot(), 'crds')).filter((f) => f.endsWith('.yaml')).sort();
    const copies = readdirSync(join(chartDir('gpufed-registry'), 'crds')).sort();
    expect(copies).toEqual(top);
    expect(top).toHaveLength(7);
    for (const f of top) {
      const same = readFileSync(join(repoRoot(), 'crds', f)).equals(readFileSync(join(chartDir('gpufed-registry'), 'crds', f)));
      if (!same) throw new Error(`charts/gpufed-registry/crds/${f} differs from crds/${f}: run cp crds/*.yaml charts/gpufed-registry/crds/`);
    }
  });

  it('runs the image of this release and documents every value', () => {
    const version = (JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { version: string }).version;
    for (const chart of ['gpufed-registry', 'gpufed-provider']) {
      const meta = parse(readFileSync(join(chartDir(chart), 'Chart.yaml'), 'utf8')) as { apiVersion: string; version: string; appVersion: string };
      expect(meta).toMatchObject({ apiVersion: 'v2', appVersion: version });
      expect(meta.version).toMatch(/^\d+\.\d+\.\d+$/);
      // Every value of values.yaml has a comment right above it, or sits in a block that has one (resources).
      const lines = readFileSync(join(chartDir(chart), 'values.yaml'), 'utf8').split('\n');
      const indent = (l: string) => l.length - l.trimStart().length;
      const documented = (i: number): boolean => {
        if (lines[i - 1]?.trim().startsWith('#')) return true;
        for (let j = i - 1; j >= 0; j--) {
          const above = lines[j] ?? '';
          if (above.trim() !== '' && !above.trim().startsWith('#') && indent(above) < indent(lines[i] ?? '')) return documented(j);
        }
        return false;
      };
      lines.forEach((line, i) => {
        // A section heading (`billing:`) is documented by its values.
        if (/^\s*[A-Za-z]\w*:\s*\S/.test(line) && !documented(i)) throw new Error(`${chart}/values.yaml:${i + 1} "${line.trim()}" has no comment`);
      });
    }
  });

  it('renders the jobs namespace and its NetworkPolicy exactly as the agent applies them', async () => {
    const out = ok(await helm(['template', 'x', chartDir('gpufed-provider'), '-n', AGENT_NS, '-f', lintValues('gpufed-provider'), '--set', `jobs.namespace=${JOBS}`]), 'helm template');
    const all = manifests(out);
    const ns = all.find((m) => m.kind === 'Namespace');
    const np = all.find((m) => m.kind === 'NetworkPolicy');
    expect(ns).toEqual(jobsNamespace(JOBS));
    expect(np).toEqual(jobsNetworkPolicy(JOBS));
    // The optional parts are there when asked for; dashboards only as their files exist.
    expect(all.map((m) => m.kind)).toEqual(expect.arrayContaining(['Deployment', 'ServiceAccount', 'ClusterRole', 'Role', 'Service', 'ServiceMonitor', 'RuntimeClass']));
    const dashboards = readdirSync(join(chartDir('gpufed-provider'), 'dashboards')).filter((f) => f.endsWith('.json'));
    const cms = all.filter((m) => m.kind === 'ConfigMap');
    expect(cms).toHaveLength(dashboards.length);
    for (const cm of cms) expect(cm.metadata.labels?.grafana_dashboard).toBe('1');
  });
});

describe('the Helm charts installed on the federation, with the real operators on their service accounts', () => {
  let tenant: TestTenant;
  let dir: string;
  let registry: OperatorProcess | undefined;
  let agent: OperatorProcess | undefined;
  const kubeconfigs = { registry: '', agent: '' };
  const jobNames: string[] = [];
  let seq = 0;

  const deployment = async (cluster: string, namespace: string, name: string): Promise<k8s.V1Deployment> =>
    JSON.parse(ok(await kubectl(cluster, ['get', 'deployment', name, '-n', namespace, '-o', 'json']), `get deployment ${name}`)) as k8s.V1Deployment;
  const argsOf = (d: k8s.V1Deployment): string[] => d.spec?.template.spec?.containers[0]?.args ?? [];

  /** Submits a one-GPU job as the renter, with KWOK's sim annotations; returns its name. */
  async function submit(model: string, annotations: Record<string, string>): Promise<string> {
    const job: ComputeJob = validComputeJob(`chart-${Date.now().toString(36)}-${seq++}`, tenant.namespace);
    job.metadata.annotations = annotations;
    job.spec = { ...job.spec, resources: { gpu: { count: 1, models: [model] }, cpu: '1', memory: '1Gi' }, maxPricePerGpuHour: '1500000ustake', retries: 0 };
    delete job.spec.placement;
    await tenant.kc.makeApiClient(k8s.CustomObjectsApi).createNamespacedCustomObject({ ...jobRef, namespace: tenant.namespace, body: job });
    jobNames.push(job.metadata.name ?? '');
    return job.metadata.name ?? '';
  }

  function jobWhen(name: string, phase: string): Promise<ComputeJob> {
    const custom = kubeConfig('registry').makeApiClient(k8s.CustomObjectsApi);
    return eventually(`job ${name} ${phase}`, async () => {
      const j = (await custom.getNamespacedCustomObject({ ...jobRef, namespace: tenant.namespace, name })) as ComputeJob;
      if (j.status?.phase === 'Failed') throw new Error(`job ${name} failed: ${j.status.message}`);
      return j.status?.phase === phase ? j : undefined;
    }, 60_000, 500);
  }

  beforeAll(async () => {
    dir = mkdtempSync(join(tmpdir(), 'gpufed-charts-'));
    tenant = await devTenant();
    const scoped = await agentRegistryConfig(PROVIDER, [
      { model: RTX4090, pricePerGpuHour: '1200000ustake' },
      { model: RTX3090, pricePerGpuHour: '800000ustake' },
    ]);
    writeFileSync(join(dir, 'agent-registry.kubeconfig'), scoped.exportConfig(), { mode: 0o600 });
    await withoutWork(PROVIDER, JOBS);
  });

  afterAll(async () => {
    // While the registry still runs: its finalizer lets the job go.
    if (jobNames.length > 0) await kubectl('registry', ['delete', 'computejob', ...jobNames, '-n', tenant.namespace, '--ignore-not-found', '--wait=true', '--timeout=30s']);
    await Promise.all([registry?.stop(), agent?.stop()]);
    await kubectl('registry', ['patch', 'lease', 'gpufed-registry', '-n', SYSTEM_NS, '--type=merge', '-p', '{"spec":{"holderIdentity":""}}']);
    await helm(['uninstall', PROVIDER_RELEASE, '-n', AGENT_NS], kubeconfigOf(PROVIDER));
    await helm(['uninstall', REGISTRY_RELEASE, '-n', SYSTEM_NS], kubeconfigOf('registry'));
    await kubectl(PROVIDER, ['delete', 'namespace', AGENT_NS, '--ignore-not-found', '--wait=false']);
    rmSync(dir, { recursive: true, force: true });
  });

  it('installs gpufed-registry into the registry, whose CRDs exist already', async () => {
    const r = await helm(
      ['install', REGISTRY_RELEASE, chartDir('gpufed-registry'), '-n', SYSTEM_NS, '--set', 'leaderElection.leaseDuration=3s,leaderElection.renewDeadline=2s,leaderElection.retryPeriod=500ms'],
      kubeconfigOf('registry'),
    );
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/STATUS: deployed/);
    expect(r.stdout).toMatch(/gpufed registry add-provider/);
    expect(r.stdout).toMatch(/gpufed registry add-tenant/);
    const d = await deployment('registry', SYSTEM_NS, REGISTRY_RELEASE);
    expect(d.spec?.replicas).toBe(2);
    expect(argsOf(d)).toEqual(expect.arrayContaining(['registry', `--lease-namespace=${SYSTEM_NS}`, '--lease-name=gpufed-registry', '--payment-cover=5m', '--settle-wait=10m', '--metrics-addr=0.0.0.0:9465']));
    expect(argsOf(d).some((a) => a.startsWith('--chain-rpc'))).toBe(false);
    // The controller-manager creates both replicas' pods (nothing schedules them on the registry).
    await eventually('the registry pods', async () => {
      const pods = JSON.parse(ok(await kubectl('registry', ['get', 'pods', '-n', SYSTEM_NS, '-l', `app.kubernetes.io/instance=${REGISTRY_RELEASE}`, '-o', 'json']), 'get pods')) as k8s.V1PodList;
      return pods.items.length === 2 || undefined;
    }, 30_000);
    kubeconfigs.registry = await serviceAccountKubeconfig('registry', SYSTEM_NS, d.spec?.template.spec?.serviceAccountName ?? '', dir);
  });

  it("installs gpufed-provider into alice's cluster, with the Secrets created beforehand, under Pod Security restricted", async () => {
    // The release namespace enforces `restricted` too: the agent's own pod must pass it.
    ok(await kubectl(PROVIDER, ['create', 'namespace', AGENT_NS]), 'create namespace');
    ok(await kubectl(PROVIDER, ['label', 'namespace', AGENT_NS, 'pod-security.kubernetes.io/enforce=restricted']), 'label namespace');
    ok(await kubectl(PROVIDER, ['create', 'secret', 'generic', 'gpufed-registry', '-n', AGENT_NS, `--from-file=kubeconfig=${join(dir, 'agent-registry.kubeconfig')}`]), 'create secret');
    ok(await kubectl(PROVIDER, ['create', 'secret', 'generic', 'gpufed-wallet', '-n', AGENT_NS, `--from-literal=key=${Buffer.from(devProviderHotKey(PROVIDER)).toString('hex')}`]), 'create secret');
    const cluster = testFederation().plan.clusters.find((c) => c.name === PROVIDER);
    const values = [
      `provider.name=${PROVIDER}`,
      'registry.kubeconfigSecret.name=gpufed-registry',
      'wallet.keySecret.name=gpufed-wallet',
      `billing.prometheusUrl=${cluster?.prometheusUrl ?? ''}`,
      `billing.chainRpc=${testFederation().plan.chain?.endpoints.rpcUrl ?? ''}`,
      `jobs.namespace=${JOBS}`,
    ];
    const r = await helm(['install', PROVIDER_RELEASE, chartDir('gpufed-provider'), '-n', AGENT_NS, '--set', values.join(',')], kubeconfigOf(PROVIDER));
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/kubectl --context <registry> get gpunodes -n gpufed-provider-alice/);
    expect(r.stdout).toMatch(/gpufed provider reclaim/);
    const d = await deployment(PROVIDER, AGENT_NS, PROVIDER_RELEASE);
    expect(d.spec?.replicas).toBe(1);
    expect(argsOf(d)).toEqual(expect.arrayContaining([
      'agent',
      `--provider=${PROVIDER}`,
      '--registry-kubeconfig=/etc/gpufed/registry/kubeconfig',
      '--wallet-key-file=/etc/gpufed/wallet/key',
      `--jobs-namespace=${JOBS}`,
      '--fencing-timeout=2m',
      '--registry-provider-lost-timeout=3m',
      '--settlement-period=5m',
      '--metrics-addr=0.0.0.0:9464',
    ]));
    // The fence guard: a Deployment of its own (not the agent's pod), on the same timing.
    const guard = await deployment(PROVIDER, AGENT_NS, `${PROVIDER_RELEASE}-fence-guard`);
    expect(argsOf(guard)).toEqual(['fence-guard', `--provider=${PROVIDER}`, '--registry-kubeconfig=/etc/gpufed/registry/kubeconfig', `--jobs-namespace=${JOBS}`, '--fencing-timeout=2m', '--registry-provider-lost-timeout=3m', '--metrics-addr=0.0.0.0:9466']);
    expect(guard.spec?.selector.matchLabels).toMatchObject({ 'app.kubernetes.io/component': 'fence-guard' });
    const pod = d.spec?.template.spec;
    const version = (JSON.parse(readFileSync(join(repoRoot(), 'package.json'), 'utf8')) as { version: string }).version;
    expect(pod?.containers[0]?.image).toBe(`ghcr.io/gpufed/gpufed:${version}`);
    expect(pod?.securityContext).toMatchObject({ runAsNonRoot: true, runAsUser: 10001, seccompProfile: { type: 'RuntimeDefault' } });
    expect(pod?.containers[0]?.securityContext).toMatchObject({ allowPrivilegeEscalation: false, readOnlyRootFilesystem: true, capabilities: { drop: ['ALL'] } });
    expect(pod?.volumes?.map((v) => v.secret?.secretName).filter(Boolean)).toEqual(['gpufed-registry', 'gpufed-wallet']);
    // Admitted under `restricted` (a rejected pod would leave the ReplicaSet with none).
    await eventually('the agent pod', async () => {
      const pods = JSON.parse(ok(await kubectl(PROVIDER, ['get', 'pods', '-n', AGENT_NS, '-l', `app.kubernetes.io/instance=${PROVIDER_RELEASE}`, '-o', 'json']), 'get pods')) as k8s.V1PodList;
      // The agent's and the fence guard's.
      return pods.items.map((p) => p.metadata?.labels?.['app.kubernetes.io/component']).sort().join(',') === 'agent,fence-guard' || undefined;
    }, 30_000);
    const labels = JSON.parse(ok(await kubectl(PROVIDER, ['get', 'namespace', JOBS, '-o', 'json']), 'get namespace')) as k8s.V1Namespace;
    expect(labels.metadata?.labels).toMatchObject({ 'pod-security.kubernetes.io/enforce': 'restricted' });
    kubeconfigs.agent = await serviceAccountKubeconfig(PROVIDER, AGENT_NS, pod?.serviceAccountName ?? '', dir);
  });

  it("runs a renter's job to Succeeded with the operators on the charts' service accounts and the Deployments' args", async () => {
    const registryArgs = adaptArgs(argsOf(await deployment('registry', SYSTEM_NS, REGISTRY_RELEASE)), {
      replace: { '--metrics-addr': '127.0.0.1:0' },
      add: [`--kubeconfig=${kubeconfigs.registry}`, '--identity=charts-test'],
    });
    // No metering or settlement here (no grant, no chain): the agent's billing flags go, as all three must.
    const agentArgs = adaptArgs(argsOf(await deployment(PROVIDER, AGENT_NS, PROVIDER_RELEASE)), {
      drop: ['--prometheus-url', '--chain-rpc', '--wallet-key-file'],
      replace: { '--registry-kubeconfig': join(dir, 'agent-registry.kubeconfig'), '--metrics-addr': '127.0.0.1:0' },
      add: [`--kubeconfig=${kubeconfigs.agent}`, '--simulate'],
    });
    registry = new OperatorProcess('charts-registry', registryArgs);
    agent = new OperatorProcess('charts-agent', agentArgs);
    const r = registry;
    const a = agent;
    await eventually('the registry to lead', () => Promise.resolve(r.lines().some((l) => l.msg === 'Became the leader; placing jobs') || undefined), 30_000);
    // The agent is ready (caches filled, first heartbeat sent) on its /readyz, as the kubelet would see it.
    const addr = await eventually('the agent to serve /readyz', () => Promise.resolve(a.lines().find((l) => l.msg === 'Serving metrics and health')?.addr as string | undefined), 20_000);
    await eventually('the agent /readyz', async () => ((await fetch(`http://${addr}/readyz`)).status === 200 ? true : undefined), 30_000);
    await eventually("alice's GpuNodes on the registry", async () => {
      const gpuNodes = ok(await kubectl('registry', ['get', 'gpunodes', '-n', `gpufed-provider-${PROVIDER}`, '-o', 'name']), 'get gpunodes');
      return /alice-desktop/.test(gpuNodes) && /alice-tower/.test(gpuNodes) ? true : undefined;
    }, 20_000);

    // One job runs 2 s to Succeeded; another runs until the renter cancels it.
    const [done, cancelled] = await Promise.all([submit(RTX4090, { 'sim.gpufed.io/duration': '2s', 'sim.gpufed.io/log': 'epoch 1/1 done\n' }), submit(RTX3090, {})]);
    const succeeded = await jobWhen(done, 'Succeeded');
    expect(succeeded.status).toMatchObject({ exitCode: 0, attempts: 1, placement: { provider: PROVIDER, model: RTX4090 } });
    // The pod ran in the chart's jobs namespace; its log tail was pushed and relayed to the renter
    // (the registry's ConfigMap create in the tenant's namespace).
    const pods = JSON.parse(ok(await kubectl(PROVIDER, ['get', 'pods', '-n', JOBS, '-o', 'json']), 'get job pods')) as k8s.V1PodList;
    expect(pods.items.map((p) => p.metadata?.annotations?.['gpufed.io/assignment-name'])).toContain(succeeded.status?.placement?.assignmentName);
    await eventually('the relayed log', async () => {
      const cm = await kubectl('registry', ['get', 'configmap', `${done}-log`, '-n', tenant.namespace, '-o', 'jsonpath={.data}']);
      return cm.code === 0 && cm.stdout.includes('epoch 1/1 done') ? true : undefined;
    }, 20_000);
    // Cancelling the running one: the registry withdraws its Assignment, the agent deletes the pod,
    // and the finalizer lets the job go.
    await jobWhen(cancelled, 'Running');
    ok(await kubectl('registry', ['delete', 'computejob', cancelled, done, '-n', tenant.namespace, '--wait=true', '--timeout=30s']), 'delete computejobs');
    expect(agent?.lines().some((l) => l.msg === 'Stopped job pod' && l.why === 'Withdrawn')).toBe(true);
    jobNames.length = 0;
  });

  it('neither operator was refused anything', async () => {
    if (!registry || !agent) throw new Error('The operators never ran');
    const [, agentExit] = await Promise.all([registry.stop(), agent.stop()]);
    for (const [name, p] of [['registry', registry], ['agent', agent]] as const) {
      const refused = (p?.log ?? '').split('\n').filter((l) => /forbidden|\b403\b/i.test(l));
      if (refused.length > 0) throw new Error(`the ${name} was refused:\n${refused.slice(0, 5).join('\n')}\n(full log: ${p?.logFile})`);
    }
    // Not the registry's: a leader exits 1 whenever its lead ends, a SIGTERM included (onLostLeadership).
    expect(agentExit).toEqual({ code: 0, signal: null });
  });

  // The real runs above prove the rights are enough; these prove a few they must not have.
  it.each([
    ['agent', ['list', 'nodes'], true],
    ['agent', ['watch', 'pods', '-A'], true],
    ['agent', ['create', 'pods', '-n', JOBS], true],
    ['agent', ['get', 'pods', '-n', JOBS, '--subresource=log'], true],
    ['agent', ['patch', `namespace/${JOBS}`], true],
    ['agent', ['create', 'configmaps', '-n', JOBS], true], // why it stopped a pod, written before the delete
    ['agent', ['update', 'configmaps', '-n', JOBS], false],
    ['agent', ['create', 'configmaps', '-n', 'default'], false],
    ['agent', ['create', 'pods', '-n', 'default'], false],
    ['agent', ['delete', 'pods', '-n', AGENT_NS], false],
    ['agent', ['get', 'secrets', '-n', AGENT_NS], false],
    ['agent', ['list', 'secrets', '-A'], false],
    ['agent', ['patch', 'nodes'], false],
    ['agent', ['patch', 'namespace/default'], false],
    ['agent', ['delete', `namespace/${JOBS}`], false],
    ['agent', ['create', 'networkpolicies', '-n', JOBS], false],
    ['registry', ['patch', 'computejobs.gpufed.io', '-A', '--subresource=status'], true],
    ['registry', ['create', 'assignments.gpufed.io', '-n', `gpufed-provider-${PROVIDER}`], true],
    ['registry', ['update', 'lease/gpufed-registry', '-n', SYSTEM_NS], true],
    ['registry', ['update', 'lease/other', '-n', SYSTEM_NS], false],
    ['registry', ['create', 'leases', '-n', 'default'], false],
    ['registry', ['get', 'secrets', '-n', SYSTEM_NS], false],
    ['registry', ['create', 'providers.gpufed.io'], false],
    ['registry', ['patch', 'providers.gpufed.io'], false],
    ['registry', ['patch', 'gpunodes.gpufed.io', '-A'], false],
    ['registry', ['create', 'usagerecords.gpufed.io', '-A'], false],
    ['registry', ['delete', 'computejobs.gpufed.io', '-A'], false],
    ['registry', ['create', 'pods', '-A'], false],
  ] as const)('the %s may %j: %s', async (who, args, allowed) => {
    const r = await kubectlAs(who === 'agent' ? kubeconfigs.agent : kubeconfigs.registry, ['auth', 'can-i', ...args]);
    expect(r.stdout.trim()).toBe(allowed ? 'yes' : 'no');
  });

  it('uninstalls both releases and keeps the CRDs', async () => {
    ok(await helm(['uninstall', PROVIDER_RELEASE, '-n', AGENT_NS], kubeconfigOf(PROVIDER)), 'helm uninstall');
    ok(await helm(['uninstall', REGISTRY_RELEASE, '-n', SYSTEM_NS], kubeconfigOf('registry')), 'helm uninstall');
    const crds = ok(await kubectl('registry', ['get', 'crds', '-o', 'name']), 'get crds');
    for (const plural of ['assignments', 'computejobs', 'gpunodes', 'providers', 'tenants', 'usagerecords']) expect(crds).toContain(`${plural}.gpufed.io`);
    expect((await kubectl('registry', ['get', 'deployment', REGISTRY_RELEASE, '-n', SYSTEM_NS])).code).not.toBe(0);
    expect((await kubectl(PROVIDER, ['get', 'clusterrole', PROVIDER_RELEASE])).code).not.toBe(0);
  });
});
