import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { parseAllDocuments } from 'yaml';
import { JOIN_SERVER_HELP } from '../../src/join-server/config.js';
import { renderJoinServerRbac } from '../../src/control-plane/render/join-server-rbac.js';
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

  it('grants Secrets only in kube-system, and cluster-wide only the two reviews', () => {
    const objects = renderJoinServerRbac();
    const role = objects.find((o) => o.kind === 'Role' && o.metadata.name === 'k8s-join-server');
    assert.equal(role?.metadata.namespace, 'kube-system');
    const clusterRole = objects.find(
      (o) => o.kind === 'ClusterRole' && o.metadata.name === 'k8s-join-server',
    );
    assert.deepEqual(clusterRole?.rules, [
      { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
      { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
    ]);
    const rules = objects.flatMap((o) => (o.rules as { verbs: string[] }[] | undefined) ?? []);
    assert.ok(
      !rules.some((r) => r.verbs.includes('*') || r.verbs.includes('watch') || r.verbs.includes('patch')),
    );
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
});
