// The gpufed API on the real registry API server: served, self-documenting, samples accepted, and
// malformed ComputeJobs rejected at `kubectl apply` with a message naming the field.
import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from '../../cli/src/dev/paths.js';
import { malformedComputeJobs, validComputeJob } from '../fixtures/computejobs.js';
import { kubectl } from '../support/federation.js';

const registry = (args: string[], input?: string) => kubectl('registry', args, input);
const samplesDir = join(repoRoot(), 'crds', 'samples');

interface Crd {
  spec: { names: { kind: string; plural: string }; scope: string; versions: { schema: { openAPIV3Schema: Schema } }[] };
}
interface Schema {
  description?: string;
  properties?: Record<string, Schema>;
}

const crds = (): Crd[] =>
  readdirSync(join(repoRoot(), 'crds'))
    .filter((f) => f.endsWith('.yaml'))
    .map((f) => parse(readFileSync(join(repoRoot(), 'crds', f), 'utf8')) as Crd);

beforeAll(async () => {
  for (const ns of ['carol', 'gpufed-provider-alice', 'gpufed-provider-bob']) {
    const r = await registry(['create', 'namespace', ns]);
    if (r.code !== 0 && !/AlreadyExists/.test(r.stderr)) throw new Error(r.stderr);
  }
});

// The samples include a real Assignment (one RTX 4090, no simulated end): an agent started by a
// later test file would run it for ever and hold alice's 4090. Leave nothing behind.
afterAll(async () => {
  // Except Tenant carol: the federation's own dev tenant, which the sample equals.
  for (const f of readdirSync(samplesDir).filter((x) => x.endsWith('.yaml') && x !== 'tenant-carol.yaml')) {
    await registry(['delete', '-f', join(samplesDir, f), '--ignore-not-found', '--wait=true']);
  }
  await registry(['delete', 'computejobs', '--all', '-n', 'carol', '--ignore-not-found']);
});

describe('the gpufed CRDs on the registry', () => {
  it('serves all seven kinds in gpufed.io/v1alpha1 with the right scope', async () => {
    const r = await registry(['api-resources', '--api-group=gpufed.io', '-o', 'wide', '--no-headers']);
    expect(r.code).toBe(0);
    const rows = r.stdout.trim().split('\n').map((l) => l.trim().split(/\s+/));
    const byKind: Record<string, string[]> = Object.fromEntries(rows.map((cols) => [cols.find((c) => /^[A-Z]/.test(c)) ?? '', cols]));
    expect(Object.keys(byKind).sort()).toEqual(['Assignment', 'ComputeJob', 'GpuNode', 'Provider', 'Settlement', 'Tenant', 'UsageRecord']);
    const namespaced = (kind: string) => byKind[kind]?.includes('true');
    expect(['ComputeJob', 'GpuNode', 'Assignment', 'UsageRecord', 'Settlement'].every(namespaced)).toBe(true);
    expect(['Tenant', 'Provider'].some(namespaced)).toBe(false);
  });

  it('teaches a renter with kubectl explain, using the descriptions in crds/', async () => {
    const job = crds().find((c) => c.spec.names.kind === 'ComputeJob');
    const schema = job?.spec.versions[0]?.schema.openAPIV3Schema.properties?.spec?.properties?.resources;
    const r = await registry(['explain', 'computejob.spec.resources']);
    expect(r.code).toBe(0);
    const flat = (s: string) => s.replace(/\s+/g, ' ');
    expect(flat(r.stdout)).toContain(flat(schema?.description ?? 'missing').slice(0, 60));
    for (const field of Object.keys(schema?.properties ?? {})) expect(r.stdout).toMatch(new RegExp(`^\\s+${field}\\s`, 'm'));
    const gpu = await registry(['explain', 'computejob.spec.resources.gpu.count']);
    expect(gpu.stdout).toMatch(/DESCRIPTION:\s+\S/);
  });

  it('accepts every sample in crds/samples and lists them under the gpufed category', async () => {
    const files = readdirSync(samplesDir).filter((f) => f.endsWith('.yaml'));
    expect(files.length).toBeGreaterThanOrEqual(6);
    // Server-side, as onboarding writes Providers: other test files may have created alice and bob.
    const r = await registry(['apply', '--server-side', '--force-conflicts', '--field-manager=samples', '--validate=strict', '-f', samplesDir]);
    expect(r.stderr).toBe('');
    expect(r.code).toBe(0);
    const samples = files.map((f) => parse(readFileSync(join(samplesDir, f), 'utf8')) as { kind: string; metadata: { name: string } });
    expect([...new Set(samples.map((s) => s.kind))].sort()).toEqual(['Assignment', 'ComputeJob', 'GpuNode', 'Provider', 'Settlement', 'Tenant', 'UsageRecord']);
    // Other test files add objects of their own, so check that each sample is listed, not the count.
    const listed = (await registry(['get', 'gpufed', '-A', '-o', 'name'])).stdout.trim().split('\n');
    expect(listed).toEqual(expect.arrayContaining(samples.map((s) => `${s.kind.toLowerCase()}.gpufed.io/${s.metadata.name}`)));
  });

  it('prints the columns a renter expects from kubectl get computejobs', async () => {
    const r = await registry(['get', 'computejobs', '-n', 'carol']);
    expect(r.code).toBe(0);
    expect(r.stdout.split('\n')[0]?.split(/\s+/)).toEqual(['NAME', 'PHASE', 'PROVIDER', 'GPUS', 'MODEL', 'COST', 'AGE']);
  });

  it('keeps a job spec immutable after creation', async () => {
    const job = validComputeJob('immutable-check');
    expect((await registry(['apply', '-f', '-'], JSON.stringify(job))).code).toBe(0);
    const changed = structuredClone(job);
    changed.spec.image = 'docker.io/library/busybox:1.37';
    const r = await registry(['apply', '-f', '-'], JSON.stringify(changed));
    expect(r.code).not.toBe(0);
    expect(r.stderr).toMatch(/spec.*immutable/i);
  });

  it('checks that the malformed table is a table of distinct cases', () => {
    expect(malformedComputeJobs.length).toBeGreaterThanOrEqual(20);
    expect(new Set(malformedComputeJobs.map((c) => c.name)).size).toBe(malformedComputeJobs.length);
  });

  describe.each([
    ['client-side strict apply', ['apply', '--validate=strict', '-f', '-']],
    ['server-side apply', ['apply', '--server-side', '--validate=strict', '-f', '-']],
  ])('rejects malformed ComputeJobs (%s)', (_mode, args) => {
    it.each(malformedComputeJobs.map((c) => [c.name, c] as const))('%s', async (_name, c) => {
      const r = await registry(args, JSON.stringify(c.manifest));
      expect(r.code).not.toBe(0);
      expect(r.stderr).toContain(c.field);
      if (c.message) expect(r.stderr).toMatch(c.message);
    });
  });
});
