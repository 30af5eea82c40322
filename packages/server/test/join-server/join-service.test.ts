// The join protocol without HTTP: a real file store on disk, a recording stand-in for the hosted
// apiserver's Secret calls (the HTTP tests in test/integration run the same protocol against a
// real apiserver), and a logger whose lines the tests read.
import assert from 'node:assert/strict';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { Writable } from 'node:stream';
import { after, before, describe, it } from 'node:test';
import pino from 'pino';
import {
  JoinError,
  K8sOnK8sError,
  generateJoinToken,
  hashTokenSecret,
  parseJoinBundle,
  type JoinRequest,
} from '@k8s-on-k8s/shared';
import { BOOTSTRAPPERS_GROUP, JOIN_TOKEN_ID_LABEL } from '../../src/contract.js';
import { KubernetesApiError, type SecretObject } from '../../src/kube/api.js';
import {
  createJoinService,
  verifyJoinToken,
  type JoinServiceDeps,
} from '../../src/join-server/join-service.js';
import { createJoinServerMetrics } from '../../src/join-server/metrics.js';
import { RateLimiter, RateLimitError } from '../../src/join-server/rate-limiter.js';
import type { JoinServerSettings } from '../../src/join-server/settings.js';
import { FileTokenStore } from '../../src/join-server/token-store/file.js';
import type { JoinTokenRecord, JoinTokenStore } from '../../src/join-server/token-store/store.js';

const NOW = new Date('2030-01-01T12:00:00Z');
const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const SETTINGS: JoinServerSettings = {
  cluster: {
    apiEndpoint: 'https://10.199.199.199:443',
    upstreams: ['api.example.com:30443'],
    clusterDns: '10.3.0.10',
    clusterDomain: 'cluster.local',
    kubernetesVersion: 'v1.37.2',
  },
  caPem: CA,
  caCertHash: `sha256:${'a'.repeat(64)}`,
  publicUrl: 'https://join.example.com:8443',
  bootstrapTokenTtlMs: 15 * 60_000,
  maxTokenTtlMs: 24 * 3_600_000,
  rateLimits: {
    perIp: { burst: 1000, perSecond: 1000 },
    failuresPerIp: { burst: 10, perSecond: 1 / 6 },
    failuresPerIpAndToken: { burst: 5, perSecond: 1 / 60 },
    adminFailuresPerIp: { burst: 10, perSecond: 1 / 6 },
    healthPerIp: { burst: 50, perSecond: 10 },
  },
};

/** Stands in for the hosted apiserver's Secret calls; records them, fails on request. */
class RecordingSecrets {
  readonly created: SecretObject[] = [];
  readonly deleted: string[] = [];
  failCreate: Error | undefined;
  collisions = 0;
  readonly nodes = new Set<string>();

  createSecret(namespace: string, secret: SecretObject): Promise<SecretObject> {
    assert.equal(namespace, 'kube-system');
    if (this.failCreate !== undefined) return Promise.reject(this.failCreate);
    if (this.collisions > 0) {
      this.collisions--;
      return Promise.reject(new KubernetesApiError(409, 'AlreadyExists', 'exists'));
    }
    this.created.push(secret);
    return Promise.resolve(secret);
  }

  deleteSecret(namespace: string, name: string): Promise<boolean> {
    assert.equal(namespace, 'kube-system');
    this.deleted.push(name);
    return Promise.resolve(true);
  }

  nodeExists(name: string): Promise<boolean> {
    return Promise.resolve(this.nodes.has(name));
  }
}

function request(nodeName: string): JoinRequest {
  return { apiVersion: 'join.k8s-on-k8s.io/v1', kind: 'JoinRequest', nodeName, os: 'linux', arch: 'amd64' };
}

function tokenRecord(secret: string, id: string, extra: Partial<JoinTokenRecord> = {}): JoinTokenRecord {
  return {
    id,
    secretHash: hashTokenSecret(secret),
    createdAt: '2030-01-01T11:00:00Z',
    expiresAt: '2030-01-01T13:00:00Z',
    usesTotal: 1,
    usesCount: 0,
    revoked: false,
    ...extra,
  };
}

