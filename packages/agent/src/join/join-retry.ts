import { formatDuration, isK8sOnK8sError, JoinError } from '@k8s-on-k8s/shared';
import { JoinServerBusyError } from './join-client.js';

// `--retry`: at first boot the join server may be busy (429) or briefly failing (503) while a
// fleet comes up, or not reachable yet. The retry lives here, not in the first-boot unit
// (Restart=on-failure): only the agent sees Retry-After and knows a busy server from a rejected
// token or a wrong pin, which are never retried. A failed join spends no token use, so trying
// again is safe.

/** How long to keep trying, and the clock and sleep to do it with. */
export interface RetryPolicy {
  /** 0: a single attempt. */
  readonly budgetMs: number;
  readonly now: () => Date;
  readonly sleep: (ms: number) => Promise<void>;
  readonly out: (line: string) => void;
  /** 0 ≤ random() < 1, for the backoff's jitter. */
  readonly random?: () => number;
}

const MAX_BACKOFF_MS = 30_000;

/** True for failures worth another attempt: a busy or failing server, or one not reachable yet. */
export function isTransientJoinFailure(error: unknown): boolean {
  return (
    error instanceof JoinServerBusyError || (isK8sOnK8sError(error) && error.code === 'SERVER_UNREACHABLE')
  );
}

/** Runs `attempt` until it succeeds, fails for good, or the budget would be overrun by waiting. */
export async function retryTransient<T>(attempt: () => Promise<T>, policy: RetryPolicy): Promise<T> {
  const started = policy.now().getTime();
  const random = policy.random ?? Math.random;
  for (let n = 1; ; n++) {
    try {
      return await attempt();
    } catch (error) {
      if (!isTransientJoinFailure(error) || !(error instanceof JoinError)) throw error;
      const elapsed = policy.now().getTime() - started;
      const wait =
        (error instanceof JoinServerBusyError ? error.retryAfterMs : undefined) ??
        Math.min(MAX_BACKOFF_MS, 1000 * 2 ** (n - 1)) * (0.5 + random() / 2);
      if (policy.budgetMs <= 0) {
        throw withHint(
          error,
          `${error.hint ?? 'the join server is busy or not reachable'}; pass --retry 10m to have k8s-join wait and try again`,
        );
      }
      if (elapsed + wait > policy.budgetMs) {
        throw withHint(
          error,
          `gave up after ${n} attempts in ${formatDuration(elapsed)} (--retry ${formatDuration(policy.budgetMs)})${error.hint === undefined ? '' : `; ${error.hint}`}`,
        );
      }
      policy.out(
        `[retry] ${error.code}: ${error.message}; attempt ${n}; next in ${formatDuration(Math.round(wait))}`,
      );
      await policy.sleep(Math.round(wait));
    }
  }
}

function withHint(error: JoinError, hint: string): JoinError {
  const again =
    error instanceof JoinServerBusyError
      ? new JoinServerBusyError(error.code, error.message, error.retryAfterMs, { cause: error.cause, hint })
      : new JoinError(error.code, error.message, { cause: error.cause, hint });
  return again;
}
