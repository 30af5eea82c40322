import assert from 'node:assert/strict';
import { test } from 'node:test';
import { renderForwarderMetrics } from '../../src/forward/forwarder-metrics.js';

test('renders every family with HELP, TYPE and one sample per upstream', () => {
  const text = renderForwarderMetrics({
    activeConnections: 2,
    acceptedConnections: 40,
    failedConnections: 1,
    healthyUpstreams: 1,
    upstreams: [
      {
        upstream: '10.0.0.1:6443',
        healthy: true,
        listed: true,
        activeConnections: 2,
        totalConnections: 39,
        connectErrors: 0,
        bytesIn: 1234,
        bytesOut: 56789,
      },
      {
        upstream: '[fd00::2]:6443',
        healthy: false,
        listed: true,
        activeConnections: 0,
        totalConnections: 0,
        connectErrors: 3,
        bytesIn: 0,
        bytesOut: 0,
      },
    ],
  });
  const expected = [
    'k8s_join_forwarder_client_connections_active 2',
    'k8s_join_forwarder_client_connections_total 40',
    'k8s_join_forwarder_client_connections_failed_total 1',
    'k8s_join_forwarder_healthy_upstreams 1',
    'k8s_join_forwarder_upstream_healthy{upstream="10.0.0.1:6443"} 1',
    'k8s_join_forwarder_upstream_healthy{upstream="[fd00::2]:6443"} 0',
    'k8s_join_forwarder_upstream_connections_active{upstream="10.0.0.1:6443"} 2',
    'k8s_join_forwarder_upstream_connections_total{upstream="10.0.0.1:6443"} 39',
    'k8s_join_forwarder_upstream_connect_errors_total{upstream="[fd00::2]:6443"} 3',
    'k8s_join_forwarder_upstream_bytes_in_total{upstream="10.0.0.1:6443"} 1234',
    'k8s_join_forwarder_upstream_bytes_out_total{upstream="10.0.0.1:6443"} 56789',
  ];
  const lines = text.split('\n');
  for (const line of expected) assert.ok(lines.includes(line), `missing: ${line}`);
  assert.ok(text.endsWith('\n'));
  // Every sample's family is declared exactly once, before its samples.
  const families = lines.filter((l) => l.startsWith('# TYPE ')).map((l) => l.split(' ')[2]);
  assert.equal(new Set(families).size, families.length);
  for (const line of lines.filter((l) => l !== '' && !l.startsWith('#'))) {
    const name = /^[a-z0-9_]+/.exec(line)?.[0] ?? '';
    assert.ok(families.includes(name), `${name} has a TYPE line`);
  }
});
