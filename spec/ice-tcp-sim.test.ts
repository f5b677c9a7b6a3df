/**
 * ICE-TCP (RFC 6544) on the in-memory network: TCP host candidates and
 * their priorities (§4.2), the pairing rules (§6.2), one connection per
 * pair and the reuse of the one the peer opened (§7.2), no retransmission
 * over TCP (§7.1), connection loss, srflx TCP candidates where a NAT keeps
 * ports, and what a hostile client on a passive candidate's socket can do
 * (garbage, silence, frames over the limit, floods): closed and counted.
 */
import t from 'tap';
import { Agent, type Candidate, InvalidOptionError } from '../lib/index.js';
import { SimNetwork, type SimHost } from '../lib/sim/index.js';
import type { StreamSocket } from '../lib/transport/network.js';
import { encodeBindingRequest } from '../lib/stun/binding.js';
import { MAX_FRAME } from '../lib/transport/tcp.js';
import { MAX_UNAUTHENTICATED, UNAUTHENTICATED_TIMEOUT_MS, directionPreference, tcpPairable } from '../lib/core/tcp.js';
import { simPair, exchange, runUntilState, closePair, during, type SimPair } from './support/sim-pair.js';

const TCP_ONLY = { iceTcp: true, iceUdp: false } as const;
const localPref = (c: Candidate) => (c.priority >>> 8) & 0xffff;
const typePref = (c: Candidate) => c.priority >>> 24;
const tcpOf = (list: Candidate[], tcpType: string) => list.find((c) => c.transport === 'tcp' && c.tcpType === tcpType);

t.test('TCP host candidates: active on port 9, passive on a listener, RFC 6544 §4.2 priorities, UDP above TCP', async (t) => {
  const p = await simPair({ servers: false, a: { iceTcp: true } });
  const cands = p.a.getLocalCandidates(1, 1);
  t.same(cands.map((c) => `${c.transport}${c.tcpType ? `/${c.tcpType}` : ''}`), ['udp', 'tcp/active', 'tcp/passive'], 'per address: UDP, then TCP active and passive');
  const udp = cands[0]!;
  const active = tcpOf(cands, 'active')!;
  const passive = tcpOf(cands, 'passive')!;
  t.equal(active.port, 9, 'an active candidate has port 9 (§4.5)');
  t.not(passive.port, 9, 'a passive candidate has its listener\'s port');
  t.same(cands.map(typePref), [126, 126, 126], 'RFC 8445 type preferences for TCP too (§4.2)');
  t.equal(localPref(active), 6 * 8192 + 8191, 'host active: direction-pref 6, other-pref 8191 (one address)');
  t.equal(localPref(passive), 4 * 8192 + 8191, 'host passive: direction-pref 4');
  t.ok(udp.priority > active.priority && active.priority > passive.priority, 'UDP ranks above TCP, active above passive');
  t.equal(new Set(cands.map((c) => c.foundation)).size, 3, 'each has a foundation of its own');
  t.equal(p.b.getLocalCandidates(1, 1).length, 1, 'iceTcp is off by default: UDP only');
  t.same([directionPreference('srflx', 'so'), directionPreference('srflx', 'active'), directionPreference('prflx', 'passive'), directionPreference('host', 'so')],
    [6, 4, 2, 2], 'reflexive: so 6, active 4, passive 2; host so 2');
  await closePair(p);
});

