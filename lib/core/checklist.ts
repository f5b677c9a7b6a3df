/**
 * Checklists, RFC 8445 §6.1.2 to §6.1.4 and §7.2.5.3: pair formation and
 * pruning, the cap over the checklist set, initial states and unfreezing by
 * foundation, the triggered-check queue, the valid list. Pure functions over
 * the streams' plain data; the checklist set is every stream of the agent, in
 * stream order, and only streams that can check (remote credentials known)
 * take part in freezing, so a stream still waiting for its peer cannot hold
 * another stream's pairs frozen.
 */
import { canonicalIp, isV6 } from '../transport/address.js';
import type { Candidate } from './candidate.js';
import { byPriorityDesc, isPairKey, priorityFor } from './pair.js';
import { tcpPairable } from './tcp.js';
import { append, type Pair, type RemoteCand, type StreamData } from './state.js';

/** libnice caps connectivity checks at 100; so do we, over the whole checklist set (§6.1.2.5). */
export const DEFAULT_MAX_PAIRS = 100;

/** Whether a stream takes part in checks: its remote credentials of the current generation are known. */
export function canCheck(s: StreamData): boolean {
  return s.remote !== undefined && !s.restartPending;
}

/**
 * §6.1.2.2: same component, transport and IP address family; a local
 * srflx/prflx is replaced by its base, so never paired. TCP by the tcptypes
 * (RFC 6544 §6.2, lib/core/tcp.ts).
 */
export function canPair(local: Candidate, remote: Candidate): boolean {
  if (local.component !== remote.component) return false;
  if (local.transport !== remote.transport) return false;
  if (local.type === 'srflx' || local.type === 'prflx') return false;
  // RFC 6544 §6.2: active with passive, so with so; a local passive candidate waits for the peer's connection.
  if (local.transport === 'tcp' && !tcpPairable(local.tcpType, remote.tcpType)) return false;
  if (isV6(local.address) !== isV6(remote.address)) return false;
  // RFC 8445 §6.1.2.2: link-local IPv6 only pairs with link-local.
  if (isV6(local.address) && isLinkLocal(local.address) !== isLinkLocal(remote.address)) return false;
  return true;
}

/** fe80::/10, judged on the first 16-bit group (so `fe8::1`, which is 0fe8::1, is not). */
function isLinkLocal(a: string): boolean {
  const first = canonicalIp(a)?.split(':')[0];
  return first !== undefined && first.length === 4 && (parseInt(first, 16) & 0xffc0) === 0xfe80;
}

/** The pairs of the current checklist (not valid-only pairs, not an earlier generation's). */
export function checklistPairs(s: StreamData): Pair[] {
  return s.pairs.filter((p) => p.inChecklist && p.generation === s.generation);
}

// Loops rather than find(): these run for every request and response, and a find's closure is an allocation each time.

export function pairById(s: StreamData, id: number | undefined): Pair | undefined {
  if (id === undefined) return undefined;
  for (const p of s.pairs) if (p.id === id) return p;
  return undefined;
}

export function pairByKey(s: StreamData, key: string): Pair | undefined {
  for (const p of s.pairs) if (p.key === key && p.inChecklist && p.generation === s.generation) return p;
  return undefined;
}

/** pairByKey(s, pairKey(baseId, address, port)), without making the key. */
export function pairFrom(s: StreamData, baseId: number, address: string, port: number): Pair | undefined {
  for (const p of s.pairs) if (p.inChecklist && p.generation === s.generation && isPairKey(p.key, baseId, address, port)) return p;
  return undefined;
}

/** Inserts in priority order. */
export function insertPair(s: StreamData, pair: Pair): void {
  // The first pair gets an array of its own size (see append, lib/core/context.ts).
  if (s.pairs.length === 0) {
    s.pairs = [pair];
    return;
  }
  let i = s.pairs.length;
  while (i > 0 && s.pairs[i - 1]!.priority < pair.priority) i--;
  s.pairs.splice(i, 0, pair);
}

export function removePair(s: StreamData, pair: Pair): void {
  const i = s.pairs.indexOf(pair);
  if (i >= 0) s.pairs.splice(i, 1);
  s.triggered = s.triggered.filter((id) => id !== pair.id);
}

export type AddResult = { added: Pair; evicted: Pair | undefined } | { added: undefined; reason: 'redundant' | 'full' };

/**
 * Adds a pair to its stream's checklist (§6.1.2.4 redundancy, §6.1.2.5 cap over
 * the whole checklist set). Of two redundant pairs the higher-priority one
 * stays: one not yet checked takes the better remote candidate in place; a
 * checked one is kept. When the set is full a failed pair is evicted first,
 * then the lowest-priority pair not yet checked if the newcomer ranks above
 * it; otherwise the newcomer is refused. A new pair starts Frozen; call
 * `updateStates` after adding.
 */
