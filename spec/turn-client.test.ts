/**
 * TURN client (RFC 8656) against a real coturn on 127.0.0.1, plus a few fake
 * servers for the answers coturn cannot be made to give (437, 441, 508,
 * forged or malformed packets). Every wait is for an event, with a timeout.
 */
import t, { type Test } from 'tap';
import { trackHandles as trackHandlesOf } from './helpers.js';
import dgram from 'node:dgram';
import net from 'node:net';
import stun from 'stun';
import { startCoturn, type Coturn } from './support/coturn.js';
import { until, waitFor } from './helpers.js';
import { TurnClient, type PeerAddress, type TurnClientOptions } from '../lib/turn/client.js';
import {
  StreamFramer,
  decodeChannelData,
  encodeChannelData,
} from '../lib/turn/framing.js';
import {
  ATTR,
  TURN_ATTR,
  TURN_METHOD,
  decodeStun,
  encodeSendIndication,
  getNonce,
  getXorPeerAddress,
  longTermKey,
  messageType,
  methodOf,
  classOf,
  type DecodedStun,
} from '../lib/stun/message.js';
import { IceError, InvalidArgumentError, InvalidOptionError, InvalidStateError, TurnError } from '../lib/errors.js';
import { nodeNetwork } from '../lib/transport/node-network.js';
import type { Network } from '../lib/transport/network.js';

const LOCAL = '127.0.0.1';

/* ------------------------------------------------------------------ *
 * Helpers
 * ------------------------------------------------------------------ */

interface Peer {
  socket: dgram.Socket;
  address: PeerAddress;
  /** Resolves with the next datagram (and its source). */
  next(ms?: number): Promise<[Buffer, dgram.RemoteInfo]>;
  close(): Promise<void>;
}

/** A plain UDP peer on 127.0.0.1, the far side of the relay. */
async function makePeer(): Promise<Peer> {
  const socket = dgram.createSocket('udp4');
  await new Promise<void>((r) => socket.bind(0, LOCAL, () => r()));
  return {
    socket,
    address: { address: LOCAL, port: socket.address().port },
    next: (ms = 3000) => waitFor<[Buffer, dgram.RemoteInfo]>(socket, 'message', () => true, ms),
    close: () => new Promise<void>((r) => socket.close(() => r())),
  };
}

function opts(ct: Coturn, url: string, extra: Partial<TurnClientOptions> = {}): TurnClientOptions {
  return { url, username: ct.username, password: ct.password, localAddress: LOCAL, ca: ct.ca, ...extra };
}

/** Every UDP and TCP handle and timer (a TLS connection's TLSWRAP is destroyed only by GC; its TCPWRAP must go). */
const trackHandles = () => trackHandlesOf(['Timeout', 'UDPWRAP', 'TCPWRAP']);

/** A relay round trip: client → peer (checked to come from the relayed address) → client. */
async function roundTrip(t: Test, client: TurnClient, peer: Peer, payload: string, reply: string): Promise<void> {
  const got = peer.next();
  t.ok(client.send(Buffer.from(payload), peer.address), 'send accepted');
  const [msg, rinfo] = await got;
  t.equal(msg.toString(), payload, 'peer got the data');
  t.same({ address: rinfo.address, port: rinfo.port }, {
    address: client.allocation!.relayed.address,
    port: client.allocation!.relayed.port,
  }, 'from the relayed address');
  const back = waitFor<[Buffer, PeerAddress]>(client, 'data', () => true, 3000);
  peer.socket.send(Buffer.from(reply), rinfo.port, rinfo.address);
  const [data, from] = await back;
  t.equal(data.toString(), reply, 'reply arrived as a data event');
  t.same(from, peer.address, 'data event names the peer');
}

/* ------------------------------------------------------------------ *
 * Pure framing and codec
 * ------------------------------------------------------------------ */

