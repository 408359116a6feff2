// `gpufed provider reclaim|release|status`: the owner of a provider's cluster takes a GPU node back
// for their own use (gaming, own work), later returns it to the federation, and sees what the
// cluster offers and runs. Runs against the provider's own cluster (the owner's kubeconfig); only
// `status` may also read the registry, with the agent's kubeconfig, for what the registry thinks.
import { existsSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import { Command, Option } from 'commander';
import { gpuNodeSpec, gpuNodeStatus, isGpuNode, podRequest, RECLAIM_ANNOTATION, reclaimDeadline } from '../../../operator/src/agent/gpunode.js';
import { GPU_RESOURCE, MIG_RESOURCE_PREFIX, SHARED_GPU_RESOURCE } from '../../../operator/src/api/gpus.js';
import { ASSIGNMENT_NAME_ANNOTATION, JobLabel } from '../../../operator/src/api/labels.js';
import { findCondition, GpuNodeConditionType, GpuNodeResource, ProviderConditionType, providerNamespace, providerOfNamespace, ProviderResource, type Condition, type GpuNode, type Provider, type ProviderStatusCapacity, type ProviderStatusReputation } from '../../../operator/src/api/index.js';
import { loadKubeConfig } from '../../../operator/src/kube/client.js';
import { isNotFound } from '../../../operator/src/kube/errors.js';
import { commandKubeConfig, contextNamespace, type KubeconfigFlags } from '../kubeconfig.js';
import { apiFailure, bold, dim, durationArg, ExitCode, formatAge, green, outputOption, print, red, table, UsageError, type OutputFormat } from '../output.js';
import { nodeUnits, sharingOf } from './offers.js';

/** Where the provider's own cluster is, for the message when it cannot be reached. */
const CLUSTER = "the provider's cluster";

/** The owner's kubeconfig for the provider's own cluster. */
const clusterKubeConfig = (o: KubeconfigFlags): k8s.KubeConfig => commandKubeConfig(o, "your provider cluster's");

/** --kubeconfig and --context for the provider's own cluster. */
function withClusterOptions(cmd: Command): Command {
  return cmd
    .option('--kubeconfig <file>', "the provider cluster's kubeconfig (default: $KUBECONFIG or ~/.kube/config)")
    .option('--context <name>', 'the kubeconfig context to use (default: its current context)');
}

async function annotate(o: KubeconfigFlags, node: string, value: string | null): Promise<void> {
  const core = clusterKubeConfig(o).makeApiClient(k8s.CoreV1Api);
  try {
    await core.patchNode({ name: node, body: { metadata: { annotations: { [RECLAIM_ANNOTATION]: value } } } }, k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.MergePatch));
  } catch (e) {
    if (isNotFound(e)) throw new UsageError(`No node ${node} in this cluster; list them with: kubectl get nodes`, { cause: e });
    throw apiFailure(`Updating node ${node}`, e, { server: CLUSTER });
  }
}

// ---------------------------------------------------------------------------------------------
// `provider status`: pure parts

export const DEFAULT_JOBS_NAMESPACE = 'gpufed-jobs';

/** One GPU node of the provider's cluster, as the agent would publish it. */
export interface NodeReport {
  name: string;
  model: string;
  memoryMiB: number;
  resourceName: string;
  /** "time-slicing ×4", "mig 1g.10gb"; absent for whole GPUs. */
  sharing?: string;
  /** Units the node offers to pods (GPUs, or shares when shared). */
  allocatable: number;
  /** Units no unfinished pod (gpufed's or the owner's) requests. */
  free: number;
  /** Ready and schedulable for gpufed jobs: not cordoned, tainted or reclaimed. */
  takesJobs: boolean;
  /** The reason of the condition that keeps jobs off (NodeNotReady, NodeReclaimed, NodeCordoned, NodeTainted, NoAllocatableGpus), else NodeSchedulable. */
  state: string;
  reclaimed: boolean;
  /** When running jobs stop (RFC 3339), for a reclaimed node. */
  reclaimDeadline?: string;
  /** gpufed job pods on the node that still hold GPUs. */
  jobs: number;
  /** Whether the agent published a GpuNode for it; known only with the registry's kubeconfig. */
  registered?: boolean;
}

/** One pod in the jobs namespace. */
export interface JobPodReport {
  name: string;
  node?: string;
  /** The pod's phase, or Terminating once it is being deleted. */
  phase: string;
  /** GPU units it requests, of `resource`. */
  gpus: number;
  resource?: string;
  assignment?: string;
  epoch?: string;
  created?: string;
}

