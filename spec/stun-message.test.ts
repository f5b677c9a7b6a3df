import t from 'tap';
import stun from 'stun';
import { createHmac } from 'node:crypto';
import { prng } from './helpers.js';
import { InvalidArgumentError } from '../lib/errors.js';
import { ATTR, BINDING_ERROR, BINDING_INDICATION, BINDING_REQUEST, BINDING_SUCCESS, ICE_KNOWN_ATTRIBUTES, TURN_METHOD, classOf, crc32, decodeStun, encodeSendIndication, encodeTurnRequest, findAttribute, getAttributeValue, getChannelNumber, getData, getErrorCode, getLifetime, getNonce, getPriority, getRealm, getTieBreaker, getUsername, getXorAddressAttribute, getXorMappedAddress, getXorPeerAddress, getXorRelayedAddress, hasAttribute, isStunFrame, longTermKey, methodOf, newTransactionId, normalizeAddress, unknownComprehensionRequired, verifyFingerprint, verifyIntegrity, type DecodedStun } from '../lib/stun/message.js';
import { BindingRequestTemplate, encodeBindingError, encodeBindingIndication, encodeBindingRequest, encodeBindingSuccess, encodeUnknownAttributes, type BindingRequestFields } from '../lib/stun/binding.js';
import { retransmitWaits } from '../lib/stun/transaction.js';

const hex = (s: string) => Buffer.from(s.replace(/\s+/g, ''), 'hex');

function decoded(buf: Buffer): DecodedStun {
  const m = decodeStun(buf);
  if (!m) throw new Error('did not decode');
  return m;
}

// ---------------------------------------------------------------- RFC 5769 test vectors

const RFC5769_PASSWORD = 'VOkJxbRl1RmTxUk/WvJxBt';
const RFC5769_TID = hex('b7e7a701 bc34d686 fa87dfae');

// RFC 5769 §2.1 Sample Request (software "STUN test client", username "evtj:h6vY").
const SAMPLE_REQUEST = hex(`
  00010058 2112a442 b7e7a701 bc34d686 fa87dfae
  80220010 5354554e 20746573 7420636c 69656e74
  00240004 6e0001ff
  80290008 932ff9b1 51263b36
  00060009 6576746a 3a683676 59202020
  00080014 9aeaa70c bfd8cb56 781ef2b5 b2d3f249 c1b571a2
  80280004 e57a3bcf`);

// RFC 5769 §2.2 Sample IPv4 Response (software "test vector", 192.0.2.1:32853).
const SAMPLE_RESPONSE_V4 = hex(`
  0101003c 2112a442 b7e7a701 bc34d686 fa87dfae
  8022000b 74657374 20766563 746f7220
  00200008 0001a147 e112a643
  00080014 2b91f599 fd9e90c3 8c7489f9 2af9ba53 f06be7d7
  80280004 c07d4c96`);

// RFC 5769 §2.3 Sample IPv6 Response (2001:db8:1234:5678:11:2233:4455:6677 port 32853).
const SAMPLE_RESPONSE_V6 = hex(`
  01010048 2112a442 b7e7a701 bc34d686 fa87dfae
  8022000b 74657374 20766563 746f7220
  00200014 0002a147 0113a9fa a5d3f179 bc25f4b5 bed2b9d9
  00080014 a382954e 4be67bf1 1784c97c 8292c275 bfe3ed41
  80280004 c8fb0b4c`);

t.test('RFC 5769 §2.1 sample request', async (t) => {
  t.equal(SAMPLE_REQUEST.length, 108, 'typed correctly: 20 + 0x58 bytes');
  t.ok(isStunFrame(SAMPLE_REQUEST), 'well framed');
  const m = decoded(SAMPLE_REQUEST);
  t.equal(m.type, BINDING_REQUEST);
  t.equal(m.cls, 'request');
  t.equal(m.method, 0x001, 'Binding');
  t.ok(m.transactionId.equals(RFC5769_TID), 'transaction id');
  t.equal(verifyIntegrity(SAMPLE_REQUEST, RFC5769_PASSWORD), 'ok', 'MESSAGE-INTEGRITY with the short-term password');
  t.equal(verifyIntegrity(SAMPLE_REQUEST, Buffer.from(RFC5769_PASSWORD)), 'ok', 'key as a Buffer');
  t.equal(verifyIntegrity(SAMPLE_REQUEST, 'VOkJxbRl1RmTxUk/WvJxBT'), 'bad', 'one letter of the password changed');
  t.equal(verifyFingerprint(SAMPLE_REQUEST), 'ok', 'FINGERPRINT');
  t.equal(getPriority(m), 0x6e0001ff, 'PRIORITY');
  t.equal(getUsername(m), 'evtj:h6vY', 'USERNAME, without its padding');
  t.equal(getTieBreaker(m, ATTR.ICE_CONTROLLED), 0x932ff9b151263b36n, 'ICE-CONTROLLED tie-breaker');
  t.equal(getTieBreaker(m, ATTR.ICE_CONTROLLING), undefined, 'no ICE-CONTROLLING');
  t.equal(hasAttribute(m, ATTR.USE_CANDIDATE), false, 'no USE-CANDIDATE');
  t.equal(hasAttribute(m, ATTR.SOFTWARE), true, 'SOFTWARE present');
  t.equal(getXorMappedAddress(m), undefined, 'a request has no XOR-MAPPED-ADDRESS');
  t.equal(getErrorCode(m), undefined, 'no ERROR-CODE');
  // The CRC-32 of everything before FINGERPRINT, XOR 0x5354554e, is the value in the vector.
  t.equal((crc32(SAMPLE_REQUEST.subarray(0, 100)) ^ 0x5354554e) >>> 0, 0xe57a3bcf, 'crc32 matches the vector');
  t.equal(crc32(Buffer.from('123456789')), 0xcbf43926, 'crc32 check value of ISO 3309 / ITU-T V.42');
});

t.test('RFC 5769 §2.2 sample IPv4 response', async (t) => {
  t.equal(SAMPLE_RESPONSE_V4.length, 80);
  const m = decoded(SAMPLE_RESPONSE_V4);
  t.equal(m.type, BINDING_SUCCESS);
  t.equal(m.cls, 'success');
  t.equal(m.method, 0x001);
  t.strictSame(getXorMappedAddress(m), { address: '192.0.2.1', port: 32853 }, 'XOR-MAPPED-ADDRESS');
  t.equal(verifyIntegrity(SAMPLE_RESPONSE_V4, RFC5769_PASSWORD), 'ok', 'MESSAGE-INTEGRITY');
  t.equal(verifyFingerprint(SAMPLE_RESPONSE_V4), 'ok', 'FINGERPRINT');
  t.equal(getPriority(m), undefined, 'no PRIORITY');
  t.equal(getUsername(m), undefined, 'no USERNAME');
});

t.test('RFC 5769 §2.3 sample IPv6 response', async (t) => {
  t.equal(SAMPLE_RESPONSE_V6.length, 92);
  const m = decoded(SAMPLE_RESPONSE_V6);
  t.equal(m.cls, 'success');
  t.strictSame(getXorMappedAddress(m), { address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 }, 'XOR-MAPPED-ADDRESS (IPv6, xored with cookie + transaction id)');
  t.equal(verifyIntegrity(SAMPLE_RESPONSE_V6, RFC5769_PASSWORD), 'ok', 'MESSAGE-INTEGRITY');
  t.equal(verifyFingerprint(SAMPLE_RESPONSE_V6), 'ok', 'FINGERPRINT');
});

// ---------------------------------------------------------------- our own encoder

