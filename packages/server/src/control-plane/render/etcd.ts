// etcd: a StatefulSet with TLS for clients and peers, on a PersistentVolumeClaim unless asked for an emptyDir.
import type { V1StatefulSet } from '@kubernetes/client-node';
import { resourcesOf } from '../component-resources.js';
import { type ControlPlaneSpec } from '../spec.js';
import { DATA_LABEL } from '../../contract.js';
import { componentName } from '../names.js';

import {
  goRuntimeEnv,
  PORTS,
  componentLabels,
  container,
  pkiVolume,
  podTemplate,
  probes,
  selector,
} from './pod-kit.js';

export function renderEtcd(spec: ControlPlaneSpec): V1StatefulSet {
  const resources = resourcesOf(spec, 'etcd');
  const name = componentName(spec, 'etcd');
  const dir = '/etc/etcd/pki';
  const peer = `https://127.0.0.1:${PORTS.etcdPeer}`;
  const args = [
    `--name=${name}-0`,
    '--data-dir=/var/lib/etcd/data',
    `--listen-client-urls=https://0.0.0.0:${PORTS.etcdClient}`,
    `--advertise-client-urls=https://${name}.${spec.namespace}.svc:${PORTS.etcdClient}`,
    // One member: its peer URL never leaves the pod.
    `--listen-peer-urls=${peer}`,
    `--initial-advertise-peer-urls=${peer}`,
    `--initial-cluster=${name}-0=${peer}`,
    '--initial-cluster-state=new',
    `--initial-cluster-token=${spec.namespace}-${spec.name}`,
    // Plain HTTP (/health, /livez, /readyz, /metrics; nothing that reads or writes keys), because the
    // kubelet's httpGet probes present no client certificate and --client-cert-auth would refuse
    // them on the client port. It has to be on the pod's address, not 127.0.0.1: etcd is not on the
    // host network and the probes dial the pod IP. No Service carries this port, and the etcd
    // NetworkPolicy admits no pod to it (network-policies.ts), so only the node's probes reach it.
    `--listen-metrics-urls=http://0.0.0.0:${PORTS.etcdMetrics}`,
    `--cert-file=${dir}/server.crt`,
    `--key-file=${dir}/server.key`,
    `--trusted-ca-file=${dir}/ca.crt`,
    '--client-cert-auth=true',
    `--peer-cert-file=${dir}/server.crt`,
    `--peer-key-file=${dir}/server.key`,
    `--peer-trusted-ca-file=${dir}/ca.crt`,
    '--peer-client-cert-auth=true',
    // One member: no peer to heartbeat, so raft's tick (heartbeat-interval) only wakes it up; 500 ms
    // instead of 100 (and the election timeout at etcd's 10×) is a fifth of the idle wakeups.
    '--heartbeat-interval=500',
    '--election-timeout=5000',
    '--snapshot-count=10000',
    '--auto-compaction-mode=periodic',
    '--auto-compaction-retention=1h',
  ];
  const dataVolume = `${name}-data`;
  return {
    apiVersion: 'apps/v1',
    kind: 'StatefulSet',
    metadata: { name, namespace: spec.namespace, labels: componentLabels(spec, 'etcd') },
    spec: {
      replicas: 1,
      serviceName: name,
      selector: { matchLabels: selector(spec, 'etcd') },
      template: podTemplate(spec, 'etcd', {
        containers: [
          container('etcd', `registry.k8s.io/etcd:${spec.etcdImageTag}`, 'etcd', args, {
            ports: [{ name: 'client', containerPort: PORTS.etcdClient }],
            env: goRuntimeEnv(resources),
            resources,
            volumeMounts: [
              { name: 'pki', mountPath: dir, readOnly: true },
              { name: dataVolume, mountPath: '/var/lib/etcd' },
            ],
            ...probes(PORTS.etcdMetrics, 'HTTP', '/livez', '/readyz'),
          }),
        ],
        volumes: [
          pkiVolume(spec, 'pki', [
            ['etcdCa', 'tls.crt', 'ca.crt'],
            ['etcdServer', 'tls.crt', 'server.crt'],
            ['etcdServer', 'tls.key', 'server.key'],
          ]),
          ...(spec.etcdStorage === undefined ? [{ name: dataVolume, emptyDir: {} }] : []),
        ],
      }),
      ...(spec.etcdStorage === undefined
        ? {}
        : {
            volumeClaimTemplates: [
              {
                apiVersion: 'v1',
                kind: 'PersistentVolumeClaim',
                metadata: {
                  name: dataVolume,
                  labels: { ...componentLabels(spec, 'etcd'), [DATA_LABEL]: 'true' },
                },
                spec: {
                  accessModes: ['ReadWriteOnce'],
                  resources: { requests: { storage: spec.etcdStorage } },
                },
              },
            ],
            persistentVolumeClaimRetentionPolicy: { whenDeleted: 'Retain', whenScaled: 'Retain' },
          }),
    },
  };
}
