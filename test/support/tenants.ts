// The renter tests submit as: the federation's dev tenant carol, with the kubeconfig `dev up` wrote
// for her (exactly the RBAC `gpufed registry add-tenant` grants).
import * as k8s from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { DEV_TENANT, devTenantRequest, tenantKubeconfigPath } from '../../cli/src/dev/tenants.js';
import { testDir } from './federation.js';

export interface TestTenant {
  namespace: string;
  address: string;
  kubeconfig: string;
  kc: k8s.KubeConfig;
}

export async function devTenant(): Promise<TestTenant> {
  const kubeconfig = tenantKubeconfigPath(testDir(), DEV_TENANT);
  if (!existsSync(kubeconfig)) throw new Error(`${kubeconfig} is missing: the test federation should have onboarded tenant ${DEV_TENANT}`);
  const kc = new k8s.KubeConfig();
  kc.loadFromFile(kubeconfig);
  return Promise.resolve({ namespace: DEV_TENANT, address: devTenantRequest(DEV_TENANT).address, kubeconfig, kc });
}
