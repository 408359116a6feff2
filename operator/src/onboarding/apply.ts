// Onboarding on the registry, the part that talks to the API server: apply the objects of
// provider.ts (server-side apply, so running it again changes nothing), issue a token Secret and
// wait for the token controller to fill it, rotate tokens, and write the agent's kubeconfig.
// tenant-apply.ts onboards renters with the same helpers (applyObject, tokens, serverOf).
import { randomBytes } from 'node:crypto';
import { readFileSync, renameSync, rmSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import * as k8s from '@kubernetes/client-node';
import { ProviderResource, type Provider } from '../api/index.js';
import type { Kube } from '../kube/client.js';
import { apiErrorCode, explain, isNotFound } from '../kube/errors.js';
import { tokenSecret, tokenSelector, type Manifest, type TokenSubject } from './credentials.js';
import { AGENT_SERVICE_ACCOUNT, agentKubeconfigYaml, agentTokenSubject, providerNamespace, providerObjects, type ProviderRequest } from './provider.js';

/** What applying one object did, in kubectl's words. */
export type ApplyOutcome = 'created' | 'configured' | 'unchanged';

export interface AppliedObject {
  kind: string;
  name: string;
  namespace?: string;
  result: ApplyOutcome;
}

/** A filled token Secret: its name, the token and the CA to trust. */
export interface IssuedToken {
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
export async function retryTooManyRequests<T>(fn: () => Promise<T>, timeoutMs = 10_000): Promise<T> {
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

/** The subject's token Secrets, oldest first. */
export async function tokenSecrets(kube: Kube, subject: TokenSubject): Promise<k8s.V1Secret[]> {
  const list = await kube.api(k8s.CoreV1Api).listNamespacedSecret({ namespace: subject.namespace, labelSelector: tokenSelector(subject) });
  return list.items
    .filter((s) => s.type === 'kubernetes.io/service-account-token' && s.metadata?.annotations?.['kubernetes.io/service-account.name'] === subject.serviceAccount)
    .sort((a, b) => created(a) - created(b) || (a.metadata?.name ?? '').localeCompare(b.metadata?.name ?? ''));
}

/** The provider's agent token Secrets, oldest first. */
export const agentTokenSecrets = (kube: Kube, provider: string): Promise<k8s.V1Secret[]> => tokenSecrets(kube, agentTokenSubject(provider));

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
async function waitForToken(kube: Kube, namespace: string, name: string, timeoutMs: number): Promise<IssuedToken> {
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

/** Creates a new token Secret for the subject and waits for its token. */
export async function issueToken(kube: Kube, subject: TokenSubject, timeoutMs = 30_000): Promise<IssuedToken> {
  const { namespace } = subject;
  let name: string;
  try {
    const s = await kube.api(k8s.CoreV1Api).createNamespacedSecret({ namespace, body: tokenSecret(subject), fieldManager: kube.fieldManager });
    name = s.metadata?.name ?? '';
  } catch (e) {
    throw explain(`Creating a token Secret in ${namespace}`, e);
  }
  return waitForToken(kube, namespace, name, timeoutMs);
}

/** Creates a new token Secret for the provider's agent and waits for its token. */
export const issueAgentToken = (kube: Kube, provider: string, timeoutMs?: number): Promise<IssuedToken> => issueToken(kube, agentTokenSubject(provider), timeoutMs);

/**
 * The subject's newest token, or a new one when it has none: onboarding twice re-issues the same
 * credential instead of piling up tokens. `created` says which.
 */
export async function newestOrNewToken(kube: Kube, subject: TokenSubject, timeoutMs = 30_000): Promise<IssuedToken & { created: boolean }> {
  const newest = (await tokenSecrets(kube, subject)).at(-1)?.metadata?.name;
  if (newest) return { ...(await waitForToken(kube, subject.namespace, newest, timeoutMs)), created: false };
  return { ...(await issueToken(kube, subject, timeoutMs)), created: true };
}

/** The server a new kubeconfig names: `server`, else the admin kubeconfig's. */
export function serverOf(kube: Kube, server: string | undefined): string {
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
  const token = await newestOrNewToken(kube, agentTokenSubject(req.name), opts.tokenTimeoutMs);
  return {
    provider: req.name,
    namespace: providerNamespace(req.name),
    serviceAccount: AGENT_SERVICE_ACCOUNT,
    server,
    tokenSecret: token.secret,
    tokenCreated: token.created,
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
