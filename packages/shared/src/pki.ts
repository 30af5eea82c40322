import { generateKeyPair as generateNativeKeyPair, X509Certificate, randomBytes } from 'node:crypto';
import { isIP } from 'node:net';
import { promisify } from 'node:util';
import forge from 'node-forge';
import { ValidationError } from './errors.js';

const generateNativeKeyPairAsync = promisify(generateNativeKeyPair);
const DAY_MS = 86_400_000;
/** Backdating absorbs small clock skew between the signer and the verifier. */
const BACKDATE_MS = 5 * 60_000;

/** A PEM key pair; private keys are PKCS#1 (`RSA PRIVATE KEY`), which every Kubernetes component reads. */
export interface KeyPair {
  readonly privateKeyPem: string;
  readonly publicKeyPem: string;
}

/** A certificate with its private key, both PEM. */
export interface CertifiedKeyPair {
  readonly certPem: string;
  readonly keyPem: string;
}

/** What a signed certificate is for: TLS server, TLS client, or both (etcd peers). */
export type CertificateUsage = 'server' | 'client' | 'server-client';

/** The subject and extensions of a leaf certificate. */
export interface CertificateSpec {
  readonly commonName: string;
  /** Becomes O=; Kubernetes reads it as the user's groups (e.g. `system:masters`). */
  readonly organizations?: readonly string[];
  readonly dnsNames?: readonly string[];
  readonly ipAddresses?: readonly string[];
  readonly usage: CertificateUsage;
  readonly validityDays?: number;
}

/** Injected time, so expiry is testable without sleeping. */
export interface PkiClock {
  readonly now?: () => Date;
}

/**
 * Generates an RSA key pair with Node's native crypto (on the libuv pool, so several run in
 * parallel); node-forge's pure-JS generator takes seconds per key.
 */
export async function generateRsaKeyPair(bits = 2048): Promise<KeyPair> {
  const { privateKey, publicKey } = await generateNativeKeyPairAsync('rsa', {
    modulusLength: bits,
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs1', format: 'pem' },
  });
  return { privateKeyPem: privateKey, publicKeyPem: publicKey };
}

