// `k8s-on-k8s create --via-operator`: the same flags, validated the same way, written as a
// HostedControlPlane for the operator to reconcile; then waits on its conditions and writes the
// admin kubeconfig from the resource's `<name>-kubeconfig` Secret, as create does.
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { K8sOnK8sError, writeFileAtomic } from '@k8s-on-k8s/shared';
import type { ControlPlaneSpec, ControlPlaneSpecInput } from '../../control-plane/spec.js';
import { applyObjects } from '../../kube/apply.js';
import { KubernetesApi, KubernetesApiError } from '../../kube/api.js';
import {
  HCP_API_VERSION,
  HCP_GROUP,
  HCP_KIND,
  HCP_PLURAL,
  HCP_VERSION,
  kubeconfigSecretName,
  type HostedControlPlane,
} from '../../operator/api.js';
import { resourceSpecOfInput } from '../../operator/resource-spec.js';
import type { ControlPlaneCommandDeps } from '../command-deps.js';

const PROGRESS_EVERY_MS = 5000;

/** Applies the resource, waits up to waitMs for Available (0: not at all), writes NAME.kubeconfig. */
export async function createViaOperator(
  spec: ControlPlaneSpec,
  input: ControlPlaneSpecInput,
  infra: KubeConfig,
  waitMs: number,
  deps: ControlPlaneCommandDeps,
): Promise<number> {
  const resource = {
    apiVersion: HCP_API_VERSION,
    kind: HCP_KIND,
    metadata: { name: spec.name, namespace: spec.namespace },
    spec: resourceSpecOfInput(input),
  };
  const api = await KubernetesApi.fromKubeConfig(infra);
  const path = `/apis/${HCP_GROUP}/${HCP_VERSION}/namespaces/${spec.namespace}/${HCP_PLURAL}/${spec.name}`;
  try {
    await api.request('GET', `/apis/${HCP_GROUP}/${HCP_VERSION}`);
  } catch (error) {
    if (error instanceof KubernetesApiError && error.apiStatus === 404) {
      throw new K8sOnK8sError(
        'NOT_FOUND',
        `the infra cluster serves no ${HCP_PLURAL}.${HCP_GROUP}/${HCP_VERSION}`,
        {
          hint: 'install the operator first: kubectl apply -f deploy/operator/ (or create without --via-operator)',
        },
      );
    }
    throw error;
  }
  // The API server's CEL rules are the same as the flags' checks, so a refusal here is rare; it names the field.
  await applyObjects(infra, [resource]);
  deps.stdout(`applied ${HCP_KIND} ${spec.namespace}/${spec.name}; the operator reconciles it`);
  if (waitMs === 0) {
    deps.stdout(`not waiting (--wait 0): kubectl get hcp ${spec.name} -n ${spec.namespace} -w`);
    return 0;
  }

  const started = Date.now();
  let lastProgress = 0;
  let current: HostedControlPlane | undefined;
  for (;;) {
    current = await api.request<HostedControlPlane>('GET', path);
    const status = current.status;
    const settled = (status?.observedGeneration ?? -1) >= (current.metadata.generation ?? 0);
    const available = status?.conditions?.find((c) => c.type === 'Available');
    if (settled && status?.ready === true) break;
    const elapsed = Date.now() - started;
    const why = available === undefined ? 'not observed yet' : `${available.reason}: ${available.message}`;
    if (elapsed >= waitMs) {
      throw new K8sOnK8sError(
        'TIMEOUT',
        `${HCP_KIND} ${spec.namespace}/${spec.name} was not Available within ${Math.round(waitMs / 1000)}s (phase ${status?.phase ?? 'none'}; ${why})`,
        {
          hint: `kubectl describe hcp ${spec.name} -n ${spec.namespace}; is the operator running (kubectl get pods -n k8s-on-k8s-system)?`,
        },
      );
    }
    if (Date.now() - lastProgress >= PROGRESS_EVERY_MS) {
      lastProgress = Date.now();
      deps.stdout(
        `  waiting for Available (${Math.round(elapsed / 1000)}s): phase ${status?.phase ?? 'none'}; ${why}`,
      );
    }
    await sleep(1000);
  }
  deps.stdout(`${HCP_KIND} ${spec.name}: Available after ${Math.round((Date.now() - started) / 1000)}s`);

  const secret = await infra
    .makeApiClient(CoreV1Api)
    .readNamespacedSecret({ name: kubeconfigSecretName(spec.name), namespace: spec.namespace });
  const kubeconfig = Buffer.from(secret.data?.value ?? '', 'base64').toString('utf8');
  const file = join(deps.cwd, `${spec.name}.kubeconfig`);
  await writeFileAtomic(file, kubeconfig, 0o600);
  deps.stdout(`wrote ${file} (cluster admin, mode 0600)`);
  deps.stdout(`Server Version: ${current.status?.version ?? 'unknown'}`);
  deps.stdout('');
  deps.stdout('Next: mint a join token and run the command it prints on each worker:');
  deps.stdout(
    `  k8s-on-k8s token create --server ${current.status?.joinServerUrl ?? '<join server URL>'} --kubeconfig ${file} --ttl 30m --uses 1`,
  );
  return 0;
}
