import { Writable } from 'node:stream';
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { pino } from 'pino';
import { REDACT_PATHS, redactSecrets } from '../src/redact.js';
import { generateBootstrapToken } from '../src/bootstrap-token.js';
import { generateJoinToken } from '../src/token.js';

const JOIN = 'abc123.0123456789abcdefghijklmnopqrstuv';
const BOOT = '07401b.f395accd246ae52d';

void describe('redactSecrets', () => {
  void it('keeps the id of join and bootstrap tokens and drops the secret', () => {
    assert.equal(
      redactSecrets(`k8s-join --token ${JOIN} --server x`),
      'k8s-join --token abc123.<redacted> --server x',
    );
    assert.equal(redactSecrets(`token: ${BOOT}\n`), 'token: 07401b.<redacted>\n');
    assert.equal(
      redactSecrets(`{"token":"${JOIN}","b":"${BOOT}"}`),
      '{"token":"abc123.<redacted>","b":"07401b.<redacted>"}',
    );
    assert.equal(redactSecrets(`url?token=${BOOT}&x=1`), 'url?token=07401b.<redacted>&x=1');
    assert.equal(redactSecrets(`x_${JOIN}`), 'x_abc123.<redacted>');
  });

  void it('redacts 500 generated tokens of each kind, in varied surroundings', () => {
    for (let i = 0; i < 500; i++) {
      const join = generateJoinToken();
      const boot = generateBootstrapToken();
      const text = `a ${join.token}, (${boot.token}) '${join.token}'\t${boot.token}`;
      const out = redactSecrets(text);
      assert.ok(!out.includes(join.secret) && !out.includes(boot.secret), out);
      assert.equal(
        out,
        `a ${join.id}.<redacted>, (${boot.id}.<redacted>) '${join.id}.<redacted>'\t${boot.id}.<redacted>`,
      );
    }
  });

  void it('leaves look-alikes of other lengths and ordinary text alone', () => {
    for (const text of [
      'abc123.0123456789abcde', // 15-character secret
      'abc123.0123456789abcdefg', // 17
      'abc12.0123456789abcdef', // 5-character id
      'ABC123.0123456789ABCDEF',
      'worker-1.example.com:6443',
      'version v1.31.2, file kubelet.conf',
    ]) {
      assert.equal(redactSecrets(text), text);
    }
  });

  void it('redacts bearer credentials of any form, keeping the scheme', () => {
    assert.equal(
      redactSecrets('Authorization: Bearer eyJhbGciOi.J9.x-y_z'),
      'Authorization: Bearer <redacted>',
    );
    assert.equal(
      redactSecrets('{"authorization":"bearer s3cr3t","a":1}'),
      '{"authorization":"bearer <redacted>","a":1}',
    );
    assert.equal(redactSecrets(`Bearer ${JOIN}`), 'Bearer <redacted>');
  });

  void it('redacts PEM private keys of every kind, including a truncated one, but not certificates', () => {
    const cert = '-----BEGIN CERTIFICATE-----\nMIIBcert\n-----END CERTIFICATE-----';
    for (const kind of ['', 'RSA ', 'EC ', 'ENCRYPTED ']) {
      const key = `-----BEGIN ${kind}PRIVATE KEY-----\nMIIEsecretkeymaterial\nmore+/=\n-----END ${kind}PRIVATE KEY-----`;
      const out = redactSecrets(`${cert}\n${key}\ntrailer`);
      assert.equal(
        out,
        `${cert}\n-----BEGIN ${kind}PRIVATE KEY-----\n<redacted>\n-----END ${kind}PRIVATE KEY-----\ntrailer`,
      );
    }
    const truncated = redactSecrets('log: -----BEGIN PRIVATE KEY-----\nMIIEsecretkeymat');
    assert.ok(!truncated.includes('MIIEsecret'), truncated);
  });

  void it('redacts client-key-data in a kubeconfig', () => {
    const out = redactSecrets('    client-certificate-data: Q0VSVA==\n    client-key-data: S0VZc2VjcmV0\n');
    assert.equal(out, '    client-certificate-data: Q0VSVA==\n    client-key-data: <redacted>\n');
  });
});

void describe('REDACT_PATHS', () => {
  void it('makes pino drop every secret field it names', () => {
    const lines: string[] = [];
    const sink = new Writable({
      write(chunk: Buffer, _encoding, done) {
        lines.push(chunk.toString());
        done();
      },
    });
    const logger = pino({ redact: [...REDACT_PATHS] }, sink);
    logger.info(
      {
        req: { headers: { authorization: `Bearer ${JOIN}`, host: 'join.example' } },
        token: JOIN,
        join: { id: 'abc123', token: JOIN, tokenSecret: 'ts-secret', secret: 'plain-secret' },
        bundle: { nodeName: 'worker-1', bootstrapKubeconfig: 'kubeconfig-secret' },
        ca: { privateKey: 'pk-secret' },
      },
      'joined',
    );
    assert.equal(lines.length, 1);
    const line = lines[0] ?? '';
    for (const secret of [
      '0123456789abcdefghijklmnopqrstuv',
      'ts-secret',
      'plain-secret',
      'kubeconfig-secret',
      'pk-secret',
    ]) {
      assert.ok(!line.includes(secret), `${secret} leaked: ${line}`);
    }
    // What is not secret stays useful.
    assert.match(line, /"host":"join\.example"/);
    assert.match(line, /"id":"abc123"/);
    assert.match(line, /"nodeName":"worker-1"/);
  });

  void it('includes the paths the server relies on', () => {
    for (const path of [
      'req.headers.authorization',
      '*.token',
      '*.secret',
      '*.tokenSecret',
      '*.privateKey',
      '*.bootstrapKubeconfig',
    ]) {
      assert.ok(REDACT_PATHS.includes(path), path);
    }
  });
});
