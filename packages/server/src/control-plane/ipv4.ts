// IPv4 addresses and CIDRs as the spec checks them: parsed to numbers, so containment and overlap
// are arithmetic. Errors name the field and quote the value.
import { isIP } from 'node:net';
import { invalidArgument } from '@k8s-on-k8s/shared';

/** A CIDR as text and as numbers. */
export interface Cidr {
  readonly text: string;
  readonly network: number;
  readonly prefix: number;
}

/** Parses `a.b.c.d/n`, which must start at its network address. */
export function parseCidr(text: string, flag: string): Cidr {
  const [address, prefixText, ...rest] = text.split('/');
  const network = address === undefined ? undefined : parseIpv4(address);
  const prefix = Number(prefixText);
  if (network === undefined || rest.length > 0 || !/^\d{1,2}$/.test(prefixText ?? '') || prefix > 32) {
    throw invalidArgument(
      `Expected ${flag} to be an IPv4 CIDR like 10.3.0.0/24, got ${JSON.stringify(text)}`,
    );
  }
  const size = 2 ** (32 - prefix);
  if (network % size !== 0) {
    throw invalidArgument(
      `Expected ${flag} to start at its network address, got ${JSON.stringify(text)} (did you mean ${formatIpv4(network - (network % size))}/${prefix}?)`,
    );
  }
  return { text, network, prefix };
}

/** Whether `ip` lies in `cidr`. */
export function contains(cidr: Cidr, ip: number): boolean {
  return ip >= cidr.network && ip < cidr.network + 2 ** (32 - cidr.prefix);
}

/** Whether two CIDRs share an address. */
export function overlaps(a: Cidr, b: Cidr): boolean {
  return contains(a, b.network) || contains(b, a.network);
}

/** An IPv4 address as a number, or undefined for anything else. */
export function parseIpv4(text: string): number | undefined {
  if (isIP(text) !== 4) return undefined;
  return text.split('.').reduce((sum, octet) => sum * 256 + Number(octet), 0);
}

/** A number as dotted IPv4. */
export function formatIpv4(value: number): string {
  return [24, 16, 8, 0].map((shift) => Math.floor(value / 2 ** shift) % 256).join('.');
}
