// Running assigned work: the objects the agent creates in its own cluster for an Assignment (the
// jobs Namespace, its NetworkPolicy, one Pod per Assignment) and what Assignment.status says about
// that Pod. Pure: the run controller gathers the Assignment and the Pod, calls these, creates what
// is missing and patches the status only when the result differs from what the registry has.
//
// A job is a stranger's container on somebody's home machine, so everything here leans towards
// isolation: Pod Security `restricted`, no service-account token, no service links, egress to the
// public internet only, one container with exactly the GPUs it pays for.
import { isIPv4, isIPv6 } from 'node:net';
import type {
  V1Container,
  V1ContainerStatus,
  V1Namespace,
  V1NetworkPolicy,
  V1NodeSelectorRequirement,
  V1NodeSelectorTerm,
  V1Pod,
} from '@kubernetes/client-node';
import { AssignmentConditionType, AssignmentReason, formatTime, setCondition, type ConditionUpdate } from '../api/conditions.js';
import type { Assignment, AssignmentSpec, AssignmentStatus, AssignmentStatusPhase } from '../api/index.js';
import { GPU_RESOURCE, MEMORY_LABEL, MIG_RESOURCE_PREFIX, PRODUCT_LABEL, SHARED_GPU_RESOURCE } from '../api/gpus.js';
import { AGENT_MANAGED_BY as MANAGED_BY, ASSIGNMENT_NAME_ANNOTATION, JobLabel, shortHash } from '../api/labels.js';
import { JOB_STOP_GRACE_SECONDS } from '../fencing/bound.js';

/** The one container of a job pod. */
export const JOB_CONTAINER = 'job';
/** The RuntimeClass of the NVIDIA container runtime (k3s registers it under this name). */
export const DEFAULT_RUNTIME_CLASS = 'nvidia';
/** Defaults of ComputeJob.spec.resources.cpu and .memory (the CRD's defaults). */
export const DEFAULT_CPU = '1';
export const DEFAULT_MEMORY = '4Gi';
/** The numeric user and group every job runs as (see buildJobPod). */
export const JOB_UID = 1000;



/**
 * Private, shared and special IPv4 ranges a job must not reach: RFC 1918 (the home LAN, the router,
 * the NAS, and the cluster's own pod and service networks), CGNAT (100.64/10: ISP carrier NAT and
 * Tailscale-style overlays), link-local (169.254/16: cloud metadata, DHCP-less devices) and loopback.
 */
export const DENIED_IPV4 = ['10.0.0.0/8', '100.64.0.0/10', '127.0.0.0/8', '169.254.0.0/16', '172.16.0.0/12', '192.168.0.0/16'] as const;
/** The IPv6 counterparts: unique local (fc00::/7), link-local (fe80::/10) and loopback. */
export const DENIED_IPV6 = ['fc00::/7', 'fe80::/10', '::1/128'] as const;

/** Condition and status reasons this file needs that operator/src/api/conditions.ts does not have yet. */
export const PodStatusUnknown = 'PodStatusUnknown';

// ---------------------------------------------------------------------------------------------
// Errors

/** Why an Assignment cannot become a pod; terminal (retrying the same spec fails the same way). */
export type InvalidAssignmentReason = 'InvalidSpec' | 'ReservedEnv' | 'InconsistentResources';

/**
 * The Assignment cannot be run as it is. Terminal: the agent reports it (Accepted=False) and does
 * not retry, since the spec is immutable.
 */
export class InvalidAssignmentError extends Error {
  readonly terminal = true;
  constructor(
    readonly reason: InvalidAssignmentReason,
    readonly field: string,
    message: string,
  ) {
    super(`${field}: ${message}`);
    this.name = 'InvalidAssignmentError';
  }
}

// ---------------------------------------------------------------------------------------------
// The jobs Namespace and its NetworkPolicy

const PSA = 'pod-security.kubernetes.io';

/**
 * The local Namespace job pods run in. Pod Security Admission enforces the `restricted` profile in
 * it, so even a bug in buildJobPod cannot create a privileged, root or host-namespace pod there;
 * audit and warn at the same level make any drift visible. `latest` follows the cluster's version
 * of the profile, which only ever tightens.
 */
