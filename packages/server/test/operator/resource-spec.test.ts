// The operator and `create` hand the same spec to the same core: a HostedControlPlane and the flags
// that say the same thing build equal specs, so they render identical objects; and a bad resource is
// refused with the resource's own field names.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { ValidationError, parseFlags } from '@k8s-on-k8s/shared';
import { SPEC_FLAGS, specInputFromFlags } from '../../src/cli/control-plane/flags.js';
import { buildControlPlaneSpec } from '../../src/control-plane/spec.js';
import { renderControlPlane } from '../../src/control-plane/render/control-plane.js';
import { HCP_API_VERSION, HCP_KIND, type HostedControlPlane } from '../../src/operator/api.js';
import { controlPlaneSpecOfResource, resourceSpecOfInput } from '../../src/operator/resource-spec.js';
import { fakeControlPlanePki } from '../control-plane/fake-pki.js';

function resource(spec: HostedControlPlane['spec'], name = 'dev'): HostedControlPlane {
  return { apiVersion: HCP_API_VERSION, kind: HCP_KIND, metadata: { name, namespace: 'team-a' }, spec };
}

describe('HostedControlPlane spec → the reconcile core', () => {
  const cases: { what: string; flags: string[]; spec: HostedControlPlane['spec'] }[] = [
    {
      what: 'the defaults',
      flags: ['--host', 'api.dev.example'],
      spec: { exposure: { host: 'api.dev.example' } },
    },
    {
      what: 'every field set',
      flags: [
        ...['--host', 'api.dev.example', '--version', 'v1.34.1', '--expose', 'nodeport'],
        ...['--api-node-port', '30443', '--join-node-port', '30843', '--konnectivity-node-port', '30132'],
        ...['--cni', 'none', '--apiserver-replicas', '2', '--etcd-storage', '5Gi'],
        ...['--service-cidr', '10.96.0.0/16', '--pod-cidr', '10.244.0.0/16', '--vip', '10.199.0.9'],
        ...['--join-server-image', 'registry.example/join:v2'],
        '--component-resources',
        '{"apiserver":{"requests":{"cpu":"50m","memory":"192Mi"},"limits":{"memory":"512Mi"}},"etcd":{"requests":{"memory":"48Mi"}}}',
      ],
      spec: {
        version: 'v1.34.1',
        exposure: {
          type: 'nodeport',
          host: 'api.dev.example',
          nodePorts: { api: 30443, join: 30843, konnectivity: 30132 },
        },
        addons: { cni: 'none', konnectivity: true },
        apiserver: { replicas: 2 },
        etcd: { storageSize: '5Gi' },
        networks: { serviceCIDR: '10.96.0.0/16', podCIDR: '10.244.0.0/16', vip: '10.199.0.9' },
        joinServer: { image: 'registry.example/join:v2' },
        components: {
          apiserver: {
            resources: { requests: { cpu: '50m', memory: '192Mi' }, limits: { memory: '512Mi' } },
          },
          etcd: { resources: { requests: { memory: '48Mi' } } },
        },
      },
    },
    {
      what: 'an ingress without konnectivity, etcd ephemeral',
      flags: [
        ...['--host', 'api.dev.example', '--expose', 'ingress', '--ingress-class', 'nginx'],
        ...['--join-host', 'join.dev.example', '--etcd-storage', 'none', '--konnectivity=false'],
      ],
      spec: {
        exposure: {
          type: 'ingress',
          host: 'api.dev.example',
          joinHost: 'join.dev.example',
          ingressClassName: 'nginx',
        },
        etcd: { ephemeral: true },
        addons: { konnectivity: false },
      },
    },
    {
      what: 'a LoadBalancer',
      flags: ['--host', '203.0.113.7', '--expose', 'loadbalancer'],
      spec: { exposure: { type: 'loadbalancer', host: '203.0.113.7' } },
    },
  ];
  for (const c of cases) {
    it(`${c.what}: the same spec as create's flags, so the same objects`, () => {
      // As `create` reads its flags.
      const { values, positionals } = parseFlags(['dev', '-n', 'team-a', ...c.flags], SPEC_FLAGS, true);
      const input = specInputFromFlags(positionals, values);
      const fromFlags = buildControlPlaneSpec(input);
      const fromResource = controlPlaneSpecOfResource(resource(c.spec));
      assert.deepEqual(fromResource, fromFlags);
      // create --via-operator writes the flags as a resource: it says the same.
      assert.deepEqual(controlPlaneSpecOfResource(resource(resourceSpecOfInput(input))), fromFlags);
      if (fromFlags.expose !== 'nodeport' || fromFlags.nodePorts.api !== undefined) {
        const pki = fakeControlPlanePki();
        assert.deepEqual(renderControlPlane(fromResource, pki), renderControlPlane(fromFlags, pki));
      }
    });
  }

  it("spec.components.<c>.resources become the core's overrides, and back", () => {
    const spec = controlPlaneSpecOfResource(
      resource({
        exposure: { host: 'api.dev.example' },
        components: { apiserver: { resources: { requests: { cpu: '100m' } } }, etcd: {} },
      }),
    );
    assert.deepEqual(spec.componentResources, { apiserver: { requests: { cpu: '100m' } } });
    assert.deepEqual(
      resourceSpecOfInput({ host: 'h', componentResources: spec.componentResources }).components,
      {
        apiserver: { resources: { requests: { cpu: '100m' } } },
      },
    );
    assert.throws(
      () =>
        controlPlaneSpecOfResource(
          resource({
            exposure: { host: 'h' },
            components: { apiserver: { resources: { limits: { cpu: '1' } } } },
          } as never),
        ),
      /spec\.components\.apiserver takes requests\.cpu, requests\.memory and limits\.memory only/,
    );
  });

  it('--component-resources: JSON, refused naming the flag (and the field inside it)', () => {
    const input = (value: string) => {
      const { values, positionals } = parseFlags(
        ['dev', '-n', 'team-a', '--host', 'h', '--component-resources', value],
        SPEC_FLAGS,
        true,
      );
      return specInputFromFlags(positionals, values);
    };
    assert.throws(
      () => input('{apiserver: 1}'),
      (e: unknown) =>
        e instanceof ValidationError &&
        /^Expected --component-resources to be JSON, like '\{"apiserver"/.test(e.message),
    );
    assert.throws(
      () => buildControlPlaneSpec(input('{"apiserver":{"requests":{"cpu":"fast"}}}')),
      (e: unknown) =>
        e instanceof ValidationError &&
        /--component-resources\.apiserver\.requests\.cpu to be a quantity like 250m or 0\.5, got "fast"/.test(
          e.message,
        ),
    );
  });

  it("refuses what create refuses, naming the resource's fields", () => {
    const refused: [HostedControlPlane['spec'], RegExp][] = [
      [
        { exposure: { host: 'api.x', type: 'ingress' }, addons: { konnectivity: true } },
        /spec\.addons\.konnectivity is not supported with spec\.exposure\.type ingress/,
      ],
      [
        { exposure: { host: 'api.x' }, networks: { serviceCIDR: '10.2.0.0/24' } },
        /spec\.networks\.serviceCIDR 10\.2\.0\.0\/24 and spec\.networks\.podCIDR 10\.2\.0\.0\/16 not to overlap/,
      ],
      [
        { exposure: { host: 'api.x' }, networks: { vip: '10.3.0.5' } },
        /spec\.networks\.vip 10\.3\.0\.5 to be outside/,
      ],
      [
        { exposure: { host: 'api.x' }, etcd: { ephemeral: true, storageSize: '1Gi' } },
        /spec\.etcd\.storageSize and spec\.etcd\.ephemeral exclude each other/,
      ],
      [{ exposure: { host: 'api.x' }, version: 'v1.20.0' }, /spec\.version to be a Kubernetes release/],
      [
        { exposure: { host: 'api.x', nodePorts: { api: 30001, join: 30001 } } },
        /spec\.exposure\.nodePorts\.api and spec\.exposure\.nodePorts\.join to differ/,
      ],
    ];
    for (const [spec, message] of refused) {
      assert.throws(
        () => controlPlaneSpecOfResource(resource(spec)),
        (e: unknown) => e instanceof ValidationError && message.test(e.message),
        JSON.stringify(spec),
      );
    }
    assert.throws(
      () => controlPlaneSpecOfResource(resource({ exposure: { host: 'api.x' } }, 'Dev')),
      /metadata\.name to be a DNS label/,
    );
  });
});