t.test('ChannelData encode/decode and stream framing (RFC 8656 §12.4, §12.5)', async (t) => {
  const data = Buffer.from('hello');
  const udp = encodeChannelData(0x4001, data, false);
  t.equal(udp.length, 9, 'no padding over UDP');
  const tcp = encodeChannelData(0x4001, data, true);
  t.equal(tcp.length, 12, 'padded to 4 over TCP');
  t.same(decodeChannelData(udp), { channel: 0x4001, data });
  t.same(decodeChannelData(tcp), { channel: 0x4001, data }, 'padding ignored');
  t.equal(decodeChannelData(Buffer.from([0x40, 0x01, 0x00, 0x08, 1, 2])), undefined, 'length beyond datagram');
  t.equal(decodeChannelData(Buffer.from([0x50, 0x00, 0x00, 0x00])), undefined, 'reserved channel 0x5000');
  t.equal(decodeChannelData(Buffer.from([0x40])), undefined, 'short');

  // A STUN message, a padded ChannelData, another STUN message: fed one byte at a time and in one go.
  const s1 = encodeSendIndication(Buffer.alloc(12, 1), { address: LOCAL, port: 1234 }, Buffer.from('abc'));
  const s2 = encodeSendIndication(Buffer.alloc(12, 2), { address: LOCAL, port: 5678 }, Buffer.from('defgh'));
  const stream = Buffer.concat([s1, tcp, s2]);
  for (const step of [1, 3, stream.length]) {
    const framer = new StreamFramer();
    const frames: Buffer[] = [];
    for (let i = 0; i < stream.length; i += step) t.ok(framer.push(stream.subarray(i, i + step), (f) => frames.push(Buffer.from(f))));
    t.same(frames, [s1, encodeChannelData(0x4001, data, false), s2], `frames with chunks of ${step}`);
    t.equal(framer.buffered, 0);
  }
  const bad = new StreamFramer();
  t.equal(bad.push(Buffer.from([0x80, 0, 0, 0]), () => t.fail('no frame')), false, 'first bits 10: out of sync');
  t.equal(bad.push(s1, () => t.fail('no frame')), false, 'stays failed');
});

t.test('TURN attributes in lib/stun/message.ts', async (t) => {
  t.equal(messageType(TURN_METHOD.ALLOCATE, 'request'), 0x0003);
  t.equal(messageType(TURN_METHOD.ALLOCATE, 'success'), 0x0103);
  t.equal(messageType(TURN_METHOD.ALLOCATE, 'error'), 0x0113);
  t.equal(messageType(TURN_METHOD.SEND, 'indication'), 0x0016);
  t.equal(messageType(TURN_METHOD.DATA, 'indication'), 0x0017);
  t.equal(messageType(TURN_METHOD.CHANNEL_BIND, 'request'), 0x0009);
  for (const m of Object.values(TURN_METHOD)) {
    for (const c of ['request', 'indication', 'success', 'error'] as const) {
      t.equal(methodOf(messageType(m, c)), m);
      t.equal(classOf(messageType(m, c)), c);
    }
  }
  // RFC 8489 §9.2.2: MD5("user:realm:pass"), as `echo -n user:realm:pass | md5sum` gives.
  t.equal(longTermKey('user', 'realm', 'pass').toString('hex'), '8493fbc53ba582fb4c044c456bdc40eb');
  const tid = Buffer.alloc(12, 7);
  for (const address of [LOCAL, '2001:db8::1', '::ffff:1.2.3.4']) {
    const m = decodeStun(encodeSendIndication(tid, { address, port: 40000 }, Buffer.from('x')))!;
    t.ok(m, 'decodes');
    const p = getXorPeerAddress(m)!;
    t.equal(p.port, 40000);
    // In canonical form (lib/transport/address.ts): IPv4-mapped in mixed notation, RFC 5952 §5.
    t.equal(p.address, address, `XOR-PEER-ADDRESS ${address}`);
  }
});

/* ------------------------------------------------------------------ *
 * Against coturn
 * ------------------------------------------------------------------ */

