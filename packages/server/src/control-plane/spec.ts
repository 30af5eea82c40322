// What a hosted control plane is, validated once at the edge: the CLI's flags (or, later, a
// HostedControlPlane resource) become a frozen ControlPlaneSpec that the renderers trust.
import { isIP } from 'node:net';
import { DEFAULT_ETCD_VERSION, DEFAULT_KUBERNETES_VERSION, ValidationError } from '@k8s-on-k8s/shared';

/** How the hosted apiserver and join server are reached from outside the infra cluster. */
export type Exposure = 'nodeport' | 'loadbalancer' | 'ingress';
export const EXPOSURES: readonly Exposure[] = ['nodeport', 'loadbalancer', 'ingress'];

/** The pod network installed into the hosted cluster. */
export type Cni = 'flannel' | 'none';
export const CNIS: readonly Cni[] = ['flannel', 'none'];

/** The label every object of a control plane carries; delete selects by it. */
export const CONTROL_PLANE_LABEL = 'k8s-on-k8s.io/control-plane';

/** The raw, unvalidated values of the create/render flags (undefined = not given). */
export interface ControlPlaneSpecInput {
  readonly name?: string | undefined;
  readonly namespace?: string | undefined;
  readonly host?: string | undefined;
  readonly joinHost?: string | undefined;
  readonly version?: string | undefined;
  readonly expose?: string | undefined;
  readonly ingressClass?: string | undefined;
  readonly apiNodePort?: string | undefined;
  readonly joinNodePort?: string | undefined;
  readonly cni?: string | undefined;
  readonly etcdStorage?: string | undefined;
  readonly serviceCidr?: string | undefined;
  readonly podCidr?: string | undefined;
  readonly vip?: string | undefined;
}

/** A validated, frozen hosted control plane. Every renderer takes this and trusts it. */
export interface ControlPlaneSpec {
  readonly name: string;
  readonly namespace: string;
  /** The public DNS name (or IP) of the hosted apiserver. */
  readonly host: string;
  /** The public DNS name (or IP) of the join server; differs from host only behind an ingress. */
  readonly joinHost: string;
  readonly kubernetesVersion: string;
  /** The registry.k8s.io/etcd tag that goes with kubernetesVersion, e.g. `3.7.0-0`. */
  readonly etcdImageTag: string;
  readonly expose: Exposure;
  readonly ingressClass: string | undefined;
  /** NodePorts of the apiserver and join server Services; undefined = let the infra cluster pick. */
  readonly nodePorts: { readonly api: number | undefined; readonly join: number | undefined };
  readonly cni: Cni;
  /** PersistentVolumeClaim size for etcd, or undefined for an emptyDir (data lost with the pod). */
  readonly etcdStorage: string | undefined;
  readonly serviceCidr: string;
  readonly podCidr: string;
  readonly vip: string;
  readonly clusterDomain: string;
  /** The first IP of the service CIDR: the hosted cluster's `kubernetes` Service. */
  readonly kubernetesServiceIp: string;
  /** The 10th IP of the service CIDR: CoreDNS, as kubeadm places it. */
  readonly clusterDnsIp: string;
}

/**
 * registry.k8s.io/etcd tags per Kubernetes minor, as kubeadm pins them (constants.SupportedEtcdVersion).
 * Only minors listed here are accepted, so the etcd image always matches the apiserver; the default
 * minor follows packages/shared's pinned pair, which the test harness builds and runs.
 */
export const ETCD_IMAGE_TAGS: Readonly<Record<string, string>> = {
  '1.33': '3.5.21-0',
  '1.34': '3.6.4-0',
  [DEFAULT_KUBERNETES_VERSION.replace(/^v(\d+\.\d+)\..*$/, '$1')]: `${DEFAULT_ETCD_VERSION.slice(1)}-0`,
};

export const SPEC_DEFAULTS = {
  version: DEFAULT_KUBERNETES_VERSION,
  expose: 'nodeport',
  cni: 'flannel',
  etcdStorage: '1Gi',
  serviceCidr: '10.3.0.0/24',
  podCidr: '10.2.0.0/16',
  vip: '10.199.199.199',
  clusterDomain: 'cluster.local',
} as const;

/** Longest name such that `<name>-controller-manager` and the etcd pod's labels stay within 63. */
const MAX_NAME_LENGTH = 40;
const DNS_LABEL = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
const DNS_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
const QUANTITY = /^[1-9][0-9]*(Mi|Gi|Ti)$/;

