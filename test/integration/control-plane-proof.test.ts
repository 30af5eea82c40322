// Proof that a rendered control plane works, not just that it parses: `create` applies it to a
// real infra apiserver; this test reads back what was stored there (StatefulSet, Deployments,
// Secrets), lays the pods' Secret volumes out under a temp dir, runs the harness-built etcd,
// kube-apiserver, kube-controller-manager and kube-scheduler with exactly the rendered args (paths
// mapped onto the temp dir, ports onto loopback), reaches /readyz with the rendered admin
// kubeconfig, and applies the hosted-cluster assets to it.
import assert from 'node:assert/strict';
import { mkdir, mkdtemp, readFile, rm, writeFile } from 'node:fs/promises';
import { request } from 'node:https';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { setTimeout as sleep } from 'node:timers/promises';
import {
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  VersionApi,
  type KubernetesObject,
  type V1PodTemplateSpec,
} from '@kubernetes/client-node';
import { parseKubeconfig, resolveKubeconfig } from '@k8s-on-k8s/shared';
import {
  CONTROL_PLANE_LABEL,
  applyObjects,
  runCreate,
  runKubeconfig,
  runRender,
  waitForReadyz,
  type ControlPlaneCommandDeps,
} from '@k8s-on-k8s/server';
import { parseAllDocuments } from 'yaml';
import {
  ChildProcessGroup,
  freePort,
  kubeBinary,
  startControlPlane,
  type ControlPlane,
  type KubeBinary,
} from '../src/index.js';

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

/** Writes a pod's Secret volumes (plain and projected) where its containers mount them, under root. */
async function materializeVolumes(
  root: string,
  template: V1PodTemplateSpec,
  secrets: ReadonlyMap<string, Readonly<Record<string, string>>>,
  claims: ReadonlySet<string>,
): Promise<void> {
  const podSpec = template.spec;
  assert.ok(podSpec);
  for (const mount of podSpec.containers.flatMap((c) => c.volumeMounts ?? [])) {
    const dir = join(root, mount.mountPath);
    await mkdir(dir, { recursive: true });
    // A StatefulSet's volumeClaimTemplates become empty volumes: an empty directory here.
    if (claims.has(mount.name)) continue;
    const volume = podSpec.volumes?.find((v) => v.name === mount.name);
    assert.ok(volume, `volume ${mount.name}`);
    const files: [string, string][] = [];
    if (volume.secret?.secretName !== undefined) {
      const data = secrets.get(volume.secret.secretName);
      assert.ok(data, `Secret ${volume.secret.secretName} was applied`);
      files.push(...Object.entries(data));
    }
    for (const source of volume.projected?.sources ?? []) {
      const name = source.secret?.name ?? '';
      const data = secrets.get(name);
      assert.ok(data, `Secret ${name} was applied`);
      for (const item of source.secret?.items ?? []) {
        const value = data[item.key];
        assert.ok(value !== undefined, `Secret ${name} has ${item.key}`);
        files.push([item.path, value]);
      }
    }
    for (const [path, base64] of files) {
      await writeFile(join(dir, path), Buffer.from(base64, 'base64'), { mode: 0o600 });
    }
  }
}

