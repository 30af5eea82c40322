import assert from 'node:assert/strict';
import { X509Certificate } from 'node:crypto';
import { readFile } from 'node:fs/promises';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  CertificatesV1Api,
  CoreV1Api,
  KubernetesObjectApi,
  type KubernetesObject,
  type V1Pod,
} from '@kubernetes/client-node';
import { caCertHash, type CertifiedKeyPair } from '@k8s-on-k8s/shared';
import { BOOTSTRAPPERS_GROUP } from '@k8s-on-k8s/server';
import {
  callJoinServer,
  eventually,
  KUBELET_KERNEL_TUNABLES,
  startJoinTestbed,
  type InProcessJoinServer,
  type JoinTestbed,
  type LocalKubeCluster,
  type WorkerHost,
} from '../harness/index.js';

// A real kubelet (v1.37.2) with a real container runtime (the worker root's containerd, runc and
// CNI plugins, and the offline-built pause image) inside a systemd worker host: the agent joins it
// through a real join server, TLS bootstrap gets it a node client certificate, its Node turns
// Ready, and a pod runs on it. Same network set-up as agent-join.test.ts.
const NODE_NAME = 'kubelet-1';
const PAUSE_IMAGE = 'localhost/k8s-on-k8s/pause:1';
const RBAC = 'rbac.authorization.k8s.io';

/**
 * What `create` grants the join server's bootstrap tokens (renderHostedAssets), applied here by
 * hand: CSR creation and renewal, never auto-approval (the join server approves by node name).
 */
function nodeBootstrapBindings(): KubernetesObject[] {
  const binding = (name: string, role: string, group: string): KubernetesObject =>
    ({
      apiVersion: `${RBAC}/v1`,
      kind: 'ClusterRoleBinding',
      metadata: { name },
      roleRef: { apiGroup: RBAC, kind: 'ClusterRole', name: role },
      subjects: [{ apiGroup: RBAC, kind: 'Group', name: group }],
    }) as KubernetesObject;
  return [
    binding('test:node-bootstrapper', 'system:node-bootstrapper', BOOTSTRAPPERS_GROUP),
    binding(
      'test:node-autoapprove-certificate-rotation',
      'system:certificates.k8s.io:certificatesigningrequests:selfnodeclient',
      'system:nodes',
    ),
  ];
}

