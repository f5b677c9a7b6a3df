/** Relayed and server-reflexive candidates in the agent, against a real coturn on loopback. */
import t from 'tap';
import dgram from 'node:dgram';
import { Agent, TurnError, type AgentOptions } from '../lib/index.js';
import { startCoturn, type Coturn } from './support/coturn.js';
import { LOOPBACK, waitState, waitFor, closeAll, trackHandles, makePair, exchangeCandidates } from './helpers.js';

let turn: Coturn;
t.before(async () => {
  turn = await startCoturn({ maxAllocateLifetime: 4 });
});
t.teardown(async () => turn?.stop());

async function connect(t: any, optsA: AgentOptions, optsB: AgentOptions) {
  const p = await makePair(optsA, optsB);
  t.teardown(() => closeAll(p.a, p.b));
  const [sa, sb] = [p.streamsA[0]!, p.streamsB[0]!];
  exchangeCandidates(p);
  await Promise.all([waitState(p.a, sa, 1, 'ready', 10000), waitState(p.b, sb, 1, 'ready', 10000)]);
  return { a: p.a, b: p.b, sa, sb };
}

const server = () => ({ url: turn.url, username: turn.username, credential: turn.password });

t.test('relay only (force-relay) on both sides: the selected pair is relay-relay and data flows through coturn', async (t) => {
  const allocations = turn.count(/new .*session|ALLOCATE processed, success/i);
  const { a, b, sa, sb } = await connect(t, { forceRelay: true, turnServers: [server()] }, { forceRelay: true, turnServers: [server()] });
  for (const [agent, s] of [[a, sa], [b, sb]] as const) {
    const locals = agent.getLocalCandidates(s, 1);
    t.ok(locals.length >= 1 && locals.every((c) => c.type === 'relay'), 'only relayed candidates are announced');
    const sel = agent.getSelectedPair(s, 1)!;
    t.equal(sel.local.type, 'relay');
    t.equal(sel.remote.type, 'relay');
    t.ok(sel.local.port >= turn.relayRange.min && sel.local.port <= turn.relayRange.max, 'the relayed port is coturn\'s');
    t.equal(sel.local.relatedAddress, '127.0.0.1', 'related address is the mapped address');
  }
  t.ok(turn.count(/new .*session|ALLOCATE processed, success/i) >= allocations + 2, 'coturn logged the allocations');
  const got = new Promise<Buffer>((r) => b.attachRecv(sb, 1, (d) => r(d)));
  t.ok(a.send(sa, 1, Buffer.from([0x80, 1, 2, 3])));
  t.same(await got, Buffer.from([0x80, 1, 2, 3]), 'data arrived through the relay');
  const back = new Promise<Buffer>((r) => a.attachRecv(sa, 1, (d) => r(d)));
  t.ok(b.send(sb, 1, Buffer.from([0x80, 9])));
  t.same(await back, Buffer.from([0x80, 9]));
});

for (const kind of ['tcp', 'tls'] as const) {
  t.test(`TURN over ${kind.toUpperCase()}: relayed candidate gathered and used`, async (t) => {
    const tls = kind === 'tls' ? await startCoturn({ tls: true }) : undefined;
    t.teardown(async () => tls?.stop());
    const srv = kind === 'tcp'
      ? { url: turn.tcpUrl, username: turn.username, credential: turn.password }
      : { url: tls!.tlsUrl!, username: tls!.username, credential: tls!.password, ca: tls!.ca! };
    const { a, sa } = await connect(t, { forceRelay: true, turnServers: [srv] }, {});
    const sel = a.getSelectedPair(sa, 1)!;
    t.equal(sel.local.type, 'relay', `the ${kind} relay carries the selected pair`);
  });
}

t.test('a TURN server with a wrong password: typed error naming the server, and the agents still connect on host candidates', async (t) => {
  const a = new Agent({ ...LOOPBACK, controllingMode: true, turnServers: [{ ...server(), credential: 'wrong-password' }] });
  t.teardown(() => a.close());
  const s = a.addStream(1);
  const err = waitFor<[number, number, TurnError]>(a, 'server-error');
  let hostAt = -1;
  let doneAt = -1;
  let n = 0;
  a.on('new-candidate', (c) => { if (c.type === 'host' && hostAt < 0) hostAt = n++; });
  a.on('candidate-gathering-done', () => { doneAt = n++; });
  await a.gatherCandidates(s);
  const [, , e] = await err;
  t.type(e, TurnError);
  t.equal(e.server, turn.url, 'the error names the server');
  t.equal(e.stunCode, 401, 'and the reason');
  t.ok(hostAt >= 0 && hostAt < doneAt, 'host candidates were announced before gathering finished');
  t.same(a.getLocalCandidates(s, 1).map((c) => c.type), ['host'], 'gathering went on with what it had');
  t.equal(a.getStats().serverErrors, 1);
  // And it still connects, on host candidates.
  const { a: a2, sa: s2 } = await connect(t, { turnServers: [{ ...server(), credential: 'wrong' }] }, {});
  t.equal(a2.getSelectedPair(s2, 1)!.local.type, 'host');
});

