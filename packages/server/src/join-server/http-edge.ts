// Where HTTP meets the join protocol: what a request carries (client address, bearer token,
// client certificate), and how a thrown error becomes a status and an error body. The protocol
// code below this knows nothing of requests and responses.
import type { TLSSocket } from 'node:tls';
import type { NextFunction, Request, Response } from 'express';
import type { Logger } from 'pino';
import {
  JoinError,
  K8sOnK8sError,
  ValidationError,
  describeError,
  errorBody,
  httpStatusOf,
  isK8sOnK8sError,
} from '@k8s-on-k8s/shared';
import { KubernetesApiError } from '../kube/api.js';
import type { PresentedCertificate } from './admin-auth.js';
import { RateLimitError } from './rate-limiter.js';

/** Request bodies larger than this are refused with 413: a JoinRequest is a few hundred bytes. */
export const MAX_BODY_BYTES = 4096;

/**
 * The Retry-After of every 503 (the store or the hosted apiserver failing, or not ready): the
 * agent's --retry waits exactly this long instead of its own backoff, and clients without one
 * learn that trying again is the remedy (RFC 9110 §15.6.4).
 */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 5;

export function clientIp(req: Request): string {
  return req.socket.remoteAddress ?? 'unknown';
}

export function bearerToken(req: Request): string | undefined {
  const header = req.headers.authorization;
  if (header === undefined) return undefined;
  return /^Bearer\s+(\S+)\s*$/i.exec(header)?.[1];
}

/** The client certificate the TLS layer saw, if any. */
export function presentedCertificate(req: Request): PresentedCertificate | undefined {
  const socket = req.socket as Partial<TLSSocket>;
  if (typeof socket.getPeerCertificate !== 'function') return undefined;
  const cert = socket.getPeerCertificate();
  // Node answers an empty object when the client sent no certificate.
  if (Object.keys(cert).length === 0) return undefined;
  const asList = (value: string | string[] | undefined): string[] =>
    value === undefined ? [] : Array.isArray(value) ? value : [value];
  const subject = cert.subject as Partial<Record<string, string | string[]>> | undefined;
  return {
    authorized: socket.authorized === true,
    authorizationError: socket.authorizationError?.toString(),
    commonName: asList(subject?.CN)[0] ?? '',
    organizations: asList(subject?.O),
  };
}

type AsyncHandler = (req: Request, res: Response) => Promise<void>;

/** An express handler for an async function: its rejection goes to the error handler. */
export function route(handler: AsyncHandler) {
  return (req: Request, res: Response, next: NextFunction): void => {
    handler(req, res).catch(next);
  };
}

/**
 * The status of an error: the protocol's table for our codes; any unexpected answer of the hosted
 * apiserver is a bad gateway, whatever code it was filed under.
 */
export function httpStatusFor(error: K8sOnK8sError): number {
  return error instanceof KubernetesApiError ? 502 : httpStatusOf(error);
}

/** The last middleware: a coded error body for every failure; details of 5xx go to the log only. */
export function errorHandler(logger: Logger) {
  return (error: unknown, req: Request, res: Response, next: NextFunction): void => {
    const err = toK8sOnK8sError(error);
    const status = httpStatusFor(err);
    if (status >= 500) {
      logger.error(
        { method: req.method, path: req.path, code: err.code, err: describeError(error) },
        'request failed',
      );
    }
    // Too late for an error body: express's own handler closes the connection.
    if (res.headersSent) {
      next(error);
      return;
    }
    if (err instanceof RateLimitError) res.setHeader('Retry-After', String(err.retryAfterSeconds));
    if (status === 503) res.setHeader('Retry-After', String(UNAVAILABLE_RETRY_AFTER_SECONDS));
    res.status(status).json(errorBody(status >= 500 ? publicServerError(err) : err));
  };
}

/**
 * What a caller (most are anonymous) is told of a server-side failure: our own JoinErrors were
 * written for them; anything else (an apiserver's answer, a store's error) may name users,
 * namespaces, paths or resources, so it keeps its code and gets a generic message. The log has
 * the details.
 */
export function publicServerError(err: K8sOnK8sError): K8sOnK8sError {
  if (err instanceof JoinError) return err;
  const what =
    err.code === 'UPSTREAM_ERROR' || err instanceof KubernetesApiError
      ? 'the hosted apiserver did not complete the request'
      : err.code === 'STORE_ERROR'
        ? 'the token store did not complete the request'
        : 'internal error';
  return new K8sOnK8sError(err instanceof KubernetesApiError ? 'UPSTREAM_ERROR' : err.code, what, {
    hint: "Retry later; the join server's log has the details.",
  });
}

// body-parser reports its own errors with a `type`; everything unexpected becomes a bare 500
// whose details go to the log only.
function toK8sOnK8sError(error: unknown): K8sOnK8sError {
  if (isK8sOnK8sError(error)) return error;
  const type = (error as { type?: unknown } | null)?.type;
  if (type === 'entity.too.large') {
    return new K8sOnK8sError('BODY_TOO_LARGE', `request bodies are limited to ${MAX_BODY_BYTES} bytes`);
  }
  if (type === 'entity.parse.failed') {
    return new ValidationError('INVALID_REQUEST', 'the request body is not valid JSON');
  }
  if (type === 'encoding.unsupported' || type === 'charset.unsupported') {
    return new ValidationError('INVALID_REQUEST', 'the request body must be UTF-8 JSON');
  }
  return new K8sOnK8sError('SERVER_ERROR', 'internal error', { cause: error });
}
