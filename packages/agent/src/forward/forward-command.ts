// `k8s-join forward`: flags → validated ForwarderOptions → a running forwarder, with systemd
// readiness, SIGHUP reload, SIGTERM drain and a metrics endpoint. The process itself (signals,
// files, systemd-notify) comes in through deps so tests can drive it in-process too.
import type { Server } from 'node:http';
import {
  K8sOnK8sError,
  ValidationError,
  formatDuration,
  formatHostPort,
  parseDuration,
  parseFlags,
  parseHostPort,
  type HostPort,
} from '@k8s-on-k8s/shared';
import { createForwarder, type ForwarderOptions, type ForwarderStats } from './forwarder.js';
import { serveForwarderMetrics } from './forwarder-metrics.js';
import type { HealthCheck } from './upstream-health-check.js';

/** What the forward command needs from the process; the bin passes the real ones. */
export interface ForwardCommandDeps {
  readonly stdout: (line: string) => void;
  readonly stderr: (line: string) => void;
  readonly env: Readonly<Record<string, string | undefined>>;
  readonly readFile: (path: string) => Promise<string>;
  /** Subscribes to a process signal; returns the unsubscribe. */
  readonly onSignal: (signal: NodeJS.Signals, handler: () => void) => () => void;
  /** sd_notify(3); only called when NOTIFY_SOCKET is set, i.e. under a Type=notify unit. */
  readonly notifySystemd: (message: { ready?: boolean; status: string }) => Promise<void>;
}

/** The forward command's flags after validation; frozen, trusted by everything inside. */
export interface ForwardCommandConfig {
  readonly forwarder: ForwarderOptions;
  readonly upstreamsFile: string | undefined;
  readonly metrics: HostPort | undefined;
  readonly drainTimeoutMs: number;
}

export const FORWARD_HELP = `Usage: k8s-join forward --listen ADDR:PORT (--upstream HOST:PORT ... | --upstreams-file PATH) [flags]

Relays TCP connections from ADDR:PORT (on a worker: the API VIP, 10.199.199.199:443) to healthy
kube-apiserver endpoints. It replaces
  socat TCP-LISTEN:443,fork,reuseaddr,bind=10.199.199.199 TCP:api.example:6443
with one process that checks its upstreams, fails over between them, bounds its buffers and tells
systemd when it is ready. TLS is not terminated: the apiserver still sees the kubelet's client cert.

Flags:
  --listen ADDR:PORT          address to accept on (required); [v6]:port for IPv6; port 0 = any free port
  --upstream HOST:PORT        an apiserver endpoint; repeat for several
  --upstreams-file PATH       one HOST:PORT per line, '#' comments; re-read on SIGHUP
                              (systemctl reload), a bad file keeps the previous list
  --balance STRATEGY          round-robin (default) or least-connections
  --health-check KIND         tcp (default: a TCP connect) or https (GET /readyz, needs --ca-file)
  --ca-file PATH              PEM CA that signed the apiserver's serving certificate
  --health-interval DURATION  time between active checks (default 5s); a failed connect also takes an
                              upstream out at once, and the next client connect tries another one
  --connect-timeout DURATION  give up on an upstream connect after this long (default 5s)
  --idle-timeout DURATION     close connections silent this long in both directions (default 0s = never:
                              watches and exec sessions can be quiet for hours; TCP keepalive finds dead peers)
  --max-connections N         refuse clients beyond N open connections (default 4096); each one holds two
                              file descriptors, so give the unit LimitNOFILE >= 2*N + 100
  --metrics ADDR:PORT         serve Prometheus metrics at http://ADDR:PORT/metrics
  --drain-timeout DURATION    on SIGTERM stop accepting, wait this long for open connections (default 30s)
  --help                      show this text

Durations look like 500ms, 15s, 5m, 1h30m.

Example unit (Type=notify: it is ready only once listening; the readiness message is sent by the
systemd-notify helper, a child process, hence NotifyAccess=all):
  [Service]
  Type=notify
  NotifyAccess=all
  ExecStart=/usr/local/bin/k8s-join forward --listen 10.199.199.199:443 --upstreams-file /etc/k8s-join/upstreams
  ExecReload=/bin/kill -HUP $MAINPID
  LimitNOFILE=65536
  Restart=always
`;

