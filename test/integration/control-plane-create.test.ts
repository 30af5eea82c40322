// `k8s-on-k8s create | status | list | kubeconfig | delete` against a real infra apiserver: every
// object is accepted, a second create changes nothing, delete removes exactly what create made,
// and the access check refuses a user without rights before generating anything.
import assert from 'node:assert/strict';
import { mkdtemp, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { setTimeout } from 'node:timers/promises';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api, NetworkingV1Api, RbacAuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import {
  createCertificateAuthority,
  issueCertificate,
  isK8sOnK8sError,
  parseKubeconfig,
  renderKubeconfig,
} from '@k8s-on-k8s/shared';
import {
  CONTROL_PLANE_KINDS,
  CONTROL_PLANE_LABEL,
  listObjects,
  runCreate,
  runDelete,
  runKubeconfig,
  runList,
  runStatus,
  waitForReadyz,
  type ControlPlaneCommandDeps,
} from '@k8s-on-k8s/server';
import { startLocalKubeCluster, type LocalKubeCluster } from '../harness/index.js';

const NAMESPACE = 'team-a';

function captureDeps(cwd: string): ControlPlaneCommandDeps & { out: string[]; err: string[] } {
  const out: string[] = [];
  const err: string[] = [];
  return {
    out,
    err,
    stdout: (line) => out.push(line),
    stderr: (line) => err.push(line),
    cwd,
    now: () => new Date(),
    // The API host is a made-up name: the check must only warn.
    lookupHost: (host) => Promise.reject(new Error(`getaddrinfo ENOTFOUND ${host}`)),
  };
}

/** Every object in the namespace of the kinds create makes, as `Kind/name@resourceVersion#generation`. */
async function snapshot(kubeConfig: KubeConfig, selector = ''): Promise<string[]> {
  const lines: string[] = [];
  for (const kind of CONTROL_PLANE_KINDS) {
    for (const o of await listObjects(kubeConfig, kind, NAMESPACE, selector)) {
      lines.push(
        `${kind.kind}/${o.metadata?.name}@${o.metadata?.resourceVersion}#${o.metadata?.generation ?? '-'}`,
      );
    }
  }
  return lines.sort();
}

/** The NetworkPolicies of control plane `name` in the namespace, as the apiserver stored them. */
async function networkPolicies(kubeConfig: KubeConfig, name: string) {
  const list = await kubeConfig.makeApiClient(NetworkingV1Api).listNamespacedNetworkPolicy({
    namespace: NAMESPACE,
    labelSelector: `${CONTROL_PLANE_LABEL}=${name}`,
  });
  return list.items;
}

describe('k8s-on-k8s create/delete against a real infra apiserver', () => {
  let infra: LocalKubeCluster;
  let dir: string;
  let flags: string[];
  let beforeCreate: string[];

  before(async () => {
    infra = await startLocalKubeCluster({ name: 'create-infra' });
    dir = await mkdtemp(join(tmpdir(), 'k8s-on-k8s-create-'));
    const core = infra.kubeConfig().makeApiClient(CoreV1Api);
    await core.createNamespace({ body: { metadata: { name: NAMESPACE } } });
    // Unrelated objects that share the namespace and must survive delete.
    await core.createNamespacedConfigMap({ namespace: NAMESPACE, body: { metadata: { name: 'unrelated' } } });
    await core.createNamespacedSecret({
      namespace: NAMESPACE,
      body: { metadata: { name: 'dev-lookalike', labels: { [CONTROL_PLANE_LABEL]: 'other' } } },
    });
    beforeCreate = await snapshot(infra.kubeConfig());
    flags = [
      '-n',
      NAMESPACE,
      '--host',
      'api.dev.example',
      '--kubeconfig',
      infra.adminKubeconfigPath,
      '--wait',
      '0',
    ];
  });

  after(async () => {
    await infra.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('creates every object, valid for the real apiserver, and writes the admin kubeconfig 0600', async () => {
    const deps = captureDeps(dir);
    assert.equal(await runCreate(['dev', ...flags], deps), 0, deps.out.join('\n'));
    assert.match(deps.out[0] ?? '', /CHECK: access to namespace team-a confirmed/);
    assert.match(deps.err.join('\n'), /WARNING: API host api\.dev\.example does not resolve/);
    assert.ok(deps.out.some((l) => /^PKI: generated 18 of 18/.test(l)));
    const objects = await snapshot(infra.kubeConfig(), `${CONTROL_PLANE_LABEL}=dev`);
    assert.equal(objects.length, deps.out.filter((l) => l.startsWith('applied ')).length);
    for (const expected of [
      'Deployment/dev-apiserver',
      'StatefulSet/dev-etcd',
      'Service/dev-join-server',
      'Secret/dev-ca',
    ]) {
      assert.ok(
        objects.some((o) => o.startsWith(`${expected}@`)),
        expected,
      );
    }
    const file = join(dir, 'dev.kubeconfig');
    assert.equal((await stat(file)).mode & 0o777, 0o600);
  });

  it('applies a NetworkPolicy for each component, as rendered: etcd only from the apiserver', async () => {
    const stored = await networkPolicies(infra.kubeConfig(), 'dev');
    assert.deepEqual(stored.map((p) => p.metadata?.name).sort(), [
      'dev-apiserver',
      'dev-controller-manager',
      'dev-etcd',
      'dev-join-server',
      'dev-scheduler',
    ]);
    // Read back from the apiserver: a rule's peers must survive the client's serializer, or the
    // rule would admit every pod to etcd.
    const etcd = stored.find((p) => p.metadata?.name === 'dev-etcd');
    assert.deepEqual(
      etcd?.spec?.ingress?.map((rule) => ({
        from: rule._from?.map((peer) => peer.podSelector?.matchLabels),
        ports: rule.ports?.map((port) => port.port),
      })),
      [
        {
          from: [{ [CONTROL_PLANE_LABEL]: 'dev', 'k8s-on-k8s.io/component': 'apiserver' }],
          ports: [2379],
        },
      ],
    );
    const scheduler = stored.find((p) => p.metadata?.name === 'dev-scheduler');
    assert.deepEqual(scheduler?.spec?.policyTypes, ['Ingress']);
    assert.equal(scheduler.spec.ingress, undefined, 'no rule: nothing may connect');
  });

  it('changes nothing when run a second time: no new certificates, no new resourceVersions', async () => {
    const first = await snapshot(infra.kubeConfig(), `${CONTROL_PLANE_LABEL}=dev`);
    const deps = captureDeps(dir);
    assert.equal(await runCreate(['dev', ...flags], deps), 0);
    assert.ok(deps.out.includes('PKI: reusing the existing keys and certificates'));
    assert.deepEqual(await snapshot(infra.kubeConfig(), `${CONTROL_PLANE_LABEL}=dev`), first);
  });

  it('shows status, list and the admin kubeconfig from what is stored', async () => {
    const status = captureDeps(dir);
    assert.equal(
      await runStatus(['dev', '-n', NAMESPACE, '--kubeconfig', infra.adminKubeconfigPath], status),
      0,
    );
    const text = status.out.join('\n');
    assert.match(text, /Kubernetes v1\.37\.2, exposed by nodeport/);
    assert.match(text, /apiserver\s+0\/1\s+registry\.k8s\.io\/kube-apiserver:v1\.37\.2/);
    assert.match(text, /etcd\s+0\/1\s+registry\.k8s\.io\/etcd:3\.7\.0-0/);
    assert.match(text, /ca\s+kubernetes\s+\d{4}-\d\d-\d\d \(in 36\d\dd\)/);
    assert.match(text, /requests: 570m CPU, 576Mi memory/);

    const list = captureDeps(dir);
    assert.equal(await runList(['-n', NAMESPACE, '--kubeconfig', infra.adminKubeconfigPath], list), 0);
    assert.match(list.out.join('\n'), /^dev\s+v1\.37\.2\s+nodeport\s+https:\/\/api\.dev\.example:3\d{4}/m);
    // kubectl's -A: every namespace, with a NAMESPACE column.
    const all = captureDeps(dir);
    assert.equal(await runList(['-A', '--kubeconfig', infra.adminKubeconfigPath], all), 0);
    assert.match(all.out[0] ?? '', /^NAMESPACE\s+NAME\s+VERSION/);
    assert.match(all.out.join('\n'), new RegExp(`^${NAMESPACE}\\s+dev\\s+v1\\.37\\.2\\s+nodeport`, 'm'));
    await assert.rejects(
      runList(['-A', '-n', NAMESPACE, '--kubeconfig', infra.adminKubeconfigPath], captureDeps(dir)),
      /either -n\/--namespace or -A/,
    );
    await assert.rejects(runList(['--kubeconfig', infra.adminKubeconfigPath], captureDeps(dir)), /or -A/);

    const kubeconfig = captureDeps(dir);
    assert.equal(
      await runKubeconfig(['dev', '-n', NAMESPACE, '--kubeconfig', infra.adminKubeconfigPath], kubeconfig),
      0,
    );
    const parsed = parseKubeconfig(kubeconfig.out.join('\n'));
    assert.match(parsed.clusters[0]?.cluster.server ?? '', /^https:\/\/api\.dev\.example:3\d{4}$/);
  });

  it('delete --keep-data keeps the PKI Secrets, and a create after it reuses them', async () => {
    const deps = captureDeps(dir);
    assert.equal(
      await runDelete(
        ['dev', '-n', NAMESPACE, '--keep-data', '--kubeconfig', infra.adminKubeconfigPath],
        deps,
      ),
      0,
    );
    const left = await snapshot(infra.kubeConfig(), `${CONTROL_PLANE_LABEL}=dev`);
    assert.equal(left.length, 18);
    assert.ok(left.every((o) => o.startsWith('Secret/')));
    const again = captureDeps(dir);
    assert.equal(await runCreate(['dev', ...flags], again), 0);
    assert.ok(again.out.includes('PKI: reusing the existing keys and certificates'));
  });

  it('delete removes every labelled object and leaves the namespace as it was', async () => {
    const deps = captureDeps(dir);
    assert.equal(
      await runDelete(['dev', '-n', NAMESPACE, '--kubeconfig', infra.adminKubeconfigPath], deps),
      0,
    );
    assert.deepEqual(await snapshot(infra.kubeConfig(), `${CONTROL_PLANE_LABEL}=dev`), []);
    assert.deepEqual(await snapshot(infra.kubeConfig()), beforeCreate);
    assert.deepEqual(await networkPolicies(infra.kubeConfig(), 'dev'), []);
    await assert.rejects(
      runDelete(['dev', '-n', NAMESPACE, '--kubeconfig', infra.adminKubeconfigPath], captureDeps(dir)),
      (error: unknown) => isK8sOnK8sError(error) && error.code === 'NOT_FOUND',
    );
  });

  /** A kubeconfig for the infra cluster as user `name` (a client certificate of the infra CA). */
  async function userKubeconfig(name: string): Promise<string> {
    const user = await issueCertificate(infra.ca, { commonName: name, usage: 'client' });
    const path = join(dir, `${name}.kubeconfig`);
    await writeFile(
      path,
      renderKubeconfig({
        clusterName: 'infra',
        server: infra.url,
        caPem: infra.ca.certPem,
        userName: name,
        credentials: { clientCertPem: user.certPem, clientKeyPem: user.keyPem },
      }),
      { mode: 0o600 },
    );
    return path;
  }

  it('refuses, before generating anything, a user who may not create in the namespace', async () => {
    const path = await userKubeconfig('nobody');
    const deps = captureDeps(dir);
    await assert.rejects(
      runCreate(
        ['dev', '-n', NAMESPACE, '--host', 'api.dev.example', '--kubeconfig', path, '--wait', '0'],
        deps,
      ),
      (error: unknown) =>
        isK8sOnK8sError(error) && error.code === 'FORBIDDEN' && /create secrets/.test(error.message),
    );
    assert.ok(!deps.out.some((l) => l.startsWith('PKI')));
  });

  it('refuses a user who may create everything but the NetworkPolicies, naming them', async () => {
    const rbac = infra.kubeConfig().makeApiClient(RbacAuthorizationV1Api);
    const verbs = ['get', 'list', 'create', 'patch'];
    await rbac.createNamespacedRole({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'workloads-only' },
        rules: [
          { apiGroups: [''], resources: ['secrets', 'configmaps', 'services'], verbs },
          { apiGroups: ['apps'], resources: ['deployments', 'statefulsets'], verbs },
        ],
      },
    });
    await rbac.createNamespacedRoleBinding({
      namespace: NAMESPACE,
      body: {
        metadata: { name: 'workloads-only' },
        roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name: 'workloads-only' },
        subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'User', name: 'workloads-only' }],
      },
    });
    const path = await userKubeconfig('workloads-only');
    const deps = captureDeps(dir);
    let message = '';
    // The RBAC authorizer learns of the new binding from a watch: until then secrets are denied too.
    for (let attempt = 0; attempt < 50 && message === ''; attempt++) {
      if (attempt > 0) await setTimeout(100);
      const error = await runCreate(
        ['other', '-n', NAMESPACE, '--host', 'api.other.example', '--kubeconfig', path, '--wait', '0'],
        deps,
      ).then(
        () => undefined,
        (rejected: unknown) => rejected,
      );
      assert.ok(isK8sOnK8sError(error) && error.code === 'FORBIDDEN', String(error));
      message = /secrets/.test(error.message) ? '' : error.message;
    }
    const resource = 'networking.k8s.io/networkpolicies';
    assert.equal(
      message,
      `not allowed in namespace ${NAMESPACE}: create ${resource}, get ${resource}, list ${resource}, patch ${resource}`,
    );
    assert.ok(!deps.out.some((l) => l.startsWith('PKI')));
  });

  it('waits for a real /readyz with progress, and times out with the last answer', async () => {
    const progress: string[] = [];
    await waitForReadyz({
      url: infra.url,
      caPem: infra.ca.certPem,
      clientCertPem: infra.admin.certPem,
      clientKeyPem: infra.admin.keyPem,
      timeoutMs: 10_000,
      onProgress: (line) => progress.push(line),
    });
    assert.match(progress[0] ?? '', /^waiting for https:\/\/127\.0\.0\.1:\d+\/readyz$/);
    assert.match(progress.at(-1) ?? '', /readyz: ok after \d+s/);

    // An untrusted CA never gets an answer it believes: the wait ends in TIMEOUT, naming why.
    const other = (await createCertificateAuthority('someone-else')).certPem;
    const lines: string[] = [];
    let clock = 0;
    await assert.rejects(
      waitForReadyz({
        url: infra.url,
        caPem: other,
        clientCertPem: infra.admin.certPem,
        clientKeyPem: infra.admin.keyPem,
        timeoutMs: 3000,
        progressEveryMs: 1000,
        onProgress: (line) => lines.push(line),
        now: () => clock,
        sleep: (ms) => {
          clock += ms;
          return Promise.resolve();
        },
      }),
      (error: unknown) =>
        isK8sOnK8sError(error) && error.code === 'TIMEOUT' && /certificate/i.test(error.message),
    );
    assert.ok(
      lines.some((l) => /still waiting \(\ds\): .*certificate/i.test(l)),
      lines.join('\n'),
    );
  });
});
