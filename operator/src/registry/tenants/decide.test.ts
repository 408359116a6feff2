import { Random } from '@cosmjs/crypto';
import type { Tenant } from '../../api/index.js';
import { signTenantProof } from '../../tenancy/proof.js';
import { decideTenant, isTenantVerified } from './decide.js';

const NOW = new Date('2026-11-21T12:00:00Z');

function tenant(): Tenant {
  const { address, proof } = signTenantProof(Random.getBytes(32), 'carol');
  return { apiVersion: 'gpufed.io/v1alpha1', kind: 'Tenant', metadata: { name: 'carol', generation: 1 }, spec: { namespace: 'carol', address, proof } };
}

describe('decideTenant', () => {
  it('verifies a valid proof for an existing namespace and records the address it verified', () => {
    const t = tenant();
    const status = decideTenant(t, true, NOW);
    expect(status.verifiedAddress).toBe(t.spec.address);
    expect(status.conditions?.[0]).toMatchObject({ type: 'Verified', status: 'True', reason: 'SignatureValid', observedGeneration: 1 });
    expect(isTenantVerified({ ...t, status })).toBe(true);
  });

  it('refuses a tampered signature and a missing namespace', () => {
    const t = tenant();
    const bad = { ...t, spec: { ...t.spec, proof: { ...t.spec.proof, signature: Buffer.alloc(64, 1).toString('base64') } } };
    expect(decideTenant(bad, true, NOW).conditions?.[0]).toMatchObject({ status: 'False', reason: 'SignatureInvalid' });
    const missing = decideTenant(t, false, NOW);
    expect(missing.conditions?.[0]).toMatchObject({ status: 'False', reason: 'NamespaceNotFound' });
    expect(missing.verifiedAddress).toBeUndefined();
    expect(isTenantVerified({ ...t, status: missing })).toBe(false);
  });
});
