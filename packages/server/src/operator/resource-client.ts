// A HostedControlPlane from the CLI's side: write one, wait on its conditions, read its kubeconfig,
// delete it and wait for the operator's finalizer. `create --via-operator` and `delete` call these;
// they print, this does the Kubernetes I/O.
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import { K8sOnK8sError } from '@k8s-on-k8s/shared';
import type { ControlPlaneSpecInput } from '../control-plane/spec.js';
import { applyObjects } from '../kube/apply.js';
import { KubernetesApi, KubernetesApiError } from '../kube/api.js';
import {
  HCP_API_VERSION,
  HCP_GROUP,
  HCP_KIND,
  HCP_PLURAL,
  HCP_VERSION,
  kubeconfigSecretName,
  type HostedControlPlane,
} from './api.js';
import { resourceSpecOfInput } from './resource-spec.js';

const resourcePath = (namespace: string, name: string) =>
  `/apis/${HCP_GROUP}/${HCP_VERSION}/namespaces/${namespace}/${HCP_PLURAL}/${name}`;

/** Whether the infra cluster serves the HostedControlPlane API (the operator's CRD is installed). */
export async function servesHostedControlPlanes(infra: KubeConfig): Promise<boolean> {
  const api = await KubernetesApi.fromKubeConfig(infra);
  try {
    await api.request('GET', `/apis/${HCP_GROUP}/${HCP_VERSION}`);
    return true;
  } catch (error) {
    if (error instanceof KubernetesApiError && error.apiStatus === 404) return false;
    throw error;
  }
}

/** The resource, or undefined when there is none (or the API is not served). */
export async function readHostedControlPlane(
  infra: KubeConfig,
  namespace: string,
  name: string,
): Promise<HostedControlPlane | undefined> {
  const api = await KubernetesApi.fromKubeConfig(infra);
  try {
    return await api.request<HostedControlPlane>('GET', resourcePath(namespace, name));
  } catch (error) {
    if (error instanceof KubernetesApiError && error.apiStatus === 404) return undefined;
    throw error;
  }
}

/** Server-side applies the resource that says what `input` says (only the fields given). */
export async function applyHostedControlPlane(
  infra: KubeConfig,
  input: ControlPlaneSpecInput & { readonly name: string; readonly namespace: string },
): Promise<void> {
  if (!(await servesHostedControlPlanes(infra))) {
    throw new K8sOnK8sError(
      'NOT_FOUND',
      `the infra cluster serves no ${HCP_PLURAL}.${HCP_GROUP}/${HCP_VERSION}`,
      {
        hint: 'install the operator first: kubectl apply -f deploy/operator/ (or create without --via-operator)',
      },
    );
  }
  await applyObjects(infra, [
    {
      apiVersion: HCP_API_VERSION,
      kind: HCP_KIND,
      metadata: { name: input.name, namespace: input.namespace },
      spec: resourceSpecOfInput(input),
    } as never,
  ]);
}

/**
 * Resolves with the resource once its status reports this generation Available; says where it
 * stands every 5 s; rejects with TIMEOUT and the Available condition's reason after `timeoutMs`.
 */
export async function waitForAvailable(
  infra: KubeConfig,
  namespace: string,
  name: string,
  options: { readonly timeoutMs: number; readonly onProgress: (line: string) => void },
): Promise<HostedControlPlane> {
  const api = await KubernetesApi.fromKubeConfig(infra);
  const started = Date.now();
  let lastProgress = 0;
  for (;;) {
    const current = await api.request<HostedControlPlane>('GET', resourcePath(namespace, name));
    const status = current.status;
    const settled = (status?.observedGeneration ?? -1) >= (current.metadata.generation ?? 0);
    if (settled && status?.ready === true) return current;
    const available = status?.conditions?.find((c) => c.type === 'Available');
    const why = available === undefined ? 'not observed yet' : `${available.reason}: ${available.message}`;
    const elapsed = Date.now() - started;
    if (elapsed >= options.timeoutMs) {
      throw new K8sOnK8sError(
        'TIMEOUT',
        `${HCP_KIND} ${namespace}/${name} was not Available within ${Math.round(options.timeoutMs / 1000)}s (phase ${status?.phase ?? 'none'}; ${why})`,
        {
          hint: `kubectl describe hcp ${name} -n ${namespace}; is the operator running (kubectl get pods -n k8s-on-k8s-system)?`,
        },
      );
    }
    if (Date.now() - lastProgress >= 5000) {
      lastProgress = Date.now();
      options.onProgress(
        `  waiting for Available (${Math.round(elapsed / 1000)}s): phase ${status?.phase ?? 'none'}; ${why}`,
      );
    }
    await sleep(1000);
  }
}

/** The admin kubeconfig the operator keeps in `<name>-kubeconfig` (key `value`). */
export async function readResourceKubeconfig(
  infra: KubeConfig,
  namespace: string,
  name: string,
): Promise<string> {
  const secret = await infra
    .makeApiClient(CoreV1Api)
    .readNamespacedSecret({ name: kubeconfigSecretName(name), namespace });
  return Buffer.from(secret.data?.value ?? '', 'base64').toString('utf8');
}

/**
 * Deletes the resource with the deletion policy `keepData` asks for, and waits (up to timeoutMs)
 * until the operator's finalizer has removed what it made and let the resource go.
 */
export async function deleteHostedControlPlane(
  infra: KubeConfig,
  resource: HostedControlPlane,
  options: { readonly keepData: boolean; readonly timeoutMs: number },
): Promise<void> {
  const api = await KubernetesApi.fromKubeConfig(infra);
  const { namespace, name } = resource.metadata;
  const policy = options.keepData ? 'Retain' : 'Delete';
  // The operator writes the resource too (the endpoint, status): on a conflict, read it again.
  let current: HostedControlPlane | undefined = resource;
  for (
    let attempt = 1;
    current !== undefined && (current.spec.deletionPolicy ?? 'Delete') !== policy;
    attempt += 1
  ) {
    try {
      await api.request('PUT', resourcePath(namespace, name), {
        ...current,
        spec: { ...current.spec, deletionPolicy: policy },
      });
      break;
    } catch (error) {
      if (!(error instanceof KubernetesApiError && error.apiStatus === 409) || attempt >= 10) throw error;
      current = await readHostedControlPlane(infra, namespace, name);
    }
  }
  if (current === undefined) return;
  await api.request('DELETE', resourcePath(namespace, name));
  const started = Date.now();
  while ((await readHostedControlPlane(infra, namespace, name)) !== undefined) {
    if (Date.now() - started > options.timeoutMs) {
      throw new K8sOnK8sError(
        'TIMEOUT',
        `${HCP_KIND} ${namespace}/${name} is still there ${Math.round(options.timeoutMs / 1000)}s after its deletion: its finalizer has not run`,
        {
          hint: `is the operator running (kubectl get pods -n k8s-on-k8s-system)? kubectl describe hcp ${name} -n ${namespace}`,
        },
      );
    }
    await sleep(1000);
  }
}