// RFC 8445 §7.1.1/§7.1.2: a check carries USERNAME, PRIORITY, ICE-CONTROLLING or ICE-CONTROLLED, optionally
// USE-CANDIDATE, then MESSAGE-INTEGRITY (RFC 8489 §14.5) and FINGERPRINT (§14.7) last.
t.test('binding request: encode, decode, verify (RFC 8445 §7.1.1, RFC 8489 §14.5/§14.7)', async (t) => {
  const tid = hex('0102030405060708090a0b0c');
  const buf = encodeBindingRequest({
    transactionId: tid, username: 'remoteUfrag:localUfrag', password: 'remote-password-0123', priority: 0xfffffffe,
    controlling: true, tieBreaker: 0xfedcba9876543210n, useCandidate: true,
  });
  t.ok(isStunFrame(buf), 'well framed');
  const m = decoded(buf);
  t.equal(m.type, BINDING_REQUEST);
  t.ok(m.transactionId.equals(tid), 'transaction id');
  t.equal(getUsername(m), 'remoteUfrag:localUfrag');
  t.equal(getPriority(m), 0xfffffffe, 'PRIORITY above 2^31 read back unsigned');
  t.equal(getTieBreaker(m, ATTR.ICE_CONTROLLING), 0xfedcba9876543210n, 'ICE-CONTROLLING, full 64 bits');
  t.equal(getTieBreaker(m, ATTR.ICE_CONTROLLED), undefined);
  t.equal(hasAttribute(m, ATTR.USE_CANDIDATE), true, 'USE-CANDIDATE');
  t.equal(verifyIntegrity(buf, 'remote-password-0123'), 'ok', 'integrity with the right password');
  t.equal(verifyIntegrity(buf, 'remote-password-0124'), 'bad', 'wrong key');
  t.equal(verifyFingerprint(buf), 'ok', 'fingerprint');
  t.equal(buf.readUInt16BE(buf.length - 8), ATTR.FINGERPRINT, 'FINGERPRINT is the last attribute');
  t.equal(buf.readUInt16BE(buf.length - 32), ATTR.MESSAGE_INTEGRITY, 'MESSAGE-INTEGRITY right before it');

  const controlled = decoded(encodeBindingRequest({
    transactionId: tid, username: 'a:b', password: 'pw', priority: 1, controlling: false, tieBreaker: 1n, useCandidate: false,
  }));
  t.equal(getTieBreaker(controlled, ATTR.ICE_CONTROLLED), 1n, 'ICE-CONTROLLED when controlled');
  t.equal(getTieBreaker(controlled, ATTR.ICE_CONTROLLING), undefined);
  t.equal(hasAttribute(controlled, ATTR.USE_CANDIDATE), false, 'no USE-CANDIDATE');
});

t.test('integrity and fingerprint: tampering, wrong key, missing', async (t) => {
  const buf = encodeBindingRequest({
    transactionId: hex('0102030405060708090a0b0c'), username: 'abcd:efgh', password: 'secret', priority: 2130706431,
    controlling: false, tieBreaker: 42n, useCandidate: false,
  });
  // Flip every bit of every byte covered by MESSAGE-INTEGRITY (except the header length field, which the HMAC
  // computation rewrites, RFC 8489 §14.5, and which framing checks anyway): never 'ok'. A flipped attribute
  // *length* can hide MESSAGE-INTEGRITY from the TLV walk, and 'missing' is then as much a rejection as 'bad';
  // anywhere else the answer must be 'bad'.
  const miOff = buf.length - 32;
  const lengthFields = new Set<number>();
  for (let off = 20; off < miOff; off += 4 + ((buf.readUInt16BE(off + 2) + 3) & ~3)) lengthFields.add(off + 2).add(off + 3);
  t.strictSame([...lengthFields], [22, 23, 38, 39, 46, 47], 'USERNAME, PRIORITY, ICE-CONTROLLED length fields');
  const wrong: string[] = [];
  for (let i = 0; i < miOff; i++) {
    if (i === 2 || i === 3) continue;
    for (let b = 0; b < 8; b++) {
      const x = Buffer.from(buf);
      x[i]! ^= 1 << b;
      const r = verifyIntegrity(x, 'secret');
      if (r === 'ok' || (r === 'missing' && !lengthFields.has(i))) wrong.push(`byte ${i} bit ${b}: ${r}`);
    }
  }
  t.strictSame(wrong, [], 'every single flipped bit before MESSAGE-INTEGRITY is rejected');
  const inMac = Buffer.from(buf);
  inMac[miOff + 10]! ^= 0x80;
  t.equal(verifyIntegrity(inMac, 'secret'), 'bad', 'flipped bit in the HMAC itself → bad');
  t.equal(verifyFingerprint(inMac), 'bad', '… and the fingerprint (which covers it) too');
  const inUser = Buffer.from(buf);
  inUser[25]! ^= 0x20; // inside the USERNAME value
  t.equal(verifyIntegrity(inUser, 'secret'), 'bad', 'tampered USERNAME → integrity bad');
  t.equal(verifyFingerprint(inUser), 'bad', 'tampered USERNAME → fingerprint bad');
  const inFp = Buffer.from(buf);
  inFp[inFp.length - 1]! ^= 0x01;
  t.equal(verifyFingerprint(inFp), 'bad', 'tampered FINGERPRINT value → bad');
  t.equal(verifyIntegrity(inFp, 'secret'), 'ok', '… but integrity excludes FINGERPRINT (RFC 8489 §14.5)');
  t.equal(verifyIntegrity(buf, 'Secret'), 'bad', 'wrong key');
  t.equal(verifyIntegrity(buf, ''), 'bad', 'empty key');

  // Missing attributes.
  const ind = encodeBindingIndication();
  t.equal(decoded(ind).cls, 'indication', 'keepalive is an indication (RFC 8445 §11)');
  t.equal(verifyIntegrity(ind, 'secret'), 'missing', 'indication: no MESSAGE-INTEGRITY');
  t.equal(verifyFingerprint(ind), 'ok', 'indication carries FINGERPRINT');
  const bare = hex('00010000 2112a442 000102030405060708090a0b');
  t.equal(verifyIntegrity(bare, 'secret'), 'missing', 'header only: integrity missing');
  t.equal(verifyFingerprint(bare), 'missing', 'header only: fingerprint missing');

  // RFC 8489 §14.7: FINGERPRINT must be the last attribute.
  const head = hex('00010014 2112a442 000102030405060708090a0b'); // length 8 (FP) + 12 (SOFTWARE)
  const fp = Buffer.alloc(8);
  fp.writeUInt16BE(ATTR.FINGERPRINT, 0);
  fp.writeUInt16BE(4, 2);
  fp.writeUInt32BE((crc32(head) ^ 0x5354554e) >>> 0, 4);
  const notLast = Buffer.concat([head, fp, hex('80220008 74657374 74657374')]);
  t.ok(isStunFrame(notLast), 'framing ok');
  t.equal(verifyFingerprint(notLast), 'bad', 'FINGERPRINT followed by another attribute → bad');
  // A MESSAGE-INTEGRITY of the wrong length.
  const shortMi = hex('00010008 2112a442 000102030405060708090a0b 00080004 00000000');
  t.equal(verifyIntegrity(shortMi, 'secret'), 'bad', 'MESSAGE-INTEGRITY of length 4 → bad');
});

