// A watched, cached view of one kind of object, whose events only tell a controller which key to
// look at again. Built on client-node's ListWatch, which stops for good on any watch error other
// than 410 Gone (e.g. 429 while an API server's watch cache initialises, or a dropped connection):
// this wrapper restarts it with back-off, and start() resolves only once a list has succeeded, so
// nobody acts on an empty cache as if the cluster were empty.
import * as k8s from '@kubernetes/client-node';

export interface WatchOptions<T extends k8s.KubernetesObject> {
  /** The collection's URL path, e.g. /api/v1/nodes or /apis/gpufed.io/v1alpha1/namespaces/x/gpunodes. */
  path: string;
  list: () => Promise<k8s.KubernetesListObject<T>>;
  labelSelector?: string;
  fieldSelector?: string;
  /** Called for every add, update and delete, with the object as last seen. */
  onEvent: (obj: T) => void;
  /** Called when the watch failed (it is restarted by itself). */
  onError?: (err: unknown) => void;
  /** Keeps the objects grouped by each of these values too, for `indexed(name, value)` (e.g. UsageRecords by their job's uid). */
  indexes?: Record<string, (obj: T) => string>;
}

const MIN_RETRY_MS = 250;
const MAX_RETRY_MS = 30_000;

export class Watched<T extends k8s.KubernetesObject> {
  readonly cache: k8s.ListWatch<T>;
  private stopped = true;
  private retryMs = 0;
  private restartTimer?: NodeJS.Timeout;
  private listedOk = false;
  /** Per index: its value → the objects (by namespace/name) that have it; and each object's value, to move it when it changes. */
  private readonly index = new Map<string, Map<string, Map<string, T>>>();
  private readonly indexOf = new Map<string, Map<string, string>>();

  constructor(kc: k8s.KubeConfig, opts: WatchOptions<T>) {
    const list = async () => {
      const result = await opts.list();
      this.listedOk = true;
      return result;
    };
    this.cache = new k8s.ListWatch<T>(opts.path, new k8s.Watch(kc), list, false, opts.labelSelector, opts.fieldSelector);
    for (const verb of [k8s.ADD, k8s.UPDATE, k8s.DELETE] as const) {
      this.cache.on(verb, (obj) => {
        this.retryMs = 0;
        for (const [name, by] of Object.entries(opts.indexes ?? {})) this.reindex(name, obj, verb === k8s.DELETE ? undefined : by(obj));
        opts.onEvent(obj);
      });
    }
    this.cache.on(k8s.ERROR, (err) => {
      if (this.stopped) return; // our own stop() aborted the watch
      opts.onError?.(err);
      this.scheduleRestart();
    });
  }

  private scheduleRestart(): void {
    if (this.stopped || this.restartTimer) return;
    this.retryMs = Math.min(MAX_RETRY_MS, Math.max(MIN_RETRY_MS, this.retryMs * 2));
    this.restartTimer = setTimeout(() => {
      this.restartTimer = undefined;
      if (!this.stopped) void this.cache.start();
    }, this.retryMs);
  }

  /** Lists, fills the cache, then watches; resolves once a list succeeded (retrying until then). */
  async start(): Promise<void> {
    this.stopped = false;
    await this.cache.start();
    while (!this.listedOk && !this.stopped) await new Promise((r) => setTimeout(r, MIN_RETRY_MS));
  }

  async stop(): Promise<void> {
    this.stopped = true;
    if (this.restartTimer) clearTimeout(this.restartTimer);
    this.restartTimer = undefined;
    await this.cache.stop();
  }

  get(name: string, namespace?: string): T | undefined {
    return this.cache.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.cache.list(namespace);
  }

  /** The objects whose value in index `name` is `value` (none for an index not configured). */
  indexed(name: string, value: string): readonly T[] {
    return [...(this.index.get(name)?.get(value)?.values() ?? [])];
  }

  private reindex(name: string, obj: T, value: string | undefined): void {
    const key = `${obj.metadata?.namespace ?? ''}/${obj.metadata?.name ?? ''}`;
    const index = this.index.get(name) ?? new Map<string, Map<string, T>>();
    const of = this.indexOf.get(name) ?? new Map<string, string>();
    this.index.set(name, index);
    this.indexOf.set(name, of);
    const before = of.get(key);
    if (before !== undefined && before !== value) {
      const group = index.get(before);
      group?.delete(key);
      if (group?.size === 0) index.delete(before);
    }
    if (value === undefined) {
      of.delete(key);
      return;
    }
    of.set(key, value);
    const group = index.get(value) ?? new Map<string, T>();
    group.set(key, obj);
    index.set(value, group);
  }
}

/** The list function for a namespaced gpufed custom resource. */
export function listCustom<T extends k8s.KubernetesObject>(kc: k8s.KubeConfig, ref: { group: string; version: string; plural: string }, namespace: string): () => Promise<k8s.KubernetesListObject<T>> {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  return async () => (await api.listNamespacedCustomObject({ group: ref.group, version: ref.version, plural: ref.plural, namespace })) as k8s.KubernetesListObject<T>;
}

/** The list function for a gpufed custom resource across all namespaces (or a cluster-scoped one). */
export function listAllCustom<T extends k8s.KubernetesObject>(kc: k8s.KubeConfig, ref: { group: string; version: string; plural: string }): () => Promise<k8s.KubernetesListObject<T>> {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  return async () => (await api.listClusterCustomObject({ group: ref.group, version: ref.version, plural: ref.plural })) as k8s.KubernetesListObject<T>;
}

/** The collection path of a custom resource across all namespaces, e.g. /apis/gpufed.io/v1alpha1/assignments. */
export const allPath = (ref: { group: string; version: string; plural: string }): string => `/apis/${ref.group}/${ref.version}/${ref.plural}`;
