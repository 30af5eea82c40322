// The reconcile core: spec + infra API client + clock → an ensured control plane, reported as data
// and as events. The CLI calls it directly; an operator calls the same functions for each
// HostedControlPlane, so both make identical objects. No printing, no files, no flags here.
import {
  VersionApi,
  type KubeConfig,
  type KubernetesObject,
  type V1Secret,
  type V1Service,
} from '@kubernetes/client-node';
import { K8sOnK8sError } from '@k8s-on-k8s/shared';
import { CONTROL_PLANE_LABEL, DATA_LABEL } from '../contract.js';
import {
  applyObjects,
  deleteObjects,
  describeObject,
  kubernetesError,
  listObjects,
  readObject,
} from '../kube/apply.js';
import { kubeConfigFromString } from '../kube/kubeconfig.js';
import { waitForReadyz } from '../kube/readyz.js';
import { CONTROL_PLANE_KINDS, KINDS } from './kinds.js';
import { componentName } from './names.js';
import { describePodProblems } from './pod-problems.js';
import { waitForControlPlanePods } from './pods-ready.js';
import {
  PKI_NAMES,
  completeControlPlanePki,
  readControlPlanePki,
  type ControlPlanePki,
  type PkiName,
} from './pki.js';
import { renderAdminKubeconfig } from './render/admin-kubeconfig.js';
import { renderControlPlane, renderControlPlaneServices } from './render/control-plane.js';
import { renderHostedAssets } from './render/hosted-assets.js';
import { publicApiUrl, publicJoinUrl, withNodePorts, type ControlPlaneSpec } from './spec.js';

/** What happened, step by step, for a person (the CLI prints it) or a controller (it records Events). */
export type ControlPlaneEvent =
  | { readonly type: 'PkiCompleted'; readonly generated: readonly PkiName[]; readonly total: number }
  | {
      readonly type: 'NodePortsAllocated';
      readonly api: number;
      readonly join: number;
      /** The konnectivity agent port's NodePort; undefined without konnectivity. */
      readonly konnectivity: number | undefined;
    }
  | { readonly type: 'Applied'; readonly object: string }
  | { readonly type: 'Waiting'; readonly message: string }
  | { readonly type: 'HostedAssetsInstalled'; readonly count: number }
  | { readonly type: 'PodsReady'; readonly afterMs: number };

/** What ensureControlPlane needs from the world. */
export interface ReconcileDeps {
  /** The infra cluster, with the caller's credentials. */
  readonly infra: KubeConfig;
  readonly now: () => Date;
  readonly onEvent: (event: ControlPlaneEvent) => void;
  /** The server-side-apply field manager (default k8s-on-k8s; the operator has its own). */
  readonly fieldManager?: string;
}

export interface EnsureOptions {
  /**
   * How long to wait for the hosted /readyz and then for every control-plane pod (the join server's
   * too) to be Ready, in all; 0 = apply and return (no hosted assets yet).
   */
  readonly readyTimeoutMs: number;
}

/** The control plane as ensured: the spec with its allocated NodePorts, endpoints, credentials. */
export interface EnsuredControlPlane {
  readonly spec: ControlPlaneSpec;
  readonly apiUrl: string;
  readonly joinUrl: string;
  /** The PKI entries generated this time (empty on a re-run). */
  readonly generatedPki: readonly PkiName[];
  readonly appliedObjects: number;
  /** The hosted cluster's admin kubeconfig (it holds a private key: write it 0600 or not at all). */
  readonly adminKubeconfig: string;
  /** Whether the hosted /readyz answered (false only with readyTimeoutMs 0). */
  readonly ready: boolean;
  /** Objects applied inside the hosted cluster (undefined when not waited for). */
  readonly hostedAssets: number | undefined;
  /** The hosted apiserver's /version gitVersion, once ready. */
  readonly serverVersion: string | undefined;
}

