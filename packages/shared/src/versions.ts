// The one place that pins the versions the project deploys by default and tests against.
// scripts/kube-build.sh reads these two lines too, so keep each on one line as written.
export const DEFAULT_KUBERNETES_VERSION = 'v1.37.2';
export const DEFAULT_ETCD_VERSION = 'v3.7.0';
