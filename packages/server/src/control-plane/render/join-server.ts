// k8s-join-server: the Deployment next to each control plane that exchanges join tokens for bundles.
import type { V1Deployment } from '@kubernetes/client-node';
import { resourcesOf } from '../component-resources.js';
import { publicApiPort, publicJoinUrl, publicKonnectivityPort, type ControlPlaneSpec } from '../spec.js';
import { pkiSecretName } from '../pki.js';
import { SERVER_VERSION } from '../../version.js';
import { componentName } from '../names.js';

import { PORTS, advertisedApiEndpoint, container, deployment, podTemplate, secretVolume } from './pod-kit.js';

/** The join server image unless the spec names another; `npm run build:images` builds it at this version. */
export const JOIN_SERVER_IMAGE = `ghcr.io/k8s-on-k8s/k8s-join-server:v${SERVER_VERSION}`;
export function renderJoinServer(spec: ControlPlaneSpec): V1Deployment {
  const dir = '/etc/k8s-join-server';
  const args = [
    `--tls-cert=${dir}/pki/tls.crt`,
    `--tls-key=${dir}/pki/tls.key`,
    `--ca-cert=${dir}/pki/ca.crt`,
    `--kubeconfig=${dir}/kubeconfig/kubeconfig`,
    '--store=kubernetes',
    `--api-endpoint=${advertisedApiEndpoint(spec)}`,
    `--upstream=${spec.host}:${publicApiPort(spec)}`,
    ...(spec.konnectivity ? [`--konnectivity-upstream=${spec.host}:${publicKonnectivityPort(spec)}`] : []),
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
          resources: resourcesOf(spec, 'join-server'),
          volumeMounts: [
            { name: 'pki', mountPath: `${dir}/pki`, readOnly: true },
            { name: 'kubeconfig', mountPath: `${dir}/kubeconfig`, readOnly: true },
          ],
          readinessProbe: { tcpSocket: { port: PORTS.joinServer }, periodSeconds: 5, timeoutSeconds: 5 },
        }),
      ],
      volumes: [
        secretVolume('pki', pkiSecretName(spec, 'joinServer')),
        secretVolume('kubeconfig', `${componentName(spec, 'join-server')}-kubeconfig`),
      ],
    }),
  );
}
