// Logs through NAT: the agent pushes a bounded tail of each job container's log to the registry,
// because nothing can connect to a provider's cluster from outside (homes sit behind NAT and the
// registry never dials a provider), so a renter cannot read a job's pod log where it is.
//
// Where it goes: one ConfigMap per Assignment, `<assignment>-log`, in the provider's own namespace
// on the registry (gpufed-provider-<provider>), next to the Assignment itself.
//  - Not a new CRD: a log tail is opaque text with no spec, status or validation worth a schema,
//    and a CRD would need a version, a generated type and a chart change for what a ConfigMap
//    already is. The agent's Role on the registry already lets it write ConfigMaps in its own
//    namespace and nowhere else, so no provider can write (or read) another's logs.
//  - No ownerReferences: the Assignment lives on the registry too, but the agent only ever names
//    it by label and annotation (the cross-cluster rule). The registry is to garbage-collect a log
//    whose Assignment is gone; until then it stays readable as the record of a finished job.
//
// Limits: the tail is at most 64 KiB (DEFAULT_LOG_BYTES), cut at a UTF-8 character boundary with
// a marker line when earlier output was dropped; a ConfigMap holds 1 MiB and every write is a full
// object in the registry's etcd, so the agent writes only when the text or the final flag changed,
// at most once per interval (5 s by default) per running job, and never again after `final`. One
// epoch at a time: a re-placed job's newer pod overwrites the older epoch's log. What a job wrote
// between the last push and the pod's deletion (fencing, withdrawal) is lost. The pod log API
// reads from the start of a window of lines (limitBytes cuts the window's end, not its start), so
// KubeLogSource narrows the window until the tail fits; a single line longer than the window (a
// progress bar redrawn with \r for hours) is shown from its start. A finished pod whose log cannot
// be read (its node is gone; KWOK nodes have no kubelet) is closed as final with the text pushed
// last after FINISHED_READ_ATTEMPTS tries, so no pod is retried for ever.
//
// Reading it later: renters have no access to provider namespaces, so the registry relays the
// current attempt's ConfigMap into the job's own namespace under ComputeJob.status.logRef
// (registry/logs/relay.ts); `gpufed jobs logs [-f] <job>` reads data.log there and, following,
// polls it, printing what follows the text it printed last, until the job ended and data.final is
// "true" (cli/src/commands/job-logs.ts).
import * as k8s from '@kubernetes/client-node';
import type { V1ConfigMap, V1Pod } from '@kubernetes/client-node';
// The Observable stub client-node's middleware returns (its own setHeaderMiddleware uses it too).
import { of } from '@kubernetes/client-node/dist/gen/rxjsStub.js';
import type { Kube } from '../kube/client.js';
import { apiErrorCode, apiErrorMessage, isNotFound } from '../kube/errors.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import { AGENT_MANAGED_BY as MANAGED_BY, ASSIGNMENT_NAME_ANNOTATION, JobLabel, assignmentLabelValue, logConfigMapName } from '../api/labels.js';
import { JOB_CONTAINER } from './jobpod.js';

/** The most of a job's log kept on the registry. */
export const DEFAULT_LOG_BYTES = 64 * 1024;
/** How often running jobs' logs are looked at. */
export const DEFAULT_LOG_EVERY_MS = 5_000;
/** The most one pod's read and write may take before the pusher moves on to the next pod. */
export const DEFAULT_LOG_POD_TIMEOUT_MS = 10_000;
/**
 * Reads of a finished pod's log that may fail before its record is closed with the text pushed
 * last (the node is gone, or, in the local federation, a KWOK node has no kubelet to ask).
 */
export const FINISHED_READ_ATTEMPTS = 3;
/** The server-side apply field manager of the log ConfigMaps. */
export const LOG_FIELD_MANAGER = 'gpufed-agent/logs';
/** The first line of a tail whose earlier output was dropped. */
export const TRUNCATED_MARKER = '[... earlier output truncated ...]\n';
/** The keys of a log ConfigMap's data. */
export const LogKey = { Log: 'log', Pod: 'pod', Container: 'container', Epoch: 'epoch', Updated: 'updated', Final: 'final' } as const;

const FINISHED_PHASES: readonly string[] = ['Succeeded', 'Failed'];

// ---------------------------------------------------------------------------------------------
// Where the text comes from

