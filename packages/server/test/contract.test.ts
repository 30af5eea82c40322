// The renderer and the join server agree on the names in contract.ts: what one program writes into
// a hosted cluster is what the other mints, asks about and selects. Each check would fail if one
// side changed a name on its own.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type {
  KubernetesObject,
  V1ClusterRole,
  V1ClusterRoleBinding,
  V1ConfigMap,
  V1Deployment,
} from '@kubernetes/client-node';
import {
  API_VIP,
  DEFAULT_API_ENDPOINT,
  generateJoinToken,
  hashTokenSecret,
  parseApiEndpoint,
  parseKubeconfig,
} from '@k8s-on-k8s/shared';
import {
  BOOTSTRAPPERS_GROUP,
  CONTROL_PLANE_LABEL,
  JOIN_SERVER_USER,
  JOIN_TOKEN_ID_LABEL,
  JOIN_TOKEN_NAMESPACE,
  JOIN_TOKEN_RESOURCE,
  NODE_BOOTSTRAPPERS_GROUP_PREFIX,
} from '../src/contract.js';
import { CONTROL_PLANE_KINDS } from '../src/control-plane/kinds.js';
import { leafCertificates } from '../src/control-plane/pki.js';
import { renderControlPlane } from '../src/control-plane/render/control-plane.js';
import { renderHostedAssets } from '../src/control-plane/render/hosted-assets.js';
import { buildControlPlaneSpec } from '../src/control-plane/spec.js';
import type { ResourceAttributes, SecretObject } from '../src/kube/api.js';
import { authorizeAdmin } from '../src/join-server/admin-auth.js';
import { mintBootstrapToken } from '../src/join-server/join-service.js';
import { nodeNameOfGroups } from '../src/join-server/node-bootstrap-group.js';
import { renderJoinTokenSecret } from '../src/join-server/token-store/kubernetes.js';
import { fakeControlPlanePki } from './control-plane/fake-pki.js';

const spec = buildControlPlaneSpec({
  name: 'dev',
  namespace: 'team-a',
  host: 'api.example.com',
  nodePorts: { api: 30443, join: 30844, konnectivity: 30132 },
});
const hosted = renderHostedAssets(spec);

function bindingsTo(role: string): V1ClusterRoleBinding[] {
  return hosted.filter(
    (o): o is V1ClusterRoleBinding & KubernetesObject =>
      o.kind === 'ClusterRoleBinding' && (o as V1ClusterRoleBinding).roleRef.name === role,
  );
}

