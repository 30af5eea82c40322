// `npm run bench:forward`: the forwarder against a direct connection (the limit) and against the
// seed's `socat TCP-LISTEN:...,fork,reuseaddr` in one run on 127.0.0.1. Figures, not assertions;
// every number is read as a ratio because the machine is shared and noisy.
//
// Processes: this one is the client; the echo/source server is a child (`forward.js server`) so it
// does not share an event loop with the client; the forwarder is the built bin as a child.
//
// Knobs (environment): BENCH_STREAM_BYTES (default 1 GiB), BENCH_CONNECTIONS (5000),
// BENCH_ROUNDTRIPS (20000), BENCH_IDLE (1000), BENCH_FD_CONNECTIONS (100000), BENCH_ROUNDS (2,
// the best round of each target is kept), BENCH_FORWARDER_NODE_OPTIONS (e.g. --cpu-prof).
//
// Open files: 1,000 idle connections hold 1,000 descriptors here and 2,000 in the forwarder, so
// the soft RLIMIT_NOFILE must be at least 4096. Node cannot raise its own limit; if it is lower
// the bench stops and says so: run `ulimit -n 8192` (or raise LimitNOFILE=) and start it again.
import { spawn, type ChildProcess } from 'node:child_process';
import { readdirSync, readFileSync } from 'node:fs';
import { connect, createServer, type Socket } from 'node:net';
import { fileURLToPath } from 'node:url';
import { createInterface } from 'node:readline';

const env = (name: string, fallback: number): number => {
  const text = process.env[name];
  return text === undefined || text === '' ? fallback : Number(text);
};
const STREAM_BYTES = env('BENCH_STREAM_BYTES', 1024 ** 3);
const CONNECTIONS = env('BENCH_CONNECTIONS', 5000);
const ROUNDTRIPS = env('BENCH_ROUNDTRIPS', 20_000);
const IDLE = env('BENCH_IDLE', 1000);
const FD_CONNECTIONS = env('BENCH_FD_CONNECTIONS', 100_000);
const ROUNDS = env('BENCH_ROUNDS', 2);
const PARALLEL_STREAMS = 16;
const CONNECT_CONCURRENCY = 16;
const MESSAGE = Buffer.alloc(64, 'x');
const REQUIRED_NOFILE = 4096;

// ---- the server child: 'S' + u64 length → that many bytes then FIN; 'E' → echo everything ----

function runServer(): void {
  const block = Buffer.alloc(256 * 1024, 0xa5);
  const server = createServer({ allowHalfOpen: true, noDelay: true }, (socket) => {
    socket.on('error', () => undefined);
    let head = Buffer.alloc(0);
    const onData = (chunk: Buffer): void => {
      head = Buffer.concat([head, chunk]);
      if (head[0] === 0x45 /* E */) {
        socket.off('data', onData);
        if (head.length > 1) socket.write(head.subarray(1));
        socket.pipe(socket);
      } else if (head[0] === 0x53 /* S */ && head.length >= 9) {
        socket.off('data', onData);
        socket.resume();
        sendBytes(socket, Number(head.readBigUInt64BE(1)), block);
      }
    };
    socket.on('data', onData);
  });
  server.listen({ host: '127.0.0.1', port: 0, backlog: 4096 }, () => {
    const address = server.address();
    if (address !== null && typeof address === 'object') console.log(`port ${address.port}`);
  });
}

function sendBytes(socket: Socket, total: number, block: Buffer): void {
  let left = total;
  const pump = (): void => {
    while (left > 0) {
      const chunk = left >= block.length ? block : block.subarray(0, left);
      left -= chunk.length;
      if (!socket.write(chunk)) {
        socket.once('drain', pump);
        return;
      }
    }
    socket.end();
  };
  pump();
}

// ---- client-side measurements ----

