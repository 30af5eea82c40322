// The HostedControlPlane CustomResourceDefinition: a structural schema whose enums, bounds and
// patterns come from the spec module's own constants (EXPOSURES, CNIS, SPEC_LIMITS, …), and CEL
// rules for the cross-field checks `create` makes, so `kubectl apply` refuses what `create` would.
// What CEL cannot see (CIDR overlaps, the VIP inside a CIDR) the operator reports as InvalidSpec.
// test/integration/operator-crd.test.ts holds the two to the same answers on a table of inputs.
import type { KubernetesObject } from '@kubernetes/client-node';
import { CPU_QUANTITY, MEMORY_QUANTITY } from '../control-plane/component-resources.js';
import { COMPONENTS, MAX_CONTROL_PLANE_NAME_LENGTH } from '../control-plane/names.js';
import { CNIS, EXPOSURES, SPEC_DEFAULTS, SPEC_LIMITS } from '../control-plane/spec.js';
import {
  DELETION_POLICIES,
  HCP_GROUP,
  HCP_KIND,
  HCP_PLURAL,
  HCP_SHORT_NAME,
  HCP_VERSION,
  CONDITION_TYPES,
} from './api.js';

/** An OpenAPI v3 schema in the API's JSON form (client-node's model renames `enum`, `default`, …). */
interface Schema {
  readonly type?: 'object' | 'string' | 'integer' | 'boolean' | 'array';
  readonly description?: string;
  readonly properties?: Readonly<Record<string, Schema>>;
  readonly required?: readonly string[];
  readonly items?: Schema;
  readonly enum?: readonly string[];
  readonly default?: unknown;
  readonly pattern?: string;
  readonly format?: string;
  readonly minimum?: number;
  readonly maximum?: number;
  readonly maxLength?: number;
  readonly 'x-kubernetes-validations'?: readonly { readonly rule: string; readonly message: string }[];
  readonly 'x-kubernetes-list-type'?: 'map' | 'set' | 'atomic';
  readonly 'x-kubernetes-list-map-keys'?: readonly string[];
}

const string = (description: string, extra: Schema = {}): Schema => ({
  type: 'string',
  description,
  ...extra,
});
const nodePort = (description: string): Schema => ({
  type: 'integer',
  description,
  minimum: SPEC_LIMITS.nodePort.min,
  maximum: SPEC_LIMITS.nodePort.max,
});
const immutable = (what: string) => ({ rule: 'self == oldSelf', message: `${what} is immutable` });
/** A DNS name or an IP address, as `create --host` takes it. */
const HOST_PATTERN = '^([a-z0-9]([-a-z0-9]*[a-z0-9])?)(\\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$|^[0-9a-fA-F:.]+$';