t.test('a STUN server that never answers does not block gathering beyond serverTimeout', async (t) => {
  const silent = dgram.createSocket('udp4');
  await new Promise<void>((r) => silent.bind(0, '127.0.0.1', () => r()));
  t.teardown(() => silent.close());
  const a = new Agent({ ...LOOPBACK, stunServers: [`stun:127.0.0.1:${silent.address().port}`], serverTimeout: 300 });
  t.teardown(() => a.close());
  const s = a.addStream(1);
  const firstHost = waitFor(a, 'new-candidate');
  const err = waitFor<[number, number, TurnError]>(a, 'server-error');
  let requests = 0;
  silent.on('message', () => requests++);
  const gathering = a.gatherCandidates(s);
  await firstHost;
  t.equal(a.getStats().serverErrors, 0, 'the host candidate came before the server gave up');
  await gathering;
  const [, , e] = await err;
  t.match(e.reason, /no response/);
  t.ok(requests >= 2, 'the Binding request was retransmitted');
});

t.test('STUN on loopback: the mapping equals the host address, so no duplicate srflx candidate', async (t) => {
  const a = new Agent({ ...LOOPBACK, stunServers: [turn.stunUrl] });
  t.teardown(() => a.close());
  const s = a.addStream(1);
  await a.gatherCandidates(s);
  t.same(a.getLocalCandidates(s, 1).map((c) => c.type), ['host']);
  t.equal(a.getStats().serverErrors, 0, 'the server answered');
});

t.test('close() deallocates (Refresh lifetime 0) and leaves no handle', async (t) => {
  const handles = trackHandles();
  t.teardown(() => handles.stop());
  const a = new Agent({ ...LOOPBACK, forceRelay: true, turnServers: [server()] });
  const s = a.addStream(1);
  await a.gatherCandidates(s);
  const relayed = a.getLocalCandidates(s, 1)[0]!;
  t.equal(relayed.type, 'relay');
  const before = turn.count(/lifetime=0|refreshed.*lifetime 0|closed/i);
  await a.close();
  await turn.waitForCount(/lifetime=0|refreshed.*lifetime 0|closed/i, before + 1, 5000);
  t.pass('coturn saw the deallocation');
  t.same((await handles.live()).filter((h) => h === 'UDPWRAP' || h === 'Timeout'), [], 'no socket or timer left');
});

t.test('an agent\'s allocation is refreshed before it expires (coturn max-allocate-lifetime=4)', async (t) => {
  const a = new Agent({ ...LOOPBACK, forceRelay: true, turnServers: [server()] });
  t.teardown(() => a.close());
  const s = a.addStream(1);
  const refreshed = /refreshed, .*lifetime=[1-9]/;
  const before = turn.count(refreshed);
  await a.gatherCandidates(s);
  t.equal(a.getLocalCandidates(s, 1)[0]!.type, 'relay');
  await turn.waitForCount(refreshed, before + 1, 8000);
  t.pass('coturn logged a refresh of the allocation with a non-zero lifetime');
});

t.test('setRelayInfo: a TURN server for one component only (libnice nice_agent_set_relay_info)', async (t) => {
  const a = new Agent({ ...LOOPBACK });
  t.teardown(() => a.close());
  const s = a.addStream(2);
  t.throws(() => a.setRelayInfo(s, 2, { url: 'stun:127.0.0.1', username: 'u', credential: 'p' }), { code: 'ERR_ICE_INVALID_ARGUMENT', argument: 'server.url' });
  t.throws(() => a.setRelayInfo(s, 2, { url: turn.url, username: '', credential: 'p' }), { code: 'ERR_ICE_INVALID_ARGUMENT', argument: 'server.username' });
  t.throws(() => a.setRelayInfo(s, 3, server()), { code: 'ERR_ICE_UNKNOWN_STREAM' });
  a.setRelayInfo(s, 2, server());
  await a.gatherCandidates(s);
  t.same(a.getLocalCandidates(s, 1).map((c) => c.type), ['host'], 'component 1: no relay');
  t.same(a.getLocalCandidates(s, 2).map((c) => c.type), ['host', 'relay'], 'component 2: host and relay');
});

t.test('bad server options throw a typed error naming the option', async (t) => {
  t.throws(() => new Agent({ stunServers: ['http://x'] }), { code: 'ERR_ICE_INVALID_OPTION', option: 'stunServers[0]' });
  t.throws(() => new Agent({ stunServers: ['turn:127.0.0.1'] }), { code: 'ERR_ICE_INVALID_OPTION', option: 'stunServers[0]' });
  t.throws(() => new Agent({ turnServers: [{ url: 'turn:127.0.0.1', username: 'u' } as any] }), { code: 'ERR_ICE_INVALID_OPTION', option: 'turnServers[0].credential' });
  t.throws(() => new Agent({ turnServers: [{ url: 'stun:127.0.0.1', username: 'u', credential: 'p' }] }), { code: 'ERR_ICE_INVALID_OPTION', option: 'turnServers[0].url' });
  t.throws(() => new Agent({ serverTimeout: 0 }), { code: 'ERR_ICE_INVALID_OPTION', option: 'serverTimeout' });
});