t.test('success and error responses (RFC 8445 §7.3.1, RFC 8489 §14.8)', async (t) => {
  const tid = hex('a1a2a3a4a5a6a7a8a9aaabac');
  const ok4 = encodeBindingSuccess(tid, '203.0.113.77', 65535, 'pw');
  const m4 = decoded(ok4);
  t.equal(m4.type, BINDING_SUCCESS);
  t.strictSame(getXorMappedAddress(m4), { address: '203.0.113.77', port: 65535 });
  t.equal(verifyIntegrity(ok4, 'pw'), 'ok');
  t.equal(verifyFingerprint(ok4), 'ok');
  // XOR-MAPPED-ADDRESS on the wire is xored (RFC 8489 §14.2): 203.0.113.77 must not appear in clear.
  t.equal(ok4.indexOf(Buffer.from([203, 0, 113, 77])), -1, 'address not in clear');
  const ok6 = decoded(encodeBindingSuccess(tid, '2001:db8::ab', 1, 'pw'));
  t.strictSame(getXorMappedAddress(ok6), { address: '2001:db8::ab', port: 1 });

  const rc = encodeBindingError(tid, 487, 'Role Conflict', 'pw');
  const mrc = decoded(rc);
  t.equal(mrc.type, BINDING_ERROR);
  t.equal(mrc.cls, 'error');
  t.strictSame(getErrorCode(mrc), { code: 487, reason: 'Role Conflict' }, '487 Role Conflict (RFC 8445 §7.3.1.1)');
  t.equal(verifyIntegrity(rc, 'pw'), 'ok', 'authenticated 487 carries MESSAGE-INTEGRITY');
  const e400 = encodeBindingError(tid, 400, 'Bad Request');
  t.strictSame(getErrorCode(decoded(e400)), { code: 400, reason: 'Bad Request' });
  t.equal(verifyIntegrity(e400, 'pw'), 'missing', '400 without MESSAGE-INTEGRITY');
  t.equal(verifyFingerprint(e400), 'ok');
  // Hand-built ERROR-CODE: class 4, number 1, "Unauthorized" → 401.
  const e401 = hex('01110014 2112a442 291fcd7c ba58abd7 f2410100 00090010 00000401 556e6175 74686f72 697a6564');
  t.strictSame(getErrorCode(decoded(e401)), { code: 401, reason: 'Unauthorized' }, 'hand-built 401');
  // Class byte 0xff, number 99: the class is the low 3 bits (7); the bits above are reserved and ignored.
  const e699 = hex('01110008 2112a442 291fcd7c ba58abd7 f2410100 00090004 0000ff63');
  t.strictSame(getErrorCode(decoded(e699)), { code: 799, reason: '' }, 'class = low 3 bits of the class byte (0xff → 7)');
});

// RFC 8489 §5: type = M11..M7 | C1 | M6..M4 | C0 | M3..M0.
t.test('classOf / methodOf (RFC 8489 §5)', async (t) => {
  t.equal(classOf(0x0001), 'request');
  t.equal(classOf(0x0011), 'indication');
  t.equal(classOf(0x0101), 'success');
  t.equal(classOf(0x0111), 'error');
  t.equal(classOf(BINDING_INDICATION), 'indication');
  for (const type of [0x0001, 0x0011, 0x0101, 0x0111]) t.equal(methodOf(type), 0x001, `method of 0x${type.toString(16)} is Binding`);
  t.equal(methodOf(0x0003), 0x003, 'Allocate request');
  t.equal(methodOf(0x0113), 0x003, 'Allocate error');
  // Method 0xfff: M0-3 → bits 0-3, M4-6 → bits 5-7, M7-11 → bits 9-13: request type 0x3eef.
  t.equal(methodOf(0x3eef), 0xfff, 'all method bits, request');
  t.equal(classOf(0x3eef), 'request');
  t.equal(methodOf(0x3fff), 0xfff, 'all method bits, error');
  t.equal(classOf(0x3fff), 'error');
  t.equal(methodOf(0x0020), 0x010, 'bit 5 is M4');
  t.equal(methodOf(0x0200), 0x080, 'bit 9 is M7');
  t.equal(methodOf(0x2000), 0x800, 'bit 13 is M11');
  t.equal(methodOf(0x0110), 0x000, 'class bits are not method bits');
  t.equal(classOf(0x0010), 'indication', 'C0 alone');
  t.equal(classOf(0x0100), 'success', 'C1 alone');
});

// RFC 8489 §6 / RFC 7983: a STUN message starts with two zero bits, has the magic cookie, and a length
// that is a multiple of 4 and matches the datagram.
t.test('isStunFrame rejections (RFC 8489 §6)', async (t) => {
  const good = hex('00010000 2112a442 000102030405060708090a0b');
  t.equal(isStunFrame(good), true, 'minimal binding request');
  t.equal(isStunFrame(Buffer.alloc(0)), false, 'empty');
  t.equal(isStunFrame(good.subarray(0, 19)), false, '19 bytes: shorter than a header');
  const badCookie = Buffer.from(good);
  badCookie[7] = 0x43;
  t.equal(isStunFrame(badCookie), false, 'bad magic cookie');
  const top1 = Buffer.from(good);
  top1[0] = 0x40;
  t.equal(isStunFrame(top1), false, 'first bit pattern 01');
  const top2 = Buffer.from(good);
  top2[0] = 0x80;
  t.equal(isStunFrame(top2), false, 'first bit pattern 10 (RTP)');
  const longer = Buffer.concat([good, Buffer.alloc(4)]);
  t.equal(isStunFrame(longer), false, 'length field 0 but 4 bytes follow');
  const claims = Buffer.from(longer);
  claims.writeUInt16BE(8, 2);
  t.equal(isStunFrame(claims), false, 'length field 8 but 4 bytes follow');
  claims.writeUInt16BE(4, 2);
  t.equal(isStunFrame(claims), true, 'length field 4 and 4 bytes follow');
  const odd = Buffer.concat([good, Buffer.alloc(2)]);
  odd.writeUInt16BE(2, 2);
  t.equal(isStunFrame(odd), false, 'length 2: not a multiple of 4');
  // decodeStun rejects an attribute running past the end.
  const overrun = hex('00010008 2112a442 000102030405060708090a0b 00060064 61626364');
  t.equal(isStunFrame(overrun), true, 'framing alone is fine');
  t.equal(decodeStun(overrun), undefined, 'but USERNAME length 100 overruns the message');
  const partialHeader = hex('00010004 2112a442 000102030405060708090a0b 0006');
  t.equal(decodeStun(partialHeader), undefined, 'truncated attribute header');
  t.equal(decodeStun(top2), undefined, 'decodeStun rejects what isStunFrame rejects');
});

t.test('decodeStun and the getters never throw on 2,000 hostile buffers', async (t) => {
  const rnd = prng(0x1ce);
  const int = (n: number) => Math.floor(rnd() * n);
  const seeds = [
    SAMPLE_REQUEST, SAMPLE_RESPONSE_V4, SAMPLE_RESPONSE_V6,
    encodeBindingError(RFC5769_TID, 487, 'Role Conflict', 'pw'),
    encodeBindingRequest({ transactionId: RFC5769_TID, username: 'u:v', password: 'p', priority: 1, controlling: true, tieBreaker: 7n, useCandidate: true }),
  ];
  let threw = 0;
  let decodedCount = 0;
  const firstErrors: string[] = [];
  for (let i = 0; i < 2000; i++) {
    let buf: Buffer;
    const seed = seeds[int(seeds.length)]!;
    switch (i % 4) {
      case 0: { // random bytes, sometimes with a valid-looking header
        buf = Buffer.alloc(int(120));
        for (let j = 0; j < buf.length; j++) buf[j] = int(256);
        if (buf.length >= 20 && rnd() < 0.7) {
          buf[0]! &= 0x3f;
          buf.writeUInt32BE(0x2112a442, 4);
          buf.writeUInt16BE((buf.length - 20) & 0xffff, 2);
        }
        break;
      }
      case 1: { // truncated, with the length field fixed up so that framing passes
        buf = Buffer.from(seed.subarray(0, 20 + 4 * int((seed.length - 20) / 4 + 1)));
        buf.writeUInt16BE(buf.length - 20, 2);
        break;
      }
      case 2: { // bit flips in the attributes
        buf = Buffer.from(seed);
        for (let k = 1 + int(4); k > 0; k--) buf[20 + int(buf.length - 20)]! ^= 1 << int(8);
        break;
      }
      default: { // bit flips anywhere, including the header
        buf = Buffer.from(seed);
        for (let k = 1 + int(3); k > 0; k--) buf[int(buf.length)]! ^= 1 << int(8);
      }
    }
    try {
      const m = decodeStun(buf);
      if (m) {
        decodedCount++;
        getPriority(m);
        getUsername(m);
        getTieBreaker(m, ATTR.ICE_CONTROLLING);
        getTieBreaker(m, ATTR.ICE_CONTROLLED);
        getXorMappedAddress(m);
        getErrorCode(m);
        hasAttribute(m, ATTR.USE_CANDIDATE);
        classOf(m.type);
        methodOf(m.type);
      }
      verifyIntegrity(buf, 'pw');
      verifyFingerprint(buf);
    } catch (e) {
      threw++;
      if (firstErrors.length < 3) firstErrors.push(`${buf.toString('hex')}: ${String(e)}`);
    }
  }
  t.equal(threw, 0, 'nothing threw', { firstErrors });
  t.ok(decodedCount >= 400, `the decoder was actually reached (${decodedCount} buffers decoded)`);
  t.ok(decodedCount < 2000, 'and garbage was rejected');
});

