/**
 * Connectivity checks, the STUN usage of RFC 8445 §7: sending checks and
 * consent requests with their retransmissions (§7.2.4, RFC 7675 §5.1),
 * answering incoming checks (§7.3) and processing responses (§7.2.5). What a
 * valid or nominated pair means for its component is lib/core/selection.ts.
 */
import { formatAddress, type TransportAddress } from '../transport/address.js';
import {
  ATTR, type DecodedStun, ICE_KNOWN_ATTRIBUTES, findAttribute, getErrorCode, getNomination, getPriority, getTieBreaker, getUsername,
  getXorMappedAddress, hasAttribute, tieBreakerAt, unknownComprehensionRequired, usernameNamesUfrag, verifyIntegrity,
} from '../stun/message.js';
import { encodeBindingError, encodeBindingRequest, encodeBindingSuccess, encodeUnknownAttributes } from '../stun/binding.js';
import { computePriority, foundationKey, foundationOf, localPreferenceOf } from './candidate.js';
import { insertPair, markSucceeded, pairById, pairFrom, updateStates, addPair } from './checklist.js';
import { append, authorize, type Ctx, emit, findLocal, findRemote, log, nextId, pairCandidates, randomIceString, streamSet } from './context.js';
import { newPair, describePair } from './pair.js';
import { consentResponse } from './consent.js';
import { transmitVia } from './relay.js';
import { isDone, pairFailed, pairValid, pairsAdded, switchRole } from './selection.js';
import { relayed } from './nomination.js';
import type { CheckKind, CheckTx, ComponentData, Credentials, Pair, StreamData, TransportRecord } from './state.js';
import {
  baseIdOf, bindConnection, checkTransport, peerTcpType, reliableTimeout, signalledActive, tcpAuthenticated, tcpMappedLocal,
} from './tcp.js';
import { countDrop, countRare } from '../stats.js';

/** The credentials a pair's checks use: its generation's (the old selected pair keeps the old ones during a restart, §9). */
function credentialsOf(s: StreamData, pair: Pair): { local: Credentials; remote: Credentials } | undefined {
  const local = pair.generation === s.generation ? s.local : s.previousLocal;
  const remote = pair.generation === s.generation ? s.remote : s.previousRemote;
  return local && remote ? { local, remote } : undefined;
}

/**
 * Sends a connectivity check (§7.2.4: USERNAME, PRIORITY, the role and
 * tie-breaker, USE-CANDIDATE when the role says so, MESSAGE-INTEGRITY,
 * FINGERPRINT) or a consent request (the same without USE-CANDIDATE, sent
 * once). A check on a pair whose previous check is still in flight cancels
 * that one first (§7.3.1.4). False when the pair cannot be checked.
 */
