import type { CertificateSigningRequest, NodeObject } from '../../kube/api.js';
import { deny, type CsrReview } from './node-client-csr.js';
import {
  OID_COMMON_NAME,
  OID_ORGANIZATION,
  readRequestedSubject,
  requestedSubjectAltNames,
  type RequestedSubject,
  type SubjectAltNames,
} from './pkcs10.js';

// Whether a kubelet serving CSR may be approved, as a pure function of the CSR and the Nodes. The
// kubelets run with serverTLSBootstrap, so each asks for its serving certificate with its own node
// credentials (spec.username system:node:<name>); kube-controller-manager signs what is approved
// with the kubelet-serving CA, the one CA the apiserver trusts for kubelet connections
// (--kubelet-certificate-authority). The rule, as kubeadm's documentation asks of such an approver:
//   - the requester is the node itself, and the subject exactly O=system:nodes, CN=system:node:<name>;
//   - the usages are the kubelet's (server auth, digital signature, key encipherment for RSA);
//   - the names are the Node's own: DNS names among its Hostname/InternalDNS/ExternalDNS addresses,
//     IPs among its InternalIP/ExternalIP addresses, at least one name, no e-mail or URI names;
//   - no IP is one that another Node reports, so a node cannot get a certificate the apiserver
//     would accept for its neighbour.
// A kubelet sets its own Node's addresses, so an address no other Node claims is believed: that is
// what the apiserver dials, and what the certificate must then prove.

/** The signer of kubelet serving certificates. */
export const KUBELET_SERVING_SIGNER = 'kubernetes.io/kubelet-serving';

const NODE_USER = /^system:node:(.+)$/;
// What the kubelet asks for (pkg/kubelet/certificate: server auth, digital signature, and key
// encipherment only for RSA keys).
const SERVING_USAGES = [
  ['digital signature', 'server auth'],
  ['digital signature', 'key encipherment', 'server auth'],
];
const DNS_ADDRESS_TYPES = ['Hostname', 'InternalDNS', 'ExternalDNS'];
const IP_ADDRESS_TYPES = ['InternalIP', 'ExternalIP'];

/** The node a serving CSR's requester is, or undefined when the requester is not a node. */
export function requestingNodeOf(csr: CertificateSigningRequest): string | undefined {
  const match = NODE_USER.exec(csr.spec.username ?? '');
  if (match?.[1] === undefined || !(csr.spec.groups ?? []).includes('system:nodes')) return undefined;
  return match[1];
}

/**
 * Reviews a serving CSR of node `nodeName` (see requestingNodeOf) against its Node (undefined when
 * none is registered) and every Node (for addresses claimed by others).
 */
export function reviewKubeletServingCsr(
  csr: CertificateSigningRequest,
  nodeName: string,
  node: NodeObject | undefined,
  nodes: readonly NodeObject[],
): CsrReview {
  const who = `node ${nodeName}`;
  if (node === undefined) {
    return deny(
      'NoSuchNode',
      `${who} is not a registered Node; a kubelet asks for its serving certificate after registering`,
    );
  }
  let subject: RequestedSubject;
  let names: SubjectAltNames | undefined;
  try {
    subject = readRequestedSubject(Buffer.from(csr.spec.request, 'base64').toString('utf8'));
    names = requestedSubjectAltNames(subject);
  } catch (error) {
    return deny('UnreadableRequest', `the request of this CSR cannot be read: ${(error as Error).message}`);
  }
  const values = (oid: string) => subject.attributes.filter(([o]) => o === oid).map(([, v]) => v);
  const expected = `system:node:${nodeName}`;
  const commonNames = values(OID_COMMON_NAME);
  if (commonNames.length !== 1 || commonNames[0] !== expected) {
    return deny('WrongNodeName', `${who} may only ask for a serving certificate with CN=${expected}`);
  }
  const organizations = values(OID_ORGANIZATION);
  if (organizations.length !== 1 || organizations[0] !== 'system:nodes' || subject.attributes.length !== 2) {
    return deny(
      'UnexpectedFields',
      'a kubelet serving CSR has exactly O=system:nodes and the CN in its subject',
    );
  }
  const usages = [...(csr.spec.usages ?? [])].sort();
  if (!SERVING_USAGES.some((allowed) => allowed.join() === usages.join())) {
    return deny(
      'WrongUsages',
      `a kubelet serving CSR asks for server auth and digital signature (and key encipherment for RSA), not ${usages.join(', ') || 'none'}`,
    );
  }
  if (subject.extensions.some((e) => e.oid !== '2.5.29.17')) {
    return deny('UnexpectedFields', 'a kubelet serving CSR requests no extension but its subjectAltName');
  }
  if (names === undefined || names.dnsNames.length + names.ipAddresses.length === 0) {
    return deny('NoNames', 'a kubelet serving CSR names at least one DNS name or IP address of its Node');
  }
  if (names.emailAddresses.length + names.uris.length + names.other > 0) {
    return deny('UnexpectedNames', 'a kubelet serving CSR names only DNS names and IP addresses');
  }
  const own = (types: readonly string[]) =>
    new Set((node.status?.addresses ?? []).filter((a) => types.includes(a.type)).map((a) => a.address));
  const ownDns = own(DNS_ADDRESS_TYPES);
  const ownIps = own(IP_ADDRESS_TYPES);
  const foreignDns = names.dnsNames.filter((name) => !ownDns.has(name));
  const foreignIps = names.ipAddresses.filter((ip) => !ownIps.has(ip));
  if (foreignDns.length + foreignIps.length > 0) {
    return deny(
      'NamesNotOfNode',
      `${who} asks for ${[...foreignDns, ...foreignIps].join(', ')}, which its Node's status.addresses ` +
        `(${[...ownDns, ...ownIps].join(', ') || 'none'}) do not list`,
    );
  }
  const taken = names.ipAddresses.flatMap((ip) =>
    nodes
      .filter((other) => other.metadata.name !== nodeName)
      .filter((other) =>
        (other.status?.addresses ?? []).some((a) => IP_ADDRESS_TYPES.includes(a.type) && a.address === ip),
      )
      .map((other) => `${ip} (Node ${other.metadata.name})`),
  );
  if (taken.length > 0) {
    return deny(
      'AddressOfAnotherNode',
      `${who} asks for ${taken.join(', ')}: another Node reports that address, and a certificate for it ` +
        `would let this node answer the apiserver in its place`,
    );
  }
  return {
    action: 'approve',
    message: `${who} asks for its own names: ${[...names.dnsNames, ...names.ipAddresses].join(', ')}`,
  };
}
