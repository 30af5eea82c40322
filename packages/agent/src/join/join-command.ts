// `k8s-join join` (also plain `k8s-join --token …`): flags → validated JoinConfig → preflight →
// pinned CA → bundle → files → units → wait. Each step converges, so a second run is a no-op.
import {
  ValidationError,
  K8sOnK8sError,
  formatDuration,
  parseCaCertHash,
  parseDuration,
  parseJoinToken,
  validateNodeName,
  type JoinBundle,
  parseFlags,
} from '@k8s-on-k8s/shared';
import { discoverServerCa } from './discover-server-ca.js';
import { requestJoinBundle } from './join-client.js';
import { readJoinState, writeJoinState } from './join-state.js';
import {
  DEFAULT_CONTAINER_RUNTIME_ENDPOINT,
  DEFAULT_KUBELET_BINARY,
  FORWARDER_UNIT_NAME,
  KUBELET_UNIT_NAME,
  NODE_PATHS,
} from '../node/node-paths.js';
import type { NodeSystem } from '../node/node-system.js';
import { PREFLIGHT_CHECKS, preflightError, runPreflight, type PreflightCheck } from './preflight.js';
import { renderNodeFiles, type NodeFile, type NodeFileOptions } from '../node/render-node-files.js';
import { kubeletHealthy, nodeRegistered, pollUntil } from './wait-for-node.js';
import { AGENT_VERSION } from '../version.js';

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
  --ignore-preflight-errors L   comma-separated checks to skip: ${PREFLIGHT_CHECKS.join(', ')}
  --timeout DURATION            how long to wait for the kubelet to be healthy (default 2m; 0s: don't wait)
  --wait                        also wait until the Node is registered (uses --timeout too)
  --root DIR                    act on a filesystem rooted at DIR (tests, image builds)
  --dry-run                     check the server and the pin, print every file and command, change nothing
                                (the join request itself is not sent: it would use the token)
  --force                       join again even if this machine is already joined
  --unsafe-skip-ca-verification trust whatever CA the server presents (loud warning; lab use only)
  --help                        show this text

Exit codes: 0 joined, 1 failed, 2 bad flags, 3 preflight failed, 4 CA pin mismatch,
            5 server unreachable, 6 token rejected.`;

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
  readonly ignorePreflight: ReadonlySet<PreflightCheck>;
  readonly timeoutMs: number;
  readonly waitForNode: boolean;
  readonly dryRun: boolean;
  readonly force: boolean;
}

/** What the join command needs from the process beside the machine. */
export interface JoinCommandDeps {
  /** The machine, with files under `root` (`/` unless --root). */
  readonly systemAt: (root: string) => NodeSystem;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly out: (line: string) => void;
  readonly warn: (line: string) => void;
  /** How the forwarder unit should start this agent (its own executable, or node + script). */
  readonly selfCommand: readonly string[];
  readonly readLocalFile: (path: string) => Promise<string>;
}

const DEFAULT_VIP = '10.199.199.199';
const MAX_CLOCK_SKEW_MS = 60_000;

/** Runs `k8s-join join`; resolves with the process exit code. */
export async function runJoinCommand(argv: readonly string[], deps: JoinCommandDeps): Promise<number> {
  const config = await parseJoinFlags(argv, deps);
  if (config === 'help') {
    deps.out(JOIN_HELP);
    return 0;
  }
  const started = Date.now();
  const { system } = config;
  const { out } = deps;

  const state = await readJoinState(system.path(NODE_PATHS.state));
  if (state !== undefined && !config.force) {
    if (state.server !== config.serverUrl.origin || state.nodeName !== config.nodeName) {
      throw new K8sOnK8sError(
        'PRECONDITION_FAILED',
        `this machine is already joined to ${state.server} as ${state.nodeName}`,
        { hint: 'run `k8s-join reset` first, or pass --force to join again' },
      );
    }
    out(
      `already joined to ${state.server} as ${state.nodeName} (${state.joinedAt}); making sure the units run`,
    );
    if (!config.dryRun) await startUnits(system, false);
    return 0;
  }

  const problems = await runPreflight(system, {
    kubeletBinary: config.kubeletBinary,
    containerRuntimeEndpoint: config.containerRuntimeEndpoint,
    vip: DEFAULT_VIP,
    alreadyJoined: state !== undefined,
    ignore: config.ignorePreflight,
  });
  if (problems.length > 0) throw preflightError(problems);
  out('[preflight] ok');

  if (config.caCertHash === undefined) {
    deps.warn(
      'WARNING: --unsafe-skip-ca-verification: trusting whatever CA the server presents. Anyone between this machine and the server can impersonate the cluster and steal the token.',
    );
  }
  const ca = await discoverServerCa(config.serverUrl, config.caCertHash);
  out(
    `[discovery] ${config.serverUrl.origin} presented CA ${ca.caCertHash}${config.caCertHash === undefined ? ' (NOT verified)' : ' (matches the pin)'}`,
  );

  const fileOptions = (bundle: JoinBundle): NodeFileOptions => ({
    nodeName: config.nodeName,
    kubeletBinary: config.kubeletBinary,
    agentBinary: config.agentBinary,
    containerRuntimeEndpoint: config.containerRuntimeEndpoint,
    vip: new URL(bundle.apiServer.endpoint).hostname,
  });

  if (config.dryRun) {
    const placeholder = placeholderBundle(config, ca.caPem);
    printPlan(out, renderNodeFiles(placeholder, fileOptions(placeholder)));
    out('[dry-run] nothing was changed; the join request was not sent (it would use the token)');
    return 0;
  }

  const platform = system.platform();
  const bundle = await requestJoinBundle({
    serverUrl: config.serverUrl,
    caPem: ca.caPem,
    token: config.token,
    request: {
      nodeName: config.nodeName,
      os: platform.os,
      arch: platform.arch,
      kernelVersion: platform.kernelVersion,
      agentVersion: AGENT_VERSION,
    },
  });
  out(
    `[join] got a bundle for ${bundle.nodeName}: Kubernetes ${bundle.cluster.kubernetesVersion}, API ${bundle.apiServer.endpoint} via ${bundle.apiServer.upstreams.join(', ')}`,
  );
  const skewMs = Math.abs(new Date(bundle.serverTime).getTime() - system.now().getTime());
  if (skewMs > MAX_CLOCK_SKEW_MS) {
    deps.warn(
      `WARNING: this machine's clock is ${formatDuration(skewMs)} away from the server's; certificates will look expired or not yet valid. Fix time sync (chrony, systemd-timesyncd).`,
    );
  }

  const files = renderNodeFiles(bundle, fileOptions(bundle));
  let unitsChanged = false;
  for (const file of files) {
    const changed = await system.writeAtomic(file.path, file.content, file.mode);
    if (changed && file.path.startsWith('/etc/systemd/')) unitsChanged = true;
    out(`[files] ${changed ? 'wrote' : 'unchanged'} ${file.path} (${file.mode.toString(8)})`);
  }
  await writeJoinState(system.path(NODE_PATHS.state), {
    server: config.serverUrl.origin,
    caCertHash: ca.caCertHash,
    nodeName: config.nodeName,
    vip: fileOptions(bundle).vip,
    joinedAt: system.now().toISOString(),
    files: files.map((f) => f.path),
    directories: ['/etc/systemd/system/kubelet.service.d', '/etc/k8s-join', '/var/lib/k8s-join'],
    units: [FORWARDER_UNIT_NAME, KUBELET_UNIT_NAME],
  });
  const unitsStarted = Date.now();
  await startUnits(system, unitsChanged || config.force);
  out(
    `[units] ${FORWARDER_UNIT_NAME} and ${KUBELET_UNIT_NAME} enabled and started in ${formatDuration(Date.now() - unitsStarted)}`,
  );

  if (config.timeoutMs > 0) {
    const healthy = await pollUntil('the kubelet to be healthy', config.timeoutMs, out, kubeletHealthy);
    if (healthy === undefined) {
      throw new K8sOnK8sError(
        'TIMEOUT',
        `the kubelet did not become healthy within ${formatDuration(config.timeoutMs)}`,
        {
          hint: 'look at `journalctl -u kubelet -u k8s-join-forwarder`; the files and units are in place, so fixing the cause and waiting is enough',
        },
      );
    }
    out(`[kubelet] healthy after ${formatDuration(Date.now() - unitsStarted)}`);
    if (config.waitForNode) {
      const registered = await pollUntil(`Node ${config.nodeName} to register`, config.timeoutMs, out, () =>
        nodeRegistered(system, config.nodeName),
      );
      if (registered === undefined) {
        throw new K8sOnK8sError(
          'TIMEOUT',
          `Node ${config.nodeName} did not register within ${formatDuration(config.timeoutMs)}`,
          {
            hint: 'look at `journalctl -u kubelet`: TLS bootstrap needs the CSR approved (kubectl get csr)',
          },
        );
      }
      out(`[node] ${config.nodeName} registered after ${formatDuration(Date.now() - unitsStarted)}`);
    }
  }
  out(`joined ${config.nodeName} to ${config.serverUrl.origin} in ${formatDuration(Date.now() - started)}`);
  return 0;
}

/**
 * daemon-reload when files changed, then enable and start both units. Only units that were already
 * running before this run are restarted to pick up changed files: restarting a unit systemd has just
 * started races its start-up (a forwarder stopped before it finished starting cost a 90 s stop
 * timeout in the join storm).
 */
async function startUnits(system: NodeSystem, filesChanged: boolean): Promise<void> {
  const units = [FORWARDER_UNIT_NAME, KUBELET_UNIT_NAME];
  const wasActive = await Promise.all(
    units.map(async (unit) => (await system.run('systemctl', ['is-active', '--quiet', unit])).exitCode === 0),
  );
  if (filesChanged) await systemctl(system, ['daemon-reload']);
  await systemctl(system, ['enable', '--now', ...units]);
  const stale = units.filter((_, i) => filesChanged && wasActive[i] === true);
  if (stale.length > 0) await systemctl(system, ['restart', ...stale]);
}

/** Runs systemctl; a failure becomes an error with systemctl's own words. */
export async function systemctl(system: NodeSystem, args: readonly string[]): Promise<void> {
  const result = await system.run('systemctl', args);
  if (result.exitCode !== 0) {
    throw new K8sOnK8sError(
      'PRECONDITION_FAILED',
      `systemctl ${args.join(' ')} failed: ${result.stderr.trim() || `exit ${result.exitCode}`}`,
      {
        hint: `look at \`systemctl status ${args[args.length - 1] ?? ''}\` and its journal`,
      },
    );
  }
}

