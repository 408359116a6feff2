// Job pods on the real provider clusters: the jobs Namespace under Pod Security `restricted` and its
// NetworkPolicy as the API server stores them, pods from buildJobPod admitted without a warning,
// bound by the real kube-scheduler to the node of the right model, run by KWOK, and
// assignmentStatusFromPod's view of the real pods accepted by the registry's Assignment schema.
import { randomUUID } from 'node:crypto';
import * as k8s from '@kubernetes/client-node';
import { assignmentStatusFromPod, buildJobPod, jobsNamespace, jobsNetworkPolicy, type JobPodOptions } from '../../operator/src/agent/jobpod.js';
import { findCondition } from '../../operator/src/api/conditions.js';
import { AssignmentResource, type Assignment, type AssignmentSpec, type AssignmentStatus, type ResourcesGpu } from '../../operator/src/api/index.js';
import { sampleAssignmentSpec } from '../fixtures/assignments.js';
import { apiErrorMessage } from '../../operator/src/kube/errors.js';
import { eventually, kubeConfig, kubectl } from '../support/federation.js';

const core = (cluster: string) => kubeConfig(cluster).makeApiClient(k8s.CoreV1Api);
const networking = (cluster: string) => kubeConfig(cluster).makeApiClient(k8s.NetworkingV1Api);
const registry = () => kubeConfig('registry').makeApiClient(k8s.CustomObjectsApi);
const { group, version, plural } = AssignmentResource;

let seq = 0;
const unique = (prefix: string) => `${prefix}-${Date.now().toString(36)}-${seq++}`;
const namespaces: [string, string][] = [];

/** A jobs namespace as the agent makes it: restricted, with the NetworkPolicy, and its default ServiceAccount. */
async function makeJobsNamespace(cluster: string): Promise<string> {
  const name = unique('gpufed-jobs-it');
  await core(cluster).createNamespace({ body: jobsNamespace(name) });
  namespaces.push([cluster, name]);
  await networking(cluster).createNamespacedNetworkPolicy({ namespace: name, body: jobsNetworkPolicy(name) });
  await eventually(`ServiceAccount default in ${name}`, () => core(cluster).readNamespacedServiceAccount({ name: 'default', namespace: name }));
  return name;
}

/** A namespace on the registry standing in for gpufed-provider-<name>, so statuses meet the real CRD. */
let assignmentNamespace = '';

/** crds/samples/assignment-train.yaml with the changes a test needs, created on the registry (for its uid). */
async function makeAssignment(name: string, spec: Partial<AssignmentSpec>, gpu: Partial<ResourcesGpu> = {}): Promise<Assignment> {
  const base = sampleAssignmentSpec({ jobRef: { namespace: 'carol', name, uid: randomUUID() }, ...spec }, gpu);
  const body: Assignment = { apiVersion: AssignmentResource.apiVersion, kind: 'Assignment', metadata: { name: `carol-${name}-1`, namespace: assignmentNamespace }, spec: base };
  return (await registry().createNamespacedCustomObject({ group, version, plural, namespace: assignmentNamespace, body })) as Assignment;
}

/** Writes a status to the registry's Assignment: the CRD's schema (reason pattern, date-times, enums) must accept it. */
async function writeStatus(a: Assignment, status: AssignmentStatus): Promise<AssignmentStatus | undefined> {
  const current = (await registry().getNamespacedCustomObject({ group, version, plural, namespace: assignmentNamespace, name: a.metadata.name ?? '' })) as Assignment;
  const stored = (await registry().replaceNamespacedCustomObjectStatus({ group, version, plural, namespace: assignmentNamespace, name: a.metadata.name ?? '', body: { ...current, status } })) as Assignment;
  return stored.status;
}

/** Server-side dry run through kubectl, which prints Pod Security warnings on stderr. */
async function dryRun(cluster: string, pod: k8s.V1Pod): Promise<{ code: number; stderr: string }> {
  const r = await kubectl(cluster, ['create', '--dry-run=server', '-o', 'name', '-f', '-'], JSON.stringify(pod));
  return { code: r.code, stderr: r.stderr };
}

async function createAdmitted(cluster: string, pod: k8s.V1Pod): Promise<void> {
  const dry = await dryRun(cluster, pod);
  expect(dry).toEqual({ code: 0, stderr: '' });
  await core(cluster).createNamespacedPod({ namespace: pod.metadata?.namespace ?? '', body: pod });
}

async function podWhen(cluster: string, pod: k8s.V1Pod, what: string, ok: (p: k8s.V1Pod) => boolean): Promise<k8s.V1Pod> {
  const name = pod.metadata?.name ?? '';
  const namespace = pod.metadata?.namespace ?? '';
  return eventually(`pod ${name} ${what}`, async () => {
    const p = await core(cluster).readNamespacedPod({ name, namespace });
    return ok(p) ? p : undefined;
  }, 60_000, 100);
}
const inPhase = (phase: string) => (p: k8s.V1Pod) => p.status?.phase === phase;
const unschedulable = (p: k8s.V1Pod) => p.status?.conditions?.some((c) => c.type === 'PodScheduled' && c.status === 'False') ?? false;