t.test('against coturn', {}, async (t) => {
  const ct = await startCoturn({ tls: true });
  t.teardown(() => ct.stop());

  const inRelayRange = (t: Test, c: TurnClient) => {
    const r = c.allocation!.relayed;
    t.equal(r.address, ct.relayIp, 'relayed on the relay IP');
    t.ok(r.port >= ct.relayRange.min && r.port <= ct.relayRange.max, `relayed port ${r.port} in ${ct.relayRange.min}-${ct.relayRange.max}`);
  };

  for (const [name, url] of [['UDP', ct.url], ['TCP', ct.tcpUrl], ['TLS', ct.tlsUrl!]] as const) {
    t.test(`allocate over ${name}: 401 challenge, then authenticated`, async (t) => {
      const before = ct.count(/incoming packet ALLOCATE processed, success/);
      const client = await TurnClient.allocate(opts(ct, url));
      t.teardown(() => client.close());
      t.equal(client.state, 'allocated');
      inRelayRange(t, client);
      t.same(client.allocation!.mapped, client.localAddress, 'XOR-MAPPED-ADDRESS is our local address on loopback');
      t.ok(client.allocation!.lifetime > 0, 'LIFETIME');
      t.equal(client.stats.requests, 2, 'two Allocates: unauthenticated, then with credentials');
      t.equal(client.stats.responses, 2);
      await ct.waitForCount(/incoming packet ALLOCATE processed, success/, before + 1);
      t.pass('coturn logged the allocation');
    });

    t.test(`relay over ${name}: permission + Send indication, then ChannelData both ways`, async (t) => {
      const client = await TurnClient.allocate(opts(ct, url));
      const peer = await makePeer();
      t.teardown(async () => {
        await client.close();
        await peer.close();
      });
      await client.createPermission(peer.address.address);
      t.ok(client.hasPermission(LOCAL));
      t.equal(client.stats.permissionsInstalled, 1);
      await roundTrip(t, client, peer, 'ping', 'pong!');
      t.equal(client.stats.sendIndications, 1, 'sent in a Send indication');
      t.equal(client.stats.dataIndications, 1, 'received in a Data indication');

      const channel = await client.bindChannel(peer.address);
      t.ok(channel >= 0x4000 && channel <= 0x4fff, `channel 0x${channel.toString(16)}`);
      t.equal(client.channelFor(peer.address), channel);
      t.equal(await client.bindChannel(peer.address), channel, 'binding again gives the same channel');
      // Odd lengths: over TCP/TLS both sides pad ChannelData to 4 bytes.
      await roundTrip(t, client, peer, 'ping2', 'pong2!!');
      await roundTrip(t, client, peer, 'p3', 'q');
      t.equal(client.stats.sendIndications, 1, 'no more Send indications');
      t.equal(client.stats.channelDataSent, 2, 'sent in ChannelData');
      t.equal(client.stats.dataIndications, 1, 'no more Data indications');
      t.equal(client.stats.channelDataReceived, 2, 'received in ChannelData');
      t.equal(client.stats.malformed, 0);
      t.equal(client.stats.unexpected, 0);
    });
  }

  t.test('send() without a permission installs one and delivers the queued data', async (t) => {
    const client = await TurnClient.allocate(opts(ct, ct.url));
    const peer = await makePeer();
    t.teardown(async () => {
      await client.close();
      await peer.close();
    });
    t.notOk(client.hasPermission(LOCAL));
    const got = peer.next();
    t.ok(client.send(Buffer.from('one'), peer.address));
    t.ok(client.send(Buffer.from('two'), peer.address));
    t.equal((await got)[0].toString(), 'one');
    t.equal((await peer.next())[0].toString(), 'two', 'in order');
    t.ok(client.hasPermission(LOCAL));
  });

  t.test('403 for a forbidden peer (no-multicast-peers)', async (t) => {
    const client = await TurnClient.allocate(opts(ct, ct.url));
    t.teardown(() => client.close());
    const err = await client.createPermission('224.0.0.1').then(() => undefined, (e: unknown) => e);
    t.type(err, TurnError);
    t.equal((err as TurnError).stunCode, 403);
    t.equal((err as TurnError).server, ct.url);
    t.match((err as TurnError).message, /forbidden/);
    t.equal(client.state, 'allocated', 'the allocation survives');
  });

  for (const [what, username, password] of [['wrong password', ct.username, 'not-the-password'], ['unknown user', 'mallory', 'x']] as const) {
    t.test(`${what} → TurnError 401 naming the server`, async (t) => {
      const client = new TurnClient(opts(ct, ct.url, { username, password }));
      const err = await client.allocate().then(() => undefined, (e: unknown) => e);
      t.type(err, TurnError);
      t.type(err, IceError);
      const e = err as TurnError;
      t.equal(e.code, 'ERR_ICE_TURN');
      t.equal(e.stunCode, 401);
      t.equal(e.server, ct.url);
      t.match(e.message, ct.url);
      t.match(e.reason, /wrong username or password/);
      t.equal(client.state, 'closed', 'the client closed itself');
      t.equal(client.stats.requests, 2, 'challenge, then one authenticated try');
    });
  }

  t.test('TLS: an untrusted certificate fails with a TurnError', async (t) => {
    const err = await TurnClient.allocate(opts(ct, ct.tlsUrl!, { ca: undefined })).then(() => undefined, (e: unknown) => e);
    t.type(err, TurnError);
    t.equal((err as TurnError).stunCode, undefined);
    t.match((err as TurnError).reason, /TLS/);
  });

  t.test('close() deallocates, and leaves no handle or timer', async (t) => {
    const handles = trackHandles();
    t.teardown(() => handles.stop());
    const peer = await makePeer();
    const clients = await Promise.all([ct.url, ct.tcpUrl, ct.tlsUrl!].map((u) => TurnClient.allocate(opts(ct, u))));
    for (const c of clients) {
      await c.bindChannel(peer.address);
      await roundTrip(t, c, peer, 'x', 'y');
    }
    const mapped = clients.map((c) => c.allocation!.mapped!.port);
    const closed = clients.map((c) => waitFor(c, 'close'));
    await Promise.all(clients.map((c) => c.close()));
    await Promise.all(closed);
    await peer.close();
    for (const c of clients) t.equal(c.state, 'closed');
    // Refresh with LIFETIME 0 for each (RFC 8656 §7.3), answered with success.
    await ct.waitForCount(/refreshed, .*lifetime=0/, 3);
    t.pass('coturn saw three deallocations');
    // coturn then deletes each session; its close line names the client's address.
    for (const port of mapped) await ct.waitForLog(new RegExp(`closed \\(2nd stage\\).*remote 127\\.0\\.0\\.1:${port}\\b`));
    t.same(await handles.live(), [], 'no socket, connection or timer left');
    t.equal(clients[0]!.send(Buffer.from('late'), peer.address), false, 'send after close is dropped');
    await clients[0]!.close(); // idempotent
  });

  t.test('packets from anyone but the server are dropped and counted', async (t) => {
    const client = await TurnClient.allocate(opts(ct, ct.url));
    const peer = await makePeer();
    t.teardown(async () => {
      await client.close();
      await peer.close();
    });
    client.on('data', () => t.fail('no data event'));
    const { port } = client.localAddress!;
    // A Data indication that claims to be from the relay, but comes from a peer socket straight to ours.
    const tid = Buffer.alloc(12, 9);
    const fake = stun.createMessage(messageType(TURN_METHOD.DATA, 'indication'), tid);
    fake.addAttribute(TURN_ATTR.XOR_PEER_ADDRESS, LOCAL, 1);
    fake.addAttribute(TURN_ATTR.DATA, Buffer.from('spoof'));
    for (const pkt of [fake.toBuffer(), encodeChannelData(0x4000, Buffer.from('x'), false), Buffer.from('garbage')]) {
      peer.socket.send(pkt, port, LOCAL);
    }
    // No event reports a drop: wait on the counter.
    await until(() => client.stats.unexpected >= 3, 3000, 'three drops');
    t.equal(client.stats.unexpected, 3);
    t.equal(client.stats.dataIndications, 0);
  });
});

