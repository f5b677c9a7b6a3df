/**
 * Transport addresses (RFC 8445 §3: an IP address and a port, over a
 * transport protocol) in one normalised form. Every key and every comparison
 * in the library uses `canonicalIp` output: candidates from the application
 * or the peer, XOR-MAPPED-ADDRESS from the wire, and the source of every
 * datagram, so that `2001:db8:0:0:0:0:0:1` and `2001:DB8::1` are one address.
 *
 * The canonical text is what the operating system's inet_ntop prints, which
 * is what Node gives as the source of a datagram: IPv4 dotted-decimal without
 * leading zeros; IPv6 per RFC 5952 (lower case, leading zeros of a group
 * dropped, the longest run of two or more zero groups compressed, the first
 * on a tie) with IPv4-mapped addresses in mixed notation (`::ffff:192.0.2.1`).
 */
import { isIPv4, isIPv6 } from 'node:net';

export type TransportProtocol = 'udp' | 'tcp';

/** An IP address in canonical form and a port. */
export interface TransportAddress {
  readonly address: string;
  readonly port: number;
}

/** The canonical form of an IP address, or undefined if `ip` is not one (zone ids are refused). */
export function canonicalIp(ip: string): string | undefined {
  if (typeof ip !== 'string') return undefined;
  if (isIPv4(ip)) return ip.split('.').map((o) => String(Number(o))).join('.');
  if (!isIPv6(ip) || ip.includes('%')) return undefined;
  const groups = ipv6Groups(ip);
  if (!groups) return undefined;
  const v4 = `${groups[6]! >> 8}.${groups[6]! & 255}.${groups[7]! >> 8}.${groups[7]! & 255}`;
  // IPv4-mapped (::ffff:a.b.c.d): mixed notation, RFC 5952 §5.
  if (groups.slice(0, 5).every((g) => g === 0) && groups[5] === 0xffff) return `::ffff:${v4}`;
  // IPv4-compatible (deprecated, RFC 4291 §2.5.5.1): inet_ntop prints those in mixed notation too,
  // when the zero run is exactly the first six groups (::1 and :: stay as they are).
  if (groups.slice(0, 6).every((g) => g === 0) && groups[6] !== 0) return `::${v4}`;
  // Longest run of zero groups (at least two), the first one on a tie (RFC 5952 §4.2).
  let best = -1;
  let bestLen = 1;
  for (let i = 0; i < 8;) {
    if (groups[i] !== 0) {
      i++;
      continue;
    }
    let j = i;
    while (j < 8 && groups[j] === 0) j++;
    if (j - i > bestLen) {
      best = i;
      bestLen = j - i;
    }
    i = j;
  }
  const hex = groups.map((g) => g.toString(16));
  if (best < 0) return hex.join(':');
  return `${hex.slice(0, best).join(':')}::${hex.slice(best + bestLen).join(':')}`;
}

/** The eight 16-bit groups of an IPv6 address that `net.isIPv6` accepted. */
function ipv6Groups(ip: string): number[] | undefined {
  let text = ip.toLowerCase();
  const lastColon = text.lastIndexOf(':');
  const last = text.slice(lastColon + 1);
  if (last.includes('.')) {
    // Embedded IPv4 (RFC 4291 §2.2 form 3): rewrite it as two hex groups.
    if (!isIPv4(last)) return undefined;
    const o = last.split('.').map(Number);
    text = `${text.slice(0, lastColon + 1)}${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const halves = text.split('::');
  if (halves.length > 2) return undefined;
  const parse = (s: string) => (s === '' ? [] : s.split(':').map((g) => (/^[0-9a-f]{1,4}$/.test(g) ? parseInt(g, 16) : NaN)));
  const head = parse(halves[0]!);
  let groups = head;
  if (halves.length === 2) {
    const rest = parse(halves[1]!);
    const fill = 8 - head.length - rest.length;
    if (fill < 1) return undefined;
    groups = [...head, ...new Array<number>(fill).fill(0), ...rest];
  }
  if (groups.length !== 8 || groups.some((g) => Number.isNaN(g))) return undefined;
  return groups;
}

/** The 16 bytes of an IPv6 address (any valid spelling, embedded IPv4 included), or undefined. */
export function ipv6Bytes(ip: string): Uint8Array | undefined {
  if (!isIPv6(ip) || ip.includes('%')) return undefined;
  const groups = ipv6Groups(ip);
  if (!groups) return undefined;
  const bytes = new Uint8Array(16);
  groups.forEach((g, i) => {
    bytes[2 * i] = g >> 8;
    bytes[2 * i + 1] = g & 0xff;
  });
  return bytes;
}

/**
 * The 4 bytes of a dotted-quad IPv4 address, or undefined if `ip` is not one
 * in the form `net.isIPv4` accepts (four decimal parts 0-255, no leading
 * zeros). Written out by hand: it is on the path of every answered check.
 */
export function ipv4Bytes(ip: string): Uint8Array | undefined {
  const out = new Uint8Array(4);
  return ipv4Into(ip, out) ? out : undefined;
}

/** ipv4Bytes into `out` (its first 4 bytes); false, `out` partly written, if `ip` is not one. No allocation. */
export function ipv4Into(ip: string, out: Uint8Array): boolean {
  let part = 0;
  let n = 0;
  let digits = 0;
  for (let i = 0; i < ip.length; i++) {
    const c = ip.charCodeAt(i);
    if (c === 46) {
      if (digits === 0 || part === 3) return false;
      out[part++] = n;
      n = 0;
      digits = 0;
      continue;
    }
    if (c < 48 || c > 57 || (digits > 0 && n === 0)) return false;
    n = n * 10 + (c - 48);
    if (++digits > 3 || n > 255) return false;
  }
  if (part !== 3 || digits === 0) return false;
  out[3] = n;
  return true;
}

/** Whether `ip` (canonical) is an IPv6 address. */
export function isV6(ip: string): boolean {
  return ip.includes(':');
}

/*
 * Keys are joined, not concatenated: V8 keeps a concatenation of 13
 * characters or more as a tree of its parts (a "cons string"), 88 bytes for
 * `127.0.0.1|50000` where the flat string that join makes takes 40, and it
 * flattens the tree again at every Map lookup. Keys live in tables per
 * session (routes, authorised sources, pairs) and are built per datagram.
 */

/** The key of a transport address: canonical IP and port. */
export function addressKey(address: string, port: number): string {
  return [address, '|', port].join('');
}

/**
 * Whether `key` (from `from` on) is addressKey(address, port), read in place:
 * the per-request tests (is this source authorised, which pair is it) make no
 * key to compare.
 */
export function isAddressKey(key: string, address: string, port: number, from = 0): boolean {
  const n = address.length;
  if (key.charCodeAt(from + n) !== 124 || !key.startsWith(address, from)) return false;
  let i = key.length - 1;
  let p = port;
  do {
    if (key.charCodeAt(i--) !== 48 + (p % 10)) return false;
    p = Math.floor(p / 10);
  } while (p > 0);
  return i === from + n;
}

/** The key of a transport address over a protocol. */
export function transportKey(protocol: TransportProtocol, address: string, port: number): string {
  return [protocol, '|', address, '|', port].join('');
}

export function sameAddress(a: TransportAddress, b: TransportAddress): boolean {
  return a.port === b.port && a.address === b.address;
}

/** `address:port`, IPv6 in brackets: for logs. */
export function formatAddress(address: string, port: number): string {
  return isV6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}
