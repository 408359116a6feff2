// Plain manifests into @kubernetes/client-node model objects. The client serializes request bodies
// through its generated models, mapping TypeScript property names to JSON names; a plain object
// whose JSON keys differ from the TS names (`x-kubernetes-validations`, `x-kubernetes-int-or-string`,
// …) would lose those keys silently. Deserializing first (what client-node's loadYaml does) keeps them.
import * as k8s from '@kubernetes/client-node';
import { parse } from 'yaml';

/** A manifest's text (YAML or JSON) as a client-node model object. */
export function loadManifest<T extends k8s.KubernetesObject = k8s.KubernetesObject>(text: string): T {
  return k8s.loadYaml<T>(text);
}

/** A plain manifest object as a client-node model object. */
export function fromPlain<T extends k8s.KubernetesObject = k8s.KubernetesObject>(obj: object): T {
  return loadManifest<T>(JSON.stringify(obj));
}

/** What client-node sends for a model object (its serializer, as dumpYaml uses it), as plain data. */
export function toPlain(obj: k8s.KubernetesObject): unknown {
  return parse(k8s.dumpYaml(obj));
}

/** JSON as the API server stores it (no undefined members), for comparing what is with what should be. */
export const normalized = <T>(v: T): T => JSON.parse(JSON.stringify(v ?? null)) as T;
