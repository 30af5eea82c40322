import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ValidationError } from '@k8s-on-k8s/shared';
import {
  buildControlPlaneSpec,
  publicApiUrl,
  publicJoinUrl,
  publicKonnectivityPort,
  withNodePorts,
  FLAG_FIELD_NAMES,
  type Cni,
  type ControlPlaneSpecInput,
  type Exposure,
} from '../../src/control-plane/spec.js';
import { fromStoredSpec, toStoredSpec } from '../../src/control-plane/stored-spec.js';

const base: ControlPlaneSpecInput = { name: 'dev', namespace: 'team-a', host: 'api.example.com' };

function rejects(input: ControlPlaneSpecInput, message: RegExp): void {
  assert.throws(
    () => buildControlPlaneSpec({ ...base, ...input }),
    (error: unknown) => error instanceof ValidationError && message.test(error.message),
  );
}

describe('buildControlPlaneSpec', () => {
  it("fills the seed's defaults and derives the kubernetes and DNS Service IPs", () => {
    const spec = buildControlPlaneSpec(base);
    assert.equal(spec.kubernetesVersion, 'v1.37.2');
    assert.equal(spec.etcdImageTag, '3.7.0-0');
    assert.equal(spec.expose, 'nodeport');
    assert.equal(spec.cni, 'flannel');
    assert.equal(spec.etcdStorage, '1Gi');
    assert.equal(spec.serviceCidr, '10.3.0.0/24');
    assert.equal(spec.podCidr, '10.2.0.0/16');
    assert.equal(spec.vip, '10.199.199.199');
    assert.equal(spec.kubernetesServiceIp, '10.3.0.1');
    assert.equal(spec.clusterDnsIp, '10.3.0.10');
    assert.equal(spec.joinHost, 'api.example.com');
    assert.ok(Object.isFrozen(spec) && Object.isFrozen(spec.nodePorts));
  });

  it('picks the etcd image of the requested minor and refuses minors it has no etcd pin for', () => {
    assert.equal(buildControlPlaneSpec({ ...base, kubernetesVersion: 'v1.33.4' }).etcdImageTag, '3.5.21-0');
    rejects({ kubernetesVersion: 'v1.20.0' }, /--version .*"v1\.20\.0"/);
    rejects({ kubernetesVersion: '1.37.2' }, /--version .*"1\.37\.2"/);
  });

  it('computes DNS and kubernetes IPs inside a larger service CIDR', () => {
    const spec = buildControlPlaneSpec({ ...base, serviceCidr: '172.20.0.0/16' });
    assert.equal(spec.kubernetesServiceIp, '172.20.0.1');
    assert.equal(spec.clusterDnsIp, '172.20.0.10');
  });

  it('names a second host for the join server behind an ingress, which routes by SNI', () => {
    const spec = buildControlPlaneSpec({ ...base, expose: 'ingress', ingressClass: 'nginx' });
    assert.equal(spec.joinHost, 'join.api.example.com');
    assert.equal(publicApiUrl(spec), 'https://api.example.com:443');
    assert.equal(publicJoinUrl(spec), 'https://join.api.example.com:443');
    rejects({ expose: 'ingress', joinHost: 'api.example.com' }, /two different DNS names/);
  });

  it('needs the NodePorts before it can name public URLs', () => {
    const spec = buildControlPlaneSpec(base);
    assert.throws(() => publicApiUrl(spec), /--api-node-port/);
    const allocated = withNodePorts(spec, { api: 31443, join: 31844, konnectivity: 31132 });
    assert.equal(publicKonnectivityPort(allocated), 31132);
    assert.equal(publicApiUrl(allocated), 'https://api.example.com:31443');
    assert.equal(publicJoinUrl(allocated), 'https://api.example.com:31844');
    assert.equal(
      publicApiUrl(buildControlPlaneSpec({ ...base, nodePorts: { api: 30443, join: 30444 } })),
      'https://api.example.com:30443',
    );
  });

  it('rejects bad input with the flag and the value in the message', () => {
    rejects({ name: 'Dev' }, /NAME .*"Dev"/);
    rejects({ name: 'a'.repeat(41) }, /NAME .*at most 40/);
    rejects({ name: undefined }, /Missing NAME/);
    rejects({ namespace: undefined }, /Missing -n\/--namespace/);
    rejects({ host: undefined }, /Missing --host/);
    rejects({ host: 'not a host' }, /--host .*"not a host"/);
    // As JSON (a stored spec, a resource) would deliver them: the enum is checked at run time too.
    rejects(
      { expose: 'hostport' as Exposure },
      /--expose to be one of nodeport, loadbalancer, ingress, got "hostport"/,
    );
    rejects({ ingressClass: 'nginx' }, /--ingress-class is only used with --expose ingress/);
    rejects({ cni: 'calico' as Cni }, /--cni to be one of flannel, none, got "calico"/);
    rejects({ etcdStorage: '1GB' }, /--etcd-storage .*"1GB"/);
    rejects({ serviceCidr: '10.3.0.5/24' }, /--service-cidr .*did you mean 10\.3\.0\.0\/24/);
    rejects({ serviceCidr: '10.3.0.0/29' }, /--service-cidr .*\/28/);
    rejects({ serviceCidr: '10.2.0.0/24' }, /not to overlap/);
    rejects({ podCidr: 'ten/8' }, /--pod-cidr .*"ten\/8"/);
    rejects({ vip: '10.3.0.7' }, /--vip 10\.3\.0\.7 to be outside/);
    rejects({ vip: '10.199.199' }, /--vip .*"10\.199\.199"/);
    rejects({ nodePorts: { api: 8080 } }, /--api-node-port .*30000 and 32767, got 8080/);
    rejects({ nodePorts: { api: 30443.5 } }, /--api-node-port .*got 30443\.5/);
    rejects({ nodePorts: { api: 30443, join: 30443 } }, /to differ, got 30443 twice/);
    rejects(
      { nodePorts: { join: 30132, konnectivity: 30132 } },
      /--join-node-port and --konnectivity-node-port to differ, got 30132 twice/,
    );
    rejects({ konnectivity: false, nodePorts: { konnectivity: 30132 } }, /only used with konnectivity/);
    rejects(
      { expose: 'ingress', konnectivity: true },
      /--konnectivity is not supported with --expose ingress/,
    );
    rejects({ apiserverReplicas: 0 }, /--apiserver-replicas to be a whole number from 1 to 5, got 0/);
    rejects({ apiserverReplicas: 1.5 }, /--apiserver-replicas .*got 1\.5/);
    rejects({ expose: 'loadbalancer', nodePorts: { api: 30443 } }, /only used with --expose nodeport/);
  });

  it('takes a join server image reference and rejects what a container runtime would not pull', () => {
    assert.equal(buildControlPlaneSpec(base).joinServerImage, undefined);
    for (const image of [
      'registry.example/k8s-join-server:v1',
      'localhost:5000/k8s-join-server',
      'registry:5000/team/k8s-join-server:v0.1.0-rc.1',
      'k8s-join-server:dev',
      `registry.example/k8s-join-server@sha256:${'a'.repeat(64)}`,
    ]) {
      assert.equal(buildControlPlaneSpec({ ...base, joinServerImage: image }).joinServerImage, image);
    }
    for (const image of [
      '',
      'registry.example/k8s join server:v1',
      'registry.example/K8s-join-server:v1',
      'Team/k8s-join-server:v1',
      'registry.example/k8s-join-server:',
      'registry.example/k8s-join-server:v1/x',
      'registry.example/k8s-join-server@sha256:abc',
      `registry.example/${'a'.repeat(256)}`,
    ]) {
      assert.throws(
        () => buildControlPlaneSpec({ ...base, joinServerImage: image }),
        (error: unknown) =>
          error instanceof ValidationError &&
          error.message.startsWith('Expected --join-server-image to be an image reference') &&
          error.message.endsWith(`got ${JSON.stringify(image)}`),
        image,
      );
    }
  });

  it('takes a null storage as an emptyDir', () => {
    assert.equal(buildControlPlaneSpec({ ...base, etcdStorage: null }).etcdStorage, undefined);
  });

  it('names fields as the caller calls them', () => {
    const fields = { ...FLAG_FIELD_NAMES, expose: 'spec.exposure.type', name: 'metadata.name' };
    assert.throws(
      () => buildControlPlaneSpec({ ...base, expose: 'hostport' as Exposure }, fields),
      /Expected spec\.exposure\.type to be one of/,
    );
    assert.throws(() => buildControlPlaneSpec({ ...base, name: 'Dev' }, fields), /Expected metadata\.name/);
  });
});