/** What the registry says about the provider (from the agent's kubeconfig). */
export interface RegistryReport {
  provider: string;
  region?: string;
  cordoned?: boolean;
  /** The Ready condition the registry keeps. */
  ready?: Pick<Condition, 'status' | 'reason' | 'message' | 'lastTransitionTime'>;
  lastHeartbeatTime?: string;
  heartbeatAgeSeconds?: number;
  agentVersion?: string;
  capacity?: ProviderStatusCapacity[];
  reputation?: ProviderStatusReputation;
  /** The GpuNodes the agent published (node names), when its credentials may list them. */
  gpuNodes?: string[];
  /** Why the registry could not be read; the rest is then absent. */
  error?: string;
}

export interface ProviderStatusReport {
  jobsNamespace: string;
  nodes: NodeReport[];
  jobs: JobPodReport[];
  registry?: RegistryReport;
}

const GPU_RESOURCE_NAMES = (name: string): boolean => name === GPU_RESOURCE || name === SHARED_GPU_RESOURCE || name.startsWith(MIG_RESOURCE_PREFIX);

/** The GPU resource a pod asks for and how many units, from its containers' limits or requests. */
export function podGpus(pod: k8s.V1Pod): { resource?: string; units: number } {
  const containers = [...(pod.spec?.containers ?? []), ...(pod.spec?.initContainers ?? [])];
  const resource = containers.flatMap((c) => [...Object.keys(c.resources?.limits ?? {}), ...Object.keys(c.resources?.requests ?? {})]).find(GPU_RESOURCE_NAMES);
  return resource === undefined ? { units: 0 } : { resource, units: podRequest(pod, resource) };
}

const finished = (pod: k8s.V1Pod): boolean => pod.status?.phase === 'Succeeded' || pod.status?.phase === 'Failed';

/** The fields of `o` that are not undefined (so JSON and YAML leave out what is unknown). */
const defined = <T extends object>(o: T): T => Object.fromEntries(Object.entries(o).filter(([, v]) => v !== undefined)) as T;

const rfc3339 = (t: Date | string | undefined): string | undefined => (t === undefined ? undefined : new Date(t).toISOString().replace(/\.\d{3}Z$/, 'Z'));

function nodeReport(node: k8s.V1Node, pods: readonly k8s.V1Pod[], jobsNamespace: string, now: Date): NodeReport {
  const name = node.metadata?.name ?? '';
  const onNode = pods.filter((p) => p.spec?.nodeName === name);
  const spec = gpuNodeSpec(node);
  const status = gpuNodeStatus(node, onNode, undefined, now);
  const ready = findCondition(status.conditions, GpuNodeConditionType.Ready);
  const schedulable = findCondition(status.conditions, GpuNodeConditionType.Schedulable);
  const deadline = reclaimDeadline(node);
  const units = nodeUnits({ spec, status });
  const sharing = sharingOf(spec);
  return {
    name,
    model: spec.product,
    memoryMiB: spec.memoryMiB,
    resourceName: spec.resourceName,
    ...(sharing === undefined ? {} : { sharing }),
    allocatable: units.allocatable,
    free: units.free,
    takesJobs: ready?.status === 'True' && schedulable?.status === 'True',
    state: ready?.status !== 'True' ? (ready?.reason ?? 'NodeNotReady') : (schedulable?.reason ?? 'Unknown'),
    reclaimed: deadline !== undefined,
    ...(deadline === undefined ? {} : { reclaimDeadline: rfc3339(deadline) }),
    jobs: onNode.filter((p) => p.metadata?.namespace === jobsNamespace && !finished(p)).length,
  };
}

function jobPodReport(pod: k8s.V1Pod): JobPodReport {
  const gpus = podGpus(pod);
  const m = pod.metadata;
  return defined({
    name: m?.name ?? '',
    node: pod.spec?.nodeName,
    phase: m?.deletionTimestamp ? 'Terminating' : (pod.status?.phase ?? 'Pending'),
    gpus: gpus.units,
    resource: gpus.resource,
    assignment: m?.annotations?.[ASSIGNMENT_NAME_ANNOTATION],
    epoch: m?.labels?.[JobLabel.Epoch],
    created: rfc3339(m?.creationTimestamp),
  });
}

const byName = <T extends { name: string }>(a: T, b: T): number => (a.name < b.name ? -1 : a.name > b.name ? 1 : 0);

/**
 * The provider's cluster as its owner sees it: each GPU node with what it offers and has free
 * (computed as the agent computes its GpuNodes, from every pod on the node), whether it takes jobs
 * or was reclaimed, and the pods of the jobs namespace. Pure.
 */
