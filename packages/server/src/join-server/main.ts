import { createServer, type Server } from 'node:https';
import type { AddressInfo } from 'node:net';
import pino, { type DestinationStream, type Logger } from 'pino';
import {
  K8sOnK8sError,
  REDACT_PATHS,
  describeError,
  formatHostPort,
  parseHostPort,
} from '@k8s-on-k8s/shared';
import { FileTokenStore } from './token-store/file.js';
import { createJoinServerApp } from './app.js';
import type { JoinServerSettings } from './settings.js';
import { defaultPublicUrl, JOIN_SERVER_HELP, parseJoinServerFlags, type JoinServerConfig } from './config.js';
import { createJoinServerMetrics } from './metrics.js';
import type { JoinTokenStore } from './token-store/store.js';
import { KubernetesApi } from '../kube/api.js';
import { KubernetesTokenStore } from './token-store/kubernetes.js';
import { loadKubeConfig } from '../kube/kubeconfig.js';
import { startCsrApprover } from './csr-approval/csr-approver.js';
import { startNodeNames } from './node-names.js';

// `k8s-join-server`: config → store, apiserver client, app → an HTTPS server; SIGTERM drains it.
// The process (signals, output, files) comes in through deps so tests can run it in-process too.

/** Rejected join tokens per client IP: 10 at once, then one every 6 s. */
const FAILURES_PER_IP = { burst: 10, perSecond: 1 / 6 } as const;
/** Wrong secrets for one token id from one client IP: 5 at once, then one a minute. */
const FAILURES_PER_IP_AND_TOKEN = { burst: 5, perSecond: 1 / 60 } as const;
/** Failed admin authentications per client IP: 10 at once, then one every 6 s. */
const ADMIN_FAILURES_PER_IP = { burst: 10, perSecond: 1 / 6 } as const;
/** Probes and scrapes per client IP: kubelets probe every few seconds, Prometheus every 15 s or so. */
const HEALTH_PER_IP = { burst: 50, perSecond: 10 } as const;

/**
 * The HTTP edge's defaults. Node's own (a 2-minute TLS handshake, 60 s for headers, 5 minutes for
 * a request, no connection cap) let a few hundred slow clients hold the server's sockets and
 * memory; a join is a few hundred bytes each way, so seconds are plenty even on a poor link.
 */
export const JOIN_SERVER_EDGE_LIMITS: JoinServerEdgeLimits = Object.freeze({
  handshakeTimeoutMs: 10_000,
  headersTimeoutMs: 10_000,
  requestTimeoutMs: 30_000,
  maxConnections: 1024,
});

/** A running join server. */
export interface RunningJoinServer {
  readonly url: string;
  readonly port: number;
  readonly server: Server;
  readonly logger: Logger;
  /** Stops accepting, lets in-flight requests finish (up to drainTimeoutMs), then closes everything. */
  shutdown(drainTimeoutMs: number): Promise<void>;
}

/** What startJoinServer needs besides the config. */
export interface StartJoinServerOptions {
  readonly now?: () => Date;
  /** Where JSON logs go (default stdout). */
  readonly logDestination?: DestinationStream;
  /** Overrides of the HTTP edge's timeouts and connection cap (tests use small ones). */
  readonly edge?: Partial<JoinServerEdgeLimits>;
}

/** How long a client may take for each part of a request, and how many connections may be open. */
export interface JoinServerEdgeLimits {
  readonly handshakeTimeoutMs: number;
  readonly headersTimeoutMs: number;
  readonly requestTimeoutMs: number;
  readonly maxConnections: number;
}

async function openStore(
  config: JoinServerConfig,
  api: KubernetesApi,
  now: () => Date,
): Promise<JoinTokenStore> {
  if (config.store.kind === 'kubernetes') return new KubernetesTokenStore({ api, now });
  return FileTokenStore.open({ path: config.store.path, now });
}

async function listen(server: Server, config: JoinServerConfig): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(config.listen.port, config.listen.host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  return (server.address() as AddressInfo).port;
}

