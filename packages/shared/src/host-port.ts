import { isIP } from 'node:net';
import { ValidationError } from './errors.js';

// `host:port` as used for the forwarder's upstreams in the join bundle and on its command line.
// IPv6 needs brackets, as in a URL, because the port is separated by a colon.

/** A TCP endpoint: a DNS name or IP address (IPv6 without brackets) and a port. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

/** Options for parseHostPort. */
export interface ParseHostPortOptions {
  /** Allow port 0 ("any free port"), which only makes sense for a listening address. */
  allowPortZero?: boolean;
}

const HOST_PORT = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/;
const DNS_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*$/;
// A name made only of digits and dots would be read as an IPv4 address by resolvers; if it is
// not a valid one (999.1.1.1, 10.1), it is a typo, not a host name.
const NUMERIC = /^[\d.]+$/;

function isHost(host: string): boolean {
  if (isIP(host) === 4) return true;
  return DNS_NAME.test(host) && !NUMERIC.test(host);
}

/** Parses `host:port` or `[v6]:port` into a frozen HostPort; `what` names the field in errors. */
export function parseHostPort(text: string, what = 'address', options: ParseHostPortOptions = {}): HostPort {
  const fail = (): never => {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `Expected ${what} to be HOST:PORT (e.g. 10.199.199.199:443, api.example.com:6443 or [fd00::1]:6443), got ${JSON.stringify(text)}`,
    );
  };
  const match = HOST_PORT.exec(text);
  if (match === null) return fail();
  const [, v6, plain, portText] = match;
  if (v6 !== undefined && isIP(v6) !== 6) return fail();
  if (plain !== undefined && !isHost(plain)) return fail();
  const port = Number(portText);
  const lowest = options.allowPortZero === true ? 0 : 1;
  if (port < lowest || port > 65535) return fail();
  return Object.freeze({ host: v6 ?? plain ?? '', port });
}

/** Formats a HostPort the way parseHostPort reads it, bracketing IPv6 addresses. */
export function formatHostPort({ host, port }: HostPort): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
