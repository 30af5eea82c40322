// A hosted control plane as real pods: `k8s-on-k8s create` against an infra cluster whose one node
// is a systemd worker host (containerd + kubelet, joined by the agent), with the component images
// imported from dist/images. The scheduler places etcd, the apiserver, the controller-manager, the
// scheduler and the join server on that node, the kubelet finds their images without a pull, and
// each turns Ready: the apiserver reaches etcd by its Service name through the infra cluster's
// CoreDNS and kube-proxy. A second create, from the node, then finds the hosted /readyz at the
// apiserver's NodePort and installs the hosted-cluster assets.
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { execa } from 'execa';
import { AppsV1Api, CoreV1Api } from '@kubernetes/client-node';
import {
  COMPONENTS,
  COMPONENT_LABEL,
  CONTROL_PLANE_LABEL,
  buildControlPlaneSpec,
  completeControlPlanePki,
  renderControlPlane,
  runCreate,
  type Component,
} from '@k8s-on-k8s/server';
import {
  INFRA_STORAGE_CLASS,
  K8S_ON_K8S_BIN,
  startInfraCluster,
  workloadImages,
  type InfraCluster,
  describePods,
} from '../harness/index.js';

const NAME = 'dev';
const NAMESPACE = 'team-a';
const NODE_PORTS = { api: 30443, join: 30843, konnectivity: 30132 };

/** What was seen of one component's pod, in ms after create started. */
interface PodTimeline {
  pod?: string;
  nodeName?: string;
  scheduledMs?: number;
  runningMs?: number;
  readyMs?: number;
  restarts: number;
  state: string;
}

