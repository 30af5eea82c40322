// k8s-on-k8s-operator as a real child process against a real infra apiserver (etcd + kube-apiserver,
// no nodes: pods are not run here — the end-to-end tier runs them): the CRD refuses what `create`
// refuses; a HostedControlPlane gets its finalizer, the objects `create` makes (applied with the
// operator's own field manager), Cluster API's kubeconfig Secret, status conditions and Events;
// an invalid spec is reported, not half-made; a second replica stands by until the leader goes;
// deletion removes exactly what was made (Retain keeps the data).
import assert from 'node:assert/strict';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, describe, it } from 'node:test';
import { CoreV1Api } from '@kubernetes/client-node';
import {
  CONTROL_PLANE_KINDS,
  CONTROL_PLANE_LABEL,
  HCP_API_VERSION,
  HCP_KIND,
  KubernetesApi,
  KubernetesApiError,
  applyObjects,
  controlPlaneSpecOfResource,
  listObjects,
  renderControlPlane,
  renderHostedControlPlaneCrd,
  completeControlPlanePki,
  type HostedControlPlane,
} from '@k8s-on-k8s/server';
import {
  ChildProcessGroup,
  REPO_ROOT,
  eventually,
  kubeBinary,
  runCommand,
  startLocalKubeCluster,
  type LocalKubeCluster,
  type ManagedProcess,
} from '../harness/index.js';

const NAMESPACE = 'team-op';
const LEASE_NAMESPACE = 'k8s-on-k8s-system';
const OPERATOR = join(REPO_ROOT, 'packages/server/dist/src/bin/k8s-on-k8s-operator.js');
const HCPS = `/apis/k8s-on-k8s.io/v1alpha1/namespaces/${NAMESPACE}/hostedcontrolplanes`;

function hcp(name: string, spec: Record<string, unknown>): Record<string, unknown> {
  return { apiVersion: HCP_API_VERSION, kind: HCP_KIND, metadata: { name, namespace: NAMESPACE }, spec };
}

