import t from 'tap';
import {
  DEFAULT_MAX_PAIRS, addPair, canCheck, canPair, checklistPairs, enqueueTriggered, exhausted, hasWork, insertPair,
  markFailed, markSucceeded, nextPair, nominatedPair, pairById, pruneComponent, removePair, reprioritise, updateStates,
  validPairs,
} from '../lib/core/checklist.js';
import type { Pair, StreamData } from '../lib/core/state.js';
import { Rig, cand } from './support/core-fixtures.js';

const states = (ps: readonly Pair[]) => ps.map((p) => p.state);

/** Foundation → number of Waiting pairs, over the set. */
function waitingPerFoundation(set: readonly StreamData[]): Record<string, number> {
  const m: Record<string, number> = {};
  for (const s of set) for (const p of checklistPairs(s)) if (p.state === 'waiting') m[p.foundation] = (m[p.foundation] ?? 0) + 1;
  return m;
}

// RFC 8445 §6.1.2.2: pair only same component, same transport, same address family;
// link-local IPv6 only with link-local IPv6.
t.test('pair formation rules (§6.1.2.2)', async (t) => {
  const rig = new Rig();
  const s = rig.stream([1, 2]);
  const l4 = cand('10.0.0.1', 1000);
  const formed = (l: ReturnType<typeof cand>, r: ReturnType<typeof cand>) => rig.form(s, l, r)?.added !== undefined;
  t.ok(formed(l4, cand('10.0.0.2', 2000)), 'v4 host ↔ v4 host, same component and transport');
  t.equal(rig.form(s, l4, cand('10.0.0.2', 2001, { component: 2 })), undefined, 'component 1 ↔ component 2: no pair');
  t.equal(rig.form(s, l4, cand('10.0.0.2', 2002, { transport: 'tcp' })), undefined, 'udp ↔ tcp: no pair');
  t.equal(rig.form(s, l4, cand('2001:db8::2', 2003)), undefined, 'v4 ↔ v6: no pair');
  t.equal(rig.form(s, cand('2001:db8::1', 1001), cand('10.0.0.2', 2004)), undefined, 'v6 ↔ v4: no pair');
  t.ok(formed(cand('2001:db8::1', 1001), cand('2001:db8::2', 2005)), 'v6 global ↔ v6 global');
  t.equal(rig.form(s, cand('fe80::1', 1002), cand('2001:db8::2', 2006)), undefined, 'link-local ↔ global: no pair');
  t.equal(rig.form(s, cand('2001:db8::1', 1001), cand('fe80::2', 2007)), undefined, 'global ↔ link-local: no pair');
  t.equal(rig.form(s, cand('FE80::1', 1003), cand('2001:db8::2', 2008)), undefined, 'upper-case link-local too');
  t.equal(rig.form(s, cand('febf::1', 1004), cand('2001:db8::2', 2009)), undefined, 'febf:: is inside fe80::/10');
  t.ok(formed(cand('fe80::1', 1002), cand('fe80::2', 2010)), 'link-local ↔ link-local');
  t.ok(formed(cand('fec0::1', 1005), cand('2001:db8::2', 2011)), 'fec0:: is not link-local');
  t.ok(formed(cand('10.0.0.1', 1000, { component: 2 }), cand('10.0.0.2', 2012, { component: 2 })), 'component 2 ↔ component 2');
  t.ok(formed(cand('198.51.100.1', 3000, { type: 'relay' }), cand('10.0.0.2', 2013)), 'local relay is paired');
  t.ok(formed(l4, cand('203.0.113.9', 2014, { type: 'srflx' })), 'remote srflx is paired');
  t.ok(formed(l4, cand('203.0.113.9', 2015, { type: 'prflx' })), 'remote prflx is paired');
  t.equal(checklistPairs(s).length, 8, 'exactly the eight valid pairs are in the checklist');
  for (const p of checklistPairs(s)) {
    const c = s.components.get(p.component)!;
    t.ok(c.local.some((l) => l.id === p.localId) && c.remote.some((r) => r.id === p.remoteId), `${rig.label(s, p)}: both candidates of its component`);
  }

  // canPair itself.
  t.equal(canPair(cand('10.0.0.1', 1), cand('10.0.0.2', 2)), true);
  t.equal(canPair(cand('10.0.0.1', 1), cand('::ffff:10.0.0.2', 2)), false, 'IPv4-mapped IPv6 is IPv6 here');
  t.equal(canPair(cand('fe80::1', 1), cand('fe80:0:0:0:0:0:0:2', 2)), true, 'link-local in any spelling');
  // fe80::/10 is fe80:: to febf::; a three-digit first group such as fe8 is 0fe8, outside it.
  // (Found by this test: isLinkLocal matched /^fe[89ab]/ on the text.)
  t.equal(canPair(cand('fe8::1', 1), cand('2001:db8::2', 2)), true, '0fe8::1 is not link-local');
  t.equal(canPair(cand('2001:db8::1', 1), cand('feb::2', 2)), true, '0feb::2 is not link-local either');
  t.equal(canPair(cand('fe80::1', 1), cand('febf:ffff::2', 2)), true, 'febf:ffff:: is the top of fe80::/10: both link-local');
  t.equal(canPair(cand('fec0::1', 1), cand('fe80::2', 2)), false, 'fec0:: (site-local) ↔ fe80:: link-local: no pair');
});

// RFC 8445 §6.1.2.4: a local srflx candidate is replaced by its base; pairs with the same local base
// and the same remote candidate are redundant. Local prflx candidates are only in valid pairs (§7.2.5.3.1).
t.test('local srflx/prflx and redundancy pruning (§6.1.2.4)', async (t) => {
  const rig = new Rig();
  const s = rig.stream([1]);
  const host = cand('10.0.0.1', 1000, { priority: 2130706431, foundation: 'h' });
  const srflx = cand('203.0.113.1', 40000, { type: 'srflx', priority: 1694498815, foundation: 's', base: { address: '10.0.0.1', port: 1000 } });
  const prflx = cand('203.0.113.1', 40001, { type: 'prflx', priority: 1862270975, foundation: 'p', base: { address: '10.0.0.1', port: 1000 } });
  const remote = cand('10.0.0.2', 2000, { priority: 2130706431, foundation: 'r' });
  const hp = rig.add(s, host, remote);
  t.equal(rig.form(s, srflx, remote), undefined, 'local srflx with the same base: never paired (canPair)');
  t.equal(rig.form(s, srflx, cand('10.0.0.3', 2001)), undefined, 'local srflx never paired, even with a new remote');
  t.equal(rig.form(s, prflx, remote), undefined, 'local prflx not paired');
  // Replaced by its base (same transport), the srflx pair is the host pair: addPair itself prunes it.
  const viaBase = rig.build(s, srflx, remote);
  t.equal(viaBase.key, hp.key, 'the srflx pair has the host pair\'s key (base transport, remote address)');
  t.strictSame(addPair(rig.set, s, viaBase, rig.remote(s, remote), srflx.priority, true, DEFAULT_MAX_PAIRS),
    { added: undefined, reason: 'redundant' }, 'addPair: redundant with the higher-priority host pair');
  t.strictSame(rig.form(s, host, remote), { added: undefined, reason: 'redundant' }, 'the same pair twice: pruned');
  const before = { priority: hp.priority, remoteId: hp.remoteId, foundation: hp.foundation };
  t.strictSame(rig.form(s, host, cand('10.0.0.2', 2000, { priority: 5, foundation: 'r2' })), { added: undefined, reason: 'redundant' },
    'same base, same remote transport address, lower priority: pruned');
  t.strictSame({ priority: hp.priority, remoteId: hp.remoteId, foundation: hp.foundation }, before, 'and the kept pair is untouched');
  t.equal(checklistPairs(s).length, 1, 'one pair');
  t.equal(checklistPairs(s)[0], hp, 'the host pair');
  t.equal(rig.get(s, host, { address: '10.0.0.2', port: 2000 }), hp, 'pairByKey by base and remote');
  t.equal(rig.get(s, host, { address: '10.0.0.2', port: 2001 }), undefined, 'other port: none');
  t.ok(rig.add(s, host, cand('10.0.0.2', 2001)), 'same base, different remote port: not redundant');
  t.ok(rig.add(s, cand('10.0.0.1', 1001), remote), 'different local port (another base), same remote: not redundant');
});

