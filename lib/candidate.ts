/**
 * The candidate model (RFC 8445 §5.1): types, priority (§5.1.2) and
 * foundation (§5.1.1.3). Pure: no sockets, no clocks.
 */
import { isIPv6 } from 'node:net';

export type CandidateType = 'host' | 'srflx' | 'prflx' | 'relay';
export type TransportProtocol = 'udp' | 'tcp';
export type TcpType = 'active' | 'passive' | 'so';

/** A transport address: IP address and port. */
export interface TransportAddress {
  address: string;
  port: number;
}

/**
 * A candidate, local or remote. Field names follow RFC 8839 §5.1 and
 * libnice's NiceCandidate.
 */
export interface Candidate {
  type: CandidateType;
  transport: TransportProtocol;
  foundation: string;
  /** Component id: 1 = RTP, 2 = RTCP. */
  component: number;
  priority: number;
  address: string;
  port: number;
  /** Local candidates: the transport address the agent sends from (§5.1.1). Remote candidates: absent. */
  base?: TransportAddress;
  /** `raddr`/`rport`: for srflx/prflx the base, for relay the mapped address. */
  relatedAddress?: string;
  relatedPort?: number;
  /** RFC 6544 tcptype, only with transport tcp. */
  tcpType?: TcpType;
  /** Extension attributes in order (e.g. `generation 0`, `ufrag abcd`), kept so they round-trip. */
  extensions?: Array<[string, string]>;
  /** Stream this candidate belongs to, set on local candidates the agent announces. */
  streamId?: number;
}

/** Type preferences, RFC 8445 §5.1.2.2: host highest, relayed lowest, prflx above srflx. */
export const TYPE_PREFERENCE: Readonly<Record<CandidateType, number>> = {
  host: 126,
  prflx: 110,
  srflx: 100,
  relay: 0,
};

/**
 * Candidate priority, RFC 8445 §5.1.2.1:
 * priority = 2^24 * type preference + 2^8 * local preference + (256 - component ID).
 */
export function computePriority(type: CandidateType, localPreference: number, componentId: number): number {
  if (!Number.isInteger(localPreference) || localPreference < 0 || localPreference > 65535) {
    throw new RangeError(`local preference must be an integer 0..65535, got ${localPreference}`);
  }
  if (!Number.isInteger(componentId) || componentId < 1 || componentId > 256) {
    throw new RangeError(`component id must be an integer 1..256, got ${componentId}`);
  }
  return TYPE_PREFERENCE[type] * 0x1000000 + localPreference * 0x100 + (256 - componentId);
}

/**
 * Local preference for host addresses (RFC 8445 §5.1.2.1 with RFC 8421 §4 for
 * dual stack). `rank` orders addresses as the agent prefers them: IPv6 and IPv4
 * interleaved starting with IPv6, so that a broken family does not push every
 * check of the other family to the end of the checklist. Distinct addresses
 * get distinct preferences, as §5.1.2.1 requires for multihomed hosts.
 */
export function hostLocalPreference(rank: number): number {
  // Leave room below for srflx/relay variants of the same base; 128 steps per rank.
  return Math.max(0, 65535 - rank * 128);
}

/**
 * Orders local host addresses per RFC 8421: family interleaving with IPv6 first,
 * keeping the interface order within each family. Returns a new array.
 */
export function orderHostAddresses(addresses: readonly string[]): string[] {
  const v6 = addresses.filter((a) => isIPv6(a));
  const v4 = addresses.filter((a) => !isIPv6(a));
  const out: string[] = [];
  for (let i = 0; i < Math.max(v6.length, v4.length); i++) {
    if (i < v6.length) out.push(v6[i]!);
    if (i < v4.length) out.push(v4[i]!);
  }
  return out;
}

/**
 * Key for foundation equality, RFC 8445 §5.1.1.3: same type, same base IP
 * address, same STUN/TURN server IP address, same transport.
 */
export function foundationKey(
  type: CandidateType,
  baseAddress: string,
  transport: TransportProtocol,
  serverAddress = '',
): string {
  return `${type}|${baseAddress}|${serverAddress}|${transport}`;
}

/**
 * Hands out foundations: equal keys get equal foundations, different keys
 * different ones. Foundations are short decimal strings, as libnice uses.
 */
export class FoundationRegistry {
  #byKey = new Map<string, string>();
  get(key: string): string {
    let f = this.#byKey.get(key);
    if (f === undefined) {
      f = String(this.#byKey.size + 1);
      this.#byKey.set(key, f);
    }
    return f;
  }
}

/** `address:port` with brackets for IPv6, for logs and map keys. */
export function formatAddress(address: string, port: number): string {
  return isIPv6(address) ? `[${address}]:${port}` : `${address}:${port}`;
}

/** Whether two candidates denote the same transport address over the same transport. */
export function sameTransportAddress(a: TransportAddress, b: TransportAddress): boolean {
  return a.port === b.port && a.address === b.address;
}
