// spec → the objects `create` installs inside the hosted cluster once its apiserver answers: node
// bootstrap RBAC, kube-proxy, the CNI and CoreDNS. Pure, like the control plane renderer.
import type { KubernetesObject } from '@kubernetes/client-node';
import { stringify as stringifyYaml } from 'yaml';
import type { ControlPlaneSpec } from '../spec.js';
import { renderJoinServerRbac } from './join-server-rbac.js';
import { renderKonnectivityAgentAssets } from './konnectivity.js';
import { advertisedApiEndpoint } from './pod-kit.js';
import { controlPlaneLabels } from '../names.js';
import { BOOTSTRAPPERS_GROUP } from '../../contract.js';

/**
 * Pinned images of the hosted add-ons (the control plane images follow --version): releases whose Go
 * modules build here (`npm run build:images`), the CNI plugin at the tag flannel's own
 * kube-flannel.yml pairs with flannel v0.28.10.
 */
export const ADDON_IMAGES = {
  coredns: 'registry.k8s.io/coredns/coredns:v1.15.0',
  flannel: 'ghcr.io/flannel-io/flannel:v0.28.10',
  flannelCniPlugin: 'ghcr.io/flannel-io/flannel-cni-plugin:v1.9.1-flannel3',
} as const;

const RBAC = 'rbac.authorization.k8s.io';
const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/** Renders, in apply order (namespaces and RBAC first), every hosted-cluster object. */
export function renderHostedAssets(spec: ControlPlaneSpec): KubernetesObject[] {
  const labels = controlPlaneLabels(spec);
  return [
    ...renderNodeBootstrapRbac(labels),
    renderKubeletApiAccess(labels),
    ...renderJoinServerRbac().map((object): KubernetesObject => ({
      ...object,
      metadata: { ...object.metadata, labels: { ...object.metadata.labels, ...labels } },
    })),
    ...renderKubeProxy(spec, labels),
    ...(spec.cni === 'flannel' ? renderFlannel(spec, labels) : []),
    ...renderCoreDns(spec, labels),
    ...(spec.konnectivity ? renderKonnectivityAgentAssets(spec, labels) : []),
  ];
}

function clusterRoleBinding(
  name: string,
  role: string,
  subjects: { kind: string; name: string; namespace?: string }[],
  labels: Record<string, string>,
): KubernetesObject {
  return {
    apiVersion: `${RBAC}/v1`,
    kind: 'ClusterRoleBinding',
    metadata: { name, labels },
    roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: role },
    subjects: subjects.map((s) => (s.kind === 'ServiceAccount' ? s : { apiGroup: RBAC, ...s })),
  } as KubernetesObject;
}

/**
 * TLS bootstrapping, scoped to our bootstrappers group: create CSRs, and let nodes renew their own
 * client certificates. Unlike kubeadm, the group is not bound to
 * certificatesigningrequests:nodeclient: kube-controller-manager's approver checks only a CSR's
 * shape, so a bootstrap token could get a certificate for any node name. The join server approves
 * each bootstrap CSR itself, for the node name its token was minted for (join-server/csr-approval/).
 */
function renderNodeBootstrapRbac(labels: Record<string, string>): KubernetesObject[] {
  const bootstrappers = [{ kind: 'Group', name: BOOTSTRAPPERS_GROUP }];
  return [
    clusterRoleBinding('k8s-on-k8s:node-bootstrapper', 'system:node-bootstrapper', bootstrappers, labels),
    clusterRoleBinding(
      'k8s-on-k8s:node-autoapprove-certificate-rotation',
      'system:certificates.k8s.io:certificatesigningrequests:selfnodeclient',
      [{ kind: 'Group', name: 'system:nodes' }],
      labels,
    ),
  ];
}

/**
 * The apiserver's kubelet-client certificate (CN kube-apiserver-kubelet-client) may use the kubelet
 * API (logs, exec, port-forward, metrics), as kubeadm grants: without it the kubelet's webhook
 * authorizer refuses `kubectl logs` and `exec` with "Forbidden … nodes/proxy".
 */
function renderKubeletApiAccess(labels: Record<string, string>): KubernetesObject {
  return clusterRoleBinding(
    'k8s-on-k8s:apiserver-kubelet-api-admin',
    'system:kubelet-api-admin',
    [{ kind: 'User', name: 'kube-apiserver-kubelet-client' }],
    labels,
  );
}

