/**
 * The fuzz targets, one fast-check property each, shared by `npm run fuzz`
 * (bench/fuzz.ts: a million inputs or more, any seed) and the CI slice
 * (spec/fuzz.test.ts: a few thousand per target, fixed seeds). Properties:
 *
 * - nothing from the network throws: every parser returns a value or
 *   "malformed" (undefined, false) for any bytes;
 * - malformed input at the API throws a typed error (an IceError subclass
 *   naming the field), never anything else;
 * - what is encoded decodes to the same fields (parse ∘ serialise is the identity);
 * - every dropped packet is counted (the TURN allocation's counters here,
 *   the agent's in fuzz-agent.ts).
 *
 * Expected values come from independent code where there is one (node:net's
 * SocketAddress for IPv6 text, which is inet_ntop; node:zlib's crc32;
 * node:crypto's HMAC in fuzz-stun.ts), not from the code under test.
 */
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { SocketAddress, isIP, isIPv4 } from 'node:net';
import {
  ATTR, ICE_KNOWN_ATTRIBUTES, TURN_ATTR, decodeStun, getAttributeValue, getChannelNumber, getData, getErrorCode,
  getLifetime, getNonce, getPriority, getRealm, getTieBreaker, getUint32Attribute, getUsername, getXorAddressAttribute,
  getXorMappedAddress, getXorPeerAddress, getXorRelayedAddress, hasAttribute, isStunFrame, longTermKey, messageType,
  unknownComprehensionRequired, verifyFingerprint, verifyIntegrity, type DecodedStun,
} from '../../lib/stun/message.js';
import {
  BindingRequestTemplate, encodeBindingError, encodeBindingIndication, encodeBindingRequest, encodeBindingSuccess,
  encodeUnknownAttributes,
} from '../../lib/stun/binding.js';
import { StreamFramer, decodeChannelData, encodeChannelData } from '../../lib/turn/framing.js';
import { Allocation, type AllocationConfig, type AllocationIo, type TurnStats } from '../../lib/turn/allocation.js';
import { decodeDataIndication } from '../../lib/turn/codec.js';
import { parseCandidate, serializeCandidate } from '../../lib/core/candidate-attribute.js';
import { checkRemoteCandidate, copyCandidate, type Candidate } from '../../lib/core/candidate.js';
import { parseIceServerUrl, type IceServerUrl } from '../../lib/turn/url.js';
import { CandidateParseError, IceError, InvalidArgumentError } from '../../lib/errors.js';
import {
  attrArb, buildChannelData, buildStun, bytes, garbageArb, hostileStunArb, ipv4Bytes, keyArb, mutate,
  mutationsArb, stunSpecArb, stunTypeArb, tidArb, u16, xorAddress, type Attr, type Mutation,
} from './fuzz-stun.js';
import { agentInbound } from './fuzz-agent.js';
import { sdpAny, sdpRoundTrip, tcpFraming } from './fuzz-sdp-tcp.js';

/** One target: a property, and its share of the inputs of a fuzz run. */
export interface FuzzTarget {
  name: string;
  /** What the property says, for the report. */
  claim: string;
  /** Relative share of the inputs (bench/fuzz.ts splits --inputs by weight). */
  weight: number;
  /** Builds the property; `close` ends what it set up (the agent target's live session). */
  create(seed: number): Promise<{ property: fc.IRawProperty<any>; close?: () => Promise<void>; detail?: () => string }>;
}

const sync = (property: fc.IRawProperty<any>, detail?: () => string) => async () => ({ property, detail });

/** "name n, name n" of the non-zero counts, for a target's report line. */
function tally(counts: Record<string, number>): string {
  return Object.entries(counts).filter(([, n]) => n > 0).map(([k, n]) => `${k} ${n}`).join(', ');
}

/* ------------------------------------------------------------------ *
 * Helpers
 * ------------------------------------------------------------------ */

/** inet_ntop's text for 16 raw bytes: the independent reference for canonical IPv6. */
export function ntop6(ip: Uint8Array): string {
  const groups: string[] = [];
  for (let i = 0; i < 16; i += 2) groups.push(((ip[i]! << 8) | ip[i + 1]!).toString(16));
  return new SocketAddress({ address: groups.join(':'), family: 'ipv6' }).address;
}

/** inet_ntop's text for any IP address string (the form canonicalIp promises). */
export function ntop(ip: string): string {
  return new SocketAddress({ address: ip, family: isIPv4(ip) ? 'ipv4' : 'ipv6' }).address;
}

