/**
 * Media-server mode: many agents on one UDP port (UdpMux), ICE-lite,
 * announced addresses, per-pair stats — on the in-memory network.
 */
import t from 'tap';
import { execFileSync } from 'node:child_process';
import { Agent, UdpMux, InvalidOptionError, type AgentOptions } from '../lib/index.js';
import { SimNetwork, type SimHost, type SimPacketEvent } from '../lib/sim/index.js';
import type { Network, TimerHandle } from '../lib/transport/network.js';
import { classOf, decodeStun, encodeTurnRequest } from '../lib/stun/message.js';
import { encodeBindingRequest } from '../lib/stun/binding.js';

const SERVER_IP = '198.51.100.1';

interface Session {
  client: Agent;
  server: Agent;
  cs: number;
  ss: number;
}

/** A server host with a mux, and `n` client hosts; each client connects to a lite server agent on the mux. */
async function setup(n: number, serverOpts: AgentOptions = {}, clientOpts: AgentOptions = {}, seed = 3, serverNet?: (n: Network) => Network) {
  const net = new SimNetwork({ seed, delay: 5 });
  const serverHost = net.addHost(SERVER_IP);
  const serverNetwork = serverNet ? serverNet(serverHost.network) : serverHost.network;
  const mux = await runWith(net, UdpMux.bind({ addresses: [SERVER_IP], port: 3478, network: serverNetwork }));
  const clients: SimHost[] = [];
  for (let i = 0; i < n; i++) clients.push(net.addHost(`198.51.100.${10 + i}`));
  const sessions: Session[] = [];
  for (const h of clients) {
    const server = new Agent({ network: serverNetwork, udpMux: mux, iceLite: true, ...serverOpts });
    const client = new Agent({ network: h.network, controllingMode: true, ...clientOpts });
    const ss = server.addStream(1);
    const cs = client.addStream(1);
    await runWith(net, Promise.all([server.gatherCandidates(ss), client.gatherCandidates(cs)]));
    const a = server.getLocalCredentials(ss);
    const b = client.getLocalCredentials(cs);
    server.setRemoteCredentials(ss, b.ufrag, b.pwd);
    client.setRemoteCredentials(cs, a.ufrag, a.pwd);
    client.setRemoteCandidates(cs, 1, server.getLocalCandidates(ss, 1));
    server.setRemoteCandidates(ss, 1, client.getLocalCandidates(cs, 1));
    sessions.push({ client, server, cs, ss });
  }
  await runWith(net, Promise.all(sessions.flatMap((x) => [x.client.connect(x.cs), x.server.connect(x.ss)])));
  return { net, serverHost, mux, sessions };
}

async function runWith<T>(net: SimNetwork, p: Promise<T>): Promise<T> {
  let done = false;
  const settled = p.then(() => { done = true; }, () => { done = true; });
  await net.run({ until: () => done, timeout: 60_000 });
  await settled;
  return p;
}

function isRequest(e: SimPacketEvent): boolean {
  const m = e.data.length >= 20 && e.data[0]! < 4 ? decodeStun(e.data) : undefined;
  return m !== undefined && classOf(m.type) === 'request';
}

t.test('many lite agents on one UDP port: each session connects and moves data; closing one leaves the others', async (t) => {
  const { net, serverHost, mux, sessions } = await setup(3);
  t.same(serverHost.boundPorts(), [{ address: SERVER_IP, port: 3478 }], 'the server holds one socket for every session');
  const ports = new Set(sessions.map((x) => x.server.getLocalCandidates(x.ss, 1)[0]!.port));
  t.same([...ports], [3478], 'every session announces the mux port');
  const got = sessions.map(() => [] as string[]);
  sessions.forEach((x, i) => x.server.attachRecv(x.ss, 1, (d) => got[i]!.push(d.toString())));
  sessions.forEach((x, i) => x.client.send(x.cs, 1, Buffer.from(`from ${i}`)));
  await net.run({ until: () => got.every((g) => g.length === 1), timeout: 1000 });
  t.same(got, [['from 0'], ['from 1'], ['from 2']], 'each datagram reached its own session');
  t.equal(mux.stats.routes, 3, 'one route per authenticated client');
  await runWith(net, sessions[0]!.server.close());
  t.equal(mux.stats.routes, 2, 'a closed agent takes its routes away');
  const back: string[] = [];
  sessions[1]!.client.attachRecv(sessions[1]!.cs, 1, (d) => back.push(d.toString()));
  sessions[1]!.server.send(sessions[1]!.ss, 1, Buffer.from('still here'));
  await net.run({ until: () => back.length === 1, timeout: 1000 });
  t.same(back, ['still here'], 'the others go on, on the shared socket');
  for (const x of sessions) await runWith(net, Promise.all([x.client.close(), x.server.close()]));
  await runWith(net, mux.close());
  t.equal(net.pending, 0, 'nothing left');
});