t.test('short lifetimes: allocation, permission and channel refreshes (coturn)', {}, async (t) => {
  // max-allocate-lifetime=4: the client refreshes half-way, at 2 s. stale-nonce=1: by then the
  // nonce is stale, so the refresh meets 438 and is retried with the new nonce (RFC 8489 §9.2.5).
  // permission-lifetime/channel-lifetime=3: without refreshes every second, data would stop after 3 s.
  const ct = await startCoturn({ maxAllocateLifetime: 4, staleNonce: 1, permissionLifetime: 3, channelLifetime: 3 });
  t.teardown(() => ct.stop());

  t.test('allocation refresh, through a 438 Stale Nonce', async (t) => {
    const client = await TurnClient.allocate(opts(ct, ct.url));
    t.teardown(() => client.close());
    t.equal(client.allocation!.lifetime, 4, 'coturn capped the lifetime');
    const [kind, lifetime] = await waitFor<['allocation', number]>(client, 'refresh', (k) => k === 'allocation', 6000);
    t.equal(kind, 'allocation');
    t.ok(lifetime > 0);
    t.equal(client.stats.allocationRefreshes, 1, 'one Refresh transaction succeeded');
    t.ok(client.stats.staleNonces >= 1, '438 Stale Nonce was answered with the new nonce');
    await ct.waitForCount(/error 438/, 1);
    await ct.waitForCount(/incoming packet REFRESH processed, success/, 1);
    t.pass('coturn sent 438, then refreshed');
  });

  t.test('permission and channel refreshes keep data flowing past their lifetime', async (t) => {
    const client = await TurnClient.allocate(opts(ct, ct.tcpUrl, { permissionRefreshMs: 1000, channelRefreshMs: 1000 }));
    const peer = await makePeer();
    const peer2 = await makePeer();
    t.teardown(async () => {
      await client.close();
      await peer.close();
      await peer2.close();
    });
    await client.bindChannel(peer.address);
    // peer2 shares the IP, so the channel's permission covers it; it is reached by Send indication.
    const start = Date.now();
    let permissionRefreshes = 0;
    let channelRefreshes = 0;
    client.on('refresh', (k) => {
      if (k === 'permission') permissionRefreshes++;
      if (k === 'channel') channelRefreshes++;
    });
    // Four refreshes of each: more than 3 s, the lifetime of both on this server.
    await until(() => permissionRefreshes >= 4 && channelRefreshes >= 4, 10000, 'four refreshes of each');
    t.ok(Date.now() - start > 3000, 'past the 3 s lifetime');
    t.equal(client.stats.permissionRefreshes, permissionRefreshes);
    t.equal(client.stats.channelRefreshes, channelRefreshes);
    await roundTrip(t, client, peer, 'still', 'here');
    await roundTrip(t, client, peer2, 'also', 'here2');
    t.ok(client.stats.channelDataSent >= 1 && client.stats.sendIndications >= 1);
  });
});

