// Onboarding a provider on the registry, the pure part: what a provider's credentials are made of
// (its Provider, namespace, service account, RBAC and token Secret, as plain manifests), the
// kubeconfig its agent gets, and the checks on the admin's input. apply.ts sends them.
//
// The RBAC here is the federation's security boundary (DESIGN.md: a provider's credentials reach
// only its own namespace and its own Provider status), so every rule is listed once, in
// AGENT_NAMESPACE_RULES and providerClusterRules, and docs/onboarding.md and
// test/integration/provider-rbac.test.ts check exactly these.
import { fromBech32 } from '@cosmjs/encoding';
import type { V1Secret } from '@kubernetes/client-node';
import { API_GROUP, API_GROUP_VERSION, type Provider, type ProviderSpecPrice } from '../api/index.js';
import { providerNamespace } from '../api/names.js';
import {
  clusterRole,
  clusterRoleBinding,
  CREDENTIAL_LABEL,
  DNS_LABEL,
  MANAGED_LABELS,
  namespacedIdentity,
  READ,
  tokenKubeconfig,
  tokenKubeconfigYaml,
  tokenSecret,
  tokenSecretPrefix,
  type Manifest,
  type PolicyRule,
  type TokenKubeconfigInput,
  type TokenSubject,
} from './credentials.js';

export { CREDENTIAL_LABEL, type Manifest, type PolicyRule } from './credentials.js';

export { providerNamespace };

/** The service account the provider's agent authenticates as, in the provider's namespace. */
export const AGENT_SERVICE_ACCOUNT = 'gpufed-agent';
/** Name of the namespaced Role and RoleBinding of the agent: the service account's. */
export const AGENT_ROLE = AGENT_SERVICE_ACCOUNT;
/** Name of the ClusterRole and ClusterRoleBinding that reach the provider's own Provider only. */
export const providerClusterRoleName = (provider: string): string => `gpufed-provider-${provider}`;
/** Token Secrets are created with this generateName; the server adds a random suffix. */
export const AGENT_TOKEN_PREFIX = tokenSecretPrefix(AGENT_SERVICE_ACCOUNT);

/** Labels that mark what onboarding created (and find the token Secrets again for rotation). */
export const PROVIDER_LABEL = 'gpufed.io/provider';
export const AGENT_TOKEN_CREDENTIAL = 'agent-token';

export const MAX_PROVIDER_NAME = 47;
/** The default human-readable part of wallet addresses (the local chain is simd's `cosmos`). */
export const DEFAULT_ADDRESS_PREFIX = 'cosmos';

// The same patterns the CRDs enforce, checked before anything is sent so a typo fails fast.
const COIN = /^(0|[1-9][0-9]{0,77})[a-zA-Z][a-zA-Z0-9/:._-]{2,127}$/;
const GPU_MODEL = /^[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?$/;

const STATUS = ['get', 'update', 'patch'];

/**
 * What an agent may do in its own namespace: exactly what agent mode needs, nothing cluster-wide.
 * No Secrets (not even its own token), no Pods, no delete of UsageRecords or Settlements (they are
 * the payment trail), no write of an Assignment's spec (the registry's word; the agent answers in
 * status), and no write of a UsageRecord's or a Settlement's status (the registry's verdicts).
 */
export const AGENT_NAMESPACE_RULES: readonly PolicyRule[] = [
  // One GpuNode per GPU node of the provider's cluster: created, kept up to date, removed with the node.
  { apiGroups: [API_GROUP], resources: ['gpunodes'], verbs: [...READ, 'create', 'update', 'patch', 'delete'] },
  { apiGroups: [API_GROUP], resources: ['gpunodes/status'], verbs: STATUS },
  // Placed jobs: read the spec, report the pod's phase in status.
  { apiGroups: [API_GROUP], resources: ['assignments'], verbs: READ },
  { apiGroups: [API_GROUP], resources: ['assignments/status'], verbs: STATUS },
  // Metering: one record per period, written once (its spec is immutable). Its status, the
  // registry's verdict and where its payment is, is not the agent's to write; nor is a
  // Settlement's status (what the registry co-signed and found on chain).
  { apiGroups: [API_GROUP], resources: ['usagerecords'], verbs: [...READ, 'create'] },
  // Settlement: proposals of a transaction paying verified records, for the registry to co-sign.
  { apiGroups: [API_GROUP], resources: ['settlements'], verbs: [...READ, 'create'] },
  // Job log tails, pushed for `gpufed logs`; removed when the job is gone.
  { apiGroups: [''], resources: ['configmaps'], verbs: [...READ, 'create', 'update', 'patch', 'delete'] },
  // Events about its objects: the core API and events.k8s.io (client-node can record through either).
  { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'patch'] },
  // The heartbeat Lease (gpufed-agent) and leader election between agent replicas.
  { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: [...READ, 'create', 'update', 'patch'] },
];

/**
 * What an agent may do cluster-wide: read its own Provider, nothing else. Its status (Ready, the
 * heartbeat the registry saw, capacity, reputation) is the registry's alone: nothing a provider
 * writes decides its own standing.
 * A list or watch is allowed only with `fieldSelector=metadata.name=<provider>` (the API server
 * then authorizes it against resourceNames); a plain list of all Providers is forbidden.
 */
export function providerClusterRules(provider: string): PolicyRule[] {
  return [
    { apiGroups: [API_GROUP], resources: ['providers'], resourceNames: [provider], verbs: READ },
  ];
}

/** What the admin asks for: the Provider's spec. */
export interface ProviderRequest {
  name: string;
  wallet: string;
  /** Receives the payments; the wallet when left out. */
  payout?: string;
  region: string;
  prices: ProviderSpecPrice[];
}

const labelsOf = (provider: string) => ({ [PROVIDER_LABEL]: provider, ...MANAGED_LABELS });

