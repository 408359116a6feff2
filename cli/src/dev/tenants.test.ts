import { describe, expect, it } from '@jest/globals';
import { toHex } from '@cosmjs/encoding';
import { verifyTenantProof } from '../../../operator/src/tenancy/proof.js';
import { parsePrivateKey, tenantManifest } from '../commands/tenant.js';
import { DEV_TENANT, devTenantKey, devTenantRequest, tenantKeyPath, tenantKubeconfigPath } from './tenants.js';
import { devPrivateKey } from './wallets.js';

describe('the dev tenant', () => {
  it('is carol, whose namespace is carol', () => {
    expect(DEV_TENANT).toBe('carol');
    expect(devTenantRequest('carol')).toMatchObject({ name: 'carol', namespace: 'carol' });
  });

  it('has a proof that verifies, and the very same one on every run', () => {
    const r = devTenantRequest('carol');
    expect(verifyTenantProof({ spec: r })).toEqual({ valid: true });
    expect(devTenantRequest('carol')).toEqual(r);
    expect(r.address).toMatch(/^cosmos1[02-9ac-hj-np-z]{38}$/);
  });

  it("signs with the key from its key file: gpufed tenant prove with it proves carol's address", () => {
    const fromFile = parsePrivateKey(`${toHex(devTenantKey('carol'))}\n`, 'tenant-carol.key');
    const proved = tenantManifest(fromFile, 'carol', 'cosmos') as { spec: { address: string } };
    expect(proved.spec.address).toBe(devTenantRequest('carol').address);
  });

  it('derives a distinct key per purpose, from the purpose alone', () => {
    expect(devPrivateKey('tenant/carol')).toEqual(devTenantKey('carol'));
    expect(devTenantKey('carol')).not.toEqual(devTenantKey('dave'));
    expect(devTenantKey('carol')).toHaveLength(32);
  });

  it('keeps its kubeconfig and key beside the federation\'s other credentials', () => {
    expect(tenantKubeconfigPath('/d', 'carol')).toBe('/d/tenant-carol.kubeconfig');
    expect(tenantKeyPath('/d', 'carol')).toBe('/d/tenant-carol.key');
  });
});