function printPlan(out: (line: string) => void, files: readonly NodeFile[]): void {
  for (const file of files) {
    out(`[dry-run] would write ${file.path} (mode ${file.mode.toString(8)})`);
    out(file.secret ? '    <credential, not shown>' : file.content.replace(/^/gm, '    '));
  }
  out(`[dry-run] would run: systemctl daemon-reload`);
  out(`[dry-run] would run: systemctl enable --now ${FORWARDER_UNIT_NAME} ${KUBELET_UNIT_NAME}`);
}

function placeholderBundle(config: JoinConfig, caPem: string): JoinBundle {
  return {
    apiVersion: 'join.k8s-on-k8s.io/v1',
    kind: 'JoinBundle',
    nodeName: config.nodeName,
    caCert: caPem,
    apiServer: {
      endpoint: `https://${DEFAULT_VIP}:443`,
      upstreams: ['<apiserver endpoints from the join server>'],
    },
    bootstrapKubeconfig: '<minted by the join server>',
    bootstrapTokenExpiresAt: new Date(0).toISOString(),
    cluster: { dnsIP: '<from the join server>', domain: 'cluster.local', kubernetesVersion: 'v0.0.0' },
    kubeletConfig: { apiVersion: 'kubelet.config.k8s.io/v1beta1', kind: 'KubeletConfiguration' },
    serverTime: new Date(0).toISOString(),
  };
}

