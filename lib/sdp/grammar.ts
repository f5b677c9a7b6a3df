/**
 * The pieces of the SDP grammar (RFC 8866 §9) and of the ICE attributes
 * (RFC 8839 §5) that both the parser and the generator check, so that the
 * generator never writes what the parser would refuse.
 */
import { isIPv6 } from 'node:net';
import { isConnectionAddress } from '../core/candidate-attribute.js';

/** token (RFC 8866 §9). */
export const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/;
/** ice-char = ALPHA / DIGIT / "+" / "/" (RFC 8839 §5.1). */
const ICE_CHARS = /^[A-Za-z0-9+/]+$/;
/** byte-string (RFC 8866 §9): anything but NUL, CR and LF, at least one byte. */
const BYTE_STRING = /^[^\0\r\n]+$/;

/** Every attribute this module interprets; anything else is kept verbatim. */
export const KNOWN_ATTRIBUTES: ReadonlySet<string> = new Set([
  'ice-lite', 'ice-mismatch', 'ice-ufrag', 'ice-pwd', 'ice-options', 'candidate', 'end-of-candidates',
  'rtcp-mux', 'rtcp', 'mid',
]);

/** ice-ufrag = 4*256ice-char (RFC 8839 §5.4); the reason it is not, or undefined. */
export function ufragProblem(v: unknown): string | undefined {
  if (typeof v !== 'string' || v.length < 4 || v.length > 256 || !ICE_CHARS.test(v)) {
    return 'must be 4 to 256 ice-chars (ALPHA / DIGIT / "+" / "/"), RFC 8839 §5.4';
  }
  return undefined;
}

/** ice-pwd = 22*256ice-char (RFC 8839 §5.4). */
export function pwdProblem(v: unknown): string | undefined {
  if (typeof v !== 'string' || v.length < 22 || v.length > 256 || !ICE_CHARS.test(v)) {
    return 'must be 22 to 256 ice-chars (ALPHA / DIGIT / "+" / "/"), RFC 8839 §5.4';
  }
  return undefined;
}

/** ice-option-tag = 1*ice-char (RFC 8839 §5.6). */
export function isIceOption(v: unknown): v is string {
  return typeof v === 'string' && ICE_CHARS.test(v);
}

export function isToken(v: unknown): v is string {
  return typeof v === 'string' && TOKEN.test(v);
}

export function isByteString(v: unknown): v is string {
  return typeof v === 'string' && BYTE_STRING.test(v);
}

export function isPort(v: unknown): v is number {
  return typeof v === 'number' && Number.isInteger(v) && v >= 0 && v <= 65535;
}

/** `c=` and `a=rtcp` address type for a connection-address: IP6 for an IPv6 literal, IP4 otherwise. */
export function addrTypeOf(address: string): 'IP4' | 'IP6' {
  return isIPv6(address) ? 'IP6' : 'IP4';
}

/**
 * Checks `addrtype SP connection-address` of `c=` (RFC 8866 §5.7) and
 * `a=rtcp` (RFC 3605). Only unicast addresses: ICE candidates are unicast,
 * so a multicast `/ttl` suffix is refused. Returns the problem, or undefined.
 */
export function addressProblem(addrType: string, address: string): string | undefined {
  if (addrType !== 'IP4' && addrType !== 'IP6') return `address type "${addrType}" is neither IP4 nor IP6`;
  if (!isConnectionAddress(address)) return `"${address}" is not a unicast IPv4, IPv6 or FQDN address`;
  if (addrType === 'IP4' && isIPv6(address)) return `IPv6 address "${address}" with IP4`;
  if (addrType === 'IP6' && /^[\d.]+$/.test(address)) return `IPv4 address "${address}" with IP6`;
  return undefined;
}

/**
 * A proto of `m=` that carries RTP (RFC 8866 §5.14: `RTP/AVP`, `RTP/SAVPF`,
 * `UDP/TLS/RTP/SAVPF`, `TCP/DTLS/RTP/SAVPF` ...): RTP without RTCP mux has
 * an RTCP component.
 */
export function isRtp(protocol: string): boolean {
  return protocol.split('/').includes('RTP');
}

/**
 * The component count an `m=` section expresses (RFC 8839 §4.2.2): with
 * `a=rtcp-mux` one; else two for RTP or when `a=rtcp` names an RTCP
 * destination, else one; raised to the highest component of a candidate
 * (libnice signals two components of a non-RTP stream that way).
 */
export function impliedComponents(rtcpMux: boolean, protocol: string, hasRtcp: boolean, candidateComponents: readonly number[]): number {
  if (rtcpMux) return 1;
  return Math.max(isRtp(protocol) || hasRtcp ? 2 : 1, ...candidateComponents);
}

/**
 * RFC 8866 §5 fixes the order of the lines of each level and which appear at
 * most once. Ranks of the session level (`r=` shares `t=`'s: each `t=` may be
 * followed by its `r=` lines) and of a media level. A second `c=` in a media
 * section would be layered multicast (RFC 8866 §5.7), of no use to ICE: refused.
 */
const SESSION_RANK: Readonly<Record<string, number>> = { v: 0, o: 1, s: 2, i: 3, u: 4, e: 5, p: 6, c: 7, b: 8, t: 9, r: 9, z: 10, k: 11, a: 12 };
const MEDIA_RANK: Readonly<Record<string, number>> = { m: 0, i: 1, c: 2, b: 3, k: 4, a: 5 };
const ONCE = new Set(['v', 'o', 's', 'i', 'u', 'c', 'z', 'k', 'm']);

/** Follows the lines of one level in order; `next` says what is wrong with the next one, or undefined. */
export class LineOrder {
  readonly #rank: Readonly<Record<string, number>>;
  readonly #seen = new Set<string>();
  #last = -1;
  constructor(level: 'session' | 'media') {
    this.#rank = level === 'session' ? SESSION_RANK : MEDIA_RANK;
  }

  next(type: string): string | undefined {
    const rank = this.#rank[type];
    if (rank === undefined) return `"${type}=" is not allowed here (RFC 8866 §5)`;
    if (rank < this.#last) return `"${type}=" is out of order (RFC 8866 §5)`;
    if (ONCE.has(type) && this.#seen.has(type)) return `"${type}=" appears twice at this level (RFC 8866 §5)`;
    if (type === 'r' && !this.#seen.has('t')) return '"r=" before any "t=" (RFC 8866 §5.10)';
    this.#seen.add(type);
    this.#last = rank;
    return undefined;
  }

  has(type: string): boolean {
    return this.#seen.has(type);
  }
}

/** The value rules of the lines kept verbatim (`i=`, `b=`, `t=` ...); the problem, or undefined. */
export function verbatimProblem(type: string, value: string): string | undefined {
  if (!isByteString(value)) return 'empty, or holds NUL, CR or LF';
  switch (type) {
    case 't': return /^\d+ \d+$/.test(value) ? undefined : 'must be "<start-time> <stop-time>" (RFC 8866 §5.9)';
    case 'r': return /^\S+( \S+){2,}$/.test(value) ? undefined : 'must be "<interval> <duration> <offsets>..." (RFC 8866 §5.10)';
    case 'b': {
      const colon = value.indexOf(':');
      return colon > 0 && isToken(value.slice(0, colon)) && /^\d+$/.test(value.slice(colon + 1))
        ? undefined : 'must be "<bwtype>:<bandwidth>" (RFC 8866 §5.8)';
    }
    default: return undefined;
  }
}