t.test('486 Allocation Quota Reached, and close() frees the quota (coturn user-quota=1)', {}, async (t) => {
  const ct = await startCoturn({ userQuota: 1 });
  t.teardown(() => ct.stop());
  const first = await TurnClient.allocate(opts(ct, ct.url));
  const err = await TurnClient.allocate(opts(ct, ct.url)).then(() => undefined, (e: unknown) => e);
  t.type(err, TurnError);
  t.equal((err as TurnError).stunCode, 486);
  t.match((err as TurnError).reason, /quota/);
  t.equal((err as TurnError).server, ct.url);
  const mapped = first.allocation!.mapped!.port;
  await first.close();
  // coturn deletes the allocation on its next timer tick after the Refresh with LIFETIME 0.
  await ct.waitForLog(new RegExp(`closed \\(2nd stage\\).*remote 127\\.0\\.0\\.1:${mapped}\\b`), 5000);
  const again = await TurnClient.allocate(opts(ct, ct.tcpUrl));
  t.equal(again.state, 'allocated', 'a new allocation fits the quota again');
  await again.close();
});

/* ------------------------------------------------------------------ *
 * Failures without a working server
 * ------------------------------------------------------------------ */

t.test('a server that never answers: TurnError timeout within timeoutMs (UDP, with retransmissions)', async (t) => {
  // A port nobody listens on: bind, note it, close.
  const probe = dgram.createSocket('udp4');
  await new Promise<void>((r) => probe.bind(0, LOCAL, () => r()));
  const port = probe.address().port;
  await new Promise<void>((r) => probe.close(() => r()));
  const handles = trackHandles();
  t.teardown(() => handles.stop());
  const url = `turn:${LOCAL}:${port}`;
  const client = new TurnClient({ url, username: 'u', password: 'p', localAddress: LOCAL, timeoutMs: 800, rto: 100 });
  const start = Date.now();
  const err = await client.allocate().then(() => undefined, (e: unknown) => e);
  const elapsed = Date.now() - start;
  t.type(err, TurnError);
  t.equal((err as TurnError).stunCode, undefined);
  t.equal((err as TurnError).server, url);
  t.match((err as TurnError).reason, /no response within/);
  // Not before its budget; the upper bound only says it ends (a liveness bound, generous for loaded machines).
  t.ok(elapsed >= 750 && elapsed < 10_000, `failed after ${elapsed} ms (timeoutMs 800)`);
  t.ok(client.stats.retransmissions >= 2, `retransmitted (${client.stats.retransmissions}) with a doubling RTO`);
  t.equal(client.state, 'closed');
  t.same(await handles.live(), [], 'socket and timers released');
});

