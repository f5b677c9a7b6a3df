import t from 'tap';
import type { Candidate, CandidateType, TransportProtocol } from '../lib/candidate.js';
import { Checklist, DEFAULT_MAX_PAIRS, canPair } from '../lib/checklist.js';
import type { CandidatePair } from '../lib/pair.js';

interface CandOpts {
  priority?: number;
  foundation?: string;
  component?: number;
  type?: CandidateType;
  transport?: TransportProtocol;
  base?: { address: string; port: number };
}

function cand(address: string, port: number, o: CandOpts = {}): Candidate {
  const c: Candidate = {
    type: o.type ?? 'host',
    transport: o.transport ?? 'udp',
    foundation: o.foundation ?? '1',
    component: o.component ?? 1,
    priority: o.priority ?? 1000,
    address,
    port,
  };
  if (o.base) c.base = o.base;
  return c;
}

/** Adds a pair that must be formed. */
function add(cl: Checklist, local: Candidate, remote: Candidate, set: readonly Checklist[], controlling = true): CandidatePair {
  const p = cl.addPair(local, remote, controlling, set);
  if (!p) throw new Error(`pair ${local.address}:${local.port} -> ${remote.address}:${remote.port} was not formed`);
  return p;
}

const ports = (ps: readonly CandidatePair[]) => ps.map((p) => `${p.local.port}>${p.remote.port}`);

// RFC 8445 §6.1.2.2: pair only same component, same transport, same address family;
// link-local IPv6 only with link-local IPv6.
t.test('pair formation rules (§6.1.2.2)', async (t) => {
  const cl = new Checklist(1, [1, 2]);
  const set = [cl];
  const l4 = cand('10.0.0.1', 1000);
  t.ok(cl.addPair(l4, cand('10.0.0.2', 2000), true, set), 'v4 host ↔ v4 host, same component and transport');
  t.equal(cl.addPair(l4, cand('10.0.0.2', 2001, { component: 2 }), true, set), undefined, 'component 1 ↔ component 2: no pair');
  t.equal(cl.addPair(l4, cand('10.0.0.2', 2002, { transport: 'tcp' }), true, set), undefined, 'udp ↔ tcp: no pair');
  t.equal(cl.addPair(l4, cand('2001:db8::2', 2003), true, set), undefined, 'v4 ↔ v6: no pair');
  t.equal(cl.addPair(cand('2001:db8::1', 1001), cand('10.0.0.2', 2004), true, set), undefined, 'v6 ↔ v4: no pair');
  t.ok(cl.addPair(cand('2001:db8::1', 1001), cand('2001:db8::2', 2005), true, set), 'v6 global ↔ v6 global');
  t.equal(cl.addPair(cand('fe80::1', 1002), cand('2001:db8::2', 2006), true, set), undefined, 'link-local ↔ global: no pair');
  t.equal(cl.addPair(cand('2001:db8::1', 1001), cand('fe80::2', 2007), true, set), undefined, 'global ↔ link-local: no pair');
  t.equal(cl.addPair(cand('FE80::1', 1003), cand('2001:db8::2', 2008), true, set), undefined, 'upper-case link-local too');
  t.equal(cl.addPair(cand('febf::1', 1004), cand('2001:db8::2', 2009), true, set), undefined, 'febf:: is inside fe80::/10');
  t.ok(cl.addPair(cand('fe80::1', 1002), cand('fe80::2', 2010), true, set), 'link-local ↔ link-local');
  t.ok(cl.addPair(cand('fec0::1', 1005), cand('2001:db8::2', 2011), true, set), 'fec0:: is not link-local');
  t.ok(cl.addPair(cand('10.0.0.1', 1000, { component: 2 }), cand('10.0.0.2', 2012, { component: 2 }), true, set), 'component 2 ↔ component 2');
  t.ok(cl.addPair(cand('198.51.100.1', 3000, { type: 'relay' }), cand('10.0.0.2', 2013), true, set), 'local relay is paired');
  t.ok(cl.addPair(l4, cand('203.0.113.9', 2014, { type: 'srflx' }), true, set), 'remote srflx is paired');
  t.ok(cl.addPair(l4, cand('203.0.113.9', 2015, { type: 'prflx' }), true, set), 'remote prflx is paired');
  t.equal(cl.pairs.length, 8, 'exactly the eight valid pairs are in the checklist');
  for (const p of cl.pairs) t.equal(p.local.component, p.remote.component, `${p} same component`);

  // canPair itself.
  t.equal(canPair(cand('10.0.0.1', 1), cand('10.0.0.2', 2)), true);
  t.equal(canPair(cand('10.0.0.1', 1), cand('::ffff:10.0.0.2', 2)), false, 'IPv4-mapped IPv6 is IPv6 here');
});

