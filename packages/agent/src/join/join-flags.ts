// `k8s-join join` flags: argv and the environment → a frozen JoinConfig. Every value is checked
// here, once, so the join steps trust what they are given.
import {
  ValidationError,
  parseCaCertHash,
  parseDuration,
  parseFlags,
  parseJoinToken,
  validateNodeName,
  invalidArgument,
} from '@k8s-on-k8s/shared';
import {
  DEFAULT_CONTAINER_RUNTIME_ENDPOINT,
  DEFAULT_KUBELET_BINARY,
  FORWARDER_UNIT_NAME,
  KUBELET_UNIT_NAME,
  NODE_PATHS,
} from '../node/node-paths.js';
import type { NodeSystem } from '../node/node-system.js';
import { PREFLIGHT_CHECKS, type PreflightCheck } from './preflight.js';

export const JOIN_HELP = `Usage: k8s-join join --server URL --ca-cert-hash sha256:HEX (--token-file FILE | K8S_JOIN_TOKEN=… | --token ID.SECRET) [flags]
       k8s-join --server URL ...            (join is the default command)

Joins this machine to a hosted Kubernetes control plane as a worker:
  1. preflight: root, systemd, kubelet binary, container runtime socket, free ports
  2. TLS to the join server; the CA it presents must match --ca-cert-hash (kubeadm's scheme);
     only then is the token sent, over a connection that trusts that CA alone
  3. POST /v1/join: the server answers with the CA, a per-node bootstrap credential, endpoints
  4. writes ${NODE_PATHS.caCert}, ${NODE_PATHS.bootstrapKubeconfig} (0600),
     ${NODE_PATHS.kubeletConfig} and the units, each atomically
  5. ${FORWARDER_UNIT_NAME}: the API VIP on lo and a forwarder from VIP:443 to the apiserver
  6. ${KUBELET_UNIT_NAME}: TLS-bootstraps its own system:node:<name> certificate
  7. waits for the kubelet's healthz (and with --wait, for its Node object)
A second run on a joined machine changes nothing and does not use the token again.

Flags:
  --server URL                  the join server, https://HOST:PORT (required)
  --ca-cert-hash sha256:HEX     pin of the cluster CA, printed by \`k8s-on-k8s token create\` (required)
  --token-file FILE             file holding the join token ID.SECRET (preferred: argv shows in ps)
  --token ID.SECRET             the join token (or set K8S_JOIN_TOKEN)
  --node-name NAME              Node name (default: this machine's hostname; DNS-1123 subdomain)
  --kubelet-binary PATH         default ${DEFAULT_KUBELET_BINARY} (/usr is read-only on CoreOS)
  --agent-binary PATH           k8s-join as the forwarder unit runs it (default: this executable)
  --container-runtime-endpoint  default ${DEFAULT_CONTAINER_RUNTIME_ENDPOINT}
  --max-pods N                  pods this node runs at most (the kubelet's maxPods; default its own, 110):
                                a node-local choice, like the machine's size, so the join server never sets it
  --ignore-preflight-errors L   comma-separated checks to skip: ${PREFLIGHT_CHECKS.join(', ')}
  --timeout DURATION            how long to wait for the kubelet to be healthy (default 2m; 0s: don't wait)
  --wait                        also wait until the Node is registered (uses --timeout too)
  --retry DURATION              keep trying for up to DURATION while the join server is busy (429),
                                failing (503) or not reachable yet, as its Retry-After says (default 0s:
                                try once); a rejected token or a pin mismatch is never retried
  --root DIR                    act on a filesystem rooted at DIR (tests, image builds)
  --dry-run                     check the server and the pin, print every file and command, change nothing
                                (the join request itself is not sent: it would use the token)
  --force                       join again even if this machine is already joined
  --unsafe-skip-ca-verification trust whatever CA the server presents (loud warning; lab use only)
  --help                        show this text

Exit codes: 0 joined, 1 failed, 2 bad flags, 3 preflight failed, 4 CA pin mismatch (also a bundle
            trusting another CA), 5 server unreachable, 6 token rejected, 7 server busy or failing
            (429/503; retry later, or pass --retry).`;

