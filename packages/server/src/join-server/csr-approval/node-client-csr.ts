import forge from 'node-forge';
import { BOOTSTRAPPERS_GROUP } from '../../contract.js';
import type { CertificateSigningRequest } from '../../kube/api.js';
import { nodeNameOfGroups } from '../node-bootstrap-group.js';

// Whether a kubelet client CSR may be approved, as a pure function of the CSR (and, from the I/O
// shell, whether its Node exists). The rule: a CSR whose requester is one of our bootstrap tokens is
// approved only for `system:node:<the node that token was minted for>`, in exactly the shape the
// kubelet sends (O=system:nodes and CN, nothing else, no extensions, the kubelet's usages); anything
// else from such a requester is denied with a reason a person can act on. CSRs of anyone else
// (nodes renewing their own certificates, admins) are not ours to decide.
//
// The apiserver has already parsed the PKCS#10 request and checked its signature when the CSR was
// created (pkg/apis/certificates/validation: validateCSR → CheckSignature); what is checked here is
// what it says. A ValidatingAdmissionPolicy cannot do this: CEL has no PKCS#10 or base64 decoding,
// and spec.request is PEM, so the CN is not even a substring of it.

/** The signer of kubelet client certificates, which kube-controller-manager's csrsigning signs. */
export const KUBELET_CLIENT_SIGNER = 'kubernetes.io/kube-apiserver-client-kubelet';

/** Who asked, when it was one of our bootstrap tokens. */
export interface BootstrapRequester {
  /** The bootstrap token id: its Secret is bootstrap-token-<id>. */
  readonly bootstrapId: string;
  /** The node the token was minted for; undefined when the token carries no (single) node group. */
  readonly nodeName: string | undefined;
}

/** What to do with a CSR. */
export type CsrReview =
  | { readonly action: 'approve'; readonly message: string }
  | { readonly action: 'deny'; readonly reason: string; readonly message: string };

const BOOTSTRAP_USER = /^system:bootstrap:([a-z0-9]{6})$/;
const OID_COMMON_NAME = '2.5.4.3';
const OID_ORGANIZATION = '2.5.4.10';
// What the kubelet asks for (k8s.io/kubernetes pkg/apis/certificates/helpers.go, kubeletClientRequiredUsages).
const KUBELET_USAGES = [
  ['client auth', 'digital signature'],
  ['client auth', 'digital signature', 'key encipherment'],
];

/** The requester of a CSR, when it is a bootstrap token of ours (it carries our group). */
export function bootstrapRequesterOf(csr: CertificateSigningRequest): BootstrapRequester | undefined {
  const match = BOOTSTRAP_USER.exec(csr.spec.username ?? '');
  const groups = csr.spec.groups ?? [];
  if (match?.[1] === undefined || !groups.includes(BOOTSTRAPPERS_GROUP)) return undefined;
  return { bootstrapId: match[1], nodeName: nodeNameOfGroups(groups) };
}

/** Whether the CSR already has an Approved, Denied or Failed condition. */
export function isDecided(csr: CertificateSigningRequest): boolean {
  return (csr.status?.conditions ?? []).some(
    (c) => ['Approved', 'Denied', 'Failed'].includes(c.type) && c.status === 'True',
  );
}

/** The subject and extension attributes of a PKCS#10 request, or why it cannot be read. */
export interface RequestedSubject {
  /** Each subject attribute as [OID, value], in order. */
  readonly attributes: readonly (readonly [string, string])[];
  /** How many PKCS#10 attributes (extension requests, challenge passwords, …) it carries. */
  readonly requestAttributes: number;
}

/** Reads the subject of the first PEM CERTIFICATE REQUEST block (the one the apiserver reads). */
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
  return { attributes: pairs, requestAttributes: children(attributes).length };
}

function children(node: forge.asn1.Asn1 | undefined): forge.asn1.Asn1[] {
  if (node === undefined || !Array.isArray(node.value)) throw new Error('malformed ASN.1 structure');
  return node.value;
}

/**
 * Step one of approving: the decision that depends on the CSR alone. `approve` still has to pass
 * the I/O shell's check that no Node of that name exists.
 */
export function reviewNodeClientCsr(
  csr: CertificateSigningRequest,
  requester: BootstrapRequester,
): CsrReview {
  const who = `bootstrap token ${requester.bootstrapId}`;
  if (requester.nodeName === undefined) {
    return deny(
      'NoNodeName',
      `${who} carries no ${BOOTSTRAPPERS_GROUP}:node:<name> group, so it is not bound to a node; ` +
        'join with a join token through k8s-join-server (k8s-on-k8s token create) to get one that is',
    );
  }
  const expected = `system:node:${requester.nodeName}`;
  let subject: RequestedSubject;
  try {
    subject = readRequestedSubject(Buffer.from(csr.spec.request, 'base64').toString('utf8'));
  } catch (error) {
    return deny('UnreadableRequest', `the request of this CSR cannot be read: ${(error as Error).message}`);
  }
  const commonNames = subject.attributes.filter(([oid]) => oid === OID_COMMON_NAME).map(([, v]) => v);
  const organizations = subject.attributes.filter(([oid]) => oid === OID_ORGANIZATION).map(([, v]) => v);
  if (commonNames.length !== 1 || commonNames[0] !== expected) {
    return deny(
      'WrongNodeName',
      `${who} was minted for node ${requester.nodeName} and may only ask for CN=${expected}, ` +
        `not ${commonNames.map((cn) => `CN=${cn}`).join(', ') || 'no CN'}; a worker joining as ` +
        `another name needs a join for that name`,
    );
  }
  if (organizations.length !== 1 || organizations[0] !== 'system:nodes') {
    return deny(
      'WrongOrganization',
      `a node client certificate has O=system:nodes and no other organization`,
    );
  }
  if (subject.attributes.length !== 2 || subject.requestAttributes !== 0) {
    return deny(
      'UnexpectedFields',
      'a node client CSR has exactly CN and O in its subject and no extensions or other attributes, as the kubelet sends it',
    );
  }
  const usages = [...(csr.spec.usages ?? [])].sort();
  if (!KUBELET_USAGES.some((allowed) => allowed.join() === usages.join())) {
    return deny(
      'WrongUsages',
      `a node client CSR asks for usages client auth and digital signature (and key encipherment for RSA), not ${usages.join(', ') || 'none'}`,
    );
  }
  return { action: 'approve', message: `${who} was minted for node ${requester.nodeName}` };
}

/** The denial for a CSR whose node name is already a registered Node. */
export function existingNodeDenial(requester: BootstrapRequester & { nodeName: string }): CsrReview {
  return deny(
    'NodeExists',
    `Node ${requester.nodeName} already exists; a joining machine may not take over a registered node's ` +
      `identity. If this machine replaces it, delete the Node (kubectl delete node ${requester.nodeName}) and join again`,
  );
}

function deny(reason: string, message: string): CsrReview {
  return { action: 'deny', reason: `K8sOnK8s${reason}`, message };
}
