/**
 * Nomination, RFC 8445 §8.1, one strategy object per role (the shape of pion's
 * controlling/controlled selectors), swapped when a role conflict flips the
 * role. Pure: decisions from pair states and elapsed times the caller passes in.
 */
import type { CandidatePair } from './pair.js';

export type NominationMode = 'regular' | 'aggressive';

export interface NominationDecision {
  /** Pair to nominate now (regular nomination: send it a check with USE-CANDIDATE). */
  nominate?: CandidatePair;
  /** Ask again after this many ms (a better pair may still succeed). */
  recheckInMs?: number;
}

export interface Nominator {
  readonly controlling: boolean;
  readonly mode: NominationMode;
  /** Whether a check sent on `pair` carries USE-CANDIDATE. */
  useCandidate(pair: CandidatePair): boolean;
  /**
   * Called when a component's pairs changed. `pairs` are the component's
   * checklist pairs and `valid` its valid pairs, both highest priority first;
   * `msSinceFirstValid` is the time since its first pair became valid.
   */
  decide(pairs: readonly CandidatePair[], valid: readonly CandidatePair[], msSinceFirstValid: number): NominationDecision;
}

/**
 * Regular nomination (§8.1.1): the controlling agent lets checks run, then
 * repeats a check with USE-CANDIDATE on the best valid pair. It nominates at
 * once when no pair of higher priority could still succeed; otherwise it waits
 * for them at most `waitMs` after the first valid pair, so that one dead
 * high-priority pair cannot hold the session back for its whole retransmission
 * horizon.
 */
export class RegularControllingNominator implements Nominator {
  readonly controlling = true;
  readonly mode = 'regular' as const;
  readonly waitMs: number;
  constructor(waitMs: number) {
    this.waitMs = waitMs;
  }
  useCandidate(pair: CandidatePair): boolean {
    return pair.nominating;
  }
  decide(pairs: readonly CandidatePair[], valid: readonly CandidatePair[], msSinceFirstValid: number): NominationDecision {
    if (valid.some((p) => p.nominated || p.nominating)) return {};
    const best = valid[0];
    if (!best) return {};
    const betterPending = pairs.some((p) =>
      p.priority > best.priority && (p.state === 'waiting' || p.state === 'in-progress' || p.state === 'frozen'));
    if (!betterPending || msSinceFirstValid >= this.waitMs) return { nominate: best };
    return { recheckInMs: this.waitMs - msSinceFirstValid };
  }
}

/**
 * Aggressive nomination (RFC 5245 §8.1.1.2, kept by libnice and browsers for
 * interop): every check carries USE-CANDIDATE, so the first pair to succeed is
 * nominated, and a higher-priority one that succeeds later replaces it.
 */
export class AggressiveControllingNominator implements Nominator {
  readonly controlling = true;
  readonly mode = 'aggressive' as const;
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
export class ControlledNominator implements Nominator {
  readonly controlling = false;
  readonly mode: NominationMode;
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

export function createNominator(controlling: boolean, mode: NominationMode, regularWaitMs: number): Nominator {
  if (!controlling) return new ControlledNominator(mode);
  return mode === 'aggressive' ? new AggressiveControllingNominator() : new RegularControllingNominator(regularWaitMs);
}
