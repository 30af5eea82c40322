// What the operator observed → a HostedControlPlane's status: conditions in metav1.Condition's
// shape with reasons and messages a person can act on, the phase, and Cluster API's fields. Pure:
// the controller gathers the observation, this decides what it means.
import type { ControlPlaneStatus } from '../control-plane/status.js';
import type { Condition, ConditionType, HostedControlPlane, HostedControlPlaneStatus, Phase } from './api.js';
import { kubeconfigSecretName } from './api.js';

/** Leaf certificates expiring within this many days make CertificatesValid False. */
export const CERTIFICATE_WARNING_DAYS = 30;

/** What one reconcile saw. */
export type Observation =
  /** The spec does not validate (what CEL cannot check: CIDR overlaps, the VIP inside one, …). */
  | { readonly kind: 'invalid'; readonly message: string }
  /** Applying or reading failed; the operator retries with backoff. */
  | { readonly kind: 'failed'; readonly message: string }
  /** The resource is being deleted; the operator removes what it made. */
  | { readonly kind: 'deleting' }
  | {
      readonly kind: 'observed';
      readonly status: ControlPlaneStatus;
      /** The hosted /readyz through the public address. */
      readonly readyz: { readonly ok: boolean; readonly detail: string };
      /** Why pods are not ready, in the infra cluster's words (undefined when all are). */
      readonly podProblems: string | undefined;
      /** Hosted assets applied this time (undefined: not yet, the apiserver does not answer). */
      readonly addons: { readonly count: number } | undefined;
      /** The hosted apiserver's gitVersion, once it answered. */
      readonly serverVersion: string | undefined;
      readonly desiredVersion: string;
    };

type Verdict = Pick<Condition, 'status' | 'reason' | 'message'>;

/** The status for `resource` after `observation` at `now`, keeping transition times that did not change. */
export function statusOf(
  resource: HostedControlPlane,
  observation: Observation,
  now: Date,
): HostedControlPlaneStatus {
  const deleting = observation.kind === 'deleting';
  const generation = resource.metadata.generation ?? 0;
  const previous = resource.status ?? {};
  const verdicts = verdictsOf(observation);
  const conditions = (Object.entries(verdicts) as [ConditionType, Verdict][]).map(([type, verdict]) => {
    const before = previous.conditions?.find((c) => c.type === type);
    return {
      type,
      ...verdict,
      observedGeneration: generation,
      lastTransitionTime:
        before !== undefined && before.status === verdict.status
          ? before.lastTransitionTime
          : now.toISOString(),
    };
  });
  const available = verdicts.Available.status === 'True';
  const initialized =
    previous.initialized === true || (observation.kind === 'observed' && observation.readyz.ok);
  const observed = observation.kind === 'observed' ? observation : undefined;
  // The installed version is the one the apiserver answers with once every component has rolled
  // out: while a version change rolls, the last one stays (with the phase Upgrading).
  const rolledOut = observed?.status.components.every((c) => c.rolledOut) ?? false;
  const installed =
    observed?.serverVersion !== undefined && (rolledOut || previous.version === undefined)
      ? observed.serverVersion
      : previous.version;
  const desired = observed?.desiredVersion ?? previous.desiredVersion;
  const phase: Phase = deleting
    ? 'Deleting'
    : available && installed === desired
      ? 'Ready'
      : !initialized
        ? 'Provisioning'
        : installed !== undefined && desired !== undefined && installed !== desired
          ? 'Upgrading'
          : 'NotReady';
  return {
    observedGeneration: generation,
    phase,
    conditions,
    ...(installed === undefined ? {} : { version: installed }),
    ...(desired === undefined ? {} : { desiredVersion: desired }),
    ...(observed === undefined
      ? pick(previous, ['endpoint', 'joinServerUrl'])
      : { endpoint: observed.status.apiUrl, joinServerUrl: observed.status.joinUrl }),
    kubeconfigSecretName: kubeconfigSecretName(resource.metadata.name),
    initialized,
    ready: available,
    externalManagedControlPlane: true,
  };
}

function pick(
  status: HostedControlPlaneStatus,
  keys: readonly ('endpoint' | 'joinServerUrl')[],
): Partial<HostedControlPlaneStatus> {
  const out: Record<string, string> = {};
  for (const key of keys) if (status[key] !== undefined) out[key] = status[key];
  return out;
}

