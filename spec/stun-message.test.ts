import t from 'tap';
import { prng } from './helpers.js';
import {
  ATTR,
  BINDING_ERROR,
  BINDING_INDICATION,
  BINDING_REQUEST,
  BINDING_SUCCESS,
  classOf,
  crc32,
  decodeStun,
  encodeBindingError,
  encodeBindingIndication,
  encodeBindingRequest,
  encodeBindingSuccess,
  getErrorCode,
  getPriority,
  getTieBreaker,
  getUsername,
  getXorMappedAddress,
  hasAttribute,
  isStunFrame,
  methodOf,
  verifyFingerprint,
  verifyIntegrity,
  type DecodedStun,
} from '../lib/stun/message.js';
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
