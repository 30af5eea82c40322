import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import {
  buildBootstrapTokenSecret,
  generateBootstrapToken,
  parseBootstrapToken,
} from '../src/bootstrap-token.js';
import { ValidationError } from '../src/errors.js';

const ID = '07401b';
const SECRET = 'f395accd246ae52d';
const EXPIRES = new Date('2030-03-10T03:22:11.456Z');

void describe('generateBootstrapToken / parseBootstrapToken', () => {
  void it('generates 1,000 kubeadm-format tokens that round-trip', () => {
    const seen = new Set<string>();
    for (let i = 0; i < 1000; i++) {
      const t = generateBootstrapToken();
      // The regex from the Kubernetes docs, anchored.
      assert.match(t.token, /^[a-z0-9]{6}\.[a-z0-9]{16}$/);
      assert.deepEqual(parseBootstrapToken(t.token), { id: t.id, secret: t.secret });
      seen.add(t.token);
    }
    assert.equal(seen.size, 1000);
  });

  void it('rejects malformed tokens without quoting the secret', () => {
    const cases: [string, RegExp][] = [
      [`${ID}${SECRET}`, /no dot/],
      [`${ID}.${SECRET}.x`, /2 dots/],
      [`${ID}.${SECRET}0`, /secret part must be 16 characters.*got 17/],
      [`${ID}.${SECRET.toUpperCase()}`, /lowercase/],
      [`${ID}.${SECRET.slice(0, 15)}ü`, /lowercase/],
      [`0740.${SECRET}`, /id part must be 6/],
      // A join token is not a bootstrap token.
      [`${ID}.${SECRET}${SECRET}`, /got 32/],
    ];
    for (const [text, pattern] of cases) {
      assert.throws(
        () => parseBootstrapToken(text),
        (err: unknown) => {
          assert.ok(err instanceof ValidationError);
          assert.equal(err.code, 'INVALID_TOKEN_FORMAT');
          assert.match(err.message, pattern);
          assert.ok(!err.message.includes(SECRET.slice(0, 15)), err.message);
          assert.ok(!err.message.toLowerCase().includes(SECRET.slice(0, 15)), err.message);
          return true;
        },
      );
    }
  });
});

void describe('buildBootstrapTokenSecret', () => {
  void it('renders the Secret the bootstrap authenticator reads, with defaults', () => {
    const secret = buildBootstrapTokenSecret({ id: ID, secret: SECRET, expiresAt: EXPIRES });
    assert.deepEqual(secret, {
      apiVersion: 'v1',
      kind: 'Secret',
      metadata: { name: 'bootstrap-token-07401b', namespace: 'kube-system' },
      type: 'bootstrap.kubernetes.io/token',
      stringData: {
        'token-id': ID,
        'token-secret': SECRET,
        expiration: '2030-03-10T03:22:11Z',
        'usage-bootstrap-authentication': 'true',
      },
    });
  });

  void it('writes usages, extra groups, description and labels', () => {
    const secret = buildBootstrapTokenSecret({
      id: ID,
      secret: SECRET,
      expiresAt: new Date(Date.UTC(2031, 0, 2, 3, 4, 5)),
      description: 'join of node-1',
      usages: ['authentication', 'signing'],
      extraGroups: ['system:bootstrappers:k8s-on-k8s:nodes', 'system:bootstrappers:worker'],
      labels: { 'k8s-on-k8s.io/control-plane': 'demo' },
    });
    assert.deepEqual(secret.stringData, {
      'token-id': ID,
      'token-secret': SECRET,
      expiration: '2031-01-02T03:04:05Z',
      'usage-bootstrap-authentication': 'true',
      'usage-bootstrap-signing': 'true',
      'auth-extra-groups': 'system:bootstrappers:k8s-on-k8s:nodes,system:bootstrappers:worker',
      description: 'join of node-1',
    });
    assert.deepEqual(secret.metadata.labels, { 'k8s-on-k8s.io/control-plane': 'demo' });
  });

  void it('rejects extra groups outside system:bootstrappers, naming the group', () => {
    for (const group of [
      'system:masters',
      'system:bootstrappers:',
      'system:bootstrappers:Worker',
      'system:bootstrappers:worker-',
      `system:bootstrappers:${'a'.repeat(257)}`,
      'system:bootstrappers:a,system:masters',
    ]) {
      assert.throws(
        () => buildBootstrapTokenSecret({ id: ID, secret: SECRET, expiresAt: EXPIRES, extraGroups: [group] }),
        (err: unknown) =>
          err instanceof ValidationError &&
          err.code === 'INVALID_ARGUMENT' &&
          err.message.includes(JSON.stringify(group)),
      );
    }
    // The longest allowed group still passes.
    const longest = `system:bootstrappers:${'a'.repeat(256)}`;
    const ok = buildBootstrapTokenSecret({
      id: ID,
      secret: SECRET,
      expiresAt: EXPIRES,
      extraGroups: [longest],
    });
    assert.equal(ok.stringData['auth-extra-groups'], longest);
  });

  void it('rejects a malformed id or secret, an unknown usage and an invalid date', () => {
    assert.throws(() => buildBootstrapTokenSecret({ id: 'ABCDEF', secret: SECRET, expiresAt: EXPIRES }), {
      code: 'INVALID_TOKEN_FORMAT',
    });
    assert.throws(
      () => buildBootstrapTokenSecret({ id: ID, secret: `${SECRET}x`, expiresAt: EXPIRES }),
      (err: unknown) => err instanceof ValidationError && !err.message.includes(SECRET),
    );
    assert.throws(
      () =>
        buildBootstrapTokenSecret({
          id: ID,
          secret: SECRET,
          expiresAt: EXPIRES,
          usages: ['signing', 'root' as 'signing'],
        }),
      /"root"/,
    );
    assert.throws(() => buildBootstrapTokenSecret({ id: ID, secret: SECRET, expiresAt: new Date(NaN) }), {
      code: 'INVALID_ARGUMENT',
    });
  });
});