// §6.1.2.4: "... the agent MUST prune the list. This is done by removing a candidate pair if it is redundant with
// a higher-priority candidate pair in the same checklist." The higher-priority one is the one retained,
// whatever the order the candidates arrived in (trickle, RFC 8838, makes any order possible).
t.test('redundancy: the higher-priority pair is the one kept (§6.1.2.4)', async (t) => {
  const rig = new Rig();
  const s = rig.stream([1]);
  const host = cand('10.0.0.1', 1000, { priority: 2130706431, foundation: 'h' });
  // The remote signals the same transport address twice: first as srflx (lower), then as host (higher).
  const rs = cand('198.51.100.7', 5000, { type: 'srflx', priority: 1694498815, foundation: 'rs' });
  const rh = cand('198.51.100.7', 5000, { type: 'host', priority: 2130706431, foundation: 'rh' });
  const first = rig.add(s, host, rs);
  rig.form(s, host, rh);
  const higher = (2130706431n << 32n) + 2n * 2130706431n;
  t.ok(checklistPairs(s).some((p) => p.priority === higher), 'the higher-priority pair (remote host) is in the checklist');
  t.equal(checklistPairs(s)[0]?.priority, higher, 'and it heads the checklist');
  const viaGet = rig.get(s, host, { address: '198.51.100.7', port: 5000 });
  t.equal(viaGet?.priority, higher, 'pairByKey by base and remote address finds the higher-priority pair');
  // The unchecked pair took the better remote candidate in place: remote, foundation and priority follow it.
  t.equal(viaGet, first, 'the unchecked pair was updated in place');
  t.equal(first.remoteId, rig.remote(s, rh).id, 'it now names the remote host candidate');
  t.equal(first.foundation, 'h:rh', 'foundation follows the new remote');
  t.equal(first.remoteType, 'host', 'and its type');
  t.equal(checklistPairs(s).length, 1, 'no second pair for the same key');

  // A pair already checked is kept as it is (its check result is about that address).
  const s2 = rig.stream([1]);
  const checked = rig.add(s2, host, rs);
  checked.state = 'succeeded';
  t.strictSame(rig.form(s2, host, rh), { added: undefined, reason: 'redundant' }, 'higher-priority duplicate of a checked pair');
  t.equal(checked.foundation, 'h:rs', 'the checked pair keeps its remote');
  t.equal(checked.state, 'succeeded');
});

// §6.1.2.5: pairs ordered by decreasing priority.
t.test('checklist ordered by pair priority (§6.1.2.5)', async (t) => {
  const rig = new Rig();
  const s = rig.stream([1]);
  const L1 = cand('10.0.0.1', 1, { priority: 1000, foundation: 'a' });
  const L2 = cand('10.0.0.2', 2, { priority: 500, foundation: 'b' });
  const R1 = cand('10.0.1.1', 11, { priority: 900, foundation: 'x' });
  const R2 = cand('10.0.1.2', 12, { priority: 400, foundation: 'y' });
  // Controlling: L1R1 MIN 900; L2R1 MIN 500; L1R2 MIN 400 MAX 1000; L2R2 MIN 400 MAX 500.
  rig.add(s, L2, R2);
  rig.add(s, L1, R2);
  rig.add(s, L2, R1);
  rig.add(s, L1, R1);
  const cl = checklistPairs(s);
  t.strictSame(rig.labels(s, cl), ['1>11', '2>11', '1>12', '2>12'], 'by MIN, then by MAX');
  for (let i = 1; i < cl.length; i++) t.ok(cl[i - 1]!.priority > cl[i]!.priority, `pair ${i - 1} above pair ${i}`);
  t.equal(DEFAULT_MAX_PAIRS, 100, 'default cap is libnice\'s 100');
  // insertPair keeps the order for a pair built elsewhere (a peer-reflexive one).
  const mid = rig.build(s, cand('10.0.0.3', 3, { priority: 700 }), R1); // MIN 700
  insertPair(s, mid);
  t.strictSame(rig.labels(s, s.pairs), ['1>11', '3>11', '2>11', '1>12', '2>12'], 'insertPair in priority order');
});

// §6.1.2.5: a limit on the number of pairs; the lowest-priority pairs go first.
t.test('maxPairs cap (§6.1.2.5; changed: a Failed pair is evicted first)', async (t) => {
  const rig = new Rig({ maxPairs: 3 });
  const s = rig.stream([1]);
  const local = cand('10.0.0.1', 1, { priority: 100000 });
  const rs = new Map<number, ReturnType<typeof cand>>();
  const r = (port: number, priority: number) => {
    if (!rs.has(port)) rs.set(port, cand('10.0.1.1', port, { priority, foundation: `f${port}` }));
    return rs.get(port)!;
  };
  const byPort = (port: number) => rig.get(s, local, { address: '10.0.1.1', port });
  rig.add(s, local, r(10, 300));
  rig.add(s, local, r(20, 200));
  const p30 = rig.add(s, local, r(30, 100));
  t.equal(checklistPairs(s).length, 3);
  t.strictSame(rig.form(s, local, r(40, 50)), { added: undefined, reason: 'full' }, 'a newcomer below every pair is refused');
  t.strictSame(rig.labels(s, checklistPairs(s)), ['1>10', '1>20', '1>30'], 'list unchanged');
  t.equal(byPort(40), undefined, 'refused pair not in the checklist');

  const r25 = rig.form(s, local, r(25, 150));
  t.ok(r25?.added, 'a newcomer above the lowest Frozen/Waiting pair is accepted');
  t.equal(r25?.added && r25.evicted, p30, 'the lowest pair is the one evicted');
  t.strictSame(rig.labels(s, checklistPairs(s)), ['1>10', '1>20', '1>25'], 'the lowest pair was evicted');
  t.equal(checklistPairs(s).length, 3, 'still at the cap');
  t.equal(byPort(30), undefined, 'evicted pair no longer found');
  t.strictSame(rig.form(s, local, r(30, 100)), { added: undefined, reason: 'full' }, 'the evicted pair, if offered again, is now the lowest and refused');

  // Pairs In-Progress or Succeeded are not evicted.
  byPort(25)!.state = 'in-progress';
  const p20 = byPort(20)!;
  const r15 = rig.form(s, local, r(15, 250));
  t.ok(r15?.added, 'newcomer 250 accepted: evicts the lowest *unchecked* pair (200)');
  t.equal(r15?.added && r15.evicted, p20, 'the pair of 200');
  t.strictSame(rig.labels(s, checklistPairs(s)), ['1>10', '1>15', '1>25'], '200 evicted, in-progress 150 kept');
  byPort(15)!.state = 'succeeded';
  const p10 = byPort(10)!;
  p10.state = 'failed';
  // Changed on purpose: a Failed pair gives way (it will never be checked again) — the cap was "nothing evictable".
  const r5 = rig.form(s, local, r(5, 400));
  t.ok(r5?.added, 'changed: the Failed pair is evicted for the newcomer');
  t.equal(r5?.added && r5.evicted, p10, 'the Failed pair');
  t.strictSame(rig.labels(s, checklistPairs(s)), ['1>5', '1>15', '1>25']);
  byPort(5)!.state = 'in-progress';
  t.strictSame(rig.form(s, local, r(1, 500)), { added: undefined, reason: 'full' },
    'nothing evictable (In-Progress, Succeeded, In-Progress): even a higher newcomer is refused');
  t.equal(checklistPairs(s).length, 3, 'never above the cap');
});

