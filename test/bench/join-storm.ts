// `npm run bench:join-storm`: on the real-pods flow (the control plane as pods on the infra node,
// as in the end-to-end test), one worker joins alone (the reference), then 20 more join at once with
// one multi-use token; prints how long until every Node was registered and Ready (with its add-ons,
// whose images each worker has), as a ratio to the lone join, and what each control-plane pod's
// memory cgroup used: idle, and its peak during the storm, against the limit its manifest sets.
// Figures, never assertions; written to bench-results/join-storm.json.
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, type V1Pod } from '@kubernetes/client-node';
import { COMPONENT_LABEL } from '@k8s-on-k8s/server';
import {
  REPO_ROOT,
  cleanupStaleTestResources,
  joinCommandArgs,
  startHostedOnInfra,
  type HostedOnInfra,
  type JoinWorker,
} from '../harness/index.js';

const WORKERS = Number(process.env.JOIN_STORM_WORKERS ?? '20');
const MiB = 1_048_576;

function percentile(sorted: readonly number[], p: number): number {
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))] ?? 0;
}

// Every kubelet and every worker's systemd takes inotify instances from one per-user budget of this
// machine (default 128): twenty workers exhaust it and kubelets fail with "inotify_init: too many
// open files", as kind's docs warn. Raise it for the run, and put the old value back afterwards.
const INOTIFY_INSTANCES = '/proc/sys/fs/inotify/max_user_instances';
const inotifyBefore = readFileSync(INOTIFY_INSTANCES, 'utf8').trim();
const inotifyWanted = String(Math.max(Number(inotifyBefore), 64 * (WORKERS + 2)));

let cluster: HostedOnInfra | undefined;
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

/** Joins `worker`; resolves with ms from `since` to its Node registered and to it Ready. */
async function join1(
  hosted: HostedOnInfra,
  worker: JoinWorker,
  token: string,
  since: number,
): Promise<{ registeredMs: number; readyMs: number }> {
  const core = hosted.hostedKubeConfig().makeApiClient(CoreV1Api);
  const joined = await worker.agent(joinCommandArgs(hosted, token, '8m'), 600_000);
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
  // --wait returned once the Node existed.
  const registeredMs = Date.now() - since;
  const deadline = Date.now() + 600_000;
  while (Date.now() < deadline) {
    const node = await core.readNode({ name: worker.hostname }).catch(() => undefined);
    if (node?.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true) {
      return { registeredMs, readyMs: Date.now() - since };
    }
    await sleep(500);
  }
  throw new Error(`${worker.hostname}: Node not Ready 10 minutes after the storm began`);
}

