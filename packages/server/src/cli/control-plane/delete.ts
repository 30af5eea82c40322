// `k8s-on-k8s delete`.
import { CONTROL_PLANE_LABEL } from '../../contract.js';
import { deleteControlPlane } from '../../control-plane/reconcile.js';
import {
  deleteHostedControlPlane,
  readHostedControlPlane,
  servesHostedControlPlanes,
} from '../../operator/resource-client.js';
import type { ControlPlaneCommandDeps } from '../command-deps.js';
import { CLUSTER_HELP, parseTarget } from './flags.js';

export const DELETE_HELP = `Usage: k8s-on-k8s delete NAME -n NS [--keep-data] [flags]

Deletes every object labelled ${CONTROL_PLANE_LABEL}=NAME in NS, and nothing else. A control plane
made from a HostedControlPlane resource (k8s-on-k8s-operator) is deleted through its resource,
and delete waits until the operator has removed what it made.

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
  // A control plane the operator owns would be made again from its resource: delete that instead,
  // and let the operator's finalizer remove what it made.
  const resource = (await servesHostedControlPlanes(target.infra))
    ? await readHostedControlPlane(target.infra, target.namespace, target.name)
    : undefined;
  if (resource !== undefined) {
    deps.stdout(
      `${target.name} is a HostedControlPlane: deleting the resource (deletionPolicy ${keepData ? 'Retain' : 'Delete'}); the operator removes what it made`,
    );
    await deleteHostedControlPlane(target.infra, resource, { keepData, timeoutMs: 180_000 });
    deps.stdout(
      `deleted HostedControlPlane ${target.namespace}/${target.name}${keepData ? ' (kept the etcd volume and the PKI Secrets)' : ''}`,
    );
    return 0;
  }
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
