import { Agent, request } from 'undici';
import {
  JOIN_API_VERSION,
  JoinError,
  type ErrorCode,
  type K8sOnK8sErrorOptions,
  errorFromBody,
  parseErrorBody,
  parseJoinBundle,
  type JoinBundle,
  type JoinRequest,
} from '@k8s-on-k8s/shared';

/**
 * The join server answered 429 or 503: busy or briefly failing, worth another try (join-retry.ts).
 * `retryAfterMs` is its Retry-After, when it sent one.
 */
export class JoinServerBusyError extends JoinError {
  readonly retryAfterMs: number | undefined;

  constructor(
    code: ErrorCode,
    message: string,
    retryAfterMs: number | undefined,
    options: K8sOnK8sErrorOptions = {},
  ) {
    super(code, message, options);
    this.name = 'JoinServerBusyError';
    this.retryAfterMs = retryAfterMs;
  }
}

/** Where and how to ask for a join bundle. */
export interface JoinCall {
  readonly serverUrl: URL;
  /** The only CA trusted for this call: the pinned one from discoverServerCa. */
  readonly caPem: string;
  readonly token: string;
  readonly request: Omit<JoinRequest, 'apiVersion' | 'kind'>;
  readonly timeoutMs?: number;
}

/**
 * POSTs /v1/join over TLS verified against the pinned CA only, and returns the validated bundle.
 * The token goes in the Authorization header; it is never logged or put in an error.
 */
export async function requestJoinBundle(call: JoinCall): Promise<JoinBundle> {
  const dispatcher = new Agent({ connect: { ca: call.caPem, timeout: call.timeoutMs ?? 10_000 } });
  try {
    const body: JoinRequest = { apiVersion: JOIN_API_VERSION, kind: 'JoinRequest', ...call.request };
    let response;
    try {
      response = await request(new URL('/v1/join', call.serverUrl), {
        method: 'POST',
        dispatcher,
        headers: { authorization: `Bearer ${call.token}`, 'content-type': 'application/json' },
        body: JSON.stringify(body),
        headersTimeout: call.timeoutMs ?? 30_000,
        bodyTimeout: call.timeoutMs ?? 30_000,
      });
    } catch (cause) {
      throw new JoinError(
        'SERVER_UNREACHABLE',
        `join request to ${call.serverUrl.origin} failed: ${(cause as Error).message}`,
        {
          cause,
          hint: 'the server passed the CA pin but the request failed; if the message mentions the certificate, the server name in --server may not be in its certificate',
        },
      );
    }
    const text = await response.body.text();
    let json: unknown;
    try {
      json = JSON.parse(text);
    } catch (cause) {
      throw new JoinError(
        'SERVER_ERROR',
        `join server answered HTTP ${response.statusCode} with a non-JSON body`,
        { cause },
      );
    }
    if (response.statusCode !== 200) {
      const rejection = explainRejection(json, response.statusCode);
      if (response.statusCode === 429 || response.statusCode === 503) {
        throw new JoinServerBusyError(
          rejection.code,
          rejection.message,
          parseRetryAfter(response.headers['retry-after'], new Date()),
          rejection.hint === undefined ? {} : { hint: rejection.hint },
        );
      }
      throw rejection;
    }
    return parseJoinBundle(json);
  } finally {
    await dispatcher.close();
  }
}

function explainRejection(json: unknown, status: number): JoinError {
  let error: JoinError;
  try {
    error = errorFromBody(parseErrorBody(json));
  } catch {
    return new JoinError('SERVER_ERROR', `join server answered HTTP ${status}`);
  }
  if (status === 401) {
    return new JoinError(error.code, error.message, {
      hint: 'the join token is wrong, expired, used up or revoked; ask an admin for a new one (k8s-on-k8s token create)',
    });
  }
  if (status === 429) {
    return new JoinError(error.code, error.message, {
      hint: 'the join server is limiting requests from this address; wait and retry',
    });
  }
  return error;
}

/** Retry-After as milliseconds: delay-seconds or an HTTP date (RFC 9110 §10.2.3); undefined if absent or unreadable. */
export function parseRetryAfter(value: string | string[] | undefined, now: Date): number | undefined {
  const text = Array.isArray(value) ? value[0] : value;
  if (text === undefined) return undefined;
  if (/^\d{1,9}$/.test(text.trim())) return Number(text.trim()) * 1000;
  const at = Date.parse(text);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now.getTime());
}
