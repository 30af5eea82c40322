// What every control-plane workload is made of: labels, the PKI and kubeconfig volumes, the restricted
// security context, containers with probes, and the checksum that rolls pods when their inputs change.
import { createHash } from 'node:crypto';
import type {
  V1EnvVar,
  V1ResourceRequirements,
  V1Container,
  V1Deployment,
  V1PodSpec,
  V1PodTemplateSpec,
  V1Volume,
} from '@kubernetes/client-node';
import { formatHostPort } from '@k8s-on-k8s/shared';
import { quantityBytes } from '../component-resources.js';
import { type ControlPlaneSpec } from '../spec.js';
import { pkiSecretName, type PkiName } from '../pki.js';
import { CONTROL_PLANE_LABEL, COMPONENT_LABEL, CHECKSUM_ANNOTATION } from '../../contract.js';
import { componentName, controlPlaneLabels, type Component } from '../names.js';

/** In-container ports. The apiserver listens on 443 so the hosted `kubernetes` Endpoints read VIP:443. */
export const PORTS = {
  etcdClient: 2379,
  etcdPeer: 2380,
  etcdMetrics: 2381,
  apiserver: 443,
  joinServer: 8443,
};
/**
 * Where workers and their pods reach the hosted API: the VIP on the apiserver's port. The apiserver
 * advertises exactly that (--advertise-address, --secure-port), so the hosted `kubernetes` Service
 * leads there; the join server's --api-endpoint (where each worker's forwarder listens) and
 * kube-proxy's kubeconfig must name the same address, or in-cluster clients reach nothing.
 */
export function advertisedApiEndpoint(spec: Pick<ControlPlaneSpec, 'vip'>): string {
  return `https://${formatHostPort({ host: spec.vip, port: PORTS.apiserver })}`;
}
export const PKI_DIR = '/etc/kubernetes/pki';
const KUBECONFIG_PATH = '/etc/kubernetes/kubeconfig/kubeconfig';
export function componentLabels(spec: ControlPlaneSpec, component: Component): Record<string, string> {
  return { ...controlPlaneLabels(spec), [COMPONENT_LABEL]: component };
}
export function selector(spec: ControlPlaneSpec, component: Component): Record<string, string> {
  return { [CONTROL_PLANE_LABEL]: spec.name, [COMPONENT_LABEL]: component };
}
/** A projected volume of files picked from PKI Secrets: [pki piece, Secret key, file name]. */
export function pkiVolume(
  spec: ControlPlaneSpec,
  name: string,
  files: readonly [PkiName, string, string][],
): V1Volume {
  const bySecret = new Map<string, { key: string; path: string }[]>();
  for (const [pkiName, key, path] of files) {
    const secretName = pkiSecretName(spec, pkiName);
    bySecret.set(secretName, [...(bySecret.get(secretName) ?? []), { key, path }]);
  }
  return {
    name,
    projected: {
      defaultMode: 0o440,
      sources: [...bySecret].map(([secretName, items]) => ({ secret: { name: secretName, items } })),
    },
  };
}
export function secretVolume(name: string, secretName: string): V1Volume {
  return { name, secret: { secretName, defaultMode: 0o440 } };
}
const NON_ROOT = {
  runAsNonRoot: true,
  runAsUser: 65532,
  runAsGroup: 65532,
  fsGroup: 65532,
  seccompProfile: { type: 'RuntimeDefault' },
};
export const RESTRICTED_CONTAINER = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
};
export function podTemplate(
  spec: ControlPlaneSpec,
  component: Component,
  podSpec: V1PodSpec,
): V1PodTemplateSpec {
  return {
    metadata: { labels: componentLabels(spec, component) },
    // The components talk to the hosted apiserver with their own kubeconfigs; the infra cluster's
    // API and its Service environment variables are of no use to them.
    spec: Object.assign(
      { automountServiceAccountToken: false, enableServiceLinks: false, securityContext: NON_ROOT },
      podSpec,
    ),
  };
}
/**
 * How a Go component's runtime is told its memory: GOMEMLIMIT at 90% of the container's limit, so
 * near the limit it collects harder instead of being OOM-killed; GOGC=40, a heap that grows 40%
 * past what is live before a collection instead of doubling, which is what makes an idle control
 * plane small on a node shared by thirty (a little more GC work, and no cliff: a GOMEMLIMIT near the
 * idle size made a controller-manager whose live heap was past it collect all the time). With
 * thirty control planes running, 50 → 40 took 303 → 292 MiB each and idle CPU did not rise.
 */
