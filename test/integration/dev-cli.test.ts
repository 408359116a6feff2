// `gpufed dev up|status|down` as a person runs them: a second federation of its own (one provider),
// so stopping it does not disturb the shared one.
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { readState } from '../../cli/src/dev/federation.js';
import { processesMentioning } from '../../cli/src/dev/process.js';
import { binDir, repoRoot } from '../../cli/src/dev/paths.js';
import { eventually, run } from '../support/federation.js';

const cli = (args: string[]) => run(process.execPath, [join(repoRoot(), 'dist/cli/src/gpufed.js'), ...args], { timeoutMs: 240_000 });

const kubectlIn = (dir: string, kubeconfig: string, args: string[], input?: string) =>
  run(join(binDir(), 'kubectl'), ['--kubeconfig', join(dir, kubeconfig), ...args], input === undefined ? {} : { input });

/**
 * The supervised agent of provider dave: registered its GPU node on the registry with the scoped
 * credentials `dev up` onboarded it with, runs an Assignment, is stopped and started by
 * `gpufed dev stop|start`, and after `kill -9` mid-run adopts its pod instead of re-creating it.
 */
async function agentRunsJobsAndSurvivesKill9(dir: string): Promise<void> {
  const gpuNodes = await eventually('dave GpuNode on the registry', async () => {
    const r = await kubectlIn(dir, 'registry.kubeconfig', ['get', 'gpunodes', '-n', 'gpufed-provider-dave', '-o', 'name']);
    return r.stdout.includes('dave-h100') ? r.stdout : undefined;
  });
  expect(gpuNodes.trim()).toBe('gpunode.gpufed.io/dave-h100');
  // The agent's own credentials are scoped: they cannot list Providers beyond its own.
  const denied = await kubectlIn(dir, 'agent-dave.kubeconfig', ['get', 'providers']);
  expect(denied.stderr).toMatch(/forbidden/);

  const assignment = {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'Assignment',
    metadata: { name: 'kill9', namespace: 'gpufed-provider-dave', annotations: { 'sim.gpufed.io/duration': '8s' } },
    spec: {
      jobRef: { namespace: 'carol', name: 'kill9', uid: '11111111-2222-4333-8444-555555555555' },
      epoch: 1,
      image: 'docker.io/library/python:3.13',
      resources: { gpu: { count: 1, models: ['NVIDIA-H100-80GB-HBM3'], sharing: 'MIG', migProfile: '3g.40gb' }, cpu: '1', memory: '1Gi' },
      model: 'NVIDIA-H100-80GB-HBM3',
      pricePerGpuHour: '1000000ustake',
      maxDurationSeconds: 600,
      payer: 'cosmos1hgaht9uh5ng8aqvq75ft9ct44vc2unh2tqx662', // the dev tenant carol
    },
  };
  // The dev agent meters and settles on the dev chain: it starts a job only if the payer's grant covers it.
  const grant = await cli(['budget', 'grant', '--provider', 'dave', '--limit', '10000000ustake', '--dev-key', 'carol', '--dev-dir', dir, '--kubeconfig', join(dir, 'tenant-carol.kubeconfig')]);
  expect(grant.code).toBe(0);
  expect((await kubectlIn(dir, 'registry.kubeconfig', ['apply', '-f', '-'], JSON.stringify(assignment))).code).toBe(0);
  const phase = async () => (await kubectlIn(dir, 'registry.kubeconfig', ['get', 'assignment', 'kill9', '-n', 'gpufed-provider-dave', '-o', 'jsonpath={.status.phase}'])).stdout;
  const podUid = async () => (await kubectlIn(dir, 'provider-dave.kubeconfig', ['get', 'pod', 'kill9-e1', '-n', 'gpufed-jobs', '-o', 'jsonpath={.metadata.uid}'])).stdout;
  await eventually('kill9 Running', async () => ((await phase()) === 'Running' ? true : undefined));
  const uid = await podUid();
  expect(uid).not.toBe('');

  const pid = readState(dir)?.pids['agent-dave'];
  process.kill(pid as number, 'SIGKILL');
  expect((await cli(['dev', 'status', '--dir', dir])).code).toBe(1);
  const started = await cli(['dev', 'start', 'agent-dave', '--dir', dir]);
  expect(started.stdout).toMatch(/Started agent-dave/);
  await eventually('kill9 Succeeded', async () => ((await phase()) === 'Succeeded' ? true : undefined), 60_000);
  expect(await podUid()).toBe(uid); // adopted, not re-created
  // …and metered from dave's Prometheus and paid on the dev chain, across the kill, in one final chain of records.
  const paid = await eventually('kill9 paid', async () => {
    const r = await kubectlIn(dir, 'registry.kubeconfig', ['get', 'usagerecords', '-n', 'gpufed-provider-dave', '-l', 'gpufed.io/job-uid=11111111-2222-4333-8444-555555555555', '-o', 'json']);
    const items = (JSON.parse(r.stdout || '{"items":[]}') as { items: { spec: { final?: boolean }; status?: { state?: string } }[] }).items;
    return items.some((i) => i.spec.final) && items.every((i) => ['Committed', 'NothingDue'].includes(i.status?.state ?? '')) ? items : undefined;
  }, 60_000, 1000);
  expect(paid.length).toBeGreaterThan(0);

  expect((await cli(['dev', 'stop', 'agent-dave', '--dir', dir])).stdout).toMatch(/Stopped agent-dave/);
  expect((await cli(['dev', 'start', 'agent-dave', '--dir', dir])).code).toBe(0);
  const unknown = await cli(['dev', 'stop', 'agent-zed', '--dir', dir]);
  expect(unknown.code).toBe(2);
  expect(unknown.stderr).toMatch(/No component agent-zed; the federation has: etcd, /);
}

