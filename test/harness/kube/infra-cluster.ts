import { setTimeout as sleep } from 'node:timers/promises';
import {
  CoreV1Api,
  KubernetesObjectApi,
  type KubernetesObject,
  type V1PodSpec,
} from '@kubernetes/client-node';
import { caCertHash } from '@k8s-on-k8s/shared';
import { applyObjects, buildControlPlaneSpec, renderHostedAssets } from '@k8s-on-k8s/server';
import { NODE_IMAGES_MOUNT, importImages as importNodeImages, nodeImages } from '../image/node-images.js';
import { callJoinServer } from '../join/join-server-client.js';
import { startJoinTestbed, CP_ADDRESS, VIP, WORKER_ADDRESS, type JoinTestbed } from '../join/join-testbed.js';
import type { NetworkNamespace } from '../net/network-namespace.js';
import type { WorkerHost } from '../worker/worker-host.js';
import type { LocalKubeCluster } from './local-kube-cluster.js';

// The infra cluster of the end-to-end tier: a harness apiserver, controller-manager and scheduler on
// this machine, and one real node (a systemd worker host with containerd and the kubelet, joined by
// the agent through the join test bed), so what `k8s-on-k8s create` applies runs as real pods.

/** The StorageClass the node's local PersistentVolumes belong to, marked default (kind's name). */
export const INFRA_STORAGE_CLASS = 'standard';
/** Where the node's local PersistentVolumes live, one directory each. */
const NODE_VOLUMES_DIR = '/var/lib/k8s-on-k8s/volumes';

/** What startInfraCluster makes. */
export interface InfraClusterOptions {
  /** For temp dirs, the cluster name and logs. */
  readonly name: string;
  /** The node's hostname and Node name (default infra-1). */
  readonly nodeName?: string;
  /** How many local PersistentVolumes to offer (default 1). */
  readonly volumes?: number;
  /** Their capacity (default 1Gi, create's default --etcd-storage). */
  readonly volumeSize?: string;
  /** The node's pod capacity (k8s-join --max-pods; default the kubelet's 110). */
  readonly maxPods?: number;
}

/** A running infra cluster with one Ready node. */
export interface InfraCluster {
  readonly api: LocalKubeCluster;
  readonly bed: JoinTestbed;
  readonly node: WorkerHost;
  readonly nodeName: string;
  /** The network namespace holding exposedAddress; the node's default gateway. */
  readonly cpNetns: NetworkNamespace;
  /** The node's InternalIP (its veth address). */
  readonly nodeAddress: string;
  /** The control-plane namespace's address: where the infra apiserver and join server are exposed. */
  readonly exposedAddress: string;
  /** The infra apiserver as the node (and anything in its network namespace) reaches it. */
  readonly exposedApiUrl: string;
  /** From the agent's start to the Node's Ready condition. */
  readonly joinToReadyMs: number;
  /**
   * `ctr -n k8s.io images import`s each image's archive from dist/images into the node's containerd,
   * so the kubelet finds it without a pull; fails naming an image that has no archive.
   */
  importImages(images: readonly string[]): Promise<void>;
  /** The image names containerd's CRI namespace holds. */
  nodeImages(): Promise<string[]>;
  /**
   * A pod's memory as its cgroup on the node counts it (cgroup v1): the working set the kubelet
   * reports (usage minus inactive file cache) and the peak usage since the pod started or since
   * resetPodMemoryPeak.
   */
  podMemory(podUid: string): Promise<PodMemory>;
  /** The CPU time a pod has used since it started, in seconds (its cgroup v1 cpuacct.usage). */
  podCpuSeconds(podUid: string): Promise<number>;
  /** Starts a new peak for podMemory (writes the cgroup's memory.max_usage_in_bytes). */
  resetPodMemoryPeak(podUid: string): Promise<void>;
  /** The last lines of the kubelet's and containerd's journals. */
  nodeJournal(lines?: number): Promise<string>;
  /** The last lines of every container log the kubelet wrote (/var/log/pods), by file. */
  podLogs(lines?: number): Promise<string>;
  stop(): Promise<void>;
}

