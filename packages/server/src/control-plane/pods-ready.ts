// Waits for every control-plane pod to be Ready, the join server's included: the hosted /readyz
// says the API answers, but until the join server's pod is Ready no worker can join, and a wrong
// --join-server-image would otherwise only show when the first k8s-join fails.
import type { KubeConfig, V1Pod } from '@kubernetes/client-node';
import { K8sOnK8sError } from '@k8s-on-k8s/shared';
import { COMPONENT_LABEL, CONTROL_PLANE_LABEL } from '../contract.js';
import { COMPONENTS, type Component } from './names.js';
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
  const problems = pods.map(podProblem).filter((p): p is string => p !== undefined);
  return { missing: COMPONENTS.filter((c) => !ready.has(c)), problems: problems.sort() };
}

/**
 * Resolves once every component has a Ready pod and no pod of the control plane is unready (an old
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
    const { missing, problems } = notReady(await listControlPlanePods(infra, spec));
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
