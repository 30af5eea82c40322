// What a hosted control plane is, validated once at the edge: the CLI's flags, the stored ConfigMap
// (or, later, a HostedControlPlane resource) become a frozen ControlPlaneSpec that the renderers trust.
import { isIP } from 'node:net';
import {
  DEFAULT_ETCD_VERSION,
  DEFAULT_KUBERNETES_VERSION,
  isDns1123Subdomain,
  invalidArgument,
} from '@k8s-on-k8s/shared';
import { KONNECTIVITY_AGENT_PORT } from '../contract.js';
import { validateComponentResources, type ComponentResources } from './component-resources.js';
import { imageReference } from './image-reference.js';
import { contains, formatIpv4, overlaps, parseCidr, parseIpv4 } from './ipv4.js';
import { validateControlPlaneName, validateNamespaceName } from './names.js';

/** How the hosted apiserver and join server are reached from outside the infra cluster. */
export type Exposure = 'nodeport' | 'loadbalancer' | 'ingress';
export const EXPOSURES: readonly Exposure[] = ['nodeport', 'loadbalancer', 'ingress'];

/** The pod network installed into the hosted cluster. */
export type Cni = 'flannel' | 'none';
export const CNIS: readonly Cni[] = ['flannel', 'none'];

/**
 * A control plane as someone asks for it — flags, a stored ConfigMap, later a HostedControlPlane
 * resource — typed, with every defaulted field optional. Values from JSON are still checked at run
 * time (an enum field may hold anything there), with messages naming the caller's field names.
 */
export interface ControlPlaneSpecInput {
  readonly name?: string | undefined;
  readonly namespace?: string | undefined;
  readonly host?: string | undefined;
  readonly joinHost?: string | undefined;
  readonly kubernetesVersion?: string | undefined;
  readonly expose?: Exposure | undefined;
  readonly ingressClass?: string | undefined;
  readonly nodePorts?:
    | {
        readonly api?: number | undefined;
        readonly join?: number | undefined;
        readonly konnectivity?: number | undefined;
      }
    | undefined;
  readonly cni?: Cni | undefined;
  /** Whether kubelets are reached through konnectivity (default: yes, except behind an ingress). */
  readonly konnectivity?: boolean | undefined;
  /** How many kube-apiserver pods (default 1); each has its konnectivity proxy server. */
  readonly apiserverReplicas?: number | undefined;
  /** PersistentVolumeClaim size for etcd; null for an emptyDir (data lost with the pod). */
  readonly etcdStorage?: string | null | undefined;
  readonly serviceCidr?: string | undefined;
  readonly podCidr?: string | undefined;
  readonly vip?: string | undefined;
  /** The join server image; undefined for the one built with this CLI. */
  readonly joinServerImage?: string | undefined;
  /** Requests and memory limits per component over the measured defaults (validated: unknown until then). */
  readonly componentResources?: unknown;
}

/** What each input field is called where the input came from, so errors speak the caller's words. */
export type SpecFieldNames = Readonly<
  Record<
    | Exclude<keyof ControlPlaneSpecInput, 'nodePorts'>
    | 'apiNodePort'
    | 'joinNodePort'
    | 'konnectivityNodePort',
    string
  >
>;

