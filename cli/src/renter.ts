// What every renter command shares: the renter's kubeconfig and namespace on the registry, reading
// ComputeJobs there with errors that say what to do, and a ComputeJob manifest read from a file or
// stdin and checked for what the matcher needs before anything is sent (the API server checks the
// rest, with its own messages, when the job is submitted).
import { readFileSync } from 'node:fs';
import * as k8s from '@kubernetes/client-node';
import type { Command } from 'commander';
import { parseAllDocuments } from 'yaml';
import { ComputeJobResource, type ComputeJob, type ComputeJobList, type ResourcesGpuSharing } from '../../operator/src/api/index.js';
import { isConflict, isNotFound } from '../../operator/src/kube/errors.js';
import { tryParseCoin } from '../../operator/src/api/coin.js';
import { commandKubeConfig, contextNamespace } from './kubeconfig.js';
import { apiFailure, UsageError } from './output.js';

/** The flags every renter command takes. */
export interface RenterOptions {
  kubeconfig?: string;
  context?: string;
  namespace?: string;
}

/** Adds --kubeconfig, --context and (unless `namespaced` is false) -n/--namespace to a command. */
export function withRenterOptions(cmd: Command, namespaced = true): Command {
  cmd.option('--kubeconfig <file>', "the renter's kubeconfig for the registry, as gpufed registry add-tenant wrote it (default: $KUBECONFIG or ~/.kube/config)");
  cmd.option('--context <name>', 'the kubeconfig context to use (default: its current context)');
  if (namespaced) cmd.option('-n, --namespace <ns>', "your namespace on the registry (default: the kubeconfig context's namespace)");
  return cmd;
}

/** The renter's kubeconfig: --kubeconfig, else $KUBECONFIG, else ~/.kube/config; --context, else its current context. */
export function renterKubeConfig(o: RenterOptions, env: NodeJS.ProcessEnv = process.env): k8s.KubeConfig {
  return commandKubeConfig(o, 'the one gpufed registry add-tenant wrote for you', env);
}

/** -n, else the current context's namespace, else a usage error that says how to set one. */
export function renterNamespace(flag: string | undefined, kc: k8s.KubeConfig): string {
  const ns = flag ?? contextNamespace(kc);
  if (ns) return ns;
  throw new UsageError(
    `no namespace: pass -n <namespace> (your tenant's namespace on the registry), or set it in the kubeconfig: kubectl config set-context --current --namespace <namespace>`,
  );
}

const jobRef = { group: ComputeJobResource.group, version: ComputeJobResource.version, plural: ComputeJobResource.plural };

/**
 * Reads and writes a renter's ComputeJobs in one namespace, with errors that say what to do: a
 * failed request is a RemoteError keeping the HTTP status, so a poller can tell a refusal from a
 * blip worth retrying.
 */
export class RenterJobs {
  readonly api: k8s.CustomObjectsApi;
  readonly core: k8s.CoreV1Api;

  constructor(
    kc: k8s.KubeConfig,
    readonly namespace: string,
  ) {
    this.api = kc.makeApiClient(k8s.CustomObjectsApi);
    this.core = kc.makeApiClient(k8s.CoreV1Api);
  }

  /** The job, or undefined once it is gone. */
  async find(name: string): Promise<ComputeJob | undefined> {
    try {
      return (await this.api.getNamespacedCustomObject({ ...jobRef, namespace: this.namespace, name })) as ComputeJob;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw apiFailure(`Reading ComputeJob ${this.namespace}/${name}`, e);
    }
  }

  /** The job; a usage error naming the namespace and how to list its jobs when there is none. */
  async get(name: string): Promise<ComputeJob> {
    const job = await this.find(name);
    if (!job) throw this.notFound(name);
    return job;
  }

  notFound(name: string): UsageError {
    return new UsageError(`no ComputeJob ${name} in namespace ${this.namespace}; list them with: gpufed jobs list -n ${this.namespace}`);
  }

  async list(): Promise<ComputeJobList> {
    try {
      return (await this.api.listNamespacedCustomObject({ ...jobRef, namespace: this.namespace })) as ComputeJobList;
    } catch (e) {
      throw apiFailure(`Listing ComputeJobs in namespace ${this.namespace}`, e);
    }
  }

  async create(job: ComputeJob): Promise<ComputeJob> {
    try {
      return (await this.api.createNamespacedCustomObject({ ...jobRef, namespace: this.namespace, body: { ...job, metadata: { ...job.metadata, namespace: this.namespace } } })) as ComputeJob;
    } catch (e) {
      const name = job.metadata.name ?? '';
      if (isConflict(e)) {
        throw new UsageError(`ComputeJob ${name} already exists in namespace ${this.namespace}; a job's spec cannot change: pick another name, or delete it first (gpufed jobs cancel ${name} --wait)`, { cause: e });
      }
      throw apiFailure(`Creating ComputeJob ${this.namespace}/${name || job.metadata.generateName || ''}`, e);
    }
  }

  async delete(name: string): Promise<void> {
    try {
      await this.api.deleteNamespacedCustomObject({ ...jobRef, namespace: this.namespace, name });
    } catch (e) {
      if (isNotFound(e)) throw this.notFound(name);
      throw apiFailure(`Deleting ComputeJob ${this.namespace}/${name}`, e);
    }
  }

  /** A ConfigMap of the namespace (the relayed job log), or undefined when there is none. */
  async configMap(name: string): Promise<k8s.V1ConfigMap | undefined> {
    try {
      return await this.core.readNamespacedConfigMap({ name, namespace: this.namespace });
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw apiFailure(`Reading ConfigMap ${this.namespace}/${name}`, e);
    }
  }
}