// New: §6.1.2.5 with failed-pair eviction.
t.test('new: a full checklist set evicts a Failed pair for a newcomer; one full of Failed pairs still accepts', async (t) => {
  const rig = new Rig({ maxPairs: 3 });
  const s = rig.stream([1]);
  const local = cand('10.0.0.1', 1, { priority: 100000 });
  const r = (port: number, priority: number) => cand('10.0.1.1', port, { priority, foundation: `f${port}` });
  const high = rig.add(s, local, r(10, 900));
  const mid = rig.add(s, local, r(20, 500));
  const low = rig.add(s, local, r(30, 100));
  high.state = 'failed';
  // The newcomer ranks below the unchecked pair of 100: only the Failed pair (of the highest priority!) can go.
  const a = rig.form(s, local, r(40, 50));
  t.ok(a?.added, 'a newcomer below every pair is accepted when a pair has Failed');
  t.equal(a?.added && a.evicted, high, 'the Failed pair is evicted, though of the highest priority');
  t.ok(checklistPairs(s).includes(low), 'the unchecked low pair stays');
  t.notOk(s.pairs.includes(high), 'the evicted pair is gone from the stream');
  // A Failed pair goes before an unchecked lower one, even when the newcomer ranks above that one.
  mid.state = 'failed';
  const b = rig.form(s, local, r(50, 800));
  t.equal(b?.added && b.evicted, mid, 'Failed first, before the lowest unchecked pair');
  t.ok(checklistPairs(s).includes(a!.added!), 'the unchecked lowest pair stays');

  // A set full of Failed pairs: every newcomer gets in, the lowest Failed pair going first.
  const rig2 = new Rig({ maxPairs: 3 });
  const s2 = rig2.stream([1]);
  const f = [rig2.add(s2, local, r(10, 900)), rig2.add(s2, local, r(20, 500)), rig2.add(s2, local, r(30, 100))];
  for (const p of f) p.state = 'failed';
  t.ok(exhausted(s2, 1), 'component exhausted with only Failed pairs');
  const n1 = rig2.form(s2, local, r(40, 1));
  t.ok(n1?.added, 'a checklist of Failed pairs accepts a new pair, even the lowest');
  t.equal(n1?.added && n1.evicted, f[2], 'the lowest Failed pair made room');
  t.equal(n1?.added?.state, 'waiting', 'and the new pair is Waiting (its foundation is new)');
  t.notOk(exhausted(s2, 1), 'so the component has something to check again');
  t.equal(checklistPairs(s2).length, 3, 'at the cap');
  const n2 = rig2.form(s2, local, r(50, 2));
  t.equal(n2?.added && n2.evicted, f[1], 'the next Failed pair');
  const n3 = rig2.form(s2, local, r(60, 3));
  t.equal(n3?.added && n3.evicted, f[0], 'and the last');
  t.strictSame(rig2.form(s2, local, r(70, 0)), { added: undefined, reason: 'full' }, 'none Failed left, newcomer lowest: refused');

});

// New: the cap is over the whole checklist set (§6.1.2.5: "the agent SHOULD limit the total number of
// connectivity checks the agent performs across all checklists in the checklist set").
t.test('new: maxPairs counts the pairs of every stream of the set', async (t) => {
  const rig = new Rig({ maxPairs: 3 });
  const s1 = rig.stream([1]);
  const s2 = rig.stream([1]);
  const local = cand('10.0.0.1', 1, { priority: 100000 });
  const r = (port: number, priority: number) => cand('10.0.1.1', port, { priority, foundation: `f${port}` });
  const a = rig.add(s1, local, r(10, 300));
  const b = rig.add(s1, local, r(20, 100));
  rig.add(s2, local, r(30, 200));
  t.strictSame(rig.form(s2, local, r(40, 50)), { added: undefined, reason: 'full' }, 'stream 2 has one pair, but the set has three');
  t.strictSame(rig.form(s1, local, r(50, 60)), { added: undefined, reason: 'full' }, 'and stream 1 too');
  const c = rig.form(s2, local, r(60, 250));
  t.ok(c?.added, 'a higher newcomer in stream 2 gets in');
  t.equal(c?.added && c.evicted, b, 'by evicting the lowest unchecked pair of the set, in stream 1');
  t.notOk(s1.pairs.includes(b), 'removed from stream 1');
  t.equal(checklistPairs(s1).length + checklistPairs(s2).length, 3, 'the set is at the cap');
  t.strictSame(rig.labels(s1, checklistPairs(s1)), ['1>10']);
  t.strictSame(rig.labels(s2, checklistPairs(s2)), ['1>60', '1>30']);
  a.state = 'failed';
  const d = rig.form(s2, local, r(70, 1));
  t.equal(d?.added && d.evicted, a, 'a Failed pair of another stream makes room too');
  // Pairs outside the current checklists do not count: a valid-only pair, an earlier generation's pair.
  const rig2 = new Rig({ maxPairs: 2 });
  const t1 = rig2.stream([1]);
  const t2 = rig2.stream([1]);
  const old = rig2.add(t1, local, r(10, 300));
  const validOnly = rig2.build(t2, cand('10.0.0.9', 9, { type: 'prflx' }), r(20, 300));
  validOnly.inChecklist = false;
  insertPair(t2, validOnly);
  t1.generation++; // an ICE restart: `old` (kept, say, as the selected pair) is not in the new checklist
  t.ok(rig2.form(t1, local, r(30, 10))?.added, 'with an old-generation pair and a valid-only pair, the set still has room');
  t.ok(rig2.form(t2, local, r(40, 10))?.added, 'for two');
  t.strictSame(rig2.form(t2, local, r(50, 5)), { added: undefined, reason: 'full' }, 'then it is full');
  t.ok(t1.pairs.includes(old) && t2.pairs.includes(validOnly), 'and those were never evicted');
});

// §6.1.2.6: for each foundation, exactly one pair is Waiting, the others Frozen, across the whole checklist set
// (first checklist, lowest component, highest priority).
t.test('initial states across a checklist set (§6.1.2.6)', async (t) => {
  const rig = new Rig();
  const s1 = rig.stream([1, 2]);
  const s2 = rig.stream([1]);
  const la = (port: number, component = 1) => cand('10.0.0.1', port, { foundation: 'a', component, priority: 2000 });
  const lb = (port: number, component = 1) => cand('10.0.0.2', port, { foundation: 'b', component, priority: 1500 });
  const rx = (port: number, component = 1) => cand('10.0.1.1', port, { foundation: 'x', component, priority: 1000 });
  const a1 = rig.add(s1, la(1), rx(11));
  const b1 = rig.add(s1, lb(2), rx(11));
  const a2 = rig.add(s1, la(3, 2), rx(13, 2));
  const b2 = rig.add(s1, lb(4, 2), rx(13, 2));
  const a3 = rig.add(s2, la(5), rx(15));
  const c3 = rig.add(s2, cand('10.0.0.3', 6, { foundation: 'c' }), rx(15));
  t.equal(a1.state, 'waiting', "first 'a:x' pair (stream 1, component 1) Waiting");
  t.equal(b1.state, 'waiting', "first 'b:x' pair Waiting");
  t.equal(a2.state, 'frozen', "'a:x' component 2: Frozen");
  t.equal(b2.state, 'frozen', "'b:x' component 2: Frozen");
  t.equal(a3.state, 'frozen', "'a:x' in the second checklist: Frozen (the set shares foundations)");
  t.equal(c3.state, 'waiting', "new foundation 'c:x' in the second checklist: Waiting");
  t.strictSame(waitingPerFoundation(rig.set), { 'a:x': 1, 'b:x': 1, 'c:x': 1 }, 'exactly one Waiting pair per foundation');
  // A pair added and not yet through updateStates is Frozen (§6.1.2.6 step 1).
  const fresh = rig.build(s2, cand('10.0.0.4', 7, { foundation: 'd' }), rx(15));
  t.equal(fresh.state, 'frozen', 'newPair: Frozen until updateStates');
});

