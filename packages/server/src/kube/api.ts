import type { RequestOptions as HttpsRequestOptions } from 'node:https';
import type { KubeConfig } from '@kubernetes/client-node';
import { Pool, type Dispatcher } from 'undici';
import { K8sOnK8sError } from '@k8s-on-k8s/shared';

// The few calls the join server makes to the hosted apiserver, over one keep-alive connection pool.
// @kubernetes/client-node 1.4 builds a new https.Agent for every request (a TLS handshake per
// call), which would cap joins at the handshake rate; it is still used to load the kubeconfig or
// the in-cluster config (kube/kubeconfig.ts), so exec plugins, token files and the like work as
// kubectl's do.

/** Object metadata as far as we read or write it. */
export interface ObjectMeta {
  name: string;
  namespace?: string;
  resourceVersion?: string;
  labels?: Record<string, string>;
  annotations?: Record<string, string>;
}

/** A core/v1 Secret; `data` values are base64 as on the wire. */
export interface SecretObject {
  apiVersion: 'v1';
  kind: 'Secret';
  metadata: ObjectMeta;
  type?: string;
  data?: Record<string, string>;
  stringData?: Record<string, string>;
}

/** A certificates.k8s.io/v1 CertificateSigningRequest as far as the approver reads and writes it. */
export interface CertificateSigningRequest {
  apiVersion?: string;
  kind?: string;
  metadata: { name: string; uid?: string; resourceVersion?: string };
  spec: {
    request: string;
    signerName: string;
    usages?: string[];
    username?: string;
    groups?: string[];
  };
  status?: {
    conditions?: {
      type: string;
      status: string;
      reason?: string;
      message?: string;
      lastUpdateTime?: string;
    }[];
    certificate?: string;
  };
}

/** A core/v1 Node as far as the CSR approver reads it. */
export interface NodeObject {
  metadata: { name: string; resourceVersion?: string };
  status?: { addresses?: { type: string; address: string }[] };
}

/** One event of a watch: ADDED, MODIFIED, DELETED, BOOKMARK or ERROR (then `object` is a Status). */
export interface WatchEvent<T> {
  readonly type: 'ADDED' | 'MODIFIED' | 'DELETED' | 'BOOKMARK' | 'ERROR';
  readonly object: T;
}

const CSR_PATH = '/apis/certificates.k8s.io/v1/certificatesigningrequests';

/** Who a bearer token belongs to, from a TokenReview. */
export interface ReviewedUser {
  readonly username: string;
  readonly uid?: string | undefined;
  readonly groups: readonly string[];
  readonly extra?: Readonly<Record<string, readonly string[]>> | undefined;
}

/** The resource an admin request acts on, for a SubjectAccessReview. */
export interface ResourceAttributes {
  readonly group: string;
  readonly resource: string;
  readonly verb: string;
  readonly name?: string;
}

/** An apiserver answer other than 2xx: `apiStatus` and `reason` are the apiserver's own. */
export class KubernetesApiError extends K8sOnK8sError {
  constructor(
    readonly apiStatus: number,
    readonly reason: string,
    message: string,
  ) {
    super(apiStatus === 409 ? 'CONFLICT' : apiStatus === 404 ? 'NOT_FOUND' : 'UPSTREAM_ERROR', message);
    this.name = 'KubernetesApiError';
  }
}

function apiError(statusCode: number, text: string, method: string, path: string): KubernetesApiError {
  let status: { message?: unknown; reason?: unknown } = {};
  try {
    status = JSON.parse(text) as typeof status;
  } catch {
    // Not a metav1.Status; the HTTP status says enough.
  }
  const reason = typeof status.reason === 'string' ? status.reason : '';
  const detail = typeof status.message === 'string' ? status.message : text.slice(0, 200);
  return new KubernetesApiError(
    statusCode,
    reason,
    `the apiserver answered ${String(statusCode)}${reason === '' ? '' : ` ${reason}`} to ${method} ${path}: ${detail}`,
  );
}

