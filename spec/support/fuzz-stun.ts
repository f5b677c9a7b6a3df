/**
 * Building blocks of the fuzz targets (spec/support/fuzz-targets.ts): STUN
 * messages and ChannelData written byte by byte — any type, any attributes,
 * MESSAGE-INTEGRITY and FINGERPRINT right or wrong — and the mutations that
 * turn valid input into hostile input (bit flips, truncation, lying
 * lengths, spliced bytes). They are written here with node:crypto and
 * node:zlib rather than with lib/stun, so that what the fuzzer feeds in does
 * not share code with what it tests.
 */
import fc from 'fast-check';
import { createHmac } from 'node:crypto';
import { crc32 } from 'node:zlib';

export const COOKIE = 0x2112a442;
const pad4 = (n: number) => (n + 3) & ~3;

/** Attribute types worth hitting more often than chance would: every one a getter or the core reads. */
export const KNOWN_TYPES = [
  0x0001, 0x0006, 0x0008, 0x0009, 0x000a, 0x000c, 0x000d, 0x0012, 0x0013, 0x0014, 0x0015, 0x0016, 0x0019,
  0x001c, 0x0020, 0x0024, 0x0025, 0x8022, 0x8028, 0x8029, 0x802a,
] as const;

export interface Attr {
  type: number;
  value: Uint8Array;
}

export interface StunSpec {
  type: number;
  tid: Uint8Array;
  attrs: Attr[];
  /** MESSAGE-INTEGRITY (RFC 8489 §14.5) with this key; `valid: false` flips a bit of the MAC. */
  integrity?: { key: Buffer; valid: boolean } | undefined;
  /** Attributes after MESSAGE-INTEGRITY (outside its protection), before FINGERPRINT. */
  after?: Attr[] | undefined;
  /** FINGERPRINT (RFC 8489 §14.7) last, right or with a bit flipped. */
  fingerprint?: 'good' | 'bad' | undefined;
}

function header(type: number, bodyLength: number, tid: Uint8Array): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(type & 0xffff, 0);
  h.writeUInt16BE(bodyLength, 2);
  h.writeUInt32BE(COOKIE, 4);
  Buffer.from(tid).copy(h, 8, 0, 12);
  return h;
}

export function encodeAttr(type: number, value: Uint8Array): Buffer {
  const out = Buffer.alloc(4 + pad4(value.length));
  out.writeUInt16BE(type, 0);
  out.writeUInt16BE(value.length, 2);
  Buffer.from(value).copy(out, 4);
  return out;
}

/** A STUN message as the spec says, framed right (header length = body length); mutate it to break that. */
export function buildStun(s: StunSpec): Buffer {
  let body = Buffer.concat(s.attrs.map((a) => encodeAttr(a.type, a.value)));
  if (s.integrity) {
    // The HMAC covers the header with the length as if the message ended after MESSAGE-INTEGRITY.
    const mac = createHmac('sha1', s.integrity.key).update(header(s.type, body.length + 24, s.tid)).update(body).digest();
    if (!s.integrity.valid) mac[0]! ^= 1;
    body = Buffer.concat([body, encodeAttr(0x0008, mac), ...(s.after ?? []).map((a) => encodeAttr(a.type, a.value))]);
  }
  if (s.fingerprint) {
    const before = Buffer.concat([header(s.type, body.length + 8, s.tid), body]);
    const fp = Buffer.alloc(4);
    fp.writeUInt32BE((crc32(before) ^ 0x5354554e ^ (s.fingerprint === 'bad' ? 1 : 0)) >>> 0);
    return Buffer.concat([before, encodeAttr(0x8028, fp)]);
  }
  return Buffer.concat([header(s.type, body.length, s.tid), body]);
}

/** The value of an XOR-…-ADDRESS attribute (RFC 8489 §14.2) for raw IP bytes (4 or 16). */
export function xorAddress(ip: Uint8Array, port: number, tid: Uint8Array): Buffer {
  const v = Buffer.alloc(4 + ip.length);
  v[1] = ip.length === 4 ? 0x01 : 0x02;
  v.writeUInt16BE((port ^ (COOKIE >>> 16)) & 0xffff, 2);
  const mask = Buffer.concat([Buffer.from([0x21, 0x12, 0xa4, 0x42]), Buffer.from(tid)]);
  for (let i = 0; i < ip.length; i++) v[4 + i] = ip[i]! ^ mask[i]!;
  return v;
}

/** The 4 bytes of a dotted quad. */
export function ipv4Bytes(ip: string): Uint8Array {
  return Uint8Array.from(ip.split('.'), Number);
}

/** A ChannelData message (RFC 8656 §12.4), padded or not; `length` lies about the data length when given. */
export function buildChannelData(channel: number, data: Uint8Array, pad: boolean, length = data.length): Buffer {
  const out = Buffer.alloc(4 + (pad ? pad4(data.length) : data.length));
  out.writeUInt16BE(channel & 0xffff, 0);
  out.writeUInt16BE(length & 0xffff, 2);
  Buffer.from(data).copy(out, 4);
  return out;
}

/* ------------------------------------------------------------------ *
 * Arbitraries
 * ------------------------------------------------------------------ */

