import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { validateNodeName } from '../src/node-name.js';
import { ValidationError } from '../src/errors.js';

function assertRejected(name: string, rule: RegExp): void {
  assert.throws(
    () => validateNodeName(name),
    (err: unknown) => {
      assert.ok(err instanceof ValidationError);
      assert.equal(err.code, 'INVALID_NODE_NAME');
      assert.match(err.message, rule);
      assert.ok(err.message.includes(JSON.stringify(name)), err.message);
      return true;
    },
  );
}

void describe('validateNodeName', () => {
  void it('accepts DNS-1123 subdomains and returns them unchanged', () => {
    for (const name of [
      'a',
      'worker-1',
      'node.example.com',
      '1-2.3',
      'a'.repeat(63),
      `${'a'.repeat(63)}.b`,
    ]) {
      assert.equal(validateNodeName(name), name);
    }
    const longest = [63, 63, 63, 61].map((n) => 'x'.repeat(n)).join('.');
    assert.equal(longest.length, 253);
    assert.equal(validateNodeName(longest), longest);
  });

  void it('rejects path tricks: "/", "..", leading and trailing dots', () => {
    assertRejected('a/b', /only lowercase/);
    assertRejected('../etc', /empty parts/);
    assertRejected('..', /empty parts/);
    assertRejected('a..b', /empty parts/);
    assertRejected('.a', /empty parts/);
    assertRejected('a.', /empty parts/);
  });

  void it('rejects newlines and shows them escaped', () => {
    assertRejected('node\nevil', /only lowercase/);
    assert.throws(() => validateNodeName('node\nevil'), /"node\\nevil"/);
  });

  void it('rejects %, uppercase, underscores, spaces, non-ASCII and edge hyphens', () => {
    for (const name of ['node%41', 'Node-1', 'node_1', 'node 1', 'nöde', '-node', 'node-', 'a.-b']) {
      assertRejected(name, /only lowercase/);
    }
  });

  void it('rejects empty and too-long names, naming the length rule', () => {
    assertRejected('', /must not be empty/);
    assertRejected('a'.repeat(254), /at most 253 characters, got 254/);
    assertRejected(`${'a'.repeat(64)}.b`, /at most 63 characters/);
  });

  void it('agrees with the DNS-1123 regex over a bounded set of generated names', () => {
    const reference = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;
    const alphabet = 'ab09-.A_/';
    let seed = 7;
    for (let i = 0; i < 2000; i++) {
      let name = '';
      const length = 1 + (i % 9);
      for (let j = 0; j < length; j++) {
        seed = (seed * 1103515245 + 12345) % 2147483648;
        name += alphabet.charAt(seed % alphabet.length);
      }
      let ok = true;
      try {
        validateNodeName(name);
      } catch {
        ok = false;
      }
      assert.equal(ok, reference.test(name), JSON.stringify(name));
    }
  });
});
