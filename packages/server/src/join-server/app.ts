import type { TLSSocket } from 'node:tls';
import express, { type NextFunction, type Request, type Response } from 'express';
import type { Logger } from 'pino';
import {
  JOIN_API_VERSION,
  JoinError,
  K8sOnK8sError,
  ValidationError,
  buildBootstrapTokenSecret,
  errorBody,
  formatDuration,
  generateBootstrapToken,
  generateJoinToken,
  hashTokenSecret,
  httpStatusOf,
  isK8sOnK8sError,
  parseCreateTokenRequest,
  parseDuration,
  parseJoinRequest,
  parseJoinToken,
  redactSecrets,
  verifyTokenSecret,
  type CreatedToken,
  type JoinRequest,
} from '@k8s-on-k8s/shared';
import {
  authorizeAdmin,
  type AdminCredentials,
  type AdminVerb,
  type PresentedCertificate,
} from './admin-auth.js';
import { renderJoinBundle, type ClusterSettings } from './bundle.js';
import type { JoinResult, JoinServerMetrics } from './metrics.js';
import {
  joinTokenState,
  toTokenInfo,
  type JoinTokenRecord,
  type JoinTokenStore,
} from './token-store/store.js';
import { KubernetesApiError, type KubernetesApi } from '../kube/api.js';
import { RateLimiter, type RateLimit } from './rate-limiter.js';
import { BOOTSTRAPPERS_GROUP, JOIN_TOKEN_ID_LABEL } from '../contract.js';

// The join server's HTTP API as an express app, with every dependency passed in (STYLE.md §3):
// the token store, the hosted apiserver client, the logger, the metrics and the clock. main()
// wraps it in an HTTPS server; tests do the same on 127.0.0.1:0.

/** Request bodies larger than this are refused with 413: a JoinRequest is a few hundred bytes. */
export const MAX_BODY_BYTES = 4096;

/** The server's settings, validated by the command line parser. */
export interface JoinServerSettings {
  readonly cluster: ClusterSettings;
  /** The hosted cluster CA, PEM: it goes into every bundle. */
  readonly caPem: string;
  /** sha256:<hex> of the CA, printed in the join command. */
  readonly caCertHash: string;
  /** The URL agents reach this server at, printed in the join command. */
  readonly publicUrl: string;
  readonly bootstrapTokenTtlMs: number;
  readonly maxTokenTtlMs: number;
  readonly rateLimits: {
    /** Every API request, per client IP, checked before anything else is done. */
    readonly perIp: RateLimit;
    /** Rejected credentials, per client IP: what makes online guessing pointless. */
    readonly failuresPerIp: RateLimit;
    /** Wrong secrets presented for one token id. */
    readonly failuresPerToken: RateLimit;
  };
}

/** What the app needs from the outside world. */
export interface JoinServerDeps {
  readonly settings: JoinServerSettings;
  readonly store: JoinTokenStore;
  readonly kube: Pick<
    KubernetesApi,
    'createSecret' | 'deleteSecret' | 'reviewToken' | 'reviewAccess' | 'version'
  >;
  readonly logger: Logger;
  readonly metrics: JoinServerMetrics;
  readonly now: () => Date;
  /** False once shutdown has begun, so /readyz takes the replica out of its Service first. */
  readonly accepting?: () => boolean;
}

// A well-formed hash of no secret anyone has: unknown ids are checked against it, so they take as
// long as wrong secrets and the two cannot be told apart by timing either.
const NO_SUCH_TOKEN_HASH = hashTokenSecret('no-such-token-no-such-token-0000');
const READY_TIMEOUT_MS = 3000;
const MAX_ID_ATTEMPTS = 5;

function rejected(): JoinError {
  // One answer for unknown id, wrong secret, expired, revoked and used up: the caller learns
  // nothing about which tokens exist. The audit log tells admins the real reason.
  return new JoinError('TOKEN_REJECTED', 'the join token was not accepted', {
    hint: 'Ask an admin for a new token (k8s-on-k8s token create); the join server logs why this one was refused.',
  });
}

