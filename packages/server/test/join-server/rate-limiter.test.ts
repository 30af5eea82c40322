import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { RateLimiter } from '../../src/join-server/rate-limiter.js';

describe('RateLimiter', () => {
  it('allows a burst, then one request per 1/perSecond, per key', () => {
    let now = 0;
    const limiter = new RateLimiter({ burst: 3, perSecond: 2 }, () => now);
    assert.deepEqual(
      [1, 2, 3].map(() => limiter.take('a')),
      [0, 0, 0],
    );
    assert.equal(limiter.take('a'), 500, 'the 4th request waits half a second at 2/s');
    assert.equal(limiter.take('b'), 0, 'another key has its own bucket');
    now = 500;
    assert.equal(limiter.take('a'), 0);
    assert.equal(limiter.take('a'), 500);
  });

  it('refills no higher than the burst however long a key stays quiet', () => {
    let now = 0;
    const limiter = new RateLimiter({ burst: 2, perSecond: 1 }, () => now);
    now = 3_600_000;
    assert.deepEqual(
      [1, 2, 3].map(() => limiter.take('a') === 0),
      [true, true, false],
    );
  });

  it('charges failures into debt, so wait() refuses until they are paid off', () => {
    let now = 0;
    const limiter = new RateLimiter({ burst: 2, perSecond: 0.5 }, () => now);
    for (let i = 0; i < 4; i++) limiter.charge('ip');
    assert.equal(limiter.wait('ip'), 6000, 'two tokens in debt plus one to spend, at 0.5/s');
    now = 5999;
    assert.ok(limiter.wait('ip') > 0);
    now = 6000;
    assert.equal(limiter.wait('ip'), 0);
  });

  it('is switched off by perSecond 0', () => {
    const limiter = new RateLimiter({ burst: 0, perSecond: 0 }, () => 0);
    for (let i = 0; i < 1000; i++) assert.equal(limiter.take('a'), 0);
    assert.equal(limiter.disabled, true);
  });

  it('keeps memory bounded when many keys come and go', () => {
    let now = 0;
    const limiter = new RateLimiter({ burst: 1, perSecond: 1 }, () => now);
    for (let i = 0; i < 25_000; i++) {
      now += 1;
      limiter.take(`ip-${i}`);
    }
    const size = (limiter as unknown as { buckets: Map<string, unknown> }).buckets.size;
    assert.ok(size <= 10_000, `kept ${size} buckets`);
  });

  it('never forgets a key in debt to make room, however many new keys arrive', () => {
    let now = 0;
    const limiter = new RateLimiter({ burst: 10, perSecond: 1 / 6 }, () => now);
    for (let i = 0; i < 30; i++) limiter.charge('attacker');
    const owed = limiter.wait('attacker');
    assert.ok(owed > 0);
    // Filling the table with fresh keys, each charged once, must not reset the attacker's debt.
    for (let i = 0; i < 25_000; i++) limiter.charge(`filler-${String(i)}`);
    now += 1;
    assert.ok(limiter.wait('attacker') >= owed - 1000, `still owes ${String(limiter.wait('attacker'))}ms`);
    const size = (limiter as unknown as { buckets: Map<string, unknown> }).buckets.size;
    assert.ok(size <= 10_000, `kept ${String(size)} buckets`);
  });
});
