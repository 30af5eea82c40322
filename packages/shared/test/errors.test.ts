import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import { JoinError, K8sOnK8sError, ValidationError, describeError } from '../src/errors.js';

void describe('describeError', () => {
  void it('shows the code of known errors and follows causes', () => {
    const root = new Error('connect ECONNREFUSED 127.0.0.1:6443');
    const error = new JoinError('UPSTREAM_ERROR', 'the hosted apiserver did not answer', { cause: root });
    assert.equal(
      describeError(error),
      'UPSTREAM_ERROR: the hosted apiserver did not answer <- connect ECONNREFUSED 127.0.0.1:6443',
    );
  });

  void it('describes thrown non-errors without printing them', () => {
    assert.equal(describeError('plain text'), 'plain text');
    assert.equal(describeError({ token: 'x' }), 'a thrown object');
  });

  void it('redacts a credential that slipped into a message', () => {
    const text = describeError(new Error('bad token abcdef.0123456789abcdef0123456789abcdef'));
    assert.ok(!text.includes('0123456789abcdef0123456789abcdef'), text);
  });

  void it('keeps code, hint and cause on every error class', () => {
    const cause = new Error('inner');
    for (const error of [
      new K8sOnK8sError('NOT_FOUND', 'm', { hint: 'h', cause }),
      new JoinError('NOT_FOUND', 'm', { hint: 'h', cause }),
      new ValidationError('NOT_FOUND', 'm', { hint: 'h', cause }),
    ]) {
      assert.equal(error.code, 'NOT_FOUND');
      assert.equal(error.hint, 'h');
      assert.equal(error.cause, cause);
    }
  });
});
