import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, KubeConfig } from '@kubernetes/client-node';
import { caCertHash, parseKubeconfig, resolveKubeconfig } from '@k8s-on-k8s/shared';
import { componentName } from '@k8s-on-k8s/server';
import { exposeInNamespace, type NamespaceExposure } from '../net/namespace-exposure.js';
import { relayFromNamespace, type NamespaceRelay } from '../net/namespace-relay.js';
import { createNetworkNamespace, type NetworkNamespace } from '../net/network-namespace.js';
import type { CommandResult } from '../process/command-result.js';
import { runCommand } from '../process/run-command.js';
import { REPO_ROOT } from '../repo-root.js';
import { startLocalKubeCluster, type LocalKubeCluster } from './local-kube-cluster.js';
import { loadRenderedControlPlane, type RenderedControlPlane } from './rendered-control-plane.js';

// The admin's half of the end-to-end story: an infra cluster (a harness apiserver on this machine's
// loopback), and a hosted control plane made by the real `k8s-on-k8s create` and run from what it
// stored there, inside a control-plane network namespace where the NodePorts live.

/** The admin CLI, as `npm run build` leaves it. */
export const K8S_ON_K8S_BIN = join(REPO_ROOT, 'packages', 'server', 'dist', 'src', 'bin', 'k8s-on-k8s.js');

/** What startHostedCluster makes. */
export interface HostedClusterOptions {
  /** The control plane's name (`create NAME`). */
  readonly name: string;
  /** The infra namespace it lives in. */
  readonly namespace: string;
  /** The `--host` of create: an address of the control-plane namespace (default 198.18.0.1). */
  readonly host?: string;
  readonly apiNodePort?: number;
  readonly joinNodePort?: number;
  /** create's `--wait` (default 3m). */
  readonly wait?: string;
  /** Progress lines (create's own output included). */
  readonly log?: (line: string) => void;
}

/** A running hosted control plane and the infra cluster holding it. */
export interface HostedCluster {
  readonly name: string;
  readonly namespace: string;
  readonly infra: LocalKubeCluster;
  /** The control-plane namespace: hosted etcd, apiserver, controllers and join server run here. */
  readonly cpNetns: NetworkNamespace;
  readonly rendered: RenderedControlPlane;
  /** The address workers reach the NodePorts at (create's --host). */
  readonly host: string;
  /** https://HOST:API_NODE_PORT and https://HOST:JOIN_NODE_PORT, as workers see them. */
  readonly apiUrl: string;
  readonly joinUrl: string;
  /** The NAME.kubeconfig create wrote (cluster admin). */
  readonly kubeconfigPath: string;
  /** The hosted cluster's CA and its pin (`--ca-cert-hash`). */
  readonly caPem: string;
  readonly caCertHash: string;
  /** Everything create printed. */
  readonly createOutput: string;
  /** From starting `create` to its hosted `/readyz: ok` line. */
  readonly createToReadyzMs: number;
  /** From starting `create` to its exit (hosted assets installed). */
  readonly createMs: number;
  /**
   * NAME.kubeconfig as a client of this process: the same credentials, through a loopback relay into
   * the control-plane namespace, asking for the apiserver's Service name (a SAN of its certificate).
   */
  hostedKubeConfig(): KubeConfig;
  /** Runs `k8s-on-k8s ARGS` inside the control-plane namespace, where the admin's addresses route. */
  cli(args: readonly string[], timeoutMs?: number): Promise<CommandResult>;
  /** Stops the hosted components (as deleting their pods would); the rest stays for stop(). */
  stopComponents(): Promise<void>;
  /** Stops everything, removes the namespaces and temp dirs; safe to call twice. */
  stop(): Promise<void>;
}

/** Waits until `address:port` accepts a TCP connection inside `netns`. */
async function waitForListener(netns: NetworkNamespace, address: string, port: number, timeoutMs: number) {
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const probe = await netns.run('bash', ['-c', `exec 3<>/dev/tcp/${address}/${port}`]);
    if (probe.exitCode === 0) return true;
    await sleep(200);
  }
  return false;
}

/**
 * Starts the infra cluster and, with the real `k8s-on-k8s create … --wait`, a hosted control plane
 * in it. create runs inside the control-plane namespace (the infra apiserver is exposed there on
 * the same loopback port, so its admin kubeconfig works unchanged) and waits for the hosted /readyz
 * through the NodePort address as an admin would; meanwhile this process plays the infra cluster's
 * kubelet, starting each component from the objects create stored. The join server starts once
 * create has installed its RBAC into the hosted cluster (a real Deployment would restart until then).
 */