export function jobsNamespace(name: string): V1Namespace {
  return {
    apiVersion: 'v1',
    kind: 'Namespace',
    metadata: {
      name,
      labels: {
        [`${PSA}/enforce`]: 'restricted',
        [`${PSA}/enforce-version`]: 'latest',
        [`${PSA}/audit`]: 'restricted',
        [`${PSA}/audit-version`]: 'latest',
        [`${PSA}/warn`]: 'restricted',
        [`${PSA}/warn-version`]: 'latest',
        [JobLabel.Jobs]: 'true',
        [JobLabel.ManagedBy]: MANAGED_BY,
      },
    },
  };
}

export interface JobsNetworkPolicyOptions {
  /**
   * More CIDRs to keep jobs away from, e.g. the home's delegated global IPv6 prefix (LAN devices
   * with IPv6 have public addresses, which `::/0` would otherwise allow) or the home's own public
   * IPv4 address (hairpin NAT reaches the router).
   */
  denyCidrs?: readonly string[];
}

function parseCidr(cidr: string): 4 | 6 {
  const [addr, bits, ...rest] = cidr.split('/');
  const prefix = Number(bits);
  const family = addr !== undefined && isIPv4(addr) ? 4 : addr !== undefined && isIPv6(addr) ? 6 : undefined;
  if (family === undefined || rest.length > 0 || !/^\d{1,3}$/.test(bits ?? '') || prefix > (family === 4 ? 32 : 128)) {
    throw new Error(`"${cidr}" is not a CIDR like 203.0.113.0/24 or 2001:db8::/48`);
  }
  return family;
}

/**
 * The NetworkPolicy of the jobs Namespace: every pod in it gets no ingress at all, and egress only
 * to DNS and to the public internet.
 *
 * Why: a provider's cluster sits on a home network. Without this a job could reach the provider's
 * router admin page, NAS shares, printers, cameras and smart-home hubs, other machines' SSH and
 * SMB, the kubelet and the Kubernetes API on the node, other pods, and cloud-style metadata
 * services at 169.254.169.254 — all of which trust "anything on the LAN". A training job needs
 * none of that: it downloads images, datasets and weights from the internet and perhaps uploads
 * results. DNS (UDP and TCP 53) is allowed to any address because the cluster DNS service (kube-dns
 * / CoreDNS, 10.43.0.10 on k3s) has a private address; nothing else on port 53 is worth protecting.
 *
 * A NetworkPolicy is only as good as the CNI enforcing it: k3s's embedded network-policy
 * controller (on unless k3s runs with --disable-network-policy) does; flannel alone does not.
 */
export function jobsNetworkPolicy(namespace: string, opts: JobsNetworkPolicyOptions = {}): V1NetworkPolicy {
  const extra = { 4: [] as string[], 6: [] as string[] };
  for (const cidr of opts.denyCidrs ?? []) extra[parseCidr(cidr)].push(cidr);
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: { name: 'gpufed-jobs', namespace, labels: { [JobLabel.ManagedBy]: MANAGED_BY } },
    spec: {
      podSelector: {},
      // Ingress listed with no ingress rules: nothing may connect to a job.
      policyTypes: ['Ingress', 'Egress'],
      egress: [
        {
          ports: [
            { protocol: 'UDP', port: 53 },
            { protocol: 'TCP', port: 53 },
          ],
        },
        {
          to: [
            { ipBlock: { cidr: '0.0.0.0/0', except: [...DENIED_IPV4, ...extra[4]] } },
            { ipBlock: { cidr: '::/0', except: [...DENIED_IPV6, ...extra[6]] } },
          ],
        },
      ],
    },
  };
}

// ---------------------------------------------------------------------------------------------
// The job pod

