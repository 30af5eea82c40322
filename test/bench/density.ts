// `npm run bench:density`: how many hosted control planes fit on one machine, and what each costs
// running. On the real-pods flow (the infra cluster's one node on this machine), `k8s-on-k8s create`
// is run as an admin would, one control plane after another, until BENCH_CONTROL_PLANES (default 30)
// are Ready or a budget is hit: the machine's available memory below BENCH_MIN_FREE_MIB, the node's
// CPU busier than BENCH_MAX_BUSY (a fraction of its cores, over 20 s after a create), or a create
// not Ready within its --wait. Then, with all of them running and settled: memory per control plane
// (the sum of its pods' cgroup working sets, and per component), idle CPU per control plane (their
// cgroups' CPU time over a minute), create → Ready for the 1st, 10th and 30th, and
// `kubectl get --raw /readyz` latency p50/p99 across all of them. References measured in the same
// run: the first control plane alone (memory, idle CPU) and the same kubectl against the infra
// apiserver (readyz). Writes bench-results/density.json. Figures, never assertions.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { COMPONENTS, COMPONENT_LABEL, CONTROL_PLANE_LABEL } from '@k8s-on-k8s/server';
import {
  K8S_ON_K8S_BIN,
  REPO_ROOT,
  cleanupStaleTestResources,
  importControlPlaneImages,
  isPodReady,
  kubeBinary,
  runCommand,
  startInfraCluster,
  type InfraCluster,
} from '../harness/index.js';

const TARGET = Number(process.env.BENCH_CONTROL_PLANES ?? '30');
const MIN_FREE_MIB = Number(process.env.BENCH_MIN_FREE_MIB ?? '2048');
const MAX_BUSY = Number(process.env.BENCH_MAX_BUSY ?? '0.9');
const WAIT = process.env.BENCH_WAIT ?? '5m';
const SETTLE_MS = Number(process.env.BENCH_SETTLE_MS ?? '60000');
const IDLE_WINDOW_MS = Number(process.env.BENCH_IDLE_WINDOW_MS ?? '60000');
const READYZ_ROUNDS = Number(process.env.BENCH_READYZ_ROUNDS ?? '10');
const NAMESPACE = 'density';
/**
 * A classroom control plane's requests: what each component idles at (measured by this benchmark
 * alone: etcd 10–14 mCPU and 24 MiB, the apiserver pod 21–24 mCPU of which its konnectivity sidecar
 * requests 20m, 163–170 MiB; controller-manager 12, 44–46; scheduler 3.5, 17–19; join server 4–5,
 * 36), so thirty fit a 2-core node by requests; memory limits stay at the defaults.
 */
const CLASSROOM = {
  etcd: { requests: { cpu: '10m', memory: '32Mi' } },
  apiserver: { requests: { cpu: '5m', memory: '192Mi' } },
  'controller-manager': { requests: { cpu: '10m', memory: '48Mi' } },
  scheduler: { requests: { cpu: '3m', memory: '24Mi' } },
  'join-server': { requests: { cpu: '4m', memory: '40Mi' } },
};
const COMPONENT_RESOURCES = process.env.BENCH_COMPONENT_RESOURCES ?? JSON.stringify(CLASSROOM);

function log(line: string): void {
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
}
const MiB = 1_048_576;
const percentile = (sorted: readonly number[], p: number): number =>
  sorted[Math.min(sorted.length - 1, Math.ceil((p / 100) * sorted.length) - 1)] ?? Number.NaN;
const mean = (values: readonly number[]): number =>
  values.reduce((a, b) => a + b, 0) / Math.max(1, values.length);

/** This machine's MemAvailable (the node is a namespace of it: its pods use this memory). */
function memAvailableMiB(): number {
  const line = /^MemAvailable:\s+(\d+) kB$/m.exec(readFileSync('/proc/meminfo', 'utf8'));
  return Number(line?.[1] ?? Number.NaN) / 1024;
}
/** The machine's busy and total CPU jiffies so far (/proc/stat). */
function cpuTimes(): { busy: number; total: number } {
  const fields = (readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? '')
    .trim()
    .split(/\s+/)
    .slice(1)
    .map(Number);
  const total = fields.reduce((a, b) => a + b, 0);
  const idle = (fields[3] ?? 0) + (fields[4] ?? 0);
  return { busy: total - idle, total };
}
async function busyFraction(windowMs: number): Promise<number> {
  const before = cpuTimes();
  await sleep(windowMs);
  const after = cpuTimes();
  return (after.busy - before.busy) / Math.max(1, after.total - before.total);
}

