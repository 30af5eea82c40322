// `npm run demo`: the whole story on this machine, as a newcomer's first command. An infra cluster
// (a real etcd + kube-apiserver), a hosted control plane made by `k8s-on-k8s create` and run from
// what it stored there, a join token, a worker (systemd as PID 1 in its own network namespace) that
// joins with `k8s-join` through the VIP, its Node in the hosted cluster; then everything is undone.
//
// `--keep` leaves that world running as a playground, like `kind create cluster`: a detached keeper
// process (this program with --keeper) owns every process of it and writes .demo/ (kubeconfigs
// that work from this machine's shell, state.json for scripts); `--down` stops the keeper, or after
// a crash removes what it left (namespaces and cgroups whose creator is gone). `--workers N`.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative as relativePath } from 'node:path';
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
  isProcessAlive,
} from '../harness/index.js';

const NAME = 'demo';
const NAMESPACE = 'team-a';
const MODE: NodeBootstrapMode = nodeBootstrapModeFromEnv();
const DEMO_DIR = join(REPO_ROOT, '.demo');
const STATE_FILE = join(DEMO_DIR, 'state.json');
const LOG_FILE = join(DEMO_DIR, 'playground.log');

/** What .demo/state.json tells scripts about a kept playground. */
interface PlaygroundState {
  readonly status: 'starting' | 'ready';
  /** The keeper process; `npm run demo -- --down` stops it. */
  readonly pid: number;
  readonly hostedKubeconfig: string;
  readonly infraKubeconfig: string;
  readonly joinServerUrl: string;
  readonly caCertHash: string;
  /** The API URL workers use (the NodePort address inside the control-plane namespace). */
  readonly apiUrl: string;
  /** The network namespace where the NodePort host lives (`ip netns exec NAME …`). */
  readonly nodePortNetns: string;
  readonly workers: readonly { readonly name: string; readonly address: string; readonly netns: string }[];
  readonly log: string;
}

const args = process.argv.slice(2);
const KEEP = args.includes('--keep');
const KEEPER = args.includes('--keeper');
const DOWN = args.includes('--down');
const workersAt = args.indexOf('--workers');
const WORKERS = workersAt === -1 ? (KEEP ? 2 : 1) : Number(args[workersAt + 1]);
const unknown = args.filter(
  (a, i) => !['--keep', '--keeper', '--down', '--workers'].includes(a) && args[i - 1] !== '--workers',
);

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

if (unknown.length > 0 || !Number.isInteger(WORKERS) || WORKERS < 1 || WORKERS > 20) {
  refuse(
    `usage: npm run demo [-- --keep [--workers N] | --down]; got ${JSON.stringify(args)} (N from 1 to 20)`,
  );
}
if (process.platform !== 'linux')
  refuse(`needs Linux (network namespaces, systemd workers); this is ${process.platform}`);
if (process.getuid?.() !== 0) {
  refuse('needs root: it creates network namespaces and boots systemd workers. Run: sudo npm run demo');
}

if (DOWN) process.exit(await tearDownPlayground());
if (KEEP && !KEEPER) process.exit(await launchKeeper());

