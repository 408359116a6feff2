import { ApiException } from '@kubernetes/client-node';
import { apiErrorMessage, isNamespaceTerminating, isNotFound } from './errors.js';

// The bodies as kube-apiserver v1.34 sends them, as client-node 2.x wraps them (a JSON string).
const terminating = new ApiException(403, 'Unsuccessful HTTP Request', JSON.stringify({
  kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403,
  message: 'computejobs.gpufed.io "job-6" is forbidden: unable to create new content in namespace mallory because it is being terminated',
  details: { name: 'job-6', group: 'gpufed.io', kind: 'computejobs', causes: [{ reason: 'NamespaceTerminating', message: 'namespace mallory is being terminated', field: 'metadata.namespace' }] },
}), {});
const rbac = new ApiException(403, 'Unsuccessful HTTP Request', JSON.stringify({
  kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'Forbidden', code: 403,
  message: 'computejobs.gpufed.io "job-6" is forbidden: User "system:serviceaccount:gpufed-system:gpufed-registry" cannot patch resource "computejobs" in API group "gpufed.io" in the namespace "mallory"',
}), {});

describe('API error classes', () => {
  it('tells a namespace being deleted from an RBAC refusal, both 403', () => {
    expect(isNamespaceTerminating(terminating)).toBe(true);
    expect(isNamespaceTerminating(rbac)).toBe(false);
    expect(isNotFound(terminating)).toBe(false);
    expect(apiErrorMessage(rbac)).toMatch(/^computejobs.gpufed.io "job-6" is forbidden: User/);
  });
});