describe('the contract between the renderer and the join server', () => {
  it('bootstrap tokens the join server mints carry the group the node-bootstrap RBAC binds, never to auto-approval', async () => {
    const created: SecretObject[] = [];
    await mintBootstrapToken(
      {
        kube: {
          createSecret: (_namespace: string, secret: SecretObject) => {
            created.push(secret);
            return Promise.resolve(secret);
          },
        },
        settings: { bootstrapTokenTtlMs: 60_000 },
        now: () => new Date('2030-01-01T00:00:00Z'),
      },
      {
        id: 'abc123',
        secretHash: hashTokenSecret(generateJoinToken().secret),
        createdAt: '2030-01-01T00:00:00Z',
        expiresAt: '2030-01-01T01:00:00Z',
        usesTotal: 1,
        usesCount: 0,
        revoked: false,
      },
      'worker-1',
    );
    const groups = created[0]?.stringData?.['auth-extra-groups']?.split(',') ?? [];
    assert.deepEqual(groups, [BOOTSTRAPPERS_GROUP, `${NODE_BOOTSTRAPPERS_GROUP_PREFIX}worker-1`]);
    assert.equal(nodeNameOfGroups(groups), 'worker-1');
    assert.equal(created[0]?.metadata.labels?.[JOIN_TOKEN_ID_LABEL], 'abc123');
    const subjects = bindingsTo('system:node-bootstrapper').flatMap((b) => b.subjects ?? []);
    assert.ok(
      subjects.some((s) => s.kind === 'Group' && groups.includes(s.name)),
      "system:node-bootstrapper is bound to the minted tokens' group",
    );
    // The join server approves bootstrap CSRs itself, by node name; kube-controller-manager must not.
    assert.deepEqual(bindingsTo('system:certificates.k8s.io:certificatesigningrequests:nodeclient'), []);
  });

  it('the kubernetes token store writes to the namespace the join server may read and write Secrets in', () => {
    const secret = renderJoinTokenSecret({
      id: 'abc123',
      secretHash: 'sha256$x',
      createdAt: '2030-01-01T00:00:00Z',
      expiresAt: '2030-01-01T01:00:00Z',
      usesTotal: 1,
      usesCount: 0,
      revoked: false,
    });
    assert.equal(secret.metadata.namespace, JOIN_TOKEN_NAMESPACE);
    assert.ok(hosted.some((o) => o.kind === 'Namespace' && o.metadata?.name === JOIN_TOKEN_NAMESPACE));
    const role = hosted.find(
      (o): o is V1ClusterRole & KubernetesObject =>
        o.kind === 'Role' && o.metadata?.namespace === JOIN_TOKEN_NAMESPACE,
    );
    assert.deepEqual(role?.rules?.[0]?.verbs, ['create', 'get', 'list', 'update', 'delete']);
  });

  it('the join-token ClusterRole grants the resource the join server authorizes admins for', async () => {
    const asked: ResourceAttributes[] = [];
    await authorizeAdmin({ bearerToken: 'opaque' }, 'create', {
      reviewToken: (_token, audiences) =>
        Promise.resolve({ username: 'alice', groups: [], audiences: audiences ?? [] }),
      reviewAccess: (_user, attributes) => {
        asked.push(attributes);
        return Promise.resolve({ allowed: true, reason: '' });
      },
    });
    const role = hosted.find(
      (o): o is V1ClusterRole & KubernetesObject =>
        o.kind === 'ClusterRole' && o.metadata?.name === 'k8s-on-k8s:join-token-admin',
    );
    const rule = role?.rules?.[0];
    assert.deepEqual(asked, [
      { group: JOIN_TOKEN_RESOURCE.group, resource: JOIN_TOKEN_RESOURCE.resource, verb: 'create' },
    ]);
    assert.ok(rule, 'the join-token admin ClusterRole has a rule');
    assert.deepEqual(rule.apiGroups, [JOIN_TOKEN_RESOURCE.group]);
    assert.deepEqual(rule.resources, [JOIN_TOKEN_RESOURCE.resource]);
    assert.ok(rule.verbs.includes('create'));
  });

  it("the join server's client certificate names the user its RBAC binds", () => {
    const certificateCn = leafCertificates(spec).joinServerClient.spec.commonName;
    const subjects = hosted
      .filter((o) => o.kind === 'RoleBinding' || o.kind === 'ClusterRoleBinding')
      .filter((o) => o.metadata?.name === 'k8s-join-server')
      .flatMap((o) => (o as V1ClusterRoleBinding).subjects ?? []);
    assert.equal(certificateCn, JOIN_SERVER_USER);
    assert.ok(subjects.length >= 2, 'a Role and a ClusterRole binding');
    assert.ok(subjects.filter((s) => s.kind === 'User').every((s) => s.name === certificateCn));
  });

  it('the apiserver advertises the VIP that workers carry and the join server hands out', () => {
    assert.equal(spec.vip, API_VIP);
    const args = renderControlPlane(spec, fakeControlPlanePki())
      .filter((o): o is V1Deployment & KubernetesObject => o.kind === 'Deployment')
      .flatMap((d) => d.spec?.template.spec?.containers.flatMap((c) => c.args ?? []) ?? []);
    assert.ok(args.includes(`--advertise-address=${API_VIP}`));
    assert.ok(args.includes(`--api-endpoint=${DEFAULT_API_ENDPOINT}`));
    // The hosted `kubernetes` Service leads to --advertise-address:--secure-port; the forwarder
    // listens on the join server's --api-endpoint and kube-proxy dials its kubeconfig's server.
    const flag = (name: string): string | undefined =>
      args.find((a) => a.startsWith(`--${name}=`))?.slice(name.length + 3);
    const advertised = { host: flag('advertise-address'), port: Number(flag('secure-port')) };
    assert.deepEqual(parseApiEndpoint(flag('api-endpoint') ?? ''), advertised);
    const kubeProxy = hosted.find<V1ConfigMap>(
      (o): o is V1ConfigMap => o.kind === 'ConfigMap' && o.metadata?.name === 'kube-proxy',
    );
    const kubeconfig = parseKubeconfig(kubeProxy?.data?.['kubeconfig.conf'] ?? '');
    assert.deepEqual(parseApiEndpoint(kubeconfig.clusters[0]?.cluster.server ?? ''), advertised);
  });

  it('every object create makes carries the label delete selects by, of a kind delete walks', () => {
    const kinds = new Set(CONTROL_PLANE_KINDS.map((k) => `${k.apiVersion}/${k.kind}`));
    for (const object of renderControlPlane(spec, fakeControlPlanePki())) {
      assert.equal(
        object.metadata?.labels?.[CONTROL_PLANE_LABEL],
        'dev',
        `${object.kind} ${object.metadata?.name}`,
      );
      assert.ok(kinds.has(`${object.apiVersion}/${object.kind}`), `delete walks ${object.kind}`);
    }
    for (const object of hosted) assert.equal(object.metadata?.labels?.[CONTROL_PLANE_LABEL], 'dev');
  });
});
