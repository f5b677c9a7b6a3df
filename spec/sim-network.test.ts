/**
 * The in-memory network (lib/sim): virtual clock, links, NAT behaviours
 * (RFC 4787), the STUN and TURN server models, and each host's Network.
 * No real socket and no real timer anywhere: everything runs on virtual time.
 */
import t from 'tap';
import stun from 'stun';
import {
  BINDING_REQUEST, TURN_METHOD, PROTOCOL_UDP, classOf, decodeStun, encodeSendIndication,
  encodeTurnRequest, getData, getErrorCode, getLifetime, getNonce, getRealm, getXorMappedAddress, getXorPeerAddress,
  getXorRelayedAddress, longTermKey, methodOf, verifyFingerprint, verifyIntegrity, type DecodedStun, type LongTermAuth,
  type TurnRequestFields,
} from '../lib/stun/message.js';
import { decodeChannelData, encodeChannelData } from '../lib/turn/framing.js';
import { TurnClient } from '../lib/turn/client.js';
import { Agent, type ComponentState } from '../lib/index.js';
import type { DatagramSocket } from '../lib/transport/network.js';
import type { TransportAddress } from '../lib/transport/address.js';
import {
  SimNetwork, SimTimeoutError, type NatBehavior, type SimHost, type SimNetworkOptions, type SimPacketEvent,
} from '../lib/sim/index.js';

/* ------------------------------------------------------------------ helpers */

interface Received {
  data: Buffer;
  from: TransportAddress;
  at: number;
}

/** A bound socket that records what it receives. */
async function open(host: SimHost, address: string, port = 0): Promise<{ socket: DatagramSocket; got: Received[] }> {
  const socket = await host.network.bindDatagram(address, port);
  const got: Received[] = [];
  socket.onMessage((data, from) => got.push({ data, from, at: host.network.now() }));
  return { socket, got };
}

let tidCounter = 0;
function tid(): Buffer {
  const b = Buffer.alloc(12);
  b.writeUInt32BE(++tidCounter, 8);
  return b;
}

function bindingRequest(): Buffer {
  const m = stun.createMessage(BINDING_REQUEST, tid());
  m.addFingerprint();
  return m.toBuffer();
}

function decoded(buf: Buffer | undefined): DecodedStun {
  const m = buf && decodeStun(buf);
  if (!m) throw new Error('not a STUN message');
  return m;
}

/** The XOR-MAPPED-ADDRESS a STUN server returns to `sock` (one request, answer within 1 s virtual). */
async function reflexive(net: SimNetwork, s: { socket: DatagramSocket; got: Received[] }, server: TransportAddress): Promise<TransportAddress> {
  const before = s.got.length;
  s.socket.send(bindingRequest(), server);
  await net.run({ until: () => s.got.length > before, timeout: 1000 });
  return getXorMappedAddress(decoded(s.got[s.got.length - 1]!.data))!;
}

const PUBLIC_A = '198.51.100.2';
const PUBLIC_B = '198.51.100.3';
const PUBLIC_C = '198.51.100.4';
const NAT_IP = '203.0.113.10';
const NAT2_IP = '203.0.113.20';
const SERVER = '203.0.113.1';
const SERVER2 = '203.0.113.2';

/* ------------------------------------------------------------- virtual clock */

t.test('timers fire in virtual-time order, ties in scheduling order; clearTimer cancels', async (t) => {
  const net = new SimNetwork({ seed: 1 });
  const h = net.addHost(PUBLIC_A).network;
  const fired: string[] = [];
  h.setTimer(() => fired.push(`c@${h.now()}`), 30);
  h.setTimer(() => fired.push(`a@${h.now()}`), 10);
  h.setTimer(() => fired.push(`b1@${h.now()}`), 20);
  h.setTimer(() => fired.push(`b2@${h.now()}`), 20);
  const gone = h.setTimer(() => fired.push('cancelled'), 15);
  h.clearTimer(gone);
  h.clearTimer({});
  h.clearTimer(undefined);
  h.setTimer(() => fired.push(`zero@${h.now()}`), 0);
  await net.run({ for: 25 });
  t.same(fired, ['zero@1', 'a@10', 'b1@20', 'b2@20']);
  t.equal(net.now(), 25);
  await net.run({ for: 5 });
  t.same(fired.slice(4), ['c@30'], 'an event exactly at the end of `for` fires');
  t.equal(net.now(), 30);
});

t.test('run({until, timeout}) rejects with SimTimeoutError at the virtual timeout, in no real time', async (t) => {
  const net = new SimNetwork();
  const h = net.addHost(PUBLIC_A).network;
  let ticks = 0;
  const tick = () => {
    ticks++;
    h.setTimer(tick, 1000);
  };
  tick();
  const started = Date.now();
  const err = await net.run({ until: () => false, timeout: 3_600_000 }).catch((e: unknown) => e);
  t.ok(err instanceof SimTimeoutError, 'a SimTimeoutError');
  t.equal((err as SimTimeoutError).code, 'ERR_ICE_SIM_TIMEOUT');
  t.equal((err as SimTimeoutError).idle, false);
  t.equal(net.now(), 3_600_000, 'virtual time is at the timeout');
  t.equal(ticks, 3601);
  t.ok(Date.now() - started < 2000, `an hour of virtual time in ${Date.now() - started} ms`);

  const idle = new SimNetwork();
  const e2 = await idle.run({ until: () => false, timeout: 5000 }).catch((e: unknown) => e);
  t.ok(e2 instanceof SimTimeoutError && e2.idle, 'idle: nothing left scheduled');
  t.equal(idle.now(), 5000);

  let done = false;
  h.setTimer(() => { done = true; }, 500);
  const t0 = net.now();
  await net.run({ until: () => done, timeout: 10_000 });
  t.equal(net.now() - t0, 500, 'until stops at the event that made it true');
});

t.test('promise continuations run between events; errors in callbacks reject run()', async (t) => {
  const net = new SimNetwork();
  const h = net.addHost(PUBLIC_A).network;
  // A timer on the simulated clock, the thing under test: run() advances to it, no wall time passes.
  const virtualDelay = (ms: number) => new Promise<void>((r) => h.setTimer(r, ms));
  const steps: number[] = [];
  const task = (async () => {
    const s = await h.bindDatagram(PUBLIC_A, 0);
    for (let i = 0; i < 5; i++) {
      await virtualDelay(100);
      await Promise.resolve();
      steps.push(h.now());
    }
    await s.close();
    return 'done';
  })();
  await net.run({ until: () => steps.length === 5, timeout: 10_000 });
  t.same(steps, [100, 200, 300, 400, 500]);
  t.equal(await task, 'done');

  h.setTimer(() => { throw new Error('boom'); }, 10);
  await t.rejects(net.run({ for: 100 }), /boom/);
  const p = net.run({ for: 10 });
  await t.rejects(net.run({ for: 10 }), /already running/);
  await p;
  await t.rejects(net.run({ for: 10, until: () => true }), { code: 'ERR_ICE_INVALID_ARGUMENT' });
});

