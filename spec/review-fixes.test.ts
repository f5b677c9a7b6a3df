/**
 * The defects a review of the first core found (issue 10), each shown on real
 * loopback sockets against an agent, most with a hand-driven peer (RawPeer)
 * that forges exactly the packet that used to be mishandled.
 */
import t from 'tap';
import { Agent, InvalidArgumentError, CandidateParseError, type Candidate } from '../lib/index.js';
import { ATTR, getErrorCode, getAttributeValue } from '../lib/stun/message.js';
import { LOOPBACK, makePair, exchangeCandidates, waitState, waitFor, closeAll, deadPort, filteredNetwork } from './helpers.js';
import { RawPeer, appendAfterIntegrity, usernameOf, withAttributeBeforeIntegrity } from './support/raw-peer.js';

/** An agent with one gathered stream whose remote is a RawPeer with the given credentials. */
async function agentWithRawPeer(opts: ConstructorParameters<typeof Agent>[0] = {}) {
  const peer = await RawPeer.open();
  const agent = new Agent({ ...LOOPBACK, ...opts });
  const s = agent.addStream(1);
  await agent.gatherCandidates(s);
  const local = agent.getLocalCredentials(s);
  const remote = { ufrag: 'rawp', pwd: 'rawpeerpasswordrawpeer' };
  agent.setRemoteCredentials(s, remote.ufrag, remote.pwd);
  const port = agent.getLocalCandidates(s, 1)[0]!.port;
  return { peer, agent, s, local, remote, port, close: async () => { await agent.close(); await peer.close(); } };
}

t.test('remote candidate objects are validated as strictly as strings (net.isIP, port 1-65535)', async (t) => {
  const a = new Agent({ ...LOOPBACK });
  t.teardown(() => a.close());
  const s = a.addStream(1);
  const good: Candidate = { type: 'host', transport: 'udp', foundation: '1', component: 1, priority: 1, address: '127.0.0.1', port: 5000 };
  for (const [field, value] of [['port', 0], ['address', '999.999.1.1'], ['address', 'not:an:ip'], ['port', 70000], ['address', '']] as const) {
    t.throws(() => a.setRemoteCandidates(s, 1, [good, { ...good, [field]: value }]), InvalidArgumentError, `${field} ${JSON.stringify(value)} refused`);
  }
  t.equal(a.getRemoteCandidates(s, 1).length, 0, 'a bad element adds nothing');
  t.equal(a.setRemoteCandidates(s, 1, [good]), 1, 'the good one alone is accepted');
});

t.test('RFC 8839: extension transports and types, and raddr without rport, parse; unusable ones are skipped, the rest kept', async (t) => {
  const a = new Agent({ ...LOOPBACK });
  t.teardown(() => a.close());
  const s = a.addStream(1);
  const added = a.setRemoteCandidates(s, 1, [
    'candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host',
    'candidate:2 1 ssltcp 2130706430 127.0.0.1 443 typ host',
    'candidate:3 1 udp 2130706429 127.0.0.1 5001 typ newtype',
    'candidate:4 1 udp 1694498815 127.0.0.1 5002 typ srflx raddr 10.0.0.1',
    'candidate:5 1 tcp 2105458943 127.0.0.1 9 typ host tcptype active',
    'candidate:6 1 udp 2130706428 1f3a2b4c-0000-4000-8000-000000000000.local 5003 typ host',
  ]);
  t.equal(added, 2, 'the UDP host and the srflx without rport are added');
  t.same(a.getRemoteCandidates(s, 1).map((c) => c.port).sort(), [5000, 5002]);
  t.throws(() => a.setRemoteCandidates(s, 1, ['candidate:1 1 udp x 127.0.0.1 5000 typ host']), CandidateParseError, 'a malformed line still throws');
});

t.test('the trickle timeout is re-armed by every new remote candidate', async (t) => {
  const a = new Agent({ ...LOOPBACK, controllingMode: true, iceTrickle: true, trickleTimeout: 400, stunMaxRetransmissions: 1 });
  t.teardown(() => a.close());
  const s = a.addStream(1);
  await a.gatherCandidates(s);
  a.setRemoteCredentials(s, 'abcd', 'abcdefghijklmnopqrstuvwxyz');
  const failed = waitState(a, s, 1, 'failed', 5000);
  const t0 = performance.now();
  a.addRemoteCandidate(s, `candidate:1 1 udp 2130706431 127.0.0.1 ${await deadPort()} typ host`);
  // The first pair fails (two transmissions, 100 + 200 ms); a second candidate comes later.
  await waitFor(a, 'component-state-changed', () => false, 0).catch(() => undefined);
  const second = await deadPort();
  await new Promise<void>((r) => { const h = setInterval(() => { if (a.getPairs(s).every((p) => p.state === 'failed')) { clearInterval(h); r(); } }, 5); });
  const secondAt = performance.now();
  a.addRemoteCandidate(s, `candidate:2 1 udp 2130706430 127.0.0.1 ${second} typ host`);
  await failed;
  const done = performance.now();
  t.ok(done - secondAt >= 400, `failed ${Math.round(done - secondAt)} ms after the second candidate (timeout 400)`);
  t.ok(done - t0 < 4000, 'and not never');
});

