// spec + PKI → every infra-cluster object of a hosted control plane. Pure: no clock, no randomness,
// no I/O, so the same inputs give byte-identical objects and a second server-side apply is a no-op.
import { createHash } from 'node:crypto';
import type {
  KubernetesObject,
  V1ConfigMap,
  V1Container,
  V1Deployment,
  V1Ingress,
  V1PodSpec,
  V1PodTemplateSpec,
  V1ResourceRequirements,
  V1Secret,
  V1Service,
  V1StatefulSet,
  V1Volume,
} from '@kubernetes/client-node';
import { apiEndpointFor, renderKubeconfig, type CertifiedKeyPair } from '@k8s-on-k8s/shared';
import { stringify as stringifyYaml } from 'yaml';
import { publicApiPort, publicJoinUrl, toStoredSpec, type ControlPlaneSpec } from '../spec.js';
import { PKI_NAMES, pkiSecretData, pkiSecretName, type ControlPlanePki, type PkiName } from '../pki.js';
import { SERVER_VERSION } from '../../version.js';
import {
  CONTROL_PLANE_LABEL,
  COMPONENT_LABEL,
  DATA_LABEL,
  CHECKSUM_ANNOTATION,
  JOIN_SERVER_USER,
} from '../../contract.js';
import { componentName, controlPlaneLabels, specConfigMapName, type Component } from '../names.js';

/** The join server image unless the spec names another; `npm run build:images` builds it at this version. */
export const JOIN_SERVER_IMAGE = `ghcr.io/k8s-on-k8s/k8s-join-server:v${SERVER_VERSION}`;

/** In-container ports. The apiserver listens on 443 so the hosted `kubernetes` Endpoints read VIP:443. */
export const PORTS = {
  etcdClient: 2379,
  etcdPeer: 2380,
  etcdMetrics: 2381,
  apiserver: 443,
  joinServer: 8443,
};

/**
 * Requests sized for the seed's promise (a whole control plane in about what a few pods use): together
 * 550m CPU and 832Mi. No CPU limits (throttling an apiserver makes it time out); memory limits
 * leave room for a burst during a relist.
 */
export const COMPONENT_RESOURCES: Readonly<Record<Component, V1ResourceRequirements>> = {
  etcd: { requests: { cpu: '100m', memory: '192Mi' }, limits: { memory: '512Mi' } },
  apiserver: { requests: { cpu: '250m', memory: '384Mi' }, limits: { memory: '1Gi' } },
  'controller-manager': { requests: { cpu: '100m', memory: '128Mi' }, limits: { memory: '384Mi' } },
  scheduler: { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '256Mi' } },
  'join-server': { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } },
};

const PKI_DIR = '/etc/kubernetes/pki';
const KUBECONFIG_PATH = '/etc/kubernetes/kubeconfig/kubeconfig';

/** Renders, in apply order, every infra-cluster object of the control plane. */
export function renderControlPlane(spec: ControlPlaneSpec, pki: ControlPlanePki): KubernetesObject[] {
  const secrets = [
    ...PKI_NAMES.map((pkiName) => renderPkiSecret(spec, pki, pkiName)),
    secret(spec, `${spec.name}-apiserver-config`, 'apiserver', {
      'encryption-config.yaml': renderEncryptionConfiguration(pki.encryptionKey),
    }),
    kubeconfigSecret(
      spec,
      pki,
      'controller-manager',
      'system:kube-controller-manager',
      pki.controllerManager,
    ),
    kubeconfigSecret(spec, pki, 'scheduler', 'system:kube-scheduler', pki.scheduler),
    kubeconfigSecret(spec, pki, 'join-server', JOIN_SERVER_USER, pki.joinServerClient),
  ];
  const secretData = new Map(secrets.map((s) => [s.metadata?.name ?? '', s.data ?? {}]));
  const workloads = [
    renderEtcd(spec),
    renderApiserver(spec),
    renderControllerManager(spec),
    renderScheduler(spec),
    renderJoinServer(spec),
  ];
  for (const workload of workloads) addChecksum(workload.spec?.template, secretData);
  return [
    renderSpecConfigMap(spec),
    ...secrets,
    ...renderControlPlaneServices(spec),
    ...workloads,
    ...(spec.expose === 'ingress' ? [renderIngress(spec)] : []),
  ];
}