/** The join flags after validation. */
export interface JoinConfig {
  readonly system: NodeSystem;
  readonly serverUrl: URL;
  readonly caCertHash: string | undefined;
  readonly token: string;
  readonly nodeName: string;
  readonly kubeletBinary: string;
  readonly agentBinary: readonly string[];
  readonly containerRuntimeEndpoint: string;
  /** The kubelet's maxPods, when --max-pods is given. */
  readonly maxPods: number | undefined;
  readonly ignorePreflight: ReadonlySet<PreflightCheck>;
  readonly timeoutMs: number;
  /** How long to keep retrying a busy, failing or unreachable join server; 0: one attempt. */
  readonly retryMs: number;
  readonly waitForNode: boolean;
  readonly dryRun: boolean;
  readonly force: boolean;
}

/** What reading the join flags needs from the process: environment, local files, the machine. */
export interface JoinFlagsDeps {
  /** The machine, with files under `root` (`/` unless --root). */
  readonly systemAt: (root: string) => NodeSystem;
  readonly env: Readonly<Record<string, string | undefined>>;
  /** How the forwarder unit should start this agent (its own executable, or node + script). */
  readonly selfCommand: readonly string[];
  readonly readLocalFile: (path: string) => Promise<string>;
}

type JoinFlagValues = ReturnType<typeof parseJoinArgs>['values'];

/** Parses and validates the join flags; throws ValidationError naming the flag and the value. */
export async function parseJoinFlags(
  argv: readonly string[],
  deps: JoinFlagsDeps,
): Promise<JoinConfig | 'help'> {
  const { values } = parseJoinArgs(argv);
  if (values.help === true) return 'help';
  const serverUrl = parseServerUrl(values.server);
  const caCertHash = parseCaPin(values['ca-cert-hash'], values['unsafe-skip-ca-verification'] === true);
  const token = await readJoinToken(values, deps);
  const system = deps.systemAt(values.root === undefined ? '/' : absolutePath('--root', values.root));
  const nodeName = validateNodeName(values['node-name'] ?? system.hostname());
  const ignorePreflight = parseIgnoredChecks(values['ignore-preflight-errors'] ?? '');
  const runtime = parseRuntimeEndpoint(
    values['container-runtime-endpoint'] ?? DEFAULT_CONTAINER_RUNTIME_ENDPOINT,
  );
  return Object.freeze({
    system,
    serverUrl,
    caCertHash,
    token,
    nodeName,
    kubeletBinary: absolutePath('--kubelet-binary', values['kubelet-binary'] ?? DEFAULT_KUBELET_BINARY),
    agentBinary:
      values['agent-binary'] === undefined
        ? deps.selfCommand
        : [absolutePath('--agent-binary', values['agent-binary'])],
    containerRuntimeEndpoint: runtime,
    maxPods: parseMaxPods(values['max-pods']),
    ignorePreflight,
    timeoutMs: parseDuration(values.timeout ?? '2m', '--timeout'),
    retryMs: parseDuration(values.retry ?? '0s', '--retry'),
    waitForNode: values.wait === true,
    dryRun: values['dry-run'] === true,
    force: values.force === true,
  });
}

function parseJoinArgs(argv: readonly string[]) {
  return parseFlags(argv, {
    server: { type: 'string' },
    'ca-cert-hash': { type: 'string' },
    token: { type: 'string' },
    'token-file': { type: 'string' },
    'node-name': { type: 'string' },
    'kubelet-binary': { type: 'string' },
    'agent-binary': { type: 'string' },
    'container-runtime-endpoint': { type: 'string' },
    'max-pods': { type: 'string' },
    'ignore-preflight-errors': { type: 'string' },
    timeout: { type: 'string' },
    retry: { type: 'string' },
    wait: { type: 'boolean' },
    root: { type: 'string' },
    'dry-run': { type: 'boolean' },
    force: { type: 'boolean' },
    'unsafe-skip-ca-verification': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
}

/** The largest --max-pods taken: past it a node's pod CIDR (a /24, 254 addresses) runs out first. */
export const MAX_PODS_LIMIT = 250;

function parseMaxPods(text: string | undefined): number | undefined {
  if (text === undefined) return undefined;
  const n = /^[1-9][0-9]*$/.test(text) ? Number(text) : Number.NaN;
  if (!(n <= MAX_PODS_LIMIT)) {
    throw invalidArgument(
      `Expected --max-pods to be a whole number from 1 to ${MAX_PODS_LIMIT} (a node's usual /24 pod range holds 254 addresses), got ${JSON.stringify(text)}`,
    );
  }
  return n;
}

/** --server as its origin: https, no path, query or credentials (the join API lives at /v1/join). */
function parseServerUrl(text: string | undefined): URL {
  if (text === undefined) throw invalidArgument('Missing --server: the join server URL, https://HOST:PORT');
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `Expected --server to be a URL like https://join.example:8443, got ${JSON.stringify(text)}`,
    );
  }
  if (url.protocol !== 'https:' || url.pathname !== '/' || url.search !== '' || url.username !== '') {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `Expected --server to be https://HOST[:PORT] with no path, got ${JSON.stringify(text)}`,
    );
  }
  return new URL(url.origin);
}