// RFC 8445 §6.1.2.4: a local srflx candidate is replaced by its base; pairs with the same local base
// and the same remote candidate are redundant. Local prflx candidates are only in valid pairs (§7.2.5.3.1).
t.test('local srflx/prflx and redundancy pruning (§6.1.2.4)', async (t) => {
  const cl = new Checklist(1, [1]);
  const set = [cl];
  const host = cand('10.0.0.1', 1000, { priority: 2130706431, foundation: 'h' });
  const srflx = cand('203.0.113.1', 40000, { type: 'srflx', priority: 1694498815, foundation: 's', base: { address: '10.0.0.1', port: 1000 } });
  const prflx = cand('203.0.113.1', 40001, { type: 'prflx', priority: 1862270975, foundation: 'p', base: { address: '10.0.0.1', port: 1000 } });
  const remote = cand('10.0.0.2', 2000, { priority: 2130706431, foundation: 'r' });
  const hp = add(cl, host, remote, set);
  t.equal(cl.addPair(srflx, remote, true, set), undefined, 'local srflx with the same base: pruned');
  t.equal(cl.addPair(srflx, cand('10.0.0.3', 2001), true, set), undefined, 'local srflx never paired, even with a new remote');
  t.equal(cl.addPair(prflx, remote, true, set), undefined, 'local prflx not paired');
  t.equal(cl.addPair(host, remote, true, set), undefined, 'the same pair twice: pruned');
  t.equal(cl.addPair(host, cand('10.0.0.2', 2000, { priority: 5, foundation: 'r' }), true, set), undefined,
    'same base, same remote transport address, lower priority: pruned');
  t.equal(cl.pairs.length, 1, 'one pair');
  t.equal(cl.pairs[0], hp, 'the host pair');
  t.equal(cl.get({ address: '10.0.0.1', port: 1000 }, { address: '10.0.0.2', port: 2000 }), hp, 'get() by base and remote');
  t.equal(cl.get({ address: '10.0.0.1', port: 1000 }, { address: '10.0.0.2', port: 2001 }), undefined, 'other port: none');
  t.ok(add(cl, host, cand('10.0.0.2', 2001), set), 'same base, different remote port: not redundant');
  t.ok(add(cl, cand('10.0.0.1', 1001), remote, set), 'different local port (another base), same remote: not redundant');
});

// §6.1.2.4: "... the agent MUST prune the list. This is done by removing a candidate pair if it is redundant with
// a higher-priority candidate pair in the same checklist." The higher-priority one is the one retained,
// whatever the order the candidates arrived in (trickle, RFC 8838, makes any order possible).
t.test('redundancy: the higher-priority pair is the one kept (§6.1.2.4)', async (t) => {
  const cl = new Checklist(1, [1]);
  const set = [cl];
  const host = cand('10.0.0.1', 1000, { priority: 2130706431, foundation: 'h' });
  // The remote signals the same transport address twice: first as srflx (lower), then as host (higher).
  add(cl, host, cand('198.51.100.7', 5000, { type: 'srflx', priority: 1694498815, foundation: 'rs' }), set);
  cl.addPair(host, cand('198.51.100.7', 5000, { type: 'host', priority: 2130706431, foundation: 'rh' }), true, set);
  // Whether or not the two remote candidates count as "identical" (same transport address, different type and
  // priority), the higher-priority pair must be in the checklist: either both are kept, or only the higher one.
  const higher = (2130706431n << 32n) + 2n * 2130706431n;
  t.ok(cl.pairs.some((p) => p.priority === higher), 'the higher-priority pair (remote host) is in the checklist');
  t.equal(cl.pairs[0]?.priority, higher, 'and it heads the checklist');
  const viaGet = cl.get({ address: '10.0.0.1', port: 1000 }, { address: '198.51.100.7', port: 5000 });
  t.equal(viaGet?.priority, higher, 'get() by base and remote address finds the higher-priority pair');
});

// §6.1.2.5: pairs ordered by decreasing priority.
t.test('checklist ordered by pair priority (§6.1.2.5)', async (t) => {
  const cl = new Checklist(1, [1]);
  const set = [cl];
  const L1 = cand('10.0.0.1', 1, { priority: 1000, foundation: 'a' });
  const L2 = cand('10.0.0.2', 2, { priority: 500, foundation: 'b' });
  const R1 = cand('10.0.1.1', 11, { priority: 900, foundation: 'x' });
  const R2 = cand('10.0.1.2', 12, { priority: 400, foundation: 'y' });
  // Controlling: L1R1 MIN 900; L2R1 MIN 500; L1R2 MIN 400 MAX 1000; L2R2 MIN 400 MAX 500.
  add(cl, L2, R2, set);
  add(cl, L1, R2, set);
  add(cl, L2, R1, set);
  add(cl, L1, R1, set);
  t.strictSame(ports(cl.pairs), ['1>11', '2>11', '1>12', '2>12'], 'by MIN, then by MAX');
  for (let i = 1; i < cl.pairs.length; i++) t.ok(cl.pairs[i - 1]!.priority > cl.pairs[i]!.priority, `pair ${i - 1} above pair ${i}`);
  t.equal(DEFAULT_MAX_PAIRS, 100, 'default cap is libnice\'s 100');
});

