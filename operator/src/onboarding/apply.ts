// Onboarding a provider on the registry, the part that talks to the API server: apply the objects
// of provider.ts (server-side apply, so running it again changes nothing), issue a token Secret and
// wait for the token controller to fill it, rotate tokens, and write the agent's kubeconfig.
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import * as k8s from '@kubernetes/client-node';
import { ProviderResource, type Provider } from '../api/index.js';
import type { Kube } from '../kube/client.js';
import { apiErrorCode, explain, isNotFound } from '../kube/errors.js';
import {
  AGENT_SERVICE_ACCOUNT,
  AGENT_TOKEN_CREDENTIAL,
  agentKubeconfigYaml,
  agentTokenSecret,
  CREDENTIAL_LABEL,
  PROVIDER_LABEL,
  providerNamespace,
  providerObjects,
  type Manifest,
  type ProviderRequest,
} from './provider.js';

/** What applying one object did, in kubectl's words. */
export type ApplyOutcome = 'created' | 'configured' | 'unchanged';

export interface AppliedObject {
  kind: string;
  name: string;
  namespace?: string;
  result: ApplyOutcome;
}

export interface AgentToken {
  secret: string;
  token: string;
  /** base64 of the CA bundle's PEM, as kubeconfig's certificate-authority-data wants it. */
  caData: string;
}

export interface TokenOptions {
  /** The server the agent's kubeconfig names; the admin kubeconfig's server when left out. */
  server?: string;
  /** How long to wait for the token controller to fill a new token Secret. */
  tokenTimeoutMs?: number;
}

export interface Onboarded {
  provider: string;
  namespace: string;
  serviceAccount: string;
  server: string;
  tokenSecret: string;
  /** False when an existing token was re-issued (nothing new was created). */
  tokenCreated: boolean;
  objects: AppliedObject[];
  /** The agent's kubeconfig (it holds the token: write it somewhere private). */
  kubeconfig: string;
}

export interface Rotated {
  provider: string;
  namespace: string;
  server: string;
  tokenSecret: string;
  /** The token Secrets deleted after the new kubeconfig was written; their tokens no longer work. */
  revoked: string[];
  kubeconfig: string;
}

/** The Provider as it is on the registry, or undefined. */
export async function currentProvider(kube: Kube, name: string): Promise<Provider | undefined> {
  try {
    return await retryTooManyRequests(() => kube.getCustom<Provider>(ProviderResource, name));
  } catch (e) {
    throw explain(`Reading Provider ${name}`, e);
  }
}

async function resourceVersionOf(kube: Kube, m: Manifest): Promise<string | undefined> {
  try {
    const header = { apiVersion: m.apiVersion, kind: m.kind, metadata: { name: m.metadata.name, ...(m.metadata.namespace ? { namespace: m.metadata.namespace } : {}) } };
    return (await kube.objects.read(header)).metadata?.resourceVersion;
  } catch (e) {
    if (isNotFound(e)) return undefined;
    throw e;
  }
}

/**
 * Retries what the API server answers 429 for a moment, e.g. "storage is (re)initializing" for a
 * custom resource whose CRD was just established (seen right after `gpufed dev up`).
 */
async function retryTooManyRequests<T>(fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    try {
      return await fn();
    } catch (e) {
      if (apiErrorCode(e) !== 429 || Date.now() > deadline) throw e;
      await sleep(250);
    }
  }
}

/** Server-side applies one object and says whether that created, changed or left it alone. */
export async function applyObject(kube: Kube, m: Manifest): Promise<AppliedObject> {
  const what = `${m.kind} ${m.metadata.namespace ? `${m.metadata.namespace}/` : ''}${m.metadata.name}`;
  try {
    const before = await retryTooManyRequests(() => resourceVersionOf(kube, m));
    const after = (await retryTooManyRequests(() => kube.apply<k8s.KubernetesObject>(m))).metadata?.resourceVersion;
    const result: ApplyOutcome = before === undefined ? 'created' : before === after ? 'unchanged' : 'configured';
    return { kind: m.kind, name: m.metadata.name, ...(m.metadata.namespace ? { namespace: m.metadata.namespace } : {}), result };
  } catch (e) {
    throw explain(`Applying ${what}`, e);
  }
}

/** The provider's agent token Secrets, oldest first. */
export async function agentTokenSecrets(kube: Kube, provider: string): Promise<k8s.V1Secret[]> {
  const namespace = providerNamespace(provider);
  const list = await kube.api(k8s.CoreV1Api).listNamespacedSecret({ namespace, labelSelector: `${PROVIDER_LABEL}=${provider},${CREDENTIAL_LABEL}=${AGENT_TOKEN_CREDENTIAL}` });
  return list.items
    .filter((s) => s.type === 'kubernetes.io/service-account-token' && s.metadata?.annotations?.['kubernetes.io/service-account.name'] === AGENT_SERVICE_ACCOUNT)
    .sort((a, b) => created(a) - created(b) || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
}

const created = (s: k8s.V1Secret) => new Date(s.metadata?.creationTimestamp ?? 0).getTime();

function filled(s: k8s.V1Secret): { token: string; caData: string | undefined } | undefined {
  const token = s.data?.token;
  if (!token) return undefined;
  return { token: Buffer.from(token, 'base64').toString('utf8'), caData: s.data?.['ca.crt'] };
}

/** The admin kubeconfig's CA, for a token controller that has no root CA to put in the Secret. */
function adminCaData(kc: k8s.KubeConfig): string | undefined {
  const c = kc.getCurrentCluster();
  if (c?.caData) return c.caData;
  if (c?.caFile) return readFileSync(c.caFile).toString('base64');
  return undefined;
}

/** Polls a token Secret until the token controller has put the token in it. */
async function waitForToken(kube: Kube, namespace: string, name: string, timeoutMs: number): Promise<AgentToken> {
  const core = kube.api(k8s.CoreV1Api);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const s = filled(await core.readNamespacedSecret({ name, namespace }));
    if (s) {
      const caData = s.caData ?? adminCaData(kube.kc);
      if (!caData) throw new Error(`Secret ${namespace}/${name} has no ca.crt and the admin kubeconfig names no CA: set kube-controller-manager --root-ca-file`);
      return { secret: name, token: s.token, caData };
    }
    if (Date.now() > deadline) {
      throw new Error(
        `The token controller did not fill Secret ${namespace}/${name} within ${timeoutMs / 1000}s: check that kube-controller-manager runs on the registry with --service-account-private-key-file, then run the command again`,
      );
    }
    await sleep(100);
  }
}

