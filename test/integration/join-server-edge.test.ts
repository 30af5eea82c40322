import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { connect as connectTcp, type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect as connectTls, type TLSSocket } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, RbacAuthorizationV1Api } from '@kubernetes/client-node';
import { Agent } from 'undici';
import {
  issueCertificate,
  parseCreatedToken,
  parseErrorBody,
  renderKubeconfig,
  type CertifiedKeyPair,
} from '@k8s-on-k8s/shared';
import { JOIN_SERVER_AUDIENCE } from '@k8s-on-k8s/server';
import {
  applyJoinServerRbac,
  callJoinServer,
  joinRequestBody,
  prepareJoinServerFiles,
  startInProcessJoinServer,
  startLocalKubeCluster,
  type InProcessJoinServer,
  type JoinServerFiles,
  type LocalKubeCluster,
} from '../harness/index.js';

// The join server's edge against a real kube-apiserver: rate limits when many clients share an
// address or an attacker knows a token id, the HTTP and TLS timeouts and connection cap, what
// anonymous callers learn of apiserver errors, and the audience of admin bearer tokens.
// Clients come from distinct loopback addresses (127.0.0.2, .3, ...), so the server sees them apart.

const A = '127.0.0.2';
const B = '127.0.0.3';
const C = '127.0.0.4';