/** The CA pin, or undefined when --unsafe-skip-ca-verification waives it; exactly one is required. */
function parseCaPin(hashText: string | undefined, skip: boolean): string | undefined {
  if (hashText === undefined && !skip) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      'Missing --ca-cert-hash sha256:<hex>: without it the server cannot be verified',
      {
        hint: 'copy it from `k8s-on-k8s token create`, or (lab only) pass --unsafe-skip-ca-verification',
      },
    );
  }
  if (hashText !== undefined && skip) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      'Pass either --ca-cert-hash or --unsafe-skip-ca-verification, not both',
    );
  }
  return hashText === undefined ? undefined : parseCaCertHash(hashText);
}

/** The join token from exactly one of --token, --token-file and K8S_JOIN_TOKEN, as ID.SECRET. */
async function readJoinToken(
  values: JoinFlagValues,
  deps: Pick<JoinFlagsDeps, 'env' | 'readLocalFile'>,
): Promise<string> {
  const tokenFile = values['token-file'];
  const sources = [values.token, tokenFile, deps.env.K8S_JOIN_TOKEN].filter((s) => s !== undefined);
  if (sources.length !== 1) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      sources.length === 0
        ? 'Missing the join token: pass --token-file FILE, set K8S_JOIN_TOKEN, or pass --token'
        : 'Give the join token exactly once: --token, --token-file or K8S_JOIN_TOKEN',
    );
  }
  let tokenText: string;
  if (tokenFile !== undefined) {
    try {
      tokenText = (await deps.readLocalFile(tokenFile)).trim();
    } catch (cause) {
      throw new ValidationError(
        'INVALID_ARGUMENT',
        `Cannot read --token-file ${JSON.stringify(tokenFile)}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
  } else {
    tokenText = (values.token ?? deps.env.K8S_JOIN_TOKEN ?? '').trim();
  }
  const token = parseJoinToken(tokenText);
  return `${token.id}.${token.secret}`;
}

// The binaries end up in ExecStart= lines, where a space would split the command; --root is held to
// the same rule.
function absolutePath(flag: string, value: string): string {
  if (!value.startsWith('/') || value.includes('\n') || value.includes(' ')) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `Expected ${flag} to be an absolute path without spaces, got ${JSON.stringify(value)}`,
    );
  }
  return value;
}

/** --ignore-preflight-errors: a comma-separated list of check names, or `all`. */
function parseIgnoredChecks(text: string): ReadonlySet<PreflightCheck> {
  const ignored = text
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s !== '');
  for (const check of ignored) {
    if (!(PREFLIGHT_CHECKS as readonly string[]).includes(check) && check !== 'all') {
      throw new ValidationError(
        'INVALID_ARGUMENT',
        `Expected --ignore-preflight-errors to list checks among ${PREFLIGHT_CHECKS.join(', ')} or all, got ${JSON.stringify(check)}`,
      );
    }
  }
  return new Set<PreflightCheck>(ignored.includes('all') ? PREFLIGHT_CHECKS : (ignored as PreflightCheck[]));
}

function parseRuntimeEndpoint(text: string): string {
  if (!/^unix:\/\/\/[^\s]+$/.test(text)) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `Expected --container-runtime-endpoint to be unix:///path/to.sock, got ${JSON.stringify(text)}`,
    );
  }
  return text;
}