/** Starts a join server from a validated config; resolves once it is listening. */
export async function startJoinServer(
  config: JoinServerConfig,
  options: StartJoinServerOptions = {},
): Promise<RunningJoinServer> {
  const now = options.now ?? (() => new Date());
  const logger = pino(
    {
      name: 'k8s-join-server',
      level: config.logLevel,
      redact: { paths: [...REDACT_PATHS], censor: '<redacted>' },
      timestamp: pino.stdTimeFunctions.isoTime,
    },
    // Asynchronous: under load, lines written while a write is in flight go out together.
    // shutdown() flushes; a kill -9 may lose the last lines, never the store.
    options.logDestination ?? pino.destination({ dest: 1, sync: false }),
  );
  const kubeConfig = loadKubeConfig({ path: config.kubeconfig, inCluster: config.kubeconfig === undefined });
  const kube = await KubernetesApi.fromKubeConfig(kubeConfig);
  let upstreams = config.upstreams;
  if (upstreams.length === 0) {
    // Workers reach the apiserver where this server does, unless --upstream says otherwise.
    const server = new URL(kubeConfig.getCurrentCluster()?.server ?? 'https://127.0.0.1:6443');
    upstreams = [
      formatHostPort(
        parseHostPort(
          `${server.hostname}:${server.port === '' ? '443' : server.port}`,
          'the kubeconfig server',
        ),
      ),
    ];
  }
  const store = await openStore(config, kube, now);
  let accepting = true;
  const metrics = createJoinServerMetrics();
  const edge = { ...JOIN_SERVER_EDGE_LIMITS, ...options.edge };
  const server = createServer({
    cert: config.tls.certChainPem,
    key: config.tls.keyPem,
    // Admins may authenticate with a client certificate of the cluster CA; agents send none.
    ca: config.tls.caPem,
    requestCert: true,
    rejectUnauthorized: false,
    handshakeTimeout: edge.handshakeTimeoutMs,
    headersTimeout: edge.headersTimeoutMs,
    requestTimeout: edge.requestTimeoutMs,
    // Node checks the two timeouts above only this often (default every 30 s).
    connectionsCheckingInterval: Math.max(100, Math.min(1000, edge.headersTimeoutMs / 2)),
  });
  // Connections over the cap are closed as they arrive (net.Server#maxConnections).
  server.maxConnections = edge.maxConnections;
  let port: number;
  try {
    port = await listen(server, config);
  } catch (cause) {
    await Promise.all([store.close(), kube.close()]);
    throw new K8sOnK8sError(
      'INVALID_ARGUMENT',
      `cannot listen on --listen ${formatHostPort(config.listen)}`,
      { cause },
    );
  }
  const publicUrl = config.publicUrl ?? defaultPublicUrl(config.listen, port);
  const settings: JoinServerSettings = {
    cluster: {
      apiEndpoint: config.apiEndpoint,
      upstreams,
      konnectivityUpstreams: config.konnectivityUpstreams,
      clusterDns: config.clusterDns,
      clusterDomain: config.clusterDomain,
      kubernetesVersion: config.kubernetesVersion,
    },
    caPem: config.tls.caPem,
    caCertHash: config.caCertHash,
    publicUrl,
    bootstrapTokenTtlMs: config.bootstrapTokenTtlMs,
    maxTokenTtlMs: config.maxTokenTtlMs,
    rateLimits: {
      perIp: config.ratePerIp,
      failuresPerIp: FAILURES_PER_IP,
      failuresPerIpAndToken: FAILURES_PER_IP_AND_TOKEN,
      adminFailuresPerIp: ADMIN_FAILURES_PER_IP,
      healthPerIp: HEALTH_PER_IP,
    },
  };
  // Approves each bootstrap token's node client CSR for its own node name, and each node's serving
  // CSR for its own names and addresses (csr-approval/).
  const approver = startCsrApprover({ kube, logger, now });
  const nodes = startNodeNames({ kube, logger });
  server.on(
    'request',
    createJoinServerApp({ settings, store, kube, nodes, logger, metrics, now, accepting: () => accepting }),
  );
  const url = `https://${formatHostPort({ host: config.listen.host, port })}`;
  logger.info(
    { url, publicUrl, caCertHash: config.caCertHash, store: config.store.kind, upstreams },
    'listening',
  );

  let stopping: Promise<void> | undefined;
  const shutdown = (drainTimeoutMs: number): Promise<void> => {
    stopping ??= (async () => {
      accepting = false;
      const closed = new Promise<void>((resolve) =>
        server.close(() => {
          resolve();
        }),
      );
      server.closeIdleConnections();
      // Logged once the listener is closed, so whoever reads this line finds the port closed.
      logger.info({ drainTimeoutMs }, 'shutting down: finishing in-flight requests');
      const timer = setTimeout(() => {
        logger.warn('drain timeout reached; closing the remaining connections');
        server.closeAllConnections();
      }, drainTimeoutMs);
      await closed;
      clearTimeout(timer);
      await Promise.all([approver.stop(), nodes.stop()]);
      await store.close();
      await kube.close();
      logger.info('stopped');
      await new Promise<void>((resolve) => {
        logger.flush(() => {
          resolve();
        });
      });
    })();
    return stopping;
  };
  return { url, port, server, logger, shutdown };
}

/** What the command needs from the process. */
export interface JoinServerCommandDeps {
  readonly stdout: (text: string) => void;
  readonly stderr: (text: string) => void;
  readonly readFile: (path: string) => Promise<string>;
  /** Subscribes to a signal; returns the unsubscribe. */
  readonly onSignal: (signal: NodeJS.Signals, handler: () => void) => () => void;
}

/** Runs `k8s-join-server` until SIGTERM or SIGINT has drained it; resolves with the exit code. */
export async function runJoinServerCommand(
  argv: readonly string[],
  deps: JoinServerCommandDeps,
): Promise<number> {
  const config = await parseJoinServerFlags(argv, deps.readFile);
  if (config === 'help') {
    deps.stdout(JOIN_SERVER_HELP);
    return 0;
  }
  const running = await startJoinServer(config);
  const signal = await new Promise<NodeJS.Signals>((resolve) => {
    const offs = (['SIGTERM', 'SIGINT'] as const).map((name) =>
      deps.onSignal(name, () => {
        for (const off of offs) off();
        resolve(name);
      }),
    );
  });
  running.logger.info({ signal }, 'signal received');
  try {
    await running.shutdown(config.drainTimeoutMs);
  } catch (error) {
    deps.stderr(`error during shutdown: ${describeError(error)}`);
    return 1;
  }
  return 0;
}
