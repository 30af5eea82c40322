import assert from 'node:assert/strict';
import { generateKeyPairSync } from 'node:crypto';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  AuthenticationV1Api,
  CertificatesV1Api,
  CoreV1Api,
  KubeConfig,
  KubernetesObjectApi,
  type KubernetesObject,
  type V1CertificateSigningRequest,
} from '@kubernetes/client-node';
import {
  issueCertificate,
  parseCreatedToken,
  parseErrorBody,
  parseJoinBundle,
  renderKubeconfig,
  type CertifiedKeyPair,
  type JoinBundle,
} from '@k8s-on-k8s/shared';
import { buildControlPlaneSpec, joinTokenSecretName, renderHostedAssets } from '@k8s-on-k8s/server';
import {
  applyJoinServerRbac,
  callJoinServer,
  eventually,
  joinRequestBody,
  prepareJoinServerFiles,
  runCommand,
  startInProcessJoinServer,
  startLocalKubeCluster,
  type InProcessJoinServer,
  type JoinServerFiles,
  type LocalKubeCluster,
} from '../harness/index.js';

// A join token is worth exactly one node (issue 13): against a real apiserver and
// kube-controller-manager (csrapproving, csrsigning, tokencleaner) with the node-bootstrap RBAC
// `create` installs and the real join server, a bootstrap credential gets a node client certificate
// for its own node name only, never for another name or for a Node that already exists, and its
// Secret is gone once the certificate is issued. And the join server's own identity can do no more
// in the hosted kube-system than mint and delete its bootstrap tokens.

const KUBELET_CLIENT_SIGNER = 'kubernetes.io/kube-apiserver-client-kubelet';
const KUBELET_SERVING_SIGNER = 'kubernetes.io/kubelet-serving';

/**
 * A kubelet-shaped CSR (P-256 key, O=system:nodes), made by openssl: a client CSR has no extensions,
 * a serving CSR the subjectAltName `altNames` (e.g. DNS:a,IP:198.18.0.1).
 */
async function nodeCsr(dir: string, commonName: string, altNames?: string): Promise<string> {
  const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
  const keyPath = join(dir, `${commonName.replace(/[^a-z0-9.-]/g, '_')}.key`);
  await writeFile(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
  const extension = altNames === undefined ? [] : ['-addext', `subjectAltName=${altNames}`];
  const made = await runCommand(
    'openssl',
    ['req', '-new', '-key', keyPath, '-subj', `/O=system:nodes/CN=${commonName}`, ...extension],
    { timeoutMs: 10_000 },
  );
  assert.equal(made.exitCode, 0, made.stderr);
  return made.stdout;
}

const nodeClientCsr = (dir: string, commonName: string): Promise<string> => nodeCsr(dir, commonName);

function clientOf(kubeconfig: string): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfig);
  return kc;
}

/**
 * Sends a CSR as the kubelet would: with its credential (the bootstrap one for its client
 * certificate, its node certificate for its serving certificate), the signer and the usages.
 */
async function requestNodeCertificate(
  kc: KubeConfig,
  name: string,
  csrPem: string,
  kind: 'client' | 'serving' = 'client',
): Promise<void> {
  await kc.makeApiClient(CertificatesV1Api).createCertificateSigningRequest({
    body: {
      apiVersion: 'certificates.k8s.io/v1',
      kind: 'CertificateSigningRequest',
      metadata: { name },
      spec: {
        request: Buffer.from(csrPem).toString('base64'),
        signerName: kind === 'client' ? KUBELET_CLIENT_SIGNER : KUBELET_SERVING_SIGNER,
        usages: ['digital signature', kind === 'client' ? 'client auth' : 'server auth'],
      },
    },
  });
}

function conditionOf(csr: V1CertificateSigningRequest, type: string) {
  return csr.status?.conditions?.find((c) => c.type === type && c.status === 'True');
}

/** The apiserver's message of the last failed call, for assertion messages. */
let lastRefusal = '';

/** The status code of a failed client-node call (its ApiException carries `code`); 200 for success. */
async function statusOf(call: () => Promise<unknown>): Promise<number> {
  try {
    await call();
    lastRefusal = '';
    return 200;
  } catch (error) {
    const { code, body } = error as { code?: unknown; body?: unknown };
    if (typeof code !== 'number') throw error;
    lastRefusal = typeof body === 'string' ? body : JSON.stringify(body);
    return code;
  }
}