// Changed on purpose: initial states do not depend on the order pairs arrived in (the old agent made the
// first pair of a foundation to arrive Waiting). The first pair by stream order, lowest component, highest
// priority is the one unfrozen.
t.test('changed: initial states by stream order, component and priority, not arrival order (§6.1.2.6)', async (t) => {
  const rig = new Rig();
  const s1 = rig.stream([1, 2]);
  const s2 = rig.stream([1]);
  const L = (port: number, component = 1, priority = 1000) => cand('10.0.0.1', port, { foundation: 'a', component, priority });
  const R = (port: number, component = 1) => cand('10.0.1.1', port, { foundation: 'x', component, priority: 1000 });
  // Built in the worst order (stream 2 first, then component 2, then the low pair), states computed once.
  const inS2 = rig.build(s2, L(1), R(11));
  const comp2 = rig.build(s1, L(2, 2, 9000), R(12, 2));
  const low = rig.build(s1, L(3, 1, 500), R(13));
  const high = rig.build(s1, L(4, 1, 900), R(14));
  for (const [s, p] of [[s2, inS2], [s1, comp2], [s1, low], [s1, high]] as const) {
    const r = addPair(rig.set, s, p, s.components.get(p.component)!.remote.find((x) => x.id === p.remoteId)!, 1000, true, 100);
    t.ok(r.added, 'added');
  }
  rig.update();
  t.strictSame(states([high, low, comp2, inS2]), ['waiting', 'frozen', 'frozen', 'frozen'],
    'stream 1, component 1, highest priority: Waiting; the rest of the foundation Frozen');
});

// New (1): the usual case of the above — two remote candidates of one foundation (one remote base, two
// servers' worth of srflx, say) signalled low priority first, the agent forming pairs as they come.
t.test('new: two remote candidates of one foundation, low priority first, leave the higher pair Waiting', async (t) => {
  const local = cand('10.0.0.1', 1, { foundation: 'L', priority: 2130706431 });
  const lowR = cand('198.51.100.1', 11, { foundation: 'r', priority: 100 });
  const highR = cand('198.51.100.2', 12, { foundation: 'r', priority: 900 });

  // States computed once both pairs are in.
  const rig = new Rig();
  const s = rig.stream([1]);
  const lowP = rig.build(s, local, lowR);
  const highP = rig.build(s, local, highR);
  addPair(rig.set, s, lowP, rig.remote(s, lowR), local.priority, true, 100);
  addPair(rig.set, s, highP, rig.remote(s, highR), local.priority, true, 100);
  rig.update();
  t.equal(highP.state, 'waiting', 'batch: the higher-priority pair is Waiting');
  t.equal(lowP.state, 'frozen', 'batch: the lower one Frozen');

  // As the core does (lib/core/remote.ts addRemote → formPair → pairsAdded → updateStates after every pair,
  // even for candidates handed over in one call): same outcome expected.
  const rig2 = new Rig();
  const s2 = rig2.stream([1]);
  const lowP2 = rig2.add(s2, local, lowR);
  t.equal(lowP2.state, 'waiting', 'alone, the low pair is Waiting');
  const highP2 = rig2.add(s2, local, highR);
  // (Found by this test: updateStates never re-froze an unchecked Waiting pair, so the first to arrive stayed Waiting.)
  t.equal(highP2.state, 'waiting', 'incremental: the higher-priority pair is Waiting');
  t.equal(lowP2.state, 'frozen', 'incremental: the lower one Frozen again (it was never checked)');
  // Once a check is under way it is not taken back.
  const rig3 = new Rig();
  const s3 = rig3.stream([1]);
  const lowP3 = rig3.add(s3, local, lowR);
  lowP3.state = 'in-progress';
  const highP3 = rig3.add(s3, local, highR);
  t.strictSame(states([lowP3, highP3]), ['in-progress', 'frozen'], 'the low pair already In-Progress: the high one waits Frozen');
  t.equal(waitingPerFoundation(rig2.set)['L:r'], 1, 'either way one Waiting pair for the foundation');
});

// Foundations are compared as whole strings: '1:1' and '1:11' (and '11:1') are different foundations.
t.test("initial states: foundation '1:1' does not freeze '1:11' (§6.1.2.6)", async (t) => {
  const rig = new Rig();
  const s1 = rig.stream([1]);
  const s2 = rig.stream([1]);
  const p11 = rig.add(s1, cand('10.0.0.1', 1, { foundation: '1' }), cand('10.0.1.1', 11, { foundation: '1' }));
  const p1_11 = rig.add(s2, cand('10.0.0.1', 2, { foundation: '1' }), cand('10.0.1.1', 12, { foundation: '11' }));
  const p11_1 = rig.add(s2, cand('10.0.0.1', 3, { foundation: '11' }), cand('10.0.1.1', 12, { foundation: '1' }));
  const p1_1b = rig.add(s2, cand('10.0.0.1', 4, { foundation: '1' }), cand('10.0.1.1', 14, { foundation: '1' }));
  t.equal(p11.foundation, '1:1');
  t.equal(p1_11.foundation, '1:11');
  t.equal(p11_1.foundation, '11:1');
  t.equal(p11.state, 'waiting');
  t.equal(p1_11.state, 'waiting', "'1:11' is not '1:1'");
  t.equal(p11_1.state, 'waiting', "'11:1' is not '1:1'");
  t.equal(p1_1b.state, 'frozen', "a second '1:1' in the other checklist is Frozen");
});

// Changed on purpose / new (2): only streams that can check (remote credentials known) take part in freezing.
t.test('new: a stream without remote credentials does not keep another stream\'s pairs Frozen (§6.1.2.6)', async (t) => {
  const rig = new Rig();
  const waitingForPeer = rig.stream([1], { remote: null });
  const ready = rig.stream([1]);
  t.equal(canCheck(waitingForPeer), false, 'no remote credentials: cannot check');
  t.equal(canCheck(ready), true);
  const L = (port: number) => cand('10.0.0.1', port, { foundation: 'F' });
  const R = (port: number) => cand('10.0.1.1', port, { foundation: 'x' });
  const idle = rig.add(waitingForPeer, L(1), R(11));
  t.equal(idle.state, 'frozen', 'a stream that cannot check: its own pairs are not unfrozen');
  idle.state = 'waiting'; // e.g. a triggered check queued before the credentials came (check.ts triggerNow)
  const other = rig.build(ready, L(2), R(12));
  insertPair(ready, other);
  rig.update();
  t.equal(other.state, 'waiting', "the Waiting 'F:x' pair of the stream without credentials does not freeze it");
  // A stream restarting (waiting for the peer's new credentials) cannot check either.
  const rig2 = new Rig();
  const restarting = rig2.stream([1], { restartPending: true });
  const ready2 = rig2.stream([1]);
  t.equal(canCheck(restarting), false, 'restart pending: cannot check');
  const r1 = rig2.add(restarting, L(1), R(11));
  const r2 = rig2.add(ready2, L(2), R(12));
  t.equal(r1.state, 'frozen', 'restarting stream: not unfrozen');
  t.equal(r2.state, 'waiting', 'nor counted against the ready stream');
  // Once the credentials arrive the stream takes part, in stream order.
  const rig3 = new Rig();
  const late = rig3.stream([1], { remote: null });
  const early = rig3.stream([1]);
  const lp = rig3.add(late, L(1), R(11));
  const ep = rig3.add(early, L(2), R(12));
  t.strictSame(states([lp, ep]), ['frozen', 'waiting'], 'before its credentials');
  late.remote = { ufrag: 'abcd', pwd: 'p'.repeat(22) };
  rig3.update();
  t.strictSame(states([lp, ep]), ['waiting', 'frozen'],
    'after: stream order decides (§6.1.2.6 "the first checklist"): its pair is the Waiting one, the unchecked other Frozen again');
  // But a check under way is not overtaken: with the other stream's pair In-Progress, the late one stays Frozen.
  const rig4 = new Rig();
  const late4 = rig4.stream([1], { remote: null });
  const early4 = rig4.stream([1]);
  const lp4 = rig4.add(late4, L(1), R(11));
  const ep4 = rig4.add(early4, L(2), R(12));
  ep4.state = 'in-progress';
  late4.remote = { ufrag: 'abcd', pwd: 'p'.repeat(22) };
  rig4.update();
  t.strictSame(states([lp4, ep4]), ['frozen', 'in-progress'], "after, with 'F:x' In-Progress elsewhere: Frozen");
});