export function sendCheck(ctx: Ctx, s: StreamData, c: ComponentData, pair: Pair, kind: CheckKind): boolean {
  const d = ctx.d;
  const cands = pairCandidates(c, pair);
  const creds = credentialsOf(s, pair);
  if (!cands || !creds) {
    if (kind === 'check') pairFailed(ctx, s, c, pair, cands ? 'no remote credentials' : 'a candidate is gone');
    return false;
  }
  const useCandidate = kind === 'check' && ctx.role.useCandidate(pair);
  // Renomination: a regular nomination carries its count (draft-thatcher-ice-renomination §4).
  const nomination = useCandidate && ctx.o.renomination && ctx.role.mode === 'regular' ? pair.nominationValue : undefined;
  // §7.1.1: PRIORITY is what a peer-reflexive candidate learned from this
  // check would get: the prflx type preference with our local preference.
  const priority = computePriority('prflx', localPreferenceOf(cands.local.c.priority), pair.component);
  const tid = ctx.env.randomBytes(12);
  const key = tid.toString('hex');
  const bytes = encodeBindingRequest({
    transactionId: tid,
    username: `${creds.remote.ufrag}:${creds.local.ufrag}`,
    password: creds.remote.pwd,
    priority,
    controlling: d.controlling,
    tieBreaker: d.tieBreaker,
    useCandidate,
    ...(nomination !== undefined ? { nomination } : {}),
  });
  const to: TransportAddress = { address: cands.remote.c.address, port: cands.remote.c.port };
  // ICE-TCP: the pair's connection (opened now if it has none, RFC 6544 §7.1).
  const via = checkTransport(ctx, pair, cands.local, cands.remote);
  if (via === undefined) {
    if (kind === 'check') pairFailed(ctx, s, c, pair, 'no TCP connection (a passive candidate does not connect, RFC 6544 §6.2)');
    return false;
  }
  const reliable = via !== cands.local.transportId;
  if (kind === 'check') {
    if (pair.txKey !== undefined) cancelTx(ctx, pair.txKey);
    pair.txKey = key;
    if (pair.state !== 'succeeded') pair.state = 'in-progress';
    s.remoteUsed = true;
    s.lastCheckAt = ctx.now;
  }
  const tx: CheckTx = {
    key, kind, streamId: s.id, componentId: c.id, pairId: pair.id, transportId: via, to, bytes,
    password: creds.remote.pwd, controlling: d.controlling, useCandidate, nomination, priority, attempt: 0, lastSentAt: ctx.now,
    // A consent request is sent once; its answer counts until the next one is due (RFC 7675 judges silence over many).
    // Over TCP a check is sent once too, and waits what its retransmissions would have taken (RFC 6544 §7.1).
    nextAt: ctx.now + (kind !== 'check' ? ctx.o.consentInterval : reliable ? reliableTimeout(ctx) : ctx.waits[0]!),
    cancelled: false,
    reliable,
  };
  d.checks.set(key, tx);
  if (kind === 'consent') {
    d.stats.consentChecksSent++;
    pair.counters.consentRequestsSent++;
  } else d.stats.checksSent++;
  pair.counters.requestsSent++;
  log(ctx, 'check', 'trace', () => `stream ${s.id} component ${c.id}: ${kind === 'consent' ? 'consent request' : 'check'} ` +
    `${describePair(pair, cands.local, cands.remote)} tx ${key} ${d.controlling ? 'ICE-CONTROLLING' : 'ICE-CONTROLLED'}` +
    `${useCandidate ? ' USE-CANDIDATE' : ''} priority ${priority}`);
  transmitVia(ctx, tx.transportId, to, bytes);
  return true;
}

/**
 * §7.3.1.4 cancellation: no more retransmissions and no failure on timeout,
 * but a response is still taken for what is left of the transaction's time.
 */
export function cancelTx(ctx: Ctx, key: string): void {
  const tx = ctx.d.checks.get(key);
  if (!tx || tx.cancelled) return;
  tx.cancelled = true;
  let left = tx.nextAt - ctx.now;
  if (!tx.reliable) for (let i = tx.attempt + 1; i < ctx.waits.length; i++) left += ctx.waits[i]!;
  tx.nextAt = ctx.now + Math.max(0, left);
}

/** A transaction's deadline passed: retransmit (§7.2.4, RFC 8489 §6.2.1) or give up. */
export function checkTimeout(ctx: Ctx, tx: CheckTx): void {
  const d = ctx.d;
  if (tx.kind === 'check' && !tx.cancelled && !tx.reliable && tx.attempt + 1 < ctx.waits.length) {
    tx.attempt++;
    tx.lastSentAt = ctx.now;
    tx.nextAt = ctx.now + ctx.waits[tx.attempt]!;
    countRare(d.stats, 'checkRetransmissions');
    log(ctx, 'check', 'trace', () => `stream ${tx.streamId} component ${tx.componentId}: retransmission ${tx.attempt} of tx ${tx.key}`);
    const p = pairById(d.streams.get(tx.streamId)!, tx.pairId);
    if (p) p.counters.requestsSent++;
    transmitVia(ctx, tx.transportId, tx.to, tx.bytes);
    return;
  }
  d.checks.delete(tx.key);
  if (tx.kind !== 'check' || tx.cancelled) return;
  countRare(d.stats, 'checksTimedOut');
  const s = d.streams.get(tx.streamId);
  const c = s?.components.get(tx.componentId);
  const pair = s && pairById(s, tx.pairId);
  if (!s || !c || !pair || pair.txKey !== tx.key) return;
  pair.txKey = undefined;
  // A check that lost every transmission on a path known to work gets one more transaction before its
  // pair fails, once, while the component has no selected pair (with 20% loss in each of two NATs a round
  // trip gets through 41% of the time: 7 transmissions all fail about once in 40):
  // - a nomination check (§8.1.1) on a pair that was valid: failed, the controlled agent may already
  //   have selected the pair on its USE-CANDIDATE while we would move to another;
  // - a direct pair the peer's checks came in on (it works one way at least), so that the relay does not
  //   win by bad luck (nomination waits for it, lib/core/nomination.ts).
  // A path that stays dead fails as before.
  const proven = pair.nominating ? pair.state === 'succeeded' : pair.counters.requestsReceived > 0 && !relayed(pair);
  if (!tx.reliable && !pair.retried && proven && c.selectedPairId === undefined && !c.consentLost) {
    pair.retried = true;
    log(ctx, 'check', 'debug', () => `stream ${s.id} component ${c.id}: ${describePair(pair, pairCandidates(c, pair)?.local, pairCandidates(c, pair)?.remote)}: no response after ${ctx.waits.length} transmissions on a path known to work: one more transaction`);
    sendCheck(ctx, s, c, pair, 'check');
    return;
  }
  pairFailed(ctx, s, c, pair, tx.reliable
    ? `no response within ${reliableTimeout(ctx)} ms on the TCP connection (sent once, RFC 6544 §7.1)`
    : `no response after ${ctx.waits.length} transmissions`);
}

