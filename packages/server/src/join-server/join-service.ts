// The join protocol apart from HTTP: a presented join token and a JoinRequest in, a join bundle
// out. Order (why a failed join never spends a use, and a use is spent exactly once):
//   1. verify the token without spending it;
//   2. mint the per-node bootstrap token (a Secret in the hosted kube-system);
//   3. consume one use atomically (the store's compare-and-swap);
//   4. compensate: if the consume lost (another agent took the last use, or the token was revoked
//      meanwhile), delete the Secret just minted and refuse.
// A crash between 2 and 3 leaves only a bootstrap token nobody knows, which expires on its own.
// While the token is minted, the server also checks that no Node of that name is registered: a join
// may not take over an existing node's identity (the CSR approver refuses it again, later).
// The bootstrap token is bound to the node name: its second group names the node, and the join
// server's CSR approver (csr-approval/) approves a node client certificate for that name only.
import type { Logger } from 'pino';
import {
  JoinError,
  buildBootstrapTokenSecret,
  describeError,
  generateBootstrapToken,
  hashTokenSecret,
  parseJoinRequest,
  parseJoinToken,
  verifyTokenSecret,
  type JoinBundle,
  type JoinRequest,
} from '@k8s-on-k8s/shared';
import { JOIN_TOKEN_ID_LABEL } from '../contract.js';
import { KubernetesApiError, type KubernetesApi } from '../kube/api.js';
import { renderJoinBundle } from './bundle.js';
import { bootstrapGroupsFor } from './node-bootstrap-group.js';
import type { JoinResult, JoinServerMetrics } from './metrics.js';
import { rateLimitError, type RateLimiter } from './rate-limiter.js';
import type { JoinServerSettings } from './settings.js';
import {
  joinTokenState,
  toTokenInfo,
  type JoinTokenRecord,
  type JoinTokenStore,
} from './token-store/store.js';

/** Where bootstrap-token Secrets live: the tokens the kubelet's TLS bootstrap authenticates with. */
export const BOOTSTRAP_NAMESPACE = 'kube-system';
const MAX_ID_ATTEMPTS = 5;
// A well-formed hash of no secret anyone has: unknown ids are checked against it, so they take as
// long as wrong secrets and the two cannot be told apart by timing either.
const NO_SUCH_TOKEN_HASH = hashTokenSecret('no-such-token-no-such-token-0000');

/** What the join protocol needs from the world. */
export interface JoinServiceDeps {
  readonly settings: JoinServerSettings;
  readonly store: JoinTokenStore;
  readonly kube: Pick<KubernetesApi, 'createSecret' | 'deleteSecret'>;
  /** Whether a Node of that name exists (a watched cache in the server: node-names.ts). */
  readonly nodes: Pick<KubernetesApi, 'nodeExists'>;
  /**
   * Rejected tokens per client IP, and wrong secrets per (client IP, token id). Nothing counts
   * failures against an id alone: ids are not secret (logs, token list, bootstrap Secrets show
   * them), so such a limit is a lock anyone can put on anyone's token, and it protects nothing a
   * 32-character secret (~165 bits) does not: no number of addresses guesses that online.
   */
  readonly limits: { readonly failuresPerIp: RateLimiter; readonly failuresPerIpAndToken: RateLimiter };
  readonly metrics: Pick<JoinServerMetrics, 'joins'>;
  readonly logger: Logger;
  readonly now: () => Date;
}

/** One join attempt as it arrived: the bearer token (if any), the body, the caller's address. */
export interface JoinAttempt {
  readonly presentedToken: string | undefined;
  readonly body: unknown;
  readonly ip: string;
}

/** A bootstrap token minted for one node. */
export interface MintedBootstrapToken {
  readonly id: string;
  readonly token: string;
  readonly expiresAt: Date;
}

/** The join protocol, bound to its dependencies. */
export interface JoinService {
  join(attempt: JoinAttempt): Promise<JoinBundle>;
}

