// What the registry's controllers share: the options (with their defaults resolved once), the
// cached views, the clock, logs and metrics, and a Kube client per field manager. Each controller
// writes under its own field manager and owns its own status fields and conditions (STYLE.md).
import * as k8s from '@kubernetes/client-node';
import { Kube } from '../kube/client.js';
import type { Chain } from '../settlement/chain.js';
import type { PayerFunds } from '../settlement/grants.js';
import type { Logger } from '../telemetry/log.js';
import type { Metrics } from '../telemetry/metrics.js';
import type { RegistryState } from './state.js';

export const REGISTRY_FIELD_MANAGER = 'gpufed-registry';

export interface CosignerOptions {
  chain: Chain;
  /** The registry's co-signing key (32-byte secp256k1). */
  key: Uint8Array;
  /** The most blocks ahead a proposal's timeout height may be (default 100). */
  maxTimeoutBlocks?: number;
  /** How often a co-signed transaction not in a block yet is sent again (default 5 s). */
  rebroadcastMs?: number;
}

export interface RegistryOptions {
  /** The registry API server, with the registry operator's credentials. */
  kc: k8s.KubeConfig;
  /** This replica's identity in the Lease. */
  identity: string;
  lease?: { name: string; namespace: string };
  leaseDurationMs?: number;
  renewDeadlineMs?: number;
  retryPeriodMs?: number;
  /** No new jobs go to a provider whose heartbeat is older than this (Ready False). Default 30 s. */
  heartbeatTimeoutMs?: number;
  /** A provider whose heartbeat is older than this is lost: its running jobs are placed again. Default 3 min. */
  providerLostTimeoutMs?: number;
  /** How long past maxDuration the registry waits for the agent to stop a job. Default 60 s. */
  deadlineGraceMs?: number;
  /** Finished jobs' Assignments and logs are deleted this long after they ended. Default 24 h. */
  retentionMs?: number;
  gcEveryMs?: number;
  resyncMs?: number;
  /**
   * What a payer has granted a provider's hot key and holds, read from the chain: the matcher's
   * payment check. Absent: every payer can pay (no chain).
   */
  funds?: (payer: string, grantee: string) => Promise<PayerFunds>;
  /** How much of a job a grant must cover before it is placed (default 5 min: the agents' default period). */
  paymentCoverMs?: number;
  /** How long a cancelled job waits for its final settlement before it is let go anyway (default 10 min). */
  settleWaitMs?: number;
  /**
   * The agents' fencing timeout (their --fencing-timeout, default 2 min): a copy whose provider the
   * registry has not heard from for this long has stopped, so it is paid at most until the last
   * heartbeat the registry saw plus this.
   */
  fencingTimeoutMs?: number;
  /** How far a provider's clock may be from the registry's and its usage records still be believed (default 5 s). */
  clockSkewMs?: number;
  /**
   * The chain, and the registry's key (one member of every provider's 2-of-2 settlement account):
   * with it the registry co-signs the settlements it verified and follows them on chain. Absent:
   * nothing is paid (no chain).
   */
  settlement?: CosignerOptions;
  /** Called when this replica loses the lead; the operator process exits (a standby takes over). */
  onLostLeadership?: () => void;
  metrics: Metrics;
  log: Logger;
  now?: () => Date;
}

/** The options every controller reads, defaults applied. */
export interface Settings {
  heartbeatTimeoutMs: number;
  providerLostTimeoutMs: number;
  deadlineGraceMs: number;
  retentionMs: number;
  paymentCoverMs: number;
  settleWaitMs: number;
  fencingTimeoutMs: number;
  clockSkewMs: number;
}

export function settingsOf(o: RegistryOptions): Settings {
  return {
    heartbeatTimeoutMs: o.heartbeatTimeoutMs ?? 30_000,
    providerLostTimeoutMs: o.providerLostTimeoutMs ?? 180_000,
    deadlineGraceMs: o.deadlineGraceMs ?? 60_000,
    retentionMs: o.retentionMs ?? 86_400_000,
    paymentCoverMs: o.paymentCoverMs ?? 300_000,
    settleWaitMs: o.settleWaitMs ?? 600_000,
    fencingTimeoutMs: o.fencingTimeoutMs ?? 120_000,
    clockSkewMs: o.clockSkewMs ?? 5_000,
  };
}

export interface RegistryContext {
  readonly options: RegistryOptions;
  readonly settings: Settings;
  readonly state: RegistryState;
  readonly core: k8s.CoreV1Api;
  readonly metrics: Metrics;
  readonly log: Logger;
  now(): Date;
  /** Whether this replica leads now (only the leader's controllers run). */
  leading(): boolean;
  /** A client writing under `gpufed-registry/<manager>`. */
  kube(manager: string): Kube;
}

export function makeKubeFactory(kc: k8s.KubeConfig): (manager: string) => Kube {
  const clients = new Map<string, Kube>();
  return (manager) => {
    let k = clients.get(manager);
    if (!k) {
      k = new Kube(kc, `${REGISTRY_FIELD_MANAGER}/${manager}`);
      clients.set(manager, k);
    }
    return k;
  };
}
