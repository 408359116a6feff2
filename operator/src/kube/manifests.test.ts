import { readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { parse } from 'yaml';
import { repoRoot } from '../../../cli/src/dev/paths.js';
import { fromPlain, loadManifest, toPlain } from './manifests.js';

const crdFiles = () => readdirSync(join(repoRoot(), 'crds')).filter((f) => f.endsWith('.yaml'));

describe('loadManifest', () => {
  it.each(crdFiles())('sends %s exactly as written, CEL rules and int-or-string included', (file) => {
    const text = readFileSync(join(repoRoot(), 'crds', file), 'utf8');
    expect(toPlain(loadManifest(text))).toEqual(parse(text));
    expect(JSON.stringify(toPlain(loadManifest(text)))).toContain('x-kubernetes-validations');
  });
});

describe('fromPlain', () => {
  it('keeps keys whose JSON names differ from the client model names', () => {
    const crd = {
      apiVersion: 'apiextensions.k8s.io/v1',
      kind: 'CustomResourceDefinition',
      metadata: { name: 'things.example.com' },
      spec: {
        group: 'example.com',
        names: { kind: 'Thing', plural: 'things' },
        scope: 'Namespaced',
        versions: [
          {
            name: 'v1',
            served: true,
            storage: true,
            schema: { openAPIV3Schema: { type: 'object', 'x-kubernetes-validations': [{ rule: 'true' }], properties: { n: { 'x-kubernetes-int-or-string': true } } } },
          },
        ],
      },
    };
    expect(toPlain(fromPlain(crd))).toEqual(crd);
  });
});
