import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

// The join server's Prometheus metrics, in a registry of its own (never prom-client's global one),
// so two servers in one test process do not share counters.

/** How a join attempt ended; the label values of k8s_join_server_joins_total. */
export type JoinResult =
  | 'success'
  | 'rejected'
  | 'expired'
  | 'revoked'
  | 'exhausted'
  | 'wrong_node'
  | 'node_exists'
  | 'invalid_request'
  | 'rate_limited'
  | 'error';

/** The counters and histograms the app updates. */
export interface JoinServerMetrics {
  readonly registry: Registry;
  readonly joins: Counter<'result'>;
  readonly tokensMinted: Counter;
  readonly tokensRevoked: Counter;
  readonly requestDuration: Histogram<'method' | 'route' | 'status'>;
}

/** Creates the metrics in a fresh registry, with Node's process metrics alongside. */
export function createJoinServerMetrics(): JoinServerMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry });
  return {
    registry,
    joins: new Counter({
      name: 'k8s_join_server_joins_total',
      help: 'Join attempts by result.',
      labelNames: ['result'],
      registers: [registry],
    }),
    tokensMinted: new Counter({
      name: 'k8s_join_server_tokens_minted_total',
      help: 'Join tokens created through the admin API.',
      registers: [registry],
    }),
    tokensRevoked: new Counter({
      name: 'k8s_join_server_tokens_revoked_total',
      help: 'Join tokens revoked through the admin API.',
      registers: [registry],
    }),
    requestDuration: new Histogram({
      name: 'k8s_join_server_request_duration_seconds',
      help: 'HTTP request latency by method, route and status.',
      labelNames: ['method', 'route', 'status'],
      buckets: [0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10],
      registers: [registry],
    }),
  };
}
