/**
 * Agent options: defaults and validation. Every bad option throws an
 * InvalidOptionError naming it, before the agent exists.
 */
import { isIP } from 'node:net';
import { canonicalIp, isV6 } from './transport/address.js';
import { InvalidArgumentError, InvalidOptionError } from './errors.js';
import { parseIceServerUrl } from './turn/url.js';
import type { NominationMode } from './core/nomination.js';
import type { Network } from './transport/network.js';
import { nodeNetwork } from './transport/node-network.js';
import { UdpMux } from './transport/mux.js';
import { LOG_LEVELS, type Logger, type LogLevel } from './log.js';
import type { MdnsResolver } from './gather/mdns.js';

export interface PortRange {
  min: number;
  max: number;
}

/** A TURN server, in the shape of WebRTC's RTCIceServer (one URL). */
export interface TurnServer {
  /** `turn:host[:port][?transport=udp|tcp]` or `turns:host[:port]` (RFC 7065). */
  url: string;
  username: string;
  credential: string;
  /** `turns:` only: trusted CA certificates (e.g. a self-signed test server's). */
  ca?: string | Buffer | Array<string | Buffer>;
  /** `turns:` only: verify the server certificate. Default true. */
  rejectUnauthorized?: boolean;
}

export interface AgentOptions {
  /** Start as the controlling agent (RFC 8445 §6.1.1). libnice's `controlling-mode`. Default false. */
  controllingMode?: boolean;
  /** `'regular'` (RFC 8445 §8.1.1) or `'aggressive'` (RFC 5245, as libnice and browsers). Default `'regular'`. */
  nominationMode?: NominationMode;
  /** Ta, the pacing of new checks in ms (RFC 8445 §14.2; not below 5). libnice's `stun-pacing-timer`. Default 20. */
  stunPacingTimer?: number;
  /** Retransmissions of a check after the first transmission (RFC 8489 §6.2.1). Default 6. */
  stunMaxRetransmissions?: number;
  /** Initial retransmission timeout of a check in ms (RFC 8445 §14.3). Default 500. */
  stunInitialTimeout?: number;
  /** Upper bound of the doubling retransmission timeout in ms. Default 1600; with the defaults a dead pair fails after 9.5 s. */
  stunMaxTimeout?: number;
  /** Interval of keepalives on the selected pair in ms (RFC 8445 §11, Tr). Default 15000. */
  keepaliveInterval?: number;
  /** Gather only on these local IP addresses (e.g. `['127.0.0.1']`); loopback is used only when listed here. */
  localAddresses?: string[];
  /** Bind host sockets inside this port range (inclusive). */
  portRange?: PortRange;
  /** Gather IPv4 candidates. Default true. */
  ipv4?: boolean;
  /** Gather IPv6 candidates (link-local excluded). Default true. */
  ipv6?: boolean;
  /**
   * Gather UDP candidates (host, server-reflexive, relayed) and use the
   * peer's. libnice's `ice-udp`. Default true. `iceUdp` and `iceTcp` cannot both be false.
   */
  iceUdp?: boolean;
  /**
   * ICE-TCP (RFC 6544; libnice's `ice-tcp`): also gather TCP host candidates
   * — passive (a listening socket per local address per component) and
   * active (port 9; a connection per pair checked) — and use the peer's TCP
   * candidates. Every ICE-TCP connection carries RFC 4571 frames. Default
   * false (README "ICE-TCP" says why).
   */
  iceTcp?: boolean;
  /** Cap on candidate pairs over the whole checklist set, every stream together (RFC 8445 §6.1.2.5; libnice's max-connectivity-checks). Default 100. */
  maxPairs?: number;
  /** Cap on remote candidates per component, peer-reflexive ones included. Default 64. */
  maxRemoteCandidates?: number;
  /**
   * Regular nomination: how long in ms to wait for a better pair after the first valid one. A relayed best
   * pair waits up to 3 × this for direct pairs still being checked, 6 × once loss is seen, 10 × while the
   * peer's checks arrive on them (lib/core/nomination.ts). Default 1000.
   */
  nominationTimeout?: number;
  /**
   * Trickle ICE (RFC 8838; libnice's `ice-trickle`): remote candidates may keep
   * coming, so a component does not fail until the peer signals
   * end-of-candidates (`peerCandidateGatheringDone`) or `trickleTimeout` passes. Default false.
   */
  iceTrickle?: boolean;
  /** With `iceTrickle`: ms after the last remote candidate before a component with nothing left to try fails anyway. Default 10000. */
  trickleTimeout?: number;
  /** RFC 7675 consent freshness on the selected pair. Default true. */
  consentFreshness?: boolean;
  /** Base interval of consent checks in ms (randomised 0.8-1.2×, RFC 7675 §5.1). Default 5000. */
  consentInterval?: number;
  /** Consent is lost after this many ms without a response (RFC 7675 §5.1). Default 30000. */
  consentTimeout?: number;
  /** A component goes `disconnected` after this many ms without a response on its selected pair. Default 10000. */
  disconnectedTimeout?: number;
  /** With consent freshness off: send keepalives as Binding requests (libnice's `keepalive-conncheck`) instead of indications. Default false. */
  keepaliveConncheck?: boolean;
  /** STUN servers for server-reflexive candidates, as `stun:host[:port]` URLs (RFC 7064). */
  stunServers?: string[];
  /** TURN servers for relayed candidates (RFC 8656). */
  turnServers?: TurnServer[];
  /** How long gathering waits for each STUN/TURN server, ms. Default 2000. */
  serverTimeout?: number;
  /** Use relayed candidates only (libnice's `force-relay`): no host or server-reflexive candidate is announced or checked. Default false. */
  forceRelay?: boolean;
  /**
   * ICE-lite (RFC 8445 §2.5; libnice's `ice-lite`): gather host (and announced)
   * candidates only, never send checks, answer the full peer's and select the
   * pair it nominates; always the controlled side. Liveness is judged by the
   * peer's consent requests: none for `consentTimeout` and the component fails
   * (as mediasoup does). Default false.
   */
  iceLite?: boolean;
  /**
   * Renomination (draft-thatcher-ice-renomination; libnice's
   * `support-renomination`, pion's `WithRenomination`): the controlling agent
   * may nominate another pair later (`agent.renominate()`), its nominations
   * carrying an increasing NOMINATION count; the controlled agent follows the
   * latest. Both sides must have it (SDP `ice-options:renomination`). Default false.
   */
  renomination?: boolean;
  /**
   * Addresses to put in host candidates in place of the local ones they are
   * bound on (a static 1:1 NAT, a keepalived virtual IP): `{ '10.0.0.5':
   * '203.0.113.7' }`. Checks still arrive on the local socket. Same family only.
   */
  announcedAddresses?: Record<string, string>;
  /**
   * A shared UDP port (lib/transport/mux.ts): every stream's component 1
   * receives and sends on the mux's sockets instead of binding its own; the
   * host candidates are the mux's addresses. For media servers with many agents.
   */
  udpMux?: UdpMux;
  /**
   * Where log lines go: any object with `debug`/`info`/`warn`/`error` (and
   * optionally `trace`), such as `console`. Default: the `debug` package, one
   * namespace per module (`DEBUG=ice-agent:*`).
   */
  logger?: Logger;
  /** The least severe level logged: `trace`, `debug`, `info`, `warn`, `error` or `silent`. Default `info` with a `logger`, else `trace` (the `debug` namespaces decide). */
  logLevel?: LogLevel;
  /** A name for the agent in its log lines (default `agent-N`, N counting agents in the process). */
  name?: string;
  /**
   * Remote `.local` candidates (browsers' mDNS host names) are resolved with
   * multicast DNS (lib/gather/mdns.ts) — on by default with the host's network,
   * off otherwise (the in-memory network has no multicast); `false` turns it
   * off, an `MdnsResolver` replaces the default one.
   */
  mdns?: boolean | MdnsResolver;
  /**
   * Where sockets, timers, name lookups and randomness come from: the host's
   * (default), or a host of an in-memory `SimNetwork` for deterministic tests.
   */
  network?: Network;
}

