/**
 * Host candidate addresses (RFC 8445 §5.1.1.1): which local addresses the
 * agent gathers on, in the order it prefers them (RFC 8421).
 */
import { isIPv6 } from 'node:net';
import { orderHostAddresses } from '../core/candidate.js';
import { canonicalIp } from '../transport/address.js';
import type { DatagramSocket, InterfaceAddress, Network } from '../transport/network.js';

export interface HostAddressPolicy {
  localAddresses: string[] | undefined;
  ipv4: boolean;
  ipv6: boolean;
}

/** fe80::/10: link-local IPv6 needs a scope id and is excluded, as RFC 8445 §5.1.1.1 advises. */
export function isLinkLocalV6(address: string): boolean {
  return /^fe[89ab][0-9a-f]:/i.test(address);
}

/**
 * Addresses to gather on. With `localAddresses`, exactly those (loopback
 * included only when listed there); otherwise every non-internal interface
 * address. IPv4-mapped and link-local IPv6 addresses are left out.
 */
export function hostAddresses(policy: HostAddressPolicy, interfaces: readonly InterfaceAddress[]): string[] {
  let addrs: string[];
  if (policy.localAddresses) {
    addrs = policy.localAddresses.map((a) => canonicalIp(a) ?? a);
  } else {
    addrs = interfaces.filter((ni) => !ni.internal).map((ni) => canonicalIp(ni.address) ?? ni.address);
  }
  addrs = addrs.filter((a) => {
    const v6 = isIPv6(a);
    if (v6 && (!policy.ipv6 || isLinkLocalV6(a) || a.toLowerCase().startsWith('::ffff:'))) return false;
    if (!v6 && !policy.ipv4) return false;
    return true;
  });
  return orderHostAddresses([...new Set(addrs)]);
}

/**
 * Binds a UDP socket on `address` (RFC 8445 §5.1.1.1), inside `range` if
 * given, starting at a random port of it so that concurrent agents do not
 * race for the same ones. Rejects with the system's error, or when the range
 * has no free port.
 */
export async function bindHost(net: Network, address: string, range: { min: number; max: number } | undefined): Promise<DatagramSocket> {
  if (!range) return net.bindDatagram(address, 0);
  const span = range.max - range.min + 1;
  const start = net.randomBytes(4).readUInt32BE(0) % span;
  for (let i = 0; i < span; i++) {
    try {
      return await net.bindDatagram(address, range.min + ((start + i) % span));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
  throw Object.assign(new Error(`no free port in ${range.min}-${range.max} on ${address}`), { code: 'EADDRINUSE' });
}