/* -------------------------------------------------------------- determinism */

/** A busy scenario: NAT, jitter, loss, three hosts exchanging random payloads. Returns everything observable. */
async function scenario(seed: number, loss: number) {
  const net = new SimNetwork({ seed, delay: 3, jitter: 7, loss });
  const nat = net.addNat({ publicAddress: NAT_IP, mapping: 'address-and-port-dependent', filtering: 'endpoint-independent' });
  const a = net.addHost('10.0.0.2', { nat });
  const b = net.addHost(PUBLIC_B);
  const c = net.addHost(PUBLIC_C, { jitter: 20 });
  const log: string[] = [];
  net.observe((e: SimPacketEvent) => log.push(`${e.time.toFixed(6)} ${e.kind} #${e.id} ${e.from.address}:${e.from.port}>${e.to.address}:${e.to.port} ${e.size}${e.reason ? ` ${e.reason}` : ''}`));
  const sa = await open(a, '10.0.0.2');
  const sb = await open(b, PUBLIC_B, 4000);
  const sc = await open(c, PUBLIC_C, 4000);
  for (const [s, h] of [[sb, b], [sc, c]] as const) {
    s.socket.onMessage((data, from) => {
      log.push(`${h.network.now().toFixed(6)} recv ${data.toString('hex')}`);
      s.socket.send(h.network.randomBytes(16), from);
    });
  }
  let n = 0;
  const tick = () => {
    sa.socket.send(a.network.randomBytes(1 + (n % 50)), n % 2 ? sb.socket.local : sc.socket.local);
    if (++n < 200) a.network.setTimer(tick, 2);
  };
  tick();
  await net.run({ for: 2000 });
  return { log, replies: sa.got.map((g) => `${g.at} ${g.data.toString('hex')}`), bytes: a.network.randomBytes(32).toString('hex'), stats: { ...net.stats } };
}

t.test('the same seed gives the same run; another seed with loss another', async (t) => {
  const one = await scenario(42, 0.1);
  const two = await scenario(42, 0.1);
  t.ok(one.log.length > 500, `${one.log.length} log lines`);
  t.same(two.log, one.log, 'identical delivery logs (times, order, ids)');
  t.same(two.replies, one.replies);
  t.equal(two.bytes, one.bytes, 'identical randomBytes');
  t.same(two.stats, one.stats);
  const other = await scenario(43, 0.1);
  t.not(other.log.join('\n'), one.log.join('\n'), 'a different seed gives a different log');
  t.not(other.bytes, one.bytes);
  t.ok(one.stats.lost > 0 && other.stats.lost > 0);
});

/* ---------------------------------------------------- loss, delay, jitter */

t.test('loss 0.2 over 10,000 datagrams delivers 0.8 within a tight band', async (t) => {
  const net = new SimNetwork({ seed: 7 });
  const a = net.addHost(PUBLIC_A, { loss: 0.2 });
  const b = net.addHost(PUBLIC_B);
  const sa = await open(a, PUBLIC_A);
  const sb = await open(b, PUBLIC_B, 5000);
  const N = 10_000;
  for (let i = 0; i < N; i++) sa.socket.send(Buffer.from([i & 255]), sb.socket.local);
  await net.run({ for: 10 });
  const fraction = sb.got.length / N;
  // Binomial: sd = sqrt(0.2 * 0.8 / 10000) = 0.004; the band is 5 sd.
  t.ok(fraction > 0.78 && fraction < 0.82, `delivered ${fraction}`);
  t.equal(net.stats.sent, N);
  t.equal(net.stats.lost + net.stats.delivered, N);
  t.equal(net.stats.delivered, sb.got.length);
});

t.test('delay and jitter bound every arrival; jitter reorders unless reorder is false', async (t) => {
  for (const reorder of [true, false]) {
    const net = new SimNetwork({ seed: 3 });
    const a = net.addHost(PUBLIC_A, { delay: 5, jitter: 10, reorder });
    const b = net.addHost(PUBLIC_B, { delay: 3 });
    const sa = await open(a, PUBLIC_A);
    const sb = await open(b, PUBLIC_B, 5000);
    const sentAt: number[] = [];
    let i = 0;
    const tick = () => {
      const buf = Buffer.alloc(4);
      buf.writeUInt32BE(i++);
      sentAt.push(net.now());
      sa.socket.send(buf, sb.socket.local);
      if (i < 1000) a.network.setTimer(tick, 1);
    };
    tick();
    await net.run({ for: 2000 });
    t.equal(sb.got.length, 1000);
    const lat = sb.got.map((g) => g.at - sentAt[g.data.readUInt32BE(0)]!);
    const order = sb.got.map((g) => g.data.readUInt32BE(0));
    const inversions = order.filter((v, k) => k > 0 && v < order[k - 1]!).length;
    if (reorder) {
      t.ok(Math.min(...lat) >= 8 && Math.max(...lat) < 18, `latency in [8, 18): ${Math.min(...lat)}..${Math.max(...lat)}`);
      t.ok(Math.max(...lat) - Math.min(...lat) > 9, 'jitter spreads over its range');
      t.ok(inversions > 0, `${inversions} reorderings`);
    } else {
      t.ok(Math.min(...lat) >= 8, 'never faster than the delay');
      t.equal(inversions, 0, 'FIFO');
    }
  }
});

/* ------------------------------------------------------------ NAT mapping */

/** A host behind a NAT with the given behaviours; three public reflectors: S1:3478, S1:3479, S2:3478. */
async function natRig(mapping: NatBehavior, filtering: NatBehavior, extra: Partial<Parameters<SimNetwork['addNat']>[0]> = {}, netOpts: SimNetworkOptions = {}) {
  const net = new SimNetwork({ seed: 11, delay: 1, ...netOpts });
  const nat = net.addNat({ publicAddress: NAT_IP, mapping, filtering, ...extra });
  const inside = net.addHost('192.168.1.2', { nat });
  const s1 = net.addHost(PUBLIC_A);
  const s2 = net.addHost(PUBLIC_B);
  const third = net.addHost(PUBLIC_C);
  const r11 = await open(s1, PUBLIC_A, 3478);
  const r12 = await open(s1, PUBLIC_A, 3479);
  const r21 = await open(s2, PUBLIC_B, 3478);
  const r3 = await open(third, PUBLIC_C, 3478);
  const client = await open(inside, '192.168.1.2', 5000);
  return { net, nat, inside, client, r11, r12, r21, r3 };
}

