// Which pods of the infra cluster may connect to a control plane's pods: one NetworkPolicy per
// component. Only Ingress is restricted; egress stays open (the apiserver dials etcd, the workers'
// kubelets and its webhooks; the join server and controllers dial the hosted apiserver's public
// address), so a policy of the infra cluster's own may narrow it.
//
// Each policy selects its pods by the control plane's name and the component, as the Services do:
// several control planes may share a namespace, and their names (unique there, since every object
// name starts with one) keep one control plane's rules from admitting another's pods. A `from`
// podSelector without a namespaceSelector matches pods of this namespace only.
//
// The kubelet's probes come from the node itself, which NetworkPolicy implementations admit
// whatever the policy says (https://kubernetes.io/docs/concepts/services-networking/network-policies/,
// "traffic to and from the node where a Pod is running is always allowed"), so the health ports
// need no rule. Where the infra cluster's CNI enforces no NetworkPolicy, these objects change nothing.
import type { KubernetesObject, V1LabelSelector, V1NetworkPolicyPort } from '@kubernetes/client-node';
import { type ControlPlaneSpec } from '../spec.js';
import { componentName, type Component } from '../names.js';

import { KONNECTIVITY_PORTS } from './konnectivity.js';
import { PORTS, componentLabels, selector } from './pod-kit.js';

/**
 * A NetworkPolicy ingress rule in the API's JSON form (client-node's model calls `from` `_from`).
 * `ports` is always given: a rule without it admits every port.
 */
export interface NetworkPolicyIngressRule {
  readonly from?: readonly { readonly podSelector: V1LabelSelector }[];
  readonly ports: readonly V1NetworkPolicyPort[];
}

/** A NetworkPolicy in the API's JSON form, as rendered and applied. */
export interface NetworkPolicy extends KubernetesObject {
  readonly spec: {
    readonly podSelector: V1LabelSelector;
    readonly policyTypes: readonly 'Ingress'[];
    readonly ingress?: readonly NetworkPolicyIngressRule[];
  };
}

/** Renders the NetworkPolicies of the control plane's pods, one per component. */
export function renderNetworkPolicies(spec: ControlPlaneSpec): NetworkPolicy[] {
  const policy = (component: Component, ingress: NetworkPolicyIngressRule[]): NetworkPolicy => ({
    apiVersion: 'networking.k8s.io/v1',
    kind: 'NetworkPolicy',
    metadata: {
      name: componentName(spec, component),
      namespace: spec.namespace,
      labels: componentLabels(spec, component),
    },
    spec: {
      podSelector: { matchLabels: selector(spec, component) },
      policyTypes: ['Ingress'],
      // No rules at all: no pod may connect.
      ...(ingress.length === 0 ? {} : { ingress }),
    },
  });
  const tcp = (port: number) => ({ protocol: 'TCP', port });
  return [
    // etcd's client port for this control plane's apiservers alone. Its peer URL is 127.0.0.1 (one
    // member) and its plain-HTTP metrics/health port is for the kubelet's probes: no rule for either.
    policy('etcd', [
      {
        from: [{ podSelector: { matchLabels: selector(spec, 'apiserver') } }],
        ports: [tcp(PORTS.etcdClient)],
      },
    ]),
    // The public ports, from anywhere: workers and admins reach them through the NodePort, the
    // LoadBalancer or the ingress controller, and the other components through the Service.
    policy('apiserver', [
      {
        ports: [tcp(PORTS.apiserver), ...(spec.konnectivity ? [tcp(KONNECTIVITY_PORTS.agent)] : [])],
      },
    ]),
    policy('join-server', [{ ports: [tcp(PORTS.joinServer)] }]),
    // They only dial out (to the hosted apiserver); their secure ports serve the kubelet's probes.
    policy('controller-manager', []),
    policy('scheduler', []),
  ];
}
