// The images of konnectivity (apiserver-network-proxy), the tunnel kubectl logs/exec/port-forward take
// from a hosted kube-apiserver to the kubelets on workers it cannot reach directly.

/**
 * Upstream's names and tag, the release test/images/konnectivity/go.mod requires (build:images
 * checks the two agree): proxy-server runs beside kube-apiserver, proxy-agent on every worker.
 */
export const KONNECTIVITY_IMAGES = {
  server: 'registry.k8s.io/kas-network-proxy/proxy-server:v0.34.0',
  agent: 'registry.k8s.io/kas-network-proxy/proxy-agent:v0.34.0',
} as const;