/** Reads the end of a container's log. Pluggable: KWOK pods in the local federation have no logs. */
export interface LogSource {
  /**
   * About the last `maxBytes` of the container's log (more is fine: the caller cuts); '' when the
   * container has not started or the pod is gone. `signal` aborts the read when it takes too long.
   */
  tail(pod: V1Pod, container: string, maxBytes: number, signal?: AbortSignal): Promise<string>;
}

/** Client options that abort the request on `signal` (client-node's fetch takes it from the request context). */
function abortable(signal: AbortSignal | undefined): k8s.ConfigurationOptions | undefined {
  if (!signal) return undefined;
  const middleware: k8s.ObservableMiddleware = {
    pre: (ctx) => {
      ctx.setSignal(signal);
      return of(ctx);
    },
    post: (res) => of(res),
  };
  return { middleware: [middleware], middlewareMergeStrategy: 'append' };
}

/** The kubelet's 400 for a container that is not running yet (or a pod not scheduled yet). */
const NOT_STARTED = /is waiting to start|ContainerCreating|PodInitializing|does not have a host assigned/;

/**
 * The real pod log API. `limitBytes` alone would return the log's first bytes, and `tailLines`
 * with `limitBytes` returns the first bytes of the last lines, so the read over-asks (twice the
 * bytes wanted) and, when that still hit the limit, asks again for fewer lines: what comes back
 * below the limit is a complete end of the log. The window that fitted is remembered per pod, so a
 * steady log costs one request per push.
 */
/** The annotation a simulated (KWOK) job pod's output comes from; KWOK runs no containers. */
export const SIM_LOG_ANNOTATION = 'sim.gpufed.io/log';

/**
 * The log source of the local federation's KWOK pods, which have no containers and so no logs: a
 * pod's output is its `sim.gpufed.io/log` annotation (copied from the Assignment under --simulate),
 * the way its run time and exit code come from sim.gpufed.io annotations too.
 */
export class SimulatedLogSource implements LogSource {
  tail(pod: V1Pod): Promise<string> {
    return Promise.resolve(pod.metadata?.annotations?.[SIM_LOG_ANNOTATION] ?? '');
  }
}

export class KubeLogSource implements LogSource {
  private readonly windows = new Map<string, number>();

  constructor(private readonly core: k8s.CoreV1Api) {}

  async tail(pod: V1Pod, container: string, maxBytes: number, signal?: AbortSignal): Promise<string> {
    // The API server answers a pod without a node with an empty 200 the client cannot parse.
    if (!pod.spec?.nodeName) return '';
    const key = pod.metadata?.uid ?? `${pod.metadata?.namespace}/${pod.metadata?.name}`;
    const widest = Math.max(1, Math.ceil(maxBytes / 8));
    const limitBytes = 2 * maxBytes;
    let tailLines = this.windows.get(key) ?? widest;
    for (;;) {
      const text = await this.read(pod, container, { limitBytes, tailLines }, signal);
      // A cut at the limit may split a character the client then decodes as U+FFFD: allow a little.
      const hitLimit = Buffer.byteLength(text) >= limitBytes - 8;
      if (!hitLimit || tailLines === 1) {
        this.remember(key, hitLimit || Buffer.byteLength(text) >= maxBytes ? tailLines : Math.min(widest, tailLines * 2));
        return text;
      }
      tailLines = Math.max(1, Math.floor(tailLines / 4));
    }
  }

  private remember(key: string, tailLines: number): void {
    this.windows.delete(key);
    this.windows.set(key, tailLines);
    // Pods come and go; the oldest entries are forgotten (a new window costs a few requests once).
    for (const old of this.windows.keys()) {
      if (this.windows.size <= 1024) break;
      this.windows.delete(old);
    }
  }

  private async read(pod: V1Pod, container: string, window: { limitBytes: number; tailLines: number }, signal: AbortSignal | undefined): Promise<string> {
    try {
      const text = await this.core.readNamespacedPodLog({ name: pod.metadata?.name ?? '', namespace: pod.metadata?.namespace ?? '', container, ...window }, abortable(signal));
      return typeof text === 'string' ? text : '';
    } catch (e) {
      if (isNotFound(e) || (apiErrorCode(e) === 400 && NOT_STARTED.test(apiErrorMessage(e)))) return '';
      throw e;
    }
  }
}

