// The whole story on one machine: an infra cluster (a harness apiserver), a hosted control plane
// made by the real `k8s-on-k8s create` and run from what it stored there (inside a control-plane
// network namespace that holds the NodePort address), the join server it rendered, and workers in
// their own network namespaces (systemd as PID 1) that join with the unmodified agent through the
// VIP. Traffic stays on the machine's loopback and inside namespaces the test made.
import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readdirSync, readFileSync } from 'node:fs';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AppsV1Api,
  CertificatesV1Api,
  CoreV1Api,
  RbacAuthorizationV1Api,
  VersionApi,
  type KubeConfig,
  type V1Node,
} from '@kubernetes/client-node';
import { BOOTSTRAPPERS_GROUP, CONTROL_PLANE_LABEL } from '@k8s-on-k8s/server';
import { execa } from 'execa';
import {
  TEST_RESOURCE_PREFIX,
  cleanupStaleTestResources,
  formatNodeTable,
  startHostedCluster,
  startJoinWorker,
  type HostedCluster,
  type JoinWorker,
  type NodeBootstrapMode,
  eventually,
  joinCommandArgs,
  nodeBootstrapModeFromEnv,
} from '../harness/index.js';

const NAME = 'e2e';
const NAMESPACE = 'hosted-e2e';
const VIP = '10.199.199.199';
// The real kubelet (with containerd from the worker root) registers the Node and must make it
// Ready. K8S_ON_K8S_NODE_BOOTSTRAP=tls-bootstrap selects the fallback for machines where a kubelet
// cannot run: its TLS bootstrap done by a process with the agent's bootstrap kubeconfig.
const MODE: NodeBootstrapMode = nodeBootstrapModeFromEnv();

/** Reads a Node until it exists, or gives up at the deadline. */
async function waitForNode(
  kubeConfig: KubeConfig,
  name: string,
  timeoutMs: number,
): Promise<V1Node | undefined> {
  const core = kubeConfig.makeApiClient(CoreV1Api);
  const deadline = Date.now() + timeoutMs;
  while (Date.now() < deadline) {
    const node = await core.readNode({ name }).catch(() => undefined);
    if (node !== undefined) return node;
    await sleep(250);
  }
  return undefined;
}

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

