// `npm run demo`: the whole story on this machine, as a newcomer's first command, every object
// running for real. An infra cluster with a real node (kubelet + containerd, joined by k8s-join);
// `k8s-on-k8s create` run by an admin, whose control plane that node runs as pods from images
// imported with ctr; a join token; two workers (systemd as PID 1, each in its own network
// namespace) that join with `k8s-join`, where the hosted cluster's kube-proxy, flannel and CoreDNS
// then run; the user's view through kubectl built from k8s.io/kubernetes; then everything undone.
//
// `--keep` leaves that world running as a playground, like `kind create cluster`: a detached keeper
// process (this program with --keeper) owns every process of it and writes .demo/ (kubeconfigs
// that work from this machine's shell, state.json for scripts); `--down` stops the keeper, or after
// a crash removes what it left (namespaces, cgroups and temp dirs whose creator is gone).
// `--workers N` for another number of workers.
import { spawn, spawnSync } from 'node:child_process';
import { closeSync, existsSync, openSync, readdirSync, readFileSync } from 'node:fs';
import { copyFile, mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join, relative as relativePath } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, type V1Node, type V1Pod } from '@kubernetes/client-node';
import { COMPONENTS } from '@k8s-on-k8s/server';
import {
  AGENT_EXECUTABLE,
  KUBE_BINARIES,
  PROBE_IMAGE,
  REPO_ROOT,
  SHELL_IMAGE,
  cleanupStaleTestResources,
  ensureWorkerRoot,
  isProcessAlive,
  joinCommandArgs,
  kubeBinary,
  startHostedOnInfra,
  uniqueTestResourceName,
  type HostedOnInfra,
  type JoinWorker,
  isPodReady,
} from '../harness/index.js';

const NAME = 'demo';
const NAMESPACE = 'team-a';
const DEMO_DIR = join(REPO_ROOT, '.demo');
const STATE_FILE = join(DEMO_DIR, 'state.json');
const LOG_FILE = join(DEMO_DIR, 'playground.log');
/** How long the workers' Nodes and add-ons get to turn Ready once every k8s-join has returned. */
const ADDONS_TIMEOUT_MS = 300_000;

/** What .demo/state.json tells scripts about a kept playground. */
interface PlaygroundState {
  readonly status: 'starting' | 'ready';
  /** The keeper process; `npm run demo -- --down` stops it. */
  readonly pid: number;
  readonly hostedKubeconfig: string;
  readonly infraKubeconfig: string;
  readonly joinServerUrl: string;
  readonly caCertHash: string;
  /** The API URL create and the admin use (the apiserver's NodePort on the infra node). */
  readonly apiUrl: string;
  /** The admin's network namespace, where the infra node's addresses route (`ip netns exec NAME …`). */
  readonly nodePortNetns: string;
  readonly workers: readonly { readonly name: string; readonly address: string; readonly netns: string }[];
  /** The kubectl built from k8s.io/kubernetes. */
  readonly kubectl: string;
  /** An image with a shell (busybox), imported on the workers, for `kubectl run … -- sh`. */
  readonly shellImage: string;
  /** The probe image (agnhost-like `serve`/`resolve`), imported on the workers. */
  readonly probeImage: string;
  readonly log: string;
}

const args = process.argv.slice(2);
const KEEP = args.includes('--keep');
const KEEPER = args.includes('--keeper');
const DOWN = args.includes('--down');
const workersAt = args.indexOf('--workers');
const WORKERS = workersAt === -1 ? 2 : Number(args[workersAt + 1]);
const unknown = args.filter(
  (a, i) => !['--keep', '--keeper', '--down', '--workers'].includes(a) && args[i - 1] !== '--workers',
);
const HOSTNAMES = Array.from({ length: WORKERS }, (_, i) => `worker-${i + 1}`);

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
const seconds = (ms: number): string => `${(ms / 1000).toFixed(1)} s`;

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
    `usage: npm run demo [-- [--keep] [--workers N] | --down]; got ${JSON.stringify(args)} (N from 1 to 20)`,
  );
}
if (process.platform !== 'linux')
  refuse(`needs Linux (network namespaces, systemd workers); this is ${process.platform}`);
