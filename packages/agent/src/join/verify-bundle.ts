import { X509Certificate } from 'node:crypto';
import {
  JoinError,
  isK8sOnK8sError,
  parseApiEndpoint,
  parseKubeconfig,
  resolveKubeconfig,
  type JoinBundle,
} from '@k8s-on-k8s/shared';
import { SERVER_KUBELET_FIELDS, kubeletSecurityProblems } from '../node/kubelet-security.js';
import { NODE_PATHS } from '../node/node-paths.js';
import type { DiscoveredCa } from './discover-server-ca.js';

// The pin vouches for one CA: the one the join server presented. Everything the node will trust
// later comes from the bundle, so the bundle is held to the pin before anything is written: its
// caCert (the kubelet's client CA) and the CA inside the bootstrap kubeconfig (what the kubelet
// trusts for the apiserver) must be that same certificate, and the kubeconfig must point at the
// endpoint the forwarder serves.

const PIN_HINT =
  "the join server answered with a CA other than the one --ca-cert-hash pins; nothing was written. Check the join server's --ca-cert, or whether something rewrites its answers";

/** Refuses a bundle that trusts more than the pin, or that would weaken the kubelet; writes nothing. */
export function verifyJoinBundle(bundle: JoinBundle, ca: DiscoveredCa): void {
  const pinned = new X509Certificate(ca.caPem);
  requirePinnedCa(bundle.caCert, pinned, "the bundle's caCert");

  let kubeconfig;
  let insecure = false;
  try {
    const parsed = parseKubeconfig(bundle.bootstrapKubeconfig, 'bootstrapKubeconfig');
    kubeconfig = resolveKubeconfig(parsed, 'bootstrapKubeconfig');
    const clusterName = kubeconfig.clusterName;
    insecure =
      parsed.clusters.find((c) => c.name === clusterName)?.cluster['insecure-skip-tls-verify'] === true;
  } catch (cause) {
    throw new JoinError(
      'INVALID_BUNDLE',
      `the bundle's bootstrapKubeconfig is unusable: ${isK8sOnK8sError(cause) ? cause.message : 'not a kubeconfig'}`,
      { cause },
    );
  }
  if (insecure || kubeconfig.caPem === undefined) {
    throw new JoinError(
      'CA_PIN_MISMATCH',
      "the bundle's bootstrapKubeconfig has no certificate-authority-data of the pinned CA (or sets insecure-skip-tls-verify): the kubelet would not verify the apiserver",
      { hint: PIN_HINT },
    );
  }
  requirePinnedCa(kubeconfig.caPem, pinned, "the bundle's bootstrapKubeconfig's certificate-authority-data");

  const endpoint = parseApiEndpoint(bundle.apiServer.endpoint);
  const server = parseApiEndpoint(kubeconfig.server);
  if (endpoint === undefined || server?.host !== endpoint.host || server.port !== endpoint.port) {
    throw new JoinError(
      'INVALID_BUNDLE',
      `the bundle's bootstrapKubeconfig server ${kubeconfig.server} is not apiServer.endpoint ${bundle.apiServer.endpoint}, where the forwarder listens`,
      { hint: 'The join server and this agent may be incompatible versions.' },
    );
  }

  const problems = kubeletSecurityProblems(bundle.kubeletConfig);
  if (problems.length > 0) {
    throw new JoinError(
      'INVALID_BUNDLE',
      `the join server's kubeletConfig sets what k8s-join does not take from a server, refused (nothing was written): ${problems.join('; ')}`,
      {
        hint: `k8s-join takes from the join server only ${SERVER_KUBELET_FIELDS.join(', ')}, with secure values; fix the join server, and set per-node kubelet flags in ${NODE_PATHS.kubeletExtraEnv} (KUBELET_EXTRA_ARGS)`,
      },
    );
  }
}

function requirePinnedCa(pem: string, pinned: X509Certificate, what: string): void {
  const count = pem.match(/-----BEGIN CERTIFICATE-----/g)?.length ?? 0;
  let same = false;
  try {
    same = count === 1 && new X509Certificate(pem).raw.equals(pinned.raw);
  } catch {
    same = false;
  }
  if (!same) {
    throw new JoinError(
      'CA_PIN_MISMATCH',
      `${what} is not the CA the server was pinned to${count > 1 ? ` (it holds ${count} certificates; only the pinned CA may be there)` : ''}`,
      { hint: PIN_HINT },
    );
  }
}
