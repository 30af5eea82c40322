// The TCP forwarder that replaces `socat TCP-LISTEN:443,fork,...` on every worker: one event loop,
// several upstreams, health checks, failover, bounded buffering and a draining shutdown.
import { connect as connectTcp, createServer, type AddressInfo, type Socket } from 'node:net';
import type { HostPort } from '@k8s-on-k8s/shared';
import { checkUpstream, type HealthCheck } from './upstream-health-check.js';
import { createUpstreamPool, type BalanceStrategy, type Upstream } from './upstream-pool.js';

/** Everything the forwarder needs, already validated (forward-command.ts parses the flags). */
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

interface Connection {
  readonly client: Socket;
  upstreamSocket: Socket | undefined;
  upstream: Upstream | undefined;
}

/** Creates a forwarder; nothing is bound until listen() is called. */
export function createForwarder(options: ForwarderOptions): Forwarder {
  const pool = createUpstreamPool(options.balance);
  pool.setUpstreams(options.upstreams);
  const connections = new Set<Connection>();
  let acceptedConnections = 0;
  let failedConnections = 0;
  let healthTimer: NodeJS.Timeout | undefined;
  let closing = false;
  let drained: (() => void) | undefined;

  // pauseOnConnect: no byte is read from a client before its upstream is connected, so a slow
  // upstream connect never makes us buffer. allowHalfOpen: a client's FIN is passed on as a FIN,
  // not turned into a full close (HTTP/1.1 clients and `kubectl exec` stdin rely on it).
  const server = createServer({
    allowHalfOpen: true,
    pauseOnConnect: true,
    noDelay: true,
    keepAlive: true,
    keepAliveInitialDelay: options.keepAliveMs,
  });
  server.maxConnections = options.maxConnections;
  server.on('connection', (client) => {
    acceptedConnections++;
    const connection: Connection = { client, upstreamSocket: undefined, upstream: undefined };
    connections.add(connection);
    client.on('error', (error: NodeJS.ErrnoException) => {
      abortPeer(connection.upstreamSocket, error);
    });
    client.on('close', () => {
      connections.delete(connection);
      // A client gone without a clean FIN (timeout, error, destroy) takes its upstream with it;
      // after a clean FIN the pipe has already passed the FIN on and the upstream finishes alone.
      if (!client.readableEnded) connection.upstreamSocket?.destroy();
      if (closing && connections.size === 0) drained?.();
    });
    if (options.idleTimeoutMs > 0) {
      client.setTimeout(options.idleTimeoutMs, () => {
        client.destroy();
      });
    }
    connectUpstream(connection, new Set());
  });

  function connectUpstream(connection: Connection, tried: Set<Upstream>): void {
    const { client } = connection;
    if (client.destroyed) return;
    const upstream = pool.pick(tried);
    if (upstream === undefined) {
      // Nothing healthy left: close the client now rather than leave it waiting for a timeout.
      failedConnections++;
      client.destroy();
      return;
    }
    tried.add(upstream);
    const socket = connectTcp({
      host: upstream.address.host,
      port: upstream.address.port,
      allowHalfOpen: true,
      noDelay: true,
      keepAlive: true,
      keepAliveInitialDelay: options.keepAliveMs,
    });
    connection.upstreamSocket = socket;
    connection.upstream = upstream;
    // Counted from the first SYN, so least-connections sees connects still in flight.
    upstream.active++;
    let connected = false;
    let failed = false;

    socket.on('close', () => {
      upstream.active--;
      if (!connected) return;
      upstream.closedBytesIn += socket.bytesWritten;
      upstream.closedBytesOut += socket.bytesRead;
      // An upstream gone without a clean FIN takes its client with it (a reset was already
      // passed on by the 'error' handler; this covers a plain destroy).
      if (!socket.readableEnded) client.destroy();
    });

    const onConnectFailure = (): void => {
      if (failed) return;
      failed = true;
      socket.destroy();
      connection.upstreamSocket = undefined;
      connection.upstream = undefined;
      const wasHealthy = upstream.healthy;
      pool.recordConnectFailure(upstream);
      if (wasHealthy) options.onHealthChange?.(toStats(upstream));
      // The same client tries the next healthy upstream before we give up on it.
      connectUpstream(connection, tried);
    };

    // Before 'connect' the socket is silent, so its idle timeout is the connect timeout.
    socket.setTimeout(options.connectTimeoutMs, onConnectFailure);
    socket.on('error', onConnectFailure);
    socket.once('connect', () => {
      connected = true;
      upstream.total++;
      socket.removeListener('error', onConnectFailure);
      socket.removeListener('timeout', onConnectFailure);
      socket.setTimeout(0);
      socket.on('error', (error: NodeJS.ErrnoException) => {
        abortPeer(client, error);
      });
      if (client.destroyed) {
        socket.destroy();
        return;
      }
      // pipe() gives backpressure both ways (write() === false pauses the reader until 'drain')
      // and, with allowHalfOpen on both sockets, forwards a FIN as end() of the other side.
      client.pipe(socket);
      socket.pipe(client);
    });
  }

  function toStats(upstream: Upstream): UpstreamStats {
    let bytesIn = upstream.closedBytesIn;
    let bytesOut = upstream.closedBytesOut;
    for (const connection of connections) {
      const socket = connection.upstreamSocket;
      if (connection.upstream === upstream && socket !== undefined && !socket.destroyed) {
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

  let checking = false;
  async function runHealthChecks(): Promise<void> {
    if (checking) return;
    checking = true;
    try {
      const listed = pool.listed();
      const results = await Promise.all(
        listed.map((u) => checkUpstream(u.address, options.healthCheck, options.connectTimeoutMs)),
      );
      listed.forEach((upstream, i) => {
        if (pool.recordCheck(upstream, results[i] === true)) options.onHealthChange?.(toStats(upstream));
      });
    } finally {
      checking = false;
    }
  }

  return {
    listen() {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen({ host: options.listen.host, port: options.listen.port, backlog: 4096 }, () => {
          server.removeListener('error', reject);
          healthTimer = setInterval(() => void runHealthChecks(), options.healthIntervalMs);
          healthTimer.unref();
          void runHealthChecks();
          resolve(server.address() as AddressInfo);
        });
      });
    },

    async close(deadlineMs) {
      closing = true;
      clearInterval(healthTimer);
      const stopped = new Promise<void>((resolve) => {
        server.close(() => {
          resolve();
        });
      });
      if (connections.size > 0) {
        let timer: NodeJS.Timeout | undefined;
        await new Promise<void>((resolve) => {
          drained = resolve;
          timer = setTimeout(resolve, deadlineMs);
        });
        clearTimeout(timer);
        // Cut with a reset, so a client cannot mistake a cut stream for a complete one.
        for (const connection of connections) {
          if (!connection.client.destroyed) connection.client.resetAndDestroy();
          connection.upstreamSocket?.destroy();
        }
      }
      await stopped;
    },

    setUpstreams(list) {
      pool.setUpstreams(list);
      // A new upstream is assumed healthy; check at once rather than at the next tick.
      if (healthTimer !== undefined) void runHealthChecks();
    },

    stats() {
      const upstreams = pool.known().map(toStats);
      return {
        activeConnections: connections.size,
        acceptedConnections,
        failedConnections,
        healthyUpstreams: pool.listed().filter((u) => u.healthy).length,
        upstreams,
      };
    },
  };
}

/** Passes a failure on to the other socket: a reset as a reset, anything else as a close. */
function abortPeer(peer: Socket | undefined, error: NodeJS.ErrnoException): void {
  if (peer === undefined || peer.destroyed) return;
  if (peer.connecting) {
    peer.destroy();
  } else if (error.code === 'ECONNRESET' || error.code === 'EPIPE') {
    peer.resetAndDestroy();
  } else {
    peer.destroy();
  }
}
