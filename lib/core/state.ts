/**
 * The core's state, as plain data: numbers, strings, booleans, Buffers,
 * arrays and Maps (some lazy: lib/core/lazy.ts) of plain objects. No closures, no timers, no object links
 * between entities (a pair names its candidates by id, a component names its
 * selected pair by id), so that the whole state can be copied, inspected and
 * later exported. Every deadline is a field (`...At`, ms on the shell's clock);
 * the core's `nextTimeout()` is the earliest of them.
 */
import { LazyMap, LazySet } from './lazy.js';
import type { Candidate, TcpType } from './candidate.js';
import type { TransportAddress } from '../transport/address.js';
import type { Allocation } from '../turn/allocation.js';
import type { Counters } from '../stats.js';

/** Component states, exactly libnice's NiceComponentState. */
export type ComponentState = 'disconnected' | 'gathering' | 'connecting' | 'connected' | 'ready' | 'failed';

/** Candidate pair states, RFC 8445 §6.1.2.6. */
export type PairState = 'frozen' | 'waiting' | 'in-progress' | 'succeeded' | 'failed';

/**
 * The empty list every list field of the state starts as, frozen: a session
 * keeps several lists that stay empty (servers, triggered checks, retired
 * candidates, relay servers) and a few that get one entry, and each empty
 * array of its own is 32 bytes. Lists grow through `append` (lib/core/context.ts)
 * or by assigning a new array, never by a push onto this one (that would throw).
 */
export const NONE: readonly never[] = Object.freeze([]);
export function none<T>(): T[] {
  return NONE as unknown as T[];
}

/**
 * `list` with `x` at its end. The first element gets an array of its own
 * size: a push into an empty array makes room for 17 (V8's growth step),
 * which a session with one candidate and one pair never fills (about 130
 * bytes per list, per session). Safe for a loop over `list`: an empty one
 * has nothing left to visit.
 */
export function append<T>(list: T[], x: T): T[] {
  if (list.length === 0) return [x];
  list.push(x);
  return list;
}

/**
 * The elements of `list` that pass `test`, as a list to keep in the state:
 * `list` itself when all pass, the shared empty list when none does, else an
 * array of exactly its size (`filter` grows its result as a push does, to 17
 * places for one pair: 128 bytes a session that stay empty).
 */
export function retain<T>(list: T[], test: (x: T) => boolean): T[] {
  const out = list.filter(test);
  if (out.length === list.length) return list;
  return out.length === 0 ? none() : out.slice();
}

/**
 * A time before any input's (the clocks start at zero): "never" for fields
 * compared with times. A whole number, not -Infinity, which V8 would box
 * (16 bytes) in every object that holds it.
 */
export const NEVER = -(2 ** 30);

export interface Credentials {
  ufrag: string;
  pwd: string;
}

/** A local candidate and the transport it sends from (its base, RFC 8445 §5.1.1). */
export interface LocalCand {
  id: number;
  transportId: number;
  c: Candidate;
}

export interface RemoteCand {
  id: number;
  c: Candidate;
  /** When it arrived (a remote ICE restart keeps those that came after the old generation's last check). */
  addedAt: number;
}

/** Per-pair counters (the W3C RTCIceCandidatePairStats fields). */
export interface PairCounters {
  requestsSent: number;
  requestsReceived: number;
  responsesSent: number;
  responsesReceived: number;
  consentRequestsSent: number;
  packetsSent: number;
  packetsReceived: number;
  bytesSent: number;
  bytesReceived: number;
  lastPacketSentAt: number | undefined;
  lastPacketReceivedAt: number | undefined;
  /** Last round-trip time of a check or consent request on this pair, ms. */
  currentRtt: number | undefined;
  totalRtt: number;
  rttSamples: number;
}

export interface Pair {
  id: number;
  component: number;
  /** The ICE generation (restart counter) the pair belongs to. */
  generation: number;
  localId: number;
  remoteId: number;
  /** The candidates' types (nomination weighs relayed and host pairs differently). */
  localType: string;
  remoteType: string;
  /** Redundancy key (§6.1.2.4): local base transport and remote address. */
  key: string;
  /** Pair foundation: local and remote foundations together, compared as whole strings (§6.1.2.6). */
  foundation: string;
  priority: bigint;
  state: PairState;
  /** Part of the checklist (false: a valid pair with a local peer-reflexive candidate, §7.2.5.3.2). */
  inChecklist: boolean;
  /** In the valid list (§7.2.5.3.2). */
  valid: boolean;
  nominated: boolean;
  /** Controlled side: USE-CANDIDATE came before our own check succeeded (§7.3.1.5). */
  nominateOnSuccess: boolean;
  /** Controlling side, regular nomination: the USE-CANDIDATE check is under way. */
  nominating: boolean;
  /** Its check lost every transmission and got its one more transaction (lib/core/check.ts checkTimeout). */
  retried?: boolean;
  /** Renomination: the NOMINATION count this pair was (or is being) nominated with; the latest wins. */
  nominationValue: number | undefined;
  /** The valid pair this pair's check produced (§7.2.5.3.2). */
  validPairId: number | undefined;
  /** The transaction of the latest check on this pair. */
  txKey: string | undefined;
  /**
   * ICE-TCP: the connection (a `tcp-conn` transport) this pair's checks and
   * data go on, one per pair (RFC 6544 §7.1); undefined for UDP, and until a
   * TCP pair's first check opens one or an accepted connection is bound to it.
   */
  connId?: number | undefined;
  counters: PairCounters;
}

