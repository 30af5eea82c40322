// Whether the caller may do everything create does in a namespace, asked of the infra apiserver
// (SelfSubjectAccessReview) before a single key is generated.
import { AuthorizationV1Api, type KubeConfig } from '@kubernetes/client-node';
import { K8sOnK8sError } from '@k8s-on-k8s/shared';
import { kubernetesError } from '../kube/apply.js';
import type { ControlPlaneSpec } from './spec.js';

const VERBS = ['get', 'list', 'create', 'patch'] as const;

/** The group/resource pairs create writes for `spec`. */
function resourcesFor(spec: ControlPlaneSpec): (readonly [string, string])[] {
  return [
    ['', 'secrets'],
    ['', 'configmaps'],
    ['', 'services'],
    ['apps', 'deployments'],
    ['apps', 'statefulsets'],
    ['networking.k8s.io', 'networkpolicies'],
    ...(spec.expose === 'ingress' ? [['networking.k8s.io', 'ingresses'] as const] : []),
  ];
}

/** Resolves when every verb create needs is allowed in spec.namespace; else FORBIDDEN naming each missing one. */
export async function checkNamespaceAccess(infra: KubeConfig, spec: ControlPlaneSpec): Promise<void> {
  const api = infra.makeApiClient(AuthorizationV1Api);
  const checks = resourcesFor(spec).flatMap(([group, resource]) =>
    VERBS.map((verb) => ({ group, resource, verb })),
  );
  const denied: string[] = [];
  await Promise.all(
    checks.map(async ({ group, resource, verb }) => {
      const review = await api
        .createSelfSubjectAccessReview({
          body: {
            apiVersion: 'authorization.k8s.io/v1',
            kind: 'SelfSubjectAccessReview',
            spec: { resourceAttributes: { namespace: spec.namespace, group, resource, verb } },
          },
        })
        .catch((error: unknown) => {
          throw kubernetesError(`check access to ${resource} in ${spec.namespace}`, error);
        });
      if (review.status?.allowed !== true)
        denied.push(`${verb} ${group === '' ? '' : `${group}/`}${resource}`);
    }),
  );
  if (denied.length > 0) {
    throw new K8sOnK8sError(
      'FORBIDDEN',
      `not allowed in namespace ${spec.namespace}: ${denied.sort().join(', ')}`,
      {
        hint: 'ask the infra cluster admin for a RoleBinding to the `admin` ClusterRole in that namespace',
      },
    );
  }
}