/**
 * Ensures the control plane `spec` describes: completes its PKI (generating only what is missing
 * or no longer fits), allocates NodePorts, server-side applies every infra object, waits for the
 * hosted /readyz and installs the hosted assets. Idempotent: a second run writes nothing.
 */
export async function ensureControlPlane(
  requested: ControlPlaneSpec,
  deps: ReconcileDeps,
  options: EnsureOptions,
): Promise<EnsuredControlPlane> {
  const existing = await readExistingPki(deps.infra, requested);
  const { pki, generated } = await completeControlPlanePki(requested, existing, { now: deps.now });
  deps.onEvent({ type: 'PkiCompleted', generated, total: PKI_NAMES.length });

  const spec =
    requested.expose === 'nodeport'
      ? await allocateNodePorts(deps.infra, requested, deps.fieldManager)
      : requested;
  if (spec.expose === 'nodeport' && spec.nodePorts.api !== undefined && spec.nodePorts.join !== undefined) {
    const { api, join, konnectivity } = spec.nodePorts;
    deps.onEvent({ type: 'NodePortsAllocated', api, join, konnectivity });
  }
  const applied = await applyObjects(
    deps.infra,
    renderControlPlane(spec, pki),
    (object) => {
      deps.onEvent({ type: 'Applied', object: describeObject(object) });
    },
    deps.fieldManager,
  );
  const adminKubeconfig = renderAdminKubeconfig(spec, pki);
  const ensured = {
    spec,
    apiUrl: publicApiUrl(spec),
    joinUrl: publicJoinUrl(spec),
    generatedPki: generated,
    appliedObjects: applied.length,
    adminKubeconfig,
  };
  if (options.readyTimeoutMs === 0) {
    return { ...ensured, ready: false, hostedAssets: undefined, serverVersion: undefined };
  }

  const waitStart = Date.now();
  const readyz = (): Promise<unknown> =>
    waitForReadyz({
      url: ensured.apiUrl,
      caPem: pki.ca.certPem,
      clientCertPem: pki.admin.certPem,
      clientKeyPem: pki.admin.keyPem,
      timeoutMs: options.readyTimeoutMs,
      onProgress: (message) => {
        deps.onEvent({ type: 'Waiting', message });
      },
      explain: () => describePodProblems(deps.infra, spec),
    });
  await readyz();
  // Before the hosted assets: on a re-run that rolls the apiserver, /readyz may have been the old
  // pod's answer, and its Service loses every endpoint for a moment while the pods change over.
  await waitForControlPlanePods(deps.infra, spec, {
    timeoutMs: Math.max(0, options.readyTimeoutMs - (Date.now() - waitStart)),
    waitMs: options.readyTimeoutMs,
    onProgress: (message) => {
      deps.onEvent({ type: 'Waiting', message });
    },
  });
  deps.onEvent({ type: 'PodsReady', afterMs: Date.now() - waitStart });
  // Through the public address once more: after a rollout the infra cluster's kube-proxy may take
  // a moment to send the Service to the new pod (until then the NodePort refuses).
  await readyz();
  const installed = await installHostedAssets(spec, adminKubeconfig, deps.fieldManager);
  deps.onEvent({ type: 'HostedAssetsInstalled', count: installed.count });
  return { ...ensured, ready: true, hostedAssets: installed.count, serverVersion: installed.serverVersion };
}

/**
 * Applies the hosted assets (RBAC, kube-proxy, the CNI, CoreDNS, konnectivity's agent) into the
 * hosted cluster as its admin, once its apiserver answers; returns how many and its /version.
 */
export async function installHostedAssets(
  spec: ControlPlaneSpec,
  adminKubeconfig: string,
  fieldManager?: string,
): Promise<{ readonly count: number; readonly serverVersion: string }> {
  const hosted = kubeConfigFromString(adminKubeconfig);
  const installed = await applyObjects(hosted, renderHostedAssets(spec), undefined, fieldManager);
  const version = await hosted
    .makeApiClient(VersionApi)
    .getCode()
    .catch((error: unknown) => {
      throw kubernetesError('read the hosted /version', error);
    });
  return { count: installed.length, serverVersion: version.gitVersion };
}

