/**
 * What pair outcomes mean for a component (RFC 8445 §7.2.5.3, §8): the pair
 * data goes on before nomination, regular nomination by the controlling
 * agent (§8.1.1), selection of the nominated pair and what it ends (§8.1.2),
 * failing components with nothing left to try, and role changes (§7.3.1.1).
 */
import { createRole } from './nomination.js';
import {
  canCheck, exhausted, markFailed, nominatedPair, pairById, pruneComponent, reprioritise, updateStates, validPairs,
} from './checklist.js';
import { type Ctx, emit, log, pairCandidates, publicCandidate, setState, streamSet } from './context.js';
import { describePair } from './pair.js';
import { cancelTx, sendCheck } from './check.js';
import { startConsent } from './consent.js';
import { bindChannelFor } from './relay.js';
import { releaseConnection, tcpAwaiting } from './tcp.js';
import { none, retain, type ComponentData, type Pair, type StreamData, type TrafficCounter } from './state.js';
import type { TransportAddress } from '../transport/address.js';

/** §8.1.2: a component of the current generation has its selected pair; its other checks stop. */
export function isDone(s: StreamData, componentId: number): boolean {
  const c = s.components.get(componentId);
  const sel = c && pairById(s, c.selectedPairId);
  return sel !== undefined && sel.generation === s.generation;
}

/** New pairs for a component: checks run (again) and the pacer has work. */
export function pairsAdded(ctx: Ctx, s: StreamData, c: ComponentData): void {
  updateStates(streamSet(ctx), isDone);
  ctx.d.pacerIdle = false;
  if (c.consentLost || !canCheck(s)) return;
  if (c.state === 'disconnected' || c.state === 'gathering' || c.state === 'failed') setState(ctx, s, c, 'connecting');
}

/** `valid` entered the valid list or was nominated (§7.2.5.3.2, §8.1). */
export function pairValid(ctx: Ctx, s: StreamData, c: ComponentData, valid: Pair): void {
  c.firstValidAt ??= ctx.now;
  // A check that succeeded on the pair carrying data is consent too (RFC 7675 §5.1).
  if (c.consent?.pairId === valid.id) c.consent.lastResponseAt = ctx.now;
  updateSelection(ctx, s, c);
  runNomination(ctx, s, c);
  evaluate(ctx, s);
}

/** A check failed for good (timeout, error response, non-symmetric response). */
export function pairFailed(ctx: Ctx, s: StreamData, c: ComponentData, pair: Pair, reason: string): void {
  log(ctx, 'check', 'trace', () => {
    const cands = pairCandidates(c, pair);
    return `stream ${s.id} component ${c.id}: pair ${describePair(pair, cands?.local, cands?.remote)} failed: ${reason}`;
  });
  markFailed(s, pair);
  if (pair.txKey !== undefined) {
    ctx.d.checks.delete(pair.txKey);
    pair.txKey = undefined;
  }
  // ICE-TCP: a failed pair's connection is not needed any more.
  releaseConnection(ctx, s, pair);
  // A nomination check on a valid pair that went unanswered: the valid pair it produced is not usable any more.
  const valid = pairById(s, pair.validPairId);
  for (const p of valid && valid !== pair ? [pair, valid] : [pair]) {
    if (!p.valid) continue;
    p.valid = false;
    p.nominated = false;
    if (p !== pair) p.state = 'failed';
  }
  if (c.selectedPairId === undefined && (c.sendPairId === pair.id || c.sendPairId === valid?.id)) {
    setSendPair(ctx, s, c, validPairs(s, c.id)[0]?.id);
  }
  updateStates(streamSet(ctx), isDone);
  ctx.d.pacerIdle = false;
  runNomination(ctx, s, c);
  evaluate(ctx, s);
}

/** Adds what the data path counted to the pair it belongs to. */
export function flushTraffic(s: StreamData, t: TrafficCounter, dir: 'sent' | 'received'): void {
  const p = pairById(s, t.pairId);
  if (p && t.packets > 0) {
    const k = p.counters;
    if (dir === 'sent') {
      k.packetsSent += t.packets;
      k.bytesSent += t.bytes;
      k.lastPacketSentAt = t.lastAt;
    } else {
      k.packetsReceived += t.packets;
      k.bytesReceived += t.bytes;
      k.lastPacketReceivedAt = t.lastAt;
    }
  }
  t.packets = 0;
  t.bytes = 0;
}

