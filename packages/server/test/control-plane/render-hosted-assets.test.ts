import assert from 'node:assert/strict';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type { KubernetesObject, V1ClusterRoleBinding, V1ConfigMap, V1Service } from '@kubernetes/client-node';
import { parse as parseYaml } from 'yaml';
import { buildControlPlaneSpec } from '../../src/control-plane/spec.js';
import { formatObjectsYaml } from '../../src/control-plane/render/control-plane.js';
import { renderHostedAssets } from '../../src/control-plane/render/hosted-assets.js';
import { CONTROL_PLANE_LABEL, BOOTSTRAPPERS_GROUP } from '../../src/contract.js';

const GOLDEN = new URL('../../../test/fixtures/hosted-assets-dev.yaml', import.meta.url);
const spec = buildControlPlaneSpec({
  name: 'dev',
  namespace: 'team-a',
  host: 'api.example.com',
  podCidr: '10.244.0.0/16',
});

function find(objects: KubernetesObject[], kind: string, name: string): KubernetesObject {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  assert.ok(found, `${kind}/${name} rendered`);
  return found;
}

describe('renderHostedAssets', () => {
  const objects = renderHostedAssets(spec);

  it('matches the reviewed golden file', () => {
    const yaml = formatObjectsYaml(objects);
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(GOLDEN, yaml);
    assert.equal(yaml, readFileSync(GOLDEN, 'utf8'), 'run with UPDATE_GOLDEN=1 and review the diff');
  });

  it('lets our bootstrappers create CSRs (never auto-approved), and nodes renew their own', () => {
    const subjects = (name: string) =>
      (find(objects, 'ClusterRoleBinding', name) as V1ClusterRoleBinding).subjects;
    assert.deepEqual(
      subjects('k8s-on-k8s:node-bootstrapper')?.map((s) => s.name),
      [BOOTSTRAPPERS_GROUP],
    );
    // No auto-approval of bootstrap CSRs: the join server approves each for its own node name.
    assert.ok(
      !objects.some(
        (o) =>
          o.kind === 'ClusterRoleBinding' &&
          (o as V1ClusterRoleBinding).roleRef.name ===
            'system:certificates.k8s.io:certificatesigningrequests:nodeclient',
      ),
    );
    assert.deepEqual(
      subjects('k8s-on-k8s:node-autoapprove-certificate-rotation')?.map((s) => s.name),
      ['system:nodes'],
    );
  });

  it('points kube-proxy at the VIP and gives it the pod CIDR', () => {
    const data = (find(objects, 'ConfigMap', 'kube-proxy') as V1ConfigMap).data ?? {};
    const kubeconfig = parseYaml(data['kubeconfig.conf'] ?? '') as {
      clusters: { cluster: { server: string } }[];
    };
    assert.equal(kubeconfig.clusters[0]?.cluster.server, 'https://10.199.199.199:443');
    assert.equal(
      (parseYaml(data['config.conf'] ?? '') as { clusterCIDR: string }).clusterCIDR,
      '10.244.0.0/16',
    );
  });

  it('gives flannel the pod CIDR, and leaves it out with --cni none', () => {
    const netConf =
      (find(objects, 'ConfigMap', 'kube-flannel-cfg') as V1ConfigMap).data?.['net-conf.json'] ?? '';
    assert.equal((JSON.parse(netConf) as { Network: string }).Network, '10.244.0.0/16');
    const without = renderHostedAssets(
      buildControlPlaneSpec({ name: 'dev', namespace: 'team-a', host: 'h.example', cni: 'none' }),
    );
    assert.equal(without.filter((o) => o.metadata?.name?.includes('flannel')).length, 0);
    assert.ok(without.some((o) => o.metadata?.name === 'coredns'));
  });

  it('puts CoreDNS on the 10th IP of the service CIDR', () => {
    assert.equal((find(objects, 'Service', 'kube-dns') as V1Service).spec?.clusterIP, '10.3.0.10');
  });

  it('labels every object for the control plane, so it can be told apart in the hosted cluster', () => {
    for (const object of objects) assert.equal(object.metadata?.labels?.[CONTROL_PLANE_LABEL], 'dev');
  });
});
