// The log relay controller: copies the current attempt's pushed log tail from the provider's
// namespace into the job's own (relayedLog), where the renter can read it.
import type * as k8s from '@kubernetes/client-node';
import { isDeepStrictEqual } from 'node:util';
import type { ComputeJob } from '../../api/index.js';
import { ASSIGNMENT_NAME_ANNOTATION } from '../../api/labels.js';
import { providerOfNamespace } from '../../api/names.js';
import type { RegistryContext } from '../context.js';
import type { Obj } from '../state.js';
import { relayedLog } from './relay.js';

export class LogRelayController {
  constructor(private readonly ctx: RegistryContext) {}

  /** Copies the current attempt's log tail from the provider's namespace into the job's. */
  async reconcile(key: string): Promise<void> {
    const { state } = this.ctx;
    const [ns, name] = key.split('/');
    const cm = state.logs.get(name ?? '', ns);
    const job = cm ? this.jobOf(cm) : undefined;
    if (!cm || !job) return;
    const want = relayedLog(cm, job);
    const have = state.logs.get(want.metadata?.name ?? '', want.metadata?.namespace);
    if (have && isDeepStrictEqual(have.data, want.data)) return;
    await this.ctx.kube('jobs').apply(want);
    this.ctx.metrics.registryWrites.inc({ resource: 'configmaps', verb: 'apply' });
  }

  /** The job a pushed log belongs to, if it is its current attempt's. */
  private jobOf(cm: k8s.V1ConfigMap): Obj<ComputeJob> | undefined {
    const ns = cm.metadata?.namespace;
    if (providerOfNamespace(ns) === undefined) return undefined;
    const assignmentName = cm.metadata?.annotations?.[ASSIGNMENT_NAME_ANNOTATION] ?? '';
    const a = this.ctx.state.allAssignments().find((x) => x.metadata.namespace === ns && x.metadata.name === assignmentName);
    if (!a) return undefined;
    const job = this.ctx.state.job(`${a.spec.jobRef.namespace}/${a.spec.jobRef.name}`);
    const current = job?.metadata.uid === a.spec.jobRef.uid && job.status?.placement?.assignmentName === assignmentName;
    return current ? job : undefined;
  }
}
