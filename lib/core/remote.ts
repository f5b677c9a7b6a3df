/**
 * What the peer tells us through signalling: its credentials and candidates
 * (RFC 8445 §5.3, RFC 8838 trickle), and ICE restarts (§9) — ours, and the
 * peer's, recognised by new remote credentials on a stream whose current ones
 * were already in use.
 */
import type { Candidate } from './candidate.js';
import { resort } from './checklist.js';
import { append, type Ctx, findRemote, localById, log, randomIceString, resetAuthorization } from './context.js';
import { cancelTx } from './check.js';
import { formPair } from './gathering.js';
import { priorityFor } from './pair.js';
import { evaluate, pairsAdded } from './selection.js';
import { sweepConnections } from './tcp.js';
import { none, retain, type ComponentData, type Credentials, type RemoteCand, type StreamData } from './state.js';
import { countDrop } from '../stats.js';

/** RFC 8445 §5.3: 8 and 24 ice-chars give 48 and 144 bits of randomness (at least 24 and 128 are required). */
export function newCredentials(ctx: Ctx): Credentials {
  return { ufrag: randomIceString(ctx, 8), pwd: randomIceString(ctx, 24) };
}

/**
 * Adds one validated remote candidate; true when it was added. A signalled
 * candidate for an address first learned as peer-reflexive replaces it with
 * its real type, priority and foundation (§7.3.1.3, RFC 8838 §11.3).
 */
export function addRemote(ctx: Ctx, s: StreamData, c: ComponentData, cand: Candidate): boolean {
  const existing = findRemote(c, cand.transport, cand.address, cand.port);
  if (existing) {
    // Signalled again (a restarting peer repeats its candidates): it belongs to the newest generation.
    existing.addedAt = ctx.now;
    if (existing.c.type !== 'prflx' || cand.type === 'prflx') return false;
    existing.c = cand;
    for (const p of s.pairs) {
      if (p.remoteId !== existing.id) continue;
      const l = localById(c, p.localId);
      if (!l) continue;
      p.foundation = [l.c.foundation, ':', cand.foundation].join('');
      p.remoteType = cand.type;
      p.priority = priorityFor(l.c.priority, cand.priority, ctx.d.controlling);
    }
    resort(s);
    return true;
  }
  if (c.remote.length >= ctx.o.maxRemoteCandidates) {
    countDrop(ctx.d.stats, 'tableFull');
    return false;
  }
  const r: RemoteCand = { id: ctx.d.nextId++, c: cand, addedAt: ctx.now };
  c.remote = append(c.remote, r);
  ctx.d.revision++;
  s.lastRemoteCandidateAt = ctx.now;
  for (const l of c.local) formPair(ctx, s, c, l, r);
  return true;
}

/**
 * Sets the remote credentials. New values on a stream whose current ones were
 * already used (a check sent, or an authenticated request received) are an
 * ICE restart by the peer (§9): unless we restarted first, we restart too,
 * keeping the remote candidates that came after the old generation's last
 * check — they are the new generation's, signalled before its credentials.
 * Values replaced before any use are just a correction.
 */
export function setRemoteCredentials(ctx: Ctx, s: StreamData, creds: Credentials): boolean {
  const old = s.remote;
  let restarted = false;
  if (old && (old.ufrag !== creds.ufrag || old.pwd !== creds.pwd) && !s.restartPending && s.remoteUsed) {
    log(ctx, 'agent', 'info', `stream ${s.id}: the peer restarted (new remote credentials), restarting too (§9)`);
    const since = s.lastCheckAt;
    restartGeneration(ctx, s, (r) => {
      const ufrag = r.c.extensions?.find(([k]) => k === 'ufrag')?.[1];
      return ufrag !== undefined ? ufrag === creds.ufrag : r.addedAt > since;
    });
    restarted = true;
  }
  if (!old || s.restartPending) s.lastRemoteCandidateAt = Math.max(s.lastRemoteCandidateAt, ctx.now);
  s.remote = { ...creds };
  s.restartPending = false;
  ctx.d.revision++;
  for (const c of s.components.values()) {
    for (const r of c.remote) for (const l of c.local) formPair(ctx, s, c, l, r);
    if (s.pairs.some((p) => p.component === c.id && p.generation === s.generation)) pairsAdded(ctx, s, c);
  }
  ctx.d.pacerIdle = false;
  evaluate(ctx, s);
  return restarted;
}

/**
 * A new ICE generation (§9): new local credentials, a fresh checklist. The
 * selected pair (or before nomination the send pair) of each component stays,
 * with the previous credentials, so that data and consent go on until the new
 * generation selects its own. `keep` says which remote candidates carry over.
 */
export function restartGeneration(ctx: Ctx, s: StreamData, keep: (r: RemoteCand) => boolean): void {
  ctx.d.revision++;
  s.previousLocal = s.local;
  s.previousRemote = s.remote;
  s.local = newCredentials(ctx);
  s.generation++;
  s.triggered = none();
  s.remoteEndOfCandidates = false;
  s.remoteUsed = false;
  s.freeAt = undefined;
  const inUse = new Set<number>();
  for (const c of s.components.values()) {
    if (c.selectedPairId !== undefined) inUse.add(c.selectedPairId);
    else if (c.sendPairId !== undefined) inUse.add(c.sendPairId);
  }
  for (const p of s.pairs) if (p.txKey !== undefined && !inUse.has(p.id)) cancelTx(ctx, p.txKey);
  s.pairs = retain(s.pairs, (p) => inUse.has(p.id));
  for (const p of s.pairs) {
    p.inChecklist = false;
    p.txKey = undefined;
  }
  for (const c of s.components.values()) {
    const named = new Set(s.pairs.filter((p) => p.component === c.id).map((p) => p.remoteId));
    c.retired = retain(c.remote, (r) => named.has(r.id));
    c.remote = retain(c.remote, (r) => keep(r));
    // A kept candidate that an old pair names is both current and retired: one record, found either way.
    c.retired = retain(c.retired, (r) => !c.remote.includes(r));
    c.firstValidAt = undefined;
    c.nominationAt = undefined;
    c.trickleAt = undefined;
    c.tcpWaitAt = undefined;
    c.tcpWaitDone = false;
    if (c.consentLost) {
      // A restart is how consent is obtained again (RFC 7675 §5.1).
      c.consentLost = false;
      resetAuthorization(c);
    }
  }
  // ICE-TCP: the connections of the pairs dropped close (the one in use stays).
  sweepConnections(ctx, s);
}