export interface JobPodOptions {
  /** The local jobs Namespace. */
  namespace: string;
  /** The NVIDIA RuntimeClass; default `nvidia`. */
  runtimeClassName?: string;
  /**
   * The extended resource the agent's fit check chose: `nvidia.com/gpu`, `nvidia.com/gpu.shared` or
   * `nvidia.com/mig-<profile>`.
   */
  resourceName: string;
  /** The provider's name (labels the pod for metering). */
  provider: string;
  /** Pin the pod to this node (the fit check's choice); the scheduler still checks everything else. */
  nodeName?: string;
  /** Extra pod annotations (the local federation's `sim.gpufed.io/*`). */
  annotations?: Record<string, string>;
}

const LABEL_VALUE = /^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$/;
const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
const QUANTITY = /^(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$/;
const MIG_PROFILE = /^[1-8]g\.[1-9][0-9]{0,3}gb$/;

/**
 * `text` made into at most `max` characters of lowercase letters, digits and '-'; when that changed
 * anything or had to cut, a hash of the original keeps distinct inputs distinct.
 */
function boundedName(text: string, max: number): string {
  const clean = text.toLowerCase().replace(/[^a-z0-9-]+/g, '-').replace(/^-+|-+$/g, '');
  if (clean === text && clean.length > 0 && clean.length <= max) return clean;
  const head = clean.slice(0, max - 9).replace(/-+$/, '');
  return head === '' ? shortHash(text) : `${head}-${shortHash(text)}`;
}

/**
 * The pod's name: `<assignment>-e<epoch>`, a DNS-1123 label of at most 63 characters (the pod's
 * hostname), the same on every call so a re-run of the controller finds the pod it made.
 */
export function jobPodName(assignmentName: string, epoch: number): string {
  const suffix = `-e${epoch}`;
  return `${boundedName(assignmentName, 63 - suffix.length)}${suffix}`;
}

function labelValue(field: string, value: string): string {
  if (value.length > 63 || !LABEL_VALUE.test(value)) {
    throw new InvalidAssignmentError('InvalidSpec', field, `"${value}" cannot be a label value`);
  }
  return value;
}

/** Env names that configure the NVIDIA container runtime: NVIDIA_VISIBLE_DEVICES=all would hand out every GPU. */
function checkEnv(env: AssignmentSpec['env']): void {
  (env ?? []).forEach((e, i) => {
    if (e.name.toUpperCase().startsWith('NVIDIA_')) {
      throw new InvalidAssignmentError('ReservedEnv', `spec.env[${i}].name`, `${e.name} is reserved: NVIDIA_* variables configure the NVIDIA container runtime`);
    }
  });
}

function quantity(field: string, v: number | string | undefined, fallback: string): string {
  const s = v === undefined ? fallback : String(v);
  const number = Number(/^[0-9.]*/.exec(s)?.[0]);
  if (!QUANTITY.test(s) || !(number > 0)) throw new InvalidAssignmentError('InvalidSpec', field, `"${s}" is not a positive Kubernetes quantity`);
  return s;
}

const inconsistent = (field: string, message: string) => new InvalidAssignmentError('InconsistentResources', field, message);

/** The sharing mode must match the resource the fit check chose; returns the GPU memory label to filter on. */
function checkSharing(gpu: AssignmentSpec['resources']['gpu'], resourceName: string): string {
  const sharing = gpu.sharing ?? 'Exclusive';
  if (gpu.migProfile !== undefined && sharing !== 'MIG') throw inconsistent('spec.resources.gpu.migProfile', `set but sharing is ${sharing}`);
  if (sharing === 'MIG') {
    if (gpu.migProfile === undefined || !MIG_PROFILE.test(gpu.migProfile)) throw inconsistent('spec.resources.gpu.migProfile', 'sharing MIG needs a profile such as 1g.10gb');
    const want = `${MIG_RESOURCE_PREFIX}${gpu.migProfile}`;
    if (resourceName !== want) throw inconsistent('spec.resources.gpu', `a MIG ${gpu.migProfile} job needs ${want}, not ${resourceName}`);
    // GFD's mixed strategy labels each profile's own memory; nvidia.com/gpu.memory is the parent's.
    return `${want}.memory`;
  }
  if (sharing === 'TimeSliced') {
    if (gpu.count !== 1) throw inconsistent('spec.resources.gpu.count', 'a time-sliced job shares one GPU; count must be 1');
    // nvidia.com/gpu: time-slicing without renaming (or a whole GPU, which is better than a slice).
    if (resourceName !== SHARED_GPU_RESOURCE && resourceName !== GPU_RESOURCE) throw inconsistent('spec.resources.gpu', `a time-sliced job runs on ${SHARED_GPU_RESOURCE} or ${GPU_RESOURCE}, not ${resourceName}`);
    return MEMORY_LABEL;
  }
  // An exclusive job must never land on a slice shared with other tenants.
  if (resourceName !== GPU_RESOURCE) throw inconsistent('spec.resources.gpu', `an exclusive job runs on whole GPUs (${GPU_RESOURCE}), not ${resourceName}`);
  return MEMORY_LABEL;
}

/** Checks the GPU part of the spec; returns the node-selector requirements for the model and memory. */
function gpuRequirements(spec: AssignmentSpec, resourceName: string): V1NodeSelectorRequirement[] {
  const gpu = spec.resources.gpu;
  if (!Number.isInteger(gpu.count) || gpu.count < 1 || gpu.count > 64) throw inconsistent('spec.resources.gpu.count', `expected 1 to 64, got ${gpu.count}`);
  const memoryLabel = checkSharing(gpu, resourceName);
  const model = labelValue('spec.model', spec.model);
  const models = gpu.models ?? [];
  // Time-slicing without renaming makes GFD append -SHARED to the product.
  if (models.length > 0 && !models.some((m) => m === model || (gpu.sharing === 'TimeSliced' && `${m}-SHARED` === model))) {
    throw inconsistent('spec.model', `${model} is not one of the job's models (${models.join(', ')})`);
  }
  const reqs: V1NodeSelectorRequirement[] = [{ key: PRODUCT_LABEL, operator: 'In', values: [model] }];
  const min = gpu.minMemoryMiB;
  if (min !== undefined) {
    if (!Number.isInteger(min) || min < 0) throw inconsistent('spec.resources.gpu.minMemoryMiB', `expected a whole number of MiB, got ${min}`);
    // Gt is strict and takes an integer: memory >= min is memory > min - 1. 0 means no minimum.
    if (min > 0) reqs.push({ key: memoryLabel, operator: 'Gt', values: [String(min - 1)] });
  }
  return reqs;
}

function checkOptions(opts: JobPodOptions): void {
  for (const [field, v] of [['namespace', opts.namespace], ['provider', opts.provider]] as const) {
    if (!DNS_LABEL.test(v) || v.length > 63) throw new Error(`buildJobPod: ${field} "${v}" is not a DNS label`);
  }
  const r = opts.resourceName;
  if (r !== GPU_RESOURCE && r !== SHARED_GPU_RESOURCE && !(r.startsWith(MIG_RESOURCE_PREFIX) && MIG_PROFILE.test(r.slice(MIG_RESOURCE_PREFIX.length)))) {
    throw new Error(`buildJobPod: resourceName "${r}" is not ${GPU_RESOURCE}, ${SHARED_GPU_RESOURCE} or ${MIG_RESOURCE_PREFIX}<profile>`);
  }
}

function jobContainer(spec: AssignmentSpec, resourceName: string): V1Container {
  const cpu = quantity('spec.resources.cpu', spec.resources.cpu, DEFAULT_CPU);
  const memory = quantity('spec.resources.memory', spec.resources.memory, DEFAULT_MEMORY);
  return {
    name: JOB_CONTAINER,
    image: spec.image,
    ...(spec.command ? { command: [...spec.command] } : {}),
    ...(spec.args ? { args: [...spec.args] } : {}),
    ...(spec.env && spec.env.length > 0 ? { env: spec.env.map((e) => ({ name: e.name, value: e.value ?? '' })) } : {}),
    resources: {
      // requests = limits: Guaranteed QoS (last to be evicted) and no more of the provider's
      // machine than was paid for. GPUs go in limits only; the API server copies them to requests.
      requests: { cpu, memory },
      limits: { cpu, memory, [resourceName]: String(spec.resources.gpu.count) },
    },
    securityContext: {
      allowPrivilegeEscalation: false,
      capabilities: { drop: ['ALL'] },
      privileged: false,
      readOnlyRootFilesystem: false,
    },
    // A failed job's last log lines become its termination message, and so the status message.
    terminationMessagePolicy: 'FallbackToLogsOnError',
    volumeMounts: [
      { name: 'tmp', mountPath: '/tmp' },
      { name: 'dshm', mountPath: '/dev/shm' },
    ],
  };
}

/**
 * The pod that runs an Assignment. Throws InvalidAssignmentError when the Assignment cannot be run
 * as written (NVIDIA_* env, resources that contradict themselves or the chosen resourceName).
 *
 * Decisions:
 * - Security: `restricted` requires runAsNonRoot, and the kubelet enforces it by refusing to start
 *   an image whose user is root (or a name it cannot check) with CreateContainerConfigError. Most
 *   ML images (pytorch/pytorch, nvidia/cuda) run as root by default, so the pod names a numeric
 *   user and group, 1000, which every image can start as. Such a job can write /tmp (an emptyDir
 *   here) and directories its image prepared for uid 1000; HOME may be `/` when the image has no
 *   user 1000, so jobs should point caches there (HF_HOME=/tmp/hf). seccomp RuntimeDefault, no
 *   privilege escalation and no capabilities at all complete the profile.
 * - The root filesystem stays writable: training code writes checkpoints, caches and pip installs
 *   next to itself, and those writes land in the container's own copy-on-write layer, never on the
 *   host; read-only would break images built for a non-root user without protecting the provider.
 * - /dev/shm is a memory emptyDir: the runtime's default is 64 MiB, too little for PyTorch data
 *   loader workers; it counts against the pod's memory limit.
 * - Tolerations: only `nvidia.com/gpu:NoSchedule` (Exists), the taint GPU nodes carry to keep
 *   non-GPU pods off. NoExecute is deliberately not tolerated: it is how a provider takes a GPU
 *   back right now (say, to play a game) and how Kubernetes drains a failing node, and a job must
 *   yield to both; the agent then reports the pod lost and the registry may re-place the job.
 * - No service-account token, no service links (no cluster addresses in env), no NVIDIA_* env:
 *   the device plugin alone sets NVIDIA_VISIBLE_DEVICES, to the GPUs it allocated.
 * - `activeDeadlineSeconds` is the job's maxDurationSeconds; the kubelet kills the pod after it
 *   (pod.status.reason DeadlineExceeded).
 * - `terminationGracePeriodSeconds` is JOB_STOP_GRACE_SECONDS (10 s): a stopped job gets SIGTERM
 *   and that long to save a checkpoint, and no longer, because the registry's provider-lost
 *   timeout counts on it (fencing/bound.ts).
 */
export function buildJobPod(assignment: Assignment, opts: JobPodOptions): V1Pod {
  checkOptions(opts);
  const { metadata, spec } = assignment;
  const name = metadata.name;
  const uid = metadata.uid;
  if (!name) throw new InvalidAssignmentError('InvalidSpec', 'metadata.name', 'the Assignment has no name');
  if (!uid) throw new InvalidAssignmentError('InvalidSpec', 'metadata.uid', 'the Assignment has no uid (read it from the API server)');
  if (!Number.isInteger(spec.epoch) || spec.epoch < 1) throw new InvalidAssignmentError('InvalidSpec', 'spec.epoch', `expected an integer from 1, got ${spec.epoch}`);
  if (!Number.isInteger(spec.maxDurationSeconds) || spec.maxDurationSeconds < 1) {
    throw new InvalidAssignmentError('InvalidSpec', 'spec.maxDurationSeconds', `expected whole seconds from 1, got ${spec.maxDurationSeconds}`);
  }
  if (!spec.image || /\s/.test(spec.image)) throw new InvalidAssignmentError('InvalidSpec', 'spec.image', 'expected an image reference without whitespace');
  checkEnv(spec.env);
  const requirements = gpuRequirements(spec, opts.resourceName);
  const term: V1NodeSelectorTerm = { matchExpressions: requirements };
  // matchFields on metadata.name pins the node the way DaemonSets do, through the scheduler (which
  // still checks resources, taints and the GPU model) rather than around it with spec.nodeName.
  if (opts.nodeName) term.matchFields = [{ key: 'metadata.name', operator: 'In', values: [opts.nodeName] }];

  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: {
      name: jobPodName(name, spec.epoch),
      namespace: opts.namespace,
      labels: {
        [JobLabel.Assignment]: name.length <= 63 ? labelValue('metadata.name', name) : boundedName(name, 63),
        [JobLabel.AssignmentUid]: labelValue('metadata.uid', uid),
        [JobLabel.Epoch]: String(spec.epoch),
        [JobLabel.JobUid]: labelValue('spec.jobRef.uid', spec.jobRef.uid),
        [JobLabel.Provider]: opts.provider,
        [JobLabel.ManagedBy]: MANAGED_BY,
      },
      annotations: { ...opts.annotations, [ASSIGNMENT_NAME_ANNOTATION]: name },
    },
    spec: {
      restartPolicy: 'Never',
      runtimeClassName: opts.runtimeClassName ?? DEFAULT_RUNTIME_CLASS,
      activeDeadlineSeconds: spec.maxDurationSeconds,
      terminationGracePeriodSeconds: JOB_STOP_GRACE_SECONDS,
      automountServiceAccountToken: false,
      enableServiceLinks: false,
      affinity: { nodeAffinity: { requiredDuringSchedulingIgnoredDuringExecution: { nodeSelectorTerms: [term] } } },
      tolerations: [{ key: GPU_RESOURCE, operator: 'Exists', effect: 'NoSchedule' }],
      securityContext: {
        runAsNonRoot: true,
        runAsUser: JOB_UID,
        runAsGroup: JOB_UID,
        seccompProfile: { type: 'RuntimeDefault' },
      },
      containers: [jobContainer(spec, opts.resourceName)],
      volumes: [
        { name: 'tmp', emptyDir: {} },
        { name: 'dshm', emptyDir: { medium: 'Memory' } },
      ],
    },
  };
}

