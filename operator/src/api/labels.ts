// The labels, annotations and derived names that tie gpufed's objects together across clusters
// (there are no owner references between clusters: STYLE.md). The agent stamps them on job pods and
// pushed logs, the registry on Assignments and relayed logs, metering reads them back from
// kube-state-metrics; one place names them all.
import { createHash } from 'node:crypto';

/** Labels on job pods (and the jobs Namespace), Assignments and logs: how every party finds them. */
export const JobLabel = {
  Assignment: 'gpufed.io/assignment',
  AssignmentUid: 'gpufed.io/assignment-uid',
  Epoch: 'gpufed.io/epoch',
  JobUid: 'gpufed.io/job-uid',
  /** On Assignments: the renter's namespace of the job. */
  JobNamespace: 'gpufed.io/job-namespace',
  Provider: 'gpufed.io/provider',
  ManagedBy: 'app.kubernetes.io/managed-by',
  /** On the jobs Namespace. */
  Jobs: 'gpufed.io/jobs',
} as const;

/** `app.kubernetes.io/managed-by` of what the agent creates (job pods, pushed logs, records). */
export const AGENT_MANAGED_BY = 'gpufed-agent';
/** `app.kubernetes.io/managed-by` of what the registry creates (Assignments, relayed logs). */
export const REGISTRY_MANAGED_BY = 'gpufed-registry';

/** The Assignment's full name; the label holds a shortened form when the name exceeds 63 characters. */
export const ASSIGNMENT_NAME_ANNOTATION = 'gpufed.io/assignment-name';

const MAX_NAME = 253;
const MAX_LABEL = 63;

/** The first 8 hex digits of the text's sha256: keeps shortened names distinct. */
export const shortHash = (s: string): string => createHash('sha256').update(s).digest('hex').slice(0, 8);

/** The log ConfigMap's name: `<assignment>-log`, or, past 253 characters, a prefix of the name and a hash of all of it. */
export function logConfigMapName(assignment: string): string {
  const suffix = '-log';
  if (assignment.length + suffix.length <= MAX_NAME) return `${assignment}${suffix}`;
  const head = assignment.slice(0, MAX_NAME - suffix.length - 9).replace(/[-.]+$/, '');
  return `${head}-${shortHash(assignment)}${suffix}`;
}

/** The Assignment's name as a label value: the pod's own label when it has one (the same rule as the pod's). */
export function assignmentLabelValue(assignment: string): string {
  if (assignment.length <= MAX_LABEL) return assignment;
  return `${assignment.slice(0, MAX_LABEL - 9).replace(/[-.]+$/, '')}-${shortHash(assignment)}`;
}

/**
 * The agent's heartbeat: a coordination.k8s.io Lease of this name in the provider's namespace on the
 * registry, renewed every --heartbeat (the kubelet's node-lease pattern). The registry reads no time
 * from it: any change it sees is a heartbeat, timed by the registry's own clock.
 */
export const HEARTBEAT_LEASE = 'gpufed-agent';
/** On the heartbeat Lease: the agent's version, as it says. */
export const AGENT_VERSION_ANNOTATION = 'gpufed.io/agent-version';
/**
 * On the heartbeat Lease: the hot key's compressed secp256k1 public key (base64). The registry
 * takes it only if it hashes to the Provider's spec.wallet, and then publishes the provider's
 * settlement account (a 2-of-2 of this key and the registry's).
 */
export const HOT_KEY_ANNOTATION = 'gpufed.io/hot-key';