describe('a bootstrap credential is worth exactly one node', () => {
  let cp: LocalKubeCluster;
  let dir: string;
  let files: JoinServerFiles;
  let server: InProcessJoinServer;
  let masters: CertifiedKeyPair;
  let core: CoreV1Api;
  let certificates: CertificatesV1Api;

  const mint = async (body: Record<string, unknown> = {}) => {
    const answer = await callJoinServer(`${server.url}/v1/tokens`, {
      method: 'POST',
      caPem: cp.ca.certPem,
      clientCert: masters,
      body,
    });
    assert.equal(answer.status, 201, answer.text);
    return parseCreatedToken(answer.json());
  };

  const joinAs = async (token: string, nodeName: string): Promise<JoinBundle> => {
    const answer = await callJoinServer(`${server.url}/v1/join`, {
      caPem: cp.ca.certPem,
      token,
      body: joinRequestBody(nodeName),
    });
    assert.equal(answer.status, 200, answer.text);
    return parseJoinBundle(answer.json());
  };

  const bootstrapIdOf = (bundle: JoinBundle): string =>
    /token: ([a-z0-9]{6})\./.exec(bundle.bootstrapKubeconfig)?.[1] ?? '';

  /** Waits until the CSR is decided (Approved or Denied; Failed counts too) and returns it. */
  const decided = (name: string): Promise<V1CertificateSigningRequest> =>
    eventually(`CSR ${name} to be approved or denied`, 30_000, async () => {
      const csr = await certificates.readCertificateSigningRequest({ name });
      return (conditionOf(csr, 'Approved') ?? conditionOf(csr, 'Denied')) ? csr : undefined;
    });

  const createNode = (name: string) =>
    core.createNode({ body: { apiVersion: 'v1', kind: 'Node', metadata: { name } } });

  before(async () => {
    cp = await startLocalKubeCluster({
      name: 'node-identity',
      controllerManager: true,
      readyTimeoutMs: 180_000,
    });
    dir = await mkdtemp(join(tmpdir(), 'node-identity-'));
    // The node-bootstrap bindings exactly as `create` installs them in a hosted cluster.
    const spec = buildControlPlaneSpec({ name: 'dev', namespace: 'dev', host: '127.0.0.1' });
    const objects = KubernetesObjectApi.makeApiClient(cp.kubeConfig());
    const nodeBootstrap = renderHostedAssets(spec).filter(
      (o: KubernetesObject) =>
        o.kind === 'ClusterRoleBinding' && (o.metadata?.name ?? '').startsWith('k8s-on-k8s:node-'),
    );
    assert.ok(nodeBootstrap.length >= 2);
    for (const object of nodeBootstrap) await objects.create(object);
    await applyJoinServerRbac(cp);
    files = await prepareJoinServerFiles(cp, dir);
    masters = await issueCertificate(cp.ca, {
      commonName: 'test-admin',
      organizations: ['system:masters'],
      usage: 'client',
    });
    server = await startInProcessJoinServer([
      ...files.baseFlags,
      ...['--store', 'kubernetes', '--api-endpoint', cp.url, '--rate-limit-per-ip', '0'],
    ]);
    core = cp.kubeConfig().makeApiClient(CoreV1Api);
    certificates = cp.kubeConfig().makeApiClient(CertificatesV1Api);
  });

  after(async () => {
    // Each part may be missing when before() failed half-way.
    await (server as InProcessJoinServer | undefined)?.shutdown(5000);
    await (cp as LocalKubeCluster | undefined)?.stop();
    if ((dir as string | undefined) !== undefined) await rm(dir, { recursive: true, force: true });
  });

  it('denies a CSR for another node name, approves its own, and deletes the bootstrap token once issued', async () => {
    const created = await mint({ nodeName: 'worker-a' });
    const bundle = await joinAs(created.token, 'worker-a');
    const bootstrapId = bootstrapIdOf(bundle);
    const kc = clientOf(bundle.bootstrapKubeconfig);
    const me = await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({
      body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
    });
    assert.equal(me.status?.userInfo?.username, `system:bootstrap:${bootstrapId}`);

    await requestNodeCertificate(kc, 'evil', await nodeClientCsr(dir, 'system:node:evil-node'));
    const evil = await decided('evil');
    assert.equal(conditionOf(evil, 'Approved'), undefined, 'a CSR for another node name was approved');
    assert.match(
      conditionOf(evil, 'Denied')?.message ?? '',
      /minted for node worker-a .*not CN=system:node:evil-node/,
    );

    await requestNodeCertificate(kc, 'own', await nodeClientCsr(dir, 'system:node:worker-a'));
    const own = await decided('own');
    assert.ok(conditionOf(own, 'Approved'), JSON.stringify(own.status));
    const issued = await eventually('the certificate of CSR own', 30_000, async () => {
      const csr = await certificates.readCertificateSigningRequest({ name: 'own' });
      return csr.status?.certificate === undefined || csr.status.certificate === '' ? undefined : csr;
    }).catch(async (error: unknown) => {
      const csr = await certificates.readCertificateSigningRequest({ name: 'own' });
      throw new Error(`${String(error)}: ${JSON.stringify(csr.status)}\n${cp.logs()}`, { cause: error });
    });
    const { X509Certificate } = await import('node:crypto');
    const cert = new X509Certificate(Buffer.from(issued.status?.certificate ?? '', 'base64'));
    assert.match(cert.subject, /CN=system:node:worker-a/);

    await eventually(`bootstrap-token-${bootstrapId} to be deleted`, 30_000, async () =>
      (await statusOf(() =>
        core.readNamespacedSecret({ namespace: 'kube-system', name: `bootstrap-token-${bootstrapId}` }),
      )) === 404
        ? true
        : undefined,
    );
    // The evil CSR stays denied: a decision is final.
    const again = await certificates.readCertificateSigningRequest({ name: 'evil' });
    assert.equal(conditionOf(again, 'Approved'), undefined);
  });

  it('denies a CSR for the name of a Node that exists by then', async () => {
    const created = await mint();
    const bundle = await joinAs(created.token, 'late-node');
    // The name was free at the join; someone registered it before the CSR came.
    await createNode('late-node');
    const kc = clientOf(bundle.bootstrapKubeconfig);
    await requestNodeCertificate(kc, 'late', await nodeClientCsr(dir, 'system:node:late-node'));
    const late = await decided('late');
    assert.equal(conditionOf(late, 'Approved'), undefined, 'a CSR for an existing Node was approved');
    assert.match(conditionOf(late, 'Denied')?.message ?? '', /Node late-node already exists/);
  });

  it('refuses to join under the name of an existing Node, without spending the token', async () => {
    await createNode('taken-node');
    const created = await mint({ uses: 1 });
    const answer = await callJoinServer(`${server.url}/v1/join`, {
      caPem: cp.ca.certPem,
      token: created.token,
      body: joinRequestBody('taken-node'),
    });
    assert.equal(answer.status, 409, answer.text);
    const error = parseErrorBody(answer.json());
    assert.equal(error.code, 'CONFLICT');
    assert.match(error.message, /Node "taken-node" already exists/);
    assert.match(error.hint ?? '', /kubectl delete node taken-node/);
    await joinAs(created.token, 'free-node');
  });

  describe('kubelet serving certificates', () => {
    /** A registered Node with these addresses, and a kubeconfig with its node credentials. */
    const registeredNode = async (
      name: string,
      addresses: { type: string; address: string }[],
    ): Promise<KubeConfig> => {
      await createNode(name);
      // As the kubelet reports them: its own Node's status.addresses.
      const node = await core.readNode({ name });
      node.status = Object.assign(node.status ?? {}, { addresses });
      await core.replaceNodeStatus({ name, body: node });
      const identity = await issueCertificate(cp.ca, {
        commonName: `system:node:${name}`,
        organizations: ['system:nodes'],
        usage: 'client',
      });
      return clientOf(
        renderKubeconfig({
          clusterName: cp.name,
          server: cp.url,
          caPem: cp.ca.certPem,
          userName: name,
          credentials: { clientCertPem: identity.certPem, clientKeyPem: identity.keyPem },
        }),
      );
    };

    it("approves a node's CSR for its own names and addresses, and is issued", async () => {
      const kc = await registeredNode('serving-a', [
        { type: 'InternalIP', address: '198.18.40.1' },
        { type: 'Hostname', address: 'serving-a' },
      ]);
      await requestNodeCertificate(
        kc,
        'serving-a-own',
        await nodeCsr(dir, 'system:node:serving-a', 'DNS:serving-a,IP:198.18.40.1'),
        'serving',
      );
      const own = await decided('serving-a-own');
      assert.ok(conditionOf(own, 'Approved'), JSON.stringify(own.status));
      assert.equal(conditionOf(own, 'Approved')?.reason, 'K8sOnK8sNodeOwnsNames');
      const issued = await eventually('the certificate of CSR serving-a-own', 30_000, async () => {
        const csr = await certificates.readCertificateSigningRequest({ name: 'serving-a-own' });
        return (csr.status?.certificate ?? '') === '' ? undefined : csr;
      });
      const { X509Certificate } = await import('node:crypto');
      const cert = new X509Certificate(Buffer.from(issued.status?.certificate ?? '', 'base64'));
      assert.equal(cert.subjectAltName, 'DNS:serving-a, IP Address:198.18.40.1');
    });

    it("denies a node's CSR for an address its Node does not report, or another Node's", async () => {
      await registeredNode('serving-b', [{ type: 'InternalIP', address: '198.18.40.2' }]);
      const kc = await registeredNode('serving-c', [
        { type: 'InternalIP', address: '198.18.40.3' },
        // Claimed as well by serving-b: the address of a neighbour.
        { type: 'ExternalIP', address: '198.18.40.2' },
      ]);
      const cases: [string, string, RegExp][] = [
        [
          'serving-c-foreign',
          'IP:198.18.40.3,IP:198.18.40.99',
          /198\.18\.40\.99, which its Node's status\.addresses/,
        ],
        [
          'serving-c-dns',
          'DNS:kubernetes.default.svc,IP:198.18.40.3',
          /kubernetes\.default\.svc, which its Node/,
        ],
        ['serving-c-neighbour', 'IP:198.18.40.3,IP:198.18.40.2', /198\.18\.40\.2 \(Node serving-b\)/],
      ];
      for (const [name, altNames, message] of cases) {
        await requestNodeCertificate(
          kc,
          name,
          await nodeCsr(dir, 'system:node:serving-c', altNames),
          'serving',
        );
        const csr = await decided(name);
        assert.equal(conditionOf(csr, 'Approved'), undefined, `${name} was approved`);
        assert.match(conditionOf(csr, 'Denied')?.message ?? '', message, name);
      }
      // Another node's name in the subject, sent with serving-c's credentials: the apiserver's
      // NodeRestriction refuses it already (the approver would deny it too, unit-tested).
      const csrAsB = await nodeCsr(dir, 'system:node:serving-b', 'IP:198.18.40.3');
      assert.equal(
        await statusOf(() => requestNodeCertificate(kc, 'serving-c-as-b', csrAsB, 'serving')),
        403,
      );
      assert.match(lastRefusal, /can only create a node CSR with CN=system:node:serving-c/);
    });
  });

  describe("the join server's own identity in the hosted cluster", () => {
    const identities: { name: string; kubeconfig: () => Promise<string> }[] = [
      {
        name: 'client certificate k8s-join-server',
        kubeconfig: async () => (await import('node:fs/promises')).readFile(files.kubeconfigPath, 'utf8'),
      },
      {
        name: 'service account kube-system/k8s-join-server',
        kubeconfig: async () => {
          const request = await core.createNamespacedServiceAccountToken({
            name: 'k8s-join-server',
            namespace: 'kube-system',
            body: { spec: { audiences: [], expirationSeconds: 3600 } },
          });
          return renderKubeconfig({
            clusterName: cp.name,
            server: cp.url,
            caPem: cp.ca.certPem,
            userName: 'sa',
            credentials: { token: request.status?.token ?? '' },
          });
        },
      },
    ];

    const bootstrapSecret = (name: string, data: Record<string, string>) => ({
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name, namespace: 'kube-system' },
      type: 'bootstrap.kubernetes.io/token',
      stringData: data,
    });

    for (const identity of identities) {
      it(`${identity.name}: creates and deletes only its own bootstrap tokens in kube-system, reads no Secret there`, async () => {
        const joinServer = clientOf(await identity.kubeconfig()).makeApiClient(CoreV1Api);
        const create = (body: Record<string, unknown>) =>
          statusOf(() => joinServer.createNamespacedSecret({ namespace: 'kube-system', body }));
        const good = {
          'token-id': 'abcdef',
          'token-secret': '0123456789abcdef',
          expiration: new Date(Date.now() + 600_000).toISOString().replace(/\.\d+Z$/, 'Z'),
          'usage-bootstrap-authentication': 'true',
          'auth-extra-groups': 'system:bootstrappers:k8s-on-k8s,system:bootstrappers:k8s-on-k8s:node:n1',
        };

        // Admission policies take effect a moment after they are created.
        await eventually('an Opaque Secret in kube-system to be refused', 15_000, async () =>
          (await create({ metadata: { name: `innocent-${String(Date.now())}` }, type: 'Opaque' })) === 403
            ? true
            : undefined,
        );
        const refused: [string, Record<string, unknown>][] = [
          [
            'a service-account token Secret for a controller',
            {
              metadata: {
                name: 'gc-token',
                annotations: { 'kubernetes.io/service-account.name': 'generic-garbage-collector' },
              },
              type: 'kubernetes.io/service-account-token',
            },
          ],
          ['a bootstrap token not named bootstrap-token-*', bootstrapSecret('my-token', good)],
          [
            "a bootstrap token with kubeadm's group",
            bootstrapSecret('bootstrap-token-abcdef', {
              ...good,
              'auth-extra-groups': 'system:bootstrappers:kubeadm:default-node-token',
            }),
          ],
          [
            'a bootstrap token with a third group after its own two',
            bootstrapSecret('bootstrap-token-abcdef', {
              ...good,
              'auth-extra-groups': `${good['auth-extra-groups']},system:bootstrappers:kubeadm:default-node-token`,
            }),
          ],
          [
            'a bootstrap token for signing',
            bootstrapSecret('bootstrap-token-abcdef', { ...good, 'usage-bootstrap-signing': 'true' }),
          ],
        ];
        for (const [what, body] of refused) {
          assert.equal(await create(body), 403, what);
          assert.match(lastRefusal, /ValidatingAdmissionPolicy|forbidden/i, what);
        }

        assert.equal(await create(bootstrapSecret('bootstrap-token-abcdef', good)), 200, lastRefusal);
        assert.equal(
          await statusOf(() =>
            joinServer.readNamespacedSecret({ namespace: 'kube-system', name: 'bootstrap-token-abcdef' }),
          ),
          403,
        );
        assert.equal(
          await statusOf(() => joinServer.listNamespacedSecret({ namespace: 'kube-system' })),
          403,
        );
        assert.equal(
          await statusOf(() =>
            joinServer.deleteNamespacedSecret({ namespace: 'kube-system', name: 'bootstrap-token-abcdef' }),
          ),
          200,
        );

        // Secrets it did not make: an Opaque one, and an admin's bootstrap token of another group.
        await core.createNamespacedSecret({
          namespace: 'kube-system',
          body: { metadata: { name: 'precious' }, type: 'Opaque', stringData: { a: 'b' } },
        });
        await core.createNamespacedSecret({
          namespace: 'kube-system',
          body: bootstrapSecret('bootstrap-token-zzzzzz', {
            ...good,
            'token-id': 'zzzzzz',
            'auth-extra-groups': 'system:bootstrappers:kubeadm:default-node-token',
          }),
        });
        try {
          for (const name of ['precious', 'bootstrap-token-zzzzzz']) {
            assert.equal(
              await statusOf(() => joinServer.deleteNamespacedSecret({ namespace: 'kube-system', name })),
              403,
              name,
            );
          }
        } finally {
          for (const name of ['precious', 'bootstrap-token-zzzzzz'])
            await core.deleteNamespacedSecret({ namespace: 'kube-system', name });
        }
      });
    }

    it('keeps join-token records in k8s-on-k8s-join, none in kube-system', async () => {
      const created = await mint({ uses: 2 });
      const record = await core.readNamespacedSecret({
        namespace: 'k8s-on-k8s-join',
        name: joinTokenSecretName(created.id),
      });
      assert.equal(record.type, 'k8s-on-k8s.io/join-token');
      const inKubeSystem = await core.listNamespacedSecret({
        namespace: 'kube-system',
        labelSelector: 'k8s-on-k8s.io/join-token',
      });
      assert.deepEqual(inKubeSystem.items, []);
      await joinAs(created.token, 'store-1');
      const list = await callJoinServer(`${server.url}/v1/tokens`, {
        caPem: cp.ca.certPem,
        clientCert: masters,
      });
      assert.equal(list.status, 200, list.text);
      const listed = (list.json() as { items: { id: string; usesLeft: number | null }[] }).items;
      assert.equal(listed.find((t) => t.id === created.id)?.usesLeft, 1);
      const revoked = await callJoinServer(`${server.url}/v1/tokens/${created.id}`, {
        method: 'DELETE',
        caPem: cp.ca.certPem,
        clientCert: masters,
      });
      assert.equal(revoked.status, 200, revoked.text);
    });
  });
});