/** How to reach and authenticate to an apiserver. */
export interface KubernetesApiOptions {
  readonly server: string;
  readonly ca?: string | Buffer | undefined;
  readonly cert?: string | Buffer | undefined;
  readonly key?: string | Buffer | undefined;
  /** Extra headers per request (a bearer token); called per request so rotated tokens are used. */
  readonly headers?: () => Promise<Record<string, string>>;
  readonly connections?: number;
  readonly timeoutMs?: number;
}

const HEADER_REFRESH_MS = 60_000;

/** A small typed client for the apiserver calls the join server and its tools make. */
export class KubernetesApi {
  private readonly pool: Pool;
  private readonly prefix: string;

  constructor(private readonly options: KubernetesApiOptions) {
    const url = new URL(options.server);
    this.prefix = url.pathname.replace(/\/$/, '');
    this.pool = new Pool(url.origin, {
      connections: options.connections ?? 64,
      headersTimeout: options.timeoutMs ?? 30_000,
      bodyTimeout: options.timeoutMs ?? 30_000,
      connect: { ca: options.ca, cert: options.cert, key: options.key },
    });
  }

  /** A client with a loaded kubeconfig's server and credentials (see loadKubeConfig). */
  static async fromKubeConfig(kc: KubeConfig): Promise<KubernetesApi> {
    const server = kc.getCurrentCluster()?.server;
    if (server === undefined) {
      throw new K8sOnK8sError('INVALID_KUBECONFIG', 'the kubeconfig has no current cluster with a server');
    }
    const tls: HttpsRequestOptions = {};
    await kc.applyToHTTPSOptions(tls);
    let cached: { headers: Record<string, string>; at: number } | undefined;
    const headers = async (): Promise<Record<string, string>> => {
      if (cached === undefined || Date.now() - cached.at > HEADER_REFRESH_MS) {
        const options: HttpsRequestOptions = {};
        await kc.applyToHTTPSOptions(options);
        const out: Record<string, string> = {};
        for (const [name, value] of Object.entries(options.headers ?? {})) {
          if (typeof value === 'string') out[name.toLowerCase()] = value;
        }
        cached = { headers: out, at: Date.now() };
      }
      return cached.headers;
    };
    return new KubernetesApi({
      server,
      ca: tls.ca as string | Buffer | undefined,
      cert: tls.cert as string | Buffer | undefined,
      key: tls.key as string | Buffer | undefined,
      headers,
    });
  }

  /** Sends one request; resolves with the parsed JSON body of a 2xx answer. */
  async request<T>(method: 'GET' | 'POST' | 'PUT' | 'DELETE', path: string, body?: unknown): Promise<T> {
    const response = await this.send(method, path, body);
    const text = await response.body.text();
    if (response.statusCode >= 200 && response.statusCode < 300) {
      return (text === '' ? {} : JSON.parse(text)) as T;
    }
    throw apiError(response.statusCode, text, method, path);
  }

  private async send(
    method: 'GET' | 'POST' | 'PUT' | 'DELETE',
    path: string,
    body: unknown,
    stream?: { signal: AbortSignal; bodyTimeoutMs: number },
  ): Promise<Dispatcher.ResponseData> {
    const headers: Record<string, string> = {
      accept: 'application/json',
      ...(await this.options.headers?.()),
    };
    if (body !== undefined) headers['content-type'] = 'application/json';
    try {
      return await this.pool.request({
        method,
        path: this.prefix + path,
        headers,
        body: body === undefined ? null : JSON.stringify(body),
        ...(stream === undefined ? {} : { signal: stream.signal, bodyTimeout: stream.bodyTimeoutMs }),
      });
    } catch (cause) {
      throw new K8sOnK8sError('UPSTREAM_ERROR', `cannot reach the apiserver for ${method} ${path}`, {
        cause,
      });
    }
  }

