import { randomBytes, scryptSync, timingSafeEqual } from 'node:crypto';
import { checkTokenPart, parseTokenOfShape, randomLowerAlnum, type TokenShape } from './token-shape.js';

// Join tokens are what an admin hands to a worker: `<id>.<secret>`, id [a-z0-9]{6}, secret
// [a-z0-9]{32} (32 × log2(36) ≈ 165 bits). The id is public and names the token in logs and in
// the store; the secret is only ever stored as a salted scrypt hash.

const JOIN_TOKEN: TokenShape = { what: 'join token', idLength: 6, secretLength: 32 };

// Scrypt cost. The secret carries ~165 bits from the CSPRNG, so no cost factor is needed against
// guessing; the KDF only keeps a leaked store from being a list of usable tokens. N=2^14, r=8, p=1
// (16 MiB, ~35 ms on one core) lets a join server on 2 cores verify tens of joins per second.
// The parameters are stored with each hash, so they can change without invalidating old hashes.
const SCRYPT_N = 16384;
const SCRYPT_R = 8;
const SCRYPT_P = 1;
const SALT_BYTES = 16;
const HASH_BYTES = 32;
// Bounds for parameters read back from a store: a corrupt or hostile entry must not make
// verification allocate gigabytes or spin for seconds.
const MAX_N = 1 << 17;
const MAX_R = 16;
const MAX_P = 4;
const BASE64 = /^[A-Za-z0-9+/]+={0,2}$/;

/** A freshly generated join token and its parts. */
export interface JoinToken {
  readonly id: string;
  readonly secret: string;
  readonly token: string;
}

/** Mints a new join token from the CSPRNG. */
export function generateJoinToken(): JoinToken {
  const id = randomLowerAlnum(JOIN_TOKEN.idLength);
  const secret = randomLowerAlnum(JOIN_TOKEN.secretLength);
  return { id, secret, token: `${id}.${secret}` };
}

/** Splits a join token typed by a person; errors say what is wrong but never echo the secret. */
export function parseJoinToken(text: string): { id: string; secret: string } {
  return parseTokenOfShape(JOIN_TOKEN, text);
}

/** Joins validated parts into the `<id>.<secret>` form printed in join commands. */
export function formatJoinToken(id: string, secret: string): string {
  checkTokenPart(JOIN_TOKEN, 'id', id);
  checkTokenPart(JOIN_TOKEN, 'secret', secret);
  return `${id}.${secret}`;
}

/** Hashes a token secret for storage as `scrypt$N$r$p$<salt b64>$<hash b64>`, with a fresh salt. */
export function hashTokenSecret(secret: string): string {
  const salt = randomBytes(SALT_BYTES);
  const hash = scryptSync(secret, salt, HASH_BYTES, { N: SCRYPT_N, r: SCRYPT_R, p: SCRYPT_P });
  return ['scrypt', SCRYPT_N, SCRYPT_R, SCRYPT_P, salt.toString('base64'), hash.toString('base64')].join('$');
}

function parsePositiveInt(text: string, max: number): number | undefined {
  if (!/^[1-9]\d{0,9}$/.test(text)) return undefined;
  const value = Number(text);
  return value <= max ? value : undefined;
}

/**
 * Checks a presented secret against a stored hash in constant time. A malformed stored string
 * yields false rather than an exception: the caller answers "token rejected" either way.
 */
export function verifyTokenSecret(secret: string, stored: string): boolean {
  const fields = stored.split('$');
  if (fields.length !== 6 || fields[0] !== 'scrypt') return false;
  const [, nText = '', rText = '', pText = '', saltText = '', hashText = ''] = fields;
  const N = parsePositiveInt(nText, MAX_N);
  const r = parsePositiveInt(rText, MAX_R);
  const p = parsePositiveInt(pText, MAX_P);
  if (N === undefined || r === undefined || p === undefined || (N & (N - 1)) !== 0 || N < 2) return false;
  if (!BASE64.test(saltText) || !BASE64.test(hashText)) return false;
  const salt = Buffer.from(saltText, 'base64');
  const expected = Buffer.from(hashText, 'base64');
  if (salt.length < 8 || expected.length < 16 || expected.length > 64) return false;
  let actual: Buffer;
  try {
    actual = scryptSync(secret, salt, expected.length, { N, r, p, maxmem: 256 * N * r + 1024 * 1024 });
  } catch {
    return false;
  }
  return timingSafeEqual(actual, expected);
}
