import type { V1Pod } from '@kubernetes/client-node';

/** Whether the pod's Ready condition is True. */
export function isPodReady(pod: V1Pod): boolean {
  return pod.status?.conditions?.some((c) => c.type === 'Ready' && c.status === 'True') === true;
}

/** One line per pod, for logs and failure messages: namespace/name, node, phase, each container's state. */
export function describePods(pods: readonly V1Pod[]): string {
  return pods
    .map((pod) => {
      const containers = (pod.status?.containerStatuses ?? []).map((c) => {
        const state = c.state?.running
          ? 'running'
          : (c.state?.waiting?.reason ?? c.state?.terminated?.reason ?? '?');
        return `${c.name}=${state}${c.ready ? '/ready' : ''} restarts=${c.restartCount}`;
      });
      return `${pod.metadata?.namespace ?? ''}/${pod.metadata?.name ?? '?'} on ${pod.spec?.nodeName ?? '-'} ${pod.status?.phase ?? '?'}: ${containers.join(' ')}`;
    })
    .join('\n');
}