  /**
   * Watches `path` (a collection URL with `watch=1` and its query) and yields each event as it
   * arrives, until the apiserver ends the watch (its timeoutSeconds) or `signal` aborts it.
   */
  async *watch<T>(path: string, signal: AbortSignal, timeoutSeconds: number): AsyncGenerator<WatchEvent<T>> {
    const separator = path.includes('?') ? '&' : '?';
    const response = await this.send(
      'GET',
      `${path}${separator}watch=1&allowWatchBookmarks=true&timeoutSeconds=${String(timeoutSeconds)}`,
      undefined,
      // Bookmarks come about once a minute at most; the apiserver ends the watch at timeoutSeconds.
      { signal, bodyTimeoutMs: (timeoutSeconds + 30) * 1000 },
    );
    if (response.statusCode < 200 || response.statusCode >= 300) {
      throw apiError(response.statusCode, await response.body.text(), 'GET', path);
    }
    let partial = '';
    for await (const chunk of response.body) {
      partial += (chunk as Buffer).toString('utf8');
      const lines = partial.split('\n');
      partial = lines.pop() ?? '';
      for (const line of lines) if (line.trim() !== '') yield JSON.parse(line) as WatchEvent<T>;
    }
  }

  createSecret(namespace: string, secret: SecretObject): Promise<SecretObject> {
    return this.request('POST', `/api/v1/namespaces/${namespace}/secrets`, secret);
  }

  /** Reads a Secret; undefined when it does not exist. */
  async getSecret(namespace: string, name: string): Promise<SecretObject | undefined> {
    try {
      return await this.request<SecretObject>('GET', `/api/v1/namespaces/${namespace}/secrets/${name}`);
    } catch (error) {
      if (error instanceof KubernetesApiError && error.apiStatus === 404) return undefined;
      throw error;
    }
  }

  /** Replaces a Secret; with metadata.resourceVersion set this is a compare-and-swap (409 if stale). */
  replaceSecret(namespace: string, secret: SecretObject): Promise<SecretObject> {
    return this.request('PUT', `/api/v1/namespaces/${namespace}/secrets/${secret.metadata.name}`, secret);
  }

  /** Deletes a Secret; resolves false when it was already gone. */
  async deleteSecret(namespace: string, name: string, resourceVersion?: string): Promise<boolean> {
    const body =
      resourceVersion === undefined
        ? undefined
        : { apiVersion: 'v1', kind: 'DeleteOptions', preconditions: { resourceVersion } };
    try {
      await this.request('DELETE', `/api/v1/namespaces/${namespace}/secrets/${name}`, body);
      return true;
    } catch (error) {
      if (error instanceof KubernetesApiError && error.apiStatus === 404) return false;
      throw error;
    }
  }

  async listSecrets(namespace: string, labelSelector: string): Promise<SecretObject[]> {
    const list = await this.request<{ items?: SecretObject[] }>(
      'GET',
      `/api/v1/namespaces/${namespace}/secrets?labelSelector=${encodeURIComponent(labelSelector)}`,
    );
    return list.items ?? [];
  }

  /** Whether a Node of that name is registered. */
  async nodeExists(name: string): Promise<boolean> {
    try {
      await this.request('GET', `/api/v1/nodes/${encodeURIComponent(name)}`);
      return true;
    } catch (error) {
      if (error instanceof KubernetesApiError && error.apiStatus === 404) return false;
      throw error;
    }
  }

  /** The Node of that name, or undefined when none is registered. */
  async getNode(name: string): Promise<NodeObject | undefined> {
    try {
      return await this.request<NodeObject>('GET', `/api/v1/nodes/${encodeURIComponent(name)}`);
    } catch (error) {
      if (error instanceof KubernetesApiError && error.apiStatus === 404) return undefined;
      throw error;
    }
  }

  /** Every registered Node, with the list's resourceVersion to watch from. */
  async listNodes(): Promise<{ items: NodeObject[]; resourceVersion: string }> {
    const list = await this.request<{ items?: NodeObject[]; metadata?: { resourceVersion?: string } }>(
      'GET',
      '/api/v1/nodes',
    );
    return { items: list.items ?? [], resourceVersion: list.metadata?.resourceVersion ?? '' };
  }