t.test('TCP connection refused: TurnError naming the server', async (t) => {
  const srv = net.createServer();
  await new Promise<void>((r) => srv.listen(0, LOCAL, () => r()));
  const port = (srv.address() as net.AddressInfo).port;
  await new Promise<void>((r) => srv.close(() => r()));
  const url = `turn:${LOCAL}:${port}?transport=tcp`;
  const err = await TurnClient.allocate({ url, username: 'u', password: 'p', localAddress: LOCAL }).then(() => undefined, (e: unknown) => e);
  t.type(err, TurnError);
  t.equal((err as TurnError).server, url);
  t.match((err as TurnError).reason, /connection refused/);
});

/* ------------------------------------------------------------------ *
 * A scripted fake server, for answers coturn does not give on demand
 * ------------------------------------------------------------------ */

interface FakeServer {
  url: string;
  /** Sends to the client from the server's own socket. */
  send(buf: Buffer): void;
  close(): Promise<void>;
}

const REALM = 'fake.test';
const NONCE = 'nonce-1';

function response(req: DecodedStun, cls: 'success' | 'error', build: (m: ReturnType<typeof stun.createMessage>) => void, key?: Buffer): Buffer {
  const m = stun.createMessage(messageType(req.method, cls), Buffer.from(req.transactionId));
  build(m);
  if (key) (m.addMessageIntegrity as unknown as (k: Buffer) => unknown).call(m, key);
  return m.toBuffer();
}

function challenge(req: DecodedStun, nonce = NONCE): Buffer {
  return response(req, 'error', (m) => {
    m.addError(401, 'Unauthorized');
    m.addAttribute(ATTR.REALM, REALM);
    m.addAttribute(ATTR.NONCE, nonce);
  });
}

function allocateSuccess(req: DecodedStun, key: Buffer): Buffer {
  return response(req, 'success', (m) => {
    m.addAttribute(TURN_ATTR.XOR_RELAYED_ADDRESS, '192.0.2.7', 50000);
    m.addXorAddress(LOCAL, 1);
    m.addAttribute(TURN_ATTR.LIFETIME, 600);
  }, key);
}

/** A UDP "TURN server": `answer` sees each decoded request (with the auth attributes it carried) and replies. */
async function fakeUdpServer(answer: (req: DecodedStun, server: FakeServer) => void): Promise<FakeServer> {
  const sock = dgram.createSocket('udp4');
  await new Promise<void>((r) => sock.bind(0, LOCAL, () => r()));
  let client: dgram.RemoteInfo | undefined;
  const server: FakeServer = {
    url: `turn:${LOCAL}:${sock.address().port}`,
    send: (buf) => sock.send(buf, client!.port, client!.address),
    close: () => new Promise<void>((r) => sock.close(() => r())),
  };
  sock.on('message', (msg, rinfo) => {
    client = rinfo;
    const req = decodeStun(msg);
    if (req) answer(req, server);
  });
  return server;
}

const KEY = longTermKey('u', REALM, 'p');
const nonceOf = (req: DecodedStun) => getNonce(req);

