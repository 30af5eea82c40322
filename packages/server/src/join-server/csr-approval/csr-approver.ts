import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from 'pino';
import { describeError } from '@k8s-on-k8s/shared';
import { KubernetesApiError, type CertificateSigningRequest, type KubernetesApi } from '../../kube/api.js';
import { BOOTSTRAP_NAMESPACE } from '../join-service.js';
import {
  KUBELET_CLIENT_SIGNER,
  bootstrapRequesterOf,
  existingNodeDenial,
  isDecided,
  reviewNodeClientCsr,
  type CsrReview,
} from './node-client-csr.js';

// The join server's CSR approver: the I/O shell around reviewNodeClientCsr. It list-watches kubelet
// client CSRs, decides those whose requester is one of our bootstrap tokens (approve for the token's
// own node name while no Node of that name exists, deny anything else with the reason), and once a
// CSR of that token has its certificate, deletes the token's Secret: the credential is spent.
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

const MAX_BACKOFF_MS = 30_000;

/** Starts the approver loop: list, then watch from the list's resourceVersion, again after errors. */
export function startCsrApprover(deps: CsrApproverDeps): CsrApprover {
  const log = deps.logger.child({ component: 'csr-approver' });
  const abort = new AbortController();
  // Bootstrap tokens already deleted, so a re-listed issued CSR does not delete again.
  const spent = new Set<string>();
  const handle = (csr: CertificateSigningRequest): Promise<void> => handleCsr(deps, log, spent, csr);

  // A function, not the property: the compiler would take one check of it as true for the loop.
  const stopped = (): boolean => abort.signal.aborted;

  /** Lists, then watches from where each event left off until the apiserver says that is too old. */
  const listAndWatch = async (): Promise<void> => {
    const list = await deps.kube.listCertificateSigningRequests(KUBELET_CLIENT_SIGNER);
    for (const csr of list.items) await handle(csr);
    let resourceVersion = list.resourceVersion;
    while (!stopped()) {
      const events = deps.kube.watchCertificateSigningRequests(
        KUBELET_CLIENT_SIGNER,
        resourceVersion,
        abort.signal,
      );
      for await (const event of events) {
        // 410 Gone (resourceVersion too old) or another failure: list again.
        if (event.type === 'ERROR') return;
        resourceVersion = event.object.metadata.resourceVersion ?? resourceVersion;
        if (event.type === 'ADDED' || event.type === 'MODIFIED') await handle(event.object);
      }
    }
  };

  const loop = async (): Promise<void> => {
    let backoffMs = 500;
    while (!stopped()) {
      try {
        await listAndWatch();
        backoffMs = 500;
      } catch (error) {
        if (stopped()) return;
        log.warn({ err: describeError(error), retryInMs: backoffMs }, 'watching CSRs failed; retrying');
        await sleep(backoffMs, undefined, { signal: abort.signal }).catch(() => undefined);
        backoffMs = Math.min(backoffMs * 2, MAX_BACKOFF_MS);
      }
    }
  };
  const running = loop();
  return {
    async stop() {
      abort.abort();
      await running;
    },
  };
}

/** Decides one CSR, or deletes its bootstrap token once its certificate is issued. */
async function handleCsr(
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
    const type = review.action === 'approve' ? 'Approved' : 'Denied';
    const reason = review.action === 'approve' ? 'K8sOnK8sNodeNameMatches' : review.reason;
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
    if (review.action === 'approve') log.info(context, 'node client CSR approved');
    else log.warn({ ...context, reason, message: review.message }, 'node client CSR denied');
  } catch (error) {
    // Another replica decided first (409), or the CSR is gone (404): nothing left to do.
    if (error instanceof KubernetesApiError && (error.apiStatus === 409 || error.apiStatus === 404)) return;
    throw error;
  }
}