// ---------------------------------------------------------------------------------------------
// Assignment.status from the pod

/** What the pod says, before it is turned into status fields. */
interface PodOutcome {
  phase: AssignmentStatusPhase;
  /** The kubelet's or scheduler's own word (ImagePullBackOff, OOMKilled, DeadlineExceeded, …). */
  reason: string;
  message: string;
  /** Running and Finished conditions. */
  running: Omit<ConditionUpdate, 'type'>;
  finished: Omit<ConditionUpdate, 'type'>;
  startTime?: string;
  completionTime?: string;
  exitCode?: number;
}

const IMAGE_PULL_REASONS = new Set(['ErrImagePull', 'ImagePullBackOff', 'InvalidImageName', 'ErrImageNeverPull', 'RegistryUnavailable', 'SignatureValidationFailed']);
const MAX_MESSAGE = 4096;

/** Reasons must match the CRD's pattern; the kubelet's `OutOfnvidia.com/gpu` would not. */
function camelReason(raw: string | undefined, fallback: string): string {
  const parts = (raw ?? '').split(/[^A-Za-z0-9_]+/).filter((p) => p !== '');
  const joined = parts.map((p, i) => (i === 0 ? p : p.charAt(0).toUpperCase() + p.slice(1))).join('').replace(/^[^A-Za-z]+/, '');
  return joined === '' ? fallback : joined.slice(0, 1024);
}

