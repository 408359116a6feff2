// What an Assignment's status says, read the same way by everyone (the agent that runs it, the
// registry's job, provider and usage controllers, the matcher's reservations, metering): the
// status speaks only of the epoch it names, and four phases mean the pod is gone or never comes.
import type { Assignment, AssignmentStatus, AssignmentStatusPhase } from './types.generated.js';

/** Phases after which an Assignment's pod is gone or never comes. */
export const ENDED_PHASES: readonly AssignmentStatusPhase[] = ['Succeeded', 'Failed', 'Rejected', 'Withdrawn'];

/** The Assignment's status when it speaks of its current epoch (an older epoch's says nothing now). */
export function currentStatus(a: Assignment): AssignmentStatus | undefined {
  return a.status?.observedEpoch === a.spec.epoch ? a.status : undefined;
}

/** The current epoch's phase, or undefined when the agent has not reported on this epoch. */
export function currentPhase(a: Assignment): AssignmentStatusPhase | undefined {
  return currentStatus(a)?.phase;
}

/** Whether the agent reported the Assignment over: its pod ended or never started. */
export function assignmentEnded(a: Assignment): boolean {
  const phase = currentPhase(a);
  return phase !== undefined && ENDED_PHASES.includes(phase);
}

/** Not withdrawn and not ended: its pod may run. */
export function assignmentLive(a: Assignment): boolean {
  return !a.spec.withdrawn && !assignmentEnded(a);
}
