// Errors with a stable code a program can switch on and a hint a person can act on. The HTTP
// status is not the error's business: the join server's edge maps codes to statuses
// (httpStatusOf in protocol.ts). Messages never contain secrets.
import { redactSecrets } from './redact.js';

/** Every code the project's programs may report. Stable: scripts and tests match on them. */
export const ERROR_CODES = [
  'INVALID_ARGUMENT',
  'INVALID_TOKEN_FORMAT',
  'INVALID_DURATION',
  'INVALID_CA_HASH',
  'INVALID_NODE_NAME',
  'INVALID_KUBECONFIG',
  'INVALID_CERTIFICATE',
  'INVALID_REQUEST',
  'INVALID_BUNDLE',
  'BODY_TOO_LARGE',
  'UNAUTHENTICATED',
  'FORBIDDEN',
  'TOKEN_REJECTED',
  'TOKEN_EXPIRED',
  'TOKEN_REVOKED',
  'TOKEN_EXHAUSTED',
  'TOKEN_NOT_FOUND',
  'RATE_LIMITED',
  'CA_PIN_MISMATCH',
  'SERVER_UNREACHABLE',
  'SERVER_ERROR',
  'UPSTREAM_ERROR',
  'PRECONDITION_FAILED',
  'STORE_ERROR',
  'CONFLICT',
  'NOT_FOUND',
  'TIMEOUT',
] as const;

export type ErrorCode = (typeof ERROR_CODES)[number];

export interface K8sOnK8sErrorOptions {
  cause?: unknown;
  /** What a person can do about it, printed under the message by the CLIs. */
  hint?: string;
}

/** The one error class of the project: a stable code, a message, a hint, a kept cause. */
export class K8sOnK8sError extends Error {
  readonly code: ErrorCode;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, options: K8sOnK8sErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'K8sOnK8sError';
    this.code = code;
    this.hint = options.hint;
  }
}

/** Errors of the join protocol: what the join server answers and what the agent reports. */
export class JoinError extends K8sOnK8sError {
  constructor(code: ErrorCode, message: string, options: K8sOnK8sErrorOptions = {}) {
    super(code, message, options);
    this.name = 'JoinError';
  }
}

/** Bad input from a command line, a file or a request body, named by field and value. */
export class ValidationError extends K8sOnK8sError {
  constructor(code: ErrorCode, message: string, options: K8sOnK8sErrorOptions = {}) {
    super(code, message, options);
    this.name = 'ValidationError';
  }
}

/** Narrows an unknown thrown value to the project's error type. */
export function isK8sOnK8sError(value: unknown): value is K8sOnK8sError {
  return value instanceof K8sOnK8sError;
}

/**
 * A one-line description of an error and its causes, for logs and for messages to people; known
 * errors show their code. Messages are secret-free by construction, and redacted once more here.
 */
export function describeError(error: unknown): string {
  const parts: string[] = [];
  let current: unknown = error;
  for (let depth = 0; current !== undefined && depth < 5; depth++) {
    if (current instanceof Error) {
      parts.push(isK8sOnK8sError(current) ? `${current.code}: ${current.message}` : current.message);
      current = current.cause;
    } else {
      parts.push(typeof current === 'string' ? current : `a thrown ${typeof current}`);
      current = undefined;
    }
  }
  return redactSecrets(parts.join(' <- '));
}

/** The error for bad input from flags, files or requests: INVALID_ARGUMENT with a message naming field and value. */
export function invalidArgument(message: string, options: K8sOnK8sErrorOptions = {}): ValidationError {
  return new ValidationError('INVALID_ARGUMENT', message, options);
}
