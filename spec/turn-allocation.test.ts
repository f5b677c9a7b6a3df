/**
 * The sans-I/O TURN allocation machine (lib/turn/allocation.ts) with no
 * sockets: a fake server answers each request with hand-built messages and
 * `now` is advanced by hand. At the end, the `TurnClient` shell over a fake
 * Network (no sockets either): one timer, and nothing outliving close().
 */
import t, { type Test } from 'tap';
import stun from 'stun';
import { createHmac } from 'node:crypto';
import {
  ATTR,
  TURN_ATTR,
  TURN_METHOD,
  decodeStun,
  encodeSendIndication,
  getChannelNumber,
  getData,
  getLifetime,
  getNonce,
  getUsername,
  getXorPeerAddress,
  hasAttribute,
  longTermKey,
  messageType,
  type DecodedStun,
} from '../lib/stun/message.js';
import { Allocation, udpWaits, type AllocationConfig, type AllocationEvent, type AllocationIo } from '../lib/turn/allocation.js';
import { decodeChannelData, encodeChannelData } from '../lib/turn/framing.js';
import { TurnClient } from '../lib/turn/client.js';
import { TurnError } from '../lib/errors.js';
import type { DatagramSocket, Network, StreamSocket } from '../lib/transport/network.js';
import type { TransportAddress } from '../lib/transport/address.js';

const SERVER: TransportAddress = { address: '192.0.2.1', port: 3478 };
const URL = 'turn:192.0.2.1:3478';
const REALM = 'fake.test';
const KEY = longTermKey('u', REALM, 'p');
const PEER = { address: '198.51.100.9', port: 40000 };

/* ------------------------------------------------------------------ *
 * The outside world, by hand
 * ------------------------------------------------------------------ */

