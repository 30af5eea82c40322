import { spawn } from 'node:child_process';
import { join } from 'node:path';
import { execa } from 'execa';
import type { HostedCluster } from '../kube/hosted-cluster.js';
import { kubeBinary } from '../kube/kube-binaries.js';
import { createNetworkPair, type NetworkPair } from '../net/network-pair.js';
import type { CommandResult } from '../process/command-result.js';
import { REPO_ROOT } from '../repo-root.js';
import type { TlsBootstrapResult } from './kubelet-tls-bootstrap.js';
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
const TLS_BOOTSTRAP_BIN = join(REPO_ROOT, 'test', 'dist', 'harness', 'bin', 'kubelet-tls-bootstrap.js');

/**
 * How the Node comes to be: `kubelet` (the real kubelet with containerd, started by the agent) or
 * `tls-bootstrap` (the fallback: the kubelet's TLS bootstrap and Node registration done by a
 * process using the agent's bootstrap kubeconfig, for machines where the kubelet cannot run).
 */
export type NodeBootstrapMode = 'kubelet' | 'tls-bootstrap';

/** The mode K8S_ON_K8S_NODE_BOOTSTRAP selects: the real kubelet unless it says tls-bootstrap. */
export function nodeBootstrapModeFromEnv(env: NodeJS.ProcessEnv = process.env): NodeBootstrapMode {
  return env.K8S_ON_K8S_NODE_BOOTSTRAP === 'tls-bootstrap' ? 'tls-bootstrap' : 'kubelet';
}

/**
 * The `k8s-join` arguments for a worker of `cluster`: with the real kubelet it waits for the Node;
 * the fallback has no container runtime, so it skips that preflight check and the kubelet wait.
 */
export function joinCommandArgs(
  cluster: Pick<HostedCluster, 'joinUrl' | 'caCertHash'>,
  token: string,
  mode: NodeBootstrapMode,
  timeout = '3m',
): string[] {
  return [
    '--token',
    token,
    '--server',
    cluster.joinUrl,
    '--ca-cert-hash',
    cluster.caCertHash,
    ...(mode === 'kubelet'
      ? ['--wait', '--timeout', timeout]
      : ['--ignore-preflight-errors', 'container-runtime', '--timeout', '0s']),
  ];
}

/** What startJoinWorker boots. */
export interface JoinWorkerOptions {
  readonly cluster: Pick<HostedCluster, 'cpNetns' | 'host'>;
  /** 1..250: the worker's veth subnet is 198.18.INDEX.0/24. */
  readonly index: number;
  readonly hostname: string;
  readonly mode: NodeBootstrapMode;
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
  readonly mode: NodeBootstrapMode;
  /** Runs the agent (`/opt/bin/k8s-join ARGS`) inside the worker. */
  agent(args: readonly string[], timeoutMs?: number): Promise<CommandResult>;
  /** The fallback's TLS bootstrap, in the worker's network namespace through the VIP. */
  tlsBootstrap(timeoutSeconds?: number): Promise<TlsBootstrapResult>;
  stop(): Promise<void>;
}

/**
 * Boots a worker host and joins its network namespace to the control-plane namespace with a veth
 * pair (198.18.INDEX.1 there, 198.18.INDEX.2 here) and a route to the NodePort host through it.
 */
export async function startJoinWorker(options: JoinWorkerOptions): Promise<JoinWorker> {
  const { cluster, index, hostname, mode } = options;
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
      mode,
      agent: (args, timeoutMs = 240_000) => host.exec('/opt/bin/k8s-join', args, { timeoutMs }),
      tlsBootstrap: (timeoutSeconds = 120) =>
        new Promise((resolve, reject) => {
          const child = spawn(
            'ip',
            [
              'netns',
              'exec',
              host.netns,
              process.execPath,
              TLS_BOOTSTRAP_BIN,
              '--root',
              host.rootDir,
              '--node-name',
              hostname,
              '--timeout',
              String(timeoutSeconds),
            ],
            { stdio: ['ignore', 'pipe', 'pipe'] },
          );
          let out = '';
          child.stdout.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
          child.stderr.on('data', (chunk: Buffer) => (out += chunk.toString('utf8')));
          child.once('error', reject);
          child.once('close', (code) => {
            if (code === 0) resolve(JSON.parse(out.trim().split('\n').at(-1) ?? '') as TlsBootstrapResult);
            else
              reject(
                new Error(`kubelet-tls-bootstrap on ${hostname} exited ${code ?? 'by signal'}:\n${out}`),
              );
          });
        }),
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
