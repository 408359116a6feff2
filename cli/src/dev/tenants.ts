// The local federation's renter, tenant carol: onboarded on the registry the way an admin does it
// (`gpufed registry add-tenant`), with a real secp256k1 key derived from its name, so its Tenant's
// proof verifies exactly like a real renter's and jobs in namespace carol have a payer. `dev up`
// writes carol's kubeconfig and key next to the federation's other credentials.
import { sha256 } from '@cosmjs/crypto';
import { toHex } from '@cosmjs/encoding';
import { join } from 'node:path';
import { Kube, loadKubeConfig } from '../../../operator/src/kube/client.js';
import { writePrivateFile } from '../../../operator/src/onboarding/apply.js';
import { onboardTenant } from '../../../operator/src/onboarding/tenant-apply.js';
import type { TenantRequest } from '../../../operator/src/onboarding/tenant.js';
import { signTenantProof } from '../../../operator/src/tenancy/proof.js';
import type { ClusterPlan, FederationPlan } from './plan.js';
import { devPrivateKey } from './wallets.js';

/** The dev tenant: its name and its namespace on the registry. */
export const DEV_TENANT = 'carol';

/** The renter's kubeconfig `dev up` writes for a tenant (context gpufed-tenant-<name>). */
export function tenantKubeconfigPath(dir: string, tenant: string): string {
  return join(dir, `tenant-${tenant}.kubeconfig`);
}

/** The tenant's payer key, 64 hex digits, as `gpufed tenant prove --key-file` reads it. */
export function tenantKeyPath(dir: string, tenant: string): string {
  return join(dir, `tenant-${tenant}.key`);
}

export const devTenantKey = (tenant: string): Uint8Array => devPrivateKey(`tenant/${tenant}`);

/**
 * The dev tenant's request, signed with its derived key. The nonce is derived too: secp256k1
 * signatures are deterministic (RFC 6979), so every `dev up` creates the very same Tenant.
 */
export function devTenantRequest(tenant: string): TenantRequest {
  const nonce = toHex(sha256(new TextEncoder().encode(`gpufed-dev:tenant/${tenant}/nonce`)).slice(0, 8));
  const { address, proof } = signTenantProof(devTenantKey(tenant), tenant, 'cosmos', nonce);
  return { name: tenant, namespace: tenant, address, proof };
}

/**
 * Onboards the dev tenant on the registry and writes its kubeconfig and key (both 0600). Runs with
 * or without agents: tests and demos submit ComputeJobs as carol either way.
 */
export async function onboardDevTenant(plan: FederationPlan, log: (line: string) => void): Promise<void> {
  const registry = plan.clusters.find((c) => c.role === 'registry') as ClusterPlan;
  const done = await onboardTenant(new Kube(loadKubeConfig(registry.kubeconfig), 'gpufed-cli'), devTenantRequest(DEV_TENANT));
  writePrivateFile(tenantKubeconfigPath(plan.dir, DEV_TENANT), done.kubeconfig);
  writePrivateFile(tenantKeyPath(plan.dir, DEV_TENANT), `${toHex(devTenantKey(DEV_TENANT))}\n`);
  log(`registry: onboarded tenant ${DEV_TENANT} (payer ${done.address}), kubeconfig ${tenantKubeconfigPath(plan.dir, DEV_TENANT)}`);
}
