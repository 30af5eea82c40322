/** One listening TCP socket from /proc/net/tcp or tcp6. */
export interface ListeningSocket {
  readonly address: string;
  readonly port: number;
}

const TCP_LISTEN = '0A';

/**
 * Parses the kernel's /proc/net/tcp (or tcp6) table into its listening sockets. Addresses are
 * little-endian hex per 32-bit word; only IPv4 and the IPv6 any/loopback forms matter here.
 */
export function parseListeningSockets(table: string): ListeningSocket[] {
  const sockets: ListeningSocket[] = [];
  for (const line of table.split('\n').slice(1)) {
    const fields = line.trim().split(/\s+/);
    const local = fields[1];
    const state = fields[3];
    if (local === undefined || state !== TCP_LISTEN) continue;
    const [hexAddress = '', hexPort = ''] = local.split(':');
    sockets.push({ address: decodeAddress(hexAddress), port: parseInt(hexPort, 16) });
  }
  return sockets;
}

/** True when something listens on `port` at `address` or at a wildcard covering it. */
export function isPortTaken(sockets: readonly ListeningSocket[], address: string, port: number): boolean {
  return sockets.some(
    (s) => s.port === port && (s.address === address || s.address === '0.0.0.0' || s.address === '::'),
  );
}

function decodeAddress(hex: string): string {
  if (hex.length === 8) {
    const bytes = Buffer.from(hex, 'hex').reverse();
    return [...bytes].join('.');
  }
  if (/^0+$/.test(hex)) return '::';
  if (hex === '00000000000000000000000001000000') return '::1';
  // Other IPv6 addresses: words are little-endian 32-bit groups.
  const words = hex.match(/.{8}/g) ?? [];
  const bytes = Buffer.concat(words.map((w) => Buffer.from(w, 'hex').reverse()));
  if (bytes.subarray(0, 12).equals(Buffer.from('00000000000000000000ffff', 'hex'))) {
    return [...bytes.subarray(12)].join('.');
  }
  return (bytes.toString('hex').match(/.{4}/g) ?? []).join(':');
}
