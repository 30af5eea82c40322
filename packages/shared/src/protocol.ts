import { isIP } from 'node:net';
import { z } from 'zod';
import { ERROR_CODES, JoinError, ValidationError, type ErrorCode, type K8sOnK8sError } from './errors.js';
import { isDns1123Subdomain } from './dns-names.js';
import { parseDuration } from './duration.js';
import { parseHostPort, type HostPort } from './host-port.js';
import { kubeletLabelRefusal } from './node-labels.js';
import { validateNodeName } from './node-name.js';
import { parseJoinToken } from './token.js';

// The join protocol, version 1: what the agent sends to `POST /v1/join`, what the join server
// answers, the admin token API and the error body. Every message carries apiVersion and kind so
// a later version can be told apart. Unknown fields are dropped rather than rejected, so an older
// agent can read a newer server's bundle. Parsed values are deeply frozen.
// Messages name the field path and problem; they quote values only for fields that are not
// secret (bootstrapKubeconfig and tokens are never quoted).

/** The apiVersion of every message of the join protocol v1. */
export const JOIN_API_VERSION = 'join.k8s-on-k8s.io/v1';

/**
 * The address every worker carries on `lo` for the hosted apiserver: the apiserver advertises it,
 * so the hosted `kubernetes` Service points at it, and each worker's forwarder relays it to the
 * real apiserver (docs/architecture.md, the VIP).
 */
export const API_VIP = '10.199.199.199';

/** The API endpoint kubelets and pods use: the VIP on 443. */
export const DEFAULT_API_ENDPOINT = `https://${API_VIP}:443`;

/**
 * The address and port of a bundle's `apiServer.endpoint`: `https://IP[:PORT]` and nothing else.
 * The host is put on the worker's `lo` by an `ExecStartPre=ip addr …` line and the forwarder
 * listens on it, so only an IP literal will do (a name cannot go on an interface, and a character
 * such as `;`, `$` or `%` would mean something to systemd); undefined when the text is not one.
 */
export function parseApiEndpoint(text: string): HostPort | undefined {
  let url: URL;
  try {
    url = new URL(text);
  } catch {
    return undefined;
  }
  const bare = /^https:\/\/(\[[0-9a-fA-F:.]+\]|[0-9.]+)(?::(\d{1,5}))?\/?$/.exec(text);
  if (url.protocol !== 'https:' || bare?.[1] === undefined) return undefined;
  const host = bare[1].replace(/^\[|\]$/g, '');
  const port = bare[2] === undefined ? 443 : Number(bare[2]);
  if (isIP(host) === 0 || port < 1 || port > 65535) return undefined;
  return Object.freeze({ host, port });
}

/** What parseApiEndpoint takes, for error messages. */
const API_ENDPOINT_FORM = 'https://IP[:PORT] (an IP literal: it goes on lo and into a systemd unit)';

/**
 * Returns `text` if it is an endpoint parseApiEndpoint takes, else throws naming `field`: the join
 * server checks its --api-endpoint with it, so it starts only with an endpoint every agent accepts.
 */
export function validateApiEndpoint(text: string, field: string): string {
  if (parseApiEndpoint(text) === undefined) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `Expected ${field} to be ${API_ENDPOINT_FORM}, got ${JSON.stringify(text)}`,
    );
  }
  return text;
}

const MAX_QUOTED = 80;

function quote(value: unknown): string {
  // JSON.stringify gives undefined for undefined, which its type does not admit.
  const text = (JSON.stringify(value) as string | undefined) ?? String(value);
  return text.length > MAX_QUOTED ? `${text.slice(0, MAX_QUOTED)}…` : text;
}

// Turns an exception thrown by one of our validators into a zod issue with the same message.
function refineWith(check: (value: string) => unknown) {
  return (value: string, ctx: z.RefinementCtx): void => {
    try {
      check(value);
    } catch (err) {
      ctx.addIssue({
        code: z.ZodIssueCode.custom,
        message: err instanceof Error ? err.message : String(err),
      });
    }
  };
}

const apiVersion = z.literal(JOIN_API_VERSION);
const nodeName = z.string().superRefine(refineWith(validateNodeName));
const rfc3339 = z
  .string()
  .datetime({ offset: true, message: 'must be an RFC 3339 timestamp like 2030-01-02T03:04:05Z' });
const nonEmpty = z.string().min(1, 'must not be empty').max(256);