/** Which objects to keep when deleting. */
export interface DeleteOptions {
  /** Keep etcd's PersistentVolumeClaim and the PKI Secrets, so a later create picks both up. */
  readonly keepData: boolean;
  readonly onDeleted?: (object: string) => void;
}

/** Deletes every object labelled with the control plane's name in `namespace`, and nothing else. */
export async function deleteControlPlane(
  infra: KubeConfig,
  namespace: string,
  name: string,
  options: DeleteOptions,
): Promise<readonly KubernetesObject[]> {
  const selector = `${CONTROL_PLANE_LABEL}=${name}${options.keepData ? `,${DATA_LABEL}!=true` : ''}`;
  const deleted = await deleteObjects(infra, CONTROL_PLANE_KINDS, namespace, selector, (object) =>
    options.onDeleted?.(describeObject(object)),
  );
  if (deleted.length === 0) {
    throw new K8sOnK8sError(
      'NOT_FOUND',
      `no objects labelled ${CONTROL_PLANE_LABEL}=${name} in namespace ${namespace}`,
      {
        hint: `k8s-on-k8s list -n ${namespace} shows the control planes there`,
      },
    );
  }
  return deleted;
}

/** The PKI Secrets of a control plane that exist, parsed (missing or unreadable entries left out). */
export async function readExistingPki(
  infra: KubeConfig,
  spec: ControlPlaneSpec,
): Promise<Partial<ControlPlanePki>> {
  const secrets = (await listObjects(
    infra,
    KINDS.secret,
    spec.namespace,
    `${CONTROL_PLANE_LABEL}=${spec.name},${DATA_LABEL}=true`,
  )) as V1Secret[];
  return readControlPlanePki(spec, new Map(secrets.map((s) => [s.metadata?.name ?? '', s.data ?? {}])));
}

/**
 * Fills in the NodePorts the spec leaves open: kept from the existing Services, else allocated by
 * applying the Services first. Never drops an allocated port, which would make the next apply
 * release it and get a new one.
 */
async function allocateNodePorts(
  infra: KubeConfig,
  spec: ControlPlaneSpec,
  fieldManager: string | undefined,
): Promise<ControlPlaneSpec> {
  const services = renderControlPlaneServices(spec);
  /** The NodePort of the named port of a Service: given, kept, or allocated by applying it. */
  const port = async (
    component: 'apiserver' | 'join-server',
    portName: string,
    given: number | undefined,
  ): Promise<number> => {
    if (given !== undefined) return given;
    const name = componentName(spec, component);
    const nodePortOf = (service: V1Service | undefined) =>
      service?.spec?.ports?.find((p) => p.name === portName)?.nodePort;
    const kept = nodePortOf(await readObject<V1Service>(infra, KINDS.service, spec.namespace, name));
    if (kept !== undefined) return kept;
    const service = services.find((s) => s.metadata?.name === name);
    const [applied] = (await applyObjects(
      infra,
      service === undefined ? [] : [service],
      undefined,
      fieldManager,
    )) as V1Service[];
    const allocated = nodePortOf(applied);
    if (allocated === undefined) {
      throw new K8sOnK8sError(
        'SERVER_ERROR',
        `the infra cluster allocated no NodePort for port ${portName} of Service ${spec.namespace}/${name}`,
      );
    }
    return allocated;
  };
  return withNodePorts(spec, {
    api: await port('apiserver', 'https', spec.nodePorts.api),
    join: await port('join-server', 'https', spec.nodePorts.join),
    konnectivity: spec.konnectivity
      ? await port('apiserver', 'konnectivity', spec.nodePorts.konnectivity)
      : undefined,
  });
}
