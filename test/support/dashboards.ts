// The Grafana dashboards the charts ship (charts/*/dashboards/*.json) as tests see them: loading,
// the structural rules every dashboard follows, Grafana's variable interpolation (so each panel's
// PromQL can be sent to a real Prometheus as Grafana would send it), and Prometheus's HTTP API.
import { readdirSync, readFileSync } from 'node:fs';
import { basename, join } from 'node:path';
import { repoRoot } from '../../cli/src/dev/paths.js';

/** Where the charts keep their dashboards; their templates load every *.json there into ConfigMaps. */
export const DASHBOARD_DIRS = ['charts/gpufed-registry/dashboards', 'charts/gpufed-provider/dashboards'] as const;
/** The panel types gpufed dashboards use. */
export const PANEL_TYPES = ['timeseries', 'stat', 'table'] as const;
/** The data source reference every panel and target uses: the `datasource` variable. */
export const DATASOURCE_REF = '${datasource}';

export interface DatasourceRef {
  type?: string;
  uid?: string;
}

export interface DashboardTarget {
  expr?: string;
  refId?: string;
  datasource?: DatasourceRef;
  legendFormat?: string;
  instant?: boolean;
  range?: boolean;
  format?: string;
}

export interface DashboardPanel {
  id?: number;
  type: string;
  title?: string;
  description?: string;
  datasource?: DatasourceRef;
  gridPos?: { x: number; y: number; w: number; h: number };
  fieldConfig?: { defaults?: { unit?: string } };
  targets?: DashboardTarget[];
  /** A row's own panels (collapsed rows keep them here). */
  panels?: DashboardPanel[];
}

export interface TemplateVariable {
  name: string;
  type: string;
  query?: string | { query?: string };
  datasource?: DatasourceRef;
  includeAll?: boolean;
  allValue?: string;
}

export interface Dashboard {
  uid?: string;
  id?: number | null;
  title?: string;
  tags?: string[];
  schemaVersion?: number;
  panels?: DashboardPanel[];
  templating?: { list?: TemplateVariable[] };
}

export interface DashboardFile {
  /** Relative to the repository root. */
  file: string;
  dashboard: Dashboard;
}

/** Every dashboard JSON of every chart, parsed. */
export function loadDashboards(root: string = repoRoot()): DashboardFile[] {
  return DASHBOARD_DIRS.flatMap((dir) =>
    readdirSync(join(root, dir))
      .filter((f) => f.endsWith('.json'))
      .sort()
      .map((f) => ({ file: join(dir, f), dashboard: JSON.parse(readFileSync(join(root, dir, f), 'utf8')) as Dashboard })),
  );
}

/** The panels that show data: rows are containers, their panels count. */
export function panelsOf(d: Dashboard): DashboardPanel[] {
  return (d.panels ?? []).flatMap((p) => (p.type === 'row' ? (p.panels ?? []) : [p]));
}

export function variableQuery(v: TemplateVariable): string {
  return typeof v.query === 'string' ? v.query : (v.query?.query ?? '');
}

/** `label_values(metric{…}, label)` (Grafana's variable query, not PromQL): the series selector and the label. */
export function parseLabelValues(query: string): { match: string; label: string } | undefined {
  const m = /^\s*label_values\(\s*(.+)\s*,\s*([a-zA-Z_][a-zA-Z0-9_]*)\s*\)\s*$/.exec(query);
  return m ? { match: (m[1] ?? '').trim(), label: m[2] ?? '' } : undefined;
}

/** Grafana's built-in variables a panel may use, and the dashboard variables gpufed's define. */
export interface GrafanaVariables {
  cluster: string;
  /** `$__rate_interval`, e.g. `30s`. */
  rateInterval: string;
  /** `$__range`, e.g. `5m`. */
  range: string;
  /** `$__interval`, e.g. `15s`; `$__interval_ms` is derived from it. */
  interval: string;
}

const VARIABLE = /\$\{([a-zA-Z_][a-zA-Z0-9_]*)(?::[a-z]+)?\}|\$([a-zA-Z_][a-zA-Z0-9_]*)|\[\[([a-zA-Z_][a-zA-Z0-9_]*)\]\]/g;

function durationMs(d: string): number {
  const m = /^(\d+)(ms|s|m|h|d)$/.exec(d);
  if (!m) throw new Error(`Not a simple Prometheus duration: ${d}`);
  const unit = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 }[m[2] as 'ms' | 's' | 'm' | 'h' | 'd'];
  return Number(m[1]) * unit;
}

