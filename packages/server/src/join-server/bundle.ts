import {
  JOIN_API_VERSION,
  ValidationError,
  formatRfc3339,
  renderKubeconfig,
  type JoinBundle,
} from '@k8s-on-k8s/shared';
import { KONNECTIVITY_AGENT_PORT } from '../contract.js';
import type { JoinTokenTaint } from './token-store/store.js';

// The join bundle (protocol v1) and the KubeletConfiguration inside it, as pure functions of the
// server's settings and the freshly minted bootstrap token.

/** Where the kubelet finds the cluster CA on the worker (the agent writes it there). */
export const WORKER_CA_PATH = '/etc/kubernetes/pki/ca.crt';

/** The cluster-wide settings that go into every bundle. */
export interface ClusterSettings {
  /** The API VIP the kubelet and pods use, e.g. https://10.199.199.199:443. */
  readonly apiEndpoint: string;
  /** host:port list the forwarder relays the VIP to. */
  readonly upstreams: readonly string[];
  /** host:port list a worker's second forwarder relays VIP:8132 to; empty or absent: no konnectivity. */
  readonly konnectivityUpstreams?: readonly string[] | undefined;
  readonly clusterDns: string;
  readonly clusterDomain: string;
  readonly kubernetesVersion: string;
}

/** What is particular to one join. */
export interface JoinBundleSpec {
  readonly cluster: ClusterSettings;
  readonly caPem: string;
  readonly nodeName: string;
  readonly bootstrapToken: string;
  readonly bootstrapTokenExpiresAt: Date;
  readonly serverTime: Date;
  readonly nodeLabels?: Readonly<Record<string, string>> | undefined;
  readonly nodeTaints?: readonly JoinTokenTaint[] | undefined;
}

/** The KubeletConfiguration type's fields that we set (kubelet.config.k8s.io/v1beta1). */
export interface KubeletConfiguration {
  readonly apiVersion: 'kubelet.config.k8s.io/v1beta1';
  readonly kind: 'KubeletConfiguration';
  readonly [field: string]: unknown;
}

/**
 * Renders the worker's KubeletConfiguration: client-certificate and webhook authentication,
 * webhook authorization (as kubeadm sets them), systemd cgroups, containerd, certificate rotation.
 */
export function renderKubeletConfiguration(
  cluster: Pick<ClusterSettings, 'clusterDns' | 'clusterDomain'>,
): KubeletConfiguration {
  return {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true, cacheTTL: '2m0s' },
      x509: { clientCAFile: WORKER_CA_PATH },
    },
    authorization: {
      mode: 'Webhook',
      webhook: { cacheAuthorizedTTL: '5m0s', cacheUnauthorizedTTL: '30s' },
    },
    cgroupDriver: 'systemd',
    // Kubernetes 1.35+ refuses to start on cgroup v1 unless told otherwise; this project's test
    // machines are cgroup v1 (KubeletConfiguration.failCgroupV1).
    failCgroupV1: false,
    clusterDNS: [cluster.clusterDns],
    clusterDomain: cluster.clusterDomain,
    containerRuntimeEndpoint: 'unix:///run/containerd/containerd.sock',
    rotateCertificates: true,
    // The kubelet asks for its serving certificate with a CSR (kubernetes.io/kubelet-serving) instead
    // of signing its own: the join server approves it for the Node's own names and addresses, and
    // the apiserver verifies it (--kubelet-certificate-authority) on logs, exec and port-forward.
    serverTLSBootstrap: true,
  };
}

// Rendering YAML costs more than the rest of a join put together, and only the token differs
// between joins: the document is rendered once per endpoint and CA with a placeholder, and the
// token (validated to be [a-z0-9.] only, so it needs no YAML quoting) is put in its place.
const TOKEN_PLACEHOLDER = 'aaaaaa.0000000000000000';
const BOOTSTRAP_TOKEN = /^[a-z0-9]{6}\.[a-z0-9]{16}$/;
let template: { key: string; before: string; after: string } | undefined;

/** Renders the kubeconfig the kubelet uses for TLS bootstrapping (--bootstrap-kubeconfig). */
export function renderBootstrapKubeconfig(spec: {
  readonly apiEndpoint: string;
  readonly caPem: string;
  readonly bootstrapToken: string;
}): string {
  if (!BOOTSTRAP_TOKEN.test(spec.bootstrapToken)) {
    throw new ValidationError(
      'INVALID_TOKEN_FORMAT',
      'Expected a bootstrap token of the form [a-z0-9]{6}.[a-z0-9]{16}',
    );
  }
  const key = `${spec.apiEndpoint}\n${spec.caPem}`;
  if (template?.key !== key) {
    const text = renderKubeconfig({
      clusterName: 'kubernetes',
      server: spec.apiEndpoint,
      caPem: spec.caPem,
      userName: 'tls-bootstrap-token-user',
      credentials: { token: TOKEN_PLACEHOLDER },
    });
    const at = text.indexOf(TOKEN_PLACEHOLDER);
    template = { key, before: text.slice(0, at), after: text.slice(at + TOKEN_PLACEHOLDER.length) };
  }
  return template.before + spec.bootstrapToken + template.after;
}

/** Renders the answer to a successful join. */
export function renderJoinBundle(spec: JoinBundleSpec): JoinBundle {
  const bundle: JoinBundle = {
    apiVersion: JOIN_API_VERSION,
    kind: 'JoinBundle',
    nodeName: spec.nodeName,
    caCert: spec.caPem,
    apiServer: { endpoint: spec.cluster.apiEndpoint, upstreams: [...spec.cluster.upstreams] },
    bootstrapKubeconfig: renderBootstrapKubeconfig({
      apiEndpoint: spec.cluster.apiEndpoint,
      caPem: spec.caPem,
      bootstrapToken: spec.bootstrapToken,
    }),
    bootstrapTokenExpiresAt: formatRfc3339(spec.bootstrapTokenExpiresAt),
    cluster: {
      dnsIP: spec.cluster.clusterDns,
      domain: spec.cluster.clusterDomain,
      kubernetesVersion: spec.cluster.kubernetesVersion,
    },
    kubeletConfig: renderKubeletConfiguration(spec.cluster),
    serverTime: formatRfc3339(spec.serverTime),
  };
  const konnectivity = spec.cluster.konnectivityUpstreams ?? [];
  if (konnectivity.length > 0) {
    bundle.konnectivity = { port: KONNECTIVITY_AGENT_PORT, upstreams: [...konnectivity] };
  }
  if (spec.nodeLabels !== undefined) bundle.nodeLabels = { ...spec.nodeLabels };
  if (spec.nodeTaints !== undefined) {
    bundle.nodeTaints = spec.nodeTaints.map((taint) => ({ ...taint }));
  }
  return bundle;
}
