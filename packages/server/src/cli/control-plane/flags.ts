// The flags the control-plane commands share, their help text, and the one step from flag strings
// to the typed spec input (numbers parsed, `none` read as an emptyDir) that the core validates.
import { parseFlags, invalidArgument } from '@k8s-on-k8s/shared';
import type { KubeConfig } from '@kubernetes/client-node';
import { loadKubeConfig } from '../../kube/kubeconfig.js';
import { validateControlPlaneName, validateNamespaceName } from '../../control-plane/names.js';
import type { Cni, ControlPlaneSpecInput, Exposure } from '../../control-plane/spec.js';
import { JOIN_SERVER_IMAGE } from '../../control-plane/render/control-plane.js';
import type { ControlPlaneCommandDeps } from '../command-deps.js';

export const SPEC_FLAGS = {
  namespace: { type: 'string', short: 'n' },
  host: { type: 'string' },
  'join-host': { type: 'string' },
  version: { type: 'string' },
  expose: { type: 'string' },
  'ingress-class': { type: 'string' },
  'api-node-port': { type: 'string' },
  'join-node-port': { type: 'string' },
  'konnectivity-node-port': { type: 'string' },
  cni: { type: 'string' },
  konnectivity: { type: 'string' },
  'apiserver-replicas': { type: 'string' },
  'etcd-storage': { type: 'string' },
  'service-cidr': { type: 'string' },
  'pod-cidr': { type: 'string' },
  vip: { type: 'string' },
  'join-server-image': { type: 'string' },
  'component-resources': { type: 'string' },
} as const;
export const CLUSTER_FLAGS = { kubeconfig: { type: 'string' }, context: { type: 'string' } } as const;
export const HELP_FLAG = { help: { type: 'boolean', short: 'h' } } as const;
const TARGET_FLAGS = { namespace: SPEC_FLAGS.namespace, ...CLUSTER_FLAGS, ...HELP_FLAG } as const;

export const SPEC_HELP = `  -n, --namespace NS        infra namespace to create it in (required)
  --host API_HOST           public DNS name (or IP) of the hosted API (required); it must route to
                            the infra cluster's nodes (nodeport), load balancer or ingress
  --version VERSION         Kubernetes version (default v1.37.2); the etcd image follows it
  --expose KIND             nodeport (default), loadbalancer or ingress (TLS passthrough). With
                            nodeport and loadbalancer the join server's Service has
                            externalTrafficPolicy: Local, so it sees workers' own addresses for its
                            rate limits; then only nodes running the join-server pod answer on its
                            port: with nodeport, --join-host must reach such a node
  --ingress-class NAME      IngressClass of the ingress (with --expose ingress)
  --join-host HOST          public name of the join server (default: --host; join.<host> behind an ingress)
  --api-node-port PORT      NodePort of the apiserver (default: allocated by the infra cluster)
  --join-node-port PORT     NodePort of the join server (default: allocated)
  --konnectivity-node-port PORT
                            NodePort of the konnectivity agents' port (default: allocated)
  --konnectivity=BOOL       reach kubelets through konnectivity (default true; false behind an
                            ingress, where it is not supported yet): a proxy server beside the
                            apiserver and an agent on every worker, which dials out to it, so
                            kubectl logs/exec/port-forward work for workers behind NAT or in
                            networks the infra cluster cannot route to. With false the apiserver
                            dials each kubelet's address itself
  --apiserver-replicas N    kube-apiserver pods (default 1, at most 5); with konnectivity each has
                            a proxy server and every agent keeps a tunnel to each
  --cni KIND                flannel (default) or none
  --etcd-storage SIZE       etcd PersistentVolumeClaim size (default 1Gi), or none for an emptyDir
  --service-cidr CIDR       hosted Service CIDR (default 10.3.0.0/24; CoreDNS on its 10th IP)
  --pod-cidr CIDR           hosted pod CIDR (default 10.2.0.0/16)
  --vip IP                  the API address every worker carries on lo (default 10.199.199.199)
  --join-server-image REF   join server image, e.g. in a private registry (default
                            ${JOIN_SERVER_IMAGE})
  --component-resources JSON
                            CPU/memory requests and memory limits per component, over the defaults
                            (a HostedControlPlane's spec.components, resources only), e.g.
                            '{"apiserver":{"requests":{"cpu":"50m","memory":"192Mi"},"limits":{"memory":"512Mi"}}}'
                            for etcd, apiserver, controller-manager, scheduler, join-server. No CPU
                            limits: a throttled apiserver times out. Only the changed components roll`;
export const CLUSTER_HELP = `  --kubeconfig FILE         infra cluster kubeconfig (default $KUBECONFIG or ~/.kube/config)
  --context NAME            context of that kubeconfig (default: its current context)`;

type FlagValues = Readonly<Record<string, string | boolean | undefined>>;