function rateLimited(res: Response, waitMs: number, what: string): JoinError {
  const seconds = Math.max(1, Math.ceil(waitMs / 1000));
  res.setHeader('Retry-After', String(seconds));
  return new JoinError('RATE_LIMITED', `too many ${what}; retry in ${seconds}s`, {
    hint: `Wait ${seconds}s before retrying.`,
  });
}

function clientIp(req: Request): string {
  return req.socket.remoteAddress ?? 'unknown';
}

function bearerToken(req: Request): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  const match = /^Bearer\s+(\S+)\s*$/i.exec(header);
  return match?.[1];
}

function presentedCertificate(req: Request): PresentedCertificate | undefined {
  const socket = req.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const cert = socket.getPeerCertificate();
  // Node answers an empty object when the client sent no certificate.
  if (Object.keys(cert).length === 0) return undefined;
  const asList = (value: string | string[] | undefined): string[] =>
    value === undefined ? [] : Array.isArray(value) ? value : [value];
  const subject = cert.subject as Partial<Record<string, string | string[]>> | undefined;
  return {
    authorized: socket.authorized === true,
    authorizationError: socket.authorizationError?.toString(),
    commonName: asList(subject?.CN)[0] ?? '',
    organizations: asList(subject?.O),
  };
}

function rfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}

type AsyncHandler = (req: Request, res: Response) => Promise<void>;

function route(handler: AsyncHandler) {
  return (req: Request, res: Response, next: NextFunction): void => {
    handler(req, res).catch(next);
  };
}