// RFC 8489 §6.2.1: RTO doubles after each retransmission; this library caps it (stunMaxTimeout) and sends
// 1 + `retransmissions` requests, the last wait being the time to wait for a response.
t.test('retransmitWaits (RFC 8489 §6.2.1)', async (t) => {
  t.strictSame(retransmitWaits(500, 6, 1600), [500, 1000, 1600, 1600, 1600, 1600, 1600], 'defaults: doubling, capped at 1600');
  t.equal(retransmitWaits(500, 6, 1600).reduce((a, b) => a + b, 0), 9500, 'defaults: a dead pair fails after 9.5 s');
  t.strictSame(retransmitWaits(100, 6, 1_000_000), [100, 200, 400, 800, 1600, 3200, 6400], 'uncapped doubling');
  t.strictSame(retransmitWaits(250, 0, 1000), [250], 'no retransmission: one wait');
  t.strictSame(retransmitWaits(300, 2, 300), [300, 300, 300], 'cap equal to the RTO');
  t.equal(retransmitWaits(500, 20, 1600).length, 21, 'one wait per transmission');
  t.strictSame(retransmitWaits(500, 3, 400), [400, 400, 400, 400], 'cap below the initial RTO wins');
});

// ---------------------------------------------------------------- the Binding fast path against references

/** MESSAGE-INTEGRITY checked with node:crypto, independently of the codec: HMAC-SHA1 with the adjusted length (RFC 8489 §14.5). */
function referenceIntegrity(buf: Buffer, key: Buffer | string): boolean {
  const off = buf.length - 32; // our encoders put MESSAGE-INTEGRITY right before FINGERPRINT
  const header = Buffer.from(buf.subarray(0, 20));
  header.writeUInt16BE(off + 24 - 20, 2);
  const mac = createHmac('sha1', key).update(header).update(buf.subarray(20, off)).digest();
  return buf.readUInt16BE(off) === ATTR.MESSAGE_INTEGRITY && mac.equals(buf.subarray(off + 4, off + 24));
}

/** A check as the `stun` package encodes it (what encodeBindingRequest used before the fast path). */
function stunPackageRequest(f: BindingRequestFields): Buffer {
  const m = stun.createMessage(BINDING_REQUEST, f.transactionId);
  m.addUsername(f.username);
  m.addAttribute(ATTR.PRIORITY, f.priority >>> 0);
  const tb = Buffer.alloc(8);
  tb.writeBigUInt64BE(f.tieBreaker);
  if (f.controlling) m.addIceControlling(tb);
  else m.addIceControlled(tb);
  if (f.useCandidate) m.addUseCandidate();
  m.addMessageIntegrity(f.password);
  m.addFingerprint();
  return m.toBuffer();
}

/** A message from raw attributes, with MESSAGE-INTEGRITY by node:crypto (if `password`) and FINGERPRINT. */
function handBuilt(type: number, attrs: [number, Buffer][], password?: string): Buffer {
  const parts = attrs.map(([at, value]) => {
    const a = Buffer.alloc(4 + ((value.length + 3) & ~3));
    a.writeUInt16BE(at, 0);
    a.writeUInt16BE(value.length, 2);
    value.copy(a, 4);
    return a;
  });
  const header = Buffer.alloc(20);
  header.writeUInt16BE(type, 0);
  header.writeUInt32BE(0x2112a442, 4);
  RFC5769_TID.copy(header, 8);
  let body = Buffer.concat([header, ...parts]);
  if (password !== undefined) {
    body.writeUInt16BE(body.length - 20 + 24, 2);
    const mi = Buffer.alloc(24);
    mi.writeUInt16BE(ATTR.MESSAGE_INTEGRITY, 0);
    mi.writeUInt16BE(20, 2);
    createHmac('sha1', password).update(body).digest().copy(mi, 4);
    body = Buffer.concat([body, mi]);
  }
  body.writeUInt16BE(body.length - 20 + 8, 2);
  const fp = Buffer.alloc(8);
  fp.writeUInt16BE(ATTR.FINGERPRINT, 0);
  fp.writeUInt16BE(4, 2);
  fp.writeUInt32BE((crc32(body) ^ 0x5354554e) >>> 0, 4);
  return Buffer.concat([body, fp]);
}

/** Inserts an attribute between MESSAGE-INTEGRITY and FINGERPRINT and recomputes FINGERPRINT, as an on-path attacker can. */
function appendAfterIntegrity(buf: Buffer, type: number, value: Buffer): Buffer {
  const attr = Buffer.alloc(4 + ((value.length + 3) & ~3));
  attr.writeUInt16BE(type, 0);
  attr.writeUInt16BE(value.length, 2);
  value.copy(attr, 4);
  const body = Buffer.concat([buf.subarray(0, buf.length - 8), attr]);
  body.writeUInt16BE(body.length + 8 - 20, 2);
  const fp = Buffer.alloc(8);
  fp.writeUInt16BE(ATTR.FINGERPRINT, 0);
  fp.writeUInt16BE(4, 2);
  fp.writeUInt32BE((crc32(body) ^ 0x5354554e) >>> 0, 4);
  return Buffer.concat([body, fp]);
}