t.test('attributes after MESSAGE-INTEGRITY are ignored: an appended USE-CANDIDATE does not nominate (RFC 8489 §14.5)', async (t) => {
  const r = await agentWithRawPeer({ controllingMode: false });
  t.teardown(r.close);
  r.agent.setRemoteCandidates(r.s, 1, [r.peer.candidate()]);
  // The agent checks us; we answer, so our pair is valid on its side.
  const req = await r.peer.nextRequest();
  r.peer.answer(req, r.remote.pwd);
  await waitState(r.agent, r.s, 1, 'connected');
  const check = RawPeer.check({ username: `${r.local.ufrag}:${r.remote.ufrag}`, password: r.local.pwd, controlling: true });
  const forged = appendAfterIntegrity(check, ATTR.USE_CANDIDATE);
  const answer = await r.peer.request(forged, r.port);
  t.equal(answer.cls, 'success', 'the check itself is authentic and answered');
  // A real nomination afterwards proves the agent would have reacted to one.
  const selected = waitFor(r.agent, 'new-selected-pair');
  t.equal(r.agent.getSelectedPair(r.s, 1), undefined, 'nothing selected by the forged attribute');
  await r.peer.request(RawPeer.check({ username: `${r.local.ufrag}:${r.remote.ufrag}`, password: r.local.pwd, controlling: true, useCandidate: true }), r.port);
  await selected;
  t.pass('the genuine USE-CANDIDATE selects');
});

t.test('an error response without MESSAGE-INTEGRITY does not fail the check; it keeps retransmitting (UDP)', async (t) => {
  const r = await agentWithRawPeer({ controllingMode: true });
  t.teardown(r.close);
  r.agent.setRemoteCandidates(r.s, 1, [r.peer.candidate()]);
  const first = await r.peer.nextRequest();
  r.peer.answerError(first, 400, 'Bad Request');
  r.peer.answerError(first, 500, 'Server Error');
  const again = await r.peer.nextRequest();
  t.ok(again.stun!.transactionId.equals(first.stun!.transactionId), 'the same transaction is retransmitted');
  t.equal(r.agent.getPairs(r.s)[0]!.state, 'in-progress', 'the pair has not failed');
  r.peer.answer(again, r.remote.pwd);
  await waitState(r.agent, r.s, 1, 'connected');
  t.ok(r.agent.getStats().dropped.badIntegrity >= 2, 'the forged errors were counted');
});

t.test('consent covers the pair that carries data before nomination', async (t) => {
  const r = await agentWithRawPeer({ controllingMode: false, consentInterval: 50, disconnectedTimeout: 400, consentTimeout: 2000 });
  t.teardown(r.close);
  r.agent.setRemoteCandidates(r.s, 1, [r.peer.candidate()]);
  const req = await r.peer.nextRequest();
  r.peer.answer(req, r.remote.pwd);
  await waitState(r.agent, r.s, 1, 'connected');
  t.ok(r.agent.send(r.s, 1, Buffer.from([0x80])), 'data goes on the valid pair before nomination');
  // Never nominated: the agent must still check consent on that pair.
  const consent = await r.peer.nextRequest(2000);
  t.equal(usernameOf(consent), `${r.remote.ufrag}:${r.local.ufrag}`);
  t.ok(r.agent.getStats().consentChecksSent >= 1, 'counted as a consent check');
  // Unanswered, the component goes disconnected (not ready: it never was).
  await waitState(r.agent, r.s, 1, 'disconnected', 3000);
});

t.test('checks with the previous generation\'s credentials keep the old pair alive but teach nothing', async (t) => {
  const p = await makePair({}, {});
  t.teardown(() => closeAll(p.a, p.b));
  exchangeCandidates(p);
  await Promise.all([waitState(p.a, 1, 1, 'ready'), waitState(p.b, 1, 1, 'ready')]);
  const oldB = p.b.getLocalCredentials(1);
  const oldA = p.a.getLocalCredentials(1);
  p.b.restartStream(1);
  const raw = await RawPeer.open();
  t.teardown(() => raw.close());
  let learned = 0;
  p.b.on('new-remote-candidate', () => learned++);
  const port = p.b.getLocalCandidates(1, 1)[0]!.port;
  const answer = await raw.request(RawPeer.check({ username: `${oldB.ufrag}:${oldA.ufrag}`, password: oldB.pwd, controlling: true, useCandidate: true }), port);
  t.equal(answer.cls, 'success', 'answered with the old password (consent on the old pair goes on)');
  t.equal(learned, 0, 'no peer-reflexive candidate from an old-generation request');
  t.same(p.b.getPairs(1), [], 'no pair in the new generation');
});

