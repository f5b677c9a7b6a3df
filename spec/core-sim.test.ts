/**
 * RFC 8445 §6-§8 behaviour of two agents end to end on the in-memory network
 * (no socket, virtual time, a seed): pairing and freezing across streams,
 * triggered checks, both nomination modes, role conflicts, peer-reflexive
 * candidates both ways, restart, consent, TURN allocations lost and freed,
 * and a close() bounded with silent servers.
 */
import t from 'tap';
import type { Agent, ComponentState, ServerError } from '../lib/index.js';
import { ATTR, classOf, decodeStun, findAttribute } from '../lib/stun/message.js';
import type { SimPacketEvent } from '../lib/sim/index.js';
import { simPair, exchange, runUntilState, closePair, type SimPair } from './support/sim-pair.js';

function isRequest(e: SimPacketEvent): boolean {
  const m = e.data.length >= 20 && e.data[0]! < 4 ? decodeStun(e.data) : undefined;
  return m !== undefined && m.method === 1 && classOf(m.type) === 'request';
}

/** Records state changes with their virtual times. */
function timeline(p: SimPair, agent: Agent): Array<{ at: number; state: ComponentState; stream: number; component: number }> {
  const out: Array<{ at: number; state: ComponentState; stream: number; component: number }> = [];
  agent.on('component-state-changed', (stream, component, state) => out.push({ at: p.net.now(), state, stream, component }));
  return out;
}

for (const mode of ['regular', 'aggressive'] as const) {
  t.test(`${mode} nomination: both sides ready; regular within one round trip of the first valid pair`, async (t) => {
    const p = await simPair({ servers: false, a: { nominationMode: mode }, b: { nominationMode: mode } });
    const ta = timeline(p, p.a);
    exchange(p);
    await runUntilState(p, 'ready', [[p.a, 1, 1], [p.b, 1, 1]]);
    const connected = ta.find((e) => e.state === 'connected')!.at;
    const ready = ta.find((e) => e.state === 'ready')!.at;
    // Two links of 5 ms each way: a round trip is 20 virtual ms.
    t.ok(ready - connected <= 20 + 1, `ready ${ready - connected} ms after the first valid pair`);
    t.same(p.a.getSelectedPair(1, 1)!.remote.port, p.b.getLocalCandidates(1, 1)[0]!.port);
    await closePair(p);
  });
}

t.test('a check on a pair whose own check is In-Progress produces a new check at once (§7.3.1.4)', async (t) => {
  // A is public, B behind an EIM NAT: A's first check to B's srflx dies at B's NAT (no hole yet).
  const p = await simPair({ sideB: 'eim', a: { stunInitialTimeout: 500 }, b: { stunInitialTimeout: 500 } });
  const events: SimPacketEvent[] = [];
  p.net.observe((e) => events.push(e));
  // A checks first; B hears A's candidates 100 ms later and only then opens its NAT towards A.
  p.a.setRemoteCandidates(1, 1, p.b.getLocalCandidates(1, 1));
  await p.net.run({ for: 100 });
  p.b.setRemoteCandidates(1, 1, p.a.getLocalCandidates(1, 1));
  await runUntilState(p, 'ready', [[p.a, 1, 1], [p.b, 1, 1]]);
  const aAddr = p.a.getLocalCandidates(1, 1)[0]!;
  const bSrflx = p.b.getLocalCandidates(1, 1).find((c) => c.type === 'srflx')!;
  const toSrflx = (e: SimPacketEvent) => e.to.address === bSrflx.address && e.to.port === bSrflx.port && isRequest(e);
  const first = events.find((e) => e.kind === 'send' && toSrflx(e) && e.from.port === aAddr.port)!;
  const fate = events.filter((e) => e.id === first.id).map((e) => e.kind + (e.reason ? `:${e.reason}` : ''));
  t.same(fate, ['send', 'drop:filtered'], 'the first check was filtered by B\'s NAT');
  const peerCheck = events.find((e) => e.kind === 'deliver' && e.to.port === aAddr.port && e.to.address === aAddr.address && isRequest(e) &&
    e.from.address === bSrflx.address && e.from.port === bSrflx.port)!;
  const again = events.find((e) => e.kind === 'send' && e.time >= peerCheck.time && toSrflx(e))!;
  t.equal(again.time, peerCheck.time, `the new check left at once (t=${again.time}), not at the retransmission (t=${first.time + 500})`);
  t.ok(again.time < first.time + 500, 'before the first retransmission would have gone');
  t.ok(p.net.now() < first.time + 500, 'and both sides are ready by then');
  await closePair(p);
});

