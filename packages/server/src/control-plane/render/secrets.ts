// The Secrets and the spec ConfigMap of a control plane: PKI entries, the encryption config, the
// components' kubeconfigs.
import type { V1ConfigMap, V1Secret } from '@kubernetes/client-node';
import { renderKubeconfig, type CertifiedKeyPair } from '@k8s-on-k8s/shared';
import { stringify as stringifyYaml } from 'yaml';
import { type ControlPlaneSpec } from '../spec.js';
import { toStoredSpec } from '../stored-spec.js';
import { pkiSecretData, pkiSecretName, type ControlPlanePki, type PkiName } from '../pki.js';
import { DATA_LABEL } from '../../contract.js';
import { componentName, controlPlaneLabels, specConfigMapName, type Component } from '../names.js';

import { PORTS, componentLabels } from './pod-kit.js';

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
export function renderSpecConfigMap(spec: ControlPlaneSpec): V1ConfigMap {
  return {
    apiVersion: 'v1',
    kind: 'ConfigMap',
    metadata: { name: specConfigMapName(spec), namespace: spec.namespace, labels: controlPlaneLabels(spec) },
    data: { 'spec.json': toStoredSpec(spec) },
  };
}
export function renderPkiSecret(spec: ControlPlaneSpec, pki: ControlPlanePki, pkiName: PkiName): V1Secret {
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
export function secret(
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
export function kubeconfigSecret(
  spec: ControlPlaneSpec,
  pki: ControlPlanePki,
  component: Component,
  userName: string,
  cert: CertifiedKeyPair,
  name = `${componentName(spec, component)}-kubeconfig`,
): V1Secret {
  return secret(spec, name, component, {
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