function renderKubeProxy(spec: ControlPlaneSpec, labels: Record<string, string>): KubernetesObject[] {
  const meta = (name: string) => ({ name, namespace: 'kube-system', labels });
  const podLabels = { 'k8s-app': 'kube-proxy' };
  // kube-proxy reaches the apiserver through the VIP the forwarder owns on every worker: it is what
  // makes the `kubernetes` Service work, so it cannot depend on that Service itself.
  const kubeconfig = stringifyYaml({
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [
      {
        name: 'default',
        cluster: { server: advertisedApiEndpoint(spec), 'certificate-authority': `${SA_DIR}/ca.crt` },
      },
    ],
    users: [{ name: 'kube-proxy', user: { tokenFile: `${SA_DIR}/token` } }],
    contexts: [
      { name: 'default', context: { cluster: 'default', user: 'kube-proxy', namespace: 'default' } },
    ],
    'current-context': 'default',
  });
  const config = stringifyYaml({
    apiVersion: 'kubeproxy.config.k8s.io/v1alpha1',
    kind: 'KubeProxyConfiguration',
    clientConnection: { kubeconfig: '/var/lib/kube-proxy/kubeconfig.conf' },
    clusterCIDR: spec.podCidr,
    mode: 'iptables',
    bindAddress: '0.0.0.0',
  });
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta('kube-proxy') },
    clusterRoleBinding(
      'k8s-on-k8s:node-proxier',
      'system:node-proxier',
      [{ kind: 'ServiceAccount', name: 'kube-proxy', namespace: 'kube-system' }],
      labels,
    ),
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta('kube-proxy'),
      data: { 'kubeconfig.conf': kubeconfig, 'config.conf': config },
    } as KubernetesObject,
    {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: meta('kube-proxy'),
      spec: {
        selector: { matchLabels: podLabels },
        updateStrategy: { type: 'RollingUpdate' },
        template: {
          metadata: { labels: podLabels },
          spec: {
            serviceAccountName: 'kube-proxy',
            hostNetwork: true,
            priorityClassName: 'system-node-critical',
            tolerations: [{ operator: 'Exists' }],
            nodeSelector: { 'kubernetes.io/os': 'linux' },
            containers: [
              {
                name: 'kube-proxy',
                image: `registry.k8s.io/kube-proxy:${spec.kubernetesVersion}`,
                command: ['/usr/local/bin/kube-proxy'],
                args: ['--config=/var/lib/kube-proxy/config.conf', '--hostname-override=$(NODE_NAME)'],
                env: [{ name: 'NODE_NAME', valueFrom: { fieldRef: { fieldPath: 'spec.nodeName' } } }],
                securityContext: { privileged: true },
                resources: { requests: { cpu: '10m', memory: '32Mi' } },
                volumeMounts: [
                  { name: 'kube-proxy', mountPath: '/var/lib/kube-proxy' },
                  { name: 'xtables-lock', mountPath: '/run/xtables.lock' },
                  { name: 'lib-modules', mountPath: '/lib/modules', readOnly: true },
                ],
              },
            ],
            volumes: [
              { name: 'kube-proxy', configMap: { name: 'kube-proxy' } },
              { name: 'xtables-lock', hostPath: { path: '/run/xtables.lock', type: 'FileOrCreate' } },
              { name: 'lib-modules', hostPath: { path: '/lib/modules' } },
            ],
          },
        },
      },
    } as KubernetesObject,
  ];
}