t.test('iceUdp / iceTcp: TCP only, both off refused, remote candidates of a transport that is off are skipped', async (t) => {
  t.throws(() => new Agent({ iceUdp: false, iceTcp: false }), InvalidOptionError, 'both off: nothing to gather (libnice refuses it too)');
  t.throws(() => new Agent({ iceTcp: 'yes' as unknown as boolean }), InvalidOptionError);
  const p = await simPair({ a: TCP_ONLY });
  t.same(p.a.getLocalCandidates(1, 1).map((c) => c.transport), ['tcp', 'tcp'], 'TCP only: no UDP host, no srflx, no relay');
  t.equal(p.stun.stats.requests, 1, 'only B asked the STUN server');
  const skipped: string[] = [];
  p.a.on('remote-candidate-skipped', (_s, _c, why) => skipped.push(why));
  p.b.on('remote-candidate-skipped', (_s, _c, why) => skipped.push(why));
  p.a.setRemoteCandidates(1, 1, p.b.getLocalCandidates(1, 1));
  p.b.setRemoteCandidates(1, 1, p.a.getLocalCandidates(1, 1));
  t.same(skipped.map((w) => /UDP is off|ICE-TCP is off/.exec(w)?.[0]), [...p.b.getLocalCandidates(1, 1).map(() => 'UDP is off'), 'ICE-TCP is off', 'ICE-TCP is off'],
    'each side says why');
  t.throws(() => p.a.addRemoteCandidate(1, { ...p.a.getLocalCandidates(1, 1)[0]!, tcpType: 'sideways' as never }), /tcpType/, 'a bad tcptype is an error');
  await closePair(p);
});

t.test('pairing (§6.2): local active with remote passive only; never active-active, passive-passive or a local passive', async (t) => {
  const p = await simPair({ servers: false, a: TCP_ONLY });
  const base = { component: 1, transport: 'tcp', type: 'host', foundation: 'x', priority: 1000, address: '198.51.100.3' } as const;
  p.a.setRemoteCandidates(1, 1, [
    { ...base, port: 9, tcpType: 'active', foundation: 'a' },
    { ...base, port: 5000, tcpType: 'passive', foundation: 'p' },
    { ...base, port: 5001, tcpType: 'so', foundation: 's' },
  ]);
  const pairs = p.a.getPairs(1).map((x) => `${x.local.tcpType}->${x.remote.tcpType}`);
  t.same(pairs, ['active->passive'], 'one pair');
  t.ok(tcpPairable('so', 'so'), 'so pairs with so');
  t.notOk(tcpPairable('active', 'active') || tcpPairable('passive', 'passive') || tcpPairable('passive', 'active') || tcpPairable('active', 'so'), 'and nothing else is formed');
  await closePair(p);
});

/** Runs the TCP-only session to ready on both sides, with an echo on B. */
async function connectTcp(p: SimPair): Promise<number> {
  exchange(p);
  const t0 = p.net.now();
  await runUntilState(p, 'ready', [[p.a, 1, 1], [p.b, 1, 1]]);
  const ms = p.net.now() - t0;
  // With aggressive nomination the controlled side's selection may still move up to a better pair.
  await p.net.run({ for: 100 });
  p.b.attachRecv(1, 1, (d) => p.b.send(1, 1, d));
  return ms;
}

async function echo(p: SimPair, n: number, size = 1000): Promise<number> {
  let got = 0;
  p.a.attachRecv(1, 1, () => got++);
  for (let i = 0; i < n; i++) p.a.send(1, 1, Buffer.alloc(size, 0x80));
  await p.net.run({ until: () => got === n, timeout: 5000 }).catch(() => {});
  return got;
}