for (const [code, meaning] of [[403, /forbidden/], [437, /allocation mismatch/], [441, /wrong credentials/], [508, /insufficient capacity/]] as const) {
  t.test(`fake server: ${code} → TurnError ${code}; garbage on the way is dropped and counted`, async (t) => {
    const fake = await fakeUdpServer((req, s) => {
      if (nonceOf(req) === undefined) return s.send(challenge(req));
      // Before the real answer: noise the client must drop without throwing.
      s.send(Buffer.from([0xff, 0xff, 0, 0])); // neither STUN nor ChannelData
      s.send(Buffer.from(req.raw.subarray(0, 24))); // truncated STUN
      s.send(encodeChannelData(0x4abc, Buffer.from('?'), false)); // no such channel
      s.send(Buffer.from([0x40, 0x00, 0x00, 0x10, 1])); // ChannelData longer than the datagram
      s.send(response({ ...req, transactionId: Buffer.alloc(12) } as DecodedStun, 'error', (m) => m.addError(500, 'x'))); // unknown transaction
      // Without MESSAGE-INTEGRITY it could be forged (over UDP it is dropped and the request retransmitted).
      s.send(response(req, 'error', (m) => m.addError(code, 'Scripted'), KEY));
    });
    t.teardown(() => fake.close());
    const client = new TurnClient({ url: fake.url, username: 'u', password: 'p', localAddress: LOCAL, timeoutMs: 2000 });
    const err = await client.allocate().then(() => undefined, (e: unknown) => e);
    t.type(err, TurnError);
    t.equal((err as TurnError).stunCode, code);
    t.match((err as TurnError).reason, meaning);
    t.match((err as TurnError).reason, /Scripted/, "the server's reason phrase is kept");
    t.equal(client.stats.malformed, 3, 'three malformed packets');
    t.equal(client.stats.unexpected, 2, 'unknown channel and unknown transaction');
  });
}

t.test('fake server: a success response with a bad MESSAGE-INTEGRITY is ignored; 438 during Allocate is retried once', async (t) => {
  const nonces: Array<string | undefined> = [];
  const fake = await fakeUdpServer((req, s) => {
    const nonce = nonceOf(req);
    nonces.push(nonce);
    if (nonce === undefined) return s.send(challenge(req));
    if (nonce === NONCE) {
      return s.send(response(req, 'error', (m) => {
        m.addError(438, 'Stale Nonce');
        m.addAttribute(ATTR.REALM, REALM);
        m.addAttribute(ATTR.NONCE, 'nonce-2');
      }));
    }
    s.send(allocateSuccess(req, longTermKey('u', REALM, 'wrong'))); // forged: dropped
    s.send(allocateSuccess(req, KEY));
  });
  t.teardown(() => fake.close());
  const client = await TurnClient.allocate({ url: fake.url, username: 'u', password: 'p', localAddress: LOCAL, timeoutMs: 2000 });
  t.teardown(() => client.close());
  t.same(nonces, [undefined, NONCE, 'nonce-2'], 'no credentials, then the first nonce, then the fresh one');
  t.same(client.allocation!.relayed, { address: '192.0.2.7', port: 50000, family: 'IPv4' });
  t.equal(client.stats.staleNonces, 1);
  t.equal(client.stats.unexpected, 1, 'the forged success was dropped');
});

t.test('fake server: 438 twice in a row fails; a 401 without NONCE fails', async (t) => {
  const stale = await fakeUdpServer((req, s) => {
    if (nonceOf(req) === undefined) return s.send(challenge(req));
    s.send(response(req, 'error', (m) => {
      m.addError(438, 'Stale Nonce');
      m.addAttribute(ATTR.NONCE, `n${Math.random()}`);
    }));
  });
  const noNonce = await fakeUdpServer((req, s) => s.send(response(req, 'error', (m) => m.addError(401, 'Unauthorized'))));
  t.teardown(async () => {
    await stale.close();
    await noNonce.close();
  });
  const e1 = await TurnClient.allocate({ url: stale.url, username: 'u', password: 'p', localAddress: LOCAL }).then(() => undefined, (e: unknown) => e);
  t.equal((e1 as TurnError).stunCode, 438);
  const e2 = await TurnClient.allocate({ url: noNonce.url, username: 'u', password: 'p', localAddress: LOCAL }).then(() => undefined, (e: unknown) => e);
  t.equal((e2 as TurnError).stunCode, 401);
  t.match((e2 as TurnError).reason, /without REALM or NONCE/);
});