/** `fn()` throws an IceError subclass `type`, and `check` (which field it names) holds. */
function throwsTyped(fn: () => unknown, type: new (...a: any[]) => IceError, check?: (e: any) => boolean): void {
  try {
    fn();
  } catch (e) {
    assert.ok(e instanceof type, `expected ${type.name}, got ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
    if (check) assert.ok(check(e), `wrong field: ${(e as Error).message}`);
    return;
  }
  assert.fail(`expected ${type.name}, nothing was thrown`);
}

function checkAddressValue(a: { address: string; port: number; family?: string } | undefined): void {
  if (a === undefined) return;
  assert.ok(Number.isInteger(a.port) && a.port >= 0 && a.port <= 0xffff, `port ${a.port}`);
  assert.equal(ntop(a.address), a.address, 'address in canonical form');
  if (a.family !== undefined) assert.equal(a.family === 'IPv6', a.address.includes(':'), 'family matches the address');
}

/**
 * Findings not fixed yet, each with a todo regression test (its minimal
 * counterexample) in spec/fuzz.test.ts. An input that hits one is counted
 * here instead of failing, so that a run goes on looking for new failures;
 * the fix removes the entry and the check that uses it.
 */
export const KNOWN: Record<string, { where: string; what: string; hits: number }> = {};

/** Counts a hit of a known finding; true, so that `cond && knownHit(id)` skips the check it guards. */
export function knownHit(id: keyof typeof KNOWN): true {
  KNOWN[id]!.hits++;
  return true;
}

/* ------------------------------------------------------------------ *
 * STUN: decoding and verification (lib/stun/message.ts)
 * ------------------------------------------------------------------ */

/** Every getter on a decoded message: none may throw, and each answer is well-formed. */
function readEverything(m: DecodedStun, key: Buffer, anyType: number): void {
  const p = getPriority(m);
  if (p !== undefined) assert.ok(Number.isInteger(p) && p >= 0 && p <= 0xffffffff);
  for (const t of [ATTR.ICE_CONTROLLING, ATTR.ICE_CONTROLLED]) {
    const tb = getTieBreaker(m, t);
    if (tb !== undefined) assert.ok(tb >= 0n && tb < 2n ** 64n);
  }
  hasAttribute(m, ATTR.USE_CANDIDATE);
  getUsername(m);
  checkAddressValue(getXorMappedAddress(m));
  checkAddressValue(getXorPeerAddress(m));
  checkAddressValue(getXorRelayedAddress(m));
  checkAddressValue(getXorAddressAttribute(m, anyType));
  const e = getErrorCode(m);
  if (e !== undefined) assert.ok(Number.isInteger(e.code) && typeof e.reason === 'string');
  const unknown = unknownComprehensionRequired(m, ICE_KNOWN_ATTRIBUTES);
  assert.equal(new Set(unknown).size, unknown.length, 'UNKNOWN-ATTRIBUTES lists each type once');
  for (const t of unknown) assert.ok(t < 0x8000 && !ICE_KNOWN_ATTRIBUTES.has(t));
  getLifetime(m);
  getChannelNumber(m);
  getRealm(m);
  getNonce(m);
  getData(m);
  getUint32Attribute(m, anyType);
  getAttributeValue(m, anyType);
  assert.ok(['ok', 'missing', 'bad'].includes(verifyIntegrity(m.raw, key)));
  assert.ok(['ok', 'missing', 'bad'].includes(verifyFingerprint(m.raw)));
}

const stunDecode: FuzzTarget = {
  name: 'stun.decode',
  claim: 'decodeStun and every getter/verifier never throw on hostile bytes; a decoded message is framed and its header fields agree',
  weight: 3,
  create: sync(fc.property(hostileStunArb, keyArb, u16, (buf, key, anyType) => {
    // The core verifies FINGERPRINT on anything framed, before the attribute walk: that must hold up too.
    if (isStunFrame(buf)) verifyFingerprint(buf);
    const m = decodeStun(buf);
    if (m === undefined) return;
    assert.ok(isStunFrame(buf), 'decoded only if framed');
    assert.equal(m.type, buf.readUInt16BE(0));
    assert.equal(messageType(m.method, m.cls), m.type, 'method and class give the type back');
    assert.ok(m.transactionId.equals(buf.subarray(8, 20)));
    readEverything(m, key, anyType);
  })),
};

/** Attributes other than the ones that end a message's counted part (MI, MI-SHA256, FINGERPRINT). */
const plainAttrArb = attrArb.filter((a) => a.type !== 0x0008 && a.type !== 0x001c && a.type !== 0x8028);

const stunVerify: FuzzTarget = {
  name: 'stun.verify',
  claim: 'on well-formed messages: MESSAGE-INTEGRITY and FINGERPRINT verify exactly when right, attributes read back as written, ' +
    'those after MESSAGE-INTEGRITY are ignored (RFC 8489 §14.5), XOR addresses decode to the inet_ntop text',
  weight: 2,
  create: sync(fc.property(
    stunTypeArb, tidArb, fc.array(plainAttrArb, { maxLength: 6 }), fc.array(plainAttrArb, { maxLength: 3 }),
    fc.option(fc.record({ key: keyArb, valid: fc.boolean() }), { nil: undefined }),
    fc.option(fc.constantFrom('good' as const, 'bad' as const), { nil: undefined }),
    fc.tuple(fc.boolean(), fc.uint8Array({ minLength: 16, maxLength: 16 }), u16),
    (type, tid, attrs, after, integrity, fingerprint, [v6, ip, port]) => {
      const address = v6 ? ip : ip.subarray(0, 4);
      const all: Attr[] = [{ type: ATTR.XOR_MAPPED_ADDRESS, value: xorAddress(address, port, tid) }, ...attrs];
      const buf = buildStun({ type, tid, attrs: all, integrity, after: integrity ? after : undefined, fingerprint });
      const m = decodeStun(buf);
      assert.ok(m, 'a well-formed message decodes');
      assert.equal(verifyIntegrity(buf, integrity?.key ?? Buffer.alloc(0)), integrity ? (integrity.valid ? 'ok' : 'bad') : 'missing');
      assert.equal(verifyFingerprint(buf), fingerprint === undefined ? 'missing' : fingerprint === 'good' ? 'ok' : 'bad');
      const first = new Map<number, Uint8Array>();
      for (const a of all) if (!first.has(a.type)) first.set(a.type, a.value);
      for (const [t, v] of first) assert.deepEqual(getAttributeValue(m, t), Buffer.from(v), `attribute 0x${t.toString(16)} reads back`);
      if (integrity) {
        for (const a of after) if (!first.has(a.type)) assert.equal(getAttributeValue(m, a.type), undefined, `0x${a.type.toString(16)} after MI ignored`);
      }
      assert.deepEqual(getXorMappedAddress(m), { address: v6 ? ntop6(address) : [...address].join('.'), port });
    },
  )),
};

/* ------------------------------------------------------------------ *
 * STUN: the Binding encoders (lib/stun/binding.ts)
 * ------------------------------------------------------------------ */

/** Any well-formed string (no lone surrogates: those cannot survive UTF-8, by definition). */
const textArb = (maxLength: number) => fc.string({ unit: 'binary', maxLength });
const tieBreakerArb = fc.bigInt({ min: 0n, max: 2n ** 64n - 1n });
const uint32Arb = fc.integer({ min: 0, max: 0xffffffff });
const ipArb = fc.oneof(fc.ipV4(), fc.ipV6());

const requestFieldsArb = fc.record({
  transactionId: tidArb.map((b) => Buffer.from(b)),
  // Up to the 513-byte limit: 120 code points are at most 480 bytes; the long ASCII ones reach the limit itself.
  username: fc.oneof(textArb(120), fc.string({ unit: 'binary-ascii', minLength: 500, maxLength: 513 })),
  password: textArb(80),
  priority: uint32Arb,
  controlling: fc.boolean(),
  tieBreaker: tieBreakerArb,
  useCandidate: fc.boolean(),
});

const stunEncode: FuzzTarget = {
  name: 'stun.encode',
  claim: 'decode ∘ encode is the identity for Binding requests (one-off and from the template) and indications, ' +
    'with MESSAGE-INTEGRITY and FINGERPRINT that verify',
  weight: 2,
  create: sync(fc.property(requestFieldsArb, (f) => {
    const tid = f.transactionId;
    const req = encodeBindingRequest(f);
    const m = decodeStun(req)!;
    assert.ok(m, 'request decodes');
    assert.equal(m.type, 0x0001);
    assert.ok(m.transactionId.equals(tid));
    assert.equal(getUsername(m), f.username);
    assert.equal(getPriority(m), f.priority);
    assert.equal(getTieBreaker(m, f.controlling ? ATTR.ICE_CONTROLLING : ATTR.ICE_CONTROLLED), f.tieBreaker);
    assert.equal(getTieBreaker(m, f.controlling ? ATTR.ICE_CONTROLLED : ATTR.ICE_CONTROLLING), undefined);
    assert.equal(hasAttribute(m, ATTR.USE_CANDIDATE), f.useCandidate);
    assert.equal(verifyIntegrity(req, f.password), 'ok');
    assert.equal(verifyFingerprint(req), 'ok');
    assert.deepEqual(unknownComprehensionRequired(m, ICE_KNOWN_ATTRIBUTES), []);
    const { transactionId: _, ...rest } = f;
    assert.ok(new BindingRequestTemplate(rest).build(tid).equals(req), 'the template builds the same bytes');
    const ind = decodeStun(encodeBindingIndication(tid))!;
    assert.equal(ind.type, 0x0011);
    assert.ok(ind.transactionId.equals(tid));
    assert.equal(verifyFingerprint(ind.raw), 'ok');
  })),
};

/** An IPv4-compatible IPv6 address (::a.b.c.d, RFC 4291 §2.5.5.1), which inet_ntop writes in mixed notation. */

const stunEncodeResponse: FuzzTarget = {
  name: 'stun.encode-response',
  claim: 'decode ∘ encode is the identity for Binding success (XOR-MAPPED-ADDRESS in inet_ntop form), error and 420 responses, ' +
    'with MESSAGE-INTEGRITY (when keyed) and FINGERPRINT that verify',
  weight: 2,
  create: sync(fc.property(
    tidArb, ipArb, u16, fc.integer({ min: 300, max: 699 }), textArb(127), fc.array(u16, { maxLength: 12 }),
    fc.option(textArb(40), { nil: undefined }),
    (tidBytes, address, port, code, reason, unknown, password) => {
      const tid = Buffer.from(tidBytes);
      const pwd = password ?? 'pwd';
      const ok = decodeStun(encodeBindingSuccess(tid, address, port, pwd))!;
      assert.equal(ok.type, 0x0101);
      assert.deepEqual(getXorMappedAddress(ok), { address: ntop(address), port });
      assert.equal(verifyIntegrity(ok.raw, pwd), 'ok');
      assert.equal(verifyFingerprint(ok.raw), 'ok');

      const err = decodeStun(encodeBindingError(tid, code, reason, password))!;
      assert.equal(err.type, 0x0111);
      assert.deepEqual(getErrorCode(err), { code, reason });
      assert.equal(verifyIntegrity(err.raw, pwd), password === undefined ? 'missing' : 'ok');
      assert.equal(verifyFingerprint(err.raw), 'ok');

      const u = decodeStun(encodeUnknownAttributes(tid, unknown, password))!;
      assert.equal(getErrorCode(u)?.code, 420);
      const list = getAttributeValue(u, ATTR.UNKNOWN_ATTRIBUTES)!;
      assert.deepEqual([...Array(list.length / 2).keys()].map((i) => list.readUInt16BE(2 * i)), unknown);
      assert.equal(verifyIntegrity(u.raw, pwd), password === undefined ? 'missing' : 'ok');
      assert.equal(verifyFingerprint(u.raw), 'ok');
    },
  )),
};

/** The fields the encoders validate, each wrong in turn: the error must be InvalidArgumentError naming it. */
const badFieldArb = fc.oneof(
  fc.string({ unit: 'binary-ascii', minLength: 514, maxLength: 700 }).map((username) => ({ field: 'username' as const, username })),
  fc.uint8Array({ maxLength: 24 }).filter((b) => b.length !== 12).map((b) => ({ field: 'transactionId' as const, tid: Buffer.from(b) })),
  // Not IP addresses (node:net says so), and one with a zone id, which means nothing to the peer.
  fc.oneof(fc.string().filter((a) => isIP(a) === 0), fc.ipV4Extended().filter((a) => !isIPv4(a)), fc.constant('fe80::1%eth0')).map((address) => ({ field: 'address' as const, address })),
  fc.oneof(fc.integer({ max: -1 }), fc.integer({ min: 0x10000 }), fc.double().filter((x) => !Number.isInteger(x))).map((port) => ({ field: 'port' as const, port })),
  fc.oneof(fc.integer({ max: 299 }), fc.integer({ min: 700 }), fc.double().filter((x) => !Number.isInteger(x))).map((code) => ({ field: 'code' as const, code })),
  fc.string({ minLength: 128, maxLength: 300 }).map((reason) => ({ field: 'reason' as const, reason })),
);

const stunEncodeInvalid: FuzzTarget = {
  name: 'stun.encode-invalid',
  claim: 'an encoder given a bad username, transaction id, address, port, error code or reason throws InvalidArgumentError naming it',
  weight: 1,
  create: sync(fc.property(badFieldArb, requestFieldsArb, (bad, f) => {
    const tid = 'tid' in bad ? bad.tid : f.transactionId;
    const named = (e: InvalidArgumentError) => e.argument === bad.field;
    switch (bad.field) {
      case 'username':
        return throwsTyped(() => encodeBindingRequest({ ...f, username: bad.username }), InvalidArgumentError, named);
      case 'transactionId':
        throwsTyped(() => encodeBindingRequest({ ...f, transactionId: tid }), InvalidArgumentError, named);
        throwsTyped(() => encodeBindingSuccess(tid, '203.0.113.1', 1, 'p'), InvalidArgumentError, named);
        throwsTyped(() => encodeBindingError(tid, 400, 'Bad Request'), InvalidArgumentError, named);
        return throwsTyped(() => encodeBindingIndication(tid), InvalidArgumentError, named);
      case 'address':
        return throwsTyped(() => encodeBindingSuccess(tid, bad.address, 1, 'p'), InvalidArgumentError, named);
      case 'port':
        return throwsTyped(() => encodeBindingSuccess(tid, '203.0.113.1', bad.port, 'p'), InvalidArgumentError, named);
      case 'code':
        return throwsTyped(() => encodeBindingError(tid, bad.code, 'x'), InvalidArgumentError, named);
      case 'reason':
        return throwsTyped(() => encodeBindingError(tid, 400, bad.reason), InvalidArgumentError, named);
    }
  })),
};

/* ------------------------------------------------------------------ *
 * TURN: ChannelData and TCP framing (lib/turn/framing.ts)
 * ------------------------------------------------------------------ */

const channelArb = fc.integer({ min: 0x4000, max: 0x4fff });

const channelData: FuzzTarget = {
  name: 'turn.channeldata',
  claim: 'decodeChannelData never throws and accepts exactly a valid channel with a length inside the datagram; decode ∘ encode is the identity',
  weight: 2,
  create: sync(fc.property(
    fc.oneof(
      garbageArb,
      fc.tuple(fc.oneof(channelArb, u16), bytes(64), fc.boolean(), fc.option(u16, { nil: undefined }), fc.option(mutationsArb, { nil: undefined }))
        .map(([ch, data, pad, length, m]) => {
          const b = buildChannelData(ch, data, pad, length);
          return m ? mutate(b, m) : b;
        }),
    ),
    channelArb, bytes(1500), fc.boolean(),
    (buf, ch, data, pad) => {
      const got = decodeChannelData(buf);
      const valid = buf.length >= 4 && buf.readUInt16BE(0) >= 0x4000 && buf.readUInt16BE(0) <= 0x4fff && 4 + buf.readUInt16BE(2) <= buf.length;
      assert.equal(got !== undefined, valid, 'accepted exactly when valid');
      if (got) {
        assert.equal(got.channel, buf.readUInt16BE(0));
        assert.ok(got.data.equals(buf.subarray(4, 4 + buf.readUInt16BE(2))));
      }
      const enc = encodeChannelData(ch, Buffer.from(data), pad);
      if (pad) assert.equal(enc.length % 4, 0, 'padded to 4 over TCP');
      const back = decodeChannelData(enc)!;
      assert.equal(back.channel, ch);
      assert.ok(back.data.equals(Buffer.from(data)));
    },
  )),
};

/** Splits `stream` at the given cut points (any numbers; taken modulo the length). */
function chunk(stream: Buffer, cuts: readonly number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => c % (stream.length + 1)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of [...at, stream.length]) {
    out.push(stream.subarray(prev, c));
    prev = c;
  }
  return out;
}

/** Everything a framer makes of a sequence of chunks: the frames, and whether it was still usable at the end. */
function frameAll(chunks: readonly Buffer[]): { frames: Buffer[]; ok: boolean; buffered: number } {
  const framer = new StreamFramer();
  const frames: Buffer[] = [];
  let ok = true;
  for (const c of chunks) {
    const r = framer.push(c, (f) => frames.push(Buffer.from(f)));
    assert.equal(typeof r, 'boolean');
    // Once out of step, always out of step.
    if (!ok) assert.equal(r, false, 'a failed stream stays failed');
    ok = r;
  }
  return { frames, ok, buffered: framer.buffered };
}

/** A frame of a TCP/TLS stream: a STUN message, or ChannelData padded to 4 (RFC 8656 §12.5). */
const streamFrameArb = fc.oneof(
  stunSpecArb.map((s) => ({ wire: buildStun(s), frame: buildStun(s) })),
  fc.tuple(channelArb, bytes(80)).map(([ch, data]) => ({ wire: buildChannelData(ch, data, true), frame: buildChannelData(ch, data, false) })),
);

const framer: FuzzTarget = {
  name: 'turn.framer',
  claim: 'StreamFramer: any chunking of a valid stream gives its frames (ChannelData without padding), and of any stream the same ' +
    'frames and verdict as one push; garbage never throws, it returns false and stays false',
  weight: 2,
  create: sync(fc.property(
    fc.array(streamFrameArb, { maxLength: 6 }), fc.array(fc.nat(), { maxLength: 10 }),
    fc.oneof(garbageArb, fc.tuple(fc.array(streamFrameArb, { maxLength: 3 }), mutationsArb).map(([fs, m]) => mutate(Buffer.concat(fs.map((f) => f.wire)), m))),
    fc.array(fc.nat(), { maxLength: 10 }),
    (frames, cuts, hostile, cuts2) => {
      const stream = Buffer.concat(frames.map((f) => f.wire));
      const r = frameAll(chunk(stream, cuts));
      assert.equal(r.ok, true);
      assert.equal(r.buffered, 0);
      assert.deepEqual(r.frames, frames.map((f) => f.frame));
      const whole = frameAll([hostile]);
      const split = frameAll(chunk(hostile, cuts2));
      assert.deepEqual(split, whole, 'the chunking does not change what the stream means');
    },
  )),
};

/* ------------------------------------------------------------------ *
 * TURN: the allocation machine's inbound path (lib/turn/allocation.ts)
 * ------------------------------------------------------------------ */

const SERVER = { address: '203.0.113.1', port: 3478 };
const REALM = 'fuzz.test';
const TURN_KEY = longTermKey('u', REALM, 'p');
const PEER = { address: '198.51.100.9', port: 40000 };
const RELAYED = { address: '203.0.113.50', port: 50000 };

/** The allocation's world: a clock, what it sent, deterministic transaction ids. */
class AllocWorld {
  now = 1000;
  sent: Buffer[] = [];
  #n = 0;
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
        b.writeUInt32BE(++this.#n, n - 4);
        return b;
      },
      emit: () => undefined,
    };
  }
  /** The one request sent last, decoded. */
  last(): DecodedStun {
    return decodeStun(this.sent[this.sent.length - 1]!)!;
  }
}

const success = (req: DecodedStun, attrs: Attr[]) =>
  buildStun({ type: messageType(req.method, 'success'), tid: req.transactionId, attrs, integrity: { key: TURN_KEY, valid: true } });

/**
 * An allocation in one of three states, with the requests it has sent (newest
 * first): 'allocating' (the first Allocate out), 'allocated' with a
 * permission and a channel (0x4000) to PEER and a CreatePermission still out,
 * or 'closing' (the deallocating Refresh out).
 */
function allocationIn(state: 'allocating' | 'allocated' | 'closing', transport: 'udp' | 'tcp'): { a: Allocation; w: AllocWorld; requests: DecodedStun[] } {
  const config: AllocationConfig = { url: 'turn:203.0.113.1', server: SERVER, transport, username: 'u', password: 'p', timeoutMs: 3000 };
  const a = new Allocation(config);
  const w = new AllocWorld();
  a.start(w.io);
  const requests = [w.last()];
  if (state === 'allocating') return { a, w, requests };
  a.receive(w.io, buildStun({
    type: 0x0113, tid: w.last().transactionId,
    attrs: [{ type: ATTR.ERROR_CODE, value: Buffer.from([0, 0, 4, 1, 0x55]) }, { type: ATTR.REALM, value: Buffer.from(REALM) }, { type: ATTR.NONCE, value: Buffer.from('n1') }],
  }));
  const alloc = w.last();
  a.receive(w.io, success(alloc, [
    { type: TURN_ATTR.XOR_RELAYED_ADDRESS, value: xorAddress(ipv4Bytes(RELAYED.address), RELAYED.port, alloc.transactionId) },
    { type: TURN_ATTR.LIFETIME, value: Buffer.from([0, 0, 2, 0x58]) },
  ]));
  a.permit(w.io, PEER.address);
  const perm = w.last();
  a.receive(w.io, success(perm, []));
  a.bindChannel(w.io, PEER);
  const bind = w.last();
  a.receive(w.io, success(bind, []));
  assert.equal(a.state, 'allocated');
  assert.equal(a.channelFor(PEER), 0x4000);
  if (state === 'closing') {
    a.close(w.io);
    return { a, w, requests: [w.last(), bind, perm, alloc, ...requests] };
  }
  a.permit(w.io, '198.51.100.10');
  return { a, w, requests: [w.last(), bind, perm, alloc, ...requests] };
}

type ServerMessage =
  | { kind: 'bytes'; data: Buffer }
  | { kind: 'answer'; index: number; cls: 'success' | 'error'; code: number | undefined; attrs: Attr[]; integrity: 'none' | 'right' | 'wrong'; fingerprint: boolean; mutations: Mutation[] | undefined }
  | { kind: 'data'; peer: 'known' | 'random'; ip: Uint8Array; port: number; data: Uint8Array; attrs: Attr[]; mutations: Mutation[] | undefined }
  | { kind: 'channel'; channel: number; data: Uint8Array; pad: boolean; length: number | undefined; mutations: Mutation[] | undefined };

const serverMessageArb: fc.Arbitrary<ServerMessage> = fc.oneof(
  hostileStunArb.map((data) => ({ kind: 'bytes' as const, data })),
  fc.record({
    kind: fc.constant('answer' as const), index: fc.nat(), cls: fc.constantFrom('success' as const, 'error' as const),
    code: fc.option(fc.oneof(fc.constantFrom(401, 403, 437, 438, 441, 486, 500, 508), fc.integer({ min: 0, max: 799 })), { nil: undefined }),
    attrs: fc.array(attrArb, { maxLength: 5 }), integrity: fc.constantFrom('none' as const, 'right' as const, 'wrong' as const),
    fingerprint: fc.boolean(), mutations: fc.option(mutationsArb, { nil: undefined }),
  }),
  fc.record({
    kind: fc.constant('data' as const), peer: fc.constantFrom('known' as const, 'random' as const),
    ip: fc.oneof(fc.uint8Array({ minLength: 4, maxLength: 4 }), fc.uint8Array({ minLength: 16, maxLength: 16 })), port: u16,
    data: bytes(64), attrs: fc.array(attrArb, { maxLength: 3 }), mutations: fc.option(mutationsArb, { nil: undefined }),
  }),
  fc.record({
    kind: fc.constant('channel' as const), channel: fc.oneof(fc.constant(0x4000), u16), data: bytes(64), pad: fc.boolean(),
    length: fc.option(u16, { nil: undefined }), mutations: fc.option(mutationsArb, { nil: undefined }),
  }),
);

function serverBytes(msg: ServerMessage, requests: readonly DecodedStun[]): Buffer {
  switch (msg.kind) {
    case 'bytes':
      return msg.data;
    case 'answer': {
      const req = requests[msg.index % requests.length]!;
      const attrs = msg.code === undefined ? msg.attrs
        : [{ type: ATTR.ERROR_CODE, value: Buffer.from([0, 0, Math.floor(msg.code / 100), msg.code % 100]) }, ...msg.attrs];
      const b = buildStun({
        type: messageType(req.method, msg.cls), tid: req.transactionId, attrs,
        integrity: msg.integrity === 'none' ? undefined : { key: TURN_KEY, valid: msg.integrity === 'right' },
        fingerprint: msg.fingerprint ? 'good' : undefined,
      });
      return msg.mutations ? mutate(b, msg.mutations) : b;
    }
    case 'data': {
      const tid = Buffer.alloc(12, 7);
      const ip = msg.peer === 'known' ? ipv4Bytes(PEER.address) : msg.ip;
      const b = buildStun({
        type: 0x0017, tid,
        attrs: [{ type: TURN_ATTR.XOR_PEER_ADDRESS, value: xorAddress(ip, msg.port, tid) }, { type: TURN_ATTR.DATA, value: msg.data }, ...msg.attrs],
      });
      return msg.mutations ? mutate(b, msg.mutations) : b;
    }
    case 'channel': {
      const b = buildChannelData(msg.channel, msg.data, msg.pad, msg.length);
      return msg.mutations ? mutate(b, msg.mutations) : b;
    }
  }
}

const INBOUND: ReadonlyArray<keyof TurnStats> = ['malformed', 'unexpected', 'responses', 'dataIndications', 'channelDataReceived'];

/**
 * Whether `data` is malformed in the allocation's own terms (receive's
 * rules): what it counts as malformed for any other reason is an exception
 * that receive() swallowed.
 */
function malformedForAllocation(data: Buffer, allocated: boolean): boolean {
  if (data.length === 0) return true;
  const kind = data[0]! >> 6;
  if (kind === 1) return decodeChannelData(data) === undefined;
  if (kind !== 0) return true;
  const m = decodeStun(data);
  if (m === undefined || verifyFingerprint(m.raw) === 'bad') return true;
  if (m.cls === 'indication' && m.method === 0x007 && allocated) return decodeDataIndication(m) === undefined;
  return false;
}

/** Which counter each fuzzed packet moved, over a run: shows how deep the inputs went. */
const allocationTally: Record<string, number> = Object.fromEntries(INBOUND.map((k) => [k, 0]));

const allocationInbound: FuzzTarget = {
  name: 'turn.allocation',
  claim: 'Allocation.receive never throws; each packet moves exactly one inbound counter (malformed, unexpected, responses, ' +
    'dataIndications, channelDataReceived), malformed only when it is, and data is returned exactly when counted as data; ' +
    'timeouts afterwards run clean',
  weight: 2,
  create: sync(fc.property(
    fc.constantFrom('allocating' as const, 'allocated' as const, 'closing' as const), fc.constantFrom('udp' as const, 'tcp' as const),
    fc.array(serverMessageArb, { minLength: 1, maxLength: 8 }),
    (state, transport, messages) => {
      const { a, w, requests } = allocationIn(state, transport);
      for (const msg of messages) {
        const data = serverBytes(msg, requests);
        const before = { ...a.stats };
        const wasAllocated = a.state === 'allocated';
        const got = a.receive(w.io, data);
        const moved = INBOUND.filter((k) => a.stats[k] !== before[k]);
        for (const k of moved) allocationTally[k]++;
        const total = INBOUND.reduce((n, k) => n + a.stats[k] - before[k], 0);
        assert.equal(total, 1, `one inbound counter per packet, got ${moved.join(', ') || 'none'} for ${data.toString('hex')}`);
        if (moved[0] === 'malformed') {
          assert.ok(malformedForAllocation(data, wasAllocated), `counted malformed but well-formed (a swallowed exception?): ${data.toString('hex')}`);
        }
        const isData = moved[0] === 'dataIndications' || moved[0] === 'channelDataReceived';
        assert.equal(got !== undefined, isData, 'data returned exactly when counted as data');
      }
      // Whatever was accepted, the deadlines it left run without throwing.
      for (let i = 0; i < 40; i++) {
        const t = a.nextTimeout();
        if (!Number.isFinite(t)) break;
        w.now = Math.max(w.now, t);
        a.handleTimeout(w.io);
      }
    },
  ), () => tally(allocationTally)),
};

/* ------------------------------------------------------------------ *
 * RFC 8839 candidates (lib/core/candidate-attribute.ts, candidate.ts)
 * ------------------------------------------------------------------ */

const ICE_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';
const TOKEN_CHARS = "!#$%&'*+-.0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZ^_`abcdefghijklmnopqrstuvwxyz{|}~";
const chars = (set: string) => fc.constantFrom(...set);
const foundationArb = fc.string({ unit: chars(ICE_CHARS), minLength: 1, maxLength: 32 });
const tokenArb = fc.string({ unit: chars(TOKEN_CHARS), minLength: 1, maxLength: 10 });
const vcharArb = fc.string({ unit: fc.integer({ min: 0x21, max: 0x7e }).map((c) => String.fromCharCode(c)), minLength: 1, maxLength: 16 });
const RESERVED = ['typ', 'raddr', 'rport', 'tcptype'];
/** connection-address: IPv4, IPv6 (the parser gives it in lower case), or a DNS name. */
const connectionAddressArb = fc.oneof(fc.ipV4(), fc.ipV6(), fc.domain());

/**
 * A valid candidate as the parser returns it: keywords it lower-cases
 * (transport, type, tcptype, IPv6 addresses) generated in lower case, no
 * field left undefined.
 */
const candidateArb: fc.Arbitrary<Candidate> = fc.record({
  foundation: foundationArb,
  component: fc.integer({ min: 1, max: 256 }),
  transport: fc.oneof(fc.constantFrom('udp', 'tcp'), tokenArb.map((s) => s.toLowerCase())),
  priority: fc.integer({ min: 1, max: 0xffffffff }),
  address: connectionAddressArb,
  port: fc.integer({ min: 0, max: 65535 }),
  type: fc.oneof(fc.constantFrom('host', 'srflx', 'prflx', 'relay'), tokenArb.map((s) => s.toLowerCase())),
  relatedAddress: fc.option(connectionAddressArb, { nil: undefined }),
  relatedPort: fc.option(fc.integer({ min: 0, max: 65535 }), { nil: undefined }),
  tcpType: fc.constantFrom('active' as const, 'passive' as const, 'so' as const),
  extensions: fc.array(fc.tuple(tokenArb.filter((n) => !RESERVED.includes(n.toLowerCase())), vcharArb), { maxLength: 3 }),
}).map((r) => {
  const lower = (a: string) => (a.includes(':') ? a.toLowerCase() : a);
  const c: Candidate = {
    foundation: r.foundation, component: r.component, transport: r.transport, priority: r.priority,
    address: lower(r.address), port: r.port, type: r.type,
  };
  if (r.relatedAddress !== undefined) c.relatedAddress = lower(r.relatedAddress);
  if (r.relatedPort !== undefined) c.relatedPort = r.relatedPort;
  if (c.transport === 'tcp') c.tcpType = r.tcpType;
  // RFC 6544 §4.5: port 0 only for an active TCP candidate.
  if (c.port === 0 && c.tcpType !== 'active') c.port = 9;
  if (r.extensions.length > 0) c.extensions = r.extensions;
  return c;
});

const candidateRoundTrip: FuzzTarget = {
  name: 'candidate.roundtrip',
  claim: 'parseCandidate ∘ serializeCandidate is the identity on valid candidates (with or without a=, CRLF, trailing blanks)',
  weight: 2,
  create: sync(fc.property(candidateArb, fc.boolean(), fc.constantFrom('', '\r\n', '\n', '\r', ' ', ' \t'), (c, prefix, tail) => {
    const line = serializeCandidate(c, { prefix });
    assert.deepEqual(parseCandidate(line + tail), c);
    // As a remote candidate, IP addresses come in inet_ntop's form, an IPv4-mapped one as the IPv4 address it maps.
    const ip = (a: string) => (isIPv4(a) || a.includes(':') ? ntop(a) : a);
    const expected: Candidate = { ...c, address: ip(c.address).replace(/^::ffff:(?=\d+\.)/, '') };
    if (c.relatedAddress !== undefined) expected.relatedAddress = ip(c.relatedAddress);
    assert.deepEqual(checkRemoteCandidate(line, c.component, 'candidate'), expected);
  })),
};

/** One edit of a string: delete `del` characters at `at`, insert `text` there. */
const stringEditArb = fc.record({
  at: fc.nat(), del: fc.integer({ min: 0, max: 6 }),
  text: fc.string({ unit: chars(' \t:.%-+/0123456789abcdefghijklmnopqrstuvwxyzTCPUDPRADDR\r\n\x00\u00e9'), maxLength: 5 }),
});

function editString(s: string, edits: ReadonlyArray<{ at: number; del: number; text: string }>): string {
  for (const e of edits) {
    const at = e.at % (s.length + 1);
    s = s.slice(0, at) + e.text + s.slice(at + e.del);
  }
  return s;
}

/** Token-level edits of a candidate line: drop, duplicate or replace one token. */
const tokenEditArb = fc.record({ at: fc.nat(), op: fc.constantFrom('drop', 'dup', 'replace'), token: fc.oneof(tokenArb, fc.constantFrom('typ', 'raddr', 'rport', 'tcptype', 'generation', '0', '65536', '4294967296')) });

function editTokens(s: string, edits: ReadonlyArray<{ at: number; op: string; token: string }>): string {
  const t = s.split(' ');
  for (const e of edits) {
    const i = e.at % t.length;
    if (e.op === 'drop') t.splice(i, 1);
    else if (e.op === 'dup') t.splice(i, 0, t[i]!);
    else t[i] = e.token;
    if (t.length === 0) t.push('');
  }
  return t.join(' ');
}

const CANDIDATE_FIELDS = ['candidate', 'foundation', 'component', 'transport', 'priority', 'address', 'port', 'typ', 'raddr', 'rport', 'tcptype', 'extension'];

const candidateStringArb = fc.oneof(
  fc.string({ maxLength: 80 }),
  fc.string({ unit: 'binary', maxLength: 40 }),
  fc.tuple(candidateArb, fc.array(stringEditArb, { minLength: 1, maxLength: 3 })).map(([c, e]) => editString(serializeCandidate(c, { prefix: e.length > 1 }), e)),
  fc.tuple(candidateArb, fc.array(tokenEditArb, { minLength: 1, maxLength: 3 })).map(([c, e]) => editTokens(serializeCandidate(c), e)),
);

const candidateStrings: FuzzTarget = {
  name: 'candidate.strings',
  claim: 'parseCandidate on any string gives a candidate or a CandidateParseError naming a grammar field; ' +
    'whatever it accepts serialises and parses back to itself',
  weight: 2,
  create: sync(fc.property(candidateStringArb, (s) => {
    let c: Candidate;
    try {
      c = parseCandidate(s);
    } catch (e) {
      assert.ok(e instanceof CandidateParseError, `not a CandidateParseError: ${String(e)}`);
      assert.ok(CANDIDATE_FIELDS.includes(e.field), `field "${e.field}"`);
      return;
    }
    const line = serializeCandidate(c);
    assert.deepEqual(parseCandidate(line), c, 'what parses serialises and parses back to itself');
  })),
};

/** Any value, of any type a caller could pass by mistake. */
const anyValueArb = fc.oneof(
  fc.anything({ withBigInt: true, withBoxedValues: true, withMap: true, withSet: true, withNullPrototype: true, withTypedArray: true, withSparseArray: true, maxDepth: 2 }),
  fc.constantFrom(NaN, Infinity, -1, 0, 1.5, 2 ** 32, '', ' ', 'udp x', 'HOST', 'TCP', null, undefined),
);
const orWeird = <T>(valid: fc.Arbitrary<T>) => fc.oneof({ arbitrary: valid, weight: 5 }, { arbitrary: anyValueArb as fc.Arbitrary<unknown>, weight: 1 });

const candidateObjectArb = fc.record({
  type: orWeird(fc.constantFrom('host', 'srflx', 'prflx', 'relay', 'HOST', 'other')),
  transport: orWeird(fc.constantFrom('udp', 'tcp', 'UDP')),
  foundation: orWeird(foundationArb),
  component: orWeird(fc.integer({ min: 1, max: 2 })),
  priority: orWeird(fc.integer({ min: 1, max: 0xffffffff })),
  address: orWeird(connectionAddressArb),
  port: orWeird(fc.integer({ min: 0, max: 65535 })),
  relatedAddress: orWeird(ipArb),
  relatedPort: orWeird(fc.integer({ min: 0, max: 65535 })),
  tcpType: orWeird(fc.constantFrom('active', 'passive', 'so')),
  extensions: orWeird(fc.array(fc.tuple(tokenArb, vcharArb), { maxLength: 2 })),
  base: anyValueArb,
  streamId: anyValueArb,
}, { requiredKeys: ['type', 'transport', 'foundation', 'component', 'priority', 'address', 'port'] });

const TOKEN = /^[!#$%&'*+\-.0-9A-Z^_`a-z{|}~]+$/;

/** The fields checkRemoteCandidate's object path leaves unchecked, as the grammar (RFC 8839, RFC 6544) has them. */
function checkedFields(c: Candidate): boolean {
  const tcp = c.transport === 'tcp';
  const ext = c.extensions;
  return TOKEN.test(c.type) && TOKEN.test(c.transport) &&
    (tcp ? ['active', 'passive', 'so'].includes(c.tcpType as string) : c.tcpType === undefined) &&
    // Array.from: `every` skips the holes of a sparse array, which serializeCandidate does not.
    (ext === undefined || (Array.isArray(ext) && Array.from(ext).every((e) => Array.isArray(e) && e.length === 2 &&
      typeof e[0] === 'string' && TOKEN.test(e[0]) && !RESERVED.includes(e[0].toLowerCase()) && typeof e[1] === 'string' && /^[\x21-\x7e]+$/.test(e[1]))));
}

const candidateObjects: FuzzTarget = {
  name: 'candidate.objects',
  claim: 'checkRemoteCandidate on any value gives an IceError or a valid candidate: one the grammar can write (serializeCandidate) ' +
    'and the agent can copy (copyCandidate)',
  weight: 2,
  create: sync(fc.property(
    fc.oneof({ arbitrary: candidateObjectArb as fc.Arbitrary<unknown>, weight: 4 }, { arbitrary: anyValueArb, weight: 1 }),
    fc.option(fc.integer({ min: 0, max: 3 }), { nil: undefined }),
    (x, componentId) => {
      let c: Candidate;
      try {
        c = checkRemoteCandidate(x as Candidate, componentId, 'candidate');
      } catch (e) {
        assert.ok(e instanceof IceError, `not an IceError: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
        return;
      }
      assert.ok(checkedFields(c), 'every field of an accepted candidate is one the grammar allows');
      copyCandidate(c);
      serializeCandidate(c);
    },
  )),
};

/* ------------------------------------------------------------------ *
 * ICE server URLs (lib/turn/url.ts)
 * ------------------------------------------------------------------ */

interface UrlCase {
  url: string;
  /** The parse, or undefined when the URL must be refused (turns: over udp). */
  expected: IceServerUrl | undefined;
}

const validUrlArb: fc.Arbitrary<UrlCase> = fc.record({
  scheme: fc.constantFrom('stun', 'stuns', 'turn', 'turns').chain((s) => fc.mixedCase(fc.constant(s))),
  host: fc.oneof(
    fc.ipV4().map((h) => ({ text: h, host: h })),
    fc.ipV6().map((h) => ({ text: `[${h}]`, host: h })),
    fc.domain().map((h) => ({ text: h, host: h })),
  ),
  port: fc.option(fc.integer({ min: 1, max: 65535 }), { nil: undefined }),
  transport: fc.option(fc.constantFrom('udp', 'tcp').chain((t) => fc.mixedCase(fc.constant(t))), { nil: undefined }),
}).map(({ scheme, host, port, transport }) => {
  const s = scheme.toLowerCase();
  const secure = s.endsWith('s');
  const turn = s.startsWith('turn');
  const t = turn ? transport : undefined;
  const url = `${scheme}:${host.text}${port !== undefined ? `:${port}` : ''}${t !== undefined ? `?transport=${t}` : ''}`;
  const tr = (t?.toLowerCase() ?? (secure ? 'tcp' : 'udp')) as 'udp' | 'tcp';
  if (secure && tr === 'udp') return { url, expected: undefined };
  return { url, expected: { scheme: s as IceServerUrl['scheme'], host: host.host, port: port ?? (secure ? 5349 : 3478), transport: tr, secure } };
});

function formatUrl(u: IceServerUrl): string {
  const host = u.host.includes(':') ? `[${u.host}]` : u.host;
  return `${u.scheme}:${host}:${u.port}${u.scheme.startsWith('turn') ? `?transport=${u.transport}` : ''}`;
}

const urlValid: FuzzTarget = {
  name: 'url.valid',
  claim: 'parseIceServerUrl gives scheme, host, port (default 3478/5349) and transport of every valid RFC 7064/7065 URI; turns over udp is refused',
  weight: 1,
  create: sync(fc.property(validUrlArb, ({ url, expected }) => {
    if (expected === undefined) return throwsTyped(() => parseIceServerUrl(url), InvalidArgumentError, (e) => e.argument === 'url');
    assert.deepEqual(parseIceServerUrl(url), expected);
  })),
};

const urlAny: FuzzTarget = {
  name: 'url.any',
  claim: 'parseIceServerUrl on any value gives a URL or InvalidArgumentError("url"); what it accepts has a port in 1..65535, ' +
    'a transport its scheme allows, and formats and parses back to itself',
  weight: 2,
  create: sync(fc.property(
    fc.oneof(
      fc.string({ maxLength: 60 }),
      validUrlArb.chain(({ url }) => fc.array(stringEditArb, { minLength: 1, maxLength: 3 }).map((e) => editString(url, e))),
      anyValueArb,
    ),
    (x) => {
      let u: IceServerUrl;
      try {
        u = parseIceServerUrl(x as string);
      } catch (e) {
        assert.ok(e instanceof InvalidArgumentError, `not an InvalidArgumentError: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
        assert.equal(e.argument, 'url');
        return;
      }
      assert.ok(Number.isInteger(u.port) && u.port >= 1 && u.port <= 65535);
      assert.ok(u.host.length > 0);
      assert.equal(u.secure, u.scheme.endsWith('s'));
      if (u.secure) assert.equal(u.transport, 'tcp');
      if (!u.scheme.startsWith('turn')) assert.equal(u.transport, u.secure ? 'tcp' : 'udp');
      assert.deepEqual(parseIceServerUrl(formatUrl(u)), u, 'formats and parses back to itself');
    },
  )),
};

export const TARGETS: readonly FuzzTarget[] = [
  stunDecode, stunVerify, stunEncode, stunEncodeResponse, stunEncodeInvalid, channelData, framer, allocationInbound,
  candidateRoundTrip, candidateStrings, candidateObjects, urlValid, urlAny, sdpRoundTrip, sdpAny, tcpFraming, agentInbound,
];
