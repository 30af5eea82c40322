import { randomBytes } from 'node:crypto';
import { execa } from 'execa';
import { assertTestNamespace, type NetworkNamespace } from './network-namespace.js';

/** One end of a veth pair: the namespace it lives in, its interface name and its IPv4 address. */
export interface NetworkPairEnd {
  readonly netns: string;
  readonly interface: string;
  readonly address: string;
}

/** Two test namespaces joined by a veth pair. */
export interface NetworkPair {
  readonly a: NetworkPairEnd;
  readonly b: NetworkPairEnd;
  /** Deletes the pair (both ends go together); a no-op if a namespace is already gone. */
  delete(): Promise<void>;
}

/** One side of createNetworkPair: a test namespace (or its name) and the address to give its end. */
export interface NetworkPairSide {
  readonly netns: NetworkNamespace | string;
  readonly address: string;
}

/**
 * Test traffic stays in blocks no real network routes to us: 198.18.0.0/15 is reserved for
 * benchmarking (RFC 2544) and 10.0.0.0/8 is private; both ends live in test namespaces anyway.
 */
function assertTestAddress(side: 'a' | 'b', address: string): void {
  const octets = address.split('.').map(Number);
  const valid =
    octets.length === 4 && octets.every((octet) => Number.isInteger(octet) && octet >= 0 && octet <= 255);
  const [first, second] = octets;
  if (!valid || !(first === 10 || (first === 198 && (second === 18 || second === 19)))) {
    throw new Error(
      `Expected ${side}.address to be an IPv4 address in 198.18.0.0/15 or 10.0.0.0/8, got "${address}"`,
    );
  }
}

/**
 * Joins two test namespaces with a veth pair. The pair is created inside `a` with its peer placed
 * straight into `b` (`ip -n a link add … peer … netns b`), so neither end ever exists in the
 * machine's own namespace, and traffic between the addresses cannot leave the two namespaces.
 */
export async function createNetworkPair(options: {
  a: NetworkPairSide;
  b: NetworkPairSide;
  /** Prefix length of both addresses; 24 unless given. */
  prefixLength?: number;
}): Promise<NetworkPair> {
  const prefixLength = options.prefixLength ?? 24;
  const netnsA = typeof options.a.netns === 'string' ? options.a.netns : options.a.netns.name;
  const netnsB = typeof options.b.netns === 'string' ? options.b.netns : options.b.netns.name;
  assertTestNamespace(netnsA);
  assertTestNamespace(netnsB);
  assertTestAddress('a', options.a.address);
  assertTestAddress('b', options.b.address);
  // Interface names are limited to 15 bytes (IFNAMSIZ); a random tag keeps several pairs apart.
  const tag = randomBytes(4).toString('hex');
  const a = { netns: netnsA, interface: `vt${tag}a`, address: options.a.address };
  const b = { netns: netnsB, interface: `vt${tag}b`, address: options.b.address };
  await execa('ip', [
    '-n',
    a.netns,
    'link',
    'add',
    a.interface,
    'type',
    'veth',
    'peer',
    'name',
    b.interface,
    'netns',
    b.netns,
  ]);
  const remove = async (): Promise<void> => {
    await execa('ip', ['-n', a.netns, 'link', 'delete', a.interface], { reject: false });
  };
  try {
    for (const end of [a, b]) {
      await execa('ip', [
        '-n',
        end.netns,
        'addr',
        'add',
        `${end.address}/${prefixLength}`,
        'dev',
        end.interface,
      ]);
      await execa('ip', ['-n', end.netns, 'link', 'set', end.interface, 'up']);
    }
  } catch (error) {
    await remove();
    throw error;
  }
  return { a, b, delete: remove };
}
