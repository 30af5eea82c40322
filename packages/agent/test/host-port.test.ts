import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ValidationError } from '@k8s-on-k8s/shared';
import { formatHostPort, parseHostPort } from '../src/host-port.js';

test('parses names, IPv4 and bracketed IPv6, and formats them back', () => {
  const cases: [string, string, number][] = [
    ['10.199.199.199:443', '10.199.199.199', 443],
    ['api.example.com:6443', 'api.example.com', 6443],
    ['localhost:1', 'localhost', 1],
    ['[fd00::1]:443', 'fd00::1', 443],
    ['[::1]:65535', '::1', 65535],
  ];
  for (const [text, host, port] of cases) {
    const parsed = parseHostPort(text, '--upstream');
    assert.deepEqual(parsed, { host, port });
    assert.ok(Object.isFrozen(parsed));
    assert.equal(formatHostPort(parsed), text);
  }
});

test('every port from 1 to 65535 round-trips; 0 only where allowed', () => {
  for (let port = 1; port <= 65535; port += 97) {
    assert.equal(parseHostPort(`127.0.0.1:${port}`, '--upstream').port, port);
  }
  assert.throws(() => parseHostPort('127.0.0.1:0', '--upstream'), ValidationError);
  assert.equal(parseHostPort('127.0.0.1:0', '--listen', { allowPortZero: true }).port, 0);
});

test('rejects what is not HOST:PORT, naming the flag and the value', () => {
  for (const bad of [
    'x',
    '',
    ':443',
    'host:',
    'host:65536',
    'host:-1',
    'fd00::1:443',
    '[nothex]:443',
    'a b:1',
    'host:44x',
    '[::1]',
  ]) {
    assert.throws(
      () => parseHostPort(bad, '--listen'),
      (error: unknown) =>
        error instanceof ValidationError &&
        error.code === 'INVALID_ARGUMENT' &&
        error.message.startsWith('Expected --listen to be HOST:PORT') &&
        error.message.endsWith(`got ${JSON.stringify(bad)}`),
      bad,
    );
  }
});
