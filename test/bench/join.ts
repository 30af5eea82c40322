// npm run bench:join — joins per second and p50/p99 latency of k8s-join-server for 1,000 joins at
// concurrency 50, with the file store and the kubernetes store, against a real kube-apiserver.
// The reference is the raw rate at which the same apiserver creates Secrets for the same
// least-privilege identity over a keep-alive pool at the same concurrency, measured in the same run
// (before and after the join runs; the table uses their mean). Every join creates one bootstrap
// Secret, so that rate is the ceiling; goal: kubernetes store ≥ 0.8 of it.
//
// The server runs as its own process (the built bin), as in production, so its event loop does not
// share a thread with the load generator. All processes share this machine's cores.
import { execFileSync, spawn, type ChildProcess } from 'node:child_process';
import { once } from 'node:events';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { performance } from 'node:perf_hooks';
import { Agent, Pool, request } from 'undici';
import {
  buildBootstrapTokenSecret,
  generateBootstrapToken,
  issueCertificate,
  parseCreatedToken,
  resolveKubeconfig,
  parseKubeconfig,
} from '@k8s-on-k8s/shared';
import { BOOTSTRAPPERS_GROUP, NODE_BOOTSTRAPPERS_GROUP_PREFIX } from '@k8s-on-k8s/server';
import {
  applyJoinServerRbac,
  joinRequestBody,
  prepareJoinServerFiles,
  procStatFields,
  startLocalKubeCluster,
  type LocalKubeCluster,
} from '../harness/index.js';

const TOTAL = Number(process.env.BENCH_JOINS ?? 1000);
const CONCURRENCY = Number(process.env.BENCH_CONCURRENCY ?? 50);
const BIN = new URL('../../../packages/server/dist/src/bin/k8s-join-server.js', import.meta.url).pathname;

interface Result {
  readonly name: string;
  readonly ok: number;
  readonly failed: number;
  readonly seconds: number;
  readonly p50: number;
  readonly p99: number;
  /** CPU the join server process spent per request during the run (joins only). */
  readonly serverCpuMs?: number;
}

function percentile(sorted: readonly number[], p: number): number {
  if (sorted.length === 0) return Number.NaN;
  return sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
}

/** Runs `total` calls of `one` with `concurrency` in flight; `one` resolves true on success. */
async function drive(name: string, one: (i: number) => Promise<boolean>): Promise<Result> {
  const latencies: number[] = [];
  let next = 0;
  let ok = 0;
  let failed = 0;
  const started = performance.now();
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      for (let i = next++; i < TOTAL; i = next++) {
        const t0 = performance.now();
        const success = await one(i).catch(() => false);
        latencies.push(performance.now() - t0);
        if (success) ok++;
        else failed++;
      }
    }),
  );
  const seconds = (performance.now() - started) / 1000;
  latencies.sort((a, b) => a - b);
  return { name, ok, failed, seconds, p50: percentile(latencies, 50), p99: percentile(latencies, 99) };
}

/** The reference: Secret creates straight to the apiserver as the join server's identity. */
async function rawSecretCreates(
  cp: LocalKubeCluster,
  kubeconfigPath: string,
  label: string,
): Promise<Result> {
  const kc = resolveKubeconfig(parseKubeconfig(await readFile(kubeconfigPath, 'utf8')));
  const pool = new Pool(cp.url, {
    connections: 64,
    connect: { ca: cp.ca.certPem, cert: kc.clientCertPem, key: kc.clientKeyPem },
  });
  try {
    return await drive(label, async () => {
      const token = generateBootstrapToken();
      const secret = buildBootstrapTokenSecret({
        id: token.id,
        secret: token.secret,
        expiresAt: new Date(Date.now() + 900_000),
        // The shape the join server's admission policy lets its identity create.
        extraGroups: [BOOTSTRAPPERS_GROUP, `${NODE_BOOTSTRAPPERS_GROUP_PREFIX}bench`],
      });
      const response = await pool.request({
        method: 'POST',
        path: '/api/v1/namespaces/kube-system/secrets',
        headers: { 'content-type': 'application/json', accept: 'application/json' },
        body: JSON.stringify(secret),
      });
      await response.body.text();
      return response.statusCode === 201;
    });
  } finally {
    await pool.close();
  }
}

const CLOCK_TICKS_PER_SECOND = Number(execFileSync('getconf', ['CLK_TCK'], { encoding: 'utf8' }).trim());

/** User + system CPU of a process so far, in ms (/proc/PID/stat utime and stime). */
function processCpuMs(pid: number): number {
  const fields = procStatFields(pid);
  const ticks = Number(fields[11]) + Number(fields[12]);
  return (ticks * 1000) / CLOCK_TICKS_PER_SECOND;
}

async function startServer(flags: readonly string[]): Promise<{ child: ChildProcess; url: string }> {
  // Logs at info, as in production; read (and dropped) here so the pipe never fills.
  // BENCH_SERVER_NODE_OPTIONS (e.g. --cpu-prof) goes to the server process only.
  const nodeOptions = (process.env.BENCH_SERVER_NODE_OPTIONS ?? '').split(' ').filter((s) => s !== '');
  const child = spawn(process.execPath, [...nodeOptions, BIN, ...flags], {
    stdio: ['ignore', 'pipe', 'inherit'],
  });
  let buffered = '';
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout.on('data', (chunk: Buffer) => {
      if (buffered.length < 100_000) buffered += chunk.toString();
      const match = /"msg":"listening"/.test(buffered) ? /"url":"([^"]+)"/.exec(buffered) : null;
      if (match?.[1] !== undefined) resolve(match[1]);
    });
    child.once('exit', (code) => {
      reject(new Error(`k8s-join-server exited with ${String(code)}: ${buffered}`));
    });
  });
  return { child, url };
}

