import { spawn } from 'node:child_process';
import { createWriteStream, existsSync, readdirSync, readFileSync, rmSync, statfsSync } from 'node:fs';
import { chmod, mkdir, readFile, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { dirname, join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import {
  assertTestNamespace,
  createNetworkNamespace,
  type NetworkNamespace,
} from '../net/network-namespace.js';
import type { CommandResult } from '../process/command-result.js';
import { isProcessAlive } from '../process/is-process-alive.js';
import { procStatFields } from '../process/proc-stat.js';
import { registerExitCleanup } from '../process/exit-cleanup.js';
import { uniqueTestResourceName } from '../process/test-resource-name.js';
import { maskKubeletKernelTunables } from './kubelet-kernel-tunables.js';
import type { WorkerBindMount } from './worker-bind-mount.js';
import { WORKER_BOOT_SCRIPT } from './worker-boot-script.js';
import { createWorkerCgroup, removeCgroupTree } from './worker-cgroup.js';
import { ensureWorkerRoot } from './worker-root.js';

/** What startWorkerHost boots. */
export interface WorkerHostOptions {
  /** For logs and error messages. */
  readonly name: string;
  /** A test network namespace to boot in (its name); a fresh one, deleted by stop(), if omitted. */
  readonly netns?: NetworkNamespace | string;
  /** The worker's /etc/hostname; `name` if omitted. */
  readonly hostname?: string;
  readonly bindMounts?: readonly WorkerBindMount[];
  /**
   * Absolute paths in the worker backed by a fresh directory of the machine's filesystem instead of
   * the overlay (removed by stop()). Overlayfs cannot use another overlay as its upper layer, so
   * containerd's overlayfs snapshotter needs /var/lib/containerd to be one of these.
   */
  readonly scratchDirs?: readonly string[];
  /** How long to wait for `systemctl is-system-running` to say running or degraded (default 60 s). */
  readonly bootTimeoutMs?: number;
}

/** Options for one command run inside a worker host. */
export interface WorkerExecOptions {
  /** Written to the command's stdin. */
  readonly input?: string;
  /** Added to the worker's minimal environment (PATH, LANG). */
  readonly env?: Readonly<Record<string, string>>;
  /** Kill the command after this long (default 60 s); it then reports exit code -1. */
  readonly timeoutMs?: number;
}

/** A fake worker machine: systemd as PID 1 in its own namespaces, on an overlay of the cached root. */
export interface WorkerHost {
  readonly name: string;
  /** systemd's PID as the test process sees it. */
  readonly pid: number;
  /** The worker's `/` as seen from the test process (/proc/<pid>/root); valid while it runs. */
  readonly rootDir: string;
  /** The network namespace the worker lives in. */
  readonly netns: string;
  /** The machine-side temp dir: the overlay's upper, work and mount dirs and the boot logs. */
  readonly stateDir: string;
  /** Runs `command args` inside every namespace of the worker, with its root as `/`. */
  exec(command: string, args?: readonly string[], options?: WorkerExecOptions): Promise<CommandResult>;
  /** Writes a file on the worker's filesystem (parents created), `mode` 0644 unless given. */
  writeFile(path: string, content: string | Uint8Array, mode?: number): Promise<void>;
  /** Reads a file from the worker's filesystem as UTF-8. */
  readFile(path: string): Promise<string>;
  /** Powers the worker off (SIGKILL after a deadline) and removes everything it used; safe to call twice. */
  stop(): Promise<void>;
}

const WORKER_PATH = '/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin';

/**
 * The PID of the child of `parent`: PID 1 of the namespaces `unshare --fork` made. Found by scanning
 * /proc because this kernel has no /proc/<pid>/task/<pid>/children (CONFIG_PROC_CHILDREN is off).
 */
function findChildPid(parent: number): number | undefined {
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const ppid = Number(procStatFields(entry)[1]);
      if (ppid === parent) return Number(entry);
    } catch {
      // The process ended while we looked.
    }
  }
  return undefined;
}

/** Blocks the thread for `ms`; only for the synchronous exit cleanup, where nothing else can run. */
function sleepSync(ms: number): void {
  Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
}

function tail(text: string, lines: number): string {
  return text.split('\n').slice(-lines).join('\n');
}

/**
 * Boots a worker host: a copy-on-write overlay of the cached Debian root (ensureWorkerRoot), systemd
 * as PID 1 in new mount, PID, UTS, IPC and cgroup namespaces inside a test network namespace, and
 * waits until `systemctl is-system-running` answers running or degraded. The worker runs unmodified
 * programs with real systemctl and systemd-run; everything is removed by stop() or on process exit.
 */
