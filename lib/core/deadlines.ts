/**
 * Time in the core: what is due at a given time and runs then (retransmissions,
 * server transactions, TURN refreshes, nomination, trickle and consent
 * deadlines, freeing unused relayed candidates), the pacer (Ta, RFC 8445
 * §6.1.4.2), and the earliest deadline of the state, which the shell arms its
 * one timer for. Every deadline is a field of the state (lib/core/state.ts);
 * IceCore.handleTimeout and IceCore.nextTimeout are these two functions.
 */
import { canCheck, hasWork, nextPair } from './checklist.js';
import { type Ctx, streamSet } from './context.js';
import { checkTimeout, sendCheck } from './check.js';
import { consentDue, consentTick } from './consent.js';
import { srflxTimeout } from './gathering.js';
import { allocationTimeout, freeUnused } from './relay.js';
import { evaluate, fail, isDone, runNomination } from './selection.js';
import type { ComponentData, StreamData } from './state.js';
import { closeUnusedConnections, tcpNextTimeout, tcpTimeout } from './tcp.js';

/** Runs everything that is due at `now` (ctx.now is `now`). */
export function runDue(ctx: Ctx, now: number): void {
  const d = ctx.d;
  // Copies, as a timeout may add or remove entries; none for the (usual) empty tables.
  if (d.allocations.size > 0) for (const rec of [...d.allocations.values()]) if (rec.machine.nextTimeout() <= now) allocationTimeout(ctx, rec);
  if (d.closing) return;
  if (d.checks.size > 0) for (const tx of [...d.checks.values()]) if (tx.nextAt <= now && d.checks.get(tx.key) === tx) checkTimeout(ctx, tx);
  if (d.srflx.size > 0) for (const tx of [...d.srflx.values()]) if (tx.nextAt <= now && d.srflx.get(tx.key) === tx) srflxTimeout(ctx, tx);
  tcpTimeout(ctx);
  // Live iteration: a Map iterator survives deletions, and no timeout adds a stream.
  for (const s of d.streams.values()) {
    if (s.freeAt !== undefined && s.freeAt <= now) {
      freeUnused(ctx, s);
      closeUnusedConnections(ctx, s);
    }
    for (const c of s.components.values()) {
      if (c.nominationAt !== undefined && c.nominationAt <= now) runNomination(ctx, s, c);
      if (c.trickleAt !== undefined && c.trickleAt <= now) fail(ctx, s, c, `nothing left to check and no new remote candidate for ${ctx.o.trickleTimeout} ms (trickle)`);
      if (c.consent && consentDue(ctx, c) <= now) consentTick(ctx, s, c);
    }
  }
  if (!d.pacerIdle && now >= d.nextCheckAt) pace(ctx);
}

/**
 * The earliest deadline of the state; Infinity when nothing is pending.
 * The shell asks after every input: empty tables are not iterated, and a
 * single stream or component is visited without an iterator.
 */
export function nextDeadline(ctx: Ctx): number {
  const d = ctx.d;
  let t = Infinity;
  if (d.allocations.size > 0) for (const rec of d.allocations.values()) t = Math.min(t, rec.machine.nextTimeout());
  if (d.closing) return t;
  if (d.checks.size > 0) for (const tx of d.checks.values()) if (tx.nextAt < t) t = tx.nextAt;
  if (d.srflx.size > 0) for (const tx of d.srflx.values()) if (tx.nextAt < t) t = tx.nextAt;
  const one = d.streams.single;
  if (one !== undefined) t = streamDeadline(ctx, one, t);
  else for (const s of d.streams.values()) t = streamDeadline(ctx, s, t);
  if (!d.pacerIdle) t = Math.min(t, d.nextCheckAt);
  return Math.min(t, tcpNextTimeout(ctx));
}

function streamDeadline(ctx: Ctx, s: StreamData, t: number): number {
  if (s.freeAt !== undefined) t = Math.min(t, s.freeAt);
  const one = s.components.single;
  if (one !== undefined) return componentDeadline(ctx, one, t);
  for (const c of s.components.values()) t = componentDeadline(ctx, c, t);
  return t;
}

function componentDeadline(ctx: Ctx, c: ComponentData, t: number): number {
  if (c.nominationAt !== undefined) t = Math.min(t, c.nominationAt);
  if (c.trickleAt !== undefined) t = Math.min(t, c.trickleAt);
  if (c.consent) t = Math.min(t, consentDue(ctx, c));
  return t;
}

/**
 * One tick of Ta (§6.1.4.2): the checklists take turns; each gives its
 * triggered check first, else its best Waiting pair. When no checklist has
 * anything to send, the pacer sleeps until new work wakes it, and components
 * with nothing left to try are judged.
 */
function pace(ctx: Ctx): void {
  const d = ctx.d;
  if (!ctx.role.sendsChecks) {
    d.pacerIdle = true;
    return;
  }
  const streams = streamSet(ctx).filter((s) => canCheck(s));
  for (let i = 0; i < streams.length; i++) {
    const s = streams[(d.rr + i) % streams.length]!;
    const pair = nextPair(s, (c) => isDone(s, c));
    if (!pair) continue;
    d.rr = (d.rr + i + 1) % streams.length;
    d.nextCheckAt = ctx.now + ctx.o.stunPacingTimer;
    sendCheck(ctx, s, s.components.get(pair.component)!, pair, 'check');
    return;
  }
  if (streams.every((s) => !hasWork(s, (c) => isDone(s, c)))) d.pacerIdle = true;
  for (const s of streamSet(ctx)) evaluate(ctx, s);
}
