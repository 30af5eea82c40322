import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import {
  caCertHash,
  createCertificateAuthority,
  issueCertificate,
  JoinError,
  type CertifiedKeyPair,
} from '@k8s-on-k8s/shared';
import { discoverServerCa } from '../../src/join/discover-server-ca.js';
import { requestJoinBundle } from '../../src/join/join-client.js';

const TOKEN = 'abcdef.0123456789abcdef0123456789abcdef';

interface Recorded {
  method: string;
  url: string;
  authorization: string | undefined;
}

/** A real HTTPS server on 127.0.0.1:0 that records every request and answers 401 like the join server. */
async function startServer(
  chainPem: string,
  key: string,
): Promise<{ server: Server; url: URL; requests: Recorded[] }> {
  const requests: Recorded[] = [];
  const server = createServer({ cert: chainPem, key }, (req, res) => {
    requests.push({ method: req.method ?? '', url: req.url ?? '', authorization: req.headers.authorization });
    req.resume();
    res.writeHead(401, { 'content-type': 'application/json' });
    res.end(
      JSON.stringify({
        apiVersion: 'join.k8s-on-k8s.io/v1',
        kind: 'Error',
        code: 'TOKEN_REJECTED',
        message: 'join token rejected',
      }),
    );
  });
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const { port } = server.address() as AddressInfo;
  return { server, url: new URL(`https://127.0.0.1:${port}`), requests };
}

describe('discoverServerCa and requestJoinBundle against a real TLS server', () => {
  let ca: CertifiedKeyPair;
  let otherCa: CertifiedKeyPair;
  let good: Awaited<ReturnType<typeof startServer>>;
  let leafOnly: Awaited<ReturnType<typeof startServer>>;
  let impostor: Awaited<ReturnType<typeof startServer>>;

  before(async () => {
    [ca, otherCa] = await Promise.all([
      createCertificateAuthority('hosted-ca'),
      createCertificateAuthority('impostor-ca'),
    ]);
    const spec = { commonName: 'k8s-join-server', ipAddresses: ['127.0.0.1'], usage: 'server' as const };
    const [serving, impostorServing] = await Promise.all([
      issueCertificate(ca, spec),
      issueCertificate(otherCa, spec),
    ]);
    good = await startServer(serving.certPem + ca.certPem, serving.keyPem);
    leafOnly = await startServer(serving.certPem, serving.keyPem);
    impostor = await startServer(impostorServing.certPem + otherCa.certPem, impostorServing.keyPem);
  });
  after(() => {
    for (const s of [good, leafOnly, impostor]) s.server.close();
  });

  it('takes the CA from the presented chain when it matches the pin', async () => {
    const found = await discoverServerCa(good.url, caCertHash(ca.certPem));
    assert.equal(found.caPem.trim(), ca.certPem.trim());
    assert.equal(found.caCertHash, caCertHash(ca.certPem));
    assert.equal(good.requests.length, 0, 'discovery sends no HTTP request');
  });

  it('refuses a server whose CA does not match the pin, naming both hashes, and never sends the token', async () => {
    const expected = caCertHash(ca.certPem);
    await assert.rejects(discoverServerCa(impostor.url, expected), (error: unknown) => {
      assert.ok(error instanceof JoinError);
      assert.equal(error.code, 'CA_PIN_MISMATCH');
      assert.equal(
        error.message,
        `the server presented CA with hash ${caCertHash(otherCa.certPem)}, expected ${expected}`,
      );
      return true;
    });
    assert.equal(impostor.requests.length, 0);
  });

  it('refuses a server that presents no CA in its chain', async () => {
    await assert.rejects(discoverServerCa(leafOnly.url, caCertHash(ca.certPem)), { code: 'CA_PIN_MISMATCH' });
  });

  it('sends the token only over TLS verified against the pinned CA', async () => {
    await assert.rejects(
      requestJoinBundle({
        serverUrl: good.url,
        caPem: ca.certPem,
        token: TOKEN,
        request: { nodeName: 'w1', os: 'linux', arch: 'x64' },
      }),
      (error: unknown) =>
        error instanceof JoinError &&
        error.code === 'TOKEN_REJECTED' &&
        error.hint !== undefined &&
        !error.message.includes(TOKEN),
    );
    const last = good.requests.at(-1);
    assert.deepEqual(last, { method: 'POST', url: '/v1/join', authorization: `Bearer ${TOKEN}` });
    // A server with another CA's certificate fails verification before any request is sent.
    await assert.rejects(
      requestJoinBundle({
        serverUrl: impostor.url,
        caPem: ca.certPem,
        token: TOKEN,
        request: { nodeName: 'w1', os: 'linux', arch: 'x64' },
      }),
      { code: 'SERVER_UNREACHABLE' },
    );
    assert.equal(impostor.requests.length, 0);
  });

  it('reports an unreachable server as such', async () => {
    const closed = await startServer(ca.certPem, ca.keyPem);
    const url = closed.url;
    await new Promise<void>((resolve) =>
      closed.server.close(() => {
        resolve();
      }),
    );
    await assert.rejects(discoverServerCa(url, caCertHash(ca.certPem), 2000), { code: 'SERVER_UNREACHABLE' });
  });
});