/** Renders objects as one multi-document YAML stream, as `kubectl apply -f` reads it. */
export function formatObjectsYaml(objects: readonly KubernetesObject[]): string {
  return objects.map((object) => `---\n${stringifyYaml(object, { lineWidth: 0 })}`).join('');
}

/** The hosted apiserver's EncryptionConfiguration: Secrets sealed with secretbox, reads of old plain data allowed. */
export function renderEncryptionConfiguration(key: string): string {
  return stringifyYaml({
    apiVersion: 'apiserver.config.k8s.io/v1',
    kind: 'EncryptionConfiguration',
    resources: [
      {
        resources: ['secrets'],
        providers: [{ secretbox: { keys: [{ name: 'key1', secret: key }] } }, { identity: {} }],
      },
    ],
  });
}

function renderSpecConfigMap(spec: ControlPlaneSpec): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: specConfigMapName(spec), namespace: spec.namespace, labels: controlPlaneLabels(spec) },
    data: { 'spec.json': toStoredSpec(spec) },
  };
}

function renderPkiSecret(spec: ControlPlaneSpec, pki: ControlPlanePki, pkiName: PkiName): V1Secret {
  const data = pkiSecretData(pki, pkiName, spec);
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'tls.crt' in data ? 'kubernetes.io/tls' : 'Opaque',
    metadata: {
      name: pkiSecretName(spec, pkiName),
      namespace: spec.namespace,
      labels: { ...controlPlaneLabels(spec), [DATA_LABEL]: 'true' },
    },
    data,
  };
}

function secret(
  spec: ControlPlaneSpec,
  name: string,
  component: Component,
  files: Record<string, string>,
): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: { name, namespace: spec.namespace, labels: { ...componentLabels(spec, component) } },
    data: Object.fromEntries(
      Object.entries(files).map(([k, v]) => [k, Buffer.from(v, 'utf8').toString('base64')]),
    ),
  };
}

function kubeconfigSecret(
  spec: ControlPlaneSpec,
  pki: ControlPlanePki,
  component: Component,
  userName: string,
  cert: CertifiedKeyPair,
): V1Secret {
  return secret(spec, `${componentName(spec, component)}-kubeconfig`, component, {
    kubeconfig: renderKubeconfig({
      clusterName: spec.name,
      // In-infra traffic goes to the apiserver's ClusterIP Service, never out and back in.
      server: `https://${componentName(spec, 'apiserver')}.${spec.namespace}.svc:${PORTS.apiserver}`,
      caPem: pki.ca.certPem,
      userName,
      credentials: { clientCertPem: cert.certPem, clientKeyPem: cert.keyPem },
    }),
  });
}

function componentLabels(spec: ControlPlaneSpec, component: Component): Record<string, string> {
  return { ...controlPlaneLabels(spec), [COMPONENT_LABEL]: component };
}

function selector(spec: ControlPlaneSpec, component: Component): Record<string, string> {
  return { [CONTROL_PLANE_LABEL]: spec.name, [COMPONENT_LABEL]: component };
}

/**
 * The Services alone; `create` applies them first when the infra cluster is to pick the NodePorts,
 * since the join server's flags and the admin kubeconfig name them.
 */
export function renderControlPlaneServices(spec: ControlPlaneSpec): V1Service[] {
  const exposedType = { nodeport: 'NodePort', loadbalancer: 'LoadBalancer', ingress: 'ClusterIP' }[
    spec.expose
  ];
  const service = (
    component: Component,
    type: string,
    ports: { name: string; port: number; nodePort?: number | undefined }[],
  ): V1Service => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: componentName(spec, component),
      namespace: spec.namespace,
      labels: componentLabels(spec, component),
    },
    spec: {
      type,
      selector: selector(spec, component),
      ports: ports.map(({ name, port, nodePort }) => ({
        name,
        port,
        targetPort: port,
        protocol: 'TCP',
        ...(nodePort === undefined ? {} : { nodePort }),
      })),
    },
  });
  return [
    service('etcd', 'ClusterIP', [{ name: 'client', port: PORTS.etcdClient }]),
    service('apiserver', exposedType, [
      {
        name: 'https',
        port: PORTS.apiserver,
        nodePort: spec.expose === 'nodeport' ? spec.nodePorts.api : undefined,
      },
    ]),
    service('join-server', exposedType, [
      {
        name: 'https',
        port: PORTS.joinServer,
        nodePort: spec.expose === 'nodeport' ? spec.nodePorts.join : undefined,
      },
    ]),
  ];
}

