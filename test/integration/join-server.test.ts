import assert from 'node:assert/strict';
import { readFile, stat, mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { connect } from 'node:tls';
import { after, before, describe, it } from 'node:test';
import { AuthenticationV1Api, CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { Agent } from 'undici';
import {
  caCertHash,
  createCertificateAuthority,
  issueCertificate,
  parseCreatedToken,
  parseErrorBody,
  parseJoinBundle,
  type CertifiedKeyPair,
  type CreatedToken,
  type JoinBundle,
  type TokenInfo,
} from '@k8s-on-k8s/shared';
import {
  JOIN_SERVER_AUDIENCE,
  JOIN_TOKEN_NAMESPACE,
  JOIN_TOKEN_SECRET_TYPE,
  joinTokenSecretName,
} from '@k8s-on-k8s/server';
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

// The join server against a real kube-apiserver: tokens minted through the admin API, joins that
// mint real bootstrap tokens, both token stores. The server runs with a least-privilege client
// certificate (CN k8s-join-server, no groups) bound only to renderJoinServerRbac()'s objects.

async function whoAmI(kubeconfig: string): Promise<{ username: string; groups: string[] }> {
  const kc = new KubeConfig();
  kc.loadFromString(kubeconfig);
  const review = await kc.makeApiClient(AuthenticationV1Api).createSelfSubjectReview({
    body: { apiVersion: 'authentication.k8s.io/v1', kind: 'SelfSubjectReview' },
  });
  return { username: review.status?.userInfo?.username ?? '', groups: review.status?.userInfo?.groups ?? [] };
}

/** The certificate chain a TLS server presents, leaf first, as PEM. */
async function presentedChain(url: string, caPem: string): Promise<string[]> {
  const { hostname, port } = new URL(url);
  return new Promise((resolve, reject) => {
    const socket = connect({ host: hostname, port: Number(port), ca: caPem }, () => {
      const chain: string[] = [];
      let cert = socket.getPeerX509Certificate();
      while (cert !== undefined && chain.length < 5) {
        chain.push(cert.toString());
        const issuer = cert.issuerCertificate;
        if (issuer === undefined || issuer.fingerprint256 === cert.fingerprint256) break;
        cert = issuer;
      }
      socket.end();
      resolve(chain);
    });
    socket.on('error', reject);
  });
}

for (const storeKind of ['file', 'kubernetes'] as const) {
  describe(`join server (${storeKind} store) against a real apiserver`, () => {
    let cp: LocalKubeCluster;
    let dir: string;
    let files: JoinServerFiles;
    let server: InProcessJoinServer;
    let masters: CertifiedKeyPair;
    let clockOffsetMs = 0;
    const seenSecrets: string[] = [];
    let storeFlag: string;

    const admin = (
      path: string,
      method: 'GET' | 'POST' | 'DELETE' = 'GET',
      body?: unknown,
    ): ReturnType<typeof callJoinServer> =>
      callJoinServer(`${server.url}${path}`, { method, caPem: cp.ca.certPem, clientCert: masters, body });

    const mint = async (body: Record<string, unknown> = {}): Promise<CreatedToken> => {
      const answer = await admin('/v1/tokens', 'POST', body);
      assert.equal(answer.status, 201, answer.text);
      const created = parseCreatedToken(answer.json());
      seenSecrets.push(created.token.split('.')[1] ?? '');
      return created;
    };

    const joinAs = async (token: string, nodeName: string, url = server.url) => {
      const answer = await callJoinServer(`${url}/v1/join`, {
        caPem: cp.ca.certPem,
        token,
        body: joinRequestBody(nodeName),
      });
      if (answer.status === 200) {
        const bundle = parseJoinBundle(answer.json());
        const bootstrapToken = /token: (\S+)/.exec(bundle.bootstrapKubeconfig)?.[1] ?? '';
        seenSecrets.push(bootstrapToken.split('.')[1] ?? '');
      }
      return answer;
    };

    const auditReasons = (tokenId: string): string[] =>
      server.logs
        .map((line) => JSON.parse(line) as { tokenId?: string; reason?: string; msg?: string })
        .filter((entry) => entry.tokenId === tokenId && entry.msg === 'join refused')
        .map((entry) => entry.reason ?? '');

    before(async () => {
      cp = await startLocalKubeCluster({ name: `join-${storeKind}` });
      dir = await mkdtemp(join(tmpdir(), `join-server-${storeKind}-`));
      await applyJoinServerRbac(cp);
      files = await prepareJoinServerFiles(cp, dir);
      masters = await issueCertificate(cp.ca, {
        commonName: 'test-admin',
        organizations: ['system:masters'],
        usage: 'client',
      });
      storeFlag = storeKind === 'file' ? `file:${join(dir, 'store', 'tokens.json')}` : 'kubernetes';
      server = await startInProcessJoinServer(
        [...files.baseFlags, '--store', storeFlag, '--api-endpoint', cp.url, '--rate-limit-per-ip', '0'],
        { now: () => new Date(Date.now() + clockOffsetMs) },
      );
    });

    after(async () => {
      await server.shutdown(5000);
      await cp.stop();
      await rm(dir, { recursive: true, force: true });
    });

    it('mints a token and exchanges it for a bundle whose bootstrap kubeconfig authenticates as system:bootstrap:<id>', async () => {
      const created = await mint({ ttl: '30m', description: 'first worker', labels: { pool: 'blue' } });
      assert.equal(created.usesLeft, 1);
      assert.match(created.joinCommand, new RegExp(`--ca-cert-hash ${caCertHash(cp.ca.certPem)}`));
      assert.match(
        created.joinCommand,
        new RegExp(`^K8S_JOIN_TOKEN=${created.token} k8s-join join --server https://127\\.0\\.0\\.1:\\d+ `),
      );

      const answer = await joinAs(created.token, 'worker-1.example.com');
      assert.equal(answer.status, 200, answer.text);
      const bundle: JoinBundle = parseJoinBundle(answer.json());
      assert.equal(bundle.nodeName, 'worker-1.example.com');
      assert.equal(bundle.caCert.trim(), cp.ca.certPem.trim());
      assert.equal(bundle.apiServer.endpoint, cp.url);
      assert.deepEqual(bundle.apiServer.upstreams, [new URL(cp.url).host]);
      assert.deepEqual(bundle.nodeLabels, { pool: 'blue' });
      assert.equal(bundle.cluster.dnsIP, '10.3.0.10');
      assert.equal(bundle.cluster.domain, 'cluster.local');
      assert.equal(bundle.cluster.kubernetesVersion, 'v1.37.2');
      assert.equal(bundle.kubeletConfig.failCgroupV1, false);
      assert.equal(bundle.kubeletConfig.cgroupDriver, 'systemd');
      const expiresIn = Date.parse(bundle.bootstrapTokenExpiresAt) - Date.now();
      assert.ok(
        expiresIn > 14 * 60_000 && expiresIn <= 15 * 60_000,
        `bootstrap token expires in ${expiresIn}ms`,
      );

      const me = await whoAmI(bundle.bootstrapKubeconfig);
      assert.match(me.username, /^system:bootstrap:[a-z0-9]{6}$/);
      assert.ok(me.groups.includes('system:bootstrappers:k8s-on-k8s'), me.groups.join(','));
      // The node the token was minted for, in a group of its own ('.' written ':').
      assert.ok(
        me.groups.includes('system:bootstrappers:k8s-on-k8s:node:worker-1:example:com'),
        me.groups.join(','),
      );
    });

    it('presents a chain that includes the CA, whose hash is the one in the join command', async () => {
      const chain = await presentedChain(server.url, cp.ca.certPem);
      assert.equal(chain.length, 2);
      assert.equal(caCertHash(chain[1] ?? ''), caCertHash(cp.ca.certPem));
    });

    it('refuses a single-use token the second time, with the same 401 as an unknown id or a wrong secret', async () => {
      const created = await mint();
      assert.equal((await joinAs(created.token, 'reuse-1')).status, 200);
      const reuse = await joinAs(created.token, 'reuse-2');
      const [id, secret = ''] = created.token.split('.');
      const wrongSecret = await joinAs(`${id}.${'0'.repeat(secret.length)}`, 'reuse-3');
      const unknownId = await joinAs(`zzzzzz.${secret}`, 'reuse-4');
      for (const answer of [reuse, wrongSecret, unknownId]) {
        assert.equal(answer.status, 401);
        assert.equal(parseErrorBody(answer.json()).code, 'TOKEN_REJECTED');
      }
      assert.equal(reuse.text, wrongSecret.text);
      assert.equal(reuse.text, unknownId.text);
      assert.doesNotMatch(reuse.text, /exhausted|used up|expired|revoked/i);
      assert.deepEqual(auditReasons(created.id), ['exhausted', 'wrong-secret']);
      assert.deepEqual(auditReasons('zzzzzz'), ['unknown-token']);
    });

    it('refuses an expired token and says so only in the audit log', async () => {
      const created = await mint({ ttl: '1m', uses: 0 });
      clockOffsetMs = 2 * 60_000;
      try {
        const answer = await joinAs(created.token, 'late-worker');
        assert.equal(answer.status, 401);
        assert.doesNotMatch(answer.text, /expired/i);
      } finally {
        clockOffsetMs = 0;
      }
      assert.deepEqual(auditReasons(created.id), ['expired']);
      // The clock was the only reason: the same token works now.
      assert.equal((await joinAs(created.token, 'on-time-worker')).status, 200);
    });

    it('revokes a token: joins are refused, the list shows it revoked and never a secret', async () => {
      const created = await mint({ uses: 0, nodeName: 'revoked-node' });
      const revoke = await admin(`/v1/tokens/${created.id}`, 'DELETE');
      assert.equal(revoke.status, 200, revoke.text);
      assert.equal((revoke.json() as TokenInfo).revoked, true);
      const answer = await joinAs(created.token, 'revoked-node');
      assert.equal(answer.status, 401);
      assert.deepEqual(auditReasons(created.id), ['revoked']);

      const list = await admin('/v1/tokens');
      assert.equal(list.status, 200);
      const items = (list.json() as { items: TokenInfo[] }).items;
      assert.equal(items.find((t) => t.id === created.id)?.revoked, true);
      assert.equal(items.find((t) => t.id === created.id)?.nodeName, 'revoked-node');
      for (const secret of seenSecrets)
        assert.ok(!list.text.includes(secret), 'GET /v1/tokens leaked a secret');
      assert.doesNotMatch(list.text, /secretHash|sha256\$/);

      const missing = await admin('/v1/tokens/zzzzzz', 'DELETE');
      assert.equal(missing.status, 404);
      assert.equal(parseErrorBody(missing.json()).code, 'TOKEN_NOT_FOUND');
    });

    it('gives a single-use token to exactly one of 50 concurrent agents, and a 3-use token to exactly 3', async () => {
      for (const uses of [1, 3]) {
        const created = await mint({ uses });
        const agent = new Agent({ connect: { ca: cp.ca.certPem }, connections: 50 });
        try {
          const answers = await Promise.all(
            Array.from({ length: 50 }, (_, i) =>
              callJoinServer(`${server.url}/v1/join`, {
                caPem: cp.ca.certPem,
                token: created.token,
                body: joinRequestBody(`racer-${uses}-${i}`),
                agent,
              }),
            ),
          );
          const statuses = answers.map((a) => a.status);
          assert.equal(statuses.filter((s) => s === 200).length, uses, statuses.join(','));
          assert.equal(statuses.filter((s) => s === 401).length, 50 - uses, statuses.join(','));
        } finally {
          await agent.close();
        }
        // The losers' bootstrap tokens were deleted again: one Secret per successful join.
        const secrets = await cp
          .kubeConfig()
          .makeApiClient(CoreV1Api)
          .listNamespacedSecret({
            namespace: 'kube-system',
            labelSelector: `k8s-on-k8s.io/join-token-id=${created.id}`,
          });
        assert.equal(secrets.items.length, uses);
        const list = await admin('/v1/tokens');
        assert.equal(
          (list.json() as { items: TokenInfo[] }).items.find((t) => t.id === created.id)?.usesLeft,
          0,
        );
      }
    });

    it('rejects bad bodies with 400/413 naming the problem, without spending a use', async () => {
      const created = await mint({ uses: 2 });
      const badName = await joinAs(created.token, 'Worker_1');
      assert.equal(badName.status, 400);
      const error = parseErrorBody(badName.json());
      assert.equal(error.code, 'INVALID_REQUEST');
      assert.match(error.message, /nodeName/);
      assert.match(error.message, /DNS-1123 subdomain/);
      assert.match(error.message, /"Worker_1"/);

      const huge = await callJoinServer(`${server.url}/v1/join`, {
        caPem: cp.ca.certPem,
        token: created.token,
        body: { ...joinRequestBody('big'), kernelVersion: 'x'.repeat(8192) },
      });
      assert.equal(huge.status, 413);
      assert.equal(parseErrorBody(huge.json()).code, 'BODY_TOO_LARGE');

      const notJson = await callJoinServer(`${server.url}/v1/join`, {
        caPem: cp.ca.certPem,
        token: created.token,
        rawBody: '{nope',
      });
      assert.equal(notJson.status, 400);

      const list = await admin('/v1/tokens');
      assert.equal(
        (list.json() as { items: TokenInfo[] }).items.find((t) => t.id === created.id)?.usesLeft,
        2,
      );
      assert.equal((await joinAs(created.token, 'good-1')).status, 200);
      assert.equal((await joinAs(created.token, 'good-2')).status, 200);
    });

    it('refuses a token bound to another node name without spending it', async () => {
      const created = await mint({ nodeName: 'only-this-node' });
      const other = await joinAs(created.token, 'some-other-node');
      assert.equal(other.status, 403);
      assert.equal((await joinAs(created.token, 'only-this-node')).status, 200);
    });

    it('caps the ttl at --max-token-ttl and names the field', async () => {
      const answer = await admin('/v1/tokens', 'POST', { ttl: '48h' });
      assert.equal(answer.status, 400);
      assert.match(parseErrorBody(answer.json()).message, /ttl.*at most 1d.*"48h"/);
    });

    it('serves /healthz, /readyz and Prometheus /metrics with joins by result', async () => {
      assert.equal((await callJoinServer(`${server.url}/healthz`, { caPem: cp.ca.certPem })).status, 200);
      const ready = await callJoinServer(`${server.url}/readyz`, { caPem: cp.ca.certPem });
      assert.equal(ready.status, 200, ready.text);
      const metrics = await callJoinServer(`${server.url}/metrics`, { caPem: cp.ca.certPem });
      assert.equal(metrics.status, 200);
      const value = (pattern: RegExp): number => Number(pattern.exec(metrics.text)?.[1] ?? 'NaN');
      assert.ok(value(/k8s_join_server_joins_total\{result="success"\} (\d+)/) >= 5);
      assert.ok(value(/k8s_join_server_joins_total\{result="exhausted"\} (\d+)/) >= 1);
      assert.ok(value(/k8s_join_server_joins_total\{result="revoked"\} (\d+)/) >= 1);
      assert.ok(value(/k8s_join_server_tokens_minted_total (\d+)/) >= 5);
      assert.ok(value(/k8s_join_server_tokens_revoked_total (\d+)/) >= 1);
      assert.match(metrics.text, /k8s_join_server_request_duration_seconds_bucket\{.*route="\/v1\/join"/);
    });

    it('keeps secrets out of the logs and the store', async () => {
      assert.ok(seenSecrets.length > 5);
      const logText = server.logs.join('\n');
      assert.match(logText, /"tokenId":"[a-z0-9]{6}"/);
      for (const secret of seenSecrets) {
        assert.equal(secret.length >= 16, true);
        assert.ok(!logText.includes(secret), 'a token secret reached the log');
      }
      if (storeKind === 'file') {
        const path = join(dir, 'store', 'tokens.json');
        const text = await readFile(path, 'utf8');
        for (const secret of seenSecrets)
          assert.ok(!text.includes(secret), 'a token secret reached the store file');
        assert.equal((await stat(path)).mode & 0o777, 0o600);
      } else {
        const core = cp.kubeConfig().makeApiClient(CoreV1Api);
        const stored = await core.listNamespacedSecret({
          namespace: JOIN_TOKEN_NAMESPACE,
          labelSelector: 'k8s-on-k8s.io/join-token',
        });
        assert.ok(stored.items.length > 5);
        for (const secret of stored.items) {
          assert.equal(secret.type, JOIN_TOKEN_SECRET_TYPE);
          assert.match(secret.metadata?.name ?? '', /^k8s-join-token-[a-z0-9]{6}$/);
          const text = Buffer.from(secret.data?.['record.json'] ?? '', 'base64').toString();
          for (const s of seenSecrets)
            assert.ok(!text.includes(s), `${joinTokenSecretName('')}… holds a secret`);
        }
      }
    });

    if (storeKind === 'kubernetes') {
      it('two replicas sharing the store never over-spend a token (exactly 5 of 60 concurrent joins)', async () => {
        const replica = await startInProcessJoinServer([
          ...files.baseFlags,
          '--store',
          'kubernetes',
          '--api-endpoint',
          cp.url,
          '--rate-limit-per-ip',
          '0',
        ]);
        try {
          const created = await mint({ uses: 5 });
          const answers = await Promise.all(
            Array.from({ length: 60 }, (_, i) =>
              joinAs(created.token, `replica-racer-${i}`, i % 2 === 0 ? server.url : replica.url),
            ),
          );
          assert.equal(
            answers.filter((a) => a.status === 200).length,
            5,
            answers.map((a) => a.status).join(','),
          );
        } finally {
          await replica.shutdown(5000);
        }
      });
    }

    if (storeKind === 'file') {
      it('does not spend a use when minting the bootstrap token fails at the apiserver', async () => {
        // Same store file, but an identity the apiserver knows and RBAC grants nothing.
        const nobody = await issueCertificate(cp.ca, { commonName: 'nobody', usage: 'client' });
        const { renderKubeconfig } = await import('@k8s-on-k8s/shared');
        const { writeFile } = await import('node:fs/promises');
        const kubeconfig = join(dir, 'nobody.kubeconfig');
        await writeFile(
          kubeconfig,
          renderKubeconfig({
            clusterName: 'c',
            server: cp.url,
            caPem: cp.ca.certPem,
            userName: 'nobody',
            credentials: { clientCertPem: nobody.certPem, clientKeyPem: nobody.keyPem },
          }),
        );
        await server.shutdown(5000);
        const flags = [
          ...files.baseFlags.filter(
            (f, i, all) => f !== files.kubeconfigPath && all[i + 1] !== files.kubeconfigPath,
          ),
          '--kubeconfig',
          kubeconfig,
        ];
        const broken = await startInProcessJoinServer([
          ...flags,
          '--store',
          storeFlag,
          '--api-endpoint',
          cp.url,
        ]);
        let created: CreatedToken;
        try {
          const answer = await callJoinServer(`${broken.url}/v1/tokens`, {
            method: 'POST',
            caPem: cp.ca.certPem,
            clientCert: masters,
            body: {},
          });
          assert.equal(answer.status, 201, answer.text);
          created = parseCreatedToken(answer.json());
          const failed = await callJoinServer(`${broken.url}/v1/join`, {
            caPem: cp.ca.certPem,
            token: created.token,
            body: joinRequestBody('unlucky'),
          });
          assert.equal(failed.status, 503, failed.text);
          assert.equal(parseErrorBody(failed.json()).code, 'UPSTREAM_ERROR');
          assert.match(String(failed.headers['retry-after']), /^[1-9]\d*$/, 'the agent retries after it');
          const readyz = await callJoinServer(`${broken.url}/readyz`, { caPem: cp.ca.certPem });
          assert.equal(readyz.status, 200, 'the apiserver answers, even if it refuses this identity');
        } finally {
          await broken.shutdown(5000);
        }
        server = await startInProcessJoinServer(
          [...files.baseFlags, '--store', storeFlag, '--api-endpoint', cp.url, '--rate-limit-per-ip', '0'],
          { now: () => new Date(Date.now() + clockOffsetMs) },
        );
        assert.equal((await joinAs(created.token, 'lucky')).status, 200);
      });
    }
  });
}

describe('join server admin authentication and rate limits', () => {
  let cp: LocalKubeCluster;
  let dir: string;
  let server: InProcessJoinServer;

  before(async () => {
    cp = await startLocalKubeCluster({ name: 'join-auth' });
    dir = await mkdtemp(join(tmpdir(), 'join-server-auth-'));
    await applyJoinServerRbac(cp);
    const files = await prepareJoinServerFiles(cp, dir);
    server = await startInProcessJoinServer([
      ...files.baseFlags,
      '--store',
      `file:${join(dir, 'tokens.json')}`,
    ]);
  });
  after(async () => {
    await server.shutdown(5000);
    await cp.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const tokensAs = (options: { token?: string; clientCert?: CertifiedKeyPair }) =>
    callJoinServer(`${server.url}/v1/tokens`, { caPem: cp.ca.certPem, ...options });

  it('lets in only system:masters certificates and bearer tokens allowed on jointokens.k8s-on-k8s.io, saying why in the 403', async () => {
    const none = await tokensAs({});
    assert.equal(none.status, 401);
    assert.equal(parseErrorBody(none.json()).code, 'UNAUTHENTICATED');

    const developer = await issueCertificate(cp.ca, {
      commonName: 'dev',
      organizations: ['developers'],
      usage: 'client',
    });
    const notMasters = await tokensAs({ clientCert: developer });
    assert.equal(notMasters.status, 403);
    assert.match(parseErrorBody(notMasters.json()).message, /"dev".*not in system:masters/);

    const otherCa = await createCertificateAuthority('someone-else');
    const foreign = await issueCertificate(otherCa, {
      commonName: 'mallory',
      organizations: ['system:masters'],
      usage: 'client',
    });
    const foreignAnswer = await tokensAs({ clientCert: foreign });
    assert.equal(foreignAnswer.status, 401);
    assert.match(parseErrorBody(foreignAnswer.json()).message, /not signed by the hosted cluster's CA/);

    const bogus = await tokensAs({ token: 'not-a-real-token' });
    assert.equal(bogus.status, 401);
    assert.match(parseErrorBody(bogus.json()).message, /TokenReview/);

    // A real service account token: authenticated, but not authorized until bound.
    const core = cp.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespacedServiceAccount({
      namespace: 'default',
      body: { metadata: { name: 'token-admin' } },
    });
    const request = await core.createNamespacedServiceAccountToken({
      name: 'token-admin',
      namespace: 'default',
      // Minted for the join server (kubectl create token --audience k8s-join-server).
      body: { spec: { audiences: [JOIN_SERVER_AUDIENCE], expirationSeconds: 3600 } },
    });
    const saToken = request.status?.token ?? '';
    const denied = await tokensAs({ token: saToken });
    assert.equal(denied.status, 403);
    const deniedMessage = parseErrorBody(denied.json()).message;
    assert.match(
      deniedMessage,
      /system:serviceaccount:default:token-admin.*may not list jointokens\.k8s-on-k8s\.io.*SubjectAccessReview/,
    );

    const { RbacAuthorizationV1Api } = await import('@kubernetes/client-node');
    await cp
      .kubeConfig()
      .makeApiClient(RbacAuthorizationV1Api)
      .createClusterRoleBinding({
        body: {
          metadata: { name: 'token-admin' },
          roleRef: {
            apiGroup: 'rbac.authorization.k8s.io',
            kind: 'ClusterRole',
            name: 'k8s-on-k8s:join-token-admin',
          },
          subjects: [{ kind: 'ServiceAccount', name: 'token-admin', namespace: 'default' }],
        },
      });
    const allowed = await tokensAs({ token: saToken });
    assert.equal(allowed.status, 200, allowed.text);
    const created = await callJoinServer(`${server.url}/v1/tokens`, {
      caPem: cp.ca.certPem,
      token: saToken,
      body: { uses: 1 },
    });
    assert.equal(created.status, 201, created.text);
    assert.ok(
      server.logs.some(
        (line) =>
          line.includes('"user":"system:serviceaccount:default:token-admin"') &&
          line.includes('join token created'),
      ),
    );
  });

  const startExtra = (name: string, flags: readonly string[] = []): Promise<InProcessJoinServer> =>
    startInProcessJoinServer([
      ...[
        '--tls-cert',
        join(dir, 'tls.crt'),
        '--tls-key',
        join(dir, 'tls.key'),
        '--ca-cert',
        join(dir, 'ca.crt'),
      ],
      ...['--kubeconfig', join(dir, 'join-server.kubeconfig'), '--listen', '127.0.0.1:0'],
      ...['--store', `file:${join(dir, `${name}.json`)}`, ...flags],
    ]);

  it('answers 429 with Retry-After once an address has had too many rejected tokens, before checking more', async () => {
    // A server of its own: the failures charged by the test above count against this address too.
    const fresh = await startExtra('guessing');
    const statuses: number[] = [];
    let retryAfter: string | undefined;
    try {
      for (let i = 0; i < 12; i++) {
        const answer = await callJoinServer(`${fresh.url}/v1/join`, {
          caPem: cp.ca.certPem,
          token: `guess${String(i % 10)}.${'a'.repeat(32)}`,
          body: joinRequestBody('guesser'),
        });
        statuses.push(answer.status);
        if (answer.status === 429) retryAfter = String(answer.headers['retry-after']);
      }
    } finally {
      await fresh.shutdown(5000);
    }
    assert.deepEqual(statuses, [...Array<number>(10).fill(401), 429, 429]);
    assert.match(retryAfter ?? '', /^\d+$/);
    assert.ok(Number(retryAfter) >= 1);
  });

  it('limits requests per client IP (--rate-limit-per-ip) with 429 and Retry-After, even for admins', async () => {
    const limited = await startExtra('limited', ['--rate-limit-per-ip', '1']);
    const masters = await issueCertificate(cp.ca, {
      commonName: 'root',
      organizations: ['system:masters'],
      usage: 'client',
    });
    try {
      const answers = [];
      for (let i = 0; i < 11; i++) {
        answers.push(
          await callJoinServer(`${limited.url}/v1/tokens`, { caPem: cp.ca.certPem, clientCert: masters }),
        );
      }
      // Burst of 10 (2 × 1/s, at least 10), all of them authorized: the 11th is over the limit.
      assert.deepEqual(
        answers.map((a) => a.status),
        [...Array<number>(10).fill(200), 429],
      );
      assert.match(String(answers[10]?.headers['retry-after']), /^[1-9]\d*$/);
    } finally {
      await limited.shutdown(5000);
    }
  });

  it('reports not ready when the hosted apiserver does not answer', async () => {
    const { writeFile } = await import('node:fs/promises');
    const { freePort } = await import('../harness/index.js');
    const deadKubeconfig = join(dir, 'dead.kubeconfig');
    const text = await readFile(join(dir, 'join-server.kubeconfig'), 'utf8');
    await writeFile(deadKubeconfig, text.replace(new URL(cp.url).host, `127.0.0.1:${await freePort()}`));
    const dead = await startInProcessJoinServer([
      '--tls-cert',
      join(dir, 'tls.crt'),
      '--tls-key',
      join(dir, 'tls.key'),
      '--ca-cert',
      join(dir, 'ca.crt'),
      '--kubeconfig',
      deadKubeconfig,
      '--listen',
      '127.0.0.1:0',
      '--store',
      `file:${join(dir, 'dead.json')}`,
      '--upstream',
      'api.example:6443',
    ]);
    try {
      const ready = await callJoinServer(`${dead.url}/readyz`, { caPem: cp.ca.certPem });
      assert.equal(ready.status, 503);
      assert.match(String(ready.headers['retry-after']), /^[1-9]\d*$/);
      assert.match(ready.text, /hosted apiserver/);
      assert.equal((await callJoinServer(`${dead.url}/healthz`, { caPem: cp.ca.certPem })).status, 200);
    } finally {
      await dead.shutdown(5000);
    }
  });
});