// §6.1.4.2: triggered-check queue first (FIFO, §6.1.4.1), then the highest-priority Waiting pair.
t.test('nextPair(): triggered queue, then Waiting (§6.1.4.2)', async (t) => {
  const rig = new Rig();
  const s = rig.stream([1]);
  const local = cand('10.0.0.1', 1, { priority: 100000, foundation: 'L' });
  const r = (port: number, priority: number, foundation: string) => cand('10.0.1.1', port, { priority, foundation });
  const high = rig.add(s, local, r(10, 900, 'a'));
  const mid = rig.add(s, local, r(20, 500, 'b'));
  const low = rig.add(s, local, r(30, 100, 'c'));
  t.strictSame(states([high, mid, low]), ['waiting', 'waiting', 'waiting'], 'three foundations, all Waiting');
  const notDone = () => false;

  enqueueTriggered(s, low);
  enqueueTriggered(s, mid);
  t.equal(nextPair(s, notDone), low, 'triggered queue before the higher Waiting pair');
  t.equal(nextPair(s, notDone), mid, 'FIFO: second triggered pair next');
  t.equal(s.triggered.length, 0, 'queue drained');
  t.equal(nextPair(s, notDone), high, 'no trigger: the highest-priority Waiting pair');
  t.equal(high.state, 'waiting', 'nextPair does not change the state (sending does)');
  high.state = 'in-progress';
  t.equal(nextPair(s, notDone), mid, 'next Waiting pair by priority');
  mid.state = 'in-progress';
  low.state = 'in-progress';
  t.equal(nextPair(s, notDone), undefined, 'nothing Waiting: nothing to check');
  t.equal(hasWork(s, notDone), false, 'and no work');
  // A queued id of a pair removed since is skipped.
  const gone = rig.add(s, local, r(40, 50, 'd'));
  enqueueTriggered(s, gone);
  s.pairs.splice(s.pairs.indexOf(gone), 1);
  t.equal(nextPair(s, notDone), undefined, 'a stale queue entry is dropped');
});

// §6.1.4.2 unfreezing, now done by updateStates (called when pairs are added or fail) rather than by next().
t.test('updateStates(): unfreezing respects foundations across the set (§6.1.4.2)', async (t) => {
  const rig = new Rig();
  const s1 = rig.stream([1]);
  const s2 = rig.stream([1, 2]);
  const L = (port: number, f: string, priority: number, component = 1) => cand('10.0.0.1', port, { foundation: f, priority, component });
  const R = (port: number, component = 1) => cand('10.0.1.1', port, { foundation: 'r', priority: 100, component });
  const busy = rig.add(s1, L(1, 'a', 5000), R(11)); // 'a:r' Waiting
  busy.state = 'in-progress';
  const aFrozen = rig.add(s2, L(2, 'a', 9000), R(12));
  t.equal(aFrozen.state, 'frozen', "'a:r' frozen: its foundation is In-Progress in checklist 1");
  // Foundation 'b:r': two pairs; the one of the lowest component must be unfrozen, even with lower priority.
  const bComp2 = rig.add(s2, L(3, 'b', 8000, 2), R(13, 2));
  const bComp1 = rig.add(s2, L(4, 'b', 7000), R(14));
  // Foundation 'c:r', lower priority.
  const c1 = rig.add(s2, L(5, 'c', 3000), R(15));
  for (const p of [bComp2, bComp1, c1]) p.state = 'frozen';
  rig.update();
  t.equal(nextPair(s2, () => false), bComp1, 'highest-priority unfrozen pair returned');
  t.equal(aFrozen.state, 'frozen', "'a:r' stays Frozen: a pair of its foundation is In-Progress in another checklist");
  t.equal(bComp1.state, 'waiting', "'b:r' component 1 unfrozen");
  t.equal(bComp2.state, 'frozen', 'only one pair per foundation unfrozen: component 2 stays Frozen');
  t.equal(c1.state, 'waiting', "'c:r' unfrozen too (one per foundation)");

  // When the In-Progress pair fails, 'a:r' is free to unfreeze.
  markFailed(s1, busy);
  bComp1.state = 'in-progress';
  c1.state = 'in-progress';
  rig.update();
  t.equal(nextPair(s2, () => false), aFrozen, "'a:r' unfrozen once nothing of its foundation is Waiting/In-Progress");
});

t.test("updateStates(): unfreezing compares whole foundations ('1:1' vs '1:11')", async (t) => {
  const rig = new Rig();
  const s1 = rig.stream([1]);
  const s2 = rig.stream([1]);
  const busy = rig.add(s1, cand('10.0.0.1', 1, { foundation: '1' }), cand('10.0.1.1', 11, { foundation: '1' }));
  busy.state = 'in-progress';
  const f1_11 = rig.add(s2, cand('10.0.0.1', 2, { foundation: '1' }), cand('10.0.1.1', 12, { foundation: '11' }));
  const f1_1 = rig.add(s2, cand('10.0.0.1', 3, { foundation: '1', priority: 5000 }), cand('10.0.1.1', 13, { foundation: '1' }));
  f1_11.state = 'frozen';
  t.equal(f1_1.state, 'frozen');
  rig.update();
  t.equal(nextPair(s2, () => false), f1_11, "'1:11' is unfrozen although '1:1' is In-Progress");
  t.equal(f1_1.state, 'frozen', "'1:1' (higher priority) stays Frozen");
});

// §8.1.2: once a component has its nominated pair, its remaining Frozen/Waiting pairs are not checked.
t.test('nextPair() / updateStates(): isDone skips components', async (t) => {
  const rig = new Rig();
  const s = rig.stream([1, 2]);
  const c1 = rig.add(s, cand('10.0.0.1', 1, { foundation: 'a', priority: 9000 }), cand('10.0.1.1', 11, { foundation: 'x' }));
  const c2 = rig.add(s, cand('10.0.0.1', 2, { foundation: 'b', component: 2, priority: 100 }), cand('10.0.1.1', 12, { foundation: 'x', component: 2 }));
  t.equal(nextPair(s, (c) => c === 1), c2, 'component 1 done: its higher Waiting pair is skipped');
  t.equal(c1.state, 'waiting', 'skipped pair left alone');
  c2.state = 'frozen';
  c1.state = 'frozen';
  updateStates(rig.set, (_s, c) => c === 2);
  t.equal(nextPair(s, (c) => c === 2), c1, 'unfreezing also skips a done component');
  t.equal(c2.state, 'frozen', "done component's Frozen pair not unfrozen");
  t.equal(nextPair(s, () => true), undefined, 'all components done: nothing');
  t.equal(hasWork(s, () => true), false, 'and no work');
  t.equal(hasWork(s, () => false), true, 'while a component is not done, Waiting pairs are work');

  // Triggered pairs of a done component are dropped, unless the pair waits for nomination (§7.3.1.5).
  c2.state = 'frozen';
  enqueueTriggered(s, c2);
  t.equal(c2.state, 'waiting');
  t.equal(nextPair(s, (c) => c === 2), c1, 'triggered pair of the done component is skipped');
  enqueueTriggered(s, c2);
  c2.nominateOnSuccess = true;
  t.equal(nextPair(s, (c) => c === 2), c2, 'unless USE-CANDIDATE arrived for it');
});