const SPEC_SCHEMA: Schema = {
  type: 'object',
  required: ['exposure'],
  description: 'The control plane as asked for; the same choices as the flags of `k8s-on-k8s create`.',
  properties: {
    version: string(
      'Kubernetes release, e.g. v1.37.2 (default: the one the operator ships). Changing it upgrades.',
      {
        pattern: SPEC_LIMITS.version.source,
      },
    ),
    exposure: {
      type: 'object',
      required: ['host'],
      description: 'How the hosted apiserver and join server are reached from outside the infra cluster.',
      properties: {
        type: string('nodeport (default), loadbalancer, or ingress (TLS passthrough, by SNI).', {
          enum: [...EXPOSURES],
          default: SPEC_DEFAULTS.expose,
          'x-kubernetes-validations': [immutable('exposure.type')],
        }),
        host: string('Public DNS name (or IP) of the hosted apiserver; in its certificate.', {
          maxLength: 253,
          pattern: HOST_PATTERN,
          'x-kubernetes-validations': [immutable('exposure.host')],
        }),
        joinHost: string('Public name of the join server (default: host; join.<host> behind an ingress).', {
          maxLength: 253,
          pattern: HOST_PATTERN,
          'x-kubernetes-validations': [immutable('exposure.joinHost')],
        }),
        ingressClassName: string('IngressClass of the TLS-passthrough Ingress (exposure ingress only).', {
          maxLength: 253,
        }),
        nodePorts: {
          type: 'object',
          description: 'Fixed NodePorts (exposure nodeport only); left out, the infra cluster picks.',
          properties: {
            api: nodePort('NodePort of the hosted apiserver.'),
            join: nodePort('NodePort of the join server.'),
            konnectivity: nodePort('NodePort of the konnectivity agent port.'),
          },
          'x-kubernetes-validations': [
            {
              rule: '!has(self.api) || !has(self.join) || self.api != self.join',
              message: 'nodePorts.api and nodePorts.join must differ',
            },
            {
              rule: '!has(self.konnectivity) || ((!has(self.api) || self.api != self.konnectivity) && (!has(self.join) || self.join != self.konnectivity))',
              message: 'nodePorts.konnectivity must differ from nodePorts.api and nodePorts.join',
            },
          ],
        },
      },
      'x-kubernetes-validations': [
        {
          rule: "!has(self.ingressClassName) || self.type == 'ingress'",
          message: 'exposure.ingressClassName is only used with exposure.type ingress',
        },
        {
          rule: "!has(self.nodePorts) || self.type == 'nodeport' || !(has(self.nodePorts.api) || has(self.nodePorts.join) || has(self.nodePorts.konnectivity))",
          message: 'exposure.nodePorts are only used with exposure.type nodeport',
        },
      ],
    },
    etcd: {
      type: 'object',
      default: {},
      description: "etcd's storage: a PersistentVolumeClaim (storageSize, default 1Gi) or ephemeral.",
      properties: {
        storageSize: string('PersistentVolumeClaim size, whole Mi/Gi/Ti, e.g. 1Gi.', {
          pattern: SPEC_LIMITS.quantity.source,
        }),
        ephemeral: { type: 'boolean', description: 'An emptyDir: the data goes with the pod.' },
      },
      'x-kubernetes-validations': [
        immutable('etcd'),
        {
          rule: '!(has(self.ephemeral) && self.ephemeral && has(self.storageSize))',
          message: 'etcd.storageSize and etcd.ephemeral exclude each other',
        },
      ],
    },
    networks: {
      type: 'object',
      default: {},
      description: "The hosted cluster's networks and the workers' API VIP; fixed at creation.",
      properties: {
        serviceCIDR: string('Service CIDR, a /12 to /28 (CoreDNS takes the 10th address).', {
          default: SPEC_DEFAULTS.serviceCidr,
          'x-kubernetes-validations': [
            { rule: 'isCIDR(self)', message: 'networks.serviceCIDR must be a CIDR' },
          ],
        }),
        podCIDR: string('Pod CIDR, a /24 or larger (each node takes a /24).', {
          default: SPEC_DEFAULTS.podCidr,
          'x-kubernetes-validations': [{ rule: 'isCIDR(self)', message: 'networks.podCIDR must be a CIDR' }],
        }),
        vip: string('The IPv4 address workers reach the apiserver at (their forwarder listens there).', {
          default: SPEC_DEFAULTS.vip,
          'x-kubernetes-validations': [
            { rule: 'isIP(self) && ip(self).family() == 4', message: 'networks.vip must be an IPv4 address' },
          ],
        }),
      },
      'x-kubernetes-validations': [immutable('networks')],
    },
    addons: {
      type: 'object',
      description: 'What is installed into the hosted cluster beside kube-proxy and CoreDNS.',
      properties: {
        cni: string('The pod network: flannel (default) or none (bring your own).', { enum: [...CNIS] }),
        konnectivity: {
          type: 'boolean',
          description: 'Reach kubelets through konnectivity (default true; not with exposure ingress yet).',
        },
      },
    },
    apiserver: {
      type: 'object',
      properties: {
        replicas: {
          type: 'integer',
          description: 'kube-apiserver pods (default 1).',
          minimum: SPEC_LIMITS.apiserverReplicas.min,
          maximum: SPEC_LIMITS.apiserverReplicas.max,
        },
      },
    },
    joinServer: {
      type: 'object',
      properties: {
        image: string('The join server image (default: the one built with the operator).', {
          maxLength: 512,
        }),
      },
    },
    components: {
      type: 'object',
      description: 'Per component: requests and a memory limit over the measured defaults (no CPU limit).',
      properties: Object.fromEntries(
        COMPONENTS.map((component) => [
          component,
          {
            type: 'object',
            properties: {
              resources: {
                type: 'object',
                properties: {
                  requests: {
                    type: 'object',
                    properties: {
                      cpu: string('CPU request, e.g. 250m.', { pattern: CPU_QUANTITY.source }),
                      memory: string('Memory request, e.g. 320Mi.', { pattern: MEMORY_QUANTITY.source }),
                    },
                  },
                  limits: {
                    type: 'object',
                    properties: {
                      memory: string('Memory limit, e.g. 1Gi.', { pattern: MEMORY_QUANTITY.source }),
                    },
                  },
                },
                'x-kubernetes-validations': [
                  {
                    rule: '!has(self.requests) || !has(self.requests.memory) || !has(self.limits) || !has(self.limits.memory) || quantity(self.requests.memory).compareTo(quantity(self.limits.memory)) <= 0',
                    message: 'the memory request must be at most the memory limit',
                  },
                ],
              },
            },
          },
        ]),
      ),
    },
    deletionPolicy: string(
      'Delete (default) removes everything; Retain keeps the PKI Secrets and etcd data.',
      {
        enum: [...DELETION_POLICIES],
        default: 'Delete',
      },
    ),
    controlPlaneEndpoint: {
      type: 'object',
      description: 'Cluster API: where the control plane is reached. The operator fills it in once known.',
      properties: {
        host: string('Host of the endpoint.'),
        port: { type: 'integer', format: 'int32', minimum: 1, maximum: 65535 },
      },
    },
  },
  'x-kubernetes-validations': [
    {
      rule: "!(has(self.addons) && has(self.addons.konnectivity) && self.addons.konnectivity) || self.exposure.type != 'ingress'",
      message:
        'addons.konnectivity is not supported with exposure.type ingress yet; use nodeport or loadbalancer',
    },
    {
      rule: '!(has(self.exposure.nodePorts) && has(self.exposure.nodePorts.konnectivity)) || !(has(self.addons) && has(self.addons.konnectivity) && !self.addons.konnectivity)',
      message: 'exposure.nodePorts.konnectivity is only used with konnectivity',
    },
    {
      rule: "self.exposure.type != 'ingress' || ((has(self.exposure.joinHost) ? self.exposure.joinHost : 'join.' + self.exposure.host) != self.exposure.host && !isIP(self.exposure.host) && (!has(self.exposure.joinHost) || !isIP(self.exposure.joinHost)))",
      message:
        'with exposure.type ingress, exposure.host and exposure.joinHost must be two different DNS names (the ingress routes by TLS SNI)',
    },
  ],
};

