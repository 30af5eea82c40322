import { execSync } from 'node:child_process';
import { mkdtempSync, readFileSync, rmSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { caCertHash, parseCaCertHash, verifyCaPin } from '../src/ca-pin.js';
import { JoinError, ValidationError } from '../src/errors.js';

const dir = mkdtempSync(join(tmpdir(), 'ca-pin-test-'));
after(() => {
  rmSync(dir, { recursive: true, force: true });
});

// Makes a self-signed CA with the openssl CLI, the independent implementation we check against.
function opensslCa(name: string, keyArgs: string): string {
  const path = join(dir, `${name}.pem`);
  execSync(
    `openssl req -x509 ${keyArgs} -nodes -keyout ${join(dir, `${name}.key`)} -out ${path} -days 1 -subj /CN=${name}`,
    { stdio: 'pipe' },
  );
  return readFileSync(path, 'utf8');
}

// kubeadm's documented recipe for --discovery-token-ca-cert-hash.
function opensslHash(name: string): string {
  const out = execSync(
    `openssl x509 -in ${join(dir, `${name}.pem`)} -pubkey -noout | openssl pkey -pubin -outform der | sha256sum`,
    { encoding: 'utf8', shell: '/bin/sh' },
  );
  return `sha256:${out.split(' ')[0] ?? ''}`;
}

const rsaCa = opensslCa('rsa-ca', '-newkey rsa:2048');
const ecCa = opensslCa('ec-ca', '-newkey ec -pkeyopt ec_paramgen_curve:prime256v1');

void describe('caCertHash', () => {
  void it('matches openssl for an RSA CA', () => {
    const expected = opensslHash('rsa-ca');
    assert.match(expected, /^sha256:[0-9a-f]{64}$/);
    assert.equal(caCertHash(rsaCa), expected);
  });

  void it('matches openssl for an EC (P-256) CA', () => {
    assert.equal(caCertHash(ecCa), opensslHash('ec-ca'));
    assert.notEqual(caCertHash(ecCa), caCertHash(rsaCa));
  });

  void it('rejects text that is not a certificate', () => {
    assert.throws(
      () => caCertHash('-----BEGIN CERTIFICATE-----\nnope\n-----END CERTIFICATE-----\n'),
      (err: unknown) => err instanceof ValidationError && err.code === 'INVALID_CERTIFICATE',
    );
  });
});

void describe('parseCaCertHash', () => {
  void it('accepts either case and normalises to lowercase', () => {
    const hex = 'ab'.repeat(32);
    assert.equal(parseCaCertHash(`sha256:${hex}`), `sha256:${hex}`);
    assert.equal(parseCaCertHash(`sha256:${hex.toUpperCase()}`), `sha256:${hex}`);
    assert.equal(parseCaCertHash(` sha256:${hex}\n`), `sha256:${hex}`);
  });

  void it('round-trips every hash it computes', () => {
    for (const pem of [rsaCa, ecCa]) assert.equal(parseCaCertHash(caCertHash(pem)), caCertHash(pem));
  });

  void it('rejects other forms saying what is wrong, never echoing the value', () => {
    const hex = 'c'.repeat(64);
    const cases: [string, RegExp][] = [
      [hex, /must start with "sha256:"/],
      [`sha1:${hex}`, /algorithm sha1 is not supported; only sha256/],
      [`SHA256:${hex}`, /must start with "sha256:"/],
      [`sha256:${hex.slice(1)}`, /has 63 hex digits after "sha256:", expected 64/],
      [`sha256:${hex}c`, /has 65 hex digits after "sha256:", expected 64/],
      [`sha256:${'g'.repeat(64)}`, /has characters other than hex digits after "sha256:"/],
      [`sha256: ${hex}`, /has characters other than hex digits after "sha256:"/],
      ['', /is empty/],
      // A join token pasted in the wrong place: the message must not carry its secret.
      ['abcdef.0123456789abcdef0123456789abcdef', /must start with "sha256:"/],
    ];
    for (const [bad, reason] of cases) {
      assert.throws(
        () => parseCaCertHash(bad),
        (err: unknown) => {
          assert.ok(err instanceof ValidationError, bad);
          assert.equal(err.code, 'INVALID_CA_HASH');
          assert.match(err.message, reason, bad);
          if (bad.trim() !== '') {
            const tail = bad.slice(-16);
            assert.ok(!err.message.includes(tail), `${JSON.stringify(bad)} echoed in: ${err.message}`);
            assert.ok(!(err.hint ?? '').includes(tail), 'nor in the hint');
          }
          return true;
        },
        bad,
      );
    }
  });
});

void describe('verifyCaPin', () => {
  void it('passes when the presented CA matches the pin, in either case', () => {
    assert.doesNotThrow(() => {
      verifyCaPin(rsaCa, opensslHash('rsa-ca'));
    });
    assert.doesNotThrow(() => {
      verifyCaPin(ecCa, opensslHash('ec-ca').toUpperCase().replace('SHA256', 'sha256'));
    });
  });

  void it('throws CA_PIN_MISMATCH naming both hashes', () => {
    const presented = caCertHash(ecCa);
    const expected = caCertHash(rsaCa);
    assert.throws(
      () => {
        verifyCaPin(ecCa, expected);
      },
      (err: unknown) => {
        assert.ok(err instanceof JoinError);
        assert.equal(err.code, 'CA_PIN_MISMATCH');
        assert.equal(err.message, `the server presented CA with hash ${presented}, expected ${expected}`);
        assert.ok(err.hint !== undefined);
        return true;
      },
    );
  });

  void it('rejects a malformed pin before looking at the certificate', () => {
    assert.throws(
      () => {
        verifyCaPin(rsaCa, 'sha256:abc');
      },
      { code: 'INVALID_CA_HASH' },
    );
  });
});