// §8.1.2: once a component has a nominated pair, its other pairs are removed from the checklist (and the
// triggered queue). A Waiting pair left behind in a done component must therefore not count as "a pair of the
// foundation in the Waiting state" for §6.1.4.2 unfreezing, or the other component's Frozen pair of that
// foundation can never be checked: it stays Frozen for ever, and the component neither connects nor fails.
t.test('pruneComponent(): a Waiting pair of a done component does not keep its foundation frozen elsewhere (§8.1.2, §6.1.4.2)', async (t) => {
  const rig = new Rig();
  const s = rig.stream([1, 2]);
  const x1 = cand('10.0.1.1', 11, { foundation: 'x' });
  const x2 = cand('10.0.1.1', 12, { foundation: 'x', component: 2 });
  const q1 = rig.add(s, cand('10.0.0.1', 1, { foundation: 'b', priority: 9000 }), x1); // 'b:x' Waiting
  const p1 = rig.add(s, cand('10.0.0.2', 2, { foundation: 'a', priority: 5000 }), x1); // 'a:x' Waiting
  const q2 = rig.add(s, cand('10.0.0.1', 3, { foundation: 'b', priority: 8999, component: 2 }), x2); // 'b:x' Frozen
  const p2 = rig.add(s, cand('10.0.0.2', 4, { foundation: 'a', priority: 4999, component: 2 }), x2); // 'a:x' Frozen
  t.strictSame(states([q1, p1, q2, p2]), ['waiting', 'waiting', 'frozen', 'frozen'], 'initial states');
  // q1 succeeds and is nominated: component 1 is done; p1 was never checked.
  q1.state = 'in-progress';
  markSucceeded(rig.set, q1);
  q1.valid = true;
  q1.nominated = true;
  const s1Selected = (st: StreamData, c: number) => st === s && c === 1;
  rig.isDone = s1Selected;
  // What the agent does when it selects q1 (§8.1.2).
  t.strictSame(pruneComponent(s, 1), [], 'nothing In-Progress to cancel');
  t.notOk(s.pairs.includes(p1), 'the unchecked pair of the done component is removed');
  t.ok(s.pairs.includes(q1), 'the selected pair stays');
  t.equal(q2.state, 'waiting', "success of 'b:x' unfroze q2");
  const done = (c: number) => c === 1;
  t.equal(nextPair(s, done), q2, 'q2 checked');
  q2.state = 'in-progress';
  markFailed(s, q2);
  rig.update();
  t.equal(nextPair(s, done), p2, "p2 ('a:x', component 2) is unfrozen: p1 of the done component will never be checked");
});

// Changed on purpose: pruneComponent hands back the component's In-Progress pairs for the caller to cancel
// (RFC 8445 §8.1.2: "If the state of a pair is In-Progress, the agent cancels the In-Progress transaction").
t.test('changed: pruneComponent() removes Frozen/Waiting pairs and returns In-Progress ones to cancel (§8.1.2)', async (t) => {
  const rig = new Rig();
  const s = rig.stream([1, 2]);
  const local = cand('10.0.0.1', 1, { priority: 100000, foundation: 'L' });
  const r = (port: number, foundation: string, component = 1) => cand('10.0.1.1', port, { priority: 1000 - port, foundation, component });
  const selected = rig.add(s, local, r(10, 'a'));
  const inFlight = rig.add(s, local, r(11, 'b'));
  const inFlight2 = rig.add(s, local, r(12, 'c'));
  const waiting = rig.add(s, local, r(13, 'd'));
  const frozen = rig.add(s, local, r(14, 'd'));
  const failed = rig.add(s, local, r(15, 'e'));
  const nominating = rig.add(s, local, r(16, 'f'));
  const otherComponent = rig.add(s, cand('10.0.0.1', 2, { priority: 100000, foundation: 'L', component: 2 }), r(20, 'g', 2));
  selected.state = 'succeeded';
  selected.valid = true;
  selected.nominated = true;
  inFlight.state = 'in-progress';
  inFlight.txKey = 'tx-1';
  inFlight2.state = 'in-progress';
  inFlight2.txKey = 'tx-2';
  t.equal(frozen.state, 'frozen');
  failed.state = 'failed';
  nominating.nominating = true;
  enqueueTriggered(s, waiting);
  enqueueTriggered(s, otherComponent);
  const cancel = pruneComponent(s, 1);
  t.strictSame(cancel.map((p) => p.id).sort(), [inFlight.id, inFlight2.id].sort(), 'the In-Progress pairs are returned');
  t.ok(s.pairs.includes(inFlight) && s.pairs.includes(inFlight2), 'and stay, so that a late response is still taken');
  t.notOk(s.pairs.includes(waiting), 'Waiting pair removed');
  t.notOk(s.pairs.includes(frozen), 'Frozen pair removed');
  t.strictSame(s.triggered, [otherComponent.id], 'its triggered checks dropped, the other component\'s kept');
  t.ok(s.pairs.includes(selected), 'the selected (valid) pair stays');
  t.ok(s.pairs.includes(failed), 'the Failed pair stays');
  t.ok(s.pairs.includes(nominating), 'a pair with a nomination under way stays');
  t.ok(s.pairs.includes(otherComponent), 'the other component is untouched');
  t.equal(otherComponent.state, 'waiting');
  t.strictSame(pruneComponent(s, 1).map((p) => p.id).sort(), [inFlight.id, inFlight2.id].sort(), 'idempotent');
});

// The In-Progress pairs pruneComponent keeps have their transactions cancelled: no retransmission and no
// failure on timeout (lib/core/check.ts checkTimeout returns early for a cancelled transaction), so without
// an answer they stay In-Progress for good. RFC 8445 §8.1.2 removes all the component's pairs from the
// checklist; one kept only to take a late answer must not hold its foundation for §6.1.4.2 unfreezing.
t.test('an In-Progress pair of a done component does not keep its foundation frozen elsewhere (§8.1.2, §6.1.4.2)', async (t) => {
  const rig = new Rig();
  const s = rig.stream([1, 2]);
  const x1 = cand('10.0.1.1', 11, { foundation: 'x' });
  const x2 = cand('10.0.1.1', 12, { foundation: 'x', component: 2 });
  const q1 = rig.add(s, cand('10.0.0.1', 1, { foundation: 'b', priority: 9000 }), x1);
  const p1 = rig.add(s, cand('10.0.0.2', 2, { foundation: 'a', priority: 5000 }), x1);
  const q2 = rig.add(s, cand('10.0.0.1', 3, { foundation: 'b', priority: 8999, component: 2 }), x2);
  const p2 = rig.add(s, cand('10.0.0.2', 4, { foundation: 'a', priority: 4999, component: 2 }), x2);
  q1.state = 'in-progress';
  p1.state = 'in-progress';
  markSucceeded(rig.set, q1);
  q1.valid = true;
  q1.nominated = true;
  rig.isDone = (st, c) => st === s && c === 1;
  t.strictSame(pruneComponent(s, 1), [p1], 'p1 is to be cancelled');
  markFailed(s, q2);
  rig.update();
  // (Found by this test: updateStates counted the cancelled pair as a check under way, for good.)
  t.equal(p2.state, 'waiting', "p2 ('a:x', component 2) is unfrozen although cancelled p1 is still In-Progress");
});

