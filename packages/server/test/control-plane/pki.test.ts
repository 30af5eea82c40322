import assert from 'node:assert/strict';
import { before, describe, it } from 'node:test';
import { describeCertificate, isSignedBy } from '@k8s-on-k8s/shared';
import { buildControlPlaneSpec } from '../../src/control-plane/spec.js';
import {
  PKI_NAMES,
  completeControlPlanePki,
  leafCertificates,
  pkiSecretData,
  pkiSecretName,
  readControlPlanePki,
  type ControlPlanePki,
  type LeafName,
} from '../../src/control-plane/pki.js';

const spec = buildControlPlaneSpec({ name: 'dev', namespace: 'team-a', host: 'api.example.com' });
const fixedNow = new Date('2030-01-02T03:04:05Z');

function asSecrets(pki: ControlPlanePki): Map<string, Record<string, string>> {
  return new Map(PKI_NAMES.map((n) => [pkiSecretName(spec, n), pkiSecretData(pki, n, spec)]));
}

describe('control plane PKI', () => {
  let pki: ControlPlanePki;
  before(async () => {
    const result = await completeControlPlanePki(spec, {}, { now: () => fixedNow });
    pki = result.pki;
    assert.deepEqual([...result.generated].sort(), [...PKI_NAMES].sort());
  });

  it('signs every leaf with its issuer and gives it the identity the components expect', () => {
    const leaves = leafCertificates(spec);
    for (const leafName of Object.keys(leaves) as LeafName[]) {
      assert.ok(isSignedBy(pki[leafName].certPem, pki[leaves[leafName].issuer].certPem), leafName);
    }
    const apiserver = describeCertificate(pki.apiserver.certPem);
    assert.ok(apiserver.dnsNames.includes('api.example.com'));
    assert.ok(apiserver.dnsNames.includes('dev-apiserver.team-a.svc'));
    assert.ok(apiserver.dnsNames.includes('kubernetes.default.svc.cluster.local'));
    assert.deepEqual([...apiserver.ipAddresses].sort(), ['10.199.199.199', '10.3.0.1']);
    assert.deepEqual(describeCertificate(pki.admin.certPem).organizations, ['system:masters']);
    assert.equal(
      describeCertificate(pki.controllerManager.certPem).commonName,
      'system:kube-controller-manager',
    );
    assert.ok(describeCertificate(pki.etcdServer.certPem).ipAddresses.includes('127.0.0.1'));
    assert.equal(describeCertificate(pki.ca.certPem).notBefore.getTime(), fixedNow.getTime() - 5 * 60_000);
    assert.equal(Buffer.from(pki.encryptionKey, 'base64').length, 32);
  });

  it('reads back from its Secrets and then generates nothing', async () => {
    const read = readControlPlanePki(spec, asSecrets(pki));
    assert.deepEqual(read, { ...pki });
    const again = await completeControlPlanePki(spec, read);
    assert.deepEqual(again.generated, []);
    assert.deepEqual(again.pki, pki);
  });

  it('reissues only the certificates whose names no longer cover the spec', async () => {
    const moved = buildControlPlaneSpec({ name: 'dev', namespace: 'team-a', host: 'k8s.example.org' });
    const again = await completeControlPlanePki(moved, readControlPlanePki(spec, asSecrets(pki)));
    assert.deepEqual([...again.generated].sort(), ['apiserver', 'joinServer', 'konnectivityServer']);
    assert.deepEqual(again.pki.ca, pki.ca);
    assert.ok(describeCertificate(again.pki.apiserver.certPem).dnsNames.includes('k8s.example.org'));
  });

  it('regenerates every leaf of a CA that went missing, and only those', async () => {
    const secrets = asSecrets(pki);
    secrets.delete(pkiSecretName(spec, 'etcdCa'));
    const again = await completeControlPlanePki(spec, readControlPlanePki(spec, secrets));
    assert.deepEqual([...again.generated].sort(), ['apiserverEtcdClient', 'etcdCa', 'etcdServer']);
    assert.ok(isSignedBy(again.pki.etcdServer.certPem, again.pki.etcdCa.certPem));
  });

  it('treats a Secret missing a key, or a short encryption key, as missing', () => {
    const secrets = asSecrets(pki);
    secrets.set(pkiSecretName(spec, 'admin'), {
      'tls.crt': secrets.get(pkiSecretName(spec, 'admin'))?.['tls.crt'] ?? '',
    });
    secrets.set(pkiSecretName(spec, 'encryptionKey'), { key: Buffer.from('c2hvcnQ=').toString('base64') });
    const read = readControlPlanePki(spec, secrets);
    assert.equal(read.admin, undefined);
    assert.equal(read.encryptionKey, undefined);
    assert.notEqual(read.ca, undefined);
  });
});