t.test('ICE-lite never sends a check; it selects what the full peer nominates; regular and aggressive', async (t) => {
  for (const mode of ['regular', 'aggressive'] as const) {
    const events: SimPacketEvent[] = [];
    const { net, sessions } = await setup(1, {}, { nominationMode: mode });
    net.observe((e) => events.push(e));
    const [x] = sessions;
    t.equal(x!.server.getComponentState(x!.ss, 1), 'ready', `${mode}: the lite side is ready`);
    t.equal(x!.server.controllingMode, false, 'and controlled');
    await net.run({ for: 20_000 });
    const fromServer = events.filter((e) => e.kind === 'send' && e.from.address === SERVER_IP && isRequest(e));
    t.equal(fromServer.length, 0, `${mode}: no Binding request ever left the lite agent (20 s of consent included)`);
    t.equal(x!.server.getComponentState(x!.ss, 1), 'ready', 'kept alive by the full peer\'s consent requests');
    await runWith(net, Promise.all([x!.client.close(), x!.server.close()]));
  }
});

t.test('ICE-lite declares the session gone when the full peer\'s requests stop (consentTimeout)', async (t) => {
  const { net, sessions } = await setup(1, { consentTimeout: 10_000, disconnectedTimeout: 4000 });
  const [x] = sessions;
  let lost = false;
  x!.server.on('consent-lost', () => { lost = true; });
  await runWith(net, x!.client.close());
  const at = net.now();
  await net.run({ until: () => lost, timeout: 20_000 });
  t.ok(net.now() - at >= 9_000 && net.now() - at <= 16_000, `gone ${Math.round(net.now() - at)} ms after the last request`);
  t.equal(x!.server.getComponentState(x!.ss, 1), 'failed');
  await runWith(net, x!.server.close());
});

/**
 * A network whose timers can be moved (Network.moveTimer), as Node's is
 * (lib/transport/timers.ts): here a move is a clear and a set on the
 * simulation's clock. Counts what the agents ask of it, and the timers that fire.
 */
function movableTimers(inner: Network) {
  const count = { set: 0, moved: 0, fired: 0 };
  interface Handle { h: TimerHandle; fn: () => void; done: boolean }
  const network = new Proxy(inner, {
    get(target, prop) {
      if (prop === 'setTimer') {
        return (fn: () => void, ms: number): Handle => {
          count.set++;
          const w: Handle = { h: undefined as unknown as TimerHandle, done: false, fn: () => { w.done = true; count.fired++; fn(); } };
          w.h = target.setTimer(w.fn, ms);
          return w;
        };
      }
      if (prop === 'clearTimer') return (w: Handle) => { w.done = true; target.clearTimer(w.h); };
      if (prop === 'moveTimer') {
        return (w: Handle, ms: number): boolean => {
          if (w.done) return false;
          target.clearTimer(w.h);
          w.h = target.setTimer(w.fn, ms);
          count.moved++;
          return true;
        };
      }
      const v = Reflect.get(target, prop) as unknown;
      return typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(target) : v;
    },
  });
  return { network, count };
}

