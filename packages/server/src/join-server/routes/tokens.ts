import type { Request, Router } from 'express';
import type { AdminCaller, TokenService } from '../token-service.js';
import { bearerToken, clientIp, presentedCertificate, route } from '../http-edge.js';

/** `/v1/tokens`: the admin API (create, list, revoke) over HTTP. */
export function mountTokenRoutes(router: Router, tokens: TokenService): void {
  router.post(
    '/v1/tokens',
    route(async (req, res) => {
      const body: unknown = req.body;
      res.status(201).json(await tokens.create(caller(req), body));
    }),
  );
  router.get(
    '/v1/tokens',
    route(async (req, res) => {
      res.json(await tokens.list(caller(req)));
    }),
  );
  router.delete(
    '/v1/tokens/:id',
    route(async (req, res) => {
      res.json(await tokens.revoke(caller(req), String(req.params.id)));
    }),
  );
}

function caller(req: Request): AdminCaller {
  return {
    credentials: { certificate: presentedCertificate(req), bearerToken: bearerToken(req) },
    ip: clientIp(req),
  };
}
