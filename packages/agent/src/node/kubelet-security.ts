// The kubelet API settings a worker keeps whatever the join server sends. The join server is
// verified, but it is also the internet-facing piece most likely to be misconfigured or taken
// over, and these settings decide who may exec into every pod on the node. Weakening is refused
// (the join fails, writing nothing) rather than silently overridden: a server that asks for it is
// misconfigured or not ours, and an override would hide that in a boot log while the admin
// believes their configuration is in force. Fields left out get the secure value written
// explicitly, so the file does not lean on defaults that differ between the flag and file forms.

/** Written into every KubeletConfiguration, over the server's copy (kubeadm enforces the same). */
export const SECURE_KUBELET_SETTINGS = {
  anonymousAuthentication: false,
  authorizationMode: 'Webhook',
  readOnlyPort: 0,
} as const;

const WEAK_TLS_VERSIONS = new Set(['VersionTLS10', 'VersionTLS11']);

/**
 * What in the server's KubeletConfiguration would weaken the kubelet API, one line per field, or
 * an empty list. Authentication webhook off is not among them: it removes a way to authenticate
 * (bearer tokens), so with anonymous off it can only narrow who gets in.
 */
export function kubeletSecurityProblems(config: Readonly<Record<string, unknown>>): string[] {
  const problems: string[] = [];
  const authentication = objectAt(config.authentication);
  const anonymous = objectAt(authentication?.anonymous)?.enabled;
  if (anonymous !== undefined && anonymous !== false) {
    problems.push(
      `kubeletConfig.authentication.anonymous.enabled is ${JSON.stringify(anonymous)}: anyone reaching port 10250 would be served`,
    );
  }
  const mode = objectAt(config.authorization)?.mode;
  if (mode !== undefined && mode !== 'Webhook') {
    problems.push(
      `kubeletConfig.authorization.mode is ${JSON.stringify(mode)}: only "Webhook" asks the apiserver who may use the kubelet API`,
    );
  }
  if (config.readOnlyPort !== undefined && config.readOnlyPort !== 0) {
    problems.push(
      `kubeletConfig.readOnlyPort is ${JSON.stringify(config.readOnlyPort)}: it serves pod and node data without authentication; it must be 0`,
    );
  }
  if (config.staticPodURL !== undefined && config.staticPodURL !== '') {
    problems.push(
      'kubeletConfig.staticPodURL is set: the kubelet would run whatever pods that URL serves, past every admission check',
    );
  }
  if (typeof config.tlsMinVersion === 'string' && WEAK_TLS_VERSIONS.has(config.tlsMinVersion)) {
    problems.push(
      `kubeletConfig.tlsMinVersion is ${JSON.stringify(config.tlsMinVersion)}: TLS below 1.2 is not accepted`,
    );
  }
  return problems;
}

function objectAt(value: unknown): Readonly<Record<string, unknown>> | undefined {
  return typeof value === 'object' && value !== null ? (value as Record<string, unknown>) : undefined;
}
