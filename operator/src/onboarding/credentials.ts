// What every identity onboarded on the registry is made of, whoever holds it (a provider's agent,
// a renter): plain manifests, RBAC rules, a long-lived service-account token Secret and the
// kubeconfig around its token. provider.ts and tenant.ts fill in the names and the rules; apply.ts
// sends them. Pure: no API server, no files.
import type { V1Secret } from '@kubernetes/client-node';
import { stringify } from 'yaml';

/** Labels marking what onboarding created and which credential a token Secret is. */
export const CREDENTIAL_LABEL = 'gpufed.io/credential';

/** A DNS label (RFC 1123), what namespaces, label values and most names here must be. */
export const DNS_LABEL = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;

export const READ = ['get', 'list', 'watch'];

export interface PolicyRule {
  apiGroups: string[];
  resources: string[];
  verbs: string[];
  resourceNames?: string[];
}

/** A plain Kubernetes manifest (what the API server takes and kubectl prints). */
export interface Manifest {
  apiVersion: string;
  kind: string;
  metadata: { name: string; namespace?: string; labels?: Record<string, string>; annotations?: Record<string, string> };
  [field: string]: unknown;
}

/** The labels every object onboarding creates carries, besides its owner's. */
export const MANAGED_LABELS: Readonly<Record<string, string>> = { 'app.kubernetes.io/part-of': 'gpufed', 'app.kubernetes.io/managed-by': 'gpufed-cli' };

/** A service account and its Role + RoleBinding of the same name, in one namespace. */
export function namespacedIdentity(namespace: string, serviceAccount: string, rules: readonly PolicyRule[], labels: Record<string, string>): Manifest[] {
  return [
    // No token mounted into pods: the identity is used from outside the cluster, through its kubeconfig.
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: { name: serviceAccount, namespace, labels }, automountServiceAccountToken: false },
    { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'Role', metadata: { name: serviceAccount, namespace, labels }, rules: rules.map((r) => ({ ...r })) },
    {
      apiVersion: 'rbac.authorization.k8s.io/v1',
      kind: 'RoleBinding',
      metadata: { name: serviceAccount, namespace, labels },
      roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: serviceAccount },
      subjects: [{ kind: 'ServiceAccount', name: serviceAccount, namespace }],
    },
  ];
}

/** A ClusterRole with these rules (none: only the binding, to a role that exists already). */
export function clusterRole(name: string, rules: readonly PolicyRule[], labels: Record<string, string>): Manifest {
  return { apiVersion: 'rbac.authorization.k8s.io/v1', kind: 'ClusterRole', metadata: { name, labels }, rules: rules.map((r) => ({ ...r })) };
}

/** Binds ClusterRole `role` to one service account, under the binding name `name`. */
export function clusterRoleBinding(name: string, role: string, subject: { namespace: string; serviceAccount: string }, labels: Record<string, string>): Manifest {
  return {
    apiVersion: 'rbac.authorization.k8s.io/v1',
    kind: 'ClusterRoleBinding',
    metadata: { name, labels },
    roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
    subjects: [{ kind: 'ServiceAccount', name: subject.serviceAccount, namespace: subject.namespace }],
  };
}

/** Whose long-lived token a token Secret holds, and how its Secrets are found again. */
export interface TokenSubject {
  namespace: string;
  serviceAccount: string;
  /** Labels that select exactly this subject's token Secrets (owner and credential kind). */
  selector: Record<string, string>;
  /** Further labels the Secrets carry. */
  labels?: Record<string, string>;
}

export const tokenSecretPrefix = (serviceAccount: string): string => `${serviceAccount}-token-`;

/** `a=b,c=d`: the subject's selector as a label selector. */
export const tokenSelector = (s: TokenSubject): string =>
  Object.entries(s.selector)
    .map(([k, v]) => `${k}=${v}`)
    .join(',');

/**
 * A long-lived token: a Secret of type kubernetes.io/service-account-token that the token
 * controller fills with a token, the namespace's CA and its name. generateName gives every token
 * its own Secret, so a rotation can create the new one before deleting the old, and deleting one
 * revokes exactly that token.
 */
export function tokenSecret(s: TokenSubject): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'kubernetes.io/service-account-token',
    metadata: {
      generateName: tokenSecretPrefix(s.serviceAccount),
      namespace: s.namespace,
      labels: { ...s.labels, ...s.selector },
      annotations: { 'kubernetes.io/service-account.name': s.serviceAccount },
    },
  };
}

export interface TokenKubeconfigInput {
  /** The context's name, also the current context. */
  context: string;
  /** The user entry's name. */
  user: string;
  /** The default namespace of the context. */
  namespace: string;
  /** The registry API server as the holder reaches it, e.g. https://registry.example.org:6443. */
  server: string;
  /** The registry's CA bundle, base64 of the PEM (as a token Secret's ca.crt holds it). */
  caData: string;
  token: string;
}

/** A kubeconfig with one context: bearer-token auth on the registry, a default namespace. */
export function tokenKubeconfig(k: TokenKubeconfigInput): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'gpufed-registry', cluster: { server: k.server, 'certificate-authority-data': k.caData } }],
    users: [{ name: k.user, user: { token: k.token } }],
    contexts: [{ name: k.context, context: { cluster: 'gpufed-registry', user: k.user, namespace: k.namespace } }],
    'current-context': k.context,
  };
}

/** The kubeconfig as YAML under a one-line comment saying whose it is. */
export function tokenKubeconfigYaml(k: TokenKubeconfigInput, whose: string): string {
  return `# ${whose} Keep it secret.\n${stringify(tokenKubeconfig(k))}`;
}
