// The admin side of join tokens apart from HTTP: who may act is decided by the hosted cluster
// (authorizeAdmin); minting stores only a salted hash, and the token itself is shown once.
import type { Logger } from 'pino';
import {
  JOIN_API_VERSION,
  JoinError,
  ValidationError,
  formatDuration,
  formatRfc3339,
  generateJoinToken,
  hashTokenSecret,
  httpStatusOf,
  isK8sOnK8sError,
  parseCreateTokenRequest,
  parseDuration,
  type CreatedToken,
  type TokenInfo,
} from '@k8s-on-k8s/shared';
import type { KubernetesApi } from '../kube/api.js';
import { authorizeAdmin, type AdminCredentials, type AdminIdentity, type AdminVerb } from './admin-auth.js';
import type { JoinServerMetrics } from './metrics.js';
import { rateLimitError, type RateLimiter } from './rate-limiter.js';
import type { JoinServerSettings } from './settings.js';
import { toTokenInfo, type JoinTokenRecord, type JoinTokenStore } from './token-store/store.js';

const MAX_ID_ATTEMPTS = 5;
const TOKEN_ID = /^[a-z0-9]{6}$/;

/** What the token service needs from the world. */
export interface TokenServiceDeps {
  readonly settings: Pick<JoinServerSettings, 'maxTokenTtlMs' | 'publicUrl' | 'caCertHash'>;
  readonly store: JoinTokenStore;
  readonly kube: Pick<KubernetesApi, 'reviewToken' | 'reviewAccess'>;
  /**
   * Failed admin authentications per client IP. Charged and consulted only after the credential
   * was checked, so a valid one always gets in (behind SNAT the address is everyone's); once an
   * address is in debt its failures are answered 429 rather than 401. The TokenReviews an address
   * can cause stay bounded by the per-IP request limit, and a bearer token is no more guessable
   * than a join token.
   */
  readonly adminFailuresPerIp: RateLimiter;
  readonly metrics: Pick<JoinServerMetrics, 'tokensMinted' | 'tokensRevoked'>;
  readonly logger: Logger;
  readonly now: () => Date;
}

/** An admin request as it arrived: its credentials and the caller's address. */
export interface AdminCaller {
  readonly credentials: AdminCredentials;
  readonly ip: string;
}

export interface TokenList {
  readonly apiVersion: typeof JOIN_API_VERSION;
  readonly kind: 'TokenList';
  readonly items: readonly TokenInfo[];
}

/** Minting, listing and revoking join tokens, bound to their dependencies. */
export interface TokenService {
  create(caller: AdminCaller, body: unknown): Promise<CreatedToken>;
  list(caller: AdminCaller): Promise<TokenList>;
  revoke(caller: AdminCaller, id: string): Promise<TokenInfo>;
}

export function createTokenService(deps: TokenServiceDeps): TokenService {
  const audit = deps.logger.child({ audit: true });

  const authorize = async (caller: AdminCaller, verb: AdminVerb): Promise<AdminIdentity> => {
    try {
      return await authorizeAdmin(caller.credentials, verb, deps.kube);
    } catch (error) {
      if (isK8sOnK8sError(error)) {
        const status = httpStatusOf(error);
        if (status === 401 || status === 403) {
          audit.warn(
            { ip: caller.ip, verb, code: error.code, reason: error.message },
            'admin request refused',
          );
        }
        if (status === 401) {
          const wait = deps.adminFailuresPerIp.wait(caller.ip);
          deps.adminFailuresPerIp.charge(caller.ip);
          if (wait > 0) throw rateLimitError(wait, 'failed admin logins from this address');
        }
      }
      throw error;
    }
  };

  return {
    async create(caller, body) {
      const who = await authorize(caller, 'create');
      const request = parseCreateTokenRequest(body ?? {});
      const ttlMs = parseDuration(request.ttl, 'ttl');
      if (ttlMs > deps.settings.maxTokenTtlMs) {
        throw new ValidationError(
          'INVALID_REQUEST',
          `Expected ttl to be at most ${formatDuration(deps.settings.maxTokenTtlMs)} (the server's --max-token-ttl), got ${JSON.stringify(request.ttl)}`,
        );
      }
      const createdAt = deps.now();
      for (let attempt = 1; ; attempt++) {
        const token = generateJoinToken();
        const record: JoinTokenRecord = {
          id: token.id,
          secretHash: hashTokenSecret(token.secret),
          createdAt: formatRfc3339(createdAt),
          expiresAt: formatRfc3339(new Date(createdAt.getTime() + ttlMs)),
          usesTotal: request.uses,
          usesCount: 0,
          revoked: false,
          description: request.description,
          nodeName: request.nodeName,
          labels: request.labels,
          taints: request.taints,
        };
        try {
          await deps.store.create(record);
        } catch (error) {
          // An id collision with an existing token: draw another.
          if (isK8sOnK8sError(error) && error.code === 'CONFLICT' && attempt < MAX_ID_ATTEMPTS) continue;
          throw error;
        }
        deps.metrics.tokensMinted.inc();
        audit.info(
          {
            user: who.username,
            via: who.via,
            tokenId: record.id,
            expiresAt: record.expiresAt,
            uses: record.usesTotal,
            nodeName: record.nodeName,
          },
          'join token created',
        );
        return {
          ...toTokenInfo(record),
          token: token.token,
          // The token goes in the environment, not argv, where `ps` would show it to every user.
          joinCommand: `K8S_JOIN_TOKEN=${token.token} k8s-join join --server ${deps.settings.publicUrl} --ca-cert-hash ${deps.settings.caCertHash}`,
        };
      }
    },

    async list(caller) {
      await authorize(caller, 'list');
      const records = [...(await deps.store.list())].sort(
        (a, b) => a.createdAt.localeCompare(b.createdAt) || a.id.localeCompare(b.id),
      );
      return { apiVersion: JOIN_API_VERSION, kind: 'TokenList', items: records.map(toTokenInfo) };
    },

    async revoke(caller, id) {
      const who = await authorize(caller, 'delete');
      if (!TOKEN_ID.test(id)) {
        throw new ValidationError(
          'INVALID_REQUEST',
          `Expected a token id of 6 characters a-z0-9, got ${JSON.stringify(id.slice(0, 40))}`,
        );
      }
      const record = await deps.store.revoke(id);
      if (record === undefined) {
        throw new JoinError('TOKEN_NOT_FOUND', `no join token ${id}`, {
          hint: 'k8s-on-k8s token list shows the tokens there are.',
        });
      }
      deps.metrics.tokensRevoked.inc();
      audit.info({ user: who.username, via: who.via, tokenId: id }, 'join token revoked');
      return toTokenInfo(record);
    },
  };
}
