// Prometheus text exposition (format 0.0.4) of the forwarder's counters, written by hand: a dozen
// series do not justify a metrics library on every worker.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { ForwarderStats } from './forwarder.js';
import type { HostPort } from '@k8s-on-k8s/shared';

const PREFIX = 'k8s_join_forwarder';

/** Renders a stats snapshot as Prometheus exposition text. */
export function renderForwarderMetrics(stats: ForwarderStats): string {
  const lines: string[] = [];
  const family = (name: string, type: 'gauge' | 'counter', help: string, samples: string[]): void => {
    lines.push(`# HELP ${PREFIX}_${name} ${help}`, `# TYPE ${PREFIX}_${name} ${type}`, ...samples);
  };
  const perUpstream = (name: string, value: (u: ForwarderStats['upstreams'][number]) => number): string[] =>
    stats.upstreams.map((u) => `${PREFIX}_${name}{upstream="${escapeLabel(u.upstream)}"} ${value(u)}`);

  family('client_connections_active', 'gauge', 'Client connections open now.', [
    `${PREFIX}_client_connections_active ${stats.activeConnections}`,
  ]);
  family('client_connections_total', 'counter', 'Client connections accepted.', [
    `${PREFIX}_client_connections_total ${stats.acceptedConnections}`,
  ]);
  family(
    'client_connections_failed_total',
    'counter',
    'Client connections closed because no upstream was healthy or every connect failed.',
    [`${PREFIX}_client_connections_failed_total ${stats.failedConnections}`],
  );
  family('healthy_upstreams', 'gauge', 'Upstreams in rotation.', [
    `${PREFIX}_healthy_upstreams ${stats.healthyUpstreams}`,
  ]);
  family(
    'upstream_healthy',
    'gauge',
    '1 when the upstream is in rotation, 0 when health checks or connects fail.',
    perUpstream('upstream_healthy', (u) => (u.healthy ? 1 : 0)),
  );
  family(
    'upstream_connections_active',
    'gauge',
    'Connections to the upstream open now (including connects in flight).',
    perUpstream('upstream_connections_active', (u) => u.activeConnections),
  );
  family(
    'upstream_connections_total',
    'counter',
    'Connections established to the upstream.',
    perUpstream('upstream_connections_total', (u) => u.totalConnections),
  );
  family(
    'upstream_connect_errors_total',
    'counter',
    'Failed or timed-out connects to the upstream.',
    perUpstream('upstream_connect_errors_total', (u) => u.connectErrors),
  );
  family(
    'upstream_bytes_in_total',
    'counter',
    'Bytes forwarded from clients to the upstream.',
    perUpstream('upstream_bytes_in_total', (u) => u.bytesIn),
  );
  family(
    'upstream_bytes_out_total',
    'counter',
    'Bytes forwarded from the upstream to clients.',
    perUpstream('upstream_bytes_out_total', (u) => u.bytesOut),
  );
  return lines.join('\n') + '\n';
}

/** Serves GET /metrics on `address`; resolves with the bound server once listening. */
export function serveForwarderMetrics(
  address: HostPort,
  stats: () => ForwarderStats,
): Promise<{ server: Server; address: AddressInfo }> {
  const server = createServer((req, res) => {
    if (req.method !== 'GET' || (req.url !== '/metrics' && req.url !== '/')) {
      res.writeHead(404, { 'content-type': 'text/plain' }).end('not found; try /metrics\n');
      return;
    }
    res
      .writeHead(200, { 'content-type': 'text/plain; version=0.0.4; charset=utf-8' })
      .end(renderForwarderMetrics(stats()));
  });
  return new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen({ host: address.host, port: address.port }, () => {
      server.removeListener('error', reject);
      resolve({ server, address: server.address() as AddressInfo });
    });
  });
}

function escapeLabel(value: string): string {
  return value.replace(/\\/g, '\\\\').replace(/"/g, '\\"').replace(/\n/g, '\\n');
}