// ---------------------------------------------------------------------------------------------
// ComputeJob manifests (pure, but for reading the file)

type Json = Record<string, unknown>;
const isObject = (v: unknown): v is Json => typeof v === 'object' && v !== null && !Array.isArray(v);
const isIntIn = (v: unknown, min: number, max: number): boolean => Number.isInteger(v) && (v as number) >= min && (v as number) <= max;
const isStringList = (v: unknown): boolean => Array.isArray(v) && v.every((x) => typeof x === 'string');
const show = (v: unknown): string => (v === undefined ? 'nothing' : JSON.stringify(v));
const SHARING: readonly ResourcesGpuSharing[] = ['Exclusive', 'TimeSliced', 'MIG'];
const MAX_DURATION_SECONDS = 2_592_000;

function gpuProblem(gpu: unknown): string | undefined {
  if (!isObject(gpu)) return 'spec.resources.gpu: required, e.g. {count: 1, models: [NVIDIA-GeForce-RTX-4090]}';
  if (!isIntIn(gpu.count, 1, 64)) return `spec.resources.gpu.count: expected a whole number of GPUs from 1 to 64, got ${show(gpu.count)}`;
  if (gpu.models !== undefined && !isStringList(gpu.models)) return 'spec.resources.gpu.models: expected a list of GPU model names, e.g. [NVIDIA-GeForce-RTX-4090]';
  if (gpu.minMemoryMiB !== undefined && !isIntIn(gpu.minMemoryMiB, 0, Number.MAX_SAFE_INTEGER)) return `spec.resources.gpu.minMemoryMiB: expected MiB as a whole number, got ${show(gpu.minMemoryMiB)}`;
  if (gpu.sharing !== undefined && !(SHARING as readonly unknown[]).includes(gpu.sharing)) return `spec.resources.gpu.sharing: expected one of ${SHARING.join(', ')}, got ${show(gpu.sharing)}`;
  if ((gpu.sharing === 'MIG') !== (gpu.migProfile !== undefined)) return 'spec.resources.gpu.migProfile: required with sharing MIG (e.g. 1g.10gb), and only then';
  return undefined;
}

function placementProblem(placement: unknown): string | undefined {
  if (placement === undefined) return undefined;
  if (!isObject(placement)) return 'spec.placement: expected {regions: [...], preferredRegions: [...]}';
  for (const key of ['regions', 'preferredRegions']) {
    if (placement[key] !== undefined && !isStringList(placement[key])) return `spec.placement.${key}: expected a list of regions, e.g. [eu-west]`;
  }
  return undefined;
}

function specProblem(spec: unknown): string | undefined {
  if (!isObject(spec)) return 'spec: required (image, resources.gpu, maxPricePerGpuHour)';
  if (!isObject(spec.resources)) return 'spec.resources: required, e.g. {gpu: {count: 1}}';
  const gpu = gpuProblem(spec.resources.gpu);
  if (gpu) return gpu;
  if (typeof spec.maxPricePerGpuHour !== 'string' || tryParseCoin(spec.maxPricePerGpuHour) === undefined) {
    return `spec.maxPricePerGpuHour: expected a coin, an integer amount of the base denom and the denom, e.g. 1500000ustake; got ${show(spec.maxPricePerGpuHour)}`;
  }
  if (spec.maxDurationSeconds !== undefined && !isIntIn(spec.maxDurationSeconds, 1, MAX_DURATION_SECONDS)) {
    return `spec.maxDurationSeconds: expected whole seconds from 1 to ${MAX_DURATION_SECONDS}, got ${show(spec.maxDurationSeconds)}`;
  }
  return placementProblem(spec.placement);
}

/** What is wrong with a document as a ComputeJob for the matcher, or undefined when nothing is. */
export function computeJobProblem(doc: unknown): string | undefined {
  if (!isObject(doc)) return `expected a ComputeJob manifest (YAML or JSON), got ${Array.isArray(doc) ? 'a list' : show(doc)}`;
  if (doc.kind !== ComputeJobResource.kind) return `kind: expected ${ComputeJobResource.kind}, got ${show(doc.kind)}`;
  if (doc.apiVersion !== ComputeJobResource.apiVersion) return `apiVersion: expected ${ComputeJobResource.apiVersion}, got ${show(doc.apiVersion)}`;
  if (doc.metadata !== undefined && !isObject(doc.metadata)) return 'metadata: expected {name, namespace}';
  return specProblem(doc.spec);
}

/** The one document of a YAML or JSON text; a usage error naming the source otherwise. */
function singleDocument(text: string, source: string): unknown {
  const docs = parseAllDocuments(text).filter((d) => d.contents !== null);
  const first = docs[0];
  if (first === undefined) throw new UsageError(`${source}: empty; expected a ComputeJob manifest`);
  if (docs.length > 1) throw new UsageError(`${source}: holds ${docs.length} documents; expected one ComputeJob`);
  const error = first.errors[0];
  if (error) throw new UsageError(`${source}: not YAML or JSON: ${error.message}`);
  return first.toJS() as unknown;
}

/** A ComputeJob manifest from a file, or stdin for `-`, checked for what the matcher needs. */
export function readComputeJob(file: string): ComputeJob {
  const source = file === '-' ? 'stdin' : file;
  let text: string;
  try {
    text = readFileSync(file === '-' ? 0 : file, 'utf8');
  } catch (e) {
    throw new UsageError(`${source}: ${(e as Error).message}`, { cause: e });
  }
  const doc = singleDocument(text, source);
  const problem = computeJobProblem(doc);
  if (problem) throw new UsageError(`${source}: ${problem}`);
  const job = doc as ComputeJob;
  return { ...job, metadata: job.metadata ?? {} };
}
