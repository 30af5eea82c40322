// The whole story with every object running for real. An infra cluster with a real node (kubelet +
// containerd, joined by k8s-join); `k8s-on-k8s create`, run by an admin in the network namespace
// where the infra API and the node's NodePorts route, applies the control plane and the node runs
// it as pods from images imported with ctr (nothing pulled). Two hosted workers (systemd as PID 1
// in network namespaces of their own, routed to the node through the admin's namespace) join with
// the unmodified agent through the join-server pod's NodePort; the hosted cluster's kube-proxy,
// flannel and CoreDNS then run on them, and pods there reach the API through the VIP, each other
// through flannel, and Services by name. kubectl built from k8s.io/kubernetes is the user's client.
// Traffic stays on the machine's loopback and inside namespaces the test made.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import {
  AppsV1Api,
  CertificatesV1Api,
  CoreV1Api,
  RbacAuthorizationV1Api,
  VersionApi,
  type KubeConfig,
  type V1Pod,
} from '@kubernetes/client-node';
import { BOOTSTRAPPERS_GROUP, COMPONENTS, COMPONENT_LABEL, CONTROL_PLANE_LABEL } from '@k8s-on-k8s/server';
import { execa } from 'execa';
import {
  PROBE_IMAGE,
  TEST_RESOURCE_PREFIX,
  cleanupStaleTestResources,
  eventually,
  formatNodeTable,
  joinCommandArgs,
  startHostedOnInfra,
  type HostedOnInfra,
  type JoinWorker,
  describePods,
  isPodReady,
} from '../harness/index.js';

const NAME = 'e2e';
const NAMESPACE = 'hosted-e2e';
const VIP = '10.199.199.199';
const WORKERS = ['worker-1', 'worker-2'] as const;

/** Every process whose command line mentions one of `needles`. */
function processesMentioning(needles: readonly string[]): string[] {
  const found: string[] = [];
  for (const pid of readdirSync('/proc').filter((entry) => /^\d+$/.test(entry))) {
    try {
      const cmdline = readFileSync(`/proc/${pid}/cmdline`, 'utf8').replaceAll('\0', ' ');
      if (needles.some((needle) => cmdline.includes(needle))) found.push(`${pid} ${cmdline.slice(0, 160)}`);
    } catch {
      // Gone while we looked.
    }
  }
  return found;
}