let cluster: HostedCluster | undefined;
const workers: JoinWorker[] = [];
let dir = '';
let cleaning: Promise<void> | undefined;
async function cleanUp(): Promise<void> {
  cleaning ??= (async () => {
    for (const worker of workers.splice(0)) await worker.stop().catch(() => undefined);
    await cluster?.stop().catch(() => undefined);
    if (dir !== '') await rm(dir, { recursive: true, force: true });
    if (KEEPER) await rm(DEMO_DIR, { recursive: true, force: true });
  })();
  return cleaning;
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => {
    say(`${signal}: cleaning up`);
    void cleanUp().then(() => process.exit(KEEPER ? 0 : 130));
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

  const token = await phase(`k8s-on-k8s token create --uses ${WORKERS}`, async () => {
    const minted = await hosted.cli([
      'token',
      'create',
      '--server',
      hosted.joinUrl,
      '--kubeconfig',
      hosted.kubeconfigPath,
      '--uses',
      String(WORKERS),
      '--ttl',
      '15m',
      '--output',
      'json',
    ]);
    if (minted.exitCode !== 0) throw new Error(`token create failed:\n${minted.stdout}${minted.stderr}`);
    const created = JSON.parse(minted.stdout) as { id: string; token: string; joinCommand: string };
    say(
      `join token ${created.id} (${WORKERS === 1 ? 'single use' : `${WORKERS} uses`}); a worker runs: ${created.joinCommand.replace(created.token, '<token>')}`,
    );
    return created.token;
  });

  const booted = await phase(
    `boot ${WORKERS === 1 ? 'a worker' : `${WORKERS} workers`} (systemd as PID 1, its own network namespace)`,
    async () => {
      for (let index = 1; index <= WORKERS; index++) {
        const worker = await startJoinWorker({
          cluster: hosted,
          index,
          hostname: `worker-${index}`,
          mode: MODE,
          dir,
        });
        workers.push(worker);
        say(
          `worker-${index} is up at ${worker.address}, veth to the control-plane namespace, route to ${hosted.host}`,
        );
      }
      return [...workers];
    },
  );

  const joinMs = await phase('k8s-join → Node registered', async () => {
    const start = Date.now();
    for (const worker of booted) {
      const joined = await worker.agent(joinCommandArgs(hosted, token, MODE));
      for (const line of `${joined.stdout}\n${joined.stderr}`.trim().split('\n')) {
        say(`  ${worker.hostname} k8s-join: ${line}`);
      }
      if (joined.exitCode !== 0) throw new Error(`k8s-join on ${worker.hostname} exited ${joined.exitCode}`);
      if (MODE === 'tls-bootstrap') {
        say(
          "fallback (K8S_ON_K8S_NODE_BOOTSTRAP=tls-bootstrap): the kubelet's TLS bootstrap is done by a process with the agent's bootstrap kubeconfig, through the VIP",
        );
        const result = await worker.tlsBootstrap();
        say(
          `  CSR ${result.csrName} approved and signed after ${result.csrApprovedMs} ms; Node created with the system:node:${worker.hostname} certificate`,
        );
      }
      if (!(await waitForNode(hosted.hostedKubeConfig(), worker.hostname, 120_000)))
        throw new Error(`Node ${worker.hostname} never registered`);
    }
    return Date.now() - start;
  });

  await phase('kubectl get nodes (hosted cluster)', async () => {
    const nodes = (await hosted.hostedKubeConfig().makeApiClient(CoreV1Api).listNode()).items;
    console.log('');
    console.log(formatNodeTable(nodes, new Date()));
    console.log('');
  });

  if (KEEPER) {
    await keepPlayground(hosted, booted);
    // keepPlayground resolves only once a signal has cleaned everything up.
  }

  await phase('k8s-join reset; k8s-on-k8s delete; clean up', async () => {
    for (const worker of booted) {
      const reset = await worker.agent(['reset'], 120_000);
      for (const line of reset.stdout.trim().split('\n')) say(`  ${worker.hostname} k8s-join reset: ${line}`);
    }
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

/** The keeper's last step: write .demo/, say what to try, and hold everything up until a signal. */
async function keepPlayground(hosted: HostedCluster, booted: readonly JoinWorker[]): Promise<never> {
  await mkdir(DEMO_DIR, { recursive: true });
  const hostedKubeconfig = join(DEMO_DIR, 'hosted.kubeconfig');
  const infraKubeconfig = join(DEMO_DIR, 'infra.kubeconfig');
  // The hosted API listens inside the control-plane namespace; this kubeconfig reaches it through
  // a relay on 127.0.0.1 that the keeper runs, asking for a name its certificate has.
  await writeFile(hostedKubeconfig, hosted.hostedKubeConfig().exportConfig(), { mode: 0o600 });
  await copyFile(hosted.infra.adminKubeconfigPath, infraKubeconfig);
  const state: PlaygroundState = {
    status: 'ready',
    pid: process.pid,
    hostedKubeconfig,
    infraKubeconfig,
    joinServerUrl: hosted.joinUrl,
    caCertHash: hosted.caCertHash,
    apiUrl: hosted.apiUrl,
    nodePortNetns: hosted.cpNetns.name,
    workers: booted.map((w) => ({ name: w.hostname, address: w.address, netns: w.host.netns })),
    log: LOG_FILE,
  };
  await writeFile(STATE_FILE, `${JSON.stringify(state, null, 2)}\n`);
  const relative = (path: string): string => relativePath(REPO_ROOT, path);
  for (const line of [
    '',
    `The playground runs (keeper pid ${process.pid}); try, from this machine's shell:`,
    `  kubectl --kubeconfig ${relative(hostedKubeconfig)} get nodes -o wide`,
    `  kubectl --kubeconfig ${relative(hostedKubeconfig)} get pods -A`,
    `  kubectl --kubeconfig ${relative(infraKubeconfig)} get deploy,sts,svc,secrets -n ${NAMESPACE}`,
    `  ip netns exec ${hosted.cpNetns.name} curl -sk ${hosted.apiUrl}/version   # as a worker reaches the API`,
    `  jq . ${relative(STATE_FILE)}                                   # everything above, for scripts`,
    'The hosted control plane runs as processes started from the objects create stored (pods on a',
    'real infra node are the next step); its add-on DaemonSets have no images on the workers yet.',
    'Remove it all with: npm run demo -- --down',
  ])
    say(line);
  return new Promise<never>(() => undefined);
}

function readState(): PlaygroundState | undefined {
  try {
    return JSON.parse(readFileSync(STATE_FILE, 'utf8')) as PlaygroundState;
  } catch {
    return undefined;
  }
}

/**
 * `--keep`: starts the keeper detached (its own session, output to .demo/playground.log), shows
 * that log until the playground is ready, and returns while the keeper goes on.
 */
async function launchKeeper(): Promise<number> {
  const running = readState();
  if (running !== undefined && isProcessAlive(running.pid)) {
    refuse(`a playground already runs (keeper pid ${running.pid}); remove it first: npm run demo -- --down`);
  }
  await mkdir(DEMO_DIR, { recursive: true });
  const log = openSync(LOG_FILE, 'w');
  const keeper = spawn(
    process.execPath,
    [process.argv[1] ?? '', '--keep', '--keeper', '--workers', String(WORKERS)],
    {
      cwd: REPO_ROOT,
      detached: true,
      stdio: ['ignore', log, log],
    },
  );
  closeSync(log);
  keeper.unref();
  const pid = keeper.pid ?? 0;
  await writeFile(STATE_FILE, `${JSON.stringify({ status: 'starting', pid, log: LOG_FILE }, null, 2)}\n`);
  console.log(`npm run demo --keep: keeper pid ${pid}, log in ${LOG_FILE}`);
  let shown = 0;
  const show = (): void => {
    const text = readFileSync(LOG_FILE, 'utf8');
    process.stdout.write(text.slice(shown));
    shown = text.length;
  };
  const deadline = Date.now() + 20 * 60_000;
  while (Date.now() < deadline) {
    await sleep(500);
    show();
    if (readState()?.status === 'ready') return 0;
    if (!isProcessAlive(pid)) {
      console.error(
        `npm run demo --keep: the keeper exited before the playground was ready (log: ${LOG_FILE})`,
      );
      return 1;
    }
  }
  console.error(
    'npm run demo --keep: not ready after 20 minutes; npm run demo -- --down removes what there is',
  );
  return 1;
}

/**
 * `--down`: stops the keeper (it resets the workers' processes and removes its namespaces); if it
 * is gone already (a crash), kills what is left of its process group and removes the namespaces,
 * cgroups and temp dirs whose creator is gone.
 */
async function tearDownPlayground(): Promise<number> {
  const state = readState();
  if (state !== undefined && isProcessAlive(state.pid)) {
    console.log(`stopping the playground (keeper pid ${state.pid}) ...`);
    process.kill(state.pid, 'SIGTERM');
    const deadline = Date.now() + 120_000;
    while (isProcessAlive(state.pid) && Date.now() < deadline) await sleep(250);
  }
  if (state !== undefined) {
    try {
      // The keeper led its own session: whatever of its process group is left is an orphan.
      process.kill(-state.pid, 'SIGKILL');
      console.log(`killed what was left of the keeper's process group ${state.pid}`);
    } catch {
      // Nothing left.
    }
  }
  const removed = await cleanupStaleTestResources();
  console.log(
    `removed: ${removed.networkNamespaces.length} network namespaces, ${removed.cgroups.length} cgroups, ${removed.tempDirs.length} temp dirs`,
  );
  await rm(DEMO_DIR, { recursive: true, force: true });
  console.log(
    state === undefined ? 'no playground was recorded in .demo/; cleaned up leftovers' : 'playground removed',
  );
  return 0;
}
