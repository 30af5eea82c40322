import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { checkUpstream } from '../../src/forward/upstream-health-check.js';
import { deadPort, startServer } from './tcp-fixtures.js';

describe('tcp check', () => {
  test('is healthy when something accepts and unhealthy when nothing listens', async () => {
    const server = await startServer((socket) => socket.end());
    assert.equal(await checkUpstream({ host: '127.0.0.1', port: server.port }, { kind: 'tcp' }, 5000), true);
    await server.stop();
    assert.equal(
      await checkUpstream({ host: '127.0.0.1', port: await deadPort() }, { kind: 'tcp' }, 5000),
      false,
    );
  });
});

describe('https /readyz check', () => {
  // A real CA and serving certificate with the IP SAN 127.0.0.1, as the apiserver's would have.
  const dir = mkdtempSync(join(tmpdir(), 'k8s-join-health-'));
  const openssl = (...args: string[]): void => {
    execFileSync('openssl', args, { cwd: dir, stdio: 'ignore' });
  };
  let server: Server;
  let port = 0;
  let status = 200;
  let paths: string[] = [];
  let ca = '';
  let otherCa = '';

  before(async () => {
    openssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'ca.key',
      '-out',
      'ca.crt',
      '-subj',
      '/CN=kubernetes',
      '-days',
      '1',
    );
    openssl(
      'req',
      '-x509',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'other.key',
      '-out',
      'other.crt',
      '-subj',
      '/CN=other',
      '-days',
      '1',
    );
    openssl(
      'req',
      '-newkey',
      'ec',
      '-pkeyopt',
      'ec_paramgen_curve:P-256',
      '-nodes',
      '-keyout',
      'server.key',
      '-out',
      'server.csr',
      '-subj',
      '/CN=kube-apiserver',
    );
    writeFileSync(join(dir, 'ext.cnf'), 'subjectAltName = IP:127.0.0.1\n');
    openssl(
      'x509',
      '-req',
      '-in',
      'server.csr',
      '-CA',
      'ca.crt',
      '-CAkey',
      'ca.key',
      '-CAcreateserial',
      '-out',
      'server.crt',
      '-days',
      '1',
      '-extfile',
      'ext.cnf',
    );
    ca = readFileSync(join(dir, 'ca.crt'), 'utf8');
    otherCa = readFileSync(join(dir, 'other.crt'), 'utf8');
    server = createServer(
      { key: readFileSync(join(dir, 'server.key')), cert: readFileSync(join(dir, 'server.crt')) },
      (req, res) => {
        paths.push(req.url ?? '');
        res.writeHead(status).end(status === 200 ? 'ok' : 'not ready');
      },
    );
    await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
    port = (server.address() as AddressInfo).port;
  });
  after(() => {
    server.close();
    rmSync(dir, { recursive: true, force: true });
  });

  test('is healthy on 200 from /readyz with a certificate signed by the CA', async () => {
    status = 200;
    paths = [];
    assert.equal(await checkUpstream({ host: '127.0.0.1', port }, { kind: 'https', ca }, 5000), true);
    assert.deepEqual(paths, ['/readyz']);
  });

  test('is unhealthy while /readyz answers 500', async () => {
    status = 500;
    assert.equal(await checkUpstream({ host: '127.0.0.1', port }, { kind: 'https', ca }, 5000), false);
  });

  test('is unhealthy when the certificate is not from the cluster CA', async () => {
    status = 200;
    paths = [];
    assert.equal(
      await checkUpstream({ host: '127.0.0.1', port }, { kind: 'https', ca: otherCa }, 5000),
      false,
    );
    assert.deepEqual(paths, [], 'no request is sent to an unverified server');
  });
});