if (process.getuid?.() !== 0) {
  refuse('needs root: it creates network namespaces and boots systemd workers. Run: sudo npm run demo');
}

if (DOWN) process.exit(await tearDownPlayground());
if (KEEP && !KEEPER) process.exit(await launchKeeper());

let cluster: HostedOnInfra | undefined;
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

/** A pod's state as `kubectl get pods` shows it: the first waiting container's reason, or its phase. */
function podState(pod: V1Pod): string {
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  const waiting = statuses.find((c) => c.state?.waiting !== undefined)?.state?.waiting?.reason;
  return (
    waiting ?? `${pod.status?.phase ?? 'Pending'}${pod.status?.phase === 'Running' ? ', not ready' : ''}`
  );
}

/**
 * What keeps the workers from being done: a Node not Ready, kube-proxy or flannel not Ready on a
 * worker, CoreDNS not Ready (the same conditions as the e2e test's add-on step). Empty when done.
 */
function notReadyYet(
  nodes: readonly V1Node[],
  pods: readonly V1Pod[],
  hostnames: readonly string[],
): string[] {
  const live = pods.filter((p) => p.metadata?.deletionTimestamp === undefined);
  const app = (p: V1Pod): string | undefined => p.metadata?.labels?.['k8s-app'] ?? p.metadata?.labels?.app;
  const pending: string[] = [];
  for (const hostname of hostnames) {
    const node = nodes.find((n) => n.metadata?.name === hostname);
    const ready = node?.status?.conditions?.find((c) => c.type === 'Ready');
    if (ready?.status !== 'True') {
      pending.push(
        `Node ${hostname} (${node === undefined ? 'not registered' : (ready?.reason ?? 'no Ready condition')})`,
      );
    }
    for (const addon of ['kube-proxy', 'flannel']) {
      const pod = live.find((p) => app(p) === addon && p.spec?.nodeName === hostname);
      if (pod === undefined) pending.push(`${addon} on ${hostname} (no pod yet)`);
      else if (!isPodReady(pod)) pending.push(`${addon} on ${hostname} (${podState(pod)})`);
    }
  }
  const dns = live.filter((p) => app(p) === 'kube-dns');
  if (dns.length === 0) pending.push('CoreDNS (no pod yet)');
  for (const pod of dns.filter((p) => !isPodReady(p))) {
    pending.push(`CoreDNS ${pod.metadata?.name ?? '?'} (${podState(pod)})`);
  }
  return pending;
}

/**
 * Polls the hosted API until every worker's Node and add-ons are Ready, saying each Node's Ready
 * as it comes and, every 10 s, what is not Ready yet; `since` is when the joins started.
 */
async function waitForWorkersReady(hosted: HostedOnInfra, since: number): Promise<void> {
  const core = hosted.hostedKubeConfig().makeApiClient(CoreV1Api);
  const readyNodes = new Set<string>();
  const deadline = Date.now() + ADDONS_TIMEOUT_MS;
  let reported = Date.now();
  for (;;) {
    let pending: string[];
    try {
      const nodes = (await core.listNode()).items;
      const pods = [
        ...(await core.listNamespacedPod({ namespace: 'kube-system' })).items,
        ...(await core.listNamespacedPod({ namespace: 'kube-flannel' })).items,
      ];
      pending = notReadyYet(nodes, pods, HOSTNAMES);
      for (const node of nodes) {
        const name = node.metadata?.name ?? '';
        const ready = node.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True');
        if (ready === true && !readyNodes.has(name)) {
          readyNodes.add(name);
          say(`  Node ${name} Ready ${seconds(Date.now() - since)} after k8s-join started`);
        }
      }
    } catch (error) {
      pending = [`the hosted API (${error instanceof Error ? error.message : String(error)})`];
    }
    if (pending.length === 0) return;
    if (Date.now() > deadline) {
      throw new Error(
        `not Ready ${ADDONS_TIMEOUT_MS / 60_000} minutes after the joins: ${pending.join(', ')}`,
      );
    }
    if (Date.now() - reported >= 10_000) {
      reported = Date.now();
      say(`  not Ready yet: ${pending.join(', ')}`);
    }
    await sleep(1000);
  }
}

