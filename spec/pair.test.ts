import t from 'tap';
import type { Candidate } from '../lib/core/candidate.js';
import { byPriorityDesc, describePair, isPairKey, newPair, pairKey, pairPriority, priorityFor } from '../lib/core/pair.js';
import { addressKey, isAddressKey } from '../lib/transport/address.js';
import type { LocalCand, RemoteCand } from '../lib/core/state.js';
import { pairOf } from './support/core-fixtures.js';

function cand(address: string, port: number, priority: number, foundation = '1', component = 1): Candidate {
  return { type: 'host', transport: 'udp', foundation, component, priority, address, port };
}

// RFC 8445 §6.1.2.3: pair priority = 2^32*MIN(G,D) + 2*MAX(G,D) + (G>D?1:0),
// G = controlling agent's candidate priority, D = controlled agent's.
t.test('pairPriority: exact 64-bit values (§6.1.2.3)', async (t) => {
  t.equal(typeof pairPriority(1, 2), 'bigint', 'a bigint');
  t.equal(pairPriority(0, 0), 0n, 'G = D = 0');
  t.equal(pairPriority(1, 1), 4294967296n + 2n, 'G = D = 1: 2^32 + 2, no tie bit');
  t.equal(pairPriority(2, 1), 4294967296n + 4n + 1n, 'G = 2 > D = 1: 2^32*1 + 2*2 + 1');
  t.equal(pairPriority(1, 2), 4294967296n + 4n, 'G = 1 < D = 2: 2^32*1 + 2*2 + 0');
  // Host (2130706431) vs srflx (1694498815): MIN = 1694498815, MAX = 2130706431.
  t.equal(pairPriority(2130706431, 1694498815), 7277816997797167103n, 'host/srflx, G > D');
  t.equal(pairPriority(2130706431, 1694498815), 1694498815n * 4294967296n + 2n * 2130706431n + 1n, 'same, by formula');
  t.equal(pairPriority(1694498815, 2130706431), 7277816997797167102n, 'srflx/host, G < D: tie bit clear');
  // G = D = 2^32 - 1: 4294967295*2^32 + 2*4294967295 = 18446744078004518910 (above 2^64 even).
  t.equal(pairPriority(4294967295, 4294967295), 18446744078004518910n, 'G = D = 2^32-1, exact');
  t.equal(pairPriority(4294967295, 4294967295), 4294967295n * 4294967296n + 2n * 4294967295n, 'same, by formula');
  t.ok(pairPriority(2130706431, 1694498815) > BigInt(Number.MAX_SAFE_INTEGER), 'realistic values exceed 2^53');
  // A double could not tell these two apart; a bigint must.
  const hi = pairPriority(2130706431, 1694498815);
  const lo = pairPriority(1694498815, 2130706431);
  t.equal(Number(hi), Number(lo), '(as doubles they would collide)');
  t.equal(hi - lo, 1n, 'as bigints they differ by exactly the tie bit');
});

t.test('pairPriority: MIN dominates, then MAX, then the G>D bit (§6.1.2.3)', async (t) => {
  t.ok(pairPriority(1000, 900) < pairPriority(901, 901), 'higher MIN wins over higher MAX');
  t.ok(pairPriority(1000, 500) > pairPriority(999, 500), 'equal MIN: higher MAX wins');
  t.ok(pairPriority(1000, 500) > pairPriority(500, 1000), 'equal MIN and MAX: G>D wins');
  t.equal(pairPriority(1000, 500) - pairPriority(500, 1000), 1n, 'by exactly 1');
});

