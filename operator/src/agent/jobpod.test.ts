import type { V1ContainerState, V1Pod, V1PodCondition } from '@kubernetes/client-node';
import { AssignmentConditionType, AssignmentReason, findCondition } from '../api/conditions.js';
import type { Assignment, AssignmentSpec, AssignmentStatus, AssignmentStatusPhase, Condition, ResourcesGpu } from '../api/index.js';
import { sampleAssignmentSpec } from '../../../test/fixtures/assignments.js';
import {
  assignmentStatusFromPod,
  buildJobPod,
  DENIED_IPV4,
  DENIED_IPV6,
  InvalidAssignmentError,
  jobPodName,
  jobsNamespace,
  jobsNetworkPolicy,
  type JobPodOptions,
} from './jobpod.js';

// ---------------------------------------------------------------------------------------------
// Builders

const UID = '6d0f3a8e-2b1c-4e5f-9a7b-1c2d3e4f5a6b';
const JOB_UID = '3f1c9a52-7b0e-4d6a-9c21-5e8f0b7d4a13';

/** crds/samples/assignment-train.yaml as the agent reads it, with the changes a test needs. */
function makeAssignment(change: { name?: string; spec?: Partial<AssignmentSpec>; gpu?: Partial<ResourcesGpu> } = {}): Assignment {
  const spec = sampleAssignmentSpec({ jobRef: { namespace: 'carol', name: 'train', uid: JOB_UID }, ...change.spec }, change.gpu);
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'Assignment',
    metadata: { name: change.name ?? 'carol-train-1', namespace: 'gpufed-provider-alice', uid: UID },
    spec,
  };
}

const opts = (o: Partial<JobPodOptions> = {}): JobPodOptions => ({ namespace: 'gpufed-jobs', resourceName: 'nvidia.com/gpu', provider: 'alice', ...o });

const t0 = new Date('2025-06-01T12:00:00.000Z');
const t1 = new Date('2025-06-01T12:00:30.000Z');
const t2 = new Date('2025-06-01T12:05:00.000Z');
const started = new Date('2025-06-01T12:00:05Z');
const finished = new Date('2025-06-01T12:03:05Z');

/** A job pod as the API server would return it in some state. */
/** nodeName null: not bound yet. */
function makePod(status: V1Pod['status'], nodeName: string | null = 'alice-desktop'): V1Pod {
  return { metadata: { name: 'carol-train-1-e1', namespace: 'gpufed-jobs' }, spec: { containers: [{ name: 'job' }], ...(nodeName ? { nodeName } : {}) }, status };
}
const container = (state: V1ContainerState) => [{ name: 'job', image: 'img', imageID: '', ready: false, restartCount: 0, state }];
const terminated = (exitCode: number, reason: string, message?: string): V1ContainerState => ({
  terminated: { exitCode, reason, startedAt: started, finishedAt: finished, ...(message ? { message } : {}) },
});
const scheduledFalse: V1PodCondition = {
  type: 'PodScheduled',
  status: 'False',
  reason: 'Unschedulable',
  message: '0/3 nodes are available: 1 Insufficient nvidia.com/gpu, 2 node(s) didn\'t match Pod\'s node affinity/selector.',
};

// ---------------------------------------------------------------------------------------------

describe('jobsNamespace', () => {
  it('enforces, audits and warns at Pod Security restricted:latest and marks itself as the jobs namespace', () => {
    expect(jobsNamespace('gpufed-jobs')).toEqual({
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: 'gpufed-jobs',
        labels: {
          'pod-security.kubernetes.io/enforce': 'restricted',
          'pod-security.kubernetes.io/enforce-version': 'latest',
          'pod-security.kubernetes.io/audit': 'restricted',
          'pod-security.kubernetes.io/audit-version': 'latest',
          'pod-security.kubernetes.io/warn': 'restricted',
          'pod-security.kubernetes.io/warn-version': 'latest',
          'gpufed.io/jobs': 'true',
          'app.kubernetes.io/managed-by': 'gpufed-agent',
        },
      },
    });
  });
});

