// Proof that a rendered control plane works, not just that it parses: `create` applies it to a
// real infra apiserver; loadRenderedControlPlane (test/harness/kube) reads back what was stored there
// (StatefulSet, Deployments, Secrets), lays the pods' Secret volumes out under a temp dir and runs
// the harness-built etcd, kube-apiserver, kube-controller-manager and kube-scheduler with exactly the
// rendered args (paths mapped onto the temp dir, ports onto loopback); this test reaches /readyz
// with the rendered admin kubeconfig and applies the hosted-cluster assets to it.
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import { X509Certificate, generateKeyPairSync } from 'node:crypto';
import {
  CertificatesV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  VersionApi,
  type KubernetesObject,
} from '@kubernetes/client-node';
import { parseKubeconfig, resolveKubeconfig } from '@k8s-on-k8s/shared';
import {
  applyObjects,
  runCreate,
  runKubeconfig,
  runRender,
  waitForReadyz,
  type ControlPlaneCommandDeps,
} from '@k8s-on-k8s/server';
import { parseAllDocuments } from 'yaml';
import {
  freePort,
  loadRenderedControlPlane,
  runCommand,
  startLocalKubeCluster,
  type LocalKubeCluster,
  type RenderedControlPlane,
} from '../harness/index.js';

const NAME = 'proof';
const NAMESPACE = 'hosted-proof';

function captureDeps(cwd: string): ControlPlaneCommandDeps & { out: string[] } {
  const out: string[] = [];
  return {
    out,
    stdout: (line) => out.push(line),
    stderr: (line) => out.push(line),
    cwd,
    now: () => new Date(),
    lookupHost: () => Promise.resolve(['127.0.0.1']),
  };
}

function etcdRange(
  url: string,
  key: string,
  tls: { ca: Buffer; cert: Buffer; key: Buffer },
): Promise<{ kvs?: { value: string }[] }> {
  return new Promise((resolve, reject) => {
    const req = request(`${url}/v3/kv/range`, { method: 'POST', ...tls }, (res) => {
      let body = '';
      res.on('data', (chunk: Buffer) => (body += chunk.toString('utf8')));
      res.on('end', () => {
        resolve(JSON.parse(body) as { kvs?: { value: string }[] });
      });
    });
    req.on('error', reject);
    req.end(JSON.stringify({ key: Buffer.from(key).toString('base64') }));
  });
}

