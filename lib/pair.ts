/**
 * Candidate pairs, RFC 8445 §6.1.2: priority (§6.1.2.3) and states (§6.1.2.6).
 * Pure: no sockets, no clocks.
 */
import { type Candidate, formatAddress } from './candidate.js';

export type PairState = 'frozen' | 'waiting' | 'in-progress' | 'succeeded' | 'failed';

/**
 * Pair priority, RFC 8445 §6.1.2.3:
 * 2^32*MIN(G,D) + 2*MAX(G,D) + (G>D?1:0), where G is the controlling agent's
 * candidate priority and D the controlled agent's. The value needs 64 bits,
 * more than a JS number holds exactly, hence bigint.
 */
export function pairPriority(controllingPriority: number, controlledPriority: number): bigint {
  const g = BigInt(controllingPriority);
  const d = BigInt(controlledPriority);
  const min = g < d ? g : d;
  const max = g < d ? d : g;
  return (min << 32n) + 2n * max + (g > d ? 1n : 0n);
}

/** Key identifying a pair by what redundancy (§6.1.2.4) compares: the local base and the remote address. */
export function pairKey(localBase: { address: string; port: number }, remote: { address: string; port: number }): string {
  return `${formatAddress(localBase.address, localBase.port)}>${formatAddress(remote.address, remote.port)}`;
}

export class CandidatePair {
  readonly local: Candidate;
  remote: Candidate;
  readonly component: number;
  /** Pair foundation: the local and remote foundations together (§6.1.2.6); compared as whole strings. */
  foundation: string;
  priority: bigint;
  state: PairState = 'frozen';
  /** In the valid list (§7.2.5.3.2). */
  valid = false;
  /** Nominated (§8.1.1): a check with USE-CANDIDATE succeeded on it. */
  nominated = false;
  /** Controlled side: a USE-CANDIDATE request arrived before our own check succeeded (§7.3.1.5). */
  nominateOnSuccess = false;
  /** Controlling side, regular nomination: a USE-CANDIDATE check is being (or has been) sent. */
  nominating = false;
  /** The valid pair this pair's check produced (itself, or one with a peer-reflexive local candidate, §7.2.5.3.2). */
  validPair: CandidatePair | undefined;
  readonly key: string;

  constructor(local: Candidate, remote: Candidate, controlling: boolean) {
    this.local = local;
    this.remote = remote;
    this.component = local.component;
    this.foundation = `${local.foundation}:${remote.foundation}`;
    this.priority = 0n;
    this.key = pairKey(local.base ?? local, remote);
    this.updatePriority(controlling);
  }

  updatePriority(controlling: boolean): void {
    this.priority = controlling
      ? pairPriority(this.local.priority, this.remote.priority)
      : pairPriority(this.remote.priority, this.local.priority);
  }

  /** Replaces a peer-reflexive remote candidate by the signalled one for the same address (RFC 8838 §11.3 / §7.3.1.3). */
  replaceRemote(remote: Candidate, controlling: boolean): void {
    this.remote = remote;
    this.foundation = `${this.local.foundation}:${remote.foundation}`;
    this.updatePriority(controlling);
  }

  toString(): string {
    return `${this.local.type}:${formatAddress(this.local.address, this.local.port)} -> ${this.remote.type}:${formatAddress(this.remote.address, this.remote.port)} (${this.state}${this.nominated ? ',nominated' : ''})`;
  }
}

/** Ordering by priority, highest first (§6.1.2.5). */
export function byPriorityDesc(a: CandidatePair, b: CandidatePair): number {
  return a.priority > b.priority ? -1 : a.priority < b.priority ? 1 : 0;
}
