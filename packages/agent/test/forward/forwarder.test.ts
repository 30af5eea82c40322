import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { readdirSync } from 'node:fs';
import { after, describe, test } from 'node:test';
import { createForwarder, type Forwarder, type ForwarderOptions } from '../../src/forward/forwarder.js';
import type { HostPort } from '@k8s-on-k8s/shared';
import {
  closed,
  connectClient,
  deadPort,
  echoOnce,
  readAll,
  readBytes,
  readLine,
  sha256,
  startEchoServer,
  startNamedEchoServer,
  startServer,
  waitUntil,
  within,
  type TestServer,
} from './tcp-fixtures.js';

const local = (port: number): HostPort => ({ host: '127.0.0.1', port });
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

async function startForwarder(
  upstreams: readonly number[],
  overrides: Partial<ForwarderOptions> = {},
): Promise<{ forwarder: Forwarder; port: number }> {
  const forwarder = createForwarder({
    listen: local(0),
    upstreams: upstreams.map(local),
    connectTimeoutMs: 5000,
    idleTimeoutMs: 0,
    maxConnections: 10_000,
    balance: 'round-robin',
    healthCheck: { kind: 'tcp' },
    healthIntervalMs: 60_000,
    keepAliveMs: 30_000,
    ...overrides,
  });
  const address = await forwarder.listen();
  cleanups.push(() => forwarder.close(0));
  return { forwarder, port: address.port };
}

async function track(server: Promise<TestServer>): Promise<TestServer> {
  const started = await server;
  cleanups.push(() => started.stop());
  return started;
}

const upstreamStats = (forwarder: Forwarder, port: number) => {
  const found = forwarder.stats().upstreams.find((u) => u.upstream === `127.0.0.1:${port}`);
  assert.ok(found, `no stats for upstream ${port}`);
  return found;
};

describe('data integrity', () => {
  test('64 MiB of random bytes go through and back unchanged, and are counted', async () => {
    const echo = await track(startEchoServer());
    const { forwarder, port } = await startForwarder([echo.port]);
    const payload = randomBytes(64 * 1024 * 1024);
    const received = await within(echoOnce(port, payload), 60_000, '64 MiB echo');
    assert.equal(received.length, payload.length);
    assert.equal(sha256(received), sha256(payload));
    await waitUntil(() => forwarder.stats().activeConnections === 0, 5000, 'the connection to close');
    const stats = upstreamStats(forwarder, echo.port);
    assert.equal(stats.bytesIn, payload.length);
    assert.equal(stats.bytesOut, payload.length);
  });

  test('300 small transfers of random sizes, 20 at a time, each arrive intact', async () => {
    const echo = await track(startEchoServer());
    const { port } = await startForwarder([echo.port]);
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < 300) {
        next++;
        const payload = randomBytes(1 + Math.floor(Math.random() * 8192));
        const received = await echoOnce(port, payload);
        assert.equal(sha256(received), sha256(payload));
      }
    };
    await within(Promise.all(Array.from({ length: 20 }, worker)), 30_000, '300 transfers');
  });
});

describe('a client that reads slower than its upstream sends', () => {
  test('an upstream that dribbles small writes gets every byte through, in order, past a client that stalls', async () => {
    // 16 MiB in 256-byte writes, one per event-loop turn, so the forwarder reads them one by one;
    // the client does not read for the first 3 s, so its socket buffers fill and the forwarder must
    // hold writes that are each far below the stream's high-water mark until the client drains.
    const sent = randomBytes(16 * 1024 * 1024);
    const upstream = await track(
      startServer((socket) => {
        let offset = 0;
        const dribble = (): void => {
          if (offset >= sent.length) {
            socket.end();
            return;
          }
          const ok = socket.write(sent.subarray(offset, offset + 256));
          offset += 256;
          if (ok) setImmediate(dribble);
          else socket.once('drain', dribble);
        };
        dribble();
      }),
    );
    const { port } = await startForwarder([upstream.port]);
    const client = await connectClient(port);
    client.pause();
    await new Promise((resolve) => setTimeout(resolve, 3000));
    const received = await within(readAll(client), 60_000, 'every byte after the stall');
    assert.equal(received.length, sent.length);
    assert.equal(sha256(received), sha256(sent));
  });
});