export type ResolvedOptions = Required<Omit<AgentOptions, 'localAddresses' | 'portRange' | 'announcedAddresses' | 'udpMux' | 'logger' | 'logLevel' | 'name' | 'mdns'>> & {
  mdns: boolean | MdnsResolver | undefined;
  udpMux: UdpMux | undefined;
  logger: Logger | undefined;
  logLevel: LogLevel;
  name: string | undefined;
  announcedAddresses: Readonly<Record<string, string>>;
  localAddresses: string[] | undefined;
  portRange: PortRange | undefined;
};

export const DEFAULT_OPTIONS: Omit<ResolvedOptions, 'localAddresses' | 'portRange' | 'network' | 'announcedAddresses' | 'udpMux' | 'logger' | 'logLevel' | 'name' | 'mdns'> = {
  controllingMode: false,
  nominationMode: 'regular',
  stunPacingTimer: 20,
  stunMaxRetransmissions: 6,
  stunInitialTimeout: 500,
  stunMaxTimeout: 1600,
  keepaliveInterval: 15000,
  ipv4: true,
  ipv6: true,
  iceUdp: true,
  iceTcp: false,
  maxPairs: 100,
  maxRemoteCandidates: 64,
  nominationTimeout: 1000,
  iceTrickle: false,
  trickleTimeout: 10000,
  consentFreshness: true,
  consentInterval: 5000,
  consentTimeout: 30000,
  disconnectedTimeout: 10000,
  keepaliveConncheck: false,
  stunServers: [],
  turnServers: [],
  serverTimeout: 2000,
  forceRelay: false,
  iceLite: false,
  renomination: false,
};