/** Creates a self-signed certificate authority with a fresh key. */
export async function createCertificateAuthority(
  commonName: string,
  options: PkiClock & { validityDays?: number } = {},
): Promise<CertifiedKeyPair> {
  const keys = await generateRsaKeyPair();
  const key = forge.pki.privateKeyFromPem(keys.privateKeyPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(keys.publicKeyPem);
  setValidity(cert, options.now?.() ?? new Date(), options.validityDays ?? 3650);
  cert.serialNumber = randomSerial();
  const subject = [{ name: 'commonName', value: commonName }];
  cert.setSubject(subject);
  cert.setIssuer(subject);
  cert.setExtensions([
    { name: 'basicConstraints', cA: true, critical: true },
    { name: 'keyUsage', keyCertSign: true, cRLSign: true, digitalSignature: true, critical: true },
    { name: 'subjectKeyIdentifier' },
  ]);
  cert.sign(key, forge.md.sha256.create());
  return { certPem: unixLines(forge.pki.certificateToPem(cert)), keyPem: keys.privateKeyPem };
}

/** Issues a leaf certificate signed by `ca`, with a fresh key unless one is given. */
export async function issueCertificate(
  ca: CertifiedKeyPair,
  spec: CertificateSpec,
  options: PkiClock & { keyPair?: KeyPair } = {},
): Promise<CertifiedKeyPair> {
  const keys = options.keyPair ?? (await generateRsaKeyPair());
  const certPem = signPublicKey(ca, keys.publicKeyPem, spec, options.now?.() ?? new Date());
  return { certPem, keyPem: keys.privateKeyPem };
}

/**
 * Signs a PKCS#10 certificate request with `ca`. The subject and extensions come from `spec`,
 * never from the request: a requester proves key possession, the signer decides the identity.
 */
export function signCertificateRequest(
  ca: CertifiedKeyPair,
  csrPem: string,
  spec: CertificateSpec,
  options: PkiClock = {},
): string {
  let csr: forge.pki.CertificateSigningRequest;
  try {
    csr = forge.pki.certificationRequestFromPem(csrPem);
  } catch (cause) {
    throw new ValidationError('INVALID_CERTIFICATE', 'Expected a PEM certificate request (CSR)', { cause });
  }
  if (!csr.verify() || csr.publicKey === null) {
    throw new ValidationError('INVALID_CERTIFICATE', 'The certificate request signature does not verify');
  }
  const publicKeyPem = forge.pki.publicKeyToPem(csr.publicKey);
  return signPublicKey(ca, publicKeyPem, spec, options.now?.() ?? new Date());
}

/** Creates a PKCS#10 certificate request for `keyPair` (what a kubelet sends, for tests and tools). */
export function createCertificateRequest(
  keyPair: KeyPair,
  subject: { commonName: string; organizations?: readonly string[] },
): string {
  const csr = forge.pki.createCertificationRequest();
  csr.publicKey = forge.pki.publicKeyFromPem(keyPair.publicKeyPem);
  csr.setSubject(subjectAttributes(subject.commonName, subject.organizations));
  csr.sign(forge.pki.privateKeyFromPem(keyPair.privateKeyPem), forge.md.sha256.create());
  return unixLines(forge.pki.certificationRequestToPem(csr));
}

/** What a person or a status command wants to know about a certificate. */
export interface CertificateSummary {
  readonly commonName: string;
  readonly organizations: readonly string[];
  readonly issuerCommonName: string;
  readonly notBefore: Date;
  readonly notAfter: Date;
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly isCa: boolean;
}

/** Reads the subject, issuer, validity and SANs of a PEM certificate. */
export function describeCertificate(certPem: string): CertificateSummary {
  let cert: X509Certificate;
  try {
    cert = new X509Certificate(certPem);
  } catch (cause) {
    throw new ValidationError('INVALID_CERTIFICATE', 'Expected a PEM certificate', { cause });
  }
  const field = (dn: string, key: string): string[] =>
    dn
      .split('\n')
      .filter((line) => line.startsWith(`${key}=`))
      .map((line) => line.slice(key.length + 1));
  const sans = (cert.subjectAltName ?? '').split(', ').filter((s) => s !== '');
  return {
    commonName: field(cert.subject, 'CN')[0] ?? '',
    organizations: field(cert.subject, 'O'),
    issuerCommonName: field(cert.issuer, 'CN')[0] ?? '',
    notBefore: new Date(cert.validFrom),
    notAfter: new Date(cert.validTo),
    dnsNames: sans.filter((s) => s.startsWith('DNS:')).map((s) => s.slice(4)),
    ipAddresses: sans.filter((s) => s.startsWith('IP Address:')).map((s) => s.slice(11)),
    isCa: cert.ca,
  };
}

/** True when `certPem` was signed by `caPem` (signature only; validity dates are the caller's business). */
export function isSignedBy(certPem: string, caPem: string): boolean {
  const ca = new X509Certificate(caPem);
  return new X509Certificate(certPem).verify(ca.publicKey);
}

function signPublicKey(ca: CertifiedKeyPair, publicKeyPem: string, spec: CertificateSpec, now: Date): string {
  for (const ip of spec.ipAddresses ?? []) {
    if (isIP(ip) === 0) {
      throw new ValidationError('INVALID_ARGUMENT', `Expected an IP address SAN, got ${JSON.stringify(ip)}`);
    }
  }
  const caCert = forge.pki.certificateFromPem(ca.certPem);
  const cert = forge.pki.createCertificate();
  cert.publicKey = forge.pki.publicKeyFromPem(publicKeyPem);
  cert.serialNumber = randomSerial();
  setValidity(cert, now, spec.validityDays ?? 365);
  cert.setSubject(subjectAttributes(spec.commonName, spec.organizations));
  cert.setIssuer(caCert.subject.attributes);
  const altNames = [
    ...(spec.dnsNames ?? []).map((value) => ({ type: 2, value })),
    ...(spec.ipAddresses ?? []).map((ip) => ({ type: 7, ip })),
  ];
  cert.setExtensions([
    { name: 'basicConstraints', cA: false, critical: true },
    { name: 'keyUsage', digitalSignature: true, keyEncipherment: true, critical: true },
    {
      name: 'extKeyUsage',
      serverAuth: spec.usage !== 'client',
      clientAuth: spec.usage !== 'server',
    },
    { name: 'subjectKeyIdentifier' },
    { name: 'authorityKeyIdentifier', keyIdentifier: caCert.generateSubjectKeyIdentifier().getBytes() },
    ...(altNames.length > 0 ? [{ name: 'subjectAltName', altNames }] : []),
  ]);
  cert.sign(forge.pki.privateKeyFromPem(ca.keyPem), forge.md.sha256.create());
  return unixLines(forge.pki.certificateToPem(cert));
}

function subjectAttributes(
  commonName: string,
  organizations: readonly string[] = [],
): forge.pki.CertificateField[] {
  if (commonName === '')
    throw new ValidationError('INVALID_ARGUMENT', 'Expected a non-empty certificate common name');
  return [
    ...organizations.map((value) => ({ name: 'organizationName', value })),
    { name: 'commonName', value: commonName },
  ];
}

function setValidity(cert: forge.pki.Certificate, now: Date, validityDays: number): void {
  cert.validity.notBefore = new Date(now.getTime() - BACKDATE_MS);
  cert.validity.notAfter = new Date(now.getTime() + validityDays * DAY_MS);
}

/** 128 random bits as a positive DER integer (RFC 5280 §4.1.2.2). */
function randomSerial(): string {
  const bytes = randomBytes(16);
  bytes[0] = (bytes[0] ?? 0) & 0x7f;
  return bytes.toString('hex');
}

/** node-forge writes PEM with CRLF; files on Linux and Node's own PEM use LF. */
function unixLines(pem: string): string {
  return pem.replace(/\r\n/g, '\n');
}
