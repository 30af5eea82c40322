// What the operator makes of what it saw: conditions a person can act on, the phase, and the
// transition times kept while a condition's status stays.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { buildControlPlaneSpec } from '../../src/control-plane/spec.js';
import type { ControlPlaneStatus } from '../../src/control-plane/status.js';
import {
  HCP_API_VERSION,
  HCP_KIND,
  type Condition,
  type HostedControlPlane,
} from '../../src/operator/api.js';
import { statusOf, type Observation } from '../../src/operator/conditions.js';

const spec = buildControlPlaneSpec({
  name: 'dev',
  namespace: 'team-a',
  host: 'api.dev.example',
  nodePorts: { api: 30443, join: 30843, konnectivity: 30132 },
});
const T0 = new Date('2026-12-02T10:00:00Z');
const T1 = new Date('2026-12-02T10:05:00Z');

function resource(status?: HostedControlPlane['status'], generation = 3): HostedControlPlane {
  return {
    apiVersion: HCP_API_VERSION,
    kind: HCP_KIND,
    metadata: { name: 'dev', namespace: 'team-a', generation },
    spec: { exposure: { host: 'api.dev.example' } },
    ...(status === undefined ? {} : { status }),
  };
}

function observed(options: {
  ready: boolean;
  daysLeft?: number;
  version?: string;
  desiredVersion?: string;
  /** Components whose changed spec is still rolling. */
  rolling?: readonly string[];
}): Observation {
  const replicas = options.ready ? 1 : 0;
  const status: ControlPlaneStatus = {
    spec,
    apiUrl: 'https://api.dev.example:30443',
    joinUrl: 'https://api.dev.example:30843',
    components: (['etcd', 'apiserver', 'controller-manager', 'scheduler', 'join-server'] as const).map(
      (component) => ({
        component,
        present: true,
        readyReplicas: replicas,
        replicas: 1,
        rolledOut: options.ready && !(options.rolling ?? []).includes(component),
        image: 'x',
      }),
    ),
    certificates: [
      { name: 'ca', commonName: 'kubernetes', notAfter: new Date('2036-11-29T00:00:00Z'), daysLeft: 3649 },
      {
        name: 'apiserver',
        commonName: 'kube-apiserver',
        notAfter: new Date('2027-12-02T00:00:00Z'),
        daysLeft: options.daysLeft ?? 364,
      },
    ],
    requests: { cpuMillis: 570, memoryBytes: 576 * 1024 * 1024 },
  };
  return {
    kind: 'observed',
    status,
    readyz: options.ready ? { ok: true, detail: 'ok' } : { ok: false, detail: 'connect ECONNREFUSED' },
    podProblems: options.ready
      ? undefined
      : 'pod dev-etcd-0: ImagePullBackOff (registry.k8s.io/etcd:3.7.0-0)',
    addons: options.ready ? { count: 31 } : undefined,
    serverVersion: options.ready ? (options.version ?? 'v1.37.2') : undefined,
    desiredVersion: options.desiredVersion ?? 'v1.37.2',
  };
}

function condition(s: HostedControlPlane['status'], type: string): Condition {
  const found = s?.conditions?.find((c) => c.type === type);
  assert.ok(found !== undefined, `condition ${type}`);
  return found;
}