/** Parses and validates the join flags; throws ValidationError naming the flag and the value. */
export async function parseJoinFlags(
  argv: readonly string[],
  deps: JoinCommandDeps,
): Promise<JoinConfig | 'help'> {
  const { values } = parseFlags(argv, {
    server: { type: 'string' },
    'ca-cert-hash': { type: 'string' },
    token: { type: 'string' },
    'token-file': { type: 'string' },
    'node-name': { type: 'string' },
    'kubelet-binary': { type: 'string' },
    'agent-binary': { type: 'string' },
    'container-runtime-endpoint': { type: 'string' },
    'ignore-preflight-errors': { type: 'string' },
    timeout: { type: 'string' },
    wait: { type: 'boolean' },
    root: { type: 'string' },
    'dry-run': { type: 'boolean' },
    force: { type: 'boolean' },
    'unsafe-skip-ca-verification': { type: 'boolean' },
    help: { type: 'boolean', short: 'h' },
  });
  if (values.help === true) return 'help';

  if (values.server === undefined)
    throw new ValidationError('INVALID_ARGUMENT', 'Missing --server: the join server URL, https://HOST:PORT');
  let serverUrl: URL;
  try {
    serverUrl = new URL(values.server);
  } catch {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `Expected --server to be a URL like https://join.example:8443, got ${JSON.stringify(values.server)}`,
    );
  }
  if (
    serverUrl.protocol !== 'https:' ||
    serverUrl.pathname !== '/' ||
    serverUrl.search !== '' ||
    serverUrl.username !== ''
  ) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `Expected --server to be https://HOST[:PORT] with no path, got ${JSON.stringify(values.server)}`,
    );
  }

  const skip = values['unsafe-skip-ca-verification'] === true;
  const hashText = values['ca-cert-hash'];
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
  const caCertHash = hashText === undefined ? undefined : parseCaCertHash(hashText);

  const sources = [values.token, values['token-file'], deps.env.K8S_JOIN_TOKEN].filter(
    (s) => s !== undefined,
  );
  if (sources.length !== 1) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      sources.length === 0
        ? 'Missing the join token: pass --token-file FILE, set K8S_JOIN_TOKEN, or pass --token'
        : 'Give the join token exactly once: --token, --token-file or K8S_JOIN_TOKEN',
    );
  }
  let tokenText: string;
  if (values['token-file'] !== undefined) {
    try {
      tokenText = (await deps.readLocalFile(values['token-file'])).trim();
    } catch (cause) {
      throw new ValidationError(
        'INVALID_ARGUMENT',
        `Cannot read --token-file ${JSON.stringify(values['token-file'])}: ${(cause as NodeJS.ErrnoException).code ?? 'error'}`,
      );
    }
  } else {
    tokenText = (values.token ?? deps.env.K8S_JOIN_TOKEN ?? '').trim();
  }
  const token = parseJoinToken(tokenText);

  const absolute = (flag: string, value: string): string => {
    if (!value.startsWith('/') || value.includes('\n') || value.includes(' ')) {
      throw new ValidationError(
        'INVALID_ARGUMENT',
        `Expected ${flag} to be an absolute path without spaces, got ${JSON.stringify(value)}`,
      );
    }
    return value;
  };
  const system = deps.systemAt(values.root === undefined ? '/' : absolute('--root', values.root));
  const nodeNameText = values['node-name'] ?? system.hostname();
  const nodeName = validateNodeName(nodeNameText);

  const ignored = (values['ignore-preflight-errors'] ?? '')
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
  const ignorePreflight = new Set<PreflightCheck>(
    ignored.includes('all') ? PREFLIGHT_CHECKS : (ignored as PreflightCheck[]),
  );

  const runtime = values['container-runtime-endpoint'] ?? DEFAULT_CONTAINER_RUNTIME_ENDPOINT;
  if (!/^unix:\/\/\/[^\s]+$/.test(runtime)) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `Expected --container-runtime-endpoint to be unix:///path/to.sock, got ${JSON.stringify(runtime)}`,
    );
  }
  return Object.freeze({
    system,
    serverUrl: new URL(serverUrl.origin),
    caCertHash,
    token: `${token.id}.${token.secret}`,
    nodeName,
    kubeletBinary: absolute('--kubelet-binary', values['kubelet-binary'] ?? DEFAULT_KUBELET_BINARY),
    agentBinary:
      values['agent-binary'] === undefined
        ? deps.selfCommand
        : [absolute('--agent-binary', values['agent-binary'])],
    containerRuntimeEndpoint: runtime,
    ignorePreflight,
    timeoutMs: parseDuration(values.timeout ?? '2m', '--timeout'),
    waitForNode: values.wait === true,
    dryRun: values['dry-run'] === true,
    force: values.force === true,
  });
}

/** Maps an error to the documented exit code. */
export function joinExitCode(error: unknown): number {
  if (error instanceof ValidationError) return 2;
  if (!(error instanceof K8sOnK8sError)) return 1;
  switch (error.code) {
    case 'PRECONDITION_FAILED':
      return 3;
    case 'CA_PIN_MISMATCH':
      return 4;
    case 'SERVER_UNREACHABLE':
      return 5;
    case 'TOKEN_REJECTED':
    case 'TOKEN_EXPIRED':
    case 'TOKEN_REVOKED':
    case 'TOKEN_EXHAUSTED':
    case 'UNAUTHENTICATED':
    case 'RATE_LIMITED':
      return 6;
    default:
      return 1;
  }
}
