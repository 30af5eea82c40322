// Where k8s-join writes on a worker. kubeadm's layout, so tools and habits carry over; /opt/bin for
// binaries because /usr is read-only on Flatcar and Fedora CoreOS.

/** Files, units and directories the agent owns on a worker, relative to the filesystem root. */
export const NODE_PATHS = {
  caCert: '/etc/kubernetes/pki/ca.crt',
  bootstrapKubeconfig: '/etc/kubernetes/bootstrap-kubelet.conf',
  /** Written by the kubelet itself after TLS bootstrap, never by us. */
  kubeletKubeconfig: '/etc/kubernetes/kubelet.conf',
  kubeletConfig: '/var/lib/kubelet/config.yaml',
  kubeletFlagsEnv: '/var/lib/kubelet/k8s-join-flags.env',
  kubeletPkiDir: '/var/lib/kubelet/pki',
  upstreams: '/etc/k8s-join/upstreams',
  konnectivityUpstreams: '/etc/k8s-join/konnectivity-upstreams',
  state: '/var/lib/k8s-join/state.json',
  forwarderUnit: '/etc/systemd/system/k8s-join-forwarder.service',
  konnectivityForwarderUnit: '/etc/systemd/system/k8s-join-konnectivity-forwarder.service',
  kubeletUnit: '/etc/systemd/system/kubelet.service',
  kubeletDropIn: '/etc/systemd/system/kubelet.service.d/10-k8s-join.conf',
  /** Left to the operator for KUBELET_EXTRA_ARGS, as kubeadm's /etc/default/kubelet. */
  kubeletExtraEnv: '/etc/default/kubelet',
} as const;

export const FORWARDER_UNIT_NAME = 'k8s-join-forwarder.service';
/** The second forwarder, VIP:8132 to the konnectivity proxy servers, when the bundle asks for it. */
export const KONNECTIVITY_FORWARDER_UNIT_NAME = 'k8s-join-konnectivity-forwarder.service';
export const KUBELET_UNIT_NAME = 'kubelet.service';
export const DEFAULT_KUBELET_BINARY = '/opt/bin/kubelet';
export const DEFAULT_AGENT_BINARY = '/opt/bin/k8s-join';
export const DEFAULT_CONTAINER_RUNTIME_ENDPOINT = 'unix:///run/containerd/containerd.sock';
/** The kubelet's healthz port (KubeletConfiguration healthzPort default). */
export const KUBELET_HEALTHZ_PORT = 10248;
export const KUBELET_PORT = 10250;
