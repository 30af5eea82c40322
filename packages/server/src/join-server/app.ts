// The join server's HTTP API as an express app, with every dependency passed in: the token store,
// the hosted apiserver client, the logger, the metrics and the clock. main() wraps it in an HTTPS
// server; tests do the same on 127.0.0.1:0. Routes are thin adapters over the join and token
// services, which hold the protocol.
import express from 'express';
import type { Logger } from 'pino';
import { K8sOnK8sError } from '@k8s-on-k8s/shared';
import type { KubernetesApi } from '../kube/api.js';
import { MAX_BODY_BYTES, clientIp, errorHandler } from './http-edge.js';
import { createJoinService } from './join-service.js';
import type { JoinServerMetrics } from './metrics.js';
import { RateLimiter, rateLimitError } from './rate-limiter.js';
import { mountHealthRoutes } from './routes/health.js';
import { mountJoinRoutes } from './routes/join.js';
import { mountTokenRoutes } from './routes/tokens.js';
import type { JoinServerSettings } from './settings.js';
import { createTokenService } from './token-service.js';
import type { JoinTokenStore } from './token-store/store.js';

/** What the app needs from the outside world. */
export interface JoinServerDeps {
  readonly settings: JoinServerSettings;
  readonly store: JoinTokenStore;
  readonly kube: Pick<
    KubernetesApi,
    'createSecret' | 'deleteSecret' | 'nodeExists' | 'reviewToken' | 'reviewAccess' | 'version'
  >;
  /** Where a join asks whether its Node exists; the apiserver (kube) when not given. */
  readonly nodes?: Pick<KubernetesApi, 'nodeExists'>;
  readonly logger: Logger;
  readonly metrics: JoinServerMetrics;
  readonly now: () => Date;
  /** False once shutdown has begun, so /readyz takes the replica out of its Service first. */
  readonly accepting?: () => boolean;
}

/** Builds the join server's express app. */
export function createJoinServerApp(deps: JoinServerDeps): express.Express {
  const { settings, store, kube, logger, metrics, now } = deps;
  const nowMs = (): number => now().getTime();
  const perIp = new RateLimiter(settings.rateLimits.perIp, nowMs);
  const failuresPerIp = new RateLimiter(settings.rateLimits.failuresPerIp, nowMs);
  const failuresPerIpAndToken = new RateLimiter(settings.rateLimits.failuresPerIpAndToken, nowMs);
  const adminFailuresPerIp = new RateLimiter(settings.rateLimits.adminFailuresPerIp, nowMs);
  const healthPerIp = new RateLimiter(settings.rateLimits.healthPerIp, nowMs);
  const joins = createJoinService({
    settings,
    store,
    kube,
    nodes: deps.nodes ?? kube,
    limits: { failuresPerIp, failuresPerIpAndToken },
    metrics,
    logger,
    now,
  });
  const tokens = createTokenService({ settings, store, kube, adminFailuresPerIp, metrics, logger, now });

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);
  app.use(requestLog(logger, metrics));
  // Probes and scrapes have a bucket of their own: generous, but /readyz asks the apiserver and
  // /metrics renders every series, so nobody may have them for free.
  app.use(['/healthz', '/readyz', '/metrics'], (req, _res, next) => {
    const wait = healthPerIp.take(clientIp(req));
    next(wait > 0 ? rateLimitError(wait, 'probe requests from this address') : undefined);
  });
  mountHealthRoutes(app, { store, kube, metrics, logger, accepting: deps.accepting });

  // Everything under /v1 is limited per client IP before any work is done on it. Joins are also
  // refused outright while the IP is in debt for rejected join tokens; the admin API is not (a
  // valid admin credential is never refused for what others sent from the same address, which
  // behind SNAT is everyone's): its failed logins are limited in the token service, after the
  // credential is checked.
  app.use('/v1', (req, _res, next) => {
    const ip = clientIp(req);
    const wait = perIp.take(ip);
    const penalty = wait > 0 || req.path !== '/join' ? 0 : failuresPerIp.wait(ip);
    if (wait > 0 || penalty > 0) {
      if (req.path === '/join') metrics.joins.inc({ result: 'rate_limited' });
      next(
        wait > 0
          ? rateLimitError(wait, 'requests from this address')
          : rateLimitError(penalty, 'rejected credentials from this address'),
      );
      return;
    }
    next();
  });
  app.use('/v1', express.json({ limit: MAX_BODY_BYTES, type: () => true }));
  mountJoinRoutes(app, joins);
  mountTokenRoutes(app, tokens);

  app.use((req, _res, next) => {
    next(new K8sOnK8sError('NOT_FOUND', `no route ${req.method} ${req.path}`));
  });
  app.use(errorHandler(logger));
  return app;
}

/** Request duration metrics for every route, and a log line for each API request. */
function requestLog(logger: Logger, metrics: JoinServerMetrics): express.RequestHandler {
  return (req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const routePath = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      metrics.requestDuration.observe(
        { method: req.method, route: routePath, status: String(res.statusCode) },
        seconds,
      );
      if (routePath === '/healthz' || routePath === '/readyz' || routePath === '/metrics') return;
      // A successful join already has its audit line ("join accepted"); one line per join is enough.
      const level = routePath === '/v1/join' && res.statusCode === 200 ? 'debug' : 'info';
      logger[level](
        {
          method: req.method,
          path: req.path,
          status: res.statusCode,
          ms: Math.round(seconds * 1000),
          ip: clientIp(req),
        },
        'request',
      );
    });
    next();
  };
}
