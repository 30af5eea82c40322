import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { JOIN_SERVER_HELP } from '../../src/join-server/config.js';
import { BASE64_COMMA, renderJoinServerRbac } from '../../src/control-plane/render/join-server-rbac.js';
import { JOIN_SERVER_IMAGE } from '../../src/control-plane/render/control-plane.js';

const DEPLOY = new URL('../../../../../deploy/join-server/', import.meta.url);

async function readDocuments(name: string): Promise<Record<string, unknown>[]> {
  const text = await readFile(new URL(name, DEPLOY), 'utf8');
  return parseAllDocuments(text).map((doc) => doc.toJS() as Record<string, unknown>);
}

describe('join server RBAC', () => {
  it('deploy/join-server/rbac.yaml holds exactly the objects renderJoinServerRbac() renders', async () => {
    assert.deepEqual(await readDocuments('rbac.yaml'), JSON.parse(JSON.stringify(renderJoinServerRbac())));
  });

  it('grants in kube-system only create and delete of Secrets, reads and writes only in its own namespace', () => {
    const objects = renderJoinServerRbac();
    const roles = objects.filter((o) => o.kind === 'Role');
    assert.deepEqual(
      roles.map((r) => [r.metadata.namespace, r.rules]),
      [
        ['kube-system', [{ apiGroups: [''], resources: ['secrets'], verbs: ['create', 'delete'] }]],
        [
          'k8s-on-k8s-join',
          [{ apiGroups: [''], resources: ['secrets'], verbs: ['create', 'get', 'list', 'update', 'delete'] }],
        ],
      ],
    );
    assert.equal(objects[0]?.kind, 'Namespace', 'the namespace comes before the Role in it');
    const clusterRole = objects.find(
      (o) => o.kind === 'ClusterRole' && o.metadata.name === 'k8s-join-server',
    );
    assert.deepEqual(clusterRole?.rules, [
      { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
      { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
      {
        apiGroups: ['certificates.k8s.io'],
        resources: ['certificatesigningrequests'],
        verbs: ['get', 'list', 'watch'],
      },
      {
        apiGroups: ['certificates.k8s.io'],
        resources: ['certificatesigningrequests/approval'],
        verbs: ['update'],
      },
      {
        apiGroups: ['certificates.k8s.io'],
        resources: ['signers'],
        resourceNames: ['kubernetes.io/kube-apiserver-client-kubelet', 'kubernetes.io/kubelet-serving'],
        verbs: ['approve'],
      },
      { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
    ]);
    const rules = objects.flatMap((o) => (o.rules as { verbs: string[] }[] | undefined) ?? []);
    assert.ok(!rules.some((r) => r.verbs.includes('*') || r.verbs.includes('patch')));
  });

  it('binds each admission policy, for both of its identities, denying what it does not allow', () => {
    const objects = renderJoinServerRbac();
    const policies = objects.filter((o) => o.kind === 'ValidatingAdmissionPolicy');
    const bindings = objects.filter((o) => o.kind === 'ValidatingAdmissionPolicyBinding');
    assert.deepEqual(
      policies.map((p) => p.metadata.name),
      ['k8s-on-k8s-join-server-secrets', 'k8s-on-k8s-join-server-csr-approval'],
    );
    for (const policy of policies) {
      const spec = policy.spec as { failurePolicy: string; matchConditions: { expression: string }[] };
      assert.equal(spec.failurePolicy, 'Fail');
      assert.match(spec.matchConditions[0]?.expression ?? '', /'k8s-join-server'/);
      assert.match(
        spec.matchConditions[0]?.expression ?? '',
        /'system:serviceaccount:kube-system:k8s-join-server'/,
      );
      const binding = bindings.find(
        (b) => (b.spec as { policyName: string }).policyName === policy.metadata.name,
      );
      assert.deepEqual((binding?.spec as { validationActions: string[] }).validationActions, ['Deny']);
    }
  });

  it('deploy/join-server/join-server.yaml runs as the ServiceAccount of rbac.yaml with flags the server knows', async () => {
    const [deployment, service] = await readDocuments('join-server.yaml');
    const spec = (
      deployment as {
        spec: {
          template: { spec: { serviceAccountName: string; containers: { args: string[]; image: string }[] } };
        };
      }
    ).spec.template.spec;
    assert.equal(spec.serviceAccountName, 'k8s-join-server');
    // The image npm run build:images builds and create renders.
    const [container] = spec.containers;
    assert.ok(container, 'the Deployment has a container');
    assert.equal(container.image, JOIN_SERVER_IMAGE);
    for (const arg of container.args) {
      const flag = arg.split('=')[0] ?? '';
      assert.ok(JOIN_SERVER_HELP.includes(`  ${flag} `), `${flag} is not a k8s-join-server flag`);
    }
    assert.equal((service as { kind: string }).kind, 'Service');
  });

  it('BASE64_COMMA finds a comma in the decoding of base64 text, at any byte, and nothing else', () => {
    // Every 1-, 2- and 3-byte block with the comma at each position, against random bytes without.
    const pattern = new RegExp(BASE64_COMMA);
    const encode = (bytes: number[]) => Buffer.from(bytes).toString('base64');
    const noComma = () => {
      const byte = Math.floor(Math.random() * 255);
      return byte >= 0x2c ? byte + 1 : byte;
    };
    for (let i = 0; i < 20_000; i++) {
      const length = 1 + (i % 9);
      const bytes = Array.from({ length }, noComma);
      assert.equal(pattern.test(encode(bytes)), false, encode(bytes));
      bytes[i % length] = 0x2c;
      assert.equal(pattern.test(encode(bytes)), true, encode(bytes));
    }
  });
});
