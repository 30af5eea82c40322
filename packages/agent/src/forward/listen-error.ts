import { K8sOnK8sError, formatHostPort, type HostPort } from '@k8s-on-k8s/shared';

/** Why binding `address` (given by `flag`) failed, with a hint for the errno codes people hit. */
export function listenError(address: HostPort, flag: string, error: unknown): K8sOnK8sError {
  const code = (error as { code?: unknown }).code;
  const where = formatHostPort(address);
  const hints: Record<string, string> = {
    EADDRNOTAVAIL: `${address.host} is not an address of this machine; for the VIP: ip addr add ${address.host}/32 dev lo`,
    EADDRINUSE: `something already listens on ${where} (an old socat?): ss -ltnp 'sport = :${address.port}'`,
    EACCES: `ports below 1024 need root or CAP_NET_BIND_SERVICE (AmbientCapabilities= in the unit)`,
  };
  return new K8sOnK8sError(
    'PRECONDITION_FAILED',
    `Cannot listen on ${where} (${flag}): ${typeof code === 'string' ? code : String(error)}`,
    {
      cause: error,
      hint: typeof code === 'string' ? hints[code] : undefined,
    },
  );
}
