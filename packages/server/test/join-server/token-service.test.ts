// Minting, listing and revoking join tokens without HTTP, on a real file store. Admins here present
// client certificates (decided without the apiserver); bearer tokens, which need TokenReview and
// SubjectAccessReview, are covered against a real apiserver in test/integration/join-server.test.ts.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import { K8sOnK8sError, parseJoinToken, verifyTokenSecret } from '@k8s-on-k8s/shared';
import { createJoinServerMetrics } from '../../src/join-server/metrics.js';
import { RateLimiter } from '../../src/join-server/rate-limiter.js';
import { createTokenService, type AdminCaller } from '../../src/join-server/token-service.js';
import { FileTokenStore } from '../../src/join-server/token-store/file.js';

const NOW = new Date('2030-01-01T12:00:00Z');
const MASTER: AdminCaller = {
  credentials: {
    certificate: { authorized: true, commonName: 'kubernetes-admin', organizations: ['system:masters'] },
  },
  ip: '192.0.2.1',
};
const NODE: AdminCaller = {
  credentials: {
    certificate: { authorized: true, commonName: 'system:node:w', organizations: ['system:nodes'] },
  },
  ip: '192.0.2.2',
};
const NOBODY: AdminCaller = { credentials: {}, ip: '192.0.2.3' };

// No bearer token reaches these tests: a call to either would be a bug in the test set-up.
const NO_REVIEWS = {
  reviewToken: (): Promise<undefined> => Promise.reject(new Error('unexpected TokenReview')),
  reviewAccess: (): Promise<{ allowed: boolean; reason: string }> =>
    Promise.reject(new Error('unexpected SubjectAccessReview')),
};

describe('token service', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'token-service-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function setUp(name: string) {
    const path = join(dir, `${name}.json`);
    const store = await FileTokenStore.open({ path, now: () => NOW });
    const lines: string[] = [];
    const adminFailuresPerIp = new RateLimiter({ burst: 2, perSecond: 1 / 60 }, () => NOW.getTime());
    const service = createTokenService({
      settings: {
        maxTokenTtlMs: 24 * 3_600_000,
        publicUrl: 'https://join.example.com:8443',
        caCertHash: `sha256:${'b'.repeat(64)}`,
      },
      store,
      kube: NO_REVIEWS,
      adminFailuresPerIp,
      metrics: createJoinServerMetrics(),
      logger: pino(
        new Writable({
          write(chunk: Buffer, _encoding, done) {
            lines.push(chunk.toString('utf8'));
            done();
          },
        }),
      ),
      now: () => NOW,
    });
    return { path, store, service, lines, adminFailuresPerIp };
  }

  it('mints a token shown once, stored only as a salted hash, with the join command', async () => {
    const { path, store, service, lines } = await setUp('create');
    const created = await service.create(MASTER, { ttl: '30m', uses: 2, nodeName: 'worker-1' });
    const { id, secret } = parseJoinToken(created.token);
    assert.equal(created.id, id);
    assert.equal(created.usesLeft, 2);
    assert.equal(created.expiresAt, '2030-01-01T12:30:00Z');
    assert.equal(
      created.joinCommand,
      `K8S_JOIN_TOKEN=${created.token} k8s-join join --server https://join.example.com:8443 --ca-cert-hash sha256:${'b'.repeat(64)}`,
    );
    const record = await store.get(id);
    assert.ok(record !== undefined && verifyTokenSecret(secret, record.secretHash));
    assert.equal(record.nodeName, 'worker-1');
    assert.ok(!(await readFile(path, 'utf8')).includes(secret), 'the store holds no secret');
    assert.ok(!lines.join('').includes(secret), 'the log holds no secret');
    assert.match(lines.join(''), /join token created/);
  });

  it('caps the ttl at the server maximum, naming the flag', async () => {
    const { service } = await setUp('ttl');
    await assert.rejects(service.create(MASTER, { ttl: '48h' }), /at most 1d .*--max-token-ttl.*"48h"/);
  });

  it('refuses labels the joining kubelet may not set (NodeRestriction), storing nothing', async () => {
    const { service, store } = await setUp('labels');
    for (const [key, why] of [
      ['node-role.kubernetes.io/worker', /in the kubernetes\.io\/k8s\.io namespace/],
      ['topology.kubernetes.io/rack', /in the kubernetes\.io\/k8s\.io namespace/],
      ['node-restriction.kubernetes.io/pool', /kubelets may never set/],
    ] as const) {
      await assert.rejects(service.create(MASTER, { labels: { [key]: 'x' } }), (error: unknown) => {
        assert.ok(error instanceof K8sOnK8sError);
        assert.equal(error.code, 'INVALID_REQUEST');
        assert.ok(error.message.includes(`label "${key}"`), error.message);
        assert.match(error.message, why);
        return true;
      });
    }
    assert.deepEqual(await store.list(), []);
    const allowed = await service.create(MASTER, {
      labels: { 'topology.kubernetes.io/zone': 'a', 'node.kubernetes.io/pool': 'gpu', tier: 'x' },
    });
    assert.equal((await store.list()).length, 1, allowed.id);
  });

  it('lists in creation order and revokes, with TOKEN_NOT_FOUND for an unknown id', async () => {
    const { service } = await setUp('list');
    const a = await service.create(MASTER, {});
    const b = await service.create(MASTER, { description: 'second' });
    const list = await service.list(MASTER);
    assert.deepEqual(
      list.items.map((t) => t.id),
      [a.id, b.id].sort(),
    );
    assert.equal((await service.revoke(MASTER, a.id)).revoked, true);
    await assert.rejects(
      service.revoke(MASTER, 'zzzzzz'),
      (error: unknown) => error instanceof K8sOnK8sError && error.code === 'TOKEN_NOT_FOUND',
    );
    await assert.rejects(service.revoke(MASTER, '../etc'), /token id of 6 characters/);
  });

  it('refuses a certificate outside system:masters and an anonymous caller; only the latter is charged', async () => {
    const { service, adminFailuresPerIp, lines } = await setUp('refuse');
    await assert.rejects(
      service.create(NODE, {}),
      (error: unknown) => error instanceof K8sOnK8sError && error.code === 'FORBIDDEN',
    );
    assert.equal(adminFailuresPerIp.wait(NODE.ip), 0);
    for (let i = 0; i < 2; i++) {
      await assert.rejects(
        service.list(NOBODY),
        (error: unknown) => error instanceof K8sOnK8sError && error.code === 'UNAUTHENTICATED',
      );
    }
    assert.ok(adminFailuresPerIp.wait(NOBODY.ip) > 0, 'two failed logins use up the burst of 2');
    assert.equal((lines.join('').match(/admin request refused/g) ?? []).length, 3);
  });
});
