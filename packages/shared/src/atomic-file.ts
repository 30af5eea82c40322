// The one way the programs write a file that must never be seen half-written or too readable:
// credentials, kubeconfigs, token stores, units.
import { randomBytes } from 'node:crypto';
import { mkdir, open, readFile, rename, rm, stat } from 'node:fs/promises';
import { dirname, basename, join } from 'node:path';

/**
 * Writes `content` to `path` so that a crash leaves either the old file or the new one, never half
 * of one: a temp file in the same directory (created with `mode`, so a credential is never
 * world-readable, not even for a moment), fsync, rename, fsync of the directory.
 * Returns false when the file already had exactly this content and mode (nothing written).
 */
export async function writeFileAtomic(path: string, content: string, mode: number): Promise<boolean> {
  if (await hasContent(path, content, mode)) return false;
  await replaceFileAtomic(path, content, mode);
  return true;
}

/** writeFileAtomic without the comparison: always writes (a store that knows it changed). */
export async function replaceFileAtomic(path: string, content: string, mode: number): Promise<void> {
  const dir = dirname(path);
  await mkdir(dir, { recursive: true, mode: 0o755 });
  const temp = join(dir, `.${basename(path)}.${randomBytes(6).toString('hex')}.tmp`);
  try {
    const handle = await open(temp, 'wx', mode);
    try {
      await handle.writeFile(content, 'utf8');
      // The umask may have narrowed the create mode; make it exactly what was asked.
      await handle.chmod(mode);
      await handle.sync();
    } finally {
      await handle.close();
    }
    await rename(temp, path);
  } catch (error) {
    await rm(temp, { force: true });
    throw error;
  }
  const dirHandle = await open(dir, 'r');
  try {
    await dirHandle.sync();
  } finally {
    await dirHandle.close();
  }
}

/** True when `path` exists with exactly this content and permission bits. */
export async function hasContent(path: string, content: string, mode: number): Promise<boolean> {
  try {
    const [info, existing] = await Promise.all([stat(path), readFile(path, 'utf8')]);
    return existing === content && (info.mode & 0o7777) === mode;
  } catch {
    return false;
  }
}
