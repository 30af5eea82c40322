// The operator on the real-pods flow (issue 15): k8s-on-k8s-operator runs as two pods in the infra
// cluster (deploy/operator/, its image built offline and imported), `create --via-operator` writes a
// HostedControlPlane and waits for Available; the operator's control plane runs as pods on the
// infra node; a worker joins it. Then what an operator owes its users: kubectl get hcp, drift healed
// (the apiserver Deployment deleted, its args edited), a killed leader converging with the CA made
// once, a component's resources changed rolling that component only, a patch version change
// (created at the previous patch release, then the default) rolling the version's components only
// and reported as Upgrading until done, a bad spec refused by the API server naming the field, and
// deletion with Retain whose data a new resource of the same name picks up (the hosted cluster's
// objects still there).
import assert from 'node:assert/strict';
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { AppsV1Api, CoreV1Api, CustomObjectsApi } from '@kubernetes/client-node';
import { DEFAULT_KUBERNETES_VERSION, PREVIOUS_PATCH_KUBERNETES_VERSION } from '@k8s-on-k8s/shared';
import { CONTROL_PLANE_LABEL, type HostedControlPlane } from '@k8s-on-k8s/server';
import {
  eventually,
  importImages,
  joinCommandArgs,
  startHostedOnInfra,
  type HostedOnInfra,
  type JoinWorker,
} from '../harness/index.js';

const NAME = 'ops';
const NAMESPACE = 'hosted-ops';
const WORKER = 'ops-worker';
const HCP = { group: 'k8s-on-k8s.io', version: 'v1alpha1', plural: 'hostedcontrolplanes' };

