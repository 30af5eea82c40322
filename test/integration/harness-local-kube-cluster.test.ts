import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import {
  AuthenticationV1Api,
  CertificatesV1Api,
  CoreV1Api,
  KubeConfig,
  RbacAuthorizationV1Api,
} from '@kubernetes/client-node';
import {
  buildBootstrapTokenSecret,
  createCertificateRequest,
  describeCertificate,
  generateBootstrapToken,
  generateRsaKeyPair,
  renderKubeconfig,
} from '@k8s-on-k8s/shared';
import { eventually, startLocalKubeCluster, httpsGet, type LocalKubeCluster } from '../harness/index.js';

function kubeConfigFor(
  cp: LocalKubeCluster,
  credentials: Parameters<typeof renderKubeconfig>[0]['credentials'],
): KubeConfig {
  const kc = new KubeConfig();
  kc.loadFromString(
    renderKubeconfig({
      clusterName: cp.name,
      server: cp.url,
      caPem: cp.ca.certPem,
      userName: 'u',
      credentials,
    }),
  );
  return kc;
}

async function whoAmI(kc: KubeConfig): Promise<{ username: string; groups: string[] }> {
  const review = await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
  });
  return { username: review.status?.userInfo?.username ?? '', groups: review.status?.userInfo?.groups ?? [] };
}

describe('local kube cluster harness (real etcd + kube-apiserver + kube-controller-manager)', () => {
  let cp: LocalKubeCluster;
  let startedMs = 0;
  before(async () => {
    const start = Date.now();
    cp = await startLocalKubeCluster({ name: 'harness-test', controllerManager: true });
    startedMs = Date.now() - start;
    console.log(`# local kube cluster with controller-manager ready in ${startedMs} ms`);
  });
  after(async () => {
    const start = Date.now();
    await cp.stop();
    console.log(`# local kube cluster stopped in ${Date.now() - start} ms`);
  });

  it('serves the pinned Kubernetes version to the admin', async () => {
    const res = await httpsGet(`${cp.url}/version`, {
      ca: cp.ca.certPem,
      cert: cp.admin.certPem,
      key: cp.admin.keyPem,
    });
    assert.equal(res.status, 200);
    assert.equal((JSON.parse(res.body) as { gitVersion: string }).gitVersion, 'v1.37.2');
    const anonymous = await httpsGet(`${cp.url}/api/v1/namespaces`, { ca: cp.ca.certPem });
    assert.equal(anonymous.status, 403, 'anonymous users must not list namespaces');
  });

  it('creates a Namespace and a Secret through @kubernetes/client-node', async () => {
    const core = cp.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: 'harness-test' } } });
    await core.createNamespacedSecret({
      namespace: 'harness-test',
      body: { metadata: { name: 'plain' }, stringData: { hello: 'world' } },
    });
    const secret = await core.readNamespacedSecret({ name: 'plain', namespace: 'harness-test' });
    assert.equal(Buffer.from(secret.data?.hello ?? '', 'base64').toString(), 'world');
  });

  it('authenticates a bootstrap token as system:bootstrap:<id> until it expires and the tokencleaner removes it', async () => {
    const core = cp.kubeConfig().makeApiClient(CoreV1Api);
    const token = generateBootstrapToken();
    const expiresAt = new Date(Date.now() + 8_000);
    await core.createNamespacedSecret({
      namespace: 'kube-system',
      body: buildBootstrapTokenSecret({
        id: token.id,
        secret: token.secret,
        expiresAt,
        extraGroups: ['system:bootstrappers:k8s-on-k8s'],
      }),
    });
    const kc = kubeConfigFor(cp, { token: token.token });
    const me = await whoAmI(kc);
    assert.equal(me.username, `system:bootstrap:${token.id}`);
    assert.ok(me.groups.includes('system:bootstrappers'));
    assert.ok(me.groups.includes('system:bootstrappers:k8s-on-k8s'));

    const wrongSecret = kubeConfigFor(cp, { token: `${token.id}.${'0'.repeat(16)}` });
    await assert.rejects(whoAmI(wrongSecret), /401|Unauthorized/);

    await eventually('the expired token to be rejected', 30_000, async () => {
      try {
        await whoAmI(kc);
        return undefined;
      } catch (error) {
        return /401|Unauthorized/.test(String(error)) ? true : undefined;
      }
    });
    await eventually('the tokencleaner to delete the expired Secret', 60_000, async () => {
      try {
        await core.readNamespacedSecret({ name: `bootstrap-token-${token.id}`, namespace: 'kube-system' });
        return undefined;
      } catch (error) {
        return /404|NotFound|not found/i.test(String(error)) ? true : undefined;
      }
    });
  });

  it('signs a kubelet client CSR made with bootstrap credentials; the certificate authenticates as system:node:<name>', async () => {
    const admin = cp.kubeConfig();
    const rbac = admin.makeApiClient(RbacAuthorizationV1Api);
    // What kubeadm sets up for TLS bootstrapping: bootstrappers may create CSRs, and their
    // kubelet-client CSRs are auto-approved by the controller-manager's csrapproving controller.
    for (const [name, role] of [
      ['harness:bootstrappers-create-csr', 'system:node-bootstrapper'],
      [
        'harness:bootstrappers-autoapprove',
        'system:certificates.k8s.io:certificatesigningrequests:nodeclient',
      ],
    ] as const) {
      await rbac.createClusterRoleBinding({
        body: {
          metadata: { name },
          roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: role },
          subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:bootstrappers' }],
        },
      });
    }
    const token = generateBootstrapToken();
    await admin.makeApiClient(CoreV1Api).createNamespacedSecret({
      namespace: 'kube-system',
      body: buildBootstrapTokenSecret({
        id: token.id,
        secret: token.secret,
        expiresAt: new Date(Date.now() + 600_000),
      }),
    });
    const bootstrap = kubeConfigFor(cp, { token: token.token });
    const keys = await generateRsaKeyPair();
    const csrPem = createCertificateRequest(keys, {
      commonName: 'system:node:worker-1',
      organizations: ['system:nodes'],
    });
    const certificates = bootstrap.makeApiClient(CertificatesV1Api);
    await certificates.createCertificateSigningRequest({
      body: {
        metadata: { name: 'node-csr-worker-1' },
        spec: {
          request: Buffer.from(csrPem).toString('base64'),
          signerName: 'kubernetes.io/kube-apiserver-client-kubelet',
          usages: ['digital signature', 'key encipherment', 'client auth'],
        },
      },
    });
    const issued = await eventually('the CSR to be approved and signed', 60_000, async () => {
      const csr = await certificates.readCertificateSigningRequest({ name: 'node-csr-worker-1' });
      return csr.status?.certificate;
    });
    const certPem = Buffer.from(issued, 'base64').toString('utf8');
    const summary = describeCertificate(certPem);
    assert.equal(summary.commonName, 'system:node:worker-1');
    assert.deepEqual(summary.organizations, ['system:nodes']);
    const node = await whoAmI(
      kubeConfigFor(cp, { clientCertPem: certPem, clientKeyPem: keys.privateKeyPem }),
    );
    assert.equal(node.username, 'system:node:worker-1');
    assert.ok(node.groups.includes('system:nodes'));
  });
});