function renderIngress(spec: ControlPlaneSpec): V1Ingress {
  const rule = (host: string, component: Component, port: number) => ({
    host,
    http: {
      paths: [
        {
          path: '/',
          pathType: 'Prefix',
          backend: { service: { name: componentName(spec, component), port: { number: port } } },
        },
      ],
    },
  });
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: {
      name: spec.name,
      namespace: spec.namespace,
      labels: controlPlaneLabels(spec),
      // TLS must reach the apiserver intact: it authenticates clients by their certificates.
      annotations: {
        'nginx.ingress.kubernetes.io/ssl-passthrough': 'true',
        'nginx.ingress.kubernetes.io/backend-protocol': 'HTTPS',
      },
    },
    spec: {
      ...(spec.ingressClass === undefined ? {} : { ingressClassName: spec.ingressClass }),
      rules: [
        rule(spec.host, 'apiserver', PORTS.apiserver),
        rule(spec.joinHost, 'join-server', PORTS.joinServer),
      ],
    },
  };
}

/** A projected volume of files picked from PKI Secrets: [pki piece, Secret key, file name]. */
function pkiVolume(
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

function secretVolume(name: string, secretName: string): V1Volume {
  return { name, secret: { secretName, defaultMode: 0o440 } };
}

const NON_ROOT = {
  runAsNonRoot: true,
  runAsUser: 65532,
  runAsGroup: 65532,
  fsGroup: 65532,
  seccompProfile: { type: 'RuntimeDefault' },
};
const RESTRICTED_CONTAINER = {
  allowPrivilegeEscalation: false,
  readOnlyRootFilesystem: true,
  capabilities: { drop: ['ALL'] },
};

function podTemplate(spec: ControlPlaneSpec, component: Component, podSpec: V1PodSpec): V1PodTemplateSpec {
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

function container(
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

function probes(port: number, scheme: 'HTTP' | 'HTTPS', live: string, ready: string): Partial<V1Container> {
  return {
    startupProbe: { httpGet: { path: live, port, scheme }, periodSeconds: 5, failureThreshold: 60 },
    livenessProbe: { httpGet: { path: live, port, scheme }, periodSeconds: 10, failureThreshold: 6 },
    readinessProbe: { httpGet: { path: ready, port, scheme }, periodSeconds: 5 },
  };
}

function renderEtcd(spec: ControlPlaneSpec): V1StatefulSet {
  const name = componentName(spec, 'etcd');
  const dir = '/etc/etcd/pki';
  const peer = `https://127.0.0.1:${PORTS.etcdPeer}`;
  const args = [
    `--name=${name}-0`,
    '--data-dir=/var/lib/etcd/data',
    `--listen-client-urls=https://0.0.0.0:${PORTS.etcdClient}`,
    `--advertise-client-urls=https://${name}.${spec.namespace}.svc:${PORTS.etcdClient}`,
    // One member: its peer URL never leaves the pod.
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=${name}-0=${peer}`,
    '--initial-cluster-state=new',
    `--initial-cluster-token=${spec.namespace}-${spec.name}`,
    `--listen-metrics-urls=http://0.0.0.0:${PORTS.etcdMetrics}`,
    `--cert-file=${dir}/server.crt`,
    `--key-file=${dir}/server.key`,
    `--trusted-ca-file=${dir}/ca.crt`,
    '--client-cert-auth=true',
    `--peer-cert-file=${dir}/server.crt`,
    `--peer-key-file=${dir}/server.key`,
    `--peer-trusted-ca-file=${dir}/ca.crt`,
    '--peer-client-cert-auth=true',
    '--snapshot-count=10000',
    '--auto-compaction-mode=periodic',
    '--auto-compaction-retention=1h',
  ];
  const dataVolume = `${name}-data`;
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name, namespace: spec.namespace, labels: componentLabels(spec, 'etcd') },
    spec: {
      replicas: 1,
      serviceName: name,
      selector: { matchLabels: selector(spec, 'etcd') },
      template: podTemplate(spec, 'etcd', {
        containers: [
          container('etcd', `registry.k8s.io/etcd:${spec.etcdImageTag}`, 'etcd', args, {
            ports: [{ name: 'client', containerPort: PORTS.etcdClient }],
            resources: COMPONENT_RESOURCES.etcd,
            volumeMounts: [
              { name: 'pki', mountPath: dir, readOnly: true },
              { name: dataVolume, mountPath: '/var/lib/etcd' },
            ],
            ...probes(PORTS.etcdMetrics, 'HTTP', '/livez', '/readyz'),
          }),
        ],
        volumes: [
          pkiVolume(spec, 'pki', [
            ['etcdCa', 'tls.crt', 'ca.crt'],
            ['etcdServer', 'tls.crt', 'server.crt'],
            ['etcdServer', 'tls.key', 'server.key'],
          ]),
          ...(spec.etcdStorage === undefined ? [{ name: dataVolume, emptyDir: {} }] : []),
        ],
      }),
      ...(spec.etcdStorage === undefined
        ? {}
        : {
            volumeClaimTemplates: [
              {
                apiVersion: 'v1',
                kind: 'PersistentVolumeClaim',
                metadata: {
                  name: dataVolume,
                  labels: { ...componentLabels(spec, 'etcd'), [DATA_LABEL]: 'true' },
                },
                spec: {
                  accessModes: ['ReadWriteOnce'],
                  resources: { requests: { storage: spec.etcdStorage } },
                },
              },
            ],
            persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
          }),
    },
  };
}

function deployment(spec: ControlPlaneSpec, component: Component, template: V1PodTemplateSpec): V1Deployment {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: {
      name: componentName(spec, component),
      namespace: spec.namespace,
      labels: componentLabels(spec, component),
    },
    spec: { replicas: 1, selector: { matchLabels: selector(spec, component) }, template },
  };
}

