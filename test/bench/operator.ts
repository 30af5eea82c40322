// `npm run bench:operator`: how the operator copes with many HostedControlPlanes at once. On the
// real-pods flow (the operator as two pods in the infra cluster, the control planes as pods on its
// one node): first ONE resource applied alone, time until Available (the reference), deleted; then
// BENCH_CONTROL_PLANES (default 20) applied at once, time until each is Available (1st, middle,
// last) or the deadline; the operator leader's CPU seconds over the burst and its memory (cgroup
// working set) after, per control plane. Small requests (spec.components) so twenty fit the node's
// two cores by requests, and etcd ephemeral (the node's local volumes are few): what a classroom
// would ask for. Prints the figures and all/(N × single), the burst's time against N control planes
// made one after another at the reference's pace; writes bench-results/operator.json. Figures,
// never assertions. Anchor: Kamaji publishes 100 in 7.5 min, 12 mCPU and 6 MiB per control plane.
import { mkdirSync, writeFileSync } from 'node:fs';
import { setTimeout as sleep } from 'node:timers/promises';
import { CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { type HostedControlPlane } from '@k8s-on-k8s/server';
import {
  REPO_ROOT,
  cleanupStaleTestResources,
  importControlPlaneImages,
  installOperator,
  isPodReady,
  startInfraCluster,
  type InfraCluster,
} from '../harness/index.js';

const COUNT = Number(process.env.BENCH_CONTROL_PLANES ?? '20');
const DEADLINE_MS = Number(process.env.BENCH_DEADLINE_MS ?? String(25 * 60_000));
const NAMESPACE = 'bench-operator';
const HCP = { group: 'k8s-on-k8s.io', version: 'v1alpha1', plural: 'hostedcontrolplanes' };
const SMALL = {
  etcd: { resources: { requests: { cpu: '10m', memory: '48Mi' } } },
  apiserver: { resources: { requests: { cpu: '30m', memory: '192Mi' } } },
  'controller-manager': { resources: { requests: { cpu: '10m', memory: '32Mi' } } },
  scheduler: { resources: { requests: { cpu: '5m', memory: '24Mi' } } },
  'join-server': { resources: { requests: { cpu: '5m', memory: '40Mi' } } },
};

function log(line: string): void {
  console.log(`[${new Date().toISOString().slice(11, 19)}] ${line}`);
}

let infra: InfraCluster | undefined;
try {
  await cleanupStaleTestResources();
  infra = await startInfraCluster({ name: 'bench-operator' });
  await importControlPlaneImages(infra, log);
  await installOperator(infra, log);
  const kubeConfig = infra.api.kubeConfig();
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const custom = kubeConfig.makeApiClient(CustomObjectsApi);
  await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
  const host = infra.nodeAddress;
  const resource = (name: string) => ({
    apiVersion: 'k8s-on-k8s.io/v1alpha1',
    kind: 'HostedControlPlane',
    metadata: { name, namespace: NAMESPACE },
    spec: { exposure: { host }, etcd: { ephemeral: true }, components: SMALL },
  });
  const statuses = async (): Promise<Map<string, boolean>> => {
    const list = (await custom.listNamespacedCustomObject({ ...HCP, namespace: NAMESPACE })) as {
      items: HostedControlPlane[];
    };
    return new Map(
      list.items.map((r) => [
        r.metadata.name,
        r.status?.ready === true && r.status.observedGeneration === r.metadata.generation,
      ]),
    );
  };
  /** Until every name is Available or the deadline: ms after `start` each turned Available. */
  const waitAvailable = async (names: readonly string[], start: number): Promise<Map<string, number>> => {
    const at = new Map<string, number>();
    let said = 0;
    while (at.size < names.length && Date.now() - start < DEADLINE_MS) {
      const now = await statuses().catch(() => new Map<string, boolean>());
      for (const name of names) if (now.get(name) === true && !at.has(name)) at.set(name, Date.now() - start);
      if (Date.now() - said > 30_000) {
        said = Date.now();
        log(`  ${at.size}/${names.length} Available after ${Math.round((Date.now() - start) / 1000)} s`);
      }
      await sleep(1000);
    }
    return at;
  };
  const leader = async () => {
    const lease = await kubeConfig.makeApiClient(CoreV1Api).listNamespacedPod({
      namespace: 'k8s-on-k8s-system',
      labelSelector: 'app.kubernetes.io/name=k8s-on-k8s-operator',
    });
    const pods = lease.items.filter(isPodReady);
    const holder = (
      (await custom
        .getNamespacedCustomObject({
          group: 'coordination.k8s.io',
          version: 'v1',
          plural: 'leases',
          namespace: 'k8s-on-k8s-system',
          name: 'k8s-on-k8s-operator',
        })
        .catch(() => undefined)) as { spec?: { holderIdentity?: string } } | undefined
    )?.spec?.holderIdentity;
    const pod = pods.find((p) => p.metadata?.name === holder);
    if (pod?.metadata?.uid === undefined)
      throw new Error(`no Ready operator pod holds the Lease (holder ${String(holder)})`);
    return pod.metadata.uid;
  };

  // The reference: one control plane alone.
  log('one HostedControlPlane alone (the reference)');
  const singleStart = Date.now();
  await custom.createNamespacedCustomObject({ ...HCP, namespace: NAMESPACE, body: resource('solo') });
  const single = (await waitAvailable(['solo'], singleStart)).get('solo');
  if (single === undefined) throw new Error('the single control plane was not Available before the deadline');
  log(`  solo Available after ${(single / 1000).toFixed(1)} s; deleting it`);
  await custom.deleteNamespacedCustomObject({ ...HCP, namespace: NAMESPACE, name: 'solo' });
  while ((await statuses()).has('solo')) await sleep(1000);
  while ((await core.listNamespacedPod({ namespace: NAMESPACE })).items.length > 0) await sleep(1000);

  const names = Array.from({ length: COUNT }, (_, i) => `cp-${String(i + 1).padStart(2, '0')}`);
  const uid = await leader();
  const cpuBefore = await infra.podCpuSeconds(uid);
  log(`${COUNT} HostedControlPlanes at once`);
  const burstStart = Date.now();
  await Promise.all(
    names.map((name) =>
      custom.createNamespacedCustomObject({ ...HCP, namespace: NAMESPACE, body: resource(name) }),
    ),
  );
  const at = await waitAvailable(names, burstStart);
  const burstMs = Date.now() - burstStart;
  const cpuSeconds = (await infra.podCpuSeconds(uid)) - cpuBefore;
  const memory = await infra.podMemory(uid);
  const sorted = [...at.values()].sort((a, b) => a - b);
  const nth = (n: number): number | null => sorted[n - 1] ?? null;
  const allMs = at.size === COUNT ? (sorted.at(-1) ?? null) : null;
  const result = {
    date: new Date().toISOString(),
    controlPlanes: COUNT,
    available: at.size,
    singleAvailableMs: single,
    firstAvailableMs: nth(1),
    middleAvailableMs: nth(Math.ceil(COUNT / 2)),
    allAvailableMs: allMs,
    deadlineMs: DEADLINE_MS,
    burstVsSerialRatio: allMs === null ? null : allMs / (COUNT * single),
    operatorCpuSecondsPerControlPlane: cpuSeconds / COUNT,
    operatorMilliCpuDuringBurst: (cpuSeconds / (burstMs / 1000)) * 1000,
    operatorWorkingSetMiB: memory.workingSetBytes / 1_048_576,
    operatorWorkingSetMiBPerControlPlane: memory.workingSetBytes / 1_048_576 / COUNT,
    operatorPeakMiB: memory.peakBytes / 1_048_576,
  };
  console.log('');
  console.log(`one control plane alone: Available after ${(single / 1000).toFixed(1)} s (reference)`);
  console.log(
    `${COUNT} at once: ${at.size} Available; 1st after ${((nth(1) ?? NaN) / 1000).toFixed(1)} s, middle ${((result.middleAvailableMs ?? NaN) / 1000).toFixed(1)} s, last ${allMs === null ? `not within ${DEADLINE_MS / 60_000} min` : `${(allMs / 1000).toFixed(1)} s`}`,
  );
  if (result.burstVsSerialRatio !== null) {
    console.log(
      `all at once vs one after another at the reference's pace: ${result.burstVsSerialRatio.toFixed(2)}× the time`,
    );
  }
  console.log(
    `operator (leader): ${result.operatorCpuSecondsPerControlPlane.toFixed(2)} CPU s per control plane (${result.operatorMilliCpuDuringBurst.toFixed(0)} mCPU on average during the burst); working set ${result.operatorWorkingSetMiB.toFixed(0)} MiB (${result.operatorWorkingSetMiBPerControlPlane.toFixed(1)} MiB per control plane), peak ${result.operatorPeakMiB.toFixed(0)} MiB`,
  );
  mkdirSync(`${REPO_ROOT}/bench-results`, { recursive: true });
  writeFileSync(`${REPO_ROOT}/bench-results/operator.json`, `${JSON.stringify(result, null, 2)}\n`);
  console.log('wrote bench-results/operator.json');
} finally {
  await infra?.stop();
}