for (const mode of ['regular', 'aggressive'] as const) {
  t.test(`TCP only, ${mode} nomination: ready, one connection per pair, the peer's connection reused, no retransmission`, async (t) => {
    const learned: Candidate[] = [];
    const p = await simPair({ servers: false, a: { ...TCP_ONLY, nominationMode: mode }, b: { ...TCP_ONLY } });
    p.b.on('new-remote-candidate', (c) => learned.push(c));
    const ms = await connectTcp(p);
    // 5 ms per link, two links: RTT 20 ms. Connect (1 RTT), check (1 RTT), and the nomination check with regular nomination.
    t.ok(ms <= (mode === 'regular' ? 61 : 41), `ready in ${ms} virtual ms`);
    const sa = p.a.getSelectedPair(1, 1)!;
    const sb = p.b.getSelectedPair(1, 1)!;
    t.same([sa.local.transport, sa.local.tcpType, sa.remote.tcpType], ['tcp', 'active', 'passive'], 'A: its active candidate to B\'s passive one');
    t.same([sb.local.tcpType, sb.remote.type, sb.remote.tcpType], ['passive', 'prflx', 'active'], 'B: the connection A opened, learned as a peer-reflexive active remote (§7.2)');
    t.equal(sb.local.port, sa.remote.port, 'the same connection on both sides');
    t.ok(learned.some((c) => c.transport === 'tcp' && c.tcpType === 'active' && c.type === 'prflx'), 'new-remote-candidate told B');
    const [st, sbs] = [p.a.getStats(), p.b.getStats()];
    t.equal(st.tcpConnectionsOpened + sbs.tcpConnectionsOpened, st.tcpConnectionsAccepted + sbs.tcpConnectionsAccepted, 'every connection opened was accepted');
    t.ok(st.tcpConnectionsOpened <= 1 && sbs.tcpConnectionsOpened <= 1, 'at most one connection per side: one per pair, and the triggered checks went back on the peer\'s');
    t.equal(st.checkRetransmissions + sbs.checkRetransmissions, 0, 'no STUN retransmission over TCP (§7.1)');
    t.equal(await echo(p, 200), 200, 'data both ways, every datagram');
    // Consent runs over the connection too.
    await p.net.run({ for: 12_000 });
    t.ok(p.a.getStats().consentChecksSent >= 2, 'consent requests went over the connection');
    t.equal(p.a.getComponentState(1, 1), 'ready');
    await closePair(p);
  });
}

t.test('both transports offered: the UDP pair is selected', async (t) => {
  const p = await simPair({ servers: false, a: { iceTcp: true }, b: { iceTcp: true } });
  await connectTcp(p);
  t.equal(p.a.getSelectedPair(1, 1)!.local.transport, 'udp');
  t.equal(p.b.getSelectedPair(1, 1)!.local.transport, 'udp');
  const tcpPairs = p.a.getPairs(1).filter((x) => x.local.transport === 'tcp');
  t.ok(tcpPairs.length >= 1, 'the TCP pairs were there');
  t.ok(tcpPairs.every((x) => BigInt(x.priority) < BigInt(p.a.getPairs(1).find((y) => y.local.transport === 'udp')!.priority)), 'below the UDP pair');
  await closePair(p);
});

t.test('behind a NAT: the active side shows up as the NAT\'s peer-reflexive address; the private passive one is never reached', async (t) => {
  const p = await simPair({ servers: false, sideA: 'eim', a: TCP_ONLY, b: TCP_ONLY });
  await connectTcp(p);
  const sb = p.b.getSelectedPair(1, 1)!;
  t.same([sb.remote.type, sb.remote.tcpType, sb.remote.address], ['prflx', 'active', '203.0.113.10'], 'B sees A\'s NAT');
  t.equal(await echo(p, 50), 50);
  await closePair(p);
});

/** A bare TCP host on the network, to play a peer or an attacker. */
function rawHost(net: SimNetwork, address = '198.51.100.9'): SimHost {
  return net.addHost(address);
}

function frame(body: Buffer): Buffer {
  const f = Buffer.alloc(2 + body.length);
  f.writeUInt16BE(body.length, 0);
  body.copy(f, 2);
  return f;
}

