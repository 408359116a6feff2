// A watched, cached view of one kind of object (client-node's ListWatch, which re-lists and
// re-watches on its own), whose events only tell a controller which key to look at again.
import * as k8s from '@kubernetes/client-node';

export interface WatchOptions<T extends k8s.KubernetesObject> {
  /** The collection's URL path, e.g. /api/v1/nodes or /apis/gpufed.io/v1alpha1/namespaces/x/gpunodes. */
  path: string;
  list: () => Promise<k8s.KubernetesListObject<T>>;
  labelSelector?: string;
  fieldSelector?: string;
  /** Called for every add, update and delete, with the object as last seen. */
  onEvent: (obj: T) => void;
  onError?: (err: unknown) => void;
}

export class Watched<T extends k8s.KubernetesObject> {
  readonly cache: k8s.ListWatch<T>;

  constructor(kc: k8s.KubeConfig, opts: WatchOptions<T>) {
    this.cache = new k8s.ListWatch<T>(opts.path, new k8s.Watch(kc), opts.list, false, opts.labelSelector, opts.fieldSelector);
    for (const verb of [k8s.ADD, k8s.UPDATE, k8s.DELETE] as const) this.cache.on(verb, opts.onEvent);
    if (opts.onError) this.cache.on(k8s.ERROR, opts.onError);
  }

  /** Lists, fills the cache, then watches; resolves once the cache is filled. */
  start(): Promise<void> {
    return this.cache.start();
  }

  stop(): Promise<void> {
    return this.cache.stop();
  }

  get(name: string, namespace?: string): T | undefined {
    return this.cache.get(name, namespace);
  }

  list(namespace?: string): readonly T[] {
    return this.cache.list(namespace);
  }
}

/** The list function for a namespaced gpufed custom resource. */
export function listCustom<T extends k8s.KubernetesObject>(kc: k8s.KubeConfig, ref: { group: string; version: string; plural: string }, namespace: string): () => Promise<k8s.KubernetesListObject<T>> {
  const api = kc.makeApiClient(k8s.CustomObjectsApi);
  return async () => (await api.listNamespacedCustomObject({ group: ref.group, version: ref.version, plural: ref.plural, namespace })) as k8s.KubernetesListObject<T>;
}