// §6.1.2.5: a limit on the number of pairs; the lowest-priority pairs go first.
t.test('maxPairs cap (§6.1.2.5)', async (t) => {
  const cl = new Checklist(1, [1], { maxPairs: 3 });
  const set = [cl];
  const local = cand('10.0.0.1', 1, { priority: 100000 });
  const r = (port: number, priority: number) => cand('10.0.1.1', port, { priority, foundation: `f${port}` });
  add(cl, local, r(10, 300), set);
  add(cl, local, r(20, 200), set);
  add(cl, local, r(30, 100), set);
  t.equal(cl.pairs.length, 3);
  t.equal(cl.addPair(local, r(40, 50), true, set), undefined, 'a newcomer below every pair is refused');
  t.strictSame(ports(cl.pairs), ['1>10', '1>20', '1>30'], 'list unchanged');
  t.equal(cl.get(local, r(40, 50)), undefined, 'refused pair not indexed');

  const p25 = cl.addPair(local, r(25, 150), true, set);
  t.ok(p25, 'a newcomer above the lowest Frozen/Waiting pair is accepted');
  t.strictSame(ports(cl.pairs), ['1>10', '1>20', '1>25'], 'the lowest pair was evicted');
  t.equal(cl.pairs.length, 3, 'still at the cap');
  t.equal(cl.get(local, r(30, 100)), undefined, 'evicted pair no longer found');
  t.ok(cl.addPair(local, r(30, 100), true, set) === undefined, 'the evicted pair, if offered again, is now the lowest and refused');

  // Pairs already checked (In-Progress, Succeeded, Failed) are not evicted.
  cl.pairs.find((p) => p.remote.port === 25)!.state = 'in-progress';
  const p15 = cl.addPair(local, r(15, 250), true, set);
  t.ok(p15, 'newcomer 250 accepted: evicts the lowest *unchecked* pair (200)');
  t.strictSame(ports(cl.pairs), ['1>10', '1>15', '1>25'], '200 evicted, in-progress 150 kept');
  cl.pairs.find((p) => p.remote.port === 15)!.state = 'succeeded';
  cl.pairs.find((p) => p.remote.port === 10)!.state = 'failed';
  t.equal(cl.addPair(local, r(5, 400), true, set), undefined, 'nothing evictable: even a higher newcomer is refused');
  t.equal(cl.pairs.length, 3, 'never above the cap');
});

// §6.1.2.6: for each foundation, exactly one pair is Waiting, the others Frozen, across the whole checklist set
// (first checklist, lowest component, highest priority).
t.test('initial states across a checklist set (§6.1.2.6)', async (t) => {
  const cl1 = new Checklist(1, [1, 2]);
  const cl2 = new Checklist(2, [1]);
  const set = [cl1, cl2];
  const la = (port: number, component = 1) => cand('10.0.0.1', port, { foundation: 'a', component, priority: 2000 });
  const lb = (port: number, component = 1) => cand('10.0.0.2', port, { foundation: 'b', component, priority: 1500 });
  const rx = (port: number, component = 1) => cand('10.0.1.1', port, { foundation: 'x', component, priority: 1000 });
  const a1 = add(cl1, la(1), rx(11), set);
  const b1 = add(cl1, lb(2), rx(11), set);
  const a2 = add(cl1, la(3, 2), rx(13, 2), set);
  const b2 = add(cl1, lb(4, 2), rx(13, 2), set);
  const a3 = add(cl2, la(5), rx(15), set);
  const c3 = add(cl2, cand('10.0.0.3', 6, { foundation: 'c' }), rx(15), set);
  t.equal(a1.state, 'waiting', "first 'a:x' pair (stream 1, component 1) Waiting");
  t.equal(b1.state, 'waiting', "first 'b:x' pair Waiting");
  t.equal(a2.state, 'frozen', "'a:x' component 2: Frozen");
  t.equal(b2.state, 'frozen', "'b:x' component 2: Frozen");
  t.equal(a3.state, 'frozen', "'a:x' in the second checklist: Frozen (the set shares foundations)");
  t.equal(c3.state, 'waiting', "new foundation 'c:x' in the second checklist: Waiting");
  const waitingPerFoundation = new Map<string, number>();
  for (const cl of set) for (const p of cl.pairs) if (p.state === 'waiting') waitingPerFoundation.set(p.foundation, (waitingPerFoundation.get(p.foundation) ?? 0) + 1);
  t.strictSame(Object.fromEntries(waitingPerFoundation), { 'a:x': 1, 'b:x': 1, 'c:x': 1 }, 'exactly one Waiting pair per foundation');
});

