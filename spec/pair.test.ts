import t from 'tap';
import type { Candidate } from '../lib/candidate.js';
import { CandidatePair, byPriorityDesc, pairKey, pairPriority } from '../lib/pair.js';

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
t.test('CandidatePair: both agents agree on the priority (§6.1.2.3)', async (t) => {
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
    const onA = new CandidatePair(aCand, bCand, true);
    const onB = new CandidatePair(bCand, aCand, false);
    t.equal(onA.priority, onB.priority, `A=${a} controlling, B=${b} controlled: same priority`);
    t.equal(onA.priority, pairPriority(a, b), 'which is G=A, D=B');
    // And the other way round when B controls.
    const onA2 = new CandidatePair(aCand, bCand, false);
    const onB2 = new CandidatePair(bCand, aCand, true);
    t.equal(onA2.priority, onB2.priority, 'roles swapped: still equal');
    t.equal(onA2.priority, pairPriority(b, a), 'which is G=B, D=A');
  }
});

t.test('CandidatePair: fields and updatePriority on role change (§6.1.2.3, §7.3.1.1)', async (t) => {
  const local = cand('10.0.0.1', 1000, 100, 'L');
  const remote = cand('10.0.0.2', 2000, 50, 'R');
  const p = new CandidatePair(local, remote, true);
  t.equal(p.state, 'frozen', 'a new pair starts Frozen (§6.1.2.6 step 1)');
  t.equal(p.foundation, 'L:R', 'pair foundation joins local and remote foundations');
  t.equal(p.component, 1);
  t.equal(p.valid, false);
  t.equal(p.nominated, false);
  // Controlling: G = 100, D = 50 → 2^32*50 + 200 + 1.
  t.equal(p.priority, 50n * 4294967296n + 201n, 'controlling view');
  p.updatePriority(false);
  // Controlled: G = 50 (remote), D = 100 → 2^32*50 + 200 + 0.
  t.equal(p.priority, 50n * 4294967296n + 200n, 'after becoming controlled the tie bit is gone');
  p.updatePriority(true);
  t.equal(p.priority, 50n * 4294967296n + 201n, 'and back');

  // The pair key uses the local base (§6.1.2.4).
  const srflxLocal: Candidate = {
    type: 'srflx', transport: 'udp', foundation: 'S', component: 1, priority: 40,
    address: '203.0.113.5', port: 6000, base: { address: '10.0.0.1', port: 1000 },
  };
  const q = new CandidatePair(srflxLocal, remote, true);
  t.equal(q.key, p.key, 'same base and remote → same key as the host pair');
  t.equal(q.key, pairKey({ address: '10.0.0.1', port: 1000 }, { address: '10.0.0.2', port: 2000 }));
  t.not(pairKey({ address: '10.0.0.1', port: 1000 }, { address: '10.0.0.2', port: 2000 }),
    pairKey({ address: '10.0.0.1', port: 100 }, { address: '0.0.0.2', port: 2000 }), 'no ambiguity between address and port');
  t.not(pairKey({ address: '::1', port: 1000 }, { address: '::2', port: 2000 }),
    pairKey({ address: '::1', port: 1000 }, { address: '::2', port: 200 }), 'IPv6 ports distinct');

  // replaceRemote: foundation and priority follow the new remote.
  const signalled = cand('10.0.0.2', 2000, 300, 'R2');
  p.replaceRemote(signalled, true);
  t.equal(p.foundation, 'L:R2', 'foundation updated');
  t.equal(p.priority, 100n * 4294967296n + 600n, 'priority recomputed: MIN 100, MAX 300, G<D');
});

// §6.1.2.5: the checklist is ordered by decreasing pair priority.
t.test('byPriorityDesc orders highest first (§6.1.2.5)', async (t) => {
  const r = cand('10.0.0.9', 9, 1000);
  const p1 = new CandidatePair(cand('10.0.0.1', 1, 10), r, true); // MIN 10
  const p2 = new CandidatePair(cand('10.0.0.2', 2, 5000), r, true); // MIN 1000, MAX 5000
  const p3 = new CandidatePair(cand('10.0.0.3', 3, 1000), r, true); // MIN 1000, MAX 1000
  const p4 = new CandidatePair(cand('10.0.0.4', 4, 999), r, true); // MIN 999
  const sorted = [p1, p3, p4, p2].sort(byPriorityDesc);
  t.strictSame(sorted.map((p) => p.local.port), [2, 3, 4, 1], 'by MIN, then MAX');
  t.equal(byPriorityDesc(p2, p2), 0, 'equal → 0');
  t.ok(byPriorityDesc(p2, p1) < 0, 'higher first');
  t.ok(byPriorityDesc(p1, p2) > 0, 'lower after');
  // Pairs whose priorities differ only beyond 2^53 precision are still ordered.
  const x = new CandidatePair(cand('10.0.0.1', 1, 2130706431), cand('10.0.0.2', 2, 1694498815), true);
  const y = new CandidatePair(cand('10.0.0.1', 1, 1694498815), cand('10.0.0.2', 2, 2130706431), true);
  t.strictSame([y, x].sort(byPriorityDesc), [x, y], 'tie bit decides above 2^53');
});
