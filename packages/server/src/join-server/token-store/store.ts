import { K8sOnK8sError, type TokenInfo } from '@k8s-on-k8s/shared';

// What every join-token store keeps and promises. A record holds the secret only as a salted hash
// (hashTokenSecret); revoked tokens stay listed until they would have expired, so a join with one
// is audited as "revoked" rather than "unknown".

/** A stored join token: never its secret, only the hash. */
export interface JoinTokenRecord {
  readonly id: string;
  readonly secretHash: string;
  readonly createdAt: string;
  readonly expiresAt: string;
  /** How many joins the token allows; 0 means unlimited. */
  readonly usesTotal: number;
  /** How many joins it has paid for so far (not counted for unlimited tokens). */
  readonly usesCount: number;
  readonly revoked: boolean;
  readonly description?: string | undefined;
  readonly nodeName?: string | undefined;
  readonly labels?: Readonly<Record<string, string>> | undefined;
  readonly taints?: readonly JoinTokenTaint[] | undefined;
}

/** A taint the joining node registers with (from the token, set by the admin). */
export interface JoinTokenTaint {
  readonly key: string;
  readonly value?: string | undefined;
  readonly effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute';
}

/** Why a token cannot be used now; `usable` when it can. */
export type JoinTokenState = 'usable' | 'expired' | 'revoked' | 'exhausted';

/** The answer of JoinTokenStore.consume: the record as it is after the use, or why not. */
export type ConsumeResult =
  | { readonly ok: true; readonly record: JoinTokenRecord }
  | { readonly ok: false; readonly reason: Exclude<JoinTokenState, 'usable'> | 'not-found' };

/**
 * A place to keep join tokens. `consume` is the only operation that needs care: it must be atomic
 * with respect to every other consume of the same token, in this process and (for shared stores)
 * in every replica, so that a token with N uses yields at most N joins.
 */
export interface JoinTokenStore {
  /** Adds a new token; fails with CONFLICT if the id is taken. */
  create(record: JoinTokenRecord): Promise<void>;
  get(id: string): Promise<JoinTokenRecord | undefined>;
  list(): Promise<readonly JoinTokenRecord[]>;
  /** Marks a token revoked; resolves with the updated record, or undefined if there is none. */
  revoke(id: string): Promise<JoinTokenRecord | undefined>;
  /** Atomically checks that the token is usable at `now` and pays for one join with it. */
  consume(id: string, now: Date): Promise<ConsumeResult>;
  /** Resolves when the store answers; used by /readyz. */
  ping(): Promise<void>;
  close(): Promise<void>;
}

/** Whether a token can be used at `now`; revocation wins over expiry, expiry over exhaustion. */
export function joinTokenState(record: JoinTokenRecord, now: Date): JoinTokenState {
  if (record.revoked) return 'revoked';
  if (Date.parse(record.expiresAt) <= now.getTime()) return 'expired';
  if (record.usesTotal !== 0 && record.usesCount >= record.usesTotal) return 'exhausted';
  return 'usable';
}

/** The record after paying for `count` joins, or why it cannot pay for them all. */
export function spendJoinToken(
  record: JoinTokenRecord,
  now: Date,
  count = 1,
): { record: JoinTokenRecord } | { reason: Exclude<JoinTokenState, 'usable'> } {
  const state = joinTokenState(record, now);
  if (state !== 'usable') return { reason: state };
  if (record.usesTotal === 0) return { record };
  if (record.usesCount + count > record.usesTotal) return { reason: 'exhausted' };
  return { record: { ...record, usesCount: record.usesCount + count } };
}

/** How many more joins a token allows; null when unlimited. */
export function usesLeft(record: JoinTokenRecord): number | null {
  return record.usesTotal === 0 ? null : Math.max(0, record.usesTotal - record.usesCount);
}

/** The admin API's view of a record: everything but the hash. */
export function toTokenInfo(record: JoinTokenRecord): TokenInfo {
  const info: TokenInfo = {
    id: record.id,
    expiresAt: record.expiresAt,
    usesLeft: usesLeft(record),
    usesTotal: record.usesTotal,
    revoked: record.revoked,
    createdAt: record.createdAt,
  };
  if (record.description !== undefined) info.description = record.description;
  if (record.nodeName !== undefined) info.nodeName = record.nodeName;
  return info;
}

/** Whether a record may be dropped from the store: expired for longer than `retentionMs`. */
export function isJoinTokenPrunable(record: JoinTokenRecord, now: Date, retentionMs: number): boolean {
  return Date.parse(record.expiresAt) + retentionMs <= now.getTime();
}

const TOKEN_ID = /^[a-z0-9]{6}$/;
const TAINT_EFFECTS: readonly string[] = ['NoSchedule', 'PreferNoSchedule', 'NoExecute'];

function isRecordObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function isTimestamp(value: unknown): value is string {
  return typeof value === 'string' && !Number.isNaN(Date.parse(value));
}

function isCount(value: unknown): value is number {
  return typeof value === 'number' && Number.isSafeInteger(value) && value >= 0;
}

function isOptionalString(value: unknown): value is string | undefined {
  return value === undefined || typeof value === 'string';
}

function isStringMap(value: unknown): value is Record<string, string> {
  return isRecordObject(value) && Object.values(value).every((v) => typeof v === 'string');
}

function isTaint(value: unknown): value is JoinTokenTaint {
  return (
    isRecordObject(value) &&
    typeof value.key === 'string' &&
    isOptionalString(value.value) &&
    typeof value.effect === 'string' &&
    TAINT_EFFECTS.includes(value.effect)
  );
}

// Field checks in the order they are reported; the first failing one names the field.
const FIELD_CHECKS: readonly (readonly [string, (value: unknown) => boolean])[] = [
  ['id', (v) => typeof v === 'string' && TOKEN_ID.test(v)],
  ['secretHash', (v) => typeof v === 'string' && v.length > 0],
  ['createdAt', isTimestamp],
  ['expiresAt', isTimestamp],
  ['usesTotal', isCount],
  ['usesCount', isCount],
  ['revoked', (v) => typeof v === 'boolean'],
  ['description', isOptionalString],
  ['nodeName', isOptionalString],
  ['labels', (v) => v === undefined || isStringMap(v)],
  ['taints', (v) => v === undefined || (Array.isArray(v) && v.every(isTaint))],
];

/** Validates a record read back from a store; `source` names the file or object in the error. */
export function parseJoinTokenRecord(value: unknown, source: string): JoinTokenRecord {
  const fail = (what: string): never => {
    throw new K8sOnK8sError('STORE_ERROR', `${source}: invalid join token record: ${what}`);
  };
  if (!isRecordObject(value)) return fail('expected an object');
  for (const [field, check] of FIELD_CHECKS) {
    if (!check(value[field])) fail(`field ${field} is missing or malformed`);
  }
  const record: Record<string, unknown> = {};
  for (const [field] of FIELD_CHECKS) if (value[field] !== undefined) record[field] = value[field];
  return Object.freeze(record as unknown as JoinTokenRecord);
}
