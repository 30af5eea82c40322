// Which labels a kubelet may put on its own Node. The kubelet refuses to start with a
// --node-labels key in kubernetes.io or k8s.io that is not on the list below (ValidateKubeletFlags),
// and the NodeRestriction admission plugin refuses the same keys, plus every
// node-restriction.kubernetes.io key, from a node's credentials. The lists are Kubernetes'
// k8s.io/kubelet/pkg/apis.IsKubeletLabel and noderestriction getForbiddenLabels, stated here so a
// join token cannot promise a label its node could never get.

/** kubernetes.io keys a kubelet may set (k8s.io/kubelet/pkg/apis kubeletLabels). */
const KUBELET_LABELS: ReadonlySet<string> = new Set([
  'kubernetes.io/hostname',
  'topology.kubernetes.io/zone',
  'topology.kubernetes.io/region',
  'failure-domain.beta.kubernetes.io/zone',
  'failure-domain.beta.kubernetes.io/region',
  'beta.kubernetes.io/instance-type',
  'node.kubernetes.io/instance-type',
  'kubernetes.io/os',
  'kubernetes.io/arch',
  'beta.kubernetes.io/os',
  'beta.kubernetes.io/arch',
]);

/** Prefixes (and their subdomains) under which a kubelet may set any key. */
const KUBELET_LABEL_NAMESPACES = ['kubelet.kubernetes.io', 'node.kubernetes.io'];
const NODE_RESTRICTION_NAMESPACE = 'node-restriction.kubernetes.io';

function inNamespace(prefix: string, namespace: string): boolean {
  return prefix === namespace || prefix.endsWith(`.${namespace}`);
}

/**
 * Why a kubelet may not set the label `key` on its own Node, or undefined when it may. Keys
 * without a prefix and prefixes outside kubernetes.io and k8s.io are always allowed.
 */
export function kubeletLabelRefusal(key: string): string | undefined {
  const slash = key.indexOf('/');
  const prefix = slash === -1 ? '' : key.slice(0, slash);
  if (inNamespace(prefix, NODE_RESTRICTION_NAMESPACE)) {
    return `label ${JSON.stringify(key)} is in ${NODE_RESTRICTION_NAMESPACE}, which kubelets may never set (NodeRestriction keeps it for admins: kubectl label node)`;
  }
  if (!inNamespace(prefix, 'kubernetes.io') && !inNamespace(prefix, 'k8s.io')) return undefined;
  if (KUBELET_LABELS.has(key)) return undefined;
  if (KUBELET_LABEL_NAMESPACES.some((namespace) => inNamespace(prefix, namespace))) return undefined;
  return `label ${JSON.stringify(key)} is in the kubernetes.io/k8s.io namespace, where a kubelet may set only ${[...KUBELET_LABEL_NAMESPACES].map((n) => `${n}/*`).join(', ')} and ${[...KUBELET_LABELS].join(', ')} (NodeRestriction; the kubelet would refuse to start): use your own prefix, e.g. node.kubernetes.io/role or example.com/role`;
}
