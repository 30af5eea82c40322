// The reconcile core on its own, as an operator would call it: no flags, no printing, no files.
// ensureControlPlane against a real infra apiserver makes every object, reports what it did as
// events and data, and a second call is a no-op; status, list and delete read and remove the same.
import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { parseKubeconfig } from '@k8s-on-k8s/shared';
import {
  CONTROL_PLANE_KINDS,
  CONTROL_PLANE_LABEL,
  buildControlPlaneSpec,
  deleteControlPlane,
  ensureControlPlane,
  listControlPlanes,
  listObjects,
  readControlPlaneStatus,
  readStoredSpec,
  type ControlPlaneEvent,
} from '@k8s-on-k8s/server';
import { startLocalKubeCluster, type LocalKubeCluster } from '../harness/index.js';

const NAMESPACE = 'operator-style';

async function objectVersions(kubeConfig: KubeConfig): Promise<string[]> {
  const lines: string[] = [];
  for (const kind of CONTROL_PLANE_KINDS) {
    for (const o of await listObjects(kubeConfig, kind, NAMESPACE, `${CONTROL_PLANE_LABEL}=core`)) {
      lines.push(`${kind.kind}/${o.metadata?.name}@${o.metadata?.resourceVersion}`);
    }
  }
  return lines.sort();
}

describe('ensureControlPlane against a real infra apiserver', () => {
  let infra: LocalKubeCluster;
  const spec = buildControlPlaneSpec({ name: 'core', namespace: NAMESPACE, host: 'api.core.example' });

  before(async () => {
    infra = await startLocalKubeCluster({ name: 'ensure-infra' });
    await infra
      .kubeConfig()
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: NAMESPACE } } });
  });
  after(async () => {
    await infra.stop();
  });

  it('creates every object, allocates NodePorts, and reports it as events and data', async () => {
    const events: ControlPlaneEvent[] = [];
    const ensured = await ensureControlPlane(
      spec,
      { infra: infra.kubeConfig(), now: () => new Date(), onEvent: (event) => events.push(event) },
      { readyTimeoutMs: 0 },
    );
    assert.equal(ensured.ready, false);
    assert.equal(ensured.hostedAssets, undefined);
    assert.equal(ensured.generatedPki.length, 18);
    const { api, join, konnectivity } = ensured.spec.nodePorts;
    assert.ok(api !== undefined && api >= 30000 && api <= 32767, `api NodePort ${String(api)}`);
    assert.ok(join !== undefined && join >= 30000 && join <= 32767 && join !== api);
    assert.ok(
      konnectivity !== undefined &&
        konnectivity >= 30000 &&
        konnectivity <= 32767 &&
        ![api, join].includes(konnectivity),
      `konnectivity NodePort ${String(konnectivity)}`,
    );
    assert.equal(ensured.apiUrl, `https://api.core.example:${api}`);
    assert.equal(parseKubeconfig(ensured.adminKubeconfig).clusters[0]?.cluster.server, ensured.apiUrl);

    assert.deepEqual(events[0], { type: 'PkiCompleted', generated: ensured.generatedPki, total: 18 });
    assert.deepEqual(events[1], { type: 'NodePortsAllocated', api, join, konnectivity });
    const applied = events.filter((e) => e.type === 'Applied');
    assert.equal(applied.length, ensured.appliedObjects);
    assert.equal((await objectVersions(infra.kubeConfig())).length, ensured.appliedObjects);
  });

  it('changes nothing on a second run: same NodePorts, no key generated, no resourceVersion moved', async () => {
    const before = await objectVersions(infra.kubeConfig());
    const first = await readStoredSpec(infra.kubeConfig(), NAMESPACE, 'core');
    const again = await ensureControlPlane(
      spec,
      { infra: infra.kubeConfig(), now: () => new Date(), onEvent: () => undefined },
      { readyTimeoutMs: 0 },
    );
    assert.deepEqual(again.generatedPki, []);
    assert.deepEqual(again.spec.nodePorts, first.nodePorts);
    assert.deepEqual(await objectVersions(infra.kubeConfig()), before);
  });

  it('reads status and the list back as data from the stored spec', async () => {
    const status = await readControlPlaneStatus(infra.kubeConfig(), NAMESPACE, 'core', new Date());
    assert.equal(status.spec.host, 'api.core.example');
    assert.deepEqual(
      status.components.map((c) => [c.component, c.present]),
      [
        ['etcd', true],
        ['apiserver', true],
        ['controller-manager', true],
        ['scheduler', true],
        ['join-server', true],
      ],
    );
    const ca = status.certificates.find((c) => c.name === 'ca');
    assert.ok(ca !== undefined && ca.daysLeft > 3000, 'the CA is good for about ten years');
    assert.equal(status.requests.cpuMillis, 570);
    const list = await listControlPlanes(infra.kubeConfig(), NAMESPACE);
    assert.deepEqual(
      list.map((s) => [s.spec.name, s.apiUrl, s.deployments]),
      [['core', status.apiUrl, 4]],
    );
  });

  it('deletes exactly what it made, and says NOT_FOUND the second time', async () => {
    const deleted = await deleteControlPlane(infra.kubeConfig(), NAMESPACE, 'core', { keepData: false });
    assert.ok(deleted.length > 0);
    assert.deepEqual(await objectVersions(infra.kubeConfig()), []);
    await assert.rejects(
      deleteControlPlane(infra.kubeConfig(), NAMESPACE, 'core', { keepData: false }),
      (error: unknown) => error instanceof Error && 'code' in error && error.code === 'NOT_FOUND',
    );
  });
});