t.test('no retransmission over TCP: a check nobody answers is sent once and fails after the whole horizon', async (t) => {
  const p = await simPair({ servers: false, a: { ...TCP_ONLY, stunInitialTimeout: 500, stunMaxRetransmissions: 6 } });
  const peer = rawHost(p.net);
  const listener = await peer.network.listenStream(peer.address, 7000);
  const frames: Buffer[] = [];
  let closedAt: number | undefined;
  listener.onConnection((s) => {
    s.onData((d) => frames.push(d));
    s.onClose(() => { closedAt = p.net.now(); });
  });
  const t0 = p.net.now();
  p.a.setRemoteCandidates(1, 1, [{ component: 1, transport: 'tcp', tcpType: 'passive', type: 'host', foundation: 'r', priority: 1000, address: peer.address, port: 7000 }]);
  await runUntilState(p, 'failed', [[p.a, 1, 1]], 20_000);
  const st = p.a.getStats();
  t.equal(st.checksSent, 1, 'one check');
  t.equal(st.checkRetransmissions, 0, 'never retransmitted');
  t.equal(frames.length, 1, 'one frame arrived at the peer');
  t.equal(frames[0]!.readUInt16BE(0) + 2, frames[0]!.length, 'an RFC 4571 frame');
  const failedAfter = p.net.now() - t0;
  await p.net.run({ for: 50 });
  t.ok(failedAfter >= 9500 && failedAfter < 9600, `failed after ${failedAfter} ms: the retransmission horizon (500+1000+1600×4+1600) as one wait`);
  t.ok(closedAt !== undefined, 'the connection was closed with the pair');
  await closePair(p);
});

t.test('a refused connection fails its pair at once', async (t) => {
  const p = await simPair({ servers: false, a: TCP_ONLY });
  const t0 = p.net.now();
  p.a.setRemoteCandidates(1, 1, [{ component: 1, transport: 'tcp', tcpType: 'passive', type: 'host', foundation: 'r', priority: 1000, address: p.hostB.address, port: 7001 }]);
  await runUntilState(p, 'failed', [[p.a, 1, 1]], 20_000);
  t.ok(p.net.now() - t0 < 100, 'RST: failed within a round trip');
  t.equal(p.a.getStats().tcpConnectFailures, 1);
  await closePair(p);
});

t.test('losing the selected pair\'s connection ends the component as lost consent does', async (t) => {
  const p = await simPair({ servers: false, a: TCP_ONLY, b: TCP_ONLY });
  await connectTcp(p);
  const lost: number[] = [];
  p.a.on('consent-lost', (s) => lost.push(s));
  let bClosed = false;
  void p.b.close().then(() => { bClosed = true; });
  await p.net.run({ until: () => bClosed && p.a.getComponentState(1, 1) === 'failed', timeout: 2000 });
  t.same(lost, [1], 'consent-lost, at once (no 30 s wait: nothing can carry the data)');
  t.equal(p.a.send(1, 1, Buffer.from([0x80])), false, 'send stops');
  await during(p, p.a.close());
});

t.test('an ICE restart over TCP: the new generation checks on connections of its own, and nothing is lost when the old ones go', async (t) => {
  const p = await simPair({ servers: false, a: TCP_ONLY, b: TCP_ONLY });
  await connectTcp(p);
  const before = p.a.getStats().tcpConnectionsOpened + p.a.getStats().tcpConnectionsAccepted;
  p.a.restartStream(1);
  const ca = p.a.getLocalCredentials(1);
  p.b.setRemoteCredentials(1, ca.ufrag, ca.pwd);
  const cb = p.b.getLocalCredentials(1);
  p.a.setRemoteCredentials(1, cb.ufrag, cb.pwd);
  exchange(p);
  let selected = 0;
  p.a.on('new-selected-pair', () => selected++);
  await p.net.run({ until: () => selected > 0, timeout: 5000 });
  await p.net.run({ for: 4000 });
  t.equal(p.a.getComponentState(1, 1), 'ready');
  t.equal(p.b.getComponentState(1, 1), 'ready');
  t.ok(p.a.getStats().tcpConnectionsOpened + p.a.getStats().tcpConnectionsAccepted > before, 'the new generation has connections of its own');
  t.equal(await echo(p, 20), 20, 'data on the new pair');
  t.equal(p.a.getStats().consentLost + p.b.getStats().consentLost, 0, 'closing the old connections lost nothing');
  await closePair(p);
});

