import { JoinError } from '@k8s-on-k8s/shared';
import type { KubernetesApi, ReviewedUser } from '../kube/api.js';
import { JOIN_SERVER_AUDIENCE, JOIN_TOKEN_RESOURCE } from '../contract.js';

// Who may mint, list and revoke join tokens is decided by the hosted cluster, not by us: either a
// client certificate signed by the cluster CA with O=system:masters (what kube-apiserver itself
// treats as a superuser), or a bearer token that a TokenReview accepts and whose user a
// SubjectAccessReview allows the verb on JOIN_TOKEN_RESOURCE (a virtual resource: no CRD needed).
// Bearer tokens must be minted for JOIN_SERVER_AUDIENCE (`kubectl create token --audience`): the
// TokenReview asks for it and the answer must confirm it, so a token meant for the apiserver, say
// a pod's service-account token, is refused here.
// Nothing else gets in, and the refusal says which of the two ways was tried and why it failed.

/** The group kube-apiserver treats as superusers; a client certificate in it may do anything here too. */
const MASTERS = 'system:masters';

/** What an admin request may do; mapped from POST, GET and DELETE. */
export type AdminVerb = 'create' | 'list' | 'delete';

/** The client certificate the TLS layer saw; `authorized` means it chains to the cluster CA. */
export interface PresentedCertificate {
  readonly authorized: boolean;
  readonly authorizationError?: string | undefined;
  readonly commonName: string;
  readonly organizations: readonly string[];
}

/** The credentials an admin request carried. */
export interface AdminCredentials {
  readonly certificate?: PresentedCertificate | undefined;
  readonly bearerToken?: string | undefined;
}

/** An authenticated, authorized admin; `via` says how, for the audit log. */
export interface AdminIdentity {
  readonly username: string;
  readonly groups: readonly string[];
  readonly via: 'client-certificate' | 'bearer-token';
}

const HINT =
  'Use a kubeconfig of the hosted cluster whose user is allowed to ' +
  `<verb> ${JOIN_TOKEN_RESOURCE.resource}.${JOIN_TOKEN_RESOURCE.group} ` +
  '(e.g. bound to the ClusterRole k8s-on-k8s:join-token-admin), or a client certificate in system:masters.';

function hintFor(verb: AdminVerb): string {
  return HINT.replace('<verb>', verb);
}

function describeUser(user: { username: string; groups: readonly string[] }): string {
  return `${JSON.stringify(user.username)} (groups: ${user.groups.length === 0 ? 'none' : user.groups.join(', ')})`;
}

/** Authenticates and authorizes an admin request, or throws UNAUTHENTICATED or FORBIDDEN saying why. */
export async function authorizeAdmin(
  credentials: AdminCredentials,
  verb: AdminVerb,
  api: Pick<KubernetesApi, 'reviewToken' | 'reviewAccess'>,
): Promise<AdminIdentity> {
  const cert = credentials.certificate;
  if (cert !== undefined && (cert.authorized || credentials.bearerToken === undefined)) {
    if (!cert.authorized) {
      throw new JoinError(
        'UNAUTHENTICATED',
        `the client certificate CN=${cert.commonName} is not signed by the hosted cluster's CA (${cert.authorizationError ?? 'unverified'})`,
        { hint: hintFor(verb) },
      );
    }
    const user = { username: cert.commonName, groups: cert.organizations };
    if (!cert.organizations.includes(MASTERS)) {
      throw new JoinError(
        'FORBIDDEN',
        `client certificate user ${describeUser(user)} is not in ${MASTERS}; only ${MASTERS} certificates are admins here, other users need a bearer token allowed to ${verb} ${JOIN_TOKEN_RESOURCE.resource}.${JOIN_TOKEN_RESOURCE.group}`,
        { hint: hintFor(verb) },
      );
    }
    return { ...user, via: 'client-certificate' };
  }
  const token = credentials.bearerToken;
  if (token === undefined) {
    throw new JoinError(
      'UNAUTHENTICATED',
      'admin requests need a bearer token of the hosted cluster or a client certificate signed by its CA',
      { hint: hintFor(verb) },
    );
  }
  let user: (ReviewedUser & { readonly audiences: readonly string[] }) | undefined;
  try {
    user = await api.reviewToken(token, [JOIN_SERVER_AUDIENCE]);
  } catch (cause) {
    throw new JoinError('UPSTREAM_ERROR', 'the hosted apiserver could not review the bearer token', {
      cause,
    });
  }
  if (user?.audiences.includes(JOIN_SERVER_AUDIENCE) !== true) {
    throw new JoinError(
      'UNAUTHENTICATED',
      `the bearer token was not accepted by the hosted cluster's TokenReview for audience ${JOIN_SERVER_AUDIENCE}`,
      {
        hint: `Mint the token for the join server: kubectl create token NAME --audience ${JOIN_SERVER_AUDIENCE}. ${hintFor(verb)}`,
      },
    );
  }
  let decision: { allowed: boolean; reason: string };
  try {
    decision = await api.reviewAccess(user, { ...JOIN_TOKEN_RESOURCE, verb });
  } catch (cause) {
    throw new JoinError('UPSTREAM_ERROR', 'the hosted apiserver could not review access', { cause });
  }
  if (!decision.allowed) {
    throw new JoinError(
      'FORBIDDEN',
      `bearer token user ${describeUser(user)} may not ${verb} ${JOIN_TOKEN_RESOURCE.resource}.${JOIN_TOKEN_RESOURCE.group} (SubjectAccessReview: ${decision.reason === '' ? 'no rule allows it' : decision.reason})`,
      { hint: hintFor(verb) },
    );
  }
  return { username: user.username, groups: user.groups, via: 'bearer-token' };
}