let infra: InfraCluster | undefined;
let dir: string | undefined;
try {
  await cleanupStaleTestResources();
  dir = await mkdtemp(join(tmpdir(), 'k8s-on-k8s-density-'));
  infra = await startInfraCluster({ name: 'density', volumes: TARGET, maxPods: 250 });
  const cluster = infra;
  await importControlPlaneImages(cluster, log);
  const core = cluster.api.kubeConfig().makeApiClient(CoreV1Api);
  await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
  const infraKubeconfig = join(dir, 'infra.kubeconfig');
  await writeFile(
    infraKubeconfig,
    cluster.api.adminKubeconfig.replace(cluster.api.url, cluster.exposedApiUrl),
    { mode: 0o600 },
  );
  const workdir = dir;
  const inAdminNamespace = (command: string, args: readonly string[], timeoutMs: number) => {
    const inside = cluster.cpNetns.command(command, [...args]);
    return runCommand(inside.command, inside.args, { cwd: workdir, timeoutMs });
  };
  const kubectl = kubeBinary('kubectl');
  const podsOf = async (name: string): Promise<V1Pod[]> =>
    (await core.listNamespacedPod({ namespace: NAMESPACE, labelSelector: `${CONTROL_PLANE_LABEL}=${name}` }))
      .items;
  /** Memory (MiB, by component) and CPU seconds of a control plane's pods now. */
  const usage = async (name: string) => {
    const byComponent: Record<string, number> = {};
    const cpuByComponent: Record<string, number> = {};
    for (const pod of await podsOf(name)) {
      const uid = pod.metadata?.uid ?? '';
      const component = pod.metadata?.labels?.[COMPONENT_LABEL] ?? 'other';
      const memory = await cluster.podMemory(uid);
      byComponent[component] = (byComponent[component] ?? 0) + memory.workingSetBytes / MiB;
      cpuByComponent[component] = (cpuByComponent[component] ?? 0) + (await cluster.podCpuSeconds(uid));
    }
    const sum = (r: Record<string, number>) => Object.values(r).reduce((a, b) => a + b, 0);
    return { byComponent, totalMiB: sum(byComponent), cpuByComponent, cpuSeconds: sum(cpuByComponent) };
  };
  /** mCPU of each control plane over IDLE_WINDOW_MS, in all and by component. */
  const idleMilliCpu = async (
    names: readonly string[],
  ): Promise<Map<string, { total: number; byComponent: Record<string, number> }>> => {
    const before = new Map<string, Record<string, number>>();
    for (const name of names) before.set(name, (await usage(name)).cpuByComponent);
    const start = Date.now();
    await sleep(IDLE_WINDOW_MS);
    const out = new Map<string, { total: number; byComponent: Record<string, number> }>();
    // Reading takes a while too: each window is from its first read to the read after.
    for (const name of names) {
      const after = (await usage(name)).cpuByComponent;
      const seconds = (Date.now() - start) / 1000;
      const byComponent = Object.fromEntries(
        Object.entries(after).map(([c, s]) => [c, ((s - (before.get(name)?.[c] ?? s)) / seconds) * 1000]),
      );
      out.set(name, { total: Object.values(byComponent).reduce((a, b) => a + b, 0), byComponent });
    }
    return out;
  };

  const ready: string[] = [];
  const createMs: number[] = [];
  let stoppedBy = 'target';
  let alone:
    | {
        memoryMiB: number;
        byComponent: Record<string, number>;
        idleMilliCpu: number;
        idleMilliCpuByComponent: Record<string, number>;
      }
    | undefined;
  for (let i = 1; i <= TARGET; i += 1) {
    const free = memAvailableMiB();
    if (free < MIN_FREE_MIB) {
      stoppedBy = `memory: ${free.toFixed(0)} MiB available < ${MIN_FREE_MIB}`;
      break;
    }
    const name = `class-${String(i).padStart(2, '0')}`;
    const start = Date.now();
    const created = await inAdminNamespace(
      process.execPath,
      [
        K8S_ON_K8S_BIN,
        ...['create', name, '-n', NAMESPACE, '--host', cluster.nodeAddress],
        ...['--kubeconfig', infraKubeconfig, '--wait', WAIT, '--component-resources', COMPONENT_RESOURCES],
      ],
      10 * 60_000,
    );
    const ms = Date.now() - start;
    if (created.exitCode !== 0) {
      stoppedBy = `readiness: create ${name} exited ${created.exitCode}: ${(created.stderr || created.stdout).trim().split('\n').slice(-3).join(' | ')}`;
      break;
    }
    ready.push(name);
    createMs.push(ms);
    const busy = await busyFraction(20_000);
    log(
      `${name} Ready in ${(ms / 1000).toFixed(1)} s; ${ready.length} running; node ${(busy * 100).toFixed(0)}% busy, ${memAvailableMiB().toFixed(0)} MiB available`,
    );
    if (i === 1) {
      await sleep(SETTLE_MS);
      const u = await usage(name);
      const idle = (await idleMilliCpu([name])).get(name);
      const cpu = idle?.total ?? Number.NaN;
      alone = {
        memoryMiB: u.totalMiB,
        byComponent: u.byComponent,
        idleMilliCpu: cpu,
        idleMilliCpuByComponent: idle?.byComponent ?? {},
      };
      log(
        `  alone: ${u.totalMiB.toFixed(0)} MiB (${Object.entries(u.byComponent)
          .map(([c, m]) => `${c} ${m.toFixed(0)}`)
          .join(', ')}), ${cpu.toFixed(1)} mCPU idle`,
      );
    }
    if (busy > MAX_BUSY) {
      stoppedBy = `cpu: the node ${(busy * 100).toFixed(0)}% busy > ${(MAX_BUSY * 100).toFixed(0)}%`;
      break;
    }
  }

  log(`${ready.length} control planes Ready (stopped by ${stoppedBy}); settling ${SETTLE_MS / 1000} s`);
  await sleep(SETTLE_MS);
  const notReady = [];
  for (const name of ready) {
    const pods = await podsOf(name);
    if (pods.length < COMPONENTS.length || !pods.every(isPodReady)) notReady.push(name);
  }
  const memories = new Map<string, Awaited<ReturnType<typeof usage>>>();
  for (const name of ready) memories.set(name, await usage(name));
  const cpu = await idleMilliCpu(ready);
  const nodeBusy = await busyFraction(20_000);

  // readyz through each control plane's NodePort, as a user's kubectl does; the infra apiserver's
  // own /readyz by the same kubectl, interleaved, is the reference.
  const hosted: number[] = [];
  const reference: number[] = [];
  let readyzFailures = 0;
  const timed = async (kubeconfig: string): Promise<number | undefined> => {
    const start = process.hrtime.bigint();
    const r = await inAdminNamespace(
      kubectl,
      ['--kubeconfig', kubeconfig, 'get', '--raw', '/readyz'],
      30_000,
    );
    const ms = Number(process.hrtime.bigint() - start) / 1e6;
    return r.exitCode === 0 && r.stdout.trim() === 'ok' ? ms : undefined;
  };
  for (let round = 0; round < READYZ_ROUNDS; round += 1) {
    for (const name of ready) {
      const h = await timed(join(workdir, `${name}.kubeconfig`));
      if (h === undefined) readyzFailures += 1;
      else hosted.push(h);
      const r = await timed(infraKubeconfig);
      if (r !== undefined) reference.push(r);
    }
  }
  hosted.sort((a, b) => a - b);
  reference.sort((a, b) => a - b);

  const totals = [...memories.values()].map((m) => m.totalMiB);
  const byComponent = Object.fromEntries(
    COMPONENTS.map((c) => [c, mean([...memories.values()].map((m) => m.byComponent[c] ?? 0))]),
  );
  const nth = (n: number): number | null => createMs[n - 1] ?? null;
  const result = {
    date: new Date().toISOString(),
    target: TARGET,
    ready: ready.length,
    notReadyAfterSettling: notReady,
    stoppedBy,
    componentResources: JSON.parse(COMPONENT_RESOURCES) as unknown,
    memoryPerControlPlaneMiB: mean(totals),
    memoryPerControlPlaneMaxMiB: Math.max(...totals),
    memoryByComponentMiB: byComponent,
    idleCpuMillicoresPerControlPlane: mean([...cpu.values()].map((c) => c.total)),
    idleCpuMillicoresPerControlPlaneMax: Math.max(...[...cpu.values()].map((c) => c.total)),
    idleCpuMillicoresByComponent: Object.fromEntries(
      COMPONENTS.map((c) => [c, mean([...cpu.values()].map((v) => v.byComponent[c] ?? 0))]),
    ),
    nodeBusyWithAll: nodeBusy,
    alone: alone ?? null,
    memoryVsAlone: alone === undefined ? null : mean(totals) / alone.memoryMiB,
    createToReadyMs: { first: nth(1), tenth: nth(10), thirtieth: nth(30), last: createMs.at(-1) ?? null },
    readyzP50Ms: percentile(hosted, 50),
    readyzP99Ms: percentile(hosted, 99),
    readyzSamples: hosted.length,
    readyzFailures,
    infraReadyzP50Ms: percentile(reference, 50),
    infraReadyzP99Ms: percentile(reference, 99),
    readyzP99VsInfra: percentile(hosted, 99) / percentile(reference, 99),
    memAvailableMiBAtEnd: memAvailableMiB(),
  };
  console.log('');
  console.log(`${result.ready} of ${TARGET} control planes Ready at once (stopped by ${stoppedBy})`);
  console.log(
    `memory per control plane: ${result.memoryPerControlPlaneMiB.toFixed(0)} MiB on average, ${result.memoryPerControlPlaneMaxMiB.toFixed(0)} MiB at most (${Object.entries(
      byComponent,
    )
      .map(([c, m]) => `${c} ${m.toFixed(0)}`)
      .join(
        ', ',
      )}); alone ${alone?.memoryMiB.toFixed(0) ?? '?'} MiB (${result.memoryVsAlone?.toFixed(2) ?? '?'}×)`,
  );
  console.log(
    `idle CPU per control plane: ${result.idleCpuMillicoresPerControlPlane.toFixed(1)} mCPU on average, ${result.idleCpuMillicoresPerControlPlaneMax.toFixed(1)} at most (${Object.entries(
      result.idleCpuMillicoresByComponent,
    )
      .map(([c, m]) => `${c} ${m.toFixed(1)}`)
      .join(
        ', ',
      )}); alone ${alone?.idleMilliCpu.toFixed(1) ?? '?'}; node ${(nodeBusy * 100).toFixed(0)}% busy`,
  );
  console.log(
    `create → Ready: 1st ${((nth(1) ?? NaN) / 1000).toFixed(1)} s, 10th ${((nth(10) ?? NaN) / 1000).toFixed(1)} s, 30th ${((nth(30) ?? NaN) / 1000).toFixed(1)} s`,
  );
  console.log(
    `kubectl get --raw /readyz: p50 ${result.readyzP50Ms.toFixed(0)} ms, p99 ${result.readyzP99Ms.toFixed(0)} ms over ${hosted.length} (${readyzFailures} failed); the infra apiserver p50 ${result.infraReadyzP50Ms.toFixed(0)}, p99 ${result.infraReadyzP99Ms.toFixed(0)} ms (${result.readyzP99VsInfra.toFixed(2)}×)`,
  );
  mkdirSync(`${REPO_ROOT}/bench-results`, { recursive: true });
  writeFileSync(`${REPO_ROOT}/bench-results/density.json`, `${JSON.stringify(result, null, 2)}\n`);
  console.log('wrote bench-results/density.json');
} finally {
  await infra?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
}