describe('TCP semantics', () => {
  test("a client's FIN reaches the upstream, which can still answer afterwards", async () => {
    // The upstream only answers once it has seen the end of the request (like `wc -c`).
    const counter = await track(
      startServer((socket) => {
        let bytes = 0;
        socket.on('data', (chunk: Buffer) => (bytes += chunk.length));
        socket.on('end', () => socket.end(`got ${bytes} bytes\n`));
      }),
    );
    const { port } = await startForwarder([counter.port]);
    const client = await connectClient(port);
    const answer = readAll(client);
    client.end(Buffer.alloc(1000, 1));
    assert.equal((await within(answer, 5000, 'the answer after FIN')).toString(), 'got 1000 bytes\n');
  });

  test("an upstream's FIN reaches the client, which can still send afterwards", async () => {
    // Health checks connect too and send nothing; the relayed connection is the one with data.
    let resolveLate: (data: Buffer) => void = () => undefined;
    const lateData = new Promise<Buffer>((resolve) => (resolveLate = resolve));
    const early = await track(
      startServer((socket) => {
        readAll(socket).then(
          (data) => {
            if (data.length > 0) resolveLate(data);
          },
          () => undefined,
        );
        socket.end('bye\n');
      }),
    );
    const { port } = await startForwarder([early.port]);
    const client = await connectClient(port);
    assert.equal((await within(readAll(client), 5000, 'the upstream FIN')).toString(), 'bye\n');
    client.end('late data');
    assert.equal((await within(lateData, 5000, 'late data')).toString(), 'late data');
  });

  test('an upstream reset is passed to the client as a reset', async () => {
    const resetting = await track(
      startServer((socket) => {
        socket.once('data', () => socket.resetAndDestroy());
      }),
    );
    const { port } = await startForwarder([resetting.port]);
    const client = await connectClient(port);
    const failure = new Promise<NodeJS.ErrnoException>((resolve) => client.once('error', resolve));
    client.write('hello');
    const error = await within(failure, 5000, 'the reset');
    assert.equal(error.code, 'ECONNRESET');
  });

  test('a client reset is passed to the upstream as a reset', async () => {
    let upstreamError: Promise<NodeJS.ErrnoException | undefined> | undefined;
    const upstream = await track(
      // Only the relayed connection says hello; health-check connections stay silent.
      startServer((socket) => {
        socket.once('data', () => {
          upstreamError = new Promise((resolve) => {
            socket.once('error', resolve);
            socket.once('end', () => {
              resolve(undefined);
            });
          });
          socket.write('ready\n');
        });
      }),
    );
    const { port } = await startForwarder([upstream.port]);
    const client = await connectClient(port);
    client.write('hello');
    await within(readLine(client), 5000, 'the upstream to be connected');
    client.resetAndDestroy();
    await waitUntil(() => upstreamError !== undefined, 5000, 'the upstream connection');
    const error = await within(upstreamError ?? Promise.resolve(undefined), 5000, 'the reset upstream');
    assert.equal(error?.code, 'ECONNRESET');
  });

  test('a client that does not read holds the upstream back instead of filling our memory', async () => {
    let written = 0;
    let lastProgress = Date.now();
    const flood = await track(
      startServer((socket) => {
        const chunk = Buffer.alloc(64 * 1024);
        const pump = (): void => {
          while (written < 512 * 1024 * 1024 && !socket.destroyed) {
            written += chunk.length;
            lastProgress = Date.now();
            if (!socket.write(chunk)) {
              socket.once('drain', pump);
              return;
            }
          }
        };
        socket.once('data', pump);
      }),
    );
    const { port } = await startForwarder([flood.port]);
    const client = await connectClient(port);
    client.pause();
    client.write('go');
    // Wait until the upstream stops making progress: the kernel buffers and the streams'
    // high-water marks are full and the forwarder stopped reading.
    await waitUntil(() => written > 0 && Date.now() - lastProgress > 500, 20_000, 'the upstream to stall');
    assert.ok(
      written < 64 * 1024 * 1024,
      `the upstream got rid of ${written} bytes to a client that reads nothing`,
    );
    client.destroy();
  });
});