// ---------------------------------------------------------------------------------------------
// The ConfigMap (pure)

/**
 * The end of `text` in at most `maxBytes` bytes of UTF-8: unchanged when it fits, else the marker
 * line and as much of the end as fits with it, starting at a character boundary.
 */
export function tailOf(text: string, maxBytes: number = DEFAULT_LOG_BYTES): string {
  const bytes = Buffer.from(text, 'utf8');
  if (bytes.length <= maxBytes) return text;
  const marker = Buffer.byteLength(TRUNCATED_MARKER);
  if (maxBytes <= marker) return '';
  let start = bytes.length - (maxBytes - marker);
  while (start < bytes.length && ((bytes[start] ?? 0) & 0xc0) === 0x80) start++; // a continuation byte
  return TRUNCATED_MARKER + bytes.subarray(start).toString('utf8');
}


/** What one push says about one Assignment's job. */
export interface JobLogRecord {
  /** The Assignment's full name. */
  assignment: string;
  /** Its label value (the job pod's `gpufed.io/assignment` label); default assignmentLabelValue. */
  assignmentLabel?: string;
  pod: string;
  container: string;
  epoch: string;
  /** The tail, already cut (tailOf). */
  log: string;
  /** RFC 3339 with milliseconds: when the text last changed. */
  updated: string;
  /** The pod finished and this is its last tail. */
  final: boolean;
}

/** The ConfigMap holding one Assignment's log on the registry (no owner: it crosses clusters). */
export function jobLogConfigMap(namespace: string, r: JobLogRecord): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: {
      name: logConfigMapName(r.assignment),
      namespace,
      labels: { [JobLabel.Assignment]: r.assignmentLabel ?? assignmentLabelValue(r.assignment), [JobLabel.ManagedBy]: MANAGED_BY },
      annotations: { [ASSIGNMENT_NAME_ANNOTATION]: r.assignment },
    },
    data: {
      [LogKey.Log]: r.log,
      [LogKey.Pod]: r.pod,
      [LogKey.Container]: r.container,
      [LogKey.Epoch]: r.epoch,
      [LogKey.Updated]: r.updated,
      [LogKey.Final]: String(r.final),
    },
  };
}

/** What the registry has for an Assignment's log, as the pusher compares it. */
export interface PushedLog {
  pod: string;
  epoch: string;
  log: string;
  final: boolean;
  updated: string;
}

/** A log ConfigMap read back, or undefined when it is not one of ours. */
export function pushedFrom(cm: V1ConfigMap | undefined): PushedLog | undefined {
  const d = cm?.data ?? {};
  const pod = d[LogKey.Pod];
  const log = d[LogKey.Log] ?? '';
  if (!pod) return undefined;
  return { pod, epoch: d[LogKey.Epoch] ?? '', log, final: d[LogKey.Final] === 'true', updated: d[LogKey.Updated] ?? '' };
}

/**
 * What to push now, or undefined when the registry already has it. `updated` moves only when the
 * text (or the pod it comes from) changed; a flip to final alone keeps it.
 */
export function nextPush(pushed: PushedLog | undefined, seen: Omit<PushedLog, 'updated'>, now: Date): PushedLog | undefined {
  const samePod = pushed?.pod === seen.pod && pushed.epoch === seen.epoch;
  if (samePod && pushed.log === seen.log && pushed.final === seen.final) return undefined;
  const updated = samePod && pushed.log === seen.log ? pushed.updated : now.toISOString();
  return { ...seen, updated };
}

// ---------------------------------------------------------------------------------------------
// Pushing

/** Where log ConfigMaps are read and written: the registry, or a map in unit tests. */
export interface LogStore {
  get(namespace: string, name: string, signal?: AbortSignal): Promise<V1ConfigMap | undefined>;
  /** Server-side apply of the whole ConfigMap. */
  apply(cm: V1ConfigMap, signal?: AbortSignal): Promise<void>;
}

