// The TCP forwarder that replaces `socat TCP-LISTEN:443,fork,...` on every worker: one event loop,
// several upstreams, health checks, failover, bounded buffering and a draining shutdown.
import { createServer, type AddressInfo, type Server, type Socket } from 'node:net';
import type { HostPort } from '@k8s-on-k8s/shared';
import { createHealthCheckLoop } from './health-check-loop.js';
import { abortPeer, connectUpstream, type Relay, type RelayContext } from './relay.js';
import type { HealthCheck } from './upstream-health-check.js';
import { createUpstreamPool, type BalanceStrategy, type Upstream } from './upstream-pool.js';

/** Everything the forwarder needs, already validated (forward-flags.ts parses the flags). */
export interface ForwarderOptions {
  readonly listen: HostPort;
  readonly upstreams: readonly HostPort[];
  readonly connectTimeoutMs: number;
  /** 0 disables it: watches and `kubectl exec` streams may be silent for hours. */
  readonly idleTimeoutMs: number;
  readonly maxConnections: number;
  readonly balance: BalanceStrategy;
  readonly healthCheck: HealthCheck;
  readonly healthIntervalMs: number;
  /** Delay before the first TCP keepalive probe, on both sides of every connection. */
  readonly keepAliveMs: number;
  /** Called when an upstream enters or leaves rotation. */
  readonly onHealthChange?: (upstream: UpstreamStats) => void;
}

/** Counters of one upstream, as the metrics endpoint and systemd STATUS= report them. */
export interface UpstreamStats {
  readonly upstream: string;
  readonly healthy: boolean;
  readonly listed: boolean;
  readonly activeConnections: number;
  readonly totalConnections: number;
  readonly connectErrors: number;
  /** Client → upstream. */
  readonly bytesIn: number;
  /** Upstream → client. */
  readonly bytesOut: number;
}

/** A snapshot of the whole forwarder. */
export interface ForwarderStats {
  readonly activeConnections: number;
  readonly acceptedConnections: number;
  /** Clients closed because no upstream was healthy or every attempt failed. */
  readonly failedConnections: number;
  readonly healthyUpstreams: number;
  readonly upstreams: readonly UpstreamStats[];
}

/** A running (or runnable) forwarder. */
export interface Forwarder {
  /** Starts listening; resolves with the bound address (useful with port 0). */
  listen(): Promise<AddressInfo>;
  /** Stops accepting, waits for open connections up to deadlineMs, then cuts the rest. */
  close(deadlineMs: number): Promise<void>;
  /** Replaces the upstream list; connections already open stay where they are. */
  setUpstreams(list: readonly HostPort[]): void;
  stats(): ForwarderStats;
}

/** Creates a forwarder; nothing is bound until listen() is called. */
export function createForwarder(options: ForwarderOptions): Forwarder {
  const pool = createUpstreamPool(options.balance);
  pool.setUpstreams(options.upstreams);
  const relays = new Set<Relay>();
  let acceptedConnections = 0;
  let failedConnections = 0;
  let closing = false;
  let drained: (() => void) | undefined;

  const reportHealth = (upstream: Upstream): void => {
    options.onHealthChange?.(upstreamStats(upstream, relays));
  };
  const healthChecks = createHealthCheckLoop({
    pool,
    healthCheck: options.healthCheck,
    timeoutMs: options.connectTimeoutMs,
    intervalMs: options.healthIntervalMs,
    onChange: reportHealth,
  });
  const relayContext: RelayContext = {
    pool,
    connectTimeoutMs: options.connectTimeoutMs,
    keepAliveMs: options.keepAliveMs,
    onUpstreamDown: reportHealth,
    onNoUpstream: () => {
      failedConnections++;
    },
  };

  const server = createListener(options);
  server.on('connection', (client) => {
    acceptedConnections++;
    const relay = trackClient(client, relays, options.idleTimeoutMs, () => {
      if (closing && relays.size === 0) drained?.();
    });
    connectUpstream(relay, new Set(), relayContext);
  });

  return {
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: options.listen.host, port: options.listen.port, backlog: 4096 }, () => {
          server.removeListener('error', reject);
          healthChecks.start();
          resolve(server.address() as AddressInfo);
        });
      });
    },

    async close(deadlineMs) {
      closing = true;
      healthChecks.stop();
      const stopped = new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
      if (relays.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          drained = resolve;
          timer = setTimeout(resolve, deadlineMs);
        });
        clearTimeout(timer);
        cutRelays(relays);
      }
      await stopped;
    },

    setUpstreams(list) {
      pool.setUpstreams(list);
      // A new upstream is assumed healthy; check at once rather than at the next tick.
      if (healthChecks.started) void healthChecks.runNow();
    },

    stats() {
      return {
        activeConnections: relays.size,
        acceptedConnections,
        failedConnections,
        healthyUpstreams: pool.listed().filter((u) => u.healthy).length,
        upstreams: pool.known().map((upstream) => upstreamStats(upstream, relays)),
      };
    },
  };
}

/**
 * The listening socket. pauseOnConnect: no byte is read from a client before its upstream is
 * connected, so a slow upstream connect never makes us buffer. allowHalfOpen: a client's FIN is
 * passed on as a FIN, not turned into a full close (HTTP/1.1 clients and `kubectl exec` stdin
 * rely on it).
 */
function createListener(options: ForwarderOptions): Server {
  const server = createServer({
    allowHalfOpen: true,
    pauseOnConnect: true,
    noDelay: true,
    keepAlive: true,
    keepAliveInitialDelay: options.keepAliveMs,
  });
  server.maxConnections = options.maxConnections;
  return server;
}

/** Adds a new client to `relays` until it closes, with its error, close and idle handling. */
function trackClient(client: Socket, relays: Set<Relay>, idleTimeoutMs: number, onClosed: () => void): Relay {
  const relay: Relay = { client, upstreamSocket: undefined, upstream: undefined };
  relays.add(relay);
  client.on('error', (error: NodeJS.ErrnoException) => {
    abortPeer(relay.upstreamSocket, error);
  });
  client.on('close', () => {
    relays.delete(relay);
    // A client gone without a clean FIN (timeout, error, destroy) takes its upstream with it;
    // after a clean FIN the pipe has already passed the FIN on and the upstream finishes alone.
    if (!client.readableEnded) relay.upstreamSocket?.destroy();
    onClosed();
  });
  if (idleTimeoutMs > 0) {
    client.setTimeout(idleTimeoutMs, () => {
      client.destroy();
    });
  }
  return relay;
}

/** Cuts what is left at the drain deadline with a reset, so a client cannot mistake a cut stream for a complete one. */
function cutRelays(relays: ReadonlySet<Relay>): void {
  for (const relay of relays) {
    if (!relay.client.destroyed) relay.client.resetAndDestroy();
    relay.upstreamSocket?.destroy();
  }
}

/** An upstream's counters, with the bytes of its open connections added to those already closed. */
function upstreamStats(upstream: Upstream, relays: ReadonlySet<Relay>): UpstreamStats {
  let bytesIn = upstream.closedBytesIn;
  let bytesOut = upstream.closedBytesOut;
  for (const relay of relays) {
    const socket = relay.upstreamSocket;
    if (relay.upstream === upstream && socket !== undefined && !socket.destroyed) {
      bytesIn += socket.bytesWritten;
      bytesOut += socket.bytesRead;
    }
  }
  return {
    upstream: upstream.key,
    healthy: upstream.healthy,
    listed: upstream.listed,
    activeConnections: upstream.active,
    totalConnections: upstream.total,
    connectErrors: upstream.connectErrors,
    bytesIn,
    bytesOut,
  };
}
