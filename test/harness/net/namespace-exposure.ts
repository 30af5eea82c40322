import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChildProcessGroup } from '../process/child-process-group.js';
import type { NetworkNamespace } from './network-namespace.js';
import { uniqueTestResourceName } from '../process/test-resource-name.js';

/** A loopback service of this machine made reachable at an address inside a test namespace. */
export interface NamespaceExposure {
  readonly address: string;
  readonly port: number;
  stop(): Promise<void>;
}

/**
 * Makes `127.0.0.1:targetPort` of this machine reachable at `address:port` inside `netns`, the way
 * a NodePort or LoadBalancer exposes the hosted apiserver of the infra cluster. Network namespaces
 * cannot route to each other's loopback, but a Unix socket lives in the filesystem, which they
 * share: socat listens inside the namespace and relays over a Unix socket to a second socat here.
 */
export async function exposeInNamespace(options: {
  netns: NetworkNamespace;
  address: string;
  port: number;
  targetPort: number;
}): Promise<NamespaceExposure> {
  const dir = await mkdtemp(join(tmpdir(), `${uniqueTestResourceName()}-exposure-`));
  const socket = join(dir, 'relay.sock');
  const group = new ChildProcessGroup(dir);
  group.start('socat-host', 'socat', [
    `UNIX-LISTEN:${socket},fork,mode=600`,
    `TCP:127.0.0.1:${options.targetPort}`,
  ]);
  const inner = options.netns.command('socat', [
    `TCP-LISTEN:${options.port},bind=${options.address},fork,reuseaddr`,
    `UNIX-CONNECT:${socket}`,
  ]);
  group.start('socat-netns', inner.command, inner.args);
  const stop = async (): Promise<void> => {
    await group.stop(2000);
    await rm(dir, { recursive: true, force: true });
  };
  // Ready when the inner listener accepts, checked from inside the namespace.
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline) {
    const probe = await options.netns.run('bash', [
      '-c',
      `exec 3<>/dev/tcp/${options.address}/${options.port}`,
    ]);
    if (probe.exitCode === 0) return { address: options.address, port: options.port, stop };
    if (group.firstExited() !== undefined) break;
    await sleep(100);
  }
  const logs = group.logTails();
  await stop();
  throw new Error(
    `exposing 127.0.0.1:${options.targetPort} at ${options.address}:${options.port} failed\n${logs}`,
  );
}