/** The registry as a LogStore, applying with the Kube's field manager (LOG_FIELD_MANAGER). */
export function registryLogStore(kube: Kube): LogStore {
  const core = kube.api(k8s.CoreV1Api);
  return {
    async get(namespace, name, signal) {
      try {
        return await core.readNamespacedConfigMap({ name, namespace }, abortable(signal));
      } catch (e) {
        if (isNotFound(e)) return undefined;
        throw e;
      }
    },
    async apply(cm, signal) {
      const { name = '', namespace = '' } = cm.metadata ?? {};
      const options = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply, abortable(signal));
      await core.patchNamespacedConfigMap({ name, namespace, body: cm, fieldManager: kube.fieldManager, force: true }, options);
    },
  };
}

export interface LogPusherOptions {
  /** The provider's namespace on the registry. */
  namespace: string;
  source: LogSource;
  store: LogStore;
  metrics: Metrics;
  log: Logger;
  /** Default DEFAULT_LOG_BYTES. */
  maxBytes?: number;
  /** Default DEFAULT_LOG_POD_TIMEOUT_MS. */
  podTimeoutMs?: number;
  now?: () => Date;
}

/** Whether `pushed` is the log of this pod (name and epoch). */
const isOf = (pushed: PushedLog | undefined, pod: string, epoch: string): pushed is PushedLog => pushed?.pod === pod && pushed.epoch === epoch;
const isFinished = (p: V1Pod): boolean => FINISHED_PHASES.includes(p.status?.phase ?? '');
const assignmentOf = (p: V1Pod): string => p.metadata?.annotations?.[ASSIGNMENT_NAME_ANNOTATION] ?? p.metadata?.labels?.[JobLabel.Assignment] ?? '';
const epochOf = (p: V1Pod): number => Number(p.metadata?.labels?.[JobLabel.Epoch] ?? 0) || 0;

/** Per Assignment, its pod of the newest epoch: an older epoch's pod is on its way out. */
function newestPods(pods: readonly V1Pod[]): Map<string, V1Pod> {
  const newest = new Map<string, V1Pod>();
  for (const p of pods) {
    const name = assignmentOf(p);
    if (!name) continue;
    const seen = newest.get(name);
    if (!seen || epochOf(p) > epochOf(seen)) newest.set(name, p);
  }
  return newest;
}

/** Runs `work` with a signal that aborts after `ms`; rejects then even if `work` ignores the signal. */
async function withTimeout<T>(ms: number, what: string, work: (signal: AbortSignal) => Promise<T>): Promise<T> {
  const ctl = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      const err = new Error(`${what} took longer than ${ms} ms`);
      ctl.abort(err);
      reject(err);
    }, ms);
  });
  try {
    return await Promise.race([work(ctl.signal), expired]);
  } finally {
    clearTimeout(timer);
  }
}

/**
 * Pushes each job's log tail to the registry, writing only what changed. sync() is level-triggered
 * (it looks at every job pod it is given); start() runs it on an interval and nudge() runs it soon,
 * never two at once.
 */
export class LogPusher {
  private readonly maxBytes: number;
  private readonly podTimeoutMs: number;
  private readonly now: () => Date;
  /** What the registry has, per Assignment, as far as this agent knows. */
  private readonly pushed = new Map<string, PushedLog>();
  /** The last error per Assignment, so a pod failing on every pass is logged once, not every pass. */
  private readonly failing = new Map<string, string>();
  /** Failed reads of a finished pod's log, per pod name. */
  private readonly finishedReadFailures = new Map<string, number>();
  private timer?: NodeJS.Timeout;
  private pods: () => readonly V1Pod[] = () => [];
  private running?: Promise<void>;
  private again = false;
  private stopped = false;

  constructor(private readonly o: LogPusherOptions) {
    this.maxBytes = o.maxBytes ?? DEFAULT_LOG_BYTES;
    this.podTimeoutMs = o.podTimeoutMs ?? DEFAULT_LOG_POD_TIMEOUT_MS;
    this.now = o.now ?? (() => new Date());
  }

