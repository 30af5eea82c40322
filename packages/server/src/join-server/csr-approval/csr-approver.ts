import type { Logger } from 'pino';
import { KubernetesApiError, type CertificateSigningRequest, type KubernetesApi } from '../../kube/api.js';
import { runListWatch } from '../../kube/list-watch.js';
import { BOOTSTRAP_NAMESPACE } from '../join-service.js';
import {
  KUBELET_CLIENT_SIGNER,
  bootstrapRequesterOf,
  existingNodeDenial,
  isDecided,
  reviewNodeClientCsr,
  type CsrReview,
} from './node-client-csr.js';
import { KUBELET_SERVING_SIGNER, requestingNodeOf, reviewKubeletServingCsr } from './kubelet-serving-csr.js';

// The join server's CSR approver: the I/O shell around reviewNodeClientCsr and
// reviewKubeletServingCsr. It list-watches two signers' CSRs:
//   - kubelet client CSRs: decides those whose requester is one of our bootstrap tokens (approve for
//     the token's own node name while no Node of that name exists, deny anything else with the
//     reason), and once a CSR of that token has its certificate, deletes the token's Secret: the
//     credential is spent;
//   - kubelet serving CSRs: decides those whose requester is a node (approve for the Node's own
//     names and addresses, none another Node reports; deny anything else with the reason).
//
// kube-controller-manager's csrapproving no longer approves these (the hosted cluster does not
// bind our bootstrappers group to certificatesigningrequests:nodeclient); it still approves nodes'
// renewals of their own certificates (selfnodeclient), and csrsigning signs what is approved.
//
// Every replica runs one: decisions are idempotent, and a replica that loses the race gets a 409.

/** What the approver needs. */
export interface CsrApproverDeps {
  readonly kube: Pick<
    KubernetesApi,
    | 'listCertificateSigningRequests'
    | 'watchCertificateSigningRequests'
    | 'updateCertificateSigningRequestApproval'
    | 'nodeExists'
    | 'getNode'
    | 'listNodes'
    | 'deleteSecret'
  >;
  readonly logger: Logger;
  readonly now: () => Date;
}

/** A running approver. */
export interface CsrApprover {
  /** Ends the watch and resolves once the loop has stopped. */
  stop(): Promise<void>;
}

/** Starts one approver loop per signer: list, then watch from the list's resourceVersion, again after errors. */
export function startCsrApprover(deps: CsrApproverDeps): CsrApprover {
  const log = deps.logger.child({ component: 'csr-approver' });
  const abort = new AbortController();
  // Bootstrap tokens already deleted, so a re-listed issued CSR does not delete again.
  const spent = new Set<string>();
  const running = Promise.all([
    watchSigner(deps, log, abort.signal, KUBELET_CLIENT_SIGNER, (csr) =>
      handleClientCsr(deps, log, spent, csr),
    ),
    watchSigner(deps, log, abort.signal, KUBELET_SERVING_SIGNER, (csr) => handleServingCsr(deps, log, csr)),
  ]);
  return {
    async stop() {
      abort.abort();
      await running;
    },
  };
}

/** Runs `handle` on every CSR of `signerName`, listed then watched, until `signal` aborts. */
function watchSigner(
  deps: CsrApproverDeps,
  log: Logger,
  signal: AbortSignal,
  signerName: string,
  handle: (csr: CertificateSigningRequest) => Promise<void>,
): Promise<void> {
  return runListWatch(
    {
      list: () => deps.kube.listCertificateSigningRequests(signerName),
      watch: (resourceVersion, abort) =>
        deps.kube.watchCertificateSigningRequests(signerName, resourceVersion, abort),
    },
    {
      async listed(items) {
        for (const csr of items) await handle(csr);
      },
      async event(type, csr) {
        if (type !== 'DELETED') await handle(csr);
      },
    },
    { signal, log, what: { signerName } },
  );
}

/** Decides one client CSR, or deletes its bootstrap token once its certificate is issued. */
async function handleClientCsr(
  deps: CsrApproverDeps,
  log: Logger,
  spent: Set<string>,
  csr: CertificateSigningRequest,
): Promise<void> {
  if (csr.spec.signerName !== KUBELET_CLIENT_SIGNER) return;
  const requester = bootstrapRequesterOf(csr);
  if (requester === undefined) return;
  const context = {
    csr: csr.metadata.name,
    bootstrapTokenId: requester.bootstrapId,
    nodeName: requester.nodeName,
  };
  try {
    if ((csr.status?.certificate ?? '') !== '') {
      if (spent.has(requester.bootstrapId)) return;
      const deleted = await deps.kube.deleteSecret(
        BOOTSTRAP_NAMESPACE,
        `bootstrap-token-${requester.bootstrapId}`,
      );
      spent.add(requester.bootstrapId);
      if (deleted) log.info(context, 'node certificate issued; bootstrap token deleted');
      return;
    }
    if (isDecided(csr)) return;
    let review: CsrReview = reviewNodeClientCsr(csr, requester);
    if (review.action === 'approve' && requester.nodeName !== undefined) {
      if (await deps.kube.nodeExists(requester.nodeName)) {
        review = existingNodeDenial({ ...requester, nodeName: requester.nodeName });
      }
    }
    await decide(deps, csr, review, 'K8sOnK8sNodeNameMatches');
    if (review.action === 'approve') log.info(context, 'node client CSR approved');
    else log.warn({ ...context, reason: review.reason, message: review.message }, 'node client CSR denied');
  } catch (error) {
    if (!isLostRace(error)) throw error;
  }
}

/** Decides one serving CSR of a node, from its Node and every Node's addresses. */
async function handleServingCsr(
  deps: CsrApproverDeps,
  log: Logger,
  csr: CertificateSigningRequest,
): Promise<void> {
  if (csr.spec.signerName !== KUBELET_SERVING_SIGNER || isDecided(csr)) return;
  const nodeName = requestingNodeOf(csr);
  if (nodeName === undefined) return;
  const context = { csr: csr.metadata.name, nodeName };
  try {
    const [node, nodes] = await Promise.all([deps.kube.getNode(nodeName), deps.kube.listNodes()]);
    const review = reviewKubeletServingCsr(csr, nodeName, node, nodes.items);
    await decide(deps, csr, review, 'K8sOnK8sNodeOwnsNames');
    if (review.action === 'approve')
      log.info({ ...context, message: review.message }, 'kubelet serving CSR approved');
    else
      log.warn({ ...context, reason: review.reason, message: review.message }, 'kubelet serving CSR denied');
  } catch (error) {
    if (!isLostRace(error)) throw error;
  }
}

/** Writes the review's Approved or Denied condition through the /approval subresource. */
async function decide(
  deps: CsrApproverDeps,
  csr: CertificateSigningRequest,
  review: CsrReview,
  approvedReason: string,
): Promise<void> {
  const type = review.action === 'approve' ? 'Approved' : 'Denied';
  const reason = review.action === 'approve' ? approvedReason : review.reason;
  const now = deps
    .now()
    .toISOString()
    .replace(/\.\d+Z$/, 'Z');
  await deps.kube.updateCertificateSigningRequestApproval({
    ...csr,
    status: {
      ...csr.status,
      conditions: [
        ...(csr.status?.conditions ?? []),
        { type, status: 'True', reason, message: review.message, lastUpdateTime: now },
      ],
    },
  });
}

/** Another replica decided first (409), or the CSR is gone (404): nothing left to do. */
function isLostRace(error: unknown): boolean {
  return error instanceof KubernetesApiError && (error.apiStatus === 409 || error.apiStatus === 404);
}
