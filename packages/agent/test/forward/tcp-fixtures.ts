// Real sockets on 127.0.0.1 for the forwarder tests: upstream servers, clients, bounded waits.
import { createHash } from 'node:crypto';
import { connect, createServer, type AddressInfo, type Server, type Socket } from 'node:net';

/** Fails with `what` if the promise has not settled within ms: every wait in a test is bounded. */
export function within<T>(promise: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => {
      reject(new Error(`timed out after ${ms}ms waiting for ${what}`));
    }, ms);
  });
  return Promise.race([promise, timeout]).finally(() => {
    clearTimeout(timer);
  });
}

/** Polls until check() is true; fails after ms. */
export async function waitUntil(check: () => boolean, ms: number, what: string): Promise<void> {
  const deadline = Date.now() + ms;
  while (!check()) {
    if (Date.now() > deadline) throw new Error(`timed out after ${ms}ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/** A TCP server on 127.0.0.1 that remembers its open sockets so a test can kill it hard. */
export interface TestServer {
  readonly server: Server;
  readonly port: number;
  readonly sockets: Set<Socket>;
  /** Stops listening and destroys every open connection. */
  stop(): Promise<void>;
}

/** Starts a server on 127.0.0.1 (port 0 unless given) running handler for each connection. */
export async function startServer(handler: (socket: Socket) => void, port = 0): Promise<TestServer> {
  const sockets = new Set<Socket>();
  const server = createServer({ allowHalfOpen: true }, (socket) => {
    sockets.add(socket);
    socket.on('close', () => sockets.delete(socket));
    socket.on('error', () => undefined);
    handler(socket);
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: '127.0.0.1', port }, () => {
      resolve();
    });
  });
  return {
    server,
    port: (server.address() as AddressInfo).port,
    sockets,
    stop: () =>
      new Promise<void>((resolve) => {
        for (const socket of sockets) socket.destroy();
        server.close(() => {
          resolve();
        });
      }),
  };
}

/** An upstream that echoes every byte and passes a FIN back as a FIN. */
export function startEchoServer(port = 0): Promise<TestServer> {
  return startServer((socket) => socket.pipe(socket), port);
}

/** An upstream that first says its name (so a test sees which upstream it reached), then echoes. */
export function startNamedEchoServer(name: string, port = 0): Promise<TestServer> {
  return startServer((socket) => {
    socket.write(`${name}\n`);
    socket.pipe(socket);
  }, port);
}

/** A port nothing listens on (bound then released), for a dead upstream. */
export async function deadPort(): Promise<number> {
  const server = await startServer(() => undefined);
  await server.stop();
  return server.port;
}

/** Connects a client with half-open allowed, as kubelet's HTTP client sockets behave. */
export function connectClient(port: number): Promise<Socket> {
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, allowHalfOpen: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

/** Reads a socket to its end; resolves with everything received. */
export function readAll(socket: Socket): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    socket.on('data', (chunk: Buffer) => chunks.push(chunk));
    socket.once('end', () => {
      resolve(Buffer.concat(chunks));
    });
    socket.once('error', reject);
    socket.resume();
  });
}

/** Reads until `bytes` bytes have arrived. */
export function readBytes(socket: Socket, bytes: number): Promise<Buffer> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let got = 0;
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      got += chunk.length;
      if (got >= bytes) {
        socket.off('data', onData);
        socket.pause();
        resolve(Buffer.concat(chunks));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('end', () => {
      if (got < bytes) reject(new Error(`connection ended after ${got} of ${bytes} bytes`));
    });
    socket.resume();
  });
}

/** Reads one newline-terminated line. */
export async function readLine(socket: Socket): Promise<string> {
  const chunks: Buffer[] = [];
  return new Promise((resolve, reject) => {
    const onData = (chunk: Buffer): void => {
      chunks.push(chunk);
      const text = Buffer.concat(chunks).toString();
      const end = text.indexOf('\n');
      if (end >= 0) {
        socket.off('data', onData);
        socket.pause();
        resolve(text.slice(0, end));
      }
    };
    socket.on('data', onData);
    socket.once('error', reject);
    socket.once('close', () => {
      reject(new Error('closed before a line arrived'));
    });
    socket.resume();
  });
}

/** Waits for a socket's close event, resolving with whether it closed with an error. */
export function closed(socket: Socket): Promise<boolean> {
  return new Promise((resolve) => {
    if (socket.closed) resolve(false);
    socket.once('close', resolve);
  });
}

/** SHA-256 hex of a buffer. */
export function sha256(data: Buffer): string {
  return createHash('sha256').update(data).digest('hex');
}

/** Sends `payload` through a fresh connection to an echo upstream and checks it comes back. */
export async function echoOnce(port: number, payload: Buffer): Promise<Buffer> {
  const socket = await connectClient(port);
  const received = readAll(socket);
  socket.end(payload);
  return received;
}
