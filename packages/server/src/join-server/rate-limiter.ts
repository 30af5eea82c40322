// Token buckets per key (a client IP, a join token id): `burst` requests at once, then `perSecond`
// on average. Time is injected so tests need no sleeping. Memory stays bounded: when there are
// many keys, full buckets (keys that have been quiet long enough) are forgotten, which changes
// nothing since a new bucket starts full; if that is not enough, the least-penalized go next.

import { JoinError } from '@k8s-on-k8s/shared';

/** A bucket's size and refill rate; perSecond 0 disables the limit. */
export interface RateLimit {
  readonly burst: number;
  readonly perSecond: number;
}

interface Bucket {
  tokens: number;
  at: number;
}

const MAX_KEYS = 10_000;

/** Keyed token-bucket rate limiter. */
export class RateLimiter {
  private readonly buckets = new Map<string, Bucket>();

  constructor(
    private readonly limit: RateLimit,
    private readonly nowMs: () => number,
  ) {}

  /** Whether the limit is switched off. */
  get disabled(): boolean {
    return this.limit.perSecond <= 0;
  }

  /** Milliseconds until `key` may spend one token; 0 when it may now. Spends nothing. */
  wait(key: string): number {
    if (this.disabled) return 0;
    const bucket = this.refill(key);
    // The epsilon absorbs floating-point dust from many small refills.
    const missing = 1 - bucket.tokens;
    return missing <= 1e-9 ? 0 : Math.ceil((missing / this.limit.perSecond) * 1000);
  }

  /** Spends one token of `key` if there is one; returns 0, or the milliseconds to wait instead. */
  take(key: string): number {
    const wait = this.wait(key);
    if (wait === 0 && !this.disabled) this.refill(key).tokens -= 1;
    return wait;
  }

  /** Spends one token of `key` even if that leaves it in debt (for charging a failure after the fact). */
  charge(key: string): void {
    if (this.disabled) return;
    this.refill(key).tokens -= 1;
  }

  private refill(key: string): Bucket {
    const now = this.nowMs();
    let bucket = this.buckets.get(key);
    if (bucket === undefined) {
      if (this.buckets.size >= MAX_KEYS) this.forgetFullBuckets(now);
      bucket = { tokens: this.limit.burst, at: now };
      this.buckets.set(key, bucket);
      return bucket;
    }
    const elapsed = Math.max(0, now - bucket.at) / 1000;
    bucket.tokens = Math.min(this.limit.burst, bucket.tokens + elapsed * this.limit.perSecond);
    bucket.at = now;
    return bucket;
  }

  private forgetFullBuckets(now: number): void {
    const tokens = (bucket: Bucket): number =>
      Math.min(
        this.limit.burst,
        bucket.tokens + (Math.max(0, now - bucket.at) / 1000) * this.limit.perSecond,
      );
    for (const [key, bucket] of this.buckets) {
      if (tokens(bucket) >= this.limit.burst) this.buckets.delete(key);
    }
    if (this.buckets.size < MAX_KEYS) return;
    // Everyone is active: forget half, those with the most tokens first. Forgetting a bucket gives
    // it a full one, so the deepest debts go last: filling the table with fresh keys (cheap for an
    // attacker with many addresses or token ids) must not wipe out the attacker's own penalty.
    const byTokens = [...this.buckets].sort(([, a], [, b]) => tokens(b) - tokens(a));
    for (const [key] of byTokens.slice(0, byTokens.length - MAX_KEYS / 2)) this.buckets.delete(key);
  }
}

/** A refusal for going over a limit; the HTTP edge turns retryAfterSeconds into Retry-After. */
export class RateLimitError extends JoinError {
  constructor(
    readonly retryAfterSeconds: number,
    what: string,
  ) {
    super('RATE_LIMITED', `too many ${what}; retry in ${retryAfterSeconds}s`, {
      hint: `Wait ${retryAfterSeconds}s before retrying.`,
    });
    this.name = 'RateLimitError';
  }
}

/** The error for a wait of `waitMs` (rounded up to whole seconds, at least one). */
export function rateLimitError(waitMs: number, what: string): RateLimitError {
  return new RateLimitError(Math.max(1, Math.ceil(waitMs / 1000)), what);
}