/** The variables an expression names (`$x`, `${x}`, `[[x]]`); label_replace's `$1` is not one. */
export function variablesIn(expr: string): string[] {
  return [...expr.matchAll(VARIABLE)].map((m) => m[1] ?? m[2] ?? m[3] ?? '');
}

/** Replaces the variables as Grafana would before sending the query; an unknown variable throws. */
export function interpolate(expr: string, v: GrafanaVariables): string {
  const values: Record<string, string> = {
    cluster: v.cluster,
    __rate_interval: v.rateInterval,
    __range: v.range,
    __range_s: String(durationMs(v.range) / 1000),
    __range_ms: String(durationMs(v.range)),
    __interval: v.interval,
    __interval_ms: String(durationMs(v.interval)),
  };
  return expr.replace(VARIABLE, (whole, a?: string, b?: string, c?: string) => {
    const name = a ?? b ?? c ?? '';
    const value = values[name];
    if (value === undefined) throw new Error(`Unknown variable ${whole} in ${expr}`);
    return value;
  });
}

const KNOWN_VARIABLES = new Set(['cluster', '__rate_interval', '__range', '__range_s', '__range_ms', '__interval', '__interval_ms']);

/**
 * What is wrong with a dashboard, as readable lines (none for a good one): a fixed uid named like
 * its file, the `datasource` and `cluster` variables, and panels of the kinds gpufed uses, each with
 * a description, a unit and targets on the `datasource` variable.
 */
export function dashboardProblems(file: string, d: Dashboard): string[] {
  const out: string[] = [];
  const where = (p: DashboardPanel) => `${file} panel ${JSON.stringify(p.title ?? p.id)}`;
  if (typeof d.uid !== 'string' || !/^[a-z0-9-]{1,40}$/.test(d.uid)) out.push(`${file}: uid ${JSON.stringify(d.uid)} is not a fixed lowercase id of at most 40 characters`);
  else if (d.uid !== basename(file, '.json')) out.push(`${file}: uid ${d.uid} does not match the file name`);
  if (d.id !== null) out.push(`${file}: id must be null in a provisioned dashboard`);
  if (!d.title) out.push(`${file}: no title`);
  if (!d.tags?.includes('gpufed')) out.push(`${file}: not tagged gpufed`);
  if (d.schemaVersion !== 39) out.push(`${file}: schemaVersion ${d.schemaVersion} (expected 39)`);
  const vars = d.templating?.list ?? [];
  const ds = vars.find((v) => v.name === 'datasource');
  if (ds?.type !== 'datasource' || variableQuery(ds) !== 'prometheus') out.push(`${file}: no datasource variable of type datasource, query prometheus`);
  const cluster = vars.find((v) => v.name === 'cluster');
  if (!cluster) out.push(`${file}: no cluster variable`);
  else {
    if (cluster.type !== 'query' || cluster.datasource?.uid !== DATASOURCE_REF) out.push(`${file}: the cluster variable is not a query on \${datasource}`);
    if (parseLabelValues(variableQuery(cluster))?.label !== 'cluster') out.push(`${file}: the cluster variable does not list label_values(…, cluster)`);
    if (cluster.includeAll !== true || cluster.allValue !== '.*') out.push(`${file}: the cluster variable needs All = .* (a Prometheus without the label matches too)`);
  }
  const panels = panelsOf(d);
  if (panels.length === 0) out.push(`${file}: no panels`);
  const ids = panels.map((p) => p.id);
  if (new Set(ids).size !== ids.length || ids.some((id) => typeof id !== 'number')) out.push(`${file}: panel ids are missing or repeated`);
  for (const p of panels) {
    if (!(PANEL_TYPES as readonly string[]).includes(p.type)) out.push(`${where(p)}: type ${p.type} (use ${PANEL_TYPES.join(', ')})`);
    if (!p.title) out.push(`${where(p)}: no title`);
    if (!p.description || p.description.length < 20) out.push(`${where(p)}: no description`);
    if (!p.fieldConfig?.defaults?.unit) out.push(`${where(p)}: no unit`);
    if (p.datasource?.uid !== DATASOURCE_REF) out.push(`${where(p)}: datasource is not \${datasource}`);
    const g = p.gridPos;
    if (!g || g.x < 0 || g.w < 1 || g.x + g.w > 24 || g.h < 1) out.push(`${where(p)}: gridPos outside the 24 columns`);
    const targets = p.targets ?? [];
    if (targets.length === 0) out.push(`${where(p)}: no targets`);
    const refIds = targets.map((t) => t.refId);
    if (new Set(refIds).size !== refIds.length || refIds.some((r) => !r)) out.push(`${where(p)}: target refIds missing or repeated`);
    for (const t of targets) {
      if (t.datasource?.uid !== DATASOURCE_REF) out.push(`${where(p)} target ${t.refId}: datasource is not \${datasource}`);
      if (!t.expr?.trim()) out.push(`${where(p)} target ${t.refId}: no expr`);
      for (const name of variablesIn(t.expr ?? '')) if (!KNOWN_VARIABLES.has(name)) out.push(`${where(p)} target ${t.refId}: unknown variable ${name}`);
      if (p.type === 'timeseries' && t.range !== true) out.push(`${where(p)} target ${t.refId}: a timeseries target must be a range query`);
      if (p.type !== 'timeseries' && t.instant !== true) out.push(`${where(p)} target ${t.refId}: a ${p.type} target must be an instant query`);
    }
  }
  // No two panels on the same cells.
  for (let i = 0; i < panels.length; i++)
    for (let j = i + 1; j < panels.length; j++) {
      const a = panels[i]?.gridPos;
      const b = panels[j]?.gridPos;
      if (a && b && a.x < b.x + b.w && b.x < a.x + a.w && a.y < b.y + b.h && b.y < a.y + a.h) out.push(`${file}: panels ${panels[i]?.id} and ${panels[j]?.id} overlap`);
    }
  return out;
}