/** The create/render flags as typed spec input; only the parsing of strings happens here. */
export function specInputFromFlags(
  positionals: readonly string[],
  values: FlagValues,
): ControlPlaneSpecInput {
  if (positionals.length > 1)
    throw invalidArgument(`Expected one NAME, got ${positionals.map((p) => JSON.stringify(p)).join(' ')}`);
  const str = (key: string): string | undefined => {
    const value = values[key];
    return typeof value === 'string' ? value : undefined;
  };
  const storage = str('etcd-storage');
  return {
    name: positionals[0],
    namespace: str('namespace'),
    host: str('host'),
    joinHost: str('join-host'),
    kubernetesVersion: str('version'),
    // Membership is the core's check (it also guards input that comes as JSON).
    expose: str('expose') as Exposure | undefined,
    ingressClass: str('ingress-class'),
    nodePorts: {
      api: portFlag(str('api-node-port'), '--api-node-port'),
      join: portFlag(str('join-node-port'), '--join-node-port'),
      konnectivity: portFlag(str('konnectivity-node-port'), '--konnectivity-node-port'),
    },
    konnectivity: booleanFlag(str('konnectivity'), '--konnectivity'),
    apiserverReplicas: countFlag(str('apiserver-replicas'), '--apiserver-replicas'),
    cni: str('cni') as Cni | undefined,
    etcdStorage: storage === 'none' ? null : storage,
    serviceCidr: str('service-cidr'),
    podCidr: str('pod-cidr'),
    vip: str('vip'),
    joinServerImage: str('join-server-image'),
    componentResources: jsonFlag(str('component-resources'), '--component-resources'),
  };
}

/** A flag whose value is JSON (validated by the core, which names the field inside it). */
function jsonFlag(value: string | undefined, flag: string): unknown {
  if (value === undefined) return undefined;
  try {
    return JSON.parse(value) as unknown;
  } catch (error) {
    throw invalidArgument(
      `Expected ${flag} to be JSON, like '{"apiserver":{"requests":{"cpu":"50m"}}}', got ${JSON.stringify(value)} (${(error as Error).message})`,
    );
  }
}

/** An existing control plane named on the command line: `NAME -n NS` and the infra cluster flags. */
export interface ControlPlaneTarget {
  readonly name: string;
  readonly namespace: string;
  readonly infra: KubeConfig;
}

/**
 * The shared start of the commands that act on one existing control plane: parse `NAME -n NS`
 * and the infra cluster flags, answer --help (its exit code is returned), load the kubeconfig.
 */
export function parseTarget(
  argv: readonly string[],
  deps: ControlPlaneCommandDeps,
  helpText: string,
  extraFlags: Readonly<Record<string, { type: 'boolean' }>> = {},
): number | (ControlPlaneTarget & { readonly flags: FlagValues }) {
  const { values, positionals } = parseFlags(argv, { ...TARGET_FLAGS, ...extraFlags }, true);
  if (values.help === true) return printHelp(deps, helpText);
  const [name, ...rest] = positionals;
  if (name === undefined) throw invalidArgument('Missing NAME: the control plane name');
  if (rest.length > 0)
    throw invalidArgument(`Expected one NAME, got ${positionals.map((p) => JSON.stringify(p)).join(' ')}`);
  return {
    name: validateControlPlaneName(name),
    namespace: requiredNamespace(values.namespace),
    infra: loadInfraKubeConfig(values),
    flags: values,
  };
}

/** The infra cluster from --kubeconfig/--context (default $KUBECONFIG or ~/.kube/config). */
export function loadInfraKubeConfig(values: FlagValues): KubeConfig {
  const path = values.kubeconfig;
  const context = values.context;
  return loadKubeConfig({
    path: typeof path === 'string' ? path : undefined,
    context: typeof context === 'string' ? context : undefined,
  });
}

export function requiredNamespace(namespace: string | boolean | undefined): string {
  if (typeof namespace !== 'string') throw invalidArgument('Missing -n/--namespace: the infra namespace');
  return validateNamespaceName(namespace);
}

export function printHelp(deps: ControlPlaneCommandDeps, text: string): number {
  deps.stdout(text.trimEnd());
  return 0;
}

function booleanFlag(text: string | undefined, flag: string): boolean | undefined {
  if (text === undefined) return undefined;
  if (text === 'true' || text === 'false') return text === 'true';
  throw invalidArgument(`Expected ${flag} to be true or false (${flag}=false), got ${JSON.stringify(text)}`);
}

function countFlag(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,3}$/.test(text))
    throw invalidArgument(`Expected ${flag} to be a whole number, got ${JSON.stringify(text)}`);
  return Number(text);
}

function portFlag(text: string | undefined, flag: string): number | undefined {
  if (text === undefined) return undefined;
  if (!/^\d{1,5}$/.test(text)) {
    throw invalidArgument(
      `Expected ${flag} to be a NodePort between 30000 and 32767, got ${JSON.stringify(text)}`,
    );
  }
  return Number(text);
}