// §6.1.2.3: both agents compute the same pair priority for the same pair: the controlling agent's
// local candidate is G on both sides.
t.test('newPair / priorityFor: both agents agree on the priority (§6.1.2.3)', async (t) => {
  const cases: Array<[number, number]> = [
    [2130706431, 1694498815],
    [1694498815, 2130706431],
    [16777215, 16777215],
    [1862270975, 2130706430],
  ];
  for (const [a, b] of cases) {
    const aCand = cand('10.0.0.1', 1000, a);
    const bCand = cand('10.0.0.2', 2000, b);
    // Agent A controlling: pair (local A, remote B). Agent B controlled: pair (local B, remote A).
    const onA = pairOf(aCand, bCand, true);
    const onB = pairOf(bCand, aCand, false);
    t.equal(onA.priority, onB.priority, `A=${a} controlling, B=${b} controlled: same priority`);
    t.equal(onA.priority, pairPriority(a, b), 'which is G=A, D=B');
    // And the other way round when B controls.
    const onA2 = pairOf(aCand, bCand, false);
    const onB2 = pairOf(bCand, aCand, true);
    t.equal(onA2.priority, onB2.priority, 'roles swapped: still equal');
    t.equal(onA2.priority, pairPriority(b, a), 'which is G=B, D=A');
    // priorityFor is the same computation from our side.
    t.equal(priorityFor(a, b, true), pairPriority(a, b), 'priorityFor controlling: local is G');
    t.equal(priorityFor(a, b, false), pairPriority(b, a), 'priorityFor controlled: remote is G');
  }
});

t.test('newPair: fields, and priorityFor on role change (§6.1.2.3, §6.1.2.6, §7.3.1.1)', async (t) => {
  const localC = cand('10.0.0.1', 1000, 100, 'L');
  const remoteC = cand('10.0.0.2', 2000, 50, 'R');
  const local: LocalCand = { id: 7, transportId: 3, c: localC };
  const remote: RemoteCand = { id: 8, c: remoteC, addedAt: 0 };
  const p = newPair(42, 5, local, remote, true);
  t.equal(p.id, 42);
  t.equal(p.generation, 5, 'generation as given');
  t.equal(p.localId, 7, 'names its local candidate by id');
  t.equal(p.remoteId, 8, 'names its remote candidate by id');
  t.equal(p.localType, 'host', 'local candidate type');
  t.equal(p.remoteType, 'host', 'remote candidate type');
  t.equal(newPair(46, 0, { ...local, c: { ...localC, type: 'relay' } }, { ...remote, c: { ...remoteC, type: 'srflx' } }, true).remoteType,
    'srflx', 'types follow the candidates');
  t.equal(p.state, 'frozen', 'a new pair starts Frozen (§6.1.2.6 step 1)');
  t.equal(p.foundation, 'L:R', 'pair foundation joins local and remote foundations');
  t.equal(p.component, 1);
  t.equal(p.inChecklist, true, 'in the checklist');
  t.equal(p.valid, false);
  t.equal(p.nominated, false);
  t.equal(p.nominating, false);
  t.equal(p.nominateOnSuccess, false);
  t.equal(p.validPairId, undefined);
  t.equal(p.txKey, undefined);
  t.equal(p.counters.requestsSent, 0, 'fresh counters');
  // Controlling: G = 100, D = 50 → 2^32*50 + 200 + 1.
  t.equal(p.priority, 50n * 4294967296n + 201n, 'controlling view');
  // Controlled: G = 50 (remote), D = 100 → 2^32*50 + 200 + 0.
  t.equal(priorityFor(localC.priority, remoteC.priority, false), 50n * 4294967296n + 200n, 'after becoming controlled the tie bit is gone');
  t.equal(newPair(43, 5, local, remote, false).priority, 50n * 4294967296n + 200n, 'a pair built controlled has it too');
  t.not(newPair(44, 5, local, remote, true).counters, p.counters, 'counters are not shared between pairs');

  // The pair key is the local base's transport and the remote address (§6.1.2.4): a local srflx candidate
  // whose base is the host's transport gives the host pair's key.
  const srflxLocal: LocalCand = {
    id: 9, transportId: 3,
    c: {
      type: 'srflx', transport: 'udp', foundation: 'S', component: 1, priority: 40,
      address: '203.0.113.5', port: 6000, base: { address: '10.0.0.1', port: 1000 },
    },
  };
  const q = newPair(45, 5, srflxLocal, remote, true);
  t.equal(q.key, p.key, 'same base transport and remote → same key as the host pair');
  t.equal(q.key, pairKey(3, '10.0.0.2', 2000));
  t.not(pairKey(3, '10.0.0.2', 2000), pairKey(4, '10.0.0.2', 2000), 'another local transport, another key');
  t.not(pairKey(1, '10.0.0.2', 2000), pairKey(1, '10.0.0.2', 2001), 'another remote port, another key');
  t.not(pairKey(1, '10.0.0.2', 2000), pairKey(1, '10.0.0.20', 200), 'no ambiguity between address and port');
  t.not(pairKey(1, '::2', 2000), pairKey(1, '::2', 200), 'IPv6 ports distinct');
  t.not(pairKey(1, '::2', 2000), pairKey(1, '::20', 200), 'IPv6: no ambiguity between address and port');
  t.not(pairKey(11, '0.0.0.2', 2000), pairKey(1, '10.0.0.2', 2000), 'no ambiguity between transport id and address');
});

