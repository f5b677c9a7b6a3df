/**
 * The checklist of one stream, RFC 8445 §6.1.2 to §6.1.4 and §7.2.5.3: pair
 * formation and pruning, ordering, foundation-based freezing, the triggered-check
 * queue, the valid list and the checklist state. Pure: the agent feeds it
 * candidates and check outcomes and asks it which pair to check next; it owns
 * no socket and no timer.
 *
 * Foundation rules need the whole checklist set (every stream of the agent),
 * so the methods that unfreeze take the set as an argument.
 */
import { isIPv6 } from 'node:net';
import type { Candidate } from './candidate.js';
import { CandidatePair, byPriorityDesc, pairKey } from './pair.js';

export type ChecklistState = 'running' | 'completed' | 'failed';

/** libnice caps connectivity checks per stream at 100; so do we, by default. */
export const DEFAULT_MAX_PAIRS = 100;

export class Checklist {
  readonly streamId: number;
  readonly componentIds: readonly number[];
  readonly maxPairs: number;
  /** Pairs ordered by priority, highest first (§6.1.2.5). */
  pairs: CandidatePair[] = [];
  /** Triggered-check queue, FIFO (§6.1.4.1). */
  triggered: CandidatePair[] = [];
  /** Valid list (§7.2.5.3.2): may hold pairs that are not in `pairs` (a local peer-reflexive base). */
  valid: CandidatePair[] = [];
  state: ChecklistState = 'running';
  /**
   * Whether the remote side has no more candidates to send. Without trickle the
   * remote's candidates arrive all at once, so this starts true; with trickle it
   * is set by end-of-candidates (RFC 8838 §8), and until then a component whose
   * pairs have all failed is not failed yet.
   */
  remoteGatheringDone: boolean;
  #byKey = new Map<string, CandidatePair>();

  constructor(streamId: number, componentIds: readonly number[], opts: { maxPairs?: number; remoteGatheringDone?: boolean } = {}) {
    this.streamId = streamId;
    this.componentIds = componentIds;
    this.maxPairs = opts.maxPairs ?? DEFAULT_MAX_PAIRS;
    this.remoteGatheringDone = opts.remoteGatheringDone ?? true;
  }

  /**
   * Forms the pair (local, remote) if the two can be paired (§6.1.2.2: same
   * component, transport and address family) and it is not redundant
   * (§6.1.2.4). Returns the new pair, or undefined when nothing was added.
   *
   * Local server-reflexive candidates are never paired: §6.1.2.4 replaces them
   * by their base, which makes them the host pair again, so they would only be
   * pruned. Local peer-reflexive candidates appear only in valid pairs.
   */
  addPair(local: Candidate, remote: Candidate, controlling: boolean, set: readonly Checklist[]): CandidatePair | undefined {
    if (!canPair(local, remote)) return undefined;
    const key = pairKey(local.base ?? local, remote);
    const existing = this.#byKey.get(key);
    const pair = new CandidatePair(local, remote, controlling);
    if (existing) {
      // §6.1.2.4: of two redundant pairs the higher-priority one stays. One not
      // yet checked takes the better candidates in place; a checked one is kept.
      if (existing.priority < pair.priority && (existing.state === 'frozen' || existing.state === 'waiting')) {
        existing.replaceRemote(remote, controlling);
        this.resort();
      }
      return undefined;
    }
    // Initial state (§6.1.2.6), computed per pair as pairs arrive (trickle makes
    // them arrive one by one): a pair starts Waiting unless another pair with its
    // foundation is already Waiting or In-Progress somewhere in the set; that one
    // will unfreeze it when it succeeds (§7.2.5.3.3).
    pair.state = foundationActive(set, pair.foundation) ? 'frozen' : 'waiting';
    if (this.pairs.length >= this.maxPairs && !this.#evictLowest(pair)) return undefined;
    this.#insert(pair);
    return pair;
  }

  /** Inserts an already-built pair (e.g. one learned from a peer-reflexive request) in priority order. */
  #insert(pair: CandidatePair): void {
    let i = this.pairs.length;
    while (i > 0 && this.pairs[i - 1]!.priority < pair.priority) i--;
    this.pairs.splice(i, 0, pair);
    this.#byKey.set(pair.key, pair);
  }