/** Builds the join server's express app. */
export function createJoinServerApp(deps: JoinServerDeps): express.Express {
  const { settings, store, kube, logger, metrics, now } = deps;
  const nowMs = (): number => now().getTime();
  const perIp = new RateLimiter(settings.rateLimits.perIp, nowMs);
  const failuresPerIp = new RateLimiter(settings.rateLimits.failuresPerIp, nowMs);
  const failuresPerToken = new RateLimiter(settings.rateLimits.failuresPerToken, nowMs);
  const audit = logger.child({ audit: true });

  const app = express();
  app.disable('x-powered-by');
  app.set('etag', false);

  app.use((req, res, next) => {
    const started = process.hrtime.bigint();
    res.on('finish', () => {
      const seconds = Number(process.hrtime.bigint() - started) / 1e9;
      const routePath = (req.route as { path?: string } | undefined)?.path ?? 'unmatched';
      metrics.requestDuration.observe(
        { method: req.method, route: routePath, status: String(res.statusCode) },
        seconds,
      );
      if (routePath !== '/healthz' && routePath !== '/readyz' && routePath !== '/metrics') {
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
      }
    });
    next();
  });

  app.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok');
  });

  app.get(
    '/readyz',
    route(async (_req, res) => {
      const problems: string[] = [];
      if (deps.accepting?.() === false) problems.push('shutting down');
      const withTimeout = (what: string, check: Promise<unknown>): Promise<void> =>
        Promise.race([
          check.then(() => undefined),
          new Promise<never>((_resolve, reject) =>
            setTimeout(() => {
              reject(new Error(`no answer within ${READY_TIMEOUT_MS}ms`));
            }, READY_TIMEOUT_MS).unref(),
          ),
        ]).catch((error: unknown) => {
          problems.push(`${what}: ${error instanceof Error ? error.message : String(error)}`);
        });
      await Promise.all([
        withTimeout('token store', store.ping()),
        withTimeout('hosted apiserver', kube.version()),
      ]);
      if (problems.length > 0) {
        res
          .status(503)
          .type('text/plain')
          .send(`not ready: ${problems.join('; ')}\n`);
        return;
      }
      res.type('text/plain').send('ok');
    }),
  );

  app.get(
    '/metrics',
    route(async (_req, res) => {
      res.type(metrics.registry.contentType).send(await metrics.registry.metrics());
    }),
  );

  // Everything under /v1 is limited per client IP before any work is done on it, and refused
  // outright while the IP is in debt for rejected credentials.
  app.use('/v1', (req, res, next) => {
    const ip = clientIp(req);
    const wait = perIp.take(ip);
    if (wait > 0) {
      if (req.path === '/join') metrics.joins.inc({ result: 'rate_limited' });
      next(rateLimited(res, wait, 'requests from this address'));
      return;
    }
    const penalty = failuresPerIp.wait(ip);
    if (penalty > 0) {
      if (req.path === '/join') metrics.joins.inc({ result: 'rate_limited' });
      next(rateLimited(res, penalty, 'rejected credentials from this address'));
      return;
    }
    next();
  });
  app.use('/v1', express.json({ limit: MAX_BODY_BYTES, type: () => true }));

  // --- Join ---------------------------------------------------------------------------------------

  const countJoin = (result: JoinResult): void => {
    metrics.joins.inc({ result });
  };

  app.post(
    '/v1/join',
    route(async (req, res) => {
      const ip = clientIp(req);
      const presented = bearerToken(req);
      let token: { id: string; secret: string };
      try {
        if (presented === undefined) throw rejected();
        token = parseJoinToken(presented);
      } catch {
        failuresPerIp.charge(ip);
        countJoin('rejected');
        audit.warn({ ip, reason: presented === undefined ? 'no-token' : 'malformed-token' }, 'join refused');
        throw rejected();
      }
      const tokenWait = failuresPerToken.wait(token.id);
      if (tokenWait > 0) {
        countJoin('rate_limited');
        throw rateLimited(res, tokenWait, 'rejected attempts with this token');
      }

      let request: JoinRequest;
      try {
        request = parseJoinRequest(req.body);
      } catch (error) {
        countJoin('invalid_request');
        throw error;
      }

      // Order (why a failed join never spends a use, and a use is spent exactly once):
      // 1. verify the token without spending it; 2. mint the bootstrap Secret; 3. spend one use
      // atomically (the store's CAS); 4. if the spend lost (another agent took the last use, or
      // the token was revoked meanwhile), delete the Secret just made and refuse. A crash between
      // 2 and 3 leaves only a bootstrap token nobody knows, which expires on its own.
      const record = await store.get(token.id);
      const secretOk = verifyTokenSecret(token.secret, record?.secretHash ?? NO_SUCH_TOKEN_HASH);
      if (record === undefined || !secretOk) {
        failuresPerIp.charge(ip);
        if (record !== undefined) failuresPerToken.charge(token.id);
        countJoin('rejected');
        audit.warn(
          {
            ip,
            tokenId: token.id,
            nodeName: request.nodeName,
            reason: record === undefined ? 'unknown-token' : 'wrong-secret',
          },
          'join refused',
        );
        throw rejected();
      }
      const state = joinTokenState(record, now());
      if (state !== 'usable') {
        countJoin(state);
        audit.warn({ ip, tokenId: token.id, nodeName: request.nodeName, reason: state }, 'join refused');
        throw rejected();
      }
      if (record.nodeName !== undefined && record.nodeName !== request.nodeName) {
        countJoin('wrong_node');
        audit.warn(
          {
            ip,
            tokenId: token.id,
            nodeName: request.nodeName,
            boundTo: record.nodeName,
            reason: 'wrong-node',
          },
          'join refused',
        );
        throw new JoinError(
          'FORBIDDEN',
          `join token ${token.id} is for another node name, not ${JSON.stringify(request.nodeName)}`,
          {
            hint: 'Join with the node name the token was created for (k8s-on-k8s token list shows it).',
          },
        );
      }

      let bootstrap: { id: string; token: string; expiresAt: Date };
      try {
        bootstrap = await mintBootstrapToken(record, request);
      } catch (error) {
        countJoin('error');
        throw error;
      }

      let consumed;
      try {
        consumed = await store.consume(token.id, now());
      } catch (error) {
        await forgetBootstrapToken(bootstrap.id, token.id);
        countJoin('error');
        throw error;
      }
      if (!consumed.ok) {
        await forgetBootstrapToken(bootstrap.id, token.id);
        countJoin(consumed.reason === 'not-found' ? 'rejected' : consumed.reason);
        audit.warn(
          { ip, tokenId: token.id, nodeName: request.nodeName, reason: consumed.reason },
          'join refused',
        );
        throw rejected();
      }

      const bundle = renderJoinBundle({
        cluster: settings.cluster,
        caPem: settings.caPem,
        nodeName: request.nodeName,
        bootstrapToken: bootstrap.token,
        bootstrapTokenExpiresAt: bootstrap.expiresAt,
        serverTime: now(),
        nodeLabels: record.labels,
        nodeTaints: record.taints,
      });
      countJoin('success');
      audit.info(
        {
          ip,
          tokenId: token.id,
          nodeName: request.nodeName,
          bootstrapTokenId: bootstrap.id,
          usesLeft: toTokenInfo(consumed.record).usesLeft,
          os: request.os,
          arch: request.arch,
        },
        'join accepted',
      );
      res.json(bundle);
    }),
  );

  async function mintBootstrapToken(
    record: JoinTokenRecord,
    request: JoinRequest,
  ): Promise<{ id: string; token: string; expiresAt: Date }> {
    const expiresAt = new Date(now().getTime() + settings.bootstrapTokenTtlMs);
    for (let attempt = 1; ; attempt++) {
      const bootstrap = generateBootstrapToken();
      const secret = buildBootstrapTokenSecret({
        id: bootstrap.id,
        secret: bootstrap.secret,
        expiresAt,
        description: `k8s-join-server: node ${request.nodeName} via join token ${record.id}`,
        extraGroups: [BOOTSTRAPPERS_GROUP],
        labels: { [JOIN_TOKEN_ID_LABEL]: record.id },
      });
      try {
        await kube.createSecret('kube-system', secret);
        return { id: bootstrap.id, token: bootstrap.token, expiresAt };
      } catch (error) {
        // A 409 is an id collision with an existing bootstrap token: draw another.
        if (error instanceof KubernetesApiError && error.apiStatus === 409 && attempt < MAX_ID_ATTEMPTS)
          continue;
        throw new JoinError('UPSTREAM_ERROR', 'the hosted apiserver did not accept the bootstrap token', {
          cause: error,
          hint: 'Retry later; the join token was not used.',
        });
      }
    }
  }

  async function forgetBootstrapToken(bootstrapId: string, tokenId: string): Promise<void> {
    try {
      await kube.deleteSecret('kube-system', `bootstrap-token-${bootstrapId}`);
    } catch (error) {
      // Not fatal: nobody knows its secret, and the tokencleaner removes it once it expires.
      logger.warn(
        { tokenId, bootstrapTokenId: bootstrapId, err: describeError(error) },
        'could not delete an unused bootstrap token',
      );
    }
  }

  // --- Admin --------------------------------------------------------------------------------------

  const admin = async (req: Request, verb: AdminVerb): Promise<{ username: string; via: string }> => {
    const credentials: AdminCredentials = {
      certificate: presentedCertificate(req),
      bearerToken: bearerToken(req),
    };
    try {
      return await authorizeAdmin(credentials, verb, kube);
    } catch (error) {
      if (isK8sOnK8sError(error) && httpStatusOf(error) === 401) failuresPerIp.charge(clientIp(req));
      if (isK8sOnK8sError(error) && (httpStatusOf(error) === 401 || httpStatusOf(error) === 403)) {
        audit.warn(
          { ip: clientIp(req), verb, code: error.code, reason: error.message },
          'admin request refused',
        );
      }
      throw error;
    }
  };

  app.post(
    '/v1/tokens',
    route(async (req, res) => {
      const who = await admin(req, 'create');
      const body = parseCreateTokenRequest(req.body ?? {});
      const ttlMs = parseDuration(body.ttl, 'ttl');
      if (ttlMs > settings.maxTokenTtlMs) {
        throw new ValidationError(
          'INVALID_REQUEST',
          `Expected ttl to be at most ${formatDuration(settings.maxTokenTtlMs)} (the server's --max-token-ttl), got ${JSON.stringify(body.ttl)}`,
        );
      }
      const createdAt = now();
      for (let attempt = 1; ; attempt++) {
        const token = generateJoinToken();
        const record: JoinTokenRecord = {
          id: token.id,
          secretHash: hashTokenSecret(token.secret),
          createdAt: rfc3339(createdAt),
          expiresAt: rfc3339(new Date(createdAt.getTime() + ttlMs)),
          usesTotal: body.uses,
          usesCount: 0,
          revoked: false,
          description: body.description,
          nodeName: body.nodeName,
          labels: body.labels,
          taints: body.taints,
        };
        try {
          await store.create(record);
        } catch (error) {
          if (isK8sOnK8sError(error) && error.code === 'CONFLICT' && attempt < MAX_ID_ATTEMPTS) continue;
          throw error;
        }
        metrics.tokensMinted.inc();
        audit.info(
          {
            user: who.username,
            via: who.via,
            tokenId: record.id,
            expiresAt: record.expiresAt,
            uses: record.usesTotal,
            nodeName: record.nodeName,
          },
          'join token created',
        );
        const created: CreatedToken = {
          ...toTokenInfo(record),
          token: token.token,
          // The token goes in the environment, not argv, where `ps` would show it to every user.
          joinCommand: `K8S_JOIN_TOKEN=${token.token} k8s-join join --server ${settings.publicUrl} --ca-cert-hash ${settings.caCertHash}`,
        };
        res.status(201).json(created);
        return;
      }
    }),
  );

  app.get(
    '/v1/tokens',
    route(async (req, res) => {
      await admin(req, 'list');
      const records = [...(await store.list())].sort(
        (a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id),
      );
      res.json({ apiVersion: JOIN_API_VERSION, kind: 'TokenList', items: records.map(toTokenInfo) });
    }),
  );

  app.delete(
    '/v1/tokens/:id',
    route(async (req, res) => {
      const who = await admin(req, 'delete');
      const id = String(req.params.id);
      if (!/^[a-z0-9]{6}$/.test(id)) {
        throw new ValidationError(
          'INVALID_REQUEST',
          `Expected a token id of 6 characters a-z0-9, got ${JSON.stringify(id.slice(0, 40))}`,
        );
      }
      const record = await store.revoke(id);
      if (record === undefined) {
        throw new JoinError('TOKEN_NOT_FOUND', `no join token ${id}`, {
          hint: 'k8s-on-k8s token list shows the tokens there are.',
        });
      }
      metrics.tokensRevoked.inc();
      audit.info({ user: who.username, via: who.via, tokenId: id }, 'join token revoked');
      res.json(toTokenInfo(record));
    }),
  );

  // --- Errors -------------------------------------------------------------------------------------

  app.use((req, _res, next) => {
    next(new K8sOnK8sError('NOT_FOUND', `no route ${req.method} ${req.path}`));
  });

  app.use((error: unknown, req: Request, res: Response, next: NextFunction) => {
    const err = toK8sOnK8sError(error);
    const status = error instanceof KubernetesApiError ? 502 : httpStatusOf(err);
    if (status >= 500) {
      logger.error(
        { method: req.method, path: req.path, code: err.code, err: describeError(error) },
        'request failed',
      );
    }
    // Too late for an error body: express's own handler closes the connection.
    if (res.headersSent) {
      next(error);
      return;
    }
    res.status(status).json(errorBody(err));
  });

  return app;
}

// body-parser reports its own errors with a `type`; everything unexpected becomes a bare 500
// whose details go to the log only.
function toK8sOnK8sError(error: unknown): K8sOnK8sError {
  if (isK8sOnK8sError(error)) return error;
  const type = (error as { type?: unknown } | null)?.type;
  if (type === 'entity.too.large') {
    return new K8sOnK8sError('BODY_TOO_LARGE', `request bodies are limited to ${MAX_BODY_BYTES} bytes`);
  }
  if (type === 'entity.parse.failed') {
    return new ValidationError('INVALID_REQUEST', 'the request body is not valid JSON');
  }
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    return new ValidationError('INVALID_REQUEST', 'the request body must be UTF-8 JSON');
  }
  return new K8sOnK8sError('SERVER_ERROR', 'internal error', { cause: error });
}

/** A loggable description of an error and its causes; messages are secret-free by construction. */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 5; depth++) {
    if (current instanceof Error) {
      parts.push(isK8sOnK8sError(current) ? `${current.code}: ${current.message}` : current.message);
      current = current.cause;
    } else {
      parts.push(typeof current === 'string' ? current : `a thrown ${typeof current}`);
      current = undefined;
    }
  }
  return redactSecrets(parts.join(' <- '));
}
