// deploy/operator/ installed into the harness's infra cluster as an admin would (kubectl apply -f),
// with the operator image imported on the node: for the operator e2e and bench:operator.
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { OPERATOR_IMAGE, applyObjects, renderOperatorManifests } from '@k8s-on-k8s/server';
import { eventually } from '../process/eventually.js';
import type { InfraCluster } from './infra-cluster.js';
import { isPodReady } from './pod-lines.js';

/**
 * deploy/operator/ as `kubectl apply -f` would install it (CRD, RBAC, the Deployment), with the
 * operator image imported on the node; resolves once an operator pod is Ready.
 */
export async function installOperator(infra: InfraCluster, log: (line: string) => void): Promise<void> {
  log(`infra node: ctr images import ${OPERATOR_IMAGE}; kubectl apply -f deploy/operator/`);
  await infra.importImages([OPERATOR_IMAGE]);
  const manifests = renderOperatorManifests();
  const kubeConfig = infra.api.kubeConfig();
  await applyObjects(kubeConfig, manifests['crd.yaml']);
  await eventually('the HostedControlPlane CRD to be served', 30_000, async () => {
    await kubeConfig.makeApiClient(CustomObjectsApi).listClusterCustomObject({
      group: 'k8s-on-k8s.io',
      version: 'v1alpha1',
      plural: 'hostedcontrolplanes',
    });
    return true;
  });
  await applyObjects(kubeConfig, [...manifests['rbac.yaml'], ...manifests['operator.yaml']]);
  const core = kubeConfig.makeApiClient(CoreV1Api);
  await eventually('an operator pod Ready', 120_000, async () => {
    const pods = await core.listNamespacedPod({
      namespace: 'k8s-on-k8s-system',
      labelSelector: 'app.kubernetes.io/name=k8s-on-k8s-operator',
    });
    return pods.items.some(isPodReady) ? true : undefined;
  }).catch(async (error: unknown) => {
    throw new Error(`${String(error)}\n${await infra.podLogs()}`);
  });
}
