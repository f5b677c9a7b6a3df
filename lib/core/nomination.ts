/**
 * Nomination (RFC 8445 §8.1) and what else the two roles do differently, one
 * strategy object per role (the shape of pion's controlling and controlled
 * selectors), swapped when a role conflict flips the role. Pure: decisions
 * from pair states and elapsed times the caller passes in.
 */
import type { Pair } from './state.js';

export type NominationMode = 'regular' | 'aggressive';

export interface NominationDecision {
  /** The valid pair to nominate now (regular nomination: repeat its check with USE-CANDIDATE). */
  nominate?: Pair;
  /** Decide again after this many ms (a better pair may still succeed). */
  recheckInMs?: number;
}

export interface Role {
  readonly controlling: boolean;
  readonly mode: NominationMode;
  /** Whether a check sent on `pair` carries USE-CANDIDATE. */
  useCandidate(pair: Pair): boolean;
  /**
   * Called when a component's pairs changed. `checklist` holds the component's
   * checklist pairs, `valid` its valid pairs, both highest priority first;
   * `msSinceFirstValid` is the time since its first pair became valid.
   */
  decide(checklist: readonly Pair[], valid: readonly Pair[], msSinceFirstValid: number): NominationDecision;
  /** Whether USE-CANDIDATE in the peer's requests nominates (the controlled side, §7.3.1.5). */
  readonly followsUseCandidate: boolean;
  /** Whether this agent sends checks at all (an ICE-lite agent only answers them, RFC 8445 §2.5). */
  readonly sendsChecks: boolean;
}

/** Whether a pair goes through a TURN server. */
export function relayed(p: Pair): boolean {
  return p.localType === 'relay' || p.remoteType === 'relay';
}

/**
 * Regular nomination (§8.1.1): the controlling agent lets checks run, then
 * repeats a check with USE-CANDIDATE on the best valid pair. When to stop
 * waiting for better pairs is the "stopping criterion" §8.1.1 leaves to the
 * agent; ours nominates the best valid pair as soon as
 * - no pair of higher priority could still succeed (on a clean path the
 *   nomination check follows the first success at once, as pion and Chromium
 *   do), or
 * - it is a direct pair (no relay) and either host↔host or not the only valid
 *   pair (libnice's criterion: the pairs still pending above it are mostly
 *   private addresses of the other side's network, which cannot answer), or
 * - `waitMs` passed since the first valid pair — and, when the best valid
 *   pair is relayed, every direct pair of higher priority still pending has
 *   been sent at least 3 times (its first two retransmissions), at most
 *   3 × `waitMs` — 5 times and 6 × once loss is seen (a pair that succeeded
 *   only after retransmissions); and while the peer's checks come in on such a pair (the
 *   path works at least one way), up to 10 × `waitMs`, and 20 × while such
 *   a pair has its second transaction: a direct path that loses checks to a
 *   lossy link is still preferred to the relay. (With 20% loss in each of
 *   two NATs a check and its answer get through 41% of the time; 5 s of
 *   retransmissions lost them all in 1 run of 10 in the NAT rig,
 *   bench/holepunch.ts; 10 s covers the check's own transaction, 20 s the
 *   one more it gets.)
 */
