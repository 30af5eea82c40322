import { ValidationError } from './errors.js';
import { formatRfc3339 } from './duration.js';
import { parseTokenOfShape, checkTokenPart, randomLowerAlnum, type TokenShape } from './token-shape.js';

// kubeadm-format bootstrap tokens, which the hosted apiserver's bootstrap-token authenticator
// accepts (--enable-bootstrap-token-auth). Format and Secret keys follow "Authenticating with
// Bootstrap Tokens" (kubernetes.io/docs/reference/access-authn-authz/bootstrap-tokens) and the
// constants of k8s.io/cluster-bootstrap/token/api.

const BOOTSTRAP_TOKEN: TokenShape = { what: 'bootstrap token', idLength: 6, secretLength: 16 };

// cluster-bootstrap's BootstrapGroupPattern: extra groups must live under system:bootstrappers.
const BOOTSTRAP_GROUP = /^system:bootstrappers:[a-z0-9:-]{0,255}[a-z0-9]$/;

/** The usages kube understands; each becomes a `usage-bootstrap-<usage>: "true"` key. */
export const BOOTSTRAP_TOKEN_USAGES = ['authentication', 'signing'] as const;
export type BootstrapTokenUsage = (typeof BOOTSTRAP_TOKEN_USAGES)[number];

/** A freshly generated bootstrap token and its parts. */
export interface BootstrapToken {
  readonly id: string;
  readonly secret: string;
  readonly token: string;
}

/** What buildBootstrapTokenSecret needs; `secret` is the 16-character token secret. */
export interface BootstrapTokenSecretSpec {
  id: string;
  secret: string;
  expiresAt: Date;
  description?: string;
  usages?: readonly BootstrapTokenUsage[];
  extraGroups?: readonly string[];
  labels?: Readonly<Record<string, string>>;
}

/** The subset of a core/v1 Secret that a bootstrap token needs (no client library types). */
export interface BootstrapTokenSecret {
  apiVersion: 'v1';
  kind: 'Secret';
  metadata: { name: string; namespace: 'kube-system'; labels?: Record<string, string> };
  type: 'bootstrap.kubernetes.io/token';
  stringData: Record<string, string>;
}

/** Mints a new bootstrap token from the CSPRNG. */
export function generateBootstrapToken(): BootstrapToken {
  const id = randomLowerAlnum(BOOTSTRAP_TOKEN.idLength);
  const secret = randomLowerAlnum(BOOTSTRAP_TOKEN.secretLength);
  return { id, secret, token: `${id}.${secret}` };
}

/** Splits a bootstrap token; errors say what is wrong but never echo the secret. */
export function parseBootstrapToken(text: string): { id: string; secret: string } {
  return parseTokenOfShape(BOOTSTRAP_TOKEN, text);
}

// RFC 3339 in UTC without fractional seconds, as kubeadm writes `expiration`.
function formatExpiration(date: Date): string {
  if (Number.isNaN(date.getTime())) {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      'Expected expiresAt to be a valid date, got an invalid Date',
    );
  }
  return formatRfc3339(date);
}

/** Renders the kube-system Secret that makes a bootstrap token valid in the hosted cluster. */
export function buildBootstrapTokenSecret(spec: BootstrapTokenSecretSpec): BootstrapTokenSecret {
  checkTokenPart(BOOTSTRAP_TOKEN, 'id', spec.id);
  checkTokenPart(BOOTSTRAP_TOKEN, 'secret', spec.secret);
  const stringData: Record<string, string> = {
    'token-id': spec.id,
    'token-secret': spec.secret,
    expiration: formatExpiration(spec.expiresAt),
  };
  const usages = spec.usages ?? ['authentication'];
  for (const usage of usages) {
    if (!(BOOTSTRAP_TOKEN_USAGES as readonly string[]).includes(usage)) {
      throw new ValidationError(
        'INVALID_ARGUMENT',
        `Expected each bootstrap token usage to be one of ${BOOTSTRAP_TOKEN_USAGES.join(', ')}, got ${JSON.stringify(usage)}`,
      );
    }
    stringData[`usage-bootstrap-${usage}`] = 'true';
  }
  const groups = spec.extraGroups ?? [];
  for (const group of groups) {
    if (!BOOTSTRAP_GROUP.test(group)) {
      throw new ValidationError(
        'INVALID_ARGUMENT',
        `Expected each bootstrap token extra group to match ${BOOTSTRAP_GROUP.source}, got ${JSON.stringify(group)}`,
      );
    }
  }
  if (groups.length > 0) stringData['auth-extra-groups'] = groups.join(',');
  if (spec.description !== undefined) stringData.description = spec.description;
  const metadata: BootstrapTokenSecret['metadata'] = {
    // The authenticator only looks at Secrets named bootstrap-token-<token-id> in kube-system.
    name: `bootstrap-token-${spec.id}`,
    namespace: 'kube-system',
  };
  if (spec.labels !== undefined) metadata.labels = { ...spec.labels };
  return { apiVersion: 'v1', kind: 'Secret', metadata, type: 'bootstrap.kubernetes.io/token', stringData };
}
