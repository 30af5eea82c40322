// Which upstream gets the next connection: health state (passive and active) and balancing.
// Pure bookkeeping, no sockets, so the rules are testable without a network.
import { formatHostPort, type HostPort } from '@k8s-on-k8s/shared';

/** How new connections are spread over the healthy upstreams. */
export type BalanceStrategy = 'round-robin' | 'least-connections';

/** Live state of one upstream; the forwarder mutates the counters, the pool the health. */
export interface Upstream {
  readonly address: HostPort;
  /** `host:port`, the identity of an upstream across setUpstreams calls and the metrics label. */
  readonly key: string;
  healthy: boolean;
  /** Still listed by the last setUpstreams; a removed upstream keeps serving what it has. */
  listed: boolean;
  active: number;
  total: number;
  connectErrors: number;
  /** Bytes of connections already closed; the forwarder adds the live ones when asked. */
  closedBytesIn: number;
  closedBytesOut: number;
}

/** The set of upstreams and the choice among them. */
export interface UpstreamPool {
  /** Replaces the list, keeping state (health, counters) of upstreams that stay. */
  setUpstreams(addresses: readonly HostPort[]): void;
  /** The next healthy upstream not in `tried`, or undefined when none is left. */
  pick(tried?: ReadonlySet<Upstream>): Upstream | undefined;
  /** Passive check: a failed connect takes the upstream out of rotation at once. */
  recordConnectFailure(upstream: Upstream): void;
  /** Active check result; returns true when the health changed. */
  recordCheck(upstream: Upstream, healthy: boolean): boolean;
  /** Listed upstreams, in the order given. */
  listed(): readonly Upstream[];
  /** Every upstream still known: listed ones and removed ones with connections left. */
  known(): readonly Upstream[];
}

/** Creates an empty pool; new upstreams start healthy so a fresh forwarder serves at once. */
export function createUpstreamPool(balance: BalanceStrategy): UpstreamPool {
  let upstreams: Upstream[] = [];
  const retired = new Set<Upstream>();
  let next = 0;

  const pickRoundRobin = (candidates: Upstream[]): Upstream | undefined => {
    const chosen = candidates[next % candidates.length];
    next = (next + 1) % 1_000_000_007;
    return chosen;
  };

  const pickLeastConnections = (candidates: Upstream[]): Upstream | undefined => {
    // Ties rotate, so an idle pool still spreads connections instead of piling on the first.
    const offset = next++ % candidates.length;
    let best: Upstream | undefined;
    for (let i = 0; i < candidates.length; i++) {
      const candidate = candidates[(offset + i) % candidates.length];
      if (candidate !== undefined && (best === undefined || candidate.active < best.active)) best = candidate;
    }
    return best;
  };

  return {
    setUpstreams(addresses) {
      const byKey = new Map(upstreams.map((u) => [u.key, u]));
      const nextList: Upstream[] = [];
      for (const address of addresses) {
        const key = formatHostPort(address);
        if (nextList.some((u) => u.key === key)) continue;
        const kept = byKey.get(key) ?? [...retired].find((u) => u.key === key);
        if (kept !== undefined) {
          retired.delete(kept);
          kept.listed = true;
          nextList.push(kept);
        } else {
          nextList.push(newUpstream(address, key));
        }
      }
      for (const old of upstreams) {
        if (!nextList.includes(old)) {
          old.listed = false;
          retired.add(old);
        }
      }
      upstreams = nextList;
    },

    pick(tried) {
      const candidates = upstreams.filter((u) => u.healthy && !(tried?.has(u) ?? false));
      if (candidates.length === 0) return undefined;
      return balance === 'round-robin' ? pickRoundRobin(candidates) : pickLeastConnections(candidates);
    },

    recordConnectFailure(upstream) {
      upstream.connectErrors++;
      upstream.healthy = false;
    },

    recordCheck(upstream, healthy) {
      const changed = upstream.healthy !== healthy;
      upstream.healthy = healthy;
      return changed;
    },

    listed() {
      return upstreams;
    },

    known() {
      for (const old of retired) {
        if (old.active === 0) retired.delete(old);
      }
      return [...upstreams, ...retired];
    },
  };
}

function newUpstream(address: HostPort, key: string): Upstream {
  return {
    address,
    key,
    healthy: true,
    listed: true,
    active: 0,
    total: 0,
    connectErrors: 0,
    closedBytesIn: 0,
    closedBytesOut: 0,
  };
}
