// The join server's HTTP edge over real HTTP on 127.0.0.1:0: how thrown errors and failed probes
// become statuses and headers. (test/integration runs the whole server against a real apiserver.)
import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, describe, it } from 'node:test';
import express from 'express';
import pino from 'pino';
import { K8sOnK8sError, httpStatusOf, type ErrorCode } from '@k8s-on-k8s/shared';
import { UNAVAILABLE_RETRY_AFTER_SECONDS, errorHandler, route } from '../../src/join-server/http-edge.js';
import { createJoinServerMetrics } from '../../src/join-server/metrics.js';
import { rateLimitError } from '../../src/join-server/rate-limiter.js';
import { mountHealthRoutes } from '../../src/join-server/routes/health.js';

// Every code the protocol answers with 503: what the server depends on is failing.
const UNAVAILABLE: readonly ErrorCode[] = ['SERVER_UNREACHABLE', 'UPSTREAM_ERROR', 'STORE_ERROR'];

async function listen(app: express.Express): Promise<{ server: Server; url: string }> {
  const server = createServer(app);
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { server, url: `http://127.0.0.1:${(server.address() as AddressInfo).port}` };
}

describe('join server HTTP edge', () => {
  const logger = pino({ level: 'silent' });
  let url: string;
  let server: Server;
  let storeUp = true;

  before(async () => {
    const app = express();
    mountHealthRoutes(app, {
      store: {
        ping: () => (storeUp ? Promise.resolve() : Promise.reject(new Error('store file unreadable'))),
      },
      kube: { version: () => Promise.resolve('v1.37.2') },
      metrics: createJoinServerMetrics(),
      logger,
    });
    app.get(
      '/fail/:code',
      route((req) => Promise.reject(new K8sOnK8sError(req.params.code as ErrorCode, 'failed'))),
    );
    app.get('/busy', (_req, _res, next) => {
      next(rateLimitError(12_300, 'requests'));
    });
    app.use(errorHandler(logger));
    ({ server, url } = await listen(app));
  });
  after(async () => {
    await new Promise((resolve) => server.close(resolve));
  });

  it('answers every 503 with Retry-After, so the agent waits that long and tries again', async () => {
    for (const code of UNAVAILABLE) {
      assert.equal(httpStatusOf({ code }), 503, code);
      const answer = await fetch(`${url}/fail/${code}`);
      assert.equal(answer.status, 503, code);
      assert.equal(answer.headers.get('retry-after'), String(UNAVAILABLE_RETRY_AFTER_SECONDS), code);
    }
    // Not for failures that another try will not mend, nor over a rate limit's own wait.
    const broken = await fetch(`${url}/fail/SERVER_ERROR`);
    assert.equal(broken.status, 500);
    assert.equal(broken.headers.get('retry-after'), null);
    const busy = await fetch(`${url}/busy`);
    assert.equal(busy.status, 429);
    assert.equal(busy.headers.get('retry-after'), '13');
  });

  it('answers a not-ready /readyz with 503 and Retry-After, a ready one without', async () => {
    storeUp = false;
    const down = await fetch(`${url}/readyz`);
    assert.equal(down.status, 503);
    assert.equal(down.headers.get('retry-after'), String(UNAVAILABLE_RETRY_AFTER_SECONDS));
    assert.match(await down.text(), /not ready: token store/);
    storeUp = true;
    const up = await fetch(`${url}/readyz`);
    assert.equal(up.status, 200);
    assert.equal(up.headers.get('retry-after'), null);
  });
});