export interface ConsentState {
  /** The pair consent is kept on (the component's send pair when it started). */
  pairId: number;
  nextAt: number;
  lastResponseAt: number;
}

export interface ComponentData {
  id: number;
  state: ComponentState;
  local: LocalCand[];
  remote: RemoteCand[];
  /** Remote candidates of an earlier generation still named by a pair in use (the old selected pair during a restart). */
  retired: RemoteCand[];
  /** The nominated pair in use (libnice's selected pair). */
  selectedPairId: number | undefined;
  /** Where data goes: the selected pair, or before nomination the best valid pair (as libnice). */
  sendPairId: number | undefined;
  firstValidAt: number | undefined;
  /** Regular nomination: decide again at this time (a better pair may still succeed). */
  nominationAt: number | undefined;
  /** Trickle: fail at this time if still nothing to try. */
  trickleAt: number | undefined;
  /**
   * ICE-TCP: with nothing left to check but a local passive candidate and a
   * remote active one, the peer may still connect to us (RFC 6544 §6.2): fail
   * only at this time (lib/core/tcp.ts tcpAwaiting). `tcpWaitDone` once it passed.
   */
  tcpWaitAt: number | undefined;
  tcpWaitDone: boolean;
  consent: ConsentState | undefined;
  /** RFC 7675: consent was lost; nothing revives the component but an ICE restart. */
  consentLost: boolean;
  /** Renomination: the last NOMINATION count sent (controlling) or followed (controlled). */
  lastNomination: number;
  /** Remote addresses allowed to send application data (addressKey form). */
  authorized: LazySet<string>;
  /** The last source that passed the authorisation test (the data path's one comparison). */
  lastSrcAddress: string;
  lastSrcPort: number;
  /** TURN servers for this component only (setRelayInfo). */
  relayServers: TurnServerConfig[];
  /**
   * Application data counted on the data path, attributed to the pair it went
   * on (sent) or came from (received) when that changes or stats are read:
   * the data path does no pair lookup per packet.
   */
  tx: TrafficCounter;
  rx: TrafficCounter;
}

export interface TrafficCounter {
  pairId: number | undefined;
  packets: number;
  bytes: number;
  lastAt: number | undefined;
}

export type GatheringState = 'new' | 'gathering' | 'complete';

export interface StreamData {
  id: number;
  generation: number;
  local: Credentials;
  /** Credentials of the previous generation, accepted until the new one selects its pairs (§9). */
  previousLocal: Credentials | undefined;
  remote: Credentials | undefined;
  previousRemote: Credentials | undefined;
  /** A local restart waits for the peer's new credentials. */
  restartPending: boolean;
  /** Whether a check went out or an authenticated request came in with the current remote credentials. */
  remoteUsed: boolean;
  /** Time of the last connectivity check (sent or received) of the current generation. */
  lastCheckAt: number;
  remoteEndOfCandidates: boolean;
  lastRemoteCandidateAt: number;
  gathering: GatheringState;
  /** Server jobs (STUN bindings, TURN allocations) still running in this gathering. */
  pendingServerJobs: number;
  initialRequestSeen: boolean;
  components: LazyMap<number, ComponentData>;
  /** Every pair of the stream, highest priority first (the checklist is those `inChecklist`). */
  pairs: Pair[];
  /** Triggered-check queue (§6.1.4.1), pair ids, FIFO. */
  triggered: number[];
  /** Once every component has its selected pair: when unused relayed candidates are freed (§8.3). */
  freeAt: number | undefined;
}

export interface TurnServerConfig {
  url: string;
  username: string;
  credential: string;
  ca?: string | Buffer | Array<string | Buffer>;
  rejectUnauthorized?: boolean;
}

export type TransportKind = 'host' | 'relay' | 'link' | 'tcp-base' | 'tcp-conn';

/**
 * ICE-TCP (RFC 6544, lib/core/tcp.ts): what a `tcp-base` (the base of TCP
 * host candidates: a passive candidate's listening socket, or an active
 * candidate, which has none) or a `tcp-conn` (one connection, opened by us
 * for a pair or accepted on a passive base) is.
 */
export interface TcpInfo {
  /** The tcptype of the candidates this transport serves (a connection: its base's). */
  tcpType: TcpType;
  /** A connection: the base it belongs to (pairs are keyed by it). A base: itself. */
  baseId: number;
  /** A connection's far end. */
  remote: TransportAddress | undefined;
  /** `connecting`: asked of the shell (`open-tcp`), not open yet. */
  state: 'connecting' | 'open';
  /** Accepted on a passive base's listener, not opened by us. */
  incoming: boolean;
  /** Ours, or a Binding request on it passed MESSAGE-INTEGRITY. */
  authenticated: boolean;
  /** Closed at this time unless a pair is bound to it first (incoming connections). */
  idleAt: number | undefined;
  /** Frames written while connecting, sent once it opens (bounded). */
  queue: Buffer[];
  /** The pair it carries. */
  pairId: number | undefined;
  /** When it was accepted or asked for: a flood closes the oldest unauthenticated one first. */
  openedAt: number;
}

