// The built bin as a child process: exit codes, signals, systemd-less readiness, reload, metrics.
import assert from 'node:assert/strict';
import { spawn, type ChildProcess } from 'node:child_process';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { after, describe, test } from 'node:test';
import {
  closed,
  connectClient,
  readAll,
  readLine,
  startNamedEchoServer,
  startServer,
  waitUntil,
  within,
  type TestServer,
} from '../forward/tcp-fixtures.js';

const BIN = fileURLToPath(new URL('../../src/bin/k8s-join.js', import.meta.url));
const cleanups: (() => Promise<void>)[] = [];
after(async () => {
  for (const cleanup of cleanups.reverse()) await cleanup();
});

interface Run {
  readonly code: number | null;
  readonly stdout: string;
  readonly stderr: string;
}

/** Runs the bin to completion (bounded) and collects its output. */
function runBin(args: readonly string[]): Promise<Run> {
  const child = spawn(process.execPath, [BIN, ...args], { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return within(
    new Promise<Run>((resolve) => {
      child.on('close', (code) => {
        resolve({ code, stdout, stderr });
      });
    }),
    10_000,
    `k8s-join ${args.join(' ')}`,
  ).finally(() => child.kill('SIGKILL'));
}

interface Daemon {
  readonly child: ChildProcess;
  readonly lines: string[];
  readonly port: number;
  readonly exited: Promise<number | null>;
  /** Waits for a stdout/stderr line matching pattern (already seen or future). */
  line(pattern: RegExp): Promise<string>;
}

/** Starts `k8s-join forward` with args and waits until it says it listens. */
async function startDaemon(args: readonly string[]): Promise<Daemon> {
  const child = spawn(process.execPath, [BIN, 'forward', '--listen', '127.0.0.1:0', ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
    env: { ...process.env, NOTIFY_SOCKET: '' },
  });
  const lines: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    createInterface({ input: stream }).on('line', (text) => lines.push(text));
  }
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve));
  cleanups.push(async () => {
    child.kill('SIGKILL');
    await exited;
  });
  const line = async (pattern: RegExp): Promise<string> => {
    await waitUntil(
      () => lines.some((l) => pattern.test(l)) || child.exitCode !== null,
      10_000,
      `a line matching ${String(pattern)} (got: ${lines.join(' | ')})`,
    );
    const found = lines.find((l) => pattern.test(l));
    if (found === undefined)
      throw new Error(`exited ${String(child.exitCode)} before ${String(pattern)}: ${lines.join(' | ')}`);
    return found;
  };
  const listening = await line(/^listening on 127\.0\.0\.1:\d+/);
  return { child, lines, exited, line, port: Number(/:(\d+)/.exec(listening)?.[1]) };
}

async function track(server: Promise<TestServer>): Promise<TestServer> {
  const started = await server;
  cleanups.push(() => started.stop());
  return started;
}

describe('k8s-join command line', () => {
  test('version prints the package version', async () => {
    const run = await runBin(['version']);
    assert.equal(run.code, 0);
    assert.match(run.stdout, /^k8s-join 0\.1\.0\n$/);
  });

  test('an unknown command prints usage listing the commands and exits 2', async () => {
    const run = await runBin(['frobnicate']);
    assert.equal(run.code, 2);
    assert.match(run.stderr, /unknown command "frobnicate"/);
    assert.match(run.stderr, /forward .*\n.*version/);
  });

  test('forward --help teaches the flags and exits 0', async () => {
    const run = await runBin(['forward', '--help']);
    assert.equal(run.code, 0);
    for (const flag of [
      '--listen',
      '--upstream',
      '--upstreams-file',
      '--balance',
      '--health-check',
      '--drain-timeout',
    ]) {
      assert.ok(run.stdout.includes(flag), `help mentions ${flag}`);
    }
    assert.match(run.stdout, /NotifyAccess=all/);
  });

  const badFlags: [string[], RegExp][] = [
    [['--listen', 'x', '--upstream', '127.0.0.1:1'], /Expected --listen to be HOST:PORT.*got "x"/],
    [['--listen', '127.0.0.1:0', '--upstream', 'nope'], /Expected --upstream to be HOST:PORT.*got "nope"/],
    [['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:70000'], /--upstream.*got "127\.0\.0\.1:70000"/],
    [['--upstream', '127.0.0.1:1'], /Missing --listen/],
    [['--listen', '127.0.0.1:0'], /Missing --upstream/],
    [
      ['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1', '--connect-timeout', 'soon'],
      /Expected --connect-timeout to be a duration.*got "soon"/,
    ],
    [
      ['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1', '--balance', 'random'],
      /Expected --balance to be one of round-robin, least-connections, got "random"/,
    ],
    [
      ['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1', '--health-check', 'https'],
      /Missing --ca-file/,
    ],
    [
      ['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1', '--max-connections', '-3'],
      /--max-connections/,
    ],
    [
      ['--listen', '127.0.0.1:0', '--upstreams-file', '/nonexistent/upstreams'],
      /Cannot read --upstreams-file "\/nonexistent\/upstreams": ENOENT/,
    ],
    [['--listen', '127.0.0.1:0', '--upstream', '127.0.0.1:1', '--bogus'], /Unknown flag --bogus/],
    [['--listen'], /Expected --listen to have a value/],
  ];
  for (const [args, message] of badFlags) {
    test(`forward ${args.join(' ')} exits 2 naming the flag`, async () => {
      const run = await runBin(['forward', ...args]);
      assert.equal(run.code, 2, run.stderr);
      assert.match(run.stderr, message);
      assert.doesNotMatch(run.stderr, /\n\s+at /, 'no stack trace');
    });
  }

  test('a listen address that is taken exits 1 with a hint, no stack', async () => {
    const taken = await track(startServer(() => undefined));
    const run = await runBin(['forward', '--listen', `127.0.0.1:${taken.port}`, '--upstream', '127.0.0.1:1']);
    assert.equal(run.code, 1);
    assert.match(run.stderr, /Cannot listen on 127\.0\.0\.1:\d+ \(--listen\): EADDRINUSE/);
    assert.match(run.stderr, /hint: /);
    assert.doesNotMatch(run.stderr, /\n\s+at /);
  });
});

