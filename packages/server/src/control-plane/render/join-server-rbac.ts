// The hosted cluster's RBAC for the join server, least privilege: it manages Secrets in
// kube-system (bootstrap tokens, and join tokens with --store kubernetes) and asks the apiserver
// to review admins' tokens and access. Nothing else: no reads outside kube-system, no Nodes, no
// CSRs. RBAC cannot narrow `create` or `list` by name (resourceNames does not apply to them,
// https://kubernetes.io/docs/reference/access-authn-authz/rbac/#referring-to-resources), so the
// Role covers Secrets of kube-system as a whole; that is as far as RBAC allows.
// deploy/join-server/rbac.yaml holds exactly these objects; a test keeps the two equal.
import { JOIN_SERVER_USER, JOIN_TOKEN_RESOURCE } from '../../contract.js';

/** The ClusterRole admins are bound to in order to mint, list and revoke join tokens. */
export const JOIN_TOKEN_ADMIN_CLUSTER_ROLE = 'k8s-on-k8s:join-token-admin';

const NAMESPACE = 'kube-system';
const NAME = 'k8s-join-server';
const LABELS = { 'app.kubernetes.io/name': 'k8s-join-server', 'app.kubernetes.io/part-of': 'k8s-on-k8s' };
const RBAC_API = 'rbac.authorization.k8s.io';

/** A Kubernetes object as plain data, ready for server-side apply or YAML. */
export interface RbacObject {
  readonly apiVersion: string;
  readonly kind: string;
  readonly metadata: {
    readonly name: string;
    readonly namespace?: string;
    readonly labels: Record<string, string>;
  };
  readonly [field: string]: unknown;
}

/**
 * Renders the join server's RBAC for the hosted cluster: its ServiceAccount (for in-cluster
 * config), a Role on kube-system Secrets, a ClusterRole for TokenReview and SubjectAccessReview,
 * their bindings to both the service account and the client-certificate user, and the ClusterRole
 * that admins are bound to.
 */
export function renderJoinServerRbac(): readonly RbacObject[] {
  const subjects = [
    { kind: 'User', apiGroup: RBAC_API, name: JOIN_SERVER_USER },
    { kind: 'ServiceAccount', name: NAME, namespace: NAMESPACE },
  ];
  return [
    {
      apiVersion: 'v1',
      kind: 'ServiceAccount',
      metadata: { name: NAME, namespace: NAMESPACE, labels: { ...LABELS } },
    },
    {
      apiVersion: `${RBAC_API}/v1`,
      kind: 'Role',
      metadata: { name: NAME, namespace: NAMESPACE, labels: { ...LABELS } },
      rules: [
        {
          // create/delete: per-node bootstrap tokens; get/list/update/delete: the kubernetes token
          // store (update is the resourceVersion compare-and-swap that spends a use).
          apiGroups: [''],
          resources: ['secrets'],
          verbs: ['create', 'get', 'list', 'update', 'delete'],
        },
      ],
    },
    {
      apiVersion: `${RBAC_API}/v1`,
      kind: 'RoleBinding',
      metadata: { name: NAME, namespace: NAMESPACE, labels: { ...LABELS } },
      roleRef: { apiGroup: RBAC_API, kind: 'Role', name: NAME },
      subjects,
    },
    {
      apiVersion: `${RBAC_API}/v1`,
      kind: 'ClusterRole',
      metadata: { name: NAME, labels: { ...LABELS } },
      rules: [
        { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
        { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
      ],
    },
    {
      apiVersion: `${RBAC_API}/v1`,
      kind: 'ClusterRoleBinding',
      metadata: { name: NAME, labels: { ...LABELS } },
      roleRef: { apiGroup: RBAC_API, kind: 'ClusterRole', name: NAME },
      subjects,
    },
    {
      apiVersion: `${RBAC_API}/v1`,
      kind: 'ClusterRole',
      metadata: { name: JOIN_TOKEN_ADMIN_CLUSTER_ROLE, labels: { ...LABELS } },
      rules: [
        {
          apiGroups: [JOIN_TOKEN_RESOURCE.group],
          resources: [JOIN_TOKEN_RESOURCE.resource],
          verbs: ['create', 'list', 'delete'],
        },
      ],
    },
  ];
}
