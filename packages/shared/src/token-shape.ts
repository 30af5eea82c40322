import { randomInt } from 'node:crypto';
import { ValidationError } from './errors.js';

// Join tokens and kubeadm bootstrap tokens share one shape, `<id>.<secret>` over [a-z0-9]; only the
// lengths differ. This module is internal to the package (token.ts and bootstrap-token.ts use it).

const ALPHABET = 'abcdefghijklmnopqrstuvwxyz0123456789';
const LOWER_ALNUM = /^[a-z0-9]*$/;

/** The fixed lengths of a token's two parts, and the name used for it in messages. */
export interface TokenShape {
  readonly what: string;
  readonly idLength: number;
  readonly secretLength: number;
}

/** The two parts of a token; the id is public, the secret must never be logged. */
export interface TokenParts {
  readonly id: string;
  readonly secret: string;
}

/** Draws `length` characters of [a-z0-9] from the CSPRNG; randomInt avoids modulo bias. */
export function randomLowerAlnum(length: number): string {
  let out = '';
  for (let i = 0; i < length; i++) out += ALPHABET.charAt(randomInt(ALPHABET.length));
  return out;
}

// Describes what is wrong with one part without quoting it: the secret part must never reach a
// message, and a malformed id part may well be a secret pasted in the wrong place.
function describePart(part: string, name: string, length: number): string | undefined {
  if (part.length !== length) {
    return `the ${name} part must be ${length} characters of a-z and 0-9, got ${part.length} characters`;
  }
  if (!LOWER_ALNUM.test(part)) {
    return `the ${name} part must contain only lowercase a-z and 0-9 (no uppercase, symbols or non-ASCII)`;
  }
  return undefined;
}

/** Checks that a token part is well formed, naming the part but never quoting its value. */
export function checkTokenPart(shape: TokenShape, name: 'id' | 'secret', part: string): void {
  const problem = describePart(part, name, name === 'id' ? shape.idLength : shape.secretLength);
  if (problem !== undefined) {
    throw new ValidationError('INVALID_TOKEN_FORMAT', `Invalid ${shape.what}: ${problem}`, {
      hint: `A ${shape.what} looks like ${'a'.repeat(shape.idLength)}.${'0'.repeat(shape.secretLength)}`,
    });
  }
}

/** Parses `<id>.<secret>` of the given shape; surrounding whitespace (a pasted newline) is ignored. */
export function parseTokenOfShape(shape: TokenShape, text: string): TokenParts {
  const trimmed = text.trim();
  const parts = trimmed.split('.');
  const expected = `${shape.idLength} characters, a dot, then ${shape.secretLength} characters`;
  if (parts.length !== 2) {
    const found = parts.length === 1 ? 'no dot' : `${parts.length - 1} dots`;
    throw new ValidationError(
      'INVALID_TOKEN_FORMAT',
      `Invalid ${shape.what}: expected ${expected} (${shape.idLength + 1 + shape.secretLength} in all), got ${trimmed.length} characters with ${found}`,
    );
  }
  const [id = '', secret = ''] = parts;
  checkTokenPart(shape, 'id', id);
  checkTokenPart(shape, 'secret', secret);
  return { id, secret };
}
