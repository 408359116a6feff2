import { planFederation, portsNeeded, type PlanInput } from './plan.js';
import { selectProviders, parseFleet } from './fleet.js';

const fleet = parseFleet('providers:\n  - {name: alice, nodes: [{name: a1}]}\n  - {name: bob, nodes: [{name: b1}]}\n');
const input = (n = 2): PlanInput => ({ dir: '/tmp/fed', binDir: '/cache/bin', providers: selectProviders(fleet, n), kwokStages: '/repo/stages.yaml' });
const ports = (n: number) => Array.from({ length: portsNeeded(n) }, (_, i) => 20000 + i);
const arg = (args: string[], flag: string) => args.find((a) => a.startsWith(`${flag}=`))?.slice(flag.length + 1);

describe('planFederation', () => {
  const plan = planFederation(input(), ports(2));

  it('plans one etcd, a registry with API server and KCM, and full provider clusters', () => {
    expect(plan.components.map((c) => c.name)).toEqual([
      'etcd',
      'registry/kube-apiserver',
      'registry/kube-controller-manager',
      'alice/kube-apiserver',
      'alice/kube-controller-manager',
      'bob/kube-apiserver',
      'bob/kube-controller-manager',
      'alice/kube-scheduler',
      'alice/kwok',
      'bob/kube-scheduler',
      'bob/kwok',
    ]);
    expect(plan.clusters.map((c) => [c.name, c.role])).toEqual([['registry', 'registry'], ['alice', 'provider'], ['bob', 'provider']]);
  });

  it('gives every endpoint its own port', () => {
    const peer = arg(plan.components[0]!.args, '--listen-peer-urls')!;
    const used = [peer, ...plan.components.map((c) => c.health.url)].map((u) => new URL(u).port);
    expect(new Set(used).size).toBe(used.length);
    expect(portsNeeded(2)).toBe(2 + 6 + 4);
  });

  it('shares one etcd between clusters under distinct prefixes', () => {
    const apiservers = plan.components.filter((c) => c.name.endsWith('/kube-apiserver'));
    expect(apiservers.map((c) => arg(c.args, '--etcd-servers'))).toEqual(Array(3).fill(plan.etcd.clientUrl));
    expect(apiservers.map((c) => arg(c.args, '--etcd-prefix'))).toEqual(['/gpufed/registry', '/gpufed/alice', '/gpufed/bob']);
  });

  it('runs every API server with RBAC, loopback only, and its own service-account key', () => {
    for (const c of plan.components.filter((x) => x.name.endsWith('/kube-apiserver'))) {
      expect(arg(c.args, '--authorization-mode')).toBe('Node,RBAC');
      expect(arg(c.args, '--bind-address')).toBe('127.0.0.1');
      expect(arg(c.args, '--endpoint-reconciler-type')).toBe('none');
      expect(arg(c.args, '--service-account-signing-key-file')).toBe(`/tmp/fed/pki/sa-${c.cluster}.key`);
    }
  });

  it('points each cluster component at its own cluster and the binaries at the cache', () => {
    const kwok = plan.components.find((c) => c.name === 'bob/kwok')!;
    expect(kwok.binary).toBe('/cache/bin/kwok');
    expect(arg(kwok.args, '--kubeconfig')).toBe('/tmp/fed/provider-bob.kubeconfig');
    expect(arg(kwok.args, '--config')).toBe('/repo/stages.yaml');
    expect(arg(kwok.args, '--manage-nodes-with-annotation-selector')).toBe('kwok.x-k8s.io/node=fake');
    const kcm = plan.components.find((c) => c.name === 'registry/kube-controller-manager')!;
    expect(arg(kcm.args, '--kubeconfig')).toBe('/tmp/fed/registry.kubeconfig');
    expect(arg(kcm.args, '--service-account-private-key-file')).toBe('/tmp/fed/pki/sa-registry.key');
  });

  it('orders start-up: etcd, then API servers, then what talks to them', () => {
    expect(plan.components.filter((c) => c.stage === 0).map((c) => c.name)).toEqual(['etcd']);
    expect(plan.components.filter((c) => c.stage === 1).every((c) => c.name.endsWith('/kube-apiserver'))).toBe(true);
  });

  it('scales with the number of providers', () => {
    const p = planFederation(input(3), ports(3));
    expect(p.clusters.map((c) => c.name)).toEqual(['registry', 'alice', 'bob', 'provider-3']);
    expect(p.components).toHaveLength(1 + 2 + 4 * 3);
  });

  it('adds one agent per provider, last, with its scoped kubeconfig and a metrics port', () => {
    const p = planFederation({ ...input(), agents: { entry: '/repo/dist/operator/src/main.js', node: '/usr/bin/node26' } }, ports(2).concat([30001, 30002, 30003, 30004, 30005, 30006]));
    const agents = p.components.filter((c) => c.stage === 3 && c.name.startsWith('agent-'));
    expect(agents.map((c) => c.name)).toEqual(['agent-alice', 'agent-bob']);
    expect(agents[0]?.binary).toBe('/usr/bin/node26');
    expect(agents[0]?.args.slice(0, 2)).toEqual(['/repo/dist/operator/src/main.js', 'agent']);
    expect(arg(agents[0]!.args, '--registry-kubeconfig')).toBe('/tmp/fed/agent-alice.kubeconfig');
    expect(arg(agents[0]!.args, '--kubeconfig')).toBe('/tmp/fed/provider-alice.kubeconfig');
    expect(agents[1]?.health.url).toBe('http://127.0.0.1:30002/readyz');
    expect(portsNeeded(2, true)).toBe(18);
  });

  it('runs two registry replicas with the admin kubeconfig, each its own identity in the Lease', () => {
    const p = planFederation({ ...input(), agents: { entry: '/repo/dist/operator/src/main.js', node: '/usr/bin/node26' } }, ports(2).concat([30001, 30002, 30003, 30004, 30005, 30006]));
    const replicas = p.components.filter((c) => c.name.startsWith('registry-'));
    expect(replicas.map((c) => c.name)).toEqual(['registry-1', 'registry-2']);
    expect(replicas.every((c) => c.stage === 3 && c.args[1] === 'registry')).toBe(true);
    expect(replicas.map((c) => arg(c.args, '--identity'))).toEqual(['registry-1', 'registry-2']);
    expect(arg(replicas[0]!.args, '--kubeconfig')).toBe('/tmp/fed/registry.kubeconfig');
    expect(replicas[1]?.health.url).toBe('http://127.0.0.1:30004/readyz');
  });

  it("runs a fence guard beside each agent, with the agent's credentials and fencing timing", () => {
    const p = planFederation({ ...input(), agents: { entry: '/repo/dist/operator/src/main.js', node: '/usr/bin/node26' } }, ports(2).concat([30001, 30002, 30003, 30004, 30005, 30006]));
    const guards = p.components.filter((c) => c.name.startsWith('fence-guard-'));
    expect(guards.map((c) => [c.name, c.cluster, c.stage, c.args[1]])).toEqual([
      ['fence-guard-alice', 'alice', 3, 'fence-guard'],
      ['fence-guard-bob', 'bob', 3, 'fence-guard'],
    ]);
    const agent = p.components.find((c) => c.name === 'agent-alice')!;
    for (const flag of ['--provider', '--kubeconfig', '--registry-kubeconfig', '--fencing-timeout', '--registry-provider-lost-timeout']) expect([flag, arg(guards[0]!.args, flag)]).toEqual([flag, arg(agent.args, flag)]);
    expect(guards.map((c) => c.health.url)).toEqual(['http://127.0.0.1:30005/readyz', 'http://127.0.0.1:30006/readyz']);
  });

  it('refuses too few ports', () => {
    expect(() => planFederation(input(), ports(1))).toThrow(/12 needed/);
  });
});

