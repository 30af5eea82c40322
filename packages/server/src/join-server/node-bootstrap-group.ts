import { ValidationError } from '@k8s-on-k8s/shared';
import { BOOTSTRAPPERS_GROUP, NODE_BOOTSTRAPPERS_GROUP_PREFIX } from '../contract.js';

// The node a bootstrap token was minted for, written into the token itself as an extra group. The
// bootstrap-token authenticator puts a token's `auth-extra-groups` into the user's groups, and the
// apiserver records them in each CSR's spec.groups: the approver reads the node name from there,
// where neither the kubelet nor anyone holding the token can change it, and no lookup of the
// bootstrap Secret (which the join server may not read) is needed.
//
// Extra groups must match cluster-bootstrap's BootstrapGroupPattern,
// `\Asystem:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]\z`: no dots. Node names are DNS-1123 subdomains
// ([a-z0-9.-]), never with ':', so '.' → ':' is reversible.

const BOOTSTRAP_GROUP_ROOT = 'system:bootstrappers:';
/** What the pattern allows after `system:bootstrappers:`. */
const MAX_GROUP_TAIL = 256;

/** The longest node name whose group fits the pattern: 240 characters. */
export const MAX_JOIN_NODE_NAME_LENGTH =
  MAX_GROUP_TAIL - (NODE_BOOTSTRAPPERS_GROUP_PREFIX.length - BOOTSTRAP_GROUP_ROOT.length);

/** The groups of a bootstrap token minted for `nodeName`: the shared one and the node's own. */
export function bootstrapGroupsFor(nodeName: string): readonly [string, string] {
  if (nodeName.length > MAX_JOIN_NODE_NAME_LENGTH) {
    throw new ValidationError(
      'INVALID_NODE_NAME',
      `Expected nodeName to be at most ${String(MAX_JOIN_NODE_NAME_LENGTH)} characters (it is written into the bootstrap token's group), got one of ${String(nodeName.length)}`,
    );
  }
  return [BOOTSTRAPPERS_GROUP, `${NODE_BOOTSTRAPPERS_GROUP_PREFIX}${nodeName.replaceAll('.', ':')}`];
}

/**
 * The node name a requester's groups bind it to; undefined when there is no node group, or more
 * than one (never minted by us: refuse rather than pick).
 */
export function nodeNameOfGroups(groups: readonly string[]): string | undefined {
  const names = groups
    .filter((group) => group.startsWith(NODE_BOOTSTRAPPERS_GROUP_PREFIX))
    .map((group) => group.slice(NODE_BOOTSTRAPPERS_GROUP_PREFIX.length).replaceAll(':', '.'));
  return names.length === 1 ? names[0] : undefined;
}
