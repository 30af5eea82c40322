// The kinds of infra-cluster objects a control plane is made of: what delete walks, what status reads.
import type { ObjectKind } from '../kube/apply.js';

export const KINDS = {
  configMap: { apiVersion: 'v1', kind: 'ConfigMap' },
  secret: { apiVersion: 'v1', kind: 'Secret' },
  service: { apiVersion: 'v1', kind: 'Service' },
  pvc: { apiVersion: 'v1', kind: 'PersistentVolumeClaim' },
  pod: { apiVersion: 'v1', kind: 'Pod' },
  deployment: { apiVersion: 'apps/v1', kind: 'Deployment' },
  statefulSet: { apiVersion: 'apps/v1', kind: 'StatefulSet' },
  ingress: { apiVersion: 'networking.k8s.io/v1', kind: 'Ingress' },
  networkPolicy: { apiVersion: 'networking.k8s.io/v1', kind: 'NetworkPolicy' },
} as const satisfies Record<string, ObjectKind>;

/**
 * Every kind `create` makes in the infra namespace (and the PVCs its StatefulSet makes), in the
 * order delete removes them: what serves traffic first (the NetworkPolicies after the workloads
 * whose pods they guard), the data last.
 */
export const CONTROL_PLANE_KINDS: readonly ObjectKind[] = [
  KINDS.ingress,
  KINDS.deployment,
  KINDS.statefulSet,
  KINDS.networkPolicy,
  KINDS.service,
  KINDS.configMap,
  KINDS.secret,
  KINDS.pvc,
];