const sim = (duration: string, exitCode = 0) => ({ 'sim.gpufed.io/duration': duration, 'sim.gpufed.io/exit-code': String(exitCode) });
const jobOpts = (namespace: string, provider: string, o: Partial<JobPodOptions> = {}): JobPodOptions => ({ namespace, provider, resourceName: 'nvidia.com/gpu', ...o });

beforeAll(async () => {
  assignmentNamespace = unique('it-jobpod');
  await core('registry').createNamespace({ body: { metadata: { name: assignmentNamespace } } });
  namespaces.push(['registry', assignmentNamespace]);
});

afterAll(async () => {
  // Deleting a namespace deletes its pods; KWOK's pod-delete stage finishes them at once.
  for (const [cluster, name] of namespaces) await core(cluster).deleteNamespace({ name }).catch(() => undefined);
});

describe('the jobs namespace on a real provider cluster', () => {
  let ns = '';
  beforeAll(async () => {
    ns = await makeJobsNamespace('alice');
  });

  it('carries the restricted Pod Security labels', async () => {
    const stored = await core('alice').readNamespace({ name: ns });
    expect(stored.metadata?.labels).toMatchObject({
      'pod-security.kubernetes.io/enforce': 'restricted',
      'pod-security.kubernetes.io/enforce-version': 'latest',
      'gpufed.io/jobs': 'true',
    });
  });

  it('stores the NetworkPolicy with every CIDR as written', async () => {
    const sent = jobsNetworkPolicy(ns);
    const stored = await networking('alice').readNamespacedNetworkPolicy({ name: 'gpufed-jobs', namespace: ns });
    expect(stored.spec?.podSelector).toEqual({});
    expect(stored.spec?.policyTypes).toEqual(['Ingress', 'Egress']);
    expect(stored.spec?.ingress).toBeUndefined();
    expect(stored.spec?.egress?.[0]?.ports).toEqual([{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }]);
    expect(stored.spec?.egress?.[0]?.to).toBeUndefined();
    expect(stored.spec?.egress?.[1]?.to).toEqual(sent.spec?.egress?.[1]?.to);
    expect(stored.spec?.egress?.[1]?.to?.map((p) => p.ipBlock?.cidr)).toEqual(['0.0.0.0/0', '::/0']);
  });

  it('refuses a privileged pod and a root pod there, which the same cluster admits elsewhere', async () => {
    const a = await makeAssignment('rogue', {});
    const privileged = buildJobPod(a, jobOpts(ns, 'alice'));
    privileged.metadata = { ...privileged.metadata, name: 'privileged' };
    const c = privileged.spec?.containers[0];
    if (c) c.securityContext = { privileged: true, allowPrivilegeEscalation: true };
    const root = buildJobPod(a, jobOpts(ns, 'alice'));
    root.metadata = { ...root.metadata, name: 'root' };
    if (root.spec) root.spec.securityContext = { runAsUser: 0 };

    for (const [pod, violation] of [[privileged, /privileged \(container "job" must not set securityContext\.privileged=true\)/], [root, /runAsUser=0/]] as const) {
      const err: unknown = await core('alice').createNamespacedPod({ namespace: ns, body: pod }).then(() => undefined, (e: unknown) => e);
      expect(err).toMatchObject({ code: 403 });
      expect(apiErrorMessage(err)).toMatch(/violates PodSecurity "restricted:latest"/);
      expect(apiErrorMessage(err)).toMatch(violation);
      // In a namespace without the labels the API server (--allow-privileged) lets it through.
      const elsewhere = await dryRun('alice', { ...pod, metadata: { ...pod.metadata, namespace: 'default' } });
      expect(elsewhere.code).toBe(0);
    }
  });
});

