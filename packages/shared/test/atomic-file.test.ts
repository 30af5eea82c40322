import assert from 'node:assert/strict';
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { writeFileAtomic } from '../src/atomic-file.js';

const dir = mkdtempSync(join(tmpdir(), 'atomic-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

describe('writeFileAtomic', () => {
  it('creates parents, writes content with exactly the mode asked, leaves no temp file', async () => {
    const path = join(dir, 'etc/kubernetes/bootstrap-kubelet.conf');
    assert.equal(await writeFileAtomic(path, 'secret: 1\n', 0o600), true);
    assert.equal(readFileSync(path, 'utf8'), 'secret: 1\n');
    assert.equal(statSync(path).mode & 0o777, 0o600);
    assert.deepEqual(readdirSync(join(dir, 'etc/kubernetes')), ['bootstrap-kubelet.conf']);
  });

  it('reports no change when content and mode already match, and fixes a wrong mode', async () => {
    const path = join(dir, 'ca.crt');
    assert.equal(await writeFileAtomic(path, 'ca\n', 0o644), true);
    assert.equal(await writeFileAtomic(path, 'ca\n', 0o644), false);
    assert.equal(await writeFileAtomic(path, 'ca\n', 0o600), true);
    assert.equal(statSync(path).mode & 0o777, 0o600);
  });

  it('replaces the file by rename: a reader holding the old inode keeps the old content', async () => {
    const path = join(dir, 'config.yaml');
    writeFileSync(path, 'old\n');
    const before = statSync(path).ino;
    await writeFileAtomic(path, 'new\n', 0o644);
    assert.notEqual(statSync(path).ino, before);
    assert.equal(readFileSync(path, 'utf8'), 'new\n');
  });
});
