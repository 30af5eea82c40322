import { join } from 'node:path';
import { execa } from 'execa';
import { kubeBinary } from '../kube/kube-binaries.js';
import { createNetworkPair, type NetworkPair } from '../net/network-pair.js';
import type { NetworkNamespace } from '../net/network-namespace.js';
import type { CommandResult } from '../process/command-result.js';
import { REPO_ROOT } from '../repo-root.js';
import type { WorkerBindMount } from './worker-bind-mount.js';
import { startWorkerHost, type WorkerHost } from './worker-host.js';

// The worker's half of the end-to-end story: a systemd worker host in its own network namespace,
// joined to the control-plane namespace by a veth pair, with the single-executable agent and the
// harness kubelet on it.

/** The agent as `node scripts/build-agent.mjs` leaves it. */
export const AGENT_EXECUTABLE = join(
  REPO_ROOT,
  'packages',
  'agent',
  'dist',
  `k8s-join-linux-${process.arch}`,
);
/** What a worker needs to know of the hosted cluster it joins. */
export interface JoinTarget {
  readonly joinUrl: string;
  readonly caCertHash: string;
}

/** The `k8s-join` arguments for a worker of `cluster`: it waits for its Node, up to `timeout`. */
export function joinCommandArgs(cluster: JoinTarget, token: string, timeout = '3m'): string[] {
  return [
    ...['--token', token, '--server', cluster.joinUrl, '--ca-cert-hash', cluster.caCertHash],
    ...['--wait', '--timeout', timeout],
  ];
}

/** What startJoinWorker boots. */
export interface JoinWorkerOptions {
  /** The namespace the worker's veth peer lives in (its default gateway). */
  readonly cluster: { readonly cpNetns: NetworkNamespace };
  /** 1..250: the worker's veth subnet is 198.18.INDEX.0/24. */
  readonly index: number;
  readonly hostname: string;
  /** A directory that outlives the worker (the kubelet's masked sysctls are written there). */
  readonly dir: string;
  /** More paths of this machine made visible inside the worker (e.g. NODE_IMAGES_MOUNT). */
  readonly bindMounts?: readonly WorkerBindMount[];
}

/** A worker host wired to the control-plane namespace. */
export interface JoinWorker {
  readonly host: WorkerHost;
  readonly hostname: string;
  readonly address: string;
  /** Runs the agent (`/opt/bin/k8s-join ARGS`) inside the worker. */
  agent(args: readonly string[], timeoutMs?: number): Promise<CommandResult>;
  stop(): Promise<void>;
}

/**
 * Boots a worker host and joins its network namespace to the control-plane namespace with a veth
 * pair (198.18.INDEX.1 there, 198.18.INDEX.2 here) and a route to the NodePort host through it.
 */
export async function startJoinWorker(options: JoinWorkerOptions): Promise<JoinWorker> {
  const { cluster, index, hostname } = options;
  const host = await startWorkerHost({
    name: hostname,
    hostname,
    bindMounts: [
      { source: AGENT_EXECUTABLE, target: '/opt/bin/k8s-join', readOnly: true },
      { source: kubeBinary('kubelet'), target: '/opt/bin/kubelet', readOnly: true },
      ...(options.bindMounts ?? []),
    ],
    // containerd's overlayfs snapshotter cannot stack on the worker's overlay root (without it the
    // worker root's sandbox-image import fails and holds kubelet.service back for a job timeout).
    scratchDirs: ['/var/lib/containerd'],
  });
  let pair: NetworkPair | undefined;
  try {
    const address = `198.18.${index}.2`;
    pair = await createNetworkPair({
      a: { netns: cluster.cpNetns, address: `198.18.${index}.1` },
      b: { netns: host.netns, address },
    });
    // A default route, as a real machine has: the kubelet takes the node's InternalIP from it.
    await execa('ip', ['-n', host.netns, 'route', 'add', 'default', 'via', `198.18.${index}.1`]);
    const wired = pair;
    return {
      host,
      hostname,
      address,
      agent: (args, timeoutMs = 240_000) => host.exec('/opt/bin/k8s-join', args, { timeoutMs }),
      async stop() {
        await host.stop();
        await wired.delete();
      },
    };
  } catch (error) {
    await host.stop();
    await pair?.delete();
    throw error;
  }
}
