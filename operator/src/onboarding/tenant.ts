// Onboarding a renter (a tenant) on the registry, the pure part: the Tenant binding the renter's
// namespace to the address that pays, the namespace itself, the renter's service account, its RBAC
// and token Secret as plain manifests, the renter's kubeconfig, and the checks on the admin's input
// (the proof is verified here, before anything is sent). tenant-apply.ts sends them.
//
// A renter's credentials reach ComputeJobs (and the logs and events the registry relays) in its
// own namespace, its own Tenant, and the market (Providers and GpuNodes: prices, regions, free
// GPUs) read-only; nothing of another tenant, no Secrets, no Assignments or UsageRecords. Every
// rule is listed once here; docs/onboarding.md and test/integration/tenant-rbac.test.ts check
// exactly these.
import { API_GROUP, API_GROUP_VERSION, type Tenant } from '../api/index.js';
import { verifyTenantProof, type TenantProof } from '../tenancy/proof.js';
import {
  clusterRole,
  clusterRoleBinding,
  CREDENTIAL_LABEL,
  DNS_LABEL,
  MANAGED_LABELS,
  namespacedIdentity,
  READ,
  tokenKubeconfigYaml,
  type Manifest,
  type PolicyRule,
  type TokenKubeconfigInput,
  type TokenSubject,
} from './credentials.js';
import { PROVIDER_LABEL } from './provider.js';

/** Marks the tenant's namespace, Tenant, RBAC and token Secrets with the tenant's name. */
export const TENANT_LABEL = 'gpufed.io/tenant';
/** The service account a renter authenticates as, in the tenant's namespace. */
export const RENTER_SERVICE_ACCOUNT = 'gpufed-renter';
/** Name of the renter's Role and RoleBinding in its namespace: the service account's. */
export const RENTER_ROLE = RENTER_SERVICE_ACCOUNT;
/** The ClusterRole every renter shares: reading the market. Bound per tenant. */
export const RENTER_CLUSTER_ROLE = 'gpufed-renter';
/** The ClusterRoleBinding of RENTER_CLUSTER_ROLE to one tenant's renter. */
export const renterClusterRoleBindingName = (tenant: string): string => `gpufed-renter-${tenant}`;
/** The ClusterRole (and its binding) that reaches the tenant's own Tenant only. */
export const tenantClusterRoleName = (tenant: string): string => `gpufed-tenant-${tenant}`;
/** The context (and user) of the renter's kubeconfig. */
export const tenantContextName = (tenant: string): string => `gpufed-tenant-${tenant}`;
export const RENTER_TOKEN_CREDENTIAL = 'renter-token';

export const MAX_TENANT_NAME = 63;

/**
 * Namespaces a tenant may not be given: the cluster's own and the federation's (provider namespaces
 * are gpufed-provider-<name>). A renter can create ComputeJobs and read ConfigMaps in its namespace,
 * so handing it one of these would mix it with what others own.
 */
const RESERVED_NAMESPACE = /^(default|kube-.*|gpufed-.*)$/;

const withStatus = (resource: string) => `${resource}/status`;

/**
 * What a renter may do in its own namespace. Its ComputeJobs, fully (a job's spec is immutable:
 * delete and create again); their status, written by the registry; the job logs the registry relays
 * into the namespace as ConfigMaps, and events, read-only. No Secrets (not even its own token), no
 * Pods (jobs run at providers), no Assignments or UsageRecords (those live in provider namespaces).
 */
export const RENTER_NAMESPACE_RULES: readonly PolicyRule[] = [
  { apiGroups: [API_GROUP], resources: ['computejobs'], verbs: [...READ, 'create', 'update', 'patch', 'delete'] },
  { apiGroups: [API_GROUP], resources: [withStatus('computejobs')], verbs: ['get'] },
  // Job logs: the registry relays each job's log tail into the tenant's namespace as a ConfigMap.
  { apiGroups: [''], resources: ['configmaps'], verbs: READ },
  // Events about its jobs, through the core API (kubectl get events) and events.k8s.io (kubectl events).
  { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: READ },
];