/** Validates the flags of create/render into a frozen spec; errors name the flag and the value. */
export function buildControlPlaneSpec(input: ControlPlaneSpecInput): ControlPlaneSpec {
  const name = required(input.name, 'NAME', 'the control plane name, e.g. `k8s-on-k8s create dev -n team-a`');
  if (!DNS_LABEL.test(name) || name.length > MAX_NAME_LENGTH) {
    throw invalid(
      `Expected NAME to be a DNS label (lower-case letters, digits, '-', starting with a letter) of at most ${MAX_NAME_LENGTH} characters, got ${JSON.stringify(name)}`,
    );
  }
  const namespace = required(input.namespace, '-n/--namespace', 'the infra namespace to create it in');
  if (!DNS_LABEL.test(namespace) || namespace.length > 63) {
    throw invalid(`Expected -n/--namespace to be a namespace name, got ${JSON.stringify(namespace)}`);
  }
  const host = hostName(required(input.host, '--host', 'the public DNS name of the hosted API'), '--host');

  const kubernetesVersion = input.version ?? SPEC_DEFAULTS.version;
  const versionMatch = /^v(1)\.(\d+)\.(\d+)$/.exec(kubernetesVersion);
  const etcdImageTag =
    versionMatch === null ? undefined : ETCD_IMAGE_TAGS[`${versionMatch[1]}.${versionMatch[2]}`];
  if (etcdImageTag === undefined) {
    throw invalid(
      `Expected --version to be a Kubernetes release like ${DEFAULT_KUBERNETES_VERSION} of minor ${Object.keys(ETCD_IMAGE_TAGS).join(', ')}, got ${JSON.stringify(kubernetesVersion)}`,
    );
  }

  const expose = oneOf(input.expose ?? SPEC_DEFAULTS.expose, '--expose', EXPOSURES);
  if (input.ingressClass !== undefined && expose !== 'ingress') {
    throw invalid('--ingress-class is only used with --expose ingress');
  }
  if (input.ingressClass !== undefined && !DNS_SUBDOMAIN.test(input.ingressClass)) {
    throw invalid(
      `Expected --ingress-class to be an IngressClass name, got ${JSON.stringify(input.ingressClass)}`,
    );
  }
  if (expose !== 'nodeport' && (input.apiNodePort !== undefined || input.joinNodePort !== undefined)) {
    throw invalid('--api-node-port and --join-node-port are only used with --expose nodeport');
  }
  const nodePorts = Object.freeze({
    api: nodePort(input.apiNodePort, '--api-node-port'),
    join: nodePort(input.joinNodePort, '--join-node-port'),
  });
  if (nodePorts.api !== undefined && nodePorts.api === nodePorts.join) {
    throw invalid(`Expected --api-node-port and --join-node-port to differ, got ${nodePorts.api} twice`);
  }
  // Behind an ingress with TLS passthrough the two servers are told apart by SNI, so they need two names.
  const joinHost =
    input.joinHost === undefined
      ? expose === 'ingress'
        ? `join.${host}`
        : host
      : hostName(input.joinHost, '--join-host');
  if (expose === 'ingress' && (joinHost === host || isIP(host) !== 0 || isIP(joinHost) !== 0)) {
    throw invalid(
      `With --expose ingress, --host and --join-host must be two different DNS names (the ingress routes by TLS SNI), got ${JSON.stringify(host)} and ${JSON.stringify(joinHost)}`,
    );
  }

  const cni = oneOf(input.cni ?? SPEC_DEFAULTS.cni, '--cni', CNIS);
  const storageText = input.etcdStorage ?? SPEC_DEFAULTS.etcdStorage;
  if (storageText !== 'none' && !QUANTITY.test(storageText)) {
    throw invalid(
      `Expected --etcd-storage to be a size like 1Gi or 512Mi, or none, got ${JSON.stringify(storageText)}`,
    );
  }
  const etcdStorage = storageText === 'none' ? undefined : storageText;

  const service = parseCidr(input.serviceCidr ?? SPEC_DEFAULTS.serviceCidr, '--service-cidr');
  if (service.prefix < 12 || service.prefix > 28) {
    throw invalid(
      `Expected --service-cidr to be between a /12 and a /28 (CoreDNS takes the 10th address), got ${JSON.stringify(service.text)}`,
    );
  }
  const pod = parseCidr(input.podCidr ?? SPEC_DEFAULTS.podCidr, '--pod-cidr');
  if (pod.prefix > 24) {
    throw invalid(
      `Expected --pod-cidr to be a /24 or larger (each node takes a /24), got ${JSON.stringify(pod.text)}`,
    );
  }
  if (overlaps(service, pod)) {
    throw invalid(`Expected --service-cidr ${service.text} and --pod-cidr ${pod.text} not to overlap`);
  }
  const vipText = input.vip ?? SPEC_DEFAULTS.vip;
  const vip = parseIpv4(vipText);
  if (vip === undefined)
    throw invalid(`Expected --vip to be an IPv4 address, got ${JSON.stringify(vipText)}`);
  if (contains(service, vip) || contains(pod, vip)) {
    throw invalid(`Expected --vip ${vipText} to be outside --service-cidr and --pod-cidr`);
  }

  return Object.freeze({
    name,
    namespace,
    host,
    joinHost,
    kubernetesVersion,
    etcdImageTag,
    expose,
    ingressClass: input.ingressClass,
    nodePorts,
    cni,
    etcdStorage,
    serviceCidr: service.text,
    podCidr: pod.text,
    vip: vipText,
    clusterDomain: SPEC_DEFAULTS.clusterDomain,
    kubernetesServiceIp: formatIpv4(service.network + 1),
    clusterDnsIp: formatIpv4(service.network + 10),
  });
}

