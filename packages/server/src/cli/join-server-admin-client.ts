import type { RequestOptions as HttpsRequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { Agent, request } from 'undici';
import {
  JoinError,
  errorFromBody,
  parseCreatedToken,
  parseErrorBody,
  parseTokenInfo,
  type CreatedToken,
  type TokenInfo,
} from '@k8s-on-k8s/shared';

// The admin side of the join server's API (/v1/tokens), used by `k8s-on-k8s token`. It presents
// the same credentials as kubectl would to the hosted apiserver: the join server hands them to the
// hosted cluster to decide (TokenReview + SubjectAccessReview, or a system:masters certificate).

/** How to reach the join server and who to be there. */
export interface JoinServerAdminClientOptions {
  /** https://host:port of the join server. */
  readonly server: string;
  /** CA that signed the join server's certificate: the hosted cluster's. */
  readonly caPem: string;
  readonly clientCertPem?: string | undefined;
  readonly clientKeyPem?: string | undefined;
  readonly token?: string | undefined;
}

/** What `POST /v1/tokens` accepts (defaults apply server-side). */
export interface CreateTokenInput {
  ttl?: string;
  uses?: number;
  nodeName?: string;
  description?: string;
  labels?: Record<string, string>;
  taints?: { key: string; value?: string; effect: 'NoSchedule' | 'PreferNoSchedule' | 'NoExecute' }[];
}

/** A client of the join server's admin API. */
export class JoinServerAdminClient {
  private readonly agent: Agent;
  private readonly base: string;

  constructor(private readonly options: JoinServerAdminClientOptions) {
    this.base = options.server.replace(/\/$/, '');
    this.agent = new Agent({
      connect: { ca: options.caPem, cert: options.clientCertPem, key: options.clientKeyPem },
    });
  }

  /**
   * Uses a hosted-cluster kubeconfig's credentials and CA (the join server's certificate is signed
   * by the same CA); `caPem` overrides the CA when the kubeconfig has none. Files, tokens and exec
   * plugins of the kubeconfig are resolved the way kubectl resolves them.
   */
  static async fromKubeConfig(
    server: string,
    kubeConfig: KubeConfig,
    source: string,
    caPem?: string,
  ): Promise<JoinServerAdminClient> {
    const tls: HttpsRequestOptions = {};
    await kubeConfig.applyToHTTPSOptions(tls);
    const ca = caPem ?? pemOf(tls.ca);
    if (ca === undefined) {
      throw new JoinError(
        'INVALID_KUBECONFIG',
        `${source} has no certificate-authority-data; give --ca-cert`,
      );
    }
    const headers =
      tls.headers !== undefined && !Array.isArray(tls.headers)
        ? (tls.headers as Record<string, unknown>)
        : {};
    const authorization = headers.Authorization ?? headers.authorization;
    const token =
      typeof authorization === 'string' ? /^Bearer\s+(\S+)$/i.exec(authorization)?.[1] : undefined;
    const clientCertPem = pemOf(tls.cert);
    if (token === undefined && clientCertPem === undefined) {
      throw new JoinError(
        'INVALID_KUBECONFIG',
        `${source}: the current user has neither a token nor a client certificate`,
      );
    }
    return new JoinServerAdminClient({
      server,
      caPem: ca,
      clientCertPem,
      clientKeyPem: pemOf(tls.key),
      token,
    });
  }

  async createToken(input: CreateTokenInput): Promise<CreatedToken> {
    return parseCreatedToken(await this.call('POST', '/v1/tokens', input));
  }

  async listTokens(): Promise<TokenInfo[]> {
    const list = (await this.call('GET', '/v1/tokens')) as { items?: unknown };
    if (!Array.isArray(list.items)) throw new JoinError('SERVER_ERROR', 'the token list has no items');
    return list.items.map(parseTokenInfo);
  }

  async revokeToken(id: string): Promise<TokenInfo> {
    return parseTokenInfo(await this.call('DELETE', `/v1/tokens/${encodeURIComponent(id)}`));
  }

  async close(): Promise<void> {
    await this.agent.close();
  }

  private async call(method: 'GET' | 'POST' | 'DELETE', path: string, body?: unknown): Promise<unknown> {
    const headers: Record<string, string> = { accept: 'application/json' };
    if (this.options.token !== undefined) headers.authorization = `Bearer ${this.options.token}`;
    if (body !== undefined) headers['content-type'] = 'application/json';
    let response;
    try {
      response = await request(`${this.base}${path}`, {
        method,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        dispatcher: this.agent,
      });
    } catch (cause) {
      throw new JoinError('SERVER_UNREACHABLE', `cannot reach the join server at ${this.base}`, {
        cause,
        hint: 'Check --server, and that the join server is running and its certificate is signed by the cluster CA.',
      });
    }
    const text = await response.body.text();
    let value: unknown;
    try {
      value = text === '' ? {} : JSON.parse(text);
    } catch (cause) {
      throw new JoinError(
        'SERVER_ERROR',
        `the join server answered ${response.statusCode} with a body that is not JSON`,
        {
          cause,
        },
      );
    }
    if (response.statusCode >= 200 && response.statusCode < 300) return value;
    throw errorFromBody(parseErrorBody(value));
  }
}

/** client-node hands TLS material over as strings or Buffers (or lists of them); we want one PEM. */
function pemOf(value: unknown): string | undefined {
  if (typeof value === 'string') return value;
  if (Buffer.isBuffer(value)) return value.toString('utf8');
  if (Array.isArray(value) && value.length > 0) return value.map((v) => pemOf(v) ?? '').join('\n');
  return undefined;
}
