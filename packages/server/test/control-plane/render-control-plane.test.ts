import assert from 'node:assert/strict';
import { KONNECTIVITY_IMAGES } from '../../src/control-plane/render/konnectivity-images.js';
import { readFileSync, writeFileSync } from 'node:fs';
import { describe, it } from 'node:test';
import type {
  KubernetesObject,
  V1ConfigMap,
  V1Deployment,
  V1Secret,
  V1Service,
  V1StatefulSet,
} from '@kubernetes/client-node';
import { ValidationError } from '@k8s-on-k8s/shared';
import { parseAllDocuments } from 'yaml';
import { buildControlPlaneSpec, type ControlPlaneSpecInput } from '../../src/control-plane/spec.js';
import {
  JOIN_SERVER_IMAGE,
  formatObjectsYaml,
  renderControlPlane,
  renderEncryptionConfiguration,
} from '../../src/control-plane/render/control-plane.js';
import { specConfigMapName } from '../../src/control-plane/names.js';
import { sumResourceRequests } from '../../src/control-plane/resources.js';
import { fakeControlPlanePki } from './fake-pki.js';
import { CONTROL_PLANE_LABEL, CHECKSUM_ANNOTATION, DATA_LABEL } from '../../src/contract.js';

const GOLDEN = new URL('../../../test/fixtures/control-plane-dev.yaml', import.meta.url);
const input: ControlPlaneSpecInput = {
  name: 'dev',
  namespace: 'team-a',
  host: 'api.example.com',
  nodePorts: { api: 30443, join: 30844, konnectivity: 30132 },
};
const spec = buildControlPlaneSpec(input);

function find(objects: KubernetesObject[], kind: string, name: string): KubernetesObject {
  const found = objects.find((o) => o.kind === kind && o.metadata?.name === name);
  assert.ok(found, `${kind}/${name} rendered`);
  return found;
}

function args(objects: KubernetesObject[], kind: string, name: string): string[] {
  return (find(objects, kind, name) as V1Deployment).spec?.template.spec?.containers[0]?.args ?? [];
}

