/**
 * Connectivity checks: the STUN usage of RFC 8445 §7. Sending checks with
 * their retransmissions, answering incoming checks (§7.3), and processing
 * responses (§7.2.5). The agent decides when a check goes out (pacing, §6.1.4)
 * and what a valid or nominated pair means for its component; this module
 * speaks STUN and keeps the table of transactions in flight.
 */
import createDebug from 'debug';
import { type Candidate, computePriority, foundationKey, formatAddress } from './candidate.js';
import { CandidatePair } from './pair.js';
import type { Stream } from './stream.js';
import type { Component } from './component.js';
import type { PacketTransport as UdpTransport, RemoteAddress as RemoteInfo } from './transport/transport.js';
import type { Scheduler } from './scheduler.js';
import type { AgentStats } from './stats.js';
import type { Nominator } from './nomination.js';
import type { Checklist } from './checklist.js';
import { Transaction, retransmitWaits } from './stun/transaction.js';
import {
  ATTR, type DecodedStun, decodeStun, verifyFingerprint, verifyIntegrity, findAttribute, getUsername, getPriority,
  getTieBreaker, hasAttribute, getXorMappedAddress, getErrorCode, newTransactionId, encodeBindingRequest,
  encodeBindingSuccess, encodeBindingError, BINDING_REQUEST,
} from './stun/message.js';
import { randomIceString } from './stream.js';

const debug = createDebug('ice-agent:check');

/** What the check engine needs from its agent. */
export interface CheckHost {
  readonly stats: AgentStats;
  readonly scheduler: Scheduler;
  readonly tieBreaker: bigint;
  readonly controlling: boolean;
  readonly nominator: Nominator;
  readonly retransmitWaits: readonly number[];
  /** How long a consent request waits for its response (one transmission). */
  readonly consentWaits: readonly number[];
  readonly maxRemoteCandidates: number;
  foundation(key: string): string;
  checklistSet(): Checklist[];
  /** Role conflict resolved by switching role (§7.2.5.1, §7.3.1.1). */
  switchRole(controlling: boolean): void;
  /** New work for the pacer (a triggered check was queued). */
  wake(): void;
  /** First authenticated request on the stream. */
  initialRequest(stream: Stream): void;
  /** A peer-reflexive remote candidate was learned (§7.3.1.3). */
  remoteLearned(stream: Stream, component: Component, candidate: Candidate): void;
  /** A pair was added to the checklist by an incoming check. */
  pairAdded(stream: Stream, component: Component): void;
  /** `valid` entered the valid list (or became nominated). */
  pairValid(stream: Stream, component: Component, valid: CandidatePair): void;
  /** A check failed for good (timeout, error response, non-symmetric response). */
  pairFailed(stream: Stream, component: Component, pair: CandidatePair): void;
  /** Offers a response to the agent's other STUN clients (server-reflexive gathering); true when taken. */
  clientResponse(key: string, m: DecodedStun, rinfo: RemoteInfo): boolean;
  /** A consent check (RFC 7675) or keepalive conncheck on the selected pair was answered. */
  consentResponse(stream: Stream, component: Component, pair: CandidatePair): void;
}

interface PendingCheck {
  /** An ICE connectivity check, or a consent/keepalive request on the selected pair. */
  kind: 'check' | 'consent';
  tx: Transaction;
  stream: Stream;
  component: Component;
  pair: CandidatePair;
  transport: UdpTransport;
  /** The remote password the request was signed with; the response must be signed with it too. */
  password: string;
  controlling: boolean;
  useCandidate: boolean;
  priority: number;
}

export class Checker {
  readonly #host: CheckHost;
  readonly #pending = new Map<string, PendingCheck>();

  constructor(host: CheckHost) {
    this.#host = host;
  }

  get pendingCount(): number {
    return this.#pending.size;
  }

  /**
   * Sends a connectivity check on `pair` (§7.2.4) with USERNAME, PRIORITY,
   * the role and tie-breaker, USE-CANDIDATE when the nominator asks for it,
   * MESSAGE-INTEGRITY and FINGERPRINT (§7.1.1), and retransmits it.
   */
  send(stream: Stream, component: Component, pair: CandidatePair): void {
    this.#send('check', stream, component, pair);
  }

