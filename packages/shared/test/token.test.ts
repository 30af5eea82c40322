import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { createHash } from 'node:crypto';
import {
  formatJoinToken,
  generateJoinToken,
  hashTokenSecret,
  parseJoinToken,
  verifyTokenSecret,
} from '../src/token.js';
import { ValidationError } from '../src/errors.js';

const ID = 'abc123';
const SECRET = '0123456789abcdefghijklmnopqrstuv';

// Asserts a ValidationError with the token code whose message never contains `secret`.
function assertRejects(text: string, secret: string, messagePart?: RegExp): void {
  assert.throws(
    () => parseJoinToken(text),
    (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.equal(err.code, 'INVALID_TOKEN_FORMAT');
      if (secret.length > 0)
        assert.ok(!err.message.includes(secret), `message leaks the secret: ${err.message}`);
      if (messagePart) assert.match(err.message, messagePart);
      return true;
    },
  );
}

void describe('generateJoinToken', () => {
  void it('produces 1,000 distinct tokens that all parse back to their parts', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const t = generateJoinToken();
      assert.match(t.token, /^[a-z0-9]{6}\.[a-z0-9]{32}$/);
      assert.equal(t.token, `${t.id}.${t.secret}`);
      assert.deepEqual(parseJoinToken(t.token), { id: t.id, secret: t.secret });
      assert.equal(formatJoinToken(t.id, t.secret), t.token);
      seen.add(t.secret);
    }
    assert.equal(seen.size, 1000);
  });

  void it('uses the whole alphabet (not, say, hex only)', () => {
    const chars = new Set<string>();
    for (let i = 0; i < 200; i++) for (const c of generateJoinToken().secret) chars.add(c);
    assert.equal(chars.size, 36);
  });
});

void describe('parseJoinToken', () => {
  void it('accepts a well-formed token and ignores surrounding whitespace', () => {
    assert.deepEqual(parseJoinToken(`${ID}.${SECRET}`), { id: ID, secret: SECRET });
    assert.deepEqual(parseJoinToken(`  ${ID}.${SECRET}\n`), { id: ID, secret: SECRET });
  });

  void it('rejects a missing dot, saying so without echoing the input', () => {
    assertRejects(`${ID}${SECRET}`, SECRET, /no dot/);
  });

  void it('rejects extra parts', () => {
    assertRejects(`${ID}.${SECRET}.x`, SECRET, /2 dots/);
    assertRejects(`${ID}..${SECRET}`, SECRET, /2 dots/);
  });

  void it('rejects wrong lengths and names the part and length', () => {
    assertRejects(`${ID}.${SECRET.slice(1)}`, SECRET.slice(1), /secret part must be 32 characters.*got 31/);
    assertRejects(`${ID}.${SECRET}a`, SECRET, /got 33/);
    assertRejects(`abc12.${SECRET}`, SECRET, /id part must be 6 characters.*got 5/);
    assertRejects(`${ID}.`, '', /secret part.*got 0/);
    assertRejects('', '', /no dot/);
  });

  void it('rejects uppercase and non-ASCII characters in either part', () => {
    const upper = SECRET.toUpperCase();
    assertRejects(`${ID}.${upper}`, upper, /lowercase/);
    assertRejects(`ABC123.${SECRET}`, SECRET, /id part.*lowercase/);
    const accented = `é${SECRET.slice(1)}`;
    assertRejects(`${ID}.${accented}`, accented, /lowercase/);
    const symbol = `${SECRET.slice(0, 31)}-`;
    assertRejects(`${ID}.${symbol}`, symbol, /lowercase/);
  });

  void it('never puts the secret in a message, for many malformed variants', () => {
    for (let i = 0; i < 200; i++) {
      const { id, secret } = generateJoinToken();
      const variants = [
        `${id}.${secret}x`,
        `${id}.${secret.slice(0, 31)}!`,
        `${id}.${secret.toUpperCase()}`,
        `${id}${secret}`,
        `${secret}.${id}`,
        `${id}.${secret}.${id}`,
      ];
      for (const v of variants) assertRejects(v, secret.slice(0, 31));
    }
  });
});

void describe('formatJoinToken', () => {
  void it('rejects a bad part without quoting the secret', () => {
    assert.throws(() => formatJoinToken(ID, 'short'), { code: 'INVALID_TOKEN_FORMAT' });
    assert.throws(
      () => formatJoinToken('bad', SECRET),
      (err: unknown) => err instanceof ValidationError && !err.message.includes(SECRET),
    );
  });
});

void describe('hashTokenSecret / verifyTokenSecret', () => {
  const stored = hashTokenSecret(SECRET);

  void it('stores a self-describing salted hash without the plaintext', () => {
    assert.match(stored, /^sha256\$[A-Za-z0-9+/]+={0,2}\$[A-Za-z0-9+/]+={0,2}$/);
    assert.ok(!stored.includes(SECRET));
  });

  void it('salts: the same secret hashes differently each time, and both verify', () => {
    const again = hashTokenSecret(SECRET);
    assert.notEqual(again, stored);
    assert.equal(verifyTokenSecret(SECRET, again), true);
  });

  void it('verifies the right secret and rejects others', () => {
    assert.equal(verifyTokenSecret(SECRET, stored), true);
    assert.equal(verifyTokenSecret(`${SECRET.slice(0, 31)}w`, stored), false);
    assert.equal(verifyTokenSecret('', stored), false);
  });

  void it('round-trips a handful of generated secrets and never cross-verifies', () => {
    const tokens = Array.from({ length: 4 }, () => generateJoinToken());
    const hashes = tokens.map((t) => hashTokenSecret(t.secret));
    tokens.forEach((t, i) => {
      hashes.forEach((h, j) => {
        assert.equal(verifyTokenSecret(t.secret, h), i === j);
      });
    });
  });

  void it('is SHA-256 over salt then secret, so another implementation can verify it', () => {
    const [, salt = '', hash = ''] = stored.split('$');
    const expected = createHash('sha256').update(Buffer.from(salt, 'base64')).update(SECRET).digest('base64');
    assert.equal(hash, expected);
    // The same hash under another salt does not verify.
    const otherSalt = Buffer.from('0123456789abcdef').toString('base64');
    assert.equal(verifyTokenSecret(SECRET, `sha256$${otherSalt}$${hash}`), false);
  });

  void it('returns false, not throws, for malformed stored strings', () => {
    const [, salt, hash] = stored.split('$') as [string, string, string];
    const malformed = [
      '',
      'garbage',
      SECRET,
      `md5$${salt}$${hash}`,
      `sha256$${salt}`,
      `sha256$${salt}$${hash}$extra`,
      `sha256$!!!$${hash}`,
      `sha256$${salt}$`,
      `sha256$${salt}$AAAA`, // too short a hash
      `sha256$AAAA$${hash}`, // too short a salt
    ];
    for (const m of malformed) assert.equal(verifyTokenSecret(SECRET, m), false, m);
  });
});