export function clusterReport(nodes: readonly k8s.V1Node[], pods: readonly k8s.V1Pod[], jobsNamespace: string, now: Date): ProviderStatusReport {
  return {
    jobsNamespace,
    nodes: nodes.filter(isGpuNode).map((n) => nodeReport(n, pods, jobsNamespace, now)).sort(byName),
    jobs: pods.filter((p) => p.metadata?.namespace === jobsNamespace).map(jobPodReport).sort(byName),
  };
}

/** What the registry holds about the provider: its Ready condition, heartbeat, capacity, reputation. Pure. */
export function registryReport(provider: Provider, gpuNodes: readonly GpuNode[] | undefined, now: Date): RegistryReport {
  const s = provider.status;
  const ready = findCondition(s?.conditions, ProviderConditionType.Ready);
  const heartbeat = Date.parse(s?.lastHeartbeatTime ?? '');
  return {
    provider: provider.metadata.name ?? '',
    region: provider.spec.region,
    cordoned: provider.spec.cordoned === true,
    ...(ready === undefined ? {} : { ready: { status: ready.status, reason: ready.reason, message: ready.message, lastTransitionTime: ready.lastTransitionTime } }),
    ...(s?.lastHeartbeatTime === undefined ? {} : { lastHeartbeatTime: s.lastHeartbeatTime }),
    ...(Number.isNaN(heartbeat) ? {} : { heartbeatAgeSeconds: Math.max(0, Math.floor((now.getTime() - heartbeat) / 1000)) }),
    ...(s?.agentVersion === undefined ? {} : { agentVersion: s.agentVersion }),
    capacity: s?.capacity ?? [],
    reputation: { succeeded: 0, failed: 0, lost: 0, ...s?.reputation },
    ...(gpuNodes === undefined ? {} : { gpuNodes: gpuNodes.map((n) => n.spec.nodeName).sort() }),
  };
}

/** The cluster's report with the registry's beside it; each node marked registered or not when the registry listed its GpuNodes. */
export function withRegistry(cluster: ProviderStatusReport, registry: RegistryReport): ProviderStatusReport {
  const published = registry.gpuNodes === undefined ? undefined : new Set(registry.gpuNodes);
  return { ...cluster, nodes: published === undefined ? cluster.nodes : cluster.nodes.map((n) => ({ ...n, registered: published.has(n.name) })), registry };
}

const STATE_WORDS: Record<string, string> = {
  NodeSchedulable: 'takes jobs',
  NodeNotReady: 'not Ready',
  NodeReclaimed: 'reclaimed',
  NodeCordoned: 'cordoned',
  NodeTainted: 'tainted',
  NoAllocatableGpus: 'no allocatable GPUs',
};

function reclaimedCell(n: NodeReport, now: Date): string {
  if (!n.reclaimed) return 'no';
  const t = Date.parse(n.reclaimDeadline ?? '');
  if (Number.isNaN(t) || t <= now.getTime()) return 'yes, jobs stopped';
  return `yes, jobs stop in ${formatAge(now, new Date(t))}`;
}

function nodesTable(r: ProviderStatusReport, now: Date): string {
  const registered = r.nodes.some((n) => n.registered !== undefined);
  const headers = ['name', 'model', 'sharing', 'allocatable', 'free', 'jobs', 'state', 'reclaimed', ...(registered ? ['registered'] : [])];
  const rows = r.nodes.map((n) => [
    n.name,
    n.model,
    n.sharing ?? '-',
    String(n.allocatable),
    String(n.free),
    String(n.jobs),
    n.takesJobs ? green(STATE_WORDS[n.state] ?? n.state) : red(STATE_WORDS[n.state] ?? n.state),
    reclaimedCell(n, now),
    ...(registered ? [n.registered ? 'yes' : red('no')] : []),
  ]);
  return table(headers, rows);
}

function registryLines(g: RegistryReport, now: Date): string[] {
  if (g.error !== undefined) return [`${bold(`Registry: Provider ${g.provider}`)}`, red(g.error)];
  const field = (label: string, v: string | undefined) => (v === undefined ? [] : [`${`${label}:`.padEnd(16)}${v}`]);
  const ready = g.ready === undefined ? 'unknown (the registry has not judged it yet)' : `${g.ready.status === 'True' ? green('True') : red(g.ready.status)} (${g.ready.reason}): ${g.ready.message}`;
  const capacity = (g.capacity ?? []).map((c) => `${c.free}/${c.total} ${c.model}`).join(', ');
  const rep = g.reputation ?? {};
  return [
    bold(`Registry: Provider ${g.provider}`),
    ...field('Ready', ready),
    ...field('Last heartbeat', g.lastHeartbeatTime === undefined ? 'never' : `${g.lastHeartbeatTime} (${formatAge(g.lastHeartbeatTime, now)} ago)`),
    ...field('Agent version', g.agentVersion),
    ...field('Region', g.region),
    ...field('Capacity', capacity === '' ? 'none reported' : `${capacity} free`),
    ...field('Reputation', `${rep.succeeded ?? 0} succeeded, ${rep.failed ?? 0} failed, ${rep.lost ?? 0} lost`),
    ...(g.cordoned ? field('Cordoned', red('yes: the registry admin stopped new placements')) : []),
  ];
}

