import assert from 'node:assert/strict';
import { after, before, describe, it } from 'node:test';
import { formatRfc3339, hashTokenSecret } from '@k8s-on-k8s/shared';
import { CoreV1Api } from '@kubernetes/client-node';
import {
  JOIN_TOKEN_NAMESPACE,
  KubernetesApi,
  KubernetesApiError,
  KubernetesTokenStore,
  type ConsumeResult,
  type JoinTokenRecord,
} from '@k8s-on-k8s/server';
import { startLocalKubeCluster, type LocalKubeCluster } from '../harness/index.js';

// The kubernetes token store against a real kube-apiserver: revocation wins over every consume
// queued after it returns (in this replica and another), and a spend whose answer is lost is
// neither lost nor spent twice. Faults are injected at the network edge of the real client: an
// answer that arrives late, or one that never arrives although the apiserver applied the write.

/** A real client whose answers can be held back or dropped, as a slow or broken network would. */
class FaultyApi extends KubernetesApi {
  /** When set, GET answers are held until it resolves (the request itself goes out at once). */
  holdGets: Promise<void> | undefined;
  /** How many of the next PUTs lose their answer after the apiserver has applied them. */
  dropPutAnswers = 0;
  /** How many of the next PUTs are lost before they reach the apiserver. */
  dropPutRequests = 0;

  override async getSecret(namespace: string, name: string) {
    const hold = this.holdGets;
    const answer = await super.getSecret(namespace, name);
    if (hold !== undefined) await hold;
    return answer;
  }

  override async replaceSecret(...args: Parameters<KubernetesApi['replaceSecret']>) {
    if (this.dropPutRequests > 0) {
      this.dropPutRequests--;
      throw new Error('connect ETIMEDOUT (injected: the PUT never left)');
    }
    const answer = await super.replaceSecret(...args);
    if (this.dropPutAnswers > 0) {
      this.dropPutAnswers--;
      throw new Error('Headers Timeout Error (injected: the PUT applied, its answer was lost)');
    }
    return answer;
  }
}