describe('job pods on alice', () => {
  let ns = '';
  beforeAll(async () => {
    ns = await makeJobsNamespace('alice');
  });

  it('runs an RTX 4090 job on alice-desktop to success, and its status goes Running then Succeeded', async () => {
    const a = await makeAssignment('train-4090', {});
    const pod = buildJobPod(a, jobOpts(ns, 'alice', { annotations: sim('2s') }));
    await createAdmitted('alice', pod);

    const running = await podWhen('alice', pod, 'Running', inPhase('Running'));
    expect(running.spec?.nodeName).toBe('alice-desktop');
    const s1 = assignmentStatusFromPod(running, new Date(), { observedEpoch: 1, phase: 'Accepted' });
    expect(s1).toMatchObject({ phase: 'Running', podName: pod.metadata?.name, nodeName: 'alice-desktop', reason: 'PodRunning' });
    expect(s1.startTime).toMatch(/^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$/);
    expect(findCondition(s1.conditions, 'Running')?.status).toBe('True');
    expect(await writeStatus(a, s1)).toEqual(s1);

    const done = await podWhen('alice', pod, 'Succeeded', inPhase('Succeeded'));
    const s2 = assignmentStatusFromPod(done, new Date(), s1);
    expect(s2).toMatchObject({ phase: 'Succeeded', exitCode: 0, reason: 'Completed', nodeName: 'alice-desktop', startTime: s1.startTime });
    expect(Date.parse(s2.completionTime ?? '')).toBeGreaterThanOrEqual(Date.parse(s2.startTime ?? ''));
    expect(findCondition(s2.conditions, 'Finished')).toMatchObject({ status: 'True', reason: 'Completed' });
    // Unchanged pod, later clock: nothing to patch.
    expect(assignmentStatusFromPod(done, new Date(Date.now() + 60_000), s2)).toEqual(s2);
    expect(await writeStatus(a, s2)).toEqual(s2);
  });

  it('runs a job on both RTX 3090s of alice-tower and reports its failure with the exit code and reason Error', async () => {
    const a = await makeAssignment('train-3090x2', { model: 'NVIDIA-GeForce-RTX-3090' }, { count: 2 });
    const pod = buildJobPod(a, jobOpts(ns, 'alice', { annotations: sim('2s', 3) }));
    expect(pod.spec?.containers[0]?.resources?.limits?.['nvidia.com/gpu']).toBe('2');
    await createAdmitted('alice', pod);

    const failed = await podWhen('alice', pod, 'Failed', inPhase('Failed'));
    expect(failed.spec?.nodeName).toBe('alice-tower');
    const s = assignmentStatusFromPod(failed, new Date(), { observedEpoch: 1 });
    expect(s).toMatchObject({ phase: 'Failed', exitCode: 3, reason: 'Error', nodeName: 'alice-tower' });
    expect(findCondition(s.conditions, 'Finished')).toMatchObject({ status: 'True', reason: 'ContainerFailed' });
    expect(await writeStatus(a, s)).toEqual(s);
  });

  it('pins through the scheduler: a 4090 job pinned to the 3090 tower stays Unschedulable', async () => {
    const a = await makeAssignment('pinned-wrong', {});
    const pod = buildJobPod(a, jobOpts(ns, 'alice', { nodeName: 'alice-tower' }));
    await createAdmitted('alice', pod);
    const pending = await podWhen('alice', pod, 'Unschedulable', unschedulable);
    const s = assignmentStatusFromPod(pending, new Date());
    expect(s).toMatchObject({ phase: 'Accepted', reason: 'Unschedulable' });
    expect(s.message).toMatch(/didn't match Pod's node affinity\/selector/);
    expect(await writeStatus(a, s)).toEqual(s);
  });
});

describe('job pods on bob', () => {
  let ns = '';
  beforeAll(async () => {
    ns = await makeJobsNamespace('bob');
  });

  const mig: Partial<ResourcesGpu> = { models: ['NVIDIA-A100-SXM4-80GB'], sharing: 'MIG', migProfile: '1g.10gb', minMemoryMiB: 9000 };

  it.each<[string, string, Partial<AssignmentSpec>, Partial<ResourcesGpu>, string, string]>([
    ['a MIG 1g.10gb slice', 'mig', { model: 'NVIDIA-A100-SXM4-80GB' }, mig, 'nvidia.com/mig-1g.10gb', 'bob-a100'],
    ['a time slice of the RTX 3060', 'shared', { model: 'NVIDIA-GeForce-RTX-3060' }, { models: ['NVIDIA-GeForce-RTX-3060'], sharing: 'TimeSliced', minMemoryMiB: 12000 }, 'nvidia.com/gpu.shared', 'bob-shared'],
  ])('runs %s on its node', async (_what, name, spec, gpu, resourceName, node) => {
    const a = await makeAssignment(name, spec, gpu);
    const pod = buildJobPod(a, jobOpts(ns, 'bob', { resourceName, annotations: sim('1s') }));
    await createAdmitted('bob', pod);
    const done = await podWhen('bob', pod, 'Succeeded', inPhase('Succeeded'));
    expect(done.spec?.nodeName).toBe(node);
    const s = assignmentStatusFromPod(done, new Date());
    expect(s).toMatchObject({ phase: 'Succeeded', exitCode: 0, nodeName: node });
    expect(await writeStatus(a, s)).toEqual(s);
  });

  it('reads a MIG memory floor from the slice, not the parent GPU: 20000 MiB does not fit a 1g.10gb slice', async () => {
    const a = await makeAssignment('mig-too-big', { model: 'NVIDIA-A100-SXM4-80GB' }, { ...mig, minMemoryMiB: 20000 });
    const pod = buildJobPod(a, jobOpts(ns, 'bob', { resourceName: 'nvidia.com/mig-1g.10gb' }));
    await createAdmitted('bob', pod);
    const pending = await podWhen('bob', pod, 'Unschedulable', unschedulable);
    expect(assignmentStatusFromPod(pending, new Date())).toMatchObject({ phase: 'Accepted', reason: 'Unschedulable' });
  });
});
