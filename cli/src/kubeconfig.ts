// Where every command that talks to a cluster gets its kubeconfig, with kubectl's precedence:
// --kubeconfig, else $KUBECONFIG, else ~/.kube/config (in a pod: its service account); --context,
// else the file's current context. A missing or broken kubeconfig is a usage error that says which
// flag or variable to set: the client would otherwise fall back to http://localhost:8080 and fail
// later with a connection error that says nothing about the cause.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { delimiter, join } from 'node:path';
import type * as k8s from '@kubernetes/client-node';
import { loadKubeConfig } from '../../operator/src/kube/client.js';
import { UsageError } from './output.js';

/** The flags of a command that reads a kubeconfig. */
export interface KubeconfigFlags {
  kubeconfig?: string;
  context?: string;
}

/** The files $KUBECONFIG names (a list, like kubectl's), or none. */
const envFiles = (env: NodeJS.ProcessEnv): string[] => (env.KUBECONFIG ?? '').split(delimiter).filter((f) => f !== '');

/** Where the kubeconfig comes from, for messages; a usage error when there is none or it is missing. */
function kubeconfigSource(o: KubeconfigFlags, whose: string, env: NodeJS.ProcessEnv): string {
  if (o.kubeconfig !== undefined) {
    if (!existsSync(o.kubeconfig)) throw new UsageError(`--kubeconfig ${o.kubeconfig}: no such file`);
    return `--kubeconfig ${o.kubeconfig}`;
  }
  const files = envFiles(env);
  if (files.length > 0) {
    const missing = files.find((f) => !existsSync(f));
    if (missing !== undefined) throw new UsageError(`$KUBECONFIG names ${missing}, which does not exist: correct $KUBECONFIG or pass --kubeconfig <file> (${whose})`);
    return `$KUBECONFIG (${files.join(delimiter)})`;
  }
  const home = join(env.HOME ?? homedir(), '.kube', 'config');
  if (existsSync(home)) return home;
  if (env.KUBERNETES_SERVICE_HOST) return "the pod's service account";
  throw new UsageError(`no kubeconfig: pass --kubeconfig <file> (${whose}) or set $KUBECONFIG`);
}

/**
 * The kubeconfig for a command, positioned on --context when given. `whose` says which kubeconfig
 * the command wants, for the message when there is none: "the one gpufed registry add-tenant wrote
 * for you".
 */
export function commandKubeConfig(o: KubeconfigFlags, whose: string, env: NodeJS.ProcessEnv = process.env): k8s.KubeConfig {
  const source = kubeconfigSource(o, whose, env);
  let kc: k8s.KubeConfig;
  try {
    kc = loadKubeConfig(o.kubeconfig);
  } catch (e) {
    throw new UsageError(`${source}: not a kubeconfig (${(e as Error).message.split('\n')[0] ?? ''})`, { cause: e });
  }
  const contexts = kc.getContexts().map((c) => c.name);
  const known = contexts.length > 0 ? `; it has: ${contexts.join(', ')}` : '';
  if (o.context !== undefined) {
    if (!kc.getContextObject(o.context)) throw new UsageError(`--context ${o.context}: no such context in ${source}${known}`);
    kc.setCurrentContext(o.context);
  }
  if (!kc.getCurrentCluster()) throw new UsageError(`${source}: no current context with a cluster: pass --context <name>${known}`);
  return kc;
}

/** The namespace of the kubeconfig's current context, if it names one. */
export const contextNamespace = (kc: k8s.KubeConfig): string | undefined => kc.getContextObject(kc.getCurrentContext())?.namespace;
