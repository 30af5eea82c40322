import { randomBytes } from 'node:crypto';

/**
 * Every network namespace, cgroup and temp dir the worker-host harness makes starts with this, so a
 * crashed run's leftovers can be found (and nothing else is ever touched).
 */
export const TEST_RESOURCE_PREFIX = 'k8s-on-k8s-test-';

/**
 * A fresh name like `k8s-on-k8s-test-4242-9f3a1c`: the creating process's PID lets another run tell
 * a live run's namespaces (keep) from a crashed run's (remove); the random part keeps names unique.
 */
export function uniqueTestResourceName(): string {
  return `${TEST_RESOURCE_PREFIX}${process.pid}-${randomBytes(3).toString('hex')}`;
}

/** The PID of the process that made a test resource, or undefined for a name not made by us. */
export function testResourceOwner(name: string): number | undefined {
  if (!name.startsWith(TEST_RESOURCE_PREFIX)) return undefined;
  const match = /^(\d+)-[0-9a-f]+/.exec(name.slice(TEST_RESOURCE_PREFIX.length));
  return match?.[1] === undefined ? undefined : Number(match[1]);
}

/** True for a test resource whose creating process is gone (or whose name carries no owner). */
export function isStaleTestResource(name: string): boolean {
  if (!name.startsWith(TEST_RESOURCE_PREFIX)) return false;
  const owner = testResourceOwner(name);
  if (owner === undefined) return true;
  try {
    process.kill(owner, 0);
    return false;
  } catch (error) {
    // EPERM means the process exists but is not ours: it is alive, so its resources are not stale.
    return (error as NodeJS.ErrnoException).code === 'ESRCH';
  }
}