describe('k8s-join forward as a daemon', () => {
  test('SIGTERM refuses new connections, lets the in-flight one finish, then exits 0', async () => {
    // The upstream answers only when the test says so, so the connection is in flight at SIGTERM.
    let answer: (() => void) | undefined;
    const slow = await track(
      startServer((socket) => {
        socket.once('data', () => {
          answer = () => socket.end('pong');
        });
      }),
    );
    const daemon = await startDaemon(['--upstream', `127.0.0.1:${slow.port}`, '--drain-timeout', '60s']);
    const client = await connectClient(daemon.port);
    const response = readAll(client);
    client.write('ping');
    await waitUntil(() => answer !== undefined, 5000, 'the request to reach the upstream');

    daemon.child.kill('SIGTERM');
    await daemon.line(/^SIGTERM: stopped accepting, draining 1 connections/);
    await assert.rejects(connectClient(daemon.port), { code: 'ECONNREFUSED' });
    assert.equal(daemon.child.exitCode, null, 'still running while a connection is open');

    answer?.();
    assert.equal((await within(response, 5000, 'the in-flight response')).toString(), 'pong');
    client.end();
    assert.equal(await within(daemon.exited, 10_000, 'the daemon to exit'), 0);
    assert.ok(daemon.lines.includes('drained, exiting'));
  });

  test('SIGTERM with a connection that never finishes exits 0 at the drain deadline', async () => {
    const silent = await track(startServer(() => undefined));
    const daemon = await startDaemon(['--upstream', `127.0.0.1:${silent.port}`, '--drain-timeout', '200ms']);
    const client = await connectClient(daemon.port);
    const cut = new Promise<string | undefined>((resolve) => {
      client.once('error', (error: NodeJS.ErrnoException) => {
        resolve(error.code);
      });
      client.once('end', () => {
        resolve('FIN');
      });
      client.resume();
    });
    await waitUntil(() => silent.sockets.size >= 1, 5000, 'the relayed connection');
    daemon.child.kill('SIGTERM');
    assert.equal(await within(daemon.exited, 10_000, 'the daemon to exit'), 0);
    assert.ok(daemon.lines.some((l) => /drain deadline reached, cut 1 connections/.test(l)));
    assert.equal(await within(cut, 5000, 'the cut client to notice'), 'ECONNRESET');
  });

  test('SIGHUP re-reads --upstreams-file; a broken file keeps the previous list', async () => {
    const a = await track(startNamedEchoServer('a'));
    const b = await track(startNamedEchoServer('b'));
    const dir = await mkdtemp(join(tmpdir(), 'k8s-join-forward-'));
    cleanups.push(() => rm(dir, { recursive: true, force: true }));
    const file = join(dir, 'upstreams');
    await writeFile(file, `# the apiserver\n127.0.0.1:${a.port}\n`);
    const daemon = await startDaemon(['--upstreams-file', file]);
    const greeting = async (): Promise<string> => {
      const client = await connectClient(daemon.port);
      const name = await within(readLine(client), 5000, 'a greeting');
      client.destroy();
      return name;
    };
    assert.equal(await greeting(), 'a');

    await writeFile(file, `127.0.0.1:${b.port}   # moved\n\n`);
    daemon.child.kill('SIGHUP');
    await daemon.line(/^reloaded .*: forwarding to 127\.0\.0\.1:\d+$/);
    assert.equal(await greeting(), 'b');
    assert.equal(await greeting(), 'b');

    await writeFile(file, 'not an address\n');
    daemon.child.kill('SIGHUP');
    await daemon.line(/kept the previous upstreams.*line 1 of --upstreams-file/);
    assert.equal(await greeting(), 'b');
  });

  test('--metrics serves the counters of real traffic', async () => {
    const a = await track(startNamedEchoServer('a'));
    const daemon = await startDaemon(['--upstream', `127.0.0.1:${a.port}`, '--metrics', '127.0.0.1:0']);
    const metricsLine = await daemon.line(/^metrics on http:\/\//);
    const url = /(http:\/\/\S+)/.exec(metricsLine)?.[1] ?? '';
    for (let i = 0; i < 3; i++) {
      const client = await connectClient(daemon.port);
      await within(readLine(client), 5000, 'a greeting');
      client.end();
      client.resume();
      await within(closed(client), 5000, 'close');
    }
    const label = `upstream="127.0.0.1:${a.port}"`;
    const response = await fetch(url);
    assert.equal(response.status, 200);
    assert.match(response.headers.get('content-type') ?? '', /^text\/plain; version=0\.0\.4/);
    const body = await response.text();
    assert.match(body, /^k8s_join_forwarder_client_connections_total 3$/m);
    assert.ok(body.includes(`k8s_join_forwarder_upstream_connections_total{${label}} 3\n`), body);
    assert.ok(body.includes(`k8s_join_forwarder_upstream_healthy{${label}} 1\n`));
    assert.ok(
      body.includes(`k8s_join_forwarder_upstream_bytes_out_total{${label}} 6\n`),
      'three "a\\n" greetings',
    );
    assert.equal((await fetch(url.replace('/metrics', '/nope'))).status, 404);
  });
});