  /** Looks at every job pod in `pods` and pushes the logs that changed, one pod after another. */
  async sync(pods: readonly V1Pod[], now: Date): Promise<void> {
    const newest = newestPods(pods);
    for (const name of this.pushed.keys()) if (!newest.has(name)) this.pushed.delete(name); // the ConfigMap stays as the record
    for (const name of this.failing.keys()) if (!newest.has(name)) this.failing.delete(name);
    const podNames = new Set([...newest.values()].map((p) => p.metadata?.name));
    for (const name of this.finishedReadFailures.keys()) if (!podNames.has(name)) this.finishedReadFailures.delete(name);
    for (const [assignment, pod] of newest) {
      if (!this.due(assignment, pod)) continue;
      try {
        await withTimeout(this.podTimeoutMs, `Pushing the log of ${pod.metadata?.name}`, (signal) => this.push(assignment, pod, now, signal));
        this.failing.delete(assignment);
      } catch (e) {
        const err = apiErrorMessage(e);
        // Retried on the next pass (level-triggered); said once per distinct failure.
        if (this.failing.get(assignment) !== err) this.o.log.warn({ assignment, pod: pod.metadata?.name, err }, 'Pushing a job log to the registry failed');
        this.failing.set(assignment, err);
      }
    }
  }

  /** Running, or finished and its last tail not pushed yet. */
  private due(assignment: string, pod: V1Pod): boolean {
    if (pod.status?.phase === 'Running') return true;
    if (!isFinished(pod)) return false;
    const pushed = this.pushed.get(assignment);
    return !(isOf(pushed, pod.metadata?.name ?? '', String(epochOf(pod))) && pushed.final);
  }

  private async push(assignment: string, pod: V1Pod, now: Date, signal: AbortSignal): Promise<void> {
    const podName = pod.metadata?.name ?? '';
    const epoch = String(epochOf(pod));
    const name = logConfigMapName(assignment);
    // Once per Assignment and agent: what an earlier agent process pushed.
    const known = this.pushed.get(assignment) ?? pushedFrom(await this.o.store.get(this.o.namespace, name, signal));
    if (known) this.pushed.set(assignment, known);
    const mine = isOf(known, podName, epoch) ? known : undefined;
    if (mine?.final) return;
    const final = isFinished(pod);
    const log = await this.read(pod, final, mine?.log ?? '', signal);
    signal.throwIfAborted();
    const next = nextPush(known, { pod: podName, epoch, log, final }, now);
    if (!next) return;
    const assignmentLabel = pod.metadata?.labels?.[JobLabel.Assignment];
    await this.o.store.apply(jobLogConfigMap(this.o.namespace, { assignment, ...(assignmentLabel ? { assignmentLabel } : {}), container: JOB_CONTAINER, ...next }), signal);
    signal.throwIfAborted();
    this.pushed.set(assignment, next);
    this.o.metrics.registryWrites.inc({ resource: 'configmaps', verb: 'apply' });
  }

  /** The tail now; for a finished pod whose log could not be read FINISHED_READ_ATTEMPTS times, `last`. */
  private async read(pod: V1Pod, final: boolean, last: string, signal: AbortSignal): Promise<string> {
    const podName = pod.metadata?.name ?? '';
    const failures = this.finishedReadFailures.get(podName) ?? 0;
    if (final && failures >= FINISHED_READ_ATTEMPTS) return last;
    try {
      return tailOf(await this.o.source.tail(pod, JOB_CONTAINER, this.maxBytes, signal), this.maxBytes);
    } catch (e) {
      if (final) this.finishedReadFailures.set(podName, failures + 1);
      throw e;
    }
  }

  /** Runs sync every `everyMs` over the pods `pods` returns. */
  start(pods: () => readonly V1Pod[], everyMs: number = DEFAULT_LOG_EVERY_MS): void {
    this.pods = pods;
    this.stopped = false;
    this.timer = setInterval(() => this.nudge(), everyMs);
  }

  /** A pod changed: when it just finished, push its last tail now rather than on the next tick. */
  podChanged(pod: V1Pod): void {
    if (isFinished(pod) && this.due(assignmentOf(pod), pod)) this.nudge();
  }

  /** Runs sync soon: now, or right after the one in progress. */
  nudge(): void {
    if (this.stopped) return;
    if (this.running) {
      this.again = true;
      return;
    }
    this.running = this.loop().finally(() => (this.running = undefined));
  }

  private async loop(): Promise<void> {
    do {
      this.again = false;
      try {
        await this.sync(this.pods(), this.now());
      } catch (e) {
        this.o.log.warn({ err: (e as Error)?.message ?? String(e) }, 'Pushing job logs failed');
      }
    } while (this.again && !this.stopped);
  }

  /** Stops the interval and waits for a sync in progress. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearInterval(this.timer);
    this.timer = undefined;
    await this.running;
  }
}
