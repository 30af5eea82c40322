// Why a control plane is not up yet, in the infra cluster's own words: the waiting reason of each
// container that is not running (ImagePullBackOff, CrashLoopBackOff, …) or why a pod is not
// scheduled. create prints it while it waits and puts it in its timeout, so a wrong image or a full
// cluster is named instead of ending in a bare "did not answer".
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { CONTROL_PLANE_LABEL } from '../contract.js';
import { listObjects } from '../kube/apply.js';
import { KINDS } from './kinds.js';

/** The pods of control plane `spec.name` in its infra namespace. */
export async function listControlPlanePods(
  infra: KubeConfig,
  spec: { readonly name: string; readonly namespace: string },
): Promise<V1Pod[]> {
  return await listObjects(infra, KINDS.pod, spec.namespace, `${CONTROL_PLANE_LABEL}=${spec.name}`);
}

/** One line per pod that is not ready, or undefined when every pod is ready (or there is none). */
export async function describePodProblems(
  infra: KubeConfig,
  spec: { readonly name: string; readonly namespace: string },
): Promise<string | undefined> {
  const pods = await listControlPlanePods(infra, spec);
  const problems = pods.map(podProblem).filter((p): p is string => p !== undefined);
  return problems.length === 0 ? undefined : problems.sort().join('; ');
}

/** What keeps one pod from being ready, as `pod NAME: REASON (detail)`; undefined for a ready pod. */
export function podProblem(pod: V1Pod): string | undefined {
  const name = `pod ${pod.metadata?.name ?? '?'}`;
  const conditions = pod.status?.conditions ?? [];
  if (conditions.some((c) => c.type === 'Ready' && c.status === 'True')) return undefined;
  const unscheduled = conditions.find((c) => c.type === 'PodScheduled' && c.status === 'False');
  if (unscheduled !== undefined) {
    return `${name}: ${unscheduled.reason ?? 'not scheduled'}${unscheduled.message === undefined ? '' : ` (${unscheduled.message})`}`;
  }
  const statuses = [...(pod.status?.initContainerStatuses ?? []), ...(pod.status?.containerStatuses ?? [])];
  for (const status of statuses) {
    const waiting = status.state?.waiting;
    if (waiting?.reason !== undefined && waiting.reason !== 'PodInitializing') {
      const detail = waiting.reason.includes('Image') ? status.image : waiting.message;
      return `${name}: ${status.name} ${waiting.reason}${detail === undefined || detail === '' ? '' : ` (${detail})`}`;
    }
    const terminated = status.state?.terminated ?? status.lastState?.terminated;
    if (terminated !== undefined && terminated.exitCode !== 0) {
      return `${name}: ${status.name} exited ${terminated.exitCode}${terminated.reason === undefined ? '' : ` (${terminated.reason})`}, restarted ${status.restartCount} times`;
    }
  }
  return `${name}: ${pod.status?.phase ?? 'Pending'}, not ready`;
}