describe('join end to end on real pods: create, two workers, add-ons, in-cluster traffic, kubectl, delete', () => {
  let dir: string;
  let cluster: HostedOnInfra;
  let hosted: KubeConfig;
  const workers: JoinWorker[] = [];
  const joinedAt = new Map<string, number>();

  /** The control-plane pods, the infra node's container logs and kubelet journal: for failures. */
  const infraReport = async (): Promise<string> =>
    `${describePods(await cluster.controlPlanePods())}\n${await cluster.infra.podLogs(15)}\n${await cluster.infra.nodeJournal(40)}`;
  /** The hosted cluster's pods and each worker's kubelet journal: for failures. */
  const hostedReport = async (): Promise<string> => {
    const pods = await hosted.makeApiClient(CoreV1Api).listPodForAllNamespaces();
    const journals = await Promise.all(
      workers.map(async (w) => {
        const journal = await w.host.exec('journalctl', ['--no-pager', '-n', '40', '-u', 'kubelet']);
        const logs = await w.host.exec('sh', [
          '-c',
          'for f in /var/log/pods/*/*/*.log; do [ -e "$f" ] && { echo "--- $f"; tail -n 8 "$f"; }; done',
        ]);
        return `--- ${w.hostname} kubelet ---\n${journal.stdout}\n${logs.stdout}`;
      }),
    );
    return `${describePods(pods.items)}\n${journals.join('\n')}`;
  };

  before(async () => {
    await cleanupStaleTestResources();
    dir = await mkdtemp(join(tmpdir(), 'k8s-on-k8s-e2e-'));
  });

  after(async () => {
    for (const worker of workers) await worker.stop();
    await (cluster as HostedOnInfra | undefined)?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it(
    '1. k8s-on-k8s create: every control-plane pod Ready on the infra node; the etcd PVC Bound; /readyz through the NodePort',
    { timeout: 480_000 },
    async () => {
      cluster = await startHostedOnInfra({ name: NAME, namespace: NAMESPACE });
      hosted = cluster.hostedKubeConfig();
      assert.match(cluster.createOutput, /readyz: ok after/);
      assert.match(cluster.createOutput, /installed into the hosted cluster: \d+ objects/);
      assert.match(cluster.createOutput, /Server Version: v1\.37\.2/);
      console.log(
        `# create → all ${COMPONENTS.length} control-plane pods Ready: ${cluster.createToPodsReadyMs} ms; → hosted /readyz: ${cluster.createToReadyzMs} ms; create done (assets installed): ${cluster.createMs} ms`,
      );
      const pods = await cluster.controlPlanePods();
      for (const component of COMPONENTS) {
        const pod = pods.find((p) => p.metadata?.labels?.[COMPONENT_LABEL] === component);
        assert.ok(pod !== undefined && isPodReady(pod), `${component} Ready\n${describePods(pods)}`);
        assert.equal(pod.spec?.nodeName, cluster.infra.nodeName);
      }
      const core = cluster.infra.api.kubeConfig().makeApiClient(CoreV1Api);
      const claims = (await core.listNamespacedPersistentVolumeClaim({ namespace: NAMESPACE })).items;
      assert.deepEqual(
        claims.map((c) => c.status?.phase),
        ['Bound'],
      );
      const version = await hosted.makeApiClient(VersionApi).getCode();
      assert.equal(version.gitVersion, 'v1.37.2');
      // Node bootstrap and kubelet-API RBAC come from create's hosted assets, nothing applied by hand.
      const bindings = (await hosted.makeApiClient(RbacAuthorizationV1Api).listClusterRoleBinding()).items;
      const grants = (role: string): string[] =>
        bindings
          .filter((b) => b.roleRef.name === role)
          .flatMap((b) => (b.subjects ?? []).map((s) => `${s.kind}/${s.name}`));
      assert.ok(grants('system:node-bootstrapper').includes(`Group/${BOOTSTRAPPERS_GROUP}`));
      // Bootstrap CSRs are approved by the join server, per node name, never auto-approved by shape.
      assert.deepEqual(grants('system:certificates.k8s.io:certificatesigningrequests:nodeclient'), []);
      assert.ok(grants('system:kubelet-api-admin').includes('User/kube-apiserver-kubelet-client'));
    },
  );

  it(
    '2. a deleted pod of each component comes back Ready, and the hosted cluster keeps its data',
    { timeout: 600_000 },
    async () => {
      const core = cluster.infra.api.kubeConfig().makeApiClient(CoreV1Api);
      const hostedCore = hosted.makeApiClient(CoreV1Api);
      await hostedCore.createNamespacedConfigMap({
        namespace: 'default',
        body: { metadata: { name: 'survivor' }, data: { written: 'before the etcd pod was deleted' } },
      });
      for (const component of COMPONENTS) {
        const old = (await cluster.controlPlanePods()).find(
          (p) => p.metadata?.labels?.[COMPONENT_LABEL] === component,
        );
        assert.ok(old?.metadata?.name !== undefined, component);
        const start = Date.now();
        await core.deleteNamespacedPod({ name: old.metadata.name, namespace: NAMESPACE });
        const fresh = await eventually(`a new ${component} pod to be Ready`, 240_000, async () => {
          const pod = (await cluster.controlPlanePods()).find(
            (p) =>
              p.metadata?.labels?.[COMPONENT_LABEL] === component &&
              p.metadata.uid !== old.metadata?.uid &&
              p.metadata.deletionTimestamp === undefined,
          );
          return pod !== undefined && isPodReady(pod) ? pod : undefined;
        }).catch(async (error: unknown) => {
          throw new Error(`${String(error)}\n${await infraReport()}`);
        });
        // The hosted API answers again (through the same NodePort) and still holds what was written.
        const kept = await eventually(`the hosted API after the ${component} pod`, 120_000, async () =>
          hostedCore.readNamespacedConfigMap({ name: 'survivor', namespace: 'default' }),
        );
        assert.equal(kept.data?.written, 'before the etcd pod was deleted');
        console.log(
          `# deleted ${old.metadata.name} → ${fresh.metadata?.name ?? '?'} Ready and the data read back: ${Date.now() - start} ms`,
        );
      }
      const claims = (await core.listNamespacedPersistentVolumeClaim({ namespace: NAMESPACE })).items;
      assert.equal(claims.length, 1, 'the same claim, not a new one');
    },
  );

  it(
    '3. two workers join through the join-server pod; a token is good for one node; both Nodes Ready',
    { timeout: 600_000 },
    async () => {
      const mint = async (): Promise<string> => {
        const minted = await cluster.cli([
          ...['token', 'create', '--server', cluster.joinUrl, '--kubeconfig', cluster.kubeconfigPath],
          ...['--uses', '1', '--ttl', '15m', '--output', 'json'],
        ]);
        assert.equal(minted.exitCode, 0, `${minted.stdout}\n${minted.stderr}`);
        const created = JSON.parse(minted.stdout) as { token: string; joinCommand: string; usesLeft: number };
        assert.equal(created.usesLeft, 1);
        assert.ok(created.joinCommand.includes(cluster.caCertHash), created.joinCommand);
        return created.token;
      };
      const token = await mint();
      const bootStart = Date.now();
      workers.push(
        ...(await Promise.all(
          WORKERS.map((hostname, i) =>
            cluster.startWorker({ index: i + 1, hostname, dir, extraImages: [PROBE_IMAGE] }),
          ),
        )),
      );
      console.log(`# two workers booted, add-on images imported: ${Date.now() - bootStart} ms`);
      const [first, second] = workers;
      assert.ok(first && second);

      const start = Date.now();
      const joined = await first.agent(joinCommandArgs(cluster, token, '4m'), 300_000);
      assert.equal(joined.exitCode, 0, `${joined.stdout}\n${joined.stderr}\n${await hostedReport()}`);
      joinedAt.set(first.hostname, start);
      assert.match(joined.stdout, /joined worker-1 to https:\/\/198\.18\.0\.2:30843 in/);
      assert.match(
        (await first.host.exec('ip', ['-o', 'addr', 'show', 'dev', 'lo'])).stdout,
        /inet 10\.199\.199\.199\/32/,
      );
      const listening = await first.host.exec('ss', ['-Hltn', `src ${VIP}:443`]);
      assert.match(listening.stdout, /10\.199\.199\.199:443/, listening.stderr);
      assert.match(
        await first.host.readFile('/etc/kubernetes/bootstrap-kubelet.conf'),
        /server: https:\/\/10\.199\.199\.199:443/,
      );
      console.log(`# k8s-join (worker-1) → Node registered: ${Date.now() - start} ms`);

      // The same single-use token, from the other worker: refused, nothing written.
      const rejected = await second.agent(joinCommandArgs(cluster, token), 60_000);
      assert.equal(rejected.exitCode, 6, `${rejected.stdout}\n${rejected.stderr}`);
      assert.match(rejected.stderr, /TOKEN_/);
      assert.equal(
        (await second.host.exec('test', ['-e', '/etc/kubernetes/bootstrap-kubelet.conf'])).exitCode,
        1,
      );
      const secondStart = Date.now();
      const again = await second.agent(joinCommandArgs(cluster, await mint(), '4m'), 300_000);
      assert.equal(again.exitCode, 0, `${again.stdout}\n${again.stderr}`);
      joinedAt.set(second.hostname, secondStart);

      const core = hosted.makeApiClient(CoreV1Api);
      for (const worker of workers) {
        await eventually(`Node ${worker.hostname} Ready`, 240_000, async () => {
          const node = await core.readNode({ name: worker.hostname });
          const ready = node.status?.conditions?.find((c) => c.type === 'Ready');
          return ready?.status === 'True' ? true : undefined;
        }).catch(async (error: unknown) => {
          throw new Error(`${String(error)}\n${await hostedReport()}`);
        });
        console.log(
          `# k8s-join (${worker.hostname}) → Node Ready: ${Date.now() - (joinedAt.get(worker.hostname) ?? 0)} ms`,
        );
      }
      const nodes = (await core.listNode()).items;
      assert.deepEqual(nodes.map((n) => n.metadata?.name).sort(), [...WORKERS]);
      for (const line of formatNodeTable(nodes, new Date()).split('\n')) console.log(`# ${line}`);
      for (const node of nodes) {
        assert.equal(node.status?.nodeInfo?.kubeletVersion, 'v1.37.2');
        assert.ok(node.spec?.podCIDR, `${node.metadata?.name ?? '?'} has a pod CIDR`);
      }

      // The kubelet's current certificate is an absolute symlink: read it inside the worker.
      const pem = (await first.host.exec('cat', ['/var/lib/kubelet/pki/kubelet-client-current.pem'])).stdout;
      const certPem = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(pem)?.[0];
      assert.ok(certPem !== undefined, 'kubelet-client-current.pem holds a certificate');
      const cert = new X509Certificate(certPem);
      assert.equal(cert.subject, 'O=system:nodes\nCN=system:node:worker-1');
      assert.ok(cert.checkIssued(new X509Certificate(cluster.caPem)), 'issued by the hosted cluster CA');
      const csrs = (await hosted.makeApiClient(CertificatesV1Api).listCertificateSigningRequest()).items;
      const approved = csrs.filter(
        (c) =>
          c.spec.signerName === 'kubernetes.io/kube-apiserver-client-kubelet' &&
          c.status?.conditions?.some((cond) => cond.type === 'Approved') === true,
      );
      assert.equal(approved.length, 2, 'one approved kubelet client CSR per worker');
      for (const csr of approved) assert.match(csr.spec.username ?? '', /^system:bootstrap:[a-z0-9]{6}$/);
    },
  );

  it(
    '4. the hosted add-ons run on the workers: kube-proxy and flannel on each, CoreDNS Ready',
    { timeout: 300_000 },
    async () => {
      const core = hosted.makeApiClient(CoreV1Api);
      const start = Date.now();
      const pods = await eventually('kube-proxy, flannel and CoreDNS Ready', 240_000, async () => {
        const all = [
          ...(await core.listNamespacedPod({ namespace: 'kube-system' })).items,
          ...(await core.listNamespacedPod({ namespace: 'kube-flannel' }).catch(() => ({ items: [] }))).items,
        ];
        const on = (app: string) =>
          all.filter((p) => (p.metadata?.labels?.['k8s-app'] ?? p.metadata?.labels?.app) === app);
        const proxies = on('kube-proxy');
        const flannels = on('flannel');
        const dns = on('kube-dns');
        const perNode = (list: V1Pod[]) =>
          WORKERS.every((w) => list.some((p) => p.spec?.nodeName === w && isPodReady(p)));
        return perNode(proxies) && perNode(flannels) && dns.length > 0 && dns.every(isPodReady)
          ? all
          : undefined;
      }).catch(async (error: unknown) => {
        throw new Error(`${String(error)}\n${await hostedReport()}`);
      });
      console.log(`# add-ons Ready ${Date.now() - start} ms after both Nodes were:`);
      console.log(describePods(pods).replace(/^/gm, '#   '));
      for (const worker of workers) {
        const since = joinedAt.get(worker.hostname) ?? start;
        console.log(
          `# k8s-join (${worker.hostname}) → Node Ready with its add-ons Running: ${Date.now() - since} ms`,
        );
      }
      for (const pod of pods) {
        const events = await core.listNamespacedEvent({
          namespace: pod.metadata?.namespace ?? '',
          fieldSelector: `involvedObject.name=${pod.metadata?.name ?? ''}`,
        });
        assert.ok(
          !events.items.some((e) => e.reason === 'Pulling'),
          `${pod.metadata?.name ?? '?'} pulled an image`,
        );
      }
    },
  );

  it(
    '5. in-cluster: DNS and the API through the kubernetes Service; pod to pod across workers; a Service by name',
    { timeout: 300_000 },
    async () => {
      const core = hosted.makeApiClient(CoreV1Api);
      const kubernetesIp = (await core.readNamespacedService({ name: 'kubernetes', namespace: 'default' }))
        .spec?.clusterIP;
      assert.ok(kubernetesIp);
      const labels = { 'app.kubernetes.io/name': 'echo' };
      await core.createNamespacedPod({
        namespace: 'default',
        body: {
          metadata: { name: 'echo-server', labels },
          spec: {
            nodeName: 'worker-2',
            containers: [
              {
                name: 'echo',
                image: PROBE_IMAGE,
                args: ['serve', '--port', '8080'],
                ports: [{ containerPort: 8080 }],
              },
            ],
          },
        },
      });
      await core.createNamespacedService({
        namespace: 'default',
        body: {
          metadata: { name: 'echo' },
          spec: { selector: labels, ports: [{ port: 80, targetPort: 8080 }] },
        },
      });
      const server = await eventually('echo-server Ready', 120_000, async () => {
        const pod = await core.readNamespacedPod({ name: 'echo-server', namespace: 'default' });
        return isPodReady(pod) ? pod : undefined;
      });
      const serverIp = server.status?.podIP;
      assert.ok(serverIp, 'echo-server has a pod IP');

      // Each check is a pod on worker-1 that exits 0 or 1 with its outcome as termination message.
      const checks: Record<string, string[]> = {
        dns: ['resolve', 'kubernetes.default.svc.cluster.local', '--expect-ip', kubernetesIp],
        api: ['api-version'],
        'pod-ip': ['get', `http://${serverIp}:8080/`, '--expect', 'hostname=echo-server'],
        service: ['get', 'http://echo.default.svc.cluster.local/', '--expect', 'hostname=echo-server'],
      };
      for (const [name, args] of Object.entries(checks)) {
        await core.createNamespacedPod({
          namespace: 'default',
          body: {
            metadata: { name: `check-${name}`, labels: { role: 'check' } },
            spec: {
              nodeName: 'worker-1',
              restartPolicy: 'Never',
              containers: [{ name: 'probe', image: PROBE_IMAGE, args: [...args, '--timeout', '60s'] }],
            },
          },
        });
      }
      for (const name of Object.keys(checks)) {
        const pod = await eventually(`check-${name} to finish`, 150_000, async () => {
          const seen = await core.readNamespacedPod({ name: `check-${name}`, namespace: 'default' });
          return ['Succeeded', 'Failed'].includes(seen.status?.phase ?? '') ? seen : undefined;
        }).catch(async (error: unknown) => {
          throw new Error(`${String(error)}\n${await hostedReport()}`);
        });
        const message = pod.status?.containerStatuses?.[0]?.state?.terminated?.message ?? '';
        console.log(
          `# check-${name} (${checks[name]?.join(' ') ?? ''}): ${pod.status?.phase ?? '?'}: ${message.trim()}`,
        );
        assert.equal(pod.status?.phase, 'Succeeded', `check-${name}: ${message}\n${await hostedReport()}`);
        if (name === 'api') assert.match(message, /v1\.37\.2/);
      }
    },
  );

  it(
    "6. kubectl (built from k8s.io/kubernetes) with create's kubeconfig: get nodes, apply a Deployment, logs, exec, get pods -A",
    { timeout: 300_000 },
    async () => {
      const version = await cluster.kubectl(['version', '--output', 'json']);
      assert.equal(version.exitCode, 0, version.stderr);
      const versions = JSON.parse(version.stdout) as {
        clientVersion: { gitVersion: string };
        serverVersion: { gitVersion: string };
      };
      assert.equal(versions.clientVersion.gitVersion, 'v1.37.2');
      assert.equal(versions.serverVersion.gitVersion, 'v1.37.2');
      const nodes = await cluster.kubectl(['get', 'nodes']);
      assert.equal(nodes.exitCode, 0, nodes.stderr);
      console.log(nodes.stdout.trimEnd().replace(/^/gm, '# '));
      for (const worker of WORKERS) assert.match(nodes.stdout, new RegExp(`^${worker}\\s+Ready\\s`, 'm'));

      const manifest = {
        apiVersion: 'apps/v1',
        kind: 'Deployment',
        metadata: { name: 'hello', namespace: 'default' },
        spec: {
          replicas: 2,
          selector: { matchLabels: { app: 'hello' } },
          template: {
            metadata: { labels: { app: 'hello' } },
            spec: {
              topologySpreadConstraints: [
                {
                  maxSkew: 1,
                  topologyKey: 'kubernetes.io/hostname',
                  whenUnsatisfiable: 'DoNotSchedule',
                  labelSelector: { matchLabels: { app: 'hello' } },
                },
              ],
              containers: [{ name: 'hello', image: PROBE_IMAGE, args: ['serve', '--port', '8080'] }],
            },
          },
        },
      };
      const applied = await cluster.kubectl(['apply', '-f', '-'], { input: JSON.stringify(manifest) });
      assert.equal(applied.exitCode, 0, applied.stderr);
      assert.match(applied.stdout, /deployment.apps\/hello created/);
      const rolled = await cluster.kubectl(['rollout', 'status', 'deployment/hello', '--timeout', '150s'], {
        timeoutMs: 180_000,
      });
      assert.equal(rolled.exitCode, 0, `${rolled.stdout}${rolled.stderr}\n${await hostedReport()}`);
      const placed = await cluster.kubectl([
        ...['get', 'pods', '-l', 'app=hello', '-o', 'jsonpath={range .items[*]}{.spec.nodeName}{"\\n"}{end}'],
      ]);
      assert.deepEqual(placed.stdout.trim().split('\n').sort(), [...WORKERS], 'one replica per worker');

      // The apiserver pod reaches each kubelet (routable here) with its kubelet-client identity.
      const logs = await cluster.kubectl(['logs', 'pod/echo-server']);
      assert.equal(logs.exitCode, 0, logs.stderr);
      assert.match(logs.stdout, /serving/);
      const exec = await cluster.kubectl([
        ...['exec', 'echo-server', '--', '/probe', 'resolve', 'echo.default.svc.cluster.local'],
      ]);
      assert.equal(exec.exitCode, 0, `${exec.stdout}${exec.stderr}`);

      // Those streams were verified: the apiserver trusts kubelets by the kubelet-serving CA alone
      // (--kubelet-certificate-authority), and each kubelet serves with a certificate from it,
      // approved by the join server for its own Node's addresses, not the cluster CA's nor its own.
      const servingCsrs = (
        await hosted.makeApiClient(CertificatesV1Api).listCertificateSigningRequest()
      ).items
        .filter((c) => c.spec.signerName === 'kubernetes.io/kubelet-serving')
        .filter((c) => c.status?.conditions?.some((cond) => cond.reason === 'K8sOnK8sNodeOwnsNames'));
      assert.deepEqual(
        [...new Set(servingCsrs.map((c) => c.spec.username))].sort(),
        WORKERS.map((w) => `system:node:${w}`),
        'a kubelet serving CSR approved by the join server per worker',
      );
      for (const worker of workers) {
        const served = await worker.host.exec('sh', [
          '-c',
          'echo | openssl s_client -connect 127.0.0.1:10250 2>/dev/null | openssl x509 -noout -issuer -ext subjectAltName',
        ]);
        assert.match(
          served.stdout,
          /issuer=CN\s*=\s*kubelet-serving-ca/,
          `${worker.hostname}: ${served.stdout}${served.stderr}`,
        );
        assert.doesNotMatch(served.stdout, /DNS:(?!worker-)/, `${worker.hostname} serves only its own names`);
      }

      const deletedChecks = await cluster.kubectl(['delete', 'pods', '-l', 'role=check', '--wait']);
      assert.equal(deletedChecks.exitCode, 0, deletedChecks.stderr);
      const all = await cluster.kubectl(['get', 'pods', '-A', '-o', 'wide']);
      assert.equal(all.exitCode, 0, all.stderr);
      console.log(all.stdout.trimEnd().replace(/^/gm, '# '));
      const rows = all.stdout.trim().split('\n').slice(1);
      assert.ok(rows.length >= 9, `kube-proxy×2, flannel×2, CoreDNS, echo-server, hello×2: ${all.stdout}`);
      for (const row of rows) assert.match(row, /\s(\d+)\/\1\s+Running\s/, `all Running and ready: ${row}`);
    },
  );

  it(
    '7. k8s-join reset and k8s-on-k8s delete leave nothing: no pods, claims, labelled objects, units, VIPs, namespaces or processes',
    { timeout: 300_000 },
    async () => {
      for (const worker of workers) {
        const reset = await worker.agent(['reset'], 120_000);
        assert.equal(reset.exitCode, 0, `${reset.stdout}\n${reset.stderr}`);
        assert.doesNotMatch(
          (await worker.host.exec('ip', ['-o', 'addr', 'show', 'dev', 'lo'])).stdout,
          /10\.199\.199\.199/,
        );
        const units = await worker.host.exec('systemctl', [
          ...['list-units', '--all', '--no-legend', 'kubelet.service', 'k8s-join-forwarder.service'],
        ]);
        assert.doesNotMatch(units.stdout, /\bactive\b|activating/);
        for (const path of [
          '/etc/kubernetes/bootstrap-kubelet.conf',
          '/etc/kubernetes/kubelet.conf',
          '/var/lib/kubelet/pki/kubelet-client-current.pem',
          '/etc/systemd/system/kubelet.service',
          '/etc/systemd/system/k8s-join-forwarder.service',
          '/var/lib/k8s-join',
          '/etc/k8s-join',
        ]) {
          assert.equal(
            (await worker.host.exec('test', ['-e', path])).exitCode,
            1,
            `${worker.hostname}: ${path} gone`,
          );
        }
      }

      const deleted = await cluster.cli([
        ...['delete', NAME, '-n', NAMESPACE, '--kubeconfig', cluster.infraKubeconfigPath],
      ]);
      assert.equal(deleted.exitCode, 0, `${deleted.stdout}\n${deleted.stderr}`);
      assert.match(deleted.stdout, /deleted control plane e2e: \d+ objects/);
      const infra = cluster.infra.api.kubeConfig();
      const core = infra.makeApiClient(CoreV1Api);
      const apps = infra.makeApiClient(AppsV1Api);
      // The node's kubelet stops the pods once their owners are gone.
      const start = Date.now();
      await eventually('the control-plane pods to be gone', 180_000, async () =>
        (await core.listNamespacedPod({ namespace: NAMESPACE })).items.length === 0 ? true : undefined,
      );
      console.log(`# delete → no pods left in ${NAMESPACE}: ${Date.now() - start} ms`);
      const listed = await cluster.cli([
        'list',
        '-n',
        NAMESPACE,
        '--kubeconfig',
        cluster.infraKubeconfigPath,
      ]);
      assert.equal(listed.stdout.trim(), `no control planes in namespace ${NAMESPACE}`);
      const selector = { namespace: NAMESPACE, labelSelector: CONTROL_PLANE_LABEL };
      const left = [
        ...(await core.listNamespacedSecret(selector)).items,
        ...(await core.listNamespacedConfigMap(selector)).items,
        ...(await core.listNamespacedService(selector)).items,
        ...(await core.listNamespacedPersistentVolumeClaim({ namespace: NAMESPACE })).items,
        ...(await apps.listNamespacedDeployment(selector)).items,
        ...(await apps.listNamespacedStatefulSet(selector)).items,
      ].map((o) => o.metadata?.name);
      assert.deepEqual(left, []);
      // The node runs only the infra cluster's own add-ons now (exited containers wait for the
      // kubelet's garbage collection; running tasks are what counts).
      const ctr = async (args: string[]): Promise<string[][]> =>
        (await cluster.infra.node.exec('ctr', ['--namespace', 'k8s.io', ...args])).stdout
          .trim()
          .split('\n')
          .slice(1)
          .map((line) => line.split(/\s+/));
      const running = new Set(
        (await ctr(['tasks', 'list'])).filter((t) => t[2] === 'RUNNING').map((t) => t[0]),
      );
      const images = (await ctr(['containers', 'list'])).filter((c) => running.has(c[0])).map((c) => c[1]);
      assert.ok(images.length > 0, 'the infra add-ons still run');
      for (const image of cluster.controlPlaneImages) {
        assert.ok(
          !images.includes(image),
          `no running container of ${image} on the node: ${images.join(' ')}`,
        );
      }
      const volumes = (await core.listPersistentVolume()).items.map(
        (v) => `${v.metadata?.name ?? '?'} ${v.status?.phase ?? '?'}`,
      );
      console.log(
        `# the infra node's local volumes after delete (Retain, the infra's policy): ${volumes.join(', ')}`,
      );

      const needles = [cluster.dir, cluster.infra.api.dir, ...workers.map((w) => w.host.stateDir)];
      for (const w of workers.splice(0)) await w.stop();
      await cluster.stop();
      const ours = `${TEST_RESOURCE_PREFIX}${process.pid}-`;
      const namespaces = (await execa('ip', ['netns', 'list'])).stdout
        .split('\n')
        .filter((l) => l.startsWith(ours));
      assert.deepEqual(namespaces, [], 'no network namespace of this test is left');
      assert.deepEqual(processesMentioning(needles), [], 'no process of this test is left');
    },
  );
});