/** The names of `create`'s flags. */
export const FLAG_FIELD_NAMES: SpecFieldNames = {
  name: 'NAME',
  namespace: '-n/--namespace',
  host: '--host',
  joinHost: '--join-host',
  kubernetesVersion: '--version',
  expose: '--expose',
  ingressClass: '--ingress-class',
  apiNodePort: '--api-node-port',
  joinNodePort: '--join-node-port',
  konnectivityNodePort: '--konnectivity-node-port',
  cni: '--cni',
  konnectivity: '--konnectivity',
  apiserverReplicas: '--apiserver-replicas',
  etcdStorage: '--etcd-storage',
  serviceCidr: '--service-cidr',
  podCidr: '--pod-cidr',
  vip: '--vip',
  joinServerImage: '--join-server-image',
  componentResources: '--component-resources',
};

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
  /**
   * The join server image, or undefined for the one built with this CLI (JOIN_SERVER_IMAGE), which
   * then follows the CLI's version on upgrade; only a chosen image is stored in spec.json.
   */
  readonly joinServerImage: string | undefined;
  readonly expose: Exposure;
  readonly ingressClass: string | undefined;
  /**
   * NodePorts of the apiserver, join server and konnectivity agent ports; undefined = let the
   * infra cluster pick (konnectivity's stays undefined without konnectivity).
   */
  readonly nodePorts: {
    readonly api: number | undefined;
    readonly join: number | undefined;
    readonly konnectivity: number | undefined;
  };
  readonly cni: Cni;
  /**
   * Whether the apiserver reaches kubelets through konnectivity: a proxy server beside it, an agent
   * on every worker that dials out to it, so logs/exec/port-forward work for workers it cannot route to.
   */
  readonly konnectivity: boolean;
  /** kube-apiserver pods; with konnectivity every agent keeps a tunnel to each one's proxy server. */
  readonly apiserverReplicas: number;
  /** PersistentVolumeClaim size for etcd, or undefined for an emptyDir (data lost with the pod). */
  readonly etcdStorage: string | undefined;
  readonly serviceCidr: string;
  readonly podCidr: string;
  readonly vip: string;
  readonly clusterDomain: string;
  /** Overrides of COMPONENT_RESOURCES (only what was asked for; resourcesOf merges). */
  readonly componentResources: ComponentResources;
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

/** The bounds the validation below enforces, named once for the HostedControlPlane CRD's schema. */
export const SPEC_LIMITS = {
  nodePort: { min: 30000, max: 32767 },
  apiserverReplicas: { min: 1, max: 5 },
  /** An etcd claim size: whole Mi, Gi or Ti. */
  quantity: /^[1-9][0-9]*(Mi|Gi|Ti)$/,
  /** Releases of the minors in ETCD_IMAGE_TAGS. */
  version: new RegExp(
    `^v1\\.(${Object.keys(ETCD_IMAGE_TAGS)
      .map((minor) => minor.replace(/^1\./, ''))
      .join('|')})\\.[0-9]+$`,
  ),
} as const;
const QUANTITY = SPEC_LIMITS.quantity;

/**
 * Validates a control plane request into a frozen spec: defaults filled, derived addresses
 * computed. Errors name the field as `fields` calls it (flags by default) and quote the value.
 */