async function benchStore(
  cp: LocalKubeCluster,
  baseFlags: readonly string[],
  store: string,
  label: string,
  uses: number,
): Promise<Result> {
  const { child, url } = await startServer([...baseFlags, '--store', store, '--rate-limit-per-ip', '0']);
  const admin = await issueCertificate(cp.ca, {
    commonName: 'bench',
    organizations: ['system:masters'],
    usage: 'client',
  });
  const agent = new Agent({
    connections: CONCURRENCY,
    connect: { ca: cp.ca.certPem, cert: admin.certPem, key: admin.keyPem },
  });
  try {
    const mint = async (body: Record<string, unknown>): Promise<string> => {
      const response = await request(`${url}/v1/tokens`, {
        method: 'POST',
        body: JSON.stringify(body),
        headers: { 'content-type': 'application/json' },
        dispatcher: agent,
      });
      return parseCreatedToken(await response.body.json()).token;
    };
    const join = async (token: string, nodeName: string): Promise<boolean> => {
      const response = await request(`${url}/v1/join`, {
        method: 'POST',
        body: JSON.stringify(joinRequestBody(nodeName)),
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        dispatcher: agent,
      });
      await response.body.text();
      return response.statusCode === 200;
    };
    // Warm-up: open the client connections and the server's apiserver pool.
    const warm = await mint({ uses: 0 });
    await Promise.all(Array.from({ length: CONCURRENCY }, (_, i) => join(warm, `warm-${i}`)));
    const token = await mint({ uses, ttl: '1h' });
    const pid = child.pid ?? 0;
    const cpuBefore = processCpuMs(pid);
    const result = await drive(label, (i) => join(token, `bench-${i}`));
    return { ...result, serverCpuMs: (processCpuMs(pid) - cpuBefore) / TOTAL };
  } finally {
    await agent.close();
    child.kill('SIGTERM');
    await once(child, 'exit');
  }
}

function row(name: string, result: Result, reference?: number): string {
  const rate = result.ok / result.seconds;
  const ratio = reference === undefined ? '' : (rate / reference).toFixed(2);
  const cpu = result.serverCpuMs === undefined ? '' : result.serverCpuMs.toFixed(2);
  return `| ${name.padEnd(46)} | ${String(result.ok).padStart(5)} | ${String(result.failed).padStart(6)} | ${rate.toFixed(0).padStart(6)} | ${result.p50.toFixed(1).padStart(6)} | ${result.p99.toFixed(1).padStart(6)} | ${ratio.padStart(6)} | ${cpu.padStart(13)} |`;
}

async function main(): Promise<void> {
  const cp = await startLocalKubeCluster({ name: 'bench-join' });
  const dir = await mkdtemp(join(tmpdir(), 'bench-join-'));
  try {
    await applyJoinServerRbac(cp);
    const files = await prepareJoinServerFiles(cp, dir);
    const baseFlags = [...files.baseFlags, '--api-endpoint', cp.url];
    console.log(`# ${TOTAL} requests per case at concurrency ${CONCURRENCY}; kube-apiserver ${cp.url}`);
    // The apiserver and etcd are slow for their first thousand writes (caches, JIT of nothing, Go
    // heap growth): one unreported raw run warms them up.
    await rawSecretCreates(cp, files.kubeconfigPath, 'warm-up');

    const cases = [
      {
        name: `join, file store, token uses=${TOTAL}`,
        store: `file:${join(dir, 'tokens.json')}`,
        uses: TOTAL,
      },
      { name: 'join, file store, unlimited token', store: `file:${join(dir, 'tokens.json')}`, uses: 0 },
      { name: `join, kubernetes store, token uses=${TOTAL}`, store: 'kubernetes', uses: TOTAL },
      { name: 'join, kubernetes store, unlimited token', store: 'kubernetes', uses: 0 },
    ];
    const lines: string[] = [];
    const ratios = new Map<string, number>();
    for (const c of cases) {
      // The reference is measured right before each case, so both see the same machine load.
      const raw = await rawSecretCreates(cp, files.kubeconfigPath, 'raw');
      const result = await benchStore(cp, baseFlags, c.store, c.name, c.uses);
      const reference = raw.ok / raw.seconds;
      ratios.set(c.name, result.ok / result.seconds / reference);
      lines.push(row('raw apiserver Secret create (reference)', raw), row(c.name, result, reference));
    }

    console.log('');
    console.log(
      `| case                                           |    ok | failed |  per s | p50 ms | p99 ms | vs raw | server CPU ms |`,
    );
    console.log(
      `|------------------------------------------------|------:|-------:|-------:|-------:|-------:|-------:|--------------:|`,
    );
    for (const line of lines) console.log(line);
    console.log('');
    for (const c of cases.filter((x) => x.store === 'kubernetes')) {
      const ratio = ratios.get(c.name) ?? 0;
      console.log(
        `${c.name}: ${ratio.toFixed(2)} of the raw Secret-create rate (goal >= 0.80: ${ratio >= 0.8 ? 'met' : 'NOT met'})`,
      );
    }
  } finally {
    await cp.stop();
    await rm(dir, { recursive: true, force: true });
  }
}

await main();