/** The object without its undefined (and empty-string) fields, so equal statuses compare equal and patch nothing. */
function dropUndefined<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined && v !== '')) as T;
}

const clip = (s: string): string => (s.length > MAX_MESSAGE ? `${s.slice(0, MAX_MESSAGE - 1)}…` : s);

/** client-node gives Dates; a pod parsed from plain JSON has strings. Either way, RFC 3339 seconds. */
function time(v: Date | string | undefined): string | undefined {
  if (v === undefined) return undefined;
  const d = v instanceof Date ? v : new Date(v);
  return Number.isNaN(d.getTime()) ? undefined : formatTime(d);
}

function jobContainerStatus(pod: V1Pod): V1ContainerStatus | undefined {
  const all = pod.status?.containerStatuses ?? [];
  return all.find((c) => c.name === JOB_CONTAINER) ?? all[0];
}

function pendingOutcome(pod: V1Pod, cs: V1ContainerStatus | undefined): PodOutcome {
  const waiting = cs?.state?.waiting;
  const scheduled = pod.status?.conditions?.find((c) => c.type === 'PodScheduled');
  const node = pod.spec?.nodeName;
  let reason: string = AssignmentReason.PodPending;
  let message = node ? `The pod is starting on ${node}` : 'The pod waits for a node';
  if (waiting?.reason) {
    reason = camelReason(waiting.reason, AssignmentReason.PodPending);
    message = waiting.message ?? `The container is waiting: ${waiting.reason}`;
  } else if (scheduled?.status === 'False') {
    reason = camelReason(scheduled.reason, 'Unschedulable');
    message = scheduled.message ?? 'The scheduler found no node for the pod';
  }
  const conditionReason = IMAGE_PULL_REASONS.has(reason) ? AssignmentReason.ImagePullFailed : AssignmentReason.PodPending;
  return {
    phase: 'Accepted',
    reason,
    message,
    running: { status: 'False', reason: conditionReason, message },
    finished: { status: 'False', reason: conditionReason, message },
  };
}

