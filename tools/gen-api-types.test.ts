import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { stringify } from 'yaml';
import {
  type CrdDocument,
  type SchemaProps,
  GENERATED_HEADER,
  OUTPUT_PATH,
  findMissingDescriptions,
  generateApiTypes,
  pascal,
  readCrds,
  run,
  singular,
} from './gen-api-types.js';

const condition: SchemaProps = {
  description: 'One condition.',
  type: 'object',
  required: ['type', 'status'],
  properties: {
    type: { description: 'The aspect.', type: 'string' },
    status: { description: 'Whether it holds.', type: 'string', enum: ['True', 'False', 'Unknown'] },
  },
};

function crd(kind: string, spec: SchemaProps, scope: 'Namespaced' | 'Cluster' = 'Namespaced'): CrdDocument {
  const plural = `${kind.toLowerCase()}s`;
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: { name: `${plural}.example.io` },
    spec: {
      group: 'example.io',
      scope,
      names: { kind, plural },
      versions: [
        {
          name: 'v1',
          served: true,
          storage: true,
          schema: {
            openAPIV3Schema: {
              description: `A ${kind}.`,
              type: 'object',
              required: ['spec'],
              properties: {
                apiVersion: { description: 'The version.', type: 'string' },
                kind: { description: 'The kind.', type: 'string' },
                metadata: { type: 'object' },
                spec,
                status: {
                  description: 'Observed state.',
                  type: 'object',
                  properties: { conditions: { description: 'Conditions.', type: 'array', items: condition } },
                },
              },
            },
          },
        },
      ],
    },
  };
}

const widgetSpec: SchemaProps = {
  description: 'What the widget is.',
  type: 'object',
  required: ['size'],
  properties: {
    size: { description: 'Size in bytes.', type: 'integer', format: 'int64', minimum: 0 },
    mode: { description: 'How it runs.', type: 'string', enum: ['Fast', 'Slow'], default: 'Fast' },
    cpu: { description: 'CPU quantity.', 'x-kubernetes-int-or-string': true, anyOf: [{ type: 'integer' }, { type: 'string' }] },
    tags: { description: 'Tags.', type: 'array', items: { description: 'A tag.', type: 'string' } },
    prices: {
      description: 'Prices per model.',
      type: 'array',
      items: {
        description: 'One price.',
        type: 'object',
        properties: { model: { description: 'The model.', type: 'string' }, 'per-hour': { description: 'Price.', type: 'string' } },
      },
    },
    labels: { description: 'Labels.', type: 'object', additionalProperties: { type: 'string' } },
    note: { description: 'Text with a */ inside.', type: 'string' },
  },
};