describe('stored spec', () => {
  it('round-trips through spec.json, derived fields and all', () => {
    for (const spec of [
      withNodePorts(buildControlPlaneSpec(base), { api: 30443, join: 30844, konnectivity: 30132 }),
      buildControlPlaneSpec({ ...base, konnectivity: false }),
      buildControlPlaneSpec({ ...base, expose: 'ingress', ingressClass: 'nginx', etcdStorage: null }),
      buildControlPlaneSpec({ ...base, expose: 'loadbalancer', cni: 'none', serviceCidr: '172.20.0.0/16' }),
      buildControlPlaneSpec({ ...base, joinServerImage: 'registry.example/k8s-join-server:v1' }),
    ]) {
      const text = toStoredSpec(spec);
      assert.deepEqual(fromStoredSpec(text, 'ConfigMap team-a/dev-control-plane'), spec);
      assert.equal(toStoredSpec(fromStoredSpec(text, 'test')), text);
    }
  });

  it('recomputes derived fields instead of trusting them', () => {
    const stored = JSON.parse(toStoredSpec(buildControlPlaneSpec(base))) as Record<string, unknown>;
    stored.clusterDnsIp = '10.3.0.99';
    assert.equal(fromStoredSpec(JSON.stringify(stored), 'test').clusterDnsIp, '10.3.0.10');
  });

  it('rejects an edited spec naming the ConfigMap and the field', () => {
    const stored = JSON.parse(toStoredSpec(buildControlPlaneSpec(base))) as Record<string, unknown>;
    const source = 'ConfigMap team-a/dev-control-plane';
    assert.throws(
      () => fromStoredSpec('{', source),
      /ConfigMap team-a\/dev-control-plane: spec.json is not JSON/,
    );
    assert.throws(() => fromStoredSpec('[]', source), /not a JSON object/);
    assert.throws(
      () => fromStoredSpec(JSON.stringify({ ...stored, expose: 'hostport' }), source),
      /dev-control-plane: Expected spec\.json expose to be one of nodeport, loadbalancer, ingress, got "hostport"/,
    );
    assert.throws(
      () => fromStoredSpec(JSON.stringify({ ...stored, nodePorts: { api: '30443' } }), source),
      /spec\.json nodePorts\.api to be a number, got "30443"/,
    );
    assert.throws(
      () => fromStoredSpec(JSON.stringify({ ...stored, host: 7 }), source),
      /spec\.json host to be a string, got 7/,
    );
    assert.throws(
      () => fromStoredSpec(JSON.stringify({ ...stored, joinServerImage: 'Registry/K8s' }), source),
      /dev-control-plane: Expected spec\.json joinServerImage to be an image reference .*"Registry\/K8s"/,
    );
  });
});
