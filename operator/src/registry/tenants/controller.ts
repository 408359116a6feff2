// The tenant controller: whether a Tenant's proof verifies and its namespace exists (decideTenant);
// only a verified Tenant's jobs are placed, and its verified address is the only payer there is.
import { isDeepStrictEqual } from 'node:util';
import { TenantResource, type TenantStatus } from '../../api/index.js';
import { isNotFound } from '../../kube/errors.js';
import { normalized } from '../../kube/manifests.js';
import type { RegistryContext } from '../context.js';
import { decideTenant } from './decide.js';

export class TenantController {
  constructor(private readonly ctx: RegistryContext) {}

  async reconcile(name: string): Promise<{ requeueAfterMs: number } | void> {
    const tenant = this.ctx.state.tenants.get(name);
    if (!tenant) return;
    let exists = true;
    try {
      await this.ctx.core.readNamespace({ name: tenant.spec.namespace });
    } catch (e) {
      if (!isNotFound(e)) throw e;
      exists = false;
    }
    const want: TenantStatus = decideTenant(tenant, exists, this.ctx.now());
    // Namespaces are not watched: onboarding may create the namespace just after the Tenant, so look again soon.
    const again = exists ? undefined : { requeueAfterMs: 2000 };
    if (isDeepStrictEqual(normalized(tenant.status), normalized(want))) return again;
    await this.ctx.kube('jobs').applyStatus(TenantResource, name, undefined, want);
    this.ctx.metrics.registryWrites.inc({ resource: 'tenants', verb: 'apply_status' });
    this.ctx.log.info({ tenant: name, verified: want.verifiedAddress !== undefined }, 'Checked tenant proof');
    return again;
  }
}