/** The report for people: the nodes, the job pods, then the registry's view or how to get it. */
export function providerStatusTable(r: ProviderStatusReport, now: Date): string {
  const lines = [bold('GPU nodes'), r.nodes.length === 0 ? 'No GPU nodes in this cluster (no node has allocatable nvidia.com/gpu, gpu.shared or mig-*).' : nodesTable(r, now), ''];
  lines.push(bold(`Job pods in namespace ${r.jobsNamespace}`));
  const rows = r.jobs.map((j) => [j.name, j.node ?? '-', j.phase, j.resource === undefined ? '0' : `${j.gpus} ${j.resource}`, j.assignment ?? '-', formatAge(j.created, now)]);
  lines.push(rows.length === 0 ? 'none' : table(['name', 'node', 'phase', 'gpus', 'assignment', 'age'], rows), '');
  if (r.registry === undefined) lines.push(dim("Add --registry-kubeconfig <the agent's kubeconfig> for the registry's view: Ready, last heartbeat, capacity, reputation."));
  else lines.push(...registryLines(r.registry, now));
  const unpublished = r.nodes.filter((n) => n.registered === false).map((n) => n.name);
  if (unpublished.length > 0) lines.push('', dim(`No GpuNode on the registry for ${unpublished.join(', ')}: is the agent running? (It publishes each GPU node within a heartbeat.)`));
  return lines.join('\n');
}

// ---------------------------------------------------------------------------------------------
// `provider status`: reading

async function readCluster(kc: k8s.KubeConfig, jobsNamespace: string, now: Date): Promise<ProviderStatusReport> {
  const core = kc.makeApiClient(k8s.CoreV1Api);
  let nodes: k8s.V1NodeList;
  let pods: k8s.V1PodList;
  try {
    [nodes, pods] = await Promise.all([core.listNode(), core.listPodForAllNamespaces()]);
  } catch (e) {
    throw apiFailure("Reading the provider cluster's nodes and pods", e, { server: CLUSTER });
  }
  return clusterReport(nodes.items, pods.items, jobsNamespace, now);
}

/** The registry's view, or the reason it could not be read (reported, not thrown: the cluster's part still shows). */
async function readRegistry(kc: k8s.KubeConfig, provider: string, now: Date): Promise<RegistryReport> {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  let p: Provider;
  try {
    p = (await api.getClusterCustomObject({ group: ProviderResource.group, version: ProviderResource.version, plural: ProviderResource.plural, name: provider })) as Provider;
  } catch (e) {
    const why = isNotFound(e) ? `no Provider ${provider} on the registry` : apiFailure(`Reading Provider ${provider} on the registry`, e).message;
    return { provider, error: why };
  }
  let gpuNodes: GpuNode[] | undefined;
  try {
    gpuNodes = ((await api.listNamespacedCustomObject({ group: GpuNodeResource.group, version: GpuNodeResource.version, plural: GpuNodeResource.plural, namespace: providerNamespace(provider) })) as { items: GpuNode[] }).items;
  } catch {
    // Credentials that may read the Provider but not its GpuNodes: the nodes are just not marked.
    gpuNodes = undefined;
  }
  return registryReport(p, gpuNodes, now);
}

interface StatusOptions extends KubeconfigFlags {
  registryKubeconfig?: string;
  provider?: string;
  jobsNamespace: string;
  output: OutputFormat;
}

/** The Provider's name: --provider, else the agent kubeconfig's namespace gpufed-provider-<name>. */
export function statusProviderName(flag: string | undefined, contextNamespace: string | undefined): string {
  const name = flag ?? providerOfNamespace(contextNamespace);
  if (name) return name;
  throw new UsageError(`--provider <name>: required when the registry kubeconfig's context namespace (${contextNamespace ?? 'none'}) is not gpufed-provider-<name>`);
}