const KEEPALIVE_MS = 30_000;
const STATUS_INTERVAL_MS = 10_000;

/** Parses and validates the flags; throws ValidationError naming the flag and the value. */
export async function parseForwardFlags(
  argv: readonly string[],
  readFile: ForwardCommandDeps['readFile'],
): Promise<ForwardCommandConfig | 'help'> {
  const { values } = parseForwardArgs(argv);
  if (values.help === true) return 'help';

  if (values.listen === undefined) {
    throw invalid('Missing --listen: give the address to accept on, e.g. --listen 10.199.199.199:443');
  }
  const listen = parseHostPort(values.listen, '--listen', { allowPortZero: true });

  const upstreamFlags = values.upstream ?? [];
  const upstreamsFile = values['upstreams-file'];
  if (upstreamFlags.length > 0 && upstreamsFile !== undefined) {
    throw invalid('Give either --upstream (repeatable) or --upstreams-file, not both');
  }
  let upstreams: HostPort[];
  if (upstreamsFile !== undefined) {
    upstreams = await readUpstreamsFile(upstreamsFile, readFile);
  } else if (upstreamFlags.length > 0) {
    upstreams = upstreamFlags.map((text) => parseHostPort(text, '--upstream'));
  } else {
    throw invalid(
      'Missing --upstream: give at least one apiserver endpoint, e.g. --upstream api.example:6443',
    );
  }

  const balance = oneOf(values.balance ?? 'round-robin', '--balance', ['round-robin', 'least-connections']);
  const kind = oneOf(values['health-check'] ?? 'tcp', '--health-check', ['tcp', 'https']);
  let healthCheck: HealthCheck = { kind: 'tcp' };
  if (kind === 'https') {
    const caFile = values['ca-file'];
    if (caFile === undefined) {
      throw invalid('Missing --ca-file: --health-check https verifies the apiserver with the cluster CA');
    }
    const ca = await readFileOrFail(caFile, '--ca-file', readFile);
    if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
      throw invalid(`Expected --ca-file to be a PEM certificate, got ${JSON.stringify(caFile)} without one`);
    }
    healthCheck = { kind: 'https', ca };
  } else if (values['ca-file'] !== undefined) {
    throw invalid('--ca-file is only used with --health-check https');
  }

  const connectTimeoutMs = positiveDuration(values['connect-timeout'] ?? '5s', '--connect-timeout');
  const healthIntervalMs = positiveDuration(values['health-interval'] ?? '5s', '--health-interval');
  const idleTimeoutMs = parseDuration(values['idle-timeout'] ?? '0s', '--idle-timeout');
  const drainTimeoutMs = parseDuration(values['drain-timeout'] ?? '30s', '--drain-timeout');
  const maxText = values['max-connections'] ?? '4096';
  const maxConnections = Number(maxText);
  if (!/^\d+$/.test(maxText) || !Number.isSafeInteger(maxConnections) || maxConnections < 1) {
    throw invalid(
      `Expected --max-connections to be a whole number of at least 1, got ${JSON.stringify(maxText)}`,
    );
  }
  const metrics =
    values.metrics === undefined
      ? undefined
      : parseHostPort(values.metrics, '--metrics', { allowPortZero: true });

  return Object.freeze({
    forwarder: Object.freeze({
      listen,
      upstreams: Object.freeze(upstreams),
      connectTimeoutMs,
      idleTimeoutMs,
      maxConnections,
      balance,
      healthCheck: Object.freeze(healthCheck),
      healthIntervalMs,
      keepAliveMs: KEEPALIVE_MS,
    }),
    upstreamsFile,
    metrics,
    drainTimeoutMs,
  });
}

