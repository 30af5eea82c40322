import type { JoinBundle } from '@k8s-on-k8s/shared';

/** A fixed bundle for golden-file tests: the shape the join server answers with. */
export const SAMPLE_CA = `-----BEGIN CERTIFICATE-----
MIIBfake-ca-for-rendering-tests-only
-----END CERTIFICATE-----`;

export const SAMPLE_BUNDLE: JoinBundle = {
  apiVersion: 'join.k8s-on-k8s.io/v1',
  kind: 'JoinBundle',
  nodeName: 'worker-1',
  caCert: SAMPLE_CA,
  apiServer: {
    endpoint: 'https://10.199.199.199:443',
    upstreams: ['api.example.com:30443', '192.0.2.10:6443'],
  },
  bootstrapKubeconfig: 'apiVersion: v1\nkind: Config\n# token inside\n',
  bootstrapTokenExpiresAt: '2030-01-01T00:15:00Z',
  cluster: { dnsIP: '10.3.0.10', domain: 'cluster.local', kubernetesVersion: 'v1.37.2' },
  kubeletConfig: {
    apiVersion: 'kubelet.config.k8s.io/v1beta1',
    kind: 'KubeletConfiguration',
    cgroupDriver: 'systemd',
    failCgroupV1: false,
    authentication: {
      anonymous: { enabled: false },
      webhook: { enabled: true },
      x509: { clientCAFile: '/wrong/path' },
    },
    authorization: { mode: 'Webhook' },
  },
  serverTime: '2030-01-01T00:00:00Z',
  nodeLabels: { 'node.k8s-on-k8s.io/pool': 'students' },
  nodeTaints: [{ key: 'dedicated', value: 'lab', effect: 'NoSchedule' }],
};
