// konnectivity (sigs.k8s.io/apiserver-network-proxy) for a hosted control plane: how the apiserver
// reaches kubelets on workers it cannot route to (behind NAT, in a lab, on a laptop). A proxy server
// runs beside each apiserver, in its pod; an agent on every worker dials out to it through the
// worker's forwarder (a second VIP port) and carries the apiserver's dials to kubelets back.
//
// - apiserver ↔ proxy server: gRPC over a Unix socket in an emptyDir both containers mount
//   (EgressSelectorConfiguration, egress `cluster`). gRPC rather than HTTP CONNECT because it is the
//   mode upstream develops and tests first and it multiplexes every dial on one stream; a socket
//   rather than TCP because both are in one pod: nothing to listen on, no TLS to set up between them.
// - agent → proxy server: TLS to the agent port (a certificate of the cluster CA for the VIP,
//   which agents dial), authenticated by the agent's bound service-account token of audience
//   system:konnectivity-server, which the server reviews with the hosted apiserver (TokenReview).
// - several apiserver replicas: each proxy server keeps a Lease in the hosted kube-system
//   (--enable-lease-controller) and agents count them (--count-server-leases), reconnecting through
//   the Service until they hold a tunnel to every server — kube-proxy spreads the connections.
// - the apiserver dials a kubelet by its address; the proxy servers pick the agent that registered
//   that address (--proxy-strategies=destHost), any agent only for other destinations.
import type { KubernetesObject, V1Container, V1Volume } from '@kubernetes/client-node';
import { stringify as stringifyYaml } from 'yaml';
import {
  KONNECTIVITY_AGENT_PORT,
  KONNECTIVITY_AGENT_SERVICE_ACCOUNT,
  KONNECTIVITY_AUDIENCE,
  KONNECTIVITY_LEASE_LABEL,
  KONNECTIVITY_SERVER_USER,
} from '../../contract.js';
import { type ControlPlaneSpec } from '../spec.js';
import { componentName } from '../names.js';
import { KONNECTIVITY_IMAGES } from './konnectivity-images.js';
import { goRuntimeEnv, RESTRICTED_CONTAINER, pkiVolume, secretVolume } from './pod-kit.js';

/** The proxy server's ports in the apiserver pod; the agent port is the one exposed. */
export const KONNECTIVITY_PORTS = { agent: KONNECTIVITY_AGENT_PORT, admin: 8133, health: 8134 } as const;
/** The agent's health and metrics port on each worker (hostNetwork). */
export const KONNECTIVITY_AGENT_HEALTH_PORT = 8093;

const UDS_DIR = '/etc/kubernetes/konnectivity-server';
const UDS_NAME = `${UDS_DIR}/konnectivity-server.socket`;
const SERVER_PKI_DIR = '/etc/kubernetes/konnectivity-pki';
const SERVER_KUBECONFIG_DIR = '/etc/kubernetes/konnectivity-kubeconfig';
const TOKEN_DIR = '/var/run/secrets/tokens';
const TOKEN_FILE = 'konnectivity-agent-token';
// A node that dies silently (power off, a NAT mapping gone) leaves its tunnel looking open, and
// dials the servers route to it (destHost) would pend on it for the default keepalive of an hour:
// the pile-up of pending dials apiserver-network-proxy is known for. v0.34 has no flag for the
// dial timeouts themselves (the agent's own dial to the kubelet is bounded at 5 s), so both ends
// ping: the server every 30 s (gRPC's ping timeout of 20 s then drops a dead agent's backend and
// fails its pending dials within 50 s); the agent every minute, as the server refuses agent pings
// more often than every 30 s ("too many pings").
const SERVER_KEEPALIVE = '30s';
const AGENT_KEEPALIVE = '1m';

/** The apiserver's EgressSelectorConfiguration: the `cluster` egress through the proxy server. */
export function renderEgressSelectorConfiguration(): string {
  return stringifyYaml({
    apiVersion: 'apiserver.k8s.io/v1beta1',
    kind: 'EgressSelectorConfiguration',
    egressSelections: [
      { name: 'cluster', connection: { proxyProtocol: 'GRPC', transport: { uds: { udsName: UDS_NAME } } } },
    ],
  });
}

/** Where the apiserver's flags and mounts differ with konnectivity. */
export const APISERVER_EGRESS = {
  flag: '--egress-selector-config-file=/etc/kubernetes/config/egress-selector.yaml',
  configKey: 'egress-selector.yaml',
  socketMount: { name: 'konnectivity-uds', mountPath: UDS_DIR },
} as const;

/** The Secret holding the proxy server's kubeconfig for the hosted apiserver. */
export function konnectivityKubeconfigSecretName(spec: ControlPlaneSpec): string {
  return `${componentName(spec, 'apiserver')}-konnectivity-kubeconfig`;
}