function renderApiserver(spec: ControlPlaneSpec): V1Deployment {
  const pki = (file: string): string => `${PKI_DIR}/${file}`;
  const args = [
    `--advertise-address=${spec.vip}`,
    '--allow-privileged=true',
    '--authorization-mode=Node,RBAC',
    '--bind-address=0.0.0.0',
    `--client-ca-file=${pki('ca.crt')}`,
    '--enable-admission-plugins=NodeRestriction',
    '--enable-bootstrap-token-auth=true',
    '--encryption-provider-config=/etc/kubernetes/config/encryption-config.yaml',
    `--etcd-cafile=${pki('etcd-ca.crt')}`,
    `--etcd-certfile=${pki('apiserver-etcd-client.crt')}`,
    `--etcd-keyfile=${pki('apiserver-etcd-client.key')}`,
    `--etcd-servers=https://${componentName(spec, 'etcd')}.${spec.namespace}.svc:${PORTS.etcdClient}`,
    `--external-hostname=${spec.host}`,
    `--kubelet-client-certificate=${pki('apiserver-kubelet-client.crt')}`,
    `--kubelet-client-key=${pki('apiserver-kubelet-client.key')}`,
    '--kubelet-preferred-address-types=InternalIP,ExternalIP,Hostname',
    '--profiling=false',
    `--proxy-client-cert-file=${pki('front-proxy-client.crt')}`,
    `--proxy-client-key-file=${pki('front-proxy-client.key')}`,
    '--requestheader-allowed-names=front-proxy-client',
    `--requestheader-client-ca-file=${pki('front-proxy-ca.crt')}`,
    '--requestheader-extra-headers-prefix=X-Remote-Extra-',
    '--requestheader-group-headers=X-Remote-Group',
    '--requestheader-username-headers=X-Remote-User',
    `--secure-port=${PORTS.apiserver}`,
    `--service-account-issuer=https://kubernetes.default.svc.${spec.clusterDomain}`,
    `--service-account-key-file=${pki('sa.pub')}`,
    `--service-account-signing-key-file=${pki('sa.key')}`,
    `--service-cluster-ip-range=${spec.serviceCidr}`,
    `--tls-cert-file=${pki('apiserver.crt')}`,
    `--tls-private-key-file=${pki('apiserver.key')}`,
    '--tls-min-version=VersionTLS12',
  ];
  return deployment(
    spec,
    'apiserver',
    podTemplate(spec, 'apiserver', {
      // Port 443 needs root's NET_BIND_SERVICE; every other capability is dropped.
      securityContext: { runAsUser: 0, runAsNonRoot: false, seccompProfile: { type: 'RuntimeDefault' } },
      containers: [
        container(
          'kube-apiserver',
          `registry.k8s.io/kube-apiserver:${spec.kubernetesVersion}`,
          'kube-apiserver',
          args,
          {
            ports: [{ name: 'https', containerPort: PORTS.apiserver }],
            resources: COMPONENT_RESOURCES.apiserver,
            securityContext: {
              ...RESTRICTED_CONTAINER,
              capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] },
            },
            volumeMounts: [
              { name: 'pki', mountPath: PKI_DIR, readOnly: true },
              { name: 'config', mountPath: '/etc/kubernetes/config', readOnly: true },
            ],
            ...probes(PORTS.apiserver, 'HTTPS', '/livez', '/readyz'),
          },
        ),
      ],
      volumes: [
        pkiVolume(spec, 'pki', [
          ['ca', 'tls.crt', 'ca.crt'],
          ['apiserver', 'tls.crt', 'apiserver.crt'],
          ['apiserver', 'tls.key', 'apiserver.key'],
          ['apiserverKubeletClient', 'tls.crt', 'apiserver-kubelet-client.crt'],
          ['apiserverKubeletClient', 'tls.key', 'apiserver-kubelet-client.key'],
          ['etcdCa', 'tls.crt', 'etcd-ca.crt'],
          ['apiserverEtcdClient', 'tls.crt', 'apiserver-etcd-client.crt'],
          ['apiserverEtcdClient', 'tls.key', 'apiserver-etcd-client.key'],
          ['frontProxyCa', 'tls.crt', 'front-proxy-ca.crt'],
          ['frontProxyClient', 'tls.crt', 'front-proxy-client.crt'],
          ['frontProxyClient', 'tls.key', 'front-proxy-client.key'],
          ['serviceAccount', 'sa.key', 'sa.key'],
          ['serviceAccount', 'sa.pub', 'sa.pub'],
        ]),
        secretVolume('config', `${spec.name}-apiserver-config`),
      ],
    }),
  );
}