function respondError(ctx: Ctx, t: TransportRecord, from: TransportAddress, m: DecodedStun, code: number, reason: string, password?: string): void {
  countRare(ctx.d.stats, 'errorResponsesSent');
  transmitVia(ctx, t.id, from, encodeBindingError(m.transactionId, code, reason, password));
}

/** An incoming check, RFC 8445 §7.3. */
export function onRequest(ctx: Ctx, t: TransportRecord, from: TransportAddress, m: DecodedStun): void {
  const d = ctx.d;
  d.stats.stunRequestsReceived++;
  const s = d.streams.get(t.streamId);
  const c = s?.components.get(t.componentId);
  if (!s || !c) return;
  // Guarded here: the line's closure would be an allocation per request even with tracing off.
  if (ctx.env.log.enabled('check', 'trace')) log(ctx, 'check', 'trace', () => {
    const role = getTieBreaker(m, ATTR.ICE_CONTROLLING) !== undefined ? ' ICE-CONTROLLING' : getTieBreaker(m, ATTR.ICE_CONTROLLED) !== undefined ? ' ICE-CONTROLLED' : '';
    return `stream ${s.id} component ${c.id}: request from ${formatAddress(from.address, from.port)} tx ${m.transactionId.toString('hex')} ` +
      `user ${getUsername(m) ?? '-'}${role}${hasAttribute(m, ATTR.USE_CANDIDATE) ? ' USE-CANDIDATE' : ''}`;
  });
  // RFC 8489 §9.1.3: authenticate before anything else; nothing about the sender is learned from a request that fails.
  const userAt = findAttribute(m.raw, ATTR.USERNAME);
  if (userAt < 0 || findAttribute(m.raw, ATTR.MESSAGE_INTEGRITY) < 0) {
    countDrop(d.stats, 'badRequest');
    respondError(ctx, t, from, m, 400, 'Bad Request');
    return;
  }
  // During an ICE restart (§9) the previous credentials stay valid until the new generation has its pairs.
  const current = usernameNamesUfrag(m.raw, userAt, s.local.ufrag);
  const creds = current ? s.local : s.previousLocal !== undefined && usernameNamesUfrag(m.raw, userAt, s.previousLocal.ufrag) ? s.previousLocal : undefined;
  if (!creds) {
    countDrop(d.stats, 'unknownUsername');
    respondError(ctx, t, from, m, 401, 'Unauthenticated');
    return;
  }
  if (verifyIntegrity(m.raw, creds.pwd) !== 'ok') {
    countDrop(d.stats, 'badIntegrity');
    respondError(ctx, t, from, m, 401, 'Unauthenticated');
    return;
  }
  // An accepted ICE-TCP connection that carries a check signed with our password may stay (lib/core/tcp.ts).
  tcpAuthenticated(t);
  // RFC 8489 §6.3: comprehension-required attributes we do not know get a 420.
  const unknown = unknownComprehensionRequired(m, ICE_KNOWN_ATTRIBUTES);
  if (unknown.length > 0) {
    countDrop(d.stats, 'badRequest');
    countRare(d.stats, 'errorResponsesSent');
    transmitVia(ctx, t.id, from, encodeUnknownAttributes(m.transactionId, unknown, creds.pwd));
    return;
  }
  const priority = getPriority(m);
  // Where the role attributes are; their 64-bit values are read only for a role conflict.
  const theirControlling = tieBreakerAt(m, ATTR.ICE_CONTROLLING);
  const theirControlled = tieBreakerAt(m, ATTR.ICE_CONTROLLED);
  if (priority === undefined || priority === 0 || (theirControlling < 0 && theirControlled < 0)) {
    countDrop(d.stats, 'badRequest');
    respondError(ctx, t, from, m, 400, 'Bad Request');
    return;
  }
  // §7.3.1.1 role conflict: the larger tie-breaker keeps (or takes) controlling.
  if (d.controlling && theirControlling >= 0) {
    countRare(d.stats, 'roleConflicts');
    if (d.tieBreaker >= m.raw.readBigUInt64BE(theirControlling + 4)) {
      log(ctx, 'check', 'debug', `stream ${s.id}: role conflict, we keep controlling (487)`);
      respondError(ctx, t, from, m, 487, 'Role Conflict', creds.pwd);
      return;
    }
    switchRole(ctx, false);
  } else if (!d.controlling && theirControlled >= 0) {
    countRare(d.stats, 'roleConflicts');
    // A lite agent never takes control (RFC 8445 §6.1.1): the full peer must.
    if (ctx.role.sendsChecks && d.tieBreaker >= m.raw.readBigUInt64BE(theirControlled + 4)) switchRole(ctx, true);
    else {
      respondError(ctx, t, from, m, 487, 'Role Conflict', creds.pwd);
      return;
    }
  }
  // §7.3.1.2: the response carries the source as XOR-MAPPED-ADDRESS.
  d.stats.responsesSent++;
  transmitVia(ctx, t.id, from, encodeBindingSuccess(m.transactionId, from.address, from.port, creds.pwd));
  // The sender proved it knows our password: it may send data.
  authorize(ctx, c, t.id, from.address, from.port);
  const known = pairFrom(s, baseIdOf(t), from.address, from.port);
  if (known) {
    known.counters.requestsReceived++;
    known.counters.responsesSent++;
  }
  // A request of the previous generation keeps the old pair alive (consent) and nothing else:
  // no peer-reflexive learning, pairing or nomination from it.
  if (!current) return;
  s.remoteUsed = true;
  s.lastCheckAt = ctx.now;
  if (!s.initialRequestSeen) {
    s.initialRequestSeen = true;
    emit(ctx, { type: 'initial-binding-request-received', streamId: s.id });
  }
  const pair = known ?? learnPair(ctx, s, c, t, from, priority);
  if (!pair) return;
  // ICE-TCP §7.2: the connection the check came on is the pair's.
  bindConnection(ctx, t, pair);
  if (!known) {
    pair.counters.requestsReceived++;
    pair.counters.responsesSent++;
  }
  let useCandidate = ctx.role.followsUseCandidate && hasAttribute(m, ATTR.USE_CANDIDATE);
  // Renomination: only a nomination newer than the last one followed counts (draft-thatcher-ice-renomination §5).
  const nomination = useCandidate && ctx.o.renomination ? getNomination(m) : undefined;
  if (nomination !== undefined) {
    if (nomination <= c.lastNomination) useCandidate = false;
    else c.lastNomination = nomination;
  }
  if (!ctx.role.sendsChecks) {
    liteRequest(ctx, s, c, pair, useCandidate, nomination);
    return;
  }
  if (pair.state === 'succeeded') {
    // §7.3.1.5: nomination of a pair already validated by our own check.
    if (useCandidate) {
      const valid = pairById(s, pair.validPairId) ?? pair;
      if (!valid.nominated || (nomination !== undefined && valid.nominationValue !== nomination)) {
        valid.nominated = true;
        valid.nominationValue = nomination;
        pairValid(ctx, s, c, valid);
      }
    }
    return;
  }
  // §7.3.1.4 triggered check; §7.3.1.5: a nomination on a pair we have not
  // validated yet takes effect when our triggered check succeeds.
  if (useCandidate) {
    pair.nominateOnSuccess = true;
    pair.nominationValue = nomination;
  }
  triggerNow(ctx, s, c, pair);
}