t.test('NAT mapping behaviours (RFC 4787 §4.1): which destinations share an external port', async (t) => {
  const expect: Record<NatBehavior, [boolean, boolean]> = {
    // [S1:3478 vs S1:3479 same port?, S1:3478 vs S2:3478 same port?]
    'endpoint-independent': [true, true],
    'address-dependent': [true, false],
    'address-and-port-dependent': [false, false],
  };
  for (const [mapping, [samePortOtherPort, samePortOtherIp]] of Object.entries(expect) as Array<[NatBehavior, [boolean, boolean]]>) {
    const { net, nat, client, r11, r12, r21 } = await natRig(mapping, 'endpoint-independent');
    for (const r of [r11, r12, r21]) client.socket.send(Buffer.from('hi'), r.socket.local);
    await net.run({ for: 100 });
    const p11 = r11.got[0]!.from;
    const p12 = r12.got[0]!.from;
    const p21 = r21.got[0]!.from;
    t.equal(p11.address, NAT_IP, `${mapping}: source is the NAT's public address`);
    t.equal(p11.port === p12.port, samePortOtherPort, `${mapping}: other port of the same IP`);
    t.equal(p11.port === p21.port, samePortOtherIp, `${mapping}: other IP`);
    t.equal(nat.stats.mappings, 1 + Number(!samePortOtherPort) + Number(!samePortOtherIp));
    t.equal(nat.mappings().length, nat.stats.mappings);
  }
});

t.test('NAT filtering behaviours (RFC 4787 §5): unsolicited inbound passes or is dropped', async (t) => {
  const expect: Record<NatBehavior, { sameIpOtherPort: boolean; otherIp: boolean }> = {
    'endpoint-independent': { sameIpOtherPort: true, otherIp: true },
    'address-dependent': { sameIpOtherPort: true, otherIp: false },
    'address-and-port-dependent': { sameIpOtherPort: false, otherIp: false },
  };
  for (const [filtering, e] of Object.entries(expect) as Array<[NatBehavior, typeof expect[NatBehavior]]>) {
    const { net, nat, client, r11, r12, r3 } = await natRig('endpoint-independent', filtering);
    client.socket.send(Buffer.from('out'), r11.socket.local);
    await net.run({ for: 50 });
    const mapped = r11.got[0]!.from;
    r11.socket.send(Buffer.from('reply'), mapped);
    r12.socket.send(Buffer.from('other-port'), mapped);
    r3.socket.send(Buffer.from('other-ip'), mapped);
    r3.socket.send(Buffer.from('unmapped'), { address: NAT_IP, port: mapped.port === 40000 ? 40001 : 40000 });
    await net.run({ for: 50 });
    const texts = client.got.map((g) => g.data.toString());
    t.ok(texts.includes('reply'), `${filtering}: the reply from the destination passes`);
    t.equal(texts.includes('other-port'), e.sameIpOtherPort, `${filtering}: same IP, other port`);
    t.equal(texts.includes('other-ip'), e.otherIp, `${filtering}: a third host`);
    t.notOk(texts.includes('unmapped'), `${filtering}: a port with no mapping`);
    t.equal(nat.stats.filtered, Number(!e.sameIpOtherPort) + Number(!e.otherIp));
    t.equal(nat.stats.noMapping, 1);
    t.equal(net.stats.filtered, nat.stats.filtered + 1);
    const from = client.got.find((g) => g.data.toString() === 'reply')!.from;
    t.same(from, r11.socket.local, 'inbound source is the remote as it is');
  }
});

t.test('NAT mappings expire after mappingLifetime of idleness; outbound keepalives keep them', async (t) => {
  const { net, nat, client, r11 } = await natRig('endpoint-independent', 'address-and-port-dependent', { mappingLifetime: 30_000, portAllocation: 'sequential' });
  t.equal(new SimNetwork().addNat({ publicAddress: NAT_IP }).mappingLifetime, 120_000, 'default: 2 minutes (RFC 4787 REQ-5)');
  client.socket.send(Buffer.from('a'), r11.socket.local);
  await net.run({ for: 10 });
  const first = r11.got[0]!.from;
  t.equal(first.port, 49152, 'sequential allocation starts at the range');
  // Keepalives every 20 s: the mapping lives on past its lifetime.
  for (let i = 0; i < 5; i++) {
    await net.run({ for: 20_000 });
    client.socket.send(Buffer.from('k'), r11.socket.local);
  }
  await net.run({ for: 10 });
  t.ok(r11.got.every((g) => g.from.port === first.port), 'same mapping throughout');
  r11.socket.send(Buffer.from('in-1'), first);
  await net.run({ for: 29_000 });
  t.same(client.got.map((g) => g.data.toString()), ['in-1'], 'alive inside its lifetime');
  t.equal(nat.stats.expired, 0);
  await net.run({ for: 1_100 });
  r11.socket.send(Buffer.from('in-2'), first);
  await net.run({ for: 10 });
  t.same(client.got.map((g) => g.data.toString()), ['in-1'], 'inbound no longer passes: the mapping is gone');
  t.equal(nat.stats.noMapping, 1);
  t.equal(nat.stats.expired, 1);
  t.same(nat.mappings(), []);
  client.socket.send(Buffer.from('b'), r11.socket.local);
  await net.run({ for: 10 });
  t.not(r11.got[r11.got.length - 1]!.from.port, first.port, 'a new mapping, a new port');
});

t.test('port preservation, and hosts behind one NAT talking on private addresses', async (t) => {
  const net = new SimNetwork({ seed: 5, delay: 1 });
  const nat = net.addNat({ publicAddress: NAT_IP, type: 'full-cone', portPreserving: true });
  const h1 = net.addHost('192.168.1.2', { nat });
  const h2 = net.addHost('192.168.1.3', { nat });
  const srv = await open(net.addHost(PUBLIC_A), PUBLIC_A, 3478);
  const s1 = await open(h1, '192.168.1.2', 6000);
  const s2 = await open(h2, '192.168.1.3', 6000);
  s1.socket.send(Buffer.from('1'), srv.socket.local);
  s2.socket.send(Buffer.from('2'), srv.socket.local);
  await net.run({ for: 10 });
  t.equal(srv.got[0]!.from.port, 6000, 'the internal port is preserved when free');
  t.not(srv.got[1]!.from.port, 6000, 'the second host gets another port');
  const before = nat.stats.mappings;
  s1.socket.send(Buffer.from('lan'), s2.socket.local);
  await net.run({ for: 10 });
  t.same(s2.got[0]!.from, { address: '192.168.1.2', port: 6000 }, 'direct, on the private address');
  t.equal(nat.stats.mappings, before, 'no NAT involved');
  s1.socket.send(Buffer.from('hairpin'), srv.got[1]!.from);
  await net.run({ for: 10 });
  t.equal(s2.got.length, 1, 'no hairpinning');
  t.equal(nat.stats.hairpinDropped, 1);
});

