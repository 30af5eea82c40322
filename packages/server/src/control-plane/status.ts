// Reading a control plane back from the infra cluster, as data: its stored spec, each component's
// readiness, certificate expiry, total requests. The CLI formats it; an operator would turn it
// into status conditions.
import type {
  KubeConfig,
  KubernetesObject,
  V1ConfigMap,
  V1Deployment,
  V1Secret,
  V1StatefulSet,
} from '@kubernetes/client-node';
import { K8sOnK8sError, describeCertificate } from '@k8s-on-k8s/shared';
import { COMPONENT_LABEL, CONTROL_PLANE_LABEL, DATA_LABEL } from '../contract.js';
import { listObjects, readObject } from '../kube/apply.js';
import { KINDS } from './kinds.js';
import { COMPONENTS, componentName, specConfigMapName, type Component } from './names.js';
import { PKI_NAMES, pkiSecretName, type PkiName } from './pki.js';
import { readExistingPki } from './reconcile.js';
import { renderAdminKubeconfig } from './render/admin-kubeconfig.js';
import { sumResourceRequests, type ResourceTotals } from './resources.js';
import { publicApiUrl, publicJoinUrl, type ControlPlaneSpec } from './spec.js';
import { fromStoredSpec } from './stored-spec.js';

/** One component's workload as the infra cluster reports it. */
export interface ComponentStatus {
  readonly component: Component;
  /** False when its Deployment/StatefulSet does not exist. */
  readonly present: boolean;
  readonly readyReplicas: number;
  readonly replicas: number;
  /**
   * Its latest spec runs everywhere: the controller saw the newest generation and every replica is
   * of it, none of an older template left (false while a changed spec rolls, and when absent).
   */
  readonly rolledOut: boolean;
  readonly image: string | undefined;
}

/** One certificate of the PKI and when it expires. */
export interface CertificateStatus {
  readonly name: PkiName;
  readonly commonName: string;
  readonly notAfter: Date;
  /** Whole days left (negative once expired). */
  readonly daysLeft: number;
}

export interface ControlPlaneStatus {
  readonly spec: ControlPlaneSpec;
  readonly apiUrl: string;
  readonly joinUrl: string;
  readonly components: readonly ComponentStatus[];
  readonly certificates: readonly CertificateStatus[];
  /** What the control plane's workloads request, summed. */
  readonly requests: ResourceTotals;
}

/** One entry of listControlPlanes. */
export interface ControlPlaneSummary {
  readonly spec: ControlPlaneSpec;
  readonly apiUrl: string;
  readonly readyDeployments: number;
  readonly deployments: number;
}

const DAY_MS = 86_400_000;

/** The stored spec of control plane `name` in `namespace`; NOT_FOUND when there is none. */
export async function readStoredSpec(
  infra: KubeConfig,
  namespace: string,
  name: string,
): Promise<ControlPlaneSpec> {
  const configMap = await readObject<V1ConfigMap>(
    infra,
    KINDS.configMap,
    namespace,
    specConfigMapName({ name }),
  );
  // A spec that no longer validates is reported as such (someone edited it), not as missing.
  const spec = configMap === undefined ? undefined : specOfConfigMap(configMap, { strict: true });
  if (spec === undefined) {
    throw new K8sOnK8sError('NOT_FOUND', `no control plane ${name} in namespace ${namespace}`, {
      hint: `k8s-on-k8s list -n ${namespace} shows the control planes there`,
    });
  }
  return spec;
}

