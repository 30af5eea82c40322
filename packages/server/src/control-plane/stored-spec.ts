// The spec as the ConfigMap `spec.json` stores it, and back through the same validation as any
// other input: the one pair of functions for the stored form.
import { ValidationError, invalidArgument } from '@k8s-on-k8s/shared';
import {
  buildControlPlaneSpec,
  type Cni,
  type ControlPlaneSpec,
  type Exposure,
  type SpecFieldNames,
} from './spec.js';

/**
 * The spec as the ConfigMap `spec.json` stores it: every field, derived ones included, so a person
 * reading the ConfigMap sees the addresses in use. An emptyDir etcd has no `etcdStorage` key.
 */
export function toStoredSpec(spec: ControlPlaneSpec): string {
  return `${JSON.stringify(spec, null, 2)}\n`;
}

/** The field names of the stored spec, for messages about a ConfigMap someone edited by hand. */
const STORED_FIELD_NAMES: SpecFieldNames = {
  name: 'spec.json name',
  namespace: 'spec.json namespace',
  host: 'spec.json host',
  joinHost: 'spec.json joinHost',
  kubernetesVersion: 'spec.json kubernetesVersion',
  expose: 'spec.json expose',
  ingressClass: 'spec.json ingressClass',
  apiNodePort: 'spec.json nodePorts.api',
  joinNodePort: 'spec.json nodePorts.join',
  konnectivityNodePort: 'spec.json nodePorts.konnectivity',
  cni: 'spec.json cni',
  konnectivity: 'spec.json konnectivity',
  apiserverReplicas: 'spec.json apiserverReplicas',
  etcdStorage: 'spec.json etcdStorage',
  serviceCidr: 'spec.json serviceCidr',
  podCidr: 'spec.json podCidr',
  vip: 'spec.json vip',
  joinServerImage: 'spec.json joinServerImage',
  componentResources: 'spec.json componentResources',
};

/**
 * Reads a stored spec back through the same validation as any other input (the ConfigMap is input
 * too: someone may have edited it); derived fields are recomputed, not trusted.
 */
export function fromStoredSpec(text: string, source: string): ControlPlaneSpec {
  let stored: unknown;
  try {
    stored = JSON.parse(text);
  } catch (cause) {
    throw invalidArgument(`${source}: spec.json is not JSON`, { cause });
  }
  if (typeof stored !== 'object' || stored === null || Array.isArray(stored)) {
    throw invalidArgument(`${source}: spec.json is not a JSON object`);
  }
  const field = (key: string): unknown => (stored as Record<string, unknown>)[key];
  const stringField = (key: keyof SpecFieldNames): string | undefined => {
    const value = field(key);
    if (value === undefined || typeof value === 'string') return value;
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `${source}: expected ${STORED_FIELD_NAMES[key]} to be a string, got ${JSON.stringify(value)}`,
    );
  };
  const booleanField = (key: 'konnectivity'): boolean | undefined => {
    const value = field(key);
    if (value === undefined || typeof value === 'boolean') return value;
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `${source}: expected ${STORED_FIELD_NAMES[key]} to be true or false, got ${JSON.stringify(value)}`,
    );
  };
  const numberField = (key: 'apiserverReplicas'): number | undefined => {
    const value = field(key);
    if (value === undefined || typeof value === 'number') return value;
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `${source}: expected ${STORED_FIELD_NAMES[key]} to be a number, got ${JSON.stringify(value)}`,
    );
  };
  const ports = field('nodePorts') ?? {};
  const port = (key: 'api' | 'join' | 'konnectivity'): number | undefined => {
    const value = (ports as Record<string, unknown>)[key];
    if (value === undefined || typeof value === 'number') return value;
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `${source}: expected spec.json nodePorts.${key} to be a number, got ${JSON.stringify(value)}`,
    );
  };
  try {
    return buildControlPlaneSpec(
      {
        name: stringField('name'),
        namespace: stringField('namespace'),
        host: stringField('host'),
        joinHost: stringField('joinHost'),
        kubernetesVersion: stringField('kubernetesVersion'),
        expose: stringField('expose') as Exposure | undefined,
        ingressClass: stringField('ingressClass'),
        nodePorts: { api: port('api'), join: port('join'), konnectivity: port('konnectivity') },
        cni: stringField('cni') as Cni | undefined,
        konnectivity: booleanField('konnectivity'),
        apiserverReplicas: numberField('apiserverReplicas'),
        etcdStorage: stringField('etcdStorage') ?? null,
        serviceCidr: stringField('serviceCidr'),
        podCidr: stringField('podCidr'),
        vip: stringField('vip'),
        joinServerImage: stringField('joinServerImage'),
        componentResources: field('componentResources'),
      },
      STORED_FIELD_NAMES,
    );
  } catch (error) {
    if (error instanceof ValidationError) {
      throw new ValidationError(error.code, `${source}: ${error.message}`, { cause: error });
    }
    throw error;
  }
}
