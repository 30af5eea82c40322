// `npm run bench:join-storm`: 20 workers (systemd worker hosts, each in its own network namespace)
// join one hosted control plane at once with one multi-use token; prints how long until every Node
// was registered. The control plane is the same as the end-to-end test's: `k8s-on-k8s create` run
// for real, components from the stored objects. Figures, never assertions.
import { readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api } from '@kubernetes/client-node';
import {
  cleanupStaleTestResources,
  startHostedCluster,
  startJoinWorker,
  type HostedCluster,
  type JoinWorker,
  type NodeBootstrapMode,
  joinCommandArgs,
  nodeBootstrapModeFromEnv,
} from '../harness/index.js';

const WORKERS = Number(process.env.JOIN_STORM_WORKERS ?? '20');
// Worker hosts boot one at a time (boots in parallel batches were not retried after a harness fix).
const BOOT_BATCH = 1;
const MODE: NodeBootstrapMode = nodeBootstrapModeFromEnv();

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

// Every kubelet and every worker's systemd takes inotify instances from one per-user budget of this
// machine (default 128): twenty workers exhaust it and kubelets fail with "inotify_init: too many
// open files", as kind's docs warn. Raise it for the run, and put the old value back afterwards.
const INOTIFY_INSTANCES = '/proc/sys/fs/inotify/max_user_instances';
const inotifyBefore = readFileSync(INOTIFY_INSTANCES, 'utf8').trim();
const inotifyWanted = String(Math.max(Number(inotifyBefore), 64 * WORKERS));

let cluster: HostedCluster | undefined;
const workers: JoinWorker[] = [];
let dir = '';
async function cleanUp(): Promise<void> {
  await Promise.all(workers.splice(0).map((w) => w.stop().catch(() => undefined)));
  await cluster?.stop();
  if (dir !== '') await rm(dir, { recursive: true, force: true });
  writeFileSync(INOTIFY_INSTANCES, inotifyBefore);
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.on(signal, () => void cleanUp().then(() => process.exit(130)));
}

try {
  if (inotifyWanted !== inotifyBefore) {
    writeFileSync(INOTIFY_INSTANCES, inotifyWanted);
    console.log(
      `fs.inotify.max_user_instances ${inotifyBefore} → ${inotifyWanted} for this run (restored at the end)`,
    );
  }
  await cleanupStaleTestResources();
  dir = await mkdtemp(join(tmpdir(), 'k8s-on-k8s-join-storm-'));
  console.log(
    `join storm: ${WORKERS} workers, node bootstrap: ${MODE === 'kubelet' ? 'real kubelet' : 'fallback TLS bootstrap (agent bootstrap kubeconfig, no kubelet Node)'}`,
  );
  const hosted = await startHostedCluster({ name: 'storm', namespace: 'hosted-storm' });
  cluster = hosted;
  console.log(`create → hosted /readyz: ${hosted.createToReadyzMs} ms`);
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
    '30m',
    '--output',
    'json',
  ]);
  if (minted.exitCode !== 0) throw new Error(`token create failed:\n${minted.stdout}${minted.stderr}`);
  const { token } = JSON.parse(minted.stdout) as { token: string };

  // Booting is not part of the storm: workers come up a few at a time, then all join at once.
  const bootStart = Date.now();
  for (let i = 0; i < WORKERS; i += BOOT_BATCH) {
    const batch = await Promise.all(
      Array.from({ length: Math.min(BOOT_BATCH, WORKERS - i) }, (_, j) =>
        startJoinWorker({
          cluster: hosted,
          index: i + j + 1,
          hostname: `storm-${i + j + 1}`,
          mode: MODE,
          dir,
        }),
      ),
    );
    workers.push(...batch);
  }
  console.log(`${WORKERS} worker hosts booted in ${Date.now() - bootStart} ms`);

  const core = hosted.hostedKubeConfig().makeApiClient(CoreV1Api);
  const stormStart = Date.now();
  const perNode = await Promise.all(
    workers.map(async (worker) => {
      const joined = await worker.agent(joinCommandArgs(hosted, token, MODE, '5m'), 400_000);
      if (joined.exitCode !== 0) {
        const journal = await worker.host.exec('journalctl', [
          '-u',
          'kubelet',
          '--no-pager',
          '-n',
          '25',
          '-o',
          'cat',
        ]);
        throw new Error(
          `${worker.hostname}: k8s-join exited ${joined.exitCode}\n${joined.stdout}\n${joined.stderr}\n--- kubelet journal ---\n${journal.stdout}`,
        );
      }
      if (Date.now() - stormStart > 30_000) {
        // Slower than a cloud node launch: show where the agent spent it.
        console.log(
          `${worker.hostname} (slow):\n${joined.stdout
            .split('\n')
            .filter((l) => !l.includes('[files]'))
            .join('\n')}`,
        );
        const j = await worker.host.exec('journalctl', ['-o', 'short-monotonic', '--no-pager']);
        console.log(
          j.stdout
            .split('\n')
            .filter((l) => /systemd\[1\]|k8s-join\[/.test(l))
            .slice(-60)
            .join('\n'),
        );
      }
      if (MODE === 'tls-bootstrap') await worker.tlsBootstrap(300);
      const deadline = Date.now() + 300_000;
      while (Date.now() < deadline) {
        if (
          await core
            .readNode({ name: worker.hostname })
            .then(() => true)
            .catch(() => false)
        )
          break;
        await sleep(250);
      }
      return Date.now() - stormStart;
    }),
  );
  const total = Date.now() - stormStart;
  const nodes = (await core.listNode()).items.map((n) => n.metadata?.name ?? '');
  const sorted = [...perNode].sort((a, b) => a - b);
  console.log(`Nodes registered: ${nodes.length}/${WORKERS}`);
  console.log(
    `join storm total (all ${WORKERS} k8s-join started at once → every Node registered): ${total} ms`,
  );
  console.log(
    `per node: p50 ${percentile(sorted, 50)} ms, p90 ${percentile(sorted, 90)} ms, max ${sorted.at(-1) ?? 0} ms`,
  );
  console.log(
    `reference: cloud node launches register in 30–40 s; one join here took ${sorted[0] ?? 0} ms at best`,
  );
} catch (error) {
  console.error(`join storm failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
} finally {
  await cleanUp();
}