t.test('freezing across streams: one pair per foundation Waiting, the rest unfrozen when it succeeds (§6.1.2.6, §7.2.5.3.3)', async (t) => {
  const p = await simPair({ servers: false, streams: 2 });
  exchange(p, 2);
  const s1 = p.a.getPairs(1).map((x) => x.state);
  const s2 = p.a.getPairs(2).map((x) => x.state);
  // The ordinary check of stream 1 went out at once; stream 2's pair has the same foundation.
  t.same(s1, ['in-progress'], 'stream 1: its pair is checked');
  t.same(s2, ['frozen'], 'stream 2: the pair with the same foundation waits frozen');
  await runUntilState(p, 'ready', [[p.a, 1, 1], [p.a, 2, 1], [p.b, 1, 1], [p.b, 2, 1]]);
  t.pass('both streams ready');
  await closePair(p);
});

t.test('role conflicts resolve both ways (§7.3.1.1, §7.2.5.1)', async (t) => {
  for (const both of [true, false]) {
    const p = await simPair({ servers: false, a: { controllingMode: both }, b: { controllingMode: both } });
    exchange(p);
    await runUntilState(p, 'ready', [[p.a, 1, 1], [p.b, 1, 1]]);
    t.not(p.a.controllingMode, p.b.controllingMode, `both ${both ? 'controlling' : 'controlled'}: exactly one ends controlling`);
    t.ok(p.a.getStats().roleConflicts + p.b.getStats().roleConflicts > 0, 'the conflict was counted');
    await closePair(p);
  }
});

t.test('peer-reflexive candidates both ways; regular nomination re-checks the pair that produced the valid pair', async (t) => {
  // A behind a symmetric NAT with no STUN server: its mapped address is learned only from a check's response.
  const p = await simPair({ sideA: 'symmetric', servers: false });
  const learned: string[] = [];
  p.b.on('new-remote-candidate', (c) => learned.push(c.type));
  // B never hears A's candidates: it must learn A from A's checks.
  p.a.setRemoteCandidates(1, 1, p.b.getLocalCandidates(1, 1));
  await runUntilState(p, 'ready', [[p.a, 1, 1], [p.b, 1, 1]]);
  t.same(learned, ['prflx'], 'B learned a remote peer-reflexive candidate');
  const valid = p.a.getPairs(1).find((x) => x.valid)!;
  t.equal(valid.local.type, 'prflx', 'A\'s valid pair has a local peer-reflexive candidate (§7.2.5.3.1)');
  t.equal(valid.nominated, true, 'and it is the nominated pair');
  t.equal(p.a.getSelectedPair(1, 1)!.local.type, 'prflx');
  const generating = p.a.getPairs(1).find((x) => x.local.type === 'host')!;
  t.equal(generating.state, 'succeeded', 'the generating pair is in the checklist and succeeded');
  await closePair(p);
});

t.test('restart (§9): a new pair is selected and data flows throughout', async (t) => {
  const p = await simPair({ servers: false });
  exchange(p);
  await runUntilState(p, 'ready', [[p.a, 1, 1], [p.b, 1, 1]]);
  const got = new Set<number>();
  p.b.attachRecv(1, 1, (d) => got.add(d.readUInt16BE(1)));
  let n = 0;
  let refused = 0;
  const send = () => {
    const d = Buffer.alloc(3);
    d[0] = 0x80;
    d.writeUInt16BE(n++, 1);
    if (!p.a.send(1, 1, d)) refused++;
  };
  for (let i = 0; i < 10; i++) { send(); await p.net.run({ for: 5 }); }
  const before = p.a.getLocalCredentials(1);
  p.a.restartStream(1);
  send();
  const ca = p.a.getLocalCredentials(1);
  t.not(ca.ufrag, before.ufrag);
  p.b.setRemoteCredentials(1, ca.ufrag, ca.pwd);
  const cb = p.b.getLocalCredentials(1);
  p.a.setRemoteCredentials(1, cb.ufrag, cb.pwd);
  let selected = 0;
  p.a.on('new-selected-pair', () => selected++);
  exchange(p);
  for (let i = 0; i < 20; i++) { send(); await p.net.run({ for: 5 }); }
  await p.net.run({ until: () => selected > 0, timeout: 5000 });
  for (let i = 0; i < 10; i++) { send(); await p.net.run({ for: 5 }); }
  await p.net.run({ for: 50 });
  t.equal(refused, 0, 'send() never refused');
  t.equal(got.size, n, `all ${n} datagrams arrived across the restart`);
  await closePair(p);
});

