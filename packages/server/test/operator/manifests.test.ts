// deploy/operator/ is what renderOperatorManifests() renders, and the operator's RBAC covers every
// kind a control plane is made of and no more than that.
import assert from 'node:assert/strict';
import { readFileSync, writeFileSync, mkdirSync } from 'node:fs';
import { describe, it } from 'node:test';
import { stringify } from 'yaml';
import { CONTROL_PLANE_KINDS } from '../../src/control-plane/kinds.js';
import { renderControlPlane } from '../../src/control-plane/render/control-plane.js';
import { buildControlPlaneSpec } from '../../src/control-plane/spec.js';
import {
  OPERATOR_CLUSTER_RULES,
  OPERATOR_IMAGE,
  renderOperatorManifests,
} from '../../src/operator/manifests.js';
import { fakeControlPlanePki } from '../control-plane/fake-pki.js';

const DEPLOY = new URL('../../../../../deploy/operator/', import.meta.url);
const HEADERS: Record<string, string> = {
  'crd.yaml':
    '# The HostedControlPlane CRD (hostedcontrolplanes.k8s-on-k8s.io/v1alpha1). Generated from\n' +
    '# packages/server/src/operator/crd.ts: UPDATE_GOLDEN=1 node --test packages/server/dist/test/operator/\n',
  'rbac.yaml':
    "# The operator's namespace, ServiceAccount and least-privilege RBAC. Generated from\n" +
    '# packages/server/src/operator/manifests.ts: UPDATE_GOLDEN=1 node --test packages/server/dist/test/operator/\n',
  'operator.yaml':
    '# k8s-on-k8s-operator: two replicas, one leading through a Lease. Apply crd.yaml and rbac.yaml first.\n' +
    '# Generated from packages/server/src/operator/manifests.ts.\n',
};

describe('deploy/operator', () => {
  for (const [file, objects] of Object.entries(renderOperatorManifests())) {
    it(`${file} holds exactly what the renderer renders`, () => {
      const text =
        (HEADERS[file] ?? '') +
        objects.map((o) => stringify(o, { singleQuote: true, lineWidth: 0 })).join('---\n');
      const url = new URL(file, DEPLOY);
      if (process.env.UPDATE_GOLDEN === '1') {
        mkdirSync(DEPLOY, { recursive: true });
        writeFileSync(url, text);
      }
      assert.equal(readFileSync(url, 'utf8'), text, `${file} differs; review and rerun with UPDATE_GOLDEN=1`);
    });
  }

  it('lets the operator write every kind a control plane is made of, and grants no wildcard', () => {
    const spec = buildControlPlaneSpec({
      name: 'dev',
      namespace: 'team-a',
      host: 'api.dev.example',
      expose: 'ingress',
      konnectivity: false,
    });
    const withNodePorts = buildControlPlaneSpec({
      name: 'dev',
      namespace: 'team-a',
      host: 'api.dev.example',
      nodePorts: { api: 30443, join: 30843, konnectivity: 30132 },
    });
    const rendered = [
      ...renderControlPlane(spec, fakeControlPlanePki()),
      ...renderControlPlane(withNodePorts, fakeControlPlanePki()),
    ];
    const resources: Record<string, string> = {
      ConfigMap: 'configmaps',
      Secret: 'secrets',
      Service: 'services',
      PersistentVolumeClaim: 'persistentvolumeclaims',
      Deployment: 'deployments',
      StatefulSet: 'statefulsets',
      NetworkPolicy: 'networkpolicies',
      Ingress: 'ingresses',
    };
    const kinds = new Set(
      [...rendered, ...CONTROL_PLANE_KINDS].map((o) => `${o.apiVersion ?? ''} ${o.kind ?? ''}`),
    );
    for (const kind of kinds) {
      const [apiVersion = '', name = ''] = kind.split(' ');
      const group = apiVersion.includes('/') ? apiVersion.split('/')[0] : '';
      const rule = OPERATOR_CLUSTER_RULES.find(
        (r) =>
          (r.apiGroups as readonly string[]).includes(group ?? '') &&
          (r.resources as readonly string[]).includes(resources[name] ?? `no resource for ${name}`),
      );
      assert.ok(rule !== undefined, `no rule for ${kind}`);
      for (const verb of ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete']) {
        assert.ok((rule.verbs as readonly string[]).includes(verb), `${verb} ${kind}`);
      }
    }
    assert.ok(
      OPERATOR_CLUSTER_RULES.every(
        (r) =>
          !(r.verbs as readonly string[]).includes('*') && !(r.resources as readonly string[]).includes('*'),
      ),
    );
    assert.ok(
      !OPERATOR_CLUSTER_RULES.some((r) =>
        (r.apiGroups as readonly string[]).includes('rbac.authorization.k8s.io'),
      ),
    );
    assert.match(OPERATOR_IMAGE, /^ghcr\.io\/k8s-on-k8s\/k8s-on-k8s-operator:v\d+\.\d+\.\d+$/);
  });
});
