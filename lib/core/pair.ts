/**
 * Candidate pairs, RFC 8445 §6.1.2: priority (§6.1.2.3), redundancy key
 * (§6.1.2.4), foundation (§6.1.2.6). Pure.
 */
import { formatAddress, isAddressKey } from '../transport/address.js';
import { newCounters, type LocalCand, type Pair, type RemoteCand } from './state.js';

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

/** The priority of a pair from our side: our candidate is G when we are controlling. */
export function priorityFor(local: number, remote: number, controlling: boolean): bigint {
  return controlling ? pairPriority(local, remote) : pairPriority(remote, local);
}

/** Redundancy key (§6.1.2.4): two pairs with the same local base (its transport) and remote address are redundant. */
export function pairKey(transportId: number, remoteAddress: string, remotePort: number): string {
  // Flat, like addressKey (lib/transport/address.ts).
  return [transportId, '>', remoteAddress, '|', remotePort].join('');
}

/** Whether `key` is pairKey(transportId, remoteAddress, remotePort), read in place (see isAddressKey). */
export function isPairKey(key: string, transportId: number, remoteAddress: string, remotePort: number): boolean {
  let digits = 1;
  for (let x = transportId; x >= 10; x = Math.floor(x / 10)) digits++;
  if (key.charCodeAt(digits) !== 62) return false;
  for (let i = digits - 1, x = transportId; i >= 0; i--, x = Math.floor(x / 10)) if (key.charCodeAt(i) !== 48 + (x % 10)) return false;
  return isAddressKey(key, remoteAddress, remotePort, digits + 1);
}

export function newPair(
  id: number,
  generation: number,
  local: LocalCand,
  remote: RemoteCand,
  controlling: boolean,
): Pair {
  return {
    id,
    component: local.c.component,
    generation,
    localId: local.id,
    remoteId: remote.id,
    localType: local.c.type,
    remoteType: remote.c.type,
    key: pairKey(local.transportId, remote.c.address, remote.c.port),
    foundation: [local.c.foundation, ':', remote.c.foundation].join(''),
    priority: priorityFor(local.c.priority, remote.c.priority, controlling),
    state: 'frozen',
    inChecklist: true,
    valid: false,
    nominated: false,
    nominateOnSuccess: false,
    nominating: false,
    nominationValue: undefined,
    validPairId: undefined,
    txKey: undefined,
    counters: newCounters(),
  };
}

/** Ordering by priority, highest first (§6.1.2.5). */
export function byPriorityDesc(a: Pair, b: Pair): number {
  return a.priority > b.priority ? -1 : a.priority < b.priority ? 1 : 0;
}

/** For logs: `host:127.0.0.1:5000 -> srflx:203.0.113.4:6000 (succeeded,nominated)`. */
export function describePair(p: Pair, local: LocalCand | undefined, remote: RemoteCand | undefined): string {
  const l = local ? `${local.c.type}:${formatAddress(local.c.address, local.c.port)}` : '?';
  const r = remote ? `${remote.c.type}:${formatAddress(remote.c.address, remote.c.port)}` : '?';
  return `${l} -> ${r} (${p.state}${p.nominated ? ',nominated' : ''})`;
}