describe('HostedControlPlane status', () => {
  it('while pods do not run: Provisioning, with the pod problem named where it belongs', () => {
    const status = statusOf(resource(), observed({ ready: false }), T0);
    assert.equal(status.phase, 'Provisioning');
    assert.equal(status.observedGeneration, 3);
    assert.equal(status.ready, false);
    assert.equal(status.initialized, false);
    assert.equal(status.kubeconfigSecretName, 'dev-kubeconfig');
    assert.equal(status.endpoint, 'https://api.dev.example:30443');
    assert.equal(status.externalManagedControlPlane, true);
    const etcd = condition(status, 'EtcdAvailable');
    assert.equal(etcd.status, 'False');
    assert.equal(etcd.reason, 'PodsNotReady');
    assert.match(etcd.message, /0\/1 etcd pods ready \(pod dev-etcd-0: ImagePullBackOff/);
    assert.doesNotMatch(condition(status, 'JoinServerAvailable').message, /etcd/);
    assert.equal(condition(status, 'APIServerAvailable').reason, 'ReadyzFailed');
    assert.match(condition(status, 'APIServerAvailable').message, /30443\/readyz: connect ECONNREFUSED/);
    assert.equal(condition(status, 'AddonsInstalled').reason, 'WaitingForAPIServer');
    const available = condition(status, 'Available');
    assert.equal(available.status, 'False');
    assert.match(available.message, /EtcdAvailable: .*; APIServerAvailable: /);
    assert.ok(
      status.conditions?.every(
        (c) => c.lastTransitionTime === T0.toISOString() && c.observedGeneration === 3,
      ),
    );
  });

  it('once everything answers: Ready and Available, the version reported; unchanged conditions keep their time', () => {
    const first = statusOf(resource(), observed({ ready: false }), T0);
    const status = statusOf(resource(first), observed({ ready: true }), T1);
    assert.equal(status.phase, 'Ready');
    assert.equal(status.ready, true);
    assert.equal(status.initialized, true);
    assert.equal(status.version, 'v1.37.2');
    assert.equal(condition(status, 'Available').reason, 'AllComponentsAvailable');
    assert.equal(condition(status, 'AddonsInstalled').message, '31 objects applied in the hosted cluster');
    // CertificatesValid was True before and is now: its transition time stays T0.
    assert.equal(condition(status, 'CertificatesValid').lastTransitionTime, T0.toISOString());
    assert.equal(condition(status, 'Available').lastTransitionTime, T1.toISOString());
  });

  it('certificates about to expire make CertificatesValid False; expired ones make the control plane not Available', () => {
    const soon = statusOf(resource(), observed({ ready: true, daysLeft: 12 }), T0);
    assert.equal(condition(soon, 'CertificatesValid').reason, 'ExpiringSoon');
    assert.match(
      condition(soon, 'CertificatesValid').message,
      /apiserver \(kube-apiserver\) expires 2027-12-02, in 12 days/,
    );
    assert.equal(soon.ready, true, 'a warning, not an outage');
    assert.equal(soon.phase, 'Ready');
    const expired = statusOf(resource({ initialized: true }), observed({ ready: true, daysLeft: -3 }), T0);
    assert.equal(condition(expired, 'CertificatesValid').reason, 'Expired');
    assert.equal(expired.ready, false);
    assert.equal(expired.phase, 'NotReady');
  });

  it('a different version answering than asked for is Upgrading', () => {
    const status = statusOf(
      resource({ initialized: true }),
      observed({ ready: true, version: 'v1.34.1' }),
      T0,
    );
    assert.equal(status.phase, 'Upgrading');
    assert.equal(status.version, 'v1.34.1');
    assert.equal(status.desiredVersion, 'v1.37.2');
  });

  it('a version change is Upgrading, keeping the old version, until every component has rolled out', () => {
    const before = statusOf(
      resource(),
      observed({ ready: true, version: 'v1.37.1', desiredVersion: 'v1.37.1' }),
      T0,
    );
    assert.equal(before.phase, 'Ready');
    assert.equal(before.version, 'v1.37.1');
    // The new apiserver answers already; the controller-manager and scheduler still roll.
    const rolling = statusOf(
      resource(before, 4),
      observed({ ready: true, version: 'v1.37.2', rolling: ['controller-manager', 'scheduler'] }),
      T1,
    );
    assert.equal(rolling.phase, 'Upgrading');
    assert.equal(rolling.version, 'v1.37.1');
    assert.equal(rolling.desiredVersion, 'v1.37.2');
    assert.equal(rolling.ready, true, 'the old pods serve while the new ones start');
    const done = statusOf(resource(rolling, 4), observed({ ready: true, version: 'v1.37.2' }), T1);
    assert.equal(done.phase, 'Ready');
    assert.equal(done.version, 'v1.37.2');
  });

  it('an invalid spec and a failed reconcile say why in Available, the rest Unknown; deleting is Deleting', () => {
    const invalid = statusOf(resource(), { kind: 'invalid', message: 'Expected spec.networks.vip …' }, T0);
    assert.deepEqual(
      [
        condition(invalid, 'Available').status,
        condition(invalid, 'Available').reason,
        condition(invalid, 'Available').message,
      ],
      ['False', 'InvalidSpec', 'Expected spec.networks.vip …'],
    );
    assert.equal(condition(invalid, 'EtcdAvailable').status, 'Unknown');
    assert.equal(invalid.phase, 'Provisioning');
    const failed = statusOf(
      resource({ initialized: true }),
      { kind: 'failed', message: 'apply Secret: 403' },
      T0,
    );
    assert.equal(condition(failed, 'Available').reason, 'ReconcileFailed');
    assert.equal(failed.phase, 'NotReady');
    assert.equal(statusOf(resource(), { kind: 'deleting' }, T0).phase, 'Deleting');
  });
});
