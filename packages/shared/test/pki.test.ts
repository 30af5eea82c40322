import { execFileSync } from 'node:child_process';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  createCertificateAuthority,
  createCertificateRequest,
  describeCertificate,
  generateRsaKeyPair,
  isSignedBy,
  issueCertificate,
  signCertificateRequest,
  type CertifiedKeyPair,
} from '../src/pki.js';
import { ValidationError } from '../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'pki-test-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

function write(name: string, text: string): string {
  const path = join(dir, name);
  writeFileSync(path, text);
  return path;
}

/** `openssl verify` is the independent judge of every certificate we make. */
function opensslVerify(caPem: string, certPem: string, purpose?: string): string {
  const caPath = write('ca-verify.pem', caPem);
  const certPath = write('cert-verify.pem', certPem);
  const args = [
    'verify',
    '-CAfile',
    caPath,
    ...(purpose === undefined ? [] : ['-purpose', purpose]),
    certPath,
  ];
  return execFileSync('openssl', args, { encoding: 'utf8' });
}

function opensslText(certPem: string): string {
  return execFileSync('openssl', ['x509', '-noout', '-text', '-in', write('text.pem', certPem)], {
    encoding: 'utf8',
  });
}

describe('pki', () => {
  let ca: CertifiedKeyPair;
  before(async () => {
    ca = await createCertificateAuthority('kubernetes-ca');
  });

  it('creates a self-signed CA that openssl accepts as a CA', () => {
    assert.match(opensslVerify(ca.certPem, ca.certPem), /OK/);
    const text = opensslText(ca.certPem);
    assert.match(text, /CA:TRUE/);
    assert.match(text, /Certificate Sign/);
    assert.equal(describeCertificate(ca.certPem).isCa, true);
    assert.match(ca.keyPem, /BEGIN RSA PRIVATE KEY/);
  });

  it('issues a serving certificate with DNS and IP SANs that verifies for sslserver', async () => {
    const serving = await issueCertificate(ca, {
      commonName: 'kube-apiserver',
      dnsNames: ['kubernetes', 'kubernetes.default.svc', 'api.example.com'],
      ipAddresses: ['10.199.199.199', '127.0.0.1', '::1'],
      usage: 'server',
    });
    assert.match(opensslVerify(ca.certPem, serving.certPem, 'sslserver'), /OK/);
    assert.throws(() => opensslVerify(ca.certPem, serving.certPem, 'sslclient'));
    const summary = describeCertificate(serving.certPem);
    assert.deepEqual(summary.dnsNames, ['kubernetes', 'kubernetes.default.svc', 'api.example.com']);
    assert.deepEqual(summary.ipAddresses, ['10.199.199.199', '127.0.0.1', '0:0:0:0:0:0:0:1']);
    assert.equal(summary.issuerCommonName, 'kubernetes-ca');
    assert.equal(summary.isCa, false);
    assert.match(opensslText(serving.certPem), /CA:FALSE/);
  });

  it('issues a client certificate whose O= carries the groups', async () => {
    const admin = await issueCertificate(ca, {
      commonName: 'kubernetes-admin',
      organizations: ['system:masters'],
      usage: 'client',
    });
    assert.match(opensslVerify(ca.certPem, admin.certPem, 'sslclient'), /OK/);
    assert.throws(() => opensslVerify(ca.certPem, admin.certPem, 'sslserver'));
    const summary = describeCertificate(admin.certPem);
    assert.equal(summary.commonName, 'kubernetes-admin');
    assert.deepEqual(summary.organizations, ['system:masters']);
  });

  it('issues certificates usable both ways for etcd peers', async () => {
    const peer = await issueCertificate(ca, {
      commonName: 'etcd-0',
      ipAddresses: ['127.0.0.1'],
      usage: 'server-client',
    });
    assert.match(opensslVerify(ca.certPem, peer.certPem, 'sslserver'), /OK/);
    assert.match(opensslVerify(ca.certPem, peer.certPem, 'sslclient'), /OK/);
  });

  it('signs a CSR with the identity chosen by the signer, not the requester', async () => {
    const keys = await generateRsaKeyPair();
    const csr = createCertificateRequest(keys, {
      commonName: 'requested-admin',
      organizations: ['system:masters'],
    });
    const certPem = signCertificateRequest(ca, csr, {
      commonName: 'system:node:worker-1',
      organizations: ['system:nodes'],
      usage: 'client',
    });
    assert.match(opensslVerify(ca.certPem, certPem, 'sslclient'), /OK/);
    const summary = describeCertificate(certPem);
    assert.equal(summary.commonName, 'system:node:worker-1');
    assert.deepEqual(summary.organizations, ['system:nodes']);
    // The certificate binds the requester's key.
    const modulus = (args: string[]): string => execFileSync('openssl', args, { encoding: 'utf8' }).trim();
    assert.equal(
      modulus(['x509', '-noout', '-modulus', '-in', write('csr-cert.pem', certPem)]),
      modulus(['rsa', '-noout', '-modulus', '-in', write('csr-key.pem', keys.privateKeyPem)]),
    );
  });

  it('rejects a malformed or tampered CSR', async () => {
    assert.throws(
      () => signCertificateRequest(ca, 'not a csr', { commonName: 'x', usage: 'client' }),
      ValidationError,
    );
    const keys = await generateRsaKeyPair();
    const csr = createCertificateRequest(keys, { commonName: 'node' });
    const body = csr.split('\n');
    const line = body[3] ?? '';
    body[3] = (line.startsWith('A') ? 'B' : 'A') + line.slice(1);
    assert.throws(() => signCertificateRequest(ca, body.join('\n'), { commonName: 'x', usage: 'client' }));
  });

  it('takes validity from the injected clock', async () => {
    const now = new Date('2030-01-01T00:00:00Z');
    const cert = await issueCertificate(
      ca,
      { commonName: 'short', usage: 'client', validityDays: 2 },
      { now: () => now },
    );
    const summary = describeCertificate(cert.certPem);
    assert.equal(summary.notAfter.toISOString(), '2030-01-03T00:00:00.000Z');
    assert.ok(summary.notBefore < now);
  });

  it('tells which CA signed a certificate', async () => {
    const other = await createCertificateAuthority('other-ca');
    const leaf = await issueCertificate(ca, { commonName: 'leaf', usage: 'client' });
    assert.equal(isSignedBy(leaf.certPem, ca.certPem), true);
    assert.equal(isSignedBy(leaf.certPem, other.certPem), false);
    assert.throws(() => opensslVerify(other.certPem, leaf.certPem));
  });

  it('rejects bad SANs and empty names, naming the value', async () => {
    await assert.rejects(
      issueCertificate(ca, { commonName: 'x', ipAddresses: ['10.0.0.300'], usage: 'server' }),
      /Expected an IP address SAN, got "10.0.0.300"/,
    );
    await assert.rejects(
      issueCertificate(ca, { commonName: '', usage: 'server' }),
      /non-empty certificate common name/,
    );
    assert.throws(() => describeCertificate('garbage'), ValidationError);
  });
});

describe('pki PEM output', () => {
  it('uses LF line endings like Node and the files on a Linux node', async () => {
    const ca = await createCertificateAuthority('lf-ca');
    const leaf = await issueCertificate(ca, { commonName: 'leaf', usage: 'client' });
    for (const pem of [ca.certPem, leaf.certPem, ca.keyPem]) assert.doesNotMatch(pem, /\r/);
  });
});