describe('upstreams and health', () => {
  test('a connect failure is retried on the next healthy upstream for the same client', async () => {
    const dead = await deadPort();
    const echo = await track(startEchoServer());
    const { forwarder, port } = await startForwarder([dead, echo.port]);
    for (let i = 0; i < 10; i++) {
      const received = await within(echoOnce(port, Buffer.from(`hello ${i}`)), 5000, `client ${i}`);
      assert.equal(received.toString(), `hello ${i}`);
    }
    const deadStats = upstreamStats(forwarder, dead);
    assert.equal(deadStats.healthy, false);
    assert.ok(deadStats.connectErrors >= 1);
    assert.equal(upstreamStats(forwarder, echo.port).totalConnections, 10);
    assert.equal(forwarder.stats().failedConnections, 0);
  });

  test('with every upstream down a client is closed promptly, not left waiting', async () => {
    const { forwarder, port } = await startForwarder([await deadPort(), await deadPort()], {
      connectTimeoutMs: 600_000,
    });
    for (let i = 0; i < 2; i++) {
      const client = await connectClient(port);
      // A FIN or a reset, without a byte: the client learns at once that there is no API.
      const data = await within(
        readAll(client).catch(() => Buffer.alloc(0)),
        5000,
        `client ${i} to be closed`,
      );
      assert.equal(data.length, 0);
      client.destroy();
    }
    assert.equal(forwarder.stats().failedConnections, 2);
    assert.equal(forwarder.stats().healthyUpstreams, 0);
  });

  test('an upstream that stops leaves rotation, clients keep succeeding, and it returns when back', async () => {
    const a = await startNamedEchoServer('a');
    const b = await track(startNamedEchoServer('b'));
    const { forwarder, port } = await startForwarder([a.port, b.port], { healthIntervalMs: 50 });
    const reached: string[] = [];
    const connectOnce = async (): Promise<void> => {
      const client = await connectClient(port);
      reached.push(await readLine(client));
      client.resume();
      client.end();
      await closed(client);
    };
    for (let i = 0; i < 10; i++) await within(connectOnce(), 5000, 'a client before the outage');
    assert.ok(reached.includes('a') && reached.includes('b'));

    await a.stop();
    reached.length = 0;
    for (let i = 0; i < 20; i++) await within(connectOnce(), 5000, 'a client during the outage');
    assert.deepEqual(new Set(reached), new Set(['b']));
    assert.equal(upstreamStats(forwarder, a.port).healthy, false);

    const aAgain = await track(startNamedEchoServer('a', a.port));
    await waitUntil(() => upstreamStats(forwarder, aAgain.port).healthy, 5000, 'a to be healthy again');
    reached.length = 0;
    for (let i = 0; i < 10; i++) await within(connectOnce(), 5000, 'a client after the recovery');
    assert.ok(reached.includes('a'), `after recovery clients reached only ${reached.join(',')}`);
  });

  test('round-robin alternates between upstreams', async () => {
    const a = await track(startEchoServer());
    const b = await track(startEchoServer());
    const { forwarder, port } = await startForwarder([a.port, b.port]);
    for (let i = 0; i < 6; i++) await within(echoOnce(port, Buffer.from('x')), 5000, 'a client');
    assert.equal(upstreamStats(forwarder, a.port).totalConnections, 3);
    assert.equal(upstreamStats(forwarder, b.port).totalConnections, 3);
  });

  test('least-connections sends new clients to the upstream with fewer open connections', async () => {
    const a = await track(startNamedEchoServer('a'));
    const b = await track(startNamedEchoServer('b'));
    const { forwarder, port } = await startForwarder([a.port, b.port], { balance: 'least-connections' });
    const open = async () => {
      const client = await connectClient(port);
      return { client, name: await within(readLine(client), 5000, 'the greeting') };
    };
    const first = [await open(), await open(), await open(), await open()];
    assert.equal(first.filter((c) => c.name === 'a').length, 2);
    // Close both connections on a; the next two clients must both go to a.
    for (const { client } of first.filter((c) => c.name === 'a')) client.destroy();
    await waitUntil(() => upstreamStats(forwarder, a.port).activeConnections === 0, 5000, 'a to be idle');
    const next = [await open(), await open()];
    assert.deepEqual(
      next.map((c) => c.name),
      ['a', 'a'],
    );
    for (const { client } of [...first, ...next]) client.destroy();
  });

  test('setUpstreams moves new connections and keeps the open ones', async () => {
    const a = await track(startNamedEchoServer('a'));
    const b = await track(startNamedEchoServer('b'));
    const { forwarder, port } = await startForwarder([a.port]);
    const old = await connectClient(port);
    assert.equal(await within(readLine(old), 5000, 'greeting'), 'a');
    forwarder.setUpstreams([local(b.port)]);
    const fresh = await connectClient(port);
    assert.equal(await within(readLine(fresh), 5000, 'greeting'), 'b');
    // The old connection still works, through the upstream that left the list.
    old.write('still here');
    assert.equal(
      (await within(readBytes(old, 10), 5000, 'echo on the old connection')).toString(),
      'still here',
    );
    old.destroy();
    fresh.destroy();
  });
});

describe('resources', () => {
  test('5,000 connections leave no file descriptor behind', async () => {
    const echo = await track(startEchoServer());
    const { forwarder, port } = await startForwarder([echo.port]);
    const fds = (): number => readdirSync('/proc/self/fd').length;
    await within(echoOnce(port, Buffer.from('warm up')), 5000, 'warm-up');
    await waitUntil(() => forwarder.stats().activeConnections === 0, 5000, 'warm-up to close');
    const before = fds();
    let next = 0;
    const worker = async (): Promise<void> => {
      while (next < 5000) {
        next++;
        await echoOnce(port, Buffer.from('ping'));
      }
    };
    await within(Promise.all(Array.from({ length: 50 }, worker)), 120_000, '5,000 connections');
    await waitUntil(() => fds() <= before, 10_000, `descriptors to return to ${before} (now ${fds()})`);
    assert.equal(fds(), before);
    assert.equal(forwarder.stats().activeConnections, 0);
    assert.equal(upstreamStats(forwarder, echo.port).activeConnections, 0);
    assert.equal(upstreamStats(forwarder, echo.port).totalConnections, 5001);
  });

  test('close() drains an open connection, refuses new ones, then resolves', async () => {
    const echo = await track(startEchoServer());
    const { forwarder, port } = await startForwarder([echo.port]);
    const client = await connectClient(port);
    const closing = forwarder.close(30_000);
    await waitUntil(() => forwarder.stats().activeConnections === 1, 5000, 'stats');
    await assert.rejects(connectClient(port), { code: 'ECONNREFUSED' });
    const received = readAll(client);
    client.end('last words');
    assert.equal((await within(received, 5000, 'the in-flight echo')).toString(), 'last words');
    await within(closing, 5000, 'close() after the last connection');
  });
});