function runningOutcome(pod: V1Pod, cs: V1ContainerStatus | undefined): PodOutcome {
  const message = `The job runs on ${pod.spec?.nodeName ?? 'its node'}`;
  const startTime = time(cs?.state?.running?.startedAt);
  return {
    phase: 'Running',
    reason: AssignmentReason.PodRunning,
    message,
    running: { status: 'True', reason: AssignmentReason.PodRunning, message },
    finished: { status: 'False', reason: AssignmentReason.PodRunning, message },
    ...(startTime ? { startTime } : {}),
  };
}

/** A pod-level failure (the kubelet's DeadlineExceeded, Evicted, …) or a disruption, if there was one. */
function podFailure(pod: V1Pod): { reason: string; message: string; condition: string } | undefined {
  const podReason = pod.status?.reason;
  if (podReason) {
    const reason = camelReason(podReason, 'Failed');
    // DeadlineExceeded is the job running out of its own time; anything else pod-level (Evicted,
    // UnexpectedAdmissionError, OutOf<resource>, node shutdown) is the provider's side failing it.
    const condition = reason === 'DeadlineExceeded' ? AssignmentReason.DeadlineExceeded : AssignmentReason.PodLost;
    return { reason, message: pod.status?.message ?? `The pod failed: ${podReason}`, condition };
  }
  const disruption = pod.status?.conditions?.find((c) => c.type === 'DisruptionTarget' && c.status === 'True');
  if (!disruption) return undefined;
  return { reason: camelReason(disruption.reason, 'Disrupted'), message: disruption.message ?? 'The pod was disrupted', condition: AssignmentReason.PodLost };
}

