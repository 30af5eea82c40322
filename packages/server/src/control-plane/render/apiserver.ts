// kube-apiserver: advertises the VIP, authenticates bootstrap tokens, encrypts Secrets at rest.
import type { V1Deployment } from '@kubernetes/client-node';
import { resourcesOf } from '../component-resources.js';
import { type ControlPlaneSpec } from '../spec.js';
import { componentName } from '../names.js';
import { APISERVER_EGRESS, renderKonnectivityServer } from './konnectivity.js';

import {
  PKI_DIR,
  goRuntimeEnv,
  PORTS,
  RESTRICTED_CONTAINER,
  container,
  deployment,
  pkiVolume,
  podTemplate,
  probes,
  secretVolume,
} from './pod-kit.js';

export function renderApiserver(spec: ControlPlaneSpec): V1Deployment {
  const resources = resourcesOf(spec, 'apiserver');
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
    // Kubelets serve with certificates from their own signer (serverTLSBootstrap; the join server
    // approves each for its Node's names and addresses), and the apiserver verifies them.
    `--kubelet-certificate-authority=${pki('kubelet-serving-ca.crt')}`,
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
    // Dials to kubelets (logs, exec, port-forward) and to Services and pods go through konnectivity.
    ...(spec.konnectivity ? [APISERVER_EGRESS.flag] : []),
  ];
  const konnectivity = spec.konnectivity ? renderKonnectivityServer(spec) : undefined;
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
            env: goRuntimeEnv(resources),
            resources,
            securityContext: {
              ...RESTRICTED_CONTAINER,
              capabilities: { drop: ['ALL'], add: ['NET_BIND_SERVICE'] },
            },
            volumeMounts: [
              { name: 'pki', mountPath: PKI_DIR, readOnly: true },
              { name: 'config', mountPath: '/etc/kubernetes/config', readOnly: true },
              ...(konnectivity === undefined ? [] : [{ ...APISERVER_EGRESS.socketMount }]),
            ],
            ...probes(PORTS.apiserver, 'HTTPS', '/livez', '/readyz'),
          },
        ),
        ...(konnectivity === undefined ? [] : [konnectivity.container]),
      ],
      volumes: [
        pkiVolume(spec, 'pki', [
          ['ca', 'tls.crt', 'ca.crt'],
          ['apiserver', 'tls.crt', 'apiserver.crt'],
          ['apiserver', 'tls.key', 'apiserver.key'],
          ['apiserverKubeletClient', 'tls.crt', 'apiserver-kubelet-client.crt'],
          ['apiserverKubeletClient', 'tls.key', 'apiserver-kubelet-client.key'],
          ['kubeletServingCa', 'tls.crt', 'kubelet-serving-ca.crt'],
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
        ...(konnectivity?.volumes ?? []),
      ],
    }),
  );
}