// Foundations are compared as whole strings: '1:1' and '1:11' (and '11:1') are different foundations.
t.test("initial states: foundation '1:1' does not freeze '1:11' (§6.1.2.6)", async (t) => {
  const cl1 = new Checklist(1, [1]);
  const cl2 = new Checklist(2, [1]);
  const set = [cl1, cl2];
  const p11 = add(cl1, cand('10.0.0.1', 1, { foundation: '1' }), cand('10.0.1.1', 11, { foundation: '1' }), set);
  const p1_11 = add(cl2, cand('10.0.0.1', 2, { foundation: '1' }), cand('10.0.1.1', 12, { foundation: '11' }), set);
  const p11_1 = add(cl2, cand('10.0.0.1', 3, { foundation: '11' }), cand('10.0.1.1', 12, { foundation: '1' }), set);
  const p1_1b = add(cl2, cand('10.0.0.1', 4, { foundation: '1' }), cand('10.0.1.1', 14, { foundation: '1' }), set);
  t.equal(p11.foundation, '1:1');
  t.equal(p1_11.foundation, '1:11');
  t.equal(p11_1.foundation, '11:1');
  t.equal(p11.state, 'waiting');
  t.equal(p1_11.state, 'waiting', "'1:11' is not '1:1'");
  t.equal(p11_1.state, 'waiting', "'11:1' is not '1:1'");
  t.equal(p1_1b.state, 'frozen', "a second '1:1' in the other checklist is Frozen");
});

// §6.1.4.2: triggered-check queue first (FIFO, §6.1.4.1), then the highest-priority Waiting pair, then
// unfreeze: for each foundation with no Waiting/In-Progress pair anywhere in the set, one Frozen pair.
t.test('next(): triggered queue, then Waiting, then unfreezing (§6.1.4.2)', async (t) => {
  const cl = new Checklist(1, [1]);
  const set = [cl];
  const local = cand('10.0.0.1', 1, { priority: 100000, foundation: 'L' });
  const r = (port: number, priority: number, foundation: string) => cand('10.0.1.1', port, { priority, foundation });
  const high = add(cl, local, r(10, 900, 'a'), set);
  const mid = add(cl, local, r(20, 500, 'b'), set);
  const low = add(cl, local, r(30, 100, 'c'), set);
  t.strictSame([high.state, mid.state, low.state], ['waiting', 'waiting', 'waiting'], 'three foundations, all Waiting');

  cl.trigger(low);
  cl.trigger(mid);
  t.equal(cl.next(set), low, 'triggered queue before the higher Waiting pair');
  t.equal(cl.next(set), mid, 'FIFO: second triggered pair next');
  t.equal(cl.triggered.length, 0, 'queue drained');
  t.equal(cl.next(set), high, 'no trigger: the highest-priority Waiting pair');
  high.state = 'in-progress';
  t.equal(cl.next(set), mid, 'next Waiting pair by priority');
  mid.state = 'in-progress';
  low.state = 'in-progress';
  t.equal(cl.next(set), undefined, 'nothing Waiting or Frozen: nothing to check');
});

t.test('next(): unfreezing respects foundations across the set (§6.1.4.2)', async (t) => {
  const cl1 = new Checklist(1, [1]);
  const cl2 = new Checklist(2, [1, 2]);
  const set = [cl1, cl2];
  const L = (port: number, f: string, priority: number, component = 1) => cand('10.0.0.1', port, { foundation: f, priority, component });
  const R = (port: number, component = 1) => cand('10.0.1.1', port, { foundation: 'r', priority: 100, component });
  const busy = add(cl1, L(1, 'a', 5000), R(11), set); // 'a:r' Waiting
  busy.state = 'in-progress';
  const aFrozen = add(cl2, L(2, 'a', 9000), R(12), set);
  t.equal(aFrozen.state, 'frozen', "'a:r' frozen: its foundation is In-Progress in checklist 1");
  // Foundation 'b:r': two pairs; the one of the lowest component must be unfrozen, even with lower priority.
  const bComp2 = add(cl2, L(3, 'b', 8000, 2), R(13, 2), set);
  const bComp1 = add(cl2, L(4, 'b', 7000), R(14), set);
  // Foundation 'c:r', lower priority.
  const c1 = add(cl2, L(5, 'c', 3000), R(15), set);
  for (const p of [bComp2, bComp1, c1]) p.state = 'frozen';
  t.equal(cl2.next(set), bComp1, 'highest-priority unfrozen pair returned');
  t.equal(aFrozen.state, 'frozen', "'a:r' stays Frozen: a pair of its foundation is In-Progress in another checklist");
  t.equal(bComp1.state, 'waiting', "'b:r' component 1 unfrozen");
  t.equal(bComp2.state, 'frozen', "only one pair per foundation unfrozen: component 2 stays Frozen");
  t.equal(c1.state, 'waiting', "'c:r' unfrozen too (one per foundation)");

  // When the In-Progress pair fails, 'a:r' is free to unfreeze.
  busy.state = 'failed';
  bComp1.state = 'in-progress';
  c1.state = 'in-progress';
  t.equal(cl2.next(set), aFrozen, "'a:r' unfrozen once nothing of its foundation is Waiting/In-Progress");
});