t.test('encoders write what the stun package wrote, byte for byte (RFC 8445 §7.1.1, §7.3.1; RFC 8489 §14)', async (t) => {
  const tid = hex('0102030405060708090a0b0c');
  const diffs: string[] = [];
  // Usernames of every length modulo 4 (padding), UTF-8, and the longest; passwords up to the 256 of an ice-pwd,
  // past the 64-byte HMAC block (RFC 2104 §2 hashes those first).
  for (const username of ['a:b', 'ab:c', 'abc:d', 'abcd:e', 'ü:é', 'abcdefgh:ijklmnop', `${'x'.repeat(256)}:${'y'.repeat(256)}`]) {
    for (const password of ['p', 'abcdefghijklmnopqrstuv', 'p'.repeat(64), 'q'.repeat(65), 'r'.repeat(256)]) {
      for (const controlling of [true, false]) {
        for (const useCandidate of [true, false]) {
          const f = { transactionId: tid, username, password, priority: 0xfffffffe, controlling, tieBreaker: 0xfedcba9876543210n, useCandidate };
          const ours = encodeBindingRequest(f);
          if (!ours.equals(stunPackageRequest(f))) diffs.push(`request ${username.length} ${password.length} ${controlling} ${useCandidate}`);
          if (!referenceIntegrity(ours, password)) diffs.push(`request MI ${username.length} ${password.length}`);
        }
      }
    }
  }
  for (const address of ['192.0.2.1', '0.0.0.0', '255.255.255.255', '2001:db8::1', '::', '::1', '::ffff:192.0.2.1', '2001:db8:1234:5678:11:2233:4455:6677', 'fe80::1:2']) {
    const m = stun.createMessage(BINDING_SUCCESS, tid);
    m.addXorAddress(address, 54321);
    m.addMessageIntegrity('pw');
    m.addFingerprint();
    if (!encodeBindingSuccess(tid, address, 54321, 'pw').equals(m.toBuffer())) diffs.push(`success ${address}`);
  }
  for (const [code, reason, password] of [[487, 'Role Conflict', 'pw'], [400, 'Bad Request', undefined], [401, 'Unauthenticated', undefined], [300, 'x', undefined], [699, 'ab', 'k']] as const) {
    const m = stun.createMessage(BINDING_ERROR, tid);
    m.addError(code, reason);
    if (password !== undefined) m.addMessageIntegrity(password);
    m.addFingerprint();
    if (!encodeBindingError(tid, code, reason, password).equals(m.toBuffer())) diffs.push(`error ${code}`);
  }
  const u = stun.createMessage(BINDING_ERROR, tid);
  u.addError(420, 'Unknown Attribute');
  u.addAttribute(ATTR.UNKNOWN_ATTRIBUTES, [0x0003, 0x7fff, 0x0004]);
  u.addMessageIntegrity('pw');
  u.addFingerprint();
  if (!encodeUnknownAttributes(tid, [0x0003, 0x7fff, 0x0004], 'pw').equals(u.toBuffer())) diffs.push('420');
  t.strictSame(diffs, [], 'no difference');
  // Where the stun package was wrong: it left MESSAGE-INTEGRITY out for an empty key. The key is then empty,
  // not absent (RFC 8489 §14.5 makes no exception); ICE passwords are never empty anyway (RFC 8839 §5.4).
  const empty = encodeBindingRequest({ transactionId: tid, username: 'a:b', password: '', priority: 1, controlling: true, tieBreaker: 1n, useCandidate: false });
  t.equal(verifyIntegrity(empty, ''), 'ok', 'empty password: MESSAGE-INTEGRITY keyed with the empty key');
  t.ok(referenceIntegrity(empty, ''), '… as node:crypto computes it');
});

t.test('MESSAGE-INTEGRITY against node:crypto HMAC-SHA1 over every block boundary and key length (RFC 2104, RFC 8489 §14.5)', async (t) => {
  const rnd = prng(0x51a1);
  const int = (n: number) => Math.floor(rnd() * n);
  const wrong: string[] = [];
  let cases = 0;
  // MESSAGE-INTEGRITY at every 4-byte offset from 20 to 300: the SHA-1 tail takes one block or two,
  // after zero to five full blocks; keys from empty to past the 64-byte block, as strings and bytes.
  for (let miOff = 20; miOff <= 300; miOff += 4) {
    for (const keyLength of [0, 1, 20, 63, 64, 65, 130]) {
      const buf = Buffer.alloc(miOff + 24 + 8);
      for (let i = 20; i < miOff; i++) buf[i] = int(256);
      buf.writeUInt16BE(BINDING_REQUEST, 0);
      buf.writeUInt16BE(buf.length - 20, 2);
      buf.writeUInt32BE(0x2112a442, 4);
      for (let i = 8; i < 20; i++) buf[i] = int(256);
      if (miOff > 20) {
        buf.writeUInt16BE(0x8023, 20); // one comprehension-optional attribute fills the space before MESSAGE-INTEGRITY
        buf.writeUInt16BE(miOff - 24, 22);
      }
      buf.writeUInt16BE(ATTR.MESSAGE_INTEGRITY, miOff);
      buf.writeUInt16BE(20, miOff + 2);
      const key = keyLength % 2 ? Buffer.from(Array.from({ length: keyLength }, () => int(256))) : 'k'.repeat(keyLength);
      const header = Buffer.from(buf.subarray(0, 20));
      header.writeUInt16BE(miOff + 4, 2);
      createHmac('sha1', key).update(header).update(buf.subarray(20, miOff)).digest().copy(buf, miOff + 4);
      cases++;
      if (verifyIntegrity(buf, key) !== 'ok') wrong.push(`MI at ${miOff}, key ${keyLength}: not ok`);
      // One flipped bit anywhere it covers (the length field aside: the HMAC rewrites it) must fail.
      let flip = int(miOff - 2);
      if (flip >= 2) flip += 2;
      buf[flip]! ^= 1 << int(8);
      if (verifyIntegrity(buf, key) === 'ok') wrong.push(`MI at ${miOff}, key ${keyLength}: ok after flipping a bit of byte ${flip}`);
    }
  }
  t.equal(cases, 71 * 7);
  t.strictSame(wrong, [], 'every case agrees with createHmac');
});

t.test('BindingRequestTemplate: the bytes of encodeBindingRequest, a new Buffer per build (RFC 8445 §7.1.1)', async (t) => {
  const base = { username: 'remoteUfrag:localUfrag', password: 'remote-password-0123456', priority: 1853817087, tieBreaker: 0x0123456789abcdefn };
  for (const controlling of [true, false]) {
    for (const useCandidate of [true, false]) {
      const f = { ...base, controlling, useCandidate };
      const tpl = new BindingRequestTemplate(f);
      const tid1 = newTransactionId();
      const tid2 = newTransactionId();
      const a = tpl.build(tid1);
      const b = tpl.build(tid2);
      t.ok(a.equals(encodeBindingRequest({ ...f, transactionId: tid1 })), `controlling=${controlling} useCandidate=${useCandidate}: same bytes as encodeBindingRequest`);
      t.ok(b.equals(stunPackageRequest({ ...f, transactionId: tid2 })), '… and as the stun package');
      t.equal(verifyIntegrity(b, f.password), 'ok');
      t.equal(verifyFingerprint(b), 'ok');
      const differ: number[] = [];
      for (let i = 0; i < a.length; i++) if (a[i] !== b[i]) differ.push(i);
      const miValue = a.length - 28;
      t.ok(differ.every((i) => (i >= 8 && i < 20) || (i >= miValue && i < miValue + 20) || i >= a.length - 4),
        'two builds differ only in the transaction id, the HMAC and the CRC');
      t.ok(decoded(b).transactionId.equals(tid2));
    }
  }
  const tpl = new BindingRequestTemplate({ ...base, controlling: true, useCandidate: false });
  const tid = Buffer.from(RFC5769_TID);
  const first = tpl.build(tid);
  const kept = Buffer.from(first);
  tid[0]! ^= 0xff; // the caller reuses its buffer
  first.fill(0); // or scribbles on the one it got
  const second = tpl.build(RFC5769_TID);
  t.ok(second.equals(kept), 'builds share nothing: neither the caller\'s transaction id buffer nor the previous message');
  t.not(second, first, 'a new Buffer each call');
  t.throws(() => tpl.build(Buffer.alloc(11)), InvalidArgumentError, 'a transaction id is 12 bytes (RFC 8489 §5)');
  t.throws(() => new BindingRequestTemplate({ ...base, username: 'u'.repeat(514), controlling: true, useCandidate: false }), InvalidArgumentError, 'USERNAME past 513 bytes');
});