/** Moves the data path (and the consent that covers it, RFC 7675) to another pair. */
export function setSendPair(ctx: Ctx, s: StreamData, c: ComponentData, pairId: number | undefined): void {
  if (c.sendPairId === pairId) return;
  flushTraffic(s, c.tx, 'sent');
  c.tx.pairId = pairId;
  c.sendPairId = pairId;
  ctx.d.revision++;
  if (pairId === undefined) c.consent = undefined;
  else startConsent(ctx, c, pairId);
}

export function updateSelection(ctx: Ctx, s: StreamData, c: ComponentData): void {
  if (c.consentLost) return;
  const selected = pairById(s, c.selectedPairId);
  // During a restart the old selected pair keeps carrying data until the new generation nominates its own.
  const restarting = selected !== undefined && selected.generation !== s.generation;
  if (!selected) {
    // Before the first nomination data goes on the best valid pair (as libnice).
    const best = validPairs(s, c.id)[0];
    setSendPair(ctx, s, c, best?.id);
    if (best && (c.state === 'connecting' || c.state === 'gathering' || c.state === 'disconnected' || c.state === 'failed')) {
      setState(ctx, s, c, 'connected');
    }
  }
  const nominated = nominatedPair(s, c.id);
  if (nominated && (nominated.id !== c.selectedPairId || restarting)) select(ctx, s, c, nominated);
}

/** The nominated pair becomes the selected pair (§8.1.1; aggressive nomination may replace it by a better one). */
function select(ctx: Ctx, s: StreamData, c: ComponentData, pair: Pair): void {
  const cands = pairCandidates(c, pair);
  if (!cands) return;
  c.selectedPairId = pair.id;
  c.nominationAt = undefined;
  setSendPair(ctx, s, c, pair.id);
  // The earlier generation's pairs of this component are done with (§9).
  s.pairs = retain(s.pairs, (p) => p.component !== c.id || p.generation === s.generation);
  c.retired = none();
  if ([...s.components.keys()].every((id) => isDone(s, id))) {
    s.previousLocal = undefined;
    s.previousRemote = undefined;
    // §8.3: unused relayed candidates are freed a little after the checklist completes.
    s.freeAt = ctx.now + 3000;
  }
  // §8.1.2: the component's other checks stop; those in flight are cancelled. Not under aggressive
  // nomination: a check in flight carries USE-CANDIDATE, and the controlled agent may already have
  // nominated its pair on receipt (RFC 5245 §8.1.1.2); cancelled, the two agents would stay on
  // different pairs. Its answer may make a higher-priority pair nominated, which then replaces this one.
  const keepInFlight = ctx.role.controlling && ctx.role.mode === 'aggressive';
  for (const p of pruneComponent(s, c.id)) if (p.txKey !== undefined && !keepInFlight) cancelTx(ctx, p.txKey);
  log(ctx, 'agent', 'info', () => `stream ${s.id} component ${c.id}: selected pair ${describePair(pair, cands.local, cands.remote)}`);
  emit(ctx, {
    type: 'new-selected-pair', streamId: s.id, componentId: c.id,
    local: publicCandidate(s, cands.local), remote: { ...cands.remote.c, streamId: s.id },
  });
  if (c.state !== 'connected' && c.state !== 'ready') setState(ctx, s, c, 'connected');
  setState(ctx, s, c, 'ready');
  // Data through a relay goes in ChannelData (RFC 8656 §12): 4 bytes of overhead instead of 36.
  bindChannelFor(ctx, cands.local, cands.remote);
}

/**
 * Regular nomination by the controlling agent (§8.1.1): when the role's
 * strategy picks a valid pair, the check that produced it is repeated with
 * USE-CANDIDATE, at once (not paced: it is one check on a path that works).
 */
export function runNomination(ctx: Ctx, s: StreamData, c: ComponentData): void {
  const role = ctx.role;
  if (!role.controlling || role.mode !== 'regular' || c.firstValidAt === undefined || isDone(s, c.id) || c.consentLost) return;
  c.nominationAt = undefined;
  const checklist = s.pairs.filter((p) => p.component === c.id && p.inChecklist && p.generation === s.generation);
  const d = role.decide(checklist, validPairs(s, c.id), ctx.now - c.firstValidAt);
  if (d.nominate) {
    const target = d.nominate;
    // §8.1.1: the generating pair is checked again (the valid pair may have a peer-reflexive local candidate).
    const generating = checklist.find((p) => p.validPairId === target.id) ?? target;
    log(ctx, 'agent', 'debug', () => `stream ${s.id} component ${c.id}: nominating ${describePair(generating, pairCandidates(c, generating)?.local, pairCandidates(c, generating)?.remote)}`);
    generating.nominating = true;
    if (ctx.o.renomination) generating.nominationValue = ++c.lastNomination;
    sendCheck(ctx, s, c, generating, 'check');
  } else if (d.recheckInMs !== undefined) {
    c.nominationAt = ctx.now + d.recheckInMs;
  }
}