function verdictsOf(observation: Observation): Record<ConditionType, Verdict> {
  if (observation.kind !== 'observed') {
    const { reason, message } =
      observation.kind === 'deleting'
        ? { reason: 'Deleting', message: "deleting the control plane's objects" }
        : {
            reason: observation.kind === 'invalid' ? 'InvalidSpec' : 'ReconcileFailed',
            message: observation.message,
          };
    const unknown: Verdict = {
      status: 'Unknown',
      reason,
      message: 'not observed: the control plane could not be reconciled (see Available)',
    };
    return {
      Available: { status: 'False', reason, message },
      EtcdAvailable: unknown,
      APIServerAvailable: unknown,
      JoinServerAvailable: unknown,
      AddonsInstalled: unknown,
      CertificatesValid: unknown,
    };
  }
  const { status, readyz, podProblems, addons } = observation;
  const component = (name: 'etcd' | 'join-server', what: string): Verdict => {
    const found = status.components.find((c) => c.component === name);
    if (found === undefined || !found.present) {
      return { status: 'False', reason: 'NotCreated', message: `the ${what} workload does not exist yet` };
    }
    return found.readyReplicas >= 1
      ? {
          status: 'True',
          reason: 'PodsReady',
          message: `${found.readyReplicas}/${found.replicas} ${what} pods ready`,
        }
      : {
          status: 'False',
          reason: 'PodsNotReady',
          message: `0/${found.replicas} ${what} pods ready${problemsFor(podProblems, name)}`,
        };
  };
  const apiserver: Verdict = readyz.ok
    ? { status: 'True', reason: 'ReadyzOK', message: `${status.apiUrl}/readyz answers ok` }
    : {
        status: 'False',
        reason: 'ReadyzFailed',
        message: `${status.apiUrl}/readyz: ${readyz.detail}${problemsFor(podProblems, 'apiserver')}`,
      };
  const addonsVerdict: Verdict =
    addons === undefined
      ? {
          status: 'False',
          reason: 'WaitingForAPIServer',
          message: 'kube-proxy, the CNI, CoreDNS and the RBAC are applied once the hosted apiserver answers',
        }
      : {
          status: 'True',
          reason: 'Applied',
          message: `${addons.count} objects applied in the hosted cluster`,
        };
  const verdicts = {
    EtcdAvailable: component('etcd', 'etcd'),
    APIServerAvailable: apiserver,
    JoinServerAvailable: component('join-server', 'join server'),
    AddonsInstalled: addonsVerdict,
    CertificatesValid: certificates(status),
  };
  // Certificates that expire soon are a warning to act on; only expired (or missing) ones stop service.
  const notTrue = (Object.entries(verdicts) as [ConditionType, Verdict][]).filter(
    ([type, v]) => v.status !== 'True' && !(type === 'CertificatesValid' && v.reason === 'ExpiringSoon'),
  );
  const available: Verdict =
    notTrue.length === 0
      ? { status: 'True', reason: 'AllComponentsAvailable', message: 'the control plane serves' }
      : {
          status: 'False',
          reason: notTrue[0]?.[1].reason ?? 'NotAvailable',
          message: notTrue.map(([type, v]) => `${type}: ${v.message}`).join('; '),
        };
  return { Available: available, ...verdicts };
}

/** The pod problems of one component, as a suffix (pods are named `<name>-<component>-…`). */
function problemsFor(problems: string | undefined, component: string): string {
  if (problems === undefined) return '';
  const mine = problems.split('; ').filter((p) => p.includes(`-${component}-`));
  return mine.length === 0 ? '' : ` (${mine.join('; ')})`;
}

function certificates(status: ControlPlaneStatus): Verdict {
  if (status.certificates.length === 0) {
    return { status: 'False', reason: 'Missing', message: 'no certificate Secrets found' };
  }
  const soonest = [...status.certificates].sort((a, b) => a.daysLeft - b.daysLeft)[0];
  if (soonest === undefined) return { status: 'Unknown', reason: 'Missing', message: '' };
  const when = `${soonest.name} (${soonest.commonName}) expires ${soonest.notAfter.toISOString().slice(0, 10)}`;
  if (soonest.daysLeft < 0) {
    return { status: 'False', reason: 'Expired', message: `${when}, ${-soonest.daysLeft} days ago` };
  }
  if (soonest.daysLeft < CERTIFICATE_WARNING_DAYS) {
    return { status: 'False', reason: 'ExpiringSoon', message: `${when}, in ${soonest.daysLeft} days` };
  }
  return {
    status: 'True',
    reason: 'Valid',
    message: `${status.certificates.length} certificates valid; the first to expire: ${when}, in ${soonest.daysLeft} days`,
  };
}
