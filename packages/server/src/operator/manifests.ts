// What `kubectl apply -f deploy/operator/` installs: the CRD, the operator's least-privilege RBAC
// and its Deployment. Rendered here, written to deploy/operator/ and held to it by a test, like
// deploy/join-server/.
import type { KubernetesObject } from '@kubernetes/client-node';
import { SERVER_VERSION } from '../version.js';
import { CONTROL_PLANE_LABEL, MANAGED_BY_LABEL } from '../contract.js';
import { HCP_GROUP, HCP_PLURAL, kubeconfigSecretName } from './api.js';
import { renderHostedControlPlaneCrd } from './crd.js';

export const OPERATOR_NAMESPACE = 'k8s-on-k8s-system';
export const OPERATOR_NAME = 'k8s-on-k8s-operator';
/** The operator image `npm run build:images` builds (the join server's registry and tag). */
export const OPERATOR_IMAGE = `ghcr.io/k8s-on-k8s/${OPERATOR_NAME}:v${SERVER_VERSION}`;
export const OPERATOR_HEALTH_PORT = 8081;

const RBAC = 'rbac.authorization.k8s.io';
const labels = { 'app.kubernetes.io/name': OPERATOR_NAME, 'app.kubernetes.io/part-of': 'k8s-on-k8s' };
const WRITE = ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'];

/**
 * What the operator may do, cluster-wide (a control plane can live in any namespace): its own
 * resources; the kinds a control plane is made of in the infra cluster (CONTROL_PLANE_KINDS, held
 * to it by a test); pods read for status; Events. Nothing on nodes, RBAC, or other namespaces' Leases.
 */
export const OPERATOR_CLUSTER_RULES = [
  { apiGroups: [HCP_GROUP], resources: [HCP_PLURAL], verbs: ['get', 'list', 'watch', 'update', 'patch'] },
  { apiGroups: [HCP_GROUP], resources: [`${HCP_PLURAL}/status`], verbs: ['get', 'update', 'patch'] },
  { apiGroups: [HCP_GROUP], resources: [`${HCP_PLURAL}/finalizers`], verbs: ['update'] },
  {
    apiGroups: [''],
    resources: ['configmaps', 'secrets', 'services', 'persistentvolumeclaims'],
    verbs: WRITE,
  },
  { apiGroups: [''], resources: ['pods'], verbs: ['get', 'list', 'watch'] },
  { apiGroups: [''], resources: ['events'], verbs: ['create', 'patch'] },
  { apiGroups: ['apps'], resources: ['deployments', 'statefulsets'], verbs: WRITE },
  { apiGroups: ['networking.k8s.io'], resources: ['networkpolicies', 'ingresses'], verbs: WRITE },
] as const;

export function renderOperatorRbac(): KubernetesObject[] {
  const subject = { kind: 'ServiceAccount', name: OPERATOR_NAME, namespace: OPERATOR_NAMESPACE };
  return [
    { apiVersion: 'v1', kind: 'Namespace', metadata: { name: OPERATOR_NAMESPACE, labels } },
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: OPERATOR_NAME, namespace: OPERATOR_NAMESPACE, labels },
    },
    {
      apiVersion: `${RBAC}/v1`,
      kind: 'ClusterRole',
      metadata: { name: OPERATOR_NAME, labels },
      rules: OPERATOR_CLUSTER_RULES,
    } as KubernetesObject,
    {
      apiVersion: `${RBAC}/v1`,
      kind: 'ClusterRoleBinding',
      metadata: { name: OPERATOR_NAME, labels },
      roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: OPERATOR_NAME },
      subjects: [subject],
    } as KubernetesObject,
    // Leader election: its Lease only, in its own namespace.
    {
      apiVersion: `${RBAC}/v1`,
      kind: 'Role',
      metadata: { name: `${OPERATOR_NAME}:leader-election`, namespace: OPERATOR_NAMESPACE, labels },
      rules: [
        { apiGroups: ['coordination.k8s.io'], resources: ['leases'], verbs: ['create'] },
        {
          apiGroups: ['coordination.k8s.io'],
          resources: ['leases'],
          resourceNames: [OPERATOR_NAME],
          verbs: ['get', 'update'],
        },
      ],
    } as KubernetesObject,
    {
      apiVersion: `${RBAC}/v1`,
      kind: 'RoleBinding',
      metadata: { name: `${OPERATOR_NAME}:leader-election`, namespace: OPERATOR_NAMESPACE, labels },
      roleRef: { apiGroup: RBAC, kind: 'Role', name: `${OPERATOR_NAME}:leader-election` },
      subjects: [subject],
    } as KubernetesObject,
  ];
}

/** Two replicas: one leads (the Lease), the other takes over within ~15 s if it goes. */
export function renderOperatorDeployment(image = OPERATOR_IMAGE): KubernetesObject {
  return {
    apiVersion: 'apps/v1',
    kind: 'Deployment',
    metadata: { name: OPERATOR_NAME, namespace: OPERATOR_NAMESPACE, labels },
    spec: {
      replicas: 2,
      selector: { matchLabels: { 'app.kubernetes.io/name': OPERATOR_NAME } },
      template: {
        metadata: { labels },
        spec: {
          serviceAccountName: OPERATOR_NAME,
          securityContext: {
            runAsNonRoot: true,
            runAsUser: 65532,
            runAsGroup: 65532,
            seccompProfile: { type: 'RuntimeDefault' },
          },
          containers: [
            {
              name: 'operator',
              image,
              args: [`--health-port=${OPERATOR_HEALTH_PORT}`],
              env: [
                { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
                { name: 'POD_NAMESPACE', valueFrom: { fieldRef: { fieldPath: 'metadata.namespace' } } },
              ],
              ports: [{ name: 'health', containerPort: OPERATOR_HEALTH_PORT }],
              readinessProbe: { httpGet: { path: '/readyz', port: 'health' }, periodSeconds: 5 },
              livenessProbe: {
                httpGet: { path: '/healthz', port: 'health' },
                periodSeconds: 10,
                failureThreshold: 6,
              },
              resources: { requests: { cpu: '20m', memory: '96Mi' }, limits: { memory: '384Mi' } },
              securityContext: {
                allowPrivilegeEscalation: false,
                readOnlyRootFilesystem: true,
                capabilities: { drop: ['ALL'] },
              },
            },
          ],
        },
      },
    },
  } as KubernetesObject;
}

/** deploy/operator/'s three files, in the order `kubectl apply -f` should meet them. */
export function renderOperatorManifests(): Readonly<
  Record<'crd.yaml' | 'rbac.yaml' | 'operator.yaml', KubernetesObject[]>
> {
  return {
    'crd.yaml': [renderHostedControlPlaneCrd()],
    'rbac.yaml': renderOperatorRbac(),
    'operator.yaml': [renderOperatorDeployment()],
  };
}

/** Cluster API's `<name>-kubeconfig` Secret (key `value`), labelled so delete removes it with the rest. */
export function renderKubeconfigSecret(
  namespace: string,
  name: string,
  kubeconfig: string,
): KubernetesObject {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    metadata: {
      name: kubeconfigSecretName(name),
      namespace,
      labels: {
        [CONTROL_PLANE_LABEL]: name,
        [MANAGED_BY_LABEL]: 'k8s-on-k8s',
        'cluster.x-k8s.io/cluster-name': name,
      },
    },
    type: 'cluster.x-k8s.io/secret',
    data: { value: Buffer.from(kubeconfig).toString('base64') },
  } as KubernetesObject;
}