/**
 * Renomination by the controlling agent (draft-thatcher-ice-renomination):
 * `target`, a valid pair, is nominated again with a new NOMINATION count,
 * through the check that produced it; when it succeeds the controlled side
 * follows (the latest count wins) and data moves to it. False when
 * renomination is off, we are not the controlling agent with regular
 * nomination, or the pair is not valid.
 */
export function renominate(ctx: Ctx, s: StreamData, c: ComponentData, between?: { local: TransportAddress; remote: TransportAddress }): boolean {
  const valid = validPairs(s, c.id);
  const target = between === undefined ? valid[0] : valid.find((p) => {
    const ends = pairCandidates(c, p);
    return ends !== undefined && ends.local.c.address === between.local.address && ends.local.c.port === between.local.port &&
      ends.remote.c.address === between.remote.address && ends.remote.c.port === between.remote.port;
  });
  if (!target) return false;
  if (!ctx.o.renomination || !ctx.role.controlling || ctx.role.mode !== 'regular' || !target.valid || c.consentLost) return false;
  const generating = s.pairs.find((p) => p.validPairId === target.id && p.inChecklist && p.generation === s.generation) ?? target;
  log(ctx, 'agent', 'info', () => `stream ${s.id} component ${c.id}: renominating ${describePair(generating, pairCandidates(c, generating)?.local, pairCandidates(c, generating)?.remote)}`);
  generating.nominating = true;
  generating.nominationValue = ++c.lastNomination;
  sendCheck(ctx, s, c, generating, 'check');
  return true;
}

/**
 * Fails components with nothing left to try once local gathering is complete
 * and the peer has no more candidates (§8.1.2, RFC 8838 §8). With trickle and
 * no end-of-candidates yet, a component with nothing left to try fails only
 * when no remote candidate arrived for `trickleTimeout` (re-armed by every one).
 */
export function evaluate(ctx: Ctx, s: StreamData): void {
  if (s.gathering !== 'complete') return;
  const remoteDone = !ctx.o.iceTrickle || s.remoteEndOfCandidates;
  for (const c of s.components.values()) {
    c.trickleAt = undefined;
    if (c.state === 'failed') continue;
    const anything = c.remote.length > 0 || s.pairs.some((p) => p.component === c.id);
    // Nothing to judge before the peer gave candidates or said it has none (with trickle, the timeout runs from its credentials).
    if (!anything && !s.remoteEndOfCandidates && !(ctx.o.iceTrickle && canCheck(s))) continue;
    if (!exhausted(s, c.id)) continue;
    // ICE-TCP: the peer may still connect to our passive candidate (RFC 6544 §6.2).
    if (tcpAwaiting(ctx, s, c)) continue;
    if (remoteDone) fail(ctx, s, c, s.pairs.some((p) => p.component === c.id) ? 'every candidate pair failed' : 'no candidate pair to check');
    else c.trickleAt = s.lastRemoteCandidateAt + ctx.o.trickleTimeout;
  }
}

export function fail(ctx: Ctx, s: StreamData, c: ComponentData, reason: string): void {
  c.nominationAt = undefined;
  c.trickleAt = undefined;
  const selected = pairById(s, c.selectedPairId);
  // A restart that found nothing: the old pair still carries data.
  if (selected && selected.generation !== s.generation) return;
  setState(ctx, s, c, 'failed', reason);
}

/** §7.3.1.1, §7.2.5.1: a role conflict flipped our role; priorities are recomputed and the strategy swapped. */
export function switchRole(ctx: Ctx, controlling: boolean): void {
  if (ctx.d.controlling === controlling || !ctx.role.sendsChecks) return;
  log(ctx, 'agent', 'info', `role conflict (§7.3.1.1): now ${controlling ? 'controlling' : 'controlled'}`);
  ctx.d.controlling = controlling;
  ctx.role = createRole(controlling, ctx.o.nominationMode, ctx.o.nominationTimeout);
  for (const s of ctx.d.streams.values()) reprioritise(s, controlling);
}