t.test('describePair: both ends and the state, for logs', async (t) => {
  const local: LocalCand = { id: 1, transportId: 1, c: cand('127.0.0.1', 5000, 100) };
  const remote: RemoteCand = { id: 2, c: { ...cand('2001:db8::4', 6000, 50), type: 'srflx' }, addedAt: 0 };
  const p = newPair(3, 0, local, remote, true);
  t.equal(describePair(p, local, remote), 'host:127.0.0.1:5000 -> srflx:[2001:db8::4]:6000 (frozen)');
  p.state = 'succeeded';
  p.nominated = true;
  t.equal(describePair(p, local, remote), 'host:127.0.0.1:5000 -> srflx:[2001:db8::4]:6000 (succeeded,nominated)');
  t.equal(describePair(p, undefined, undefined), '? -> ? (succeeded,nominated)', 'unknown candidates do not throw');
});

// §6.1.2.5: the checklist is ordered by decreasing pair priority.
t.test('byPriorityDesc orders highest first (§6.1.2.5)', async (t) => {
  const r = cand('10.0.0.9', 9, 1000);
  const p1 = pairOf(cand('10.0.0.1', 1, 10), r); // MIN 10
  const p2 = pairOf(cand('10.0.0.2', 2, 5000), r); // MIN 1000, MAX 5000
  const p3 = pairOf(cand('10.0.0.3', 3, 1000), r); // MIN 1000, MAX 1000
  const p4 = pairOf(cand('10.0.0.4', 4, 999), r); // MIN 999
  const sorted = [p1, p3, p4, p2].sort(byPriorityDesc);
  t.strictSame(sorted.map((p) => p.id), [p2.id, p3.id, p4.id, p1.id], 'by MIN, then MAX');
  t.equal(byPriorityDesc(p2, p2), 0, 'equal → 0');
  t.ok(byPriorityDesc(p2, p1) < 0, 'higher first');
  t.ok(byPriorityDesc(p1, p2) > 0, 'lower after');
  // Pairs whose priorities differ only beyond 2^53 precision are still ordered.
  const x = pairOf(cand('10.0.0.1', 1, 2130706431), cand('10.0.0.2', 2, 1694498815));
  const y = pairOf(cand('10.0.0.1', 1, 1694498815), cand('10.0.0.2', 2, 2130706431));
  t.strictSame([y, x].sort(byPriorityDesc).map((p) => p.id), [x.id, y.id], 'tie bit decides above 2^53');
});

t.test('isPairKey and isAddressKey read a key in place exactly as comparing with pairKey and addressKey would', async (t) => {
  const addresses = ['10.0.0.2', '10.0.0.20', '0.0.0.2', '1.2.3.4', '::2', '::20', '2001:db8::1', '198.51.100.7'];
  const ports = [0, 1, 9, 10, 200, 2000, 20001, 65535];
  const ids = [1, 2, 9, 10, 11, 100, 12345];
  let checked = 0;
  let mismatches = 0;
  for (const id of ids) for (const a of addresses) for (const p of ports) {
    const key = pairKey(id, a, p);
    for (const id2 of [id, id + 1, Math.floor(id / 10) || 1, id * 10]) for (const a2 of addresses) for (const p2 of [p, p + 1, Math.floor(p / 10), p * 10 % 65536]) {
      checked++;
      if (isPairKey(key, id2, a2, p2) !== (key === pairKey(id2, a2, p2))) mismatches++;
      if (isAddressKey(addressKey(a, p), a2, p2) !== (addressKey(a, p) === addressKey(a2, p2))) mismatches++;
    }
  }
  t.equal(mismatches, 0, `${checked} comparisons, none different from comparing the keys`);
});
