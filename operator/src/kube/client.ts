// One small client for everything gpufed writes: server-side apply with a field manager per
// controller (so two writers of one object never clobber each other's fields), status through the
// status subresource, and reads that return undefined for "not found".
import * as k8s from '@kubernetes/client-node';
import { isConflict, isNotFound } from './errors.js';
import { fromPlain } from './manifests.js';

/** What the generated `<Kind>Resource` constants carry (see operator/src/api/types.generated.ts). */
export interface ResourceRef {
  group: string;
  version: string;
  plural: string;
  kind: string;
  namespaced: boolean;
}

/** A kubeconfig from a file, else $KUBECONFIG / ~/.kube/config, else the in-cluster service account. */
export function loadKubeConfig(file?: string): k8s.KubeConfig {
  const kc = new k8s.KubeConfig();
  if (file) kc.loadFromFile(file);
  else kc.loadFromDefault();
  return kc;
}

const apply = k8s.setHeaderOptions('Content-Type', k8s.PatchStrategy.ServerSideApply);

export class Kube {
  readonly objects: k8s.KubernetesObjectApi;
  readonly custom: k8s.CustomObjectsApi;

  constructor(
    readonly kc: k8s.KubeConfig,
    /** The server-side apply field manager: one per controller, e.g. `gpufed-agent/gpunodes`. */
    readonly fieldManager: string,
  ) {
    this.objects = k8s.KubernetesObjectApi.makeApiClient(kc);
    this.custom = kc.makeApiClient(k8s.CustomObjectsApi);
  }

  api<T extends k8s.ApiType>(api: new (config: k8s.Configuration) => T): T {
    return this.kc.makeApiClient(api);
  }

  /** Server-side apply of a whole object (its spec and metadata; status is ignored by the server). */
  async apply<T extends k8s.KubernetesObject>(obj: T): Promise<T> {
    return this.objects.patch(fromPlain<T>(obj), undefined, undefined, this.fieldManager, true, k8s.PatchStrategy.ServerSideApply);
  }

  /**
   * Server-side apply of a custom object's status subresource: only the fields this manager owns.
   * With `resourceVersion` the write is a compare-and-swap: it fails with 409 if the object changed
   * since that version (how a decision made from one read is never applied over a newer state).
   */
  async applyStatus<S>(ref: ResourceRef, name: string, namespace: string | undefined, status: S, resourceVersion?: string): Promise<unknown> {
    const metadata = { name, ...(namespace ? { namespace } : {}), ...(resourceVersion ? { resourceVersion } : {}) };
    const body = { apiVersion: `${ref.group}/${ref.version}`, kind: ref.kind, metadata, status };
    const common = { group: ref.group, version: ref.version, plural: ref.plural, name, body, fieldManager: this.fieldManager, force: true };
    return ref.namespaced
      ? this.custom.patchNamespacedCustomObjectStatus({ ...common, namespace: namespace ?? '' }, apply)
      : this.custom.patchClusterCustomObjectStatus(common, apply);
  }

  /** Creates a custom object; false when one of that name exists already (the caller decides what that means). */
  async createCustom<T extends k8s.KubernetesObject>(ref: ResourceRef, obj: T): Promise<T | false> {
    try {
      const common = { group: ref.group, version: ref.version, plural: ref.plural, body: obj, fieldManager: this.fieldManager };
      return (ref.namespaced ? await this.custom.createNamespacedCustomObject({ ...common, namespace: obj.metadata?.namespace ?? '' }) : await this.custom.createClusterCustomObject(common)) as T;
    } catch (e) {
      if (isConflict(e)) return false;
      throw e;
    }
  }

  /** A custom object, or undefined when it does not exist. */
  async getCustom<T>(ref: ResourceRef, name: string, namespace?: string): Promise<T | undefined> {
    try {
      const common = { group: ref.group, version: ref.version, plural: ref.plural, name };
      return (ref.namespaced
        ? await this.custom.getNamespacedCustomObject({ ...common, namespace: namespace ?? '' })
        : await this.custom.getClusterCustomObject(common)) as T;
    } catch (e) {
      if (isNotFound(e)) return undefined;
      throw e;
    }
  }

  /** Deletes a custom object; "not found" counts as done. */
  async deleteCustom(ref: ResourceRef, name: string, namespace?: string): Promise<void> {
    try {
      const common = { group: ref.group, version: ref.version, plural: ref.plural, name };
      if (ref.namespaced) await this.custom.deleteNamespacedCustomObject({ ...common, namespace: namespace ?? '' });
      else await this.custom.deleteClusterCustomObject(common);
    } catch (e) {
      if (!isNotFound(e)) throw e;
    }
  }
}