t.test("next(): unfreezing compares whole foundations ('1:1' vs '1:11')", async (t) => {
  const cl1 = new Checklist(1, [1]);
  const cl2 = new Checklist(2, [1]);
  const set = [cl1, cl2];
  const busy = add(cl1, cand('10.0.0.1', 1, { foundation: '1' }), cand('10.0.1.1', 11, { foundation: '1' }), set);
  busy.state = 'in-progress';
  const f1_11 = add(cl2, cand('10.0.0.1', 2, { foundation: '1' }), cand('10.0.1.1', 12, { foundation: '11' }), set);
  const f1_1 = add(cl2, cand('10.0.0.1', 3, { foundation: '1', priority: 5000 }), cand('10.0.1.1', 13, { foundation: '1' }), set);
  f1_11.state = 'frozen';
  t.equal(f1_1.state, 'frozen');
  t.equal(cl2.next(set), f1_11, "'1:11' is unfrozen although '1:1' is In-Progress");
  t.equal(f1_1.state, 'frozen', "'1:1' (higher priority) stays Frozen");
});

// §8.1.2: once a component has its nominated pair, its remaining Frozen/Waiting pairs are not checked.
t.test('next(): isDone skips components', async (t) => {
  const cl = new Checklist(1, [1, 2]);
  const set = [cl];
  const c1 = add(cl, cand('10.0.0.1', 1, { foundation: 'a', priority: 9000 }), cand('10.0.1.1', 11, { foundation: 'x' }), set);
  const c2 = add(cl, cand('10.0.0.1', 2, { foundation: 'b', component: 2, priority: 100 }), cand('10.0.1.1', 12, { foundation: 'x', component: 2 }), set);
  t.equal(cl.next(set, (c) => c === 1), c2, 'component 1 done: its higher Waiting pair is skipped');
  t.equal(c1.state, 'waiting', 'skipped pair left alone');
  c2.state = 'frozen';
  c1.state = 'frozen';
  t.equal(cl.next(set, (c) => c === 2), c1, 'unfreezing also skips a done component');
  t.equal(c2.state, 'frozen', "done component's Frozen pair not unfrozen");
  t.equal(cl.next(set, () => true), undefined, 'all components done: nothing');
  t.equal(cl.hasPendingWork(() => true), false, 'and no pending work');
  t.equal(cl.hasPendingWork(() => false), true, 'while a component is not done, Waiting pairs are pending work');

  // Triggered pairs of a done component are dropped, unless the pair waits for nomination (§7.3.1.5).
  c2.state = 'frozen';
  cl.trigger(c2);
  t.equal(c2.state, 'waiting');
  t.equal(cl.next(set, (c) => c === 2), c1, 'triggered pair of the done component is skipped');
  cl.trigger(c2);
  c2.nominateOnSuccess = true;
  t.equal(cl.next(set, (c) => c === 2), c2, 'unless USE-CANDIDATE arrived for it');
});