t.test('removeStream closes its TCP listeners and connections; the peer sees the loss', async (t) => {
  const p = await simPair({ servers: false, a: TCP_ONLY, b: TCP_ONLY });
  await connectTcp(p);
  const passive = tcpOf(p.b.getLocalCandidates(1, 1), 'passive')!;
  await during(p, p.b.removeStream(1));
  await p.net.run({ until: () => p.a.getComponentState(1, 1) === 'failed', timeout: 2000 });
  t.pass('A\'s component failed when B\'s connection closed');
  const probe = rawHost(p.net);
  await t.rejects(during(p, probe.network.connectStream({ remote: { address: passive.address, port: passive.port } })), { code: 'ECONNREFUSED' },
    'B\'s listener is gone');
  await closePair(p);
});

t.test('a passive-only side waits one check horizon for the peer\'s connection before it fails (§6.2)', async (t) => {
  for (const [delay, expect] of [[4000, 'ready'], [12_000, 'failed']] as const) {
    const p = await simPair({ servers: false, a: TCP_ONLY, b: TCP_ONLY });
    const states: string[] = [];
    p.a.on('component-state-changed', (_s, _c, st) => states.push(st));
    // A hears only of B's active candidate: nothing for A to check; B checks `delay` ms later.
    p.a.setRemoteCandidates(1, 1, p.b.getLocalCandidates(1, 1).filter((c) => c.tcpType === 'active'));
    await p.net.run({ for: delay });
    p.b.setRemoteCandidates(1, 1, p.a.getLocalCandidates(1, 1));
    await p.net.run({ until: () => ['ready', 'failed'].includes(p.a.getComponentState(1, 1)), timeout: 30_000 });
    t.equal(p.a.getComponentState(1, 1), expect, `peer checking after ${delay} ms: ${expect}`);
    if (expect === 'ready') t.notOk(states.includes('failed'), 'and never failed on the way');
    await closePair(p);
  }
});

t.test('ICE-lite with ICE-TCP: passive only, and a full peer connects to it over TCP', async (t) => {
  const p = await simPair({ servers: false, a: TCP_ONLY, b: { ...TCP_ONLY, iceLite: true } });
  t.same(p.b.getLocalCandidates(1, 1).map((c) => c.tcpType), ['passive'], 'a lite agent never initiates: no active candidate');
  await connectTcp(p);
  t.equal(p.b.getSelectedPair(1, 1)!.local.tcpType, 'passive');
  t.equal(await echo(p, 20), 20);
  await closePair(p);
});

t.test('srflx TCP candidates: only where the NAT kept the UDP port (it keeps ports)', async (t) => {
  for (const portPreserving of [true, false]) {
    const net = new SimNetwork({ seed: 3, delay: 5 });
    const stun = net.addStunServer('203.0.113.1', 3478);
    const nat = net.addNat({ publicAddress: '203.0.113.50', type: 'port-restricted-cone', portPreserving });
    const h = net.addHost('192.168.7.2', { nat });
    const a = new Agent({ network: h.network, iceTcp: true, stunServers: [stun.url] });
    const s = a.addStream(1);
    await during({ net } as never, a.gatherCandidates(s));
    const cands = a.getLocalCandidates(s, 1);
    const tcpSrflx = cands.filter((c) => c.transport === 'tcp' && c.type === 'srflx');
    if (portPreserving) {
      const passive = tcpOf(cands, 'passive')!;
      t.same(tcpSrflx.map((c) => [c.address, c.port, c.tcpType, c.relatedAddress, c.relatedPort]), [['203.0.113.50', passive.port, 'passive', '192.168.7.2', passive.port]],
        'port-preserving NAT: the NAT\'s address with the listener\'s port');
      t.equal(localPref(tcpSrflx[0]!), 2 * 8192 + 8191, 'srflx passive: direction-pref 2 (§4.2)');
    } else {
      t.same(tcpSrflx, [], 'a NAT that changed the UDP port: none (it would change the TCP one too)');
    }
    await during({ net } as never, a.close());
  }
});

