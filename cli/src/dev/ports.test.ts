import { readFileSync } from 'node:fs';
import { createServer } from 'node:net';
import { freePorts } from './federation.js';

describe('freePorts', () => {
  it('returns distinct bindable loopback ports below the ephemeral range', async () => {
    const ports = await freePorts(20);
    expect(new Set(ports).size).toBe(20);
    const [ephemeralLow] = readFileSync('/proc/sys/net/ipv4/ip_local_port_range', 'utf8').trim().split(/\s+/).map(Number);
    for (const p of ports) {
      expect(p).toBeGreaterThanOrEqual(20000);
      expect(p).toBeLessThan(ephemeralLow ?? 32768);
    }
    // Each one can really be bound now.
    const servers = await Promise.all(ports.map((p) => new Promise<ReturnType<typeof createServer>>((resolve, reject) => {
      const s = createServer();
      s.once('error', reject);
      s.listen(p, '127.0.0.1', () => resolve(s));
    })));
    await Promise.all(servers.map((s) => new Promise((r) => s.close(r))));
  });
});