export function providerManifest(r: ProviderRequest): Provider {
  return {
    apiVersion: API_GROUP_VERSION,
    kind: 'Provider',
    metadata: { name: r.name, labels: labelsOf(r.name) },
    spec: { wallet: r.wallet, payout: r.payout ?? r.wallet, region: r.region, prices: r.prices },
  };
}

/**
 * Every object of an onboarded provider, in the order to apply them: the Provider first (the API
 * server validates its spec, so a bad request creates nothing else), then the namespace and what
 * lives in it, then the cluster-scoped RBAC. The token Secret is not here: it is created, never
 * applied (see agentTokenSecret).
 */
export function providerObjects(r: ProviderRequest): Manifest[] {
  const ns = providerNamespace(r.name);
  const labels = labelsOf(r.name);
  const role = providerClusterRoleName(r.name);
  return [
    providerManifest(r) as unknown as Manifest,
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: ns, labels } },
    ...namespacedIdentity(ns, AGENT_SERVICE_ACCOUNT, AGENT_NAMESPACE_RULES, labels),
    clusterRole(role, providerClusterRules(r.name), labels),
    clusterRoleBinding(role, role, { namespace: ns, serviceAccount: AGENT_SERVICE_ACCOUNT }, labels),
  ];
}

/** The agent's token Secrets: in the provider's namespace, labelled with the provider. */
export function agentTokenSubject(provider: string): TokenSubject {
  return {
    namespace: providerNamespace(provider),
    serviceAccount: AGENT_SERVICE_ACCOUNT,
    selector: { [PROVIDER_LABEL]: provider, [CREDENTIAL_LABEL]: AGENT_TOKEN_CREDENTIAL },
    labels: labelsOf(provider),
  };
}

/** A new long-lived token Secret for the agent (see tokenSecret). */
export const agentTokenSecret = (provider: string): V1Secret => tokenSecret(agentTokenSubject(provider));

export interface AgentKubeconfigInput extends Pick<TokenKubeconfigInput, 'server' | 'caData' | 'token'> {
  provider: string;
}

const agentKubeconfigInput = (k: AgentKubeconfigInput): TokenKubeconfigInput => {
  const name = providerNamespace(k.provider);
  return { context: name, user: `${name}-agent`, namespace: name, server: k.server, caData: k.caData, token: k.token };
};

/** The kubeconfig of a provider's agent: token auth, its namespace as the default. */
export const agentKubeconfig = (k: AgentKubeconfigInput): Record<string, unknown> => tokenKubeconfig(agentKubeconfigInput(k));

export function agentKubeconfigYaml(k: AgentKubeconfigInput): string {
  return tokenKubeconfigYaml(agentKubeconfigInput(k), `The gpufed agent's credentials for provider ${k.provider} on the registry.`);
}

// Input checks. Each returns the problem as a sentence, or undefined; the CLI prefixes the flag.

export function providerNameProblem(name: string): string | undefined {
  if (name.length > MAX_PROVIDER_NAME) return `must be at most ${MAX_PROVIDER_NAME} characters (its namespace is gpufed-provider-<name>), it has ${name.length}`;
  if (!DNS_LABEL.test(name)) return 'must be a DNS label: lower-case letters, digits and "-", starting and ending with a letter or digit';
  return undefined;
}

export function regionProblem(region: string): string | undefined {
  if (region.length > 63 || !DNS_LABEL.test(region)) return 'must be a DNS label of at most 63 characters, e.g. eu-west';
  return undefined;
}

/** A bech32 account address with the expected prefix and a valid checksum (20- or 32-byte account). */
export function addressProblem(address: string, prefix = DEFAULT_ADDRESS_PREFIX): string | undefined {
  if (address !== address.toLowerCase()) return 'must be lower case';
  let decoded: { prefix: string; data: Uint8Array };
  try {
    decoded = fromBech32(address, 90);
  } catch (e) {
    return `is not a valid bech32 address (${(e as Error).message})`;
  }
  if (decoded.prefix !== prefix) return `has prefix "${decoded.prefix}", expected "${prefix}" (e.g. ${prefix}1...)`;
  if (decoded.data.length !== 20 && decoded.data.length !== 32) return `decodes to ${decoded.data.length} bytes, expected an account address of 20 or 32`;
  return undefined;
}

export function coinProblem(coin: string): string | undefined {
  if (!COIN.test(coin)) return 'must be a Cosmos coin: an integer amount in the base denom (no sign, decimal point or leading zeros) followed by the denom, e.g. 1200000ustake';
  return undefined;
}

/** `MODEL=COIN`, e.g. `NVIDIA-GeForce-RTX-4090=1200000ustake`, or a sentence saying what is wrong. */
export function parsePrice(text: string): ProviderSpecPrice | string {
  const eq = text.indexOf('=');
  if (eq < 0) return 'expected MODEL=COIN, e.g. NVIDIA-GeForce-RTX-4090=1200000ustake';
  const model = text.slice(0, eq);
  const pricePerGpuHour = text.slice(eq + 1);
  if (model.length > 63 || !GPU_MODEL.test(model)) return `model "${model}" must be a GPU product name as nvidia.com/gpu.product has it, e.g. NVIDIA-GeForce-RTX-4090`;
  const coin = coinProblem(pricePerGpuHour);
  if (coin) return `price "${pricePerGpuHour}" ${coin}`;
  return { model, pricePerGpuHour };
}

/** The first model priced twice, if any (prices are a list-map keyed on model). */
export function duplicateModel(prices: readonly ProviderSpecPrice[]): string | undefined {
  const seen = new Set<string>();
  for (const p of prices) {
    if (seen.has(p.model)) return p.model;
    seen.add(p.model);
  }
  return undefined;
}