t.test('a NAT behind a carrier-grade NAT; hairpinning when enabled', async (t) => {
  const net = new SimNetwork({ seed: 6, delay: 1 });
  const cgn = net.addNat({ publicAddress: NAT_IP, type: 'symmetric' });
  const home = net.addNat({ publicAddress: '100.64.0.7', nat: cgn, type: 'full-cone', hairpinning: true });
  const a = net.addHost('192.168.1.2', { nat: home });
  const b = net.addHost('192.168.1.3', { nat: home });
  const stunServer = net.addStunServer(SERVER, 3478);
  t.equal(stunServer.url, 'stun:203.0.113.1:3478');
  const sa = await open(a, '192.168.1.2', 5000);
  const sb = await open(b, '192.168.1.3', 5000);
  const m = await reflexive(net, sa, stunServer.address);
  t.equal(m.address, NAT_IP, 'the server sees the outermost NAT');
  t.equal(home.stats.mappings, 1);
  t.equal(cgn.stats.mappings, 1);
  // b sends to a's mapping on the home NAT's public side (its own public address): hairpinned.
  const homeMapped = home.mappings()[0]!.external;
  t.equal(homeMapped.address, '100.64.0.7');
  sb.socket.send(Buffer.from('via hairpin'), homeMapped);
  await net.run({ for: 10 });
  const got = sa.got.find((g) => g.data.toString() === 'via hairpin');
  t.ok(got, 'hairpinned back in');
  t.equal(got?.from.address, '100.64.0.7', 'translated on the way out');
  t.equal(home.stats.hairpinDropped, 0);
});

t.test('routing: two NATs with the same private addresses; hole punching; unroutable and unreachable', async (t) => {
  for (const [type, works] of [['port-restricted-cone', true], ['symmetric', false]] as const) {
    const net = new SimNetwork({ seed: 9, delay: 2 });
    const n1 = net.addNat({ publicAddress: NAT_IP, type });
    const n2 = net.addNat({ publicAddress: NAT2_IP, type });
    const a = net.addHost('192.168.1.2', { nat: n1 });
    const b = net.addHost('192.168.1.2', { nat: n2 });
    net.addStunServer(SERVER, 3478);
    const sa = await open(a, '192.168.1.2', 7000);
    const sb = await open(b, '192.168.1.2', 7000);
    const ma = await reflexive(net, sa, { address: SERVER, port: 3478 });
    const mb = await reflexive(net, sb, { address: SERVER, port: 3478 });
    t.equal(ma.address, NAT_IP);
    t.equal(mb.address, NAT2_IP);
    // Both punch at once, then each answers what it got.
    for (let i = 0; i < 3; i++) {
      sa.socket.send(Buffer.from('a'), mb);
      sb.socket.send(Buffer.from('b'), ma);
      await net.run({ for: 50 });
    }
    const gotA = sa.got.filter((g) => g.data.toString() === 'b').length;
    const gotB = sb.got.filter((g) => g.data.toString() === 'a').length;
    t.equal(gotA > 0 && gotB > 0, works, `${type}: through both NATs ${works ? 'works' : 'fails'}`);
  }
  const net = new SimNetwork();
  const nat = net.addNat({ publicAddress: NAT_IP });
  const inside = await open(net.addHost('10.0.0.2', { nat }), '10.0.0.2');
  const pub = await open(net.addHost(PUBLIC_A), PUBLIC_A);
  pub.socket.send(Buffer.from('x'), { address: '10.0.0.2', port: inside.socket.local.port });
  pub.socket.send(Buffer.from('x'), { address: '192.0.2.99', port: 1 });
  inside.socket.send(Buffer.from('x'), { address: PUBLIC_A, port: 1 });
  await net.run({ for: 10 });
  t.equal(inside.got.length, 0, 'private addresses are not reachable from the internet');
  t.equal(net.stats.unroutable, 2);
  t.equal(net.stats.unreachable, 1, 'no socket on that port');
  t.throws(() => net.addHost('10.0.0.2', { nat }), { code: 'ERR_ICE_INVALID_ARGUMENT' }, 'addresses are unique in a realm');
  t.throws(() => net.addHost(NAT_IP), /already in use/);
});

/* ------------------------------------------------------------- STUN server */

t.test('STUN server: XOR-MAPPED-ADDRESS is the NAT\'s external address; symmetric NAT, two servers, two ports', async (t) => {
  for (const type of ['port-restricted-cone', 'symmetric'] as const) {
    const net = new SimNetwork({ seed: 2, delay: 4 });
    const nat = net.addNat({ publicAddress: NAT_IP, type });
    const host = net.addHost('192.168.1.2', { nat });
    const s1 = net.addStunServer(SERVER, 3478);
    net.addStunServer(SERVER2, 3478);
    const s = await open(host, '192.168.1.2', 5000);
    const m1 = await reflexive(net, s, s1.address);
    const m2 = await reflexive(net, s, { address: SERVER2, port: 3478 });
    t.equal(m1.address, NAT_IP);
    t.equal(m2.address, NAT_IP);
    t.equal(m1.port === m2.port, type !== 'symmetric', `${type}: ${m1.port} vs ${m2.port}`);
    const res = decoded(s.got[0]!.data);
    t.equal(res.type, 0x0101);
    t.equal(verifyFingerprint(res.raw), 'ok');
    t.equal(s.got[0]!.at, 3 * 4 * 2, 'three links each way');
    t.equal(s1.stats.requests, 1);
    // Not a Binding request: ignored. Silent: nothing.
    s.socket.send(Buffer.from('garbage!'), s1.address);
    s1.silent = true;
    s.socket.send(bindingRequest(), s1.address);
    await net.run({ for: 1000 });
    t.equal(s.got.length, 2);
    t.equal(s1.stats.ignored, 2);
  }
});

/* ------------------------------------------------------------- TURN server */

const USER = 'u';
const PASS = 'p';
const REALM = 'sim';

/** A TURN client driven by hand: sends requests, waits for the response with the same transaction id. */
class HandClient {
  auth: LongTermAuth | undefined;
  constructor(readonly net: SimNetwork, readonly s: { socket: DatagramSocket; got: Received[] }, readonly server: TransportAddress) {}

