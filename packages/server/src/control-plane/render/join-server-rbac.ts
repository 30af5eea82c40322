// The hosted cluster's RBAC for the join server, least privilege, and the admission policies that
// narrow what RBAC cannot:
//   - its join-token records (--store kubernetes) live in a namespace of their own,
//     k8s-on-k8s-join, where it may read and write Secrets;
//   - in kube-system it may only create and delete Secrets (no get, no list, no update), and a
//     ValidatingAdmissionPolicy lets it create only bootstrap tokens named bootstrap-token-*, for
//     authentication only, carrying exactly its own groups, and delete only such tokens. RBAC cannot
//     narrow `create` by name or content (resourceNames does not apply to it,
//     https://kubernetes.io/docs/reference/access-authn-authz/rbac/#referring-to-resources);
//     without the policy it could mint a service-account token Secret for a powerful controller;
//   - it approves node client CSRs (kubernetes.io/kube-apiserver-client-kubelet) itself, each for
//     the node its bootstrap token was minted for (join-server/csr-approval/), and a second policy
//     lets it decide only CSRs whose requester is a bootstrap token of its group: tokens it could
//     mint anyway, so the approval power adds nothing a compromised join server did not have;
//   - it approves kubelet serving CSRs (kubernetes.io/kubelet-serving) of nodes, each for the Node's
//     own names and addresses (the same policy lets it decide only those whose requester is a node):
//     a compromised join server could approve a node a certificate for another node's address,
//     which the apiserver would accept for that node's logs/exec; what it could not do is make
//     workers trust it, as the kubelet-serving CA is trusted only by the apiserver for kubelets;
//   - it reads Nodes (get, list, watch) to refuse names already registered and addresses of other Nodes,
//     and reviews admins' tokens and access.
// deploy/join-server/rbac.yaml holds exactly these objects; a test keeps the two equal.
import {
  BOOTSTRAPPERS_GROUP,
  JOIN_SERVER_USER,
  JOIN_TOKEN_NAMESPACE,
  JOIN_TOKEN_RESOURCE,
  JOIN_TOKEN_SECRET_TYPE,
  NODE_BOOTSTRAPPERS_GROUP_PREFIX,
} from '../../contract.js';

/** The ClusterRole admins are bound to in order to mint, list and revoke join tokens. */
export const JOIN_TOKEN_ADMIN_CLUSTER_ROLE = 'k8s-on-k8s:join-token-admin';

/** The admission policies' names. */
export const SECRETS_POLICY = 'k8s-on-k8s-join-server-secrets';
export const CSR_APPROVAL_POLICY = 'k8s-on-k8s-join-server-csr-approval';

const NAMESPACE = 'kube-system';
const NAME = 'k8s-join-server';
const SERVICE_ACCOUNT_USER = `system:serviceaccount:${NAMESPACE}:${NAME}`;
const KUBELET_CLIENT_SIGNER = 'kubernetes.io/kube-apiserver-client-kubelet';
const KUBELET_SERVING_SIGNER = 'kubernetes.io/kubelet-serving';
const ADMISSION_API = 'admissionregistration.k8s.io/v1';
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
 * Renders the join server's objects for the hosted cluster: the namespace of its token records, its
 * ServiceAccount (for in-cluster config), a Role on Secrets in each of the two namespaces, a
 * ClusterRole for the reviews, CSR approval and Node reads, their bindings to both the service
 * account and the client-certificate user, the ClusterRole admins are bound to, and the two
 * admission policies (with bindings) that narrow its Secrets and its approvals.
 */