// Label keys and values as the apiserver checks them (IsQualifiedName / IsValidLabelValue);
// checking here turns a kubelet start-up failure on the worker into an error at token creation.
const QUALIFIED_NAME = /^[A-Za-z0-9](?:[-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$/;

function isLabelKey(key: string): boolean {
  const slash = key.indexOf('/');
  if (slash === -1) return QUALIFIED_NAME.test(key);
  return isDns1123Subdomain(key.slice(0, slash)) && QUALIFIED_NAME.test(key.slice(slash + 1));
}

function isLabelValue(value: string): boolean {
  return value === '' || QUALIFIED_NAME.test(value);
}

const labelKey = z
  .string()
  .refine(isLabelKey, (key) => ({ message: `label key ${quote(key)} is not a valid Kubernetes label key` }));
const labelValue = z.string().refine(isLabelValue, (value) => ({
  message: `${quote(value)} is not a valid label value (at most 63 letters, digits, "-", "_", "." )`,
}));
const labels = z.record(labelKey, labelValue);
// Labels a token promises its nodes: only those the node's kubelet may set on itself.
const kubeletLabels = labels.superRefine((record, ctx) => {
  for (const key of Object.keys(record)) {
    const refusal = kubeletLabelRefusal(key);
    if (refusal !== undefined) ctx.addIssue({ code: z.ZodIssueCode.custom, path: [key], message: refusal });
  }
});
const taint = z.object({
  key: labelKey,
  value: labelValue.optional(),
  effect: z.enum(['NoSchedule', 'PreferNoSchedule', 'NoExecute']),
});

const hostPort = z.string().superRefine(refineWith((text) => parseHostPort(text, 'an upstream')));
const apiEndpoint = z.string().refine(
  (text) => parseApiEndpoint(text) !== undefined,
  (text) => ({
    message: `must be ${API_ENDPOINT_FORM}, got ${quote(text)}`,
  }),
);
const ip = z.string().refine(
  (text) => isIP(text) !== 0,
  (text) => ({ message: `must be an IP address, got ${quote(text)}` }),
);
// A single range or a dual-stack pair, as --service-cluster-ip-range and --cluster-cidr accept.
const cidrs = z.string().refine(
  (text) => text.split(',').every((part) => z.string().cidr().safeParse(part).success),
  (text) => ({
    message: `must be a CIDR such as 10.96.0.0/12 (or two, comma-separated), got ${quote(text)}`,
  }),
);
const kubernetesVersion = z
  .string()
  .regex(/^v\d+\.\d+\.\d+(?:[-+][0-9A-Za-z.+-]+)?$/, 'must be a Kubernetes version like v1.31.2');
const pemCertificate = z
  .string()
  .refine(
    (text) => text.includes('-----BEGIN CERTIFICATE-----'),
    'must be a PEM certificate (BEGIN CERTIFICATE)',
  );

/** What the agent sends to `POST /v1/join`; the token travels in the Authorization header. */
export const JoinRequestSchema = z.object({
  apiVersion,
  kind: z.literal('JoinRequest'),
  nodeName,
  os: nonEmpty,
  arch: nonEmpty,
  kernelVersion: nonEmpty.optional(),
  agentVersion: nonEmpty.optional(),
});
export type JoinRequest = z.output<typeof JoinRequestSchema>;

/** Everything a worker needs to join, answered by the join server for a valid join token. */
export const JoinBundleSchema = z.object({
  apiVersion,
  kind: z.literal('JoinBundle'),
  nodeName,
  caCert: pemCertificate,
  apiServer: z.object({
    endpoint: apiEndpoint.default(DEFAULT_API_ENDPOINT),
    upstreams: z.array(hostPort).min(1, 'must list at least one host:port'),
  }),
  /**
   * konnectivity: the worker relays VIP:port to these proxy-server endpoints with a second
   * forwarder, which its konnectivity agent dials. Absent: the control plane runs no konnectivity.
   */
  konnectivity: z
    .object({
      port: z.number().int().min(1).max(65535),
      upstreams: z.array(hostPort).min(1, 'must list at least one host:port'),
    })
    .optional(),
  bootstrapKubeconfig: z.string().min(1, 'must not be empty'),
  bootstrapTokenExpiresAt: rfc3339,
  cluster: z.object({
    dnsIP: ip,
    domain: z.string().refine(
      (text) => isDns1123Subdomain(text),
      (text) => ({ message: `must be a DNS domain like cluster.local, got ${quote(text)}` }),
    ),
    kubernetesVersion,
    serviceCIDR: cidrs.optional(),
    podCIDR: cidrs.optional(),
  }),
  kubeletConfig: z
    .object({
      apiVersion: z.literal('kubelet.config.k8s.io/v1beta1'),
      kind: z.literal('KubeletConfiguration'),
    })
    .passthrough(),
  serverTime: rfc3339,
  nodeLabels: labels.optional(),
  nodeTaints: z.array(taint).optional(),
});
export type JoinBundle = z.output<typeof JoinBundleSchema>;
/** A bundle as the server writes it, before defaults (apiServer.endpoint may be omitted). */
export type JoinBundleInput = z.input<typeof JoinBundleSchema>;

/** The admin's `POST /v1/tokens` body. */
export const CreateTokenRequestSchema = z.object({
  ttl: z
    .string()
    .default('1h')
    .superRefine(
      refineWith((text) => {
        if (parseDuration(text, 'ttl') <= 0)
          throw new Error(`Expected ttl to be longer than 0s, got ${quote(text)}`);
      }),
    ),
  /** How many joins the token allows; 0 means unlimited. */
  uses: z.number().int().min(0).max(Number.MAX_SAFE_INTEGER).default(1),
  nodeName: nodeName.optional(),
  description: z.string().max(256, 'must be at most 256 characters').optional(),
  labels: kubeletLabels.optional(),
  taints: z.array(taint).optional(),
});
export type CreateTokenRequest = z.output<typeof CreateTokenRequestSchema>;

/** A join token as listed by the admin API: never its secret. */
export const TokenInfoSchema = z.object({
  id: z.string().regex(/^[a-z0-9]{6}$/, 'must be a 6-character token id'),
  expiresAt: rfc3339,
  /** null when the token has unlimited uses. */
  usesLeft: z.number().int().min(0).nullable(),
  usesTotal: z.number().int().min(0),
  revoked: z.boolean(),
  description: z.string().optional(),
  nodeName: nodeName.optional(),
  createdAt: rfc3339,
});
export type TokenInfo = z.output<typeof TokenInfoSchema>;

/** Answer to token creation: the only time the token's secret is shown. */
export const CreatedTokenSchema = TokenInfoSchema.extend({
  token: z.string().superRefine(refineWith(parseJoinToken)),
  joinCommand: z.string().min(1),
});
export type CreatedToken = z.output<typeof CreatedTokenSchema>;

/** The body of every non-2xx answer of the join server and the admin API. */
export const ErrorBodySchema = z.object({
  apiVersion,
  kind: z.literal('Error'),
  // Any well-formed code, not only ERROR_CODES: a newer server may know codes an older agent does not.
  code: z.string().regex(/^[A-Z][A-Z0-9_]{0,63}$/, 'must be an UPPER_SNAKE error code'),
  message: z.string(),
  hint: z.string().optional(),
});
export type ErrorBody = z.output<typeof ErrorBodySchema>;

function formatPath(path: readonly (string | number)[]): string {
  let out = '';
  for (const part of path) {
    if (typeof part === 'number') out += `[${part}]`;
    else if (/^[A-Za-z_$][\w$]*$/.test(part)) out += out === '' ? part : `.${part}`;
    else out += `[${JSON.stringify(part)}]`;
  }
  return out === '' ? '(the body)' : out;
}

function describeIssue(issue: z.ZodIssue): string {
  const path = formatPath(issue.path);
  switch (issue.code) {
    case z.ZodIssueCode.invalid_type:
      return issue.received === 'undefined'
        ? `${path} is required`
        : `${path} must be ${issue.expected}, got ${issue.received}`;
    case z.ZodIssueCode.invalid_literal:
      return issue.received === undefined
        ? `${path} is required (${quote(issue.expected)})`
        : `${path} must be ${quote(issue.expected)}, got ${quote(issue.received)}`;
    default:
      return `${path}: ${issue.message}`;
  }
}

function deepFreeze<T>(value: T): T {
  if (typeof value === 'object' && value !== null && !Object.isFrozen(value)) {
    Object.freeze(value);
    for (const child of Object.values(value)) deepFreeze(child);
  }
  return value;
}

// Parses with a schema and reports every problem in one message, so a person fixes them at once.
function parseWith<S extends z.ZodTypeAny>(
  schema: S,
  value: unknown,
  fail: (message: string) => K8sOnK8sError,
  kind: string,
): z.output<S> {
  const result = schema.safeParse(value);
  if (!result.success) {
    throw fail(`Invalid ${kind}: ${result.error.issues.map(describeIssue).join('; ')}`);
  }
  return deepFreeze(result.data as z.output<S>);
}

/** Validates a join request received by the join server. */
export function parseJoinRequest(value: unknown): JoinRequest {
  return parseWith(JoinRequestSchema, value, (m) => new ValidationError('INVALID_REQUEST', m), 'JoinRequest');
}

/** Validates a join bundle received by the agent; a bad bundle is the server's fault (502). */
export function parseJoinBundle(value: unknown): JoinBundle {
  return parseWith(
    JoinBundleSchema,
    value,
    (m) =>
      new JoinError('INVALID_BUNDLE', m, {
        hint: 'The join server and this agent may be incompatible versions.',
      }),
    'JoinBundle',
  );
}

/** Validates the admin's token creation request, applying the defaults (ttl 1h, one use). */
export function parseCreateTokenRequest(value: unknown): CreateTokenRequest {
  return parseWith(
    CreateTokenRequestSchema,
    value,
    (m) => new ValidationError('INVALID_REQUEST', m),
    'CreateTokenRequest',
  );
}

/** Validates a token listing entry received by the CLI from the admin API. */
export function parseTokenInfo(value: unknown): TokenInfo {
  return parseWith(TokenInfoSchema, value, (m) => new JoinError('SERVER_ERROR', m), 'TokenInfo');
}

/** Validates the admin API's answer to token creation. */
export function parseCreatedToken(value: unknown): CreatedToken {
  return parseWith(CreatedTokenSchema, value, (m) => new JoinError('SERVER_ERROR', m), 'CreatedToken');
}

/** Renders an error for the wire; the message is already secret-free (errors.ts). */
export function errorBody(err: K8sOnK8sError): ErrorBody {
  const body: ErrorBody = {
    apiVersion: JOIN_API_VERSION,
    kind: 'Error',
    code: err.code,
    message: err.message,
  };
  if (err.hint !== undefined) body.hint = err.hint;
  return body;
}

/** Validates an error body received from the server. */
export function parseErrorBody(value: unknown): ErrorBody {
  return parseWith(ErrorBodySchema, value, (m) => new JoinError('SERVER_ERROR', m), 'error body');
}

/** Turns a received error body back into a JoinError; codes this version does not know become SERVER_ERROR. */
export function errorFromBody(body: ErrorBody): JoinError {
  const known = (ERROR_CODES as readonly string[]).includes(body.code);
  const code: ErrorCode = known ? (body.code as ErrorCode) : 'SERVER_ERROR';
  const message = known ? body.message : `${body.code}: ${body.message}`;
  return new JoinError(code, message, body.hint === undefined ? {} : { hint: body.hint });
}

/**
 * The HTTP status the join server answers each error code with: part of the protocol, so the
 * server's edge and any client read the same table. Rejected credentials are 401 whatever the
 * reason (the body never tells which), and failures of what the server depends on are 503 so a
 * client retries.
 */
export const HTTP_STATUS_BY_CODE: Readonly<Record<ErrorCode, number>> = {
  INVALID_ARGUMENT: 400,
  INVALID_TOKEN_FORMAT: 400,
  INVALID_DURATION: 400,
  INVALID_CA_HASH: 400,
  INVALID_NODE_NAME: 400,
  INVALID_KUBECONFIG: 400,
  INVALID_CERTIFICATE: 400,
  INVALID_REQUEST: 400,
  INVALID_BUNDLE: 502,
  BODY_TOO_LARGE: 413,
  UNAUTHENTICATED: 401,
  FORBIDDEN: 403,
  TOKEN_REJECTED: 401,
  TOKEN_EXPIRED: 401,
  TOKEN_REVOKED: 401,
  TOKEN_EXHAUSTED: 401,
  TOKEN_NOT_FOUND: 404,
  RATE_LIMITED: 429,
  CA_PIN_MISMATCH: 502,
  SERVER_UNREACHABLE: 503,
  SERVER_ERROR: 500,
  UPSTREAM_ERROR: 503,
  PRECONDITION_FAILED: 412,
  STORE_ERROR: 503,
  CONFLICT: 409,
  NOT_FOUND: 404,
  TIMEOUT: 504,
};

/** The HTTP status for an error (see HTTP_STATUS_BY_CODE). */
export function httpStatusOf(error: Pick<K8sOnK8sError, 'code'>): number {
  return HTTP_STATUS_BY_CODE[error.code];
}
