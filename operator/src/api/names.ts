// Where a provider's objects live on the registry: namespace gpufed-provider-<provider> holds its
// GpuNodes, Assignments, UsageRecords and pushed logs. One place maps a provider to its namespace
// and back.

/** Annotations the local federation's KWOK reads; they travel ComputeJob → Assignment → pod (the agent copies them only when simulating). */
export const SIM_ANNOTATION_PREFIX = 'sim.gpufed.io/';

export const PROVIDER_NAMESPACE_PREFIX = 'gpufed-provider-';

export const providerNamespace = (provider: string): string => `${PROVIDER_NAMESPACE_PREFIX}${provider}`;

/** The provider a registry namespace belongs to, or undefined for any other namespace. */
export const providerOfNamespace = (ns: string | undefined): string | undefined =>
  ns?.startsWith(PROVIDER_NAMESPACE_PREFIX) ? ns.slice(PROVIDER_NAMESPACE_PREFIX.length) : undefined;