function statusCommand(): Command {
  const cmd = new Command('status').description(
    "Show this provider's GPU nodes (free, reclaimed), the job pods running here and, with the agent's registry kubeconfig, what the registry thinks (Ready, heartbeat, capacity, reputation)",
  );
  return withClusterOptions(cmd)
    .option('--registry-kubeconfig <file>', "the agent's kubeconfig for the registry, as gpufed registry add-provider wrote it")
    .option('--provider <name>', "the Provider on the registry (default: from the registry kubeconfig's namespace gpufed-provider-<name>)")
    .option('--jobs-namespace <ns>', "the namespace the agent runs job pods in (the agent's --jobs-namespace)", DEFAULT_JOBS_NAMESPACE)
    .addOption(outputOption())
    .addHelpText(
      'after',
      `
Free GPUs are computed from the cluster as the agent publishes them: allocatable minus what every
unfinished pod on the node requests, the owner's own pods included. A node takes gpufed jobs when
it is Ready, not cordoned, not tainted against job pods and not reclaimed (gpufed provider
reclaim). With --registry-kubeconfig it also reads the Provider from the registry; if that fails
the cluster's part is still printed and the exit status is 3.

Examples:
  $ gpufed provider status
  $ gpufed provider status --registry-kubeconfig alice-agent.kubeconfig
  $ gpufed provider status --kubeconfig ~/.kube/config -o json | jq '.nodes[] | select(.free > 0)'`,
    )
    .action(async (o: StatusOptions) => {
      if (o.registryKubeconfig !== undefined && !existsSync(o.registryKubeconfig)) throw new UsageError(`--registry-kubeconfig ${o.registryKubeconfig}: no such file`);
      const now = new Date();
      const clusterKc = clusterKubeConfig(o);
      const registryKc = o.registryKubeconfig === undefined ? undefined : loadKubeConfig(o.registryKubeconfig);
      const provider = registryKc === undefined ? undefined : statusProviderName(o.provider, contextNamespace(registryKc));
      const [cluster, registry] = await Promise.all([
        readCluster(clusterKc, o.jobsNamespace, now),
        registryKc === undefined || provider === undefined ? undefined : readRegistry(registryKc, provider, now),
      ]);
      const report = registry === undefined ? cluster : withRegistry(cluster, registry);
      print(o.output, report, () => providerStatusTable(report, now));
      if (registry?.error !== undefined) {
        process.stderr.write(`error: ${registry.error}\n`);
        process.exitCode = ExitCode.Remote;
      }
    });
}

function reclaimCommand(): Command {
  const cmd = new Command('reclaim')
    .description('Take a GPU node back: no new jobs land on it, running jobs stop when the grace period ends (reason Reclaimed)')
    .argument('<node>', 'the node to take back')
    .addOption(new Option('--grace <duration>', 'how long running jobs may go on, e.g. 5m, 30s or 0').default(300_000, '5m').argParser(durationArg('--grace')));
  return withClusterOptions(cmd)
    .addHelpText('after', '\nExamples:\n  $ gpufed provider reclaim gaming-pc --grace 5m\n  $ gpufed provider reclaim gaming-pc --grace 0   # stop its jobs now')
    .action(async (node: string, o: KubeconfigFlags & { grace: number }) => {
      const deadline = new Date(Date.now() + o.grace).toISOString().replace(/\.\d{3}Z$/, 'Z');
      await annotate(o, node, deadline);
      process.stdout.write(`Reclaimed ${node}: no new gpufed jobs will start there; running jobs stop at ${deadline}.\nGive it back with: gpufed provider release ${node}\n`);
    });
}

function releaseCommand(): Command {
  const cmd = new Command('release').description('Give a reclaimed node back to the federation').argument('<node>', 'the node to give back');
  return withClusterOptions(cmd)
    .addHelpText('after', '\nExamples:\n  $ gpufed provider release gaming-pc\n  $ gpufed provider release gaming-pc --kubeconfig ~/.kube/home-cluster.yaml')
    .action(async (node: string, o: KubeconfigFlags) => {
      await annotate(o, node, null);
      process.stdout.write(`Released ${node}: it takes gpufed jobs again.\n`);
    });
}

export function providerCommand(): Command {
  const provider = new Command('provider').description("Manage this provider's GPU nodes (run by the owner, against the provider's own cluster)");
  provider.addHelpText(
    'after',
    `
Every subcommand runs against the provider's own cluster: --kubeconfig, else $KUBECONFIG, else
~/.kube/config; --context, else its current context.

Examples:
  $ gpufed provider status --registry-kubeconfig alice-agent.kubeconfig
  $ gpufed provider reclaim gaming-pc --grace 5m   # game tonight
  $ gpufed provider release gaming-pc`,
  );
  for (const sub of [statusCommand(), reclaimCommand(), releaseCommand()]) provider.addCommand(sub);
  return provider;
}
