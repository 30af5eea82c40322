import { describe, it, before } from 'node:test';
import assert from 'node:assert/strict';
import { KubeConfig } from '@kubernetes/client-node';
import {
  parseKubeconfig,
  renderKubeconfig,
  resolveKubeconfig,
  type KubeconfigSpec,
} from '../src/kubeconfig.js';
import { createCertificateAuthority, issueCertificate, type CertifiedKeyPair } from '../src/pki.js';
import { ValidationError } from '../src/errors.js';

describe('kubeconfig', () => {
  let ca: CertifiedKeyPair;
  let admin: CertifiedKeyPair;
  before(async () => {
    ca = await createCertificateAuthority('kubernetes-ca');
    admin = await issueCertificate(ca, {
      commonName: 'admin',
      organizations: ['system:masters'],
      usage: 'client',
    });
  });

  function certSpec(): KubeconfigSpec {
    return {
      clusterName: 'demo',
      server: 'https://127.0.0.1:6443',
      caPem: ca.certPem,
      userName: 'admin',
      credentials: { clientCertPem: admin.certPem, clientKeyPem: admin.keyPem },
      namespace: 'kube-system',
    };
  }

  it('round-trips client-certificate credentials', () => {
    const resolved = resolveKubeconfig(parseKubeconfig(renderKubeconfig(certSpec())));
    assert.equal(resolved.server, 'https://127.0.0.1:6443');
    assert.equal(resolved.caPem, ca.certPem);
    assert.equal(resolved.clientCertPem, admin.certPem);
    assert.equal(resolved.clientKeyPem, admin.keyPem);
    assert.equal(resolved.token, undefined);
    assert.equal(resolved.contextName, 'admin@demo');
    assert.equal(resolved.namespace, 'kube-system');
  });

  it('round-trips token credentials', () => {
    const text = renderKubeconfig({
      ...certSpec(),
      userName: 'tls-bootstrap',
      credentials: { token: 'abcdef.0123456789abcdef' },
    });
    const resolved = resolveKubeconfig(parseKubeconfig(text));
    assert.equal(resolved.token, 'abcdef.0123456789abcdef');
    assert.equal(resolved.clientCertPem, undefined);
  });

  it('renders what @kubernetes/client-node loads', () => {
    const kc = new KubeConfig();
    kc.loadFromString(renderKubeconfig(certSpec()));
    const cluster = kc.getCurrentCluster();
    assert.ok(cluster);
    assert.equal(cluster.server, 'https://127.0.0.1:6443');
    assert.equal(Buffer.from(cluster.caData ?? '', 'base64').toString(), ca.certPem);
    assert.equal(Buffer.from(kc.getCurrentUser()?.certData ?? '', 'base64').toString(), admin.certPem);
    assert.equal(kc.getCurrentContext(), 'admin@demo');
  });

  it('rejects malformed kubeconfigs naming the field', () => {
    assert.throws(
      () => parseKubeconfig(': : :\n  - ['),
      (e: unknown) => e instanceof ValidationError && e.code === 'INVALID_KUBECONFIG',
    );
    assert.throws(() => parseKubeconfig('apiVersion: v1\nkind: Pod\n'), /kind/);
    const good = parseKubeconfig(renderKubeconfig(certSpec()));
    const noServer = renderKubeconfig(certSpec()).replace('https://127.0.0.1:6443', 'not a url');
    assert.throws(() => parseKubeconfig(noServer), /clusters\.0\.cluster\.server/);
    assert.throws(
      () => resolveKubeconfig({ ...good, 'current-context': 'missing' }),
      /current-context "missing" is not defined/,
    );
    assert.throws(() => resolveKubeconfig({ ...good, users: [] }), /user "admin" is not defined/);
    const badData = {
      ...good,
      clusters: [{ name: 'demo', cluster: { server: 'https://x', 'certificate-authority-data': '%%%' } }],
    };
    assert.throws(() => resolveKubeconfig(badData), /certificate-authority-data is not base64/);
  });

  it('never puts a credential in an error message', () => {
    const text = renderKubeconfig({
      ...certSpec(),
      credentials: { token: 'abcdef.0123456789abcdef' },
    }).replace('kind: Config', 'kind: Nope');
    try {
      parseKubeconfig(text);
      assert.fail('expected a rejection');
    } catch (error) {
      assert.ok(error instanceof ValidationError);
      assert.doesNotMatch(error.message, /0123456789abcdef/);
    }
  });
});