describe('the operator as pods in the infra cluster: HostedControlPlane → a control plane a worker joins', () => {
  let dir: string;
  let cluster: HostedOnInfra;
  let worker: JoinWorker | undefined;
  let caUid: string | undefined;

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'k8s-on-k8s-operator-e2e-'));
  });
  after(async () => {
    await worker?.stop();
    await (cluster as HostedOnInfra | undefined)?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  const infraKubectl = (args: readonly string[]) =>
    cluster.kubectl(['--kubeconfig', cluster.infraKubeconfigPath, ...args]);
  const resource = async (): Promise<HostedControlPlane> =>
    (await cluster.infra.api
      .kubeConfig()
      .makeApiClient(CustomObjectsApi)
      .getNamespacedCustomObject({ ...HCP, namespace: NAMESPACE, name: NAME })) as HostedControlPlane;
  const apps = () => cluster.infra.api.kubeConfig().makeApiClient(AppsV1Api);
  const core = () => cluster.infra.api.kubeConfig().makeApiClient(CoreV1Api);
  const available = async (): Promise<HostedControlPlane | undefined> => {
    const r = await resource();
    return r.status?.ready === true && r.status.observedGeneration === r.metadata.generation ? r : undefined;
  };
  const operatorLogs = async (): Promise<string> => {
    const logs = await infraKubectl([
      ...['logs', '-n', 'k8s-on-k8s-system', '-l', 'app.kubernetes.io/name=k8s-on-k8s-operator'],
      ...['--tail', '30', '--prefix'],
    ]);
    return `${logs.stdout}${logs.stderr}`;
  };

  it(
    '1. create --via-operator: the resource turns Available; a worker joins; kubectl get hcp shows Ready and the version',
    { timeout: 900_000 },
    async () => {
      cluster = await startHostedOnInfra({
        name: NAME,
        namespace: NAMESPACE,
        viaOperator: true,
        kubernetesVersion: PREVIOUS_PATCH_KUBERNETES_VERSION,
      });
      assert.match(cluster.createOutput, /HostedControlPlane ops: Available after \d+s/);
      console.log(
        `# create --via-operator → Available in ${cluster.createMs} ms (control-plane pods Ready at ${cluster.createToPodsReadyMs} ms)`,
      );
      const operators = await infraKubectl(['get', 'pods', '-n', 'k8s-on-k8s-system', '-o', 'wide']);
      assert.match(operators.stdout, /k8s-on-k8s-operator-\S+\s+1\/1\s+Running/);
      caUid = (await core().readNamespacedSecret({ name: `${NAME}-ca`, namespace: NAMESPACE })).metadata?.uid;

      const minted = await cluster.cli([
        ...['token', 'create', '--server', cluster.joinUrl, '--kubeconfig', cluster.kubeconfigPath],
        ...['--uses', '1', '--ttl', '15m', '--output', 'json'],
      ]);
      assert.equal(minted.exitCode, 0, `${minted.stdout}\n${minted.stderr}`);
      const { token } = JSON.parse(minted.stdout) as { token: string };
      worker = await cluster.startWorker({ index: 1, hostname: WORKER, dir });
      const joined = await worker.agent(joinCommandArgs(cluster, token, '4m'), 300_000);
      assert.equal(joined.exitCode, 0, `${joined.stdout}\n${joined.stderr}`);
      await eventually(`Node ${WORKER} Ready`, 240_000, async () => {
        const nodes = await cluster.kubectl(['get', 'node', WORKER, '--no-headers']);
        return /\sReady\s/.test(nodes.stdout) ? true : undefined;
      });
      const table = await infraKubectl(['get', 'hcp', '-n', NAMESPACE]);
      console.log(`# kubectl get hcp -n ${NAMESPACE}\n${table.stdout.trimEnd().replace(/^/gm, '#   ')}`);
      assert.match(table.stdout, /^NAME\s+VERSION\s+PHASE\s+ENDPOINT\s+AGE$/m);
      assert.match(
        table.stdout,
        new RegExp(
          `^${NAME}\\s+${PREVIOUS_PATCH_KUBERNETES_VERSION.replace(/\./g, '\\.')}\\s+Ready\\s+https://${cluster.host.replace(/\./g, '\\.')}:30443\\s`,
          'm',
        ),
      );
    },
  );

  it(
    '2. drift heals: the apiserver Deployment deleted, or its args edited, is put back',
    { timeout: 420_000 },
    async () => {
      const deployment = `${NAME}-apiserver`;
      const deletedAt = Date.now();
      await apps().deleteNamespacedDeployment({ name: deployment, namespace: NAMESPACE });
      await eventually('the apiserver Deployment back', 60_000, async () => {
        const d = await apps()
          .readNamespacedDeployment({ name: deployment, namespace: NAMESPACE })
          .catch(() => undefined);
        return d !== undefined && d.metadata?.deletionTimestamp === undefined ? true : undefined;
      }).catch(async (error: unknown) => {
        throw new Error(`${String(error)}\n${await operatorLogs()}`);
      });
      console.log(`# the deleted apiserver Deployment was back ${Date.now() - deletedAt} ms later`);
      await eventually('Available again', 240_000, available);

      const current = await apps().readNamespacedDeployment({ name: deployment, namespace: NAMESPACE });
      const container = current.spec?.template.spec?.containers.find((c) => c.name === 'kube-apiserver');
      assert.ok(container?.command !== undefined || container?.args !== undefined);
      const key = container.args === undefined ? 'command' : 'args';
      const index = current.spec?.template.spec?.containers.indexOf(container) ?? 0;
      const editedAt = Date.now();
      await infraKubectl([
        ...['patch', 'deployment', deployment, '-n', NAMESPACE, '--type', 'json', '-p'],
        JSON.stringify([
          { op: 'add', path: `/spec/template/spec/containers/${index}/${key}/-`, value: '--v=9' },
        ]),
      ]).then((r) => {
        assert.equal(r.exitCode, 0, r.stderr);
      });
      await eventually('the edited args reverted', 60_000, async () => {
        const d = await apps().readNamespacedDeployment({ name: deployment, namespace: NAMESPACE });
        const c = d.spec?.template.spec?.containers.find((x) => x.name === 'kube-apiserver');
        return [...(c?.command ?? []), ...(c?.args ?? [])].includes('--v=9') ? undefined : true;
      }).catch(async (error: unknown) => {
        throw new Error(`${String(error)}\n${await operatorLogs()}`);
      });
      console.log(`# an edit to the apiserver's args was undone ${Date.now() - editedAt} ms later`);
      await eventually('Available again', 240_000, available);
    },
  );

  it(
    '3. the leader killed mid-reconcile: the standby converges to one set of objects, the CA made once',
    { timeout: 420_000 },
    async () => {
      const lease = async () =>
        (
          await infraKubectl([
            'get',
            'lease',
            'k8s-on-k8s-operator',
            '-n',
            'k8s-on-k8s-system',
            '-o',
            'jsonpath={.spec.holderIdentity}',
          ])
        ).stdout.trim();
      const leader = await lease();
      assert.match(leader, /^k8s-on-k8s-operator-/);
      // A spec change starts a reconcile; the leader dies at once.
      const before = await resource();
      await infraKubectl([
        ...['patch', 'hcp', NAME, '-n', NAMESPACE, '--type', 'merge', '-p'],
        JSON.stringify({ spec: { apiserver: { replicas: 2 } } }),
      ]);
      await core().deleteNamespacedPod({
        name: leader,
        namespace: 'k8s-on-k8s-system',
        gracePeriodSeconds: 0,
      });
      const killedAt = Date.now();
      await eventually('another replica to lead', 60_000, async () => {
        const now = await lease();
        return now !== '' && now !== leader ? now : undefined;
      });
      console.log(`# the standby took the Lease ${Date.now() - killedAt} ms after the leader was killed`);
      await eventually('Available at the new generation', 300_000, async () => {
        const r = await available();
        return r !== undefined && (r.metadata.generation ?? 0) > (before.metadata.generation ?? 0)
          ? r
          : undefined;
      }).catch(async (error: unknown) => {
        throw new Error(`${String(error)}\n${await operatorLogs()}`);
      });
      const deployments = await apps().listNamespacedDeployment({
        namespace: NAMESPACE,
        labelSelector: `${CONTROL_PLANE_LABEL}=${NAME}`,
      });
      assert.deepEqual(
        deployments.items.map((d) => `${d.metadata?.name ?? ''}=${String(d.spec?.replicas)}`).sort(),
        [
          `${NAME}-apiserver=2`,
          `${NAME}-controller-manager=1`,
          `${NAME}-join-server=1`,
          `${NAME}-scheduler=1`,
        ],
      );
      const secrets = await core().listNamespacedSecret({
        namespace: NAMESPACE,
        labelSelector: `${CONTROL_PLANE_LABEL}=${NAME}`,
      });
      const names = secrets.items.map((s) => s.metadata?.name ?? '');
      assert.equal(new Set(names).size, names.length);
      assert.equal(
        (await core().readNamespacedSecret({ name: `${NAME}-ca`, namespace: NAMESPACE })).metadata?.uid,
        caUid,
        'the CA Secret was made once',
      );
    },
  );

  /** The generation of each of the control plane's workloads in the infra cluster. */
  const generations = async () => {
    const [deployments, statefulSets] = await Promise.all([
      apps().listNamespacedDeployment({
        namespace: NAMESPACE,
        labelSelector: `${CONTROL_PLANE_LABEL}=${NAME}`,
      }),
      apps().listNamespacedStatefulSet({
        namespace: NAMESPACE,
        labelSelector: `${CONTROL_PLANE_LABEL}=${NAME}`,
      }),
    ]);
    return new Map(
      [...deployments.items, ...statefulSets.items].map((w) => [
        w.metadata?.name ?? '',
        w.metadata?.generation ?? 0,
      ]),
    );
  };
  const changedBetween = (before: Map<string, number>, after: Map<string, number>) =>
    [...before.keys()].filter((name) => before.get(name) !== after.get(name)).sort();

  it("4. a change to one component's resources rolls that component only", { timeout: 300_000 }, async () => {
    const before = await generations();
    const patched = await infraKubectl([
      ...['patch', 'hcp', NAME, '-n', NAMESPACE, '--type', 'merge', '-p'],
      JSON.stringify({
        spec: { components: { scheduler: { resources: { requests: { memory: '48Mi' } } } } },
      }),
    ]);
    assert.equal(patched.exitCode, 0, patched.stderr);
    await eventually('the scheduler rolled with its new request', 60_000, async () => {
      const d = await apps().readNamespacedDeployment({ name: `${NAME}-scheduler`, namespace: NAMESPACE });
      return d.spec?.template.spec?.containers[0]?.resources?.requests?.memory === '48Mi' ? true : undefined;
    });
    await eventually('Available again', 240_000, available);
    assert.deepEqual(changedBetween(before, await generations()), [`${NAME}-scheduler`]);
  });

  it(
    `5. a patch version change (${PREVIOUS_PATCH_KUBERNETES_VERSION} → ${DEFAULT_KUBERNETES_VERSION}) rolls the components of that version only, Upgrading until done`,
    { timeout: 480_000 },
    async () => {
      const to = DEFAULT_KUBERNETES_VERSION;
      await cluster.infra.importImages(
        ['kube-apiserver', 'kube-controller-manager', 'kube-scheduler'].map(
          (c) => `registry.k8s.io/${c}:${to}`,
        ),
      );
      assert.ok(worker !== undefined, 'step 1 joined the worker');
      await importImages(worker.host, [`registry.k8s.io/kube-proxy:${to}`]);
      const hostedGenerations = async () => {
        const r = await cluster.kubectl([
          ...['get', 'daemonsets,deployments', '--all-namespaces', '-o'],
          'jsonpath={range .items[*]}{.kind}/{.metadata.namespace}/{.metadata.name}={.metadata.generation}{"\\n"}{end}',
        ]);
        assert.equal(r.exitCode, 0, r.stderr);
        return new Map(
          r.stdout
            .trim()
            .split('\n')
            .map((line) => line.split('=') as [string, string])
            .map(([name, generation]) => [name, Number(generation)]),
        );
      };
      const [before, hostedBefore] = [await generations(), await hostedGenerations()];
      const started = Date.now();
      const patched = await infraKubectl([
        ...['patch', 'hcp', NAME, '-n', NAMESPACE, '--type', 'merge', '-p'],
        JSON.stringify({ spec: { version: to } }),
      ]);
      assert.equal(patched.exitCode, 0, patched.stderr);
      const upgrading = await eventually('the resource Upgrading', 60_000, async () => {
        const r = await resource();
        return r.status?.observedGeneration === r.metadata.generation && r.status?.phase === 'Upgrading'
          ? r.status
          : undefined;
      });
      assert.equal(upgrading.version, PREVIOUS_PATCH_KUBERNETES_VERSION, 'the old version until it is done');
      assert.equal(upgrading.desiredVersion, to);
      const done = await eventually(`Ready at ${to}`, 300_000, async () => {
        const r = await available();
        return r?.status?.phase === 'Ready' && r.status.version === to ? r : undefined;
      }).catch(async (error: unknown) => {
        throw new Error(`${String(error)}\n${await operatorLogs()}`);
      });
      console.log(
        `# ${PREVIOUS_PATCH_KUBERNETES_VERSION} → ${to}: Ready at ${to} after ${Date.now() - started} ms`,
      );
      assert.equal(done.status?.desiredVersion, to);
      // The version's components rolled (the join server tells joining workers the version); etcd did not.
      assert.deepEqual(
        changedBetween(before, await generations()),
        ['apiserver', 'controller-manager', 'join-server', 'scheduler'].map((c) => `${NAME}-${c}`),
      );
      const version = await cluster.kubectl(['version', '-o', 'json']);
      assert.equal(
        (JSON.parse(version.stdout) as { serverVersion: { gitVersion: string } }).serverVersion.gitVersion,
        to,
      );
      // In the hosted cluster only kube-proxy rolled, and its pod on the worker runs the new image.
      assert.deepEqual(changedBetween(hostedBefore, await hostedGenerations()), [
        'DaemonSet/kube-system/kube-proxy',
      ]);
      await eventually(`kube-proxy ${to} Running on ${WORKER}`, 180_000, async () => {
        const pods = await cluster.kubectl([
          ...['get', 'pods', '-n', 'kube-system', '-l', 'k8s-app=kube-proxy', '-o'],
          'jsonpath={range .items[*]}{.spec.containers[0].image} {.status.phase} {.metadata.deletionTimestamp}{"\\n"}{end}',
        ]);
        const lines = pods.stdout
          .trim()
          .split('\n')
          .map((line) => line.trim());
        return lines.length === 1 && lines[0] === `registry.k8s.io/kube-proxy:${to} Running`
          ? true
          : undefined;
      });
      const node = await cluster.kubectl(['get', 'node', WORKER, '--no-headers']);
      assert.match(node.stdout, /\sReady\s/);
      assert.equal(
        (await core().readNamespacedSecret({ name: `${NAME}-ca`, namespace: NAMESPACE })).metadata?.uid,
        caUid,
        'an upgrade keeps the PKI',
      );
    },
  );

  it('6. a bad spec is refused by the API server, naming the field', async () => {
    const file = join(dir, 'bad.yaml');
    await writeFile(
      file,
      `apiVersion: k8s-on-k8s.io/v1alpha1\nkind: HostedControlPlane\nmetadata: {name: bad, namespace: ${NAMESPACE}}\nspec:\n  exposure: {host: api.bad.example, type: ingress}\n  addons: {konnectivity: true}\n`,
    );
    const applied = await infraKubectl(['apply', '-f', file]);
    assert.notEqual(applied.exitCode, 0);
    assert.match(
      applied.stderr,
      /spec: Invalid value: .*addons\.konnectivity is not supported with exposure\.type ingress/,
    );
    const immutable = await infraKubectl([
      ...['patch', 'hcp', NAME, '-n', NAMESPACE, '--type', 'merge', '-p'],
      JSON.stringify({ spec: { networks: { podCIDR: '10.9.0.0/16' } } }),
    ]);
    assert.notEqual(immutable.exitCode, 0);
    assert.match(immutable.stderr, /networks is immutable/);
  });

  it(
    '7. deleted with Retain, the data stays; a new resource of the same name reuses it, the hosted objects still there',
    { timeout: 600_000 },
    async () => {
      await cluster
        .kubectl(['create', 'configmap', 'survivor', '-n', 'default', '--from-literal=kept=yes'])
        .then((r) => {
          assert.equal(r.exitCode, 0, r.stderr);
        });
      await infraKubectl([
        'patch',
        'hcp',
        NAME,
        '-n',
        NAMESPACE,
        '--type',
        'merge',
        '-p',
        JSON.stringify({ spec: { deletionPolicy: 'Retain' } }),
      ]);
      await eventually('the patch observed', 30_000, async () =>
        (await resource()).spec.deletionPolicy === 'Retain' ? true : undefined,
      );
      const deleted = await infraKubectl(['delete', 'hcp', NAME, '-n', NAMESPACE, '--timeout=120s']);
      assert.equal(deleted.exitCode, 0, deleted.stderr);
      const left = await core().listNamespacedSecret({
        namespace: NAMESPACE,
        labelSelector: `${CONTROL_PLANE_LABEL}=${NAME}`,
      });
      assert.ok(left.items.some((s) => s.metadata?.name === `${NAME}-ca`));
      assert.ok(
        !left.items.some((s) => s.metadata?.name === `${NAME}-kubeconfig`),
        'the kubeconfig Secret is not data',
      );
      assert.deepEqual(
        (
          await apps().listNamespacedDeployment({
            namespace: NAMESPACE,
            labelSelector: `${CONTROL_PLANE_LABEL}=${NAME}`,
          })
        ).items,
        [],
      );
      const pvcs = await core().listNamespacedPersistentVolumeClaim({ namespace: NAMESPACE });
      assert.ok(pvcs.items.length > 0, "etcd's claim is kept");

      const again = await cluster.cli(
        [
          ...['create', NAME, '-n', NAMESPACE, '--host', cluster.host, '--via-operator'],
          ...['--api-node-port', '30443', '--join-node-port', '30843', '--konnectivity-node-port', '30132'],
          ...['--kubeconfig', cluster.infraKubeconfigPath, '--wait', '5m'],
        ],
        360_000,
      );
      assert.equal(again.exitCode, 0, `${again.stdout}\n${again.stderr}\n${await operatorLogs()}`);
      assert.equal(
        (await core().readNamespacedSecret({ name: `${NAME}-ca`, namespace: NAMESPACE })).metadata?.uid,
        caUid,
      );
      const survivor = await eventually(
        'the hosted ConfigMap, from the kept etcd data',
        120_000,
        async () => {
          const r = await cluster.kubectl([
            'get',
            'configmap',
            'survivor',
            '-n',
            'default',
            '-o',
            'jsonpath={.data.kept}',
          ]);
          return r.exitCode === 0 ? r.stdout : undefined;
        },
      );
      assert.equal(survivor, 'yes');
    },
  );
});
