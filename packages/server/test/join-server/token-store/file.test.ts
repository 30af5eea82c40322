import assert from 'node:assert/strict';
import { mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { K8sOnK8sError } from '@k8s-on-k8s/shared';
import { FileTokenStore, readTokenFile } from '../../../src/join-server/token-store/file.js';
import type { JoinTokenRecord } from '../../../src/join-server/token-store/store.js';

const NOW = new Date('2030-01-01T12:00:00Z');

function record(id: string, usesTotal: number, extra: Partial<JoinTokenRecord> = {}): JoinTokenRecord {
  return {
    id,
    secretHash: 'sha256$c2FsdHNhbHQ=$aGFzaGhhc2hoYXNoaGFzaGhhc2hoYXNoaGFzaGhhc2g=',
    createdAt: '2030-01-01T11:00:00Z',
    expiresAt: '2030-01-01T13:00:00Z',
    usesTotal,
    usesCount: 0,
    revoked: false,
    ...extra,
  };
}

describe('FileTokenStore', () => {
  let dir: string;
  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'file-token-store-'));
  });
  after(async () => {
    await rm(dir, { recursive: true, force: true });
  });

  it('spends a single-use token exactly once among 50 concurrent consumers, and 3 uses among 50 exactly 3 times', async () => {
    const path = join(dir, 'race', 'tokens.json');
    const store = await FileTokenStore.open({ path, now: () => NOW });
    await store.create(record('single', 1));
    await store.create(record('triple', 3));
    for (const [id, uses] of [
      ['single', 1],
      ['triple', 3],
    ] as const) {
      const results = await Promise.all(Array.from({ length: 50 }, () => store.consume(id, NOW)));
      assert.equal(results.filter((r) => r.ok).length, uses);
      assert.ok(results.every((r) => r.ok || r.reason === 'exhausted'));
    }
    // What was acknowledged is what is on disk.
    const onDisk = await readTokenFile(path);
    assert.deepEqual(
      onDisk.map((r) => [r.id, r.usesCount]),
      [
        ['single', 1],
        ['triple', 3],
      ],
    );
  });

  it('writes the file 0600 and survives a reopen with every change', async () => {
    const path = join(dir, 'reopen.json');
    const store = await FileTokenStore.open({ path, now: () => NOW });
    await store.create(record('aaaaaa', 2));
    await store.consume('aaaaaa', NOW);
    await store.create(record('bbbbbb', 0));
    await store.revoke('bbbbbb');
    await store.close();
    assert.equal((await stat(path)).mode & 0o777, 0o600);
    const reopened = await FileTokenStore.open({ path, now: () => NOW });
    assert.equal((await reopened.get('aaaaaa'))?.usesCount, 1);
    assert.equal((await reopened.get('bbbbbb'))?.revoked, true);
    assert.deepEqual(await reopened.consume('bbbbbb', NOW), { ok: false, reason: 'revoked' });
    assert.deepEqual(await reopened.consume('cccccc', NOW), { ok: false, reason: 'not-found' });
  });

  it('refuses a duplicate id with CONFLICT and leaves the first token alone', async () => {
    const store = await FileTokenStore.open({ path: join(dir, 'dup.json'), now: () => NOW });
    await store.create(record('dddddd', 1));
    await assert.rejects(
      store.create(record('dddddd', 5)),
      (e: unknown) => e instanceof K8sOnK8sError && e.code === 'CONFLICT',
    );
    assert.equal((await store.get('dddddd'))?.usesTotal, 1);
  });

  it('removes temp files a crash left behind, and keeps the last complete file', async () => {
    const path = join(dir, 'crash.json');
    const store = await FileTokenStore.open({ path, now: () => NOW });
    await store.create(record('eeeeee', 1));
    // What a kill -9 in the middle of write() leaves: a partial temp file next to the real one.
    await writeFile(join(dir, '.crash.json.0123456789ab.tmp'), '{"apiVersion":"k8s-on-k8s.io/v1","tok');
    const reopened = await FileTokenStore.open({ path, now: () => NOW });
    assert.equal((await reopened.get('eeeeee'))?.id, 'eeeeee');
    assert.deepEqual(
      (await readdir(dir)).filter((name) => name.startsWith('.crash.json.')),
      [],
    );
  });

  it('drops tokens expired for longer than the retention on the next write', async () => {
    let now = NOW;
    const path = join(dir, 'prune.json');
    const store = await FileTokenStore.open({ path, now: () => now, retentionMs: 60_000 });
    await store.create(record('ffffff', 1));
    now = new Date('2030-01-01T13:01:00Z');
    await store.create(record('gggggg', 1, { expiresAt: '2030-01-02T00:00:00Z' }));
    assert.deepEqual(
      (await store.list()).map((r) => r.id),
      ['gggggg'],
    );
    assert.ok(!(await readFile(path, 'utf8')).includes('ffffff'));
  });

  it('reports a corrupt file as STORE_ERROR naming the file', async () => {
    const path = join(dir, 'corrupt.json');
    await writeFile(path, '{"tokens": [{"id": "x"}]}');
    await assert.rejects(
      FileTokenStore.open({ path, now: () => NOW }),
      (e: unknown) => e instanceof K8sOnK8sError && e.code === 'STORE_ERROR' && e.message.includes(path),
    );
  });
});
