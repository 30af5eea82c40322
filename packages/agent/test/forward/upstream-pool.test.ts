import assert from 'node:assert/strict';
import { test } from 'node:test';
import { createUpstreamPool, type Upstream } from '../../src/forward/upstream-pool.js';

const at = (port: number) => ({ host: '10.0.0.1', port });
const keys = (list: readonly (Upstream | undefined)[]): (string | undefined)[] => list.map((u) => u?.key);

test('round-robin cycles through healthy upstreams and skips unhealthy ones', () => {
  const pool = createUpstreamPool('round-robin');
  pool.setUpstreams([at(1), at(2), at(3)]);
  assert.deepEqual(keys(Array.from({ length: 6 }, () => pool.pick())), [
    '10.0.0.1:1',
    '10.0.0.1:2',
    '10.0.0.1:3',
    '10.0.0.1:1',
    '10.0.0.1:2',
    '10.0.0.1:3',
  ]);
  const [, second] = pool.listed();
  assert.ok(second);
  pool.recordConnectFailure(second);
  const picks = keys(Array.from({ length: 4 }, () => pool.pick()));
  assert.ok(!picks.includes('10.0.0.1:2'));
  assert.equal(second.connectErrors, 1);
});

test('pick skips upstreams already tried for this client and gives up when none is left', () => {
  const pool = createUpstreamPool('round-robin');
  pool.setUpstreams([at(1), at(2)]);
  const tried = new Set<Upstream>();
  const first = pool.pick(tried);
  assert.ok(first);
  tried.add(first);
  const second = pool.pick(tried);
  assert.ok(second && second !== first);
  tried.add(second);
  assert.equal(pool.pick(tried), undefined);
});

test('least-connections picks the upstream with fewest active connections', () => {
  const pool = createUpstreamPool('least-connections');
  pool.setUpstreams([at(1), at(2), at(3)]);
  const [a, b, c] = pool.listed();
  assert.ok(a && b && c);
  a.active = 5;
  b.active = 1;
  c.active = 3;
  assert.equal(pool.pick(), b);
  b.active = 9;
  assert.equal(pool.pick(), c);
});

test('least-connections spreads ties instead of piling onto the first', () => {
  const pool = createUpstreamPool('least-connections');
  pool.setUpstreams([at(1), at(2)]);
  const picks = new Set(keys([pool.pick(), pool.pick()]));
  assert.equal(picks.size, 2);
});

test('an unhealthy upstream returns when a check succeeds; changes are reported once', () => {
  const pool = createUpstreamPool('round-robin');
  pool.setUpstreams([at(1)]);
  const [only] = pool.listed();
  assert.ok(only);
  pool.recordConnectFailure(only);
  assert.equal(pool.pick(), undefined);
  assert.equal(pool.recordCheck(only, false), false);
  assert.equal(pool.recordCheck(only, true), true);
  assert.equal(pool.recordCheck(only, true), false);
  assert.equal(pool.pick(), only);
});

test('setUpstreams keeps the state of upstreams that stay and retires the others', () => {
  const pool = createUpstreamPool('round-robin');
  pool.setUpstreams([at(1), at(2)]);
  const [one, two] = pool.listed();
  assert.ok(one && two);
  one.total = 7;
  two.active = 1;
  pool.setUpstreams([at(1), at(3), at(3)]);
  assert.deepEqual(keys(pool.listed()), ['10.0.0.1:1', '10.0.0.1:3']);
  assert.equal(pool.listed()[0], one);
  assert.equal(one.total, 7);
  // Removed but still carrying a connection: known (for metrics), never picked.
  assert.equal(two.listed, false);
  assert.ok(pool.known().includes(two));
  for (let i = 0; i < 4; i++) assert.notEqual(pool.pick(), two);
  two.active = 0;
  assert.ok(!pool.known().includes(two));
  // Listed again: the same object comes back only if it is still known; otherwise a fresh one.
  pool.setUpstreams([at(2)]);
  assert.equal(pool.listed()[0]?.listed, true);
});