export async function startWorkerHost(options: WorkerHostOptions): Promise<WorkerHost> {
  if (statfsSync('/sys/fs/cgroup').type === 0x63677270) {
    // The boot script forces systemd onto the legacy hierarchy (see WORKER_BOOT_SCRIPT); a cgroup v2
    // machine needs systemd.unified_cgroup_hierarchy=1 and delegation instead, which is not done yet.
    throw new Error('startWorkerHost needs a cgroup v1 machine; /sys/fs/cgroup is cgroup2');
  }
  const lowerDir = await ensureWorkerRoot();
  const id = uniqueTestResourceName();
  const dir = join(tmpdir(), id);
  const bootTimeoutMs = options.bootTimeoutMs ?? 60_000;
  const cleanups: (() => void)[] = [];
  // Everything below is undone synchronously, newest first, by stop() or at process exit.
  const undoAll = (): void => {
    for (const undo of cleanups.splice(0).reverse()) {
      try {
        undo();
      } catch {
        // Best effort; the others must still run.
      }
    }
  };
  const unregister = registerExitCleanup(undoAll);

  let netns: string;
  let systemdPid = 0;
  const bootLog = join(dir, 'boot.log');
  const consoleLog = join(dir, 'console.log');
  try {
    await mkdir(join(dir, 'upper', 'etc'), { recursive: true });
    await mkdir(join(dir, 'work'));
    await mkdir(join(dir, 'root'));
    cleanups.push(() => {
      rmSync(dir, { recursive: true, force: true });
    });
    // Written into the upper layer before the overlay is mounted: it shadows the root's /etc/hostname.
    await writeFile(join(dir, 'upper', 'etc', 'hostname'), `${options.hostname ?? options.name}\n`);
    await writeFile(consoleLog, '');

    if (options.netns === undefined) {
      const created = await createNetworkNamespace();
      netns = created.name;
      cleanups.push(() => void created.delete());
    } else {
      netns = typeof options.netns === 'string' ? options.netns : options.netns.name;
      assertTestNamespace(netns);
    }

    const cgroup = createWorkerCgroup(id);
    cleanups.push(() => {
      // Tasks leave their cgroups a moment after they are killed.
      for (let attempt = 0; attempt < 50; attempt++) {
        if (cgroup.dirs.map(removeCgroupTree).every(Boolean)) return;
        sleepSync(100);
      }
    });

    const scratchBinds = await Promise.all(
      (options.scratchDirs ?? []).map(async (target, index) => {
        const source = join(dir, 'scratch', String(index));
        await mkdir(source, { recursive: true });
        return { source, target };
      }),
    );
    // Always: a kubelet started in any worker would otherwise set these sysctls on the machine.
    const tunableMasks = await maskKubeletKernelTunables(join(dir, 'sysctl'));
    const binds = [...tunableMasks, ...(options.bindMounts ?? []), ...scratchBinds].flatMap(
      (bind: WorkerBindMount) => {
        if (!bind.target.startsWith('/'))
          throw new Error(
            `Expected bindMounts and scratchDirs targets to be absolute paths, got "${bind.target}"`,
          );
        return [bind.source, bind.target, bind.readOnly === true ? 'ro' : 'rw'];
      },
    );
    // The outer sh moves itself into the worker's cgroups, so that `unshare --cgroup` makes them the
    // namespace's root; --kill-child takes systemd down if unshare is killed (e.g. by ChildProcessGroup).
    const enterCgroupsAndExec = 'while [ "$1" != -- ]; do echo $$ > "$1"; shift; done; shift; exec "$@"';
    const child = spawn(
      'sh',
      [
        '-c',
        enterCgroupsAndExec,
        'enter-cgroups',
        ...cgroup.procsFiles,
        '--',
        'ip',
        'netns',
        'exec',
        netns,
        'unshare',
        '--mount',
        '--pid',
        '--fork',
        '--kill-child',
        '--uts',
        '--ipc',
        '--cgroup',
        'sh',
        '-c',
        WORKER_BOOT_SCRIPT,
        'worker-boot',
        lowerDir,
        join(dir, 'upper'),
        join(dir, 'work'),
        join(dir, 'root'),
        consoleLog,
        ...binds,
      ],
      { env: { PATH: WORKER_PATH, LANG: 'C.UTF-8' }, stdio: ['ignore', 'pipe', 'pipe'] },
    );
    const log = createWriteStream(bootLog);
    child.stdout.pipe(log);
    child.stderr.pipe(log);
    const exited = new Promise<void>((resolve) => {
      child.once('exit', () => {
        resolve();
      });
      child.once('error', () => {
        resolve();
      });
    });
    cleanups.push(() => {
      // Killing PID 1 kills every process in the worker's PID namespace; the mount namespace and
      // with it the overlay go away when the last of them is gone.
      if (systemdPid !== 0 && isProcessAlive(systemdPid)) process.kill(systemdPid, 'SIGKILL');
      if (child.exitCode === null && child.signalCode === null) child.kill('SIGKILL');
      for (let attempt = 0; attempt < 50 && systemdPid !== 0 && isProcessAlive(systemdPid); attempt++)
        sleepSync(100);
    });

    const logs = async (): Promise<string> => {
      let text = `--- ${options.name}: boot (${child.exitCode === null ? 'running' : `exited ${child.exitCode}`}) ---\n`;
      text += tail(existsSync(bootLog) ? readFileSync(bootLog, 'utf8') : '(no log)', 30);
      text += `\n--- console ---\n${tail(readFileSync(consoleLog, 'utf8'), 30)}`;
      if (systemdPid !== 0 && isProcessAlive(systemdPid)) {
        const failed = await execInWorker(systemdPid, 'systemctl', ['--failed', '--no-pager'], {
          timeoutMs: 5000,
        });
        const journal = await execInWorker(systemdPid, 'journalctl', ['-b', '--no-pager', '-n', '40'], {
          timeoutMs: 5000,
        });
        text += `\n--- systemctl --failed ---\n${failed.stdout}${failed.stderr}\n--- journal ---\n${journal.stdout}`;
      }
      return text;
    };

    const deadline = Date.now() + bootTimeoutMs;
    let state = '';
    while (Date.now() < deadline && child.exitCode === null) {
      if (systemdPid === 0) {
        systemdPid = child.pid === undefined ? 0 : (findChildPid(child.pid) ?? 0);
        // Until the boot script has exec'd systemd, PID 1 is still `sh`.
        if (
          systemdPid !== 0 &&
          !readFileSync(`/proc/${systemdPid}/cmdline`, 'utf8').startsWith('/lib/systemd/systemd')
        ) {
          systemdPid = 0;
        }
      } else {
        // `--wait` blocks until startup finished, but fails at once while D-Bus is not up yet.
        const result = await execInWorker(systemdPid, 'systemctl', ['is-system-running', '--wait'], {
          timeoutMs: Math.max(1000, deadline - Date.now()),
        });
        state = result.stdout.trim();
        if (state === 'running' || state === 'degraded') break;
      }
      await sleep(200);
    }
    if (state !== 'running' && state !== 'degraded') {
      const why =
        child.exitCode === null ? `not up after ${bootTimeoutMs}ms (state "${state}")` : 'exited during boot';
      throw new Error(`worker host ${options.name}: systemd ${why}\n${await logs()}`);
    }

    const pid = systemdPid;
    const rootDir = `/proc/${pid}/root`;
    const inRoot = (path: string): string => {
      if (!path.startsWith('/'))
        throw new Error(`Expected an absolute path in worker ${options.name}, got "${path}"`);
      return join(rootDir, path);
    };
    let stopped = false;
    return {
      name: options.name,
      pid,
      rootDir,
      netns,
      stateDir: dir,
      exec: (command, args = [], execOptions = {}) => execInWorker(pid, command, args, execOptions),
      async writeFile(path, content, mode = 0o644) {
        await mkdir(dirname(inRoot(path)), { recursive: true });
        await writeFile(inRoot(path), content, { mode });
        await chmod(inRoot(path), mode);
      },
      readFile: (path) => readFile(inRoot(path), 'utf8'),
      async stop() {
        if (stopped) return;
        stopped = true;
        if (isProcessAlive(pid)) {
          // poweroff returns before the machine is down (or fails as D-Bus goes away); wait for PID 1.
          await execInWorker(pid, 'systemctl', ['poweroff'], { timeoutMs: 10_000 });
          await Promise.race([exited, sleep(20_000, undefined, { ref: false })]);
        }
        undoAll();
        unregister();
        await rm(dir, { recursive: true, force: true });
      },
    };
  } catch (error) {
    undoAll();
    unregister();
    throw error;
  }
}

/** Runs a command in all of the worker's namespaces via nsenter, never rejecting. */
async function execInWorker(
  pid: number,
  command: string,
  args: readonly string[],
  options: WorkerExecOptions,
): Promise<CommandResult> {
  const result = await execa(
    'nsenter',
    ['-t', String(pid), '-m', '-p', '-n', '-u', '-i', '-C', '--root', '--wd', command, ...args],
    {
      reject: false,
      extendEnv: false,
      env: { PATH: WORKER_PATH, LANG: 'C.UTF-8', ...options.env },
      timeout: options.timeoutMs ?? 60_000,
      ...(options.input === undefined ? { stdin: 'ignore' } : { input: options.input }),
    },
  );
  return { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode ?? -1 };
}
