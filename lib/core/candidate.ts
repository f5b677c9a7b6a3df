/**
 * The candidate model (RFC 8445 §5.1): types, priority (§5.1.2) and
 * foundation (§5.1.1.3), and the validation of candidates an application
 * hands in. Pure: no sockets, no clocks.
 */
import { canonicalIp, isV6, type TransportAddress, type TransportProtocol } from '../transport/address.js';
import { CandidateParseError, InvalidArgumentError, show } from '../errors.js';
import { isConnectionAddress, parseCandidate, serializeCandidate } from './candidate-attribute.js';

export type { TransportAddress, TransportProtocol };
export type CandidateType = 'host' | 'srflx' | 'prflx' | 'relay';
export type TcpType = 'active' | 'passive' | 'so';

/**
 * A candidate, local or remote. Field names follow RFC 8839 §5.1 and
 * libnice's NiceCandidate. `transport` and `type` may hold an extension token
 * of the RFC 8839 grammar (`transport-extension`, `cand-type` token) that this
 * agent does not use: such candidates parse, and are skipped when added.
 */
export interface Candidate {
  type: CandidateType | (string & Record<never, never>);
  transport: TransportProtocol | (string & Record<never, never>);
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

/** The local preference part of a priority (bits 8-23). */
export function localPreferenceOf(priority: number): number {
  return (priority >>> 8) & 0xffff;
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
  const v6 = addresses.filter((a) => isV6(a));
  const v4 = addresses.filter((a) => !isV6(a));
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
  return [type, '|', baseAddress, '|', serverAddress, '|', transport].join('');
}

/**
 * The foundation for `key` in a registry (a Map kept in the agent's state):
 * equal keys get equal foundations, different keys different ones; short
 * decimal strings, as libnice uses.
 */
export function foundationOf(registry: { get(key: string): string | undefined; set(key: string, value: string): unknown; readonly size: number }, key: string): string {
  let f = registry.get(key);
  if (f === undefined) {
    f = String(registry.size + 1);
    registry.set(key, f);
  }
  return f;
}

/** The transports an agent uses (its `iceUdp` and `iceTcp` options); UDP only when not given. */
export interface TransportPolicy {
  iceUdp: boolean;
  iceTcp: boolean;
}

const UDP_ONLY: TransportPolicy = { iceUdp: true, iceTcp: false };

/**
 * Whether this agent can use a remote candidate: a transport it has on (UDP;
 * TCP with a tcptype, RFC 6544 §4.5, when ICE-TCP is on), a known type, an IP address.
 */
export function usableRemote(c: Candidate, policy: TransportPolicy = UDP_ONLY): boolean {
  const transport = c.transport === 'udp' ? policy.iceUdp : c.transport === 'tcp' && policy.iceTcp && c.tcpType !== undefined;
  return transport && Object.hasOwn(TYPE_PREFERENCE, c.type) && canonicalIp(c.address) !== undefined;
}

/** Why `usableRemote` refused a candidate, for the error the application sees. */
export function unusableReason(c: Candidate, policy: TransportPolicy = UDP_ONLY): string {
  if (c.transport === 'udp' && !policy.iceUdp) return 'UDP is off (iceUdp: false)';
  if (c.transport === 'tcp' && !policy.iceTcp) return 'transport tcp: ICE-TCP is off (iceTcp: false)';
  if (c.transport === 'tcp' && c.tcpType === undefined) return 'a TCP candidate without tcptype (RFC 6544 §4.5)';
  if (c.transport !== 'udp' && c.transport !== 'tcp') return `transport ${c.transport} is not supported`;
  if (!Object.hasOwn(TYPE_PREFERENCE, c.type)) return `candidate type ${c.type} is not supported`;
  if (c.address.endsWith('.local')) return `mDNS name ${c.address} cannot be resolved`;
  return `address ${c.address} is not an IP address (FQDN candidates are not resolved)`;
}

/**
 * Validates a remote candidate (an object or an RFC 8839 string) without
 * touching any state: every field as strictly as the string grammar checks
 * it, IP addresses with `net.isIP` and put in canonical form (an IPv4-mapped
 * IPv6 address becomes the IPv4 address it maps, which is what an IPv4 socket
 * reaches). Throws CandidateParseError or InvalidArgumentError naming the field.
 */
export function checkRemoteCandidate(x: Candidate | string, componentId: number | undefined, where: string): Candidate {
  let c: Candidate;
  const bad = (field: string, msg: string) => new InvalidArgumentError(`${where}.${field}`, msg);
  if (typeof x === 'string') c = parseCandidate(x);
  else if (x !== null && typeof x === 'object') {
    c = { ...x };
    if (typeof c.type !== 'string' || c.type === '') throw bad('type', 'must be host, srflx, prflx or relay');
    if (typeof c.transport !== 'string' || c.transport === '') throw bad('transport', 'must be udp or tcp');
    if (typeof c.foundation !== 'string' || !/^[A-Za-z0-9+/]{1,32}$/.test(c.foundation)) throw bad('foundation', 'must be 1 to 32 ice-chars');
    if (!Number.isInteger(c.priority) || c.priority < 1 || c.priority > 0xffffffff) throw bad('priority', 'must be an integer 1..2^32-1');
    if (typeof c.address !== 'string' || c.address.length === 0) throw bad('address', 'must be a non-empty string');
    if (canonicalIp(c.address) === undefined && !isConnectionAddress(c.address)) {
      throw bad('address', `${show(c.address)} is neither an IP address nor a host name`);
    }
    if (c.tcpType !== undefined && (c.transport.toLowerCase() !== 'tcp' || !['active', 'passive', 'so'].includes(c.tcpType))) {
      throw bad('tcpType', 'must be active, passive or so, and only on a TCP candidate (RFC 6544 §4.5)');
    }
    const activeTcp = c.transport === 'tcp' && c.tcpType === 'active';
    if (!Number.isInteger(c.port) || c.port < (activeTcp ? 0 : 1) || c.port > 65535) {
      throw bad('port', `must be an integer ${activeTcp ? 0 : 1}..65535, got ${show(c.port)}`);
    }
    if (!Number.isInteger(c.component) || c.component < 1 || c.component > 256) throw bad('component', 'must be an integer 1..256');
    if (c.relatedAddress !== undefined && canonicalIp(c.relatedAddress) === undefined) throw bad('relatedAddress', 'must be an IP address');
    if (c.relatedPort !== undefined && (!Number.isInteger(c.relatedPort) || c.relatedPort < 0 || c.relatedPort > 65535)) {
      throw bad('relatedPort', 'must be an integer 0..65535');
    }
    // An index loop, not every(): every() skips the holes of a sparse array, which would pass as pairs.
    if (c.extensions !== undefined && (!Array.isArray(c.extensions) || !isPairList(c.extensions))) {
      throw bad('extensions', 'must be an array of [name, value] string pairs');
    }
    // Everything else (type and transport tokens, extension names and values) as the grammar has it:
    // what an object may hold is what a candidate line can say.
    try {
      parseCandidate(serializeCandidate(c));
    } catch (e) {
      if (e instanceof CandidateParseError) throw bad(e.field === 'typ' ? 'type' : e.field, e.message);
      throw e;
    }
  } else throw new InvalidArgumentError(where, 'must be a candidate object or string');
  if (componentId !== undefined && c.component !== componentId) {
    throw new InvalidArgumentError(`${where}.component`, `is ${c.component}, but the call is for component ${componentId}`);
  }
  const ip = canonicalIp(c.address);
  if (ip !== undefined) c.address = ip.startsWith('::ffff:') && ip.includes('.') ? ip.slice(7) : ip;
  if (c.relatedAddress !== undefined) c.relatedAddress = canonicalIp(c.relatedAddress) ?? c.relatedAddress;
  c.transport = c.transport.toLowerCase();
  delete c.base;
  delete c.streamId;
  return c;
}

/** A copy of a candidate for the application (no shared objects with the agent's state). */
export function copyCandidate(c: Candidate): Candidate {
  const out: Candidate = { ...c };
  if (c.base) out.base = { ...c.base };
  if (c.extensions) out.extensions = c.extensions.map(([k, v]) => [k, v]);
  return out;
}

/** Whether every index of `list` (holes included) holds a [name, value] pair of strings. */
function isPairList(list: unknown[]): boolean {
  for (let i = 0; i < list.length; i++) {
    const e = list[i];
    if (!Array.isArray(e) || e.length !== 2 || typeof e[0] !== 'string' || typeof e[1] !== 'string') return false;
  }
  return true;
}