/** Flannel as its upstream kube-flannel.yml installs it, with the spec's pod CIDR and the VXLAN backend. */
function renderFlannel(spec: ControlPlaneSpec, labels: Record<string, string>): KubernetesObject[] {
  const namespace = 'kube-flannel';
  const meta = (name: string) => ({ name, namespace, labels });
  const podLabels = { app: 'flannel', 'k8s-app': 'flannel' };
  const cniConf = {
    name: 'cbr0',
    cniVersion: '0.3.1',
    plugins: [
      { type: 'flannel', delegate: { hairpinMode: true, isDefaultGateway: true } },
      { type: 'portmap', capabilities: { portMappings: true } },
    ],
  };
  const netConf = { Network: spec.podCidr, EnableNFTables: false, Backend: { Type: 'vxlan' } };
  const hostPath = (name: string, path: string, type?: string) => ({
    name,
    hostPath: { path, ...(type === undefined ? {} : { type }) },
  });
  return [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: {
        name: namespace,
        labels: { ...labels, 'pod-security.kubernetes.io/enforce': 'privileged' },
      },
    },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta('flannel') },
    {
      apiVersion: `${RBAC}/v1`,
      kind: 'ClusterRole',
      metadata: { name: 'flannel', labels },
      rules: [
        { apiGroups: [''], resources: ['pods'], verbs: ['get'] },
        { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
        { apiGroups: [''], resources: ['nodes/status'], verbs: ['patch'] },
      ],
    } as KubernetesObject,
    clusterRoleBinding(
      'flannel',
      'flannel',
      [{ kind: 'ServiceAccount', name: 'flannel', namespace }],
      labels,
    ),
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta('kube-flannel-cfg'),
      data: {
        'cni-conf.json': `${JSON.stringify(cniConf, null, 2)}\n`,
        'net-conf.json': `${JSON.stringify(netConf, null, 2)}\n`,
      },
    } as KubernetesObject,
    {
      apiVersion: 'apps/v1',
      kind: 'DaemonSet',
      metadata: meta('kube-flannel-ds'),
      spec: {
        selector: { matchLabels: podLabels },
        template: {
          metadata: { labels: podLabels },
          spec: {
            serviceAccountName: 'flannel',
            hostNetwork: true,
            priorityClassName: 'system-node-critical',
            tolerations: [{ operator: 'Exists', effect: 'NoSchedule' }],
            nodeSelector: { 'kubernetes.io/os': 'linux' },
            initContainers: [
              {
                name: 'install-cni-plugin',
                image: ADDON_IMAGES.flannelCniPlugin,
                command: ['cp'],
                args: ['-f', '/flannel', '/opt/cni/bin/flannel'],
                volumeMounts: [{ name: 'cni-plugin', mountPath: '/opt/cni/bin' }],
              },
              {
                name: 'install-cni',
                image: ADDON_IMAGES.flannel,
                command: ['cp'],
                args: ['-f', '/etc/kube-flannel/cni-conf.json', '/etc/cni/net.d/10-flannel.conflist'],
                volumeMounts: [
                  { name: 'cni', mountPath: '/etc/cni/net.d' },
                  { name: 'flannel-cfg', mountPath: '/etc/kube-flannel/' },
                ],
              },
            ],
            containers: [
              {
                name: 'kube-flannel',
                image: ADDON_IMAGES.flannel,
                command: ['/opt/bin/flanneld'],
                args: ['--ip-masq', '--kube-subnet-mgr'],
                env: [
                  { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                  { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
                  { name: 'EVENT_QUEUE_DEPTH', value: '5000' },
                ],
                resources: { requests: { cpu: '100m', memory: '50Mi' } },
                securityContext: { privileged: false, capabilities: { add: ['NET_ADMIN', 'NET_RAW'] } },
                volumeMounts: [
                  { name: 'run', mountPath: '/run/flannel' },
                  { name: 'flannel-cfg', mountPath: '/etc/kube-flannel/' },
                  { name: 'xtables-lock', mountPath: '/run/xtables.lock' },
                ],
              },
            ],
            volumes: [
              hostPath('run', '/run/flannel'),
              hostPath('cni-plugin', '/opt/cni/bin'),
              hostPath('cni', '/etc/cni/net.d'),
              { name: 'flannel-cfg', configMap: { name: 'kube-flannel-cfg' } },
              hostPath('xtables-lock', '/run/xtables.lock', 'FileOrCreate'),
            ],
          },
        },
      },
    } as KubernetesObject,
  ];
}

