// create's wait names what keeps the control plane down, in the infra cluster's words: here a real
// scheduler with no node to place the pods on, so the timeout says Unschedulable for each pod
// instead of only "did not answer".
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import { isK8sOnK8sError } from '@k8s-on-k8s/shared';
import { runCreate } from '@k8s-on-k8s/server';
import { startLocalKubeCluster, type LocalKubeCluster } from '../harness/index.js';

describe('create explains a wait that does not end', () => {
  let infra: LocalKubeCluster;
  let dir: string;
  before(async () => {
    infra = await startLocalKubeCluster({ name: 'explain-infra', controllerManager: true, scheduler: true });
    dir = await mkdtemp(join(tmpdir(), 'k8s-on-k8s-explain-'));
    await infra
      .kubeConfig()
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: 'team-b' } } });
  });
  after(async () => {
    await infra.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('names each unschedulable pod in the progress lines and the timeout', async () => {
    const out: string[] = [];
    await assert.rejects(
      runCreate(
        [
          'dev',
          '-n',
          'team-b',
          '--host',
          '127.0.0.1',
          '--kubeconfig',
          infra.adminKubeconfigPath,
          '--wait',
          '12s',
        ],
        {
          stdout: (line) => out.push(line),
          stderr: (line) => out.push(line),
          cwd: dir,
          now: () => new Date(),
          lookupHost: () => Promise.resolve(['127.0.0.1']),
        },
      ),
      (error: unknown) => {
        assert.ok(isK8sOnK8sError(error) && error.code === 'TIMEOUT', String(error));
        for (const component of ['etcd', 'apiserver', 'controller-manager', 'scheduler', 'join-server']) {
          assert.match(
            error.message,
            new RegExp(`pod dev-${component}-[a-z0-9-]+: Unschedulable \\([^)]*nodes`),
          );
        }
        return true;
      },
    );
    assert.ok(
      out.some((line) => /still waiting .*pod dev-etcd-0: Unschedulable/.test(line)),
      out.join('\n'),
    );
  });
});
