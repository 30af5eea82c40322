import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { K8sOnK8sError } from '@k8s-on-k8s/shared';
import {
  isJoinTokenPrunable,
  joinTokenState,
  parseJoinTokenRecord,
  spendJoinToken,
  toTokenInfo,
  type JoinTokenRecord,
} from '../../../src/join-server/token-store/store.js';

const NOW = new Date('2030-01-01T12:00:00Z');
const RECORD: JoinTokenRecord = {
  id: 'abc123',
  secretHash: 'sha256$c2FsdHNhbHQ=$aGFzaA==',
  createdAt: '2030-01-01T11:00:00Z',
  expiresAt: '2030-01-01T13:00:00Z',
  usesTotal: 2,
  usesCount: 0,
  revoked: false,
};

describe('join token records', () => {
  it('are usable until expiry, revocation or exhaustion, revocation reported first', () => {
    assert.equal(joinTokenState(RECORD, NOW), 'usable');
    assert.equal(joinTokenState(RECORD, new Date('2030-01-01T13:00:00Z')), 'expired');
    assert.equal(joinTokenState({ ...RECORD, usesCount: 2 }, NOW), 'exhausted');
    assert.equal(joinTokenState({ ...RECORD, revoked: true, usesCount: 2 }, NOW), 'revoked');
    assert.equal(joinTokenState({ ...RECORD, usesTotal: 0, usesCount: 99 }, NOW), 'usable');
  });

  it('spend uses one at a time, never past usesTotal, and never count unlimited tokens', () => {
    const once = spendJoinToken(RECORD, NOW);
    assert.ok('record' in once);
    assert.equal(once.record.usesCount, 1);
    assert.deepEqual(spendJoinToken(RECORD, NOW, 3), { reason: 'exhausted' });
    assert.deepEqual(spendJoinToken({ ...RECORD, usesCount: 2 }, NOW), { reason: 'exhausted' });
    const unlimited = { ...RECORD, usesTotal: 0 };
    const spent = spendJoinToken(unlimited, NOW);
    assert.ok('record' in spent);
    assert.equal(spent.record, unlimited, 'an unlimited token is not rewritten');
  });

  it('are listed without their hash', () => {
    const info = toTokenInfo({ ...RECORD, usesCount: 1, description: 'd' });
    assert.deepEqual(info, {
      id: 'abc123',
      expiresAt: RECORD.expiresAt,
      usesLeft: 1,
      usesTotal: 2,
      revoked: false,
      createdAt: RECORD.createdAt,
      description: 'd',
    });
    assert.equal(toTokenInfo({ ...RECORD, usesTotal: 0 }).usesLeft, null);
    assert.ok(!JSON.stringify(info).includes('sha256'));
  });

  it('are pruned only after the retention past expiry', () => {
    assert.equal(isJoinTokenPrunable(RECORD, new Date('2030-01-01T13:59:59Z'), 3_600_000), false);
    assert.equal(isJoinTokenPrunable(RECORD, new Date('2030-01-01T14:00:00Z'), 3_600_000), true);
  });

  it('are validated when read back, naming the source and field', () => {
    assert.deepEqual(parseJoinTokenRecord(JSON.parse(JSON.stringify(RECORD)), 'f'), RECORD);
    for (const [field, value] of [
      ['id', 'ABC'],
      ['usesCount', -1],
      ['expiresAt', 'soon'],
      ['revoked', 'no'],
      ['taints', [{ key: 'k', effect: 'Sometimes' }]],
    ] as const) {
      assert.throws(
        () => parseJoinTokenRecord({ ...RECORD, [field]: value }, 'store.json: tokens[3]'),
        (error: unknown) =>
          error instanceof K8sOnK8sError &&
          error.code === 'STORE_ERROR' &&
          error.message.includes('store.json: tokens[3]') &&
          error.message.includes(field),
      );
    }
  });
});