let nextLocal = 0;
// Spread client source addresses over 127.0.0.0/8 so 100,000 short connections do not run out of
// ephemeral ports to TIME_WAIT (the kernel picks ports per source/destination pair).
function open(port: number): Promise<Socket> {
  const localAddress = `127.0.${(nextLocal >> 8) & 255}.${(nextLocal++ & 253) + 2}`;
  return new Promise((resolve, reject) => {
    const socket = connect({ host: '127.0.0.1', port, localAddress, noDelay: true, allowHalfOpen: true });
    socket.once('connect', () => {
      socket.off('error', reject);
      resolve(socket);
    });
    socket.once('error', reject);
  });
}

async function download(port: number, bytes: number): Promise<void> {
  const socket = await open(port);
  const header = Buffer.alloc(9);
  header[0] = 0x53;
  header.writeBigUInt64BE(BigInt(bytes), 1);
  // No FIN with the request: socat gives the other direction only 0.5s (-t) after a half-close.
  socket.write(header);
  let received = 0;
  await new Promise<void>((resolve, reject) => {
    socket.on('data', (chunk: Buffer) => {
      received += chunk.length;
    });
    socket.on('end', () => {
      socket.end();
    });
    socket.on('error', reject);
    socket.on('close', () => {
      if (received === bytes) resolve();
      else reject(new Error(`received ${received} of ${bytes} bytes`));
    });
  });
}

async function throughput(port: number, streams: number): Promise<number> {
  const each = Math.floor(STREAM_BYTES / streams);
  const start = process.hrtime.bigint();
  await Promise.all(Array.from({ length: streams }, () => download(port, each)));
  const seconds = Number(process.hrtime.bigint() - start) / 1e9;
  return (each * streams) / 1024 ** 2 / seconds;
}

// socat occasionally leaves a fresh connection silent (neither data nor close); a bounded wait
// turns that into a counted stall instead of a hung benchmark.
const STALL_MS = 2000;
const stalls: Record<string, number> = {};

function roundTrip(socket: Socket, message: Buffer): Promise<void> {
  return new Promise((resolve, reject) => {
    let got = 0;
    const done = (error?: Error): void => {
      clearTimeout(timer);
      socket.off('data', onData);
      socket.off('error', done);
      socket.off('close', onClose);
      if (error === undefined) resolve();
      else reject(error);
    };
    const onData = (chunk: Buffer): void => {
      got += chunk.length;
      if (got >= message.length) done();
    };
    const onClose = (): void => {
      done(new Error('closed during a round trip'));
    };
    const timer = setTimeout(() => {
      done(new Error('stalled'));
    }, STALL_MS);
    socket.on('data', onData);
    socket.once('error', done);
    socket.once('close', onClose);
    socket.write(message);
  });
}

async function echoConnection(port: number): Promise<Socket> {
  const socket = await open(port);
  socket.write('E');
  try {
    await roundTrip(socket, MESSAGE);
  } catch (error) {
    socket.destroy();
    stalls[port] = (stalls[port] ?? 0) + 1;
    throw error;
  }
  return socket;
}

/** Like echoConnection, but a stalled connection is retried (and counted) rather than fatal. */
async function echoConnectionRetrying(port: number): Promise<Socket> {
  for (let attempt = 0; ; attempt++) {
    try {
      return await echoConnection(port);
    } catch (error) {
      if (attempt >= 3) throw error;
    }
  }
}

function closeGracefully(socket: Socket): Promise<void> {
  return new Promise((resolve) => {
    socket.once('close', () => {
      resolve();
    });
    socket.on('error', () => undefined);
    socket.end();
    socket.resume();
  });
}

async function runConcurrently(count: number, concurrency: number, task: () => Promise<void>): Promise<void> {
  let started = 0;
  const worker = async (): Promise<void> => {
    while (started < count) {
      started++;
      await task();
    }
  };
  await Promise.all(Array.from({ length: concurrency }, worker));
}

