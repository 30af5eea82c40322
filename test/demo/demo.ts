// `npm run demo`: the whole story on this machine, as a newcomer's first command. An infra cluster
// (a real etcd + kube-apiserver), a hosted control plane made by `k8s-on-k8s create` and run from
// what it stored there, a join token, a worker (systemd as PID 1 in its own network namespace) that
// joins with `k8s-join` through the VIP, its Node in the hosted cluster; then everything is undone.
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, type KubeConfig } from '@kubernetes/client-node';
import {
  AGENT_EXECUTABLE,
  KUBE_BINARIES,
  REPO_ROOT,
  cleanupStaleTestResources,
  ensureWorkerRoot,
  formatNodeTable,
  kubeBinary,
  startHostedCluster,
  startJoinWorker,
  type HostedCluster,
  type JoinWorker,
  type NodeBootstrapMode,
  joinCommandArgs,
  nodeBootstrapModeFromEnv,
} from '../harness/index.js';

const NAME = 'demo';
const NAMESPACE = 'team-a';
const MODE: NodeBootstrapMode = nodeBootstrapModeFromEnv();

const started = Date.now();
const phases: [string, number][] = [];
function say(line: string): void {
  console.log(`[${((Date.now() - started) / 1000).toFixed(1).padStart(5)}s] ${line}`);
}
async function phase<T>(name: string, run: () => Promise<T>): Promise<T> {
  say(`── ${name}`);
  const start = Date.now();
  const result = await run();
  phases.push([name, Date.now() - start]);
  return result;
}

function refuse(message: string): never {
  console.error(`npm run demo: ${message}`);
  process.exit(1);
}

function runInherited(command: string, args: readonly string[]): void {
  const result = spawnSync(command, args, { cwd: REPO_ROOT, stdio: 'inherit' });
  if (result.status !== 0) refuse(`${command} ${args.join(' ')} failed (exit ${result.status ?? 'signal'})`);
}

if (process.platform !== 'linux')
  refuse(`needs Linux (network namespaces, systemd workers); this is ${process.platform}`);
if (process.getuid?.() !== 0) {
  refuse('needs root: it creates network namespaces and boots systemd workers. Run: sudo npm run demo');
}

let cluster: HostedCluster | undefined;
const workers: JoinWorker[] = [];
let dir = '';
let cleaning: Promise<void> | undefined;
async function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    for (const worker of workers.splice(0)) await worker.stop().catch(() => undefined);
    await cluster?.stop().catch(() => undefined);
    if (dir !== '') await rm(dir, { recursive: true, force: true });
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    say(`${signal}: cleaning up`);
    void cleanUp().then(() => process.exit(130));
  });
}

async function waitForNode(kubeConfig: KubeConfig, name: string, timeoutMs: number): Promise<boolean> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    if (
      await core
        .readNode({ name })
        .then(() => true)
        .catch(() => false)
    )
      return true;
    await sleep(250);
  }
  return false;
}