/** What podMemory reads, in bytes. */
export interface PodMemory {
  readonly workingSetBytes: number;
  readonly peakBytes: number;
}

/** A shell snippet setting $d to the cgroup v1 memory directory of the pod `uid` (either driver's name). */
function podCgroupDir(uid: string, controller = 'memory'): string {
  const name = `pod${uid}`;
  const slice = `*pod${uid.replace(/-/g, '_')}.slice`;
  return `d=$(find /sys/fs/cgroup/${controller} -type d \\( -name '${name}' -o -name '${slice}' \\) | head -1); [ -n "$d" ] || { echo "no ${controller} cgroup for pod ${uid}" >&2; exit 1; }`;
}

/** The container images of every workload (Deployment, StatefulSet, DaemonSet) among `objects`. */
export function workloadImages(objects: readonly KubernetesObject[]): string[] {
  const images = objects.flatMap((object) => {
    if (!['Deployment', 'StatefulSet', 'DaemonSet'].includes(object.kind ?? '')) return [];
    const spec = (object as { spec?: { template?: { spec?: V1PodSpec } } }).spec?.template?.spec;
    return [...(spec?.initContainers ?? []), ...(spec?.containers ?? [])].map((c) => c.image ?? '');
  });
  return [...new Set(images)].sort();
}

/** The local cluster's service range (its default) and the cluster DNS address in it. */
const SERVICE_CIDR = '10.0.0.0/24';
export const INFRA_CLUSTER_DNS = '10.0.0.10';

/**
 * The node's add-ons, rendered by the product itself: the infra node is a k8s-join worker of the
 * infra cluster (the VIP on its lo, the forwarder relaying VIP:443 to the infra apiserver), exactly
 * what renderHostedAssets assumes of a hosted cluster's workers. So: node-bootstrap RBAC, the
 * kube-proxy DaemonSet and CoreDNS on INFRA_CLUSTER_DNS; no CNI (the node's bridge serves), no konnectivity. Plus the
 * `kubernetes` Service's EndpointSlice, VIP:443: the harness apiserver runs with
 * --endpoint-reconciler-type=none, and in-cluster clients (CoreDNS) reach the API through it.
 */
export function renderInfraAddons(): KubernetesObject[] {
  const spec = buildControlPlaneSpec({
    name: 'infra',
    namespace: 'kube-system',
    host: CP_ADDRESS,
    serviceCidr: SERVICE_CIDR,
    cni: 'none',
    // The infra apiserver is the harness's own process on this machine: it reaches its node directly.
    konnectivity: false,
  });
  if (spec.clusterDnsIp !== INFRA_CLUSTER_DNS) throw new Error(`cluster DNS is ${spec.clusterDnsIp}`);
  const endpoints = {
    apiVersion: 'discovery.k8s.io/v1',
    kind: 'EndpointSlice',
    metadata: {
      name: 'kubernetes',
      namespace: 'default',
      labels: { 'kubernetes.io/service-name': 'kubernetes' },
    },
    addressType: 'IPv4',
    endpoints: [{ addresses: [VIP], conditions: { ready: true } }],
    ports: [{ name: 'https', port: 443, protocol: 'TCP' }],
  };
  return [...renderHostedAssets(spec), endpoints];
}

/**
 * A default no-provisioner StorageClass and local PersistentVolumes pinned to the node. Local rather
 * than hostPath: the kubelet applies a pod's fsGroup to a local volume (etcd runs as 65532 and must
 * own its data dir) but never to a hostPath one, and a local PV carries the node affinity the
 * scheduler's volume binding needs. WaitForFirstConsumer binds a claim when its pod is scheduled, as
 * on a cluster with several nodes.
 */