/** Runs the built kubectl in the admin's namespace (create's kubeconfig unless `args` names another) and prints its output. */
async function showKubectl(hosted: HostedOnInfra, args: readonly string[], shown: string): Promise<void> {
  const result = await hosted.kubectl(args);
  if (result.exitCode !== 0) {
    throw new Error(`kubectl ${args.join(' ')} exited ${result.exitCode}: ${result.stderr}`);
  }
  console.log(`\n$ ${shown}\n${result.stdout.trimEnd()}\n`);
}

/** The phase table and what the run measured. */
function printSummary(hosted: HostedOnInfra, joinMs: number): void {
  console.log('');
  console.log('phase                                                          seconds');
  for (const [name, ms] of phases) console.log(`${name.padEnd(62)} ${(ms / 1000).toFixed(1).padStart(7)}`);
  console.log(`${'total'.padEnd(62)} ${((Date.now() - started) / 1000).toFixed(1).padStart(7)}`);
  console.log('');
  console.log(
    `create → all ${COMPONENTS.length} control-plane pods Ready: ${seconds(hosted.createToPodsReadyMs)}`,
  );
  console.log(`create → hosted /readyz: ${seconds(hosted.createToReadyzMs)}`);
  console.log(
    `k8s-join → all ${WORKERS} Nodes Ready with kube-proxy, flannel and CoreDNS: ${seconds(joinMs)} (real kubelet)`,
  );
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
    const addons = ['coredns', 'flanneld', 'flannel-cni-plugin', 'probe'];
    const addonDir = join(REPO_ROOT, '.cache', 'addons');
    const built = existsSync(addonDir) ? readdirSync(addonDir) : [];
    if (addons.some((name) => !built.some((file) => file.startsWith(`${name}-v`)))) {
      say(
        'add-on binaries missing: bash scripts/addon-build.sh (CoreDNS, flanneld, the flannel CNI plugin and the probe from their Go modules: 5–6 min on a cold Go cache, about a minute on a warm one; once)',
      );
      runInherited('bash', ['scripts/addon-build.sh']);
    }
    // Always: the archives are cached by content, and the join server's is this checkout's code.
    say(
      'images: node scripts/build-images.mjs (every image the manifests name, as OCI archives, offline; about 20 s when .cache/images holds them, a few minutes cold)',
    );
    runInherited(process.execPath, ['scripts/build-images.mjs']);
    say('worker root: reused, or built once with debootstrap (a few minutes)');
    say(`worker root: ${await ensureWorkerRoot()}`);
    if (!existsSync(AGENT_EXECUTABLE)) {
      say('agent executable missing: node scripts/build-agent.mjs (about 20 s)');
      runInherited(process.execPath, ['scripts/build-agent.mjs']);
    }
    await cleanupStaleTestResources();
    dir = await mkdtemp(join(tmpdir(), `${uniqueTestResourceName()}-demo-`));
  });

  const hosted = await phase('infra cluster and node; k8s-on-k8s create → pods Ready', async () => {
    cluster = await startHostedOnInfra({ name: NAME, namespace: NAMESPACE, log: say });
    say(
      `infra node ${cluster.infra.nodeName}: k8s-join → Node Ready in ${seconds(cluster.infra.joinToReadyMs)}; create → all ${COMPONENTS.length} control-plane pods Ready in ${seconds(cluster.createToPodsReadyMs)}, hosted /readyz in ${seconds(cluster.createToReadyzMs)}`,
    );
    return cluster;
  });

  const token = await phase(`k8s-on-k8s token create --uses ${WORKERS}`, async () => {
    const minted = await hosted.cli([
      ...['token', 'create', '--server', hosted.joinUrl, '--kubeconfig', hosted.kubeconfigPath],
      ...['--uses', String(WORKERS), '--ttl', '15m', '--output', 'json'],
    ]);
    if (minted.exitCode !== 0) throw new Error(`token create failed:\n${minted.stdout}${minted.stderr}`);
    const created = JSON.parse(minted.stdout) as { id: string; token: string; joinCommand: string };
    say(
      `join token ${created.id} (${WORKERS === 1 ? 'single use' : `${WORKERS} uses`}); a worker runs: ${created.joinCommand.replace(created.token, '<token>')}`,
    );
    return created.token;
  });

  const booted = await phase(
    `boot ${WORKERS === 1 ? 'a worker' : `${WORKERS} workers at once`} (systemd as PID 1, images imported)`,
    async () => {
      // allSettled: a failed boot must not leave the others booting unseen by the clean-up.
      const boots = await Promise.allSettled(
        HOSTNAMES.map(async (hostname, i) => {
          const worker = await hosted.startWorker({
            index: i + 1,
            hostname,
            dir,
            extraImages: KEEPER ? [PROBE_IMAGE, SHELL_IMAGE] : [],
            // As in the deployments this is for: the control plane cannot route to the worker,
            // so the apiserver reaches kubelets (logs, exec) only through konnectivity.
            behindNat: true,
          });
          workers.push(worker);
          say(
            `${hostname} is up at ${worker.address} behind NAT (it reaches the infra node ${hosted.host} through ${hosted.cpNetns.name}; nothing routes back); kube-proxy, flannel, CoreDNS and konnectivity-agent images imported`,
          );
          return worker;
        }),
      );
      return boots.map((boot) => {
        if (boot.status === 'rejected') throw boot.reason;
        return boot.value;
      });
    },
  );

  const joinMs = await phase('k8s-join → all Nodes Ready with add-ons', async () => {
    const start = Date.now();
    const joins = await Promise.allSettled(
      booted.map(async (worker) => {
        const joined = await worker.agent(joinCommandArgs(hosted, token, '4m'), 300_000);
        for (const line of `${joined.stdout}\n${joined.stderr}`.trim().split('\n')) {
          say(`  ${worker.hostname} k8s-join: ${line}`);
        }
        if (joined.exitCode !== 0)
          throw new Error(`k8s-join on ${worker.hostname} exited ${joined.exitCode}`);
      }),
    );
    const failed = joins.find((j) => j.status === 'rejected');
    if (failed !== undefined) throw failed.reason;
    await waitForWorkersReady(hosted, start);
    return Date.now() - start;
  });

  await phase('kubectl: the hosted cluster; the control plane on the infra', async () => {
    await showKubectl(hosted, ['get', 'nodes', '-o', 'wide'], 'kubectl get nodes -o wide');
    await showKubectl(hosted, ['get', 'pods', '-A', '-o', 'wide'], 'kubectl get pods -A -o wide');
    // The workers are behind NAT: these logs come from their kubelets through konnectivity.
    await showKubectl(
      hosted,
      ['-n', 'kube-system', 'logs', '-l', 'k8s-app=kube-dns', '--tail', '2', '--prefix'],
      'kubectl -n kube-system logs -l k8s-app=kube-dns --tail 2 --prefix   # through konnectivity',
    );
    // A later --kubeconfig wins: the infra admin's, as the admin's namespace reaches the infra API.
    await showKubectl(
      hosted,
      ['--kubeconfig', hosted.infraKubeconfigPath, 'get', 'pods,pvc', '-n', NAMESPACE, '-o', 'wide'],
      `kubectl --kubeconfig infra.kubeconfig get pods,pvc -n ${NAMESPACE} -o wide`,
    );
  });

  if (KEEPER) {
    printSummary(hosted, joinMs);
    await keepPlayground(hosted, booted);
    // keepPlayground resolves only once a signal has cleaned everything up.
  }

  await phase('k8s-join reset; k8s-on-k8s delete; clean up', async () => {
    // At once, as each machine would: a reset waits for its kubelet's pods to stop.
    await Promise.all(
      booted.map(async (worker) => {
        const reset = await worker.agent(['reset'], 120_000);
        for (const line of `${reset.stdout}\n${reset.stderr}`.trim().split('\n')) {
          say(`  ${worker.hostname} k8s-join reset: ${line}`);
        }
      }),
    );
    const deleted = await hosted.cli([
      ...['delete', NAME, '-n', NAMESPACE, '--kubeconfig', hosted.infraKubeconfigPath],
    ]);
    say(`  k8s-on-k8s delete: ${deleted.stdout.trim().split('\n').at(-1) ?? ''}`);
    await cleanUp();
  });

  printSummary(hosted, joinMs);
} catch (error) {
  console.error(`npm run demo failed: ${error instanceof Error ? error.message : String(error)}`);
  if (cluster !== undefined) {
    const infra = cluster.infra;
    console.error(await infra.podLogs().catch((e: unknown) => `infra pod logs: ${String(e)}`));
    console.error(await infra.nodeJournal().catch((e: unknown) => `infra node journal: ${String(e)}`));
  }
  for (const worker of workers) {
    const journal = await worker.host
      .exec('journalctl', ['--no-pager', '-n', '20', '-u', 'kubelet'])
      .catch((e: unknown) => ({ stdout: String(e) }));
    console.error(`--- journalctl -u kubelet (${worker.hostname}) ---\n${journal.stdout}`);
  }
  await cleanUp();
  process.exitCode = 1;
}