describe('kubernetes token store against a real apiserver', () => {
  let cp: LocalKubeCluster;
  const apis: KubernetesApi[] = [];
  let counter = 0;

  const newApi = (): FaultyApi => {
    const api = new FaultyApi({
      server: cp.url,
      ca: cp.ca.certPem,
      cert: cp.admin.certPem,
      key: cp.admin.keyPem,
    });
    apis.push(api);
    return api;
  };

  const record = (usesTotal: number): JoinTokenRecord => {
    const now = Date.now();
    return {
      id: `rv${String(counter++).padStart(4, '0')}`,
      secretHash: hashTokenSecret('s'.repeat(32)),
      createdAt: formatRfc3339(new Date(now)),
      expiresAt: formatRfc3339(new Date(now + 3_600_000)),
      usesTotal,
      usesCount: 0,
      revoked: false,
    };
  };

  before(async () => {
    cp = await startLocalKubeCluster({ name: 'k8s-token-store' });
    // The store's namespace, as the hosted assets create it.
    await cp
      .kubeConfig()
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: JOIN_TOKEN_NAMESPACE } } });
  });
  after(async () => {
    for (const api of apis) await api.close();
    await cp.stop();
  });

  const now = (): Date => new Date();

  it('refuses an unlimited token to a consume queued after a revoke returned, though a read from before is still in flight', async () => {
    const [apiA, apiB] = [newApi(), newApi()];
    const replicaA = new KubernetesTokenStore({ api: apiA, now });
    const replicaB = new KubernetesTokenStore({ api: apiB, now });
    const token = record(0);
    await replicaA.create(token);

    let release = (): void => undefined;
    apiA.holdGets = new Promise((resolve) => (release = resolve));
    // An agent's verification read on replica A goes out before the revoke; its answer is slow.
    const verifying = replicaA.get(token.id);
    await new Promise((resolve) => setTimeout(resolve, 100));
    const revoked = await replicaB.revoke(token.id);
    assert.equal(revoked?.revoked, true);
    // Queued after the revoke returned: it must see the revocation.
    const consumed = replicaA.consume(token.id, now());
    await new Promise((resolve) => setTimeout(resolve, 100));
    apiA.holdGets = undefined;
    release();
    await verifying;
    assert.deepEqual(await consumed, { ok: false, reason: 'revoked' });
  });

  it('with 40 agents consuming concurrently on two replicas, grants nothing queued after a revoke returned', async () => {
    const [apiA, apiB] = [newApi(), newApi()];
    const replicas = [
      new KubernetesTokenStore({ api: apiA, now }),
      new KubernetesTokenStore({ api: apiB, now }),
    ];
    for (const uses of [0, 1000]) {
      const token = record(uses);
      await replicas[0]?.create(token);
      let revokedAt = Number.POSITIVE_INFINITY;
      const late: Promise<ConsumeResult>[] = [];
      let granted = 0;
      // Each agent consumes until it has queued three consumes after the revoke returned (at most
      // 200 rounds). The revoke goes in once 100 uses were granted, far from the 1000 of the
      // limited token, so what refuses the late ones is the revoke, not exhaustion. (A fixed delay
      // before the revoke let a fast machine finish every round first: nothing was queued after.)
      const agents = Array.from({ length: 40 }, async (_, i) => {
        const store = replicas[i % 2] as KubernetesTokenStore;
        let queuedAfterRevoke = 0;
        for (let round = 0; round < 200 && queuedAfterRevoke < 3; round++) {
          await store.get(token.id);
          const queuedAt = performance.now();
          const result = store.consume(token.id, now());
          if (queuedAt > revokedAt) {
            late.push(result);
            queuedAfterRevoke++;
          }
          if ((await result).ok) granted++;
        }
      });
      const deadline = performance.now() + 10_000;
      while (granted < 100 && performance.now() < deadline) {
        await new Promise((resolve) => setTimeout(resolve, 2));
      }
      await replicas[1]?.revoke(token.id);
      revokedAt = performance.now();
      await Promise.all(agents);
      const lateResults = await Promise.all(late);
      assert.ok(granted > 0, 'some joins went through before the revoke');
      assert.ok(lateResults.length > 0, 'some consumes were queued after it');
      assert.deepEqual(
        lateResults.filter((r) => r.ok),
        [],
        `uses=${String(uses)}: ${String(lateResults.filter((r) => r.ok).length)} of ${String(lateResults.length)} consumes queued after the revoke were granted`,
      );
    }
  });

  it('relies on the apiserver refusing an unchanged PUT with an old resourceVersion (the CAS of unlimited tokens)', async () => {
    const api = newApi();
    const store = new KubernetesTokenStore({ api, now });
    const token = record(0);
    await store.create(token);
    const before = await api.getSecret(JOIN_TOKEN_NAMESPACE, `k8s-join-token-${token.id}`);
    assert.ok(before !== undefined);
    await store.revoke(token.id);
    await assert.rejects(
      api.replaceSecret(JOIN_TOKEN_NAMESPACE, before),
      (error: unknown) => error instanceof KubernetesApiError && error.apiStatus === 409,
    );
    const unchanged = await api.getSecret(JOIN_TOKEN_NAMESPACE, `k8s-join-token-${token.id}`);
    assert.ok(unchanged !== undefined);
    const same = await api.replaceSecret(JOIN_TOKEN_NAMESPACE, unchanged);
    assert.equal(same.metadata.resourceVersion, unchanged.metadata.resourceVersion, 'a no-op writes nothing');
  });

  it('learns that a spend whose answer was lost applied, and spends it once', async () => {
    const api = newApi();
    const store = new KubernetesTokenStore({ api, now });
    const token = record(2);
    await store.create(token);
    api.dropPutAnswers = 1;
    const first = await store.consume(token.id, now());
    assert.equal(first.ok, true, 'the join whose use was spent is granted');
    const fresh = new KubernetesTokenStore({ api, now });
    assert.equal((await fresh.get(token.id))?.usesCount, 1, 'spent exactly once');
    assert.equal((await store.consume(token.id, now())).ok, true);
    assert.deepEqual(await store.consume(token.id, now()), { ok: false, reason: 'exhausted' });
  });

  it('retries a spend whose request was lost before it applied, and spends it once', async () => {
    const api = newApi();
    const store = new KubernetesTokenStore({ api, now });
    const token = record(1);
    await store.create(token);
    api.dropPutRequests = 1;
    const first = await store.consume(token.id, now());
    assert.equal(first.ok, true);
    const fresh = new KubernetesTokenStore({ api, now });
    assert.equal((await fresh.get(token.id))?.usesCount, 1);
    assert.deepEqual(await store.consume(token.id, now()), { ok: false, reason: 'exhausted' });
  });
});