  /** Watches Nodes from `resourceVersion`. */
  watchNodes(resourceVersion: string, signal: AbortSignal): AsyncGenerator<WatchEvent<NodeObject>> {
    return this.watch(`/api/v1/nodes?resourceVersion=${resourceVersion}`, signal, 300);
  }

  /** Lists the CSRs of one signer, with the list's resourceVersion to watch from. */
  async listCertificateSigningRequests(
    signerName: string,
  ): Promise<{ items: CertificateSigningRequest[]; resourceVersion: string }> {
    const list = await this.request<{
      items?: CertificateSigningRequest[];
      metadata?: { resourceVersion?: string };
    }>('GET', `${CSR_PATH}?fieldSelector=${encodeURIComponent(`spec.signerName=${signerName}`)}`);
    return { items: list.items ?? [], resourceVersion: list.metadata?.resourceVersion ?? '' };
  }

  /** Watches the CSRs of one signer from `resourceVersion`. */
  watchCertificateSigningRequests(
    signerName: string,
    resourceVersion: string,
    signal: AbortSignal,
  ): AsyncGenerator<WatchEvent<CertificateSigningRequest>> {
    const query = `fieldSelector=${encodeURIComponent(`spec.signerName=${signerName}`)}&resourceVersion=${resourceVersion}`;
    return this.watch(`${CSR_PATH}?${query}`, signal, 300);
  }

  /** Replaces a CSR's approval conditions (the /approval subresource; 409 if it changed meanwhile). */
  updateCertificateSigningRequestApproval(
    csr: CertificateSigningRequest,
  ): Promise<CertificateSigningRequest> {
    return this.request('PUT', `${CSR_PATH}/${encodeURIComponent(csr.metadata.name)}/approval`, csr);
  }

  /**
   * Asks the apiserver who a bearer token belongs to, for `audiences` (empty: the apiserver's own);
   * undefined when it is not valid for them. The user comes with the audiences the apiserver
   * says the token is valid for, which the caller checks (an authenticator that ignores
   * audiences answers none of the requested ones).
   */
  async reviewToken(
    token: string,
    audiences: readonly string[] = [],
  ): Promise<(ReviewedUser & { readonly audiences: readonly string[] }) | undefined> {
    const review = await this.request<{
      status?: {
        authenticated?: boolean;
        audiences?: string[];
        user?: { username?: string; uid?: string; groups?: string[]; extra?: Record<string, string[]> };
      };
    }>('POST', '/apis/authentication.k8s.io/v1/tokenreviews', {
      apiVersion: 'authentication.k8s.io/v1',
      kind: 'TokenReview',
      spec: { token, ...(audiences.length === 0 ? {} : { audiences }) },
    });
    const user = review.status?.user;
    if (review.status?.authenticated !== true || user?.username === undefined) return undefined;
    return {
      username: user.username,
      uid: user.uid,
      groups: user.groups ?? [],
      extra: user.extra,
      audiences: review.status.audiences ?? [],
    };
  }

  /** Asks the apiserver whether `user` may do `attributes`; resolves with the decision and reason. */
  async reviewAccess(
    user: ReviewedUser,
    attributes: ResourceAttributes,
  ): Promise<{ allowed: boolean; reason: string }> {
    const review = await this.request<{ status?: { allowed?: boolean; reason?: string } }>(
      'POST',
      '/apis/authorization.k8s.io/v1/subjectaccessreviews',
      {
        apiVersion: 'authorization.k8s.io/v1',
        kind: 'SubjectAccessReview',
        spec: {
          user: user.username,
          uid: user.uid,
          groups: user.groups,
          extra: user.extra,
          resourceAttributes: attributes,
        },
      },
    );
    return { allowed: review.status?.allowed === true, reason: review.status?.reason ?? '' };
  }

  /** Resolves with the apiserver's gitVersion; /version is open to every client. */
  async version(): Promise<string> {
    const info = await this.request<{ gitVersion?: string }>('GET', '/version');
    return info.gitVersion ?? 'unknown';
  }

  async close(): Promise<void> {
    await this.pool.close();
  }
}
