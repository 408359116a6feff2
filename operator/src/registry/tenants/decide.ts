// Whether a Tenant may pay for jobs: its proof verifies for its address, and its namespace exists.
// Pure; the tenant controller applies the status it returns.
import { TenantConditionType, TenantReason, findCondition, setCondition } from '../../api/conditions.js';
import type { Tenant, TenantStatus } from '../../api/index.js';
import { verifyTenantProof } from '../../tenancy/proof.js';

/** Jobs of a namespace are placed only while this holds: Verified, for the address in the spec now. */
export function isTenantVerified(tenant: Tenant | undefined): boolean {
  if (!tenant) return false;
  const verified = findCondition(tenant.status?.conditions, TenantConditionType.Verified);
  return verified?.status === 'True' && tenant.status?.verifiedAddress === tenant.spec.address;
}

/** The Tenant's status as the registry sees it now. */
export function decideTenant(tenant: Tenant, namespaceExists: boolean, now: Date): TenantStatus {
  const generation = tenant.metadata.generation;
  const g = generation === undefined ? {} : { observedGeneration: generation };
  const verdict = verifyTenantProof(tenant);
  let update: { status: 'True' | 'False'; reason: string; message: string };
  if (!verdict.valid) update = { status: 'False', reason: verdict.reason, message: verdict.message };
  else if (!namespaceExists) update = { status: 'False', reason: TenantReason.NamespaceNotFound, message: `Namespace ${tenant.spec.namespace} does not exist on the registry` };
  else update = { status: 'True', reason: TenantReason.SignatureValid, message: `${tenant.spec.address} signed the binding of namespace ${tenant.spec.namespace}` };
  const conditions = setCondition(tenant.status?.conditions, { type: TenantConditionType.Verified, ...update, ...g }, now);
  return { ...g, ...(update.status === 'True' ? { verifiedAddress: tenant.spec.address } : {}), conditions };
}
