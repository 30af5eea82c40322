import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, it } from 'node:test';
import { parse as parseYaml, stringify as stringifyYaml } from 'yaml';
import { parseJoinBundle, parseKubeconfig, resolveKubeconfig } from '@k8s-on-k8s/shared';
import {
  renderBootstrapKubeconfig,
  renderJoinBundle,
  renderKubeletConfiguration,
} from '../../src/join-server/bundle.js';

const CA = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n';
const CLUSTER = {
  apiEndpoint: 'https://10.199.199.199:443',
  upstreams: ['api.example.com:6443', '192.0.2.10:6443'],
  clusterDns: '10.3.0.10',
  clusterDomain: 'cluster.local',
  kubernetesVersion: 'v1.37.2',
};

describe('join bundle', () => {
  it('renders the KubeletConfiguration of the golden file', async () => {
    const golden = await readFile(
      new URL('../../../test/fixtures/kubelet-config.golden.yaml', import.meta.url),
      'utf8',
    );
    assert.equal(stringifyYaml(renderKubeletConfiguration(CLUSTER)), golden);
    assert.deepEqual(parseYaml(golden), renderKubeletConfiguration(CLUSTER));
  });

  it('is a valid protocol-v1 bundle whose bootstrap kubeconfig points at the VIP with the bootstrap token', () => {
    const bundle = renderJoinBundle({
      cluster: CLUSTER,
      caPem: CA,
      nodeName: 'worker-1',
      bootstrapToken: 'abcdef.0123456789abcdef',
      bootstrapTokenExpiresAt: new Date('2030-01-01T00:15:00.123Z'),
      serverTime: new Date('2030-01-01T00:00:00Z'),
      nodeLabels: { pool: 'gpu' },
      nodeTaints: [{ key: 'gpu', effect: 'NoSchedule' }],
    });
    const parsed = parseJoinBundle(JSON.parse(JSON.stringify(bundle)));
    assert.equal(parsed.apiServer.endpoint, 'https://10.199.199.199:443');
    assert.deepEqual(parsed.apiServer.upstreams, CLUSTER.upstreams);
    assert.equal(parsed.bootstrapTokenExpiresAt, '2030-01-01T00:15:00Z');
    assert.deepEqual(parsed.nodeTaints, [{ key: 'gpu', effect: 'NoSchedule' }]);
    const kubeconfig = resolveKubeconfig(parseKubeconfig(parsed.bootstrapKubeconfig));
    assert.equal(kubeconfig.server, 'https://10.199.199.199:443');
    assert.equal(kubeconfig.token, 'abcdef.0123456789abcdef');
    assert.equal(kubeconfig.caPem, CA);
  });

  it('renders bootstrap kubeconfigs identical to renderKubeconfig for any endpoint and token, and refuses odd tokens', async () => {
    const { renderKubeconfig } = await import('@k8s-on-k8s/shared');
    for (const [endpoint, token] of [
      ['https://10.199.199.199:443', 'abcdef.0123456789abcdef'],
      ['https://10.199.199.199:443', 'zzzzzz.aaaaaaaaaaaaaaaa'],
      ['https://api.example.com:6443', 'abcdef.0123456789abcdef'],
    ] as const) {
      const expected = renderKubeconfig({
        clusterName: 'kubernetes',
        server: endpoint,
        caPem: CA,
        userName: 'tls-bootstrap-token-user',
        credentials: { token },
      });
      assert.equal(
        renderBootstrapKubeconfig({ apiEndpoint: endpoint, caPem: CA, bootstrapToken: token }),
        expected,
      );
    }
    assert.throws(
      () =>
        renderBootstrapKubeconfig({
          apiEndpoint: CLUSTER.apiEndpoint,
          caPem: CA,
          bootstrapToken: 'abc: {x}',
        }),
      /bootstrap token of the form/,
    );
  });
});
