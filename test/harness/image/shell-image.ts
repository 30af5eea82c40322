// The image of a shell the end-to-end tests exec into: Debian's static busybox with its applets
// (sh, tar, sleep, …), for `kubectl exec -- sh -c …` and `kubectl cp`, which runs tar in the container.

/**
 * As `npm run build:images` names it. It sleeps until deleted (its Cmd, which a pod's args replace);
 * under localhost/ like PROBE_IMAGE, so a node runs the imported archive or fails to pull.
 */
export const SHELL_IMAGE = 'localhost/k8s-on-k8s/shell:v1';

/** A pod in `default` that runs `script` with the shell image's sh. */
export function shellPod(name: string, script: string): Record<string, unknown> {
  return {
    apiVersion: 'v1',
    kind: 'Pod',
    metadata: { name, namespace: 'default' },
    spec: { containers: [{ name, image: SHELL_IMAGE, command: ['sh', '-c', script] }] },
  };
}