export function renderLocalVolumes(options: {
  nodeName: string;
  count: number;
  size: string;
}): KubernetesObject[] {
  const storageClass = {
    apiVersion: 'storage.k8s.io/v1',
    kind: 'StorageClass',
    metadata: {
      name: INFRA_STORAGE_CLASS,
      annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' },
    },
    provisioner: 'kubernetes.io/no-provisioner',
    volumeBindingMode: 'WaitForFirstConsumer',
    reclaimPolicy: 'Retain',
  };
  const volumes = Array.from({ length: options.count }, (_, i) => ({
    apiVersion: 'v1',
    kind: 'PersistentVolume',
    metadata: { name: `${options.nodeName}-local-${i}` },
    spec: {
      capacity: { storage: options.size },
      accessModes: ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Retain',
      storageClassName: INFRA_STORAGE_CLASS,
      volumeMode: 'Filesystem',
      local: { path: `${NODE_VOLUMES_DIR}/${i}` },
      nodeAffinity: {
        required: {
          nodeSelectorTerms: [
            {
              matchExpressions: [
                { key: 'kubernetes.io/hostname', operator: 'In', values: [options.nodeName] },
              ],
            },
          ],
        },
      },
    },
  }));
  return [storageClass, ...volumes];
}

/**
 * Starts the infra cluster: the join test bed with a scheduler, the agent joining the worker to that
 * same cluster as the kubelet-in-worker test does, the Node Ready, and its local volumes offered.
 */