async function connectionRate(port: number, count: number): Promise<number> {
  const start = process.hrtime.bigint();
  await runConcurrently(count, CONNECT_CONCURRENCY, async () => {
    await closeGracefully(await echoConnectionRetrying(port));
  });
  return count / (Number(process.hrtime.bigint() - start) / 1e9);
}

async function latency(port: number): Promise<{ p50: number; p99: number }> {
  const socket = await echoConnection(port);
  const samples = new Float64Array(ROUNDTRIPS);
  for (let i = 0; i < ROUNDTRIPS; i++) {
    const start = process.hrtime.bigint();
    await roundTrip(socket, MESSAGE);
    samples[i] = Number(process.hrtime.bigint() - start) / 1000;
  }
  await closeGracefully(socket);
  samples.sort();
  const at = (q: number): number =>
    samples[Math.min(samples.length - 1, Math.floor(q * samples.length))] ?? NaN;
  return { p50: at(0.5), p99: at(0.99) };
}

// ---- processes ----

function rssKiB(pid: number): number {
  const status = readFileSync(`/proc/${pid}/status`, 'utf8');
  return Number(/^VmRSS:\s+(\d+)/m.exec(status)?.[1] ?? 0);
}

function descendants(pid: number): number[] {
  const children = new Map<number, number[]>();
  for (const entry of readdirSync('/proc')) {
    if (!/^\d+$/.test(entry)) continue;
    try {
      const stat = readFileSync(`/proc/${entry}/stat`, 'utf8');
      const ppid = Number(stat.slice(stat.lastIndexOf(')') + 2).split(' ')[1]);
      children.set(ppid, [...(children.get(ppid) ?? []), Number(entry)]);
    } catch {
      // The process exited while we looked.
    }
  }
  const all: number[] = [];
  const walk = (p: number): void => {
    for (const child of children.get(p) ?? []) {
      all.push(child);
      walk(child);
    }
  };
  walk(pid);
  return all;
}

function treeRssKiB(pid: number): number {
  let total = 0;
  for (const p of [pid, ...descendants(pid)]) {
    try {
      total += rssKiB(p);
    } catch {
      // Exited meanwhile.
    }
  }
  return total;
}

function fdCount(pid: number): number {
  return readdirSync(`/proc/${pid}/fd`).length;
}

function waitForLine(child: ChildProcess, pattern: RegExp, what: string): Promise<RegExpExecArray> {
  return new Promise((resolve, reject) => {
    if (child.stdout === null) {
      reject(new Error(`${what}: no stdout`));
      return;
    }
    const lines = createInterface({ input: child.stdout });
    const timer = setTimeout(() => {
      reject(new Error(`${what} did not start within 20s`));
    }, 20_000);
    lines.on('line', (line) => {
      const match = pattern.exec(line);
      if (match !== null) {
        clearTimeout(timer);
        resolve(match);
      }
    });
    child.once('exit', (code) => {
      reject(new Error(`${what} exited with ${String(code)}`));
    });
  });
}

async function freePort(): Promise<number> {
  const server = createServer();
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  const address = server.address();
  await new Promise<void>((resolve) =>
    server.close(() => {
      resolve();
    }),
  );
  if (address === null || typeof address !== 'object') throw new Error('no port');
  return address.port;
}

async function waitUntilAccepting(port: number): Promise<void> {
  for (let attempt = 0; attempt < 200; attempt++) {
    try {
      const socket = await open(port);
      socket.destroy();
      return;
    } catch {
      await new Promise((resolve) => setTimeout(resolve, 50));
    }
  }
  throw new Error(`nothing accepts on ${port} after 10s`);
}

function softNofile(): number {
  const limits = readFileSync('/proc/self/limits', 'utf8');
  const soft = /^Max open files\s+(\S+)/m.exec(limits)?.[1] ?? '0';
  return soft === 'unlimited' ? Infinity : Number(soft);
}

// ---- report ----