  async request(method: number, f: TurnRequestFields, auth = this.auth, id = tid()): Promise<DecodedStun> {
    this.s.socket.send(encodeTurnRequest(method, id, f, auth), this.server);
    let found: DecodedStun | undefined;
    await this.net.run({
      until: () => (found = this.s.got.map((g) => decodeStun(g.data)).find((m) => m?.transactionId.equals(id))) !== undefined,
      timeout: 2000,
    });
    this.s.got.splice(this.s.got.findIndex((g) => decodeStun(g.data)?.transactionId.equals(id)), 1);
    return found!;
  }

  /** Allocate: the 401 challenge, then the authenticated request. */
  async allocate(password = PASS): Promise<{ challenge: DecodedStun; response: DecodedStun }> {
    const challenge = await this.request(TURN_METHOD.ALLOCATE, { requestedTransport: PROTOCOL_UDP }, undefined);
    this.auth = { username: USER, realm: getRealm(challenge)!, nonce: getNonce(challenge)!, key: longTermKey(USER, getRealm(challenge)!, password) };
    const response = await this.request(TURN_METHOD.ALLOCATE, { requestedTransport: PROTOCOL_UDP });
    return { challenge, response };
  }
}

async function turnRig(opts: { lifetime?: number } = {}) {
  const net = new SimNetwork({ seed: 21, delay: 2 });
  const nat = net.addNat({ publicAddress: NAT_IP, type: 'port-restricted-cone' });
  const clientHost = net.addHost('192.168.1.2', { nat });
  const server = net.addTurnServer(SERVER, 3478, { username: USER, password: PASS, realm: REALM, ...opts });
  const peerHost = net.addHost(PUBLIC_A);
  const client = new HandClient(net, await open(clientHost, '192.168.1.2', 5000), server.address);
  const peer = await open(peerHost, PUBLIC_A, 9000);
  return { net, nat, server, client, peer, clientHost };
}

t.test('TURN: 401, authenticated Allocate, 437, permission, Send/Data round trip', async (t) => {
  const { net, server, client, peer } = await turnRig();
  const { challenge, response } = await client.allocate();
  t.equal(classOf(challenge.type), 'error');
  t.equal(getErrorCode(challenge)?.code, 401);
  t.equal(getRealm(challenge), REALM);
  t.ok(getNonce(challenge));
  t.equal(methodOf(response.type), TURN_METHOD.ALLOCATE);
  t.equal(classOf(response.type), 'success');
  t.equal(verifyIntegrity(response.raw, client.auth!.key), 'ok', 'MESSAGE-INTEGRITY with the long-term key');
  const relayed = getXorRelayedAddress(response)!;
  t.equal(relayed.address, SERVER, 'relayed on the server\'s address');
  t.not(relayed.port, 3478);
  t.equal(getXorMappedAddress(response)?.address, NAT_IP, 'XOR-MAPPED-ADDRESS: after the NAT');
  t.equal(getLifetime(response), 600);

  const again = await client.request(TURN_METHOD.ALLOCATE, { requestedTransport: PROTOCOL_UDP });
  t.equal(getErrorCode(again)?.code, 437, 'a second Allocate on the 5-tuple');
  t.equal(verifyIntegrity(again.raw, client.auth!.key), 'ok', 'authenticated error responses carry MESSAGE-INTEGRITY');

  const wrong = { ...client.auth!, key: longTermKey(USER, REALM, 'nope') };
  t.equal(getErrorCode(await client.request(TURN_METHOD.REFRESH, { lifetime: 600 }, wrong))?.code, 401, 'wrong password');
  t.equal(getErrorCode(await client.request(TURN_METHOD.REFRESH, { lifetime: 600 }, { ...client.auth!, nonce: 'old' }))?.code, 438, 'stale nonce');

  // No permission yet: the peer's datagram is dropped.
  peer.socket.send(Buffer.from('early'), relayed);
  await net.run({ for: 50 });
  t.equal(client.s.got.length, 0);

  const perm = await client.request(TURN_METHOD.CREATE_PERMISSION, { peer: peer.socket.local });
  t.equal(classOf(perm.type), 'success');
  client.s.socket.send(encodeSendIndication(tid(), peer.socket.local, Buffer.from('hello peer')), server.address);
  await net.run({ until: () => peer.got.length > 0, timeout: 1000 });
  t.equal(peer.got[0]!.data.toString(), 'hello peer');
  t.same(peer.got[0]!.from, { address: relayed.address, port: relayed.port }, 'from the relayed address');

  peer.socket.send(Buffer.from('hello client'), relayed);
  await net.run({ until: () => client.s.got.length > 0, timeout: 1000 });
  const data = decoded(client.s.got.shift()!.data);
  t.equal(methodOf(data.type), TURN_METHOD.DATA);
  t.equal(classOf(data.type), 'indication');
  t.equal(getData(data)?.toString(), 'hello client');
  t.same({ ...getXorPeerAddress(data)!, family: undefined }, { ...peer.socket.local, family: undefined });

  // Send to a peer without permission: dropped.
  const stranger = await open(net.addHost(PUBLIC_B), PUBLIC_B, 9000);
  client.s.socket.send(encodeSendIndication(tid(), stranger.socket.local, Buffer.from('x')), server.address);
  await net.run({ for: 50 });
  t.equal(stranger.got.length, 0);
  const st = server.stats;
  t.match(st, { allocations: 1, active: 1, permissions: 1, relayedOut: 1, relayedIn: 1, unauthorized: 2, staleNonce: 1 });
  t.ok(st.dropped >= 2);
});