t.test('consent (RFC 7675): silence → disconnected, answers again → ready, 30 s of silence → consent lost and no more data', async (t) => {
  const p = await simPair({ servers: false });
  exchange(p);
  await runUntilState(p, 'ready', [[p.a, 1, 1], [p.b, 1, 1]]);
  p.hostB.setLink({ loss: 1 });
  const cut = p.net.now();
  await runUntilState(p, 'disconnected', [[p.a, 1, 1]], 20_000);
  t.ok(p.net.now() - cut >= 10_000, 'disconnected after disconnectedTimeout (10 s)');
  p.hostB.setLink({ loss: 0 });
  await runUntilState(p, 'ready', [[p.a, 1, 1]], 10_000);
  p.hostB.setLink({ loss: 1 });
  const cut2 = p.net.now();
  let lost = false;
  p.a.on('consent-lost', () => { lost = true; });
  await p.net.run({ until: () => lost, timeout: 40_000 });
  t.ok(p.net.now() - cut2 >= 30_000, `consent lost ${Math.round(p.net.now() - cut2)} ms after the last answer`);
  t.equal(p.a.getComponentState(1, 1), 'failed');
  t.equal(p.a.send(1, 1, Buffer.from([0x80])), false, 'sending stopped');
  await closePair(p);
});

t.test('TURN: unused allocations are freed once the checklist completes (§8.3); a lost one is withdrawn at once', async (t) => {
  const direct = await simPair({ sideA: 'eim', sideB: 'eim' });
  exchange(direct);
  await runUntilState(direct, 'ready', [[direct.a, 1, 1], [direct.b, 1, 1]]);
  t.equal(direct.turn.stats.active, 2, 'both allocated');
  await direct.net.run({ for: 3500 });
  t.equal(direct.turn.stats.active, 0, 'freed 3 s after a direct pair was selected');
  t.notOk(direct.a.getLocalCandidates(1, 1).some((c) => c.type === 'relay'), 'the relayed candidate is gone');
  t.equal(direct.a.getComponentState(1, 1), 'ready', 'the session is undisturbed');
  await closePair(direct);

  const relayed = await simPair({ sideA: 'symmetric', sideB: 'symmetric' });
  exchange(relayed);
  await runUntilState(relayed, 'ready', [[relayed.a, 1, 1], [relayed.b, 1, 1]]);
  t.ok(relayed.a.getSelectedPair(1, 1)!.local.type === 'relay' || relayed.a.getSelectedPair(1, 1)!.remote.type === 'relay');
  const errors: ServerError[] = [];
  relayed.a.on('server-error', (_s, _c, e) => errors.push(e));
  relayed.b.on('server-error', (_s, _c, e) => errors.push(e));
  relayed.turn.restart();
  // The next refresh (before the 600 s lifetime ends) meets 437: the allocation is gone.
  await relayed.net.run({ until: () => errors.length > 0, timeout: 700_000 });
  t.equal(errors[0]!.stunCode, 437, `a server-error names the loss: ${errors[0]!.message}`);
  const owner = errors.length && relayed.a.getLocalCandidates(1, 1).some((c) => c.type === 'relay') ? relayed.b : relayed.a;
  t.notOk(owner.getLocalCandidates(1, 1).some((c) => c.type === 'relay'), 'its relayed candidate is withdrawn');
  t.notOk(owner.getPairs(1).some((x) => x.local.type === 'relay'), 'with its pairs');
  await closePair(relayed);
});

