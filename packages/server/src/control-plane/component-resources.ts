// Per-component resource overrides: a CPU and memory request and a memory limit for each of
// etcd, the apiserver, controller-manager, scheduler and join server, over COMPONENT_RESOURCES
// (the sizes measured on the real-pods flow). No CPU limit: throttling an apiserver makes it time
// out. Validated here for every input (a HostedControlPlane's spec.components, a stored spec).
import type { V1ResourceRequirements } from '@kubernetes/client-node';
import { invalidArgument } from '@k8s-on-k8s/shared';
import { COMPONENTS, type Component } from './names.js';

/** What may be set for one component; the rest stays at its default. */
export interface ResourceOverrides {
  readonly requests?: { readonly cpu?: string; readonly memory?: string };
  readonly limits?: { readonly memory?: string };
}
export type ComponentResources = Readonly<Partial<Record<Component, ResourceOverrides>>>;

/** CPU as Kubernetes writes it: millicores (250m) or cores (0.5, 2). */
export const CPU_QUANTITY = /^([1-9][0-9]*m|[0-9]+(\.[0-9]{1,3})?)$/;
/** Memory in whole Ki, Mi or Gi. */
export const MEMORY_QUANTITY = /^[1-9][0-9]*(Ki|Mi|Gi)$/;

/**
 * The sizes measured on the real-pods flow (an idle control plane, and its peak while twenty
 * workers joined at once on a saturated 2-core node): apiserver 185–201 MiB idle, 268 peak; etcd
 * 26, 51; controller-manager 16, 55; join server 34, 42; scheduler 15, 23. Requests cover the
 * storm's peak (together 550m CPU and 544Mi); memory limits leave room for what the storm did not
 * show (a relist after an etcd restart, compaction, many more objects): about 4× the peak, at
 * least 128Mi.
 */
export const COMPONENT_RESOURCES: Readonly<Record<Component, V1ResourceRequirements>> = {
  etcd: { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '512Mi' } },
  apiserver: { requests: { cpu: '250m', memory: '320Mi' }, limits: { memory: '1Gi' } },
  'controller-manager': { requests: { cpu: '100m', memory: '64Mi' }, limits: { memory: '256Mi' } },
  scheduler: { requests: { cpu: '50m', memory: '32Mi' }, limits: { memory: '128Mi' } },
  'join-server': { requests: { cpu: '50m', memory: '64Mi' }, limits: { memory: '128Mi' } },
};

const MEMORY_UNITS: Readonly<Record<string, number>> = { Ki: 1024, Mi: 1024 ** 2, Gi: 1024 ** 3 };
/** A memory quantity in whole Ki, Mi or Gi as bytes (NaN otherwise). */
export function quantityBytes(quantity: string): number {
  const match = /^(\d+)(Ki|Mi|Gi)$/.exec(quantity);
  return match === null ? Number.NaN : Number(match[1]) * (MEMORY_UNITS[match[2] ?? ''] ?? Number.NaN);
}

/** Validates overrides from any input; `field` names where they came from (e.g. spec.components). */
export function validateComponentResources(input: unknown, field: string): ComponentResources {
  if (input === undefined) return Object.freeze({});
  if (typeof input !== 'object' || input === null || Array.isArray(input)) {
    throw invalidArgument(
      `Expected ${field} to be an object keyed by component, got ${JSON.stringify(input)}`,
    );
  }
  const out: Partial<Record<Component, ResourceOverrides>> = {};
  for (const [component, overrides] of Object.entries(input)) {
    if (!(COMPONENTS as readonly string[]).includes(component)) {
      throw invalidArgument(
        `Expected the keys of ${field} to be among ${COMPONENTS.join(', ')}, got ${JSON.stringify(component)}`,
      );
    }
    const at = `${field}.${component}`;
    const shape = overrides as {
      requests?: Record<string, unknown>;
      limits?: Record<string, unknown>;
    } | null;
    if (typeof shape !== 'object' || shape === null) {
      throw invalidArgument(`Expected ${at} to be { requests: { cpu, memory }, limits: { memory } }`);
    }
    const extra = [
      ...Object.keys(shape).filter((k) => k !== 'requests' && k !== 'limits'),
      ...Object.keys(shape.requests ?? {})
        .filter((k) => k !== 'cpu' && k !== 'memory')
        .map((k) => `requests.${k}`),
      ...Object.keys(shape.limits ?? {})
        .filter((k) => k !== 'memory')
        .map((k) => `limits.${k}`),
    ];
    if (extra.length > 0) {
      throw invalidArgument(
        `${at} takes requests.cpu, requests.memory and limits.memory only (no CPU limit: a throttled apiserver times out), got ${extra.join(', ')}`,
      );
    }
    const quantity = (value: unknown, name: string, pattern: RegExp, example: string): string | undefined => {
      if (value === undefined) return undefined;
      if (typeof value !== 'string' || !pattern.test(value)) {
        throw invalidArgument(
          `Expected ${at}.${name} to be a quantity like ${example}, got ${JSON.stringify(value)}`,
        );
      }
      return value;
    };
    const cpu = quantity(shape.requests?.cpu, 'requests.cpu', CPU_QUANTITY, '250m or 0.5');
    const memory = quantity(shape.requests?.memory, 'requests.memory', MEMORY_QUANTITY, '320Mi');
    const limit = quantity(shape.limits?.memory, 'limits.memory', MEMORY_QUANTITY, '1Gi');
    const defaults = COMPONENT_RESOURCES[component as Component];
    const effectiveRequest = memory ?? String(defaults.requests?.memory);
    const effectiveLimit = limit ?? String(defaults.limits?.memory);
    if (quantityBytes(effectiveRequest) > quantityBytes(effectiveLimit)) {
      throw invalidArgument(
        `Expected ${at}'s memory request (${effectiveRequest}) to be at most its limit (${effectiveLimit})`,
      );
    }
    out[component as Component] = Object.freeze({
      ...(cpu === undefined && memory === undefined
        ? {}
        : {
            requests: Object.freeze({
              ...(cpu === undefined ? {} : { cpu }),
              ...(memory === undefined ? {} : { memory }),
            }),
          }),
      ...(limit === undefined ? {} : { limits: Object.freeze({ memory: limit }) }),
    });
  }
  return Object.freeze(out);
}

/** A component's resources: its defaults with the spec's overrides on top. */
export function resourcesOf(
  spec: { readonly componentResources: ComponentResources },
  component: Component,
): V1ResourceRequirements {
  const defaults = COMPONENT_RESOURCES[component];
  const overrides = spec.componentResources[component];
  return {
    requests: { ...defaults.requests, ...overrides?.requests },
    limits: { ...defaults.limits, ...overrides?.limits },
  };
}