// §7.2.5.3.3: on success, every Frozen pair with the same foundation, in every checklist of the set, goes Waiting.
t.test('markSucceeded(): unfreezes the same foundation in every checklist (§7.2.5.3.3)', async (t) => {
  const rig = new Rig();
  const s1 = rig.stream([1]);
  const s2 = rig.stream([1]);
  const L = (port: number, f: string) => cand('10.0.0.1', port, { foundation: f });
  const R = (port: number, f: string) => cand('10.0.1.1', port, { foundation: f });
  const done = rig.add(s1, L(1, '1'), R(11, '1')); // '1:1'
  done.state = 'in-progress';
  const same = rig.add(s2, L(2, '1'), R(12, '1')); // '1:1'
  const longer = rig.add(s2, L(3, '1'), R(13, '11')); // '1:11'
  const swapped = rig.add(s2, L(4, '11'), R(14, '1')); // '11:1'
  const sameFailed = rig.add(s2, L(5, '1'), R(15, '1')); // '1:1'
  const sameInCl1 = rig.add(s1, L(6, '1'), R(16, '1')); // '1:1'
  for (const p of [same, longer, swapped, sameInCl1]) p.state = 'frozen';
  sameFailed.state = 'failed';
  markSucceeded(rig.set, done);
  t.equal(done.state, 'succeeded', 'the pair itself is Succeeded');
  t.equal(same.state, 'waiting', "'1:1' in the other checklist: Waiting");
  t.equal(sameInCl1.state, 'waiting', "'1:1' in the same checklist: Waiting");
  t.equal(longer.state, 'frozen', "'1:11' untouched");
  t.equal(swapped.state, 'frozen', "'11:1' untouched");
  t.equal(sameFailed.state, 'failed', 'a Failed pair of the foundation stays Failed');
});

// §7.3.1.4 triggered checks: Frozen/Waiting → queued and Waiting; Failed → Waiting and queued; Succeeded → no check.
// Changed: In-Progress → Waiting and queued, as RFC 8445 §7.3.1.4 says (the running transaction is cancelled when
// the new check goes out, lib/core/check.ts sendCheck); the old checklist kept it running, as libnice does.
t.test('enqueueTriggered() semantics (§7.3.1.4; changed: In-Progress is queued again)', async (t) => {
  const rig = new Rig();
  const s = rig.stream([1]);
  const local = cand('10.0.0.1', 1, { priority: 5000 });
  const mk = (port: number) => rig.add(s, local, cand('10.0.1.1', port, { foundation: `f${port}`, priority: 1000 - port }));
  const frozen = mk(10);
  const failed = mk(20);
  const inProgress = mk(30);
  const succeeded = mk(40);
  frozen.state = 'frozen';
  failed.state = 'failed';
  inProgress.state = 'in-progress';
  succeeded.state = 'succeeded';
  enqueueTriggered(s, frozen);
  enqueueTriggered(s, failed);
  enqueueTriggered(s, inProgress);
  enqueueTriggered(s, succeeded);
  t.equal(frozen.state, 'waiting', 'Frozen → Waiting');
  t.equal(failed.state, 'waiting', 'Failed → Waiting');
  t.equal(inProgress.state, 'waiting', 'changed: In-Progress → Waiting (§7.3.1.4)');
  t.equal(succeeded.state, 'succeeded', 'Succeeded unchanged');
  t.strictSame(s.triggered.slice(0, 3), [frozen.id, failed.id, inProgress.id], 'Frozen, Failed and In-Progress pairs queued, in order');
  enqueueTriggered(s, frozen);
  t.strictSame(s.triggered.filter((id) => id === frozen.id).length, 1, 'a pair already queued is not queued twice');
  const notDone = () => false;
  const order: Array<Pair | undefined> = [];
  for (let i = 0; i < 4; i++) order.push(nextPair(s, notDone));
  t.strictSame(order.slice(0, 3), [frozen, failed, inProgress], 'checked in queue order');
  t.notOk(order.includes(succeeded), 'a Succeeded pair gets no check (§7.3.1.4: "nothing further is done")');

  // markFailed removes a pair from the queue; removePair forgets the pair entirely.
  enqueueTriggered(s, frozen);
  enqueueTriggered(s, failed);
  markFailed(s, frozen);
  t.equal(frozen.state, 'failed');
  t.strictSame(s.triggered, [failed.id], 'failed pair leaves the queue');
  removePair(s, failed);
  t.strictSame(s.triggered, [], 'removed pair leaves the queue');
  t.notOk(s.pairs.includes(failed), 'and the list');
  t.equal(pairById(s, failed.id), undefined, 'and is not found by id');
  t.equal(rig.get(s, local, { address: '10.0.1.1', port: 20 }), undefined, 'nor by key');
  t.ok(rig.form(s, local, cand('10.0.1.1', 20, { foundation: 'f20' }))?.added, 'so it can be formed again');
});

// §8.1.1: the controlling agent's nomination check goes out even on a Succeeded pair, ahead of other triggered checks.
t.test('enqueueTriggered(first): a nomination goes to the front', async (t) => {
  const rig = new Rig();
  const s = rig.stream([1]);
  const local = cand('10.0.0.1', 1, { priority: 5000 });
  const mk = (port: number) => rig.add(s, local, cand('10.0.1.1', port, { foundation: `f${port}`, priority: 1000 - port }));
  const a = mk(10);
  const b = mk(20);
  const best = mk(30);
  a.state = 'frozen';
  b.state = 'frozen';
  enqueueTriggered(s, a);
  enqueueTriggered(s, b);
  best.state = 'succeeded';
  best.nominating = true;
  enqueueTriggered(s, best, true);
  enqueueTriggered(s, best, true);
  t.strictSame(s.triggered, [best.id, a.id, b.id], 'nomination at the head, not duplicated');
  t.equal(best.state, 'succeeded', 'the Succeeded pair stays Succeeded');
  t.equal(nextPair(s, () => true), best, 'returned first, on a Succeeded pair, even with the component done');
  t.equal(nextPair(s, () => false), a, 'then the triggered queue in order');
  t.equal(nextPair(s, () => false), b);
  // A nomination whose check failed is not sent again from the queue.
  best.state = 'failed';
  enqueueTriggered(s, best, true);
  best.state = 'failed';
  t.not(nextPair(s, () => true), best, 'a failed nomination is dropped');
});