export function addPair(set: readonly StreamData[], s: StreamData, pair: Pair, remote: RemoteCand, localPriority: number, controlling: boolean, maxPairs: number): AddResult {
  const existing = pairByKey(s, pair.key);
  if (existing) {
    if (existing.priority < pair.priority && (existing.state === 'frozen' || existing.state === 'waiting')) {
      existing.remoteId = remote.id;
      existing.remoteType = remote.c.type;
      existing.foundation = pair.foundation;
      existing.priority = priorityFor(localPriority, remote.c.priority, controlling);
      resort(s);
    }
    return { added: undefined, reason: 'redundant' };
  }
  let evicted: Pair | undefined;
  if (countChecklist(set) >= maxPairs) {
    evicted = evictionCandidate(set, pair);
    if (!evicted) return { added: undefined, reason: 'full' };
    const owner = set.find((x) => x.pairs.includes(evicted!))!;
    removePair(owner, evicted);
  }
  insertPair(s, pair);
  return { added: pair, evicted };
}

function countChecklist(set: readonly StreamData[]): number {
  let n = 0;
  for (const s of set) for (const p of s.pairs) if (p.inChecklist && p.generation === s.generation) n++;
  return n;
}

function evictionCandidate(set: readonly StreamData[], newcomer: Pair): Pair | undefined {
  let failed: Pair | undefined;
  let unchecked: Pair | undefined;
  for (const s of set) {
    for (const p of s.pairs) {
      if (!p.inChecklist || p.generation !== s.generation || p.valid) continue;
      if (p.state === 'failed') {
        if (!failed || p.priority < failed.priority) failed = p;
      } else if ((p.state === 'frozen' || p.state === 'waiting') && !p.nominating && p.priority < newcomer.priority) {
        if (!unchecked || p.priority < unchecked.priority) unchecked = p;
      }
    }
  }
  return failed ?? unchecked;
}

export function resort(s: StreamData): void {
  s.pairs.sort(byPriorityDesc);
}

/**
 * Initial states and unfreezing (§6.1.2.6, §6.1.4.2): for each foundation
 * that has no Waiting or In-Progress pair in any stream that can check, the
 * first Frozen pair with it — in stream order, lowest component id first,
 * then highest priority — goes to Waiting. Called whenever pairs are added,
 * fail, or a stream becomes able to check; then the Waiting set does not
 * depend on the order candidates arrived in.
 */
export function updateStates(set: readonly StreamData[], isDone: (s: StreamData, component: number) => boolean): void {
  const streams = set.filter(canCheck);
  // Pairs of a component that has its selected pair do not count: their checks were stopped (§8.1.2).
  const live = (s: StreamData, p: Pair) => p.inChecklist && p.generation === s.generation && !isDone(s, p.component);
  /** Foundations with a check under way (In-Progress, or queued as triggered) and with a success. */
  const busy = new Set<string>();
  const succeeded = new Set<string>();
  const waitingAfterSuccess = new Set<string>();
  /** Per foundation, the pairs not checked yet, in the order §6.1.2.6 unfreezes them. */
  const unchecked = new Map<string, Pair[]>();
  for (const s of streams) {
    const triggered = new Set(s.triggered);
    const candidates: Pair[] = [];
    for (const p of s.pairs) {
      if (!live(s, p)) continue;
      if (p.state === 'in-progress' || (p.state === 'waiting' && triggered.has(p.id))) busy.add(p.foundation);
      else if (p.state === 'succeeded') succeeded.add(p.foundation);
      else if (p.state === 'frozen' || p.state === 'waiting') candidates.push(p);
    }
    candidates.sort((x, y) => x.component - y.component || byPriorityDesc(x, y));
    for (const p of candidates) {
      let list = unchecked.get(p.foundation);
      if (!list) unchecked.set(p.foundation, (list = []));
      list.push(p);
    }
  }
  for (const [f, list] of unchecked) {
    if (succeeded.has(f)) {
      // §7.2.5.3.3 unfroze the foundation; pairs that came later wait only if nothing of it is Waiting.
      for (const p of list) if (p.state === 'waiting') waitingAfterSuccess.add(f);
      if (!busy.has(f) && !waitingAfterSuccess.has(f)) list[0]!.state = 'waiting';
      continue;
    }
    // One pair per foundation is Waiting — the first in §6.1.2.6 order, whatever order they arrived in —
    // and none while a check of the foundation is under way.
    list.forEach((p, i) => { p.state = i === 0 && !busy.has(f) ? 'waiting' : 'frozen'; });
  }
}

