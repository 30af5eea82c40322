// What the integration and end-to-end tests, the benchmarks and the demo use of the harness, room by
// room; the rest of each room (boot script, cgroups, volume mapping, …) stays the harness's own.

export { REPO_ROOT } from './repo-root.js';

// kube/: real Kubernetes binaries, the local etcd + kube-apiserver cluster, and hosted control planes.
export { KUBE_BINARIES, kubeBinary, type KubeBinary } from './kube/kube-binaries.js';
export { startLocalKubeCluster, type LocalKubeCluster } from './kube/local-kube-cluster.js';
export {
  loadRenderedControlPlane,
  materializeVolumes,
  type RenderedControlPlane,
} from './kube/rendered-control-plane.js';
export {
  INFRA_CLUSTER_DNS,
  INFRA_STORAGE_CLASS,
  renderInfraAddons,
  renderLocalVolumes,
  startInfraCluster,
  workloadImages,
  type InfraCluster,
} from './kube/infra-cluster.js';

export {
  K8S_ON_K8S_BIN,
  startHostedOnInfra,
  type HostedOnInfra,
  type HostedOnInfraOptions,
} from './kube/hosted-on-infra.js';

export { describePods, isPodReady } from './kube/pod-lines.js';

// image/: the image archives build:images leaves in dist/images, unpacked for chroot, and the names
// of the test images (the probe, the shell).
export {
  CHROOT,
  chrootArgs,
  imageArchivePath,
  readImageIndex,
  unpackImageArchive,
  type ImageConfig,
  type UnpackedImage,
} from './image/image-archive.js';
export { PROBE_IMAGE } from './image/probe-image.js';
export { SHELL_IMAGE, shellPod } from './image/shell-image.js';
export { NODE_IMAGES_MOUNT, importImages, nodeImages } from './image/node-images.js';

// net/: test network namespaces and the links between them and this machine.
export { createNetworkNamespace, type NetworkNamespace } from './net/network-namespace.js';
export { createNetworkPair, type NetworkPair } from './net/network-pair.js';
export { freePort } from './net/free-port.js';
export { httpsGet } from './net/https-get.js';

// worker/: systemd worker hosts and the workers that join a hosted cluster.
export { startWorkerHost, type WorkerHost } from './worker/worker-host.js';
export { ensureWorkerRoot } from './worker/worker-root.js';
export { findTestCgroups } from './worker/worker-cgroup.js';
export { KUBELET_KERNEL_TUNABLES } from './worker/kubelet-kernel-tunables.js';
export {
  AGENT_EXECUTABLE,
  joinCommandArgs,
  startJoinWorker,
  type JoinTarget,
  type JoinWorker,
} from './worker/join-worker.js';
export { formatNodeTable } from './worker/node-table.js';

// process/: child processes, cleanup and bounded waits.
export { ChildProcessGroup, type ManagedProcess } from './process/child-process-group.js';
export { eventually } from './process/eventually.js';
export { procStatFields } from './process/proc-stat.js';
export { runCommand } from './process/run-command.js';
export { TEST_RESOURCE_PREFIX, uniqueTestResourceName } from './process/test-resource-name.js';
export { cleanupStaleTestResources } from './process/cleanup-stale-test-resources.js';

// join/: the product's join server stood up against a local cluster, and the agent tests' test bed.
export {
  applyJoinServerRbac,
  prepareJoinServerFiles,
  startInProcessJoinServer,
  type InProcessJoinServer,
  type JoinServerFiles,
} from './join/in-process-join-server.js';
export { callJoinServer, joinRequestBody } from './join/join-server-client.js';
export { startJoinTestbed, VIP, type JoinTestbed } from './join/join-testbed.js';
export { isProcessAlive } from './process/is-process-alive.js';
export { installOperator } from './kube/operator-install.js';
export { importControlPlaneImages } from './kube/control-plane-images.js';