/** The clock, what was sent, what was emitted; deterministic transaction ids. */
class World {
  now = 1000;
  sent: Buffer[] = [];
  events: AllocationEvent[] = [];
  #counter = 0;
  readonly io: AllocationIo;
  constructor() {
    const w = this;
    this.io = {
      get now() {
        return w.now;
      },
      send: (data) => void this.sent.push(Buffer.from(data)),
      randomBytes: (n) => {
        const b = Buffer.alloc(n);
        b.writeUInt32BE(++this.#counter, n - 4);
        return b;
      },
      emit: (e) => void this.events.push(e),
    };
  }

  /** The requests sent since the last call, decoded. */
  take(): DecodedStun[] {
    const out = this.sent.map((b) => decodeStun(b)!);
    this.sent = [];
    return out;
  }

  /** The one request sent since the last call. */
  one(t: Test, what: string): DecodedStun {
    const got = this.take();
    t.equal(got.length, 1, `one ${what} sent`);
    return got[0]!;
  }

  /** The events emitted since the last call. */
  drain(): AllocationEvent[] {
    const e = this.events;
    this.events = [];
    return e;
  }

  /** Moves the clock to `at`, handling every deadline on the way, as the shell's timer would. */
  runUntil(a: Allocation, at: number): void {
    for (let i = 0; i < 10_000; i++) {
      const next = a.nextTimeout();
      if (next > at) break;
      this.now = Math.max(this.now, next);
      a.handleTimeout(this.io);
    }
    this.now = at;
  }
}

function config(extra: Partial<AllocationConfig> = {}): AllocationConfig {
  return { url: URL, server: SERVER, transport: 'udp', username: 'u', password: 'p', timeoutMs: 3000, ...extra };
}

type Msg = ReturnType<typeof stun.createMessage>;

function answer(req: DecodedStun, cls: 'success' | 'error', build: (m: Msg) => void, key?: Buffer): Buffer {
  const m = stun.createMessage(messageType(req.method, cls), Buffer.from(req.transactionId));
  build(m);
  if (key) (m.addMessageIntegrity as unknown as (k: Buffer) => unknown).call(m, key);
  return m.toBuffer();
}

const challenge = (req: DecodedStun, nonce = 'nonce-1') => answer(req, 'error', (m) => {
  m.addError(401, 'Unauthorized');
  m.addAttribute(ATTR.REALM, REALM);
  m.addAttribute(ATTR.NONCE, nonce);
});

const stale = (req: DecodedStun, nonce: string) => answer(req, 'error', (m) => {
  m.addError(438, 'Stale Nonce');
  m.addAttribute(ATTR.REALM, REALM);
  m.addAttribute(ATTR.NONCE, nonce);
});

/**
 * An error response to any method, built by hand (the `stun` package refuses
 * ERROR-CODE in error types it does not know, e.g. CreatePermission's):
 * ERROR-CODE (RFC 8489 §14.8), then MESSAGE-INTEGRITY if `key` (§14.5).
 */
function failure(req: DecodedStun, code: number, key?: Buffer): Buffer {
  const reason = Buffer.from('Scripted');
  const value = Buffer.concat([Buffer.from([0, 0, Math.floor(code / 100), code % 100]), reason]);
  const attr = (type: number, v: Buffer) => {
    const a = Buffer.alloc(4 + ((v.length + 3) & ~3));
    a.writeUInt16BE(type, 0);
    a.writeUInt16BE(v.length, 2);
    v.copy(a, 4);
    return a;
  };
  const body = attr(ATTR.ERROR_CODE, value);
  const header = Buffer.alloc(20);
  header.writeUInt16BE(messageType(req.method, 'error'), 0);
  header.writeUInt32BE(0x2112a442, 4);
  req.transactionId.copy(header, 8);
  header.writeUInt16BE(body.length + (key ? 24 : 0), 2);
  if (!key) return Buffer.concat([header, body]);
  const mac = createHmac('sha1', key).update(header).update(body).digest();
  return Buffer.concat([header, body, attr(ATTR.MESSAGE_INTEGRITY, mac)]);
}

const allocateSuccess = (req: DecodedStun, lifetime = 600, key = KEY) => answer(req, 'success', (m) => {
  m.addAttribute(TURN_ATTR.XOR_RELAYED_ADDRESS, '203.0.113.5', 50000);
  m.addXorAddress('192.0.2.200', 6000);
  m.addAttribute(TURN_ATTR.LIFETIME, lifetime);
}, key);

const ok = (req: DecodedStun, build: (m: Msg) => void = () => {}) => answer(req, 'success', build, KEY);

/** A machine taken to 'allocated' (challenge, then success); its requests and events drained. */
function allocated(t: Test, extra: Partial<AllocationConfig> = {}, lifetime = 600): { a: Allocation; w: World } {
  const w = new World();
  const a = new Allocation(config(extra));
  a.start(w.io);
  a.receive(w.io, challenge(w.one(t, 'Allocate')));
  a.receive(w.io, allocateSuccess(w.one(t, 'authenticated Allocate'), lifetime));
  t.equal(a.state, 'allocated');
  w.drain();
  return { a, w };
}

/* ------------------------------------------------------------------ *
 * Allocate
 * ------------------------------------------------------------------ */

t.test('Allocate: unauthenticated, 401 challenge, then with the long-term credentials (RFC 8656 §7.1, RFC 8489 §9.2)', async (t) => {
  const w = new World();
  const a = new Allocation(config({ lifetime: 900, software: 'test' }));
  t.equal(a.state, 'new');
  t.equal(a.nextTimeout(), Infinity);
  a.start(w.io);
  t.equal(a.state, 'allocating');
  const first = w.one(t, 'Allocate');
  t.equal(first.method, TURN_METHOD.ALLOCATE);
  t.equal(first.cls, 'request');
  t.notOk(hasAttribute(first, ATTR.USERNAME), 'no USERNAME');
  t.notOk(hasAttribute(first, ATTR.MESSAGE_INTEGRITY), 'no MESSAGE-INTEGRITY');
  t.ok(hasAttribute(first, TURN_ATTR.REQUESTED_TRANSPORT), 'REQUESTED-TRANSPORT');
  t.equal(getLifetime(first), 900, 'LIFETIME asked for');
  t.equal(a.receive(w.io, challenge(first)), undefined);
  const second = w.one(t, 'authenticated Allocate');
  t.equal(getUsername(second), 'u');
  t.equal(getNonce(second), 'nonce-1');
  t.ok(hasAttribute(second, ATTR.MESSAGE_INTEGRITY));
  t.same(w.drain(), [], 'no event yet');
  a.receive(w.io, allocateSuccess(second, 600));
  t.equal(a.state, 'allocated');
  t.same(w.drain(), [{
    type: 'allocated',
    relayed: { address: '203.0.113.5', port: 50000, family: 'IPv4' },
    mapped: { address: '192.0.2.200', port: 6000 },
    lifetime: 600,
  }]);
  t.same(a.relayed, { address: '203.0.113.5', port: 50000, family: 'IPv4' });
  t.equal(a.lifetime, 600);
  t.match(a.stats, { requests: 2, responses: 2, retransmissions: 0, unexpected: 0, malformed: 0 });
  // Refresh 60 s before the 600 s run out (§7.2).
  t.equal(a.nextTimeout(), w.now + 540_000);
});

t.test('UDP retransmissions: RTO doubling, cut to the budget (RFC 8489 §6.2.1); then failed', async (t) => {
  t.same(udpWaits(500, 3000), [500, 1000, 1500]);
  t.same(udpWaits(100, 800), [100, 200, 400, 100]);
  t.same(udpWaits(10, 100_000), [10, 20, 40, 80, 160, 320, 99_370], 'Rc = 7, the last wait takes the rest');
  const w = new World();
  const a = new Allocation(config({ timeoutMs: 800, rto: 100 }));
  const t0 = w.now;
  a.start(w.io);
  const sends: number[] = [];
  for (;;) {
    const next = a.nextTimeout();
    if (next === Infinity) break;
    sends.push(...w.sent.map(() => w.now - t0));
    w.sent = [];
    w.now = next;
    a.handleTimeout(w.io);
  }
  t.same(sends, [0, 100, 300, 700], 'sent at 0, 100, 300, 700 ms');
  t.equal(w.now - t0, 800, 'gave up at 800 ms');
  t.equal(a.stats.retransmissions, 3);
  const [e] = w.drain();
  t.equal(e?.type, 'failed');
  const err = (e as { error: TurnError }).error;
  t.type(err, TurnError);
  t.equal(err.server, URL);
  t.equal(err.stunCode, undefined);
  t.match(err.reason, /Allocate: no response within 800 ms/);
  t.equal(a.state, 'closed');
});

t.test('TCP/TLS: one transmission, one timeout (RFC 8489 §6.2.2)', async (t) => {
  const w = new World();
  const a = new Allocation(config({ transport: 'tcp', timeoutMs: 2000 }));
  a.start(w.io);
  w.take();
  t.equal(a.nextTimeout(), w.now + 2000);
  w.runUntil(a, w.now + 2000);
  t.same(w.take(), [], 'never retransmitted');
  t.equal(w.drain()[0]?.type, 'failed');
});

t.test('Allocate errors: wrong credentials, 401 without NONCE, 438 retried once, success without XOR-RELAYED-ADDRESS', async (t) => {
  const run = (script: (req: DecodedStun, n: number) => Buffer) => {
    const w = new World();
    const a = new Allocation(config());
    a.start(w.io);
    for (let n = 0; n < 5 && a.state === 'allocating'; n++) a.receive(w.io, script(w.one(t, 'request'), n));
    return { a, w, e: w.drain() };
  };
  const wrong = run((req, n) => (n === 0 ? challenge(req) : answer(req, 'error', (m) => m.addError(401, 'Unauthorized'))));
  t.equal(wrong.e[0]?.type, 'failed');
  t.equal((wrong.e[0] as { error: TurnError }).error.stunCode, 401);
  t.match((wrong.e[0] as { error: TurnError }).error.reason, /wrong username or password/);
  t.equal(wrong.a.stats.requests, 2, 'challenge, then one authenticated try');

  const noNonce = run((req) => answer(req, 'error', (m) => m.addError(401, 'Unauthorized')));
  t.match((noNonce.e[0] as { error: TurnError }).error.reason, /without REALM or NONCE/);

  const nonces: Array<string | undefined> = [];
  const once = run((req, n) => {
    nonces.push(getNonce(req));
    return n === 0 ? challenge(req) : n === 1 ? stale(req, 'nonce-2') : allocateSuccess(req);
  });
  t.equal(once.e[0]?.type, 'allocated');
  t.same(nonces, [undefined, 'nonce-1', 'nonce-2'], 'retried with the new nonce (RFC 8489 §9.2.5)');
  t.equal(once.a.stats.staleNonces, 1);

  const twice = run((req, n) => (n === 0 ? challenge(req) : stale(req, `n${n}`)));
  t.equal((twice.e[0] as { error: TurnError }).error.stunCode, 438, '438 twice in a row fails');
  t.equal(twice.a.stats.requests, 3);

  const quota = run((req, n) => (n === 0 ? challenge(req) : failure(req, 486, KEY)));
  t.match((quota.e[0] as { error: TurnError }).error.reason, /Allocate failed: allocation quota reached \(server said "Scripted"\)/);

  const noRelay = run((req, n) => (n === 0 ? challenge(req) : ok(req, (m) => m.addAttribute(TURN_ATTR.LIFETIME, 600))));
  t.match((noRelay.e[0] as { error: TurnError }).error.reason, /without XOR-RELAYED-ADDRESS/);
});

/* ------------------------------------------------------------------ *
 * Which answers end a transaction
 * ------------------------------------------------------------------ */

t.test('review defect 1: over UDP an unsigned error to an authenticated request is dropped, and the request retransmitted', async (t) => {
  // Allocate: a forged 486 without MESSAGE-INTEGRITY must not end it.
  const w = new World();
  const a = new Allocation(config({ rto: 100 }));
  a.start(w.io);
  a.receive(w.io, challenge(w.one(t, 'Allocate')));
  const req = w.one(t, 'authenticated Allocate');
  a.receive(w.io, failure(req, 486));
  t.equal(a.state, 'allocating', 'still allocating');
  t.same(w.drain(), [], 'no failure');
  t.equal(a.stats.unexpected, 1, 'counted as unexpected');
  w.runUntil(a, w.now + 100);
  const again = w.one(t, 'retransmission');
  t.same(again.transactionId, req.transactionId, 'the same transaction goes on');
  // The real answer still ends it.
  a.receive(w.io, allocateSuccess(req));
  t.equal(a.state, 'allocated');

  // CreatePermission: unsigned 403 dropped, signed 403 accepted.
  w.drain();
  a.permit(w.io, PEER.address);
  const cp = w.one(t, 'CreatePermission');
  a.receive(w.io, failure(cp, 403));
  t.same(w.drain(), [], 'unsigned 403 ignored');
  t.equal(a.stats.unexpected, 2);
  a.receive(w.io, failure(cp, 403, longTermKey('u', REALM, 'wrong')));
  t.same(w.drain(), [], '403 with a bad MESSAGE-INTEGRITY ignored');
  t.equal(a.stats.unexpected, 3);
  a.receive(w.io, failure(cp, 403, KEY));
  const [e] = w.drain();
  t.match(e, { type: 'permission', address: PEER.address });
  t.equal((e as { error: TurnError }).error.stunCode, 403);
  t.equal(a.state, 'allocated', 'the allocation survives');

  // Unanswered but for forgeries: the timeout says what was ignored.
  a.permit(w.io, '198.51.100.10');
  const cp2 = w.one(t, 'CreatePermission');
  a.receive(w.io, failure(cp2, 403));
  w.runUntil(a, w.now + 3000);
  const [late] = w.drain();
  t.match((late as { error: TurnError }).error.reason, /no response within 3000 ms \(ignored an answer without valid MESSAGE-INTEGRITY: 403\)/);
});

t.test('over TCP/TLS an unsigned error is accepted (the link is trusted); a wrong MESSAGE-INTEGRITY never is', async (t) => {
  const { a, w } = allocated(t, { transport: 'tcp' });
  a.permit(w.io, PEER.address);
  const cp = w.one(t, 'CreatePermission');
  a.receive(w.io, failure(cp, 403, longTermKey('u', REALM, 'wrong')));
  t.same(w.drain(), [], 'bad integrity dropped');
  a.receive(w.io, failure(cp, 403));
  t.equal((w.drain()[0] as { error: TurnError }).error.stunCode, 403);
});

t.test('a success without valid MESSAGE-INTEGRITY is dropped; id and method must match; only answers are matched', async (t) => {
  const w = new World();
  const a = new Allocation(config());
  a.start(w.io);
  a.receive(w.io, challenge(w.one(t, 'Allocate')));
  const req = w.one(t, 'authenticated Allocate');
  a.receive(w.io, allocateSuccess(req, 600, longTermKey('u', REALM, 'wrong')));
  a.receive(w.io, answer(req, 'success', (m) => m.addAttribute(TURN_ATTR.XOR_RELAYED_ADDRESS, '203.0.113.5', 1))); // no MI
  a.receive(w.io, allocateSuccess({ ...req, transactionId: Buffer.alloc(12, 0xee) }));
  a.receive(w.io, allocateSuccess({ ...req, method: TURN_METHOD.REFRESH }));
  a.receive(w.io, encodeSendIndication(Buffer.alloc(12), PEER, Buffer.from('x'))); // a Send indication from the server?
  t.equal(a.state, 'allocating');
  t.equal(a.stats.unexpected, 5);
  t.equal(a.stats.responses, 1, 'only the challenge so far');
  a.receive(w.io, allocateSuccess(req));
  t.equal(a.state, 'allocated');
});

t.test('malformed input is counted, never thrown', async (t) => {
  const { a, w } = allocated(t);
  const good = encodeSendIndication(Buffer.alloc(12), PEER, Buffer.from('x'));
  const badFingerprint = Buffer.concat([good, Buffer.from([0x80, 0x28, 0, 4, 0, 0, 0, 0])]);
  badFingerprint.writeUInt16BE(badFingerprint.length - 20, 2);
  for (const junk of [Buffer.alloc(0), Buffer.from([0xff, 0xff, 0, 0]), good.subarray(0, 24), Buffer.from([0x40, 0, 0, 0x10, 1]), badFingerprint]) {
    t.equal(a.receive(w.io, junk), undefined);
  }
  t.equal(a.stats.malformed, 5);
  t.equal(a.receive(w.io, encodeChannelData(0x4abc, Buffer.from('?'), false)), undefined);
  t.equal(a.stats.unexpected, 1, 'ChannelData on an unknown channel');
  t.equal(a.state, 'allocated');
});

/* ------------------------------------------------------------------ *
 * Refreshes
 * ------------------------------------------------------------------ */

t.test('allocation refresh: margin or half-way, through a 438; 437 loses the allocation', async (t) => {
  const { a, w } = allocated(t, {}, 4);
  const t0 = w.now;
  t.equal(a.nextTimeout(), t0 + 2000, 'a 4 s lifetime is refreshed half-way');
  w.runUntil(a, t0 + 2000);
  const r1 = w.one(t, 'Refresh');
  t.equal(r1.method, TURN_METHOD.REFRESH);
  a.receive(w.io, stale(r1, 'nonce-2'));
  const r2 = w.one(t, 'Refresh with the new nonce');
  t.equal(getNonce(r2), 'nonce-2');
  a.receive(w.io, ok(r2, (m) => m.addAttribute(TURN_ATTR.LIFETIME, 4)));
  t.same(w.drain(), [{ type: 'refresh', kind: 'allocation', detail: 4 }]);
  t.equal(a.stats.allocationRefreshes, 1);
  t.equal(a.stats.staleNonces, 1);
  t.equal(a.nextTimeout(), t0 + 4000);
  w.runUntil(a, t0 + 4000);
  a.receive(w.io, failure(w.one(t, 'Refresh'), 437, KEY));
  const [lost] = w.drain();
  t.equal(lost?.type, 'lost');
  t.equal((lost as { error: TurnError }).error.stunCode, 437);
  t.match((lost as { error: TurnError }).error.reason, /allocation mismatch/);
  t.equal(a.state, 'closed');
  t.equal(a.nextTimeout(), Infinity);
});

t.test('an unanswered refresh is retried half-way to expiry, then the allocation is lost', async (t) => {
  const { a, w } = allocated(t, { timeoutMs: 3000 }, 600);
  const t0 = w.now;
  const refreshes: number[] = [];
  const ids = new Set<string>();
  for (let i = 0; i < 100 && a.state === 'allocated'; i++) {
    w.now = a.nextTimeout();
    a.handleTimeout(w.io);
    for (const m of w.take()) {
      const id = m.transactionId.toString('hex');
      if (m.method === TURN_METHOD.REFRESH && !ids.has(id)) refreshes.push(w.now - t0);
      ids.add(id);
    }
  }
  // First at 540 s; each retry half-way from the last one's timeout to expiry at 600 s, while more than 2·timeoutMs remain.
  t.same(refreshes, [540_000, 571_500, 587_250, 595_125]);
  t.equal(a.state, 'closed');
  const [lost] = w.drain();
  t.equal(lost?.type, 'lost');
  t.match((lost as { error: TurnError }).error.reason, /Refresh: no response within 3000 ms/);
  t.ok(w.now - t0 < 600_000, 'given up before the allocation expired');
});

t.test('permissions: idempotent, refreshed, retried at max(1000, refresh/8) after a failure (RFC 8656 §9)', async (t) => {
  const { a, w } = allocated(t, { permissionRefreshMs: 20_000 });
  a.permit(w.io, PEER.address);
  a.permit(w.io, PEER.address);
  const cp = w.one(t, 'CreatePermission (idempotent)');
  t.equal(cp.method, TURN_METHOD.CREATE_PERMISSION);
  t.same(getXorPeerAddress(cp), { address: PEER.address, port: 0, family: 'IPv4' });
  t.notOk(a.hasPermission(PEER.address));
  a.receive(w.io, ok(cp));
  t.same(w.drain(), [{ type: 'permission', address: PEER.address }]);
  t.ok(a.hasPermission(PEER.address));
  t.equal(a.stats.permissionsInstalled, 1);
  const t0 = w.now;
  t.equal(a.nextTimeout(), t0 + 20_000);
  w.runUntil(a, t0 + 20_000);
  a.receive(w.io, failure(w.one(t, 'refresh'), 508, KEY));
  const [failed] = w.drain();
  t.match(failed, { type: 'refresh-failed', kind: 'permission' });
  t.equal((failed as { error: TurnError }).error.stunCode, 508);
  t.ok(a.hasPermission(PEER.address), 'still installed: it lasts 300 s from the last success');
  t.equal(a.nextTimeout(), w.now + 2500, 'retried after 20000/8 ms');
  w.runUntil(a, w.now + 2500);
  a.receive(w.io, ok(w.one(t, 'retry')));
  t.same(w.drain(), [{ type: 'refresh', kind: 'permission', detail: PEER.address }]);
  t.equal(a.stats.permissionRefreshes, 1);
  t.equal(a.stats.permissionsInstalled, 1);
});

/* ------------------------------------------------------------------ *
 * Data and channels
 * ------------------------------------------------------------------ */

t.test('send(): queued behind the CreatePermission it starts (at most 64), flushed in order once installed', async (t) => {
  const { a, w } = allocated(t);
  for (let i = 0; i < 64; i++) t.ok(a.send(w.io, Buffer.from(`d${i}`), PEER) || true);
  t.equal(a.send(w.io, Buffer.from('too many'), PEER), false, 'the 65th is dropped');
  t.equal(a.stats.sendDropped, 1);
  const cp = w.one(t, 'CreatePermission');
  t.equal(cp.method, TURN_METHOD.CREATE_PERMISSION);
  a.receive(w.io, ok(cp));
  const flushed = w.take();
  t.equal(flushed.length, 64);
  t.ok(flushed.every((m) => m.method === TURN_METHOD.SEND && m.cls === 'indication'), 'Send indications (§11.1)');
  t.same(flushed.map((m) => getData(m)!.toString()), Array.from({ length: 64 }, (_, i) => `d${i}`), 'in order');
  t.same(getXorPeerAddress(flushed[0]!), { ...PEER, family: 'IPv4' });
  t.ok(a.send(w.io, Buffer.from('now'), PEER));
  t.equal(getData(w.one(t, 'Send indication'))!.toString(), 'now');
  t.equal(a.stats.sendIndications, 65);

  // A refused permission drops what was queued for it.
  a.send(w.io, Buffer.from('a'), { address: '198.51.100.77', port: 1 });
  a.send(w.io, Buffer.from('b'), { address: '198.51.100.77', port: 2 });
  a.receive(w.io, failure(w.one(t, 'CreatePermission'), 403, KEY));
  t.equal(a.stats.sendDropped, 3);
  t.equal(a.send(w.io, Buffer.from('x'), { address: 'not-an-ip', port: 1 }), false);
});

t.test('channels: 0x4000 up, ChannelData both ways (padded over TCP), the ChannelBind installs the permission (RFC 8656 §12)', async (t) => {
  for (const transport of ['udp', 'tcp'] as const) {
    const { a, w } = allocated(t, { transport, channelRefreshMs: 30_000 });
    a.bindChannel(w.io, PEER);
    a.bindChannel(w.io, PEER);
    const cb = w.one(t, `ChannelBind (${transport}, idempotent)`);
    t.equal(cb.method, TURN_METHOD.CHANNEL_BIND);
    t.equal(getChannelNumber(cb), 0x4000);
    t.same(getXorPeerAddress(cb), { ...PEER, family: 'IPv4' });
    t.equal(a.channelFor(PEER), undefined, 'not bound before the answer');
    // The server may relay before its answer arrives.
    t.same(a.receive(w.io, encodeChannelData(0x4000, Buffer.from('early'), false)), { data: Buffer.from('early'), peer: PEER });
    a.receive(w.io, ok(cb));
    t.same(w.drain(), [{ type: 'permission', address: PEER.address }, { type: 'channel', peer: PEER, channel: 0x4000 }]);
    t.equal(a.channelFor(PEER), 0x4000);
    t.ok(a.hasPermission(PEER.address), 'the ChannelBind installed the permission');
    t.ok(a.send(w.io, Buffer.from('abcde'), PEER));
    const [cd] = w.sent.splice(0);
    t.equal(cd!.length, transport === 'udp' ? 9 : 12, transport === 'udp' ? 'unpadded over UDP' : 'padded to 4 over TCP (§12.5)');
    t.same(decodeChannelData(cd!), { channel: 0x4000, data: Buffer.from('abcde') });
    t.same(a.receive(w.io, encodeChannelData(0x4000, Buffer.from('back'), transport !== 'udp')), { data: Buffer.from('back'), peer: PEER });
    t.equal(a.stats.channelDataReceived, 2);
    // A second peer, the next number.
    a.bindChannel(w.io, { address: PEER.address, port: 40001 });
    t.equal(getChannelNumber(w.one(t, 'ChannelBind')), 0x4001);
    // Refreshed (and its permission too, on the permission interval).
    const t0 = w.now;
    w.runUntil(a, t0 + 30_000);
    const refresh = w.take().filter((m) => m.method === TURN_METHOD.CHANNEL_BIND && getChannelNumber(m) === 0x4000);
    t.equal(refresh.length, 1, 'ChannelBind refresh');
    a.receive(w.io, ok(refresh[0]!));
    t.same(w.drain().filter((e) => e.type === 'refresh'), [{ type: 'refresh', kind: 'channel', detail: 0x4000 }]);
    t.equal(a.stats.channelRefreshes, 1);
  }
});

t.test('a Data indication is returned with its peer in canonical form (RFC 8656 §11.4)', async (t) => {
  const { a, w } = allocated(t);
  const ind = (peer: { address: string; port: number }, data?: Buffer) => {
    const m = stun.createMessage(messageType(TURN_METHOD.DATA, 'indication'), Buffer.alloc(12, 3));
    m.addAttribute(TURN_ATTR.XOR_PEER_ADDRESS, peer.address, peer.port);
    if (data) m.addAttribute(TURN_ATTR.DATA, data);
    return m.toBuffer();
  };
  t.same(a.receive(w.io, ind(PEER, Buffer.from('hi'))), { data: Buffer.from('hi'), peer: PEER });
  t.same(a.receive(w.io, ind({ address: '2001:DB8:0:0:0:0:0:1', port: 5 }, Buffer.from('v6'))), { data: Buffer.from('v6'), peer: { address: '2001:db8::1', port: 5 } });
  t.equal(a.receive(w.io, ind(PEER)), undefined, 'no DATA');
  t.equal(a.stats.dataIndications, 2);
  t.equal(a.stats.malformed, 1);
});

/* ------------------------------------------------------------------ *
 * close() and the link
 * ------------------------------------------------------------------ */

t.test('review defect 2: close() is bounded by min(timeoutMs, 1000) ms, 438 retry included', async (t) => {
  for (const timeoutMs of [3000, 400]) {
    const { a, w } = allocated(t, { timeoutMs });
    a.permit(w.io, PEER.address);
    a.send(w.io, Buffer.from('queued'), PEER);
    w.take();
    const t0 = w.now;
    a.close(w.io);
    t.equal(a.state, 'closing');
    t.equal(a.stats.sendDropped, 1, 'queued data dropped');
    const dealloc = w.one(t, 'Refresh LIFETIME 0');
    t.equal(dealloc.method, TURN_METHOD.REFRESH);
    t.equal(getLifetime(dealloc), 0, 'LIFETIME 0 (§7.3)');
    a.close(w.io);
    t.same(w.take(), [], 'close() is idempotent');
    const bound = Math.min(timeoutMs, 1000);
    // The server answers 438 half-way through: the retry gets only what is left.
    w.runUntil(a, t0 + bound / 2);
    w.take();
    a.receive(w.io, stale(dealloc, 'nonce-2'));
    t.equal(getNonce(w.one(t, 'deallocation with the new nonce')), 'nonce-2');
    t.ok(a.nextTimeout() <= t0 + bound, 'still within the bound');
    w.runUntil(a, t0 + bound);
    t.equal(a.state, 'closed', `closed ${bound} ms after close() (timeoutMs ${timeoutMs})`);
    t.same(w.drain(), [{ type: 'closed' }]);
    t.equal(a.nextTimeout(), Infinity, 'nothing left to do');
  }
  // Answered: closed at once.
  const { a, w } = allocated(t);
  a.close(w.io);
  a.receive(w.io, ok(w.one(t, 'deallocation')));
  t.equal(a.state, 'closed');
  t.same(w.drain(), [{ type: 'closed' }]);
});

t.test('review defect 2: close() while allocating (or before) ends at once, with nothing pending', async (t) => {
  const w = new World();
  const a = new Allocation(config());
  a.start(w.io);
  const req = w.one(t, 'Allocate');
  a.close(w.io);
  t.equal(a.state, 'closed');
  t.same(w.drain(), [{ type: 'closed' }]);
  t.same(w.take(), [], 'no deallocation needed');
  t.equal(a.nextTimeout(), Infinity);
  a.receive(w.io, challenge(req));
  t.same(w.take(), [], 'a late answer starts nothing');
  t.equal(a.stats.unexpected, 1);
  const fresh = new Allocation(config());
  fresh.close(w.io);
  t.equal(fresh.state, 'closed');
  t.same(w.drain(), [{ type: 'closed' }]);
  fresh.start(w.io);
  t.same(w.take(), [], 'no start after close');
});

t.test('linkClosed(): failed while allocating, lost once allocated, closed while closing', async (t) => {
  const w = new World();
  const a = new Allocation(config({ transport: 'tcp' }));
  a.start(w.io);
  a.linkClosed(w.io, 'connection closed');
  t.match(w.drain(), [{ type: 'failed', error: { reason: 'Allocate: connection closed' } }]);
  const b = allocated(t, { transport: 'tls' });
  b.a.linkClosed(b.w.io, 'connection closed by the server');
  t.match(b.w.drain(), [{ type: 'lost', error: { reason: 'connection closed by the server: allocation lost' } }]);
  t.equal(b.a.state, 'closed');
  b.a.close(b.w.io);
  t.same(b.w.drain(), [{ type: 'closed' }], 'a close() after the loss still reports closed, once');
  const c = allocated(t, { transport: 'tcp' });
  c.a.close(c.w.io);
  c.a.linkClosed(c.w.io, 'gone');
  t.same(c.w.drain(), [{ type: 'closed' }]);
});

/* ------------------------------------------------------------------ *
 * Plain data, no hidden I/O
 * ------------------------------------------------------------------ */

/** Every value reachable from `v`: plain data only (no functions, promises, timers). */
function impurities(v: unknown, path = 'allocation', seen = new Set<unknown>()): string[] {
  if (v === null || typeof v !== 'object') return typeof v === 'function' ? [path] : [];
  if (seen.has(v)) return [];
  seen.add(v);
  if (Buffer.isBuffer(v)) return [];
  if (v instanceof Promise) return [path];
  if (v instanceof Map) return [...v.entries()].flatMap(([k, x]) => impurities(x, `${path}[${String(k)}]`, seen));
  if (Array.isArray(v)) return v.flatMap((x, i) => impurities(x, `${path}[${i}]`, seen));
  return Object.entries(v).flatMap(([k, x]) => impurities(x, `${path}.${k}`, seen));
}

t.test('state is plain data; no clock, randomness or timer of its own', async (t) => {
  const realNow = Date.now;
  const realRandom = Math.random;
  const realSetTimeout = globalThis.setTimeout;
  Date.now = () => {
    throw new Error('Date.now() inside the machine');
  };
  Math.random = () => {
    throw new Error('Math.random() inside the machine');
  };
  globalThis.setTimeout = (() => {
    throw new Error('setTimeout inside the machine');
  }) as unknown as typeof setTimeout;
  try {
    const { a, w } = allocated(t, { transport: 'udp' }, 60);
    a.permit(w.io, PEER.address);
    a.bindChannel(w.io, PEER);
    a.send(w.io, Buffer.from('q'), { address: '198.51.100.20', port: 9 });
    for (const m of w.take()) if (m.method === TURN_METHOD.CHANNEL_BIND) a.receive(w.io, ok(m));
    w.runUntil(a, w.now + 45_000);
    t.same(impurities(a), [], 'only strings, numbers, booleans, Buffers, Maps and arrays of plain objects');
    a.close(w.io);
    w.runUntil(a, w.now + 5000);
    t.equal(a.state, 'closed');
  } finally {
    Date.now = realNow;
    Math.random = realRandom;
    globalThis.setTimeout = realSetTimeout;
  }
});

/* ------------------------------------------------------------------ *
 * The TurnClient shell over a fake Network
 * ------------------------------------------------------------------ */

/** A Network with a hand-driven clock and timers, and sockets that record what is sent. */
class FakeNetwork implements Network {
  time = 0;
  timers = new Map<number, { at: number; fn: () => void }>();
  maxTimers = 0;
  #id = 0;
  datagrams: FakeDatagram[] = [];
  connects: Array<{ resolve(s: StreamSocket): void; reject(e: Error): void }> = [];
  now(): number {
    return this.time;
  }
  setTimer(fn: () => void, ms: number): unknown {
    const id = ++this.#id;
    this.timers.set(id, { at: this.time + ms, fn });
    this.maxTimers = Math.max(this.maxTimers, this.timers.size);
    return id;
  }
  clearTimer(handle: unknown): void {
    this.timers.delete(handle as number);
  }
  randomBytes(n: number): Buffer {
    return Buffer.alloc(n, ++this.#id);
  }
  interfaces() {
    return [];
  }
  async bindDatagram(address: string, port: number): Promise<DatagramSocket> {
    const d = new FakeDatagram({ address: address === '0.0.0.0' ? '192.0.2.100' : address, port: port || 5000 });
    this.datagrams.push(d);
    return d;
  }
  connectStream(): Promise<StreamSocket> {
    return new Promise((resolve, reject) => this.connects.push({ resolve, reject }));
  }
  listenStream(): never {
    throw new Error('not used');
  }
  async lookup(): Promise<string> {
    return SERVER.address;
  }
  /** Advances the clock by `ms`, firing timers as they fall due. */
  async advance(ms: number): Promise<void> {
    const end = this.time + ms;
    for (;;) {
      const due = [...this.timers.entries()].filter(([, x]) => x.at <= end).sort((p, q) => p[1].at - q[1].at)[0];
      if (!due) break;
      this.timers.delete(due[0]);
      this.time = Math.max(this.time, due[1].at);
      due[1].fn();
      await new Promise((r) => setImmediate(r));
    }
    this.time = end;
  }
}

class FakeDatagram implements DatagramSocket {
  sent: Array<{ data: Buffer; to: TransportAddress }> = [];
  closed = false;
  handler: ((data: Buffer, from: TransportAddress) => void) | undefined;
  constructor(readonly local: TransportAddress) {}
  send(data: Uint8Array, to: TransportAddress): boolean {
    this.sent.push({ data: Buffer.from(data), to });
    return !this.closed;
  }
  onMessage(h: (data: Buffer, from: TransportAddress) => void): void {
    this.handler = h;
  }
  async close(): Promise<void> {
    this.closed = true;
  }
  /** The requests sent so far, decoded, and forgotten. */
  take(): DecodedStun[] {
    return this.sent.splice(0).map((s) => decodeStun(s.data)!);
  }
}

const turns = () => new Promise((r) => setImmediate(r));

t.test('shell: one timer for the machine, packets from others dropped, nothing left after close()', async (t) => {
  const net = new FakeNetwork();
  const client = new TurnClient({ url: URL, username: 'u', password: 'p', network: net, rto: 100 });
  const allocating = client.allocate();
  await turns();
  const sock = net.datagrams[0]!;
  const first = sock.take();
  t.equal(first.length, 1);
  t.same(sock.sent, []);
  sock.handler!(challenge(first[0]!), SERVER);
  const req = sock.take()[0]!;
  // From another address (an attacker guessing the transaction): dropped by the shell.
  sock.handler!(allocateSuccess(req), { address: '192.0.2.66', port: SERVER.port });
  t.equal(client.stats.unexpected, 1);
  await net.advance(100);
  t.equal(sock.take().length, 1, 'retransmitted by the one timer');
  t.equal(net.timers.size, 1);
  sock.handler!(allocateSuccess(req), SERVER);
  const allocation = await allocating;
  t.same(allocation.relayed, { address: '203.0.113.5', port: 50000, family: 'IPv4' });
  t.equal(client.state, 'allocated');
  t.equal(net.timers.size, 1, 'armed for the refresh');
  t.equal([...net.timers.values()][0]!.at, net.time + 540_000);
  const perm = client.createPermission(PEER.address);
  sock.handler!(ok(sock.take()[0]!), SERVER);
  await perm;
  t.ok(client.hasPermission(PEER.address));
  const got: Array<[string, unknown]> = [];
  client.on('data', (d, p) => got.push([d.toString(), p]));
  const ind = stun.createMessage(messageType(TURN_METHOD.DATA, 'indication'), Buffer.alloc(12, 4));
  ind.addAttribute(TURN_ATTR.XOR_PEER_ADDRESS, PEER.address, PEER.port);
  ind.addAttribute(TURN_ATTR.DATA, Buffer.from('hello'));
  sock.handler!(ind.toBuffer(), SERVER);
  t.same(got, [['hello', PEER]]);
  t.equal(net.maxTimers, 1, 'never more than one timer');

  let closed = false;
  client.on('close', () => {
    closed = true;
  });
  const closing = client.close();
  const dealloc = sock.take()[0]!;
  t.equal(getLifetime(dealloc), 0);
  await turns();
  t.notOk(closed, 'waiting for the deallocation');
  await net.advance(1000);
  await closing;
  t.ok(closed);
  t.ok(sock.closed, 'socket closed');
  t.equal(net.timers.size, 0, 'no timer left');
  t.equal(net.maxTimers, 1);
});

t.test('review defect 3: a TCP connect still in flight at close() does not outlive it', async (t) => {
  const net = new FakeNetwork();
  const client = new TurnClient({ url: `${URL}?transport=tcp`, username: 'u', password: 'p', network: net });
  const allocating = client.allocate().then(() => undefined, (e: unknown) => e);
  await turns();
  t.equal(net.connects.length, 1, 'connecting');
  let closeResolved = false;
  const closing = client.close().then(() => {
    closeResolved = true;
  });
  const err = await allocating;
  t.type(err, TurnError, 'allocate() rejects at once');
  t.match((err as TurnError).reason, /client closed/);
  await turns();
  t.notOk(closeResolved, 'close() waits for the connect');
  let socketClosed = false;
  const stream: StreamSocket = {
    local: { address: '192.0.2.100', port: 5001 },
    remote: SERVER,
    write: () => true,
    onData: () => {},
    onClose: () => {},
    close: async () => {
      socketClosed = true;
    },
  };
  net.connects[0]!.resolve(stream);
  await closing;
  t.ok(socketClosed, 'the late connection was closed');
  t.equal(net.timers.size, 0, 'no timer left');
  t.equal(client.state, 'closed');
});

t.test('shell: timeoutMs bounds a connect that never completes; the socket is closed when it arrives', async (t) => {
  const net = new FakeNetwork();
  const client = new TurnClient({ url: `${URL}?transport=tcp`, username: 'u', password: 'p', network: net, timeoutMs: 500 });
  const allocating = client.allocate().then(() => undefined, (e: unknown) => e);
  await turns();
  await net.advance(500);
  const err = await allocating;
  t.match((err as TurnError).reason, /timed out connecting over TCP \(500 ms\)/);
  let socketClosed = false;
  net.connects[0]!.resolve({
    local: { address: '192.0.2.100', port: 5001 }, remote: SERVER, write: () => true, onData: () => {}, onClose: () => {},
    close: async () => {
      socketClosed = true;
    },
  });
  await client.close();
  t.ok(socketClosed);
  t.equal(net.timers.size, 0);
});