describe('a hosted control plane as real pods on an infra cluster node', () => {
  let infra: InfraCluster;
  let dir: string;
  let images: string[];
  let createStart = 0;
  const timelines = new Map<Component, PodTimeline>(
    COMPONENTS.map((component) => [component, { restarts: 0, state: 'no pod' }]),
  );

  const diagnostics = async (): Promise<string> =>
    `${JSON.stringify(Object.fromEntries(timelines), null, 2)}\n${await infra.podLogs()}\n${await infra.nodeJournal(80)}`;

  before(async () => {
    infra = await startInfraCluster({ name: 'infra-cluster' });
    console.log(`# infra node ${infra.nodeName} Ready ${infra.joinToReadyMs} ms after k8s-join started`);
    dir = await mkdtemp(join(tmpdir(), 'k8s-on-k8s-infra-cluster-'));
    await infra.api
      .kubeConfig()
      .makeApiClient(CoreV1Api)
      .createNamespace({ body: { metadata: { name: NAMESPACE } } });
    // The images the renderer names for these flags, rendered here with a throwaway PKI.
    const spec = buildControlPlaneSpec({
      name: NAME,
      namespace: NAMESPACE,
      host: infra.nodeAddress,
      nodePorts: NODE_PORTS,
    });
    const { pki } = await completeControlPlanePki(spec, {});
    images = workloadImages(renderControlPlane(spec, pki));
  });

  after(async () => {
    await infra.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it("imports the six images the renderer names (the konnectivity proxy server's too) into the node's containerd", async () => {
    assert.equal(images.length, 6, images.join(' '));
    const start = Date.now();
    await infra.importImages(images);
    console.log(`# ctr images import of ${images.length} archives: ${Date.now() - start} ms`);
    const present = await infra.nodeImages();
    for (const image of images) assert.ok(present.includes(image), `${image} in ${present.join(' ')}`);
  });

  it('create --wait 0 applies workloads whose images are those, pulled only if not present', async () => {
    const out: string[] = [];
    createStart = Date.now();
    // --host is the node's address: a NodePort Service answers on the node, through its kube-proxy.
    const code = await runCreate(
      [
        ...[NAME, '-n', NAMESPACE, '--host', infra.nodeAddress],
        ...['--api-node-port', String(NODE_PORTS.api), '--join-node-port', String(NODE_PORTS.join)],
        ...['--konnectivity-node-port', String(NODE_PORTS.konnectivity)],
        ...['--kubeconfig', infra.api.adminKubeconfigPath, '--wait', '0'],
      ],
      {
        stdout: (line) => out.push(line),
        stderr: (line) => out.push(line),
        cwd: dir,
        now: () => new Date(),
        lookupHost: () => Promise.resolve([infra.nodeAddress]),
      },
    );
    assert.equal(code, 0, out.join('\n'));
    const apps = infra.api.kubeConfig().makeApiClient(AppsV1Api);
    const stored = [
      ...(await apps.listNamespacedStatefulSet({ namespace: NAMESPACE })).items,
      ...(await apps.listNamespacedDeployment({ namespace: NAMESPACE })).items,
    ];
    const containers = stored.flatMap((workload) => workload.spec?.template.spec?.containers ?? []);
    assert.deepEqual([...new Set(containers.map((c) => c.image))].sort(), images);
    // Stored after defaulting: IfNotPresent, the default for a tag other than :latest.
    for (const c of containers) assert.equal(c.imagePullPolicy, 'IfNotPresent', `${c.name}: ${c.image}`);
  });

  it('schedules every component onto the node and runs each container from the local image', async () => {
    const core = infra.api.kubeConfig().makeApiClient(CoreV1Api);
    const deadline = Date.now() + 240_000;
    let settleUntil: number | undefined;
    while (Date.now() < deadline && (settleUntil === undefined || Date.now() < settleUntil)) {
      const pods = await core.listNamespacedPod({
        namespace: NAMESPACE,
        labelSelector: `${CONTROL_PLANE_LABEL}=${NAME}`,
      });
      const now = Date.now() - createStart;
      for (const pod of pods.items) {
        const timeline = timelines.get(pod.metadata?.labels?.[COMPONENT_LABEL] as Component);
        if (timeline === undefined) continue;
        const status = pod.status?.containerStatuses?.[0];
        timeline.pod = pod.metadata?.name;
        timeline.nodeName = pod.spec?.nodeName;
        if (timeline.nodeName !== undefined) timeline.scheduledMs ??= now;
        if (status?.state?.running !== undefined) timeline.runningMs ??= now;
        if (status?.ready === true) timeline.readyMs ??= now;
        timeline.restarts = status?.restartCount ?? 0;
        const waiting = status?.state?.waiting;
        const terminated = status?.lastState?.terminated;
        timeline.state = `${pod.status?.phase ?? '?'} ${waiting?.reason ?? (status?.state?.running ? 'running' : '')}${
          terminated ? ` (last exit ${terminated.exitCode} ${terminated.reason ?? ''})` : ''
        }`;
      }
      const all = [...timelines.values()];
      // Once every container has run, watch readiness for one more minute.
      if (settleUntil === undefined && all.every((t) => t.runningMs !== undefined)) {
        settleUntil = Date.now() + 60_000;
      }
      if (all.every((t) => t.readyMs !== undefined)) break;
      await sleep(1000);
    }
    for (const [component, t] of timelines) {
      console.log(
        `# ${component}: scheduled ${t.scheduledMs ?? '-'} ms, running ${t.runningMs ?? '-'} ms, ready ${t.readyMs ?? '-'} ms, restarts ${t.restarts}, now ${t.state}`,
      );
    }
    const addons = await core.listNamespacedPod({ namespace: 'kube-system' });
    console.log(`# kube-system:\n${describePods(addons.items).replace(/^/gm, '#   ')}`);
    const report = await diagnostics();
    for (const [component, t] of timelines) {
      assert.equal(t.nodeName, infra.nodeName, `${component} scheduled onto the node\n${report}`);
      assert.ok(t.runningMs !== undefined, `${component} container ran\n${report}`);
      // The apiserver's readiness needs etcd by its Service name: cluster DNS and kube-proxy work.
      assert.ok(t.readyMs !== undefined, `${component} became Ready\n${report}`);
    }
    for (const pod of addons.items) {
      const ready = pod.status?.containerStatuses?.every((c) => c.ready) === true;
      assert.ok(ready, `${pod.metadata?.name ?? '?'} Ready\n${describePods(addons.items)}`);
    }

    const events = await core.listNamespacedEvent({ namespace: NAMESPACE });
    for (const [component, t] of timelines) {
      const mine = events.items.filter((e) => e.involvedObject.name === t.pod);
      assert.ok(
        mine.some((e) => e.reason === 'Pulled' && /already present on machine/.test(e.message ?? '')),
        `${component}: ${mine.map((e) => `${e.reason ?? ''}: ${e.message ?? ''}`).join('\n')}`,
      );
      assert.ok(!mine.some((e) => e.reason === 'Pulling'), `${component} pulled an image`);
    }
    const claims = await core.listNamespacedPersistentVolumeClaim({ namespace: NAMESPACE });
    assert.equal(claims.items.length, 1);
    const [claim] = claims.items;
    assert.equal(claim?.status?.phase, 'Bound');
    assert.equal(claim.spec?.storageClassName, INFRA_STORAGE_CLASS, 'defaulted by the admission plugin');
    assert.equal(claim.spec.volumeName, `${infra.nodeName}-local-0`);
  });

  it("reads each control-plane pod's memory from its cgroup on the node (a figure, printed)", async () => {
    // The working set as the kubelet counts it: usage minus inactive page cache, per pod cgroup.
    const core = infra.api.kubeConfig().makeApiClient(CoreV1Api);
    const pods = await core.listNamespacedPod({
      namespace: NAMESPACE,
      labelSelector: `${CONTROL_PLANE_LABEL}=${NAME}`,
    });
    let total = 0;
    for (const pod of pods.items) {
      const { workingSetBytes, peakBytes } = await infra.podMemory(pod.metadata?.uid ?? '');
      assert.ok(workingSetBytes > 0 && peakBytes >= workingSetBytes, pod.metadata?.name ?? '?');
      const mib = workingSetBytes / 1_048_576;
      total += mib;
      const limit = pod.spec?.containers[0]?.resources?.limits?.memory ?? '-';
      console.log(
        `# memory ${pod.metadata?.labels?.[COMPONENT_LABEL] ?? '?'}: ${mib.toFixed(0)} MiB working set, peak ${(peakBytes / 1_048_576).toFixed(0)} MiB (limit ${limit})`,
      );
    }
    console.log(`# memory of the idle control plane's pods: ${total.toFixed(0)} MiB (requests 544Mi)`);
  });

  it('a second create, run on the node, reaches the hosted /readyz through the NodePort', async () => {
    // The admin's view from the node's network namespace: the infra API where the test bed exposes
    // it, the hosted API at the node's own NodePort (kube-proxy's rules, not a harness relay).
    const kubeconfig = join(dir, 'infra-from-node.kubeconfig');
    await writeFile(kubeconfig, infra.api.adminKubeconfig.replace(infra.api.url, infra.exposedApiUrl), {
      mode: 0o600,
    });
    const start = Date.now();
    const created = await execa(
      'ip',
      [
        ...['netns', 'exec', infra.node.netns, process.execPath, K8S_ON_K8S_BIN, 'create'],
        ...[NAME, '-n', NAMESPACE, '--host', infra.nodeAddress],
        ...['--api-node-port', String(NODE_PORTS.api), '--join-node-port', String(NODE_PORTS.join)],
        ...['--konnectivity-node-port', String(NODE_PORTS.konnectivity)],
        ...['--kubeconfig', kubeconfig, '--wait', '2m'],
      ],
      { cwd: dir, reject: false, timeout: 180_000, all: true },
    );
    console.log(`# second create (waits for the hosted /readyz): ${Date.now() - start} ms`);
    assert.equal(created.exitCode, 0, `${created.all}\n${await infra.podLogs()}`);
    assert.match(created.stdout, /readyz: ok/);
    assert.match(created.stdout, /Server Version: v1\.37\.2/);
    assert.match(created.stdout, /installed into the hosted cluster: \d+ objects/);
    assert.match(created.stdout, /control-plane pods: all Ready/);
  });

  it("create with a join-server image nobody built names the pod's image pull failure within the wait", async () => {
    const image = 'localhost/k8s-on-k8s/no-such-join-server:v0';
    const created = await execa(
      'ip',
      [
        ...['netns', 'exec', infra.node.netns, process.execPath, K8S_ON_K8S_BIN, 'create'],
        ...['broken', '-n', NAMESPACE, '--host', infra.nodeAddress, '--etcd-storage', 'none'],
        ...['--api-node-port', '30444', '--join-node-port', '30844', '--join-server-image', image],
        ...['--kubeconfig', join(dir, 'infra-from-node.kubeconfig'), '--wait', '75s'],
      ],
      { cwd: dir, reject: false, timeout: 180_000, all: true },
    );
    console.log(
      `# create with a missing join-server image: exit ${created.exitCode ?? '?'}, ${created.stderr.trim()}`,
    );
    assert.notEqual(created.exitCode, 0, created.all);
    // The rest came up: the API answered; what is missing is named by pod, reason and image.
    assert.match(created.stdout, /readyz: ok/);
    assert.match(
      created.stderr,
      new RegExp(
        `not all Ready within 75s: .*pod broken-join-server-[a-z0-9-]+: k8s-join-server (ErrImagePull|ImagePullBackOff) \\(${image.replace(/[./]/g, '\\$&')}\\)`,
      ),
    );
    const deleted = await execa(
      'ip',
      [
        ...['netns', 'exec', infra.node.netns, process.execPath, K8S_ON_K8S_BIN, 'delete', 'broken'],
        ...['-n', NAMESPACE, '--kubeconfig', join(dir, 'infra-from-node.kubeconfig')],
      ],
      { cwd: dir, reject: false, timeout: 60_000, all: true },
    );
    assert.equal(deleted.exitCode, 0, deleted.all);
  });
});