interface Row {
  readonly measure: string;
  readonly unit: string;
  readonly direct: number | undefined;
  readonly socat: number;
  readonly forwarder: number;
  /** forwarder/socat must be ≥ (higher is better) or ≤ (lower is better) this. */
  readonly goalVsSocat: { readonly op: '>=' | '<='; readonly value: number } | undefined;
  readonly goalVsDirect?: { readonly op: '>=' | '<='; readonly value: number };
}

function formatNumber(value: number | undefined): string {
  if (value === undefined || Number.isNaN(value)) return '-';
  return value >= 100 ? value.toFixed(0) : value.toFixed(2);
}

function printTable(rows: readonly Row[]): void {
  const header = [
    'measure',
    'unit',
    'direct',
    'socat',
    'forwarder',
    'fwd/socat',
    'fwd/direct',
    'goal',
    'met',
  ];
  const body = rows.map((row) => {
    const vsSocat = row.forwarder / row.socat;
    const vsDirect = row.direct === undefined ? undefined : row.forwarder / row.direct;
    const goals: string[] = [];
    let met = true;
    if (row.goalVsSocat !== undefined) {
      goals.push(`fwd/socat ${row.goalVsSocat.op} ${row.goalVsSocat.value}`);
      met &&=
        row.goalVsSocat.op === '>=' ? vsSocat >= row.goalVsSocat.value : vsSocat <= row.goalVsSocat.value;
    }
    if (row.goalVsDirect !== undefined && vsDirect !== undefined) {
      goals.push(`fwd/direct ${row.goalVsDirect.op} ${row.goalVsDirect.value}`);
      met &&=
        row.goalVsDirect.op === '>='
          ? vsDirect >= row.goalVsDirect.value
          : vsDirect <= row.goalVsDirect.value;
    }
    return [
      row.measure,
      row.unit,
      formatNumber(row.direct),
      formatNumber(row.socat),
      formatNumber(row.forwarder),
      formatNumber(vsSocat),
      formatNumber(vsDirect),
      goals.join(', ') || '-',
      goals.length === 0 ? '-' : met ? 'yes' : 'NO',
    ];
  });
  const widths = header.map((h, i) => Math.max(h.length, ...body.map((cells) => (cells[i] ?? '').length)));
  const line = (cells: readonly string[]): string =>
    `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
  console.log(line(header));
  console.log(`|${widths.map((w) => '-'.repeat(w + 2)).join('|')}|`);
  for (const cells of body) console.log(line(cells));
}

// ---- main ----

type Target = 'direct' | 'socat' | 'forwarder';

async function main(): Promise<void> {
  const nofile = softNofile();
  console.log(`RLIMIT_NOFILE soft limit: ${nofile} (needed: ${REQUIRED_NOFILE})`);
  if (nofile < REQUIRED_NOFILE) {
    console.error(
      `Raise the open-file limit first: ulimit -n ${REQUIRED_NOFILE * 2}, then run the bench again.`,
    );
    process.exit(1);
  }
  const children: ChildProcess[] = [];
  const cleanup = (): void => {
    for (const child of children) child.kill('SIGKILL');
  };
  process.on('exit', cleanup);

  const here = fileURLToPath(import.meta.url);
  const server = spawn(process.execPath, [here, 'server'], { stdio: ['ignore', 'pipe', 'inherit'] });
  children.push(server);
  const serverPort = Number((await waitForLine(server, /^port (\d+)$/, 'echo server'))[1]);

  const bin = fileURLToPath(new URL('../src/bin/k8s-join.js', import.meta.url));
  const nodeOptions = (process.env.BENCH_FORWARDER_NODE_OPTIONS ?? '').split(' ').filter((s) => s !== '');
  const forwarder = spawn(
    process.execPath,
    [
      ...nodeOptions,
      bin,
      'forward',
      '--listen',
      '127.0.0.1:0',
      '--upstream',
      `127.0.0.1:${serverPort}`,
      '--max-connections',
      '8192',
    ],
    { stdio: ['ignore', 'pipe', 'inherit'], env: { ...process.env, NOTIFY_SOCKET: '' } },
  );
  children.push(forwarder);
  const forwarderPort = Number(
    (await waitForLine(forwarder, /^listening on 127\.0\.0\.1:(\d+)/, 'forwarder'))[1],
  );
  const forwarderPid = forwarder.pid ?? 0;

  const socatPort = await freePort();
  const socat = spawn(
    'socat',
    [`TCP-LISTEN:${socatPort},fork,reuseaddr,bind=127.0.0.1`, `TCP:127.0.0.1:${serverPort}`],
    { stdio: ['ignore', 'ignore', 'inherit'] },
  );
  children.push(socat);
  socat.once('error', (error) => {
    console.error(`socat: ${error.message} (apt-get install -y socat)`);
    process.exit(1);
  });
  await waitUntilAccepting(socatPort);
  const socatPid = socat.pid ?? 0;

  const ports: Record<Target, number> = { direct: serverPort, socat: socatPort, forwarder: forwarderPort };
  const targets: Target[] = ['direct', 'socat', 'forwarder'];
  console.log(
    `server :${serverPort}, socat :${socatPort} (pid ${socatPid}), forwarder :${forwarderPort} (pid ${forwarderPid}); ` +
      `${ROUNDS} rounds, best kept; load average ${readFileSync('/proc/loadavg', 'utf8').split(' ').slice(0, 3).join(' ')}`,
  );

  const best = async (
    label: string,
    measure: (port: number) => Promise<number>,
    better: 'higher' | 'lower',
  ): Promise<Record<Target, number>> => {
    const result: Record<Target, number> = { direct: NaN, socat: NaN, forwarder: NaN };
    for (let round = 0; round < ROUNDS; round++) {
      for (const target of targets) {
        const value = await measure(ports[target]);
        const kept = result[target];
        if (Number.isNaN(kept) || (better === 'higher' ? value > kept : value < kept)) result[target] = value;
      }
    }
    console.log(`  ${label}: ${targets.map((t) => `${t} ${formatNumber(result[t])}`).join(', ')}`);
    return result;
  };

  const gib = (STREAM_BYTES / 1024 ** 3).toFixed(2);
  const one = await best(`throughput, 1 stream, ${gib} GiB (MiB/s)`, (port) => throughput(port, 1), 'higher');
  const many = await best(
    `throughput, ${PARALLEL_STREAMS} streams, ${gib} GiB in all (MiB/s)`,
    (port) => throughput(port, PARALLEL_STREAMS),
    'higher',
  );
  const rate = await best(
    `connections/s (${CONNECTIONS}, ${CONNECT_CONCURRENCY} at a time)`,
    (port) => connectionRate(port, CONNECTIONS),
    'higher',
  );
  const latencies: Record<Target, { p50: number; p99: number }> = {
    direct: { p50: NaN, p99: NaN },
    socat: { p50: NaN, p99: NaN },
    forwarder: { p50: NaN, p99: NaN },
  };
  for (let round = 0; round < ROUNDS; round++) {
    for (const target of targets) {
      const measured = await latency(ports[target]);
      const kept = latencies[target];
      if (Number.isNaN(kept.p99) || measured.p99 < kept.p99) latencies[target] = measured;
    }
  }
  console.log(
    `  latency (${ROUNDTRIPS} round trips, µs): ${targets.map((t) => `${t} p50 ${formatNumber(latencies[t].p50)} p99 ${formatNumber(latencies[t].p99)}`).join(', ')}`,
  );

  // Memory with IDLE open connections, each having done one round trip so both legs are up.
  const memory: Record<'socat' | 'forwarder', number> = { socat: NaN, forwarder: NaN };
  const forwarderIdleRss = rssKiB(forwarderPid);
  for (const target of ['socat', 'forwarder'] as const) {
    const sockets: Socket[] = [];
    await runConcurrently(IDLE, 32, async () => {
      sockets.push(await echoConnectionRetrying(ports[target]));
    });
    await new Promise((resolve) => setTimeout(resolve, 500));
    memory[target] = (target === 'socat' ? treeRssKiB(socatPid) : rssKiB(forwarderPid)) / 1024;
    if (target === 'socat')
      console.log(`  socat processes with ${IDLE} connections: ${1 + descendants(socatPid).length}`);
    await Promise.all(sockets.map(closeGracefully));
  }
  console.log(
    `  RSS with ${IDLE} idle connections (MiB): socat ${formatNumber(memory.socat)}, forwarder ${formatNumber(memory.forwarder)} (forwarder with none: ${formatNumber(forwarderIdleRss / 1024)})`,
  );

  // Descriptor leak check through the forwarder: the count after must match the count before.
  await new Promise((resolve) => setTimeout(resolve, 500));
  const fdsBefore = fdCount(forwarderPid);
  const fdStart = process.hrtime.bigint();
  await runConcurrently(FD_CONNECTIONS, 64, async () => {
    await closeGracefully(await echoConnectionRetrying(forwarderPort));
  });
  const fdSeconds = Number(process.hrtime.bigint() - fdStart) / 1e9;
  let fdsAfter = fdCount(forwarderPid);
  for (let i = 0; i < 50 && fdsAfter > fdsBefore; i++) {
    await new Promise((resolve) => setTimeout(resolve, 100));
    fdsAfter = fdCount(forwarderPid);
  }
  console.log(
    `  forwarder descriptors: ${fdsBefore} before, ${fdsAfter} after ${FD_CONNECTIONS} connections (${formatNumber(FD_CONNECTIONS / fdSeconds)}/s, 64 at a time); RSS after ${formatNumber(rssKiB(forwarderPid) / 1024)} MiB`,
  );

  console.log('');
  printTable([
    {
      measure: `throughput 1 stream`,
      unit: 'MiB/s',
      ...one,
      goalVsSocat: { op: '>=', value: 1 },
      goalVsDirect: { op: '>=', value: 0.6 },
    },
    {
      measure: `throughput ${PARALLEL_STREAMS} streams`,
      unit: 'MiB/s',
      ...many,
      goalVsSocat: { op: '>=', value: 1 },
      goalVsDirect: { op: '>=', value: 0.6 },
    },
    { measure: 'connection rate', unit: 'conn/s', ...rate, goalVsSocat: { op: '>=', value: 3 } },
    {
      measure: 'latency p50',
      unit: 'µs',
      direct: latencies.direct.p50,
      socat: latencies.socat.p50,
      forwarder: latencies.forwarder.p50,
      goalVsSocat: undefined,
    },
    {
      measure: 'latency p99',
      unit: 'µs',
      direct: latencies.direct.p99,
      socat: latencies.socat.p99,
      forwarder: latencies.forwarder.p99,
      goalVsSocat: { op: '<=', value: 1 },
    },
    {
      measure: `RSS, ${IDLE} idle conns`,
      unit: 'MiB',
      direct: undefined,
      socat: memory.socat,
      forwarder: memory.forwarder,
      goalVsSocat: { op: '<=', value: 0.1 },
    },
  ]);
  console.log(
    `stalled connections (no answer within ${STALL_MS}ms, retried): ${targets.map((t) => `${t} ${stalls[ports[t]] ?? 0}`).join(', ')}`,
  );
  console.log(`fd leak: ${fdsAfter - fdsBefore} descriptors after ${FD_CONNECTIONS} connections (goal 0)`);

  forwarder.kill('SIGTERM');
  await new Promise((resolve) => forwarder.once('exit', resolve));
  cleanup();
}

if (process.argv[2] === 'server') {
  runServer();
} else {
  await main();
  process.exit(0);
}
