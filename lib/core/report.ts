/**
 * Statistics in the shape of the W3C `RTCIceCandidatePairStats` and
 * `RTCIceCandidateStats` dictionaries (webrtc-stats §7.8, §7.9), per stream
 * and component, JSON-safe: pair priorities as decimal strings (they need 64
 * bits), times in ms on the agent's clock, round-trip times in seconds as the
 * W3C fields are.
 */
import { copyCandidate, type Candidate } from './candidate.js';
import { publicCandidate, remoteById } from './context.js';
import { flushTraffic } from './selection.js';
import type { CoreData, PairState, StreamData } from './state.js';

/** A snapshot of one candidate pair, for diagnostics and stats. */
export interface PairInfo {
  componentId: number;
  local: Candidate;
  remote: Candidate;
  state: PairState;
  /** Pair priority (RFC 8445 §6.1.2.3): 64 bits, as a decimal string (JSON-safe; compare with BigInt()). */
  priority: string;
  valid: boolean;
  nominated: boolean;
}

/** The stream's checklist and valid list of the current generation, highest priority first. */
export function pairList(s: StreamData): PairInfo[] {
  const out: PairInfo[] = [];
  for (const p of s.pairs) {
    if (p.generation !== s.generation) continue;
    const c = s.components.get(p.component)!;
    const l = c.local.find((x) => x.id === p.localId);
    const r = remoteById(c, p.remoteId);
    if (!l || !r) continue;
    out.push({
      componentId: p.component, local: publicCandidate(s, l), remote: copyCandidate(r.c), state: p.state,
      priority: p.priority.toString(), valid: p.valid, nominated: p.nominated,
    });
  }
  return out;
}

export interface CandidateStats {
  /** `L<n>` for local candidates, `R<n>` for remote ones. */
  id: string;
  isRemote: boolean;
  componentId: number;
  address: string;
  port: number;
  protocol: string;
  candidateType: string;
  priority: number;
  foundation: string;
  relatedAddress?: string;
  relatedPort?: number;
  /** ICE-TCP candidates: `active`, `passive` or `so` (RFC 6544). */
  tcpType?: string;
  /** The STUN/TURN server a server-reflexive or relayed candidate came from. */
  url?: string;
}

export interface CandidatePairStats {
  id: string;
  componentId: number;
  localCandidateId: string;
  remoteCandidateId: string;
  /** RFC 8445 pair state: frozen, waiting, in-progress, succeeded, failed. */
  state: string;
  nominated: boolean;
  /** The component's selected pair. */
  selected: boolean;
  /** Pair priority (RFC 8445 §6.1.2.3), a 64-bit value as a decimal string. */
  priority: string;
  /** Connectivity checks and consent requests sent, retransmissions included. */
  requestsSent: number;
  requestsReceived: number;
  responsesSent: number;
  responsesReceived: number;
  consentRequestsSent: number;
  packetsSent: number;
  packetsReceived: number;
  bytesSent: number;
  bytesReceived: number;
  lastPacketSentTimestamp?: number;
  lastPacketReceivedTimestamp?: number;
  /** Seconds: the last check or consent request's round trip. */
  currentRoundTripTime?: number;
  /** Seconds: the sum of every round trip measured; divide by `responsesReceived` for the mean. */
  totalRoundTripTime: number;
}

export interface ComponentStats {
  id: number;
  state: string;
  selectedPairId?: string;
  pairs: CandidatePairStats[];
  localCandidates: CandidateStats[];
  remoteCandidates: CandidateStats[];
}

export interface StreamStats {
  id: number;
  components: ComponentStats[];
}

function candidate(id: string, remote: boolean, c: Candidate, url?: string): CandidateStats {
  return {
    id, isRemote: remote, componentId: c.component, address: c.address, port: c.port, protocol: c.transport,
    candidateType: c.type, priority: c.priority, foundation: c.foundation,
    ...(c.relatedAddress !== undefined ? { relatedAddress: c.relatedAddress } : {}),
    ...(c.relatedPort !== undefined ? { relatedPort: c.relatedPort } : {}),
    ...(c.tcpType !== undefined ? { tcpType: c.tcpType } : {}),
    ...(url !== undefined ? { url } : {}),
  };
}

function streamReport(d: CoreData, s: StreamData): StreamStats {
  const components: ComponentStats[] = [];
  for (const c of s.components.values()) {
    flushTraffic(s, c.tx, 'sent');
    flushTraffic(s, c.rx, 'received');
    const urlOf = (transportId: number) => {
      const t = d.transports.get(transportId);
      return t?.kind === 'relay' ? d.allocations.get(t.allocationId!)?.url : undefined;
    };
    const pairs: CandidatePairStats[] = [];
    for (const p of s.pairs) {
      if (p.component !== c.id) continue;
      const k = p.counters;
      pairs.push({
        id: `P${p.id}`, componentId: p.component, localCandidateId: `L${p.localId}`, remoteCandidateId: `R${p.remoteId}`,
        state: p.state, nominated: p.nominated, selected: p.id === c.selectedPairId, priority: p.priority.toString(),
        requestsSent: k.requestsSent, requestsReceived: k.requestsReceived, responsesSent: k.responsesSent,
        responsesReceived: k.responsesReceived, consentRequestsSent: k.consentRequestsSent,
        packetsSent: k.packetsSent, packetsReceived: k.packetsReceived, bytesSent: k.bytesSent, bytesReceived: k.bytesReceived,
        ...(k.lastPacketSentAt !== undefined ? { lastPacketSentTimestamp: k.lastPacketSentAt } : {}),
        ...(k.lastPacketReceivedAt !== undefined ? { lastPacketReceivedTimestamp: k.lastPacketReceivedAt } : {}),
        ...(k.currentRtt !== undefined ? { currentRoundTripTime: k.currentRtt / 1000 } : {}),
        totalRoundTripTime: k.totalRtt / 1000,
      });
    }
    components.push({
      id: c.id,
      state: c.state,
      ...(c.selectedPairId !== undefined ? { selectedPairId: `P${c.selectedPairId}` } : {}),
      pairs,
      localCandidates: c.local.map((l) => candidate(`L${l.id}`, false, l.c, urlOf(l.transportId))),
      remoteCandidates: [...c.remote, ...c.retired].map((r) => candidate(`R${r.id}`, true, r.c)),
    });
  }
  return { id: s.id, components };
}

export function statsReport(d: CoreData): StreamStats[] {
  return [...d.streams.values()].map((s) => streamReport(d, s));
}