export function buildControlPlaneSpec(
  input: ControlPlaneSpecInput,
  fields: SpecFieldNames = FLAG_FIELD_NAMES,
): ControlPlaneSpec {
  const name = validateControlPlaneName(
    required(input.name, fields.name, 'the control plane name, e.g. `k8s-on-k8s create dev -n team-a`'),
    fields.name,
  );
  const namespace = validateNamespaceName(
    required(input.namespace, fields.namespace, 'the infra namespace to create it in'),
    fields.namespace,
  );
  const host = hostName(
    required(input.host, fields.host, 'the public DNS name of the hosted API'),
    fields.host,
  );

  const kubernetesVersion = input.kubernetesVersion ?? SPEC_DEFAULTS.version;
  const versionMatch = /^v(1)\.(\d+)\.(\d+)$/.exec(kubernetesVersion);
  const etcdImageTag =
    versionMatch === null ? undefined : ETCD_IMAGE_TAGS[`${versionMatch[1]}.${versionMatch[2]}`];
  if (etcdImageTag === undefined) {
    throw invalidArgument(
      `Expected ${fields.kubernetesVersion} to be a Kubernetes release like ${DEFAULT_KUBERNETES_VERSION} of minor ${Object.keys(ETCD_IMAGE_TAGS).join(', ')}, got ${JSON.stringify(kubernetesVersion)}`,
    );
  }

  const expose = oneOf(input.expose ?? SPEC_DEFAULTS.expose, fields.expose, EXPOSURES);
  if (input.ingressClass !== undefined && expose !== 'ingress') {
    throw invalidArgument(`${fields.ingressClass} is only used with ${fields.expose} ingress`);
  }
  if (input.ingressClass !== undefined && !isDns1123Subdomain(input.ingressClass)) {
    throw invalidArgument(
      `Expected ${fields.ingressClass} to be an IngressClass name, got ${JSON.stringify(input.ingressClass)}`,
    );
  }
  // konnectivity's agent port would need a TLS-passthrough route of its own behind an ingress.
  if (input.konnectivity === true && expose === 'ingress') {
    throw invalidArgument(
      `${fields.konnectivity} is not supported with ${fields.expose} ingress yet (its agent port needs a route of its own); use nodeport or loadbalancer, or ${fields.konnectivity}=false`,
    );
  }
  const konnectivity = input.konnectivity ?? expose !== 'ingress';
  const givenPorts = input.nodePorts ?? {};
  const givenAny = [givenPorts.api, givenPorts.join, givenPorts.konnectivity].some((p) => p !== undefined);
  if (expose !== 'nodeport' && givenAny) {
    throw invalidArgument(
      `${fields.apiNodePort}, ${fields.joinNodePort} and ${fields.konnectivityNodePort} are only used with ${fields.expose} nodeport`,
    );
  }
  if (!konnectivity && givenPorts.konnectivity !== undefined) {
    throw invalidArgument(`${fields.konnectivityNodePort} is only used with konnectivity`);
  }
  const nodePorts = Object.freeze({
    api: nodePort(givenPorts.api, fields.apiNodePort),
    join: nodePort(givenPorts.join, fields.joinNodePort),
    konnectivity: nodePort(givenPorts.konnectivity, fields.konnectivityNodePort),
  });
  const named: [number | undefined, string][] = [
    [nodePorts.api, fields.apiNodePort],
    [nodePorts.join, fields.joinNodePort],
    [nodePorts.konnectivity, fields.konnectivityNodePort],
  ];
  for (const [i, [port, field]] of named.entries()) {
    const twin = named.slice(i + 1).find(([other]) => port !== undefined && other === port);
    if (twin !== undefined) {
      throw invalidArgument(`Expected ${field} and ${twin[1]} to differ, got ${String(port)} twice`);
    }
  }
  // Behind an ingress with TLS passthrough the two servers are told apart by SNI, so they need two names.
  const joinHost =
    input.joinHost === undefined
      ? expose === 'ingress'
        ? `join.${host}`
        : host
      : hostName(input.joinHost, fields.joinHost);
  if (expose === 'ingress' && (joinHost === host || isIP(host) !== 0 || isIP(joinHost) !== 0)) {
    throw invalidArgument(
      `With ${fields.expose} ingress, ${fields.host} and ${fields.joinHost} must be two different DNS names (the ingress routes by TLS SNI), got ${JSON.stringify(host)} and ${JSON.stringify(joinHost)}`,
    );
  }

  const cni = oneOf(input.cni ?? SPEC_DEFAULTS.cni, fields.cni, CNIS);
  const apiserverReplicas = input.apiserverReplicas ?? 1;
  const replicaLimits = SPEC_LIMITS.apiserverReplicas;
  if (
    !Number.isInteger(apiserverReplicas) ||
    apiserverReplicas < replicaLimits.min ||
    apiserverReplicas > replicaLimits.max
  ) {
    throw invalidArgument(
      `Expected ${fields.apiserverReplicas} to be a whole number from 1 to 5, got ${JSON.stringify(apiserverReplicas)}`,
    );
  }
  const storage = input.etcdStorage === undefined ? SPEC_DEFAULTS.etcdStorage : input.etcdStorage;
  if (storage !== null && !QUANTITY.test(storage)) {
    throw invalidArgument(
      `Expected ${fields.etcdStorage} to be a size like 1Gi or 512Mi, or none, got ${JSON.stringify(storage)}`,
    );
  }
  const etcdStorage = storage ?? undefined;

  const service = parseCidr(input.serviceCidr ?? SPEC_DEFAULTS.serviceCidr, fields.serviceCidr);
  if (service.prefix < 12 || service.prefix > 28) {
    throw invalidArgument(
      `Expected ${fields.serviceCidr} to be between a /12 and a /28 (CoreDNS takes the 10th address), got ${JSON.stringify(service.text)}`,
    );
  }
  const pod = parseCidr(input.podCidr ?? SPEC_DEFAULTS.podCidr, fields.podCidr);
  if (pod.prefix > 24) {
    throw invalidArgument(
      `Expected ${fields.podCidr} to be a /24 or larger (each node takes a /24), got ${JSON.stringify(pod.text)}`,
    );
  }
  if (overlaps(service, pod)) {
    throw invalidArgument(
      `Expected ${fields.serviceCidr} ${service.text} and ${fields.podCidr} ${pod.text} not to overlap`,
    );
  }
  const vipText = input.vip ?? SPEC_DEFAULTS.vip;
  const vip = parseIpv4(vipText);
  if (vip === undefined)
    throw invalidArgument(`Expected ${fields.vip} to be an IPv4 address, got ${JSON.stringify(vipText)}`);
  if (contains(service, vip) || contains(pod, vip)) {
    throw invalidArgument(
      `Expected ${fields.vip} ${vipText} to be outside ${fields.serviceCidr} and ${fields.podCidr}`,
    );
  }

  return Object.freeze({
    name,
    namespace,
    host,
    joinHost,
    kubernetesVersion,
    etcdImageTag,
    joinServerImage:
      input.joinServerImage === undefined
        ? undefined
        : imageReference(input.joinServerImage, fields.joinServerImage),
    expose,
    ingressClass: input.ingressClass,
    nodePorts,
    cni,
    konnectivity,
    apiserverReplicas,
    etcdStorage,
    serviceCidr: service.text,
    podCidr: pod.text,
    vip: vipText,
    clusterDomain: SPEC_DEFAULTS.clusterDomain,
    componentResources: validateComponentResources(input.componentResources, fields.componentResources),
    kubernetesServiceIp: formatIpv4(service.network + 1),
    clusterDnsIp: formatIpv4(service.network + 10),
  });
}

