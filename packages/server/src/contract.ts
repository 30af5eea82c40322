// The names the programs of this package agree on: what the control-plane renderer writes into a
// hosted cluster (RBAC subjects, resources, labels) must match what k8s-join-server mints and
// checks, and what delete selects must match what create labels. Stated once, here; a test
// (test/contract.test.ts) holds the renderer and the join server to it.
export { API_VIP } from '@k8s-on-k8s/shared';

/** On every object of a control plane, infra and hosted: `<name>`. Delete and list select by it. */
export const CONTROL_PLANE_LABEL = 'k8s-on-k8s.io/control-plane';
/** On the objects of one component (`etcd`, `apiserver`, …), so a selector can pick them. */
export const COMPONENT_LABEL = 'k8s-on-k8s.io/component';
/** On Secrets and PVCs that `delete --keep-data` keeps: etcd data is useless without its CA and key. */
export const DATA_LABEL = 'k8s-on-k8s.io/data';
/** On pod templates: a hash of the args and mounted Secrets, so changing either rolls the pods. */
export const CHECKSUM_ANNOTATION = 'k8s-on-k8s.io/config-checksum';
/** Who applied it, for people reading objects; the value is always k8s-on-k8s. */
export const MANAGED_BY_LABEL = 'app.kubernetes.io/managed-by';

/** The one field manager of everything k8s-on-k8s applies, so re-applying takes nothing from anyone else. */
export const FIELD_MANAGER = 'k8s-on-k8s';

/**
 * The group every bootstrap token the join server mints carries (`auth-extra-groups`), and the
 * subject of the hosted cluster's node-bootstrap RBAC: CSR creation (never auto-approval: the join
 * server approves each node client CSR itself, for the node name its token was minted for).
 */
export const BOOTSTRAPPERS_GROUP = 'system:bootstrappers:k8s-on-k8s';

/**
 * The start of the second group of each bootstrap token: `<prefix><node name, '.' written ':'>`,
 * the node the token was minted for. The apiserver copies it into every CSR the token creates
 * (spec.groups), where the bootstrap credential cannot change it.
 */
export const NODE_BOOTSTRAPPERS_GROUP_PREFIX = `${BOOTSTRAPPERS_GROUP}:node:`;

/** The namespace of the hosted cluster that holds join-token records (`--store kubernetes`). */
export const JOIN_TOKEN_NAMESPACE = 'k8s-on-k8s-join';

/** On each bootstrap-token Secret: the join token whose use minted it (an id, never a secret). */
export const JOIN_TOKEN_ID_LABEL = 'k8s-on-k8s.io/join-token-id';

/**
 * The virtual resource admins are authorized for (SubjectAccessReview) to mint, list and revoke
 * join tokens; the join server's RBAC renders a ClusterRole for it.
 */
export const JOIN_TOKEN_RESOURCE = { group: 'k8s-on-k8s.io', resource: 'jointokens' } as const;

/** The user name (certificate CN) of the join server's client certificate for the hosted apiserver. */
export const JOIN_SERVER_USER = 'k8s-join-server';

/** The konnectivity proxy servers' user in the hosted cluster (client certificate CN), as upstream names it. */
export const KONNECTIVITY_SERVER_USER = 'system:konnectivity-server';
/** The audience of the agents' service-account tokens that the proxy servers review. */
export const KONNECTIVITY_AUDIENCE = 'system:konnectivity-server';
/** The agents' ServiceAccount (kube-system) in the hosted cluster. */
export const KONNECTIVITY_AGENT_SERVICE_ACCOUNT = 'konnectivity-agent';
/**
 * The konnectivity agent port: where the proxy servers listen in the apiserver pod, and the VIP
 * port each worker's second forwarder listens on for its agent (the join bundle names it).
 */
export const KONNECTIVITY_AGENT_PORT = 8132;
/** The label on the proxy servers' Leases in the hosted kube-system, which agents count. */
export const KONNECTIVITY_LEASE_LABEL = 'k8s-app=konnectivity-server';

/** The Secret type and label of a join-token record in the kubernetes token store. */
export const JOIN_TOKEN_SECRET_TYPE = 'k8s-on-k8s.io/join-token';
export const JOIN_TOKEN_LABEL = 'k8s-on-k8s.io/join-token';

/**
 * The audience an admin's bearer token must be minted for (`kubectl create token NAME --audience
 * k8s-join-server`): the join server's TokenReview asks for it, so a token minted for the apiserver
 * (or any other service) that leaks is no key to the join server, nor one of ours to the apiserver.
 */
export const JOIN_SERVER_AUDIENCE = 'k8s-join-server';
