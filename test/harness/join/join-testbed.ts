import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { issueCertificate, type CertifiedKeyPair } from '@k8s-on-k8s/shared';
import { kubeBinary } from '../kube/kube-binaries.js';
import { startLocalKubeCluster, type LocalKubeCluster } from '../kube/local-kube-cluster.js';
import { exposeInNamespace, type NamespaceExposure } from '../net/namespace-exposure.js';
import { createNetworkNamespace, type NetworkNamespace } from '../net/network-namespace.js';
import { createNetworkPair, type NetworkPair } from '../net/network-pair.js';
import { REPO_ROOT } from '../repo-root.js';
import type { WorkerBindMount } from '../worker/worker-bind-mount.js';
import { startWorkerHost, type WorkerHost } from '../worker/worker-host.js';
import {
  applyJoinServerRbac,
  prepareJoinServerFiles,
  startInProcessJoinServer,
  type InProcessJoinServer,
} from './in-process-join-server.js';
import { uniqueTestResourceName } from '../process/test-resource-name.js';

// The set-up the agent tests share: a harness apiserver and a join server on this machine, both
// exposed inside a control-plane network namespace (the infra cluster's NodePort, in effect), and a
// systemd worker host joined to it by a veth pair, with the single-executable agent and the
// harness kubelet at /opt/bin.

export const CP_ADDRESS = '198.18.0.1';
export const WORKER_ADDRESS = '198.18.0.2';
export const VIP = '10.199.199.199';
export const AGENT = join(REPO_ROOT, 'packages', 'agent', 'dist', `k8s-join-linux-${process.arch}`);

/** A running join test bed; stop() removes all of it. */
export interface JoinTestbed {
  readonly cp: LocalKubeCluster;
  readonly server: InProcessJoinServer;
  /** A system:masters client certificate of the cluster CA, for the join server's admin API. */
  readonly admin: CertifiedKeyPair;
  readonly worker: WorkerHost;
  /** The control-plane namespace (CP_ADDRESS): the worker's veth peer and default gateway. */
  readonly cpNetns: NetworkNamespace;
  /** The join server as the worker reaches it. */
  readonly serverUrl: string;
  stop(): Promise<void>;
}

/** Starts the control plane, the join server, the namespaces, the worker and the exposures. */
export async function startJoinTestbed(options: {
  name: string;
  hostname: string;
  /** Runs after the join server's RBAC is applied, e.g. to add node-bootstrap bindings. */
  prepareCluster?: (cp: LocalKubeCluster) => Promise<void>;
  /** Also start kube-scheduler, for a cluster whose pods are placed on the worker. */
  scheduler?: boolean;
  /** Join server flags appended last (they win), e.g. --cluster-dns for the worker's kubelet. */
  joinServerArgs?: readonly string[];
  /** More paths of this machine made visible inside the worker. */
  bindMounts?: readonly WorkerBindMount[];
}): Promise<JoinTestbed> {
  const dir = await mkdtemp(join(tmpdir(), `${uniqueTestResourceName()}-${options.name}-`));
  const cleanups: (() => Promise<void>)[] = [() => rm(dir, { recursive: true, force: true })];
  const stop = async (): Promise<void> => {
    for (const cleanup of cleanups.splice(0).reverse()) await cleanup().catch(() => undefined);
  };
  try {
    const cp = await startLocalKubeCluster({
      name: options.name,
      controllerManager: true,
      scheduler: options.scheduler === true,
      apiserverIpSans: [VIP, CP_ADDRESS],
    });
    cleanups.push(() => cp.stop());
    await applyJoinServerRbac(cp);
    await options.prepareCluster?.(cp);

    const files = await prepareJoinServerFiles(cp, join(dir, 'join-server'));
    // The join server's certificate must name the address workers use.
    const serving = await issueCertificate(cp.ca, {
      commonName: 'k8s-join-server',
      ipAddresses: ['127.0.0.1', CP_ADDRESS],
      usage: 'server',
    });
    await writeFile(join(files.dir, 'tls.crt'), serving.certPem);
    await writeFile(join(files.dir, 'tls.key'), serving.keyPem, { mode: 0o600 });
    const flags = files.baseFlags.map((f, i, all) =>
      all[i - 1] === '--upstream' ? `${CP_ADDRESS}:6443` : f,
    );
    const serverUrl = `https://${CP_ADDRESS}:8443`;
    const server = await startInProcessJoinServer([
      ...flags,
      '--store',
      `file:${join(dir, 'tokens.json')}`,
      '--public-url',
      serverUrl,
      ...(options.joinServerArgs ?? []),
    ]);
    cleanups.push(() => server.shutdown(1000));
    const admin = await issueCertificate(cp.ca, {
      commonName: 'test-admin',
      organizations: ['system:masters'],
      usage: 'client',
    });

    const cpNetns: NetworkNamespace = await createNetworkNamespace();
    cleanups.push(() => cpNetns.delete());
    const worker = await startWorkerHost({
      name: options.name,
      hostname: options.hostname,
      bindMounts: [
        { source: AGENT, target: '/opt/bin/k8s-join', readOnly: true },
        { source: kubeBinary('kubelet'), target: '/opt/bin/kubelet', readOnly: true },
        ...(options.bindMounts ?? []),
      ],
      // containerd's overlayfs snapshotter cannot stack on the worker's overlay root.
      scratchDirs: ['/var/lib/containerd'],
    });
    cleanups.push(() => worker.stop());
    const pair: NetworkPair = await createNetworkPair({
      a: { netns: cpNetns, address: CP_ADDRESS },
      b: { netns: worker.netns, address: WORKER_ADDRESS },
    });
    cleanups.push(() => pair.delete());
    // Like a real machine's: the kubelet takes the node's InternalIP from the default route's interface.
    const route = await worker.exec('ip', ['route', 'add', 'default', 'via', CP_ADDRESS]);
    if (route.exitCode !== 0) throw new Error(`default route in the worker: ${route.stderr}`);
    const exposures: NamespaceExposure[] = [
      await exposeInNamespace({
        netns: cpNetns,
        address: CP_ADDRESS,
        port: 6443,
        targetPort: Number(new URL(cp.url).port),
      }),
      await exposeInNamespace({ netns: cpNetns, address: CP_ADDRESS, port: 8443, targetPort: server.port }),
    ];
    for (const exposure of exposures) cleanups.push(() => exposure.stop());
    return { cp, server, admin, worker, cpNetns, serverUrl, stop };
  } catch (error) {
    await stop();
    throw error;
  }
}