export class RegularControlling implements Role {
  readonly controlling = true;
  readonly mode = 'regular' as const;
  readonly followsUseCandidate = false;
  readonly sendsChecks = true;
  readonly waitMs: number;
  constructor(waitMs: number) {
    this.waitMs = waitMs;
  }
  useCandidate(pair: Pair): boolean {
    return pair.nominating;
  }
  decide(checklist: readonly Pair[], valid: readonly Pair[], msSinceFirstValid: number): NominationDecision {
    if (valid.some((p) => p.nominated || p.nominating)) return {};
    if (checklist.some((p) => p.nominating)) return {};
    const best = valid[0];
    if (!best) return {};
    const betterPending = checklist.some((p) =>
      p.priority > best.priority && (p.state === 'waiting' || p.state === 'in-progress' || p.state === 'frozen'));
    const direct = !relayed(best);
    const hostHost = best.localType === 'host' && best.remoteType === 'host';
    if (!betterPending || (direct && (hostHost || valid.length >= 2))) return { nominate: best };
    if (direct && msSinceFirstValid >= this.waitMs) return { nominate: best };
    if (!direct) {
      const pending = (p: Pair) => p.priority > best.priority && !relayed(p) &&
        (p.state === 'waiting' || p.state === 'in-progress' || p.state === 'frozen');
      // A direct pair the peer's checks came in on works at least one way: worth waiting for longer.
      const answered = checklist.some((p) => pending(p) && p.counters.requestsReceived > 0);
      // Such a pair whose check lost every transmission gets one more transaction (lib/core/check.ts): wait for it too.
      const retrying = checklist.some((p) => pending(p) && p.counters.requestsReceived > 0 && p.retried === true);
      // Loss seen on the component's paths: a pair that succeeded only after retransmissions. Then three
      // unanswered transmissions say little (with 20% loss in each of two NATs they all fail one time in
      // five): the direct pairs get five, and up to 6 × waitMs.
      const lossy = checklist.some((p) => p.state === 'succeeded' && p.counters.requestsSent > p.counters.responsesReceived);
      const young = checklist.some((p) => pending(p) && p.counters.requestsSent < (lossy ? 5 : 3));
      const cap = (retrying ? 20 : answered ? 10 : lossy ? 6 : 3) * this.waitMs;
      if (msSinceFirstValid >= cap || (msSinceFirstValid >= this.waitMs && !young && !answered)) return { nominate: best };
      // Retransmissions come at their own times: look again a little later.
      return { recheckInMs: msSinceFirstValid < this.waitMs ? this.waitMs - msSinceFirstValid : Math.min(100, cap - msSinceFirstValid) };
    }
    return { recheckInMs: this.waitMs - msSinceFirstValid };
  }
}

/**
 * Aggressive nomination (RFC 5245 §8.1.1.2, kept by libnice and browsers for
 * interop): every check carries USE-CANDIDATE, so the first pair to succeed is
 * nominated, and a higher-priority one that succeeds later replaces it.
 */
export class AggressiveControlling implements Role {
  readonly controlling = true;
  readonly mode = 'aggressive' as const;
  readonly followsUseCandidate = false;
  readonly sendsChecks = true;
  useCandidate(): boolean {
    return true;
  }
  decide(): NominationDecision {
    return {};
  }
}

/**
 * The controlled agent never nominates: it records USE-CANDIDATE from the
 * controlling agent's requests (§7.3.1.5) and selects the highest-priority
 * nominated valid pair.
 */
export class Controlled implements Role {
  readonly controlling = false;
  readonly mode: NominationMode;
  readonly followsUseCandidate = true;
  readonly sendsChecks: boolean = true;
  constructor(mode: NominationMode) {
    this.mode = mode;
  }
  useCandidate(): boolean {
    return false;
  }
  decide(): NominationDecision {
    return {};
  }
}

/**
 * ICE-lite (RFC 8445 §2.5, §8.2): host candidates only, no checks of its own.
 * A lite agent is always controlled against a full one; an authenticated
 * request proves the pair it came on (there is no check of ours to wait
 * for), and USE-CANDIDATE on it selects it.
 */
export class Lite extends Controlled {
  override readonly sendsChecks = false;
}

/** Roles hold no state of a session: agents share them (a media server has thousands of lite agents). */
const shared = new Map<string, Role>();

export function createRole(controlling: boolean, mode: NominationMode, regularWaitMs: number, lite = false): Role {
  const key = lite ? `lite ${mode}` : !controlling ? `controlled ${mode}` : mode === 'aggressive' ? 'aggressive' : `regular ${regularWaitMs}`;
  let role = shared.get(key);
  if (role === undefined) {
    role = lite ? new Lite(mode) : !controlling ? new Controlled(mode) : mode === 'aggressive' ? new AggressiveControlling() : new RegularControlling(regularWaitMs);
    // Bounded: one regular role per distinct nominationTimeout an application uses, up to 64 kept.
    if (shared.size < 64) shared.set(key, role);
  }
  return role;
}
