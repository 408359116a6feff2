// How long ago the registry saw each provider's heartbeat, and which providers it considers lost:
// their heartbeat is older than the provider-lost timeout, so their agents may never report again
// (their Assignments are re-placed, their final usage records are not waited for). Both by the
// registry's own clock (providers/heartbeats.ts), never by anything a provider wrote.
import * as k8s from '@kubernetes/client-node';
import { HEARTBEAT_LEASE } from '../../api/labels.js';
import { providerNamespace } from '../../api/names.js';
import { isNotFound } from '../../kube/errors.js';
import type { RegistryContext } from '../context.js';

/** How long ago the registry last saw the provider's heartbeat; Infinity when it never saw one. */
export function heartbeatAgeMs(ctx: RegistryContext, provider: string): number {
  const seen = ctx.state.heartbeats.lastMs(provider);
  return seen === undefined ? Number.POSITIVE_INFINITY : ctx.now().getTime() - seen;
}

export function lostProviders(ctx: RegistryContext): Set<string> {
  const limit = ctx.settings.providerLostTimeoutMs;
  return new Set(ctx.state.providers.list().map((p) => p.metadata.name ?? '').filter((name) => heartbeatAgeMs(ctx, name) >= limit));
}

/**
 * Reads the provider's heartbeat Lease from the API server itself, not the watch: before the
 * registry acts on a provider's silence (fences its copies, re-places its jobs), a watch that
 * stalled must not be mistaken for a silent agent. True when the provider is still silent (the
 * Lease did not change since the registry last saw it).
 */
export async function confirmSilent(ctx: RegistryContext, provider: string): Promise<boolean> {
  try {
    const lease = await ctx.options.kc.makeApiClient(k8s.CoordinationV1Api).readNamespacedLease({ name: HEARTBEAT_LEASE, namespace: providerNamespace(provider) });
    return ctx.state.heartbeats.observe(lease, ctx.now().getTime()) === undefined;
  } catch (e) {
    if (isNotFound(e)) return true;
    throw e;
  }
}