t.test('TURN: channels both ways, retransmissions, errors, Binding, refresh 0 deletes', async (t) => {
  const { net, server, client, peer } = await turnRig();
  const { response } = await client.allocate();
  const relayed = getXorRelayedAddress(response)!;
  const bind = await client.request(TURN_METHOD.CHANNEL_BIND, { channel: 0x4001, peer: peer.socket.local });
  t.equal(classOf(bind.type), 'success');
  t.equal(server.stats.permissions, 1, 'ChannelBind installs the permission');
  t.equal(getErrorCode(await client.request(TURN_METHOD.CHANNEL_BIND, { channel: 0x3fff, peer: peer.socket.local }))?.code, 400, 'channel out of range');
  t.equal(getErrorCode(await client.request(TURN_METHOD.CHANNEL_BIND, { channel: 0x4002, peer: peer.socket.local }))?.code, 400, 'peer already on another channel');
  client.s.socket.send(encodeChannelData(0x4001, Buffer.from('over channel'), false), server.address);
  await net.run({ until: () => peer.got.length > 0, timeout: 1000 });
  t.equal(peer.got[0]!.data.toString(), 'over channel');
  peer.socket.send(Buffer.from('back'), relayed);
  await net.run({ until: () => client.s.got.length > 0, timeout: 1000 });
  t.same(decodeChannelData(client.s.got.shift()!.data), { channel: 0x4001, data: Buffer.from('back') }, 'ChannelData to the client');

  // A retransmitted request gets the very same response.
  const id = tid();
  const r1 = await client.request(TURN_METHOD.REFRESH, { lifetime: 1200 }, client.auth, id);
  const r2 = await client.request(TURN_METHOD.REFRESH, { lifetime: 1200 }, client.auth, id);
  t.equal(getLifetime(r1), 1200);
  t.ok(r1.raw.equals(r2.raw));
  t.equal(server.stats.refreshes, 1);

  server.denyPeer('198.51.100.0/24');
  t.equal(getErrorCode(await client.request(TURN_METHOD.CREATE_PERMISSION, { peer: { address: PUBLIC_B, port: 1 } }))?.code, 403, 'denied peer');
  t.equal(getErrorCode(await client.request(TURN_METHOD.CREATE_PERMISSION, { peer: { address: '2001:db8::1', port: 1 } }))?.code, 443, 'family mismatch');

  // Binding on the TURN port, as coturn answers it.
  client.s.socket.send(bindingRequest(), server.address);
  await net.run({ until: () => client.s.got.length > 0, timeout: 1000 });
  t.equal(getXorMappedAddress(decoded(client.s.got.shift()!.data))?.address, NAT_IP);

  const del = await client.request(TURN_METHOD.REFRESH, { lifetime: 0 });
  t.equal(getLifetime(del), 0);
  t.match(server.stats, { deallocations: 1, active: 0 });
  t.same(server.allocations(), []);
  const unreachableBefore = net.stats.unreachable;
  peer.socket.send(Buffer.from('late'), relayed);
  await net.run({ for: 50 });
  t.equal(net.stats.unreachable, unreachableBefore + 1, 'the relayed port is closed');
  t.equal(getErrorCode(await client.request(TURN_METHOD.REFRESH, { lifetime: 600 }))?.code, 437, 'no allocation any more');

  server.silent = true;
  client.s.socket.send(bindingRequest(), server.address);
  await net.run({ for: 1000 });
  t.equal(client.s.got.length, 0, 'silent');
});

t.test('TURN: permissions, channels and allocations expire on the virtual clock', async (t) => {
  const { net, server, client, peer } = await turnRig({ lifetime: 600 });
  const { response } = await client.allocate();
  const relayed = getXorRelayedAddress(response)!;
  await client.request(TURN_METHOD.CREATE_PERMISSION, { peer: peer.socket.local });
  t.equal(server.allocations()[0]!.permissions.length, 1);
  // Keep the client's NAT mapping open with Binding requests (every 60 s), not touching the allocation.
  for (let i = 0; i < 5; i++) {
    client.s.socket.send(bindingRequest(), server.address);
    await net.run({ for: 60_000 });
  }
  client.s.got.length = 0;
  await net.run({ for: 1_000 });
  peer.socket.send(Buffer.from('after 301 s'), relayed);
  await net.run({ for: 50 });
  t.equal(client.s.got.length, 0, 'the permission (300 s) is gone');
  t.same(server.allocations()[0]!.permissions, []);
  await net.run({ for: 300_000 });
  t.match(server.stats, { expired: 1, active: 0 }, 'the allocation (600 s) is gone');
});

t.test('TURN and STUN on one address:port; a second TURN or STUN server there is refused', async (t) => {
  const net = new SimNetwork();
  const stunServer = net.addStunServer(SERVER, 3478);
  const turn = net.addTurnServer(SERVER, 3478, { username: USER, password: PASS });
  t.throws(() => net.addTurnServer(SERVER, 3478, { username: USER, password: PASS }), /already runs/);
  t.throws(() => net.addStunServer(SERVER, 3478), /already answers/);
  t.throws(() => net.addTurnServer(SERVER, 3479, {}), { code: 'ERR_ICE_INVALID_ARGUMENT' });
  const host = net.addHost(PUBLIC_A);
  const client = new HandClient(net, await open(host, PUBLIC_A, 5000), turn.address);
  const m = await reflexive(net, client.s, stunServer.address);
  t.same(m, { address: PUBLIC_A, port: 5000 });
  t.equal(stunServer.stats.requests, 1, 'the STUN server answered the Binding');
  const { response } = await client.allocate();
  t.equal(classOf(response.type), 'success', 'the TURN server the rest');
  t.equal(turn.stats.bindings, 0);
});

t.test('the library\'s TurnClient against the simulated TURN server, through a NAT, on virtual time', async (t) => {
  const net = new SimNetwork({ seed: 31, delay: 5, jitter: 2 });
  const nat = net.addNat({ publicAddress: NAT_IP, type: 'symmetric' });
  const clientHost = net.addHost('192.168.1.2', { nat });
  const server = net.addTurnServer(SERVER, 3478, { username: USER, password: PASS, realm: REALM, lifetime: 120 });
  net.addName('turn.example', SERVER);
  const peer = await open(net.addHost(PUBLIC_A), PUBLIC_A, 9000);
  peer.socket.onMessage((data, from) => peer.socket.send(Buffer.concat([Buffer.from('echo:'), data]), from));
  const client = new TurnClient({ url: 'turn:turn.example:3478', username: USER, password: PASS, network: clientHost.network });
  const got: string[] = [];
  client.on('data', (d) => got.push(d.toString()));
  let allocation: Awaited<ReturnType<TurnClient['allocate']>> | undefined;
  void client.allocate().then((a) => { allocation = a; });
  await net.run({ until: () => allocation !== undefined, timeout: 5000 });
  t.equal(allocation!.relayed.address, SERVER);
  t.equal(allocation!.mapped?.address, NAT_IP);
  let permitted = false;
  void client.createPermission(peer.socket.local).then(() => { permitted = true; });
  await net.run({ until: () => permitted, timeout: 5000 });
  client.send(Buffer.from('one'), peer.socket.local);
  await net.run({ until: () => got.length === 1, timeout: 5000 });
  let channel: number | undefined;
  void client.bindChannel(peer.socket.local).then((c) => { channel = c; });
  await net.run({ until: () => channel !== undefined, timeout: 5000 });
  client.send(Buffer.from('two'), peer.socket.local);
  await net.run({ until: () => got.length === 2, timeout: 5000 });
  t.same(got, ['echo:one', 'echo:two']);
  // Ten virtual minutes: the 120 s allocation is refreshed, the permission and channel too.
  await net.run({ for: 600_000 });
  t.equal(client.state, 'allocated');
  t.match(server.stats, { active: 1, expired: 0 });
  t.ok(server.stats.refreshes >= 4, `${server.stats.refreshes} refreshes`);
  client.send(Buffer.from('three'), peer.socket.local);
  await net.run({ until: () => got.length === 3, timeout: 5000 });
  let closed = false;
  void client.close().then(() => { closed = true; });
  await net.run({ until: () => closed, timeout: 5000 });
  await net.run({ for: 100 });
  t.match(server.stats, { deallocations: 1, active: 0 }, 'close() deallocated');
});