t.test('close() with silent STUN and TURN servers resolves within serverTimeout plus a small bound; gathering settles', async (t) => {
  const p = await simPair({ servers: false });
  p.stun.silent = true;
  p.turn.silent = true;
  const { Agent } = await import('../lib/index.js');
  const agent = new Agent({
    network: p.hostA.network, serverTimeout: 2000,
    stunServers: [p.stun.url], turnServers: [{ url: p.turn.url, username: 'user', credential: 'pass' }],
  });
  const s = agent.addStream(1);
  let gathered = false;
  void agent.gatherCandidates(s).then(() => { gathered = true; });
  await p.net.run({ for: 300 });
  const start = p.net.now();
  let closed = false;
  void agent.close().then(() => { closed = true; });
  await p.net.run({ until: () => closed && gathered, timeout: 10_000 });
  t.ok(p.net.now() - start <= 2000 + 300, `closed after ${p.net.now() - start} virtual ms`);
  t.ok(gathered, 'gatherCandidates() settled');
  // An allocation that exists, then a server that stops answering: the deallocation is bounded by min(serverTimeout, 1 s).
  p.turn.silent = false;
  const b2 = new Agent({ network: p.hostA.network, serverTimeout: 2000, forceRelay: true, turnServers: [{ url: p.turn.url, username: 'user', credential: 'pass' }] });
  const s2 = b2.addStream(1);
  let g2 = false;
  void b2.gatherCandidates(s2).then(() => { g2 = true; });
  await p.net.run({ until: () => g2, timeout: 5000 });
  t.equal(b2.getLocalCandidates(s2, 1)[0]?.type, 'relay', 'allocated');
  p.turn.silent = true;
  const start2 = p.net.now();
  let closed2 = false;
  void b2.close().then(() => { closed2 = true; });
  await p.net.run({ until: () => closed2, timeout: 10_000 });
  t.ok(p.net.now() - start2 <= 1000 + 300, `closed ${p.net.now() - start2} virtual ms after, the deallocation unanswered`);
  await closePair(p);
  t.equal(p.net.pending, 0, 'no timer of any agent left on the clock');
});

t.test('one timer per agent: at most one armed at any moment', async (t) => {
  const p = await simPair({ sideA: 'eim', sideB: 'symmetric' });
  const base = p.hostA.network;
  let live = 0;
  let max = 0;
  const { Agent } = await import('../lib/index.js');
  const counted = {
    now: () => base.now(), randomBytes: (n: number) => base.randomBytes(n), interfaces: () => base.interfaces(),
    bindDatagram: (a: string, port: number) => base.bindDatagram(a, port), connectStream: base.connectStream.bind(base),
    listenStream: base.listenStream.bind(base), lookup: base.lookup.bind(base),
    setTimer: (fn: () => void, ms: number) => {
      live++;
      max = Math.max(max, live);
      let done = false;
      const h = base.setTimer(() => { if (!done) { done = true; live--; } fn(); }, ms);
      return { h, stop: () => { if (!done) { done = true; live--; } } };
    },
    clearTimer: (x: unknown) => { const y = x as { h: unknown; stop(): void }; y.stop(); base.clearTimer(y.h); },
  };
  const agent = new Agent({ network: counted, stunServers: [p.stun.url], turnServers: [{ url: p.turn.url, username: 'user', credential: 'pass' }], controllingMode: true });
  const s = agent.addStream(2);
  await Promise.all([agent.gatherCandidates(s), p.net.run({ for: 3000 })]);
  agent.setRemoteCredentials(s, 'abcd', 'abcdefghijklmnopqrstuvwxyz');
  agent.setRemoteCandidates(s, 1, ['candidate:1 1 udp 2130706431 198.51.100.9 5000 typ host']);
  await p.net.run({ for: 20_000 });
  t.equal(max, 1, 'never more than one timer armed');
  let closed = false;
  void agent.close().then(() => { closed = true; });
  await p.net.run({ until: () => closed, timeout: 5000 });
  t.equal(live, 0, 'none after close()');
  await closePair(p);
});

t.test('USE-CANDIDATE is only honoured before MESSAGE-INTEGRITY (sanity of the hot path on the wire)', async (t) => {
  // The fast encoder puts USE-CANDIDATE before MESSAGE-INTEGRITY, where a peer must look for it.
  const p = await simPair({ servers: false, a: { nominationMode: 'aggressive' } });
  const checks: Buffer[] = [];
  p.net.observe((e) => { if (e.kind === 'send' && isRequest(e)) checks.push(e.data); });
  exchange(p);
  await runUntilState(p, 'ready', [[p.a, 1, 1], [p.b, 1, 1]]);
  const withUse = checks.filter((c) => findAttribute(c, ATTR.USE_CANDIDATE) >= 0);
  t.ok(withUse.length > 0, 'aggressive checks carry USE-CANDIDATE');
  for (const c of withUse) t.ok(findAttribute(c, ATTR.USE_CANDIDATE) < findAttribute(c, ATTR.MESSAGE_INTEGRITY), 'before MESSAGE-INTEGRITY');
  await closePair(p);
});