t.test('encoders: padding, indications, arguments (RFC 8489 §6, §14, §14.8; RFC 8445 §11)', async (t) => {
  const tid = hex('a1a2a3a4a5a6a7a8a9aaabac');
  // Padding is zero on sending (RFC 8489 §14), though the encoders allocate from Node's unzeroed pool.
  const padding = new Set<number>();
  const disagree: number[] = [];
  for (let i = 0; i < 200; i++) {
    const f = { username: 'u'.repeat(1 + (i % 7)), password: 'pw', priority: 1, controlling: true, tieBreaker: 1n, useCandidate: false };
    const req = encodeBindingRequest({ ...f, transactionId: tid });
    for (const b of req.subarray(24 + f.username.length, 24 + ((f.username.length + 3) & ~3))) padding.add(b);
    if (!new BindingRequestTemplate(f).build(tid).equals(req)) disagree.push(i);
  }
  t.strictSame([...padding], [0], 'USERNAME padding is zero bytes');
  t.strictSame(disagree, [], 'template and direct encoder agree');
  const err = encodeBindingError(tid, 401, 'Unauthenticated');
  t.equal(err.readUInt16BE(22), 4 + 15, 'ERROR-CODE length counts the reason without padding');
  t.strictSame([...err.subarray(20 + 4 + 4 + 15, 20 + 4 + 4 + 16)], [0], 'reason padded with a zero');
  t.strictSame([...err.subarray(24, 28)], [0, 0, 4, 1], 'ERROR-CODE: reserved, class 4, number 1');

  const i1 = encodeBindingIndication();
  const i2 = encodeBindingIndication();
  t.equal(i1.length, 28, 'header and FINGERPRINT only');
  t.equal(i1.readUInt16BE(0), BINDING_INDICATION);
  t.equal(verifyFingerprint(i1), 'ok');
  t.notOk(i1.subarray(8, 20).equals(i2.subarray(8, 20)), 'a fresh transaction id each time');
  const ids = new Set(Array.from({ length: 1000 }, () => newTransactionId().toString('hex')));
  t.equal(ids.size, 1000, 'transaction ids do not repeat across pool refills');

  t.throws(() => encodeBindingSuccess(Buffer.alloc(16), '192.0.2.1', 1, 'pw'), InvalidArgumentError, 'transaction id of 16 bytes');
  t.throws(() => encodeBindingSuccess(tid, 'example.com', 1, 'pw'), InvalidArgumentError, 'not an IP address');
  t.throws(() => encodeBindingSuccess(tid, '192.0.2.1', 65536, 'pw'), InvalidArgumentError, 'port out of range');
  t.throws(() => encodeBindingError(tid, 200, 'OK'), InvalidArgumentError, 'error class 2 (RFC 8489 §14.8: 3–6)');
  t.throws(() => encodeBindingError(tid, 400, 'r'.repeat(128)), InvalidArgumentError, 'reason of 128 characters');
  t.strictSame(getXorMappedAddress(decoded(encodeBindingSuccess(tid, '2001:0DB8:0000:0000:0000:0000:0000:0001', 9, 'pw'))), { address: '2001:db8::1', port: 9 }, 'any IPv6 spelling is encoded');
});

// ---------------------------------------------------------------- review fixes

// RFC 8489 §14.5: "With the exception of the MESSAGE-INTEGRITY-SHA256 and FINGERPRINT attributes, which appear after
// MESSAGE-INTEGRITY, agents MUST ignore all other attributes that follow MESSAGE-INTEGRITY." §14.6: after
// MESSAGE-INTEGRITY-SHA256 only FINGERPRINT.
t.test('attributes after MESSAGE-INTEGRITY are ignored (RFC 8489 §14.5, §14.6)', async (t) => {
  const password = 'remote-password-0123';
  const check = encodeBindingRequest({
    transactionId: RFC5769_TID, username: 'a:b', password, priority: 100, controlling: true, tieBreaker: 5n, useCandidate: false,
  });
  const forged = appendAfterIntegrity(check, ATTR.USE_CANDIDATE, Buffer.alloc(0));
  const m = decoded(forged);
  t.equal(verifyFingerprint(forged), 'ok', 'the attacker recomputed FINGERPRINT');
  t.equal(verifyIntegrity(forged, password), 'ok', 'MESSAGE-INTEGRITY still verifies: it does not cover what follows it');
  t.equal(hasAttribute(m, ATTR.USE_CANDIDATE), false, 'USE-CANDIDATE appended after MESSAGE-INTEGRITY is ignored');
  t.equal(findAttribute(forged, ATTR.USE_CANDIDATE), -1, 'findAttribute does not see it either');
  t.equal(hasAttribute(decoded(check), ATTR.USE_CANDIDATE), false, 'the original had none');

  // Every getter: a request authenticated without PRIORITY, ICE-CONTROLLED, ERROR-CODE ..., those appended after.
  const bare = stun.createMessage(BINDING_REQUEST, RFC5769_TID);
  bare.addUsername('a:b');
  bare.addMessageIntegrity(password);
  bare.addFingerprint();
  let x = bare.toBuffer();
  x = appendAfterIntegrity(x, ATTR.PRIORITY, hex('7effffff'));
  x = appendAfterIntegrity(x, ATTR.ICE_CONTROLLED, hex('0102030405060708'));
  x = appendAfterIntegrity(x, ATTR.USERNAME, Buffer.from('evil:evil'));
  x = appendAfterIntegrity(x, ATTR.ERROR_CODE, hex('00000401'));
  x = appendAfterIntegrity(x, ATTR.XOR_MAPPED_ADDRESS, hex('0001a147e112a643'));
  x = appendAfterIntegrity(x, 0x0013, Buffer.from('data')); // DATA
  x = appendAfterIntegrity(x, 0x000d, hex('00000258')); // LIFETIME
  x = appendAfterIntegrity(x, ATTR.REALM, Buffer.from('realm'));
  x = appendAfterIntegrity(x, 0x0003, hex('00000000')); // comprehension-required, unknown to ICE
  const mx = decoded(x);
  t.equal(verifyIntegrity(x, password), 'ok');
  t.equal(verifyFingerprint(x), 'ok');
  t.equal(getUsername(mx), 'a:b', 'USERNAME: the one before MESSAGE-INTEGRITY');
  t.equal(getPriority(mx), undefined, 'PRIORITY ignored');
  t.equal(getTieBreaker(mx, ATTR.ICE_CONTROLLED), undefined, 'ICE-CONTROLLED ignored');
  t.equal(getErrorCode(mx), undefined, 'ERROR-CODE ignored');
  t.equal(getXorMappedAddress(mx), undefined, 'XOR-MAPPED-ADDRESS ignored');
  t.equal(getData(mx), undefined, 'DATA ignored');
  t.equal(getLifetime(mx), undefined, 'LIFETIME ignored');
  t.equal(getRealm(mx), undefined, 'REALM ignored');
  t.strictSame(unknownComprehensionRequired(mx, ICE_KNOWN_ATTRIBUTES), [], 'ignored, so not unknown either');

  // What may follow: MESSAGE-INTEGRITY-SHA256 and FINGERPRINT; after MESSAGE-INTEGRITY-SHA256 only FINGERPRINT.
  const sha = appendAfterIntegrity(check, ATTR.MESSAGE_INTEGRITY_SHA256, Buffer.alloc(32, 0xab));
  t.ok(findAttribute(sha, ATTR.MESSAGE_INTEGRITY_SHA256) > findAttribute(sha, ATTR.MESSAGE_INTEGRITY), 'MESSAGE-INTEGRITY-SHA256 after MESSAGE-INTEGRITY counts');
  t.equal(findAttribute(sha, ATTR.FINGERPRINT), sha.length - 8, 'FINGERPRINT counts');
  t.equal(verifyFingerprint(sha), 'ok');
  const afterSha = appendAfterIntegrity(appendAfterIntegrity(check, ATTR.MESSAGE_INTEGRITY_SHA256, Buffer.alloc(32)), ATTR.MESSAGE_INTEGRITY_SHA256, Buffer.alloc(32));
  t.equal(findAttribute(afterSha, ATTR.MESSAGE_INTEGRITY_SHA256), findAttribute(sha, ATTR.MESSAGE_INTEGRITY_SHA256), 'a second MESSAGE-INTEGRITY-SHA256 is not the one found');
  const twoMi = appendAfterIntegrity(check, ATTR.MESSAGE_INTEGRITY, Buffer.alloc(20));
  t.equal(verifyIntegrity(twoMi, password), 'ok', 'a second MESSAGE-INTEGRITY is ignored: the first is checked');
  // A message protected by MESSAGE-INTEGRITY-SHA256 alone: what follows it is ignored, MESSAGE-INTEGRITY included.
  const shaOnly = hex(`00010040 2112a442 000102030405060708090a0b 001c0020 ${'00'.repeat(32)} 00250000 00080014 ${'00'.repeat(20)}`);
  t.equal(hasAttribute(decoded(shaOnly), ATTR.USE_CANDIDATE), false, 'USE-CANDIDATE after MESSAGE-INTEGRITY-SHA256 ignored');
  t.equal(verifyIntegrity(shaOnly, password), 'missing', 'so is a MESSAGE-INTEGRITY after it');
});

