// Real HTTP requests and access reviews with one identity's kubeconfig (a provider's agent token,
// a renter's token), for the RBAC tests: every row of a permission matrix is one call the API
// server answers, with no impersonation.
import https from 'node:https';
import * as k8s from '@kubernetes/client-node';

/** How many checks this test file made, for its closing summary. */
export const checks = { accessReviews: 0, requests: 0 };

export interface Reply {
  status: number;
  body: { items?: unknown[]; status?: Record<string, unknown>; metadata?: { resourceVersion?: string; name?: string }; message?: string } | undefined;
}

export const MERGE = 'application/merge-patch+json';

/** One request by path; an accepted watch answers with its status line only. */
export async function request(kc: k8s.KubeConfig, method: string, path: string, body?: unknown, contentType = 'application/json'): Promise<Reply> {
  const url = new URL(path, kc.getCurrentCluster()?.server);
  const opts: https.RequestOptions = { method, hostname: url.hostname, port: url.port, path: url.pathname + url.search, headers: {} };
  await kc.applyToHTTPSOptions(opts);
  checks.requests++;
  return new Promise((resolve, reject) => {
    const req = https.request(opts, (res) => {
      if (url.searchParams.get('watch') === 'true' && res.statusCode === 200) {
        // An accepted watch streams: its status line is the answer.
        resolve({ status: res.statusCode ?? 0, body: undefined });
        res.destroy();
        return;
      }
      let data = '';
      res.setEncoding('utf8');
      res.on('data', (c: string) => (data += c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, body: data ? (JSON.parse(data) as Reply['body']) : undefined }));
    });
    req.on('error', reject);
    if (body !== undefined) req.setHeader('Content-Type', contentType);
    req.end(body === undefined ? undefined : JSON.stringify(body));
  });
}

// The paths the matrices touch.
export const gpufed = (ns: string, plural: string, name = '', sub = '') => `/apis/gpufed.io/v1alpha1/namespaces/${ns}/${plural}${name ? `/${name}` : ''}${sub ? `/${sub}` : ''}`;
export const core = (ns: string, plural: string, name = '') => `/api/v1/namespaces/${ns}/${plural}${name ? `/${name}` : ''}`;
/** A cluster-scoped gpufed resource (providers, tenants) or every namespace's (computejobs, gpunodes). */
export const cluster = (plural: string, name = '', sub = '') => `/apis/gpufed.io/v1alpha1/${plural}${name ? `/${name}` : ''}${sub ? `/${sub}` : ''}`;

/** SelfSubjectAccessReview attributes. */
export interface Attrs {
  verb: string;
  group: string;
  resource: string;
  subresource?: string;
  namespace?: string;
  name?: string;
}

/** What the authorizer says for the kubeconfig's own identity. */
export async function can(kc: k8s.KubeConfig, a: Attrs): Promise<boolean> {
  checks.accessReviews++;
  const r = await kc.makeApiClient(k8s.AuthorizationV1Api).createSelfSubjectAccessReview({
    body: { apiVersion: 'authorization.k8s.io/v1', kind: 'SelfSubjectAccessReview', spec: { resourceAttributes: a } },
  });
  return r.status?.allowed === true;
}

/** The verbs of `attrs` the identity is allowed, for comparing with a matrix row in one readable diff. */
export async function allowedVerbs(kc: k8s.KubeConfig, verbs: string[], attrs: Omit<Attrs, 'verb'>): Promise<string[]> {
  const out: string[] = [];
  for (const verb of verbs) if (await can(kc, { ...attrs, verb })) out.push(verb);
  return out;
}

export const ALL_VERBS = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete', 'deletecollection'];

/** The username the kubeconfig authenticates as (SelfSubjectReview). */
export async function whoAmI(kc: k8s.KubeConfig): Promise<string | undefined> {
  const who = await kc.makeApiClient(k8s.AuthenticationV1Api).createSelfSubjectReview({ body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' } });
  return who.status?.userInfo?.username;
}
