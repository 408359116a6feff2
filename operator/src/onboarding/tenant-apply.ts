// Onboarding a renter on the registry, the part that talks to the API server: refuse a namespace
// that a provider or another tenant holds, apply the objects of tenant.ts (server-side apply, so
// running it again changes nothing), issue the renter's token (or re-issue the newest) and build
// its kubeconfig. The registry verifies the Tenant's proof again and sets its Verified condition.
import * as k8s from '@kubernetes/client-node';
import { TenantResource, type Tenant } from '../api/index.js';
import type { Kube } from '../kube/client.js';
import { explain, isNotFound } from '../kube/errors.js';
import { applyObject, newestOrNewToken, retryTooManyRequests, serverOf, type AppliedObject, type TokenOptions } from './apply.js';
import { namespaceTakenBy, RENTER_SERVICE_ACCOUNT, renterKubeconfigYaml, renterTokenSubject, tenantObjects, tenantProofProblem, type TenantRequest } from './tenant.js';

export interface TenantOnboarded {
  tenant: string;
  namespace: string;
  /** The payer: every ComputeJob of the namespace is paid from this address. */
  address: string;
  serviceAccount: string;
  server: string;
  tokenSecret: string;
  /** False when an existing token was re-issued (nothing new was created). */
  tokenCreated: boolean;
  objects: AppliedObject[];
  /** The renter's kubeconfig (it holds the token: write it somewhere private). */
  kubeconfig: string;
}

/** The namespace is a provider's or another tenant's: nothing was changed. */
export class NamespaceTakenError extends Error {
  override name = 'NamespaceTakenError';
}

async function labelsOf(kube: Kube, namespace: string): Promise<{ namespace?: Record<string, string>; tenant?: Record<string, string> }> {
  const labels: { namespace?: Record<string, string>; tenant?: Record<string, string> } = {};
  try {
    labels.namespace = (await kube.api(k8s.CoreV1Api).readNamespace({ name: namespace })).metadata?.labels ?? {};
  } catch (e) {
    if (!isNotFound(e)) throw explain(`Reading Namespace ${namespace}`, e);
  }
  try {
    const tenant = await retryTooManyRequests(() => kube.getCustom<Tenant>(TenantResource, namespace));
    if (tenant) labels.tenant = tenant.metadata?.labels ?? {};
  } catch (e) {
    throw explain(`Reading Tenant ${namespace}`, e);
  }
  return labels;
}

/**
 * Creates or updates everything a tenant needs on the registry and returns its renter's
 * kubeconfig. Idempotent: a second run with the same proof changes no object and re-issues the
 * newest existing token. Throws before sending anything when the proof does not verify or the
 * namespace belongs to someone else.
 */
export async function onboardTenant(kube: Kube, req: TenantRequest, opts: TokenOptions = {}): Promise<TenantOnboarded> {
  const server = serverOf(kube, opts.server);
  const proof = tenantProofProblem(req);
  if (proof) throw new Error(`Tenant ${req.namespace}: the proof ${proof}`);
  const holder = namespaceTakenBy(req.name, await labelsOf(kube, req.namespace));
  if (holder) throw new NamespaceTakenError(`Namespace ${req.namespace} belongs to ${holder}: choose tenant ${req.name} another namespace (nothing was changed)`);
  const objects: AppliedObject[] = [];
  for (const m of tenantObjects(req)) objects.push(await applyObject(kube, m));
  const token = await newestOrNewToken(kube, renterTokenSubject(req), opts.tokenTimeoutMs);
  return {
    tenant: req.name,
    namespace: req.namespace,
    address: req.address,
    serviceAccount: RENTER_SERVICE_ACCOUNT,
    server,
    tokenSecret: token.secret,
    tokenCreated: token.created,
    objects,
    kubeconfig: renterKubeconfigYaml({ tenant: req.name, namespace: req.namespace, server, caData: token.caData, token: token.token }),
  };
}