/** A Binding success with XOR-MAPPED-ADDRESS for the 16 address bytes given, xored by hand (RFC 8489 §14.2). */
function handBuiltV6Response(addr: Buffer, port: number): Buffer {
  const buf = Buffer.alloc(20 + 24);
  buf.writeUInt16BE(BINDING_SUCCESS, 0);
  buf.writeUInt16BE(24, 2);
  buf.writeUInt32BE(0x2112a442, 4);
  RFC5769_TID.copy(buf, 8);
  buf.writeUInt16BE(ATTR.XOR_MAPPED_ADDRESS, 20);
  buf.writeUInt16BE(20, 22);
  buf[25] = 0x02;
  buf.writeUInt16BE(port ^ 0x2112, 26);
  for (let i = 0; i < 16; i++) buf[28 + i] = addr[i]! ^ buf[4 + i]!;
  return buf;
}

t.test('XOR-MAPPED-ADDRESS IPv6 in canonical text (RFC 8489 §14.2, RFC 5952 §4)', async (t) => {
  const m = decoded(SAMPLE_RESPONSE_V6);
  t.strictSame(getXorMappedAddress(m), { address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853 }, 'RFC 5769 §2.3 vector');
  t.strictSame(getXorAddressAttribute(m, ATTR.XOR_MAPPED_ADDRESS), { address: '2001:db8:1234:5678:11:2233:4455:6677', port: 32853, family: 'IPv6' });
  const cases: [string, string][] = [
    ['20010db8000000000000000000000001', '2001:db8::1'],
    ['20010db8000000000001000000000001', '2001:db8::1:0:0:1'], // 2001:db8:0:0:1::1: two runs of two, the first compressed (§4.2.3)
    ['00010000000000020000000000000003', '1:0:0:2::3'], // the longest run, not the first (§4.2.3)
    ['00000000000100000000000000000000', '0:0:1::'], // the longest run at the end
    ['20010db8000000010001000100010001', '2001:db8:0:1:1:1:1:1'], // a single zero group is not compressed (§4.2.2)
    ['00000000000000000000ffffc0000201', '::ffff:192.0.2.1'], // IPv4-mapped: mixed notation (§5), as inet_ntop prints
    ['00000000000000000000000000000000', '::'],
    ['00000000000000000000000000000001', '::1'],
    ['fe800000000000000000000000000000', 'fe80::'],
    ['abcdef0000000000000000000000abcd', 'abcd:ef00::abcd'], // lower case, leading zeros dropped (§4.1, §4.3)
  ];
  for (const [bytes, want] of cases) {
    t.strictSame(getXorMappedAddress(decoded(handBuiltV6Response(hex(bytes), 443))), { address: want, port: 443 }, `${bytes} → ${want}`);
    t.strictSame(getXorMappedAddress(decoded(encodeBindingSuccess(RFC5769_TID, want, 443, 'pw'))), { address: want, port: 443 }, `${want} round-trips`);
  }
});

t.test('normalizeAddress is canonicalIp (RFC 5952, as inet_ntop prints)', async (t) => {
  t.equal(normalizeAddress('2001:DB8:0:0:1:0:0:1'), '2001:db8::1:0:0:1');
  t.equal(normalizeAddress('2001:0db8:0000:0000:0000:0000:0000:0001'), '2001:db8::1');
  t.equal(normalizeAddress('::ffff:192.0.2.1'), '::ffff:192.0.2.1', 'IPv4-mapped stays in mixed notation (Node gives datagram sources so)');
  t.equal(normalizeAddress('::FFFF:C000:0201'), '::ffff:192.0.2.1', '… whichever way it was written');
  t.equal(normalizeAddress('192.0.2.1'), '192.0.2.1');
  t.equal(normalizeAddress('turn.example.com'), 'turn.example.com', 'not an IP address: unchanged');
  t.equal(normalizeAddress('fe80::1%eth0'), 'fe80::1%eth0', 'zone ids are refused by canonicalIp: unchanged');
  t.equal(normalizeAddress(''), '');
});

t.test('unknown comprehension-required attributes and the 420 response (RFC 8489 §6.3.1, §14.9)', async (t) => {
  t.strictSame([...ICE_KNOWN_ATTRIBUTES].sort((a, b) => a - b),
    [0x0001, 0x0006, 0x0008, 0x0009, 0x0014, 0x0015, 0x001c, 0x001d, 0x001e, 0x0020, 0x0024, 0x0025], 'the ICE set');
  t.ok([...ICE_KNOWN_ATTRIBUTES].every((a) => a < 0x8000), 'all comprehension-required');
  t.strictSame(unknownComprehensionRequired(decoded(SAMPLE_REQUEST), ICE_KNOWN_ATTRIBUTES), [], 'RFC 5769 §2.1: SOFTWARE and ICE-CONTROLLED are comprehension-optional');
  const ours = encodeBindingRequest({ transactionId: RFC5769_TID, username: 'a:b', password: 'pw', priority: 1, controlling: true, tieBreaker: 1n, useCandidate: true });
  t.strictSame(unknownComprehensionRequired(decoded(ours), ICE_KNOWN_ATTRIBUTES), [], 'our own check');
  t.strictSame(unknownComprehensionRequired(decoded(ours), new Set()), [ATTR.USERNAME, ATTR.PRIORITY, ATTR.USE_CANDIDATE, ATTR.MESSAGE_INTEGRITY],
    'knowing nothing: every comprehension-required attribute, never ICE-CONTROLLING or FINGERPRINT');

  const req = handBuilt(BINDING_REQUEST, [
    [ATTR.USERNAME, Buffer.from('a:b')],
    [0x0003, hex('00000000')], // CHANGE-REQUEST (RFC 5780): not ICE
    [0x7fff, hex('01')],
    [0x0003, hex('00000000')], // twice: listed once
    [0x8001, hex('02')], // comprehension-optional: never unknown
  ], 'pw');
  t.equal(verifyIntegrity(req, 'pw'), 'ok', 'hand-built request authenticates');
  const m = decoded(appendAfterIntegrity(req, 0x0004, hex('00000000')));
  t.strictSame(unknownComprehensionRequired(m, ICE_KNOWN_ATTRIBUTES), [0x0003, 0x7fff], 'unknown, each once, in order; 0x0004 after MESSAGE-INTEGRITY is ignored');

  const res = encodeUnknownAttributes(m.transactionId, [0x0003, 0x7fff, 0x0004], 'pw');
  const r = decoded(res);
  t.equal(r.type, BINDING_ERROR, 'a Binding error response');
  t.ok(r.transactionId.equals(RFC5769_TID), 'to the request');
  t.strictSame(getErrorCode(r), { code: 420, reason: 'Unknown Attribute' });
  t.strictSame(getAttributeValue(r, ATTR.UNKNOWN_ATTRIBUTES), hex('0003 7fff 0004'), 'UNKNOWN-ATTRIBUTES lists them');
  const u = findAttribute(res, ATTR.UNKNOWN_ATTRIBUTES);
  t.strictSame([...res.subarray(u + 10, u + 12)], [0, 0], 'padded with zeros (RFC 8489 §14.9), not by repeating a type');
  t.equal(verifyIntegrity(res, 'pw'), 'ok', 'MESSAGE-INTEGRITY with the password');
  t.ok(referenceIntegrity(res, 'pw'));
  t.equal(verifyFingerprint(res), 'ok');
  const plain = encodeUnknownAttributes(RFC5769_TID, [0x0003, 0x7fff]);
  t.equal(verifyIntegrity(plain, 'pw'), 'missing', 'no password: no MESSAGE-INTEGRITY');
  t.equal(verifyFingerprint(plain), 'ok');
  t.strictSame(getAttributeValue(decoded(plain), ATTR.UNKNOWN_ATTRIBUTES), hex('0003 7fff'), 'an even count needs no padding');
});