describe('a rendered control plane runs (harness binaries with the rendered args and Secrets)', () => {
  let infra: LocalKubeCluster;
  let root: string;
  let rendered: RenderedControlPlane;
  let hosted: KubeConfig;

  before(async () => {
    infra = await startLocalKubeCluster({ name: 'proof-infra' });
    root = await mkdtemp(join(tmpdir(), 'k8s-on-k8s-proof-'));
    const core = infra.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    const deps = captureDeps(root);
    const code = await runCreate(
      [
        NAME,
        '-n',
        NAMESPACE,
        '--host',
        '127.0.0.1',
        '--kubeconfig',
        infra.adminKubeconfigPath,
        '--wait',
        '0',
      ],
      deps,
    );
    assert.equal(code, 0, deps.out.join('\n'));
    // Loopback ports of our choosing rather than the NodePorts, which nothing reserves on this machine.
    const [apiPort, joinPort] = await Promise.all([freePort(), freePort()]);
    rendered = await loadRenderedControlPlane({
      infraKubeConfig: infra.kubeConfig(),
      name: NAME,
      namespace: NAMESPACE,
      apiPort,
      joinPort,
    });
  });

  after(async () => {
    await rendered.stop();
    await infra.stop();
    await rm(root, { recursive: true, force: true });
  });

  it('starts etcd and kube-apiserver from the rendered args; the rendered admin kubeconfig reaches /readyz', async () => {
    const apiUrl = rendered.apiUrl;
    await rendered.start('etcd');
    await rendered.start('apiserver');

    const deps = captureDeps(root);
    assert.equal(
      await runKubeconfig([NAME, '-n', NAMESPACE, '--kubeconfig', infra.adminKubeconfigPath], deps),
      0,
    );
    const kubeconfigText = deps.out.join('\n');
    const admin = resolveKubeconfig(parseKubeconfig(kubeconfigText));
    assert.match(
      admin.server,
      /^https:\/\/127\.0\.0\.1:3\d{4}$/,
      'the kubeconfig names the allocated NodePort',
    );
    // The NodePort is the infra cluster's; here the apiserver listens on a loopback port instead.
    const kubeconfig = kubeconfigText.replace(admin.server, apiUrl);
    hosted = new KubeConfig();
    hosted.loadFromString(kubeconfig);
    const progress: string[] = [];
    try {
      await waitForReadyz({
        url: apiUrl,
        caPem: admin.caPem ?? '',
        clientCertPem: admin.clientCertPem ?? '',
        clientKeyPem: admin.clientKeyPem ?? '',
        timeoutMs: 60_000,
        intervalMs: 250,
        onProgress: (line) => progress.push(line),
      });
    } catch (error) {
      throw new Error(`${String(error)}\n${rendered.group.logTails()}`);
    }
    assert.match(progress.at(-1) ?? '', /readyz: ok after/);
    const version = await hosted.makeApiClient(VersionApi).getCode();
    assert.equal(version.gitVersion, 'v1.37.2');
  });

  it('runs kube-controller-manager and kube-scheduler from the rendered args and kubeconfig Secrets', async () => {
    // Their kubeconfigs name the apiserver's in-infra Service; start() points them at its real URL.
    for (const component of ['controller-manager', 'scheduler'] as const) {
      await rendered.start(component);
      const kubeconfig = await readFile(
        join(rendered.componentRoot(component), '/etc/kubernetes/kubeconfig/kubeconfig'),
        'utf8',
      );
      assert.ok(kubeconfig.includes(`server: ${rendered.apiUrl}`), kubeconfig);
    }
    // The root-ca-cert-publisher (a controller-manager controller, using the rendered CA files)
    // puts kube-root-ca.crt into every namespace; the scheduler takes its leader lease.
    const core = hosted.makeApiClient(CoreV1Api);
    const coordination = hosted.makeApiClient(CoordinationV1Api);
    const deadline = Date.now() + 60_000;
    let seen = { rootCa: false, schedulerLease: false, kcmLease: false };
    while (Date.now() < deadline && !(seen.rootCa && seen.schedulerLease && seen.kcmLease)) {
      const leases = await coordination
        .listNamespacedLease({ namespace: 'kube-system' })
        .catch(() => ({ items: [] }));
      const names = leases.items.map((l) => l.metadata?.name);
      seen = {
        rootCa: await core
          .readNamespacedConfigMap({ name: 'kube-root-ca.crt', namespace: 'default' })
          .then(() => true)
          .catch(() => false),
        schedulerLease: names.includes('kube-scheduler'),
        kcmLease: names.includes('kube-controller-manager'),
      };
      if (!(seen.rootCa && seen.schedulerLease && seen.kcmLease)) await sleep(500);
    }
    assert.deepEqual(seen, { rootCa: true, schedulerLease: true, kcmLease: true }, rendered.group.logTails());
  });

  it('signs kubelet serving certificates with the kubelet-serving CA, and no serving certificate with the cluster CA', async () => {
    // The cluster CA is what workers pin for the join server and the apiserver; a certificate a
    // node or anyone with CSR rights can obtain must never be a serving certificate from it.
    const certificates = hosted.makeApiClient(CertificatesV1Api);
    const csrPem = async (subject: string, altNames: string): Promise<string> => {
      const keyPath = join(root, `csr-${String(Date.now())}.key`);
      const { privateKey } = generateKeyPairSync('ec', { namedCurve: 'prime256v1' });
      await writeFile(keyPath, privateKey.export({ type: 'pkcs8', format: 'pem' }), { mode: 0o600 });
      const made = await runCommand(
        'openssl',
        ['req', '-new', '-key', keyPath, '-subj', subject, '-addext', `subjectAltName=${altNames}`],
        { timeoutMs: 10_000 },
      );
      assert.equal(made.exitCode, 0, made.stderr);
      return made.stdout;
    };
    const requestApproved = async (name: string, signerName: string, usages: string[], pem: string) => {
      await certificates.createCertificateSigningRequest({
        body: {
          metadata: { name },
          spec: { request: Buffer.from(pem).toString('base64'), signerName, usages },
        },
      });
      const csr = await certificates.readCertificateSigningRequest({ name });
      csr.status = Object.assign(csr.status ?? {}, {
        conditions: [{ type: 'Approved', status: 'True', reason: 'Test', message: 'approved by the test' }],
      });
      await certificates.replaceCertificateSigningRequestApproval({ name, body: csr });
    };
    const serving = await csrPem('/O=system:nodes/CN=system:node:proof-node', 'IP:198.18.50.1');
    await requestApproved(
      'proof-serving',
      'kubernetes.io/kubelet-serving',
      ['digital signature', 'server auth'],
      serving,
    );
    const joinServerLike = await csrPem('/CN=k8s-join-server', `DNS:${NAME}-join-server.${NAMESPACE}.svc`);
    await requestApproved(
      'proof-client-as-server',
      'kubernetes.io/kube-apiserver-client',
      ['digital signature', 'server auth'],
      joinServerLike,
    );

    const deadline = Date.now() + 60_000;
    const read = (name: string) => certificates.readCertificateSigningRequest({ name });
    let issued = await read('proof-serving');
    let refused = await read('proof-client-as-server');
    const failed = () =>
      refused.status?.conditions?.some((c) => c.type === 'Failed' && c.status === 'True') === true;
    while (Date.now() < deadline && ((issued.status?.certificate ?? '') === '' || !failed())) {
      await sleep(250);
      [issued, refused] = await Promise.all([read('proof-serving'), read('proof-client-as-server')]);
    }
    assert.notEqual(
      issued.status?.certificate ?? '',
      '',
      `kubelet serving CSR not issued\n${rendered.group.logTails()}`,
    );
    const cert = new X509Certificate(Buffer.from(issued.status?.certificate ?? '', 'base64'));
    const pkiSecret = async (suffix: string) =>
      Buffer.from(
        (
          await infra
            .kubeConfig()
            .makeApiClient(CoreV1Api)
            .readNamespacedSecret({ name: `${NAME}-${suffix}`, namespace: NAMESPACE })
        ).data?.['tls.crt'] ?? '',
        'base64',
      );
    assert.ok(cert.checkIssued(new X509Certificate(await pkiSecret('kubelet-serving-ca'))), cert.issuer);
    assert.ok(!cert.checkIssued(new X509Certificate(await pkiSecret('ca'))), 'not signed by the cluster CA');
    assert.ok(
      failed(),
      `kube-apiserver-client CSR asking for server auth: ${JSON.stringify(refused.status)}`,
    );
    // kubernetes.io/legacy-unknown has no signer (its flags are not given), and certificates/v1
    // refuses CSRs for it anyway.
  });

  it("encrypts the hosted cluster's Secrets at rest with the generated key", async () => {
    const core = hosted.makeApiClient(CoreV1Api);
    await core.createNamespacedSecret({
      namespace: 'default',
      body: { metadata: { name: 'at-rest' }, stringData: { password: 'plain-text-marker' } },
    });
    const pki = join(rendered.componentRoot('apiserver'), '/etc/kubernetes/pki');
    const answer = await etcdRange(rendered.etcdUrl, '/registry/secrets/default/at-rest', {
      ca: await readFile(join(pki, 'etcd-ca.crt')),
      cert: await readFile(join(pki, 'apiserver-etcd-client.crt')),
      key: await readFile(join(pki, 'apiserver-etcd-client.key')),
    });
    const stored = Buffer.from(answer.kvs?.[0]?.value ?? '', 'base64');
    assert.ok(
      stored.subarray(0, 30).toString('latin1').startsWith('k8s:enc:secretbox:v1:key1:'),
      stored.subarray(0, 30).toString('latin1'),
    );
    assert.ok(!stored.includes('plain-text-marker'));
  });

  it('accepts the hosted-cluster assets (RBAC, kube-proxy, flannel, CoreDNS) from `render --hosted-assets`', async () => {
    const deps = captureDeps(root);
    assert.equal(await runRender([NAME, '-n', NAMESPACE, '--host', '127.0.0.1', '--hosted-assets'], deps), 0);
    const objects = parseAllDocuments(deps.out.join('\n')).map((d) => d.toJS() as KubernetesObject);
    const applied = await applyObjects(hosted, objects);
    assert.equal(applied.length, objects.length);
    const kinds = new Set(applied.map((o) => o.kind));
    for (const kind of [
      'ClusterRoleBinding',
      'DaemonSet',
      'Deployment',
      'Service',
      'ConfigMap',
      'Namespace',
    ]) {
      assert.ok(kinds.has(kind), kind);
    }
    const dns = await hosted
      .makeApiClient(CoreV1Api)
      .readNamespacedService({ name: 'kube-dns', namespace: 'kube-system' });
    assert.equal(dns.spec?.clusterIP, '10.3.0.10');
    // A second apply of the same objects changes nothing we own. Controllers of the running
    // controller-manager write workload status meanwhile, so workloads compare by generation.
    const again = await applyObjects(hosted, objects);
    const version = (o: KubernetesObject): string =>
      o.metadata?.generation === undefined
        ? `rv ${o.metadata?.resourceVersion}`
        : `generation ${o.metadata.generation}`;
    assert.deepEqual(again.map(version), applied.map(version));
  });

  it('leaves private keys out of the stored workloads', () => {
    assert.doesNotMatch(JSON.stringify([...rendered.workloads.values()]), /PRIVATE KEY/);
    assert.ok([...rendered.secrets.values()].some((data) => data['tls.key'] !== undefined));
  });
});
