import { copyFileSync, existsSync, mkdirSync, readdirSync, readFileSync, rmdirSync } from 'node:fs';
import { join } from 'node:path';
import { TEST_RESOURCE_PREFIX } from '../process/test-resource-name.js';

/** One cgroup hierarchy this process belongs to: where it is mounted and where we sit in it. */
interface Hierarchy {
  readonly mountPoint: string;
  /** Our cgroup's directory, e.g. /sys/fs/cgroup/memory/process_api/abc. */
  readonly ownDir: string;
}

/** A cgroup of its own in every mounted hierarchy, for one worker host's systemd to treat as its root. */
export interface WorkerCgroup {
  /** The worker's directory in each hierarchy. */
  readonly dirs: readonly string[];
  /** Write a PID into each of these to move that process into the worker's cgroups. */
  readonly procsFiles: readonly string[];
}

/** The cgroup mounts and this process's place in each, from /proc/self/{mountinfo,cgroup}. */
function ownHierarchies(): Hierarchy[] {
  const mounts = readFileSync('/proc/self/mountinfo', 'utf8')
    .split('\n')
    .map((line) => {
      const [before, after] = line.split(' - ');
      const fields = before?.split(' ') ?? [];
      const [fsType, , superOptions] = after?.split(' ') ?? [];
      return {
        root: fields[3] ?? '',
        mountPoint: fields[4] ?? '',
        fsType,
        options: (superOptions ?? '').split(','),
      };
    })
    .filter((mount) => mount.fsType === 'cgroup' || mount.fsType === 'cgroup2');
  const hierarchies: Hierarchy[] = [];
  for (const line of readFileSync('/proc/self/cgroup', 'utf8').split('\n')) {
    const match = /^(\d+):([^:]*):(.*)$/.exec(line);
    if (match === null) continue;
    const controllers = (match[2] ?? '').split(',').filter((c) => c !== '');
    const path = match[3] ?? '/';
    const mount = mounts.find((m) =>
      controllers.length === 0
        ? m.fsType === 'cgroup2'
        : m.fsType === 'cgroup' && controllers.every((c) => m.options.includes(c)),
    );
    if (mount === undefined || !path.startsWith(mount.root)) continue;
    hierarchies.push({
      mountPoint: mount.mountPoint,
      ownDir: join(mount.mountPoint, path.slice(mount.root.length)),
    });
  }
  return hierarchies;
}

/**
 * Creates cgroup `name` below this process's cgroup in every hierarchy. Without it the worker's
 * systemd would take the hierarchies' roots as its own and create init.scope and system.slice there,
 * shared by every worker and escaping the limits this test process runs under; with it (and a cgroup
 * namespace) each systemd manages only its subtree, as under systemd-nspawn.
 */
export function createWorkerCgroup(name: string): WorkerCgroup {
  const dirs: string[] = [];
  for (const hierarchy of ownHierarchies()) {
    const dir = join(hierarchy.ownDir, name);
    mkdirSync(dir);
    dirs.push(dir);
    // A new cpuset cgroup starts with no CPUs and no memory nodes, and no process can join it.
    for (const file of ['cpuset.cpus', 'cpuset.mems']) {
      if (existsSync(join(dir, file))) copyFileSync(join(hierarchy.ownDir, file), join(dir, file));
    }
  }
  return { dirs, procsFiles: dirs.map((dir) => join(dir, 'cgroup.procs')) };
}

/**
 * Removes the cgroup directory `dir` and every cgroup below it, deepest first; returns whether it is
 * gone. A cgroup that still has a process (one that is still exiting) stays; call again later.
 */
export function removeCgroupTree(dir: string): boolean {
  if (!existsSync(dir)) return true;
  for (const entry of readdirSync(dir, { withFileTypes: true })) {
    if (entry.isDirectory()) removeCgroupTree(join(dir, entry.name));
  }
  try {
    rmdirSync(dir);
    return true;
  } catch {
    return false;
  }
}

/** Every cgroup directory in every hierarchy whose name starts with the test prefix. */
export function findTestCgroups(): string[] {
  const found: string[] = [];
  const walk = (dir: string, depth: number): void => {
    let entries;
    try {
      entries = readdirSync(dir, { withFileTypes: true });
    } catch {
      return;
    }
    for (const entry of entries) {
      if (!entry.isDirectory()) continue;
      if (entry.name.startsWith(TEST_RESOURCE_PREFIX)) found.push(join(dir, entry.name));
      else if (depth < 8) walk(join(dir, entry.name), depth + 1);
    }
  };
  for (const mountPoint of new Set(ownHierarchies().map((h) => h.mountPoint))) walk(mountPoint, 0);
  return found;
}