/** Why a Failed pod failed: the pod-level reason first, then the container's. */
function failure(pod: V1Pod, cs: V1ContainerStatus | undefined): { reason: string; message: string; condition: string } {
  const podLevel = podFailure(pod);
  if (podLevel) return podLevel;
  const terminated = cs?.state?.terminated;
  const reason = camelReason(terminated?.reason, 'Error');
  const message = terminated?.message?.trim() || (terminated ? `The container exited with code ${terminated.exitCode}` : 'The pod failed');
  return { reason, message, condition: AssignmentReason.ContainerFailed };
}

function finishedOutcome(pod: V1Pod, cs: V1ContainerStatus | undefined): PodOutcome {
  const terminated = cs?.state?.terminated;
  const succeeded = pod.status?.phase === 'Succeeded';
  const why = succeeded
    ? { reason: camelReason(terminated?.reason, 'Completed'), message: terminated?.message?.trim() || 'The job completed', condition: AssignmentReason.Completed }
    : failure(pod, cs);
  const startTime = time(terminated?.startedAt);
  const completionTime = time(terminated?.finishedAt);
  return {
    phase: succeeded ? 'Succeeded' : 'Failed',
    reason: why.reason,
    message: why.message,
    running: { status: 'False', reason: why.condition, message: why.message },
    finished: { status: 'True', reason: why.condition, message: why.message },
    ...(startTime ? { startTime } : {}),
    ...(completionTime ? { completionTime } : {}),
    ...(terminated ? { exitCode: terminated.exitCode } : {}),
  };
}