/**
 * What every renter may read cluster-wide: the market, to choose a price, a model and a region.
 * Providers carry prices, regions and capacity; GpuNodes (in the provider namespaces) the GPUs.
 */
export const RENTER_MARKET_RULES: readonly PolicyRule[] = [
  { apiGroups: [API_GROUP], resources: ['providers'], verbs: READ },
  { apiGroups: [API_GROUP], resources: ['gpunodes'], verbs: READ },
];

/**
 * The renter's own Tenant, read-only (its Verified condition says whether jobs can be paid), by
 * name. A list or watch is allowed only with `fieldSelector=metadata.name=<namespace>`, which is
 * what `kubectl wait --for=condition=Verified tenant/<namespace>` sends. No status: the registry
 * verifies, never the renter.
 */
export function tenantClusterRules(namespace: string): PolicyRule[] {
  return [{ apiGroups: [API_GROUP], resources: ['tenants'], resourceNames: [namespace], verbs: READ }];
}

/** What the admin asks for: a tenant name, the namespace it gets, the payer and the payer's proof. */
export interface TenantRequest {
  /** Names the tenant's RBAC, labels and kubeconfig context; often the namespace itself. */
  name: string;
  /** The renter's namespace on the registry, and the Tenant's name. */
  namespace: string;
  /** The bech32 address that pays for every ComputeJob in the namespace. */
  address: string;
  proof: TenantProof;
}

const labelsOf = (tenant: string) => ({ [TENANT_LABEL]: tenant, ...MANAGED_LABELS });

/** The Tenant: named after the namespace (the CRD requires it), with the proof the registry verifies. */
export function tenantObject(r: TenantRequest): Tenant {
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'Tenant',
    metadata: { name: r.namespace, labels: labelsOf(r.name) },
    spec: { namespace: r.namespace, address: r.address, proof: { ...r.proof } },
  };
}

/**
 * Every object of an onboarded tenant, in the order to apply them: the Tenant first (the API server
 * checks that its challenge names the namespace and the address, so a bad request creates nothing
 * else), then the namespace and what lives in it, then the cluster-scoped RBAC. The shared
 * ClusterRole is applied with every tenant, so the first onboarding creates it. The token Secret is
 * not here: it is created, never applied (see renterTokenSubject).
 */
export function tenantObjects(r: TenantRequest): Manifest[] {
  const labels = labelsOf(r.name);
  const renter = { namespace: r.namespace, serviceAccount: RENTER_SERVICE_ACCOUNT };
  const own = tenantClusterRoleName(r.name);
  return [
    tenantObject(r) as unknown as Manifest,
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: r.namespace, labels } },
    ...namespacedIdentity(r.namespace, RENTER_SERVICE_ACCOUNT, RENTER_NAMESPACE_RULES, labels),
    clusterRole(RENTER_CLUSTER_ROLE, RENTER_MARKET_RULES, { ...MANAGED_LABELS }),
    clusterRoleBinding(renterClusterRoleBindingName(r.name), RENTER_CLUSTER_ROLE, renter, labels),
    clusterRole(own, tenantClusterRules(r.namespace), labels),
    clusterRoleBinding(own, own, renter, labels),
  ];
}

/** The renter's token Secrets: in its namespace, labelled with the tenant. */
export function renterTokenSubject(r: Pick<TenantRequest, 'name' | 'namespace'>): TokenSubject {
  return {
    namespace: r.namespace,
    serviceAccount: RENTER_SERVICE_ACCOUNT,
    selector: { [TENANT_LABEL]: r.name, [CREDENTIAL_LABEL]: RENTER_TOKEN_CREDENTIAL },
    labels: labelsOf(r.name),
  };
}

export interface RenterKubeconfigInput extends Pick<TokenKubeconfigInput, 'server' | 'caData' | 'token'> {
  tenant: string;
  namespace: string;
}

