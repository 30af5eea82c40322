import { connect } from 'node:net';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { ChildProcessGroup } from '../process/child-process-group.js';
import { freePort } from './free-port.js';
import type { NetworkNamespace } from './network-namespace.js';
import { uniqueTestResourceName } from '../process/test-resource-name.js';

/** A service inside a test namespace made reachable on a loopback port of this machine. */
export interface NamespaceRelay {
  /** The port on 127.0.0.1 of this machine. */
  readonly port: number;
  stop(): Promise<void>;
}

function accepts(port: number): Promise<boolean> {
  return new Promise((resolve) => {
    const socket = connect({ host: '127.0.0.1', port });
    socket.once('connect', () => {
      socket.destroy();
      resolve(true);
    });
    socket.once('error', () => {
      resolve(false);
    });
  });
}

/**
 * The reverse of exposeInNamespace: makes `address:port` inside `netns` reachable at 127.0.0.1 of
 * this machine, so the test process can talk to a server that listens only inside a namespace (an
 * admin reaching the hosted apiserver). socat inside the namespace listens on a Unix socket (the
 * filesystem is shared) and a second socat here relays a loopback port to it; no address of the
 * namespace ever appears in the machine's own network. TLS clients must ask for a name the server's
 * certificate has (e.g. kubeconfig `tls-server-name`), since they connect to 127.0.0.1.
 */
export async function relayFromNamespace(options: {
  netns: NetworkNamespace;
  address: string;
  port: number;
}): Promise<NamespaceRelay> {
  const dir = await mkdtemp(join(tmpdir(), `${uniqueTestResourceName()}-relay-`));
  const socket = join(dir, 'relay.sock');
  const group = new ChildProcessGroup(dir);
  const inner = options.netns.command('socat', [
    `UNIX-LISTEN:${socket},fork,mode=600`,
    `TCP:${options.address}:${options.port}`,
  ]);
  group.start('socat-netns', inner.command, inner.args);
  const port = await freePort();
  const stop = async (): Promise<void> => {
    await group.stop(2000);
    await rm(dir, { recursive: true, force: true });
  };
  const deadline = Date.now() + 10_000;
  while (Date.now() < deadline && !existsSync(socket) && group.firstExited() === undefined) await sleep(50);
  group.start('socat-host', 'socat', [
    `TCP-LISTEN:${port},bind=127.0.0.1,fork,reuseaddr`,
    `UNIX-CONNECT:${socket}`,
  ]);
  while (Date.now() < deadline && group.firstExited() === undefined) {
    if (await accepts(port)) return { port, stop };
    await sleep(50);
  }
  const logs = group.logTails();
  await stop();
  throw new Error(`relaying ${options.address}:${options.port} of ${options.netns.name} failed\n${logs}`);
}