/** Calls every reader on a buffer; throws whatever they throw. */
function readEverything(buf: Buffer): DecodedStun | undefined {
  const m = decodeStun(buf);
  if (m) {
    getPriority(m);
    getUsername(m);
    getTieBreaker(m, ATTR.ICE_CONTROLLING);
    getTieBreaker(m, ATTR.ICE_CONTROLLED);
    hasAttribute(m, ATTR.USE_CANDIDATE);
    getXorMappedAddress(m);
    getXorRelayedAddress(m);
    getXorPeerAddress(m);
    getErrorCode(m);
    getRealm(m);
    getNonce(m);
    getData(m);
    getLifetime(m);
    getChannelNumber(m);
    getAttributeValue(m, ATTR.UNKNOWN_ATTRIBUTES);
    unknownComprehensionRequired(m, ICE_KNOWN_ATTRIBUTES);
  }
  verifyIntegrity(buf, 'pw');
  verifyFingerprint(buf);
  return m;
}

t.test('decodeStun never throws: 12,000 seeded random, truncated and lying inputs (RFC 8489 §6)', async (t) => {
  const rnd = prng(0x8489);
  const int = (n: number) => Math.floor(rnd() * n);
  const randomBytes = (n: number) => Buffer.from(Array.from({ length: n }, () => int(256)));
  const valid = [
    SAMPLE_REQUEST, SAMPLE_RESPONSE_V4, SAMPLE_RESPONSE_V6,
    encodeBindingRequest({ transactionId: RFC5769_TID, username: 'u:v', password: 'p', priority: 1, controlling: true, tieBreaker: 7n, useCandidate: true }),
    encodeBindingSuccess(RFC5769_TID, '2001:db8::1', 1, 'pw'),
    encodeBindingError(RFC5769_TID, 487, 'Role Conflict', 'pw'),
    encodeUnknownAttributes(RFC5769_TID, [3, 5, 7]),
    encodeBindingIndication(),
    encodeTurnRequest(TURN_METHOD.ALLOCATE, RFC5769_TID, { requestedTransport: 17, lifetime: 600 },
      { username: 'u', realm: 'r', nonce: 'n', key: longTermKey('u', 'r', 'p') }),
    encodeSendIndication(RFC5769_TID, { address: '192.0.2.1', port: 9 }, Buffer.from('hello')),
  ];
  const attributeOffsets = (buf: Buffer) => {
    const offs: number[] = [];
    for (let off = 20; off + 4 <= buf.length; off += 4 + ((buf.readUInt16BE(off + 2) + 3) & ~3)) offs.push(off);
    return offs;
  };
  const kinds = ['random', 'random with a header', 'truncated', 'lying message length', 'lying attribute length', 'random attributes'];
  // Types the getters read, with values of random length: families, lengths and classes they must not trust.
  const types = [...Object.values(ATTR), 0x000c, 0x000d, 0x0012, 0x0013, 0x0016, 0x0003, 0x7fff, 0xffff];
  const accepted = new Array<number>(kinds.length).fill(0);
  const errors: string[] = [];
  const outside: string[] = [];
  const N = 12_000;
  for (let i = 0; i < N; i++) {
    const kind = i % kinds.length;
    const seed = valid[int(valid.length)]!;
    let buf: Buffer;
    switch (kind) {
      case 0:
        buf = randomBytes(int(160));
        break;
      case 1: // passes framing about half the time
        buf = randomBytes(20 + 4 * int(30));
        buf[0]! &= 0x3f;
        buf.writeUInt32BE(0x2112a442, 4);
        buf.writeUInt16BE(rnd() < 0.5 ? buf.length - 20 : int(0x10000), 2);
        break;
      case 2: // cut anywhere, length field untouched or fixed up
        buf = Buffer.from(seed.subarray(0, int(seed.length)));
        if (buf.length >= 20 && rnd() < 0.5) buf.writeUInt16BE(buf.length - 20, 2);
        break;
      case 3: { // the header length says more or less than there is
        buf = Buffer.from(seed);
        buf.writeUInt16BE(rnd() < 0.5 ? int(0x10000) : Math.max(0, seed.length - 20 + 4 * (int(5) - 2)), 2);
        break;
      }
      case 4: { // one attribute's length is a lie
        buf = Buffer.from(seed);
        const offs = attributeOffsets(buf);
        const off = offs[int(offs.length)];
        if (off !== undefined) buf.writeUInt16BE([0, 1, 3, 0xffff, int(0x10000), buf.readUInt16BE(off + 2) + 4 * (int(3) - 1)][int(6)]! & 0xffff, off + 2);
        break;
      }
      default: { // well-formed attributes of random types, lengths and values, before or after the seed's
        const attrs: [number, Buffer][] = Array.from({ length: 1 + int(6) }, () => [types[int(types.length)]!, randomBytes(int(28))]);
        const random = handBuilt(BINDING_REQUEST, attrs, rnd() < 0.5 ? 'pw' : undefined);
        const body = rnd() < 0.5 ? [random.subarray(20), seed.subarray(20)] : [seed.subarray(20), random.subarray(20)];
        buf = Buffer.concat([seed.subarray(0, 20), ...body]);
        buf.writeUInt16BE(buf.length - 20, 2);
      }
    }
    try {
      const m = readEverything(buf);
      if (m) {
        accepted[kind]!++;
        if (!isStunFrame(buf)) outside.push(`${buf.toString('hex')}: decoded but not framed`);
        for (const off of attributeOffsets(buf)) {
          if (off + 4 + buf.readUInt16BE(off + 2) > buf.length) outside.push(`${buf.toString('hex')}: attribute at ${off} overruns`);
        }
      }
    } catch (e) {
      if (errors.length < 3) errors.push(`${kinds[kind]} ${buf.toString('hex')}: ${String(e)}`);
      else errors.length++;
    }
  }
  t.equal(errors.length, 0, 'nothing threw', { errors: errors.slice(0, 3) });
  t.strictSame(outside.slice(0, 3), [], 'whatever decodes is framed and has every attribute inside it');
  // The inputs reach both outcomes (the counts are fixed by the seed): garbage is rejected, and the getters
  // are run on thousands of accepted messages with hostile attribute values.
  t.same(accepted.map((n) => n > 0), [false, true, true, true, true, true], `accepted per kind: ${kinds.map((k, i) => `${k} ${accepted[i]}`).join(', ')}`);
  t.equal(accepted[5], N / kinds.length, 'well-formed random attributes are all accepted');
});
