// How a control plane is reached: ClusterIP/NodePort/LoadBalancer Services and the TLS-passthrough Ingress.
import type { V1Ingress, V1Service } from '@kubernetes/client-node';
import { type ControlPlaneSpec } from '../spec.js';
import { componentName, controlPlaneLabels, type Component } from '../names.js';

import { KONNECTIVITY_PORTS } from './konnectivity.js';
import { PORTS, componentLabels, selector } from './pod-kit.js';

/**
 * The Services alone; `create` applies them first when the infra cluster is to pick the NodePorts,
 * since the join server's flags and the admin kubeconfig name them.
 */
export function renderControlPlaneServices(spec: ControlPlaneSpec): V1Service[] {
  const exposedType = { nodeport: 'NodePort', loadbalancer: 'LoadBalancer', ingress: 'ClusterIP' }[
    spec.expose
  ];
  const service = (
    component: Component,
    type: string,
    ports: { name: string; port: number; nodePort?: number | undefined }[],
    externalTrafficPolicy?: 'Local',
  ): V1Service => ({
    apiVersion: 'v1',
    kind: 'Service',
    metadata: {
      name: componentName(spec, component),
      namespace: spec.namespace,
      labels: componentLabels(spec, component),
    },
    spec: {
      type,
      ...(externalTrafficPolicy === undefined ? {} : { externalTrafficPolicy }),
      selector: selector(spec, component),
      ports: ports.map(({ name, port, nodePort }) => ({
        name,
        port,
        targetPort: port,
        protocol: 'TCP',
        ...(nodePort === undefined ? {} : { nodePort }),
      })),
    },
  });
  return [
    service('etcd', 'ClusterIP', [{ name: 'client', port: PORTS.etcdClient }]),
    service('apiserver', exposedType, [
      {
        name: 'https',
        port: PORTS.apiserver,
        nodePort: spec.expose === 'nodeport' ? spec.nodePorts.api : undefined,
      },
      // The proxy servers run in the apiserver pods; agents reach them the way kubelets reach the API.
      ...(spec.konnectivity
        ? [
            {
              name: 'konnectivity',
              port: KONNECTIVITY_PORTS.agent,
              nodePort: spec.expose === 'nodeport' ? spec.nodePorts.konnectivity : undefined,
            },
          ]
        : []),
    ]),
    // The join server limits rejected tokens per client address; with the default policy (Cluster)
    // kube-proxy SNATs external traffic to a node's address, so one bad client would put every
    // worker behind that node's 429. Local keeps the client's address; the price: only nodes
    // running the join-server pod answer on the NodePort (the join host must route to one), and
    // a LoadBalancer sends traffic only to those nodes, by its health-check node port.
    // https://kubernetes.io/docs/tasks/access-application-cluster/create-external-load-balancer/#preserving-the-client-source-ip
    service(
      'join-server',
      exposedType,
      [
        {
          name: 'https',
          port: PORTS.joinServer,
          nodePort: spec.expose === 'nodeport' ? spec.nodePorts.join : undefined,
        },
      ],
      spec.expose === 'ingress' ? undefined : 'Local',
    ),
  ];
}
export function renderIngress(spec: ControlPlaneSpec): V1Ingress {
  const rule = (host: string, component: Component, port: number) => ({
    host,
    http: {
      paths: [
        {
          path: '/',
          pathType: 'Prefix',
          backend: { service: { name: componentName(spec, component), port: { number: port } } },
        },
      ],
    },
  });
  return {
    apiVersion: 'networking.k8s.io/v1',
    kind: 'Ingress',
    metadata: {
      name: spec.name,
      namespace: spec.namespace,
      labels: controlPlaneLabels(spec),
      // TLS must reach the apiserver intact: it authenticates clients by their certificates.
      annotations: {
        'nginx.ingress.kubernetes.io/ssl-passthrough': 'true',
        'nginx.ingress.kubernetes.io/backend-protocol': 'HTTPS',
      },
    },
    spec: {
      ...(spec.ingressClass === undefined ? {} : { ingressClassName: spec.ingressClass }),
      rules: [
        rule(spec.host, 'apiserver', PORTS.apiserver),
        rule(spec.joinHost, 'join-server', PORTS.joinServer),
      ],
    },
  };
}
