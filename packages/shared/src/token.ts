import { createHash, randomBytes, timingSafeEqual } from 'node:crypto';
import { checkTokenPart, parseTokenOfShape, randomLowerAlnum, type TokenShape } from './token-shape.js';

// Join tokens are what an admin hands to a worker: `<id>.<secret>`, id [a-z0-9]{6}, secret
// [a-z0-9]{32} (32 × log2(36) ≈ 165 bits). The id is public and names the token in logs and in
// the store; the secret is only ever stored as a salted SHA-256 hash (why not a slow KDF: below).

const JOIN_TOKEN: TokenShape = { what: 'join token', idLength: 6, secretLength: 32 };

// Stored form: a salted SHA-256. The secret carries ~165 bits from the CSPRNG, so a slow KDF adds
// nothing against guessing (2^165 tries stay out of reach at any hash rate); the salt and hash only
// keep a leaked store from being a list of usable tokens. A slow KDF would instead cap the join
// server at a few dozen joins per second per core (scrypt N=2^14 measured ~36 ms here) and hand an
// unauthenticated caller a CPU amplifier. The scheme name is stored with each hash so it can change.
const SCHEME = 'sha256';
const SALT_BYTES = 16;
const HASH_BYTES = 32;
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

/** Hashes a token secret for storage as `sha256$<salt b64>$<hash b64>`, with a fresh salt. */
export function hashTokenSecret(secret: string): string {
  const salt = randomBytes(SALT_BYTES);
  return [SCHEME, salt.toString('base64'), saltedHash(salt, secret).toString('base64')].join('$');
}

/**
 * Checks a presented secret against a stored hash in constant time. A malformed stored string
 * yields false rather than an exception: the caller answers "token rejected" either way.
 */
export function verifyTokenSecret(secret: string, stored: string): boolean {
  const fields = stored.split('$');
  if (fields.length !== 3 || fields[0] !== SCHEME) return false;
  const [, saltText = '', hashText = ''] = fields;
  if (!BASE64.test(saltText) || !BASE64.test(hashText)) return false;
  const salt = Buffer.from(saltText, 'base64');
  const expected = Buffer.from(hashText, 'base64');
  if (salt.length < 8 || expected.length !== HASH_BYTES) return false;
  return timingSafeEqual(saltedHash(salt, secret), expected);
}

function saltedHash(salt: Buffer, secret: string): Buffer {
  return createHash('sha256').update(salt).update(secret, 'utf8').digest();
}
