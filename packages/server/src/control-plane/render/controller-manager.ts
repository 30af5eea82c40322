// kube-controller-manager: signs node CSRs (client certificates with the cluster CA, serving
// certificates with the kubelet-serving CA), approves nodes' renewals, cleans up bootstrap tokens.
import type { V1Deployment } from '@kubernetes/client-node';
import { resourcesOf } from '../component-resources.js';
import { type ControlPlaneSpec } from '../spec.js';
import { componentName } from '../names.js';

import {
  goRuntimeEnv,
  LEADER_ELECTION_ARGS,
  PKI_DIR,
  container,
  deployment,
  kubeconfigArgs,
  pkiVolume,
  podTemplate,
  probes,
  secretVolume,
} from './pod-kit.js';

export function renderControllerManager(spec: ControlPlaneSpec): V1Deployment {
  const resources = resourcesOf(spec, 'controller-manager');
  const port = 10257;
  const args = [
    '--allocate-node-cidrs=true',
    ...kubeconfigArgs(),
    '--bind-address=0.0.0.0',
    `--client-ca-file=${PKI_DIR}/ca.crt`,
    `--cluster-cidr=${spec.podCidr}`,
    `--cluster-name=${spec.name}`,
    // One CA per signer, and none for kubernetes.io/legacy-unknown (then not run at all; the v1 API
    // refuses CSRs for it too): serving
    // certificates a node can obtain come from the kubelet-serving CA, which workers never trust,
    // so the cluster CA they pin signs no serverAuth certificate a node could ask for.
    `--cluster-signing-kube-apiserver-client-cert-file=${PKI_DIR}/ca.crt`,
    `--cluster-signing-kube-apiserver-client-key-file=${PKI_DIR}/ca.key`,
    `--cluster-signing-kubelet-client-cert-file=${PKI_DIR}/ca.crt`,
    `--cluster-signing-kubelet-client-key-file=${PKI_DIR}/ca.key`,
    `--cluster-signing-kubelet-serving-cert-file=${PKI_DIR}/kubelet-serving-ca.crt`,
    `--cluster-signing-kubelet-serving-key-file=${PKI_DIR}/kubelet-serving-ca.key`,
    // bootstrapsigner and tokencleaner are off by default; node bootstrap tokens need both.
    '--controllers=*,bootstrapsigner,tokencleaner',
    '--leader-elect=true',
    ...LEADER_ELECTION_ARGS,
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
            env: goRuntimeEnv(resources),
            resources,
            volumeMounts: [
              { name: 'pki', mountPath: PKI_DIR, readOnly: true },
              { name: 'kubeconfig', mountPath: '/etc/kubernetes/kubeconfig', readOnly: true },
            ],
            ...probes(port, 'HTTPS', '/healthz', undefined),
          },
        ),
      ],
      volumes: [
        pkiVolume(spec, 'pki', [
          ['ca', 'tls.crt', 'ca.crt'],
          ['ca', 'tls.key', 'ca.key'],
          ['kubeletServingCa', 'tls.crt', 'kubelet-serving-ca.crt'],
          ['kubeletServingCa', 'tls.key', 'kubelet-serving-ca.key'],
          ['frontProxyCa', 'tls.crt', 'front-proxy-ca.crt'],
          ['serviceAccount', 'sa.key', 'sa.key'],
        ]),
        secretVolume('kubeconfig', `${componentName(spec, 'controller-manager')}-kubeconfig`),
      ],
    }),
  );
}
