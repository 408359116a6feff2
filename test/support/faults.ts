// What every cell of the fault matrix checks (docs/fault-matrix.md): the job's running copies,
// sampled on both providers' own API servers while the fault lasts, and each copy's books.
import * as k8s from '@kubernetes/client-node';
import type { ComputeJob, UsageRecord } from '../../operator/src/api/index.js';
import { startComponent, stopComponent } from '../../cli/src/dev/federation.js';
import { devProviderPayout, devSettlementAccount } from '../../cli/src/dev/wallets.js';
import { fundedTenant, type FundedTenant } from './chain.js';
import { kubeConfig, testDir } from './federation.js';
import { A6000, RTX3090, RTX4090, expectPayoutGrew, job, payoutMark, podRunMs, recordsOf, sleep, sum, type PayoutMark, type World } from './money.js';

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

/** Every job pod Running on the providers' API servers, by job uid (a server that does not answer is skipped). */
export async function runningByJob(providers = ['alice', 'bob']): Promise<Map<string, string[]>> {
  const out = new Map<string, string[]>();
  for (const provider of providers) {
    try {
      const pods = await kubeConfig(provider).makeApiClient(k8s.CoreV1Api).listPodForAllNamespaces({ labelSelector: 'gpufed.io/job-uid' });
      for (const p of pods.items.filter((x) => x.status?.phase === 'Running')) {
        const uid = p.metadata?.labels?.['gpufed.io/job-uid'] ?? '';
        out.set(uid, [...(out.get(uid) ?? []), `${provider}/${p.metadata?.name ?? ''}`]);
      }
    } catch {
      // no sample of this provider this round
    }
  }
  return out;
}

/** Samples every job's running copies every 500 ms until stopped; returns the moments any job ran twice, as readable lines (expected: none). */
export function sampleAllJobs(): { stop: () => Promise<string[]> } {
  const doubled: string[] = [];
  let on = true;
  const loop = (async () => {
    while (on) {
      const at = new Date().toISOString();
      for (const [uid, pods] of await runningByJob()) if (pods.length > 1) doubled.push(`${at} ${uid}: ${pods.join(' + ')}`);
      await sleep(500);
    }
  })();
  return {
    stop: async () => {
      on = false;
      await loop;
      return doubled;
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

/** A job of a burst that any provider's GPUs may run (alice's two models or bob's), for `duration`. */
export function anyGpuJob(w: World, duration: string): ComputeJob {
  const spec = job(RTX4090, w.profile.denom, { duration });
  spec.spec = { ...spec.spec, resources: { ...spec.spec.resources, gpu: { count: 1, models: [RTX4090, RTX3090, A6000] } } };
  return spec;
}

/**
 * The books of a burst's finished jobs: each Succeeded in its first epoch, its records chained,
 * verified and paid, billed exactly its container's run time. Returns the records by provider.
 */
export async function expectEachBilledOnce(w: World, done: ComputeJob[]): Promise<Map<string, UsageRecord[]>> {
  const byProvider = new Map<string, UsageRecord[]>();
  for (const j of done) {
    expect([j.metadata.name, j.status?.phase, j.status?.placement?.epoch]).toEqual([j.metadata.name, 'Succeeded', 1]);
    const provider = j.status?.placement?.provider ?? '';
    const records = await recordsOf(j);
    expectChain(records);
    const gpuMs = await podRunMs(provider, j);
    expect(records.at(-1)?.spec.gpuMilliseconds.cumulative).toBe(gpuMs);
    expect(sum(records)).toBe((w.price(records[0]?.spec.model ?? '') * BigInt(gpuMs)) / 3_600_000n);
    byProvider.set(provider, [...(byProvider.get(provider) ?? []), ...records]);
  }
  return byProvider;
}

/** Each provider was paid exactly its records (since its mark), from the renter's grant to it, which shrank by exactly those. */
export async function expectPaidExactly(w: World, renter: FundedTenant, grant: bigint, marks: Map<string, PayoutMark>, byProvider: Map<string, UsageRecord[]>): Promise<void> {
  for (const [provider, mark] of marks) {
    const records = byProvider.get(provider) ?? [];
    await expectPayoutGrew(w, mark, records);
    expect((await w.chain.grant(renter.address, devSettlementAccount(provider, w.profile.prefix)))?.spendLimit.get(w.profile.denom)).toBe(grant - sum(records));
  }
}

/** A renter of its own with coins, a spending grant of `grant` to each provider, and each provider's payout marked now. */
export async function renterWithGrants(w: World, name: string, grant: bigint, providers = ['alice', 'bob']): Promise<{ renter: FundedTenant; marks: Map<string, PayoutMark> }> {
  const renter = await fundedTenant(w.chain, name, 4n * grant);
  for (const p of providers) await w.chain.grantSpend(renter.key, devSettlementAccount(p, w.profile.prefix), { amount: grant, denom: w.profile.denom }, [devProviderPayout(p, w.profile.prefix)]);
  const marks = new Map<string, PayoutMark>();
  for (const p of providers) marks.set(p, await payoutMark(w, p));
  return { renter, marks };
}

/** The job's first copy on `provider` once its container has started. */
export async function firstRunningCopy(jobUid: string, provider: string): Promise<Sample['running'][number]> {
  for (;;) {
    const pod = (await runningCopies(jobUid)).running.find((r) => r.provider === provider && r.startedAt !== undefined);
    if (pod) return pod;
    await sleep(200);
  }
}

/** Stops a component of the test federation (an API server, the chain) for `ms`, then starts it again and waits until it is healthy. */
export async function downFor(component: string, ms: number): Promise<void> {
  await stopComponent(testDir(), component);
  try {
    await sleep(ms);
  } finally {
    await startComponent(testDir(), component);
  }
}