export function renderJoinServerRbac(): readonly RbacObject[] {
  const subjects = [
    { kind: 'User', apiGroup: RBAC_API, name: JOIN_SERVER_USER },
    { kind: 'ServiceAccount', name: NAME, namespace: NAMESPACE },
  ];
  const meta = (namespace?: string) => ({
    name: NAME,
    ...(namespace === undefined ? {} : { namespace }),
    labels: { ...LABELS },
  });
  const secretsRole = (namespace: string, verbs: string[]): RbacObject[] => [
    {
      apiVersion: `${RBAC_API}/v1`,
      kind: 'Role',
      metadata: meta(namespace),
      rules: [{ apiGroups: [''], resources: ['secrets'], verbs }],
    },
    {
      apiVersion: `${RBAC_API}/v1`,
      kind: 'RoleBinding',
      metadata: meta(namespace),
      roleRef: { apiGroup: RBAC_API, kind: 'Role', name: NAME },
      subjects,
    },
  ];
  return [
    {
      apiVersion: 'v1',
      kind: 'Namespace',
      metadata: { name: JOIN_TOKEN_NAMESPACE, labels: { ...LABELS } },
    },
    { apiVersion: 'v1', kind: 'ServiceAccount', metadata: meta(NAMESPACE) },
    // Bootstrap tokens: minted per join, deleted when a join fails or its certificate is issued.
    ...secretsRole(NAMESPACE, ['create', 'delete']),
    // The kubernetes token store (update is the resourceVersion compare-and-swap that spends a use).
    ...secretsRole(JOIN_TOKEN_NAMESPACE, ['create', 'get', 'list', 'update', 'delete']),
    {
      apiVersion: `${RBAC_API}/v1`,
      kind: 'ClusterRole',
      metadata: meta(),
      rules: [
        { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
        { apiGroups: ['authorization.k8s.io'], resources: ['subjectaccessreviews'], verbs: ['create'] },
        {
          apiGroups: ['certificates.k8s.io'],
          resources: ['certificatesigningrequests'],
          verbs: ['get', 'list', 'watch'],
        },
        {
          apiGroups: ['certificates.k8s.io'],
          resources: ['certificatesigningrequests/approval'],
          verbs: ['update'],
        },
        {
          apiGroups: ['certificates.k8s.io'],
          resources: ['signers'],
          resourceNames: [KUBELET_CLIENT_SIGNER, KUBELET_SERVING_SIGNER],
          verbs: ['approve'],
        },
        { apiGroups: [''], resources: ['nodes'], verbs: ['get', 'list', 'watch'] },
      ],
    },
    {
      apiVersion: `${RBAC_API}/v1`,
      kind: 'ClusterRoleBinding',
      metadata: meta(),
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
    ...admissionPolicy(SECRETS_POLICY, {
      matchConstraints: {
        resourceRules: [
          {
            apiGroups: [''],
            apiVersions: ['v1'],
            operations: ['CREATE', 'UPDATE', 'DELETE'],
            resources: ['secrets'],
          },
        ],
      },
      variables: [
        // Only evaluated where referenced: on CREATE (object) and DELETE (oldObject) in kube-system.
        { name: 'created', expression: ownBootstrapTokenExpression('object') },
        { name: 'deleted', expression: ownBootstrapTokenExpression('oldObject') },
      ],
      validations: [
        {
          expression: `request.namespace != '${NAMESPACE}' || request.operation != 'CREATE' || variables.created`,
          message:
            `${NAME} may create in ${NAMESPACE} only Secrets of type bootstrap.kubernetes.io/token named ` +
            `bootstrap-token-*, for authentication only (no signing), with an expiration, and with ` +
            `auth-extra-groups exactly ${BOOTSTRAPPERS_GROUP},${NODE_BOOTSTRAPPERS_GROUP_PREFIX}<node>`,
          reason: 'Forbidden',
        },
        {
          expression: `request.namespace != '${NAMESPACE}' || request.operation != 'DELETE' || variables.deleted`,
          message: `${NAME} may delete in ${NAMESPACE} only the bootstrap tokens it minted`,
          reason: 'Forbidden',
        },
        {
          expression:
            `request.namespace != '${JOIN_TOKEN_NAMESPACE}' || request.operation == 'DELETE' || ` +
            `object.type == '${JOIN_TOKEN_SECRET_TYPE}'`,
          message: `${NAME} may write in ${JOIN_TOKEN_NAMESPACE} only Secrets of type ${JOIN_TOKEN_SECRET_TYPE}`,
          reason: 'Forbidden',
        },
      ],
    }),
    ...admissionPolicy(CSR_APPROVAL_POLICY, {
      matchConstraints: {
        resourceRules: [
          {
            apiGroups: ['certificates.k8s.io'],
            apiVersions: ['*'],
            operations: ['UPDATE'],
            resources: ['certificatesigningrequests/approval'],
          },
        ],
      },
      validations: [
        {
          expression:
            `(object.spec.signerName == '${KUBELET_CLIENT_SIGNER}' && ` +
            `object.spec.username.startsWith('system:bootstrap:') && ` +
            `has(object.spec.groups) && '${BOOTSTRAPPERS_GROUP}' in object.spec.groups) || ` +
            `(object.spec.signerName == '${KUBELET_SERVING_SIGNER}' && ` +
            `object.spec.username.startsWith('system:node:') && ` +
            `has(object.spec.groups) && 'system:nodes' in object.spec.groups)`,
          message:
            `${NAME} may approve or deny only ${KUBELET_CLIENT_SIGNER} CSRs whose requester is a ` +
            `bootstrap token of ${BOOTSTRAPPERS_GROUP}, and ${KUBELET_SERVING_SIGNER} CSRs whose requester is a node`,
          reason: 'Forbidden',
        },
      ],
    }),
  ];
}

// A bootstrap token as the join server mints it (join-service.ts, node-bootstrap-group.ts).
//
// Secret data reaches CEL base64-encoded, as on the wire, and CEL in Kubernetes has no base64
// decoding, so values are compared in encoded form. auth-extra-groups must be exactly our group and
// one node group: it starts with OWN_GROUPS_PREFIX, whose length is a multiple of 3, so its
// encoding is a prefix of the value's encoding; and what follows holds no comma (the group
// separator, so no third group), which BASE64_COMMA finds in any aligned 4-character block: a byte
// 0x2C in position 1, 2 or 3 of the block's 3 bytes. The node group's own characters are checked by
// the bootstrap-token authenticator (BootstrapGroupPattern), which rejects a token with a bad group.
const OWN_GROUPS_PREFIX = `${BOOTSTRAPPERS_GROUP},${NODE_BOOTSTRAPPERS_GROUP_PREFIX}`;
if (OWN_GROUPS_PREFIX.length % 3 !== 0)
  throw new Error('OWN_GROUPS_PREFIX must encode to whole base64 blocks');
const base64 = (text: string): string => Buffer.from(text).toString('base64');
/** An RE2 pattern that matches base64 text whose decoding contains a ',' (tested exhaustively). */
export const BASE64_COMMA = '^(.{4})*(L[A-P]..|.[CSiy][w-z].|..[AEIMQUYcgkosw048]s)';

function ownBootstrapTokenExpression(secret: 'object' | 'oldObject'): string {
  const data = `${secret}.data`;
  const value = (key: string) => `string(${data}['${key}'])`;
  const groups = value('auth-extra-groups');
  const prefix = base64(OWN_GROUPS_PREFIX);
  return [
    `${secret}.type == 'bootstrap.kubernetes.io/token'`,
    `${secret}.metadata.name.startsWith('bootstrap-token-')`,
    `has(${data})`,
    `'usage-bootstrap-authentication' in ${data}`,
    `${value('usage-bootstrap-authentication')} == '${base64('true')}'`,
    `!('usage-bootstrap-signing' in ${data})`,
    `'expiration' in ${data}`,
    `'auth-extra-groups' in ${data}`,
    `${groups}.startsWith('${prefix}')`,
    `${groups}.size() > ${String(prefix.length)}`,
    `!${groups}.substring(${String(prefix.length)}).matches('${BASE64_COMMA}')`,
  ].join(' && ');
}

/** A ValidatingAdmissionPolicy that applies to the join server's two identities, and its binding. */
function admissionPolicy(name: string, spec: Record<string, unknown>): RbacObject[] {
  return [
    {
      apiVersion: ADMISSION_API,
      kind: 'ValidatingAdmissionPolicy',
      metadata: { name, labels: { ...LABELS } },
      spec: {
        failurePolicy: 'Fail',
        matchConditions: [
          {
            name: 'join-server',
            expression:
              `request.userInfo.username == '${JOIN_SERVER_USER}' || ` +
              `request.userInfo.username == '${SERVICE_ACCOUNT_USER}'`,
          },
        ],
        ...spec,
      },
    },
    {
      apiVersion: ADMISSION_API,
      kind: 'ValidatingAdmissionPolicyBinding',
      metadata: { name, labels: { ...LABELS } },
      spec: { policyName: name, validationActions: ['Deny'] },
    },
  ];
}
