// `npm run bench:tunnel`: what konnectivity costs kubectl. On the real-pods flow (the control plane
// as pods on the infra node), one routable worker; the same measurements twice in one run, first
// with the apiserver reaching the kubelet through konnectivity (agent → VIP:8132 → forwarder →
// proxy server → apiserver), then, after `create --konnectivity=false`, dialling the kubelet
// directly over the routable network (the reference):
//   - `kubectl exec shell -- true` round trips (the kubectl process start-up is in both),
//   - `kubectl port-forward` throughput: 64 MiB from a pod's `nc` to a client in the admin's namespace.
// Prints each figure and the ratio konnectivity / direct; writes bench-results/tunnel.json.
// Figures, never assertions.
import { mkdirSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import {
  REPO_ROOT,
  SHELL_IMAGE,
  cleanupStaleTestResources,
  eventually,
  joinCommandArgs,
  runCommand,
  shellPod,
  startHostedOnInfra,
  type HostedOnInfra,
  type JoinWorker,
} from '../harness/index.js';

const EXECS = Number(process.env.BENCH_EXECS ?? '15');
const BYTES = 64 * 1_048_576;
const NAME = 'tunnel';
const NAMESPACE = 'bench-tunnel';

let cluster: HostedOnInfra | undefined;
let worker: JoinWorker | undefined;
let dir = '';

function median(values: readonly number[]): number {
  const sorted = [...values].sort((a, b) => a - b);
  return sorted[Math.floor(sorted.length / 2)] ?? 0;
}

async function must(what: string, result: Promise<{ exitCode: number; stdout: string; stderr: string }>) {
  const done = await result;
  if (done.exitCode !== 0) throw new Error(`${what}: exit ${done.exitCode}\n${done.stdout}${done.stderr}`);
  return done;
}

/** exec round trips (ms, median of EXECS after one warm-up) and port-forward MiB/s. */
async function measure(hosted: HostedOnInfra): Promise<{ execMs: number; forwardMiBps: number }> {
  await eventually('kubectl exec to answer', 120_000, async () =>
    (await hosted.kubectl(['exec', 'shell', '--', 'true'])).exitCode === 0 ? true : undefined,
  );
  const times: number[] = [];
  for (let i = 0; i < EXECS; i += 1) {
    const start = performance.now();
    await must('kubectl exec', hosted.kubectl(['exec', 'shell', '--', 'true']));
    times.push(performance.now() - start);
  }
  const port = 19_000 + Math.floor(Math.random() * 500);
  const forward = hosted.kubectlCommand(['port-forward', 'pod/shell', `${String(port)}:9000`]);
  const child = execa(forward.command, forward.args, { reject: false });
  let output = '';
  child.stdout.on('data', (chunk: Buffer) => (output += chunk.toString('utf8')));
  try {
    await eventually('port-forward to listen', 30_000, () =>
      Promise.resolve(output.includes(`127.0.0.1:${String(port)}`) ? true : undefined),
    );
    // A client in the admin's namespace that reads BYTES (busybox nc may not close after its input
    // ends) and reports bytes and seconds.
    const reader = `const s=require('net').connect(${String(port)},'127.0.0.1');let n=0;const t=process.hrtime.bigint();const done=()=>{console.log(n+' '+Number(process.hrtime.bigint()-t)/1e9);process.exit(0)};s.on('data',d=>{n+=d.length;if(n>=${String(BYTES)})done()});s.on('close',done)`;
    const inside = hosted.cpNetns.command(process.execPath, ['-e', reader]);
    const read = await must(
      'port-forward read',
      runCommand(inside.command, inside.args, { timeoutMs: 120_000 }),
    );
    const [bytes, seconds] = read.stdout.trim().split(' ').map(Number) as [number, number];
    if (bytes < BYTES) throw new Error(`port-forward carried ${String(bytes)} bytes, not ${String(BYTES)}`);
    return { execMs: median(times), forwardMiBps: bytes / 1_048_576 / seconds };
  } finally {
    child.kill('SIGTERM');
    await child;
  }
}

async function main(): Promise<void> {
  await cleanupStaleTestResources();
  dir = await mkdtemp(join(tmpdir(), 'k8s-on-k8s-bench-tunnel-'));
  cluster = await startHostedOnInfra({
    name: NAME,
    namespace: NAMESPACE,
    log: (l) => {
      console.log(l);
    },
  });
  const hosted = cluster;
  const minted = await must(
    'token create',
    hosted.cli([
      ...['token', 'create', '--server', hosted.joinUrl, '--kubeconfig', hosted.kubeconfigPath],
      ...['--uses', '1', '--output', 'json'],
    ]),
  );
  worker = await hosted.startWorker({ index: 1, hostname: 'bench-worker', dir, extraImages: [SHELL_IMAGE] });
  const { token } = JSON.parse(minted.stdout) as { token: string };
  await must('k8s-join', worker.agent(joinCommandArgs(hosted, token, '4m'), 300_000));
  // nc -l serves BYTES to each connection, again and again.
  const pod = shellPod('shell', `while true; do head -c ${String(BYTES)} /dev/zero | nc -l -p 9000; done`);
  await must('apply', hosted.kubectl(['apply', '-f', '-'], { input: JSON.stringify(pod) }));
  await must(
    'wait',
    hosted.kubectl(['wait', '--for=condition=Ready', 'pod/shell', '--timeout=180s'], { timeoutMs: 200_000 }),
  );

  const konnectivity = await measure(hosted);
  console.log(
    `konnectivity: exec ${konnectivity.execMs.toFixed(0)} ms, port-forward ${konnectivity.forwardMiBps.toFixed(1)} MiB/s`,
  );
  await must(
    'create --konnectivity=false',
    hosted.cli(
      [
        ...['create', NAME, '-n', NAMESPACE, '--host', hosted.host, '--konnectivity=false'],
        ...['--api-node-port', '30443', '--join-node-port', '30843'],
        ...['--kubeconfig', hosted.infraKubeconfigPath, '--wait', '4m'],
      ],
      360_000,
    ),
  );
  // The old apiserver pod (with its proxy server) may still be terminating behind the Service.
  await sleep(15_000);
  const direct = await measure(hosted);
  console.log(
    `direct:       exec ${direct.execMs.toFixed(0)} ms, port-forward ${direct.forwardMiBps.toFixed(1)} MiB/s`,
  );
  const result = {
    date: new Date().toISOString(),
    execs: EXECS,
    forwardBytes: BYTES,
    konnectivity,
    direct,
    execLatencyRatio: konnectivity.execMs / direct.execMs,
    forwardThroughputRatio: konnectivity.forwardMiBps / direct.forwardMiBps,
  };
  console.log(
    `\nkubectl exec round trip through konnectivity: ${result.execLatencyRatio.toFixed(2)}× the direct one` +
      `\nport-forward throughput through konnectivity: ${result.forwardThroughputRatio.toFixed(2)} of the direct one`,
  );
  mkdirSync(join(REPO_ROOT, 'bench-results'), { recursive: true });
  writeFileSync(join(REPO_ROOT, 'bench-results', 'tunnel.json'), `${JSON.stringify(result, null, 2)}\n`);
}

try {
  await main();
} finally {
  await worker?.stop();
  await cluster?.stop();
  if (dir !== '') await rm(dir, { recursive: true, force: true });
}
