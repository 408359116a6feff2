// The usage verification controller: for one Assignment's chain of usage records, decides the
// records not judged yet (verifyChain: against the Assignment, the run window the registry saw,
// the arithmetic, the chain and the provider's signature) and writes every record's status
// (recordStatus: the verdict, and where its payment is by the provider's Settlements). Records are
// keyed `<namespace>/<assignment>`: a chain is judged in order, in one pass. The registry is the
// only writer of a record's status; a verdict once written is never revisited.
import { isDeepStrictEqual } from 'node:util';
import { UsageRecordConditionType, findCondition } from '../../api/conditions.js';
import { UsageRecordResource, providerOfNamespace, type Provider, type UsageRecord, type UsageRecordStatus } from '../../api/index.js';
import { normalized } from '../../kube/manifests.js';
import { coverageOf } from '../../settlement/coverage.js';
import type { RegistryContext } from '../context.js';
import type { Obj } from '../state.js';
import { heartbeatAgeMs } from '../providers/liveness.js';
import { recordStatus } from './status.js';
import { recordedVerdict, runWindow, verifyChain, type DisputeReason, type Verdict } from './verify.js';

/** The verdict a record's status holds, as verifyChain returns them. */
function verdictOf(r: UsageRecord): Verdict | undefined {
  const status = recordedVerdict(r);
  const c = findCondition(r.status?.conditions, UsageRecordConditionType.Verified);
  if (!status || !c) return undefined;
  return status === 'True' ? { status, reason: 'Verified', message: c.message } : { status, reason: c.reason as DisputeReason, message: c.message };
}

/** A status without its conditions' transition times, to tell whether anything but time changed. */
function comparable(s: UsageRecordStatus | undefined): unknown {
  return normalized({ ...s, conditions: (s?.conditions ?? []).map(({ lastTransitionTime: _t, ...c }) => c) });
}

export class UsageController {
  constructor(private readonly ctx: RegistryContext) {}

  async reconcile(key: string): Promise<void> {
    const { state } = this.ctx;
    const [namespace = '', name = ''] = key.split('/');
    const provider = state.provider(providerOfNamespace(namespace) ?? '');
    const records = state.recordsOfAssignment(namespace, name);
    if (!provider || records.length === 0) return;
    const now = this.ctx.now();
    const decided = this.verify(provider, namespace, name, records, now);
    const coverage = coverageOf(state.settlementsIn(namespace));
    for (const r of records) {
      const fresh = decided.get(r.metadata.name ?? '');
      const want = recordStatus(r, fresh ?? verdictOf(r), coverage, now);
      if (isDeepStrictEqual(comparable(r.status), comparable(want))) continue;
      await this.write(r, namespace, want);
      if (fresh?.status === 'False') this.ctx.log.warn({ record: `${namespace}/${r.metadata.name ?? ''}`, reason: fresh.reason, message: fresh.message }, 'Disputed a usage record');
    }
  }

  /** The verdicts on the chain's records not judged yet, against the Assignment and the run window the registry saw. */
  private verify(provider: Provider, namespace: string, name: string, records: readonly UsageRecord[], now: Date): Map<string, Verdict> {
    const { settings } = this.ctx;
    const assignment = this.ctx.state.allAssignments().find((a) => a.metadata.namespace === namespace && a.metadata.name === name);
    const age = heartbeatAgeMs(this.ctx, provider.metadata.name ?? '');
    const fenceMs = Number.isFinite(age) ? now.getTime() - age + settings.fencingTimeoutMs : undefined;
    return verifyChain({
      ...(assignment ? { assignment, window: runWindow(assignment, fenceMs) } : {}),
      records,
      provider: { wallet: provider.spec.wallet, payee: provider.spec.payout ?? provider.spec.wallet },
      nowMs: now.getTime(),
      skewMs: settings.clockSkewMs,
    });
  }

  private async write(r: UsageRecord, namespace: string, status: UsageRecordStatus): Promise<void> {
    const written = (await this.ctx.kube('usage').applyStatus(UsageRecordResource, r.metadata.name ?? '', namespace, status)) as Obj<UsageRecord>;
    this.ctx.state.recordWrites.remember(`${namespace}/${r.metadata.name ?? ''}`, written, written);
    this.ctx.metrics.registryWrites.inc({ resource: 'usagerecords', verb: 'apply_status' });
  }
}
