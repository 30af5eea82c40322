// What other packages (the tests, the demo, the benchmarks) use of the server package: the reconcile
// core and the commands, the join server's entry points, the names the programs agree on.
export * from './contract.js';
export { SERVER_VERSION } from './version.js';

export { buildControlPlaneSpec } from './control-plane/spec.js';
export { fromStoredSpec, toStoredSpec } from './control-plane/stored-spec.js';
export type { ControlPlaneSpec, ControlPlaneSpecInput } from './control-plane/spec.js';
export { COMPONENTS, componentName, specConfigMapName } from './control-plane/names.js';
export type { Component } from './control-plane/names.js';
export { CONTROL_PLANE_KINDS } from './control-plane/kinds.js';
export { completeControlPlanePki } from './control-plane/pki.js';
export { JOIN_SERVER_IMAGE, renderControlPlane } from './control-plane/render/control-plane.js';
export { renderHostedAssets } from './control-plane/render/hosted-assets.js';
export { KONNECTIVITY_IMAGES } from './control-plane/render/konnectivity-images.js';
export { renderJoinServerRbac } from './control-plane/render/join-server-rbac.js';
export { checkNamespaceAccess } from './control-plane/access.js';
export { deleteControlPlane, ensureControlPlane } from './control-plane/reconcile.js';
export type { ControlPlaneEvent, EnsuredControlPlane, ReconcileDeps } from './control-plane/reconcile.js';
export {
  listControlPlanes,
  readAdminKubeconfig,
  readControlPlaneStatus,
  readStoredSpec,
} from './control-plane/status.js';
export type { ControlPlaneStatus } from './control-plane/status.js';

export { applyObjects, listObjects } from './kube/apply.js';
export { loadKubeConfig } from './kube/kubeconfig.js';
export { waitForReadyz } from './kube/readyz.js';

export type { ControlPlaneCommandDeps } from './cli/command-deps.js';
export { runCreate } from './cli/control-plane/create.js';
export { runDelete } from './cli/control-plane/delete.js';
export { runKubeconfig } from './cli/control-plane/kubeconfig.js';
export { runList } from './cli/control-plane/list.js';
export { runRender } from './cli/control-plane/render.js';
export { runStatus } from './cli/control-plane/status.js';

export { JOIN_SERVER_HELP, parseJoinServerFlags } from './join-server/config.js';
export { startJoinServer } from './join-server/main.js';
export type { RunningJoinServer, StartJoinServerOptions } from './join-server/main.js';
export { readTokenFile } from './join-server/token-store/file.js';
export { KubernetesTokenStore, joinTokenSecretName } from './join-server/token-store/kubernetes.js';
export type { ConsumeResult, JoinTokenRecord } from './join-server/token-store/store.js';
export { KubernetesApi, KubernetesApiError } from './kube/api.js';

export {
  HCP_API_VERSION,
  HCP_FINALIZER,
  HCP_KIND,
  OPERATOR_FIELD_MANAGER,
  kubeconfigSecretName,
} from './operator/api.js';
export type { HostedControlPlane, HostedControlPlaneSpec, HostedControlPlaneStatus } from './operator/api.js';
export { renderHostedControlPlaneCrd } from './operator/crd.js';
export { OPERATOR_IMAGE, renderOperatorManifests } from './operator/manifests.js';
export { controlPlaneSpecOfResource } from './operator/resource-spec.js';
