// Who the rendered NetworkPolicies let in, read the way a NetworkPolicy implementation reads them:
// which pods each policy isolates, and from which pods and to which ports its rules admit traffic.
// The harness's CNI enforces no NetworkPolicy, so the objects are what can be tested here.
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { KubernetesObject, V1Deployment, V1NetworkPolicyPort } from '@kubernetes/client-node';
import { buildControlPlaneSpec } from '../../src/control-plane/spec.js';
import { PORTS, renderControlPlane } from '../../src/control-plane/render/control-plane.js';
import type { NetworkPolicy } from '../../src/control-plane/render/network-policies.js';
import { COMPONENT_LABEL, KONNECTIVITY_AGENT_PORT } from '../../src/contract.js';
import { fakeControlPlanePki } from './fake-pki.js';

interface Pod {
  readonly controlPlane: string;
  readonly component: string;
  readonly labels: Readonly<Record<string, string>>;
}

const input = {
  namespace: 'team-a',
  host: 'api.example.com',
  nodePorts: { api: 30443, join: 30844, konnectivity: 30132 },
};

function render(name: string): KubernetesObject[] {
  return renderControlPlane(buildControlPlaneSpec({ ...input, name }), fakeControlPlanePki());
}

/** The pods the workloads of `objects` make, with their template labels. */
function podsOf(controlPlane: string, objects: readonly KubernetesObject[]): Pod[] {
  return objects
    .filter((o) => o.kind === 'Deployment' || o.kind === 'StatefulSet')
    .map((o) => {
      const labels = (o as V1Deployment).spec?.template.metadata?.labels ?? {};
      return { controlPlane, component: labels[COMPONENT_LABEL] ?? '?', labels };
    });
}

function policiesOf(objects: readonly KubernetesObject[]): NetworkPolicy[] {
  return objects.filter((o) => o.kind === 'NetworkPolicy') as NetworkPolicy[];
}

/** matchLabels semantics; these policies use no matchExpressions (asserted below). */
function selects(selector: NetworkPolicy['spec'], pod: Pod): boolean {
  const matchLabels = selector.podSelector.matchLabels ?? {};
  return Object.entries(matchLabels).every(([key, value]) => pod.labels[key] === value);
}

/** The TCP ports `from` may connect to on `to`, by the policies that isolate `to`; 'any' = not isolated. */
function admittedPorts(policies: readonly NetworkPolicy[], from: Pod | 'outside', to: Pod): number[] | 'any' {
  const isolating = policies.filter((p) => p.spec.policyTypes.includes('Ingress') && selects(p.spec, to));
  if (isolating.length === 0) return 'any';
  const ports = new Set<number>();
  for (const rule of isolating.flatMap((p) => p.spec.ingress ?? [])) {
    const peers = rule.from ?? [];
    const admitted =
      peers.length === 0 ||
      (from !== 'outside' &&
        peers.some((peer) => {
          assert.deepEqual(Object.keys(peer), ['podSelector'], 'no namespaceSelector, no ipBlock');
          assert.equal(peer.podSelector.matchExpressions, undefined);
          const labels = peer.podSelector.matchLabels ?? {};
          return Object.entries(labels).every(([key, value]) => from.labels[key] === value);
        }));
    if (!admitted) continue;
    for (const port of rule.ports) ports.add(tcpPort(port));
  }
  return [...ports].sort((a, b) => a - b);
}

function tcpPort(port: V1NetworkPolicyPort): number {
  assert.equal(port.protocol, 'TCP');
  assert.equal(port.endPort, undefined);
  assert.equal(typeof port.port, 'number', 'ports by number, not a name a container could reuse');
  return port.port as number;
}

describe('renderNetworkPolicies', () => {
  const dev = render('dev');
  const other = render('dev2');
  const policies = [...policiesOf(dev), ...policiesOf(other)];
  const pods = [...podsOf('dev', dev), ...podsOf('dev2', other)];
  const pod = (controlPlane: string, component: string): Pod => {
    const found = pods.find((p) => p.controlPlane === controlPlane && p.component === component);
    assert.ok(found, `${controlPlane} ${component}`);
    return found;
  };

  it('isolates every pod of the control plane for ingress, and leaves egress open', () => {
    assert.equal(pods.length, 10);
    for (const policy of policies) {
      assert.deepEqual(policy.spec.policyTypes, ['Ingress'], policy.metadata?.name);
      assert.ok(!('egress' in policy.spec), 'egress is not restricted');
      assert.equal(policy.spec.podSelector.matchExpressions, undefined);
    }
    for (const target of pods) {
      const isolating = policies.filter((p) => selects(p.spec, target));
      assert.deepEqual(
        isolating.map((p) => p.metadata?.name),
        [`${target.controlPlane}-${target.component}`],
        'exactly its own component policy selects each pod',
      );
    }
  });

  it("admits to etcd only this control plane's apiserver, only on the client port", () => {
    const etcd = pod('dev', 'etcd');
    const apiserver = pod('dev', 'apiserver');
    // Not the plain-HTTP metrics/health port nor the peer port: those are for no pod at all (the
    // kubelet's probes come from the node).
    assert.deepEqual(admittedPorts(policies, apiserver, etcd), [PORTS.etcdClient]);
    for (const from of [...pods.filter((p) => p !== apiserver), 'outside' as const]) {
      const what = from === 'outside' ? 'outside' : `${from.controlPlane} ${from.component}`;
      assert.deepEqual(admittedPorts(policies, from, etcd), [], what);
    }
  });

  it("admits anyone to the apiserver's, konnectivity's and the join server's public ports, and to nothing else", () => {
    for (const from of [...pods, 'outside' as const]) {
      assert.deepEqual(admittedPorts(policies, from, pod('dev', 'apiserver')), [
        PORTS.apiserver,
        KONNECTIVITY_AGENT_PORT,
      ]);
      assert.deepEqual(admittedPorts(policies, from, pod('dev', 'join-server')), [PORTS.joinServer]);
    }
  });

  it('admits nobody to the controller-manager and the scheduler', () => {
    for (const component of ['controller-manager', 'scheduler']) {
      for (const from of [...pods, 'outside' as const]) {
        assert.deepEqual(admittedPorts(policies, from, pod('dev', component)), [], component);
      }
    }
  });

  it('is the same whatever the exposure', () => {
    const ingress = renderControlPlane(
      buildControlPlaneSpec({ ...input, name: 'dev', nodePorts: undefined, expose: 'ingress' }),
      fakeControlPlanePki(),
    );
    const withoutKonnectivity = renderControlPlane(
      buildControlPlaneSpec({
        ...input,
        name: 'dev',
        nodePorts: { api: 30443, join: 30844 },
        konnectivity: false,
      }),
      fakeControlPlanePki(),
    );
    // Behind an ingress there is no konnectivity (yet): the same policies as without it.
    assert.deepEqual(policiesOf(ingress), policiesOf(withoutKonnectivity));
  });
});
