// How a control plane's objects are named and labelled, and which names are allowed: the renderer,
// the reconcile core and the CLI all go through these, so a name `create` accepts is one every
// command after it accepts too.
import { ValidationError, isDns1035Label, isDns1123Label } from '@k8s-on-k8s/shared';
import { CONTROL_PLANE_LABEL, MANAGED_BY_LABEL } from '../contract.js';

/** The parts of a control plane, used in object names (`<name>-<component>`) and labels. */
export const COMPONENTS = ['etcd', 'apiserver', 'controller-manager', 'scheduler', 'join-server'] as const;
export type Component = (typeof COMPONENTS)[number];

/**
 * Longest control-plane name such that `<name>-controller-manager` and the etcd pod's labels stay
 * within 63 characters. Names start with a letter because they prefix Service names (DNS-1035).
 */
export const MAX_CONTROL_PLANE_NAME_LENGTH = 40;

/** Returns `name` if it can name a control plane; the error names `field` and the value. */
export function validateControlPlaneName(name: string, field = 'NAME'): string {
  if (!isDns1035Label(name, MAX_CONTROL_PLANE_NAME_LENGTH)) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `Expected ${field} to be a DNS label (lower-case letters, digits, '-', starting with a letter) of at most ${MAX_CONTROL_PLANE_NAME_LENGTH} characters, got ${JSON.stringify(name)}`,
    );
  }
  return name;
}

/** Returns `namespace` if it is a Kubernetes namespace name (a DNS-1123 label). */
export function validateNamespaceName(namespace: string, field = '-n/--namespace'): string {
  if (!isDns1123Label(namespace)) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `Expected ${field} to be a namespace name (lower-case letters, digits and '-', at most 63 characters), got ${JSON.stringify(namespace)}`,
    );
  }
  return namespace;
}

/** The labels every object of the control plane carries. */
export function controlPlaneLabels(spec: { readonly name: string }): Record<string, string> {
  return { [CONTROL_PLANE_LABEL]: spec.name, [MANAGED_BY_LABEL]: 'k8s-on-k8s' };
}

/** The name of a component's Deployment/StatefulSet/Service, e.g. `dev-apiserver`. */
export function componentName(spec: { readonly name: string }, component: Component): string {
  return `${spec.name}-${component}`;
}

/** The name of the ConfigMap holding the spec, which list, status and kubeconfig read back. */
export function specConfigMapName(spec: { readonly name: string }): string {
  return `${spec.name}-control-plane`;
}