describe('join service', () => {
  let dir: string;
  let logLines: string[];

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'join-service-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  async function setUp(name: string, overrides: Partial<JoinServiceDeps> = {}) {
    const store = await FileTokenStore.open({ path: join(dir, `${name}.json`), now: () => NOW });
    const kube = new RecordingSecrets();
    logLines = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        logLines.push(chunk.toString('utf8'));
        done();
      },
    });
    const metrics = createJoinServerMetrics();
    const service = createJoinService({
      settings: SETTINGS,
      store,
      kube,
      nodes: kube,
      limits: {
        failuresPerIp: new RateLimiter(SETTINGS.rateLimits.failuresPerIp, () => NOW.getTime()),
        failuresPerIpAndToken: new RateLimiter(SETTINGS.rateLimits.failuresPerIpAndToken, () =>
          NOW.getTime(),
        ),
      },
      metrics,
      logger: pino({ level: 'debug' }, sink),
      now: () => NOW,
      ...overrides,
    });
    return { store, kube, service, metrics };
  }

  async function mint(store: JoinTokenStore, extra: Partial<JoinTokenRecord> = {}) {
    const token = generateJoinToken();
    await store.create(tokenRecord(token.secret, token.id, extra));
    return token;
  }

  it('exchanges a token for a bundle with a per-node bootstrap token of the bootstrappers group and its node group', async () => {
    const { store, kube, service } = await setUp('success');
    const token = await mint(store);
    const bundle = parseJoinBundle(
      await service.join({
        presentedToken: token.token,
        body: request('worker-1.example.com'),
        ip: '192.0.2.1',
      }),
    );
    assert.equal(bundle.nodeName, 'worker-1.example.com');
    const [secret] = kube.created;
    assert.ok(secret);
    assert.equal(secret.metadata.labels?.[JOIN_TOKEN_ID_LABEL], token.id);
    const data = secret.stringData ?? {};
    assert.equal(
      data['auth-extra-groups'],
      `${BOOTSTRAPPERS_GROUP},${BOOTSTRAPPERS_GROUP}:node:worker-1:example:com`,
    );
    assert.match(data.description ?? '', /node worker-1\.example\.com via join token/);
    assert.ok(bundle.bootstrapKubeconfig.includes(`${data['token-id'] ?? '?'}.`));
    assert.equal((await store.get(token.id))?.usesCount, 1);
    const log = logLines.join('');
    assert.match(log, /join accepted/);
    assert.ok(!log.includes(token.secret), 'the join token secret is never logged');
  });

  it('spends a single-use token exactly once among 20 concurrent joins and deletes the losers’ bootstrap tokens', async () => {
    const { store, kube, service } = await setUp('race');
    const token = await mint(store);
    const results = await Promise.allSettled(
      Array.from({ length: 20 }, (_, i) =>
        service.join({ presentedToken: token.token, body: request(`worker-${i}`), ip: '192.0.2.1' }),
      ),
    );
    assert.equal(results.filter((r) => r.status === 'fulfilled').length, 1);
    for (const r of results) {
      if (r.status === 'rejected') assert.equal((r.reason as JoinError).code, 'TOKEN_REJECTED');
    }
    // Compensation: every minted Secret but the winner's is deleted again.
    assert.equal(kube.created.length, 20);
    assert.equal(kube.deleted.length, 19);
    const kept = kube.created.map((s) => s.metadata.name).filter((n) => !kube.deleted.includes(n));
    assert.equal(kept.length, 1);
  });

  it('leaves the token unspent when the hosted apiserver refuses the bootstrap token', async () => {
    const { store, kube, service } = await setUp('mint-fails');
    const token = await mint(store);
    kube.failCreate = new KubernetesApiError(500, 'InternalError', 'etcd is down');
    await assert.rejects(
      service.join({ presentedToken: token.token, body: request('worker-1'), ip: '192.0.2.1' }),
      (error: unknown) => error instanceof JoinError && error.code === 'UPSTREAM_ERROR',
    );
    assert.equal((await store.get(token.id))?.usesCount, 0);
    kube.failCreate = undefined;
    await service.join({ presentedToken: token.token, body: request('worker-1'), ip: '192.0.2.1' });
  });

  it('refuses a node name whose Node exists, deleting the bootstrap token minted meanwhile, without spending the token', async () => {
    const { store, kube, service } = await setUp('node-exists');
    const token = await mint(store);
    kube.nodes.add('worker-1');
    await assert.rejects(
      service.join({ presentedToken: token.token, body: request('worker-1'), ip: '192.0.2.1' }),
      (error: unknown) =>
        error instanceof JoinError &&
        error.code === 'CONFLICT' &&
        /Node "worker-1" already exists/.test(error.message) &&
        /kubectl delete node worker-1/.test(error.hint ?? ''),
    );
    assert.deepEqual(
      kube.deleted,
      kube.created.map((s) => s.metadata.name),
    );
    assert.equal((await store.get(token.id))?.usesCount, 0);
    await service.join({ presentedToken: token.token, body: request('worker-2'), ip: '192.0.2.1' });
  });

  it('refuses a node name too long for the bootstrap token group, naming the limit', async () => {
    const { store, kube, service } = await setUp('long-name');
    const token = await mint(store);
    const long = `${'a'.repeat(60)}.${'b'.repeat(60)}.${'c'.repeat(60)}.${'d'.repeat(60)}`;
    await assert.rejects(
      service.join({ presentedToken: token.token, body: request(long), ip: '192.0.2.1' }),
      (error: unknown) =>
        error instanceof K8sOnK8sError &&
        error.code === 'INVALID_NODE_NAME' &&
        /at most 240/.test(error.message),
    );
    assert.equal(kube.created.length, 0);
  });

  it('draws a new bootstrap token id on a collision', async () => {
    const { store, kube, service } = await setUp('collision');
    const token = await mint(store);
    kube.collisions = 2;
    await service.join({ presentedToken: token.token, body: request('worker-1'), ip: '192.0.2.1' });
    assert.equal(kube.created.length, 1);
  });

  it('compensates when the consume fails: the minted Secret is deleted and the token stays unspent', async () => {
    const { store, kube, service } = await setUp('consume-fails');
    const token = await mint(store);
    const failing: JoinTokenStore = Object.assign(Object.create(store) as JoinTokenStore, {
      consume: () => Promise.reject(new JoinError('STORE_ERROR', 'disk full')),
    });
    const broken = (await setUp('consume-fails-2', { store: failing, kube })).service;
    await assert.rejects(
      broken.join({ presentedToken: token.token, body: request('worker-1'), ip: '192.0.2.1' }),
      /disk full/,
    );
    assert.deepEqual(
      kube.deleted,
      kube.created.map((s) => s.metadata.name),
    );
    assert.equal((await store.get(token.id))?.usesCount, 0);
    await service.join({ presentedToken: token.token, body: request('worker-1'), ip: '192.0.2.1' });
  });

  it('refuses a token bound to another node name without spending it', async () => {
    const { store, kube, service } = await setUp('wrong-node');
    const token = await mint(store, { nodeName: 'worker-a' });
    await assert.rejects(
      service.join({ presentedToken: token.token, body: request('worker-b'), ip: '192.0.2.1' }),
      (error: unknown) =>
        error instanceof JoinError && error.code === 'FORBIDDEN' && /worker-b/.test(error.message),
    );
    assert.equal(kube.created.length, 0);
    assert.equal((await store.get(token.id))?.usesCount, 0);
  });

  it('gives unknown ids, wrong secrets and malformed tokens one answer, and limits guessing per IP and per (IP, id), never per id alone', async () => {
    const { store, service } = await setUp('guessing');
    const token = await mint(store);
    const wrongSecret = `${token.id}.${'z'.repeat(32)}`;
    const unknown = generateJoinToken().token;
    for (const presented of [wrongSecret, unknown, 'not-a-token', undefined]) {
      await assert.rejects(
        service.join({ presentedToken: presented, body: request('worker-1'), ip: '192.0.2.9' }),
        (error: unknown) => error instanceof JoinError && error.code === 'TOKEN_REJECTED',
      );
    }
    // Wrong secrets for one id are limited per address: after the burst, that address waits...
    for (let i = 0; i < 5; i++) {
      await assert.rejects(
        service.join({ presentedToken: wrongSecret, body: request('worker-1'), ip: '198.51.100.1' }),
        (error: unknown) => error instanceof JoinError && error.code === 'TOKEN_REJECTED',
      );
    }
    await assert.rejects(
      service.join({ presentedToken: wrongSecret, body: request('worker-1'), ip: '198.51.100.1' }),
      (error: unknown) => error instanceof RateLimitError && error.retryAfterSeconds > 0,
    );
    // ...but the id is not locked for anyone else: ids are not secret, so that would be a lock
    // anyone could put on anyone's token.
    for (let i = 0; i < 20; i++) {
      await assert.rejects(
        service.join({
          presentedToken: wrongSecret,
          body: request('worker-1'),
          ip: `198.51.100.${String(10 + i)}`,
        }),
        (error: unknown) => error instanceof JoinError && error.code === 'TOKEN_REJECTED',
      );
    }
    assert.equal((await store.get(token.id))?.usesCount, 0);
    assert.equal((await store.get(token.id))?.usesCount, 0);
    assert.ok(!logLines.join('').includes('z'.repeat(32)));
  });

  it('rejects a bad request body naming the field, and spends nothing', async () => {
    const { store, service } = await setUp('bad-body');
    const token = await mint(store);
    await assert.rejects(
      service.join({ presentedToken: token.token, body: { ...request('Worker/1') }, ip: '192.0.2.1' }),
      (error: unknown) => error instanceof Error && /nodeName/.test(error.message),
    );
    assert.equal((await store.get(token.id))?.usesCount, 0);
  });
});

describe('verifyJoinToken', () => {
  const secret = generateJoinToken().secret;
  it('tells each refusal apart for the audit log while callers see one answer', () => {
    const usable = tokenRecord(secret, 'abc123');
    assert.equal(verifyJoinToken(usable, secret, 'n', NOW), undefined);
    const cases: [JoinTokenRecord | undefined, string, string][] = [
      [undefined, secret, 'unknown-token'],
      [usable, 'x'.repeat(32), 'wrong-secret'],
      [{ ...usable, expiresAt: '2030-01-01T11:59:59Z' }, secret, 'expired'],
      [{ ...usable, revoked: true }, secret, 'revoked'],
      [{ ...usable, usesCount: 1 }, secret, 'exhausted'],
    ];
    for (const [record, presented, reason] of cases) {
      const refusal = verifyJoinToken(record, presented, 'n', NOW);
      assert.equal(refusal?.reason, reason);
      assert.equal(refusal.error.code, 'TOKEN_REJECTED');
    }
    assert.equal(verifyJoinToken({ ...usable, nodeName: 'm' }, secret, 'n', NOW)?.error.code, 'FORBIDDEN');
  });
});