describe('gpufed dev', () => {
  const dir = mkdtempSync(join(tmpdir(), 'gpufed-dev-cli-'));

  afterAll(async () => {
    await cli(['dev', 'down', '--dir', dir, '--purge']);
    rmSync(dir, { recursive: true, force: true });
  });

  it('starts a federation from a fleet file, reports it healthy, refuses a second one, and stops leaving no process', async () => {
    const fleet = join(dir, 'fleet.yaml');
    writeFileSync(
      fleet,
      'providers:\n  - name: dave\n    region: ap-south\n    nodes:\n      - {name: dave-h100, gpus: {product: NVIDIA-H100-80GB-HBM3, count: 1, mig: {3g.40gb: 2}}}\n      - {name: dave-pi, cpu: "4", memory: 8Gi}\n  - name: erin\n    nodes: [{name: erin-1}]\n',
    );
    const upRun = await cli(['dev', 'up', '--dir', dir, '--fleet', fleet, '--providers', '1', '-o', 'json']);
    expect(upRun.stderr).toMatch(/Healthy: registry\/kube-apiserver, dave\/kube-apiserver/);
    expect(upRun.code).toBe(0);
    const report = JSON.parse(upRun.stdout) as { running: boolean; components: { name: string; healthy: boolean }[]; clusters: { name: string; nodesReady?: number; nodesTotal?: number }[] };
    expect(report.running).toBe(true);
    expect(report.clusters.map((c) => c.name)).toEqual(['registry', 'dave']);
    expect(report.clusters[1]).toMatchObject({ nodesReady: 2, nodesTotal: 2 });
    const pids = processesMentioning(dir);
    expect(pids.length).toBe(report.components.length);

    const again = await cli(['dev', 'up', '--dir', dir]);
    expect(again.stderr).toMatch(/already running/);
    expect(again.code).toBe(0);
    expect(processesMentioning(dir).map((p) => p.pid).sort()).toEqual(pids.map((p) => p.pid).sort());

    const st = await cli(['dev', 'status', '--dir', dir]);
    expect(st.code).toBe(0);
    expect(st.stdout).toMatch(/The local federation is running/);
    expect(st.stdout).toMatch(/dave\/kwok\s+\d+\s+healthy/);

    await agentRunsJobsAndSurvivesKill9(dir);

    const downRun = await cli(['dev', 'down', '--dir', dir]);
    expect(downRun.code).toBe(0);
    expect(downRun.stdout).toMatch(new RegExp(`Stopped ${report.components.length} processes; nothing of .* is left running`));
    expect(processesMentioning(dir)).toEqual([]);

    const after = await cli(['dev', 'status', '--dir', dir, '-o', 'yaml']);
    expect(after.code).toBe(1);
    expect(after.stdout).toMatch(/running: false/);
  });

  it('rejects bad input with exit code 2 and a message naming it', async () => {
    const bad = await cli(['dev', 'up', '--dir', dir, '--providers', '0']);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toMatch(/--providers 0: expected a whole number from 1 to 50/);
    const fmt = await cli(['dev', 'status', '--dir', dir, '-o', 'xml']);
    expect(fmt.code).toBe(2);
    expect(fmt.stderr).toMatch(/-o xml: expected one of table, json, yaml/);
    const unknown = await cli(['dev', 'restart']);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toMatch(/unknown command 'restart'[\s\S]*--help/);
    const help = await cli(['dev', 'up', '--help']);
    expect(help.code).toBe(0);
    expect(help.stdout).toMatch(/--providers <n>[\s\S]*Examples:/);
  });

  it('says how to build the tools when they are missing', async () => {
    const empty = mkdtempSync(join(tmpdir(), 'gpufed-no-tools-'));
    const r = await run(process.execPath, [join(repoRoot(), 'dist/cli/src/gpufed.js'), 'dev', 'up', '--dir', join(empty, 'dev')], { env: { ...process.env, GPUFED_BIN_DIR: join(empty, 'bin') } });
    rmSync(empty, { recursive: true, force: true });
    expect(r.code).toBe(1);
    expect(r.stderr).toMatch(/Missing etcd, kube-apiserver, .* build them with `tools\/build.sh`/);
  });
});
