import { Agent, request } from 'undici';
import type { CertifiedKeyPair } from '@k8s-on-k8s/shared';

/** The answer to one HTTPS request: status, headers and body text. */
export interface HttpAnswer {
  readonly status: number;
  readonly headers: Record<string, string | string[] | undefined>;
  readonly text: string;
  json(): unknown;
}

/** One HTTPS request to a join server, trusting `caPem`, with optional bearer token and client cert. */
export async function callJoinServer(
  url: string,
  options: {
    method?: 'GET' | 'POST' | 'DELETE';
    caPem: string;
    token?: string;
    body?: unknown;
    rawBody?: string;
    clientCert?: CertifiedKeyPair;
    agent?: Agent;
  },
): Promise<HttpAnswer> {
  const agent =
    options.agent ??
    new Agent({
      connect: { ca: options.caPem, cert: options.clientCert?.certPem, key: options.clientCert?.keyPem },
    });
  try {
    const headers: Record<string, string> = { 'content-type': 'application/json' };
    if (options.token !== undefined) headers.authorization = `Bearer ${options.token}`;
    const body = options.rawBody ?? (options.body === undefined ? null : JSON.stringify(options.body));
    const response = await request(url, {
      method: options.method ?? (body === null ? 'GET' : 'POST'),
      headers,
      body,
      dispatcher: agent,
    });
    const text = await response.body.text();
    return {
      status: response.statusCode,
      headers: response.headers,
      text,
      json: () => JSON.parse(text) as unknown,
    };
  } finally {
    if (options.agent === undefined) await agent.close();
  }
}

/** A valid JoinRequest body for `nodeName`. */
export function joinRequestBody(nodeName: string): Record<string, string> {
  return {
    apiVersion: 'join.k8s-on-k8s.io/v1',
    kind: 'JoinRequest',
    nodeName,
    os: 'linux',
    arch: 'amd64',
  };
}