// §8.1.2: once a component has a nominated pair, its other pairs are removed from the checklist (and the
// triggered queue). A Waiting pair left behind in a done component must therefore not count as "a pair of the
// foundation in the Waiting state" for §6.1.4.2 unfreezing, or the other component's Frozen pair of that
// foundation can never be checked: it stays Frozen for ever, and the component neither connects nor fails.
t.test('pruneComponent(): a Waiting pair of a done component does not keep its foundation frozen elsewhere (§8.1.2, §6.1.4.2)', async (t) => {
  const cl = new Checklist(1, [1, 2]);
  const set = [cl];
  const x1 = cand('10.0.1.1', 11, { foundation: 'x' });
  const x2 = cand('10.0.1.1', 12, { foundation: 'x', component: 2 });
  const q1 = add(cl, cand('10.0.0.1', 1, { foundation: 'b', priority: 9000 }), x1, set); // 'b:x' Waiting
  const p1 = add(cl, cand('10.0.0.2', 2, { foundation: 'a', priority: 5000 }), x1, set); // 'a:x' Waiting
  const q2 = add(cl, cand('10.0.0.1', 3, { foundation: 'b', priority: 8999, component: 2 }), x2, set); // 'b:x' Frozen
  const p2 = add(cl, cand('10.0.0.2', 4, { foundation: 'a', priority: 4999, component: 2 }), x2, set); // 'a:x' Frozen
  t.strictSame([q1.state, p1.state, q2.state, p2.state], ['waiting', 'waiting', 'frozen', 'frozen'], 'initial states');
  // q1 succeeds and is nominated: component 1 is done; p1 was never checked.
  q1.state = 'in-progress';
  cl.succeeded(q1, set);
  cl.addValid(q1);
  q1.nominated = true;
  // What the agent does when it selects q1 (§8.1.2).
  cl.pruneComponent(1);
  t.notOk(cl.pairs.includes(p1), 'the unchecked pair of the done component is removed');
  t.ok(cl.pairs.includes(q1), 'the selected pair stays');
  t.equal(q2.state, 'waiting', "success of 'b:x' unfroze q2");
  const done = (c: number) => c === 1;
  t.equal(cl.next(set, done), q2, 'q2 checked');
  q2.state = 'in-progress';
  cl.failed(q2);
  t.equal(cl.next(set, done), p2, "p2 ('a:x', component 2) is unfrozen: p1 of the done component will never be checked");
});

// §7.2.5.3.3: on success, every Frozen pair with the same foundation, in every checklist of the set, goes Waiting.
t.test('succeeded(): unfreezes the same foundation in every checklist (§7.2.5.3.3)', async (t) => {
  const cl1 = new Checklist(1, [1]);
  const cl2 = new Checklist(2, [1]);
  const set = [cl1, cl2];
  const L = (port: number, f: string) => cand('10.0.0.1', port, { foundation: f });
  const R = (port: number, f: string) => cand('10.0.1.1', port, { foundation: f });
  const done = add(cl1, L(1, '1'), R(11, '1'), set); // '1:1'
  done.state = 'in-progress';
  const same = add(cl2, L(2, '1'), R(12, '1'), set); // '1:1'
  const longer = add(cl2, L(3, '1'), R(13, '11'), set); // '1:11'
  const swapped = add(cl2, L(4, '11'), R(14, '1'), set); // '11:1'
  const sameFailed = add(cl2, L(5, '1'), R(15, '1'), set); // '1:1'
  const sameInCl1 = add(cl1, L(6, '1'), R(16, '1'), set); // '1:1'
  for (const p of [same, longer, swapped, sameInCl1]) p.state = 'frozen';
  sameFailed.state = 'failed';
  cl1.succeeded(done, set);
  t.equal(done.state, 'succeeded', 'the pair itself is Succeeded');
  t.equal(same.state, 'waiting', "'1:1' in the other checklist: Waiting");
  t.equal(sameInCl1.state, 'waiting', "'1:1' in the same checklist: Waiting");
  t.equal(longer.state, 'frozen', "'1:11' untouched");
  t.equal(swapped.state, 'frozen', "'11:1' untouched");
  t.equal(sameFailed.state, 'failed', 'a Failed pair of the foundation stays Failed');
});

// §7.3.1.4 triggered checks: Frozen/Waiting → queued and Waiting; Failed → Waiting and queued; Succeeded → no check.
// In-Progress: this library keeps the running transaction (as libnice) instead of restarting it.
t.test('trigger() semantics (§7.3.1.4)', async (t) => {
  const cl = new Checklist(1, [1]);
  const set = [cl];
  const local = cand('10.0.0.1', 1, { priority: 5000 });
  const mk = (port: number) => add(cl, local, cand('10.0.1.1', port, { foundation: `f${port}` }), set);
  const frozen = mk(10);
  const failed = mk(20);
  const inProgress = mk(30);
  const succeeded = mk(40);
  frozen.state = 'frozen';
  failed.state = 'failed';
  inProgress.state = 'in-progress';
  succeeded.state = 'succeeded';
  cl.trigger(frozen);
  cl.trigger(failed);
  cl.trigger(inProgress);
  cl.trigger(succeeded);
  t.equal(frozen.state, 'waiting', 'Frozen → Waiting');
  t.equal(failed.state, 'waiting', 'Failed → Waiting');
  t.equal(inProgress.state, 'in-progress', 'In-Progress unchanged');
  t.equal(succeeded.state, 'succeeded', 'Succeeded unchanged');
  t.strictSame(ports(cl.triggered), ['1>10', '1>20'], 'only the Frozen and Failed pairs queued, in order');
  cl.trigger(frozen);
  t.strictSame(ports(cl.triggered), ['1>10', '1>20'], 'a pair already queued is not queued twice');

  // failed() removes a pair from the queue; remove() forgets the pair entirely.
  cl.failed(frozen);
  t.equal(frozen.state, 'failed');
  t.strictSame(ports(cl.triggered), ['1>20'], 'failed pair leaves the queue');
  cl.remove(failed);
  t.strictSame(cl.triggered, [], 'removed pair leaves the queue');
  t.notOk(cl.pairs.includes(failed), 'and the list');
  t.equal(cl.get(local, failed.remote), undefined, 'and the index');
  t.ok(cl.addPair(local, failed.remote, true, set), 'so it can be formed again');
});