export function goRuntimeEnv(resources: V1ResourceRequirements): V1EnvVar[] {
  const limit = resources.limits?.memory;
  const bytes = typeof limit === 'string' ? quantityBytes(limit) : Number.NaN;
  if (!Number.isFinite(bytes)) throw new Error(`a Go container needs a memory limit, got ${String(limit)}`);
  return [
    { name: 'GOMEMLIMIT', value: String(Math.floor(bytes * 0.9)) },
    { name: 'GOGC', value: '40' },
  ];
}

/**
 * The controller-manager's and scheduler's leader election: the leader renews every 5 s instead of
 * every 2 s (a write to etcd each time, thirty control planes on a node), within the same 15 s
 * lease and 10 s renew deadline, so a standby takes over no later than before.
 */
export const LEADER_ELECTION_ARGS: readonly string[] = [
  '--leader-elect-lease-duration=15s',
  '--leader-elect-renew-deadline=10s',
  '--leader-elect-retry-period=5s',
];

export function container(
  name: string,
  image: string,
  command: string,
  args: string[],
  extra: Partial<V1Container>,
): V1Container {
  return {
    name,
    image,
    command: [command],
    args,
    securityContext: RESTRICTED_CONTAINER,
    ...extra,
  };
}
/**
 * kubeadm's probe timings for static control-plane pods (timeoutSeconds 15, liveness failing for
 * 8 × 10 s before a restart). With the kubelet's default 1 s timeout, a node whose CPU is saturated
 * (twenty workers joining at once on two cores did it) fails the apiserver's /livez for a minute and
 * restarts it exactly when it is most needed, and every controller loses its lease with it.
 *
 * `ready` is the readiness path, or undefined for none, as kubeadm has for the controller-manager
 * and the scheduler: nothing routes to them, so readiness only tells what the startup probe already
 * did, and every probe over HTTPS is a full TLS handshake (an RSA signature) on a node that thirty
 * control planes keep busy. Without a readiness probe a container is Ready once started.
 */
export function probes(
  port: number,
  scheme: 'HTTP' | 'HTTPS',
  live: string,
  ready: string | undefined,
): Partial<V1Container> {
  const timeoutSeconds = 15;
  return {
    startupProbe: {
      httpGet: { path: live, port, scheme },
      periodSeconds: 5,
      timeoutSeconds,
      failureThreshold: 60,
    },
    livenessProbe: {
      httpGet: { path: live, port, scheme },
      periodSeconds: 10,
      timeoutSeconds,
      failureThreshold: 8,
    },
    ...(ready === undefined
      ? {}
      : { readinessProbe: { httpGet: { path: ready, port, scheme }, periodSeconds: 5, timeoutSeconds } }),
  };
}
export function deployment(
  spec: ControlPlaneSpec,
  component: Component,
  template: V1PodTemplateSpec,
): V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: componentName(spec, component),
      namespace: spec.namespace,
      labels: componentLabels(spec, component),
    },
    spec: {
      replicas: component === 'apiserver' ? spec.apiserverReplicas : 1,
      selector: { matchLabels: selector(spec, component) },
      template,
    },
  };
}
export function kubeconfigArgs(): string[] {
  return [
    `--authentication-kubeconfig=${KUBECONFIG_PATH}`,
    `--authorization-kubeconfig=${KUBECONFIG_PATH}`,
    `--kubeconfig=${KUBECONFIG_PATH}`,
  ];
}
/** Hashes the pod's args and the Secrets it mounts into an annotation, so a real change rolls it. */
export function addChecksum(
  template: V1PodTemplateSpec | undefined,
  secretData: ReadonlyMap<string, Readonly<Record<string, string>>>,
): void {
  if (template?.spec === undefined) return;
  const mounted = (template.spec.volumes ?? []).flatMap((volume) => [
    ...(volume.secret?.secretName === undefined ? [] : [volume.secret.secretName]),
    ...(volume.projected?.sources ?? []).flatMap((source) =>
      source.secret?.name === undefined ? [] : [source.secret.name],
    ),
  ]);
  const hash = createHash('sha256');
  hash.update(JSON.stringify(template.spec.containers.map((c) => [c.image, c.command, c.args])));
  for (const name of [...new Set(mounted)].sort()) {
    hash.update(name);
    hash.update(JSON.stringify(secretData.get(name) ?? null));
  }
  template.metadata = {
    labels: template.metadata?.labels ?? {},
    annotations: { [CHECKSUM_ANNOTATION]: hash.digest('hex') },
  };
}
