import { spawnSync } from 'node:child_process';
import { execa } from 'execa';
import type { CommandResult } from '../process/command-result.js';
import { registerExitCleanup } from '../process/exit-cleanup.js';
import { TEST_RESOURCE_PREFIX, uniqueTestResourceName } from '../process/test-resource-name.js';

/** A network namespace a test made: only its loopback, until a veth pair joins it to another. */
export interface NetworkNamespace {
  readonly name: string;
  /** `command args` as a program that runs inside the namespace, e.g. for ChildProcessGroup.start. */
  command(command: string, args: readonly string[]): { command: string; args: string[] };
  /** Runs `command args` inside the namespace (only the network is switched; files are the machine's). */
  run(command: string, args: readonly string[]): Promise<CommandResult>;
  /** Ends the processes still in it and deletes it; safe to call twice. */
  delete(): Promise<void>;
}

/** Refuses anything but a test namespace, so no helper can touch the machine's own network. */
export function assertTestNamespace(name: string): void {
  if (!name.startsWith(TEST_RESOURCE_PREFIX)) {
    throw new Error(`Expected a test network namespace named ${TEST_RESOURCE_PREFIX}*, got "${name}"`);
  }
}

/**
 * Deletes the test namespace `name` at once, killing whatever still runs in it first: a process left
 * inside keeps the namespace (and its addresses) alive after `ip netns delete` drops the name.
 */
export function deleteTestNamespaceSync(name: string): void {
  assertTestNamespace(name);
  const pids = spawnSync('ip', ['netns', 'pids', name], { encoding: 'utf8' });
  for (const pid of pids.stdout.split('\n').filter((line) => /^\d+$/.test(line))) {
    try {
      process.kill(Number(pid), 'SIGKILL');
    } catch {
      // Already gone.
    }
  }
  spawnSync('ip', ['netns', 'delete', name], { stdio: 'ignore' });
}

/** Creates a network namespace with a unique test name (or `name`) and its loopback up. */
export async function createNetworkNamespace(name = uniqueTestResourceName()): Promise<NetworkNamespace> {
  assertTestNamespace(name);
  await execa('ip', ['netns', 'add', name]);
  const unregister = registerExitCleanup(() => {
    deleteTestNamespaceSync(name);
  });
  let deleted = false;
  const command = (cmd: string, args: readonly string[]): { command: string; args: string[] } => ({
    command: 'ip',
    args: ['netns', 'exec', name, cmd, ...args],
  });
  const namespace: NetworkNamespace = {
    name,
    command,
    async run(cmd, args) {
      const inside = command(cmd, args);
      const result = await execa(inside.command, inside.args, { reject: false });
      return { stdout: result.stdout, stderr: result.stderr, exitCode: result.exitCode ?? -1 };
    },
    delete() {
      if (!deleted) {
        deleted = true;
        unregister();
        deleteTestNamespaceSync(name);
      }
      return Promise.resolve();
    },
  };
  try {
    await execa('ip', ['-n', name, 'link', 'set', 'lo', 'up']);
  } catch (error) {
    await namespace.delete();
    throw error;
  }
  return namespace;
}