/** Runs `k8s-join forward` until SIGTERM/SIGINT has drained it; resolves with the exit code. */
export async function runForwardCommand(argv: readonly string[], deps: ForwardCommandDeps): Promise<number> {
  const config = await parseForwardFlags(argv, deps.readFile);
  if (config === 'help') {
    deps.stdout(FORWARD_HELP);
    return 0;
  }
  // Subscribed before listening: a SIGTERM during start-up must drain and exit 0, not kill us.
  const unsubscribers: (() => void)[] = [];
  const stopSignal = new Promise<NodeJS.Signals>((resolve) => {
    for (const signal of ['SIGTERM', 'SIGINT'] as const) {
      unsubscribers.push(
        deps.onSignal(signal, () => {
          resolve(signal);
        }),
      );
    }
  });
  try {
    return await serveUntilStopped(config, deps, stopSignal, unsubscribers);
  } finally {
    for (const unsubscribe of unsubscribers) unsubscribe();
  }
}

async function serveUntilStopped(
  config: ForwardCommandConfig,
  deps: ForwardCommandDeps,
  stopSignal: Promise<NodeJS.Signals>,
  unsubscribers: (() => void)[],
): Promise<number> {
  const underSystemd = deps.env.NOTIFY_SOCKET !== undefined && deps.env.NOTIFY_SOCKET !== '';
  let notifyFailed = false;
  const notify = (message: { ready?: boolean; status: string }): void => {
    if (!underSystemd || notifyFailed) return;
    deps.notifySystemd(message).catch((error: unknown) => {
      notifyFailed = true;
      deps.stderr(`warning: systemd-notify failed, readiness/status not reported: ${String(error)}`);
    });
  };

  const forwarder = createForwarder({
    ...config.forwarder,
    onHealthChange: (upstream) => {
      deps.stdout(
        `upstream ${upstream.upstream} is ${upstream.healthy ? 'healthy, back in rotation' : 'unhealthy, out of rotation'}`,
      );
      updateStatus();
    },
  });
  let lastStatus = '';
  const updateStatus = (): void => {
    const status = describeStatus(forwarder.stats());
    if (status === lastStatus) return;
    lastStatus = status;
    notify({ status });
  };

  const bound = await forwarder.listen().catch((error: unknown) => {
    throw listenError(config.forwarder.listen, '--listen', error);
  });
  let metricsServer: Server | undefined;
  if (config.metrics !== undefined) {
    const metricsAddress = config.metrics;
    const served = await serveForwarderMetrics(metricsAddress, () => forwarder.stats()).catch(
      async (error: unknown) => {
        await forwarder.close(0);
        throw listenError(metricsAddress, '--metrics', error);
      },
    );
    metricsServer = served.server;
    deps.stdout(
      `metrics on http://${formatHostPort({ host: served.address.address, port: served.address.port })}/metrics`,
    );
  }
  const upstreamList = config.forwarder.upstreams.map(formatHostPort).join(', ');
  deps.stdout(
    `listening on ${formatHostPort({ host: bound.address, port: bound.port })}, forwarding to ${upstreamList}`,
  );
  await warnAboutFileLimit(config.forwarder.maxConnections, deps);
  lastStatus = describeStatus(forwarder.stats());
  notify({ ready: true, status: lastStatus });
  const statusTimer = setInterval(updateStatus, STATUS_INTERVAL_MS);
  statusTimer.unref();

  if (config.upstreamsFile !== undefined) {
    const path = config.upstreamsFile;
    unsubscribers.push(
      deps.onSignal('SIGHUP', () => {
        readUpstreamsFile(path, deps.readFile).then(
          (list) => {
            forwarder.setUpstreams(list);
            deps.stdout(`reloaded ${path}: forwarding to ${list.map(formatHostPort).join(', ')}`);
            updateStatus();
          },
          (error: unknown) => {
            deps.stderr(`error: kept the previous upstreams, ${path} is unusable: ${describeError(error)}`);
          },
        );
      }),
    );
  }

  const signal = await stopSignal;
  deps.stdout(
    `${signal}: stopped accepting, draining ${forwarder.stats().activeConnections} connections for up to ${formatDuration(config.drainTimeoutMs)}`,
  );
  notify({ status: 'draining' });
  clearInterval(statusTimer);
  await forwarder.close(config.drainTimeoutMs);
  const left = forwarder.stats().activeConnections;
  if (metricsServer !== undefined) {
    const server = metricsServer;
    server.closeAllConnections();
    await new Promise<void>((resolve) => {
      server.close(() => {
        resolve();
      });
    });
  }
  deps.stdout(left === 0 ? 'drained, exiting' : `drain deadline reached, cut ${left} connections, exiting`);
  return 0;
}

