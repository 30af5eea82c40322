// `k8s-on-k8s delete`.
import { CONTROL_PLANE_LABEL } from '../../contract.js';
import { deleteControlPlane } from '../../control-plane/reconcile.js';
import type { ControlPlaneCommandDeps } from '../command-deps.js';
import { CLUSTER_HELP, parseTarget } from './flags.js';

export const DELETE_HELP = `Usage: k8s-on-k8s delete NAME -n NS [--keep-data] [flags]

Deletes every object labelled ${CONTROL_PLANE_LABEL}=NAME in NS, and nothing else.

Flags:
  -n, --namespace NS        infra namespace (required)
  --keep-data               keep etcd's PersistentVolumeClaim and the PKI Secrets (the data is
                            encrypted with keys kept there), so a later create picks both up
${CLUSTER_HELP}
`;

/** `k8s-on-k8s delete`. */
export async function runDelete(argv: readonly string[], deps: ControlPlaneCommandDeps): Promise<number> {
  const target = parseTarget(argv, deps, DELETE_HELP, { 'keep-data': { type: 'boolean' } });
  if (typeof target === 'number') return target;
  const keepData = target.flags['keep-data'] === true;
  const deleted = await deleteControlPlane(target.infra, target.namespace, target.name, {
    keepData,
    onDeleted: (object) => {
      deps.stdout(`deleted ${object}`);
    },
  });
  deps.stdout(
    `deleted control plane ${target.name}: ${deleted.length} objects${keepData ? ' (kept the etcd volume and the PKI Secrets)' : ''}`,
  );
  return 0;
}