try {
  await phase('build what is missing', async () => {
    say(
      'Debian packages: bash scripts/debian-packages.sh --install (the list .ci/run uses; about a minute if any is missing)',
    );
    runInherited('bash', ['scripts/debian-packages.sh', '--install']);
    if (
      KUBE_BINARIES.some((b) => {
        try {
          kubeBinary(b);
          return false;
        } catch {
          return true;
        }
      })
    ) {
      say(
        'Kubernetes binaries missing: bash scripts/kube-build.sh (from their Go modules: 8–10 min on a cold Go cache, under a minute on a warm one; once)',
      );
      runInherited('bash', ['scripts/kube-build.sh']);
    }
    say('worker root: reused, or built once with debootstrap (a few minutes)');
    say(`worker root: ${await ensureWorkerRoot()}`);
    if (!existsSync(AGENT_EXECUTABLE)) {
      say('agent executable missing: node scripts/build-agent.mjs (about 20 s)');
      runInherited(process.execPath, ['scripts/build-agent.mjs']);
    }
    await cleanupStaleTestResources();
    dir = await mkdtemp(join(tmpdir(), 'k8s-on-k8s-demo-'));
  });

  const hosted = await phase('k8s-on-k8s create → hosted /readyz', async () => {
    cluster = await startHostedCluster({ name: NAME, namespace: NAMESPACE, log: say });
    say(`hosted /readyz answered ${cluster.createToReadyzMs} ms after create started`);
    return cluster;
  });

  const token = await phase('k8s-on-k8s token create --uses 1', async () => {
    const minted = await hosted.cli([
      'token',
      'create',
      '--server',
      hosted.joinUrl,
      '--kubeconfig',
      hosted.kubeconfigPath,
      '--uses',
      '1',
      '--ttl',
      '15m',
      '--output',
      'json',
    ]);
    if (minted.exitCode !== 0) throw new Error(`token create failed:\n${minted.stdout}${minted.stderr}`);
    const created = JSON.parse(minted.stdout) as { id: string; token: string; joinCommand: string };
    say(
      `join token ${created.id} (single use); the worker runs: ${created.joinCommand.replace(created.token, '<token>')}`,
    );
    return created.token;
  });

  const worker = await phase('boot a worker (systemd as PID 1, its own network namespace)', async () => {
    const booted = await startJoinWorker({
      cluster: hosted,
      index: 1,
      hostname: 'worker-1',
      mode: MODE,
      dir,
    });
    workers.push(booted);
    say(`worker-1 is up at ${booted.address}, veth to the control-plane namespace, route to ${hosted.host}`);
    return booted;
  });

  const joinMs = await phase('k8s-join → Node registered', async () => {
    const start = Date.now();
    const joined = await worker.agent(joinCommandArgs(hosted, token, MODE));
    for (const line of `${joined.stdout}\n${joined.stderr}`.trim().split('\n')) say(`  k8s-join: ${line}`);
    if (joined.exitCode !== 0) throw new Error(`k8s-join exited ${joined.exitCode}`);
    if (MODE === 'tls-bootstrap') {
      say(
        "fallback (K8S_ON_K8S_NODE_BOOTSTRAP=tls-bootstrap): the kubelet's TLS bootstrap is done by a process with the agent's bootstrap kubeconfig, through the VIP",
      );
      const result = await worker.tlsBootstrap();
      say(
        `  CSR ${result.csrName} approved and signed after ${result.csrApprovedMs} ms; Node created with the system:node:worker-1 certificate`,
      );
    }
    if (!(await waitForNode(hosted.hostedKubeConfig(), 'worker-1', 120_000)))
      throw new Error('Node worker-1 never registered');
    return Date.now() - start;
  });

  await phase('kubectl get nodes (hosted cluster)', async () => {
    const nodes = (await hosted.hostedKubeConfig().makeApiClient(CoreV1Api).listNode()).items;
    console.log('');
    console.log(formatNodeTable(nodes, new Date()));
    console.log('');
  });

  await phase('k8s-join reset; k8s-on-k8s delete; clean up', async () => {
    const reset = await worker.agent(['reset'], 120_000);
    for (const line of reset.stdout.trim().split('\n')) say(`  k8s-join reset: ${line}`);
    const deleted = await hosted.cli([
      'delete',
      NAME,
      '-n',
      NAMESPACE,
      '--kubeconfig',
      hosted.infra.adminKubeconfigPath,
    ]);
    say(`  k8s-on-k8s delete: ${deleted.stdout.trim().split('\n').at(-1) ?? ''}`);
    await cleanUp();
  });

  console.log('');
  console.log('phase                                                          seconds');
  for (const [name, ms] of phases) console.log(`${name.padEnd(62)} ${(ms / 1000).toFixed(1).padStart(7)}`);
  console.log(`${'total'.padEnd(62)} ${((Date.now() - started) / 1000).toFixed(1).padStart(7)}`);
  console.log('');
  console.log(
    `create → hosted /readyz: ${(hosted.createToReadyzMs / 1000).toFixed(1)} s; k8s-join → Node registered: ${(joinMs / 1000).toFixed(1)} s (${MODE === 'kubelet' ? 'real kubelet' : 'fallback TLS bootstrap, no kubelet'})`,
  );
} catch (error) {
  console.error(`npm run demo failed: ${error instanceof Error ? error.message : String(error)}`);
  if (cluster !== undefined) console.error(cluster.rendered.group.logTails(10));
  await cleanUp();
  process.exitCode = 1;
}