describe('jobsNetworkPolicy', () => {
  it('selects every pod, denies all ingress, allows DNS anywhere and egress to the public internet only', () => {
    expect(jobsNetworkPolicy('gpufed-jobs')).toEqual({
      apiVersion: 'networking.k8s.io/v1',
      kind: 'NetworkPolicy',
      metadata: { name: 'gpufed-jobs', namespace: 'gpufed-jobs', labels: { 'app.kubernetes.io/managed-by': 'gpufed-agent' } },
      spec: {
        podSelector: {},
        policyTypes: ['Ingress', 'Egress'],
        egress: [
          { ports: [{ protocol: 'UDP', port: 53 }, { protocol: 'TCP', port: 53 }] },
          {
            to: [
              { ipBlock: { cidr: '0.0.0.0/0', except: ['10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16'] } },
              { ipBlock: { cidr: '::/0', except: ['fc00::/7', 'fe80::/10', '::1/128'] } },
            ],
          },
        ],
      },
    });
  });

  it.each([
    ['the home\'s global IPv6 prefix', ['2001:db8:1234::/48'], [...DENIED_IPV4], [...DENIED_IPV6, '2001:db8:1234::/48']],
    ['the home\'s public IPv4 address', ['203.0.113.7/32'], [...DENIED_IPV4, '203.0.113.7/32'], [...DENIED_IPV6]],
  ])('adds %s to the except list of its family', (_what, denyCidrs, v4, v6) => {
    const to = jobsNetworkPolicy('gpufed-jobs', { denyCidrs }).spec?.egress?.[1]?.to;
    expect(to?.map((p) => p.ipBlock?.except)).toEqual([v4, v6]);
  });

  it.each(['192.168.1.1', '192.168.1.0/33', 'fe80::/129', 'nas.local/24', '10.0.0.0/8/8'])('refuses %s as a CIDR', (cidr) => {
    expect(() => jobsNetworkPolicy('gpufed-jobs', { denyCidrs: [cidr] })).toThrow(/is not a CIDR/);
  });
});

describe('jobPodName', () => {
  it.each([
    ['carol-train-1', 1, 'carol-train-1-e1'],
    ['carol-train-1', 12, 'carol-train-1-e12'],
  ])('names %s epoch %d %s', (name, epoch, want) => {
    expect(jobPodName(name, epoch)).toBe(want);
  });

  it.each([
    ['a long name', `carol-${'x'.repeat(120)}-1`],
    ['a name with dots', 'carol.train.1'],
    ['a name that is all dots', '...'],
  ])('makes a DNS label of at most 63 characters from %s, the same every time', (_what, name) => {
    const podName = jobPodName(name, 3);
    expect(podName.length).toBeLessThanOrEqual(63);
    expect(podName).toMatch(/^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/);
    expect(podName).toMatch(/-e3$/);
    expect(jobPodName(name, 3)).toBe(podName);
  });

  it('keeps long names that share a prefix apart', () => {
    const prefix = `carol-${'x'.repeat(80)}`;
    expect(jobPodName(`${prefix}-a`, 1)).not.toBe(jobPodName(`${prefix}-b`, 1));
  });
});