/**
 * ICE-lite (RFC 8445 §2.5, §7.3.1.5 as a lite agent applies it): with no
 * check of its own to wait for, an authenticated request makes its pair
 * valid, USE-CANDIDATE nominates it, and the requests are the evidence that
 * the peer is still there (the liveness rules of consent.ts, judged on them).
 */
function liteRequest(ctx: Ctx, s: StreamData, c: ComponentData, pair: Pair, useCandidate: boolean, nomination: number | undefined): void {
  if (c.consent?.pairId === pair.id) c.consent.lastResponseAt = ctx.now;
  const fresh = pair.state !== 'succeeded' || !pair.valid;
  if (fresh) {
    markSucceeded(streamSet(ctx), pair);
    pair.valid = true;
    pair.validPairId = pair.id;
  }
  if (useCandidate && (!pair.nominated || (nomination !== undefined && pair.nominationValue !== nomination))) {
    pair.nominated = true;
    pair.nominationValue = nomination;
  } else if (!fresh) {
    if (c.state === 'disconnected') consentResponse(ctx, s, c, pair);
    return;
  }
  pairValid(ctx, s, c, pair);
}

/**
 * §7.3.1.3, §7.3.1.4: the pair an authenticated request arrived on, when it is
 * not in the checklist yet — learning the source as a peer-reflexive remote
 * candidate first if it is new. Bounded by maxRemoteCandidates and maxPairs.
 */