describe('join server edge against a real apiserver', () => {
  let cp: LocalKubeCluster;
  let dir: string;
  let files: JoinServerFiles;
  let masters: CertifiedKeyPair;
  /** A service account bound to k8s-on-k8s:join-token-admin. */
  const sa = { name: 'token-admin', namespace: 'default' };
  const servers: InProcessJoinServer[] = [];

  const start = async (
    flags: readonly string[] = [],
    options: Parameters<typeof startInProcessJoinServer>[1] = {},
  ): Promise<InProcessJoinServer> => {
    const server = await startInProcessJoinServer(
      [...files.baseFlags, '--store', `file:${join(dir, `tokens-${String(servers.length)}.json`)}`, ...flags],
      options,
    );
    servers.push(server);
    return server;
  };

  /** An undici agent whose connections leave from `address` (and present `cert`, if given). */
  const from = (address: string, cert?: CertifiedKeyPair): Agent =>
    new Agent({
      localAddress: address,
      connect: { ca: cp.ca.certPem, cert: cert?.certPem, key: cert?.keyPem },
    });

  const saToken = async (audiences: string[]): Promise<string> => {
    const answer = await cp
      .kubeConfig()
      .makeApiClient(CoreV1Api)
      .createNamespacedServiceAccountToken({
        name: sa.name,
        namespace: sa.namespace,
        body: { spec: { audiences, expirationSeconds: 3600 } },
      });
    return answer.status?.token ?? '';
  };

  before(async () => {
    cp = await startLocalKubeCluster({ name: 'join-edge' });
    dir = await mkdtemp(join(tmpdir(), 'join-server-edge-'));
    await applyJoinServerRbac(cp);
    files = await prepareJoinServerFiles(cp, dir);
    masters = await issueCertificate(cp.ca, {
      commonName: 'edge-admin',
      organizations: ['system:masters'],
      usage: 'client',
    });
    const kc = cp.kubeConfig();
    await kc.makeApiClient(CoreV1Api).createNamespacedServiceAccount({
      namespace: sa.namespace,
      body: { metadata: { name: sa.name } },
    });
    await kc.makeApiClient(RbacAuthorizationV1Api).createClusterRoleBinding({
      body: {
        metadata: { name: 'edge-token-admin' },
        roleRef: {
          apiGroup: 'rbac.authorization.k8s.io',
          kind: 'ClusterRole',
          name: 'k8s-on-k8s:join-token-admin',
        },
        subjects: [{ kind: 'ServiceAccount', ...sa }],
      },
    });
  });
  after(async () => {
    for (const server of servers) await server.shutdown(5000);
    await cp.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('keeps join-token penalties off admins from the same address, with a certificate or a bearer token', async () => {
    const server = await start();
    const agentA = from(A);
    const statuses: number[] = [];
    for (let i = 0; i < 12; i++) {
      const answer = await callJoinServer(`${server.url}/v1/join`, {
        caPem: cp.ca.certPem,
        agent: agentA,
        token: `guess${String(i % 10)}.${'a'.repeat(32)}`,
        body: joinRequestBody('guesser'),
      });
      statuses.push(answer.status);
    }
    assert.deepEqual(statuses, [...Array<number>(10).fill(401), 429, 429], 'joins from A are limited');

    const asMasters = await callJoinServer(`${server.url}/v1/tokens`, {
      caPem: cp.ca.certPem,
      agent: from(A, masters),
    });
    assert.equal(asMasters.status, 200, asMasters.text);
    const bearer = await saToken([JOIN_SERVER_AUDIENCE, 'https://kubernetes.default.svc.cluster.local']);
    const asBearer = await callJoinServer(`${server.url}/v1/tokens`, {
      caPem: cp.ca.certPem,
      agent: agentA,
      token: bearer,
    });
    assert.equal(asBearer.status, 200, asBearer.text);

    // Unauthenticated admin attempts are still limited per address, in a bucket of their own.
    const bogus: number[] = [];
    const agentC = from(C);
    for (let i = 0; i < 12; i++) {
      bogus.push(
        (
          await callJoinServer(`${server.url}/v1/tokens`, {
            caPem: cp.ca.certPem,
            agent: agentC,
            token: 'nope',
          })
        ).status,
      );
    }
    assert.deepEqual(bogus, [...Array<number>(10).fill(401), 429, 429]);
    const mastersFromC = await callJoinServer(`${server.url}/v1/tokens`, {
      caPem: cp.ca.certPem,
      agent: from(C, masters),
    });
    assert.equal(mastersFromC.status, 200, 'a valid certificate still gets in from C');
    const joinFromC = await callJoinServer(`${server.url}/v1/join`, {
      caPem: cp.ca.certPem,
      agent: agentC,
      token: `guessx.${'a'.repeat(32)}`,
      body: joinRequestBody('c'),
    });
    assert.equal(joinFromC.status, 401, 'failed admin logins do not lock joins from C');
  });

  it('wrong secrets for a token id from one address do not lock that token for its holder at another', async () => {
    const server = await start();
    const created = await callJoinServer(`${server.url}/v1/tokens`, {
      caPem: cp.ca.certPem,
      clientCert: masters,
      body: { uses: 1 },
    });
    assert.equal(created.status, 201, created.text);
    const token = parseCreatedToken(created.json());
    const agentA = from(A);
    const statuses: number[] = [];
    for (let i = 0; i < 8; i++) {
      const answer = await callJoinServer(`${server.url}/v1/join`, {
        caPem: cp.ca.certPem,
        agent: agentA,
        token: `${token.id}.${'w'.repeat(31)}${String(i)}`,
        body: joinRequestBody('mallory'),
      });
      statuses.push(answer.status);
    }
    assert.deepEqual(statuses, [...Array<number>(5).fill(401), 429, 429, 429], 'A is limited on that id');
    const other = await callJoinServer(`${server.url}/v1/join`, {
      caPem: cp.ca.certPem,
      agent: agentA,
      token: `zzzzzz.${'w'.repeat(32)}`,
      body: joinRequestBody('mallory'),
    });
    assert.equal(other.status, 401, 'the limit on that id is not a limit on A altogether');

    const holder = await callJoinServer(`${server.url}/v1/join`, {
      caPem: cp.ca.certPem,
      agent: from(B),
      token: token.token,
      body: joinRequestBody('worker-b'),
    });
    assert.equal(holder.status, 200, holder.text);
  });

  it('limits /healthz, /readyz and /metrics per address, generously', async () => {
    const server = await start();
    const agentA = from(A);
    const statuses: number[] = [];
    for (let i = 0; i < 120; i++) {
      statuses.push(
        (await callJoinServer(`${server.url}/metrics`, { caPem: cp.ca.certPem, agent: agentA })).status,
      );
    }
    assert.deepEqual(statuses.slice(0, 50), Array<number>(50).fill(200), 'a generous burst');
    assert.ok(statuses.includes(429), `some of 120 quick scrapes are refused: ${statuses.join(',')}`);
    const readyFromB = await callJoinServer(`${server.url}/readyz`, { caPem: cp.ca.certPem, agent: from(B) });
    assert.equal(readyFromB.status, 200, 'another address is not affected');
  });

  /** Milliseconds until `socket` closes, or Infinity if it is still open after `deadlineMs`. */
  const closesWithin = (socket: Socket, deadlineMs: number): Promise<number> => {
    const started = Date.now();
    return new Promise((resolve) => {
      const timer = setTimeout(() => {
        socket.destroy();
        resolve(Number.POSITIVE_INFINITY);
      }, deadlineMs);
      socket.on('error', () => undefined);
      // Flowing, so a 408 the server writes before closing does not hold the close back.
      socket.resume();
      socket.on('close', () => {
        clearTimeout(timer);
        resolve(Date.now() - started);
      });
    });
  };

  const tlsOpen = async (port: number): Promise<TLSSocket> => {
    const socket = connectTls({ host: '127.0.0.1', port, ca: cp.ca.certPem });
    await new Promise<void>((resolve, reject) => {
      socket.once('secureConnect', resolve);
      socket.once('error', reject);
    });
    return socket;
  };

  it('closes connections that never finish the TLS handshake, the headers or the body', async () => {
    const server = await start([], {
      edge: { handshakeTimeoutMs: 500, headersTimeoutMs: 700, requestTimeoutMs: 1500 },
    });
    const silent = connectTcp({ host: '127.0.0.1', port: server.port });
    const slowHeaders = await tlsOpen(server.port);
    slowHeaders.write('GET /healthz HTTP/1.1\r\nHost: localhost\r\n');
    const slowBody = await tlsOpen(server.port);
    slowBody.write(
      'POST /v1/join HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\nContent-Length: 200\r\n\r\n{',
    );
    const drip = setInterval(() => {
      if (!slowBody.destroyed) slowBody.write(' ');
    }, 100);
    try {
      const [handshake, headers, body] = await Promise.all([
        closesWithin(silent, 5000),
        closesWithin(slowHeaders, 5000),
        closesWithin(slowBody, 6000),
      ]);
      assert.ok(handshake < 3000, `a silent TCP connection closed after ${String(handshake)}ms`);
      assert.ok(headers < 3000, `unfinished headers closed after ${String(headers)}ms`);
      assert.ok(body < 4500, `a dripping body closed after ${String(body)}ms`);
    } finally {
      clearInterval(drip);
    }
  });

  it('caps concurrent connections', async () => {
    const server = await start([], { edge: { maxConnections: 4 } });
    const open = await Promise.all([1, 2, 3, 4].map(() => tlsOpen(server.port)));
    const extra = connectTcp({ host: '127.0.0.1', port: server.port });
    const extraClosed = await closesWithin(extra, 2000);
    assert.ok(extraClosed < 2000, 'the 5th connection is dropped');
    assert.ok(
      open.every((socket) => !socket.destroyed && socket.readyState === 'open'),
      'the first 4 stay',
    );
    for (const socket of open) socket.destroy();
  });

  it('answers anonymous callers without the apiserver error text, and logs it', async () => {
    const nobody = await issueCertificate(cp.ca, { commonName: 'nobody-edge', usage: 'client' });
    const kubeconfig = join(dir, 'nobody.kubeconfig');
    await writeFile(
      kubeconfig,
      renderKubeconfig({
        clusterName: 'c',
        server: cp.url,
        caPem: cp.ca.certPem,
        userName: 'nobody-edge',
        credentials: { clientCertPem: nobody.certPem, clientKeyPem: nobody.keyPem },
      }),
    );
    const flags = files.baseFlags.filter(
      (f, i, all) => f !== files.kubeconfigPath && all[i + 1] !== files.kubeconfigPath,
    );
    const server = await startInProcessJoinServer([
      ...flags,
      '--kubeconfig',
      kubeconfig,
      '--store',
      'kubernetes',
    ]);
    servers.push(server);
    const joined = await callJoinServer(`${server.url}/v1/join`, {
      caPem: cp.ca.certPem,
      token: `abcdef.${'b'.repeat(32)}`,
      body: joinRequestBody('anyone'),
    });
    assert.ok(joined.status >= 500, joined.text);
    const body = parseErrorBody(joined.json());
    assert.equal(body.code, 'UPSTREAM_ERROR');
    assert.doesNotMatch(joined.text, /forbidden|nobody-edge|secrets|kube-system|\/api\//i);
    const ready = await callJoinServer(`${server.url}/readyz`, { caPem: cp.ca.certPem });
    assert.equal(ready.status, 503);
    assert.match(String(ready.headers['retry-after']), /^[1-9]\d*$/);
    assert.match(ready.text, /token store/);
    assert.doesNotMatch(ready.text, /forbidden|nobody-edge|secrets|kube-system|\/api\//i);
    const logged = server.logs.filter((line) => /forbidden/i.test(line) && line.includes('nobody-edge'));
    assert.ok(logged.length >= 2, `the details are in the log: ${server.logs.slice(-5).join('\n')}`);
  });

  it(`accepts admin bearer tokens only for the audience ${JOIN_SERVER_AUDIENCE}`, async () => {
    const server = await start();
    const forApiserver = await callJoinServer(`${server.url}/v1/tokens`, {
      caPem: cp.ca.certPem,
      token: await saToken([]),
    });
    assert.equal(forApiserver.status, 401, forApiserver.text);
    assert.match(parseErrorBody(forApiserver.json()).message, new RegExp(`audience ${JOIN_SERVER_AUDIENCE}`));
    assert.match(parseErrorBody(forApiserver.json()).hint ?? '', /kubectl create token .*--audience/);

    const forUs = await callJoinServer(`${server.url}/v1/tokens`, {
      caPem: cp.ca.certPem,
      token: await saToken([JOIN_SERVER_AUDIENCE]),
    });
    assert.equal(forUs.status, 200, forUs.text);
  });
});