describe('buildJobPod', () => {
  it('builds the restricted, GPU-limited, deadline-bound pod for the sample Assignment', () => {
    const pod = buildJobPod(makeAssignment(), opts({ annotations: { 'sim.gpufed.io/duration': '2s' } }));
    expect(pod).toEqual({
      apiVersion: 'v1',
      kind: 'Pod',
      metadata: {
        name: 'carol-train-1-e1',
        namespace: 'gpufed-jobs',
        labels: {
          'gpufed.io/assignment': 'carol-train-1',
          'gpufed.io/assignment-uid': UID,
          'gpufed.io/epoch': '1',
          'gpufed.io/job-uid': JOB_UID,
          'gpufed.io/provider': 'alice',
          'app.kubernetes.io/managed-by': 'gpufed-agent',
        },
        annotations: { 'sim.gpufed.io/duration': '2s', 'gpufed.io/assignment-name': 'carol-train-1' },
      },
      spec: {
        restartPolicy: 'Never',
        runtimeClassName: 'nvidia',
        activeDeadlineSeconds: 7200,
        terminationGracePeriodSeconds: 10, // the registry's provider-lost timeout counts on it
        automountServiceAccountToken: false,
        enableServiceLinks: false,
        affinity: {
          nodeAffinity: {
            requiredDuringSchedulingIgnoredDuringExecution: {
              nodeSelectorTerms: [
                {
                  matchExpressions: [
                    { key: 'nvidia.com/gpu.product', operator: 'In', values: ['NVIDIA-GeForce-RTX-4090'] },
                    { key: 'nvidia.com/gpu.memory', operator: 'Gt', values: ['23999'] },
                  ],
                },
              ],
            },
          },
        },
        tolerations: [{ key: 'nvidia.com/gpu', operator: 'Exists', effect: 'NoSchedule' }],
        securityContext: { runAsNonRoot: true, runAsUser: 1000, runAsGroup: 1000, seccompProfile: { type: 'RuntimeDefault' } },
        containers: [
          {
            name: 'job',
            image: 'docker.io/pytorch/pytorch:2.5.1-cuda12.4-cudnn9-runtime',
            command: ['python', 'train.py'],
            env: [{ name: 'PYTHONUNBUFFERED', value: '1' }],
            resources: { requests: { cpu: '4', memory: '16Gi' }, limits: { cpu: '4', memory: '16Gi', 'nvidia.com/gpu': '1' } },
            securityContext: { allowPrivilegeEscalation: false, capabilities: { drop: ['ALL'] }, privileged: false, readOnlyRootFilesystem: false },
            terminationMessagePolicy: 'FallbackToLogsOnError',
            volumeMounts: [
              { name: 'tmp', mountPath: '/tmp' },
              { name: 'dshm', mountPath: '/dev/shm' },
            ],
          },
        ],
        volumes: [
          { name: 'tmp', emptyDir: {} },
          { name: 'dshm', emptyDir: { medium: 'Memory' } },
        ],
      },
    });
  });

  it.each([
    ['two whole RTX 3090s with a memory floor', makeAssignment({ spec: { model: 'NVIDIA-GeForce-RTX-3090' }, gpu: { count: 2 } }), 'nvidia.com/gpu', { 'nvidia.com/gpu': '2' },
      [{ key: 'nvidia.com/gpu.product', operator: 'In', values: ['NVIDIA-GeForce-RTX-3090'] }, { key: 'nvidia.com/gpu.memory', operator: 'Gt', values: ['23999'] }]],
    ['no memory floor', makeAssignment({ gpu: { minMemoryMiB: undefined } }), 'nvidia.com/gpu', { 'nvidia.com/gpu': '1' },
      [{ key: 'nvidia.com/gpu.product', operator: 'In', values: ['NVIDIA-GeForce-RTX-4090'] }]],
    ['a zero memory floor', makeAssignment({ gpu: { minMemoryMiB: 0 } }), 'nvidia.com/gpu', { 'nvidia.com/gpu': '1' },
      [{ key: 'nvidia.com/gpu.product', operator: 'In', values: ['NVIDIA-GeForce-RTX-4090'] }]],
    ['two MIG 1g.10gb slices, the floor on the slice\'s memory label',
      makeAssignment({ spec: { model: 'NVIDIA-A100-SXM4-80GB' }, gpu: { count: 2, models: ['NVIDIA-A100-SXM4-80GB'], sharing: 'MIG', migProfile: '1g.10gb', minMemoryMiB: 9000 } }),
      'nvidia.com/mig-1g.10gb', { 'nvidia.com/mig-1g.10gb': '2' },
      [{ key: 'nvidia.com/gpu.product', operator: 'In', values: ['NVIDIA-A100-SXM4-80GB'] }, { key: 'nvidia.com/mig-1g.10gb.memory', operator: 'Gt', values: ['8999'] }]],
    ['a time slice', makeAssignment({ spec: { model: 'NVIDIA-GeForce-RTX-3060' }, gpu: { models: [], sharing: 'TimeSliced', minMemoryMiB: undefined } }), 'nvidia.com/gpu.shared', { 'nvidia.com/gpu.shared': '1' },
      [{ key: 'nvidia.com/gpu.product', operator: 'In', values: ['NVIDIA-GeForce-RTX-3060'] }]],
    ['a time slice without renaming (GFD appends -SHARED)',
      makeAssignment({ spec: { model: 'NVIDIA-GeForce-RTX-3060-SHARED' }, gpu: { models: ['NVIDIA-GeForce-RTX-3060'], sharing: 'TimeSliced', minMemoryMiB: undefined } }),
      'nvidia.com/gpu', { 'nvidia.com/gpu': '1' },
      [{ key: 'nvidia.com/gpu.product', operator: 'In', values: ['NVIDIA-GeForce-RTX-3060-SHARED'] }]],
  ])('asks for %s', (_what, a, resourceName, gpuLimits, expressions) => {
    const pod = buildJobPod(a, opts({ resourceName }));
    const limits = pod.spec?.containers[0]?.resources?.limits ?? {};
    expect(Object.fromEntries(Object.entries(limits).filter(([k]) => k.startsWith('nvidia.com/')))).toEqual(gpuLimits);
    expect(pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms).toEqual([{ matchExpressions: expressions }]);
  });

  it('pins the node through the scheduler (matchFields), not around it (spec.nodeName)', () => {
    const pod = buildJobPod(makeAssignment(), opts({ nodeName: 'alice-desktop' }));
    expect(pod.spec?.nodeName).toBeUndefined();
    expect(pod.spec?.affinity?.nodeAffinity?.requiredDuringSchedulingIgnoredDuringExecution?.nodeSelectorTerms?.[0]?.matchFields).toEqual([
      { key: 'metadata.name', operator: 'In', values: ['alice-desktop'] },
    ]);
  });

  it.each([
    ['defaults cpu 1 and memory 4Gi', {}, '1', '4Gi'],
    ['writes a numeric cpu as a quantity', { cpu: 8, memory: '64Gi' }, '8', '64Gi'],
    ['keeps millicores', { cpu: '500m', memory: '512Mi' }, '500m', '512Mi'],
  ])('%s, with requests equal to limits', (_what, res, cpu, memory) => {
    const a = makeAssignment();
    a.spec.resources = { gpu: a.spec.resources.gpu, ...res };
    const r = buildJobPod(a, opts()).spec?.containers[0]?.resources;
    expect(r?.requests).toEqual({ cpu, memory });
    expect(r?.limits).toEqual({ cpu, memory, 'nvidia.com/gpu': '1' });
  });

  it('uses the RuntimeClass it is given', () => {
    expect(buildJobPod(makeAssignment(), opts({ runtimeClassName: 'nvidia-cdi' })).spec?.runtimeClassName).toBe('nvidia-cdi');
  });

  it('passes no environment when the job has none, and never one that exposes GPUs', () => {
    const pod = buildJobPod(makeAssignment({ spec: { env: undefined } }), opts());
    expect(pod.spec?.containers[0]?.env).toBeUndefined();
    const withEnv = buildJobPod(makeAssignment({ spec: { env: [{ name: 'HF_HOME', value: '/tmp/hf' }, { name: 'EMPTY' }] } }), opts());
    expect(withEnv.spec?.containers[0]?.env).toEqual([{ name: 'HF_HOME', value: '/tmp/hf' }, { name: 'EMPTY', value: '' }]);
    expect(JSON.stringify(withEnv)).not.toMatch(/NVIDIA_VISIBLE_DEVICES/);
  });

  it('keeps its own annotation over a caller\'s and shortens a long name in the label only', () => {
    const long = `carol-${'y'.repeat(100)}`;
    const pod = buildJobPod(makeAssignment({ name: long }), opts({ annotations: { 'gpufed.io/assignment-name': 'spoofed' } }));
    expect(pod.metadata?.annotations?.['gpufed.io/assignment-name']).toBe(long);
    const label = pod.metadata?.labels?.['gpufed.io/assignment'] ?? '';
    expect(label.length).toBeLessThanOrEqual(63);
    expect(label).toMatch(/^carol-y+-[0-9a-f]{8}$/);
  });

  const mig: Partial<ResourcesGpu> = { models: ['NVIDIA-A100-SXM4-80GB'], sharing: 'MIG', migProfile: '1g.10gb', minMemoryMiB: undefined };
  it.each<[string, Assignment, Partial<JobPodOptions>, string, string]>([
    ['NVIDIA_VISIBLE_DEVICES in env', makeAssignment({ spec: { env: [{ name: 'NVIDIA_VISIBLE_DEVICES', value: 'all' }] } }), {}, 'ReservedEnv', 'spec.env[0].name'],
    ['nvidia_driver_capabilities in env (any case)', makeAssignment({ spec: { env: [{ name: 'A', value: '' }, { name: 'nvidia_driver_capabilities', value: 'all' }] } }), {}, 'ReservedEnv', 'spec.env[1].name'],
    ['a MIG job on whole GPUs', makeAssignment({ spec: { model: 'NVIDIA-A100-SXM4-80GB' }, gpu: mig }), {}, 'InconsistentResources', 'spec.resources.gpu'],
    ['a MIG job on another profile', makeAssignment({ spec: { model: 'NVIDIA-A100-SXM4-80GB' }, gpu: mig }), { resourceName: 'nvidia.com/mig-2g.20gb' }, 'InconsistentResources', 'spec.resources.gpu'],
    ['MIG without a profile', makeAssignment({ spec: { model: 'NVIDIA-A100-SXM4-80GB' }, gpu: { ...mig, migProfile: undefined } }), { resourceName: 'nvidia.com/mig-1g.10gb' }, 'InconsistentResources', 'spec.resources.gpu.migProfile'],
    ['a profile without MIG', makeAssignment({ gpu: { migProfile: '1g.10gb' } }), {}, 'InconsistentResources', 'spec.resources.gpu.migProfile'],
    ['an exclusive job on a shared GPU', makeAssignment(), { resourceName: 'nvidia.com/gpu.shared' }, 'InconsistentResources', 'spec.resources.gpu'],
    ['an exclusive job on a MIG slice', makeAssignment(), { resourceName: 'nvidia.com/mig-1g.10gb' }, 'InconsistentResources', 'spec.resources.gpu'],
    ['a time-sliced job for two GPUs', makeAssignment({ gpu: { sharing: 'TimeSliced', count: 2 } }), { resourceName: 'nvidia.com/gpu.shared' }, 'InconsistentResources', 'spec.resources.gpu.count'],
    ['a model the job did not accept', makeAssignment({ spec: { model: 'NVIDIA-RTX-A6000' } }), {}, 'InconsistentResources', 'spec.model'],
    ['zero GPUs', makeAssignment({ gpu: { count: 0 } }), {}, 'InconsistentResources', 'spec.resources.gpu.count'],
    ['a fractional GPU count', makeAssignment({ gpu: { count: 1.5 } }), {}, 'InconsistentResources', 'spec.resources.gpu.count'],
    ['a negative memory floor', makeAssignment({ gpu: { minMemoryMiB: -1 } }), {}, 'InconsistentResources', 'spec.resources.gpu.minMemoryMiB'],
    ['zero CPU', makeAssignment({ spec: { resources: { gpu: { count: 1 }, cpu: '0' } } }), {}, 'InvalidSpec', 'spec.resources.cpu'],
    ['negative memory', makeAssignment({ spec: { resources: { gpu: { count: 1 }, memory: '-1Gi' } } }), {}, 'InvalidSpec', 'spec.resources.memory'],
    ['memory that is no quantity', makeAssignment({ spec: { resources: { gpu: { count: 1 }, memory: 'lots' } } }), {}, 'InvalidSpec', 'spec.resources.memory'],
    ['epoch 0', makeAssignment({ spec: { epoch: 0 } }), {}, 'InvalidSpec', 'spec.epoch'],
    ['no deadline', makeAssignment({ spec: { maxDurationSeconds: 0 } }), {}, 'InvalidSpec', 'spec.maxDurationSeconds'],
    ['an image with a space', makeAssignment({ spec: { image: 'pytorch latest' } }), {}, 'InvalidSpec', 'spec.image'],
    ['a model that is no label value', makeAssignment({ spec: { model: 'NVIDIA GeForce RTX 4090' }, gpu: { models: [] } }), {}, 'InvalidSpec', 'spec.model'],
  ])('rejects %s', (_what, a, o, reason, field) => {
    let err: unknown;
    try {
      buildJobPod(a, opts(o));
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(InvalidAssignmentError);
    expect(err).toMatchObject({ reason, field, terminal: true });
  });

  it('rejects an Assignment read without its uid (the pod label needs it)', () => {
    const a = makeAssignment();
    delete a.metadata.uid;
    expect(() => buildJobPod(a, opts())).toThrow(InvalidAssignmentError);
  });

  it.each([
    [{ provider: 'Alice' }, /provider "Alice" is not a DNS label/],
    [{ namespace: 'jobs_ns' }, /namespace "jobs_ns" is not a DNS label/],
    [{ resourceName: 'amd.com/gpu' }, /resourceName "amd.com\/gpu"/],
    [{ resourceName: 'nvidia.com/mig-big' }, /resourceName "nvidia.com\/mig-big"/],
  ])('refuses the options %j', (o, message) => {
    expect(() => buildJobPod(makeAssignment(), opts(o))).toThrow(message);
  });
});

describe('assignmentStatusFromPod', () => {
  const pendingConds = (reason: string, message: string, at = '2025-06-01T12:00:00Z'): Condition[] => [
    { type: 'Running', status: 'False', reason, message, lastTransitionTime: at },
    { type: 'Finished', status: 'False', reason, message, lastTransitionTime: at },
  ];

  it.each<[string, V1Pod, AssignmentStatus]>([
    ['a pod with no status yet', makePod(undefined, null),
      { phase: 'Accepted', podName: 'carol-train-1-e1', reason: 'PodPending', message: 'The pod waits for a node', conditions: pendingConds('PodPending', 'The pod waits for a node') }],
    ['an unschedulable pod', makePod({ phase: 'Pending', conditions: [scheduledFalse] }, null),
      { phase: 'Accepted', podName: 'carol-train-1-e1', reason: 'Unschedulable', message: scheduledFalse.message ?? '', conditions: pendingConds('PodPending', scheduledFalse.message ?? '') }],
    ['a pod pulling its image', makePod({ phase: 'Pending', containerStatuses: container({ waiting: { reason: 'ContainerCreating' } }) }),
      { phase: 'Accepted', podName: 'carol-train-1-e1', nodeName: 'alice-desktop', reason: 'ContainerCreating', message: 'The container is waiting: ContainerCreating', conditions: pendingConds('PodPending', 'The container is waiting: ContainerCreating') }],
    ['a pod whose image cannot be pulled', makePod({ phase: 'Pending', containerStatuses: container({ waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image "nope:1"' } }) }),
      { phase: 'Accepted', podName: 'carol-train-1-e1', nodeName: 'alice-desktop', reason: 'ImagePullBackOff', message: 'Back-off pulling image "nope:1"', conditions: pendingConds('ImagePullFailed', 'Back-off pulling image "nope:1"') }],
    ['a pod whose image pull just failed', makePod({ phase: 'Pending', containerStatuses: container({ waiting: { reason: 'ErrImagePull', message: 'pull access denied' } }) }),
      { phase: 'Accepted', podName: 'carol-train-1-e1', nodeName: 'alice-desktop', reason: 'ErrImagePull', message: 'pull access denied', conditions: pendingConds('ImagePullFailed', 'pull access denied') }],
    ['a root image refused by runAsNonRoot', makePod({ phase: 'Pending', containerStatuses: container({ waiting: { reason: 'CreateContainerConfigError', message: 'container has runAsNonRoot and image will run as root' } }) }),
      { phase: 'Accepted', podName: 'carol-train-1-e1', nodeName: 'alice-desktop', reason: 'CreateContainerConfigError', message: 'container has runAsNonRoot and image will run as root',
        conditions: pendingConds('PodPending', 'container has runAsNonRoot and image will run as root') }],
    ['a running pod', makePod({ phase: 'Running', startTime: started, containerStatuses: container({ running: { startedAt: started } }) }),
      { phase: 'Running', podName: 'carol-train-1-e1', nodeName: 'alice-desktop', startTime: '2025-06-01T12:00:05Z', reason: 'PodRunning', message: 'The job runs on alice-desktop',
        conditions: [
          { type: 'Running', status: 'True', reason: 'PodRunning', message: 'The job runs on alice-desktop', lastTransitionTime: '2025-06-01T12:00:00Z' },
          { type: 'Finished', status: 'False', reason: 'PodRunning', message: 'The job runs on alice-desktop', lastTransitionTime: '2025-06-01T12:00:00Z' },
        ] }],
  ])('reports %s', (_what, pod, want) => {
    expect(assignmentStatusFromPod(pod, t0)).toEqual(want);
  });

  const done = (phase: AssignmentStatusPhase, reason: string, condition: string, message: string, exitCode?: number, completionTime = '2025-06-01T12:03:05Z', startTime: string | null = '2025-06-01T12:00:05Z'): AssignmentStatus => ({
    phase,
    podName: 'carol-train-1-e1',
    nodeName: 'alice-desktop',
    ...(startTime ? { startTime } : {}),
    completionTime,
    ...(exitCode === undefined ? {} : { exitCode }),
    reason,
    message,
    conditions: [
      { type: 'Running', status: 'False', reason: condition, message, lastTransitionTime: '2025-06-01T12:00:00Z' },
      { type: 'Finished', status: 'True', reason: condition, message, lastTransitionTime: '2025-06-01T12:00:00Z' },
    ],
  });

  it.each<[string, V1Pod, AssignmentStatus]>([
    ['a pod that succeeded', makePod({ phase: 'Succeeded', containerStatuses: container(terminated(0, 'Completed')) }),
      done('Succeeded', 'Completed', AssignmentReason.Completed, 'The job completed', 0)],
    ['a pod that succeeded with a termination message', makePod({ phase: 'Succeeded', containerStatuses: container(terminated(0, 'Completed', 'loss=0.12\n')) }),
      done('Succeeded', 'Completed', AssignmentReason.Completed, 'loss=0.12', 0)],
    ['a container that exited 3, with its log tail', makePod({ phase: 'Failed', containerStatuses: container(terminated(3, 'Error', 'Traceback ...\nValueError: bad batch\n')) }),
      done('Failed', 'Error', AssignmentReason.ContainerFailed, 'Traceback ...\nValueError: bad batch', 3)],
    ['a container that exited 1 without a message', makePod({ phase: 'Failed', containerStatuses: container(terminated(1, 'Error')) }),
      done('Failed', 'Error', AssignmentReason.ContainerFailed, 'The container exited with code 1', 1)],
    ['a container killed for memory', makePod({ phase: 'Failed', containerStatuses: container(terminated(137, 'OOMKilled')) }),
      done('Failed', 'OOMKilled', AssignmentReason.ContainerFailed, 'The container exited with code 137', 137)],
    ['a pod past its activeDeadlineSeconds', makePod({ phase: 'Failed', reason: 'DeadlineExceeded', message: 'Pod was active on the node longer than the specified deadline', containerStatuses: container(terminated(137, 'Error')) }),
      done('Failed', 'DeadlineExceeded', AssignmentReason.DeadlineExceeded, 'Pod was active on the node longer than the specified deadline', 137)],
    ['an evicted pod', makePod({ phase: 'Failed', reason: 'Evicted', message: 'The node was low on resource: memory.', containerStatuses: container(terminated(137, 'ContainerStatusUnknown')) }),
      done('Failed', 'Evicted', AssignmentReason.PodLost, 'The node was low on resource: memory.', 137)],
    ['a pod the kubelet could not admit (reason made CamelCase)', makePod({ phase: 'Failed', reason: 'OutOfnvidia.com/gpu', message: 'Node didn\'t have enough resource: nvidia.com/gpu' }),
      done('Failed', 'OutOfnvidiaComGpu', AssignmentReason.PodLost, 'Node didn\'t have enough resource: nvidia.com/gpu', undefined, '2025-06-01T12:00:00Z', null)],
    ['a pod killed by a NoExecute taint', makePod({ phase: 'Failed', conditions: [{ type: 'DisruptionTarget', status: 'True', reason: 'DeletionByTaintManager', message: 'Taint manager: deleting due to NoExecute taint' }], containerStatuses: container(terminated(137, 'Error')) }),
      done('Failed', 'DeletionByTaintManager', AssignmentReason.PodLost, 'Taint manager: deleting due to NoExecute taint', 137)],
  ])('reports %s', (_what, pod, want) => {
    expect(assignmentStatusFromPod(pod, t0)).toEqual(want);
  });

  it('reports a pod whose node stopped reporting as Unknown, keeping the phase it had', () => {
    const s = assignmentStatusFromPod(makePod({ phase: 'Unknown' }), t0, { phase: 'Running' });
    expect(s.phase).toBe('Running');
    expect(findCondition(s.conditions, 'Running')).toMatchObject({ status: 'Unknown', reason: 'PodStatusUnknown' });
  });

  it('caps a long message at 4096 characters', () => {
    const s = assignmentStatusFromPod(makePod({ phase: 'Failed', containerStatuses: container(terminated(1, 'Error', 'x'.repeat(10_000))) }), t0);
    expect(s.message?.length).toBe(4096);
  });

  describe('stability', () => {
    const pods: [string, V1Pod][] = [
      ['pending', makePod({ phase: 'Pending', conditions: [scheduledFalse] }, null)],
      ['running', makePod({ phase: 'Running', containerStatuses: container({ running: { startedAt: started } }) })],
      ['succeeded', makePod({ phase: 'Succeeded', containerStatuses: container(terminated(0, 'Completed')) })],
      ['failed before it ran (no finishedAt)', makePod({ phase: 'Failed', reason: 'DeadlineExceeded', message: 'deadline', containerStatuses: container({ waiting: { reason: 'ImagePullBackOff' } }) })],
    ];
    it.each(pods)('gives the same status for an unchanged %s pod at a later time', (_what, pod) => {
      const first = assignmentStatusFromPod(pod, t0, { observedEpoch: 1 });
      expect(assignmentStatusFromPod(pod, t2, first)).toEqual(first);
    });

    it('stamps a completion without finishedAt at the first sight of it and keeps it', () => {
      const pod = pods[3]?.[1] ?? makePod(undefined);
      const first = assignmentStatusFromPod(pod, t1);
      expect(first.completionTime).toBe('2025-06-01T12:00:30Z');
      expect(first.exitCode).toBeUndefined();
      expect(assignmentStatusFromPod(pod, t2, first).completionTime).toBe('2025-06-01T12:00:30Z');
    });

    it('moves lastTransitionTime only for conditions that flip, and keeps the fields the agent owns elsewhere', () => {
      const accepted = { type: AssignmentConditionType.Accepted, status: 'True' as const, reason: AssignmentReason.PodCreated, message: 'pod created', lastTransitionTime: '2025-06-01T11:59:00Z' };
      const pending = assignmentStatusFromPod(makePod({ phase: 'Pending' }), t0, { observedGeneration: 1, observedEpoch: 1, phase: 'Accepted', conditions: [accepted] });
      const running = assignmentStatusFromPod(makePod({ phase: 'Running', containerStatuses: container({ running: { startedAt: started } }) }), t1, pending);
      const succeeded = assignmentStatusFromPod(makePod({ phase: 'Succeeded', containerStatuses: container(terminated(0, 'Completed')) }), t2, running);
      expect(succeeded.observedGeneration).toBe(1);
      expect(succeeded.observedEpoch).toBe(1);
      expect(findCondition(succeeded.conditions, 'Accepted')).toEqual(accepted);
      expect(findCondition(running.conditions, 'Running')?.lastTransitionTime).toBe('2025-06-01T12:00:30Z');
      expect(findCondition(running.conditions, 'Finished')?.lastTransitionTime).toBe('2025-06-01T12:00:00Z');
      expect(findCondition(succeeded.conditions, 'Running')?.lastTransitionTime).toBe('2025-06-01T12:05:00Z');
      expect(findCondition(succeeded.conditions, 'Finished')?.lastTransitionTime).toBe('2025-06-01T12:05:00Z');
      expect(succeeded.startTime).toBe('2025-06-01T12:00:05Z');
    });

    it('reads times from plain JSON pods too (strings, not Dates)', () => {
      const plain = JSON.parse(JSON.stringify(makePod({ phase: 'Succeeded', containerStatuses: container(terminated(0, 'Completed')) }))) as V1Pod;
      expect(assignmentStatusFromPod(plain, t0)).toMatchObject({ startTime: '2025-06-01T12:00:05Z', completionTime: '2025-06-01T12:03:05Z' });
    });
  });
});
