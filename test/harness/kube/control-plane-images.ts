import { buildControlPlaneSpec, completeControlPlanePki, renderControlPlane } from '@k8s-on-k8s/server';
import { workloadImages, type InfraCluster } from './infra-cluster.js';

/**
 * Imports into the infra node the images a default control plane's pods run (etcd, the apiserver
 * with its konnectivity sidecar, controller-manager, scheduler, join server), as the benchmarks
 * that create many need before the first; returns their names.
 */
export async function importControlPlaneImages(
  infra: InfraCluster,
  log: (line: string) => void,
): Promise<string[]> {
  const sample = buildControlPlaneSpec({
    name: 'images',
    namespace: 'images',
    host: infra.nodeAddress,
    nodePorts: { api: 30443, join: 30843, konnectivity: 30132 },
  });
  const images = workloadImages(renderControlPlane(sample, (await completeControlPlanePki(sample, {})).pki));
  log(`infra node ${infra.nodeName}: importing ${images.length} control-plane images`);
  await infra.importImages(images);
  return images;
}