export function createJoinService(deps: JoinServiceDeps): JoinService {
  const audit = deps.logger.child({ audit: true });
  const count = (result: JoinResult): void => {
    deps.metrics.joins.inc({ result });
  };
  return {
    async join(attempt) {
      const token = parsePresentedToken(attempt, deps, audit, count);
      const tokenKey = `${attempt.ip} ${token.id}`;
      const tokenWait = deps.limits.failuresPerIpAndToken.wait(tokenKey);
      if (tokenWait > 0) {
        count('rate_limited');
        throw rateLimitError(tokenWait, 'rejected attempts with this token from this address');
      }
      let request: JoinRequest;
      try {
        request = parseJoinRequest(attempt.body);
        bootstrapGroupsFor(request.nodeName);
      } catch (error) {
        count('invalid_request');
        throw error;
      }
      const context = { ip: attempt.ip, tokenId: token.id, nodeName: request.nodeName };

      const record = await deps.store.get(token.id);
      const refusal = verifyJoinToken(record, token.secret, request.nodeName, deps.now());
      if (refusal !== undefined) {
        if (refusal.reason === 'unknown-token' || refusal.reason === 'wrong-secret') {
          deps.limits.failuresPerIp.charge(attempt.ip);
          if (refusal.reason === 'wrong-secret') deps.limits.failuresPerIpAndToken.charge(tokenKey);
        }
        count(refusal.result);
        audit.warn({ ...context, reason: refusal.reason, boundTo: refusal.boundTo }, 'join refused');
        throw refusal.error;
      }
      // verifyJoinToken returns a refusal for a missing record, so the record is here.
      const usable = record as JoinTokenRecord;

      // In parallel: the Node check costs the join no extra round trip.
      const [minted, registered] = await Promise.allSettled([
        mintBootstrapToken(deps, usable, request.nodeName),
        deps.nodes.nodeExists(request.nodeName),
      ]);
      if (minted.status === 'rejected') {
        count('error');
        throw minted.reason;
      }
      const bootstrap = minted.value;
      if (registered.status === 'rejected' || registered.value) {
        await forgetBootstrapToken(deps, bootstrap.id, token.id);
        if (registered.status === 'rejected') {
          count('error');
          throw new JoinError('UPSTREAM_ERROR', 'the hosted apiserver did not say whether the Node exists', {
            cause: registered.reason,
            hint: 'Retry later; the join token was not used.',
          });
        }
        count('node_exists');
        audit.warn({ ...context, reason: 'node-exists' }, 'join refused');
        throw new JoinError(
          'CONFLICT',
          `Node ${JSON.stringify(request.nodeName)} already exists in the cluster`,
          {
            hint: `A joining machine may not take over a registered node's name. If this machine replaces it, delete the Node first (kubectl delete node ${request.nodeName}); the join token was not used.`,
          },
        );
      }

      let consumed;
      try {
        consumed = await deps.store.consume(token.id, deps.now());
      } catch (error) {
        await forgetBootstrapToken(deps, bootstrap.id, token.id);
        count('error');
        throw error;
      }
      if (!consumed.ok) {
        await forgetBootstrapToken(deps, bootstrap.id, token.id);
        count(consumed.reason === 'not-found' ? 'rejected' : consumed.reason);
        audit.warn({ ...context, reason: consumed.reason }, 'join refused');
        throw rejected();
      }

      const bundle = renderJoinBundle({
        cluster: deps.settings.cluster,
        caPem: deps.settings.caPem,
        nodeName: request.nodeName,
        bootstrapToken: bootstrap.token,
        bootstrapTokenExpiresAt: bootstrap.expiresAt,
        serverTime: deps.now(),
        nodeLabels: usable.labels,
        nodeTaints: usable.taints,
      });
      count('success');
      audit.info(
        {
          ...context,
          bootstrapTokenId: bootstrap.id,
          usesLeft: toTokenInfo(consumed.record).usesLeft,
          os: request.os,
          arch: request.arch,
        },
        'join accepted',
      );
      return bundle;
    },
  };
}

/** Why a join token was refused: the reason for the audit log, the metric, and what the caller sees. */
export interface JoinRefusal {
  readonly reason: 'unknown-token' | 'wrong-secret' | 'expired' | 'revoked' | 'exhausted' | 'wrong-node';
  readonly result: JoinResult;
  readonly error: JoinError;
  /** With wrong-node: the node name the token is for. */
  readonly boundTo?: string | undefined;
}

/**
 * Step 1: may `secret` join node `nodeName` with this record, now? Spends nothing. Every refusal
 * but wrong-node answers the same TOKEN_REJECTED, so a caller learns nothing about which tokens
 * exist; the audit log keeps the real reason.
 */
