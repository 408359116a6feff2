// Leader election on a coordination.k8s.io Lease, the way client-go's leaderelection does it: the
// holder renews the Lease every retry period; a candidate takes it over once it has seen the same
// record unchanged for a whole lease duration by its own clock (so clock skew between machines does
// not matter); every write carries the resourceVersion it read, so two candidates can never both
// win. A leader that cannot renew within the renew deadline stops leading (and, in the operator,
// exits: a process that might still think it leads must not write).
import * as k8s from '@kubernetes/client-node';
import { isConflict, isNotFound } from './errors.js';

export interface LeaderElectionOptions {
  lease: { name: string; namespace: string };
  /** This candidate's identity, unique per process (e.g. `<host>_<pid>`). */
  identity: string;
  /** How long a lease is valid without renewal (client-go default 15 s). */
  leaseDurationMs?: number;
  /** A leader gives up when it could not renew for this long (client-go default 10 s). */
  renewDeadlineMs?: number;
  /** How often candidates try to acquire and the leader renews (client-go default 2 s). */
  retryPeriodMs?: number;
  onStartedLeading: () => void;
  onStoppedLeading: () => void;
  /** A failed attempt (not a lost race), for logs. */
  onError?: (err: unknown) => void;
  now?: () => Date;
}

/** The parts of a Lease record whose change proves its holder is alive. */
const recordOf = (lease: k8s.V1Lease): string => JSON.stringify([lease.spec?.holderIdentity, lease.spec?.renewTime, lease.spec?.leaseTransitions]);

/** metav1.MicroTime wants six fractional digits; client-node's V1MicroTime writes them. */
const microTime = (d: Date): k8s.V1MicroTime => new k8s.V1MicroTime(d.getTime());

export class LeaderElector {
  private readonly api: k8s.CoordinationV1Api;
  private timer?: NodeJS.Timeout;
  private stopped = false;
  private leading = false;
  /** The record as last seen, and when (our clock) it last changed. */
  private observed?: { record: string; at: number };
  private lastRenew = 0;
  private readonly now: () => Date;

  constructor(
    kc: k8s.KubeConfig,
    private readonly o: LeaderElectionOptions,
  ) {
    this.api = kc.makeApiClient(k8s.CoordinationV1Api);
    this.now = o.now ?? (() => new Date());
  }

  get isLeader(): boolean {
    return this.leading;
  }

  private get durationMs(): number {
    return this.o.leaseDurationMs ?? 15_000;
  }

  start(): void {
    this.stopped = false;
    void this.loop();
  }

  /** Stops campaigning; a leader releases the Lease so a standby takes over at once. */
  async stop(): Promise<void> {
    this.stopped = true;
    if (this.timer) clearTimeout(this.timer);
    if (this.leading) {
      this.leading = false;
      await this.release().catch(() => undefined);
      this.o.onStoppedLeading();
    }
  }

  private async loop(): Promise<void> {
    if (this.stopped) return;
    let held = false;
    try {
      held = await this.tryAcquireOrRenew();
    } catch (e) {
      this.o.onError?.(e);
    }
    if (this.stopped) return;
    const t = this.now().getTime();
    if (held) {
      this.lastRenew = t;
      if (!this.leading) {
        this.leading = true;
        this.o.onStartedLeading();
      }
    } else if (this.leading && t - this.lastRenew > (this.o.renewDeadlineMs ?? 10_000)) {
      this.leading = false;
      this.o.onStoppedLeading();
    }
    this.timer = setTimeout(() => void this.loop(), this.o.retryPeriodMs ?? 2_000);
  }

  /** One round: create the Lease, renew ours, or take over an expired one. True when we hold it. */
  private async tryAcquireOrRenew(): Promise<boolean> {
    const { name, namespace } = this.o.lease;
    const now = this.now();
    let lease: k8s.V1Lease;
    try {
      lease = await this.api.readNamespacedLease({ name, namespace });
    } catch (e) {
      if (!isNotFound(e)) throw e;
      return this.write(() => this.api.createNamespacedLease({ namespace, body: this.fresh(now, 0) }));
    }
    const record = recordOf(lease);
    if (this.observed?.record !== record) this.observed = { record, at: now.getTime() };
    const holder = lease.spec?.holderIdentity ?? '';
    const mine = holder === this.o.identity;
    const expired = holder === '' || now.getTime() - this.observed.at > this.durationMs;
    if (!mine && !expired) return false;
    const body = this.renewal(lease, now, mine);
    return this.write(async () => {
      const written = await this.api.replaceNamespacedLease({ name, namespace, body });
      this.observed = { record: recordOf(written), at: now.getTime() };
      return written;
    });
  }

  /** The Lease as we write it: renewed if ours (same acquireTime), taken over otherwise; guarded by its version. */
  private renewal(lease: k8s.V1Lease, now: Date, mine: boolean): k8s.V1Lease {
    const { name, namespace } = this.o.lease;
    const rv = lease.metadata?.resourceVersion;
    const body: k8s.V1Lease = { ...this.fresh(now, (lease.spec?.leaseTransitions ?? 0) + (mine ? 0 : 1)), metadata: { name, namespace, ...(rv ? { resourceVersion: rv } : {}) } };
    if (mine && lease.spec?.acquireTime && body.spec) body.spec.acquireTime = lease.spec.acquireTime;
    return body;
  }

  /** A write that lost the race (409) means someone else holds the Lease now: not an error. */
  private async write(fn: () => Promise<k8s.V1Lease>): Promise<boolean> {
    try {
      await fn();
      return true;
    } catch (e) {
      if (isConflict(e)) return false;
      throw e;
    }
  }

  private fresh(now: Date, transitions: number): k8s.V1Lease {
    return {
      apiVersion: 'coordination.k8s.io/v1',
      kind: 'Lease',
      metadata: { name: this.o.lease.name, namespace: this.o.lease.namespace },
      spec: {
        holderIdentity: this.o.identity,
        leaseDurationSeconds: Math.ceil(this.durationMs / 1000),
        acquireTime: microTime(now),
        renewTime: microTime(now),
        leaseTransitions: transitions,
      },
    };
  }

  /** Clears the holder so a standby need not wait out the lease (client-go's ReleaseOnCancel). */
  private async release(): Promise<void> {
    const { name, namespace } = this.o.lease;
    const lease = await this.api.readNamespacedLease({ name, namespace });
    if (lease.spec?.holderIdentity !== this.o.identity) return;
    const spec = { ...lease.spec, holderIdentity: '', leaseDurationSeconds: 1 };
    await this.api.replaceNamespacedLease({ name, namespace, body: { ...lease, spec } });
  }
}
