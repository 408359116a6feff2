// Garbage: finished jobs' Assignments and pushed logs are deleted after the retention period, and an
// Assignment whose job is gone (deleted past its finalizer) or over, yet still runs, is withdrawn.
// Across clusters there are no owner references (STYLE.md), so this sweep is what cleans up.
import { AssignmentResource, type Assignment } from '../../api/index.js';
import { assignmentEnded } from '../../api/assignments.js';
import { ASSIGNMENT_NAME_ANNOTATION } from '../../api/labels.js';
import { providerOfNamespace } from '../../api/names.js';
import { isNotFound } from '../../kube/errors.js';
import type { RegistryContext } from '../context.js';
import { keyOf } from '../state.js';
import type { Withdrawal } from './decide.js';
import { heartbeatAgeMs } from '../providers/liveness.js';
import { billingStamps, type Stamp } from './window.js';

/** When an Assignment ended: its completion time, else (withdrawn before it ran) its creation. */
function endedAt(a: Assignment): number {
  return Date.parse(a.status?.completionTime ?? '') || Date.parse(String(a.metadata.creationTimestamp ?? '')) || 0;
}

export class GarbageCollector {
  constructor(
    private readonly ctx: RegistryContext,
    private readonly withdraw: (w: Withdrawal) => Promise<void>,
    private readonly closeWindow: (s: Stamp) => Promise<void>,
  ) {}

  /** Deletes finished jobs' Assignments and logs after the retention period; withdraws orphans. */
  async collect(): Promise<void> {
    const { state, settings, metrics, log } = this.ctx;
    const now = this.ctx.now().getTime();
    const jobsByUid = new Map(state.jobs.list().map((j) => [j.metadata.uid ?? '', j]));
    for (const a of state.allAssignments()) {
      const job = jobsByUid.get(a.spec.jobRef.uid);
      if (job && !['Succeeded', 'Failed'].includes(job.status?.phase ?? '')) continue; // the job's controller owns it
      if (!a.spec.withdrawn && !assignmentEnded(a)) {
        // Its job is gone (deleted past the finalizer) or over, yet it runs: take it back, and pay it no further.
        const w: Withdrawal = { namespace: a.metadata.namespace ?? '', name: a.metadata.name ?? '', reason: job ? 'Superseded' : 'Cancelled' };
        await this.withdraw(w);
        const situation = { now: this.ctx.now(), heartbeatAgeMs: (p: string) => heartbeatAgeMs(this.ctx, p), fencingTimeoutMs: settings.fencingTimeoutMs, clockSkewMs: settings.clockSkewMs };
        for (const stamp of billingStamps([a], [w], situation)) await this.closeWindow(stamp);
      } else if (now - endedAt(a) >= settings.retentionMs) {
        await this.ctx.kube('jobs').deleteCustom(AssignmentResource, a.metadata.name ?? '', a.metadata.namespace);
        metrics.registryWrites.inc({ resource: 'assignments', verb: 'delete' });
        log.info({ assignment: keyOf(a) }, 'Deleted finished assignment after retention');
      }
    }
    await this.collectLogs();
  }

  /** Pushed logs whose Assignment is gone (collected above, or deleted by hand). */
  private async collectLogs(): Promise<void> {
    const { state, metrics } = this.ctx;
    const live = new Set(state.allAssignments().map(keyOf));
    for (const cm of state.logs.list()) {
      const ns = cm.metadata?.namespace ?? '';
      const assignment = cm.metadata?.annotations?.[ASSIGNMENT_NAME_ANNOTATION];
      if (providerOfNamespace(ns) === undefined || !assignment || live.has(`${ns}/${assignment}`)) continue;
      try {
        await this.ctx.core.deleteNamespacedConfigMap({ name: cm.metadata?.name ?? '', namespace: ns });
        metrics.registryWrites.inc({ resource: 'configmaps', verb: 'delete' });
      } catch (e) {
        if (!isNotFound(e)) throw e;
      }
    }
  }
}