/** The systemd STATUS= line: what `systemctl status` shows an operator at a glance. */
export function describeStatus(stats: ForwarderStats): string {
  const listed = stats.upstreams.filter((u) => u.listed).length;
  return `${stats.activeConnections} active connections, ${stats.healthyUpstreams}/${listed} upstreams healthy`;
}

/** Reads an upstreams file: one HOST:PORT per line, blank lines and `#` comments ignored. */
export async function readUpstreamsFile(
  path: string,
  readFile: ForwardCommandDeps['readFile'],
): Promise<HostPort[]> {
  const text = await readFileOrFail(path, '--upstreams-file', readFile);
  const upstreams: HostPort[] = [];
  text.split('\n').forEach((raw, index) => {
    const line = raw.replace(/#.*/, '').trim();
    if (line !== '') upstreams.push(parseHostPort(line, `line ${index + 1} of --upstreams-file ${path}`));
  });
  if (upstreams.length === 0) {
    throw invalid(`Expected --upstreams-file ${path} to list at least one HOST:PORT, got none`);
  }
  return upstreams;
}

function parseForwardArgs(argv: readonly string[]) {
  return parseFlags(argv, {
    listen: { type: 'string' },
    upstream: { type: 'string', multiple: true },
    'upstreams-file': { type: 'string' },
    balance: { type: 'string' },
    'health-check': { type: 'string' },
    'ca-file': { type: 'string' },
    'health-interval': { type: 'string' },
    'connect-timeout': { type: 'string' },
    'idle-timeout': { type: 'string' },
    'max-connections': { type: 'string' },
    metrics: { type: 'string' },
    'drain-timeout': { type: 'string' },
    help: { type: 'boolean', short: 'h' },
  });
}

function invalid(message: string, options: { cause?: unknown } = {}): ValidationError {
  return new ValidationError('INVALID_ARGUMENT', message, {
    ...options,
    hint: 'Run `k8s-join forward --help` for the flags.',
  });
}

function oneOf<T extends string>(text: string, flag: string, allowed: readonly T[]): T {
  const found = allowed.find((value) => value === text);
  if (found === undefined) {
    throw invalid(`Expected ${flag} to be one of ${allowed.join(', ')}, got ${JSON.stringify(text)}`);
  }
  return found;
}

function positiveDuration(text: string, flag: string): number {
  const ms = parseDuration(text, flag);
  if (ms === 0) throw invalid(`Expected ${flag} to be longer than 0s, got ${JSON.stringify(text)}`);
  return ms;
}

async function readFileOrFail(
  path: string,
  flag: string,
  readFile: ForwardCommandDeps['readFile'],
): Promise<string> {
  try {
    return await readFile(path);
  } catch (error) {
    const code = (error as { code?: unknown }).code;
    throw invalid(
      `Cannot read ${flag} ${JSON.stringify(path)}: ${typeof code === 'string' ? code : String(error)}`,
      {
        cause: error,
      },
    );
  }
}

function listenError(address: HostPort, flag: string, error: unknown): K8sOnK8sError {
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

// Every connection holds two descriptors; a limit below that turns into EMFILE at accept time,
// which looks like a hung VIP. systemd's default soft limit is 1024 (LimitNOFILE=).
async function warnAboutFileLimit(maxConnections: number, deps: ForwardCommandDeps): Promise<void> {
  const limits = await deps.readFile('/proc/self/limits').catch(() => '');
  const soft = /^Max open files\s+(\d+)/m.exec(limits)?.[1];
  if (soft !== undefined && Number(soft) < maxConnections * 2 + 100) {
    deps.stderr(
      `warning: open-file limit ${soft} < 2 * --max-connections + 100 = ${maxConnections * 2 + 100}; set LimitNOFILE= in the unit or lower --max-connections`,
    );
  }
}

function describeError(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