describe('planFederation with monitoring and agents', () => {
  const full: PlanInput = { ...input(), agents: { entry: '/repo/dist/operator/src/main.js', node: '/node' }, monitoring: { node: '/node', exporterEntry: '/repo/dist/test/support/dcgm-exporter.js' } };
  const plan = planFederation(full, Array.from({ length: portsNeeded(2, true, true) }, (_, i) => 21000 + i));

  it("gives each provider cluster kube-state-metrics, the DCGM exporter and its own Prometheus, scraping its agent", () => {
    for (const p of ['alice', 'bob']) {
      expect(plan.components.map((c) => c.name)).toEqual(expect.arrayContaining([`${p}/kube-state-metrics`, `${p}/dcgm-exporter`, `${p}/prometheus`]));
      const cluster = plan.clusters.find((c) => c.name === p);
      expect(cluster?.prometheusUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
      const agentHealth = plan.components.find((c) => c.name === `agent-${p}`)?.health.url ?? '';
      expect(cluster?.prometheusConfig?.text).toContain(new URL(agentHealth).host);
    }
    expect(portsNeeded(2, true, true)).toBe(portsNeeded(2, true) + 8);
  });

  it('scrapes the first provider\'s DCGM exporter with its pod labels and the second one behind exported_* labels', () => {
    const [alice, bob] = ['alice', 'bob'].map((p) => plan.clusters.find((c) => c.name === p)?.prometheusConfig?.text ?? '');
    expect(alice).toMatch(/honor_labels: true/);
    expect(bob).toMatch(/honor_labels: false/);
  });

  it('still gives every endpoint its own port', () => {
    const used = plan.components.map((c) => new URL(c.health.url).port);
    expect(new Set(used).size).toBe(used.length);
  });
});

describe('planFederation with the chain', () => {
  const full: PlanInput = {
    ...input(),
    agents: { entry: '/repo/dist/operator/src/main.js', node: '/node' },
    monitoring: { node: '/node', exporterEntry: '/repo/dist/test/support/dcgm-exporter.js' },
    chain: { agentKeyFile: (p) => `/tmp/fed/agent-${p}.key`, payout: (p) => `payout-of-${p}`, registryKeyFile: '/tmp/fed/registry-cosign.key' },
  };
  const plan = planFederation(full, Array.from({ length: portsNeeded(2, true, true, true) }, (_, i) => 22000 + i));

  it('starts the chain with etcd, and points every agent at its Prometheus, the chain, its key and payout', () => {
    expect(plan.components.find((c) => c.name === 'chain')?.stage).toBe(0);
    expect(plan.chain?.endpoints.rpcUrl).toMatch(/^http:\/\/127\.0\.0\.1:\d+$/);
    const alice = plan.components.find((c) => c.name === 'agent-alice')?.args ?? [];
    expect(arg(alice, '--prometheus-url')).toBe(plan.clusters.find((c) => c.name === 'alice')?.prometheusUrl);
    expect(arg(alice, '--chain-rpc')).toBe(plan.chain?.endpoints.rpcUrl);
    expect(arg(alice, '--wallet-key-file')).toBe('/tmp/fed/agent-alice.key');
    expect(arg(alice, '--payout')).toBe('payout-of-alice');
    expect(arg(alice, '--settlement-period')).toBe('10s');
  });

  it('has the registry replicas check payments on the same chain', () => {
    for (const r of plan.components.filter((c) => c.name.startsWith('registry-'))) expect(arg(r.args, '--chain-rpc')).toBe(plan.chain?.endpoints.rpcUrl);
  });
});
