import type { V1Lease } from '@kubernetes/client-node';
import { Heartbeats } from './heartbeats.js';

/** A Lease as the watch delivers it (renewTime as the agent wrote it: any string at all). */
const lease = (namespace: string, resourceVersion: string, renewTime = '2099-01-01T00:00:00.000000Z', version?: string): V1Lease =>
  ({
    metadata: { name: 'gpufed-agent', namespace, resourceVersion, ...(version ? { annotations: { 'gpufed.io/agent-version': version } } : {}) },
    spec: { holderIdentity: 'agent', renewTime },
  }) as unknown as V1Lease;

describe('Heartbeats: timed by the registry clock, never by the Lease', () => {
  it('records a change as seen now, whatever renewTime says, and says whose heartbeat it was', () => {
    const h = new Heartbeats();
    expect(h.observe(lease('gpufed-provider-alice', '10', '2099-01-01T00:00:00.000000Z', '1.2.3'), 1000)).toBe('alice');
    expect(h.get('alice')).toEqual({ atMs: 1000, agentVersion: '1.2.3' });
    expect(h.lastMs('bob')).toBeUndefined();
  });

  it('does not count the same Lease version twice (a relist, a duplicate event): a silent agent goes stale', () => {
    const h = new Heartbeats();
    h.observe(lease('gpufed-provider-alice', '10'), 1000);
    expect(h.observe(lease('gpufed-provider-alice', '10'), 50_000)).toBeUndefined();
    expect(h.lastMs('alice')).toBe(1000);
    expect(h.observe(lease('gpufed-provider-alice', '11', '1970-01-01T00:00:00.000000Z'), 60_000)).toBe('alice');
    expect(h.lastMs('alice')).toBe(60_000);
  });

  it('ignores Leases outside provider namespaces', () => {
    const h = new Heartbeats();
    expect(h.observe(lease('gpufed-system', '1'), 1000)).toBeUndefined();
  });
});
