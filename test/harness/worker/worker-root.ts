import { join } from 'node:path';
import { execa } from 'execa';
import { REPO_ROOT } from '../repo-root.js';

/** Builds (once) the Debian root the worker hosts boot; the lead's CI runs it before the tests. */
export const WORKER_ROOT_BUILD_SCRIPT = join(REPO_ROOT, 'scripts', 'worker-root-build.sh');

/**
 * Returns the path of the cached worker root filesystem (.cache/worker-root/bookworm-<hash>/),
 * debootstrapping it first if it is missing (about a minute; needs root and the Debian mirror).
 * The directory is shared and read-only by convention: worker hosts mount it as an overlay lower layer.
 */
export async function ensureWorkerRoot(): Promise<string> {
  const result = await execa(WORKER_ROOT_BUILD_SCRIPT, [], { reject: false });
  const path = result.stdout.trim().split('\n').at(-1) ?? '';
  if (result.exitCode !== 0 || path === '') {
    throw new Error(
      `${WORKER_ROOT_BUILD_SCRIPT} failed (exit ${result.exitCode ?? 'none'}):\n${result.stderr.split('\n').slice(-30).join('\n')}`,
    );
  }
  return path;
}
