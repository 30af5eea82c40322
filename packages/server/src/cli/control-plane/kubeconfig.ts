// `k8s-on-k8s kubeconfig`: the hosted admin kubeconfig, rebuilt from the Secrets.
import { readAdminKubeconfig } from '../../control-plane/status.js';
import type { ControlPlaneCommandDeps } from '../command-deps.js';
import { CLUSTER_HELP, parseTarget } from './flags.js';

export const KUBECONFIG_HELP = `Usage: k8s-on-k8s kubeconfig NAME -n NS [flags] > NAME.kubeconfig

Prints the hosted cluster's admin kubeconfig (it holds the admin's private key).

Flags:
  -n, --namespace NS        infra namespace (required)
${CLUSTER_HELP}
`;

/** `k8s-on-k8s kubeconfig`. */
export async function runKubeconfig(argv: readonly string[], deps: ControlPlaneCommandDeps): Promise<number> {
  const target = parseTarget(argv, deps, KUBECONFIG_HELP);
  if (typeof target === 'number') return target;
  deps.stdout((await readAdminKubeconfig(target.infra, target.namespace, target.name)).trimEnd());
  return 0;
}