export async function startHostedCluster(options: HostedClusterOptions): Promise<HostedCluster> {
  const log = options.log ?? (() => undefined);
  const host = options.host ?? '198.18.0.1';
  const apiNodePort = options.apiNodePort ?? 30443;
  const joinNodePort = options.joinNodePort ?? 30843;
  const cleanups: (() => Promise<void>)[] = [];
  let stopped = false;
  const stop = async (): Promise<void> => {
    if (stopped) return;
    stopped = true;
    for (const undo of cleanups.splice(0).reverse()) await undo().catch(() => undefined);
  };
  try {
    const dir = await mkdtemp(join(tmpdir(), `k8s-on-k8s-${options.name}-admin-`));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    log('infra cluster: starting etcd + kube-apiserver');
    const infra = await startLocalKubeCluster({ name: `${options.name}-infra` });
    cleanups.push(() => infra.stop());
    await infra
      .kubeConfig()
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: options.namespace } } });

    const cpNetns = await createNetworkNamespace();
    cleanups.push(() => cpNetns.delete());
    // The NodePort address: on the namespace's loopback, so every worker's veth routes to it.
    await cpNetns.run('ip', ['addr', 'add', `${host}/32`, 'dev', 'lo']);
    const infraPort = Number(new URL(infra.url).port);
    const exposures: NamespaceExposure[] = [
      await exposeInNamespace({
        netns: cpNetns,
        address: '127.0.0.1',
        port: infraPort,
        targetPort: infraPort,
      }),
    ];
    cleanups.push(async () => {
      for (const exposure of exposures) await exposure.stop();
    });

    const cli = (args: readonly string[], timeoutMs = 60_000, onLine?: (line: string) => void) => {
      const inside = cpNetns.command(process.execPath, [K8S_ON_K8S_BIN, ...args]);
      return runCommand(inside.command, inside.args, { cwd: dir, timeoutMs, onLine });
    };

    log(`k8s-on-k8s create ${options.name} -n ${options.namespace} --host ${host}`);
    const createStart = Date.now();
    let readyzAt: number | undefined;
    const creating = cli(
      [
        'create',
        options.name,
        '-n',
        options.namespace,
        '--host',
        host,
        '--api-node-port',
        String(apiNodePort),
        '--join-node-port',
        String(joinNodePort),
        '--kubeconfig',
        infra.adminKubeconfigPath,
        '--wait',
        options.wait ?? '3m',
      ],
      300_000,
      (line) => {
        if (readyzAt === undefined && /readyz: ok/.test(line)) readyzAt = Date.now();
        if (!line.startsWith('applied ')) log(`  create: ${line}`);
      },
    );
    const rendered = await loadRenderedControlPlane({
      infraKubeConfig: infra.kubeConfig(),
      name: options.name,
      namespace: options.namespace,
      netns: cpNetns,
      address: host,
    });
    cleanups.push(() => rendered.stop());
    log(
      'infra "kubelet": starting etcd, kube-apiserver, kube-controller-manager, kube-scheduler from the stored objects',
    );
    for (const component of ['etcd', 'apiserver', 'controller-manager', 'scheduler'] as const) {
      await rendered.start(component);
    }
    const created = await creating;
    if (created.exitCode !== 0 || readyzAt === undefined) {
      throw new Error(
        `k8s-on-k8s create exited ${created.exitCode}\n${created.stdout}\n${created.stderr}\n${rendered.group.logTails()}`,
      );
    }
    const createMs = Date.now() - createStart;
    await rendered.start('join-server');
    if (!(await waitForListener(cpNetns, host, joinNodePort, 30_000))) {
      throw new Error(
        `the join server never listened on ${host}:${joinNodePort}\n${rendered.group.logTails()}`,
      );
    }

    const kubeconfigPath = join(dir, `${options.name}.kubeconfig`);
    const kubeconfigText = await readFile(kubeconfigPath, 'utf8');
    const admin = resolveKubeconfig(parseKubeconfig(kubeconfigText, kubeconfigPath));
    const caPem = admin.caPem ?? '';
    const relay: NamespaceRelay = await relayFromNamespace({
      netns: cpNetns,
      address: host,
      port: apiNodePort,
    });
    cleanups.push(() => relay.stop());
    const serviceName = `${componentName(options, 'apiserver')}.${options.namespace}.svc`;

    return {
      name: options.name,
      namespace: options.namespace,
      infra,
      cpNetns,
      rendered,
      host,
      apiUrl: `https://${host}:${apiNodePort}`,
      joinUrl: `https://${host}:${joinNodePort}`,
      kubeconfigPath,
      caPem,
      caCertHash: caCertHash(caPem),
      createOutput: `${created.stdout}${created.stderr}`,
      createToReadyzMs: readyzAt - createStart,
      createMs,
      hostedKubeConfig() {
        const kubeConfig = new KubeConfig();
        kubeConfig.loadFromString(kubeconfigText);
        const cluster = kubeConfig.getCurrentCluster();
        if (cluster === null) throw new Error(`${kubeconfigPath} has no current cluster`);
        kubeConfig.clusters = kubeConfig.clusters.map((c) =>
          c.name === cluster.name
            ? { ...c, server: `https://127.0.0.1:${relay.port}`, tlsServerName: serviceName }
            : c,
        );
        return kubeConfig;
      },
      cli: (args, timeoutMs) => cli(args, timeoutMs),
      stopComponents: () => rendered.stop(),
      stop,
    };
  } catch (error) {
    await stop();
    throw error;
  }
}
