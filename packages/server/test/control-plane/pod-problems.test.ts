import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Pod } from '@kubernetes/client-node';
import { podProblem } from '../../src/control-plane/pod-problems.js';

// Pod statuses as the scheduler and the kubelet write them (shapes from `kubectl get pod -o yaml`).
function pod(name: string, status: V1Pod['status']): V1Pod {
  return { metadata: { name }, status };
}

describe('podProblem', () => {
  it('names an image that cannot be pulled, with the image', () => {
    const problem = podProblem(
      pod('dev-join-server-7c9f', {
        phase: 'Pending',
        conditions: [{ type: 'PodScheduled', status: 'True' }],
        containerStatuses: [
          {
            name: 'k8s-join-server',
            image: 'registry.example/k8s-join-server:nope',
            imageID: '',
            ready: false,
            restartCount: 0,
            state: { waiting: { reason: 'ImagePullBackOff', message: 'Back-off pulling image' } },
          },
        ],
      }),
    );
    assert.equal(
      problem,
      'pod dev-join-server-7c9f: k8s-join-server ImagePullBackOff (registry.example/k8s-join-server:nope)',
    );
  });

  it('says why a pod is not scheduled', () => {
    assert.equal(
      podProblem(
        pod('dev-etcd-0', {
          phase: 'Pending',
          conditions: [
            {
              type: 'PodScheduled',
              status: 'False',
              reason: 'Unschedulable',
              message: '0/3 nodes are available: 3 Insufficient memory.',
            },
          ],
        }),
      ),
      'pod dev-etcd-0: Unschedulable (0/3 nodes are available: 3 Insufficient memory.)',
    );
  });

  it('reports a crash loop with its exit code, and an init container first', () => {
    assert.equal(
      podProblem(
        pod('dev-apiserver-1', {
          phase: 'Running',
          conditions: [{ type: 'Ready', status: 'False' }],
          containerStatuses: [
            {
              name: 'kube-apiserver',
              image: 'registry.k8s.io/kube-apiserver:v1.37.2',
              imageID: '',
              ready: false,
              restartCount: 4,
              state: { waiting: { reason: 'CrashLoopBackOff', message: 'back-off 1m20s restarting' } },
              lastState: { terminated: { exitCode: 1, reason: 'Error' } },
            },
          ],
        }),
      ),
      'pod dev-apiserver-1: kube-apiserver CrashLoopBackOff (back-off 1m20s restarting)',
    );
  });

  it('says nothing about a ready pod', () => {
    assert.equal(
      podProblem(pod('ok', { phase: 'Running', conditions: [{ type: 'Ready', status: 'True' }] })),
      undefined,
    );
  });
});