t.test('a stream that cannot check (no remote credentials) does not keep another stream frozen', async (t) => {
  const p = await makePair({}, {}, 2, 1);
  t.teardown(() => closeAll(p.a, p.b));
  // Stream 2 of A gets candidates but its remote credentials are withdrawn: A restarts it and never hears back.
  p.a.restartStream(2);
  p.a.setRemoteCandidates(2, 1, p.b.getLocalCandidates(2, 1));
  p.a.setRemoteCandidates(1, 1, p.b.getLocalCandidates(1, 1));
  p.b.setRemoteCandidates(1, 1, p.a.getLocalCandidates(1, 1));
  await Promise.all([waitState(p.a, 1, 1, 'ready'), waitState(p.b, 1, 1, 'ready')]);
  t.pass('stream 1 connected although stream 2 holds a pair of the same foundation');
});

t.test('after nomination the component\'s checks in flight are cancelled (§8.1.2)', async (t) => {
  const dead = await deadPort();
  const p = await makePair({ nominationTimeout: 150, stunInitialTimeout: 200, stunMaxTimeout: 400, stunMaxRetransmissions: 4, consentInterval: 2500 }, {});
  t.teardown(() => closeAll(p.a, p.b));
  const good = p.b.getLocalCandidates(1, 1)[0]!;
  p.a.setRemoteCandidates(1, 1, [{ ...good, port: dead, foundation: '99', priority: good.priority + 1000 }, good]);
  p.b.setRemoteCandidates(1, 1, p.a.getLocalCandidates(1, 1));
  await waitState(p.a, 1, 1, 'ready');
  const atReady = p.a.getStats();
  // Wait past the dead pair's whole horizon (200+400+400+400+400 ms): the next consent check comes after it.
  await waitFor(p.a, 'component-state-changed', () => false, 0).catch(() => undefined);
  await new Promise<void>((r) => { const h = setInterval(() => { if (p.a.getStats().consentChecksSent > atReady.consentChecksSent) { clearInterval(h); r(); } }, 20); });
  const after = p.a.getStats();
  t.equal(after.checkRetransmissions, atReady.checkRetransmissions, 'no retransmission after nomination');
  t.equal(after.checksTimedOut, 0, 'the cancelled check never times out');
});

t.test('a component that lost consent stays failed when a pair becomes valid again', async (t) => {
  let drop = false;
  const timers = { consentInterval: 30, disconnectedTimeout: 100, consentTimeout: 300 };
  const a = new Agent({ ...LOOPBACK, ...timers, controllingMode: true });
  const b = new Agent({ ...LOOPBACK, ...timers, network: filteredNetwork((buf) => !(drop && buf[0] === 0x01 && buf[1] === 0x01)) });
  t.teardown(() => closeAll(a, b));
  const sa = a.addStream(1);
  const sb = b.addStream(1);
  await Promise.all([a.gatherCandidates(sa), b.gatherCandidates(sb)]);
  a.setRemoteCredentials(sa, b.getLocalCredentials(sb).ufrag, b.getLocalCredentials(sb).pwd);
  b.setRemoteCredentials(sb, a.getLocalCredentials(sa).ufrag, a.getLocalCredentials(sa).pwd);
  a.setRemoteCandidates(sa, 1, b.getLocalCandidates(sb, 1));
  b.setRemoteCandidates(sb, 1, a.getLocalCandidates(sa, 1));
  await waitState(a, sa, 1, 'ready');
  drop = true;
  await waitFor(a, 'consent-lost', () => true, 3000);
  drop = false;
  // A new remote candidate gives a new pair that succeeds.
  const extra = await RawPeer.open();
  t.teardown(() => extra.close());
  a.addRemoteCandidate(sa, extra.candidate());
  const req = await extra.nextRequest();
  extra.answer(req, b.getLocalCredentials(sb).pwd);
  await waitFor(extra.socket, 'message', () => true, 300).catch(() => undefined);
  t.equal(a.getComponentState(sa, 1), 'failed', 'still failed: only an ICE restart revives it (RFC 7675 §5.1)');
  t.equal(a.send(sa, 1, Buffer.from([0x80])), false, 'and nothing is sent');
});

