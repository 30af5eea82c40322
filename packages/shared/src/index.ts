// What the other packages use of shared: the join protocol, tokens, PKI, kubeconfig text, names,
// errors and the CLI plumbing. Helpers only shared itself uses stay unexported here.
export { replaceFileAtomic, writeFileAtomic } from './atomic-file.js';
export { buildBootstrapTokenSecret, generateBootstrapToken } from './bootstrap-token.js';
export { caCertHash, parseCaCertHash } from './ca-pin.js';
export { parseFlags, runCli } from './cli.js';
export type { Subcommand } from './cli.js';
export { isDns1035Label, isDns1123Label, isDns1123Subdomain } from './dns-names.js';
export { formatDuration, formatRfc3339, parseDuration } from './duration.js';
export {
  JoinError,
  K8sOnK8sError,
  ValidationError,
  describeError,
  invalidArgument,
  isK8sOnK8sError,
} from './errors.js';
export type { ErrorCode, K8sOnK8sErrorOptions } from './errors.js';
export { formatHostPort, parseHostPort } from './host-port.js';
export type { HostPort } from './host-port.js';
export { parseKubeconfig, renderKubeconfig, resolveKubeconfig } from './kubeconfig.js';
export { kubeletLabelRefusal } from './node-labels.js';
export { validateNodeName } from './node-name.js';
export {
  createCertificateAuthority,
  createCertificateRequest,
  describeCertificate,
  generateRsaKeyPair,
  isSignedBy,
  issueCertificate,
} from './pki.js';
export type { CertificateSpec, CertifiedKeyPair, KeyPair } from './pki.js';
export {
  API_VIP,
  DEFAULT_API_ENDPOINT,
  JOIN_API_VERSION,
  parseApiEndpoint,
  validateApiEndpoint,
  errorBody,
  errorFromBody,
  httpStatusOf,
  parseCreateTokenRequest,
  parseCreatedToken,
  parseErrorBody,
  parseJoinBundle,
  parseJoinRequest,
  parseTokenInfo,
} from './protocol.js';
export type { CreatedToken, JoinBundle, JoinRequest, TokenInfo } from './protocol.js';
export { REDACT_PATHS } from './redact.js';
export { generateJoinToken, hashTokenSecret, parseJoinToken, verifyTokenSecret } from './token.js';
export {
  DEFAULT_ETCD_VERSION,
  DEFAULT_KUBERNETES_VERSION,
  PREVIOUS_PATCH_KUBERNETES_VERSION,
} from './versions.js';