  /**
   * §6.1.2.5: when the list is full, the lowest-priority pairs go. Only pairs
   * not yet checked may be evicted; if the newcomer is the lowest, it is refused.
   */
  #evictLowest(newcomer: CandidatePair): boolean {
    for (let i = this.pairs.length - 1; i >= 0; i--) {
      const p = this.pairs[i]!;
      if (p.priority > newcomer.priority) return false;
      if (p.state === 'frozen' || p.state === 'waiting') {
        this.remove(p);
        return true;
      }
    }
    return false;
  }

  /**
   * §8.1.2: once a component has its selected pair, its Frozen and Waiting
   * pairs are removed (so they no longer hold back their foundation elsewhere)
   * and its triggered checks dropped, except a nomination in flight.
   */
  pruneComponent(component: number): void {
    for (const p of [...this.pairs]) {
      if (p.component === component && (p.state === 'frozen' || p.state === 'waiting') && !p.nominating) this.remove(p);
    }
  }

  remove(pair: CandidatePair): void {
    const i = this.pairs.indexOf(pair);
    if (i >= 0) this.pairs.splice(i, 1);
    this.#byKey.delete(pair.key);
    this.triggered = this.triggered.filter((p) => p !== pair);
  }

  get(localBase: { address: string; port: number }, remote: { address: string; port: number }): CandidatePair | undefined {
    return this.#byKey.get(pairKey(localBase, remote));
  }

  /** Recomputes pair priorities after a role change (§7.2.5.1, §7.3.1.1) and reorders. */
  setRole(controlling: boolean): void {
    for (const p of this.pairs) p.updatePriority(controlling);
    for (const p of this.valid) if (!this.pairs.includes(p)) p.updatePriority(controlling);
    this.pairs.sort(byPriorityDesc);
    this.valid.sort(byPriorityDesc);
  }

  /** Re-sorts after a pair's priority changed (a prflx remote replaced by the signalled candidate). */
  resort(): void {
    this.pairs.sort(byPriorityDesc);
    this.valid.sort(byPriorityDesc);
  }

  /**
   * Queues a triggered check (§7.3.1.4). A pair already In-Progress keeps its
   * running transaction instead of being restarted, as libnice does; a
   * Succeeded pair needs no new check.
   */
  trigger(pair: CandidatePair): void {
    if (pair.state === 'in-progress' || pair.state === 'succeeded') return;
    pair.state = 'waiting';
    if (!this.triggered.includes(pair)) this.triggered.push(pair);
  }

  /** Queues a check that must go out even on a Succeeded pair (the controlling side's nomination, §8.1.1). */
  triggerNomination(pair: CandidatePair): void {
    if (!this.triggered.includes(pair)) this.triggered.unshift(pair);
  }

  /**
   * The next pair to check (§6.1.4.2): the head of the triggered queue, else
   * the highest-priority Waiting pair, else a Frozen pair unfrozen because no
   * pair in the set with its foundation is Waiting or In-Progress.
   * `isDone(component)` tells whether a component already has its nominated pair;
   * its Frozen/Waiting pairs are not checked any more (§8.1.2).
   */
  next(set: readonly Checklist[], isDone: (component: number) => boolean = () => false): CandidatePair | undefined {
    while (this.triggered.length > 0) {
      const p = this.triggered.shift()!;
      if (p.nominating && p.state !== 'failed') return p;
      if (p.state === 'waiting' && (!isDone(p.component) || p.nominateOnSuccess)) return p;
    }
    const waiting = this.pairs.find((p) => p.state === 'waiting' && !isDone(p.component));
    if (waiting) return waiting;
    let picked: CandidatePair | undefined;
    const seen = new Set<string>();
    for (const p of this.pairsByComponent()) {
      if (p.state !== 'frozen' || isDone(p.component) || seen.has(p.foundation)) continue;
      seen.add(p.foundation);
      if (foundationActive(set, p.foundation)) continue;
      p.state = 'waiting';
      if (!picked || p.priority > picked.priority) picked = p;
    }
    return picked;
  }

  /** Pairs ordered by lowest component id, then highest priority (the order §6.1.2.6 unfreezes in). */
  pairsByComponent(): CandidatePair[] {
    return [...this.pairs].sort((a, b) => a.component - b.component || byPriorityDesc(a, b));
  }

  /** Whether any check is still to be sent or answered. */
  hasPendingWork(isDone: (component: number) => boolean = () => false): boolean {
    return this.triggered.length > 0 || this.pairs.some((p) =>
      p.state === 'in-progress' || ((p.state === 'waiting' || p.state === 'frozen') && !isDone(p.component)));
  }

  /** Adds a pair to the valid list (§7.2.5.3.2). */
  addValid(pair: CandidatePair): void {
    pair.valid = true;
    if (this.valid.includes(pair)) return;
    let i = this.valid.length;
    while (i > 0 && this.valid[i - 1]!.priority < pair.priority) i--;
    this.valid.splice(i, 0, pair);
  }

  /**
   * A check on `pair` succeeded: the pair is Succeeded and every Frozen pair
   * with its foundation, in every checklist of the set, goes to Waiting (§7.2.5.3.3).
   */
  succeeded(pair: CandidatePair, set: readonly Checklist[]): void {
    pair.state = 'succeeded';
    for (const cl of set) {
      for (const p of cl.pairs) if (p.state === 'frozen' && p.foundation === pair.foundation) p.state = 'waiting';
    }
  }

  failed(pair: CandidatePair): void {
    pair.state = 'failed';
    this.triggered = this.triggered.filter((p) => p !== pair);
  }

  /** Highest-priority valid pair of a component. */
  bestValid(component: number): CandidatePair | undefined {
    return this.valid.find((p) => p.component === component);
  }

  /** The selected pair: the highest-priority nominated valid pair (§8.1.1; with aggressive nomination a higher one may replace it). */
  selected(component: number): CandidatePair | undefined {
    return this.valid.find((p) => p.component === component && p.nominated);
  }

  /**
   * A component has failed when it has no valid pair, nothing left to check,
   * and the remote has no more candidates to give (§8.1.2, RFC 8838 §8).
   */
  componentFailed(component: number): boolean {
    return this.remoteGatheringDone && this.componentExhausted(component);
  }

  /** No valid pair and nothing left to check for the component, with the candidates known so far. */
  componentExhausted(component: number): boolean {
    if (this.valid.some((p) => p.component === component)) return false;
    return !this.pairs.some((p) => p.component === component && p.state !== 'failed') &&
      !this.triggered.some((p) => p.component === component);
  }

  /** Recomputes the checklist state (§8.1.2 / §6.1.2.1): Completed when every component has a nominated pair, Failed when a component has failed. */
  updateState(): ChecklistState {
    if (this.componentIds.every((c) => this.selected(c) !== undefined)) this.state = 'completed';
    else if (this.componentIds.some((c) => this.componentFailed(c))) this.state = 'failed';
    else this.state = 'running';
    return this.state;
  }
}

/** §6.1.2.2: same component, same transport, same IP address family. */
export function canPair(local: Candidate, remote: Candidate): boolean {
  if (local.component !== remote.component) return false;
  if (local.transport !== remote.transport) return false;
  if (local.type === 'srflx' || local.type === 'prflx') return false;
  if (isIPv6(local.address) !== isIPv6(remote.address)) return false;
  // RFC 8445 §6.1.2.2: link-local IPv6 only pairs with link-local.
  if (isIPv6(local.address) && isLinkLocal(local.address) !== isLinkLocal(remote.address)) return false;
  return true;
}

function isLinkLocal(a: string): boolean {
  return /^fe[89ab]/i.test(a);
}

/** Whether some pair of the set with this foundation is Waiting or In-Progress. */
export function foundationActive(set: readonly Checklist[], foundation: string): boolean {
  for (const cl of set) {
    for (const p of cl.pairs) {
      if (p.foundation === foundation && (p.state === 'waiting' || p.state === 'in-progress')) return true;
    }
  }
  return false;
}
