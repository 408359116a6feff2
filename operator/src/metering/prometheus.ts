// A small client for Prometheus's HTTP API: instant queries at an explicit time, which is all
// metering needs. Errors say which Prometheus and which query failed, so "the period waits" is
// explained in the agent's log.
import type { PromSample } from './usage.js';

export class PrometheusError extends Error {
  constructor(message: string, options?: { cause?: unknown }) {
    super(message, options);
    this.name = 'PrometheusError';
  }
}

interface QueryResponse {
  status: 'success' | 'error';
  data?: { resultType: string; result: PromSample[] };
  errorType?: string;
  error?: string;
}

export class Prometheus {
  constructor(
    readonly url: string,
    private readonly timeoutMs = 10_000,
  ) {}

  /** An instant query evaluated at `atMs` (Unix ms); the answer must be a vector. */
  async query(promql: string, atMs: number): Promise<PromSample[]> {
    const body = new URLSearchParams({ query: promql, time: (atMs / 1000).toFixed(3) });
    let res: Response;
    try {
      res = await fetch(new URL('/api/v1/query', this.url), { method: 'POST', body, signal: AbortSignal.timeout(this.timeoutMs) });
    } catch (e) {
      throw new PrometheusError(`Prometheus at ${this.url} is unreachable: ${(e as Error).message}`, { cause: e });
    }
    const text = await res.text();
    let parsed: QueryResponse;
    try {
      parsed = JSON.parse(text) as QueryResponse;
    } catch {
      throw new PrometheusError(`Prometheus at ${this.url} answered HTTP ${res.status} with no JSON: ${text.slice(0, 200)}`);
    }
    if (parsed.status !== 'success' || !parsed.data) throw new PrometheusError(`Prometheus at ${this.url} rejected ${promql}: ${parsed.errorType ?? res.status}: ${parsed.error ?? text.slice(0, 200)}`);
    if (parsed.data.resultType !== 'vector') throw new PrometheusError(`Prometheus answered a ${parsed.data.resultType}, not a vector, for ${promql}`);
    return parsed.data.result;
  }

  /** Several queries at the same instant, in parallel; any failure fails them all (a partial answer is never metered). */
  async queryAll<K extends string>(queries: Record<K, string>, atMs: number): Promise<Record<K, PromSample[]>> {
    const keys = Object.keys(queries) as K[];
    const answers = await Promise.all(keys.map((k) => this.query(queries[k], atMs)));
    return Object.fromEntries(keys.map((k, i) => [k, answers[i] ?? []])) as Record<K, PromSample[]>;
  }
}