describe('k8s-on-k8s-operator against a real infra apiserver', () => {
  let infra: LocalKubeCluster;
  let api: KubernetesApi;
  let dir: string;
  let group: ChildProcessGroup;
  const operators = new Map<string, ManagedProcess>();

  const startOperator = (id: string): ManagedProcess => {
    const started = group.start(`operator-${id}`, process.execPath, [
      OPERATOR,
      ...['--kubeconfig', infra.adminKubeconfigPath, '--id', id, '--health-port', '0'],
      ...['--leader-election-namespace', LEASE_NAMESPACE, '--resync', '5', '--log-level', 'debug'],
    ]);
    operators.set(id, started);
    return started;
  };
  const logs = async (): Promise<string> =>
    (
      await Promise.all(
        [...operators.values()].map(
          async (o) => `--- ${o.name} ---\n${(await readFile(o.logPath, 'utf8')).slice(-4000)}`,
        ),
      )
    ).join('\n');
  const read = (name: string) => api.request<HostedControlPlane>('GET', `${HCPS}/${name}`);
  const condition = (resource: HostedControlPlane, type: string) =>
    resource.status?.conditions?.find((c) => c.type === type);
  const labelled = async (name: string): Promise<string[]> => {
    const found: string[] = [];
    for (const kind of CONTROL_PLANE_KINDS) {
      for (const o of await listObjects(
        infra.kubeConfig(),
        kind,
        NAMESPACE,
        `${CONTROL_PLANE_LABEL}=${name}`,
      )) {
        found.push(`${kind.kind}/${o.metadata?.name ?? ''}`);
      }
    }
    return found.sort();
  };

  before(async () => {
    dir = await mkdtemp(join(tmpdir(), 'k8s-on-k8s-operator-'));
    group = new ChildProcessGroup(dir);
    infra = await startLocalKubeCluster({ name: 'operator-infra' });
    api = await KubernetesApi.fromKubeConfig(infra.kubeConfig());
    const core = infra.kubeConfig().makeApiClient(CoreV1Api);
    for (const name of [NAMESPACE, LEASE_NAMESPACE])
      await core.createNamespace({ body: { metadata: { name } } });
    await applyObjects(infra.kubeConfig(), [renderHostedControlPlaneCrd()]);
    await eventually('the CRD to be served', 30_000, async () => {
      await api.request('GET', HCPS);
      return true;
    });
  });

  after(async () => {
    await group.stop();
    await infra.stop();
    await rm(dir, { recursive: true, force: true });
  });

  it('the CRD refuses what create refuses; what only the core can check, the core refuses', async () => {
    // [what, spec, CRD accepts?, core accepts?] — never "CRD accepts what the core refuses" unless
    // CEL cannot see it (marked), and never "CRD refuses what the core accepts".
    const host = { host: 'api.x.example' };
    const table: [string, Record<string, unknown>, boolean, boolean][] = [
      ['the defaults', { exposure: host }, true, true],
      [
        'every field',
        {
          version: 'v1.34.1',
          exposure: {
            ...host,
            type: 'nodeport',
            nodePorts: { api: 30443, join: 30843, konnectivity: 30132 },
          },
          etcd: { storageSize: '5Gi' },
          networks: { serviceCIDR: '10.96.0.0/16', podCIDR: '10.244.0.0/16', vip: '10.199.0.9' },
          addons: { cni: 'none', konnectivity: true },
          apiserver: { replicas: 3 },
          joinServer: { image: 'registry.example/join:v2' },
          deletionPolicy: 'Retain',
        },
        true,
        true,
      ],
      [
        'an ingress without konnectivity',
        {
          exposure: { ...host, type: 'ingress', ingressClassName: 'nginx' },
          addons: { konnectivity: false },
        },
        true,
        true,
      ],
      ['no host', { exposure: {} }, false, false],
      ['an unknown exposure', { exposure: { ...host, type: 'hostport' } }, false, false],
      ['a version of an unsupported minor', { exposure: host, version: 'v1.20.0' }, false, false],
      ['a NodePort out of range', { exposure: { ...host, nodePorts: { api: 8443 } } }, false, false],
      [
        'two equal NodePorts',
        { exposure: { ...host, nodePorts: { api: 30443, join: 30443 } } },
        false,
        false,
      ],
      [
        'NodePorts with a LoadBalancer',
        { exposure: { ...host, type: 'loadbalancer', nodePorts: { api: 30443 } } },
        false,
        false,
      ],
      [
        'an ingress class without an ingress',
        { exposure: { ...host, ingressClassName: 'nginx' } },
        false,
        false,
      ],
      [
        'konnectivity behind an ingress',
        { exposure: { ...host, type: 'ingress' }, addons: { konnectivity: true } },
        false,
        false,
      ],
      [
        'an ingress on an IP',
        { exposure: { host: '203.0.113.7', type: 'ingress' }, addons: { konnectivity: false } },
        false,
        false,
      ],
      [
        'a konnectivity NodePort without konnectivity',
        { exposure: { ...host, nodePorts: { konnectivity: 30132 } }, addons: { konnectivity: false } },
        false,
        false,
      ],
      ['6 apiservers', { exposure: host, apiserver: { replicas: 6 } }, false, false],
      ['an etcd size in bytes', { exposure: host, etcd: { storageSize: '1000' } }, false, false],
      [
        'etcd both ephemeral and sized',
        { exposure: host, etcd: { ephemeral: true, storageSize: '1Gi' } },
        false,
        false,
      ],
      ['a CNI the project does not ship', { exposure: host, addons: { cni: 'calico' } }, false, false],
      ['a VIP that is not IPv4', { exposure: host, networks: { vip: 'fd00::1' } }, false, false],
      [
        'a service CIDR that is not one',
        { exposure: host, networks: { serviceCIDR: '10.3.0.0' } },
        false,
        false,
      ],
      // What CEL does not check: the core does, and the operator reports InvalidSpec.
      [
        'overlapping CIDRs (core only)',
        { exposure: host, networks: { serviceCIDR: '10.2.0.0/24' } },
        true,
        false,
      ],
      [
        'the VIP inside the service CIDR (core only)',
        { exposure: host, networks: { vip: '10.3.0.5' } },
        true,
        false,
      ],
      [
        'a /30 service CIDR (core only)',
        { exposure: host, networks: { serviceCIDR: '10.3.0.0/30' } },
        true,
        false,
      ],
    ];
    const disagreements: string[] = [];
    for (const [what, spec, crd, coreAccepts] of table) {
      let crdAccepted = true;
      let crdMessage = '';
      try {
        await api.request('POST', `${HCPS}?dryRun=All`, hcp('parity', spec));
      } catch (error) {
        if (!(error instanceof KubernetesApiError && error.apiStatus === 422)) throw error;
        crdAccepted = false;
        crdMessage = error.message;
      }
      let coreAccepted = true;
      try {
        controlPlaneSpecOfResource(hcp('parity', spec) as unknown as HostedControlPlane);
      } catch {
        coreAccepted = false;
      }
      if (crdAccepted !== crd || coreAccepted !== coreAccepts) {
        disagreements.push(
          `${what}: CRD ${crdAccepted ? 'accepts' : `refuses (${crdMessage})`}, core ${coreAccepted ? 'accepts' : 'refuses'}`,
        );
      }
      assert.ok(crdAccepted || !coreAccepted, `${what}: the CRD refuses what create accepts: ${crdMessage}`);
    }
    assert.deepEqual(disagreements, []);
  });

  it('immutable fields say so on update', async () => {
    await api.request('POST', HCPS, hcp('frozen', { exposure: { host: 'api.frozen.example' } }));
    const stored = await read('frozen');
    for (const [field, spec, message] of [
      [
        'host',
        { ...stored.spec, exposure: { ...stored.spec.exposure, host: 'api.other.example' } },
        /exposure\.host is immutable/,
      ],
      [
        'networks',
        { ...stored.spec, networks: { ...stored.spec.networks, podCIDR: '10.9.0.0/16' } },
        /networks is immutable/,
      ],
      ['etcd', { ...stored.spec, etcd: { ephemeral: true } }, /etcd is immutable/],
    ] as const) {
      await assert.rejects(
        api.request('PUT', `${HCPS}/frozen?dryRun=All`, { ...stored, spec }),
        (e: unknown) => e instanceof KubernetesApiError && message.test(e.message),
        field,
      );
    }
    // The version is not: changing it is how an upgrade is asked for.
    await api.request('PUT', `${HCPS}/frozen?dryRun=All`, {
      ...stored,
      spec: { ...stored.spec, version: 'v1.34.1' },
    });
    await api.request('DELETE', `${HCPS}/frozen`);
  });

  it(
    'reconciles a resource: its finalizer, the objects create makes, the kubeconfig Secret, status, Events',
    { timeout: 120_000 },
    async () => {
      startOperator('a');
      await api.request(
        'POST',
        HCPS,
        hcp('dev', { exposure: { host: 'api.dev.example' }, apiserver: { replicas: 1 } }),
      );
      const provisioning = await eventually('status Provisioning with conditions', 60_000, async () => {
        const r = await read('dev');
        // Settled: the endpoint copied into spec (Cluster API) and that generation observed.
        return r.status?.phase === 'Provisioning' &&
          condition(r, 'EtcdAvailable') !== undefined &&
          r.spec.controlPlaneEndpoint?.host !== undefined &&
          r.status.observedGeneration === r.metadata.generation
          ? r
          : undefined;
      }).catch(async (error: unknown) => {
        throw new Error(`${String(error)}\n${await logs()}`);
      });
      assert.deepEqual(provisioning.metadata.finalizers, ['k8s-on-k8s.io/control-plane']);
      const status = provisioning.status;
      assert.ok(status !== undefined);
      assert.equal(status.observedGeneration, provisioning.metadata.generation);
      assert.match(status.endpoint ?? '', /^https:\/\/api\.dev\.example:3\d{4}$/);
      assert.equal(status.kubeconfigSecretName, 'dev-kubeconfig');
      assert.equal(status.ready, false);
      // No node runs pods here: etcd exists and is not ready, the apiserver does not answer, and the
      // conditions say so in words a person can act on.
      assert.equal(condition(provisioning, 'EtcdAvailable')?.reason, 'PodsNotReady');
      assert.equal(condition(provisioning, 'APIServerAvailable')?.reason, 'ReadyzFailed');
      assert.match(
        condition(provisioning, 'APIServerAvailable')?.message ?? '',
        /api\.dev\.example:3\d{4}\/readyz: /,
      );
      assert.equal(condition(provisioning, 'CertificatesValid')?.status, 'True');
      assert.equal(condition(provisioning, 'Available')?.status, 'False');
      // Cluster API: the endpoint copied into spec once known.
      const withEndpoint = await eventually('spec.controlPlaneEndpoint', 30_000, async () => {
        const r = await read('dev');
        return r.spec.controlPlaneEndpoint?.host === undefined ? undefined : r;
      });
      assert.equal(
        `https://${withEndpoint.spec.controlPlaneEndpoint?.host ?? ''}:${String(withEndpoint.spec.controlPlaneEndpoint?.port)}`,
        status.endpoint,
      );

      // Exactly the objects create renders for this spec (with the NodePorts the infra allocated),
      // plus Cluster API's kubeconfig Secret; applied with the operator's own field manager.
      const spec = controlPlaneSpecOfResource(withEndpoint);
      const services = await listObjects(
        infra.kubeConfig(),
        { apiVersion: 'v1', kind: 'Service' },
        NAMESPACE,
        `${CONTROL_PLANE_LABEL}=dev`,
      );
      const nodePort = (service: string, port: string) =>
        (
          services.find((s) => s.metadata?.name === service) as
            { spec?: { ports?: { name?: string; nodePort?: number }[] } } | undefined
        )?.spec?.ports?.find((p) => p.name === port)?.nodePort;
      const rendered = renderControlPlane(
        {
          ...spec,
          nodePorts: {
            api: nodePort('dev-apiserver', 'https'),
            join: nodePort('dev-join-server', 'https'),
            konnectivity: nodePort('dev-apiserver', 'konnectivity'),
          },
        },
        (await completeControlPlanePki(spec, {}, { now: () => new Date() })).pki,
      );
      assert.deepEqual(
        await labelled('dev'),
        [...rendered.map((o) => `${o.kind ?? ''}/${o.metadata?.name ?? ''}`), 'Secret/dev-kubeconfig'].sort(),
      );
      const deployment = (
        await listObjects(
          infra.kubeConfig(),
          { apiVersion: 'apps/v1', kind: 'Deployment' },
          NAMESPACE,
          `${CONTROL_PLANE_LABEL}=dev`,
        )
      )[0];
      assert.ok(deployment?.metadata?.managedFields?.some((f) => f.manager === 'k8s-on-k8s-operator'));
      const secret = await infra
        .kubeConfig()
        .makeApiClient(CoreV1Api)
        .readNamespacedSecret({ name: 'dev-kubeconfig', namespace: NAMESPACE });
      assert.equal(secret.type, 'cluster.x-k8s.io/secret');
      assert.match(
        Buffer.from(secret.data?.value ?? '', 'base64').toString(),
        /server: https:\/\/api\.dev\.example:3\d{4}/,
      );

      const events = await api.request<{
        items: { reason?: string; message?: string; involvedObject?: { name?: string } }[];
      }>('GET', `/api/v1/namespaces/${NAMESPACE}/events`);
      const reasons = events.items.filter((e) => e.involvedObject?.name === 'dev').map((e) => e.reason);
      assert.ok(reasons.includes('PkiGenerated'), JSON.stringify(reasons));
      assert.ok(reasons.includes('Provisioning'), JSON.stringify(reasons));

      // kubectl (built from k8s.io/kubernetes) shows the printer columns.
      const table = await runCommand(
        kubeBinary('kubectl'),
        ['--kubeconfig', infra.adminKubeconfigPath, 'get', 'hcp', '-n', NAMESPACE],
        { timeoutMs: 30_000 },
      );
      assert.match(table.stdout, /^NAME\s+VERSION\s+PHASE\s+ENDPOINT\s+AGE$/m);
      assert.match(table.stdout, /^dev\s+Provisioning\s+https:\/\/api\.dev\.example:3\d{4}\s+\d+s$/m);
    },
  );

  it('reports an invalid spec as InvalidSpec and makes nothing for it', { timeout: 60_000 }, async () => {
    await api.request(
      'POST',
      HCPS,
      hcp('bad', { exposure: { host: 'api.bad.example' }, networks: { serviceCIDR: '10.2.0.0/24' } }),
    );
    const invalid = await eventually('InvalidSpec', 30_000, async () => {
      const r = await read('bad');
      return condition(r, 'Available')?.reason === 'InvalidSpec' ? r : undefined;
    });
    assert.match(
      condition(invalid, 'Available')?.message ?? '',
      /spec\.networks\.serviceCIDR 10\.2\.0\.0\/24 and spec\.networks\.podCIDR 10\.2\.0\.0\/16 not to overlap/,
    );
    assert.deepEqual(await labelled('bad'), []);
    await api.request('DELETE', `${HCPS}/bad`);
    await eventually('bad gone (finalizer removed)', 30_000, async () =>
      read('bad').then(
        () => undefined,
        () => true,
      ),
    );
  });

  it(
    'a second replica stands by; when the leader stops it takes over and reconciles',
    { timeout: 120_000 },
    async () => {
      const b = startOperator('b');
      const lease = () =>
        api.request<{ spec: { holderIdentity?: string } }>(
          'GET',
          `/apis/coordination.k8s.io/v1/namespaces/${LEASE_NAMESPACE}/leases/k8s-on-k8s-operator`,
        );
      assert.equal((await lease()).spec.holderIdentity, 'a');
      await eventually('b to say it waits', 20_000, async () =>
        (await readFile(b.logPath, 'utf8')).includes('another replica leads') ? true : undefined,
      );
      const a = operators.get('a');
      a?.child.kill('SIGTERM');
      assert.equal(await a?.exited, 0);
      const tookOverAt = Date.now();
      await eventually('b to lead', 30_000, async () =>
        (await lease()).spec.holderIdentity === 'b' ? true : undefined,
      );
      console.log(
        `# the standby replica took the Lease ${Date.now() - tookOverAt} ms after the leader stopped`,
      );
      const current = await read('dev');
      await api.request('PUT', `${HCPS}/dev`, {
        ...current,
        spec: { ...current.spec, apiserver: { replicas: 2 } },
      });
      await eventually('b to scale the apiserver to 2', 30_000, async () => {
        const [deployment] = (await listObjects(
          infra.kubeConfig(),
          { apiVersion: 'apps/v1', kind: 'Deployment' },
          NAMESPACE,
          `${CONTROL_PLANE_LABEL}=dev,k8s-on-k8s.io/component=apiserver`,
        )) as { spec?: { replicas?: number } }[];
        return deployment?.spec?.replicas === 2 ? true : undefined;
      }).catch(async (error: unknown) => {
        throw new Error(`${String(error)}\n${await logs()}`);
      });
    },
  );

  it(
    'deletion removes what was made; Retain (delete --keep-data) keeps the PKI Secrets and the data',
    { timeout: 120_000 },
    async () => {
      await api.request('POST', HCPS, hcp('kept', { exposure: { host: 'api.kept.example' } }));
      await eventually('kept provisioned', 60_000, async () =>
        (await read('kept')).status?.phase === 'Provisioning' ? true : undefined,
      );
      // `k8s-on-k8s delete --keep-data` on a control plane the operator owns deletes its resource
      // with deletionPolicy Retain and waits for the finalizer (deleting the objects itself would
      // only have the operator make them again).
      const deleted = await runCommand(
        process.execPath,
        [
          join(REPO_ROOT, 'packages/server/dist/src/bin/k8s-on-k8s.js'),
          ...['delete', 'kept', '-n', NAMESPACE, '--keep-data', '--kubeconfig', infra.adminKubeconfigPath],
        ],
        { timeoutMs: 120_000 },
      );
      assert.equal(deleted.exitCode, 0, `${deleted.stdout}${deleted.stderr}`);
      assert.match(
        deleted.stdout,
        /kept is a HostedControlPlane: deleting the resource \(deletionPolicy Retain\)/,
      );
      await assert.rejects(read('kept'), /404|not found/i, 'delete returned before the finalizer ran');
      await api.request('DELETE', `${HCPS}/dev`);
      for (const name of ['kept', 'dev']) {
        await eventually(`${name} gone`, 60_000, async () =>
          read(name).then(
            () => undefined,
            () => true,
          ),
        ).catch(async (error: unknown) => {
          throw new Error(`${String(error)}\n${await logs()}`);
        });
      }
      assert.deepEqual(await labelled('dev'), []);
      const left = await labelled('kept');
      assert.ok(
        left.length > 0 && left.every((o) => o.startsWith('Secret/kept-') && o !== 'Secret/kept-kubeconfig'),
        left.join(' '),
      );
    },
  );
});
