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

/**
 * Validates a `--ca-cert-hash` value and normalises its hex to lowercase. Errors say what is wrong
 * (prefix, algorithm, length, characters) but never repeat the value: a join token pasted into the
 * wrong flag would otherwise land in a terminal, a boot log or an issue report.
 */
export function parseCaCertHash(text: string): string {
  const trimmed = text.trim();
  const match = CA_HASH.exec(trimmed);
  if (match?.[1] !== undefined) return `sha256:${match[1].toLowerCase()}`;
  throw new ValidationError(
    'INVALID_CA_HASH',
    `Invalid CA hash: ${caHashProblem(trimmed)} (expected sha256:<64 hex digits>; the value is not repeated here)`,
    { hint: 'Copy it from the join command printed by `k8s-on-k8s token create`.' },
  );
}

// Only an algorithm name from this list is said back; anything else before a colon is not repeated.
const OTHER_ALGORITHMS = ['md5', 'sha1', 'sha224', 'sha384', 'sha512'];

function caHashProblem(text: string): string {
  if (text === '') return 'it is empty';
  const colon = text.indexOf(':');
  const algorithm = colon === -1 ? '' : text.slice(0, colon).toLowerCase();
  if (OTHER_ALGORITHMS.includes(algorithm)) {
    return `algorithm ${algorithm} is not supported; only sha256 is (kubeadm's scheme)`;
  }
  if (!text.startsWith('sha256:')) {
    return `it must start with "sha256:" (a ${text.length}-character value without that prefix was given)`;
  }
  const hex = text.slice('sha256:'.length);
  if (!/^[0-9a-fA-F]*$/.test(hex)) return 'it has characters other than hex digits after "sha256:"';
  return `it has ${hex.length} hex digits after "sha256:", expected 64`;
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