// ------------------------------------------------------------------------------------------------
// Prometheus's HTTP API, answering with the status instead of throwing (tests assert on it).

export interface PromSeries {
  metric: Record<string, string>;
  /** Instant queries: one value; range queries: every step's. */
  values: string[];
}

export interface PromAnswer {
  status: 'success' | 'error';
  error?: string;
  series: PromSeries[];
}

interface ApiResponse {
  status: 'success' | 'error';
  error?: string;
  errorType?: string;
  data?: { resultType: string; result: { metric: Record<string, string>; value?: [number, string]; values?: [number, string][] }[] };
}

async function api(url: URL, body: URLSearchParams): Promise<PromAnswer> {
  const res = await fetch(url, { method: 'POST', body, signal: AbortSignal.timeout(15_000) });
  const parsed = (await res.json()) as ApiResponse;
  if (parsed.status !== 'success' || !parsed.data) return { status: 'error', error: `${parsed.errorType ?? res.status}: ${parsed.error ?? ''}`, series: [] };
  if (parsed.data.resultType !== 'vector' && parsed.data.resultType !== 'matrix') return { status: 'error', error: `a ${parsed.data.resultType}, not a vector or matrix`, series: [] };
  return { status: 'success', series: parsed.data.result.map((r) => ({ metric: r.metric, values: r.values ? r.values.map((v) => v[1]) : r.value ? [r.value[1]] : [] })) };
}

export function instantQuery(prometheusUrl: string, expr: string, atMs = Date.now()): Promise<PromAnswer> {
  return api(new URL('/api/v1/query', prometheusUrl), new URLSearchParams({ query: expr, time: (atMs / 1000).toFixed(3) }));
}

export function rangeQuery(prometheusUrl: string, expr: string, startMs: number, endMs: number, step: string): Promise<PromAnswer> {
  return api(new URL('/api/v1/query_range', prometheusUrl), new URLSearchParams({ query: expr, start: (startMs / 1000).toFixed(3), end: (endMs / 1000).toFixed(3), step }));
}

/** The values of `label` on series matching `match` (what Grafana's label_values() variable lists). */
export async function labelValues(prometheusUrl: string, label: string, match: string): Promise<string[]> {
  const url = new URL(`/api/v1/label/${encodeURIComponent(label)}/values`, prometheusUrl);
  url.searchParams.append('match[]', match);
  const res = (await (await fetch(url, { signal: AbortSignal.timeout(15_000) })).json()) as { status: string; data?: string[]; error?: string };
  if (res.status !== 'success') throw new Error(`label values of ${label} for ${match}: ${res.error ?? res.status}`);
  return res.data ?? [];
}

/** Whether an answer has a series with at least one number (NaN, e.g. a quantile of nothing, is no data). */
export function hasData(a: PromAnswer): boolean {
  return a.series.some((s) => s.values.some((v) => v !== 'NaN'));
}