function learnPair(ctx: Ctx, s: StreamData, c: ComponentData, t: TransportRecord, from: TransportAddress, priority: number): Pair | undefined {
  const d = ctx.d;
  let remote = findRemote(c, t.protocol, from.address, from.port);
  if (!remote) {
    if (c.remote.length >= ctx.o.maxRemoteCandidates) {
      countDrop(d.stats, 'tableFull');
      return undefined;
    }
    // ICE-TCP: a connection to our passive candidate comes from one of the peer's active candidates, whose
    // port (9) was a placeholder (RFC 6544 §4.5): it keeps that candidate's priority and foundation, so
    // that both sides rank the pair alike (with aggressive nomination they then select the same one).
    const signalled = t.tcp ? signalledActive(c, from.address) : undefined;
    remote = {
      id: nextId(ctx),
      addedAt: ctx.now,
      c: {
        type: 'prflx',
        transport: t.protocol,
        // A foundation of its own: it must not match any signalled candidate's.
        foundation: signalled?.c.foundation ?? randomIceString(ctx, 8),
        component: c.id,
        priority: signalled?.c.priority ?? priority,
        address: from.address,
        port: from.port,
        // ICE-TCP §7.2: learned on a connection the peer opened to our passive candidate, it is active.
        ...(t.tcp ? { tcpType: peerTcpType(t.tcp.tcpType) } : {}),
      },
    };
    c.remote = append(c.remote, remote);
    log(ctx, 'check', 'trace', () => `stream ${s.id} component ${c.id}: remote peer-reflexive candidate ${formatAddress(from.address, from.port)}`);
    emit(ctx, { type: 'new-remote-candidate', candidate: { ...remote.c, streamId: s.id } });
  }
  // The local candidate whose base is this transport (a connection's: its base): a host or a relayed candidate.
  const base = baseIdOf(t);
  const local = c.local.find((l) => l.transportId === base && (l.c.type === 'host' || l.c.type === 'relay'));
  if (!local) return undefined;
  const pair = newPair(nextId(ctx), s.generation, local, remote, d.controlling);
  const r = addPair(streamSet(ctx), s, pair, remote, local.c.priority, d.controlling, ctx.o.maxPairs);
  if (!r.added) {
    countDrop(d.stats, 'tableFull');
    return undefined;
  }
  pairsAdded(ctx, s, c);
  return pair;
}

