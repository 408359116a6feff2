import type { Assignment, AssignmentStatus, GpuNode } from '../api/index.js';
import { reservationsFor } from './reservations.js';

const RUNNING = [{ type: 'Running', status: 'True' as const, reason: 'PodRunning', message: '', lastTransitionTime: '2026-11-21T12:00:00Z' }];

function assignment(name: string, node: string, units: number, status?: Partial<AssignmentStatus>, mig?: string): Assignment {
  return {
    apiVersion: 'gpufed.io/v1alpha1',
    kind: 'Assignment',
    metadata: { name, namespace: 'gpufed-provider-bob' },
    spec: {
      jobRef: { namespace: 'carol', name, uid: name },
      epoch: 1,
      image: 'x',
      resources: { gpu: { count: units, ...(mig ? { sharing: 'MIG' as const, migProfile: mig } : {}) } },
      model: 'M',
      pricePerGpuHour: '1ustake',
      maxDurationSeconds: 60,
      payer: 'cosmos1',
      nodeName: node,
    },
    ...(status ? { status: { observedEpoch: 1, ...status } } : {}),
  };
}

function node(name: string, allocatable: number, free: number): GpuNode {
  return { apiVersion: 'gpufed.io/v1alpha1', kind: 'GpuNode', metadata: { name, namespace: 'gpufed-provider-bob' }, spec: { nodeName: name, product: 'M', memoryMiB: 1, count: allocatable, resourceName: 'nvidia.com/gpu' }, status: { allocatable, free } };
}

const names = (r: { assignment: string }[]) => r.map((x) => x.assignment).sort();

describe('reservationsFor', () => {
  it('holds GPUs of Assignments whose pods are not bound yet', () => {
    const r = reservationsFor([assignment('a', 'n', 2), assignment('b', 'n', 1, { phase: 'Accepted', nodeName: 'n' })], [node('n', 4, 4)]);
    expect(r).toEqual([
      { provider: 'bob', nodeName: 'n', resourceName: 'nvidia.com/gpu', units: 2, assignment: 'a' },
      { provider: 'bob', nodeName: 'n', resourceName: 'nvidia.com/gpu', units: 1, assignment: 'b' },
    ]);
  });

  it("lets go of bound pods once the node's free count reflects them", () => {
    const bound = assignment('a', 'n', 2, { phase: 'Running', nodeName: 'n', conditions: RUNNING });
    expect(reservationsFor([bound], [node('n', 4, 2)])).toEqual([]);
    // The provider has not reported the pod yet: still held, or a burst would count those GPUs twice.
    expect(names(reservationsFor([bound], [node('n', 4, 4)]))).toEqual(['a']);
  });

  it("counts the owner's own GPU use as reflecting ours (free is lower still)", () => {
    const bound = assignment('a', 'n', 1, { phase: 'Running', nodeName: 'n', conditions: RUNNING });
    expect(reservationsFor([bound], [node('n', 4, 1)])).toEqual([]);
  });

  it('holds nothing for Assignments that ended, were rejected or are for another epoch', () => {
    const ended = ['Succeeded', 'Failed', 'Rejected', 'Withdrawn'].map((phase, i) => assignment(`e${i}`, 'n', 1, { phase: phase as AssignmentStatus['phase'] }));
    expect(reservationsFor(ended, [node('n', 4, 4)])).toEqual([]);
  });

  it('keeps MIG devices apart from whole GPUs', () => {
    const r = reservationsFor([assignment('m', 'a100', 3, undefined, '1g.10gb')], [node('a100', 0, 0)]);
    expect(r).toEqual([{ provider: 'bob', nodeName: 'a100', resourceName: 'nvidia.com/mig-1g.10gb', units: 3, assignment: 'm' }]);
  });

  it('holds an unreported node as not reflecting anything', () => {
    const bound = assignment('a', 'gone', 1, { phase: 'Running', nodeName: 'gone', conditions: RUNNING });
    expect(names(reservationsFor([bound], []))).toEqual(['a']);
  });
});
