// `k8s-join join` (also plain `k8s-join --token …`): flags → validated JoinConfig → preflight →
// pinned CA → bundle → files → units → wait. Each step converges, so a second run is a no-op.
import {
  API_VIP,
  ValidationError,
  K8sOnK8sError,
  formatDuration,
  parseApiEndpoint,
  type JoinBundle,
} from '@k8s-on-k8s/shared';
import { NODE_PATHS } from '../node/node-paths.js';
import type { NodeSystem } from '../node/node-system.js';
import {
  nodeUnits,
  renderNodeFiles,
  type NodeFile,
  type NodeFileOptions,
} from '../node/render-node-files.js';
import { startNodeUnits } from '../node/systemctl.js';
import { AGENT_VERSION } from '../version.js';
import { discoverServerCa, type DiscoveredCa } from './discover-server-ca.js';
import { JoinServerBusyError, requestJoinBundle } from './join-client.js';
import { placeholderBundle, renderDryRunPlan } from './join-dry-run.js';
import { JOIN_HELP, parseJoinFlags, type JoinConfig, type JoinFlagsDeps } from './join-flags.js';
import { readJoinState, writeJoinState, type JoinState } from './join-state.js';
import { retryTransient } from './join-retry.js';
import { preflightError, runPreflight } from './preflight.js';
import { verifyJoinBundle } from './verify-bundle.js';
import { waitForJoinedNode } from './wait-for-node.js';

/** What the join command needs from the process beside the machine. */
export interface JoinCommandDeps extends JoinFlagsDeps {
  readonly out: (line: string) => void;
  readonly warn: (line: string) => void;
  /** Waits between --retry attempts. */
  readonly sleep: (ms: number) => Promise<void>;
}

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
    await keepExistingJoin(state, config, out);
    return 0;
  }
  await checkPreflight(config, state !== undefined, out);
  if (config.dryRun) {
    printDryRun(config, await discoverPinnedCa(config, deps), out);
    return 0;
  }

  // Discovery is inside the retry too: at first boot the server may not be reachable yet.
  const { ca, bundle } = await retryTransient(
    async () => {
      const pinned = await discoverPinnedCa(config, deps);
      return { ca: pinned, bundle: await fetchJoinBundle(config, pinned, deps) };
    },
    { budgetMs: config.retryMs, now: () => system.now(), sleep: deps.sleep, out },
  );
  verifyJoinBundle(bundle, ca);
  const fileOptions = nodeFileOptions(config, bundle);
  const files = renderNodeFiles(bundle, fileOptions);
  const units = nodeUnits(bundle);
  const unitsChanged = await writeNodeFiles(system, files, out);
  await writeJoinState(
    system.path(NODE_PATHS.state),
    joinStateOf(config, ca, fileOptions.vip, files, units, system.now()),
  );
  const unitsStarted = Date.now();
  await startNodeUnits(system, unitsChanged || config.force, units);
  out(`[units] ${units.join(', ')} enabled and started in ${formatDuration(Date.now() - unitsStarted)}`);
  if (config.timeoutMs > 0) await waitForJoinedNode(system, config, out, unitsStarted);
  out(`joined ${config.nodeName} to ${config.serverUrl.origin} in ${formatDuration(Date.now() - started)}`);
  return 0;
}

/** A machine joined before: the same join only makes sure the units run; another one is refused. */
async function keepExistingJoin(
  state: JoinState,
  config: JoinConfig,
  out: JoinCommandDeps['out'],
): Promise<void> {
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
  if (!config.dryRun) await startNodeUnits(config.system, false, state.units);
}

async function checkPreflight(
  config: JoinConfig,
  alreadyJoined: boolean,
  out: JoinCommandDeps['out'],
): Promise<void> {
  const problems = await runPreflight(config.system, {
    kubeletBinary: config.kubeletBinary,
    containerRuntimeEndpoint: config.containerRuntimeEndpoint,
    vip: API_VIP,
    alreadyJoined,
    ignore: config.ignorePreflight,
  });
  if (problems.length > 0) throw preflightError(problems);
  out('[preflight] ok');
}

