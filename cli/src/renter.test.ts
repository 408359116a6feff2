import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterAll, describe, expect, it } from '@jest/globals';
import { repoRoot } from './dev/paths.js';
import { UsageError } from './output.js';
import { computeJobProblem, readComputeJob, renterKubeConfig, renterNamespace } from './renter.js';

const dir = mkdtempSync(join(tmpdir(), 'gpufed-renter-'));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const file = (name: string, text: string) => {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
};

const job = (spec: Record<string, unknown> = {}, top: Record<string, unknown> = {}) => ({
  apiVersion: 'gpufed.io/v1alpha1',
  kind: 'ComputeJob',
  metadata: { name: 'train' },
  spec: { image: 'x', resources: { gpu: { count: 1 } }, maxPricePerGpuHour: '1500000ustake', ...spec },
  ...top,
});

describe('computeJobProblem', () => {
  it('accepts the samples and a minimal job', () => {
    expect(computeJobProblem(job())).toBeUndefined();
    expect(computeJobProblem(job({ resources: { gpu: { count: 7, sharing: 'MIG', migProfile: '1g.10gb' } }, placement: { regions: ['eu-west'] } }))).toBeUndefined();
  });

  it.each([
    ['not an object', 'hello', /^expected a ComputeJob manifest \(YAML or JSON\), got "hello"$/],
    ['another kind', job({}, { kind: 'Provider' }), /^kind: expected ComputeJob, got "Provider"$/],
    ['another API version', job({}, { apiVersion: 'batch/v1' }), /^apiVersion: expected gpufed\.io\/v1alpha1/],
    ['no spec', job({}, { spec: undefined }), /^spec: required/],
    ['no GPUs', job({ resources: {} }), /^spec\.resources\.gpu: required/],
    ['zero GPUs', job({ resources: { gpu: { count: 0 } } }), /^spec\.resources\.gpu\.count: expected a whole number of GPUs from 1 to 64, got 0$/],
    ['a model that is no list', job({ resources: { gpu: { count: 1, models: 'NVIDIA-GeForce-RTX-4090' } } }), /^spec\.resources\.gpu\.models: expected a list/],
    ['an unknown sharing', job({ resources: { gpu: { count: 1, sharing: 'Shared' } } }), /^spec\.resources\.gpu\.sharing: expected one of Exclusive, TimeSliced, MIG/],
    ['MIG without a profile', job({ resources: { gpu: { count: 1, sharing: 'MIG' } } }), /^spec\.resources\.gpu\.migProfile: required with sharing MIG/],
    ['a price that is a number', job({ maxPricePerGpuHour: 1.5 }), /^spec\.maxPricePerGpuHour: expected a coin, .* got 1\.5$/],
    ['a price with a decimal point', job({ maxPricePerGpuHour: '1.5stake' }), /^spec\.maxPricePerGpuHour: expected a coin/],
    ['no price', job({ maxPricePerGpuHour: undefined }), /^spec\.maxPricePerGpuHour: .* got nothing$/],
    ['a duration too long', job({ maxDurationSeconds: 2_592_001 }), /^spec\.maxDurationSeconds: expected whole seconds from 1 to 2592000/],
    ['regions that are no list', job({ placement: { regions: 'eu-west' } }), /^spec\.placement\.regions: expected a list/],
  ])('names the field for %s', (_what, doc, want) => {
    expect(computeJobProblem(doc)).toMatch(want);
  });
});

describe('readComputeJob', () => {
  it('reads a sample manifest, YAML or JSON', () => {
    const sample = join(repoRoot(), 'crds/samples/computejob-train-rtx4090.yaml');
    expect(readComputeJob(sample)).toMatchObject({ metadata: { name: 'train', namespace: 'carol' }, spec: { maxPricePerGpuHour: '1500000ustake' } });
    expect(readComputeJob(file('job.json', JSON.stringify(job({}, { metadata: undefined }))))).toMatchObject({ metadata: {}, spec: { image: 'x' } });
  });

  it.each([
    ['a missing file', join(dir, 'absent.yaml'), /absent\.yaml: ENOENT/],
    ['an empty file', file('empty.yaml', '# nothing\n'), /empty\.yaml: empty; expected a ComputeJob manifest$/],
    ['two documents', file('two.yaml', `${readFileSync(join(repoRoot(), 'crds/samples/computejob-train-rtx4090.yaml'), 'utf8')}\n---\nkind: ComputeJob\n`), /two\.yaml: holds 2 documents; expected one ComputeJob$/],
    ['broken YAML', file('bad.yaml', 'spec: [\n'), /bad\.yaml: not YAML or JSON: /],
    ['a Provider', file('provider.yaml', 'apiVersion: gpufed.io/v1alpha1\nkind: Provider\n'), /provider\.yaml: kind: expected ComputeJob, got "Provider"$/],
  ])('is a usage error naming the file for %s', (_what, path, want) => {
    expect(() => readComputeJob(path)).toThrow(UsageError);
    expect(() => readComputeJob(path)).toThrow(want);
  });
});

const kubeconfig = file(
  'carol.kubeconfig',
  `apiVersion: v1
kind: Config
clusters: [{name: registry, cluster: {server: 'https://127.0.0.1:6443'}}]
users: [{name: carol, user: {token: t}}]
contexts:
  - {name: gpufed-tenant-carol, context: {cluster: registry, user: carol, namespace: carol}}
  - {name: bare, context: {cluster: registry, user: carol}}
current-context: gpufed-tenant-carol
`,
);

describe('renterKubeConfig and renterNamespace', () => {
  it("takes -n first, else the context's namespace", () => {
    const kc = renterKubeConfig({ kubeconfig });
    expect(renterNamespace(undefined, kc)).toBe('carol');
    expect(renterNamespace('lab', kc)).toBe('lab');
  });

  it('says how to choose a namespace when the context has none', () => {
    const kc = renterKubeConfig({ kubeconfig, context: 'bare' });
    expect(() => renterNamespace(undefined, kc)).toThrow(/no namespace: pass -n <namespace>.*kubectl config set-context --current --namespace <namespace>/);
  });

  it('names a context or file that is not there, and says where a kubeconfig comes from when there is none', () => {
    expect(() => renterKubeConfig({ kubeconfig, context: 'nope' })).toThrow(/--context nope: no such context/);
    expect(() => renterKubeConfig({ kubeconfig: join(dir, 'absent') })).toThrow(/--kubeconfig \S+absent: no such file/);
    expect(() => renterKubeConfig({}, { HOME: dir })).toThrow(/no kubeconfig: pass --kubeconfig <file> .* or set \$KUBECONFIG/);
  });
});