/** Reads the status of control plane `name`: components, certificates (against `now`), requests. */
export async function readControlPlaneStatus(
  infra: KubeConfig,
  namespace: string,
  name: string,
  now: Date,
): Promise<ControlPlaneStatus> {
  const spec = await readStoredSpec(infra, namespace, name);
  const workloads: KubernetesObject[] = [];
  const components: ComponentStatus[] = [];
  for (const component of COMPONENTS) {
    const kind = component === 'etcd' ? KINDS.statefulSet : KINDS.deployment;
    const object = await readObject<V1Deployment | V1StatefulSet>(
      infra,
      kind,
      namespace,
      componentName(spec, component),
    );
    if (object !== undefined) workloads.push(object);
    components.push({
      component,
      present: object !== undefined,
      readyReplicas: object?.status?.readyReplicas ?? 0,
      replicas: object?.spec?.replicas ?? 1,
      rolledOut: object !== undefined && isRolledOut(object),
      image: object?.spec?.template.spec?.containers[0]?.image,
    });
  }
  const secrets = (await listObjects(
    infra,
    KINDS.secret,
    namespace,
    `${CONTROL_PLANE_LABEL}=${name},${DATA_LABEL}=true`,
  )) as V1Secret[];
  const certificates: CertificateStatus[] = [];
  for (const pkiName of PKI_NAMES) {
    const secret = secrets.find((s) => s.metadata?.name === pkiSecretName(spec, pkiName));
    const certB64 = secret?.data?.['tls.crt'];
    if (certB64 === undefined) continue;
    const cert = describeCertificate(Buffer.from(certB64, 'base64').toString('utf8'));
    certificates.push({
      name: pkiName,
      commonName: cert.commonName,
      notAfter: cert.notAfter,
      daysLeft: Math.floor((cert.notAfter.getTime() - now.getTime()) / DAY_MS),
    });
  }
  return {
    spec,
    apiUrl: publicApiUrl(spec),
    joinUrl: publicJoinUrl(spec),
    components,
    certificates,
    requests: sumResourceRequests(workloads),
  };
}

/** kubectl rollout status's test: the newest generation observed, every replica updated, no old one left. */
function isRolledOut(workload: V1Deployment | V1StatefulSet): boolean {
  const replicas = workload.spec?.replicas ?? 1;
  const status = workload.status;
  if (status === undefined || (status.observedGeneration ?? 0) < (workload.metadata?.generation ?? 0)) {
    return false;
  }
  const updated = status.updatedReplicas ?? 0;
  // A StatefulSet names its template revisions (a Deployment has none): the update is done when they meet.
  const revisions = status as { currentRevision?: string; updateRevision?: string };
  const sameRevision =
    revisions.updateRevision === undefined || revisions.currentRevision === revisions.updateRevision;
  return updated >= replicas && (status.replicas ?? 0) <= updated && sameRevision;
}

/** Every control plane in `namespace` (every namespace when undefined), with how many Deployments are ready. */
export async function listControlPlanes(
  infra: KubeConfig,
  namespace: string | undefined,
): Promise<ControlPlaneSummary[]> {
  const configMaps = (await listObjects(
    infra,
    KINDS.configMap,
    namespace,
    CONTROL_PLANE_LABEL,
  )) as V1ConfigMap[];
  const summaries: ControlPlaneSummary[] = [];
  for (const configMap of configMaps) {
    const spec = specOfConfigMap(configMap);
    if (spec === undefined) continue;
    const deployments = (await listObjects(
      infra,
      KINDS.deployment,
      spec.namespace,
      `${CONTROL_PLANE_LABEL}=${spec.name}`,
    )) as V1Deployment[];
    summaries.push({
      spec,
      apiUrl: publicApiUrl(spec),
      readyDeployments: deployments.filter((d) => (d.status?.readyReplicas ?? 0) >= (d.spec?.replicas ?? 1))
        .length,
      deployments: deployments.length,
    });
  }
  return summaries;
}

/** The hosted cluster's admin kubeconfig, rebuilt from the CA and admin Secrets. */
export async function readAdminKubeconfig(
  infra: KubeConfig,
  namespace: string,
  name: string,
): Promise<string> {
  const spec = await readStoredSpec(infra, namespace, name);
  const pki = await readExistingPki(infra, spec);
  if (pki.ca === undefined || pki.admin === undefined) {
    throw new K8sOnK8sError(
      'NOT_FOUND',
      `control plane ${name} in ${namespace} has no CA or admin certificate Secret`,
      {
        hint: `run k8s-on-k8s create ${name} -n ${namespace} … again to recreate them`,
      },
    );
  }
  return renderAdminKubeconfig(spec, { ca: pki.ca, admin: pki.admin });
}

/**
 * The spec a control plane's ConfigMap holds, or undefined for a ConfigMap that is not one (a
 * component's, which carries the component label) or, unless strict, whose spec no longer validates.
 */
function specOfConfigMap(configMap: V1ConfigMap, options = { strict: false }): ControlPlaneSpec | undefined {
  const text = configMap.data?.['spec.json'];
  if (text === undefined || configMap.metadata?.labels?.[COMPONENT_LABEL] !== undefined) return undefined;
  const source = `ConfigMap ${configMap.metadata?.namespace ?? ''}/${configMap.metadata?.name ?? ''}`;
  try {
    return fromStoredSpec(text, source);
  } catch (error) {
    if (options.strict) throw error;
    return undefined;
  }
}
