import { BOOTSTRAPPERS_GROUP } from '../../contract.js';
import type { CertificateSigningRequest } from '../../kube/api.js';
import { nodeNameOfGroups } from '../node-bootstrap-group.js';
import { OID_COMMON_NAME, OID_ORGANIZATION, readRequestedSubject, type RequestedSubject } from './pkcs10.js';

// Whether a kubelet client CSR may be approved, as a pure function of the CSR (and, from the I/O
// shell, whether its Node exists). The rule: a CSR whose requester is one of our bootstrap tokens is
// approved only for `system:node:<the node that token was minted for>`, in exactly the shape the
// kubelet sends (O=system:nodes and CN, nothing else, no extensions, the kubelet's usages); anything
// else from such a requester is denied with a reason a person can act on. CSRs of anyone else
// (nodes renewing their own certificates, admins) are not ours to decide.
//
// A ValidatingAdmissionPolicy cannot do this: CEL has no PKCS#10 or base64 decoding,
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

/** A denial with our reason prefix, K8sOnK8s<reason>. */
export function deny(reason: string, message: string): CsrReview {
  return { action: 'deny', reason: `K8sOnK8s${reason}`, message };
}