t.test('fake TCP server: a stream out of sync closes the connection, counted as malformed', async (t) => {
  const srv = net.createServer((sock) => {
    sock.once('data', () => sock.write(Buffer.from([0xc0, 0, 0, 4, 0, 0, 0, 0])));
    sock.on('error', () => {});
  });
  await new Promise<void>((r) => srv.listen(0, LOCAL, () => r()));
  t.teardown(() => new Promise<void>((r) => srv.close(() => r())));
  const url = `turn:${LOCAL}:${(srv.address() as net.AddressInfo).port}?transport=tcp`;
  const client = new TurnClient({ url, username: 'u', password: 'p', localAddress: LOCAL, timeoutMs: 2000 });
  const err = await client.allocate().then(() => undefined, (e: unknown) => e);
  t.type(err, TurnError);
  t.match((err as TurnError).reason, /connection closed/);
  t.equal(client.stats.malformed, 1);
});

t.test('fake server: the allocation is lost when the refresh is refused with 437', async (t) => {
  const fake = await fakeUdpServer((req, s) => {
    if (nonceOf(req) === undefined) return s.send(challenge(req));
    if (req.method === TURN_METHOD.ALLOCATE) {
      return s.send(response(req, 'success', (m) => {
        m.addAttribute(TURN_ATTR.XOR_RELAYED_ADDRESS, '192.0.2.7', 50000);
        m.addAttribute(TURN_ATTR.LIFETIME, 1);
      }, KEY));
    }
    s.send(response(req, 'error', (m) => m.addError(437, 'Allocation Mismatch'), KEY));
  });
  t.teardown(() => fake.close());
  const client = await TurnClient.allocate({ url: fake.url, username: 'u', password: 'p', localAddress: LOCAL, timeoutMs: 200 });
  const closed = waitFor(client, 'close', () => true, 3000);
  const [err] = await waitFor<[TurnError]>(client, 'failed', () => true, 3000);
  t.equal(err.stunCode, 437);
  await closed;
  t.equal(client.state, 'closed');
});

/* ------------------------------------------------------------------ *
 * API misuse
 * ------------------------------------------------------------------ */

t.test('options and arguments are checked', async (t) => {
  t.throws(() => new TurnClient({ url: 'stun:127.0.0.1', username: 'u', password: 'p' }), InvalidOptionError);
  t.throws(() => new TurnClient({ url: 'turn:', username: 'u', password: 'p' }), InvalidArgumentError);
  t.throws(() => new TurnClient({ url: 'turn:127.0.0.1', username: '', password: 'p' }), InvalidOptionError);
  t.throws(() => new TurnClient({ url: 'turn:127.0.0.1', username: 'u', password: 'p', timeoutMs: 0 }), InvalidOptionError);
  t.throws(() => new TurnClient({ url: 'turn:127.0.0.1', username: 'u', password: 'p', localAddress: 'localhost' }), InvalidOptionError);
  // A network that counts the client's timers (the scheduler option is gone): none armed before allocate(), none left after close().
  let timers = 0;
  const live = new Set<unknown>();
  const counting: Network = {
    now: () => nodeNetwork.now(),
    setTimer: (fn, ms) => {
      timers++;
      const h = nodeNetwork.setTimer(() => {
        live.delete(h);
        fn();
      }, ms);
      live.add(h);
      return h;
    },
    clearTimer: (h) => {
      live.delete(h);
      nodeNetwork.clearTimer(h);
    },
    randomBytes: (n) => nodeNetwork.randomBytes(n),
    interfaces: () => nodeNetwork.interfaces(),
    bindDatagram: (a, p) => nodeNetwork.bindDatagram(a, p),
    connectStream: (o) => nodeNetwork.connectStream(o),
    listenStream: (a, p) => nodeNetwork.listenStream(a, p),
    lookup: (h, f) => nodeNetwork.lookup(h, f),
  };
  const c = new TurnClient({ url: 'turn:127.0.0.1', username: 'u', password: 'p', network: counting });
  t.equal(c.send(Buffer.from('x'), { address: LOCAL, port: 1 }), false, 'send before allocate is dropped');
  t.equal(c.stats.sendDropped, 1);
  await t.rejects(c.createPermission(LOCAL), InvalidStateError);
  await t.rejects(c.bindChannel({ address: 'nope', port: 1 }), InvalidArgumentError);
  await t.rejects(c.bindChannel({ address: LOCAL, port: 0 }), InvalidArgumentError);
  await c.close();
  await t.rejects(c.allocate(), InvalidStateError, 'no allocate after close');
  t.equal(timers, 0, 'no timer was armed for a client that never allocated');
  t.equal(live.size, 0, "the client's timer is gone");
});