/** The same spec with the NodePorts the infra cluster allocated filled in. */
export function withNodePorts(spec: ControlPlaneSpec, api: number, join: number): ControlPlaneSpec {
  return Object.freeze({ ...spec, nodePorts: Object.freeze({ api, join }) });
}

/** The port the hosted apiserver answers on at `host`; a NodePort must be known by now. */
export function publicApiPort(spec: ControlPlaneSpec): number {
  return publicPort(spec, spec.nodePorts.api, 443, '--api-node-port');
}

/** The port the join server answers on at `joinHost`. */
export function publicJoinPort(spec: ControlPlaneSpec): number {
  return publicPort(spec, spec.nodePorts.join, spec.expose === 'ingress' ? 443 : 8443, '--join-node-port');
}

/** https://host:port of the hosted apiserver, as the admin kubeconfig names it. */
export function publicApiUrl(spec: ControlPlaneSpec): string {
  return `https://${urlHost(spec.host)}:${publicApiPort(spec)}`;
}

/** https://joinHost:port of the join server, as a worker's `k8s-join --server` names it. */
export function publicJoinUrl(spec: ControlPlaneSpec): string {
  return `https://${urlHost(spec.joinHost)}:${publicJoinPort(spec)}`;
}

function publicPort(
  spec: ControlPlaneSpec,
  nodePort: number | undefined,
  fixed: number,
  flag: string,
): number {
  if (spec.expose !== 'nodeport') return fixed;
  if (nodePort === undefined) {
    throw invalid(
      `--expose nodeport without ${flag}: the port is only known once the Service exists; give ${flag} (30000-32767) to render without a cluster`,
    );
  }
  return nodePort;
}

function urlHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

interface Cidr {
  readonly text: string;
  readonly network: number;
  readonly prefix: number;
}

function parseCidr(text: string, flag: string): Cidr {
  const [address, prefixText, ...rest] = text.split('/');
  const network = address === undefined ? undefined : parseIpv4(address);
  const prefix = Number(prefixText);
  if (network === undefined || rest.length > 0 || !/^\d{1,2}$/.test(prefixText ?? '') || prefix > 32) {
    throw invalid(`Expected ${flag} to be an IPv4 CIDR like 10.3.0.0/24, got ${JSON.stringify(text)}`);
  }
  const size = 2 ** (32 - prefix);
  if (network % size !== 0) {
    throw invalid(
      `Expected ${flag} to start at its network address, got ${JSON.stringify(text)} (did you mean ${formatIpv4(network - (network % size))}/${prefix}?)`,
    );
  }
  return { text, network, prefix };
}

function contains(cidr: Cidr, ip: number): boolean {
  return ip >= cidr.network && ip < cidr.network + 2 ** (32 - cidr.prefix);
}

function overlaps(a: Cidr, b: Cidr): boolean {
  return contains(a, b.network) || contains(b, a.network);
}

function parseIpv4(text: string): number | undefined {
  if (isIP(text) !== 4) return undefined;
  return text.split('.').reduce((sum, octet) => sum * 256 + Number(octet), 0);
}

function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}

function hostName(text: string, flag: string): string {
  const host = text.toLowerCase();
  if (isIP(host) !== 0 || (DNS_SUBDOMAIN.test(host) && host.length <= 253)) return host;
  throw invalid(`Expected ${flag} to be a DNS name or an IP address, got ${JSON.stringify(text)}`);
}

function nodePort(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  const port = Number(text);
  if (!/^\d+$/.test(text) || port < 30000 || port > 32767) {
    throw invalid(`Expected ${flag} to be a NodePort between 30000 and 32767, got ${JSON.stringify(text)}`);
  }
  return port;
}

function required(value: string | undefined, flag: string, what: string): string {
  if (value === undefined || value === '') throw invalid(`Missing ${flag}: ${what}`);
  return value;
}

function oneOf<T extends string>(value: string, flag: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw invalid(`Expected ${flag} to be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`);
  }
  return value as T;
}

function invalid(message: string): ValidationError {
  return new ValidationError('INVALID_ARGUMENT', message);
}