// §8.1.1: the controlling agent's nomination check goes out even on a Succeeded pair, ahead of other triggered checks.
t.test('triggerNomination() goes to the front', async (t) => {
  const cl = new Checklist(1, [1]);
  const set = [cl];
  const local = cand('10.0.0.1', 1, { priority: 5000 });
  const mk = (port: number) => add(cl, local, cand('10.0.1.1', port, { foundation: `f${port}` }), set);
  const a = mk(10);
  const b = mk(20);
  const best = mk(30);
  a.state = 'frozen';
  b.state = 'frozen';
  cl.trigger(a);
  cl.trigger(b);
  best.state = 'succeeded';
  best.nominating = true;
  cl.triggerNomination(best);
  cl.triggerNomination(best);
  t.strictSame(ports(cl.triggered), ['1>30', '1>10', '1>20'], 'nomination at the head, not duplicated');
  t.equal(cl.next(set, () => true), best, 'returned first, on a Succeeded pair, even with the component done');
  t.equal(cl.next(set), a, 'then the triggered queue in order');
  t.equal(cl.next(set), b);
});

// §7.2.5.3.2: the valid list, ordered by priority; bestValid and selected per component (§8.1.1).
t.test('valid list, bestValid() and selected()', async (t) => {
  const cl = new Checklist(1, [1, 2]);
  const set = [cl];
  const r = (port: number, priority: number, component = 1) => cand('10.0.1.1', port, { priority, component, foundation: `f${port}` });
  const local1 = cand('10.0.0.1', 1, { priority: 100000 });
  const local2 = cand('10.0.0.1', 2, { priority: 100000, component: 2 });
  const p300 = add(cl, local1, r(10, 300), set);
  const p200 = add(cl, local1, r(20, 200), set);
  const p100 = add(cl, local1, r(30, 100), set);
  const q500 = add(cl, local2, r(40, 500, 2), set);
  cl.addValid(p200);
  cl.addValid(p100);
  cl.addValid(q500);
  cl.addValid(p300);
  cl.addValid(p200);
  t.strictSame(ports(cl.valid), ['2>40', '1>10', '1>20', '1>30'], 'valid list sorted by priority, no duplicates');
  t.ok(p100.valid && p200.valid && p300.valid && q500.valid, 'valid flag set');
  t.equal(cl.bestValid(1), p300, 'best valid of component 1');
  t.equal(cl.bestValid(2), q500, 'best valid of component 2');
  t.equal(cl.selected(1), undefined, 'nothing nominated: nothing selected');
  p100.nominated = true;
  t.equal(cl.selected(1), p100, 'the only nominated pair');
  p200.nominated = true;
  t.equal(cl.selected(1), p200, 'highest-priority nominated pair (§8.1.1)');
  t.equal(cl.selected(2), undefined, 'component 2 has no nominated pair');
  p300.nominated = false;
  t.equal(cl.selected(1), p200, 'a non-nominated higher pair is not selected');
});