const CONDITION_SCHEMA: Schema = {
  type: 'object',
  required: ['type', 'status', 'lastTransitionTime', 'reason', 'message'],
  properties: {
    type: string('One of the condition types.', { enum: [...CONDITION_TYPES] }),
    status: string('True, False or Unknown.', { enum: ['True', 'False', 'Unknown'] }),
    reason: string('CamelCase reason.', {
      maxLength: 1024,
      pattern: '^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$',
    }),
    message: string('What a person can act on.', { maxLength: 32768 }),
    observedGeneration: { type: 'integer', format: 'int64', minimum: 0 },
    lastTransitionTime: string('When status last changed.', { format: 'date-time' }),
  },
};

const STATUS_SCHEMA: Schema = {
  type: 'object',
  description: 'What the operator observed; written only by it.',
  properties: {
    observedGeneration: { type: 'integer', format: 'int64' },
    phase: string('Provisioning, Upgrading, Ready, NotReady or Deleting.', {
      enum: ['Provisioning', 'Upgrading', 'Ready', 'NotReady', 'Deleting'],
    }),
    conditions: {
      type: 'array',
      items: CONDITION_SCHEMA,
      'x-kubernetes-list-type': 'map',
      'x-kubernetes-list-map-keys': ['type'],
    },
    version: string('The version the hosted apiserver reports.'),
    desiredVersion: string('The version asked for.'),
    endpoint: string('https://host:port of the hosted apiserver.'),
    joinServerUrl: string('https://host:port of the join server.'),
    kubeconfigSecretName: string('The Secret (key value) with the admin kubeconfig.'),
    initialized: { type: 'boolean' },
    ready: { type: 'boolean' },
    externalManagedControlPlane: { type: 'boolean' },
  },
};

/** The CRD, as `deploy/operator/crd.yaml` holds it. */
export function renderHostedControlPlaneCrd(): KubernetesObject & { spec: unknown } {
  return {
    apiVersion: 'apiextensions.k8s.io/v1',
    kind: 'CustomResourceDefinition',
    metadata: {
      name: `${HCP_PLURAL}.${HCP_GROUP}`,
      // Cluster API finds a provider's version for its contract by this label.
      labels: { 'cluster.x-k8s.io/v1beta1': HCP_VERSION, 'app.kubernetes.io/part-of': 'k8s-on-k8s' },
    },
    spec: {
      group: HCP_GROUP,
      scope: 'Namespaced',
      names: {
        kind: HCP_KIND,
        listKind: `${HCP_KIND}List`,
        plural: HCP_PLURAL,
        singular: HCP_KIND.toLowerCase(),
        shortNames: [HCP_SHORT_NAME],
        categories: ['k8s-on-k8s'],
      },
      versions: [
        {
          name: HCP_VERSION,
          served: true,
          storage: true,
          subresources: { status: {} },
          additionalPrinterColumns: [
            { name: 'Version', type: 'string', jsonPath: '.status.version' },
            { name: 'Phase', type: 'string', jsonPath: '.status.phase' },
            { name: 'Endpoint', type: 'string', jsonPath: '.status.endpoint' },
            { name: 'Age', type: 'date', jsonPath: '.metadata.creationTimestamp' },
          ],
          schema: {
            openAPIV3Schema: {
              type: 'object',
              description: 'A Kubernetes control plane hosted as pods in this namespace.',
              required: ['spec'],
              properties: {
                apiVersion: { type: 'string' },
                kind: { type: 'string' },
                metadata: { type: 'object' },
                spec: SPEC_SCHEMA,
                status: STATUS_SCHEMA,
              },
              'x-kubernetes-validations': [
                {
                  rule: `self.metadata.name.size() <= ${MAX_CONTROL_PLANE_NAME_LENGTH} && self.metadata.name.matches('^[a-z]([-a-z0-9]*[a-z0-9])?$')`,
                  message: `the name must be a DNS label of at most ${MAX_CONTROL_PLANE_NAME_LENGTH} characters starting with a letter (it prefixes every object's name)`,
                },
              ],
            },
          },
        },
      ],
    },
  };
}
