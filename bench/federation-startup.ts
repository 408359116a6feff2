// How long the local federation (with each provider onboarded and its agent running) takes to start
// and stop, and how much memory it holds once ready.
// Usage: node dist/bench/federation-startup.js [runs=3] [providers=2]
// Prints a Markdown table for bench/RESULTS.md. Numbers are measurements, never test assertions.
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { down, up } from '../cli/src/dev/federation.js';

function rssMiB(pids: number[]): number {
  let kib = 0;
  for (const pid of pids) {
    const m = /VmRSS:\s+(\d+) kB/.exec(readFileSync(`/proc/${pid}/status`, 'utf8'));
    kib += Number(m?.[1] ?? 0);
  }
  return Math.round(kib / 1024);
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
const s = (ms: number) => (ms / 1000).toFixed(1);

async function main(): Promise<void> {
  const runs = Number(process.argv[2] ?? 3);
  const providers = Number(process.argv[3] ?? 2);
  const rows: { total: number; etcd: number; apiservers: number; rest: number; agents: number; rss: number; down: number; processes: number }[] = [];
  for (let i = 0; i < runs; i++) {
    const dir = mkdtempSync(join(tmpdir(), 'gpufed-bench-'));
    try {
      const state = await up({ dir, providers });
      const pids = Object.values(state.pids);
      const rss = rssMiB(pids);
      const t = Date.now();
      const d = await down(dir);
      if (d.leftover.length > 0) throw new Error(`left behind: ${d.leftover.map((p) => p.pid).join(', ')}`);
      const tm = state.timings;
      rows.push({ total: tm.total ?? 0, etcd: tm.etcd ?? 0, apiservers: tm.apiservers ?? 0, rest: tm['controllers+bootstrap'] ?? 0, agents: tm.agents ?? 0, rss, down: Date.now() - t, processes: pids.length });
      process.stderr.write(`run ${i + 1}/${runs}: ready in ${s(tm.total ?? 0)}s, ${rss} MiB RSS, down in ${s(Date.now() - t)}s\n`);
    } finally {
      await down(dir);
      rmSync(dir, { recursive: true, force: true });
    }
  }
  const col = (k: keyof (typeof rows)[number]) => rows.map((r) => r[k]);
  console.log(`| providers | processes | ready (median of ${runs}) | etcd | API servers | controllers + CRDs + nodes | onboarding + agents | RSS when ready | down |`);
  console.log('|---|---|---|---|---|---|---|---|---|');
  console.log(
    `| ${providers} | ${rows[0]?.processes ?? 0} | ${s(median(col('total')))} s | ${s(median(col('etcd')))} s | ${s(median(col('apiservers')))} s | ${s(median(col('rest')))} s | ${s(median(col('agents')))} s | ${median(col('rss'))} MiB | ${s(median(col('down')))} s |`,
  );
}

await main();
