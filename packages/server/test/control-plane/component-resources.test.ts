// Per-component resources: overrides over the measured defaults, validated with the caller's field
// names; a change to one component's resources changes only that component's pod template.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { V1Deployment, V1StatefulSet } from '@kubernetes/client-node';
import { ValidationError } from '@k8s-on-k8s/shared';
import { COMPONENT_RESOURCES, resourcesOf } from '../../src/control-plane/component-resources.js';
import { renderControlPlane } from '../../src/control-plane/render/control-plane.js';
import { buildControlPlaneSpec, type ControlPlaneSpecInput } from '../../src/control-plane/spec.js';
import { fromStoredSpec, toStoredSpec } from '../../src/control-plane/stored-spec.js';
import { fakeControlPlanePki } from './fake-pki.js';

const base: ControlPlaneSpecInput = {
  name: 'dev',
  namespace: 'team-a',
  host: 'api.dev.example',
  nodePorts: { api: 30443, join: 30843, konnectivity: 30132 },
};

describe('component resources', () => {
  it('defaults to the measured sizes; an override changes only what it names', () => {
    const plain = buildControlPlaneSpec(base);
    assert.deepEqual(resourcesOf(plain, 'apiserver'), COMPONENT_RESOURCES.apiserver);
    const tuned = buildControlPlaneSpec({
      ...base,
      componentResources: { apiserver: { requests: { cpu: '100m' } }, etcd: { limits: { memory: '256Mi' } } },
    });
    assert.deepEqual(resourcesOf(tuned, 'apiserver'), {
      requests: { cpu: '100m', memory: '320Mi' },
      limits: { memory: '1Gi' },
    });
    assert.deepEqual(resourcesOf(tuned, 'etcd'), {
      requests: { cpu: '100m', memory: '64Mi' },
      limits: { memory: '256Mi' },
    });
    assert.deepEqual(resourcesOf(tuned, 'scheduler'), COMPONENT_RESOURCES.scheduler);
  });

  it("tells every Go container its memory: GOMEMLIMIT at 90% of its limit, GOGC 40; the limit's override moves it", () => {
    const pki = fakeControlPlanePki();
    const goContainers = (input: ControlPlaneSpecInput) =>
      renderControlPlane(buildControlPlaneSpec(input), pki)
        .filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')
        .flatMap((o) => (o as V1Deployment | V1StatefulSet).spec?.template.spec?.containers ?? [])
        .filter((c) => c.name !== 'k8s-join-server');
    const env = (c: { env?: { name: string; value?: string }[] }, name: string) =>
      c.env?.find((e) => e.name === name)?.value;
    const plain = goContainers(base);
    assert.deepEqual(plain.map((c) => c.name).sort(), [
      'etcd',
      'konnectivity-server',
      'kube-apiserver',
      'kube-controller-manager',
      'kube-scheduler',
    ]);
    for (const c of plain) {
      const limit = String(c.resources?.limits?.memory);
      const mi = Number(/^(\d+)Mi$/.exec(limit)?.[1] ?? Number(/^(\d+)Gi$/.exec(limit)?.[1]) * 1024);
      assert.equal(env(c, 'GOMEMLIMIT'), String(Math.floor(mi * 1_048_576 * 0.9)), c.name);
      assert.equal(env(c, 'GOGC'), '40', c.name);
    }
    const smaller = goContainers({
      ...base,
      componentResources: { apiserver: { limits: { memory: '400Mi' } } },
    });
    assert.equal(
      env(smaller.find((c) => c.name === 'kube-apiserver') ?? {}, 'GOMEMLIMIT'),
      String(Math.floor(400 * 1_048_576 * 0.9)),
    );
  });

  it("changes only the overridden component's pod template", () => {
    const pki = fakeControlPlanePki();
    const templates = (input: ControlPlaneSpecInput) =>
      new Map(
        renderControlPlane(buildControlPlaneSpec(input), pki)
          .filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')
          .map((o) => [
            o.metadata?.name ?? '',
            JSON.stringify((o as V1Deployment | V1StatefulSet).spec?.template),
          ]),
      );
    const before = templates(base);
    const after = templates({ ...base, componentResources: { scheduler: { requests: { memory: '48Mi' } } } });
    const changed = [...before.keys()].filter((name) => before.get(name) !== after.get(name));
    assert.deepEqual(changed, ['dev-scheduler']);
  });

  it('survives the stored form', () => {
    const spec = buildControlPlaneSpec({
      ...base,
      componentResources: { 'join-server': { requests: { cpu: '0.1' } } },
    });
    assert.deepEqual(fromStoredSpec(toStoredSpec(spec), 'test'), spec);
  });

  it('refuses what is not a request or a memory limit, naming the field', () => {
    const refused: [unknown, RegExp][] = [
      [{ kubelet: {} }, /keys of --component-resources to be among etcd, apiserver/],
      [
        { apiserver: { limits: { cpu: '1' } } },
        /--component-resources\.apiserver takes requests\.cpu, requests\.memory and limits\.memory only \(no CPU limit.*limits\.cpu/,
      ],
      [
        { apiserver: { requests: { cpu: '250 m' } } },
        /--component-resources\.apiserver\.requests\.cpu to be a quantity like 250m/,
      ],
      [
        { etcd: { requests: { memory: '64M' } } },
        /etcd\.requests\.memory to be a quantity like 320Mi, got "64M"/,
      ],
      [
        { scheduler: { requests: { memory: '256Mi' } } },
        /scheduler's memory request \(256Mi\) to be at most its limit \(128Mi\)/,
      ],
      ['big', /--component-resources to be an object keyed by component/],
    ];
    for (const [componentResources, message] of refused) {
      assert.throws(
        () => buildControlPlaneSpec({ ...base, componentResources }),
        (e: unknown) => e instanceof ValidationError && message.test(e.message),
        JSON.stringify(componentResources),
      );
    }
  });
});