/** Creates a new token Secret for the provider's agent and waits for its token. */
export async function issueAgentToken(kube: Kube, provider: string, timeoutMs = 30_000): Promise<AgentToken> {
  const namespace = providerNamespace(provider);
  let name: string;
  try {
    const s = await kube.api(k8s.CoreV1Api).createNamespacedSecret({ namespace, body: agentTokenSecret(provider), fieldManager: kube.fieldManager });
    name = s.metadata?.name ?? '';
  } catch (e) {
    throw explain(`Creating a token Secret in ${namespace}`, e);
  }
  return waitForToken(kube, namespace, name, timeoutMs);
}

function serverOf(kube: Kube, server: string | undefined): string {
  const s = server ?? kube.kc.getCurrentCluster()?.server;
  if (!s) throw new Error('The admin kubeconfig names no server: pass --server https://<registry>:<port>');
  return s;
}

/**
 * Creates or updates everything a provider needs on the registry and returns its agent's
 * kubeconfig. Idempotent: a second run changes no object and re-issues the newest existing token.
 */
export async function onboardProvider(kube: Kube, req: ProviderRequest, opts: TokenOptions = {}): Promise<Onboarded> {
  const server = serverOf(kube, opts.server);
  const objects: AppliedObject[] = [];
  for (const m of providerObjects(req)) objects.push(await applyObject(kube, m));
  const namespace = providerNamespace(req.name);
  const newest = (await agentTokenSecrets(kube, req.name)).at(-1);
  const token = newest?.metadata?.name
    ? await waitForToken(kube, namespace, newest.metadata.name, opts.tokenTimeoutMs ?? 30_000)
    : await issueAgentToken(kube, req.name, opts.tokenTimeoutMs);
  return {
    provider: req.name,
    namespace,
    serviceAccount: AGENT_SERVICE_ACCOUNT,
    server,
    tokenSecret: token.secret,
    tokenCreated: newest === undefined,
    objects,
    kubeconfig: agentKubeconfigYaml({ provider: req.name, server, caData: token.caData, token: token.token }),
  };
}

/**
 * Issues a new token, hands its kubeconfig to `persist` (which writes it), and only then deletes
 * every older token Secret: the API server checks a Secret-based token's Secret whenever it
 * authenticates it, so the old tokens stop working while the new kubeconfig is already in place
 * (at the latest 10 s later: kube-apiserver caches a successful token authentication that long).
 */
export async function rotateProviderToken(kube: Kube, provider: string, persist: (kubeconfig: string) => void | Promise<void>, opts: TokenOptions = {}): Promise<Rotated> {
  const namespace = providerNamespace(provider);
  const server = serverOf(kube, opts.server);
  try {
    await kube.api(k8s.CoreV1Api).readNamespacedServiceAccount({ name: AGENT_SERVICE_ACCOUNT, namespace });
  } catch (e) {
    if (isNotFound(e)) throw new Error(`Provider ${provider} is not onboarded (no ServiceAccount ${namespace}/${AGENT_SERVICE_ACCOUNT}): run gpufed registry add-provider ${provider} first`, { cause: e });
    throw explain(`Reading ServiceAccount ${namespace}/${AGENT_SERVICE_ACCOUNT}`, e);
  }
  const old = (await agentTokenSecrets(kube, provider)).map((s) => s.metadata?.name ?? '').filter((n) => n !== '');
  const token = await issueAgentToken(kube, provider, opts.tokenTimeoutMs);
  const kubeconfig = agentKubeconfigYaml({ provider, server, caData: token.caData, token: token.token });
  await persist(kubeconfig);
  const core = kube.api(k8s.CoreV1Api);
  for (const name of old) {
    try {
      await core.deleteNamespacedSecret({ name, namespace });
    } catch (e) {
      if (!isNotFound(e)) throw explain(`Deleting the old token Secret ${namespace}/${name} (the new kubeconfig is written; delete it by hand)`, e);
    }
  }
  return { provider, namespace, server, tokenSecret: token.secret, revoked: old, kubeconfig };
}

/**
 * Writes a file only its owner can read, atomically: a temporary file created with mode 0600 in the
 * same directory, then renamed over the target (so an existing file's looser mode never applies).
 */
export function writePrivateFile(path: string, text: string): void {
  const tmp = `${path}.${randomBytes(4).toString('hex')}.tmp`;
  try {
    writeFileSync(tmp, text, { mode: 0o600, flag: 'wx' });
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new Error(`Could not write ${path}: ${(e as Error).message}`, { cause: e });
  }
}