/** CoreDNS as kubeadm installs it, its Service on the 10th IP of the service CIDR (the kubelets' --cluster-dns). */
function renderCoreDns(spec: ControlPlaneSpec, labels: Record<string, string>): KubernetesObject[] {
  const meta = (name: string) => ({ name, namespace: 'kube-system', labels });
  const podLabels = { 'k8s-app': 'kube-dns' };
  const corefile = `.:53 {
    errors
    health {
       lameduck 5s
    }
    ready
    kubernetes ${spec.clusterDomain} in-addr.arpa ip6.arpa {
       pods insecure
       fallthrough in-addr.arpa ip6.arpa
       ttl 30
    }
    prometheus :9153
    forward . /etc/resolv.conf {
       max_concurrent 1000
    }
    cache 30
    loop
    reload
    loadbalance
}
`;
  return [
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta('coredns') },
    {
      apiVersion: `${RBAC}/v1`,
      kind: 'ClusterRole',
      metadata: { name: 'system:coredns', labels },
      rules: [
        {
          apiGroups: [''],
          resources: ['endpoints', 'services', 'pods', 'namespaces'],
          verbs: ['list', 'watch'],
        },
        { apiGroups: [''], resources: ['nodes'], verbs: ['get'] },
        { apiGroups: ['discovery.k8s.io'], resources: ['endpointslices'], verbs: ['list', 'watch'] },
      ],
    } as KubernetesObject,
    clusterRoleBinding(
      'system:coredns',
      'system:coredns',
      [{ kind: 'ServiceAccount', name: 'coredns', namespace: 'kube-system' }],
      labels,
    ),
    {
      apiVersion: 'v1',
      kind: 'ConfigMap',
      metadata: meta('coredns'),
      data: { Corefile: corefile },
    } as KubernetesObject,
    {
      apiVersion: 'apps/v1',
      kind: 'Deployment',
      metadata: meta('coredns'),
      spec: {
        replicas: 2,
        selector: { matchLabels: podLabels },
        strategy: { type: 'RollingUpdate', rollingUpdate: { maxUnavailable: 1 } },
        template: {
          metadata: { labels: podLabels },
          spec: {
            serviceAccountName: 'coredns',
            priorityClassName: 'system-cluster-critical',
            dnsPolicy: 'Default',
            tolerations: [
              { key: 'CriticalAddonsOnly', operator: 'Exists' },
              { key: 'node-role.kubernetes.io/control-plane', effect: 'NoSchedule' },
            ],
            nodeSelector: { 'kubernetes.io/os': 'linux' },
            containers: [
              {
                name: 'coredns',
                image: ADDON_IMAGES.coredns,
                args: ['-conf', '/etc/coredns/Corefile'],
                resources: { requests: { cpu: '100m', memory: '70Mi' }, limits: { memory: '170Mi' } },
                ports: [
                  { name: 'dns', containerPort: 53, protocol: 'UDP' },
                  { name: 'dns-tcp', containerPort: 53, protocol: 'TCP' },
                  { name: 'metrics', containerPort: 9153, protocol: 'TCP' },
                ],
                securityContext: {
                  allowPrivilegeEscalation: false,
                  readOnlyRootFilesystem: true,
                  capabilities: { add: ['NET_BIND_SERVICE'], drop: ['ALL'] },
                },
                livenessProbe: {
                  httpGet: { path: '/health', port: 8080 },
                  initialDelaySeconds: 60,
                  failureThreshold: 5,
                },
                readinessProbe: { httpGet: { path: '/ready', port: 8181 } },
                volumeMounts: [{ name: 'config-volume', mountPath: '/etc/coredns', readOnly: true }],
              },
            ],
            volumes: [
              {
                name: 'config-volume',
                configMap: { name: 'coredns', items: [{ key: 'Corefile', path: 'Corefile' }] },
              },
            ],
          },
        },
      },
    } as KubernetesObject,
    {
      apiVersion: 'v1',
      kind: 'Service',
      metadata: {
        ...meta('kube-dns'),
        labels: { ...labels, 'k8s-app': 'kube-dns', 'kubernetes.io/name': 'CoreDNS' },
        annotations: { 'prometheus.io/port': '9153', 'prometheus.io/scrape': 'true' },
      },
      spec: {
        selector: podLabels,
        clusterIP: spec.clusterDnsIp,
        ports: [
          { name: 'dns', port: 53, protocol: 'UDP', targetPort: 53 },
          { name: 'dns-tcp', port: 53, protocol: 'TCP', targetPort: 53 },
          { name: 'metrics', port: 9153, protocol: 'TCP', targetPort: 9153 },
        ],
      },
    } as KubernetesObject,
  ];
}
