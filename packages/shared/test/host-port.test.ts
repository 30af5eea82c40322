import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { formatHostPort, parseHostPort } from '../src/host-port.js';
import { ValidationError } from '../src/errors.js';

void describe('parseHostPort / formatHostPort', () => {
  void it('parses IPv4, bracketed IPv6 and DNS names, and formats them back', () => {
    const cases: [string, string, number][] = [
      ['10.0.0.1:6443', '10.0.0.1', 6443],
      ['[fd00::1]:443', 'fd00::1', 443],
      ['[::1]:1', '::1', 1],
      ['api.example.com:65535', 'api.example.com', 65535],
      ['localhost:8080', 'localhost', 8080],
      ['API-1.Example.com:30443', 'API-1.Example.com', 30443],
    ];
    for (const [text, host, port] of cases) {
      const parsed = parseHostPort(text);
      assert.deepEqual(parsed, { host, port });
      assert.ok(Object.isFrozen(parsed));
      assert.equal(formatHostPort(parsed), text);
    }
  });

  void it('rejects malformed addresses, naming the field and the value', () => {
    const bad = [
      '',
      '10.0.0.1',
      ':443',
      '10.0.0.1:',
      '10.0.0.1:0',
      '10.0.0.1:65536',
      '10.0.0.1:99999',
      '10.0.0.1:-1',
      '10.0.0.1:44a',
      'fd00::1:443',
      '[fd00::1]',
      '[10.0.0.1]:443',
      '[nothex::g]:443',
      '999.1.1.1:443',
      '10.1:443',
      'host_name:443',
      '-host:443',
      'host-:443',
      'a..b:443',
      'https://a:443',
      ' a:443',
      'a:443\n',
      `${'a'.repeat(64)}.com:443`,
    ];
    for (const text of bad) {
      assert.throws(
        () => parseHostPort(text, 'upstream'),
        (err: unknown) =>
          err instanceof ValidationError &&
          err.code === 'INVALID_ARGUMENT' &&
          err.message.includes('upstream') &&
          err.message.includes(JSON.stringify(text)),
        JSON.stringify(text),
      );
    }
  });

  void it('allows port 0 only when asked (a listening address)', () => {
    assert.throws(() => parseHostPort('127.0.0.1:0'), { code: 'INVALID_ARGUMENT' });
    assert.deepEqual(parseHostPort('127.0.0.1:0', 'listen', { allowPortZero: true }), {
      host: '127.0.0.1',
      port: 0,
    });
  });

  void it('round-trips every port over a bounded range', () => {
    for (let port = 1; port <= 65535; port += 97) {
      for (const host of ['192.168.1.2', 'fe80::1', 'node.example']) {
        const text = formatHostPort({ host, port });
        assert.deepEqual(parseHostPort(text), { host, port });
      }
    }
  });
});
