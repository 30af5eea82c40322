import type { ClusterSettings } from './bundle.js';
import type { RateLimit } from './rate-limiter.js';

/** The join server's settings, validated by the command line parser (config.ts). */
export interface JoinServerSettings {
  readonly cluster: ClusterSettings;
  /** The hosted cluster CA, PEM: it goes into every bundle. */
  readonly caPem: string;
  /** sha256:<hex> of the CA, printed in the join command. */
  readonly caCertHash: string;
  /** The URL agents reach this server at, printed in the join command. */
  readonly publicUrl: string;
  readonly bootstrapTokenTtlMs: number;
  readonly maxTokenTtlMs: number;
  readonly rateLimits: {
    /** Every API request, per client IP, checked before anything else is done. */
    readonly perIp: RateLimit;
    /** Rejected join tokens, per client IP: what makes online guessing pointless. */
    readonly failuresPerIp: RateLimit;
    /** Wrong secrets for one token id from one client IP (never per id alone: see join-service.ts). */
    readonly failuresPerIpAndToken: RateLimit;
    /** Failed admin authentications, per client IP; valid admin credentials are never refused by it. */
    readonly adminFailuresPerIp: RateLimit;
    /** /healthz, /readyz and /metrics, per client IP: generous, for probes and scrapers. */
    readonly healthPerIp: RateLimit;
  };
}
