import type { Router } from 'express';
import type { Logger } from 'pino';
import { describeError } from '@k8s-on-k8s/shared';
import type { KubernetesApi } from '../../kube/api.js';
import type { JoinServerMetrics } from '../metrics.js';
import type { JoinTokenStore } from '../token-store/store.js';
import { UNAVAILABLE_RETRY_AFTER_SECONDS, route } from '../http-edge.js';

const READY_TIMEOUT_MS = 3000;

/** What the probes look at. */
export interface HealthDeps {
  readonly store: Pick<JoinTokenStore, 'ping'>;
  readonly kube: Pick<KubernetesApi, 'version'>;
  readonly metrics: Pick<JoinServerMetrics, 'registry'>;
  /** Where the reasons go: the probe's answer names what is not ready, never the apiserver's words. */
  readonly logger: Pick<Logger, 'warn'>;
  /** False once shutdown has begun, so /readyz takes the replica out of its Service first. */
  readonly accepting?: (() => boolean) | undefined;
}

/** `/healthz` (the process answers), `/readyz` (store and hosted apiserver answer), `/metrics`. */
export function mountHealthRoutes(router: Router, deps: HealthDeps): void {
  router.get('/healthz', (_req, res) => {
    res.type('text/plain').send('ok');
  });
  router.get(
    '/readyz',
    route(async (_req, res) => {
      const problems = await readinessProblems(deps);
      if (problems.length > 0) {
        // Anyone may ask /readyz: an apiserver error names users, namespaces and resources.
        deps.logger.warn({ problems: problems.map((p) => `${p.what}: ${p.detail}`) }, 'not ready');
        res
          .status(503)
          .set('Retry-After', String(UNAVAILABLE_RETRY_AFTER_SECONDS))
          .type('text/plain')
          .send(`not ready: ${problems.map((p) => p.what).join(', ')} (details in the join server's log)\n`);
        return;
      }
      res.type('text/plain').send('ok');
    }),
  );
  router.get(
    '/metrics',
    route(async (_req, res) => {
      res.type(deps.metrics.registry.contentType).send(await deps.metrics.registry.metrics());
    }),
  );
}

/** What keeps this replica from serving joins now, and why; empty when ready. */
export async function readinessProblems(
  deps: Omit<HealthDeps, 'logger' | 'metrics'>,
): Promise<{ what: string; detail: string }[]> {
  const problems: { what: string; detail: string }[] = [];
  if (deps.accepting?.() === false) problems.push({ what: 'shutting down', detail: 'SIGTERM received' });
  const withTimeout = (what: string, check: Promise<unknown>): Promise<void> =>
    Promise.race([
      check.then(() => undefined),
      new Promise<never>((_resolve, reject) =>
        setTimeout(() => {
          reject(new Error(`no answer within ${READY_TIMEOUT_MS}ms`));
        }, READY_TIMEOUT_MS).unref(),
      ),
    ]).catch((error: unknown) => {
      problems.push({ what, detail: describeError(error) });
    });
  await Promise.all([
    withTimeout('token store', deps.store.ping()),
    withTimeout('hosted apiserver', deps.kube.version()),
  ]);
  return problems;
}