function kubeconfigArgs(): string[] {
  return [
    `--authentication-kubeconfig=${KUBECONFIG_PATH}`,
    `--authorization-kubeconfig=${KUBECONFIG_PATH}`,
    `--kubeconfig=${KUBECONFIG_PATH}`,
  ];
}

function renderControllerManager(spec: ControlPlaneSpec): V1Deployment {
  const port = 10257;
  const args = [
    '--allocate-node-cidrs=true',
    ...kubeconfigArgs(),
    '--bind-address=0.0.0.0',
    `--client-ca-file=${PKI_DIR}/ca.crt`,
    `--cluster-cidr=${spec.podCidr}`,
    `--cluster-name=${spec.name}`,
    `--cluster-signing-cert-file=${PKI_DIR}/ca.crt`,
    `--cluster-signing-key-file=${PKI_DIR}/ca.key`,
    // bootstrapsigner and tokencleaner are off by default; node bootstrap tokens need both.
    '--controllers=*,bootstrapsigner,tokencleaner',
    '--leader-elect=true',
    '--profiling=false',
    `--requestheader-client-ca-file=${PKI_DIR}/front-proxy-ca.crt`,
    `--root-ca-file=${PKI_DIR}/ca.crt`,
    `--secure-port=${port}`,
    `--service-account-private-key-file=${PKI_DIR}/sa.key`,
    `--service-cluster-ip-range=${spec.serviceCidr}`,
    '--use-service-account-credentials=true',
  ];
  return deployment(
    spec,
    'controller-manager',
    podTemplate(spec, 'controller-manager', {
      containers: [
        container(
          'kube-controller-manager',
          `registry.k8s.io/kube-controller-manager:${spec.kubernetesVersion}`,
          'kube-controller-manager',
          args,
          {
            resources: COMPONENT_RESOURCES['controller-manager'],
            volumeMounts: [
              { name: 'pki', mountPath: PKI_DIR, readOnly: true },
              { name: 'kubeconfig', mountPath: '/etc/kubernetes/kubeconfig', readOnly: true },
            ],
            ...probes(port, 'HTTPS', '/healthz', '/healthz'),
          },
        ),
      ],
      volumes: [
        pkiVolume(spec, 'pki', [
          ['ca', 'tls.crt', 'ca.crt'],
          ['ca', 'tls.key', 'ca.key'],
          ['frontProxyCa', 'tls.crt', 'front-proxy-ca.crt'],
          ['serviceAccount', 'sa.key', 'sa.key'],
        ]),
        secretVolume('kubeconfig', `${componentName(spec, 'controller-manager')}-kubeconfig`),
      ],
    }),
  );
}

