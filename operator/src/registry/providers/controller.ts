// The provider controller: each Provider's whole status (Ready, the heartbeat it recorded, capacity,
// reputation), recomputed from what the registry observed (decideProvider) and written under the
// registry's field manager when it changed. Agents have no write access to Provider status at all.
import { isDeepStrictEqual } from 'node:util';
import { ProviderConditionType } from '../../api/conditions.js';
import { ProviderResource, providerNamespace, type Provider } from '../../api/index.js';
import { normalized } from '../../kube/manifests.js';
import { reservationsFor } from '../../scheduling/reservations.js';
import type { RegistryContext } from '../context.js';
import type { Obj } from '../state.js';
import { decideProvider } from './decide.js';
import { publicKeyOf } from '../../settlement/multisig.js';

export class ProviderController {
  private readonly registryKey?: { pubkey: Uint8Array; prefix: string };

  constructor(private readonly ctx: RegistryContext) {
    const s = ctx.options.settlement;
    if (s) this.registryKey = { pubkey: publicKeyOf(s.key), prefix: s.chain.prefix };
  }

  async reconcile(name: string): Promise<{ requeueAfterMs: number } | void> {
    const { state, settings } = this.ctx;
    const provider = state.provider(name);
    if (!provider) return this.recordGauge();
    const ns = providerNamespace(name);
    const all = state.allAssignments();
    const gpuNodes = state.gpuNodes.list(ns);
    const heartbeat = state.heartbeats.get(name);
    const d = decideProvider({
      provider,
      ...(heartbeat ? { heartbeat } : {}),
      gpuNodes,
      reservations: reservationsFor(all, gpuNodes),
      assignments: all.filter((a) => a.metadata.namespace === ns),
      records: state.recordsIn(ns),
      now: this.ctx.now(),
      heartbeatTimeoutMs: settings.heartbeatTimeoutMs,
      ...(this.registryKey ? { registryKey: this.registryKey } : {}),
    });
    if (!isDeepStrictEqual(normalized(provider.status), normalized(d.status))) {
      const written = (await this.ctx.kube('providers').applyStatus(ProviderResource, name, undefined, d.status, provider.metadata.resourceVersion)) as Obj<Provider>;
      state.providerWrites.remember(name, written, written);
      this.ctx.metrics.registryWrites.inc({ resource: 'providers', verb: 'apply_status' });
    }
    this.recordGauge();
    return d.requeueAfterMs === undefined ? undefined : { requeueAfterMs: d.requeueAfterMs };
  }

  private recordGauge(): void {
    const ready = new Map<string, number>([['True', 0], ['False', 0], ['Unknown', 0]]);
    for (const p of this.ctx.state.providers.list()) {
      const latest = this.ctx.state.provider(p.metadata.name ?? '') ?? p;
      const status = latest.status?.conditions?.find((c) => c.type === ProviderConditionType.Ready)?.status ?? 'Unknown';
      ready.set(status, (ready.get(status) ?? 0) + 1);
    }
    for (const [r, n] of ready) this.ctx.metrics.providers.set({ ready: r }, n);
  }
}