  /**
   * A consent check (RFC 7675 §5.1) or libnice-style keepalive conncheck on the
   * selected pair: a Binding request like a connectivity check, without
   * USE-CANDIDATE, sent once; silence is judged by the agent over many of them.
   */
  sendConsent(stream: Stream, component: Component, pair: CandidatePair): void {
    this.#send('consent', stream, component, pair);
  }

  #send(kind: 'check' | 'consent', stream: Stream, component: Component, pair: CandidatePair): void {
    const h = this.#host;
    const transport = component.transportFor(pair.local.base ?? pair.local);
    if (!transport || !stream.remote) {
      if (kind === 'check') h.pairFailed(stream, component, pair);
      return;
    }
    const useCandidate = kind === 'check' && h.nominator.useCandidate(pair);
    // §7.1.1: PRIORITY is what a peer-reflexive candidate learned from this
    // check would get: the prflx type preference with the local candidate's
    // local preference and component.
    const localPref = (pair.local.priority >>> 8) & 0xffff;
    const priority = computePriority('prflx', localPref, pair.component);
    const tid = newTransactionId();
    const key = tid.toString('hex');
    const password = stream.remote.pwd;
    const buf = encodeBindingRequest({
      transactionId: tid,
      username: `${stream.remote.ufrag}:${stream.local.ufrag}`,
      password,
      priority,
      controlling: h.controlling,
      tieBreaker: h.tieBreaker,
      useCandidate,
    });
    if (kind === 'check' && pair.state !== 'succeeded') pair.state = 'in-progress';
    const dest = pair.remote;
    const tx = new Transaction(key, kind === 'check' ? h.retransmitWaits : h.consentWaits, h.scheduler, {
      transmit: () => {
        if (kind === 'consent') h.stats.consentChecksSent++;
        else if (tx.attempts === 0) h.stats.checksSent++;
        else h.stats.checkRetransmissions++;
        transport.send(buf, dest.port, dest.address);
      },
      timeout: () => {
        this.#pending.delete(key);
        if (kind === 'consent') return;
        h.stats.checksTimedOut++;
        debug('check timed out on %s', pair.toString());
        h.pairFailed(stream, component, pair);
      },
    });
    this.#pending.set(key, {
      kind, tx, stream, component, pair, transport, password, controlling: h.controlling, useCandidate, priority,
    });
    debug('check %s%s', pair.toString(), useCandidate ? ' USE-CANDIDATE' : '');
    tx.start();
  }

  /** Stops every transaction of a stream (removed or restarted) or of the whole agent. */
  cancel(filter: (p: { kind: 'check' | 'consent'; stream: Stream; pair: CandidatePair }) => boolean = () => true): void {
    for (const [key, p] of this.#pending) {
      if (!filter(p)) continue;
      p.tx.finish();
      this.#pending.delete(key);
    }
  }

  /** Entry point for every datagram the RFC 7983 demux called STUN. */
  handle(stream: Stream, component: Component, transport: UdpTransport, buf: Buffer, rinfo: RemoteInfo): void {
    const stats = this.#host.stats;
    const m = decodeStun(buf);
    if (!m) {
      stats.dropped.malformed++;
      return;
    }
    if (verifyFingerprint(buf) === 'bad') {
      stats.dropped.badFingerprint++;
      return;
    }
    if (m.method !== BINDING_REQUEST) {
      stats.dropped.unsupported++;
      return;
    }
    switch (m.cls) {
      case 'request':
        this.#onRequest(stream, component, transport, m, rinfo);
        return;
      case 'indication':
        // Keepalives (§11); nothing to do.
        stats.stunIndicationsReceived++;
        return;
      default:
        if (this.#host.clientResponse(m.transactionId.toString('hex'), m, rinfo)) return;
        this.#onResponse(component, transport, m, rinfo);
    }
  }

  #respondError(transport: UdpTransport, m: DecodedStun, rinfo: RemoteInfo, code: number, reason: string, password?: string): void {
    this.#host.stats.errorResponsesSent++;
    transport.send(encodeBindingError(m.transactionId, code, reason, password), rinfo.port, rinfo.address);
  }

  /** An incoming check, RFC 8445 §7.3. */
  #onRequest(stream: Stream, component: Component, transport: UdpTransport, m: DecodedStun, rinfo: RemoteInfo): void {
    const h = this.#host;
    h.stats.stunRequestsReceived++;
    // RFC 8489 §9.1.3: authenticate before anything else. Nothing about the
    // sender is learned from a request that fails these checks.
    const username = getUsername(m);
    if (username === undefined || findAttribute(m.raw, ATTR.MESSAGE_INTEGRITY) < 0) {
      h.stats.dropped.badRequest++;
      this.#respondError(transport, m, rinfo, 400, 'Bad Request');
      return;
    }
    const colon = username.indexOf(':');
    const lfrag = colon > 0 ? username.slice(0, colon) : undefined;
    // During an ICE restart (§9) the previous credentials stay valid until the
    // new generation has selected its pair, so consent on the old pair goes on.
    const creds = lfrag === stream.local.ufrag ? stream.local
      : lfrag !== undefined && lfrag === stream.previousLocal?.ufrag ? stream.previousLocal : undefined;
    if (!creds) {
      h.stats.dropped.unknownUsername++;
      this.#respondError(transport, m, rinfo, 401, 'Unauthenticated');
      return;
    }
    if (verifyIntegrity(m.raw, creds.pwd) !== 'ok') {
      h.stats.dropped.badIntegrity++;
      this.#respondError(transport, m, rinfo, 401, 'Unauthenticated');
      return;
    }
    const priority = getPriority(m);
    const theirControlling = getTieBreaker(m, ATTR.ICE_CONTROLLING);
    const theirControlled = getTieBreaker(m, ATTR.ICE_CONTROLLED);
    if (priority === undefined || priority === 0 || (theirControlling === undefined && theirControlled === undefined)) {
      h.stats.dropped.badRequest++;
      this.#respondError(transport, m, rinfo, 400, 'Bad Request');
      return;
    }
    // §7.3.1.1 role conflict: the larger tie-breaker keeps (or takes) controlling.
    if (h.controlling && theirControlling !== undefined) {
      h.stats.roleConflicts++;
      if (h.tieBreaker >= theirControlling) {
        this.#respondError(transport, m, rinfo, 487, 'Role Conflict', creds.pwd);
        return;
      }
      h.switchRole(false);
    } else if (!h.controlling && theirControlled !== undefined) {
      h.stats.roleConflicts++;
      if (h.tieBreaker >= theirControlled) h.switchRole(true);
      else {
        this.#respondError(transport, m, rinfo, 487, 'Role Conflict', creds.pwd);
        return;
      }
    }
    h.initialRequest(stream);

    // §7.3.1.3: a source address we were not told about is a peer-reflexive candidate.
    let remote = component.findRemote(rinfo.address, rinfo.port);
    if (!remote) {
      if (component.remoteCandidates.length >= h.maxRemoteCandidates) {
        h.stats.dropped.tableFull++;
      } else {
        remote = {
          type: 'prflx',
          transport: 'udp',
          // A foundation of its own: it must not match any signalled candidate's.
          foundation: `${randomIceString(8)}`,
          component: component.id,
          priority,
          address: rinfo.address,
          port: rinfo.port,
        };
        component.remoteCandidates.push(remote);
        h.remoteLearned(stream, component, remote);
      }
    }

    // §7.3.1.2: the response carries the source as XOR-MAPPED-ADDRESS.
    h.stats.responsesSent++;
    transport.send(encodeBindingSuccess(m.transactionId, rinfo.address, rinfo.port, creds.pwd), rinfo.port, rinfo.address);
    // The sender proved it knows our password: it may send data.
    component.authorize(rinfo.address, rinfo.port);
    if (!remote) return;

    // The candidate whose base is this transport: a host candidate, or a relayed one.
    const local = component.localCandidates.find((c) =>
      (c.type === 'host' || c.type === 'relay') && c.port === transport.port && c.address === transport.address);
    if (!local) return;
    const cl = stream.checklist;
    let pair = cl.get(transport, rinfo);
    if (!pair) {
      pair = cl.addPair(local, remote, h.controlling, h.checklistSet());
      if (!pair) {
        h.stats.dropped.tableFull++;
        return;
      }
      h.pairAdded(stream, component);
    }
    const useCandidate = !h.controlling && hasAttribute(m, ATTR.USE_CANDIDATE);
    if (pair.state === 'succeeded') {
      // §7.3.1.5: nomination of a pair already validated by our own check.
      if (useCandidate) {
        const valid = pair.validPair ?? pair;
        if (!valid.nominated) {
          valid.nominated = true;
          h.pairValid(stream, component, valid);
        }
      }
      return;
    }
    // §7.3.1.4 triggered check; §7.3.1.5: a nomination on a pair we have not
    // validated yet takes effect when our triggered check succeeds.
    if (useCandidate) pair.nominateOnSuccess = true;
    cl.trigger(pair);
    h.wake();
  }

  /** A response to one of our checks, RFC 8445 §7.2.5. */
  #onResponse(component: Component, transport: UdpTransport, m: DecodedStun, rinfo: RemoteInfo): void {
    const h = this.#host;
    h.stats.stunResponsesReceived++;
    const key = m.transactionId.toString('hex');
    const p = this.#pending.get(key);
    if (!p || p.component !== component) {
      h.stats.dropped.unknownTransaction++;
      return;
    }
    const integrity = verifyIntegrity(m.raw, p.password);
    // 400/401 answers cannot carry integrity (RFC 8489 §9.1.3); anything else must.
    if (integrity === 'bad' || (integrity === 'missing' && m.cls === 'success')) {
      h.stats.dropped.badIntegrity++;
      return;
    }
    this.#pending.delete(key);
    p.tx.finish();
    const { stream, pair } = p;
    const cl = stream.checklist;
    if (p.kind === 'consent') {
      // RFC 7675 §5.1: only a symmetric success response refreshes consent.
      if (m.cls === 'success' && rinfo.address === pair.remote.address && rinfo.port === pair.remote.port && transport === p.transport) {
        h.consentResponse(stream, component, pair);
      }
      return;
    }

    if (m.cls === 'error') {
      const err = getErrorCode(m);
      if (err?.code === 487 && integrity === 'ok') {
        // §7.2.5.1: take the role opposite to the one the request claimed, and check again.
        h.stats.roleConflicts++;
        if (h.controlling === p.controlling) h.switchRole(!p.controlling);
        if (pair.state === 'in-progress') pair.state = 'waiting';
        cl.trigger(pair);
        h.wake();
        return;
      }
      debug('error %s on %s', err ? `${err.code} ${err.reason}` : '?', pair.toString());
      h.pairFailed(stream, component, pair);
      return;
    }

    // §7.2.5.2.1: the response must come from where the request went, to
    // the socket it left from; otherwise the pair fails.
    if (rinfo.address !== pair.remote.address || rinfo.port !== pair.remote.port || transport !== p.transport) {
      debug('non-symmetric response from %s on %s', formatAddress(rinfo.address, rinfo.port), pair.toString());
      h.pairFailed(stream, component, pair);
      return;
    }
    const mapped = getXorMappedAddress(m);
    if (!mapped) {
      h.pairFailed(stream, component, pair);
      return;
    }
    // §7.2.5.3.1: a mapped address we do not know is a local peer-reflexive candidate.
    let local = component.findLocal(mapped.address, mapped.port);
    if (!local) {
      local = {
        type: 'prflx',
        transport: 'udp',
        foundation: h.foundation(foundationKey('prflx', transport.address, 'udp')),
        component: component.id,
        priority: p.priority,
        address: mapped.address,
        port: mapped.port,
        base: { address: transport.address, port: transport.port },
        streamId: stream.id,
      };
      component.localCandidates.push(local);
    }
    // §7.2.5.3.2: the valid pair is (the local candidate of the mapped address, the remote the check went to).
    let valid: CandidatePair;
    if (local === pair.local) valid = pair;
    else {
      valid = pair.validPair ?? new CandidatePair(local, pair.remote, h.controlling);
      valid.state = 'succeeded';
    }
    pair.validPair = valid;
    component.authorize(pair.remote.address, pair.remote.port);
    cl.succeeded(pair, h.checklistSet());
    cl.addValid(valid);
    // §7.2.5.3.4 (controlling: our USE-CANDIDATE check succeeded) and §7.3.1.5
    // (controlled: the peer nominated this pair before our check succeeded).
    if ((p.controlling && p.useCandidate) || (!h.controlling && pair.nominateOnSuccess)) valid.nominated = true;
    pair.nominating = false;
    h.pairValid(stream, component, valid);
  }
}

export { retransmitWaits };