t.test('remote credentials set twice before any check are not a restart', async (t) => {
  const a = new Agent({ ...LOOPBACK });
  t.teardown(() => a.close());
  const s = a.addStream(1);
  const local = a.getLocalCredentials(s);
  a.setRemoteCredentials(s, 'abcd', 'abcdefghijklmnopqrstuvwxyz');
  a.setRemoteCandidates(s, 1, ['candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host']);
  a.setRemoteCredentials(s, 'efgh', 'efghijklmnopqrstuvwxyzab');
  t.same(a.getLocalCredentials(s), local, 'local credentials unchanged');
  t.equal(a.getRemoteCandidates(s, 1).length, 1, 'the candidate is kept');
});

t.test('a peer restart: candidates signalled before the new credentials are kept', async (t) => {
  const p = await makePair({}, {});
  t.teardown(() => closeAll(p.a, p.b));
  exchangeCandidates(p);
  await Promise.all([waitState(p.a, 1, 1, 'ready'), waitState(p.b, 1, 1, 'ready')]);
  p.a.restartStream(1);
  const ca = p.a.getLocalCredentials(1);
  // B's application hears A's new candidates first, then its credentials.
  p.b.setRemoteCandidates(1, 1, p.a.getLocalCandidates(1, 1));
  const before = p.b.getLocalCredentials(1);
  const selB = waitFor(p.b, 'new-selected-pair');
  p.b.setRemoteCredentials(1, ca.ufrag, ca.pwd);
  t.not(p.b.getLocalCredentials(1).ufrag, before.ufrag, 'B restarted too');
  t.equal(p.b.getRemoteCandidates(1, 1).length, 1, 'the candidate that came first is kept');
  const cb = p.b.getLocalCredentials(1);
  p.a.setRemoteCredentials(1, cb.ufrag, cb.pwd);
  p.a.setRemoteCandidates(1, 1, p.b.getLocalCandidates(1, 1));
  await selB;
  t.pass('the new generation selected its pair');
});

t.test('420 Unknown Attribute for unknown comprehension-required attributes (RFC 8489 §6.3)', async (t) => {
  const r = await agentWithRawPeer();
  t.teardown(r.close);
  const req = withAttributeBeforeIntegrity({ username: `${r.local.ufrag}:${r.remote.ufrag}`, password: r.local.pwd }, 0x0030, Buffer.from([1, 2, 3, 4]));
  const answer = await r.peer.request(req, r.port);
  t.equal(answer.cls, 'error');
  t.equal(getErrorCode(answer)!.code, 420);
  t.same([...getAttributeValue(answer, ATTR.UNKNOWN_ATTRIBUTES)!], [0x00, 0x30], 'UNKNOWN-ATTRIBUTES names it');
  t.same(r.agent.getPairs(r.s), [], 'nothing learned');
});

t.test('an IPv4-mapped IPv6 remote candidate is the IPv4 address it maps', async (t) => {
  const p = await makePair({}, {});
  t.teardown(() => closeAll(p.a, p.b));
  const bc = p.b.getLocalCandidates(1, 1)[0]!;
  t.equal(p.a.setRemoteCandidates(1, 1, [{ ...bc, address: `::ffff:${bc.address}` }]), 1);
  t.equal(p.a.getRemoteCandidates(1, 1)[0]!.address, '127.0.0.1');
  p.b.setRemoteCandidates(1, 1, p.a.getLocalCandidates(1, 1));
  await Promise.all([waitState(p.a, 1, 1, 'ready'), waitState(p.b, 1, 1, 'ready')]);
});

t.test('every first-byte value reaches the receiver through a ready component', async (t) => {
  const p = await makePair({}, {});
  t.teardown(() => closeAll(p.a, p.b));
  exchangeCandidates(p);
  await Promise.all([waitState(p.a, 1, 1, 'ready'), waitState(p.b, 1, 1, 'ready')]);
  const got = new Set<number>();
  let all: () => void;
  const done = new Promise<void>((r) => (all = r));
  p.b.attachRecv(1, 1, (d) => {
    got.add(d[0]!);
    if (got.size === 256) all();
  });
  for (let v = 0; v < 256; v++) {
    // 20+ bytes with a magic cookie where STUN has one, so that 0-3 look as much like STUN as data can.
    const d = Buffer.alloc(24);
    d[0] = v;
    d.writeUInt32BE(0x2112a442, 4);
    t.ok(p.a.send(1, 1, d), `byte ${v} sent`);
  }
  await Promise.race([done, new Promise((_r, rej) => setTimeout(() => rej(new Error(`only ${got.size} of 256 arrived`)), 3000))]);
  t.equal(got.size, 256, 'all 256 first-byte values delivered');
});