// §7.2.5.3.2: the valid list, ordered by priority; the best valid pair and the selected one per component (§8.1.1).
t.test('validPairs() and nominatedPair()', async (t) => {
  const rig = new Rig();
  const s = rig.stream([1, 2]);
  const r = (port: number, priority: number, component = 1) => cand('10.0.1.1', port, { priority, component, foundation: `f${port}` });
  const local1 = cand('10.0.0.1', 1, { priority: 100000 });
  const local2 = cand('10.0.0.1', 2, { priority: 100000, component: 2 });
  const p300 = rig.add(s, local1, r(10, 300));
  const p200 = rig.add(s, local1, r(20, 200));
  const p100 = rig.add(s, local1, r(30, 100));
  const q500 = rig.add(s, local2, r(40, 500, 2));
  t.strictSame(validPairs(s, 1), [], 'nothing valid yet');
  for (const p of [p200, p100, q500]) p.valid = true;
  t.strictSame(validPairs(s, 1), [p200, p100], 'component 1, by priority');
  p300.valid = true;
  t.strictSame(validPairs(s, 1), [p300, p200, p100], 'valid list sorted by priority whatever the order they became valid');
  t.strictSame(validPairs(s, 2), [q500], 'component 2 on its own');
  // A valid pair outside the checklist (a local peer-reflexive candidate, §7.2.5.3.2) is in the valid list.
  const prflxValid = rig.build(s, cand('203.0.113.1', 9, { type: 'prflx', priority: 100000 }), r(50, 250));
  prflxValid.inChecklist = false;
  prflxValid.valid = true;
  insertPair(s, prflxValid);
  t.strictSame(validPairs(s, 1), [p300, prflxValid, p200, p100], 'valid-only pair in the valid list, in order');
  t.notOk(checklistPairs(s).includes(prflxValid), 'but not in the checklist');
  t.equal(validPairs(s, 1)[0], p300, 'best valid of component 1');
  t.equal(validPairs(s, 2)[0], q500, 'best valid of component 2');
  t.equal(nominatedPair(s, 1), undefined, 'nothing nominated: nothing selected');
  p100.nominated = true;
  t.equal(nominatedPair(s, 1), p100, 'the only nominated pair');
  p200.nominated = true;
  t.equal(nominatedPair(s, 1), p200, 'highest-priority nominated pair (§8.1.1)');
  t.equal(nominatedPair(s, 2), undefined, 'component 2 has no nominated pair');
  p300.nominated = false;
  t.equal(nominatedPair(s, 1), p200, 'a non-nominated higher pair is not selected');
  // Nominated but not valid does not count.
  q500.valid = false;
  q500.nominated = true;
  t.equal(nominatedPair(s, 2), undefined, 'nominated flag alone (not valid) is not a selected pair');
  // Another generation's valid pairs are not the current generation's.
  s.generation++;
  t.strictSame(validPairs(s, 1), [], 'after a restart the old valid pairs are not in the new valid list');
  t.equal(nominatedPair(s, 1), undefined, 'nor selected');
});

// §8.1.2 / §6.1.2.1: a component fails when it has no valid pair and nothing left to check (the trickle rule,
// RFC 8838 §8, is applied by lib/core/selection.ts evaluate on top of exhausted()).
t.test('exhausted() (§8.1.2)', async (t) => {
  const rig = new Rig();
  const s = rig.stream([1, 2]);
  const p1 = rig.add(s, cand('10.0.0.1', 1, { foundation: 'a' }), cand('10.0.1.1', 11));
  const p2 = rig.add(s, cand('10.0.0.1', 2, { foundation: 'b', component: 2 }), cand('10.0.1.1', 12, { component: 2 }));
  const p2b = rig.add(s, cand('10.0.0.1', 3, { foundation: 'c', component: 2 }), cand('10.0.1.1', 13, { component: 2 }));
  t.equal(exhausted(s, 1), false, 'nothing checked yet');
  t.equal(exhausted(s, 2), false);

  markSucceeded(rig.set, p1);
  p1.valid = true;
  p1.nominated = true;
  t.equal(nominatedPair(s, 1), p1, 'component 1 nominated');
  t.equal(exhausted(s, 2), false, 'component 2 still has pairs to check');

  markFailed(s, p2);
  t.equal(exhausted(s, 2), false, 'one failure, another pair left');
  enqueueTriggered(s, p2); // a triggered check revives the failed pair
  p2b.state = 'failed';
  t.equal(exhausted(s, 2), false, 'a re-queued (Waiting) pair means not exhausted');
  markFailed(s, p2);
  t.equal(exhausted(s, 2), true, 'every pair Failed, nothing queued, no valid pair: exhausted');
  t.equal(exhausted(s, 1), false, 'component 1 has a valid pair');

  // A valid (not nominated) pair for component 2: not exhausted.
  const v = rig.add(s, cand('10.0.0.1', 4, { foundation: 'd', component: 2 }), cand('10.0.1.1', 14, { component: 2 }));
  markSucceeded(rig.set, v);
  v.valid = true;
  t.equal(exhausted(s, 2), false, 'a valid pair means not exhausted');
  v.nominated = true;
  t.ok([1, 2].every((c) => nominatedPair(s, c) !== undefined), 'every component has a nominated valid pair: completed');

  // A valid-only pair counts; a component without pairs is exhausted; another generation's pairs do not count.
  const s2 = rig.stream([1]);
  t.equal(exhausted(s2, 1), true, 'no pairs: nothing to check');
  rig.add(s2, cand('10.0.0.1', 5), cand('10.0.1.1', 15));
  t.equal(exhausted(s2, 1), false, 'a Waiting pair');
  s2.generation++;
  t.equal(exhausted(s2, 1), true, 'the old generation\'s pair does not count after a restart');
  const vo = rig.build(s2, cand('203.0.113.1', 9, { type: 'prflx' }), cand('10.0.1.1', 16));
  vo.inChecklist = false;
  vo.valid = true;
  insertPair(s2, vo);
  t.equal(exhausted(s2, 1), false, 'a valid pair outside the checklist counts');
});

// §7.3.1.1 / §7.2.5.1: after a role change every pair priority is recomputed (G is now the other side) and
// the checklist re-sorted.
t.test('reprioritise() recomputes priorities and re-sorts (§7.3.1.1)', async (t) => {
  const rig = new Rig();
  const s = rig.stream([1]);
  // Pair A: local 100, remote 50. Pair B: local 50, remote 100. Same MIN and MAX: only the G>D bit differs.
  const A = rig.add(s, cand('10.0.0.1', 1, { priority: 100 }), cand('10.0.1.1', 11, { priority: 50 }));
  const B = rig.add(s, cand('10.0.0.2', 2, { priority: 50 }), cand('10.0.1.2', 12, { priority: 100 }));
  const C = rig.add(s, cand('10.0.0.3', 3, { priority: 40 }), cand('10.0.1.3', 13, { priority: 30 }));
  t.strictSame([A.priority, B.priority], [50n * 4294967296n + 201n, 50n * 4294967296n + 200n], 'controlling: A has the tie bit');
  t.strictSame(s.pairs, [A, B, C], 'controlling order: A, B, C');
  B.valid = true;
  A.valid = true;
  t.strictSame(validPairs(s, 1), [A, B], 'valid list in the same order');
  reprioritise(s, false);
  t.strictSame([A.priority, B.priority], [50n * 4294967296n + 200n, 50n * 4294967296n + 201n], 'controlled: B has the tie bit');
  t.equal(C.priority, 30n * 4294967296n + 80n, 'C: G = remote 30 < D = local 40');
  t.strictSame(s.pairs, [B, A, C], 'controlled order: B, A, C');
  t.strictSame(validPairs(s, 1), [B, A], 'valid list re-sorted');
  t.equal(validPairs(s, 1)[0], B, 'the best valid pair follows');
  reprioritise(s, true);
  t.strictSame(s.pairs, [A, B, C], 'and back');

  // A valid pair outside the checklist (local prflx, §7.2.5.3.2), and one whose remote candidate is retired
  // (an earlier generation's selected pair during a restart), are recomputed too.
  const s2 = rig.stream([1]);
  const X = rig.add(s2, cand('10.0.0.1', 1, { priority: 100 }), cand('10.0.1.1', 11, { priority: 50 }));
  const Y = rig.add(s2, cand('10.0.0.2', 2, { priority: 50 }), cand('10.0.1.2', 12, { priority: 100 }));
  X.inChecklist = false;
  Y.inChecklist = false;
  X.valid = true;
  Y.valid = true;
  t.strictSame(validPairs(s2, 1), [X, Y]);
  const c = s2.components.get(1)!;
  const yRemote = c.remote.find((r) => r.id === Y.remoteId)!;
  c.remote = c.remote.filter((r) => r !== yRemote);
  c.retired = [yRemote];
  reprioritise(s2, false);
  t.strictSame(validPairs(s2, 1), [Y, X], 'valid-only pairs re-prioritised and re-sorted');
  t.equal(Y.priority, 50n * 4294967296n + 201n, 'the pair with a retired remote candidate too');
});
