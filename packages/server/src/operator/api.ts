// The HostedControlPlane resource (hostedcontrolplanes.k8s-on-k8s.io/v1alpha1) as TypeScript: what
// an admin or a GitOps tool writes (spec) and what the operator reports (status). The CRD's schema
// (crd.ts) describes the same shape; resource-spec.ts turns a spec into the reconcile core's input.

import type { ResourceOverrides } from '../control-plane/component-resources.js';
import type { Component } from '../control-plane/names.js';

export const HCP_GROUP = 'k8s-on-k8s.io';
export const HCP_VERSION = 'v1alpha1';
export const HCP_API_VERSION = `${HCP_GROUP}/${HCP_VERSION}`;
export const HCP_KIND = 'HostedControlPlane';
export const HCP_PLURAL = 'hostedcontrolplanes';
export const HCP_SHORT_NAME = 'hcp';
/** The finalizer the operator puts on each resource before it makes anything for it. */
export const HCP_FINALIZER = 'k8s-on-k8s.io/control-plane';
/** The operator's own server-side-apply field manager (the CLI applies as k8s-on-k8s). */
export const OPERATOR_FIELD_MANAGER = 'k8s-on-k8s-operator';

export type DeletionPolicy = 'Delete' | 'Retain';
export const DELETION_POLICIES: readonly DeletionPolicy[] = ['Delete', 'Retain'];

export interface HostedControlPlaneSpec {
  /** Kubernetes release, e.g. v1.37.2 (default: the one this operator ships). */
  readonly version?: string;
  readonly exposure: {
    readonly type?: 'nodeport' | 'loadbalancer' | 'ingress';
    /** Public DNS name (or IP) of the hosted apiserver. */
    readonly host: string;
    /** Public name of the join server (default: host; `join.<host>` behind an ingress). */
    readonly joinHost?: string;
    readonly ingressClassName?: string;
    readonly nodePorts?: { readonly api?: number; readonly join?: number; readonly konnectivity?: number };
  };
  readonly etcd?: {
    /** PersistentVolumeClaim size (default 1Gi). */
    readonly storageSize?: string;
    /** An emptyDir instead of a claim: the data goes with the pod. */
    readonly ephemeral?: boolean;
  };
  readonly networks?: { readonly serviceCIDR?: string; readonly podCIDR?: string; readonly vip?: string };
  readonly addons?: { readonly cni?: 'flannel' | 'none'; readonly konnectivity?: boolean };
  readonly apiserver?: { readonly replicas?: number };
  readonly joinServer?: { readonly image?: string };
  /** Per component: requests and a memory limit over the measured defaults. */
  readonly components?: Readonly<Partial<Record<Component, { readonly resources?: ResourceOverrides }>>>;
  /** Delete (default) removes everything; Retain keeps the PKI Secrets and etcd's claim. */
  readonly deletionPolicy?: DeletionPolicy;
  /** Cluster API: where the control plane is reached; the operator fills it in once known. */
  readonly controlPlaneEndpoint?: { readonly host?: string; readonly port?: number };
}

export type Phase = 'Provisioning' | 'Upgrading' | 'Ready' | 'NotReady' | 'Deleting';

export const CONDITION_TYPES = [
  'Available',
  'EtcdAvailable',
  'APIServerAvailable',
  'JoinServerAvailable',
  'AddonsInstalled',
  'CertificatesValid',
] as const;
export type ConditionType = (typeof CONDITION_TYPES)[number];

/** A condition in the shape of metav1.Condition. */
export interface Condition {
  readonly type: ConditionType;
  readonly status: 'True' | 'False' | 'Unknown';
  readonly reason: string;
  readonly message: string;
  readonly observedGeneration: number;
  readonly lastTransitionTime: string;
}

export interface HostedControlPlaneStatus {
  readonly observedGeneration?: number;
  readonly phase?: Phase;
  readonly conditions?: readonly Condition[];
  /** The Kubernetes version the hosted apiserver reports (Cluster API's status.version). */
  readonly version?: string;
  /** The version spec asks for, or the operator's default. */
  readonly desiredVersion?: string;
  /** https://host:port of the hosted apiserver. */
  readonly endpoint?: string;
  /** https://host:port of the join server (`k8s-join --server`). */
  readonly joinServerUrl?: string;
  /** The Secret holding the hosted cluster's admin kubeconfig (key `value`, Cluster API's). */
  readonly kubeconfigSecretName?: string;
  /** Cluster API: the apiserver answered once. */
  readonly initialized?: boolean;
  /** Cluster API: the control plane can take requests now. */
  readonly ready?: boolean;
  /** Cluster API: no Machines make this control plane (it runs as pods). */
  readonly externalManagedControlPlane?: boolean;
}

export interface HostedControlPlane {
  readonly apiVersion: typeof HCP_API_VERSION;
  readonly kind: typeof HCP_KIND;
  readonly metadata: {
    readonly name: string;
    readonly namespace: string;
    readonly uid?: string;
    readonly generation?: number;
    readonly resourceVersion?: string;
    readonly deletionTimestamp?: string | Date;
    readonly finalizers?: readonly string[];
    readonly labels?: Readonly<Record<string, string>>;
  };
  readonly spec: HostedControlPlaneSpec;
  readonly status?: HostedControlPlaneStatus;
}

/** The Secret of the admin kubeconfig, named as Cluster API expects: `<name>-kubeconfig`. */
export function kubeconfigSecretName(name: string): string {
  return `${name}-kubeconfig`;
}