/** The same spec with the NodePorts the infra cluster allocated filled in. */
export function withNodePorts(
  spec: ControlPlaneSpec,
  ports: { api: number; join: number; konnectivity: number | undefined },
): ControlPlaneSpec {
  return Object.freeze({ ...spec, nodePorts: Object.freeze({ ...ports }) });
}

/** The port the hosted apiserver answers on at `host`; a NodePort must be known by now. */
export function publicApiPort(spec: ControlPlaneSpec): number {
  return publicPort(spec, spec.nodePorts.api, 443, '--api-node-port');
}

/** The port the join server answers on at `joinHost`. */
export function publicJoinPort(spec: ControlPlaneSpec): number {
  return publicPort(spec, spec.nodePorts.join, spec.expose === 'ingress' ? 443 : 8443, '--join-node-port');
}

/** The port konnectivity agents reach the proxy servers on at `host` (with konnectivity). */
export function publicKonnectivityPort(spec: ControlPlaneSpec): number {
  return publicPort(spec, spec.nodePorts.konnectivity, KONNECTIVITY_AGENT_PORT, '--konnectivity-node-port');
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
    throw invalidArgument(
      `--expose nodeport without ${flag}: the port is only known once the Service exists; give ${flag} (30000-32767) to render without a cluster`,
    );
  }
  return nodePort;
}

function urlHost(host: string): string {
  return isIP(host) === 6 ? `[${host}]` : host;
}

function hostName(text: string, flag: string): string {
  const host = text.toLowerCase();
  if (isIP(host) !== 0 || isDns1123Subdomain(host)) return host;
  throw invalidArgument(`Expected ${flag} to be a DNS name or an IP address, got ${JSON.stringify(text)}`);
}

function nodePort(port: number | undefined, field: string): number | undefined {
  if (port === undefined) return undefined;
  if (!Number.isInteger(port) || port < SPEC_LIMITS.nodePort.min || port > SPEC_LIMITS.nodePort.max) {
    throw invalidArgument(
      `Expected ${field} to be a NodePort between 30000 and 32767, got ${JSON.stringify(port)}`,
    );
  }
  return port;
}

function required(value: string | undefined, flag: string, what: string): string {
  if (value === undefined || value === '') throw invalidArgument(`Missing ${flag}: ${what}`);
  return value;
}

function oneOf<T extends string>(value: string, flag: string, allowed: readonly T[]): T {
  if (!(allowed as readonly string[]).includes(value)) {
    throw invalidArgument(
      `Expected ${flag} to be one of ${allowed.join(', ')}, got ${JSON.stringify(value)}`,
    );
  }
  return value as T;
}
