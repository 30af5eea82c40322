import { createHash, X509Certificate } from 'node:crypto';
import { JoinError, ValidationError } from './errors.js';

// The agent trusts the join server only through a pin the admin copied: the SHA-256 of the CA's
// DER SubjectPublicKeyInfo, the same value kubeadm uses for --discovery-token-ca-cert-hash, so a
// hash printed by `kubeadm token create --print-join-command` or by openssl works here too.

const CA_HASH = /^sha256:([0-9a-fA-F]{64})$/;

/** Computes `sha256:<hex>` of the certificate's public key (SPKI, DER), as kubeadm does. */
export function caCertHash(pem: string): string {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(pem);
  } catch (cause) {
    throw new ValidationError('INVALID_CERTIFICATE', 'Expected a PEM certificate to compute its CA hash', {
      cause,
    });
  }
  const spki = cert.publicKey.export({ type: 'spki', format: 'der' });
  return `sha256:${createHash('sha256').update(spki).digest('hex')}`;
}

/** Validates a `--ca-cert-hash` value and normalises its hex to lowercase. */
export function parseCaCertHash(text: string): string {
  const match = CA_HASH.exec(text.trim());
  if (match?.[1] === undefined) {
    throw new ValidationError(
      'INVALID_CA_HASH',
      `Expected the CA hash to be sha256: followed by 64 hex digits, got ${JSON.stringify(text)}`,
      { hint: 'Copy it from the join command printed by `k8s-on-k8s token create`.' },
    );
  }
  return `sha256:${match[1].toLowerCase()}`;
}

/** Fails unless the presented CA matches the pinned hash; call it before sending any token. */
export function verifyCaPin(pem: string, expectedHash: string): void {
  const expected = parseCaCertHash(expectedHash);
  const actual = caCertHash(pem);
  if (actual !== expected) {
    throw new JoinError(
      'CA_PIN_MISMATCH',
      `the server presented CA with hash ${actual}, expected ${expected}`,
      {
        hint: 'Check --ca-cert-hash and --server; if both are right, something between you and the join server is presenting another CA, and no token was sent.',
      },
    );
  }
}
