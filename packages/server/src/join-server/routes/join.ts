import type { Router } from 'express';
import type { JoinService } from '../join-service.js';
import { bearerToken, clientIp, route } from '../http-edge.js';

/** `POST /v1/join`: the join protocol over HTTP. */
export function mountJoinRoutes(router: Router, joins: JoinService): void {
  router.post(
    '/v1/join',
    route(async (req, res) => {
      const body: unknown = req.body;
      res.json(await joins.join({ presentedToken: bearerToken(req), body, ip: clientIp(req) }));
    }),
  );
}
