// `k8s-join forward` flags: argv → a frozen ForwardCommandConfig. Files named by flags (the upstream
// list, the CA) are read here too, so a bad one fails at start with the flag's name in the message.
import type { ValidationError } from '@k8s-on-k8s/shared';
import { parseDuration, parseFlags, parseHostPort, type HostPort, invalidArgument } from '@k8s-on-k8s/shared';
import type { ForwarderOptions } from './forwarder.js';
import type { HealthCheck } from './upstream-health-check.js';

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

/** The forward command's flags after validation; frozen, trusted by everything inside. */
export interface ForwardCommandConfig {
  readonly forwarder: ForwarderOptions;
  readonly upstreamsFile: string | undefined;
  readonly metrics: HostPort | undefined;
  readonly drainTimeoutMs: number;
}

/** Reads a file named by a flag; the real one reads from disk, tests hand in a table. */
export type ReadFlagFile = (path: string) => Promise<string>;

const KEEPALIVE_MS = 30_000;

/** Parses and validates the flags; throws ValidationError naming the flag and the value. */
export async function parseForwardFlags(
  argv: readonly string[],
  readFile: ReadFlagFile,
): Promise<ForwardCommandConfig | 'help'> {
  const { values } = parseForwardArgs(argv);
  if (values.help === true) return 'help';

  if (values.listen === undefined) {
    throw invalid('Missing --listen: give the address to accept on, e.g. --listen 10.199.199.199:443');
  }
  const listen = parseHostPort(values.listen, '--listen', { allowPortZero: true });
  const upstreamsFile = values['upstreams-file'];
  const upstreams = await parseUpstreams(values.upstream ?? [], upstreamsFile, readFile);
  const balance = oneOf(values.balance ?? 'round-robin', '--balance', ['round-robin', 'least-connections']);
  const healthCheck = await parseHealthCheck(values['health-check'] ?? 'tcp', values['ca-file'], readFile);
  const connectTimeoutMs = positiveDuration(values['connect-timeout'] ?? '5s', '--connect-timeout');
  const healthIntervalMs = positiveDuration(values['health-interval'] ?? '5s', '--health-interval');
  const idleTimeoutMs = parseDuration(values['idle-timeout'] ?? '0s', '--idle-timeout');
  const drainTimeoutMs = parseDuration(values['drain-timeout'] ?? '30s', '--drain-timeout');
  const maxConnections = parseMaxConnections(values['max-connections'] ?? '4096');
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

/** Reads an upstreams file: one HOST:PORT per line, blank lines and `#` comments ignored. */
export async function readUpstreamsFile(path: string, readFile: ReadFlagFile): Promise<HostPort[]> {
  return parseUpstreamsList(await readFileOrFail(path, '--upstreams-file', readFile), path);
}

/** The text of an upstreams file as addresses; `path` only names the file in messages. */
export function parseUpstreamsList(text: string, path: string): HostPort[] {
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

/** The upstreams from repeated --upstream or from --upstreams-file, never both. */
async function parseUpstreams(
  upstreamFlags: readonly string[],
  upstreamsFile: string | undefined,
  readFile: ReadFlagFile,
): Promise<HostPort[]> {
  if (upstreamFlags.length > 0 && upstreamsFile !== undefined) {
    throw invalid('Give either --upstream (repeatable) or --upstreams-file, not both');
  }
  if (upstreamsFile !== undefined) return readUpstreamsFile(upstreamsFile, readFile);
  if (upstreamFlags.length > 0) return upstreamFlags.map((text) => parseHostPort(text, '--upstream'));
  throw invalid('Missing --upstream: give at least one apiserver endpoint, e.g. --upstream api.example:6443');
}

/** --health-check, with the PEM from --ca-file that the https check verifies the apiserver with. */
async function parseHealthCheck(
  kindText: string,
  caFile: string | undefined,
  readFile: ReadFlagFile,
): Promise<HealthCheck> {
  const kind = oneOf(kindText, '--health-check', ['tcp', 'https']);
  if (kind === 'tcp') {
    if (caFile !== undefined) throw invalid('--ca-file is only used with --health-check https');
    return { kind: 'tcp' };
  }
  if (caFile === undefined) {
    throw invalid('Missing --ca-file: --health-check https verifies the apiserver with the cluster CA');
  }
  const ca = await readFileOrFail(caFile, '--ca-file', readFile);
  if (!ca.includes('-----BEGIN CERTIFICATE-----')) {
    throw invalid(`Expected --ca-file to be a PEM certificate, got ${JSON.stringify(caFile)} without one`);
  }
  return { kind: 'https', ca };
}

function parseMaxConnections(text: string): number {
  const maxConnections = Number(text);
  if (!/^\d+$/.test(text) || !Number.isSafeInteger(maxConnections) || maxConnections < 1) {
    throw invalid(
      `Expected --max-connections to be a whole number of at least 1, got ${JSON.stringify(text)}`,
    );
  }
  return maxConnections;
}

function invalid(message: string, options: { cause?: unknown } = {}): ValidationError {
  return invalidArgument(message, {
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

async function readFileOrFail(path: string, flag: string, readFile: ReadFlagFile): Promise<string> {
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