describe('generateApiTypes', () => {
  const out = generateApiTypes([crd('Widget', widgetSpec)]);

  it('starts with the generated header and imports object metadata types', () => {
    expect(out.startsWith(`${GENERATED_HEADER}\n`)).toBe(true);
    expect(out).toContain("import type { V1ListMeta, V1ObjectMeta } from '@kubernetes/client-node';");
    expect(out.endsWith('}\n') || out.endsWith(';\n')).toBe(true);
  });

  it('emits a resource constant per kind', () => {
    expect(out).toContain(
      [
        'export const WidgetResource = {',
        "  group: 'example.io',",
        "  version: 'v1',",
        "  apiVersion: 'example.io/v1',",
        "  plural: 'widgets',",
        "  kind: 'Widget',",
        "  listKind: 'WidgetList',",
        '  namespaced: true,',
        '} as const;',
      ].join('\n'),
    );
  });

  it('emits the root, list, spec and status with literal apiVersion and kind', () => {
    expect(out).toContain("  apiVersion: 'example.io/v1';\n");
    expect(out).toContain("  kind: 'Widget';\n  metadata: V1ObjectMeta;\n");
    expect(out).toContain('  spec: WidgetSpec;\n');
    expect(out).toContain('  status?: WidgetStatus;\n');
    expect(out).toContain("export interface WidgetList {\n  apiVersion: 'example.io/v1';\n  kind: 'WidgetList';");
  });

  it('maps types: int64 to number, enums to named unions, int-or-string, arrays, maps', () => {
    expect(out).toContain('  /** Size in bytes. */\n  size: number;\n');
    expect(out).toContain("export type WidgetSpecMode = 'Fast' | 'Slow';");
    expect(out).toContain('  /**\n   * How it runs.\n   * @default "Fast"\n   */\n  mode?: WidgetSpecMode;\n');
    expect(out).toContain('  cpu?: number | string;\n');
    expect(out).toContain('  tags?: string[];\n');
    expect(out).toContain('  prices?: WidgetSpecPrice[];\n');
    expect(out).toContain("export interface WidgetSpecPrice {\n  /** The model. */\n  model?: string;\n  /** Price. */\n  'per-hour'?: string;\n}");
    expect(out).toContain('  labels?: Record<string, string>;\n');
  });

  it('escapes comment terminators in descriptions', () => {
    expect(out).toContain('Text with a *\\/ inside.');
  });

  it('shares an identical object schema used under different parents, under a short name', () => {
    const two = generateApiTypes([crd('Widget', widgetSpec), crd('Gadget', { ...widgetSpec, description: 'A gadget spec.' })]);
    expect(two.match(/export interface Condition \{/g)).toHaveLength(1);
    expect(two).toContain('Used at: `Gadget.status.conditions[]`, `Widget.status.conditions[]`.');
    expect(two).toContain('  conditions?: Condition[];\n');
    expect(two).toContain("export type ConditionStatus = 'True' | 'False' | 'Unknown';");
  });

  it('is deterministic whatever the input order', () => {
    const a = generateApiTypes([crd('Widget', widgetSpec), crd('Gadget', widgetSpec, 'Cluster')]);
    const b = generateApiTypes([crd('Gadget', widgetSpec, 'Cluster'), crd('Widget', widgetSpec)]);
    expect(a).toBe(b);
    expect(a).toContain('  namespaced: false,');
  });

  it('refuses a field without a description and names its path', () => {
    const bad = crd('Widget', { ...widgetSpec, properties: { ...widgetSpec.properties, size: { type: 'integer' } } });
    expect(findMissingDescriptions(bad)).toEqual(['Widget.spec.size']);
    expect(() => generateApiTypes([bad])).toThrow(/Widget\.spec\.size/);
  });

  it('refuses two different schemas that would get one type name', () => {
    const other: SchemaProps = { ...condition, properties: { reason: { description: 'Why.', type: 'string' } } };
    const conditions: SchemaProps = { description: 'C.', type: 'array', items: other };
    const widget = crd('Widget', { ...widgetSpec, properties: { ...widgetSpec.properties, conditions } });
    const gadget = crd('Gadget', { description: 'G.', type: 'object', properties: { conditions } });
    expect(() => generateApiTypes([widget, gadget])).toThrow(/both be named Condition/);
  });
});

describe('naming helpers', () => {
  it.each([
    ['prices', 'price'],
    ['capacity', 'capacity'],
    ['migProfiles', 'migProfile'],
    ['policies', 'policy'],
    ['status', 'status'],
    ['address', 'address'],
  ])('singular(%s) is %s', (plural, expected) => {
    expect(singular(plural)).toBe(expected);
  });
  it('pascal-cases property names', () => {
    expect(pascal('gpuMilliseconds')).toBe('GpuMilliseconds');
    expect(pascal('per-hour')).toBe('PerHour');
  });
});

describe('run', () => {
  let root: string;
  beforeEach(() => {
    root = mkdtempSync(join(tmpdir(), 'gen-api-types-'));
    mkdirSync(join(root, 'crds', 'samples'), { recursive: true });
    mkdirSync(join(root, 'operator', 'src', 'api'), { recursive: true });
    writeFileSync(join(root, 'crds', 'example.io_widgets.yaml'), stringify(crd('Widget', widgetSpec)));
    writeFileSync(join(root, 'crds', 'samples', 'widget.yaml'), 'kind: Widget\n');
  });
  afterEach(() => rmSync(root, { recursive: true, force: true }));

  it('fails the check when the output is missing or stale, naming the file', () => {
    expect(run(root, true)).toEqual({ exitCode: 1, message: expect.stringMatching(/types\.generated\.ts is missing/) as unknown });
    writeFileSync(join(root, OUTPUT_PATH), '// old\n');
    const stale = run(root, true);
    expect(stale.exitCode).toBe(1);
    expect(stale.message).toContain(`${OUTPUT_PATH} is stale`);
  });

  it('writes the output, after which the check passes', () => {
    expect(run(root, false).exitCode).toBe(0);
    expect(readFileSync(join(root, OUTPUT_PATH), 'utf8')).toBe(generateApiTypes(readCrds(root)));
    expect(run(root, true).exitCode).toBe(0);
  });

  it('finds the committed output of this repository up to date', () => {
    const result = run(process.cwd(), true);
    expect(result.message).toBe(`${OUTPUT_PATH} is up to date with crds/*.yaml`);
  });
});