function unknownOutcome(previous: AssignmentStatus | undefined): PodOutcome {
  const message = 'The pod\'s node does not report its state';
  return {
    phase: previous?.phase === 'Running' ? 'Running' : 'Accepted',
    reason: PodStatusUnknown,
    message,
    running: { status: 'Unknown', reason: PodStatusUnknown, message },
    finished: { status: 'Unknown', reason: PodStatusUnknown, message },
  };
}

function outcome(pod: V1Pod, previous: AssignmentStatus | undefined): PodOutcome {
  const cs = jobContainerStatus(pod);
  switch (pod.status?.phase) {
    case 'Running':
      return runningOutcome(pod, cs);
    case 'Succeeded':
    case 'Failed':
      return finishedOutcome(pod, cs);
    case 'Unknown':
      return unknownOutcome(previous);
    default:
      return pendingOutcome(pod, cs);
  }
}

/**
 * What Assignment.status says for the job's pod: phase (Accepted while the pod is pending — the
 * CRD's Pending means "not yet looked at" — then Running, Succeeded or Failed), podName, nodeName,
 * startTime, completionTime, exitCode, reason (the kubelet's or scheduler's own word:
 * ImagePullBackOff, Unschedulable, OOMKilled, Error, Completed, DeadlineExceeded, Evicted, …),
 * message, and the Running and Finished conditions (reasons from AssignmentReason).
 *
 * Stable: an unchanged pod gives an unchanged status, so the agent patches only on change. Every
 * time comes from the pod itself (the container's startedAt and finishedAt), except two that only a
 * transition creates and `previous` then keeps: a condition's lastTransitionTime (setCondition
 * moves it only on a flip) and the completionTime of a pod that ended without a finishedAt (failed
 * before its container ran, e.g. evicted or past its deadline while pulling), which is `now` the
 * first time the agent sees the pod finished. Fields the agent owns elsewhere (observedGeneration,
 * observedEpoch, the Accepted condition) are carried over from `previous`.
 *
 * Messages are the kubelet's and scheduler's own, capped at 4096 characters; a failed container's
 * message is the tail of its log (terminationMessagePolicy FallbackToLogsOnError). While an image
 * pull keeps failing the kubelet alternates ErrImagePull and ImagePullBackOff, and the status
 * follows it (a handful of patches per back-off cycle, not a loop).
 */
export function assignmentStatusFromPod(pod: V1Pod, now: Date, previous?: AssignmentStatus): AssignmentStatus {
  const o = outcome(pod, previous);
  const finished = o.phase === 'Succeeded' || o.phase === 'Failed';
  const message = clip(o.message);
  let conditions = setCondition(previous?.conditions, { type: AssignmentConditionType.Running, ...o.running, message }, now);
  conditions = setCondition(conditions, { type: AssignmentConditionType.Finished, ...o.finished, message }, now);
  const startTime = o.startTime ?? previous?.startTime;
  const completionTime = finished ? (o.completionTime ?? previous?.completionTime ?? formatTime(now)) : undefined;
  return dropUndefined({
    observedGeneration: previous?.observedGeneration,
    observedEpoch: previous?.observedEpoch,
    phase: o.phase,
    conditions,
    podName: pod.metadata?.name,
    nodeName: pod.spec?.nodeName,
    startTime,
    completionTime,
    exitCode: o.exitCode,
    reason: o.reason,
    message,
  });
}