t.test('a lite agent moves its one timer as the peer\'s requests push its expiry back: no wake-up per request, and it still expires', async (t) => {
  let timers!: ReturnType<typeof movableTimers>;
  const { net, sessions } = await setup(1, { consentTimeout: 30_000, disconnectedTimeout: 10_000 }, {}, 3, (n) => (timers = movableTimers(n)).network);
  const [x] = sessions;
  const before = { ...timers.count };
  await net.run({ for: 120_000 });
  const minute = { set: timers.count.set - before.set, moved: timers.count.moved - before.moved, fired: timers.count.fired - before.fired };
  t.equal(x!.server.getComponentState(x!.ss, 1), 'ready', 'ready after two minutes of consent');
  // The peer's consent requests come every 4-6 s: about 24 in two minutes, each pushing the expiry back.
  t.ok(minute.moved >= 15, `the timer moved at the requests (${minute.moved} moves)`);
  // Without moveTimer the timer fires early at each old deadline (every 4-10 s here) and arms again.
  t.ok(minute.fired <= 1 && minute.set <= 1, `it fired ${minute.fired} times and was set ${minute.set} times in two minutes`);
  let lost = false;
  x!.server.on('consent-lost', () => { lost = true; });
  await runWith(net, x!.client.close());
  const at = net.now();
  await net.run({ until: () => lost, timeout: 40_000 });
  t.ok(lost && net.now() - at >= 24_000 && net.now() - at <= 31_000, `consent lost ${Math.round(net.now() - at)} ms after the client closed (30 s after its last request)`);
  await runWith(net, x!.server.close());
});

t.test('without Network.moveTimer the same lite agent wakes at each old deadline (the fallback)', async (t) => {
  const { net, sessions } = await setup(1, { consentTimeout: 30_000, disconnectedTimeout: 10_000 }, {}, 3, (n) => {
    const w = movableTimers(n);
    counted = w.count;
    return new Proxy(w.network, { get: (target, prop) => (prop === 'moveTimer' ? undefined : Reflect.get(target, prop)) });
  });
  const [x] = sessions;
  const before = counted.fired;
  await net.run({ for: 120_000 });
  t.equal(x!.server.getComponentState(x!.ss, 1), 'ready');
  t.ok(counted.fired - before >= 8, `fired ${counted.fired - before} times in two minutes`);
  await runWith(net, Promise.all([x!.client.close(), x!.server.close()]));
});
let counted = { set: 0, moved: 0, fired: 0 };

t.test('a flood of Binding requests for unknown ufrags from 2,000 ports: none answered, routes bounded, sessions up', async (t) => {
  const { net, mux, sessions } = await setup(2);
  const attacker = net.addHost('203.0.113.66');
  const socks = await runWith(net, Promise.all(Array.from({ length: 2000 }, () => attacker.network.bindDatagram('203.0.113.66', 0))));
  let answers = 0;
  for (const s of socks) s.onMessage(() => answers++);
  const rnd = attacker.network.randomBytes(100_000 * 4);
  for (let i = 0; i < 100_000; i++) {
    const ufrag = rnd.toString('hex', i * 4, i * 4 + 4);
    const req = encodeBindingRequest({
      transactionId: attacker.network.randomBytes(12), username: `${ufrag}:evil`, password: 'xxxxxxxxxxxxxxxxxxxxxxxx',
      priority: 1, controlling: true, tieBreaker: 1n, useCandidate: true,
    });
    socks[i % socks.length]!.send(req, { address: SERVER_IP, port: 3478 });
    if (i % 5000 === 0) await net.run({ for: 10 });
  }
  // And some that are not even STUN, and a TURN request.
  for (let i = 0; i < 1000; i++) socks[i]!.send(Buffer.from([0x80, i & 255, 1, 2]), { address: SERVER_IP, port: 3478 });
  socks[0]!.send(encodeTurnRequest(0x003, attacker.network.randomBytes(12), { requestedTransport: 17 }), { address: SERVER_IP, port: 3478 });
  await net.run({ for: 1000 });
  const st = mux.stats;
  t.equal(answers, 0, 'not one answer');
  t.equal(st.unknownUfrag, 100_000, 'every request for an unknown ufrag counted');
  t.equal(st.unknownSource, 1001, 'and everything else from unknown sources');
  t.equal(st.routes, 2, 'the route table holds the two sessions only');
  for (const x of sessions) t.equal(x.server.getComponentState(x.ss, 1), 'ready', 'sessions still up');
  for (const x of sessions) await runWith(net, Promise.all([x.client.close(), x.server.close()]));
  await Promise.all(socks.map((s) => s.close()));
  await runWith(net, mux.close());
});