/**
 * A transport the core sends on: a host UDP socket, a TURN allocation
 * (relayed), a TCP/TLS link to a TURN server, or ICE-TCP's bases and connections.
 */
export interface TransportRecord {
  id: number;
  kind: TransportKind;
  protocol: 'udp' | 'tcp';
  streamId: number;
  componentId: number;
  local: TransportAddress;
  /** relay: the allocation behind it; link: the allocation it carries. */
  allocationId: number | undefined;
  /** Gathering rank of a host address (RFC 8421 order), for local preferences. */
  rank: number;
  /**
   * STUN/TURN servers whose answers arrive on this transport: datagrams from
   * them are routed to gathering or to the allocation before the ICE demux.
   */
  servers: Array<{ address: string; port: number; allocationId: number | undefined }>;
  /** ICE-TCP bases and connections only. */
  tcp?: TcpInfo;
}

/** A server-reflexive gathering transaction (RFC 8445 §5.1.1.2: a Binding request to a STUN server). */
export interface SrflxTx {
  key: string;
  streamId: number;
  componentId: number;
  transportId: number;
  url: string;
  server: TransportAddress;
  bytes: Buffer;
  attempt: number;
  waits: number[];
  nextAt: number;
}

export interface AllocationRecord {
  id: number;
  streamId: number;
  componentId: number;
  url: string;
  /** The transport the server is reached on: a host UDP socket, or a TCP/TLS link. */
  linkId: number;
  /** The relayed transport, once allocated. */
  relayId: number | undefined;
  machine: Allocation;
  /** Counted in its stream's pendingServerJobs until it allocates or fails. */
  pending: boolean;
}

export type CheckKind = 'check' | 'consent';

/** A connectivity check or consent request in flight (RFC 8445 §7.2.4, RFC 7675 §5.1). */
export interface CheckTx {
  key: string;
  kind: CheckKind;
  streamId: number;
  componentId: number;
  pairId: number;
  transportId: number;
  to: TransportAddress;
  bytes: Buffer;
  /** The remote password the request was signed with; the response must verify with it. */
  password: string;
  controlling: boolean;
  useCandidate: boolean;
  /** Renomination: the NOMINATION count the check carried. */
  nomination: number | undefined;
  priority: number;
  attempt: number;
  lastSentAt: number;
  nextAt: number;
  /** §7.3.1.4: cancelled — no retransmission, no failure on timeout, but a response is still taken. */
  cancelled: boolean;
  /** Sent on a TCP connection: one transmission, one wait (RFC 6544 §7.1). */
  reliable: boolean;
}

export interface CoreData {
  controlling: boolean;
  tieBreaker: bigint;
  nextStreamId: number;
  nextId: number;
  streams: LazyMap<number, StreamData>;
  transports: LazyMap<number, TransportRecord>;
  // Lazy: empty for most agents (a lite agent sends no checks and asks no server).
  checks: LazyMap<string, CheckTx>;
  srflx: LazyMap<string, SrflxTx>;
  allocations: LazyMap<number, AllocationRecord>;
  foundations: LazyMap<string, string>;
  /** The pacer (Ta, §6.1.4.2): next time an ordinary check may go, and the stream to start with. */
  nextCheckAt: number;
  pacerIdle: boolean;
  rr: number;
  /** Triggered checks sent at once in the current Ta window, to bound bursts. */
  burstWindowAt: number;
  burstCount: number;
  closing: boolean;
  /** Bumped by every change a session export would show (lib/core/session.ts): the shell's `session-changed`. */
  revision: number;
  stats: Counters;
}

export function newCounters(): PairCounters {
  return {
    requestsSent: 0, requestsReceived: 0, responsesSent: 0, responsesReceived: 0, consentRequestsSent: 0,
    packetsSent: 0, packetsReceived: 0, bytesSent: 0, bytesReceived: 0,
    lastPacketSentAt: undefined, lastPacketReceivedAt: undefined, currentRtt: undefined, totalRtt: 0, rttSamples: 0,
  };
}

export function newComponent(id: number): ComponentData {
  return {
    id, state: 'disconnected', local: none(), remote: none(), retired: none(), selectedPairId: undefined, sendPairId: undefined,
    firstValidAt: undefined, nominationAt: undefined, trickleAt: undefined, tcpWaitAt: undefined, tcpWaitDone: false, consent: undefined, consentLost: false, lastNomination: 0,
    authorized: new LazySet(), lastSrcAddress: '', lastSrcPort: -1, relayServers: none(),
    tx: { pairId: undefined, packets: 0, bytes: 0, lastAt: undefined },
    rx: { pairId: undefined, packets: 0, bytes: 0, lastAt: undefined },
  };
}
