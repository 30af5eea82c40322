// A local HOST:PORT parser for the forwarder's flags. packages/shared/src/protocol.ts is getting a
// shared parseHostPort; when it lands, this file should become a re-export of it.
import { isIP } from 'node:net';
import { ValidationError } from '@k8s-on-k8s/shared';

/** A TCP endpoint: a host name or IP address (IPv6 without brackets) and a port. */
export interface HostPort {
  readonly host: string;
  readonly port: number;
}

const HOST_NAME =
  /^(?=.{1,253}$)[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?)*\.?$/;

export interface ParseHostPortOptions {
  /** Allow port 0 ("any free port"), which only makes sense for a listening address. */
  allowPortZero?: boolean;
}

/** Parses `host:port` or `[v6]:port` into a frozen HostPort; `what` names the flag in errors. */
export function parseHostPort(text: string, what: string, options: ParseHostPortOptions = {}): HostPort {
  const fail = (): never => {
    throw new ValidationError(
      'INVALID_ARGUMENT',
      `Expected ${what} to be HOST:PORT (e.g. 10.199.199.199:443 or [fd00::1]:6443), got ${JSON.stringify(text)}`,
    );
  };
  const match = /^(?:\[([^\]]+)\]|([^:[\]]+)):(\d{1,5})$/.exec(text.trim());
  if (match === null) return fail();
  const [, v6, plain, portText] = match;
  const host = v6 ?? plain ?? '';
  const port = Number(portText);
  if (v6 !== undefined && isIP(v6) !== 6) return fail();
  if (plain !== undefined && isIP(plain) === 0 && !HOST_NAME.test(plain)) return fail();
  const lowest = options.allowPortZero === true ? 0 : 1;
  if (port < lowest || port > 65535) return fail();
  return Object.freeze({ host, port });
}

/** Formats a HostPort the way parseHostPort reads it, bracketing IPv6 addresses. */
export function formatHostPort({ host, port }: HostPort): string {
  return isIP(host) === 6 ? `[${host}]:${port}` : `${host}:${port}`;
}
