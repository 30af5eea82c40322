// The one way this package loads a kubeconfig: @kubernetes/client-node's loader, so $KUBECONFIG
// lists, exec plugins, token files and the in-cluster service account work as they do for kubectl.
// Errors name the flag the path came from.
import { existsSync } from 'node:fs';
import { homedir } from 'node:os';
import { join } from 'node:path';
import { KubeConfig } from '@kubernetes/client-node';
import { ValidationError } from '@k8s-on-k8s/shared';

/** Where a kubeconfig comes from. */
export interface KubeConfigSource {
  /** A file; undefined = $KUBECONFIG (a `:`-separated list, merged) or ~/.kube/config, or in-cluster. */
  readonly path?: string | undefined;
  /** A context of it to use instead of its current context. */
  readonly context?: string | undefined;
  /** With no path: use the pod's service account instead of $KUBECONFIG (servers in a pod). */
  readonly inCluster?: boolean;
  /** The flag to name in errors (default --kubeconfig). */
  readonly flag?: string;
}

/** Loads a kubeconfig and checks it names a cluster; errors name the flag and the path. */
export function loadKubeConfig(source: KubeConfigSource = {}): KubeConfig {
  const flag = source.flag ?? '--kubeconfig';
  const where =
    source.path !== undefined
      ? JSON.stringify(source.path)
      : source.inCluster === true
        ? '(in-cluster service account)'
        : '(default: $KUBECONFIG or ~/.kube/config)';
  const kubeConfig = new KubeConfig();
  try {
    if (source.path !== undefined) kubeConfig.loadFromFile(source.path);
    else if (source.inCluster === true) kubeConfig.loadFromCluster();
    else if (hasDefaultKubeconfig()) kubeConfig.loadFromDefault();
    else {
      // client-node would fall back to http://localhost:8080, as kubectl does; an error is kinder.
      throw new Error('$KUBECONFIG is not set and ~/.kube/config does not exist');
    }
  } catch (cause) {
    throw new ValidationError(
      'INVALID_KUBECONFIG',
      `Cannot load ${flag} ${where}: ${cause instanceof Error ? cause.message : String(cause)}`,
      {
        cause,
        hint:
          source.inCluster === true
            ? `give ${flag} when not running in a pod`
            : `check ${flag} and $KUBECONFIG`,
      },
    );
  }
  if (source.context !== undefined) {
    if (kubeConfig.getContextObject(source.context) === null) {
      throw new ValidationError(
        'INVALID_KUBECONFIG',
        `Expected --context to name a context of ${flag} ${where}, got ${JSON.stringify(source.context)}`,
      );
    }
    kubeConfig.setCurrentContext(source.context);
  }
  if (kubeConfig.getCurrentCluster()?.server === undefined) {
    throw new ValidationError('INVALID_KUBECONFIG', `${flag} ${where} has no current cluster with a server`);
  }
  return kubeConfig;
}

/** Whether loadFromDefault would find a kubeconfig: $KUBECONFIG, ~/.kube/config, or a pod's service account. */
function hasDefaultKubeconfig(): boolean {
  return (
    (process.env.KUBECONFIG ?? '') !== '' ||
    existsSync(join(homedir(), '.kube', 'config')) ||
    process.env.KUBERNETES_SERVICE_HOST !== undefined
  );
}

/** Loads a kubeconfig from its text (a kubeconfig the program made itself, e.g. the hosted admin's). */
export function kubeConfigFromString(text: string): KubeConfig {
  const kubeConfig = new KubeConfig();
  kubeConfig.loadFromString(text);
  return kubeConfig;
}
