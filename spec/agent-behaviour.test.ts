/** RFC 8445 behaviour of two agents in one process over real loopback UDP. */
import t from 'tap';
import dgram from 'node:dgram';
import { Agent, CandidateParseError, InvalidArgumentError, UnknownStreamError } from '../lib/index.js';
import { makePair, exchangeCandidates, waitState, waitFor, closeAll, LOOPBACK, trackHandles, deadPort as unusedPort } from './helpers.js';
import { decodeStun } from '../lib/stun/message.js';
import { encodeBindingSuccess } from '../lib/stun/binding.js';

t.test('role conflict: both start controlling, one yields (§7.3.1.1, §7.2.5.1) and both reach ready', async (t) => {
  const p = await makePair({ controllingMode: true }, { controllingMode: true });
  t.teardown(() => closeAll(p.a, p.b));
  exchangeCandidates(p);
  await Promise.all([waitState(p.a, 1, 1, 'ready'), waitState(p.b, 1, 1, 'ready')]);
  t.not(p.a.controllingMode, p.b.controllingMode, 'exactly one agent is controlling');
  t.ok(p.a.getStats().roleConflicts + p.b.getStats().roleConflicts > 0, 'the conflict was seen and counted');
});

t.test('role conflict: both start controlled, one takes control', async (t) => {
  const p = await makePair({ controllingMode: false }, { controllingMode: false });
  t.teardown(() => closeAll(p.a, p.b));
  exchangeCandidates(p);
  await Promise.all([waitState(p.a, 1, 1, 'ready'), waitState(p.b, 1, 1, 'ready')]);
  t.not(p.a.controllingMode, p.b.controllingMode, 'exactly one agent is controlling');
});

for (const mode of ['regular', 'aggressive'] as const) {
  t.test(`peer-reflexive remote candidate learned when the remote's candidates are withheld (${mode}, §7.3.1.3)`, async (t) => {
    const p = await makePair({ nominationMode: mode }, { nominationMode: mode });
    t.teardown(() => closeAll(p.a, p.b));
    const learned = waitFor(p.b, 'new-remote-candidate');
    // Only A (controlling) learns B's candidates; B must learn A from A's checks.
    exchangeCandidates(p, 1, 'toA');
    const [cand] = (await learned) as [any];
    t.equal(cand.type, 'prflx');
    t.equal(cand.address, '127.0.0.1');
    t.equal(cand.port, p.a.getLocalCandidates(1, 1)[0]!.port, 'the prflx candidate is A\'s host address');
    await Promise.all([waitState(p.a, 1, 1, 'ready'), waitState(p.b, 1, 1, 'ready')]);
    t.equal(p.b.getSelectedPair(1, 1)!.remote.type, 'prflx');

    // When the real candidate arrives later, it replaces the prflx one (type, priority, foundation).
    const real = p.a.getLocalCandidates(1, 1)[0]!;
    t.equal(p.b.addRemoteCandidate(1, real), true);
    const remotes = p.b.getRemoteCandidates(1, 1);
    t.equal(remotes.length, 1, 'no duplicate remote candidate');
    t.equal(remotes[0]!.type, 'host');
    t.equal(remotes[0]!.priority, real.priority);
    t.equal(p.b.getPairs(1).find((x) => x.valid)!.remote.type, 'host', 'the valid pair now names the signalled candidate');
  });
}

t.test('an unreachable remote candidate fails while a good one succeeds', async (t) => {
  // Wait long enough for the dead higher-priority pair to fail before nominating.
  const p = await makePair({ nominationTimeout: 60000 }, {});
  t.teardown(() => closeAll(p.a, p.b));
  const deadPort = await unusedPort();
  const host = p.b.getLocalCandidates(1, 1)[0]!;
  // B's address signalled as server-reflexive: a host↔host valid pair would be nominated at once
  // (the stopping criterion of lib/core/nomination.ts), and this test is about the dead pair failing.
  const good = { ...host, type: 'srflx' as const, priority: host.priority - 0x10000000, relatedAddress: host.address, relatedPort: host.port };
  const bogus = { ...host, port: deadPort, foundation: '99', priority: host.priority + 1000 };
  p.a.setRemoteCandidates(1, 1, [bogus, good]);
  p.b.setRemoteCandidates(1, 1, p.a.getLocalCandidates(1, 1));
  await Promise.all([waitState(p.a, 1, 1, 'ready', 10000), waitState(p.b, 1, 1, 'ready', 10000)]);
  const pairs = p.a.getPairs(1);
  const deadPair = pairs.find((x) => x.remote.port === deadPort)!;
  const goodPair = pairs.find((x) => x.remote.port === good.port)!;
  t.ok(BigInt(deadPair.priority) > BigInt(goodPair.priority), 'the dead pair ranks first');
  t.equal(deadPair.state, 'failed', 'the dead pair failed');
  t.equal(goodPair.state, 'succeeded');
  t.equal(p.a.getSelectedPair(1, 1)!.remote.port, good.port, 'the good pair is selected');
  const st = p.a.getStats();
  t.equal(st.checksTimedOut, 1, 'one check timed out');
  t.equal(st.checkRetransmissions, p.a.options.stunMaxRetransmissions, 'after the configured retransmissions');
});

