import { accessSync, constants } from 'node:fs';
import { join } from 'node:path';
import { DEFAULT_KUBERNETES_VERSION } from '@k8s-on-k8s/shared';
import { REPO_ROOT } from '../repo-root.js';

/** The binaries `npm run kube:build` makes. */
export const KUBE_BINARIES = [
  'etcd',
  'kube-apiserver',
  'kube-controller-manager',
  'kube-scheduler',
  'kubelet',
  'kubectl',
] as const;
export type KubeBinary = (typeof KUBE_BINARIES)[number];

/** Where the kube binaries of `version` live: $KUBE_BIN_DIR, or .cache/kube/<version>/ in the repo. */
export function kubeBinDir(version = DEFAULT_KUBERNETES_VERSION): string {
  return process.env.KUBE_BIN_DIR ?? join(REPO_ROOT, '.cache', 'kube', version);
}

/**
 * Resolves the path of one kube binary, or fails with the command that builds it: tests that need a
 * real apiserver never skip silently.
 */
export function kubeBinary(name: KubeBinary, version = DEFAULT_KUBERNETES_VERSION): string {
  const path = join(kubeBinDir(version), name);
  try {
    accessSync(path, constants.X_OK);
  } catch {
    throw new Error(
      `${name} ${version} not found at ${path}: run \`npm run kube:build\` first (builds it from its Go module)`,
    );
  }
  return path;
}
