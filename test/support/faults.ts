// What every cell of the fault matrix checks (docs/fault-matrix.md): the job's running copies,
// sampled on both providers' own API servers while the fault lasts, and each copy's books.
import * as k8s from '@kubernetes/client-node';
import type { UsageRecord } from '../../operator/src/api/index.js';
import { kubeConfig } from './federation.js';
import { sleep } from './money.js';

export interface Sample {
  at: number;
  running: { provider: string; pod: string; startedAt?: number }[];
  /** Providers whose API server did not answer this round (a cell may stop one): their copies are unknown. */
  unreachable: string[];
}

/** The job's pods that are Running on each provider's API server (terminating ones count: they still run). */
export async function runningCopies(jobUid: string, providers = ['alice', 'bob']): Promise<Sample> {
  const at = Date.now();
  const out: Sample['running'] = [];
  const unreachable: string[] = [];
  for (const provider of providers) {
    let pods: k8s.V1PodList;
    try {
      pods = await kubeConfig(provider).makeApiClient(k8s.CoreV1Api).listPodForAllNamespaces({ labelSelector: `gpufed.io/job-uid=${jobUid}` });
    } catch {
      unreachable.push(provider);
      continue;
    }
    for (const p of pods.items.filter((x) => x.status?.phase === 'Running')) {
      const started = p.status?.containerStatuses?.[0]?.state?.running?.startedAt;
      out.push({ provider, pod: p.metadata?.name ?? '', ...(started ? { startedAt: new Date(started).getTime() } : {}) });
    }
  }
  return { at, running: out, unreachable };
}

/** Samples the running copies every 500 ms until stopped. */
export function sampleCopies(jobUid: string): { stop: () => Promise<Sample[]> } {
  const samples: Sample[] = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      samples.push(await runningCopies(jobUid));
      await sleep(500);
    }
  })();
  return {
    stop: async () => {
      on = false;
      await loop;
      return samples;
    },
  };
}

/** The samples with more than one running copy, as readable lines (expected: none). */
export const doubled = (samples: Sample[]) => samples.filter((s) => s.running.length > 1).map((s) => `${new Date(s.at).toISOString()}: ${s.running.map((r) => `${r.provider}/${r.pod}`).join(' + ')}`);

/** One copy's records: contiguous, the last final, each verified and paid (or nothing due). */
export function expectChain(records: UsageRecord[]): void {
  expect(records.length).toBeGreaterThan(0);
  for (let i = 1; i < records.length; i++) expect(records[i]?.spec.period.start).toBe(records[i - 1]?.spec.period.end);
  expect(records.at(-1)?.spec.final).toBe(true);
  for (const r of records) {
    expect(r.status?.conditions?.find((c) => c.type === 'Verified')).toMatchObject({ status: 'True' });
    expect(['Committed', 'NothingDue']).toContain(r.status?.state);
  }
}