t.test('every pair unreachable: the component fails', async (t) => {
  const a = new Agent({ ...LOOPBACK, controllingMode: true, stunMaxRetransmissions: 2 });
  t.teardown(() => a.close());
  const s = a.addStream(1);
  await a.gatherCandidates(s);
  a.setRemoteCredentials(s, 'abcd', 'abcdefghijklmnopqrstuvwxyz');
  const port = await unusedPort();
  const failed = waitState(a, s, 1, 'failed');
  a.setRemoteCandidates(s, 1, [`candidate:1 1 udp 2130706431 127.0.0.1 ${port} typ host`]);
  await failed;
  t.equal(a.getPairs(s)[0]!.state, 'failed');
  t.equal(a.getSelectedPair(s, 1), undefined);
  t.equal(a.send(s, 1, Buffer.from([0x80])), false, 'nothing to send on');
});

t.test('two streams of two components each all reach ready, data on each', async (t) => {
  const p = await makePair({}, {}, 2, 2);
  t.teardown(() => closeAll(p.a, p.b));
  exchangeCandidates(p, 2);
  const waits = [];
  for (let i = 0; i < 2; i++) {
    for (const c of [1, 2]) {
      waits.push(waitState(p.a, p.streamsA[i]!, c, 'ready'), waitState(p.b, p.streamsB[i]!, c, 'ready'));
    }
  }
  await Promise.all(waits);
  for (let i = 0; i < 2; i++) {
    for (const c of [1, 2]) {
      const got = new Promise<Buffer>((res) => p.b.attachRecv(p.streamsB[i]!, c, (d) => res(d)));
      const msg = Buffer.from([0x80, i, c]);
      t.ok(p.a.send(p.streamsA[i]!, c, msg));
      t.same(await got, msg, `stream ${i + 1} component ${c} delivers to the matching component`);
    }
  }
});

t.test('data flows both ways, many datagrams, in order on loopback', async (t) => {
  const p = await makePair({}, {});
  t.teardown(() => closeAll(p.a, p.b));
  exchangeCandidates(p);
  await Promise.all([waitState(p.a, 1, 1, 'ready'), waitState(p.b, 1, 1, 'ready')]);
  const N = 200;
  let echoed = 0;
  p.b.attachRecv(1, 1, (d) => p.b.send(1, 1, d));
  const done = new Promise<void>((res) => p.a.attachRecv(1, 1, () => { if (++echoed === N) res(); }));
  for (let i = 0; i < N; i++) {
    const b = Buffer.alloc(100);
    b[0] = 0x80;
    b.writeUInt32BE(i, 1);
    p.a.send(1, 1, b);
  }
  await done;
  t.equal(echoed, N);
});

t.test('close() leaves no socket and no timer behind, in every state', async (t) => {
  const udpHandles = () => process.getActiveResourcesInfo().filter((r) => r === 'UDPWrap').length;
  const before = udpHandles();
  const handles = trackHandles();
  t.teardown(() => handles.stop());
  const p = await makePair({}, {});
  exchangeCandidates(p);
  await Promise.all([waitState(p.a, 1, 1, 'ready'), waitState(p.b, 1, 1, 'ready')]);
  t.equal(udpHandles(), before + 2, 'the agents hold their sockets while open');
  t.ok((await handles.live()).includes('Timeout'), 'and a timer (keepalives)');
  let events = 0;
  p.a.on('component-state-changed', () => events++);
  await closeAll(p.a, p.b);
  t.equal(udpHandles(), before, 'no UDP handle left after close()');
  t.same(await handles.live(), [], 'no timer or socket left after close(), unref\'d ones included');
  t.equal(events, 0, 'no event after close()');
  t.throws(() => p.a.addStream(1), { code: 'ERR_ICE_INVALID_STATE' });

  // Closing while gathering and while checking.
  const g = new Agent(LOOPBACK);
  const gs = g.addStream(2);
  const gathering = g.gatherCandidates(gs);
  await g.close();
  await gathering;
  const c = new Agent({ ...LOOPBACK, controllingMode: true });
  const cs = c.addStream(1);
  await c.gatherCandidates(cs);
  c.setRemoteCredentials(cs, 'abcd', 'abcdefghijklmnopqrstuvwxyz');
  c.setRemoteCandidates(cs, 1, ['candidate:1 1 udp 2130706431 127.0.0.1 9 typ host']);
  t.equal(c.getComponentState(cs, 1), 'connecting');
  t.ok((await handles.live()).includes('Timeout'), 'a retransmission timer is armed while checking');
  await c.close();
  t.same(await handles.live(), [], 'nothing left after closing while gathering or checking');
  t.equal(udpHandles(), before);
});

