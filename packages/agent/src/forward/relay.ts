// One client's relay: pick an upstream, connect, fail over to the next one, then join the two
// sockets. The forwarder owns the listener and the bookkeeping; this owns one pair of sockets.
import { connect as connectTcp, type Socket } from 'node:net';
import type { HostPort } from '@k8s-on-k8s/shared';
import type { Upstream, UpstreamPool } from './upstream-pool.js';

/** A client and the upstream it is relayed to, once one has been picked. */
export interface Relay {
  readonly client: Socket;
  upstreamSocket: Socket | undefined;
  upstream: Upstream | undefined;
}

/** What connecting a relay needs from the forwarder. */
export interface RelayContext {
  readonly pool: UpstreamPool;
  readonly connectTimeoutMs: number;
  readonly keepAliveMs: number;
  /** A failed connect has just taken this upstream out of rotation. */
  readonly onUpstreamDown: (upstream: Upstream) => void;
  /** No healthy upstream was left to try for this client. */
  readonly onNoUpstream: () => void;
}

/** Connects the relay's client to the next healthy upstream not in `tried`, failing over on error. */
export function connectUpstream(relay: Relay, tried: Set<Upstream>, context: RelayContext): void {
  const { client } = relay;
  if (client.destroyed) return;
  const upstream = context.pool.pick(tried);
  if (upstream === undefined) {
    // Nothing healthy left: close the client now rather than leave it waiting for a timeout.
    context.onNoUpstream();
    client.destroy();
    return;
  }
  tried.add(upstream);
  const socket = openUpstreamSocket(upstream.address, context.keepAliveMs, client);
  relay.upstreamSocket = socket;
  relay.upstream = upstream;
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
    relay.upstreamSocket = undefined;
    relay.upstream = undefined;
    const wasHealthy = upstream.healthy;
    context.pool.recordConnectFailure(upstream);
    if (wasHealthy) context.onUpstreamDown(upstream);
    // The same client tries the next healthy upstream before we give up on it.
    connectUpstream(relay, tried, context);
  };

  // Before 'connect' the socket is silent, so its idle timeout is the connect timeout.
  socket.setTimeout(context.connectTimeoutMs, onConnectFailure);
  socket.on('error', onConnectFailure);
  socket.once('connect', () => {
    connected = true;
    upstream.total++;
    socket.removeListener('error', onConnectFailure);
    socket.removeListener('timeout', onConnectFailure);
    socket.setTimeout(0);
    splice(client, socket);
  });
}

/** Passes a failure on to the other socket: a reset as a reset, anything else as a close. */
export function abortPeer(peer: Socket | undefined, error: NodeJS.ErrnoException): void {
  if (peer === undefined || peer.destroyed) return;
  if (peer.connecting) {
    peer.destroy();
  } else if (error.code === 'ECONNRESET' || error.code === 'EPIPE') {
    peer.resetAndDestroy();
  } else {
    peer.destroy();
  }
}

/**
 * How much one read from an upstream takes at most. The upstream → client direction carries what
 * clients wait for (responses, watches, logs, exec output), so it reads into one buffer per
 * connection, reused for every read, instead of a fresh 64 KiB Buffer per read for the garbage
 * collector. (Given as a Buffer, not a function: Node calls a function after every read for the
 * next buffer; a fresh 128 KiB per read cost ~50 µs per small round trip.)
 */
export const UPSTREAM_READ_BYTES = 128 * 1024;

/**
 * Read buffers of closed connections, kept for the next ones: a buffer per connection allocated
 * and dropped at 5,000 connections a second kept the garbage collector busy for a third of the
 * forwarder's CPU (V8 collects on external memory growth). At most this many are kept (8 MiB,
 * of which only pages ever written are resident).
 */
const SPARE_READ_BUFFERS = 64;
const spareReadBuffers: Buffer[] = [];

function takeReadBuffer(): Buffer {
  return spareReadBuffers.pop() ?? Buffer.allocUnsafe(UPSTREAM_READ_BYTES);
}

/**
 * Gives `buffer` back once neither socket can touch it: the upstream no longer reads into it and
 * the client has no write left pointing into it (a destroyed socket's queued writes are cancelled
 * before its 'close').
 */
function releaseReadBufferAfterClose(buffer: Buffer, upstream: Socket, client: Socket): void {
  let open = 2;
  const closed = (): void => {
    if (--open === 0 && spareReadBuffers.length < SPARE_READ_BUFFERS) spareReadBuffers.push(buffer);
  };
  upstream.once('close', closed);
  if (client.closed) closed();
  else client.once('close', closed);
}

/**
 * The upstream socket. Its bytes go to `client` from its own read buffer (onread): each read is
 * written on at once; while a write is still queued (the client reads slower than the upstream
 * sends) the upstream is paused, so the buffer is never reused before the kernel has the bytes,
 * and it resumes when that write has gone out. A FIN is passed on as end() of the client.
 */
function openUpstreamSocket(address: HostPort, keepAliveMs: number, client: Socket): Socket {
  const readBuffer = takeReadBuffer();
  const socket: Socket = connectTcp({
    host: address.host,
    port: address.port,
    allowHalfOpen: true,
    noDelay: true,
    keepAlive: true,
    keepAliveInitialDelay: keepAliveMs,
    onread: {
      buffer: readBuffer,
      callback: (bytes, buffer) => {
        // Nobody is left to take them: the relay is over.
        if (client.destroyed) {
          socket.destroy();
          return false;
        }
        // Written through at once (the usual case): the buffer is free for the next read.
        // Otherwise the queued write still points into it, so read nothing more until that write
        // has gone out: its callback, not 'drain', which a write below the high-water mark never
        // brings (a client stalled behind small writes would stall the upstream for good).
        let waiting = false;
        client.write(buffer.subarray(0, bytes), () => {
          if (waiting) socket.resume();
        });
        if (client.writableLength === 0) return true;
        waiting = true;
        return false;
      },
    },
  });
  releaseReadBufferAfterClose(readBuffer, socket, client);
  // Flowing, so that 'end' is emitted (onread delivers no 'data'); the FIN goes on to the client.
  socket.resume();
  socket.on('end', () => {
    if (!client.destroyed) client.end();
  });
  return socket;
}

/** Joins a connected upstream to its client, both ways. */
function splice(client: Socket, upstream: Socket): void {
  upstream.on('error', (error: NodeJS.ErrnoException) => {
    abortPeer(client, error);
  });
  if (client.destroyed) {
    upstream.destroy();
    return;
  }
  // Client → upstream: pipe() gives backpressure (write() === false pauses the client until
  // 'drain') and, with allowHalfOpen on both sockets, passes a FIN on as end(). The other way is
  // the upstream socket's own read buffer (openUpstreamSocket).
  client.pipe(upstream);
}