describe('renderControlPlane', () => {
  const objects = renderControlPlane(spec, fakeControlPlanePki());

  it('matches the reviewed golden file for a sample spec', () => {
    const yaml = formatObjectsYaml(objects);
    if (process.env.UPDATE_GOLDEN === '1') writeFileSync(GOLDEN, yaml);
    assert.equal(yaml, readFileSync(GOLDEN, 'utf8'), 'run with UPDATE_GOLDEN=1 and review the diff');
    assert.equal(parseAllDocuments(yaml).length, objects.length);
  });

  it('is pure: the same inputs give the same objects', () => {
    assert.deepEqual(renderControlPlane(spec, fakeControlPlanePki()), objects);
  });

  it('labels every object for the control plane and keeps it in the namespace', () => {
    for (const object of objects) {
      assert.equal(
        object.metadata?.labels?.[CONTROL_PLANE_LABEL],
        'dev',
        `${object.kind}/${object.metadata?.name}`,
      );
      assert.equal(object.metadata.namespace, 'team-a');
      assert.match(object.metadata.name ?? '', /^dev(-|$)/);
    }
    const pkiSecrets = objects.filter((o) => o.metadata?.labels?.[DATA_LABEL] === 'true');
    assert.equal(pkiSecrets.length, 18);
  });

  it('keeps key material out of args and annotations', () => {
    const text = JSON.stringify(
      objects.filter((o) => o.kind !== 'Secret').map((o) => [o.metadata, (o as V1Deployment).spec]),
    );
    assert.doesNotMatch(text, /PRIVATE KEY|ZmFrZS/);
  });

  it('points the apiserver at etcd over TLS, at the VIP, with encryption at rest and bootstrap tokens', () => {
    const apiserver = args(objects, 'Deployment', 'dev-apiserver');
    for (const flag of [
      '--advertise-address=10.199.199.199',
      '--etcd-servers=https://dev-etcd.team-a.svc:2379',
      '--authorization-mode=Node,RBAC',
      '--enable-admission-plugins=NodeRestriction',
      '--enable-bootstrap-token-auth=true',
      '--encryption-provider-config=/etc/kubernetes/config/encryption-config.yaml',
      '--service-cluster-ip-range=10.3.0.0/24',
      '--secure-port=443',
    ]) {
      assert.ok(apiserver.includes(flag), flag);
    }
    const config = find(objects, 'Secret', 'dev-apiserver-config') as V1Secret;
    const text = Buffer.from(config.data?.['encryption-config.yaml'] ?? '', 'base64').toString();
    assert.equal(text, renderEncryptionConfiguration(fakeControlPlanePki().encryptionKey));
    assert.match(text, /secretbox/);
    const kcm = args(objects, 'Deployment', 'dev-controller-manager');
    assert.ok(kcm.includes('--controllers=*,bootstrapsigner,tokencleaner'));
    assert.ok(kcm.includes('--cluster-cidr=10.2.0.0/16'));
  });

  it('tells the join server where workers reach the API and where they reach it', () => {
    const join = args(objects, 'Deployment', 'dev-join-server');
    assert.ok(join.includes('--upstream=api.example.com:30443'));
    assert.ok(join.includes('--public-url=https://api.example.com:30844'));
    assert.ok(join.includes('--cluster-dns=10.3.0.10'));
    assert.ok(join.includes('--api-endpoint=https://10.199.199.199:443'));
    assert.ok(join.includes('--store=kubernetes'));
  });

  it('exposes by NodePort with the given ports', () => {
    const service = find(objects, 'Service', 'dev-apiserver') as V1Service;
    assert.equal(service.spec?.type, 'NodePort');
    assert.equal(service.spec.ports?.[0]?.nodePort, 30443);
    assert.equal((find(objects, 'Service', 'dev-etcd') as V1Service).spec?.type, 'ClusterIP');
  });

  it('keeps client addresses for the join server (externalTrafficPolicy Local), not for the apiserver', () => {
    for (const expose of ['nodeport', 'loadbalancer'] as const) {
      const exposed = { ...input, expose, ...(expose === 'nodeport' ? {} : { nodePorts: undefined }) };
      const rendered = renderControlPlane(buildControlPlaneSpec(exposed), fakeControlPlanePki());
      const join = find(rendered, 'Service', 'dev-join-server') as V1Service;
      assert.equal(join.spec?.externalTrafficPolicy, 'Local', expose);
      const api = find(rendered, 'Service', 'dev-apiserver') as V1Service;
      assert.equal(api.spec?.externalTrafficPolicy, undefined, expose);
    }
    const ingress = renderControlPlane(
      buildControlPlaneSpec({ ...input, nodePorts: undefined, expose: 'ingress' }),
      fakeControlPlanePki(),
    );
    // A ClusterIP Service has no external traffic; the ingress controller is the client there.
    assert.equal(
      (find(ingress, 'Service', 'dev-join-server') as V1Service).spec?.externalTrafficPolicy,
      undefined,
    );
  });

  it('exposes through an ingress with TLS passthrough, the join server under its own host', () => {
    const ingressSpec = buildControlPlaneSpec({
      ...input,
      nodePorts: undefined,
      expose: 'ingress',
      ingressClass: 'nginx',
    });
    const rendered = renderControlPlane(ingressSpec, fakeControlPlanePki());
    const ingress = find(rendered, 'Ingress', 'dev') as KubernetesObject & {
      spec: { ingressClassName: string; rules: { host: string }[] };
    };
    assert.equal(ingress.metadata?.annotations?.['nginx.ingress.kubernetes.io/ssl-passthrough'], 'true');
    assert.equal(ingress.spec.ingressClassName, 'nginx');
    assert.deepEqual(
      ingress.spec.rules.map((r) => r.host),
      ['api.example.com', 'join.api.example.com'],
    );
    assert.equal((find(rendered, 'Service', 'dev-apiserver') as V1Service).spec?.type, 'ClusterIP');
    assert.ok(args(rendered, 'Deployment', 'dev-join-server').includes('--upstream=api.example.com:443'));
  });

  it('refuses to render a NodePort control plane whose ports are not known yet', () => {
    assert.throws(
      () =>
        renderControlPlane(
          buildControlPlaneSpec({ ...input, nodePorts: { join: 30844 } }),
          fakeControlPlanePki(),
        ),
      (error: unknown) => error instanceof ValidationError && /--api-node-port/.test(error.message),
    );
  });

  it('keeps etcd on a PersistentVolumeClaim, or an emptyDir with --etcd-storage none', () => {
    const etcd = find(objects, 'StatefulSet', 'dev-etcd') as V1StatefulSet;
    const claim = etcd.spec?.volumeClaimTemplates?.[0];
    assert.ok(claim);
    assert.equal(claim.spec?.resources?.requests?.storage, '1Gi');
    assert.equal(claim.metadata?.labels?.[CONTROL_PLANE_LABEL], 'dev');
    const ephemeral = renderControlPlane(
      buildControlPlaneSpec({ ...input, etcdStorage: null }),
      fakeControlPlanePki(),
    );
    const etcd2 = find(ephemeral, 'StatefulSet', 'dev-etcd') as V1StatefulSet;
    assert.equal(etcd2.spec?.volumeClaimTemplates, undefined);
    assert.ok(etcd2.spec?.template.spec?.volumes?.some((v) => v.emptyDir !== undefined));
  });

  it('rolls only the pods whose mounted Secrets changed', () => {
    const checksum = (rendered: KubernetesObject[], kind: string, name: string): string | undefined =>
      (find(rendered, kind, name) as V1Deployment).spec?.template.metadata?.annotations?.[
        CHECKSUM_ANNOTATION
      ];
    const reissued = renderControlPlane(
      spec,
      fakeControlPlanePki({ apiserver: { certPem: 'new cert', keyPem: 'new key' } }),
    );
    assert.notEqual(
      checksum(reissued, 'Deployment', 'dev-apiserver'),
      checksum(objects, 'Deployment', 'dev-apiserver'),
    );
    assert.equal(
      checksum(reissued, 'Deployment', 'dev-scheduler'),
      checksum(objects, 'Deployment', 'dev-scheduler'),
    );
    assert.equal(checksum(reissued, 'StatefulSet', 'dev-etcd'), checksum(objects, 'StatefulSet', 'dev-etcd'));
  });

  it('requests no more than 1 CPU and 1 GiB for the whole control plane', () => {
    const totals = sumResourceRequests(objects);
    assert.ok(totals.cpuMillis > 0 && totals.cpuMillis <= 1000, `${totals.cpuMillis}m`);
    assert.ok(totals.memoryBytes > 0 && totals.memoryBytes <= 2 ** 30, `${totals.memoryBytes} bytes`);
  });

  it('uses registry.k8s.io images of the requested version and the matching etcd', () => {
    const older = renderControlPlane(
      buildControlPlaneSpec({ ...input, kubernetesVersion: 'v1.33.4' }),
      fakeControlPlanePki(),
    );
    const images = older
      .filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')
      .flatMap((o) => (o as V1Deployment).spec?.template.spec?.containers.map((c) => c.image) ?? []);
    assert.ok(images.includes(KONNECTIVITY_IMAGES.server), 'the proxy server beside the apiserver');
    assert.deepEqual(images.filter((image) => image !== KONNECTIVITY_IMAGES.server).slice(0, 4), [
      'registry.k8s.io/etcd:3.5.21-0',
      'registry.k8s.io/kube-apiserver:v1.33.4',
      'registry.k8s.io/kube-controller-manager:v1.33.4',
      'registry.k8s.io/kube-scheduler:v1.33.4',
    ]);
  });

  it('runs the join server image the spec names, rolls its pod, and stores only a chosen image', () => {
    const image = 'registry.example:5000/team/k8s-join-server:v0.1.0-rc.1';
    const custom = renderControlPlane(
      buildControlPlaneSpec({ ...input, joinServerImage: image }),
      fakeControlPlanePki(),
    );
    const template = (rendered: KubernetesObject[]) =>
      (find(rendered, 'Deployment', 'dev-join-server') as V1Deployment).spec?.template;
    assert.equal(template(objects)?.spec?.containers[0]?.image, JOIN_SERVER_IMAGE);
    assert.equal(template(custom)?.spec?.containers[0]?.image, image);
    assert.notEqual(
      template(custom)?.metadata?.annotations?.[CHECKSUM_ANNOTATION],
      template(objects)?.metadata?.annotations?.[CHECKSUM_ANNOTATION],
    );
    const storedImage = (rendered: KubernetesObject[]): unknown => {
      const configMap = find(rendered, 'ConfigMap', specConfigMapName(spec)) as V1ConfigMap;
      return (JSON.parse(configMap.data?.['spec.json'] ?? '{}') as Record<string, unknown>).joinServerImage;
    };
    assert.equal(storedImage(custom), image);
    // The default is not stored, so a control plane follows the CLI's version when it is upgraded.
    assert.equal(storedImage(objects), undefined);
  });
});