// §8.1.2 / §6.1.2.1: Completed when every component has a nominated valid pair; Failed when a component
// has no valid pair and nothing left to check; with trickle, not before end-of-candidates (RFC 8838 §8).
t.test('componentFailed() and updateState() (§8.1.2)', async (t) => {
  const cl = new Checklist(1, [1, 2]);
  const set = [cl];
  const p1 = add(cl, cand('10.0.0.1', 1, { foundation: 'a' }), cand('10.0.1.1', 11), set);
  const p2 = add(cl, cand('10.0.0.1', 2, { foundation: 'b', component: 2 }), cand('10.0.1.1', 12, { component: 2 }), set);
  const p2b = add(cl, cand('10.0.0.1', 3, { foundation: 'c', component: 2 }), cand('10.0.1.1', 13, { component: 2 }), set);
  t.equal(cl.state, 'running');
  t.equal(cl.updateState(), 'running', 'nothing checked yet: running');

  cl.succeeded(p1, set);
  cl.addValid(p1);
  p1.nominated = true;
  t.equal(cl.updateState(), 'running', 'component 1 nominated, component 2 not: running');
  t.equal(cl.componentFailed(2), false, 'component 2 still has pairs to check');

  cl.failed(p2);
  t.equal(cl.componentFailed(2), false, 'one failure, another pair left');
  cl.trigger(p2); // a triggered check revives the failed pair
  p2b.state = 'failed';
  t.equal(cl.componentFailed(2), false, 'a re-queued (Waiting) pair means not failed');
  cl.failed(p2);
  t.equal(cl.componentFailed(2), true, 'every pair Failed, nothing queued, no valid pair: failed');
  t.equal(cl.componentFailed(1), false, 'component 1 has a valid pair');
  t.equal(cl.updateState(), 'failed', 'a failed component fails the checklist');
  t.equal(cl.state, 'failed', 'state stored');

  cl.remoteGatheringDone = false;
  t.equal(cl.componentFailed(2), false, 'remote may still trickle candidates: not failed');
  t.equal(cl.updateState(), 'running', 'so the checklist is running');
  cl.remoteGatheringDone = true;

  // A valid (not nominated) pair for component 2: not failed, not completed.
  const v = add(cl, cand('10.0.0.1', 4, { foundation: 'd', component: 2 }), cand('10.0.1.1', 14, { component: 2 }), set);
  cl.succeeded(v, set);
  cl.addValid(v);
  t.equal(cl.componentFailed(2), false, 'a valid pair means not failed');
  t.equal(cl.updateState(), 'running', 'valid but not nominated: running');
  v.nominated = true;
  t.equal(cl.updateState(), 'completed', 'every component has a nominated valid pair: completed');

  // Nominated but not in the valid list does not count.
  const cl2 = new Checklist(2, [1]);
  const n = add(cl2, cand('10.0.0.1', 5), cand('10.0.1.1', 15), [cl2]);
  n.nominated = true;
  t.equal(cl2.updateState(), 'running', 'nominated flag alone (not valid) is not completion');

  // A checklist without trickle end starts with remoteGatheringDone as configured.
  const cl3 = new Checklist(3, [1], { remoteGatheringDone: false });
  t.equal(cl3.componentFailed(1), false, 'no pairs, but the remote may still send candidates');
  const cl4 = new Checklist(4, [1]);
  t.equal(cl4.componentFailed(1), true, 'no pairs and no more candidates: failed');
  t.equal(cl4.updateState(), 'failed');
});

// §7.3.1.1 / §7.2.5.1: after a role change every pair priority is recomputed (G is now the other side) and
// the checklist re-sorted.
t.test('setRole() recomputes priorities and re-sorts (§7.3.1.1)', async (t) => {
  const cl = new Checklist(1, [1]);
  const set = [cl];
  // Pair A: local 100, remote 50. Pair B: local 50, remote 100. Same MIN and MAX: only the G>D bit differs.
  const A = add(cl, cand('10.0.0.1', 1, { priority: 100 }), cand('10.0.1.1', 11, { priority: 50 }), set, true);
  const B = add(cl, cand('10.0.0.2', 2, { priority: 50 }), cand('10.0.1.2', 12, { priority: 100 }), set, true);
  const C = add(cl, cand('10.0.0.3', 3, { priority: 40 }), cand('10.0.1.3', 13, { priority: 30 }), set, true);
  t.strictSame([A.priority, B.priority], [50n * 4294967296n + 201n, 50n * 4294967296n + 200n], 'controlling: A has the tie bit');
  t.strictSame(cl.pairs, [A, B, C], 'controlling order: A, B, C');
  cl.addValid(B);
  cl.addValid(A);
  t.strictSame(cl.valid, [A, B], 'valid list in the same order');
  cl.setRole(false);
  t.strictSame([A.priority, B.priority], [50n * 4294967296n + 200n, 50n * 4294967296n + 201n], 'controlled: B has the tie bit');
  t.equal(C.priority, 30n * 4294967296n + 80n, 'C: G = remote 30 < D = local 40');
  t.strictSame(cl.pairs, [B, A, C], 'controlled order: B, A, C');
  t.strictSame(cl.valid, [B, A], 'valid list re-sorted');
  t.equal(cl.bestValid(1), B, 'bestValid follows');

  // A valid pair outside the checklist (local prflx, §7.2.5.3.2) is recomputed too.
  const cl2 = new Checklist(2, [1]);
  const X = add(cl2, cand('10.0.0.1', 1, { priority: 100 }), cand('10.0.1.1', 11, { priority: 50 }), [cl2], true);
  const Y = add(cl2, cand('10.0.0.2', 2, { priority: 50 }), cand('10.0.1.2', 12, { priority: 100 }), [cl2], true);
  cl2.remove(X);
  cl2.remove(Y);
  cl2.addValid(X);
  cl2.addValid(Y);
  t.strictSame(cl2.valid, [X, Y]);
  cl2.setRole(false);
  t.strictSame(cl2.valid, [Y, X], 'valid-only pairs re-prioritised and re-sorted');
});