export function verifyJoinToken(
  record: JoinTokenRecord | undefined,
  secret: string,
  nodeName: string,
  now: Date,
): JoinRefusal | undefined {
  // Verified against a dummy hash when the id is unknown: same work, same time.
  const secretOk = verifyTokenSecret(secret, record?.secretHash ?? NO_SUCH_TOKEN_HASH);
  if (record === undefined) return { reason: 'unknown-token', result: 'rejected', error: rejected() };
  if (!secretOk) return { reason: 'wrong-secret', result: 'rejected', error: rejected() };
  const state = joinTokenState(record, now);
  if (state !== 'usable') return { reason: state, result: state, error: rejected() };
  if (record.nodeName !== undefined && record.nodeName !== nodeName) {
    return {
      reason: 'wrong-node',
      result: 'wrong_node',
      boundTo: record.nodeName,
      error: new JoinError(
        'FORBIDDEN',
        `join token ${record.id} is for another node name, not ${JSON.stringify(nodeName)}`,
        { hint: 'Join with the node name the token was created for (k8s-on-k8s token list shows it).' },
      ),
    };
  }
  return undefined;
}

/**
 * Step 2: a kubeadm-format bootstrap token for `nodeName`, stored as a Secret in the hosted
 * kube-system (the apiserver's bootstrap authenticator reads it). Id collisions draw again.
 */
export async function mintBootstrapToken(
  deps: {
    readonly kube: Pick<KubernetesApi, 'createSecret'>;
    readonly settings: Pick<JoinServerSettings, 'bootstrapTokenTtlMs'>;
    readonly now: () => Date;
  },
  record: JoinTokenRecord,
  nodeName: string,
): Promise<MintedBootstrapToken> {
  const expiresAt = new Date(deps.now().getTime() + deps.settings.bootstrapTokenTtlMs);
  for (let attempt = 1; ; attempt++) {
    const bootstrap = generateBootstrapToken();
    const secret = buildBootstrapTokenSecret({
      id: bootstrap.id,
      secret: bootstrap.secret,
      expiresAt,
      description: `k8s-join-server: node ${nodeName} via join token ${record.id}`,
      extraGroups: bootstrapGroupsFor(nodeName),
      labels: { [JOIN_TOKEN_ID_LABEL]: record.id },
    });
    try {
      await deps.kube.createSecret(BOOTSTRAP_NAMESPACE, secret);
      return { id: bootstrap.id, token: bootstrap.token, expiresAt };
    } catch (error) {
      // A 409 is an id collision with an existing bootstrap token: draw another.
      if (error instanceof KubernetesApiError && error.apiStatus === 409 && attempt < MAX_ID_ATTEMPTS)
        continue;
      throw new JoinError('UPSTREAM_ERROR', 'the hosted apiserver did not accept the bootstrap token', {
        cause: error,
        hint: 'Retry later; the join token was not used.',
      });
    }
  }
}

/** Step 4: deletes a bootstrap token whose join did not go through. Failing is not fatal. */
export async function forgetBootstrapToken(
  deps: Pick<JoinServiceDeps, 'kube' | 'logger'>,
  bootstrapId: string,
  tokenId: string,
): Promise<void> {
  try {
    await deps.kube.deleteSecret(BOOTSTRAP_NAMESPACE, `bootstrap-token-${bootstrapId}`);
  } catch (error) {
    // Nobody knows its secret, and the tokencleaner removes it once it expires.
    deps.logger.warn(
      { tokenId, bootstrapTokenId: bootstrapId, err: describeError(error) },
      'could not delete an unused bootstrap token',
    );
  }
}

/** The one answer for every refused credential. */
export function rejected(): JoinError {
  return new JoinError('TOKEN_REJECTED', 'the join token was not accepted', {
    hint: 'Ask an admin for a new token (k8s-on-k8s token create); the join server logs why this one was refused.',
  });
}

function parsePresentedToken(
  attempt: JoinAttempt,
  deps: JoinServiceDeps,
  audit: Logger,
  count: (result: JoinResult) => void,
): { id: string; secret: string } {
  try {
    if (attempt.presentedToken === undefined) throw rejected();
    return parseJoinToken(attempt.presentedToken);
  } catch {
    deps.limits.failuresPerIp.charge(attempt.ip);
    count('rejected');
    audit.warn(
      { ip: attempt.ip, reason: attempt.presentedToken === undefined ? 'no-token' : 'malformed-token' },
      'join refused',
    );
    throw rejected();
  }
}
