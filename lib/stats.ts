/**
 * Counters an operator can read with `agent.getStats()`. Every packet the
 * agent drops is counted under the reason it was dropped.
 */
export interface DropCounters {
  /** First byte said STUN (0-3) but the framing was wrong, or an attribute overran the message. */
  malformed: number;
  /** FINGERPRINT present and wrong (RFC 8489 §14.7: not STUN). */
  badFingerprint: number;
  /** MESSAGE-INTEGRITY missing or wrong on a request (answered 400/401) or a response (dropped). */
  badIntegrity: number;
  /** Request whose USERNAME does not name this stream's local ufrag (answered 401). */
  unknownUsername: number;
  /** Request missing a required attribute (answered 400). */
  badRequest: number;
  /** Response to no transaction of ours (late, duplicate or forged). */
  unknownTransaction: number;
  /** Application data from an address that is not part of a checked pair. */
  unauthorizedSource: number;
  /** Application data arriving with no receive callback attached. */
  noReceiver: number;
  /** STUN methods or classes an ICE agent does not handle. */
  unsupported: number;
  /** New remote candidates or pairs refused because their table was full. */
  tableFull: number;
  /** Datagrams for a transport or component that is gone (a stream removed, the agent closing). */
  closed: number;
  /** ICE-TCP connections closed because a frame's RFC 4571 length was over the limit (lib/transport/tcp.ts). */
  tcpFrameTooLong: number;
  /** ICE-TCP connections accepted on a passive candidate and closed because no check authenticated them in time. */
  tcpIdle: number;
  /** ICE-TCP connections accepted on a passive candidate and closed because their first frame was not an authenticated check. */
  tcpUnauthenticated: number;
  /** ICE-TCP connections closed because their listener had too many unauthenticated ones (the oldest goes). */
  tcpFlood: number;
}

export interface AgentStats {
  packetsReceived: number;
  bytesReceived: number;
  dataPacketsReceived: number;
  dataBytesReceived: number;
  dataPacketsSent: number;
  dataBytesSent: number;
  stunRequestsReceived: number;
  stunResponsesReceived: number;
  stunIndicationsReceived: number;
  checksSent: number;
  checkRetransmissions: number;
  checksTimedOut: number;
  responsesSent: number;
  errorResponsesSent: number;
  roleConflicts: number;
  keepalivesSent: number;
  consentChecksSent: number;
  consentLost: number;
  /** STUN/TURN servers that failed during gathering or later. */
  serverErrors: number;
  /**
   * Datagrams from STUN and TURN servers for the agent itself, handled by
   * gathering and the TURN allocations (their own drops are in the TURN
   * client's counters). What a TURN server relays from a peer is counted
   * where its content ends instead (checks, data or drops), so that each
   * datagram in `packetsReceived` is counted in exactly one place.
   */
  serverPacketsReceived: number;
  /** ICE-TCP (RFC 6544): connections accepted on passive candidates, asked for by checks, and failed to open. */
  tcpConnectionsAccepted: number;
  tcpConnectionsOpened: number;
  tcpConnectFailures: number;
  dropped: DropCounters;
}

/**
 * The agent's counters as the core keeps them: the ones every session moves
 * (a media server's ICE-lite sessions: packets, requests, responses) in one
 * small object, and the ones most sessions never touch (drops, TCP, servers,
 * role conflicts, retransmissions) in a second, made on the first count.
 * Ten thousand sessions of 38 counters each would hold 3.6 MB of zeros.
 * `agent.getStats()` shows them all as AgentStats (`snapshotStats`).
 */
const COMMON = [
  'packetsReceived', 'bytesReceived', 'dataPacketsReceived', 'dataBytesReceived', 'dataPacketsSent', 'dataBytesSent',
  'stunRequestsReceived', 'stunResponsesReceived', 'checksSent', 'responsesSent', 'consentChecksSent',
] as const satisfies ReadonlyArray<keyof AgentStats>;
type CommonCounter = (typeof COMMON)[number];

export type Counters = Pick<AgentStats, CommonCounter> & { rare: RareCounters | undefined };

export type RareCounter = Exclude<keyof AgentStats, keyof Counters | 'dropped'>;
export type RareCounters = Record<RareCounter, number> & { dropped: DropCounters };

const isCommon = (k: string) => (COMMON as readonly string[]).includes(k);

// A literal, not built from COMMON: V8 keeps a literal's fields in the object (built field by field
// they would go to a second array). The type holds it to exactly COMMON's fields.
export function createCounters(): Counters {
  const st: { [K in keyof Counters]-?: Counters[K] } = {
    packetsReceived: 0, bytesReceived: 0, dataPacketsReceived: 0, dataBytesReceived: 0, dataPacketsSent: 0, dataBytesSent: 0,
    stunRequestsReceived: 0, stunResponsesReceived: 0, checksSent: 0, responsesSent: 0, consentChecksSent: 0, rare: undefined,
  };
  return st;
}

function createRare(): RareCounters {
  return Object.fromEntries(Object.entries(createStats()).filter(([k]) => !isCommon(k))) as RareCounters;
}

/** Counts one of the rare counters. */
export function countRare(st: Counters, name: RareCounter): void {
  (st.rare ??= createRare())[name]++;
}

/** Counts a dropped packet under its reason. */
export function countDrop(st: Counters, reason: keyof DropCounters): void {
  (st.rare ??= createRare()).dropped[reason]++;
}

/** The counters as `agent.getStats()` shows them: every field, zero where nothing was counted; a copy. */
export function snapshotStats(st: Counters): AgentStats {
  const { rare, ...hot } = st;
  const r = rare ?? createRare();
  return { ...hot, ...r, dropped: { ...r.dropped } };
}

export function createStats(): AgentStats {
  return {
    packetsReceived: 0,
    bytesReceived: 0,
    dataPacketsReceived: 0,
    dataBytesReceived: 0,
    dataPacketsSent: 0,
    dataBytesSent: 0,
    stunRequestsReceived: 0,
    stunResponsesReceived: 0,
    stunIndicationsReceived: 0,
    checksSent: 0,
    checkRetransmissions: 0,
    checksTimedOut: 0,
    responsesSent: 0,
    errorResponsesSent: 0,
    roleConflicts: 0,
    keepalivesSent: 0,
    consentChecksSent: 0,
    consentLost: 0,
    serverErrors: 0,
    serverPacketsReceived: 0,
    tcpConnectionsAccepted: 0,
    tcpConnectionsOpened: 0,
    tcpConnectFailures: 0,
    dropped: {
      malformed: 0,
      badFingerprint: 0,
      badIntegrity: 0,
      unknownUsername: 0,
      badRequest: 0,
      unknownTransaction: 0,
      unauthorizedSource: 0,
      noReceiver: 0,
      unsupported: 0,
      tableFull: 0,
      closed: 0,
      tcpFrameTooLong: 0,
      tcpIdle: 0,
      tcpUnauthenticated: 0,
      tcpFlood: 0,
    },
  };
}