/** Two agents, each behind its own NAT of `type`, with STUN and TURN on one server; resolves once both are ready. */
async function agentsBehindNats(type: 'port-restricted-cone' | 'symmetric', seed: number) {
  const net = new SimNetwork({ seed, delay: 5, jitter: 3 });
  const n1 = net.addNat({ publicAddress: NAT_IP, type });
  const n2 = net.addNat({ publicAddress: NAT2_IP, type });
  // The same private address on both sides, as two homes often have.
  const ha = net.addHost('192.168.1.2', { nat: n1 });
  const hb = net.addHost('192.168.1.2', { nat: n2 });
  const stunServer = net.addStunServer(SERVER, 3478);
  const turn = net.addTurnServer(SERVER, 3478, { username: USER, password: PASS });
  const servers = { stunServers: [stunServer.url], turnServers: [{ url: turn.url, username: USER, credential: PASS }] };
  const alice = new Agent({ controllingMode: true, network: ha.network, ...servers });
  const bob = new Agent({ controllingMode: false, network: hb.network, ...servers });
  const a = alice.addStream(1);
  const b = bob.addStream(1);
  let ready = 0;
  let gathered = 0;
  for (const [agent, id] of [[alice, a], [bob, b]] as const) {
    agent.on('component-state-changed', (s: number, _c: number, state: ComponentState) => { if (s === id && state === 'ready') ready++; });
    agent.on('candidate-gathering-done', (s: number) => { if (s === id) gathered++; });
    void agent.gatherCandidates(id);
  }
  await net.run({ until: () => gathered === 2, timeout: 10_000 });
  const ca = alice.getLocalCredentials(a);
  const cb = bob.getLocalCredentials(b);
  alice.setRemoteCredentials(a, cb.ufrag, cb.pwd);
  bob.setRemoteCredentials(b, ca.ufrag, ca.pwd);
  alice.setRemoteCandidates(a, 1, bob.getLocalCandidates(b, 1));
  bob.setRemoteCandidates(b, 1, alice.getLocalCandidates(a, 1));
  await net.run({ until: () => ready === 2, timeout: 30_000 });
  return { net, turn, alice, bob, a, b, readyAt: net.now() };
}

t.test('two Agents on the simulated network: cone NATs connect directly, symmetric NATs through TURN', async (t) => {
  for (const [type, relayed] of [['port-restricted-cone', false], ['symmetric', true]] as const) {
    const started = performance.now();
    const { net, turn, alice, bob, a, b, readyAt } = await agentsBehindNats(type, 42);
    const pair = alice.getSelectedPair(a, 1)!;
    t.equal(pair.local.type === 'relay' || pair.remote.type === 'relay', relayed, `${type}: ${pair.local.type} <-> ${pair.remote.type}`);
    const got: string[] = [];
    bob.attachRecv(b, 1, (d: Buffer) => got.push(d.toString()));
    alice.send(a, 1, Buffer.from('hello bob'));
    await net.run({ until: () => got.length === 1, timeout: 1000 });
    t.same(got, ['hello bob']);
    // Ten quiet virtual minutes: keepalives, consent and TURN refreshes keep it up.
    await net.run({ for: 600_000 });
    t.equal(alice.getSelectedPair(a, 1)?.remote.address, pair.remote.address, 'still on the same pair');
    let closed = false;
    void Promise.all([alice.close(), bob.close()]).then(() => { closed = true; });
    await net.run({ until: () => closed, timeout: 5000 });
    await net.run({ for: 1000 });
    t.equal(turn.stats.active, 0, 'close() released every allocation');
    t.equal(net.pending, 0, 'nothing left on the clock: no timer leaked');
    t.comment(`${type}: ready at ${readyAt.toFixed(1)} virtual ms, whole test ${(performance.now() - started).toFixed(0)} ms real`);
    const again = await agentsBehindNats(type, 42);
    t.equal(again.readyAt, readyAt, 'the same seed connects at the same virtual time');
    await Promise.all([again.alice.close(), again.bob.close(), again.net.run({ for: 5000 })]);
  }
});

/* ------------------------------------------------------- a host's Network */

