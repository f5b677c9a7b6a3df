/**
 * Liveness of the pair that carries data (the selected pair, or before
 * nomination the best valid pair): RFC 7675 consent freshness, and the
 * RFC 8445 §11 keepalives used when consent freshness is off. The rules are
 * pure functions of the times passed in; the tick below applies them.
 *
 * The rules (also in the README):
 * - With consent freshness on, a Binding request goes out on that pair
 *   every `consentInterval` × a random factor in [0.8, 1.2] (RFC 7675 §5.1).
 *   With it off, a Binding indication goes out every `keepaliveInterval`
 *   (RFC 8445 §11), or a Binding request when `keepaliveConncheck` is set (as
 *   libnice's `keepalive-conncheck`), so that silence can be noticed.
 * - A component that sent requests and got no response for
 *   `disconnectedTimeout` goes `disconnected`; the first response after that
 *   brings it back to `ready`. Data is still sent while disconnected.
 * - With consent freshness on, no response for `consentTimeout` (30 s, RFC 7675
 *   §5.1) means consent is lost: `consent-lost` fires, the component goes
 *   `failed`, and `send` stops sending on that pair.
 */
import { encodeBindingIndication } from '../stun/binding.js';
import { pairById } from './checklist.js';
import { type Ctx, emit, log, pairCandidates, random, resetAuthorization, setState } from './context.js';
import { sendCheck } from './check.js';
import { transmitVia } from './relay.js';
import type { ComponentData, Pair, StreamData } from './state.js';
import { countRare } from '../stats.js';

/**
 * RFC 7675 §5.1: the interval is randomised to 0.8-1.2 times the base, against
 * synchronised bursts. `random` in [0, 1) comes from the caller (the core takes
 * no randomness it was not given).
 */
export function consentDelay(interval: number, random: number): number {
  return Math.round(interval * (0.8 + 0.4 * random));
}

export type Liveness = 'alive' | 'disconnected' | 'expired';

export interface LivenessConfig {
  /** Whether responses are expected at all (consent or keepalive conncheck); indications get none. */
  expectResponses: boolean;
  consentFreshness: boolean;
  disconnectedTimeout: number;
  consentTimeout: number;
}

/** What the silence since the last response means. */
export function liveness(now: number, lastResponseAt: number, cfg: LivenessConfig): Liveness {
  if (!cfg.expectResponses) return 'alive';
  const silent = now - lastResponseAt;
  if (cfg.consentFreshness && silent >= cfg.consentTimeout) return 'expired';
  if (silent >= cfg.disconnectedTimeout) return 'disconnected';
  return 'alive';
}

/* ------------------------------------------------------------------------ *
 * The rules applied to a component's send pair.
 * ------------------------------------------------------------------------ */

function nextDelay(ctx: Ctx): number {
  return ctx.o.consentFreshness ? consentDelay(ctx.o.consentInterval, random(ctx)) : ctx.o.keepaliveInterval;
}

/** Consent (or keepalives) now cover `pairId`, the pair that carries the component's data. */
export function startConsent(ctx: Ctx, c: ComponentData, pairId: number): void {
  c.consent = { pairId, nextAt: ctx.now + nextDelay(ctx), lastResponseAt: ctx.now };
}

/** Whether the component's send pair is judged on responses (or, lite, on the peer's requests) at all. */
function judged(ctx: Ctx): { requests: boolean; lite: boolean; expect: boolean } {
  const o = ctx.o;
  // A lite agent sends nothing: the peer's requests are what it judges (lib/core/check.ts liteRequest).
  const lite = !ctx.role.sendsChecks;
  const requests = !lite && (o.consentFreshness || o.keepaliveConncheck);
  return { requests, lite, expect: requests || (lite && o.consentFreshness) };
}

/**
 * When the consent machinery must next run: the next request (or keepalive)
 * or, whichever comes first, the moment the silence reaches
 * `disconnectedTimeout` (if the component is not disconnected yet) or
 * `consentTimeout`. A deadline wake-up judges; it sends nothing of its own, so
 * the requests keep their randomised RFC 7675 rhythm.
 */
export function consentDue(ctx: Ctx, c: ComponentData): number {
  const consent = c.consent;
  if (!consent) return Infinity;
  const { expect, lite } = judged(ctx);
  // A lite agent sends nothing of its own (§2.5): only the silence deadlines wake it.
  let at = lite ? Infinity : consent.nextAt;
  if (expect) {
    if (c.state !== 'disconnected') at = Math.min(at, consent.lastResponseAt + ctx.o.disconnectedTimeout);
    if (ctx.o.consentFreshness) at = Math.min(at, consent.lastResponseAt + ctx.o.consentTimeout);
  }
  return at;
}

/** Consent (or keepalive) work is due: judge the silence, and send the next request when its time has come. */
export function consentTick(ctx: Ctx, s: StreamData, c: ComponentData): void {
  const consent = c.consent!;
  const o = ctx.o;
  const pair = pairById(s, consent.pairId);
  const cands = pair && pairCandidates(c, pair);
  if (!pair || !cands) {
    c.consent = undefined;
    return;
  }
  const { requests, lite, expect } = judged(ctx);
  const verdict = liveness(ctx.now, consent.lastResponseAt, {
    expectResponses: expect,
    consentFreshness: o.consentFreshness,
    disconnectedTimeout: o.disconnectedTimeout,
    consentTimeout: o.consentTimeout,
  });
  if (verdict === 'expired') {
    consentLost(ctx, s, c);
    return;
  }
  if (verdict === 'disconnected' && (c.state === 'ready' || c.state === 'connected')) {
    setState(ctx, s, c, 'disconnected', `no response for ${Math.round(ctx.now - consent.lastResponseAt)} ms`);
  }
  if (lite || ctx.now < consent.nextAt) return;
  consent.nextAt = ctx.now + nextDelay(ctx);
  if (requests) sendCheck(ctx, s, c, pair, 'consent');
  else if (!lite) {
    // On ICE-TCP the pair's connection carries it (RFC 6544 §7.1).
    transmitVia(ctx, pair.connId ?? cands.local.transportId, { address: cands.remote.c.address, port: cands.remote.c.port },
      encodeBindingIndication(ctx.env.randomBytes(12)));
    countRare(ctx.d.stats, 'keepalivesSent');
    log(ctx, 'consent', 'trace', `stream ${s.id} component ${c.id}: keepalive indication (§11)`);
  }
}

export function consentResponse(ctx: Ctx, s: StreamData, c: ComponentData, pair: Pair): void {
  if (c.consent?.pairId !== pair.id) return;
  c.consent.lastResponseAt = ctx.now;
  if (c.state === 'disconnected') setState(ctx, s, c, c.selectedPairId !== undefined ? 'ready' : 'connected');
}

/** RFC 7675 §5.1: consent expired; nothing more is sent on the pair, and only an ICE restart revives the component. */
export function consentLost(ctx: Ctx, s: StreamData, c: ComponentData, why = `no response for ${ctx.o.consentTimeout} ms, RFC 7675`): void {
  log(ctx, 'consent', 'warn', `stream ${s.id} component ${c.id}: consent lost (${why})`);
  countRare(ctx.d.stats, 'consentLost');
  c.consent = undefined;
  c.sendPairId = undefined;
  c.selectedPairId = undefined;
  c.consentLost = true;
  resetAuthorization(c);
  emit(ctx, { type: 'consent-lost', streamId: s.id, componentId: c.id });
  setState(ctx, s, c, 'failed', 'consent lost');
}