/** Maps `--flag=value` args: overrides by flag, absolute paths under root, everything else as rendered. */
function mapArgs(
  args: readonly string[],
  root: string,
  overrides: Readonly<Record<string, string>>,
): string[] {
  return args.map((arg) => {
    const match = /^(--[a-z0-9-]+)=(.*)$/.exec(arg);
    assert.ok(match, `rendered arg ${arg} is --flag=value`);
    const [, flag = '', value = ''] = match;
    const override = overrides[flag];
    if (override !== undefined) return `${flag}=${override}`;
    return value.startsWith('/') ? `${flag}=${join(root, value)}` : arg;
  });
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
  let infra: ControlPlane;
  let root: string;
  let group: ChildProcessGroup;
  let hosted: KubeConfig;
  let apiUrl: string;
  let etcdUrl: string;
  const workloads = new Map<string, V1PodTemplateSpec>();
  const secrets = new Map<string, Record<string, string>>();
  const claims = new Set<string>();

  before(async () => {
    infra = await startControlPlane({ name: 'proof-infra' });
    root = await mkdtemp(join(tmpdir(), 'k8s-on-k8s-proof-'));
    group = new ChildProcessGroup(root);
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

    const kc = infra.kubeConfig();
    const apps = kc.makeApiClient(AppsV1Api);
    const selector = `${CONTROL_PLANE_LABEL}=${NAME}`;
    for (const d of (await apps.listNamespacedDeployment({ namespace: NAMESPACE, labelSelector: selector }))
      .items) {
      workloads.set(d.metadata?.name ?? '', d.spec?.template ?? {});
    }
    for (const s of (await apps.listNamespacedStatefulSet({ namespace: NAMESPACE, labelSelector: selector }))
      .items) {
      workloads.set(s.metadata?.name ?? '', s.spec?.template ?? {});
      for (const claim of s.spec?.volumeClaimTemplates ?? []) claims.add(claim.metadata?.name ?? '');
    }
    for (const s of (await core.listNamespacedSecret({ namespace: NAMESPACE, labelSelector: selector }))
      .items) {
      secrets.set(s.metadata?.name ?? '', s.data ?? {});
    }
  });

  after(async () => {
    await group.stop();
    await infra.stop();
    await rm(root, { recursive: true, force: true });
  });

  function start(component: string, binary: KubeBinary, overrides: Record<string, string>): void {
    const template = workloads.get(`${NAME}-${component}`);
    assert.ok(template?.spec, `${component} was applied to the infra cluster`);
    const args = template.spec.containers[0]?.args ?? [];
    group.start(component, kubeBinary(binary), mapArgs(args, root, overrides));
  }

  it('starts etcd and kube-apiserver from the rendered args; the rendered admin kubeconfig reaches /readyz', async () => {
    const [client, peer, metrics, api] = await Promise.all([freePort(), freePort(), freePort(), freePort()]);
    etcdUrl = `https://127.0.0.1:${client}`;
    apiUrl = `https://127.0.0.1:${api}`;
    for (const [name, template] of workloads) {
      if (name.endsWith('-join-server')) continue;
      await materializeVolumes(root, template, secrets, claims);
    }
    const peerUrl = `https://127.0.0.1:${peer}`;
    start('etcd', 'etcd', {
      '--listen-client-urls': etcdUrl,
      '--advertise-client-urls': etcdUrl,
      '--listen-peer-urls': peerUrl,
      '--initial-advertise-peer-urls': peerUrl,
      '--initial-cluster': `${NAME}-etcd-0=${peerUrl}`,
      '--listen-metrics-urls': `http://127.0.0.1:${metrics}`,
    });
    start('apiserver', 'kube-apiserver', {
      '--secure-port': String(api),
      '--bind-address': '127.0.0.1',
      '--etcd-servers': etcdUrl,
    });

    const deps = captureDeps(root);
    assert.equal(
      await runKubeconfig([NAME, '-n', NAMESPACE, '--kubeconfig', infra.adminKubeconfigPath], deps),
      0,
    );
    const rendered = deps.out.join('\n');
    const admin = resolveKubeconfig(parseKubeconfig(rendered));
    assert.match(
      admin.server,
      /^https:\/\/127\.0\.0\.1:3\d{4}$/,
      'the kubeconfig names the allocated NodePort',
    );
    // The NodePort is the infra cluster's; here the apiserver listens on a loopback port instead.
    const kubeconfig = rendered.replace(admin.server, apiUrl);
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
      throw new Error(`${String(error)}\n${group.logTails()}`);
    }
    assert.match(progress.at(-1) ?? '', /readyz: ok after/);
    const version = await hosted.makeApiClient(VersionApi).getCode();
    assert.equal(version.gitVersion, 'v1.37.2');
  });

  it('runs kube-controller-manager and kube-scheduler from the rendered args and kubeconfig Secrets', async () => {
    const [kcmPort, schedulerPort] = await Promise.all([freePort(), freePort()]);
    // Their kubeconfigs name the apiserver's in-infra Service; point them at the loopback port.
    for (const component of ['controller-manager', 'scheduler']) {
      const perComponent = join(root, component);
      await mkdir(perComponent, { recursive: true });
      const template = workloads.get(`${NAME}-${component}`);
      assert.ok(template);
      await materializeVolumes(perComponent, template, secrets, claims);
      const file = join(perComponent, '/etc/kubernetes/kubeconfig/kubeconfig');
      const text = await readFile(file, 'utf8');
      assert.ok(text.includes(`https://${NAME}-apiserver.${NAMESPACE}.svc:443`));
      await writeFile(file, text.replace(`https://${NAME}-apiserver.${NAMESPACE}.svc:443`, apiUrl));
      const args = template.spec?.containers[0]?.args ?? [];
      group.start(
        component,
        kubeBinary(component === 'scheduler' ? 'kube-scheduler' : 'kube-controller-manager'),
        mapArgs(args, perComponent, {
          '--secure-port': String(component === 'scheduler' ? schedulerPort : kcmPort),
          '--bind-address': '127.0.0.1',
        }),
      );
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
    assert.deepEqual(seen, { rootCa: true, schedulerLease: true, kcmLease: true }, group.logTails());
  });

  it("encrypts the hosted cluster's Secrets at rest with the generated key", async () => {
    const core = hosted.makeApiClient(CoreV1Api);
    await core.createNamespacedSecret({
      namespace: 'default',
      body: { metadata: { name: 'at-rest' }, stringData: { password: 'plain-text-marker' } },
    });
    const pki = join(root, '/etc/kubernetes/pki');
    const answer = await etcdRange(etcdUrl, '/registry/secrets/default/at-rest', {
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
    assert.doesNotMatch(JSON.stringify([...workloads.values()]), /PRIVATE KEY/);
    assert.ok([...secrets.values()].some((data) => data['tls.key'] !== undefined));
  });
});