t.test('bad input throws a typed error and changes no state', async (t) => {
  const a = new Agent(LOOPBACK);
  t.teardown(() => a.close());
  const s = a.addStream(1);
  await a.gatherCandidates(s);
  t.throws(() => a.setRemoteCandidates(s, 1, [
    'candidate:1 1 udp 2130706431 127.0.0.1 5000 typ host',
    'candidate:2 1 udp 2130706431 127.0.0.1 notaport typ host',
  ]), CandidateParseError);
  try {
    a.setRemoteCandidates(s, 1, ['candidate:2 1 udp 2130706431 127.0.0.1 notaport typ host']);
  } catch (e) {
    t.equal((e as CandidateParseError).field, 'port', 'the error names the bad field');
  }
  t.equal(a.getRemoteCandidates(s, 1).length, 0, 'the good candidate before the bad one was not added');
  t.throws(() => a.setRemoteCandidates(s, 1, ['candidate:1 2 udp 2130706431 127.0.0.1 5000 typ host']), InvalidArgumentError);
  t.throws(() => a.setRemoteCandidates(9, 1, []), UnknownStreamError);
  t.throws(() => a.send(s, 3, Buffer.alloc(1)), UnknownStreamError);
  t.throws(() => a.setRemoteCredentials(s, 'ab', 'abcdefghijklmnopqrstuvwxyz'), { code: 'ERR_ICE_INVALID_ARGUMENT', argument: 'ufrag' });
  t.throws(() => a.setRemoteCredentials(s, 'abcd', 'short'), { code: 'ERR_ICE_INVALID_ARGUMENT', argument: 'pwd' });
  t.equal(a.getRemoteCredentials(s), undefined, 'no credentials were set');
  t.throws(() => a.addStream(0), { code: 'ERR_ICE_INVALID_ARGUMENT', argument: 'nComponents' });
  t.same(a.getStreamIds(), [s]);
});

t.test('a response from another address than the check went to fails the pair (non-symmetric, §7.2.5.2.1)', async (t) => {
  const bind = () => new Promise<dgram.Socket>((r) => {
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1', () => r(s));
  });
  const REMOTE_PWD = 'remotepasswordremotepass';
  // The fake remote answers every check with a valid, authenticated success
  // response, either from the socket the check went to or from another one.
  const run = async (symmetric: boolean) => {
    const r1 = await bind();
    const r2 = await bind();
    const a = new Agent({ ...LOOPBACK, controllingMode: true, stunMaxRetransmissions: 0, nominationMode: 'aggressive' });
    t.teardown(async () => { r1.close(); r2.close(); await a.close(); });
    r1.on('message', (m, ri) => {
      const req = decodeStun(m);
      if (!req || req.cls !== 'request') return;
      const res = encodeBindingSuccess(req.transactionId, ri.address, ri.port, REMOTE_PWD);
      (symmetric ? r1 : r2).send(res, ri.port, ri.address);
    });
    const s = a.addStream(1);
    await a.gatherCandidates(s);
    a.setRemoteCredentials(s, 'fake', REMOTE_PWD);
    const outcome = waitFor(a, 'component-state-changed', (_s: number, _c: number, st: string) => st === 'failed' || st === 'ready');
    a.setRemoteCandidates(s, 1, [`candidate:1 1 udp 2130706431 127.0.0.1 ${r1.address().port} typ host`]);
    const [, , state] = (await outcome) as [number, number, string];
    return { state, pair: a.getPairs(s)[0]! };
  };
  const good = await run(true);
  t.equal(good.state, 'ready', 'control: the same response from the right address validates the pair');
  t.equal(good.pair.state, 'succeeded');
  const bad = await run(false);
  t.equal(bad.state, 'failed', 'from another address: the component fails');
  t.equal(bad.pair.state, 'failed', 'and the pair is Failed');
  t.equal(bad.pair.valid, false);
});

t.test('before nomination, send() goes out on the best valid pair (as libnice)', async (t) => {
  // A dead higher-priority pair holds regular nomination back; a valid pair exists meanwhile.
  const p = await makePair({ nominationTimeout: 60000 }, {});
  t.teardown(() => closeAll(p.a, p.b));
  const deadPort = await unusedPort();
  const good = p.b.getLocalCandidates(1, 1)[0]!;
  const connected = waitState(p.a, 1, 1, 'connected');
  p.a.setRemoteCandidates(1, 1, [{ ...good, port: deadPort, foundation: '99', priority: good.priority + 1000 }, good]);
  p.b.setRemoteCandidates(1, 1, p.a.getLocalCandidates(1, 1));
  await connected;
  t.equal(p.a.getSelectedPair(1, 1), undefined, 'nothing nominated yet');
  const got = new Promise<Buffer>((r) => p.b.attachRecv(1, 1, (d) => r(d)));
  t.ok(p.a.send(1, 1, Buffer.from([0x80, 7])), 'send() accepted');
  t.same(await got, Buffer.from([0x80, 7]), 'and the datagram arrived');
});