async function discoverPinnedCa(config: JoinConfig, deps: JoinCommandDeps): Promise<DiscoveredCa> {
  if (config.caCertHash === undefined) {
    deps.warn(
      'WARNING: --unsafe-skip-ca-verification: trusting whatever CA the server presents. Anyone between this machine and the server can impersonate the cluster and steal the token.',
    );
  }
  const ca = await discoverServerCa(config.serverUrl, config.caCertHash);
  deps.out(
    `[discovery] ${config.serverUrl.origin} presented CA ${ca.caCertHash}${config.caCertHash === undefined ? ' (NOT verified)' : ' (matches the pin)'}`,
  );
  return ca;
}

function printDryRun(config: JoinConfig, ca: DiscoveredCa, out: JoinCommandDeps['out']): void {
  const placeholder = placeholderBundle(config.nodeName, ca.caPem);
  for (const line of renderDryRunPlan(renderNodeFiles(placeholder, nodeFileOptions(config, placeholder)))) {
    out(line);
  }
  out('[dry-run] nothing was changed; the join request was not sent (it would use the token)');
}

/** Sends the join request over the pinned CA; the token is used here and nowhere else. */
async function fetchJoinBundle(
  config: JoinConfig,
  ca: DiscoveredCa,
  deps: JoinCommandDeps,
): Promise<JoinBundle> {
  const platform = config.system.platform();
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
  deps.out(
    `[join] got a bundle for ${bundle.nodeName}: Kubernetes ${bundle.cluster.kubernetesVersion}, API ${bundle.apiServer.endpoint} via ${bundle.apiServer.upstreams.join(', ')}`,
  );
  const skewWarning = clockSkewWarning(bundle.serverTime, config.system.now());
  if (skewWarning !== undefined) deps.warn(skewWarning);
  return bundle;
}

/** A warning when this machine's clock is too far from the server's for certificates to work. */
export function clockSkewWarning(serverTime: string, now: Date): string | undefined {
  const skewMs = Math.abs(new Date(serverTime).getTime() - now.getTime());
  if (skewMs <= MAX_CLOCK_SKEW_MS) return undefined;
  return `WARNING: this machine's clock is ${formatDuration(skewMs)} away from the server's; certificates will look expired or not yet valid. Fix time sync (chrony, systemd-timesyncd).`;
}

/** Writes every file atomically; resolves true when a systemd unit changed (daemon-reload due). */
async function writeNodeFiles(
  system: NodeSystem,
  files: readonly NodeFile[],
  out: JoinCommandDeps['out'],
): Promise<boolean> {
  let unitsChanged = false;
  for (const file of files) {
    const changed = await system.writeAtomic(file.path, file.content, file.mode);
    if (changed && file.path.startsWith('/etc/systemd/')) unitsChanged = true;
    out(`[files] ${changed ? 'wrote' : 'unchanged'} ${file.path} (${file.mode.toString(8)})`);
  }
  return unitsChanged;
}

function nodeFileOptions(config: JoinConfig, bundle: JoinBundle): NodeFileOptions {
  // The bundle schema admits only https://IP[:PORT] endpoints; the fallback is never taken.
  const api = parseApiEndpoint(bundle.apiServer.endpoint) ?? { host: API_VIP, port: 443 };
  return {
    nodeName: config.nodeName,
    kubeletBinary: config.kubeletBinary,
    agentBinary: config.agentBinary,
    containerRuntimeEndpoint: config.containerRuntimeEndpoint,
    ...(config.maxPods === undefined ? {} : { maxPods: config.maxPods }),
    vip: api.host,
    apiPort: api.port,
  };
}

/** The record `reset` undoes and a re-run checks: what was joined, and every file and unit written. */
function joinStateOf(
  config: JoinConfig,
  ca: DiscoveredCa,
  vip: string,
  files: readonly NodeFile[],
  units: readonly string[],
  now: Date,
): Omit<JoinState, 'apiVersion' | 'kind'> {
  return {
    server: config.serverUrl.origin,
    caCertHash: ca.caCertHash,
    nodeName: config.nodeName,
    vip,
    joinedAt: now.toISOString(),
    files: files.map((f) => f.path),
    directories: ['/etc/systemd/system/kubelet.service.d', '/etc/k8s-join', '/var/lib/k8s-join'],
    units: [...units],
  };
}

/** Maps an error to the documented exit code. */
export function joinExitCode(error: unknown): number {
  if (error instanceof ValidationError) return 2;
  // 429 and 503: nothing is wrong with this machine or its token; a later run can succeed.
  if (error instanceof JoinServerBusyError) return 7;
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
      return 6;
    case 'RATE_LIMITED':
      return 7;
    default:
      return 1;
  }
}