/** §7.2.5.3.3: a check succeeded; every Frozen pair with its foundation, in every checklist, goes to Waiting. */
export function markSucceeded(set: readonly StreamData[], pair: Pair): void {
  pair.state = 'succeeded';
  for (const s of set) {
    for (const p of s.pairs) if (p.state === 'frozen' && p.foundation === pair.foundation) p.state = 'waiting';
  }
}

export function markFailed(s: StreamData, pair: Pair): void {
  pair.state = 'failed';
  pair.nominating = false;
  s.triggered = s.triggered.filter((id) => id !== pair.id);
}

/** Queues a triggered check (§6.1.4.1); the pair goes to Waiting. */
export function enqueueTriggered(s: StreamData, pair: Pair, first = false): void {
  // A Succeeded pair is queued only for the controlling side's nomination check (§8.1.1) and stays Succeeded.
  if (pair.state !== 'succeeded') pair.state = 'waiting';
  if (s.triggered.includes(pair.id)) return;
  if (first) s.triggered = [pair.id, ...s.triggered];
  else s.triggered = append(s.triggered, pair.id);
}

/**
 * The next pair to check (§6.1.4.2): the head of the triggered queue, else
 * the highest-priority Waiting pair of a component still without its
 * selected pair (§8.1.2).
 */
export function nextPair(s: StreamData, isDone: (component: number) => boolean): Pair | undefined {
  while (s.triggered.length > 0) {
    const p = pairById(s, s.triggered.shift());
    if (!p) continue;
    if (p.nominating && p.state !== 'failed') return p;
    if (p.state === 'waiting' && (!isDone(p.component) || p.nominateOnSuccess)) return p;
  }
  return s.pairs.find((p) => p.inChecklist && p.generation === s.generation && p.state === 'waiting' && !isDone(p.component));
}

/** Whether the stream has a check to send now (triggered or Waiting). */
export function hasWork(s: StreamData, isDone: (component: number) => boolean): boolean {
  if (s.triggered.length > 0) return true;
  return s.pairs.some((p) => p.inChecklist && p.generation === s.generation && p.state === 'waiting' && !isDone(p.component));
}

/** The component's valid pairs of the current generation, highest priority first. */
export function validPairs(s: StreamData, component: number): Pair[] {
  return s.pairs.filter((p) => p.valid && p.component === component && p.generation === s.generation);
}

/**
 * The pair to select: the highest-priority nominated valid pair (§8.1.1; with
 * aggressive nomination a higher one may replace it) — or, with renomination,
 * the one nominated last (the highest NOMINATION count).
 */
export function nominatedPair(s: StreamData, component: number): Pair | undefined {
  let best: Pair | undefined;
  for (const p of s.pairs) {
    if (!p.valid || !p.nominated || p.component !== component || p.generation !== s.generation) continue;
    if (!best || (p.nominationValue ?? -1) > (best.nominationValue ?? -1)) best = p;
  }
  return best;
}

/** No valid pair and nothing left to check for the component, with the candidates known so far. */
export function exhausted(s: StreamData, component: number): boolean {
  for (const p of s.pairs) {
    if (p.component !== component || p.generation !== s.generation) continue;
    if (p.valid) return false;
    if (p.inChecklist && p.state !== 'failed') return false;
  }
  return true;
}

/**
 * §8.1.2: once a component has its selected pair, its Frozen and Waiting
 * pairs are removed and its triggered checks dropped (a nomination in flight
 * aside); In-Progress pairs are returned for the caller to cancel.
 */
export function pruneComponent(s: StreamData, component: number): Pair[] {
  const inProgress: Pair[] = [];
  for (const p of [...s.pairs]) {
    if (p.component !== component || !p.inChecklist || p.generation !== s.generation || p.nominating || p.valid) continue;
    if (p.state === 'frozen' || p.state === 'waiting') removePair(s, p);
    else if (p.state === 'in-progress') inProgress.push(p);
  }
  return inProgress;
}

/** Recomputes every pair priority after a role change (§7.2.5.1, §7.3.1.1). */
export function reprioritise(s: StreamData, controlling: boolean): void {
  for (const p of s.pairs) {
    const c = s.components.get(p.component);
    const l = c?.local.find((x) => x.id === p.localId);
    const r = c?.remote.find((x) => x.id === p.remoteId) ?? c?.retired.find((x) => x.id === p.remoteId);
    if (l && r) p.priority = priorityFor(l.c.priority, r.c.priority, controlling);
  }
  resort(s);
}