describe('a real kubelet with containerd in a systemd worker host', () => {
  let bed: JoinTestbed;
  let cp: LocalKubeCluster;
  let worker: WorkerHost;
  let server: InProcessJoinServer;
  let admin: CertifiedKeyPair;
  let core: CoreV1Api;
  let machineTunables: string[];

  /** The test machine's values of the sysctls a kubelet wants to set. */
  const readMachineTunables = (): Promise<string[]> =>
    Promise.all(
      Object.keys(KUBELET_KERNEL_TUNABLES).map(async (name) => {
        const value = await readFile(`/proc/sys/${name}`, 'utf8');
        return `${name}=${value.trim()}`;
      }),
    );

  /** The last lines of the runtime's and the kubelet's journals, for assertion messages. */
  const journal = async (lines = 60): Promise<string> => {
    const result = await worker.exec('journalctl', [
      '--no-pager',
      '-o',
      'short-monotonic',
      '-n',
      String(lines),
      '-u',
      'kubelet',
      '-u',
      'containerd',
      '-u',
      'k8s-on-k8s-pause-image',
    ]);
    return `--- journalctl -u kubelet -u containerd ---\n${result.stdout}${result.stderr}`;
  };

  before(async () => {
    machineTunables = await readMachineTunables();
    bed = await startJoinTestbed({
      name: 'kubelet-in-worker',
      hostname: NODE_NAME,
      prepareCluster: async (cluster) => {
        const objects = KubernetesObjectApi.makeApiClient(cluster.kubeConfig());
        for (const object of nodeBootstrapBindings()) await objects.create(object);
      },
    });
    ({ cp, server, admin, worker } = bed);
    core = cp.kubeConfig().makeApiClient(CoreV1Api);
  });

  after(async () => {
    await bed.stop();
  });

  it('boots containerd with the CRI plugin and the offline pause image', async () => {
    // A oneshot unit: `start` returns once the import has finished (or failed).
    const started = await worker.exec('systemctl', ['start', 'k8s-on-k8s-pause-image.service']);
    assert.equal(started.exitCode, 0, `${started.stderr}\n${await journal()}`);
    const images = await worker.exec('ctr', ['--namespace', 'k8s.io', 'images', 'list', '--quiet']);
    assert.equal(images.exitCode, 0, images.stderr);
    assert.ok(images.stdout.split('\n').includes(PAUSE_IMAGE), images.stdout);
    const plugins = await worker.exec('ctr', ['plugins', 'list']);
    assert.match(plugins.stdout, /io\.containerd\.grpc\.v1\s+cri\s+\S+\s+ok/);
    const version = await worker.exec('containerd', ['--version']);
    console.log(`# ${version.stdout.trim()}`);
  });

  it('joins without ignoring the runtime preflight; TLS bootstrap gives it system:node:<name>', async () => {
    const minted = await callJoinServer(`${server.url}/v1/tokens`, {
      caPem: cp.ca.certPem,
      clientCert: admin,
      body: { ttl: '10m', uses: 1 },
    });
    assert.equal(minted.status, 201, minted.text);
    const { token, id } = minted.json() as { token: string; id: string };
    await worker.writeFile('/root/token', `${token}\n`, 0o600);

    const start = Date.now();
    const result = await worker.exec(
      '/opt/bin/k8s-join',
      [
        '--server',
        bed.serverUrl,
        '--ca-cert-hash',
        caCertHash(cp.ca.certPem),
        '--token-file',
        '/root/token',
        '--wait',
        '--timeout',
        '3m',
      ],
      { timeoutMs: 240_000 },
    );
    assert.equal(result.exitCode, 0, `${result.stdout}\n${result.stderr}\n${await journal()}`);
    console.log(`# join --wait: Node registered after ${Date.now() - start} ms`);

    // An absolute symlink to the dated file: read it inside the worker, not through /proc/<pid>/root.
    const pem = (await worker.exec('cat', ['/var/lib/kubelet/pki/kubelet-client-current.pem'])).stdout;
    const certPem = /-----BEGIN CERTIFICATE-----[^-]+-----END CERTIFICATE-----/.exec(pem)?.[0];
    assert.ok(certPem !== undefined, 'kubelet-client-current.pem holds a certificate');
    const cert = new X509Certificate(certPem);
    assert.equal(cert.subject, `O=system:nodes\nCN=system:node:${NODE_NAME}`);
    assert.ok(cert.checkIssued(new X509Certificate(cp.ca.certPem)), 'signed by the cluster CA');

    // Approved by the join server for the token's node name, and the bootstrap token is spent.
    const csrs = await cp.kubeConfig().makeApiClient(CertificatesV1Api).listCertificateSigningRequest();
    const approvals = csrs.items
      .filter((csr) => (csr.spec.username ?? '').startsWith('system:bootstrap:'))
      .map((csr) => csr.status?.conditions?.find((c) => c.type === 'Approved')?.reason);
    assert.deepEqual(approvals, ['K8sOnK8sNodeNameMatches']);
    await eventually('the bootstrap token to be deleted', 30_000, async () => {
      const left = await core.listNamespacedSecret({
        namespace: 'kube-system',
        labelSelector: `k8s-on-k8s.io/join-token-id=${id}`,
      });
      return left.items.length === 0 ? true : undefined;
    });

    const node = await core.readNode({ name: NODE_NAME });
    assert.equal(node.status?.nodeInfo?.kubeletVersion, 'v1.37.2');
    assert.match(node.status.nodeInfo.containerRuntimeVersion, /^containerd:\/\//);
  });

  it('the Node becomes Ready', async () => {
    const start = Date.now();
    const deadline = start + 120_000;
    let ready: string | undefined;
    while (Date.now() < deadline) {
      const node = await core.readNode({ name: NODE_NAME });
      const condition = node.status?.conditions?.find((c) => c.type === 'Ready');
      ready = `${condition?.status ?? 'none'} ${condition?.reason ?? ''}: ${condition?.message ?? ''}`;
      if (condition?.status === 'True') break;
      await sleep(1000);
    }
    assert.match(ready ?? '', /^True /, `Node ${NODE_NAME} not Ready: ${ready ?? ''}\n${await journal(120)}`);
    console.log(`# Node Ready ${Date.now() - start} ms after registration was seen`);
    // Its container manager is up, yet the machine's kernel.panic_on_oops & co. are untouched.
    assert.deepEqual(await readMachineTunables(), machineTunables);
    const seen = await worker.exec('cat', [
      '/proc/sys/kernel/panic_on_oops',
      '/proc/sys/vm/overcommit_memory',
    ]);
    assert.equal(seen.stdout, '1\n1', 'the kubelet sees the values it wants');
  });

  it('runs a pod: sandbox from the pause image, an address from the bridge CNI', async () => {
    // Bound to the node directly, so no scheduler is needed; the only image there is the pause image.
    const pod: V1Pod = {
      metadata: { name: 'pause', namespace: 'default' },
      spec: {
        nodeName: NODE_NAME,
        automountServiceAccountToken: false,
        containers: [{ name: 'pause', image: PAUSE_IMAGE, imagePullPolicy: 'Never' }],
      },
    };
    await core.createNamespacedPod({ namespace: 'default', body: pod });
    const deadline = Date.now() + 90_000;
    let seen: V1Pod | undefined;
    while (Date.now() < deadline) {
      seen = await core.readNamespacedPod({ name: 'pause', namespace: 'default' });
      if (seen.status?.phase === 'Running' && seen.status.podIP !== undefined) break;
      await sleep(1000);
    }
    assert.equal(
      seen?.status?.phase,
      'Running',
      `${JSON.stringify(seen?.status, null, 2)}\n${await journal(80)}`,
    );
    assert.match(seen.status.podIP ?? '', /^10\.88\.0\.\d+$/);
    // The bridge plugin made cni0 the pods' gateway on the node.
    const bridge = await worker.exec('ip', ['-o', '-4', 'addr', 'show', 'dev', 'cni0']);
    assert.match(bridge.stdout, /inet 10\.88\.0\.1\/24/);
  });
});
