import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import {
  DNS_LABEL_MAX_LENGTH,
  isDns1035Label,
  isDns1123Label,
  isDns1123Subdomain,
} from '../src/dns-names.js';

const ALPHABET = 'abz09-.A_';

function randomText(random: () => number): string {
  const length = Math.floor(random() * 12);
  let text = '';
  for (let i = 0; i < length; i++) text += ALPHABET.charAt(Math.floor(random() * ALPHABET.length));
  return text;
}

// A small deterministic PRNG, so a failure names an input that can be replayed.
function lcg(seed: number): () => number {
  let state = seed;
  return () => {
    state = (state * 1_103_515_245 + 12_345) % 2 ** 31;
    return state / 2 ** 31;
  };
}

void describe('DNS name rules', () => {
  void it('agree with the apimachinery regular expressions on random inputs', () => {
    const label1123 = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?$/;
    const label1035 = /^[a-z]([-a-z0-9]*[a-z0-9])?$/;
    const random = lcg(42);
    for (let i = 0; i < 5000; i++) {
      const text = randomText(random);
      assert.equal(isDns1123Label(text), label1123.test(text), JSON.stringify(text));
      assert.equal(isDns1035Label(text), label1035.test(text), JSON.stringify(text));
      const subdomain = text.length > 0 && text.split('.').every((part) => label1123.test(part));
      assert.equal(isDns1123Subdomain(text), subdomain, JSON.stringify(text));
    }
  });

  void it('tell a namespace (may start with a digit) from a Service name (may not)', () => {
    assert.equal(isDns1123Label('1st-team'), true);
    assert.equal(isDns1035Label('1st-team'), false);
    assert.equal(isDns1035Label('team-1'), true);
  });

  void it('enforce the length limits', () => {
    assert.equal(isDns1123Label('a'.repeat(DNS_LABEL_MAX_LENGTH)), true);
    assert.equal(isDns1123Label('a'.repeat(DNS_LABEL_MAX_LENGTH + 1)), false);
    assert.equal(isDns1035Label('a'.repeat(41), 40), false);
    assert.equal(isDns1123Subdomain(`${'a'.repeat(63)}.${'b'.repeat(63)}`), true);
    assert.equal(isDns1123Subdomain(`${'a'.repeat(64)}.b`), false);
    assert.equal(isDns1123Subdomain(Array.from({ length: 64 }, () => 'abc').join('.')), false);
  });
});
