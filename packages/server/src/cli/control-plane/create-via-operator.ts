// `k8s-on-k8s create --via-operator`: the same flags, validated the same way, written as a
// HostedControlPlane for the operator to reconcile; then waits on its conditions and writes the
// admin kubeconfig from the resource's `<name>-kubeconfig` Secret, as create does.
import { join } from 'node:path';
import type { KubeConfig } from '@kubernetes/client-node';
import { writeFileAtomic } from '@k8s-on-k8s/shared';
import type { ControlPlaneSpec, ControlPlaneSpecInput } from '../../control-plane/spec.js';
import { HCP_KIND } from '../../operator/api.js';
import {
  applyHostedControlPlane,
  readResourceKubeconfig,
  waitForAvailable,
} from '../../operator/resource-client.js';
import type { ControlPlaneCommandDeps } from '../command-deps.js';

/** Applies the resource, waits up to waitMs for Available (0: not at all), writes NAME.kubeconfig. */
export async function createViaOperator(
  spec: ControlPlaneSpec,
  input: ControlPlaneSpecInput,
  infra: KubeConfig,
  waitMs: number,
  deps: ControlPlaneCommandDeps,
): Promise<number> {
  await applyHostedControlPlane(infra, { ...input, name: spec.name, namespace: spec.namespace });
  deps.stdout(`applied ${HCP_KIND} ${spec.namespace}/${spec.name}; the operator reconciles it`);
  if (waitMs === 0) {
    deps.stdout(`not waiting (--wait 0): kubectl get hcp ${spec.name} -n ${spec.namespace} -w`);
    return 0;
  }
  const started = Date.now();
  const available = await waitForAvailable(infra, spec.namespace, spec.name, {
    timeoutMs: waitMs,
    onProgress: deps.stdout,
  });
  deps.stdout(`${HCP_KIND} ${spec.name}: Available after ${Math.round((Date.now() - started) / 1000)}s`);
  const file = join(deps.cwd, `${spec.name}.kubeconfig`);
  await writeFileAtomic(file, await readResourceKubeconfig(infra, spec.namespace, spec.name), 0o600);
  deps.stdout(`wrote ${file} (cluster admin, mode 0600)`);
  deps.stdout(`Server Version: ${available.status?.version ?? 'unknown'}`);
  deps.stdout('');
  deps.stdout('Next: mint a join token and run the command it prints on each worker:');
  deps.stdout(
    `  k8s-on-k8s token create --server ${available.status?.joinServerUrl ?? '<join server URL>'} --kubeconfig ${file} --ttl 30m --uses 1`,
  );
  return 0;
}
