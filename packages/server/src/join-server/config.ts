import { isIP } from 'node:net';
import { hostname } from 'node:os';
import {
  DEFAULT_API_ENDPOINT,
  DEFAULT_KUBERNETES_VERSION,
  caCertHash,
  formatHostPort,
  isDns1123Subdomain,
  isSignedBy,
  parseDuration,
  parseHostPort,
  type HostPort,
  parseFlags,
  invalidArgument,
  validateApiEndpoint,
} from '@k8s-on-k8s/shared';
import type { RateLimit } from './rate-limiter.js';

// `k8s-join-server` flags → a frozen, validated config. Files are read here too (certificates,
// key), so a bad path or a certificate from the wrong CA fails at start with the flag's name.

/** Where join tokens live. */
export type TokenStoreSpec =
  { readonly kind: 'file'; readonly path: string } | { readonly kind: 'kubernetes' };

/** Everything the server needs to start, validated. */
export interface JoinServerConfig {
  readonly listen: HostPort;
  /** When undefined, derived from the bound address once listening. */
  readonly publicUrl: string | undefined;
  readonly tls: { readonly certChainPem: string; readonly keyPem: string; readonly caPem: string };
  readonly caCertHash: string;
  /** Undefined: the in-cluster service account config. */
  readonly kubeconfig: string | undefined;
  readonly store: TokenStoreSpec;
  readonly apiEndpoint: string;
  /** Empty: the kubeconfig's server host:port, resolved at start. */
  readonly upstreams: readonly string[];
  /** Where the worker's second forwarder relays VIP:8132 (konnectivity's agent port); empty: no konnectivity. */
  readonly konnectivityUpstreams: readonly string[];
  readonly clusterDns: string;
  readonly clusterDomain: string;
  readonly kubernetesVersion: string;
  readonly bootstrapTokenTtlMs: number;
  readonly maxTokenTtlMs: number;
  readonly ratePerIp: RateLimit;
  readonly drainTimeoutMs: number;
  readonly logLevel: string;
}

export const DEFAULT_TOKEN_FILE = '/var/lib/k8s-join-server/tokens.json';

export const JOIN_SERVER_HELP = `Usage: k8s-join-server --tls-cert FILE --tls-key FILE --ca-cert FILE [flags]

Exchanges join tokens for what a worker needs to join a hosted cluster (POST /v1/join), and
lets the cluster's admins mint, list and revoke those tokens (/v1/tokens). HTTPS only.

Flags:
  --tls-cert FILE             serving certificate, signed by the hosted cluster CA (the CA is
                              appended to the presented chain, so agents can pin its hash)
  --tls-key FILE              its private key
  --ca-cert FILE              the hosted cluster CA: put into bundles, trusted for admin client certs
  --kubeconfig FILE           credentials for the hosted apiserver (default: in-cluster config);
                              the least privilege it needs is in deploy/join-server/rbac.yaml
  --store SPEC                file:PATH (default file:${DEFAULT_TOKEN_FILE}) or kubernetes
                              (Secrets in k8s-on-k8s-join, shared by replicas)
  --listen ADDR:PORT          address to serve on (default 0.0.0.0:8443)
  --public-url URL            how agents reach this server, printed in join commands
                              (default https://<listen address or host name>:<port>)
  --api-endpoint URL          https://IP[:PORT] workers reach the API at, put into bundles (default
                              ${DEFAULT_API_ENDPOINT}): the hosted apiserver's --advertise-address
                              and --secure-port, where the in-cluster kubernetes Service leads
  --upstream HOST:PORT        where the worker's forwarder relays the API address; repeatable
                              (default: the kubeconfig's server)
  --konnectivity-upstream HOST:PORT
                              where the worker's second forwarder relays the VIP's konnectivity
                              port (8132) to: the proxy servers' agent port; repeatable. Given,
                              bundles tell workers to run it; absent, they run none
  --cluster-dns IP            cluster DNS service IP (default 10.3.0.10)
  --cluster-domain DOMAIN     cluster domain (default cluster.local)
  --kubernetes-version V      the hosted cluster's version (default ${DEFAULT_KUBERNETES_VERSION})
  --bootstrap-token-ttl DUR   life of each per-node bootstrap token (default 15m)
  --max-token-ttl DUR         longest join-token ttl admins may ask for (default 24h)
  --rate-limit-per-ip N       API requests per second per client IP, burst 2N (default 20; 0 = off)
  --drain-timeout DUR         on SIGTERM, how long in-flight requests may finish (default 30s)
  --log-level LEVEL           trace, debug, info, warn, error (default info)
  --help                      show this text
`;

