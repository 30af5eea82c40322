// Errors with a stable code a program can switch on, an HTTP status for the server, and a hint a
// person can act on (../shared/STYLE.md §5). Messages never contain secrets.

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

/** The one error class of the project: a stable code, a message, an HTTP status, a kept cause. */
export class K8sOnK8sError extends Error {
  readonly code: ErrorCode;
  readonly status: number;
  readonly hint: string | undefined;

  constructor(code: ErrorCode, message: string, status = 400, options: K8sOnK8sErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'K8sOnK8sError';
    this.code = code;
    this.status = status;
    this.hint = options.hint;
  }
}

/** Errors of the join protocol: what the join server answers and what the agent reports. */
export class JoinError extends K8sOnK8sError {
  constructor(code: ErrorCode, message: string, status = 400, options: K8sOnK8sErrorOptions = {}) {
    super(code, message, status, options);
    this.name = 'JoinError';
  }
}

/** Bad input from a command line, a file or a request body, named by field and value. */
export class ValidationError extends K8sOnK8sError {
  constructor(code: ErrorCode, message: string, options: K8sOnK8sErrorOptions = {}) {
    super(code, message, 400, options);
    this.name = 'ValidationError';
  }
}

/** Narrows an unknown thrown value to the project's error type. */
export function isK8sOnK8sError(value: unknown): value is K8sOnK8sError {
  return value instanceof K8sOnK8sError;
}