// ---------------------------------------------------------------- hostile input

/** A connected agent pair with ICE-TCP on B (public), and an attacker host that connects to B's passive candidate. */
async function target(): Promise<{ p: SimPair; attack: () => Promise<StreamSocket> }> {
  const p = await simPair({ servers: false, a: { iceTcp: true }, b: { iceTcp: true } });
  await connectTcp(p);
  const evil = rawHost(p.net);
  const passive = tcpOf(p.b.getLocalCandidates(1, 1), 'passive')!;
  const attack = () => during(p, evil.network.connectStream({ remote: { address: passive.address, port: passive.port } }));
  return { p, attack };
}

function watch(s: StreamSocket): { closed: boolean } {
  const w = { closed: false };
  s.onClose(() => { w.closed = true; });
  return w;
}

t.test('hostile TCP clients on a passive candidate: closed, counted, and the session goes on', async (t) => {
  const { p, attack } = await target();
  const d = () => p.b.getStats().dropped;

  const big = await attack();
  const wb = watch(big);
  big.write(Buffer.from([0xff, 0xff, 1, 2, 3]));
  await p.net.run({ for: 50 });
  t.ok(wb.closed, `a frame length over ${MAX_FRAME}: closed at once`);
  t.equal(d().tcpFrameTooLong, 1, 'counted as tcpFrameTooLong');

  const junk = await attack();
  const wj = watch(junk);
  junk.write(frame(Buffer.from('GET / HTTP/1.1\r\n\r\n')));
  await p.net.run({ for: 50 });
  t.ok(wj.closed, 'a first frame that is not a check: closed');
  t.equal(d().tcpUnauthenticated, 1, 'counted as tcpUnauthenticated');

  const forged = await attack();
  const wf = watch(forged);
  const ufrag = p.b.getLocalCredentials(1).ufrag;
  forged.write(frame(encodeBindingRequest({
    transactionId: Buffer.alloc(12, 7), username: `${ufrag}:evil`, password: 'not-the-password-at-all', priority: 1, controlling: true,
    tieBreaker: 1n, useCandidate: true,
  })));
  const received: Buffer[] = [];
  forged.onData((c) => received.push(c));
  await p.net.run({ for: 50 });
  t.ok(wf.closed, 'a check with a wrong MESSAGE-INTEGRITY: answered 401, then closed');
  t.equal(d().badIntegrity, 1);
  t.equal(d().tcpUnauthenticated, 2);

  const silent = await attack();
  const ws = watch(silent);
  silent.write(Buffer.from([0x00, 0x40, 0x00])); // half a frame header and one byte: a partial frame, then nothing
  await p.net.run({ for: UNAUTHENTICATED_TIMEOUT_MS - 100 });
  t.notOk(ws.closed, 'silence is allowed for a while');
  await p.net.run({ for: 200 });
  t.ok(ws.closed, `closed after ${UNAUTHENTICATED_TIMEOUT_MS} ms without a check`);
  t.equal(d().tcpIdle, 1, 'counted as tcpIdle');

  const flood: Array<{ closed: boolean }> = [];
  for (let i = 0; i < MAX_UNAUTHENTICATED + 24; i++) flood.push(watch(await attack()));
  await p.net.run({ for: 50 });
  t.equal(flood.filter((w) => w.closed).length, 24, `a flood of ${flood.length}: all but ${MAX_UNAUTHENTICATED} closed`);
  t.ok(flood.slice(0, 24).every((w) => w.closed) && flood.slice(24).every((w) => !w.closed), 'the oldest first');
  t.equal(d().tcpFlood, 24, 'counted as tcpFlood');
  await p.net.run({ for: UNAUTHENTICATED_TIMEOUT_MS + 100 });
  t.ok(flood.every((w) => w.closed), 'the rest idle out');

  t.equal(p.b.getComponentState(1, 1), 'ready', 'the session is still ready');
  t.equal(await echo(p, 20), 20, 'and carries data');
  await closePair(p);
});