function positiveDuration(text: string, flag: string): number {
  const ms = parseDuration(text, flag);
  if (ms <= 0) throw invalidArgument(`Expected ${flag} to be longer than 0s, got ${JSON.stringify(text)}`);
  return ms;
}

async function readRequired(
  path: string | undefined,
  flag: string,
  what: string,
  readFile: (path: string) => Promise<string>,
): Promise<string> {
  if (path === undefined) throw invalidArgument(`Missing ${flag}: give the ${what} (PEM file)`);
  let text: string;
  try {
    text = await readFile(path);
  } catch (cause) {
    throw invalidArgument(`Cannot read ${flag} ${JSON.stringify(path)}`, { cause });
  }
  return text;
}

function firstCertificate(pem: string): string {
  const match = /-----BEGIN CERTIFICATE-----[\s\S]*?-----END CERTIFICATE-----/.exec(pem);
  return match?.[0] ?? '';
}

/** Parses `--store`: `kubernetes` or `file:PATH`. */
export function parseTokenStoreSpec(text: string): TokenStoreSpec {
  if (text === 'kubernetes') return { kind: 'kubernetes' };
  if (text.startsWith('file:') && text.length > 'file:'.length) return { kind: 'file', path: text.slice(5) };
  throw invalidArgument(`Expected --store to be file:PATH or kubernetes, got ${JSON.stringify(text)}`);
}

