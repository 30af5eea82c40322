// The one place that pins the versions the project deploys by default and tests against.
// scripts/kube-build.sh reads these lines too, so keep each on one line as written.
export const DEFAULT_KUBERNETES_VERSION = 'v1.37.2';
export const DEFAULT_ETCD_VERSION = 'v3.7.0';
/**
 * An earlier patch release of the default minor, never a default: the release the upgrade tests
 * create a control plane at before changing it to DEFAULT_KUBERNETES_VERSION. scripts/kube-build.sh
 * builds its control-plane and kube-proxy binaries (test/kube/previous-patch) and build:images
 * their images.
 */
export const PREVIOUS_PATCH_KUBERNETES_VERSION = 'v1.37.1';