t.test('Network of a host: interfaces, bind errors, send limits, copies, close, lookup, randomBytes', async (t) => {
  const net = new SimNetwork({ seed: 4 });
  const h = net.addHost([PUBLIC_A, '2001:db8::2']);
  const other = net.addHost(PUBLIC_B);
  const n = h.network;
  t.same(n.interfaces(), [
    { address: PUBLIC_A, internal: false }, { address: '2001:db8::2', internal: false },
    { address: '127.0.0.1', internal: true }, { address: '::1', internal: true },
  ]);
  const a = await n.bindDatagram(PUBLIC_A, 4000);
  await t.rejects(n.bindDatagram(PUBLIC_A, 4000), { code: 'EADDRINUSE', syscall: 'bind' });
  await t.rejects(n.bindDatagram(PUBLIC_B, 4000), { code: 'EADDRNOTAVAIL' });
  await t.rejects(n.bindDatagram('nonsense', 4000), { code: 'EINVAL' });
  await t.rejects(n.bindDatagram(PUBLIC_A, 70000), { code: 'ERR_SOCKET_BAD_PORT' });
  await t.rejects(other.network.bindDatagram('::', 0), { code: 'EADDRNOTAVAIL' });
  const any = await n.bindDatagram('0.0.0.0', 0);
  t.equal(any.local.address, PUBLIC_A, '0.0.0.0 binds the first IPv4 address');
  t.ok(any.local.port >= 32768 && any.local.port <= 60999, 'ephemeral port');
  const v6 = await n.bindDatagram('2001:DB8:0::2', 0);
  t.equal(v6.local.address, '2001:db8::2', 'canonical');

  const b = await open(other, PUBLIC_B, 4000);
  const payload = Buffer.from('original');
  t.equal(a.send(payload, { address: PUBLIC_B, port: 4000 }), true);
  payload.write('CHANGED!');
  t.equal(a.send(Buffer.alloc(65507), { address: PUBLIC_B, port: 4000 }), true);
  t.equal(a.send(Buffer.alloc(65508), { address: PUBLIC_B, port: 4000 }), false, 'over 65507 bytes');
  t.equal(a.send(Buffer.from('x'), { address: '2001:db8::3', port: 4000 }), false, 'other family');
  t.equal(a.send(Buffer.from('x'), { address: PUBLIC_B, port: 0 }), false, 'port 0');
  t.equal(v6.send(Buffer.alloc(65527), { address: '2001:db8::9', port: 1 }), true, 'IPv6 allows 65527');
  await net.run({ for: 10 });
  t.equal(b.got[0]!.data.toString(), 'original', 'the payload was copied at send');
  t.equal(b.got.length, 2);
  b.got[0]!.data.write('mutated');
  await a.close();
  await a.close();
  t.equal(a.send(Buffer.from('x'), { address: PUBLIC_B, port: 4000 }), false, 'false after close');
  const reused = await n.bindDatagram(PUBLIC_A, 4000);
  t.equal(reused.local.port, 4000, 'the port is free again');

  // Loopback stays on the host.
  const l1 = await open(h, '127.0.0.1', 5000);
  const l2 = await n.bindDatagram('127.0.0.1', 0);
  l2.send(Buffer.from('loop'), { address: '127.0.0.1', port: 5000 });
  await net.run({ for: 1 });
  t.same(l1.got.map((g) => g.from), [l2.local]);

  net.addName('turn.example', [SERVER, '2001:db8::1']);
  t.equal(await n.lookup('turn.example'), SERVER);
  t.equal(await n.lookup('TURN.example.', 6), '2001:db8::1');
  t.equal(await n.lookup('2001:0db8::0001'), '2001:db8::1', 'IP literals come back canonical');
  t.equal(await n.lookup('localhost', 4), '127.0.0.1');
  await t.rejects(n.lookup('nowhere.example'), { code: 'ENOTFOUND', hostname: 'nowhere.example' });

  const r1 = n.randomBytes(16);
  t.equal(r1.length, 16);
  t.not(r1.toString('hex'), other.network.randomBytes(16).toString('hex'), 'hosts have their own streams');
  t.equal(new SimNetwork({ seed: 4 }).addHost([PUBLIC_A]).network.randomBytes(16).toString('hex'), r1.toString('hex'), 'seeded');
  t.equal(n.randomBytes(5).length, 5);
});

/* ------------------------------------------------------------------ streams */

t.test('streams: connect through a NAT, data both ways in order, close, refused, timeout', async (t) => {
  const net = new SimNetwork({ seed: 8, delay: 3, jitter: 5, tcpConnectTimeout: 10_000 });
  const nat = net.addNat({ publicAddress: NAT_IP, type: 'symmetric' });
  const inside = net.addHost('192.168.1.2', { nat });
  const server = net.addHost(PUBLIC_A);
  const listener = await server.network.listenStream(PUBLIC_A, 443);
  await t.rejects(server.network.listenStream(PUBLIC_A, 443), { code: 'EADDRINUSE' });
  const serverGot: Buffer[] = [];
  let serverClosed = false;
  let remoteSeen: TransportAddress | undefined;
  listener.onConnection((s) => {
    remoteSeen = s.remote;
    s.onData((c) => {
      serverGot.push(c);
      s.write(Buffer.from(c.toString().toUpperCase()));
    });
    s.onClose(() => { serverClosed = true; });
  });
  let client: Awaited<ReturnType<typeof inside.network.connectStream>> | undefined;
  void inside.network.connectStream({ remote: { address: PUBLIC_A, port: 443 } }).then((s) => { client = s; });
  await net.run({ until: () => client !== undefined, timeout: 5000 });
  t.equal(remoteSeen?.address, NAT_IP, 'the server sees the NAT');
  const clientGot: string[] = [];
  client!.onData((c) => clientGot.push(c.toString()));
  for (let i = 0; i < 20; i++) client!.write(Buffer.from(`m${i};`));
  await net.run({ until: () => clientGot.length === 20, timeout: 5000 });
  t.equal(clientGot.join(''), Array.from({ length: 20 }, (_, i) => `M${i};`).join(''), 'in order despite jitter');
  await client!.close();
  t.equal(client!.write(Buffer.from('x')), false);
  await net.run({ until: () => serverClosed, timeout: 1000 });
  t.pass('the server saw the close');

  const refused = inside.network.connectStream({ remote: { address: PUBLIC_A, port: 444 } });
  const r = net.run({ for: 1000 });
  await t.rejects(refused, { code: 'ECONNREFUSED' });
  await r;
  const t0 = net.now();
  let err: unknown;
  server.network.connectStream({ remote: { address: NAT_IP, port: 5555 } }).catch((e: unknown) => { err = e; });
  await net.run({ until: () => err !== undefined, timeout: 60_000 });
  t.match(err, { code: 'ETIMEDOUT' }, 'unsolicited inbound through a NAT never answers');
  t.equal(net.now() - t0, 10_000);
  await listener.close();
});

/* -------------------------------------------------------------- performance */

t.test('one virtual hour, timers every 5 s on 2 hosts exchanging keepalives, runs fast', async (t) => {
  const net = new SimNetwork({ seed: 99, delay: 10, jitter: 5 });
  const nat = net.addNat({ publicAddress: NAT_IP });
  const a = net.addHost('192.168.1.2', { nat });
  const b = net.addHost(PUBLIC_A);
  const sa = await open(a, '192.168.1.2', 5000);
  const sb = await open(b, PUBLIC_A, 5000);
  sb.socket.onMessage((d, from) => sb.socket.send(d, from));
  let fired = 0;
  const every = (h: SimHost, fn: () => void) => {
    const tick = () => {
      fired++;
      fn();
      h.network.setTimer(tick, 5000);
    };
    h.network.setTimer(tick, 5000);
  };
  every(a, () => sa.socket.send(Buffer.from('keepalive'), sb.socket.local));
  every(b, () => {});
  const started = performance.now();
  await net.run({ for: 3_600_000 });
  const ms = performance.now() - started;
  await net.run({ for: 100 }); // the last echo is still on its way
  t.equal(fired, 2 * 720);
  t.equal(sa.got.length, 720, 'every keepalive echoed through the NAT');
  // Real time is a figure, not an assertion (noisy machines).
  t.comment(`one virtual hour: ${fired} timers, ${net.stats.delivered} datagrams delivered, ${ms.toFixed(1)} ms real time`);
});