/** Parses and validates the flags and reads the files they name. */
export async function parseJoinServerFlags(
  argv: readonly string[],
  readFile: (path: string) => Promise<string>,
): Promise<JoinServerConfig | 'help'> {
  const { values } = parseFlags(argv, {
    'tls-cert': { type: 'string' },
    'tls-key': { type: 'string' },
    'ca-cert': { type: 'string' },
    kubeconfig: { type: 'string' },
    store: { type: 'string' },
    listen: { type: 'string' },
    'public-url': { type: 'string' },
    'api-endpoint': { type: 'string' },
    upstream: { type: 'string', multiple: true },
    'konnectivity-upstream': { type: 'string', multiple: true },
    'cluster-dns': { type: 'string' },
    'cluster-domain': { type: 'string' },
    'kubernetes-version': { type: 'string' },
    'bootstrap-token-ttl': { type: 'string' },
    'max-token-ttl': { type: 'string' },
    'rate-limit-per-ip': { type: 'string' },
    'drain-timeout': { type: 'string' },
    'log-level': { type: 'string' },
    help: { type: 'boolean' },
  });
  if (values.help === true) return 'help';

  const certPem = await readRequired(values['tls-cert'], '--tls-cert', 'serving certificate', readFile);
  const keyPem = await readRequired(values['tls-key'], '--tls-key', 'serving key', readFile);
  const caPem = await readRequired(values['ca-cert'], '--ca-cert', 'hosted cluster CA certificate', readFile);
  const ca = firstCertificate(caPem);
  const leaf = firstCertificate(certPem);
  if (ca === '')
    throw invalidArgument(
      `Expected --ca-cert ${JSON.stringify(values['ca-cert'])} to hold a PEM certificate`,
    );
  if (leaf === '')
    throw invalidArgument(
      `Expected --tls-cert ${JSON.stringify(values['tls-cert'])} to hold a PEM certificate`,
    );
  if (!keyPem.includes('PRIVATE KEY-----')) {
    throw invalidArgument(
      `Expected --tls-key ${JSON.stringify(values['tls-key'])} to hold a PEM private key`,
    );
  }
  if (!isSignedBy(leaf, ca)) {
    throw invalidArgument(
      `Expected --tls-cert ${JSON.stringify(values['tls-cert'])} to be signed by --ca-cert ${JSON.stringify(values['ca-cert'])}: agents pin that CA`,
    );
  }
  // The presented chain must include the CA: the agent takes it from there to check its pin.
  const certChainPem = certPem.includes(ca) ? certPem : `${certPem.trimEnd()}\n${ca}\n`;

  // The agent refuses a bundle whose endpoint is anything else, so a server started with one
  // would fail every join.
  const apiEndpoint = validateApiEndpoint(values['api-endpoint'] ?? DEFAULT_API_ENDPOINT, '--api-endpoint');
  const publicUrl = values['public-url'];
  if (publicUrl !== undefined && !/^https:\/\/[^/\s]+\/?$/.test(publicUrl)) {
    throw invalidArgument(
      `Expected --public-url to be https://HOST[:PORT], got ${JSON.stringify(publicUrl)}`,
    );
  }

  const clusterDns = values['cluster-dns'] ?? '10.3.0.10';
  if (isIP(clusterDns) === 0) {
    throw invalidArgument(`Expected --cluster-dns to be an IP address, got ${JSON.stringify(clusterDns)}`);
  }
  const clusterDomain = values['cluster-domain'] ?? 'cluster.local';
  if (!isDns1123Subdomain(clusterDomain)) {
    throw invalidArgument(
      `Expected --cluster-domain to be a DNS domain like cluster.local, got ${JSON.stringify(clusterDomain)}`,
    );
  }
  const kubernetesVersion = values['kubernetes-version'] ?? DEFAULT_KUBERNETES_VERSION;
  if (!/^v\d+\.\d+\.\d+/.test(kubernetesVersion)) {
    throw invalidArgument(
      `Expected --kubernetes-version to look like v1.31.2, got ${JSON.stringify(kubernetesVersion)}`,
    );
  }
  const rateText = values['rate-limit-per-ip'] ?? '20';
  if (!/^\d{1,6}$/.test(rateText)) {
    throw invalidArgument(
      `Expected --rate-limit-per-ip to be a whole number (0 = off), got ${JSON.stringify(rateText)}`,
    );
  }
  const rate = Number(rateText);
  const logLevel = values['log-level'] ?? 'info';
  if (!['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'].includes(logLevel)) {
    throw invalidArgument(
      `Expected --log-level to be one of trace, debug, info, warn, error, got ${JSON.stringify(logLevel)}`,
    );
  }

  return Object.freeze({
    listen: parseHostPort(values.listen ?? '0.0.0.0:8443', '--listen', { allowPortZero: true }),
    publicUrl: publicUrl?.replace(/\/$/, ''),
    tls: Object.freeze({ certChainPem, keyPem, caPem: `${ca}\n` }),
    caCertHash: caCertHash(ca),
    kubeconfig: values.kubeconfig,
    store: parseTokenStoreSpec(values.store ?? `file:${DEFAULT_TOKEN_FILE}`),
    apiEndpoint: apiEndpoint.replace(/\/$/, ''),
    upstreams: Object.freeze(
      (values.upstream ?? []).map((text) => formatHostPort(parseHostPort(text, '--upstream'))),
    ),
    konnectivityUpstreams: Object.freeze(
      (values['konnectivity-upstream'] ?? []).map((text) =>
        formatHostPort(parseHostPort(text, '--konnectivity-upstream')),
      ),
    ),
    clusterDns,
    clusterDomain,
    kubernetesVersion,
    bootstrapTokenTtlMs: positiveDuration(values['bootstrap-token-ttl'] ?? '15m', '--bootstrap-token-ttl'),
    maxTokenTtlMs: positiveDuration(values['max-token-ttl'] ?? '24h', '--max-token-ttl'),
    ratePerIp: Object.freeze({ perSecond: rate, burst: Math.max(10, rate * 2) }),
    drainTimeoutMs: parseDuration(values['drain-timeout'] ?? '30s', '--drain-timeout'),
    logLevel,
  });
}

/** The URL printed in join commands when --public-url is not given. */
export function defaultPublicUrl(listen: HostPort, boundPort: number): string {
  const wildcard = listen.host === '0.0.0.0' || listen.host === '::';
  return `https://${formatHostPort({ host: wildcard ? hostname() : listen.host, port: boundPort })}`;
}