/** The renter's kubeconfig: token auth, context gpufed-tenant-<name>, its namespace as the default. */
export function renterKubeconfigYaml(k: RenterKubeconfigInput): string {
  const context = tenantContextName(k.tenant);
  return tokenKubeconfigYaml(
    { context, user: context, namespace: k.namespace, server: k.server, caData: k.caData, token: k.token },
    `The gpufed renter's credentials for tenant ${k.tenant} (namespace ${k.namespace}) on the registry.`,
  );
}

// Input checks. Each returns the problem as a sentence, or undefined; the CLI prefixes the flag.

export function tenantNameProblem(name: string): string | undefined {
  if (name.length > MAX_TENANT_NAME || !DNS_LABEL.test(name)) return `must be a DNS label of at most ${MAX_TENANT_NAME} characters: lower-case letters, digits and "-", starting and ending with a letter or digit`;
  return undefined;
}

export function tenantNamespaceProblem(namespace: string): string | undefined {
  const label = tenantNameProblem(namespace);
  if (label) return label;
  if (RESERVED_NAMESPACE.test(namespace)) return 'is reserved (default, kube-* and gpufed-* belong to the cluster and the federation): choose the renter its own namespace';
  return undefined;
}

/** Where a proof came from: the proof itself, and the binding it names when it is a whole Tenant. */
export interface ProofDocument {
  proof: TenantProof;
  namespace?: string;
  address?: string;
}

const isString = (v: unknown): v is string => typeof v === 'string';

function proofOf(v: unknown): TenantProof | undefined {
  const p = v as Partial<Record<keyof TenantProof, unknown>> | null | undefined;
  if (typeof p !== 'object' || p === null) return undefined;
  if (!isString(p.challenge) || !isString(p.signature) || !isString(p.pubKey)) return undefined;
  return { challenge: p.challenge, signature: p.signature, pubKey: p.pubKey };
}

/**
 * The proof in a parsed document: what `gpufed tenant prove` prints (a Tenant, YAML or JSON) or a
 * bare `{challenge, signature, pubKey}`. A sentence saying what is missing otherwise.
 */
export function proofFromDocument(doc: unknown): ProofDocument | string {
  const spec = (doc as { kind?: unknown; spec?: { namespace?: unknown; address?: unknown; proof?: unknown } } | null)?.spec;
  if (spec !== undefined) {
    const proof = proofOf(spec.proof);
    if (!proof) return 'has a spec but no spec.proof {challenge, signature, pubKey} of strings';
    return { proof, ...(isString(spec.namespace) ? { namespace: spec.namespace } : {}), ...(isString(spec.address) ? { address: spec.address } : {}) };
  }
  const proof = proofOf(doc);
  if (!proof) return 'is neither a Tenant (the output of gpufed tenant prove) nor a proof {challenge, signature, pubKey}';
  return { proof };
}

/**
 * Who else holds a namespace, from the labels of its Namespace and of the Tenant named after it:
 * onboarding must not hand a provider's namespace, or another tenant's, to this tenant. Objects
 * without gpufed's labels (a namespace or Tenant the admin made by hand) are taken over.
 */
export function namespaceTakenBy(tenant: string, labels: { namespace?: Record<string, string>; tenant?: Record<string, string> }): string | undefined {
  const provider = labels.namespace?.[PROVIDER_LABEL];
  if (provider !== undefined) return `provider ${provider}`;
  for (const l of [labels.namespace, labels.tenant]) {
    const other = l?.[TENANT_LABEL];
    if (other !== undefined && other !== tenant) return `tenant ${other}`;
  }
  return undefined;
}

/** Whether the proof binds this namespace to this address, as the registry will check it. */
export function tenantProofProblem(r: Pick<TenantRequest, 'namespace' | 'address' | 'proof'>): string | undefined {
  const verdict = verifyTenantProof({ spec: { namespace: r.namespace, address: r.address, proof: r.proof } });
  if (verdict.valid) return undefined;
  return `does not prove that ${r.address} pays for namespace ${r.namespace} (${verdict.reason}): ${verdict.message}`;
}