/** The keeper's last step: write .demo/, say what to try, and hold everything up until a signal. */
async function keepPlayground(hosted: HostedOnInfra, booted: readonly JoinWorker[]): Promise<never> {
  await mkdir(DEMO_DIR, { recursive: true });
  const hostedKubeconfig = join(DEMO_DIR, 'hosted.kubeconfig');
  const infraKubeconfig = join(DEMO_DIR, 'infra.kubeconfig');
  // The hosted API listens on the infra node's NodePort, routed only from the admin's namespace;
  // this kubeconfig reaches it through a relay on 127.0.0.1 that the keeper runs, asking for a
  // name its certificate has (tls-server-name). The infra apiserver listens on this machine's
  // loopback, so its admin kubeconfig works as it is.
  await writeFile(hostedKubeconfig, hosted.hostedKubeConfig().exportConfig(), { mode: 0o600 });
  await copyFile(hosted.infra.api.adminKubeconfigPath, infraKubeconfig);
  const kubectl = kubeBinary('kubectl');
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
    kubectl,
    shellImage: SHELL_IMAGE,
    probeImage: PROBE_IMAGE,
    log: LOG_FILE,
  };
  await writeFile(STATE_FILE, `${JSON.stringify(state, null, 2)}\n`);
  const relative = (path: string): string => relativePath(REPO_ROOT, path);
  const k = `${relative(kubectl)} --kubeconfig ${relative(hostedKubeconfig)}`;
  for (const line of [
    '',
    `The playground runs (keeper pid ${process.pid}); try, from this machine's shell, with the kubectl`,
    'built from k8s.io/kubernetes (another kubectl, e.g. /usr/bin/kubectl, works too):',
    `  alias k='${k}'`,
    '  k get nodes -o wide; k get pods -A -o wide',
    '  k -n kube-system logs -l k8s-app=kube-dns                    # CoreDNS',
    `  k run hello --image ${PROBE_IMAGE} -- serve --port 8080   # imported on the workers`,
    '  k logs hello; k exec hello -- /probe resolve kubernetes.default.svc.cluster.local',
    `  k run sh --image ${SHELL_IMAGE} -- sleep 3600; k exec sh -- sh -c 'echo ok'   # a shell, imported too`,
    '  (the workers are behind NAT: logs and exec reach their kubelets through konnectivity)',
    `  ${relative(kubectl)} --kubeconfig ${relative(infraKubeconfig)} get pods,pvc -n ${NAMESPACE} -o wide   # the control plane as pods`,
    `  ip netns exec ${hosted.cpNetns.name} ${relative(kubectl)} --kubeconfig ${hosted.kubeconfigPath} get nodes   # create's own kubeconfig, from the admin's namespace`,
    `  ip netns exec ${hosted.cpNetns.name} curl -sk ${hosted.apiUrl}/version   # the hosted API's NodePort`,
    `  jq . ${relative(STATE_FILE)}                                   # everything above, for scripts`,
    `The control plane runs as pods on the infra node ${hosted.infra.nodeName}; the workers run the hosted`,
    "cluster's kube-proxy, flannel and CoreDNS from images imported with ctr (nothing is pulled).",
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
    // A keeper that failed cleans up .demo/, its log with it: what it wrote is shown by then.
    if (!existsSync(LOG_FILE)) return;
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
        'npm run demo --keep: the keeper exited before the playground was ready (its output is above)',
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
 * `--down`: stops the keeper (it stops the workers and the infra cluster and removes its namespaces);
 * if it is gone already (a crash), kills what is left of its process group and removes the
 * namespaces, cgroups and temp dirs whose creator is gone.
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