describe(`join end to end: create, token, k8s-join in a namespace, Node registered (${MODE})`, () => {
  let dir: string;
  let cluster: HostedCluster;
  let hosted: KubeConfig;
  const workers: JoinWorker[] = [];
  let token = '';
  let joinArgs: (token: string) => string[];

  before(async () => {
    console.log(
      `# node bootstrap: ${MODE === 'kubelet' ? 'the real kubelet v1.37.2 with containerd' : 'fallback TLS bootstrap with the agent bootstrap kubeconfig (K8S_ON_K8S_NODE_BOOTSTRAP=tls-bootstrap)'}`,
    );
    await cleanupStaleTestResources();
    dir = await mkdtemp(join(tmpdir(), 'k8s-on-k8s-e2e-'));
  });

  after(async () => {
    for (const worker of workers) await worker.stop();
    await (cluster as HostedCluster | undefined)?.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it(
    '1. k8s-on-k8s create; the components run from the stored objects; /readyz through the exposure',
    { timeout: 300_000 },
    async () => {
      cluster = await startHostedCluster({ name: NAME, namespace: NAMESPACE });
      hosted = cluster.hostedKubeConfig();
      assert.match(cluster.createOutput, new RegExp(`readyz: ok after`));
      assert.match(cluster.createOutput, /installed into the hosted cluster: \d+ objects/);
      assert.match(cluster.createOutput, /Server Version: v1\.37\.2/);
      const version = await hosted.makeApiClient(VersionApi).getCode();
      assert.equal(version.gitVersion, 'v1.37.2');
      // Node bootstrap RBAC comes from create's hosted assets, nothing applied by hand.
      const rbac = hosted.makeApiClient(RbacAuthorizationV1Api);
      const bindings = (await rbac.listClusterRoleBinding()).items;
      const grants = (role: string): string[] =>
        bindings
          .filter((b) => b.roleRef.name === role)
          .flatMap((b) => (b.subjects ?? []).map((s) => `${s.kind}/${s.name}`));
      assert.ok(
        grants('system:node-bootstrapper').includes(`Group/${BOOTSTRAPPERS_GROUP}`),
        JSON.stringify(grants('system:node-bootstrapper')),
      );
      assert.ok(
        grants('system:certificates.k8s.io:certificatesigningrequests:nodeclient').includes(
          `Group/${BOOTSTRAPPERS_GROUP}`,
        ),
      );
      assert.ok(
        grants('system:certificates.k8s.io:certificatesigningrequests:selfnodeclient').includes(
          'Group/system:nodes',
        ),
      );
      console.log(
        `# create → hosted /readyz: ${cluster.createToReadyzMs} ms (create done, hosted assets installed: ${cluster.createMs} ms)`,
      );
    },
  );

  it(
    '2. token create --uses 1; k8s-join in the worker namespace; forwarder on the VIP; bootstrap through the VIP',
    { timeout: 400_000 },
    async () => {
      const minted = await cluster.cli([
        'token',
        'create',
        '--server',
        cluster.joinUrl,
        '--kubeconfig',
        cluster.kubeconfigPath,
        '--uses',
        '1',
        '--ttl',
        '15m',
        '--output',
        'json',
      ]);
      assert.equal(minted.exitCode, 0, `${minted.stdout}\n${minted.stderr}`);
      const created = JSON.parse(minted.stdout) as { token: string; joinCommand: string; usesLeft: number };
      token = created.token;
      assert.equal(created.usesLeft, 1);
      assert.ok(created.joinCommand.includes(cluster.caCertHash), created.joinCommand);
      joinArgs = (t) => joinCommandArgs(cluster, t, MODE);

      const worker = await startJoinWorker({ cluster, index: 1, hostname: 'worker-1', mode: MODE, dir });
      workers.push(worker);
      const start = Date.now();
      const joined = await worker.agent(joinArgs(token));
      assert.equal(joined.exitCode, 0, `${joined.stdout}\n${joined.stderr}`);
      assert.match(joined.stdout, /joined worker-1 to https:\/\/198\.18\.0\.1:30843 in/);
      assert.match(
        (await worker.host.exec('ip', ['-o', 'addr', 'show', 'dev', 'lo'])).stdout,
        /inet 10\.199\.199\.199\/32/,
      );
      const listening = await worker.host.exec('ss', ['-Hltn', `src ${VIP}:443`]);
      assert.match(listening.stdout, /10\.199\.199\.199:443/, listening.stderr);
      assert.equal(
        (await worker.host.exec('systemctl', ['is-active', 'k8s-join-forwarder.service'])).stdout.trim(),
        'active',
      );
      const bootstrapConf = await worker.host.readFile('/etc/kubernetes/bootstrap-kubelet.conf');
      assert.match(bootstrapConf, /server: https:\/\/10\.199\.199\.199:443/);

      if (MODE === 'tls-bootstrap') {
        const result = await worker.tlsBootstrap();
        console.log(
          `# fallback TLS bootstrap through the VIP: CSR ${result.csrName} signed after ${result.csrApprovedMs} ms, Node created after ${result.nodeRegisteredMs} ms`,
        );
      }
      const node = await waitForNode(hosted, 'worker-1', 120_000);
      assert.ok(node, 'Node worker-1 registered');
      console.log(`# k8s-join start → Node registered: ${Date.now() - start} ms`);
      if (MODE === 'kubelet') {
        // The real kubelet, with containerd and a CNI config, must also make its Node Ready.
        await eventually('Node worker-1 to be Ready', 120_000, async () => {
          const current = await hosted.makeApiClient(CoreV1Api).readNode({ name: 'worker-1' });
          const ready = current.status?.conditions?.find((c) => c.type === 'Ready');
          return ready?.status === 'True' ? true : undefined;
        });
        console.log(`# k8s-join start → Node Ready: ${Date.now() - start} ms`);
      }
    },
  );

  it(
    '3. get nodes shows the node with a system:node:<name> certificate; the same token fails for a second worker',
    { timeout: 300_000 },
    async () => {
      const nodes = (await hosted.makeApiClient(CoreV1Api).listNode()).items;
      assert.deepEqual(
        nodes.map((n) => n.metadata?.name),
        ['worker-1'],
      );
      for (const line of formatNodeTable(nodes, new Date()).split('\n')) console.log(`# ${line}`);
      if (MODE === 'kubelet') {
        const ready = nodes[0]?.status?.conditions?.find((c) => c.type === 'Ready');
        assert.equal(nodes[0]?.status?.nodeInfo?.kubeletVersion, 'v1.37.2');
        console.log(`# Ready: ${ready?.status ?? 'none'} ${ready?.reason ?? ''}`);
      }

      const worker = workers[0];
      assert.ok(worker);
      // The kubelet's current certificate is an absolute symlink: read it inside the worker.
      const pem = (await worker.host.exec('cat', ['/var/lib/kubelet/pki/kubelet-client-current.pem'])).stdout;
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
      assert.ok(approved.length >= 1, 'an approved kubelet client CSR');
      assert.match(
        approved[0]?.spec.username ?? '',
        /^system:bootstrap:[a-z0-9]{6}$/,
        'requested with a per-node bootstrap token',
      );

      const second = await startJoinWorker({ cluster, index: 2, hostname: 'worker-2', mode: MODE, dir });
      workers.push(second);
      const rejected = await second.agent(joinArgs(token), 60_000);
      assert.equal(rejected.exitCode, 6, `${rejected.stdout}\n${rejected.stderr}`);
      assert.match(rejected.stderr, /TOKEN_/);
      assert.equal(
        (await second.host.exec('test', ['-e', '/etc/kubernetes/bootstrap-kubelet.conf'])).exitCode,
        1,
      );
      assert.equal(await waitForNode(hosted, 'worker-2', 2000), undefined);
    },
  );

  it(
    '4. k8s-join reset leaves no VIP, units or files; k8s-on-k8s delete leaves the infra namespace empty; nothing outlives the test',
    { timeout: 300_000 },
    async () => {
      const worker = workers[0];
      assert.ok(worker);
      const reset = await worker.agent(['reset'], 120_000);
      assert.equal(reset.exitCode, 0, `${reset.stdout}\n${reset.stderr}`);
      assert.doesNotMatch(
        (await worker.host.exec('ip', ['-o', 'addr', 'show', 'dev', 'lo'])).stdout,
        /10\.199\.199\.199/,
      );
      const units = await worker.host.exec('systemctl', [
        'list-unit-files',
        '--no-legend',
        'kubelet.service',
        'k8s-join-forwarder.service',
      ]);
      assert.equal(units.stdout.trim(), '', 'no unit files');
      const active = await worker.host.exec('systemctl', [
        'list-units',
        '--all',
        '--no-legend',
        'kubelet.service',
        'k8s-join-forwarder.service',
      ]);
      assert.doesNotMatch(active.stdout, /\bactive\b|activating/);
      for (const path of [
        '/etc/kubernetes/pki/ca.crt',
        '/etc/kubernetes/bootstrap-kubelet.conf',
        '/etc/kubernetes/kubelet.conf',
        '/var/lib/kubelet/config.yaml',
        '/var/lib/kubelet/pki/kubelet-client-current.pem',
        '/etc/systemd/system/kubelet.service',
        '/etc/systemd/system/k8s-join-forwarder.service',
        '/etc/systemd/system/kubelet.service.d',
        '/var/lib/k8s-join',
        '/etc/k8s-join',
      ]) {
        assert.equal((await worker.host.exec('test', ['-e', path])).exitCode, 1, `${path} should be gone`);
      }

      const deleted = await cluster.cli([
        'delete',
        NAME,
        '-n',
        NAMESPACE,
        '--kubeconfig',
        cluster.infra.adminKubeconfigPath,
      ]);
      assert.equal(deleted.exitCode, 0, `${deleted.stdout}\n${deleted.stderr}`);
      assert.match(deleted.stdout, /deleted control plane e2e: \d+ objects/);
      // The infra cluster's kubelet would now stop the pods: so does the stand-in.
      await cluster.stopComponents();
      const listed = await cluster.cli([
        'list',
        '-n',
        NAMESPACE,
        '--kubeconfig',
        cluster.infra.adminKubeconfigPath,
      ]);
      assert.equal(listed.stdout.trim(), `no control planes in namespace ${NAMESPACE}`);
      const infra = cluster.infra.kubeConfig();
      const core = infra.makeApiClient(CoreV1Api);
      const apps = infra.makeApiClient(AppsV1Api);
      const selector = { namespace: NAMESPACE, labelSelector: CONTROL_PLANE_LABEL };
      const left = [
        ...(await core.listNamespacedSecret(selector)).items,
        ...(await core.listNamespacedConfigMap(selector)).items,
        ...(await core.listNamespacedService(selector)).items,
        ...(await core.listNamespacedPersistentVolumeClaim(selector)).items,
        ...(await apps.listNamespacedDeployment(selector)).items,
        ...(await apps.listNamespacedStatefulSet(selector)).items,
      ].map((o) => o.metadata?.name);
      assert.deepEqual(left, []);

      const needles = [cluster.rendered.dir, cluster.infra.dir, ...workers.map((w) => w.host.stateDir)];
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
