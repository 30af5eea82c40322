import { constants } from 'node:fs';
import { access, readdir, readFile, rm, rmdir, stat } from 'node:fs/promises';
import { hostname, arch, platform, release } from 'node:os';
import { join } from 'node:path';
import { execa } from 'execa';
import { writeFileAtomic } from '@k8s-on-k8s/shared';

/** The result of running a command on the worker. */
export interface CommandResult {
  readonly exitCode: number;
  readonly stdout: string;
  readonly stderr: string;
}

/**
 * Everything the join and reset flows do to the machine, behind one interface: the real one acts
 * on `root` (normally `/`), tests hand in the same implementation over a temp root with a
 * `systemctl` fixture on PATH, or run the agent inside a real systemd worker host.
 */
export interface NodeSystem {
  readonly root: string;
  /** Maps an absolute path on the node to the path under `root`. */
  path(nodePath: string): string;
  readText(nodePath: string): Promise<string | undefined>;
  writeAtomic(nodePath: string, content: string, mode: number): Promise<boolean>;
  remove(nodePath: string): Promise<boolean>;
  removeEmptyDir(nodePath: string): Promise<boolean>;
  /** Names in a directory; empty when it does not exist. */
  list(nodePath: string): Promise<string[]>;
  exists(nodePath: string): Promise<boolean>;
  isExecutable(nodePath: string): Promise<boolean>;
  isSocket(nodePath: string): Promise<boolean>;
  run(command: string, args: readonly string[]): Promise<CommandResult>;
  uid(): number;
  hostname(): string;
  now(): Date;
  platform(): { os: string; arch: string; kernelVersion: string };
}

/** The real machine, with files under `root`. */
export function createNodeSystem(root = '/'): NodeSystem {
  const under = (nodePath: string): string => (root === '/' ? nodePath : join(root, nodePath));
  return {
    root,
    path: under,
    readText: async (p) => {
      try {
        return await readFile(under(p), 'utf8');
      } catch {
        return undefined;
      }
    },
    writeAtomic: (p, content, mode) => writeFileAtomic(under(p), content, mode),
    remove: async (p) => {
      if (!(await existsAt(under(p)))) return false;
      await rm(under(p), { force: true });
      return true;
    },
    removeEmptyDir: async (p) => {
      try {
        await rmdir(under(p));
        return true;
      } catch {
        return false;
      }
    },
    list: async (p) => {
      try {
        return await readdir(under(p));
      } catch {
        return [];
      }
    },
    exists: (p) => existsAt(under(p)),
    isExecutable: async (p) => {
      try {
        await access(under(p), constants.X_OK);
        return (await stat(under(p))).isFile();
      } catch {
        return false;
      }
    },
    isSocket: async (p) => {
      try {
        return (await stat(under(p))).isSocket();
      } catch {
        return false;
      }
    },
    run: async (command, args) => {
      const result = await execa(command, args, { reject: false, stdin: 'ignore' });
      return {
        exitCode: result.exitCode ?? 1,
        stdout: result.stdout,
        // A command that could not start at all (ENOENT) has no stderr; its message says why.
        stderr: result.exitCode === undefined ? (result.message ?? 'failed to start') : result.stderr,
      };
    },
    uid: () => process.getuid?.() ?? -1,
    hostname: () => hostname(),
    now: () => new Date(),
    platform: () => ({ os: platform(), arch: arch(), kernelVersion: release() }),
  };
}

async function existsAt(path: string): Promise<boolean> {
  try {
    await stat(path);
    return true;
  } catch {
    return false;
  }
}
