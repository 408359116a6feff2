// When the registry saw each provider's agent heartbeat, by the registry's own clock. The agent
// renews a Lease in its namespace (the kubelet's node-lease pattern); any change of that Lease the
// registry's watch delivers is a heartbeat, timed when it arrived. Nothing the agent wrote into the
// Lease is read as a time, so a renewTime in 2099 or a skewed clock at home cannot make a silent
// provider look alive: it stops looking alive when the registry stops seeing changes.
//
// After the registry starts, every Lease it lists counts as just seen (what kube-controller-manager
// does with node Leases): a provider that had gone silent just before is given one more timeout,
// never less. A deleted Lease keeps its last sighting, so deleting it cannot make a provider lost
// (and its jobs re-placed) before the timeout has passed.
import type * as k8s from '@kubernetes/client-node';
import { AGENT_VERSION_ANNOTATION, HOT_KEY_ANNOTATION } from '../../api/labels.js';
import { providerOfNamespace } from '../../api/names.js';
import type { ObservedHeartbeat } from './decide.js';

export class Heartbeats {
  private readonly seen = new Map<string, ObservedHeartbeat & { version: string }>();

  /** Records the Lease as seen at `nowMs` if it changed; returns the provider when it is a new heartbeat. */
  observe(lease: k8s.V1Lease, nowMs: number): string | undefined {
    const provider = providerOfNamespace(lease.metadata?.namespace);
    const version = lease.metadata?.resourceVersion ?? '';
    if (provider === undefined) return undefined;
    if (this.seen.get(provider)?.version === version) return undefined;
    const agentVersion = lease.metadata?.annotations?.[AGENT_VERSION_ANNOTATION];
    const hotKey = lease.metadata?.annotations?.[HOT_KEY_ANNOTATION];
    this.seen.set(provider, { atMs: nowMs, version, ...(agentVersion ? { agentVersion: agentVersion.slice(0, 64) } : {}), ...(hotKey ? { hotKey: hotKey.slice(0, 64) } : {}) });
    return provider;
  }

  /** The provider's last heartbeat as the registry saw it, or undefined if it never saw one. */
  get(provider: string): ObservedHeartbeat | undefined {
    const h = this.seen.get(provider);
    return h && { atMs: h.atMs, ...(h.agentVersion ? { agentVersion: h.agentVersion } : {}), ...(h.hotKey ? { hotKey: h.hotKey } : {}) };
  }

  /** When the registry last saw the provider's heartbeat (Unix ms). */
  lastMs(provider: string): number | undefined {
    return this.seen.get(provider)?.atMs;
  }
}