const KNOWN = new Set<string>([
  ...Object.keys(DEFAULT_OPTIONS), 'localAddresses', 'portRange', 'network', 'announcedAddresses', 'udpMux', 'logger', 'logLevel', 'name', 'mdns',
]);

const NETWORK_METHODS = ['now', 'setTimer', 'clearTimer', 'randomBytes', 'interfaces', 'bindDatagram', 'connectStream', 'listenStream', 'lookup'];

function int(name: string, v: unknown, min: number, max: number): number {
  if (typeof v !== 'number' || !Number.isInteger(v) || v < min || v > max) {
    throw new InvalidOptionError(name, `must be an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}

function bool(name: string, v: unknown): boolean {
  if (typeof v !== 'boolean') throw new InvalidOptionError(name, `must be a boolean, got ${JSON.stringify(v)}`);
  return v;
}

/** Validates a TURN server entry; `Err` names the field (an option, or an argument). */
export function validateTurnServer(
  x: unknown,
  where: string,
  Err: new (field: string, message: string) => Error = InvalidArgumentError,
): TurnServer {
  if (x === null || typeof x !== 'object') throw new Err(where, 'must be { url, username, credential }');
  const v = x as Record<string, unknown>;
  if (typeof v.url !== 'string') throw new Err(`${where}.url`, 'must be a turn: or turns: URL');
  let parsed;
  try {
    parsed = parseIceServerUrl(v.url);
  } catch (e) {
    throw new Err(`${where}.url`, (e as Error).message);
  }
  if (parsed.scheme !== 'turn' && parsed.scheme !== 'turns') throw new Err(`${where}.url`, `must be a turn: or turns: URL (got ${parsed.scheme}:)`);
  if (typeof v.username !== 'string' || v.username.length === 0) throw new Err(`${where}.username`, 'must be a non-empty string');
  if (typeof v.credential !== 'string') throw new Err(`${where}.credential`, 'must be a string');
  if (v.rejectUnauthorized !== undefined && typeof v.rejectUnauthorized !== 'boolean') throw new Err(`${where}.rejectUnauthorized`, 'must be a boolean');
  return { ...(v as unknown as TurnServer) };
}

/**
 * The defaults as one object literal, every field written out: an object
 * spread (`{ ...DEFAULT_OPTIONS, … }`) in optimised code gives each result a
 * hidden class of its own (about 1 KiB per agent, measured in bench/media.ts);
 * a literal gives them all one.
 */
const NO_ANNOUNCED: Readonly<Record<string, string>> = Object.freeze({});

function defaults(): ResolvedOptions {
  const d = DEFAULT_OPTIONS;
  return {
    controllingMode: d.controllingMode, nominationMode: d.nominationMode, stunPacingTimer: d.stunPacingTimer,
    stunMaxRetransmissions: d.stunMaxRetransmissions, stunInitialTimeout: d.stunInitialTimeout, stunMaxTimeout: d.stunMaxTimeout,
    keepaliveInterval: d.keepaliveInterval, ipv4: d.ipv4, ipv6: d.ipv6, iceUdp: d.iceUdp, iceTcp: d.iceTcp, maxPairs: d.maxPairs,
    maxRemoteCandidates: d.maxRemoteCandidates, nominationTimeout: d.nominationTimeout, iceTrickle: d.iceTrickle,
    trickleTimeout: d.trickleTimeout, consentFreshness: d.consentFreshness, consentInterval: d.consentInterval,
    consentTimeout: d.consentTimeout, disconnectedTimeout: d.disconnectedTimeout, keepaliveConncheck: d.keepaliveConncheck,
    stunServers: [], turnServers: [], serverTimeout: d.serverTimeout, forceRelay: d.forceRelay, iceLite: d.iceLite,
    renomination: d.renomination, localAddresses: undefined, portRange: undefined, network: nodeNetwork, announcedAddresses: NO_ANNOUNCED,
    udpMux: undefined, logger: undefined, logLevel: 'trace', name: undefined, mdns: undefined,
  };
}

export function resolveOptions(input: AgentOptions = {}): ResolvedOptions {
  if (input === null || typeof input !== 'object') throw new InvalidOptionError('options', 'must be an object');
  for (const k of Object.keys(input)) {
    if (!KNOWN.has(k)) throw new InvalidOptionError(k, 'unknown option');
  }
  const o = defaults();
  const i = input as Record<string, unknown>;
  const has = (k: string) => i[k] !== undefined;
  if (has('controllingMode')) o.controllingMode = bool('controllingMode', i.controllingMode);
  if (has('nominationMode')) {
    if (i.nominationMode !== 'regular' && i.nominationMode !== 'aggressive') {
      throw new InvalidOptionError('nominationMode', `must be 'regular' or 'aggressive', got ${JSON.stringify(i.nominationMode)}`);
    }
    o.nominationMode = i.nominationMode;
  }
  // RFC 8445 §14.2: Ta must not be below 5 ms.
  if (has('stunPacingTimer')) o.stunPacingTimer = int('stunPacingTimer', i.stunPacingTimer, 5, 10000);
  if (has('stunMaxRetransmissions')) o.stunMaxRetransmissions = int('stunMaxRetransmissions', i.stunMaxRetransmissions, 0, 20);
  if (has('stunInitialTimeout')) o.stunInitialTimeout = int('stunInitialTimeout', i.stunInitialTimeout, 1, 60000);
  if (has('stunMaxTimeout')) o.stunMaxTimeout = int('stunMaxTimeout', i.stunMaxTimeout, 1, 600000);
  if (has('keepaliveInterval')) o.keepaliveInterval = int('keepaliveInterval', i.keepaliveInterval, 10, 3600000);
  if (has('ipv4')) o.ipv4 = bool('ipv4', i.ipv4);
  if (has('ipv6')) o.ipv6 = bool('ipv6', i.ipv6);
  if (has('iceUdp')) o.iceUdp = bool('iceUdp', i.iceUdp);
  if (has('iceTcp')) o.iceTcp = bool('iceTcp', i.iceTcp);
  // As libnice: with neither there is nothing to gather.
  if (!o.iceUdp && !o.iceTcp) throw new InvalidOptionError('iceUdp', 'iceUdp and iceTcp cannot both be false');
  if (has('maxPairs')) o.maxPairs = int('maxPairs', i.maxPairs, 1, 10000);
  if (has('maxRemoteCandidates')) o.maxRemoteCandidates = int('maxRemoteCandidates', i.maxRemoteCandidates, 1, 10000);
  if (has('nominationTimeout')) o.nominationTimeout = int('nominationTimeout', i.nominationTimeout, 0, 600000);
  if (has('iceTrickle')) o.iceTrickle = bool('iceTrickle', i.iceTrickle);
  if (has('trickleTimeout')) o.trickleTimeout = int('trickleTimeout', i.trickleTimeout, 1, 3600000);
  if (has('consentFreshness')) o.consentFreshness = bool('consentFreshness', i.consentFreshness);
  if (has('consentInterval')) o.consentInterval = int('consentInterval', i.consentInterval, 10, 3600000);
  if (has('consentTimeout')) o.consentTimeout = int('consentTimeout', i.consentTimeout, 10, 3600000);
  if (has('disconnectedTimeout')) o.disconnectedTimeout = int('disconnectedTimeout', i.disconnectedTimeout, 10, 3600000);
  if (has('keepaliveConncheck')) o.keepaliveConncheck = bool('keepaliveConncheck', i.keepaliveConncheck);
  if (has('stunServers')) {
    const list = i.stunServers;
    if (!Array.isArray(list)) throw new InvalidOptionError('stunServers', 'must be an array of stun: URLs');
    o.stunServers = list.map((u, n) => {
      const where = `stunServers[${n}]`;
      if (typeof u !== 'string') throw new InvalidOptionError(where, 'must be a string');
      let parsed;
      try {
        parsed = parseIceServerUrl(u);
      } catch (e) {
        throw new InvalidOptionError(where, (e as Error).message);
      }
      if (parsed.scheme !== 'stun') throw new InvalidOptionError(where, `must be a stun: URL (got ${parsed.scheme}:)`);
      return u;
    });
  }
  if (has('turnServers')) {
    const list = i.turnServers;
    if (!Array.isArray(list)) throw new InvalidOptionError('turnServers', 'must be an array of { url, username, credential }');
    o.turnServers = list.map((x, n) => validateTurnServer(x, `turnServers[${n}]`, InvalidOptionError));
  }
  if (has('serverTimeout')) o.serverTimeout = int('serverTimeout', i.serverTimeout, 1, 60000);
  if (has('forceRelay')) o.forceRelay = bool('forceRelay', i.forceRelay);
  if (has('iceLite')) o.iceLite = bool('iceLite', i.iceLite);
  if (has('renomination')) o.renomination = bool('renomination', i.renomination);
  if (has('logger')) {
    const l = i.logger as Record<string, unknown>;
    const missing = l === null || typeof l !== 'object' ? ['debug', 'info', 'warn', 'error'] : ['debug', 'info', 'warn', 'error'].filter((m) => typeof l[m] !== 'function');
    if (missing.length > 0) throw new InvalidOptionError('logger', `must have debug, info, warn and error methods (missing ${missing.join(', ')})`);
    o.logger = i.logger as Logger;
    o.logLevel = 'info';
  }
  if (has('logLevel')) {
    if (!LOG_LEVELS.includes(i.logLevel as LogLevel)) throw new InvalidOptionError('logLevel', `must be one of ${LOG_LEVELS.join(', ')}, got ${JSON.stringify(i.logLevel)}`);
    o.logLevel = i.logLevel as LogLevel;
  }
  if (has('mdns')) {
    const m = i.mdns as Record<string, unknown> | boolean;
    if (typeof m !== 'boolean' && (m === null || typeof m !== 'object' || typeof m.resolve !== 'function' || typeof m.close !== 'function')) {
      throw new InvalidOptionError('mdns', 'must be a boolean or an MdnsResolver { resolve(name, timeoutMs), close() }');
    }
    o.mdns = i.mdns as boolean | MdnsResolver;
  }
  if (has('name')) {
    if (typeof i.name !== 'string' || i.name.length === 0 || i.name.length > 64) throw new InvalidOptionError('name', 'must be a string of 1 to 64 characters');
    o.name = i.name;
  }
  if (has('udpMux')) {
    if (!(i.udpMux instanceof UdpMux)) throw new InvalidOptionError('udpMux', 'must be a UdpMux (UdpMux.bind(...))');
    if (i.udpMux.closed) throw new InvalidOptionError('udpMux', 'is closed');
    o.udpMux = i.udpMux;
  }
  if (has('announcedAddresses')) {
    const m = i.announcedAddresses as Record<string, unknown>;
    if (m === null || typeof m !== 'object' || Array.isArray(m)) throw new InvalidOptionError('announcedAddresses', 'must be an object { localAddress: announcedAddress }');
    const out: Record<string, string> = {};
    for (const [local, announced] of Object.entries(m)) {
      const l = canonicalIp(local);
      const a = typeof announced === 'string' ? canonicalIp(announced) : undefined;
      if (l === undefined) throw new InvalidOptionError('announcedAddresses', `key ${JSON.stringify(local)} is not an IP address`);
      if (a === undefined) throw new InvalidOptionError('announcedAddresses', `value for ${local} is not an IP address: ${JSON.stringify(announced)}`);
      if (isV6(l) !== isV6(a)) throw new InvalidOptionError('announcedAddresses', `${local} and ${a} are of different address families`);
      out[l] = a;
    }
    o.announcedAddresses = out;
  }
  if (o.consentTimeout < o.consentInterval) {
    throw new InvalidOptionError('consentTimeout', `must not be below consentInterval (${o.consentInterval})`);
  }
  if (o.stunMaxTimeout < o.stunInitialTimeout) {
    throw new InvalidOptionError('stunMaxTimeout', `must not be below stunInitialTimeout (${o.stunInitialTimeout})`);
  }
  if (has('localAddresses')) {
    const la = i.localAddresses;
    if (!Array.isArray(la) || la.length === 0) throw new InvalidOptionError('localAddresses', 'must be a non-empty array of IP addresses');
    la.forEach((a, n) => {
      if (typeof a !== 'string' || isIP(a) === 0) {
        throw new InvalidOptionError('localAddresses', `element ${n} is not an IP address: ${JSON.stringify(a)}`);
      }
    });
    o.localAddresses = [...(la as string[])];
  }
  if (has('portRange')) {
    const pr = i.portRange as Record<string, unknown>;
    if (pr === null || typeof pr !== 'object') throw new InvalidOptionError('portRange', 'must be an object {min, max}');
    const min = int('portRange', pr.min, 1, 65535);
    const max = int('portRange', pr.max, 1, 65535);
    if (min > max) throw new InvalidOptionError('portRange', `min (${min}) is above max (${max})`);
    o.portRange = { min, max };
  }
  if (!o.ipv4 && !o.ipv6) throw new InvalidOptionError('ipv6', 'ipv4 and ipv6 cannot both be false');
  if (has('network')) {
    const n = i.network as Record<string, unknown>;
    const missing = n === null || typeof n !== 'object' ? NETWORK_METHODS : NETWORK_METHODS.filter((m) => typeof n[m] !== 'function');
    if (missing.length > 0) throw new InvalidOptionError('network', `must implement Network (missing ${missing.join(', ')})`);
    o.network = i.network as Network;
  }
  return o;
}

/**
 * One frozen options object for every agent created with the same options.
 * A media server makes thousands of agents from one literal (`{ iceLite:
 * true, udpMux }`); resolved, each was a 37-field object of its own, about
 * 300 bytes a session (bench/media.ts). Objects in the options (network,
 * mux, logger, mDNS resolver) count by identity. The table is bounded and
 * holds its objects weakly: options nobody uses any more are collected.
 */
const refIds = new WeakMap<object, number>();
let lastRefId = 0;
const shared = new Map<string, WeakRef<Readonly<ResolvedOptions>>>();
const SHARED_MAX = 64;

function byIdentity(x: unknown): unknown {
  if (x === null || (typeof x !== 'object' && typeof x !== 'function')) return x;
  let id = refIds.get(x);
  if (id === undefined) {
    id = ++lastRefId;
    refIds.set(x, id);
  }
  return `#${id}`;
}

export function sharedOptions(o: ResolvedOptions): Readonly<ResolvedOptions> {
  const key = JSON.stringify({ ...o, network: byIdentity(o.network), udpMux: byIdentity(o.udpMux), logger: byIdentity(o.logger), mdns: byIdentity(o.mdns) });
  const hit = shared.get(key)?.deref();
  if (hit) return hit;
  Object.freeze(o.stunServers);
  Object.freeze(o.turnServers);
  if (o.localAddresses) Object.freeze(o.localAddresses);
  const frozen = Object.freeze(o);
  if (shared.size >= SHARED_MAX) shared.delete(shared.keys().next().value!);
  shared.set(key, new WeakRef(frozen));
  return frozen;
}