export const bytes = (maxLength: number) => fc.uint8Array({ maxLength });
export const tidArb = fc.uint8Array({ minLength: 12, maxLength: 12 });
export const u16 = fc.integer({ min: 0, max: 0xffff });
export const garbageArb = bytes(200).map((b) => Buffer.from(b));

/** An attribute type: one the code reads, or any 16-bit value. */
export const attrTypeArb = fc.oneof(fc.constantFrom(...KNOWN_TYPES), u16);

/** An attribute value: random, or of the lengths the getters look for (4, 8, 20, and XOR addresses of both families). */
export const attrValueArb = fc.oneof(
  bytes(40),
  fc.uint8Array({ minLength: 4, maxLength: 4 }),
  fc.uint8Array({ minLength: 8, maxLength: 8 }),
  fc.uint8Array({ minLength: 20, maxLength: 20 }),
  fc.tuple(fc.constantFrom(1, 2, 3), u16, fc.uint8Array({ minLength: 16, maxLength: 16 })).map(([family, port, ip]) => {
    const v = Buffer.alloc(family === 1 ? 8 : 20);
    v[1] = family;
    v.writeUInt16BE(port, 2);
    Buffer.from(ip).copy(v, 4);
    return v;
  }),
);

export const attrArb: fc.Arbitrary<Attr> = fc.record({ type: attrTypeArb, value: attrValueArb });

/** A message type: the Binding and TURN ones, or any 14-bit type. */
export const stunTypeArb = fc.oneof(
  fc.constantFrom(0x0001, 0x0011, 0x0101, 0x0111, 0x0003, 0x0103, 0x0113, 0x0004, 0x0104, 0x0114, 0x0017, 0x0008, 0x0108, 0x0009, 0x0109),
  fc.integer({ min: 0, max: 0x3fff }),
);

export const keyArb = fc.oneof(fc.constant(Buffer.from('key')), bytes(70).map((b) => Buffer.from(b)));

export const stunSpecArb: fc.Arbitrary<StunSpec> = fc.record({
  type: stunTypeArb,
  tid: tidArb,
  attrs: fc.array(attrArb, { maxLength: 8 }),
  integrity: fc.option(fc.record({ key: keyArb, valid: fc.boolean() }), { nil: undefined }),
  fingerprint: fc.option(fc.constantFrom('good' as const, 'bad' as const), { nil: undefined }),
});

/** One edit of a datagram. Positions are taken modulo the length, so that any edit applies to any datagram. */
export type Mutation =
  | { op: 'flip'; at: number; bit: number }
  | { op: 'set'; at: number; value: number }
  | { op: 'truncate'; at: number }
  | { op: 'lie16'; at: number; value: number }
  | { op: 'headerLength'; value: number }
  | { op: 'insert'; at: number; data: Uint8Array }
  | { op: 'append'; data: Uint8Array };

export const mutationArb: fc.Arbitrary<Mutation> = fc.oneof(
  fc.record({ op: fc.constant('flip' as const), at: fc.nat(), bit: fc.integer({ min: 0, max: 7 }) }),
  fc.record({ op: fc.constant('set' as const), at: fc.nat(), value: fc.integer({ min: 0, max: 255 }) }),
  fc.record({ op: fc.constant('truncate' as const), at: fc.nat() }),
  // A 16-bit field (an attribute length, usually) at an even offset past the header.
  fc.record({ op: fc.constant('lie16' as const), at: fc.nat(), value: u16 }),
  fc.record({ op: fc.constant('headerLength' as const), value: u16 }),
  fc.record({ op: fc.constant('insert' as const), at: fc.nat(), data: fc.uint8Array({ minLength: 1, maxLength: 8 }) }),
  fc.record({ op: fc.constant('append' as const), data: fc.uint8Array({ minLength: 1, maxLength: 24 }) }),
);

export const mutationsArb = fc.array(mutationArb, { minLength: 1, maxLength: 3 });

export function mutate(input: Buffer, mutations: readonly Mutation[]): Buffer {
  let b = Buffer.from(input);
  for (const m of mutations) {
    const n = b.length;
    switch (m.op) {
      case 'flip':
        if (n > 0) b[m.at % n]! ^= 1 << m.bit;
        break;
      case 'set':
        if (n > 0) b[m.at % n] = m.value;
        break;
      case 'truncate':
        b = b.subarray(0, m.at % (n + 1));
        break;
      case 'lie16':
        if (n >= 22) b.writeUInt16BE(m.value, 20 + ((m.at % ((n - 20) >> 1)) << 1));
        break;
      case 'headerLength':
        if (n >= 4) b.writeUInt16BE(m.value, 2);
        break;
      case 'insert': {
        const at = m.at % (n + 1);
        b = Buffer.concat([b.subarray(0, at), Buffer.from(m.data), b.subarray(at)]);
        break;
      }
      case 'append':
        b = Buffer.concat([b, Buffer.from(m.data)]);
        break;
    }
  }
  return b;
}

/** Hostile bytes: garbage, a message from the generator, or one mutated. */
export const hostileStunArb: fc.Arbitrary<Buffer> = fc.oneof(
  garbageArb,
  stunSpecArb.map(buildStun),
  fc.tuple(stunSpecArb, mutationsArb).map(([s, m]) => mutate(buildStun(s), m)),
);
