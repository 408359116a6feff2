// What a controller itself wrote last, per key, until its watch cache shows it. A watch cache lags
// the controller's own writes; deciding from a cache that does not show them yet repeats writes or,
// worse, acts on a state the controller already changed (controller-runtime calls these expectations).
import type { KubernetesObject } from '@kubernetes/client-node';

/** etcd-backed API servers hand out increasing integer resourceVersions; anything else is not compared. */
export function resourceVersion(obj: unknown): bigint | undefined {
  const rv = (obj as KubernetesObject | undefined)?.metadata?.resourceVersion;
  return rv && /^\d+$/.test(rv) ? BigInt(rv) : undefined;
}

export class RecentWrites<T> {
  private readonly writes = new Map<string, { rv: bigint; value: T }>();

  /** Records `value` as written for key; `result` is what the API server returned (its resourceVersion). */
  remember(key: string, result: unknown, value: T): void {
    const rv = resourceVersion(result);
    if (rv !== undefined) this.writes.set(key, { rv, value });
  }

  /** Our own write of key when the cached object predates it; undefined once the cache caught up. */
  newerThan(key: string, cached: unknown): T | undefined {
    const mine = this.writes.get(key);
    if (!mine) return undefined;
    const rv = resourceVersion(cached);
    if (rv !== undefined && rv >= mine.rv) {
      this.writes.delete(key);
      return undefined;
    }
    return mine.value;
  }

  forget(key: string): void {
    this.writes.delete(key);
  }
}
