import forge from 'node-forge';

// What a PKCS#10 certificate request asks for: its subject, and the extensions it requests (the
// subjectAltName of a kubelet serving CSR). Read with node-forge's ASN.1 reader, strict DER, because
// node-forge's CSR reader knows only RSA keys and kubelets send ECDSA ones.
//
// The apiserver has already parsed the request and checked its signature when the CSR was created
// (pkg/apis/certificates/validation: validateCSR → CheckSignature); what is read here is what it says.

export const OID_COMMON_NAME = '2.5.4.3';
export const OID_ORGANIZATION = '2.5.4.10';
const OID_EXTENSION_REQUEST = '1.2.840.113549.1.9.14';
const OID_SUBJECT_ALT_NAME = '2.5.29.17';

/** One extension a request asks for. */
export interface RequestedExtension {
  readonly oid: string;
  readonly critical: boolean;
  /** The extnValue's contents (DER), as a binary string. */
  readonly value: string;
}

/** The subject and extension attributes of a PKCS#10 request, or why it cannot be read. */
export interface RequestedSubject {
  /** Each subject attribute as [OID, value], in order. */
  readonly attributes: readonly (readonly [string, string])[];
  /** How many PKCS#10 attributes (extension requests, challenge passwords, …) it carries. */
  readonly requestAttributes: number;
  /** The extensions of its extensionRequest attribute (none when it has none). */
  readonly extensions: readonly RequestedExtension[];
}

/** The names of a subjectAltName extension, by kind; `other` counts the kinds not listed. */
export interface SubjectAltNames {
  readonly dnsNames: readonly string[];
  readonly ipAddresses: readonly string[];
  readonly emailAddresses: readonly string[];
  readonly uris: readonly string[];
  readonly other: number;
}

/** Reads the first PEM CERTIFICATE REQUEST block (the one the apiserver reads). */
export function readRequestedSubject(requestPem: string): RequestedSubject {
  const block = /-----BEGIN ([A-Z ]+)-----\r?\n([A-Za-z0-9+/=\r\n]+)-----END \1-----/.exec(requestPem);
  if (block?.[1] !== 'CERTIFICATE REQUEST' || block[2] === undefined) {
    throw new Error('spec.request holds no PEM CERTIFICATE REQUEST block');
  }
  const der = Buffer.from(block[2].replace(/\s/g, ''), 'base64').toString('binary');
  const root = forge.asn1.fromDer(der, true); // strict, and every byte parsed;
  const info = children(root)[0];
  const [, subject, , attributes] = children(info);
  if (subject === undefined || attributes === undefined)
    throw new Error('malformed CertificationRequestInfo');
  const pairs: (readonly [string, string])[] = [];
  for (const rdn of children(subject)) {
    for (const pair of children(rdn)) {
      const [type, value] = children(pair);
      if (type?.type !== forge.asn1.Type.OID || typeof value?.value !== 'string') {
        throw new Error('malformed subject attribute');
      }
      const text = value.type === forge.asn1.Type.UTF8 ? forge.util.decodeUtf8(value.value) : value.value;
      pairs.push([forge.asn1.derToOid(type.value as string), text]);
    }
  }
  const extensions: RequestedExtension[] = [];
  for (const attribute of children(attributes)) {
    const [type, values] = children(attribute);
    if (type?.type !== forge.asn1.Type.OID) throw new Error('malformed request attribute');
    if (forge.asn1.derToOid(type.value as string) !== OID_EXTENSION_REQUEST) continue;
    for (const extensionList of children(values)) {
      for (const extension of children(extensionList)) {
        const parts = children(extension);
        const [id] = parts;
        const critical = parts.length === 3 && parts[1]?.value === '\x01';
        const octets = parts[parts.length - 1];
        if (id?.type !== forge.asn1.Type.OID || typeof octets?.value !== 'string') {
          throw new Error('malformed requested extension');
        }
        extensions.push({ oid: forge.asn1.derToOid(id.value as string), critical, value: octets.value });
      }
    }
  }
  return { attributes: pairs, requestAttributes: children(attributes).length, extensions };
}

/** The subjectAltName a request asks for, or undefined when it asks for none. */
export function requestedSubjectAltNames(subject: RequestedSubject): SubjectAltNames | undefined {
  const [extension, ...more] = subject.extensions.filter((e) => e.oid === OID_SUBJECT_ALT_NAME);
  if (extension === undefined) return undefined;
  if (more.length > 0) throw new Error('more than one subjectAltName extension');
  const names = { dnsNames: [] as string[], ipAddresses: [] as string[], emailAddresses: [] as string[] };
  const uris: string[] = [];
  let other = 0;
  for (const name of children(forge.asn1.fromDer(extension.value, true))) {
    // GeneralName: context-specific tags, [1] rfc822Name, [2] dNSName, [6] URI, [7] iPAddress.
    const value = typeof name.value === 'string' ? name.value : undefined;
    const tag = name.type as number;
    if (name.tagClass !== forge.asn1.Class.CONTEXT_SPECIFIC || value === undefined) other += 1;
    else if (tag === 1) names.emailAddresses.push(value);
    else if (tag === 2) names.dnsNames.push(value);
    else if (tag === 6) uris.push(value);
    else if (tag === 7) names.ipAddresses.push(ipText(value));
    else other += 1;
  }
  return { ...names, uris, other };
}

function ipText(bytes: string): string {
  const octets = Buffer.from(bytes, 'binary');
  if (octets.length === 4) return octets.join('.');
  if (octets.length !== 16) throw new Error('an iPAddress name of neither 4 nor 16 bytes');
  const groups = Array.from({ length: 8 }, (_, i) => octets.readUInt16BE(i * 2).toString(16));
  // The URL parser writes an IPv6 host in its canonical text (RFC 5952: '::' for the longest run
  // of zero groups), as the Node's status.addresses and Go's net.IP.String() have it.
  return new URL(`http://[${groups.join(':')}]/`).hostname.slice(1, -1);
}

function children(node: forge.asn1.Asn1 | undefined): forge.asn1.Asn1[] {
  if (node === undefined || !Array.isArray(node.value)) throw new Error('malformed ASN.1 structure');
  return node.value;
}