t.test('announced addresses: the host candidate carries the announced address, the base the bound one', async (t) => {
  const net = new SimNetwork({ seed: 1 });
  const h = net.addHost('198.51.100.5');
  const a = new Agent({ network: h.network, announcedAddresses: { '198.51.100.5': '203.0.113.7' } });
  const s = a.addStream(1);
  await runWith(net, a.gatherCandidates(s));
  const [c] = a.getLocalCandidates(s, 1);
  t.equal(c!.address, '203.0.113.7');
  t.equal(c!.base!.address, '198.51.100.5');
  t.throws(() => new Agent({ announcedAddresses: { '10.0.0.1': '2001:db8::1' } }), InvalidOptionError, 'families must match');
  t.throws(() => new Agent({ announcedAddresses: { 'x': '1.2.3.4' } }), InvalidOptionError);
  t.throws(() => new Agent({ udpMux: {} as UdpMux }), InvalidOptionError);
  await runWith(net, a.close());
});

t.test('per-pair stats (W3C RTCIceCandidatePairStats fields), JSON-safe', async (t) => {
  const { net, sessions } = await setup(1);
  const [x] = sessions;
  for (let i = 0; i < 5; i++) x!.client.send(x!.cs, 1, Buffer.alloc(100, 0x80));
  x!.server.attachRecv(x!.ss, 1, () => {});
  await net.run({ for: 200 });
  const st = x!.client.getStats();
  const json = JSON.parse(JSON.stringify(st));
  const comp = json.streams[0].components[0];
  const sel = comp.pairs.find((p: { selected: boolean }) => p.selected);
  t.ok(sel, 'the selected pair is listed');
  t.match(sel, { state: 'succeeded', nominated: true, packetsSent: 5, bytesSent: 500 });
  t.ok(sel.requestsSent >= 1 && sel.responsesReceived >= 1, 'requests and responses counted');
  t.ok(sel.currentRoundTripTime > 0 && sel.currentRoundTripTime < 1, `RTT in seconds: ${sel.currentRoundTripTime}`);
  t.type(sel.priority, 'string', 'priority as a decimal string');
  t.ok(comp.localCandidates.some((c: { id: string }) => c.id === sel.localCandidateId), 'the local candidate is listed');
  const server = JSON.parse(JSON.stringify(x!.server.getStats())).streams[0].components[0].pairs.find((p: { selected: boolean }) => p.selected);
  t.match(server, { packetsReceived: 5, bytesReceived: 500 });
  t.ok(server.requestsReceived >= 1 && server.responsesSent >= 1, 'the lite side counts what it answered');
  t.doesNotThrow(() => JSON.stringify(x!.client.getPairs(x!.cs)), 'getPairs() serialises');
  await runWith(net, Promise.all([x!.client.close(), x!.server.close()]));
});

/** The kernel receive buffer (skmem rb) of the UDP socket on 127.0.0.1:port, from `ss`. */
function receiveBuffer(port: number): number {
  const out = execFileSync('ss', ['-uamnH', 'src', `127.0.0.1:${port}`], { encoding: 'utf8' });
  const m = /skmem:\([^)]*\brb(\d+)/.exec(out);
  if (!m) throw new Error(`no skmem in ss output: ${out}`);
  return Number(m[1]);
}

t.test('UdpMux receiveBufferSize reaches the kernel (real socket); bad sizes are typed errors', async (t) => {
  const plain = await UdpMux.bind({ addresses: ['127.0.0.1'] });
  const big = await UdpMux.bind({ addresses: ['127.0.0.1'], receiveBufferSize: 1 << 20, sendBufferSize: 1 << 20 });
  t.teardown(() => Promise.all([plain.close(), big.close()]));
  const without = receiveBuffer(plain.addresses[0]!.port);
  const withSize = receiveBuffer(big.addresses[0]!.port);
  // Linux doubles what it is asked for and caps it at 2 × net.core.rmem_max (212,992 on a stock kernel).
  t.ok(withSize > without, `1 MiB asked: rb ${withSize} > the default ${without}`);
  for (const bad of [0, -1, 1.5, '1' as unknown as number, 2 ** 31]) {
    await t.rejects(UdpMux.bind({ addresses: ['127.0.0.1'], receiveBufferSize: bad }), { name: 'InvalidArgumentError', argument: 'receiveBufferSize' }, `receiveBufferSize ${String(bad)}`);
  }
  await t.rejects(UdpMux.bind({ addresses: ['127.0.0.1'], sendBufferSize: 0 }), { name: 'InvalidArgumentError', argument: 'sendBufferSize' });
});
