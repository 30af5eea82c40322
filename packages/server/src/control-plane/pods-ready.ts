// Waits for every control-plane pod to be Ready, the join server's included: the hosted /readyz
// says the API answers, but until the join server's pod is Ready no worker can join, and a wrong
// --join-server-image would otherwise only show when the first k8s-join fails.
import type { KubeConfig, V1Deployment, V1Pod, V1StatefulSet } from '@kubernetes/client-node';
import { K8sOnK8sError } from '@k8s-on-k8s/shared';
import { COMPONENT_LABEL, CONTROL_PLANE_LABEL } from '../contract.js';
import { COMPONENTS, type Component } from './names.js';
import { listObjects } from '../kube/apply.js';
import { KINDS } from './kinds.js';
import { listControlPlanePods, podProblem } from './pod-problems.js';

export interface WaitForPodsOptions {
  readonly timeoutMs: number;
  /** The whole wait this one is the end of (create's --wait), for the timeout's message. */
  readonly waitMs?: number;
  readonly intervalMs?: number;
  /** How often a progress line is given while waiting. */
  readonly progressEveryMs?: number;
  readonly onProgress: (line: string) => void;
  readonly now?: () => number;
  readonly sleep?: (ms: number) => Promise<void>;
}

/** The components without a Ready pod, and one line per pod that is not Ready. */
function notReady(pods: readonly V1Pod[]): { missing: Component[]; problems: string[] } {
  const live = pods.filter((pod) => pod.metadata?.deletionTimestamp === undefined);
  const ready = new Set(
    live.filter((pod) => podProblem(pod) === undefined).map((pod) => pod.metadata?.labels?.[COMPONENT_LABEL]),
  );
  // A terminating pod may still answer (its grace period) and then vanish from the Service before
  // the infra kube-proxy routes the NodePort to its replacement: wait until it is gone.
  const problems = pods
    .map((pod) =>
      pod.metadata?.deletionTimestamp === undefined
        ? podProblem(pod)
        : `pod ${pod.metadata.name ?? '?'}: terminating`,
    )
    .filter((p): p is string => p !== undefined);
  return { missing: COMPONENTS.filter((c) => !ready.has(c)), problems: problems.sort() };
}

/**
 * One line per Deployment or StatefulSet whose rollout of the last applied spec is not done: a
 * re-run of `create` that changes a pod template (or the replicas) leaves the old pods Ready and
 * answering for a while, so Ready pods alone would say "done" before the new ones exist.
 */
async function unfinishedRollouts(
  infra: KubeConfig,
  spec: { readonly name: string; readonly namespace: string },
): Promise<string[]> {
  const selector = `${CONTROL_PLANE_LABEL}=${spec.name}`;
  const workloads = [
    ...((await listObjects(infra, KINDS.deployment, spec.namespace, selector)) as V1Deployment[]),
    ...((await listObjects(infra, KINDS.statefulSet, spec.namespace, selector)) as V1StatefulSet[]),
  ];
  return workloads.flatMap((workload) => {
    const wanted = workload.spec?.replicas ?? 1;
    const status = workload.status;
    const done =
      (status?.observedGeneration ?? 0) >= (workload.metadata?.generation ?? 1) &&
      (status?.updatedReplicas ?? 0) === wanted &&
      (status?.replicas ?? 0) === wanted &&
      (status?.readyReplicas ?? 0) === wanted;
    return done
      ? []
      : [
          `${workload.kind ?? 'workload'} ${workload.metadata?.name ?? '?'} rolling out: ${String(status?.updatedReplicas ?? 0)} of ${String(wanted)} updated, ${String(status?.readyReplicas ?? 0)} ready`,
        ];
  });
}

/**
 * Resolves once every Deployment and StatefulSet has rolled out, every component has a Ready pod and no pod of the control plane is unready (an old
 * one still terminating counts as unready); rejects with TIMEOUT naming each pod's problem.
 */
export async function waitForControlPlanePods(
  infra: KubeConfig,
  spec: { readonly name: string; readonly namespace: string },
  options: WaitForPodsOptions,
): Promise<void> {
  const now = options.now ?? Date.now;
  const sleep = options.sleep ?? ((ms: number) => new Promise<void>((resolve) => setTimeout(resolve, ms)));
  const started = now();
  let lastProgress = started;
  for (;;) {
    const pods = notReady(await listControlPlanePods(infra, spec));
    const missing = pods.missing;
    const problems = [...(await unfinishedRollouts(infra, spec)), ...pods.problems];
    if (missing.length === 0 && problems.length === 0) return;
    const why = [...(missing.length > 0 ? [`no Ready pod of ${missing.join(', ')}`] : []), ...problems].join(
      '; ',
    );
    const elapsed = now() - started;
    if (elapsed >= options.timeoutMs) {
      throw new K8sOnK8sError(
        'TIMEOUT',
        `the control plane's pods were not all Ready within ${Math.round((options.waitMs ?? options.timeoutMs) / 1000)}s: ${why}`,
        {
          hint: `kubectl get pods -n ${spec.namespace} -l ${CONTROL_PLANE_LABEL}=${spec.name}; kubectl describe pod …`,
        },
      );
    }
    if (now() - lastProgress >= (options.progressEveryMs ?? 5000)) {
      lastProgress = now();
      options.onProgress(`  still waiting for the pods (${Math.round(elapsed / 1000)}s): ${why}`);
    }
    await sleep(Math.min(options.intervalMs ?? 1000, Math.max(0, options.timeoutMs - elapsed)));
  }
}