/**
 * A triggered check (§7.3.1.4) sent at once rather than at the next Ta tick:
 * the peer is already checking this pair, so the check adds no new load, and
 * answering at once lets the controlling side nominate on the round trip (as
 * pion and Chromium do). Bursts are bounded: beyond 8 in one Ta window the
 * check waits in the triggered queue for the pacer.
 */
export function triggerNow(ctx: Ctx, s: StreamData, c: ComponentData, pair: Pair): void {
  const d = ctx.d;
  if (pair.state !== 'succeeded') pair.state = 'waiting';
  if (s.remote === undefined || s.restartPending) {
    // No credentials to sign with yet: the pacer sends it once they come.
    if (!s.triggered.includes(pair.id)) s.triggered = append(s.triggered, pair.id);
    d.pacerIdle = false;
    return;
  }
  if (ctx.now >= d.burstWindowAt + ctx.o.stunPacingTimer) {
    d.burstWindowAt = ctx.now;
    d.burstCount = 0;
  }
  if (d.burstCount >= 8) {
    if (!s.triggered.includes(pair.id)) s.triggered = append(s.triggered, pair.id);
    d.pacerIdle = false;
    return;
  }
  d.burstCount++;
  s.triggered = s.triggered.filter((id) => id !== pair.id);
  log(ctx, 'check', 'trace', () => `stream ${s.id} component ${c.id}: triggered check (§7.3.1.4)`);
  sendCheck(ctx, s, c, pair, 'check');
}

/** A response to one of our checks or consent requests, RFC 8445 §7.2.5. */
export function onResponse(ctx: Ctx, t: TransportRecord, from: TransportAddress, m: DecodedStun): void {
  const d = ctx.d;
  d.stats.stunResponsesReceived++;
  const tx = d.checks.get(m.transactionId.toString('hex'));
  if (!tx || tx.streamId !== t.streamId || tx.componentId !== t.componentId) {
    countDrop(d.stats, 'unknownTransaction');
    log(ctx, 'check', 'debug', () => `${m.cls} response from ${formatAddress(from.address, from.port)} to no transaction of ours: dropped`);
    return;
  }
  const integrity = verifyIntegrity(m.raw, tx.password);
  if (m.cls === 'success' ? integrity !== 'ok' : integrity === 'bad') {
    countDrop(d.stats, 'badIntegrity');
    return;
  }
  const err = m.cls === 'error' ? getErrorCode(m) : undefined;
  const symmetric = from.address === tx.to.address && from.port === tx.to.port && t.id === tx.transportId;
  // An error without integrity may be forged by anyone who saw the request: over UDP
  // it is discarded and the check keeps retransmitting. 401 is the exception: it
  // cannot carry integrity (the peer did not accept ours, RFC 8489 §9.1.3), so it
  // is believed only from where the request went: from anywhere else it is a
  // third party's forgery meant to fail the pair.
  if (m.cls === 'error' && integrity === 'missing' && (err?.code !== 401 || !symmetric)) {
    countDrop(d.stats, 'badIntegrity');
    return;
  }
  d.checks.delete(tx.key);
  const s = d.streams.get(tx.streamId);
  const c = s?.components.get(tx.componentId);
  const pair = s && pairById(s, tx.pairId);
  if (!s || !c || !pair) return;
  if (pair.txKey === tx.key) pair.txKey = undefined;
  pair.counters.responsesReceived++;
  const rtt = ctx.now - tx.lastSentAt;
  log(ctx, 'check', 'trace', () => `stream ${s.id} component ${c.id}: ${m.cls} response${tx.kind === 'consent' ? ' to consent request' : ''} ` +
    `from ${formatAddress(from.address, from.port)} tx ${tx.key} rtt ${rtt.toFixed(1)} ms`);
  pair.counters.currentRtt = rtt;
  pair.counters.totalRtt += rtt;
  pair.counters.rttSamples++;
  if (tx.kind === 'consent') {
    // RFC 7675 §5.1: only a symmetric success response refreshes consent.
    if (m.cls === 'success' && symmetric) consentResponse(ctx, s, c, pair);
    return;
  }
  if (m.cls === 'error') {
    if (err?.code === 487 && integrity === 'ok') {
      // §7.2.5.1: take the role opposite to the one the request claimed, and check again.
      countRare(d.stats, 'roleConflicts');
      if (d.controlling === tx.controlling) switchRole(ctx, !tx.controlling);
      if (pair.state === 'in-progress') pair.state = 'waiting';
      triggerNow(ctx, s, c, pair);
      return;
    }
    pairFailed(ctx, s, c, pair, `error response ${err ? `${err.code} ${err.reason}` : 'without ERROR-CODE'}`);
    return;
  }
  // §7.2.5.2.1: the response must come from where the request went, to where it left from.
  if (!symmetric) {
    pairFailed(ctx, s, c, pair, `non-symmetric response from ${formatAddress(from.address, from.port)} (§7.2.5.2.1)`);
    return;
  }
  const mapped = getXorMappedAddress(m);
  if (!mapped) {
    pairFailed(ctx, s, c, pair, 'success response without XOR-MAPPED-ADDRESS');
    return;
  }
  succeeded(ctx, s, c, t, pair, tx, mapped);
}