function componentOf(pod: V1Pod): string {
  return pod.metadata?.labels?.[COMPONENT_LABEL] ?? pod.metadata?.name ?? '?';
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
    `join storm: 1 lone join, then ${WORKERS} workers at once; the control plane as pods on the infra node`,
  );
  const hosted = await startHostedOnInfra({ name: 'storm', namespace: 'hosted-storm' });
  cluster = hosted;
  console.log(
    `create → all control-plane pods Ready: ${hosted.createToPodsReadyMs} ms; → hosted /readyz: ${hosted.createToReadyzMs} ms`,
  );
  const minted = await hosted.cli([
    ...['token', 'create', '--server', hosted.joinUrl, '--kubeconfig', hosted.kubeconfigPath],
    ...['--uses', String(WORKERS + 1), '--ttl', '45m', '--output', 'json'],
  ]);
  if (minted.exitCode !== 0) throw new Error(`token create failed:\n${minted.stdout}${minted.stderr}`);
  const { token } = JSON.parse(minted.stdout) as { token: string };

  // Booting is not part of the storm: workers come up one at a time, then all join at once.
  const bootStart = Date.now();
  for (let index = 1; index <= WORKERS + 1; index++) {
    workers.push(await hosted.startWorker({ index, hostname: `storm-${index}`, dir }));
  }
  console.log(`${WORKERS + 1} worker hosts booted, add-on images imported, in ${Date.now() - bootStart} ms`);

  const [lone, ...storm] = workers;
  if (lone === undefined) throw new Error('no worker');
  const reference = await join1(hosted, lone, token, Date.now());
  console.log(
    `reference: one worker alone → Node registered ${reference.registeredMs} ms, Ready ${reference.readyMs} ms`,
  );

  const pods = await hosted.controlPlanePods();
  const idle = new Map<string, number>();
  for (const pod of pods) {
    const uid = pod.metadata?.uid ?? '';
    idle.set(componentOf(pod), (await hosted.infra.podMemory(uid)).workingSetBytes);
    await hosted.infra.resetPodMemoryPeak(uid);
  }

  const stormStart = Date.now();
  const settled = await Promise.allSettled(storm.map((worker) => join1(hosted, worker, token, stormStart)));
  const perNode = settled.flatMap((result) => (result.status === 'fulfilled' ? [result.value] : []));
  const failures = settled.flatMap((result) =>
    result.status === 'rejected'
      ? [result.reason instanceof Error ? result.reason.message : String(result.reason)]
      : [],
  );
  for (const failure of failures) console.error(`FAILED: ${failure.split('\n').slice(0, 40).join('\n')}`);
  const registered = perNode.map((n) => n.registeredMs).sort((a, b) => a - b);
  const ready = perNode.map((n) => n.readyMs).sort((a, b) => a - b);
  const allRegisteredMs = registered.at(-1) ?? 0;
  const allReadyMs = ready.at(-1) ?? 0;
  const nodes = (await hosted.hostedKubeConfig().makeApiClient(CoreV1Api).listNode()).items.length;

  const memory = [];
  for (const pod of pods) {
    const { workingSetBytes, peakBytes } = await hosted.infra.podMemory(pod.metadata?.uid ?? '');
    const container = pod.spec?.containers[0]?.resources;
    memory.push({
      component: componentOf(pod),
      idleMiB: Math.round((idle.get(componentOf(pod)) ?? 0) / MiB),
      stormPeakMiB: Math.round(peakBytes / MiB),
      afterMiB: Math.round(workingSetBytes / MiB),
      request: container?.requests?.memory ?? '-',
      limit: container?.limits?.memory ?? '-',
    });
  }

  console.log(`Nodes registered: ${nodes}/${WORKERS + 1}; joins that failed: ${failures.length}`);
  if (failures.length > 0) process.exitCode = 1;
  console.log(
    `storm (${WORKERS} k8s-join at once) → every Node registered: ${allRegisteredMs} ms = ${(allRegisteredMs / reference.registeredMs).toFixed(1)}× the lone join; p50 ${percentile(registered, 50)} ms, p90 ${percentile(registered, 90)} ms`,
  );
  console.log(
    `storm → every Node Ready (flannel, kube-proxy up): ${allReadyMs} ms = ${(allReadyMs / reference.readyMs).toFixed(1)}× the lone join; p50 ${percentile(ready, 50)} ms, p90 ${percentile(ready, 90)} ms`,
  );
  console.log('memory of the control-plane pods (cgroup: idle working set, peak during the storm):');
  console.log('component            idle MiB  storm peak MiB  after MiB  request  limit');
  for (const m of memory) {
    console.log(
      `${m.component.padEnd(20)} ${String(m.idleMiB).padStart(8)}  ${String(m.stormPeakMiB).padStart(14)}  ${String(m.afterMiB).padStart(9)}  ${m.request.padStart(7)}  ${m.limit}`,
    );
  }
  mkdirSync(join(REPO_ROOT, 'bench-results'), { recursive: true });
  const results = {
    date: new Date().toISOString(),
    workers: WORKERS,
    reference,
    allRegisteredMs,
    allReadyMs,
    registeredP50Ms: percentile(registered, 50),
    readyP50Ms: percentile(ready, 50),
    nodes,
    failed: failures.length,
    memory,
  };
  writeFileSync(join(REPO_ROOT, 'bench-results', 'join-storm.json'), `${JSON.stringify(results, null, 2)}\n`);
  console.log('written to bench-results/join-storm.json');
} catch (error) {
  console.error(`join storm failed: ${error instanceof Error ? error.message : String(error)}`);
  process.exitCode = 1;
  // What the control plane went through, before it is torn down: restarts, OOM kills, memory peaks.
  for (const pod of (await cluster?.controlPlanePods().catch(() => [])) ?? []) {
    const status = pod.status?.containerStatuses?.[0];
    const last = status?.lastState?.terminated;
    const memory = await cluster?.infra.podMemory(pod.metadata?.uid ?? '').catch(() => undefined);
    console.error(
      `  ${componentOf(pod)}: ready ${String(status?.ready ?? false)}, restarts ${status?.restartCount ?? 0}${last ? `, last exit ${last.exitCode} ${last.reason ?? ''}` : ''}, peak ${memory ? Math.round(memory.peakBytes / MiB) : '?'} MiB (limit ${pod.spec?.containers[0]?.resources?.limits?.memory ?? '-'})`,
    );
  }
} finally {
  await cleanUp();
}
