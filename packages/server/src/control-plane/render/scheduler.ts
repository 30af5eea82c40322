// kube-scheduler.
import type { V1Deployment } from '@kubernetes/client-node';
import { resourcesOf } from '../component-resources.js';
import { type ControlPlaneSpec } from '../spec.js';
import { componentName } from '../names.js';

import {
  goRuntimeEnv,
  LEADER_ELECTION_ARGS,
  container,
  deployment,
  kubeconfigArgs,
  podTemplate,
  probes,
  secretVolume,
} from './pod-kit.js';

export function renderScheduler(spec: ControlPlaneSpec): V1Deployment {
  const resources = resourcesOf(spec, 'scheduler');
  const port = 10259;
  const args = [
    ...kubeconfigArgs(),
    '--bind-address=0.0.0.0',
    '--leader-elect=true',
    ...LEADER_ELECTION_ARGS,
    '--profiling=false',
    `--secure-port=${port}`,
  ];
  return deployment(
    spec,
    'scheduler',
    podTemplate(spec, 'scheduler', {
      containers: [
        container(
          'kube-scheduler',
          `registry.k8s.io/kube-scheduler:${spec.kubernetesVersion}`,
          'kube-scheduler',
          args,
          {
            env: goRuntimeEnv(resources),
            resources,
            volumeMounts: [{ name: 'kubeconfig', mountPath: '/etc/kubernetes/kubeconfig', readOnly: true }],
            ...probes(port, 'HTTPS', '/healthz', undefined),
          },
        ),
      ],
      volumes: [secretVolume('kubeconfig', `${componentName(spec, 'scheduler')}-kubeconfig`)],
    }),
  );
}