/** The proxy server container of the apiserver pod, and the volumes it adds to the pod. */
const KONNECTIVITY_SERVER_RESOURCES = {
  requests: { cpu: '20m', memory: '32Mi' },
  limits: { memory: '256Mi' },
};

export function renderKonnectivityServer(spec: ControlPlaneSpec): {
  container: V1Container;
  volumes: V1Volume[];
} {
  const args = [
    '--logtostderr=true',
    '--v=1',
    '--mode=grpc',
    `--uds-name=${UDS_NAME}`,
    '--delete-existing-uds-file=true',
    '--server-port=0',
    `--agent-port=${KONNECTIVITY_PORTS.agent}`,
    `--admin-port=${KONNECTIVITY_PORTS.admin}`,
    `--health-port=${KONNECTIVITY_PORTS.health}`,
    `--cluster-cert=${SERVER_PKI_DIR}/konnectivity-server.crt`,
    `--cluster-key=${SERVER_PKI_DIR}/konnectivity-server.key`,
    '--agent-namespace=kube-system',
    `--agent-service-account=${KONNECTIVITY_AGENT_SERVICE_ACCOUNT}`,
    `--authentication-audience=${KONNECTIVITY_AUDIENCE}`,
    `--kubeconfig=${SERVER_KUBECONFIG_DIR}/kubeconfig`,
    '--proxy-strategies=destHost,default',
    `--keepalive-time=${SERVER_KEEPALIVE}`,
    // Each server's Lease (named after its pod) tells agents how many servers there are.
    '--enable-lease-controller',
    '--lease-namespace=kube-system',
    `--lease-label=${KONNECTIVITY_LEASE_LABEL}`,
    '--server-id=$(POD_NAME)',
  ];
  return {
    container: {
      name: 'konnectivity-server',
      image: KONNECTIVITY_IMAGES.server,
      command: ['/proxy-server'],
      args,
      env: [
        { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        ...goRuntimeEnv(KONNECTIVITY_SERVER_RESOURCES),
      ],
      ports: [
        { name: 'konnectivity', containerPort: KONNECTIVITY_PORTS.agent },
        { name: 'knp-health', containerPort: KONNECTIVITY_PORTS.health },
      ],
      resources: KONNECTIVITY_SERVER_RESOURCES,
      // As the pod (root, for the apiserver's port 443): the Secret files are root's, 0400 like the
      // apiserver's own. Every capability dropped, so root here is only the owner of those files.
      securityContext: RESTRICTED_CONTAINER,
      // /readyz says "no agent" until a worker has joined, which must not hold `create` back: only
      // liveness. The server's /healthz answers as long as it serves.
      livenessProbe: {
        httpGet: { path: '/healthz', port: KONNECTIVITY_PORTS.health, scheme: 'HTTP' },
        periodSeconds: 10,
        timeoutSeconds: 15,
        failureThreshold: 8,
      },
      volumeMounts: [
        { ...APISERVER_EGRESS.socketMount },
        { name: 'konnectivity-pki', mountPath: SERVER_PKI_DIR, readOnly: true },
        { name: 'konnectivity-kubeconfig', mountPath: SERVER_KUBECONFIG_DIR, readOnly: true },
      ],
    },
    volumes: [
      { name: APISERVER_EGRESS.socketMount.name, emptyDir: {} },
      pkiVolume(spec, 'konnectivity-pki', [
        ['konnectivityServer', 'tls.crt', 'konnectivity-server.crt'],
        ['konnectivityServer', 'tls.key', 'konnectivity-server.key'],
      ]),
      secretVolume('konnectivity-kubeconfig', konnectivityKubeconfigSecretName(spec)),
    ],
  };
}

const RBAC = 'rbac.authorization.k8s.io';

/**
 * The hosted cluster's side: the proxy servers' user may review tokens (system:auth-delegator)
 * and keep their Leases; the agents' ServiceAccount may read the Leases; the agent DaemonSet.
 */
export function renderKonnectivityAgentAssets(
  spec: ControlPlaneSpec,
  labels: Record<string, string>,
): KubernetesObject[] {
  const meta = (name: string) => ({ name, namespace: 'kube-system', labels });
  const podLabels = { 'k8s-app': 'konnectivity-agent' };
  const leases = (verbs: string[]) => [{ apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs }];
  const binding = (
    kind: 'RoleBinding' | 'ClusterRoleBinding',
    name: string,
    roleKind: string,
    role: string,
    subject: object,
  ) => ({
    apiVersion: `${RBAC}/v1`,
    kind,
    metadata: kind === 'RoleBinding' ? meta(name) : { name, labels },
    roleRef: { apiGroup: RBAC, kind: roleKind, name: role },
    subjects: [subject],
  });
  const serverUser = { kind: 'User', apiGroup: RBAC, name: KONNECTIVITY_SERVER_USER };
  const agentAccount = {
    kind: 'ServiceAccount',
    name: KONNECTIVITY_AGENT_SERVICE_ACCOUNT,
    namespace: 'kube-system',
  };
  const agentArgs = [
    '--logtostderr=true',
    '--v=1',
    // The VIP on the agent port: the worker's second forwarder relays it to the proxy servers'
    // public port, so the agent needs neither DNS nor the CNI, as the kubelet needs neither.
    `--proxy-server-host=${spec.vip}`,
    `--proxy-server-port=${KONNECTIVITY_PORTS.agent}`,
    '--ca-cert=/var/run/secrets/kubernetes.io/serviceaccount/ca.crt',
    `--service-account-token-path=${TOKEN_DIR}/${TOKEN_FILE}`,
    // The servers route a dial for this node's address or name to this agent (destHost).
    '--agent-identifiers=ipv4=$(HOST_IP)&host=$(NODE_NAME)',
    '--count-server-leases',
    '--lease-namespace=kube-system',
    `--lease-label=${KONNECTIVITY_LEASE_LABEL}`,
    '--sync-forever',
    `--keepalive-time=${AGENT_KEEPALIVE}`,
    '--health-server-host=127.0.0.1',
    `--health-server-port=${KONNECTIVITY_AGENT_HEALTH_PORT}`,
  ];
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(KONNECTIVITY_AGENT_SERVICE_ACCOUNT) },
    binding(
      'ClusterRoleBinding',
      'k8s-on-k8s:konnectivity-server',
      'ClusterRole',
      'system:auth-delegator',
      serverUser,
    ),
    {
      apiVersion: `${RBAC}/v1`,
      kind: 'Role',
      metadata: meta('k8s-on-k8s:konnectivity-server'),
      rules: leases(['get', 'list', 'watch', 'create', 'update', 'delete']),
    } as KubernetesObject,
    binding(
      'RoleBinding',
      'k8s-on-k8s:konnectivity-server',
      'Role',
      'k8s-on-k8s:konnectivity-server',
      serverUser,
    ),
    {
      apiVersion: `${RBAC}/v1`,
      kind: 'Role',
      metadata: meta('k8s-on-k8s:konnectivity-agent'),
      rules: leases(['get', 'list', 'watch']),
    } as KubernetesObject,
    binding(
      'RoleBinding',
      'k8s-on-k8s:konnectivity-agent',
      'Role',
      'k8s-on-k8s:konnectivity-agent',
      agentAccount,
    ),
    {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: meta('konnectivity-agent'),
      spec: {
        selector: { matchLabels: podLabels },
        template: {
          metadata: { labels: podLabels },
          spec: {
            serviceAccountName: KONNECTIVITY_AGENT_SERVICE_ACCOUNT,
            priorityClassName: 'system-node-critical',
            // The VIP is on the node's loopback.
            hostNetwork: true,
            dnsPolicy: 'ClusterFirstWithHostNet',
            tolerations: [{ operator: 'Exists' }],
            nodeSelector: { 'kubernetes.io/os': 'linux' },
            securityContext: {
              runAsNonRoot: true,
              runAsUser: 65532,
              runAsGroup: 65532,
              seccompProfile: { type: 'RuntimeDefault' },
            },
            containers: [
              {
                name: 'konnectivity-agent',
                image: KONNECTIVITY_IMAGES.agent,
                command: ['/proxy-agent'],
                args: agentArgs,
                env: [
                  { name: 'HOST_IP', valueFrom: { fieldRef: { fieldPath: 'status.hostIP' } } },
                  { name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } },
                ],
                resources: { requests: { cpu: '10m', memory: '24Mi' }, limits: { memory: '128Mi' } },
                securityContext: RESTRICTED_CONTAINER,
                livenessProbe: {
                  httpGet: { host: '127.0.0.1', path: '/healthz', port: KONNECTIVITY_AGENT_HEALTH_PORT },
                  periodSeconds: 10,
                  timeoutSeconds: 15,
                  failureThreshold: 8,
                },
                volumeMounts: [{ name: 'konnectivity-agent-token', mountPath: TOKEN_DIR, readOnly: true }],
              },
            ],
            volumes: [
              {
                name: 'konnectivity-agent-token',
                projected: {
                  sources: [
                    {
                      serviceAccountToken: {
                        path: TOKEN_FILE,
                        audience: KONNECTIVITY_AUDIENCE,
                        expirationSeconds: 3600,
                      },
                    },
                  ],
                },
              },
            ],
          },
        },
      },
    } as KubernetesObject,
  ];
}
