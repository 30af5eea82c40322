// spec + PKI → every infra-cluster object of a hosted control plane. Pure: no clock, no randomness,
// no I/O, so the same inputs give byte-identical objects and a second server-side apply is a no-op.
import type { KubernetesObject } from '@kubernetes/client-node';
import { stringify as stringifyYaml } from 'yaml';
import { type ControlPlaneSpec } from '../spec.js';
import { PKI_NAMES, type ControlPlanePki } from '../pki.js';
import { JOIN_SERVER_USER, KONNECTIVITY_SERVER_USER } from '../../contract.js';

import { renderApiserver } from './apiserver.js';
import { renderControllerManager } from './controller-manager.js';
import { renderEtcd } from './etcd.js';
import { renderJoinServer } from './join-server.js';
import {
  APISERVER_EGRESS,
  konnectivityKubeconfigSecretName,
  renderEgressSelectorConfiguration,
} from './konnectivity.js';
import { renderNetworkPolicies } from './network-policies.js';
import { addChecksum } from './pod-kit.js';
import { renderScheduler } from './scheduler.js';
import {
  kubeconfigSecret,
  renderEncryptionConfiguration,
  renderPkiSecret,
  renderSpecConfigMap,
  secret,
} from './secrets.js';
import { renderControlPlaneServices, renderIngress } from './services.js';

/** Renders, in apply order, every infra-cluster object of the control plane. */
export function renderControlPlane(spec: ControlPlaneSpec, pki: ControlPlanePki): KubernetesObject[] {
  const secrets = [
    ...PKI_NAMES.map((pkiName) => renderPkiSecret(spec, pki, pkiName)),
    secret(spec, `${spec.name}-apiserver-config`, 'apiserver', {
      'encryption-config.yaml': renderEncryptionConfiguration(pki.encryptionKey),
      ...(spec.konnectivity ? { [APISERVER_EGRESS.configKey]: renderEgressSelectorConfiguration() } : {}),
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
    ...(spec.konnectivity
      ? [
          kubeconfigSecret(
            spec,
            pki,
            'apiserver',
            KONNECTIVITY_SERVER_USER,
            pki.konnectivityClient,
            konnectivityKubeconfigSecretName(spec),
          ),
        ]
      : []),
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
    // Before the pods, so none of them starts open.
    ...renderNetworkPolicies(spec),
    ...workloads,
    ...(spec.expose === 'ingress' ? [renderIngress(spec)] : []),
  ];
}
/** Renders objects as one multi-document YAML stream, as `kubectl apply -f` reads it. */
export function formatObjectsYaml(objects: readonly KubernetesObject[]): string {
  return objects.map((object) => `---\n${stringifyYaml(object, { lineWidth: 0 })}`).join('');
}

// Re-exported for the callers that import them from here.
export { PORTS } from './pod-kit.js';
export { COMPONENT_RESOURCES } from '../component-resources.js';
export { JOIN_SERVER_IMAGE } from './join-server.js';
export { renderEncryptionConfiguration } from './secrets.js';
export { renderControlPlaneServices } from './services.js';