function renderScheduler(spec: ControlPlaneSpec): V1Deployment {
  const port = 10259;
  const args = [
    ...kubeconfigArgs(),
    '--bind-address=0.0.0.0',
    '--leader-elect=true',
    '--profiling=false',
    `--secure-port=${port}`,
  ];
  return deployment(
    spec,
    'scheduler',
    podTemplate(spec, 'scheduler', {
      containers: [
        container(
          'kube-scheduler',
          `registry.k8s.io/kube-scheduler:${spec.kubernetesVersion}`,
          'kube-scheduler',
          args,
          {
            resources: COMPONENT_RESOURCES.scheduler,
            volumeMounts: [{ name: 'kubeconfig', mountPath: '/etc/kubernetes/kubeconfig', readOnly: true }],
            ...probes(port, 'HTTPS', '/healthz', '/healthz'),
          },
        ),
      ],
      volumes: [secretVolume('kubeconfig', `${componentName(spec, 'scheduler')}-kubeconfig`)],
    }),
  );
}

function renderJoinServer(spec: ControlPlaneSpec): V1Deployment {
  const dir = '/etc/k8s-join-server';
  const args = [
    `--tls-cert=${dir}/pki/tls.crt`,
    `--tls-key=${dir}/pki/tls.key`,
    `--ca-cert=${dir}/pki/ca.crt`,
    `--kubeconfig=${dir}/kubeconfig/kubeconfig`,
    '--store=kubernetes',
    `--api-endpoint=${apiEndpointFor(spec.vip)}`,
    `--upstream=${spec.host}:${publicApiPort(spec)}`,
    `--cluster-dns=${spec.clusterDnsIp}`,
    `--cluster-domain=${spec.clusterDomain}`,
    `--kubernetes-version=${spec.kubernetesVersion}`,
    `--listen=0.0.0.0:${PORTS.joinServer}`,
    `--public-url=${publicJoinUrl(spec)}`,
  ];
  return deployment(
    spec,
    'join-server',
    podTemplate(spec, 'join-server', {
      containers: [
        container('k8s-join-server', spec.joinServerImage ?? JOIN_SERVER_IMAGE, 'k8s-join-server', args, {
          ports: [{ name: 'https', containerPort: PORTS.joinServer }],
          resources: COMPONENT_RESOURCES['join-server'],
          volumeMounts: [
            { name: 'pki', mountPath: `${dir}/pki`, readOnly: true },
            { name: 'kubeconfig', mountPath: `${dir}/kubeconfig`, readOnly: true },
          ],
          readinessProbe: { tcpSocket: { port: PORTS.joinServer }, periodSeconds: 5 },
        }),
      ],
      volumes: [
        secretVolume('pki', pkiSecretName(spec, 'joinServer')),
        secretVolume('kubeconfig', `${componentName(spec, 'join-server')}-kubeconfig`),
      ],
    }),
  );
}

/** Hashes the pod's args and the Secrets it mounts into an annotation, so a real change rolls it. */
function addChecksum(
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
