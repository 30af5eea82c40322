// Secrets never reach a log. Two layers: the server's logger drops known secret
// fields by path (REDACT_PATHS), and redactSecrets scrubs free text (error messages, child
// process output, request bodies) for things that look like credentials, in case one slipped in.

const REDACTED = '<redacted>';

// A token id is public (it names the token in logs), so it is kept; only the secret goes.
// Join tokens (32-character secret) are matched first so a bootstrap-token pattern cannot match
// inside one. The lookarounds stand in for \b, which would treat "_" as part of a word.
const JOIN_TOKEN = /(?<![A-Za-z0-9])([a-z0-9]{6})\.[a-z0-9]{32}(?![A-Za-z0-9])/g;
const BOOTSTRAP_TOKEN = /(?<![A-Za-z0-9])([a-z0-9]{6})\.[a-z0-9]{16}(?![A-Za-z0-9])/g;
// The value ends at whitespace, a quote or a separator, so JSON and header dumps keep their shape.
const BEARER = /\b(Bearer)\s+[^\s"',;]+/gi;
// A truncated block (no END line) is redacted to the end of the text.
const PRIVATE_KEY_PEM =
  /-----BEGIN ([A-Z0-9 ]*)PRIVATE KEY-----(?:[\s\S]*?-----END \1PRIVATE KEY-----|[\s\S]*$)/g;
// A kubeconfig embeds a client key as base64 PEM, which the PEM pattern cannot see.
const KUBECONFIG_KEY_DATA = /(client-key-data["']?\s*:\s*["']?)[A-Za-z0-9+/=]+/g;

/** Replaces join and bootstrap token secrets, bearer credentials and private keys in free text. */
export function redactSecrets(text: string): string {
  return text
    .replace(
      PRIVATE_KEY_PEM,
      (_block, kind: string) =>
        `-----BEGIN ${kind}PRIVATE KEY-----\n${REDACTED}\n-----END ${kind}PRIVATE KEY-----`,
    )
    .replace(KUBECONFIG_KEY_DATA, `$1${REDACTED}`)
    .replace(BEARER, `$1 ${REDACTED}`)
    .replace(JOIN_TOKEN, `$1.${REDACTED}`)
    .replace(BOOTSTRAP_TOKEN, `$1.${REDACTED}`);
}

/**
 * pino `redact` paths for the server's logger: the Authorization header and any field that holds
 * a secret, at the top level or one level down (pino's `*` matches exactly one level).
 */
export const REDACT_PATHS: readonly string[] = Object.freeze([
  'req.headers.authorization',
  'req.headers.cookie',
  ...['token', 'secret', 'tokenSecret', 'privateKey', 'bootstrapKubeconfig'].flatMap((field) => [
    field,
    `*.${field}`,
  ]),
]);