export async function startInfraCluster(options: InfraClusterOptions): Promise<InfraCluster> {
  const nodeName = options.nodeName ?? 'infra-1';
  const bed = await startJoinTestbed({
    name: options.name,
    hostname: nodeName,
    scheduler: true,
    prepareCluster: async (cluster) => {
      await applyObjects(cluster.kubeConfig(), renderInfraAddons());
    },
    joinServerArgs: ['--cluster-dns', INFRA_CLUSTER_DNS],
    bindMounts: [NODE_IMAGES_MOUNT],
  });
  const { cp: api, worker: node } = bed;
  const journal = async (lines = 60): Promise<string> => {
    const result = await node.exec('journalctl', [
      ...['--no-pager', '-o', 'short-monotonic', '-n', String(lines)],
      ...['-u', 'kubelet', '-u', 'containerd', '-u', 'k8s-on-k8s-pause-image'],
    ]);
    return `--- journalctl -u kubelet -u containerd (${nodeName}) ---\n${result.stdout}${result.stderr}`;
  };
  try {
    const importImages = (images: readonly string[]): Promise<void> => importNodeImages(node, images);
    // Before the join, so the add-ons' pods (applied already) find their images at once.
    await importImages(workloadImages(renderInfraAddons()));
    // The worker root's resolver is its own loopback (nothing answers, so lookups fail at once). A
    // CoreDNS pod inherits it (dnsPolicy Default) and its `loop` plugin would find itself on
    // 127.0.0.1:53 and exit; the control-plane namespace's address refuses port 53 just as fast.
    await node.writeFile('/etc/resolv.conf', `nameserver ${CP_ADDRESS}\n`);
    const minted = await callJoinServer(`${bed.server.url}/v1/tokens`, {
      caPem: api.ca.certPem,
      clientCert: bed.admin,
      body: { ttl: '10m', uses: 1 },
    });
    if (minted.status !== 201) throw new Error(`minting a join token: ${minted.status} ${minted.text}`);
    const { token } = minted.json() as { token: string };
    await node.writeFile('/root/token', `${token}\n`, 0o600);
    const joinStart = Date.now();
    const joined = await node.exec(
      '/opt/bin/k8s-join',
      [
        ...['--server', bed.serverUrl, '--ca-cert-hash', caCertHash(api.ca.certPem)],
        ...['--token-file', '/root/token', '--wait', '--timeout', '3m'],
        ...(options.maxPods === undefined ? [] : ['--max-pods', String(options.maxPods)]),
      ],
      { timeoutMs: 240_000 },
    );
    if (joined.exitCode !== 0) {
      throw new Error(
        `k8s-join exited ${joined.exitCode}\n${joined.stdout}${joined.stderr}\n${await journal()}`,
      );
    }
    const core = api.kubeConfig().makeApiClient(CoreV1Api);
    const deadline = Date.now() + 120_000;
    let ready = 'not registered';
    for (;;) {
      const seen = await core.readNode({ name: nodeName });
      const condition = seen.status?.conditions?.find((c) => c.type === 'Ready');
      ready = `${condition?.status ?? 'none'} ${condition?.reason ?? ''}: ${condition?.message ?? ''}`;
      if (condition?.status === 'True') break;
      if (Date.now() > deadline)
        throw new Error(`Node ${nodeName} not Ready: ${ready}\n${await journal(120)}`);
      await sleep(1000);
    }
    const joinToReadyMs = Date.now() - joinStart;

    const count = options.volumes ?? 1;
    for (let i = 0; i < count; i++) {
      const made = await node.exec('mkdir', ['-p', `${NODE_VOLUMES_DIR}/${i}`]);
      if (made.exitCode !== 0) throw new Error(`mkdir on ${nodeName}: ${made.stderr}`);
    }
    const objects = KubernetesObjectApi.makeApiClient(api.kubeConfig());
    for (const object of renderLocalVolumes({ nodeName, count, size: options.volumeSize ?? '1Gi' })) {
      await objects.create(object);
    }

    return {
      api,
      bed,
      node,
      nodeName,
      cpNetns: bed.cpNetns,
      nodeAddress: WORKER_ADDRESS,
      exposedAddress: CP_ADDRESS,
      // startJoinTestbed exposes the apiserver there on 6443.
      exposedApiUrl: `https://${CP_ADDRESS}:6443`,
      joinToReadyMs,
      importImages,
      nodeImages: () => nodeImages(node),
      nodeJournal: journal,
      async podCpuSeconds(podUid) {
        const read = await node.exec('sh', [
          '-c',
          `${podCgroupDir(podUid, 'cpuacct')}; cat "$d/cpuacct.usage"`,
        ]);
        const nanoseconds = Number(read.stdout.trim());
        if (read.exitCode !== 0 || !Number.isFinite(nanoseconds)) {
          throw new Error(
            `reading pod ${podUid}'s cpuacct cgroup on ${nodeName}: ${read.stdout}${read.stderr}`,
          );
        }
        return nanoseconds / 1e9;
      },
      async podMemory(podUid) {
        const read = await node.exec('sh', [
          '-c',
          `${podCgroupDir(podUid)}; echo "$(cat "$d/memory.usage_in_bytes") $(sed -n 's/^total_inactive_file //p' "$d/memory.stat") $(cat "$d/memory.max_usage_in_bytes")"`,
        ]);
        const [usage, inactive, peak] = read.stdout.trim().split(' ').map(Number);
        if (read.exitCode !== 0 || usage === undefined || inactive === undefined || peak === undefined) {
          throw new Error(
            `reading pod ${podUid}'s memory cgroup on ${nodeName}: ${read.stdout}${read.stderr}`,
          );
        }
        return { workingSetBytes: usage - inactive, peakBytes: peak };
      },
      async resetPodMemoryPeak(podUid) {
        const reset = await node.exec('sh', [
          '-c',
          `${podCgroupDir(podUid)}; echo 0 > "$d/memory.max_usage_in_bytes"`,
        ]);
        if (reset.exitCode !== 0) throw new Error(`resetting pod ${podUid}'s memory peak: ${reset.stderr}`);
      },
      async podLogs(lines = 20) {
        const result = await node.exec('sh', [
          '-c',
          `for f in /var/log/pods/*/*/*.log; do [ -e "$f" ] && { echo "--- $f"; tail -n ${lines} "$f"; }; done`,
        ]);
        return `${result.stdout}${result.stderr}`;
      },
      stop: () => bed.stop(),
    };
  } catch (error) {
    await bed.stop();
    throw error;
  }
}
