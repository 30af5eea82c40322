// The forwarder's active health checks: every listed upstream probed on an interval, results fed to
// the pool. A round still running when the next is due is skipped rather than stacked.
import { checkUpstream, type HealthCheck } from './upstream-health-check.js';
import type { Upstream, UpstreamPool } from './upstream-pool.js';

/** What the loop probes, how, and whom it tells. */
export interface HealthCheckLoopOptions {
  readonly pool: UpstreamPool;
  readonly healthCheck: HealthCheck;
  readonly timeoutMs: number;
  readonly intervalMs: number;
  /** An upstream entered or left rotation. */
  readonly onChange: (upstream: Upstream) => void;
}

/** Starts and stops the periodic checks; `runNow` checks at once (e.g. after a new upstream list). */
export interface HealthCheckLoop {
  start(): void;
  stop(): void;
  /** True once start() has been called, also after stop(). */
  readonly started: boolean;
  runNow(): Promise<void>;
}

/** Creates a stopped loop. */
export function createHealthCheckLoop(options: HealthCheckLoopOptions): HealthCheckLoop {
  let timer: NodeJS.Timeout | undefined;
  let checking = false;

  async function runNow(): Promise<void> {
    if (checking) return;
    checking = true;
    try {
      const listed = options.pool.listed();
      const results = await Promise.all(
        listed.map((u) => checkUpstream(u.address, options.healthCheck, options.timeoutMs)),
      );
      listed.forEach((upstream, i) => {
        if (options.pool.recordCheck(upstream, results[i] === true)) options.onChange(upstream);
      });
    } finally {
      checking = false;
    }
  }

  return {
    start() {
      timer = setInterval(() => void runNow(), options.intervalMs);
      timer.unref();
      void runNow();
    },
    stop() {
      clearInterval(timer);
    },
    get started() {
      return timer !== undefined;
    },
    runNow,
  };
}