describe('two local kube clusters at once', () => {
  it('run side by side with separate PKI, and stop() leaves no process or directory behind', async () => {
    const { existsSync } = await import('node:fs');
    const [infra, hosted] = await Promise.all([
      startLocalKubeCluster({ name: 'infra' }),
      startLocalKubeCluster({ name: 'hosted' }),
    ]);
    try {
      assert.notEqual(infra.url, hosted.url);
      assert.notEqual(infra.ca.certPem, hosted.ca.certPem);
      // Each admin is trusted only by its own apiserver.
      const own = await httpsGet(`${hosted.url}/api/v1/namespaces`, {
        ca: hosted.ca.certPem,
        cert: hosted.admin.certPem,
        key: hosted.admin.keyPem,
      });
      assert.equal(own.status, 200);
      const cross = await httpsGet(`${hosted.url}/api/v1/namespaces`, {
        ca: hosted.ca.certPem,
        cert: infra.admin.certPem,
        key: infra.admin.keyPem,
      });
      assert.equal(cross.status, 401);
    } finally {
      await Promise.all([infra.stop(), hosted.stop()]);
    }
    assert.equal(existsSync(infra.dir), false);
    assert.equal(existsSync(hosted.dir), false);
    await assert.rejects(httpsGet(`${infra.url}/readyz`, { ca: infra.ca.certPem }, 1000), /ECONNREFUSED/);
  });

  it('fails with a message naming `npm run kube:build` when the binaries are missing', async () => {
    const saved = process.env.KUBE_BIN_DIR;
    process.env.KUBE_BIN_DIR = '/nonexistent/kube-bin';
    try {
      await assert.rejects(startLocalKubeCluster({ name: 'missing' }), /npm run kube:build/);
    } finally {
      if (saved === undefined) delete process.env.KUBE_BIN_DIR;
      else process.env.KUBE_BIN_DIR = saved;
    }
  });
});