/** §7.2.5.3: the check succeeded; the valid pair, the local peer-reflexive candidate if new, nomination. */
function succeeded(ctx: Ctx, s: StreamData, c: ComponentData, t: TransportRecord, pair: Pair, tx: CheckTx, mapped: TransportAddress): void {
  const d = ctx.d;
  const cands = pairCandidates(c, pair);
  if (!cands) return;
  // §7.2.5.3.1: a mapped address we do not know is a local peer-reflexive candidate.
  let local = t.tcp ? tcpMappedLocal(c, cands.local, mapped) : findLocal(c, mapped.address, mapped.port);
  if (!local) {
    const base = d.transports.get(baseIdOf(t)) ?? t;
    local = {
      id: nextId(ctx),
      transportId: base.id,
      c: {
        type: 'prflx',
        transport: t.protocol,
        foundation: foundationOf(d.foundations, foundationKey('prflx', base.local.address, t.protocol)),
        component: c.id,
        priority: tx.priority,
        address: mapped.address,
        port: mapped.port,
        base: { ...base.local },
        ...(cands.local.c.tcpType ? { tcpType: cands.local.c.tcpType } : {}),
        streamId: s.id,
      },
    };
    c.local = append(c.local, local);
    log(ctx, 'check', 'trace', () => `stream ${s.id} component ${c.id}: local peer-reflexive candidate ${formatAddress(mapped.address, mapped.port)}`);
  }
  // §7.2.5.3.2: the valid pair is (the local candidate of the mapped address, the remote the check went to).
  let valid: Pair;
  if (local.id === pair.localId) valid = pair;
  else {
    valid = pairById(s, pair.validPairId) ?? newPair(nextId(ctx), pair.generation, local, cands.remote, d.controlling);
    if (!s.pairs.includes(valid)) {
      valid.inChecklist = false;
      valid.key = `${valid.key}#prflx`;
      insertPair(s, valid);
    }
    valid.state = 'succeeded';
    // ICE-TCP: the valid pair's data goes on the generating pair's connection.
    if (pair.connId !== undefined) valid.connId = pair.connId;
  }
  pair.validPairId = valid.id;
  authorize(ctx, c, t.id, cands.remote.c.address, cands.remote.c.port);
  markSucceeded(streamSet(ctx), pair);
  // Pairs of its foundation were unfrozen: the pacer has work.
  d.pacerIdle = false;
  valid.valid = true;
  // §7.2.5.3.4 (controlling: our USE-CANDIDATE check succeeded) and §7.3.1.5
  // (controlled: the peer nominated this pair before our check succeeded).
  if (tx.controlling && tx.useCandidate) {
    valid.nominated = true;
    valid.nominationValue = tx.nomination;
  } else if (!d.controlling && pair.nominateOnSuccess) {
    valid.nominated = true;
    valid.nominationValue = pair.nominationValue;
  }
  // A late answer to an earlier (cancelled) check does not end a nomination under way.
  if (tx.useCandidate) pair.nominating = false;
  updateStates(streamSet(ctx), isDone);
  log(ctx, 'check', 'trace', () => `stream ${s.id} component ${c.id}: pair ${describePair(pair, cands.local, cands.remote)} valid` +
    `${valid !== pair ? ` (as ${describePair(valid, local, cands.remote)})` : ''}${valid.nominated ? ', nominated' : ''}`);
  pairValid(ctx, s, c, valid);
}
