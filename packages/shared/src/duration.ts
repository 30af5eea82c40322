import { ValidationError } from './errors.js';

const UNIT_MS = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 } as const;
const DURATION = /^(?:(\d+)(ms|s|m|h|d))+$/;
const PART = /(\d+)(ms|s|m|h|d)/g;

/**
 * Parses a Go-style duration such as `30m`, `1h30m`, `15s` or `500ms` into milliseconds.
 * `what` names the flag or field in the error, e.g. `--ttl`.
 */
export function parseDuration(text: string, what = 'duration'): number {
  const trimmed = text.trim();
  if (!DURATION.test(trimmed)) {
    throw new ValidationError(
      'INVALID_DURATION',
      `Expected ${what} to be a duration like 30m, 1h30m, 15s or 500ms, got ${JSON.stringify(text)}`,
    );
  }
  let total = 0;
  for (const [, amount, unit] of trimmed.matchAll(PART)) {
    total += Number(amount) * UNIT_MS[unit as keyof typeof UNIT_MS];
  }
  if (!Number.isSafeInteger(total)) {
    throw new ValidationError(
      'INVALID_DURATION',
      `Expected ${what} to be a reasonable duration, got ${JSON.stringify(text)}`,
    );
  }
  return total;
}

/** Formats milliseconds the way parseDuration reads them, largest units first: 5400000 → `1h30m`. */
export function formatDuration(ms: number): string {
  if (!Number.isFinite(ms) || ms < 0) throw new RangeError(`cannot format duration ${ms}`);
  if (ms === 0) return '0s';
  let rest = Math.round(ms);
  let out = '';
  for (const unit of ['d', 'h', 'm', 's', 'ms'] as const) {
    const size = UNIT_MS[unit];
    const count = Math.floor(rest / size);
    if (count > 0) {
      out += `${count}${unit}`;
      rest -= count * size;
    }
  }
  return out;
}

/** A time as Kubernetes writes timestamps (RFC 3339, UTC, whole seconds): `2030-01-01T00:00:00Z`. */
export function formatRfc3339(date: Date): string {
  return date.toISOString().replace(/\.\d{3}Z$/, 'Z');
}
