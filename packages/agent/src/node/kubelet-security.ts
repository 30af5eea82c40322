// What a worker takes from the join server's KubeletConfiguration. The join server is verified,
// but it is also the internet-facing piece most likely to be misconfigured or taken over, and the
// kubelet's configuration decides who may exec into every pod on the node, which pods it runs
// outside the apiserver's sight and what the node's kernel lets pods do. So the agent takes only
// the fields the join server renders (packages/server/src/join-server/bundle.ts), each with the
// values that keep the node as secure as it is without them; anything else (featureGates,
// staticPodPath, allowedUnsafeSysctls, tlsCipherSuites, readOnlyPort, …) is refused, the join
// failing before anything is written, rather than silently dropped: a server that sends it is
// misconfigured or not ours, and dropping it would hide that in a boot log while the admin
// believes their configuration is in force. Per-node settings are the node owner's, through
// KUBELET_EXTRA_ARGS. Fields left out get the secure value written explicitly, so the file does
// not lean on defaults that differ between the flag and file forms.
import { isIP } from 'node:net';
import { formatDuration, parseDuration } from '@k8s-on-k8s/shared';
import { NODE_PATHS } from './node-paths.js';

/** Written into every KubeletConfiguration, over the server's copy (kubeadm enforces the same). */
export const SECURE_KUBELET_SETTINGS = {
  anonymousAuthentication: false,
  authorizationMode: 'Webhook',
  readOnlyPort: 0,
} as const;

/** Why a value is refused, or undefined when it is taken. */
type Check = (value: unknown) => string | undefined;
interface Fields {
  readonly [name: string]: Check | Fields;
}

const MAX_QUOTED = 80;

function quote(value: unknown): string {
  const text = JSON.stringify(value) as string | undefined;
  if (text === undefined) return String(value);
  return text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED)}…` : text;
}

const any: Check = () => undefined;
const boolean: Check = (value) => (typeof value === 'boolean' ? undefined : 'must be true or false');
const string: Check = (value) => (typeof value === 'string' ? undefined : 'must be a string');

function exactly(wanted: unknown, why: string): Check {
  return (value) => (value === wanted ? undefined : `must be ${quote(wanted)}: ${why}`);
}

function oneOf(...allowed: readonly string[]): Check {
  return (value) =>
    typeof value === 'string' && allowed.includes(value)
      ? undefined
      : `must be one of ${allowed.map((a) => quote(a)).join(', ')}`;
}

/** A Go duration; with `atMost`, no longer than that many milliseconds, for the reason given. */
function duration(atMost?: { readonly ms: number; readonly why: string }): Check {
  return (value) => {
    let ms: number;
    try {
      ms = parseDuration(typeof value === 'string' ? value : '');
    } catch {
      return 'must be a duration like 2m0s';
    }
    return atMost === undefined || ms <= atMost.ms
      ? undefined
      : `must be at most ${formatDuration(atMost.ms)}: ${atMost.why}`;
  };
}

const ipList: Check = (value) =>
  Array.isArray(value) && value.every((ip) => typeof ip === 'string' && isIP(ip) !== 0)
    ? undefined
    : 'must be a list of IP addresses';

/**
 * The fields the join server may set and the values it may give them: what bundle.ts renders.
 * The kubelet's own defaults bound the cache TTLs (2m, 5m): longer would let a revoked credential
 * or permission keep working on the node.
 */
const SERVER_FIELDS: Fields = {
  apiVersion: any,
  kind: any,
  authentication: {
    anonymous: {
      enabled: exactly(false, 'anyone reaching port 10250 would be served'),
    },
    webhook: {
      enabled: boolean,
      cacheTTL: duration({ ms: 2 * 60_000, why: 'a revoked token would keep working' }),
    },
    x509: {
      clientCAFile: exactly(
        NODE_PATHS.caCert,
        'the kubelet trusts client certificates of the pinned CA, which k8s-join writes there, and no other',
      ),
    },
  },
  authorization: {
    mode: exactly('Webhook', 'only "Webhook" asks the apiserver who may use the kubelet API'),
    webhook: {
      cacheAuthorizedTTL: duration({ ms: 5 * 60_000, why: 'a revoked permission would keep working' }),
      cacheUnauthorizedTTL: duration(),
    },
  },
  cgroupDriver: oneOf('systemd', 'cgroupfs'),
  failCgroupV1: boolean,
  clusterDNS: ipList,
  clusterDomain: string,
  containerRuntimeEndpoint: string,
  rotateCertificates: exactly(true, 'the node would lose its identity when its certificate expires'),
  // Whether the kubelet asks the apiserver for its serving certificate or makes its own: either way
  // its clients authenticate to it as before.
  serverTLSBootstrap: boolean,
};

/** Why some fields the join server may not set would weaken the node, for the error message. */
const REFUSED_BECAUSE: Readonly<Record<string, string>> = {
  readOnlyPort: 'it serves pod and node data without authentication',
  staticPodPath: 'the kubelet would run the pods found there, past every admission check',
  staticPodURL: 'the kubelet would run whatever pods that URL serves, past every admission check',
  featureGates: 'it switches kubelet behaviour on and off, protections included',
  allowedUnsafeSysctls: 'pods could set kernel parameters that reach beyond their own namespaces',
  tlsMinVersion: 'it sets the TLS versions of the kubelet API',
  tlsCipherSuites: 'it sets the TLS ciphers of the kubelet API',
  protectKernelDefaults: 'it decides whether the kubelet leaves kernel tunables as they are',
  enableDebuggingHandlers: 'it decides whether exec, attach, logs and port-forward are served',
  makeIPTablesUtilChains: 'it decides whether the kubelet keeps its packet-filtering rules',
};

/** The top-level kubeletConfig fields a join server may set, for hints. */
export const SERVER_KUBELET_FIELDS: readonly string[] = Object.keys(SERVER_FIELDS).filter(
  (name) => name !== 'apiVersion' && name !== 'kind',
);

/**
 * What in the server's KubeletConfiguration the agent does not take, one line per field naming
 * its path and value, or an empty list.
 */
export function kubeletSecurityProblems(config: Readonly<Record<string, unknown>>): string[] {
  return fieldProblems(config, SERVER_FIELDS, 'kubeletConfig');
}

function fieldProblems(config: Readonly<Record<string, unknown>>, fields: Fields, at: string): string[] {
  return Object.entries(config).flatMap(([name, value]) => {
    const path = `${at}.${name}`;
    const rule = Object.hasOwn(fields, name) ? fields[name] : undefined;
    if (rule === undefined) {
      const because = at === 'kubeletConfig' ? REFUSED_BECAUSE[name] : undefined;
      return [
        `${path} (${quote(value)}) is not a field the join server may set${because === undefined ? '' : `: ${because}`}`,
      ];
    }
    if (typeof rule === 'function') {
      const problem = rule(value);
      return problem === undefined ? [] : [`${path} is ${quote(value)}: ${problem}`];
    }
    if (typeof value !== 'object' || value === null || Array.isArray(value)) {
      return [`${path} is ${quote(value)}: must be an object`];
    }
    return fieldProblems(value as Record<string, unknown>, rule, path);
  });
}
