// A HostedControlPlane's spec → the reconcile core's ControlPlaneSpecInput, through the same
// buildControlPlaneSpec as `create`'s flags, with errors naming the resource's fields. The CLI's
// `create` and the operator then hand the same spec to the same ensureControlPlane.
import { invalidArgument } from '@k8s-on-k8s/shared';
import type { ControlPlaneSpecInput, SpecFieldNames } from '../control-plane/spec.js';
import type { ResourceOverrides } from '../control-plane/component-resources.js';
import { buildControlPlaneSpec, type ControlPlaneSpec } from '../control-plane/spec.js';
import type { HostedControlPlane, HostedControlPlaneSpec } from './api.js';

/** What each field is called in a HostedControlPlane, for the messages of InvalidSpec. */
export const RESOURCE_FIELD_NAMES: SpecFieldNames = {
  name: 'metadata.name',
  namespace: 'metadata.namespace',
  host: 'spec.exposure.host',
  joinHost: 'spec.exposure.joinHost',
  kubernetesVersion: 'spec.version',
  expose: 'spec.exposure.type',
  ingressClass: 'spec.exposure.ingressClassName',
  apiNodePort: 'spec.exposure.nodePorts.api',
  joinNodePort: 'spec.exposure.nodePorts.join',
  konnectivityNodePort: 'spec.exposure.nodePorts.konnectivity',
  cni: 'spec.addons.cni',
  konnectivity: 'spec.addons.konnectivity',
  apiserverReplicas: 'spec.apiserver.replicas',
  etcdStorage: 'spec.etcd.storageSize',
  serviceCidr: 'spec.networks.serviceCIDR',
  podCidr: 'spec.networks.podCIDR',
  vip: 'spec.networks.vip',
  joinServerImage: 'spec.joinServer.image',
  componentResources: 'spec.components',
};

/** The core's input for a resource's spec (no validation yet: buildControlPlaneSpec does that). */
export function specInputOfResource(
  metadata: { readonly name: string; readonly namespace: string },
  spec: HostedControlPlaneSpec,
): ControlPlaneSpecInput {
  const exposure = spec.exposure;
  const ephemeral = spec.etcd?.ephemeral === true;
  return {
    name: metadata.name,
    namespace: metadata.namespace,
    host: exposure.host,
    joinHost: exposure.joinHost,
    kubernetesVersion: spec.version,
    expose: exposure.type,
    ingressClass: exposure.ingressClassName,
    nodePorts: exposure.nodePorts,
    cni: spec.addons?.cni,
    konnectivity: spec.addons?.konnectivity,
    apiserverReplicas: spec.apiserver?.replicas,
    // The core's null is "an emptyDir"; its undefined is "the default claim".
    etcdStorage: ephemeral ? null : spec.etcd?.storageSize,
    serviceCidr: spec.networks?.serviceCIDR,
    podCidr: spec.networks?.podCIDR,
    vip: spec.networks?.vip,
    joinServerImage: spec.joinServer?.image,
    componentResources: componentResourcesOf(spec.components),
  };
}

/** spec.components.<component>.resources → the core's per-component overrides. */
function componentResourcesOf(components: HostedControlPlaneSpec['components']): unknown {
  if (components === undefined) return undefined;
  return Object.fromEntries(
    Object.entries(components).flatMap(([component, settings]) =>
      settings.resources === undefined ? [] : [[component, settings.resources]],
    ),
  );
}

/**
 * The resource spec that says what `input` (create's flags) says, with only the fields given, so
 * the operator's defaults stay the operator's. The inverse of specInputOfResource.
 */
export function resourceSpecOfInput(input: ControlPlaneSpecInput): HostedControlPlaneSpec {
  const defined = <T extends object>(object: T): T | undefined => {
    const entries = Object.entries(object).filter(([, value]) => value !== undefined);
    return entries.length === 0 ? undefined : (Object.fromEntries(entries) as T);
  };
  const nodePorts = input.nodePorts === undefined ? undefined : defined({ ...input.nodePorts });
  const spec = {
    version: input.kubernetesVersion,
    exposure: defined({
      type: input.expose,
      host: input.host ?? '',
      joinHost: input.joinHost,
      ingressClassName: input.ingressClass,
      nodePorts,
    }),
    etcd:
      input.etcdStorage === null
        ? { ephemeral: true }
        : input.etcdStorage === undefined
          ? undefined
          : { storageSize: input.etcdStorage },
    networks: defined({ serviceCIDR: input.serviceCidr, podCIDR: input.podCidr, vip: input.vip }),
    addons: defined({ cni: input.cni, konnectivity: input.konnectivity }),
    apiserver: defined({ replicas: input.apiserverReplicas }),
    joinServer: defined({ image: input.joinServerImage }),
    components: resourceComponentsOf(input.componentResources),
  };
  return defined(spec) as HostedControlPlaneSpec;
}

function resourceComponentsOf(input: unknown): HostedControlPlaneSpec['components'] {
  if (typeof input !== 'object' || input === null || Object.keys(input).length === 0) return undefined;
  return Object.fromEntries(
    Object.entries(input).map(([component, resources]) => [
      component,
      { resources: resources as ResourceOverrides },
    ]),
  );
}

/** The validated spec of a resource; throws a ValidationError naming the resource's field. */
export function controlPlaneSpecOfResource(resource: HostedControlPlane): ControlPlaneSpec {
  // The core's etcdStorage is one field (a size, or null for an emptyDir); the resource has two.
  if (resource.spec.etcd?.ephemeral === true && resource.spec.etcd.storageSize !== undefined) {
    throw invalidArgument('spec.etcd.storageSize and spec.etcd.ephemeral exclude each other');
  }
  return buildControlPlaneSpec(specInputOfResource(resource.metadata, resource.spec), RESOURCE_FIELD_NAMES);
}
