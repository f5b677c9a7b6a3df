/**
 * STUN message codec for ICE.
 *
 * The Binding messages sent at every connectivity check and consent tick
 * (RFC 8445 §7, RFC 7675) and their answers are written and read here
 * directly on the bytes: through the `stun` package a check cost tens of
 * microseconds to build and several to verify, several times more than here
 * (bench/stun.ts measures both side by side), and consent alone sends one
 * per selected pair every few seconds. The `stun` package still encodes the
 * TURN requests (RFC 8656), which are few.
 *
 * Beyond encoding, the codec does what an ICE agent needs from received bytes:
 * - framing checks (RFC 8489 §6: top two bits zero, magic cookie, length a
 *   multiple of 4 that matches the datagram) and a TLV walk that keeps every
 *   attribute inside the message, before any attribute is read;
 * - MESSAGE-INTEGRITY and FINGERPRINT verified over the bytes as received
 *   (RFC 8489 §14.5, §14.7);
 * - attributes after MESSAGE-INTEGRITY ignored (RFC 8489 §14.5, §14.6), so
 *   that nothing appended to an authenticated message is believed;
 * - PRIORITY read as an unsigned 32-bit value, addresses in canonical text.
 */
import stun from 'stun';
import { createHash, randomFillSync, timingSafeEqual } from 'node:crypto';
import { isIPv4 } from 'node:net';
import { InvalidArgumentError } from '../errors.js';
import { canonicalIp } from '../transport/address.js';

export const MAGIC_COOKIE = 0x2112a442;
export const HEADER_LENGTH = 20;

/** Message types (method | class), RFC 8489 §5 and §18.2. */
export const BINDING_REQUEST = 0x0001;
export const BINDING_INDICATION = 0x0011;
export const BINDING_SUCCESS = 0x0101;
export const BINDING_ERROR = 0x0111;

/** Attribute types used by ICE (RFC 8489 §18.3, RFC 8445 §16.1). */
export const ATTR = {
  MAPPED_ADDRESS: 0x0001,
  USERNAME: 0x0006,
  MESSAGE_INTEGRITY: 0x0008,
  ERROR_CODE: 0x0009,
  UNKNOWN_ATTRIBUTES: 0x000a,
  REALM: 0x0014,
  NONCE: 0x0015,
  MESSAGE_INTEGRITY_SHA256: 0x001c,
  PASSWORD_ALGORITHM: 0x001d,
  USERHASH: 0x001e,
  XOR_MAPPED_ADDRESS: 0x0020,
  PRIORITY: 0x0024,
  USE_CANDIDATE: 0x0025,
  SOFTWARE: 0x8022,
  FINGERPRINT: 0x8028,
  ICE_CONTROLLED: 0x8029,
  ICE_CONTROLLING: 0x802a,
} as const;

/** FINGERPRINT is the CRC-32 XOR this value ("STUN"), RFC 8489 §14.7. */
const FINGERPRINT_XOR = 0x5354554e;

export type StunClass = 'request' | 'indication' | 'success' | 'error';

/** A decoded message: its header fields, and the raw bytes that the getters and verifiers read. */
export interface DecodedStun {
  type: number;
  method: number;
  cls: StunClass;
  transactionId: Buffer;
  raw: Buffer;
}

/** Class of a message type, RFC 8489 §5: bits C1 (0x100) and C0 (0x010). */
export function classOf(type: number): StunClass {
  switch (type & 0x0110) {
    case 0x0000: return 'request';
    case 0x0010: return 'indication';
    case 0x0100: return 'success';
    default: return 'error';
  }
}

/** Method of a message type: the type with the class bits masked out. */
export function methodOf(type: number): number {
  return ((type & 0x3e00) >> 2) | ((type & 0x00e0) >> 1) | (type & 0x000f);
}

/**
 * RFC 8489 §6 framing: at least a header, first two bits zero, the magic
 * cookie, a body length that is a multiple of 4 and equals what follows the header.
 */
export function isStunFrame(buf: Buffer): boolean {
  return (
    buf.length >= HEADER_LENGTH &&
    (buf[0]! & 0xc0) === 0 &&
    buf.readUInt32BE(4) === MAGIC_COOKIE &&
    (buf.length & 3) === 0 &&
    buf.readUInt16BE(2) === buf.length - HEADER_LENGTH
  );
}

/**
 * Decodes a framed STUN message; undefined for anything malformed. Never
 * throws: after framing and the TLV walk every attribute lies inside the
 * message, and the getters read values from the raw bytes only when asked.
 */
export function decodeStun(buf: Buffer): DecodedStun | undefined {
  if (!isStunFrame(buf) || !attributesWellFormed(buf)) return undefined;
  const type = buf.readUInt16BE(0);
  return { type, method: methodOf(type), cls: classOf(type), transactionId: buf.subarray(8, 20), raw: buf };
}

/** Walks the TLV attributes: every length must stay inside the message. */
function attributesWellFormed(buf: Buffer): boolean {
  let off = HEADER_LENGTH;
  while (off < buf.length) {
    if (off + 4 > buf.length) return false;
    const len = buf.readUInt16BE(off + 2);
    off += 4 + ((len + 3) & ~3);
    if (off > buf.length) return false;
  }
  return true;
}

/*
 * Which attributes count, RFC 8489 §14.5 and §14.6: after MESSAGE-INTEGRITY
 * only MESSAGE-INTEGRITY-SHA256 and FINGERPRINT, after
 * MESSAGE-INTEGRITY-SHA256 only FINGERPRINT. Anything else there is outside
 * the integrity check, so an on-path attacker could have appended it (say
 * USE-CANDIDATE to an authenticated check): it is ignored.
 */
const BEFORE_MI = 0;
const AFTER_MI = 1;
const AFTER_MI_SHA256 = 2;

/** The phase of the walk after an attribute of `type` in `phase`, or -1 if that attribute is ignored. */
function advance(phase: number, type: number): number {
  if (type === ATTR.FINGERPRINT) return phase;
  if (type === ATTR.MESSAGE_INTEGRITY_SHA256) return phase === AFTER_MI_SHA256 ? -1 : AFTER_MI_SHA256;
  if (phase !== BEFORE_MI) return -1;
  return type === ATTR.MESSAGE_INTEGRITY ? AFTER_MI : BEFORE_MI;
}

/** Offset of the first attribute of `type` in a framed message that counts (see `advance`), or -1. */
export function findAttribute(buf: Buffer, type: number): number {
  let phase = BEFORE_MI;
  for (let off = HEADER_LENGTH; off + 4 <= buf.length; off += 4 + ((buf.readUInt16BE(off + 2) + 3) & ~3)) {
    const t = buf.readUInt16BE(off);
    const next = advance(phase, t);
    if (next < 0) continue;
    if (t === type) return off;
    phase = next;
  }
  return -1;
}

export type CheckResult = 'ok' | 'missing' | 'bad';

/** Scratch for the MESSAGE-INTEGRITY a message should carry (verifyIntegrity is synchronous). */
const EXPECTED_MAC = Buffer.alloc(20);

/**
 * MESSAGE-INTEGRITY over the received bytes, RFC 8489 §14.5: HMAC-SHA1 of the
 * message up to the attribute, with the header length adjusted to end just
 * after MESSAGE-INTEGRITY (so a trailing FINGERPRINT is excluded).
 */
export function verifyIntegrity(buf: Buffer, key: Buffer | string): CheckResult {
  const off = findAttribute(buf, ATTR.MESSAGE_INTEGRITY);
  if (off < 0) return 'missing';
  if (buf.readUInt16BE(off + 2) !== 20 || off + 24 > buf.length) return 'bad';
  new IntegrityKey(key).sign(buf, off, EXPECTED_MAC, 0);
  return timingSafeEqual(EXPECTED_MAC, buf.subarray(off + 4, off + 24)) ? 'ok' : 'bad';
}

/** FINGERPRINT, RFC 8489 §14.7: CRC-32 of everything before it, XOR 0x5354554e; must be last. */
export function verifyFingerprint(buf: Buffer): CheckResult {
  const off = findAttribute(buf, ATTR.FINGERPRINT);
  if (off < 0) return 'missing';
  if (off + 8 !== buf.length || buf.readUInt16BE(off + 2) !== 4) return 'bad';
  return buf.readUInt32BE(off + 4) === (crcTo(buf, off) ^ FINGERPRINT_XOR) >>> 0 ? 'ok' : 'bad';
}

const CRC_TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 (ISO 3309), as FINGERPRINT uses. */
export function crc32(buf: Uint8Array): number {
  return crcTo(buf, buf.length);
}

/** CRC-32 of buf[0, end): FINGERPRINT covers a prefix, and a subarray per message costs more than the CRC. */
function crcTo(buf: Uint8Array, end: number): number {
  let c = 0xffffffff;
  for (let i = 0; i < end; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

/** PRIORITY as an unsigned 32-bit number, or undefined. */
export function getPriority(m: DecodedStun): number | undefined {
  const off = findAttribute(m.raw, ATTR.PRIORITY);
  if (off < 0 || m.raw.readUInt16BE(off + 2) !== 4) return undefined;
  return m.raw.readUInt32BE(off + 4);
}

/** A 64-bit tie-breaker attribute (ICE-CONTROLLING/ICE-CONTROLLED) as a bigint, or undefined. */
export function getTieBreaker(m: DecodedStun, type: number): bigint | undefined {
  const off = findAttribute(m.raw, type);
  if (off < 0 || m.raw.readUInt16BE(off + 2) !== 8) return undefined;
  return m.raw.readBigUInt64BE(off + 4);
}

export function hasAttribute(m: DecodedStun, type: number): boolean {
  return findAttribute(m.raw, type) >= 0;
}

export function getUsername(m: DecodedStun): string | undefined {
  const off = findAttribute(m.raw, ATTR.USERNAME);
  if (off < 0) return undefined;
  return m.raw.toString('utf8', off + 4, off + 4 + m.raw.readUInt16BE(off + 2));
}

export function getXorMappedAddress(m: DecodedStun): { address: string; port: number } | undefined {
  const a = getXorAddressAttribute(m, ATTR.XOR_MAPPED_ADDRESS);
  return a && { address: a.address, port: a.port };
}

export function getErrorCode(m: DecodedStun): { code: number; reason: string } | undefined {
  const off = findAttribute(m.raw, ATTR.ERROR_CODE);
  if (off < 0) return undefined;
  const len = m.raw.readUInt16BE(off + 2);
  if (len < 4) return undefined;
  const code = (m.raw[off + 6]! & 0x07) * 100 + m.raw[off + 7]!;
  return { code, reason: m.raw.toString('utf8', off + 8, off + 4 + len) };
}

/**
 * The comprehension-required attributes an ICE Binding request may carry
 * (RFC 8489 §18.3, RFC 8445 §16.1): with any other in 0x0000–0x7FFF a request
 * is answered 420 (RFC 8489 §6.3.1). Comprehension-optional attributes
 * (0x8000–0xFFFF) are never unknown.
 */
export const ICE_KNOWN_ATTRIBUTES: ReadonlySet<number> = new Set([
  ATTR.MAPPED_ADDRESS,
  ATTR.USERNAME,
  ATTR.MESSAGE_INTEGRITY,
  ATTR.ERROR_CODE,
  ATTR.REALM,
  ATTR.NONCE,
  ATTR.MESSAGE_INTEGRITY_SHA256,
  ATTR.PASSWORD_ALGORITHM,
  ATTR.USERHASH,
  ATTR.XOR_MAPPED_ADDRESS,
  ATTR.PRIORITY,
  ATTR.USE_CANDIDATE,
]);

/**
 * The comprehension-required attribute types (0x0000–0x7FFF, RFC 8489 §14)
 * in `m` that are not in `known`, each once, in order of appearance: what a
 * 420 response lists in UNKNOWN-ATTRIBUTES (§6.3.1, §14.9). Attributes after
 * MESSAGE-INTEGRITY are ignored, not unknown (§14.5).
 */
export function unknownComprehensionRequired(m: DecodedStun, known: ReadonlySet<number>): number[] {
  const buf = m.raw;
  const unknown: number[] = [];
  let phase = BEFORE_MI;
  for (let off = HEADER_LENGTH; off + 4 <= buf.length; off += 4 + ((buf.readUInt16BE(off + 2) + 3) & ~3)) {
    const t = buf.readUInt16BE(off);
    const next = advance(phase, t);
    if (next < 0) continue;
    phase = next;
    if (t < 0x8000 && !known.has(t) && !unknown.includes(t)) unknown.push(t);
  }
  return unknown;
}

/*
 * Transaction ids are cut from a pool that the CSPRNG fills 256 ids at a
 * time: RFC 8489 §6 wants them uniformly random (an off-path attacker must
 * not guess them), and a randomBytes(12) call costs about 6 µs here, more
 * than building the check itself; a refill costs about as much as one call.
 */
const TID_POOL = Buffer.allocUnsafeSlow(12 * 256);
let tidPoolOffset = TID_POOL.length;

export function newTransactionId(): Buffer {
  if (tidPoolOffset === TID_POOL.length) {
    randomFillSync(TID_POOL);
    tidPoolOffset = 0;
  }
  const id = Buffer.allocUnsafe(12);
  TID_POOL.copy(id, 0, tidPoolOffset, tidPoolOffset + 12);
  tidPoolOffset += 12;
  return id;
}

/* ------------------------------------------------------------------------ *
 * Encoding Binding messages, without the `stun` package.
 * ------------------------------------------------------------------------ */

/*
 * SHA-1 (FIPS 180-4 §6.1) for MESSAGE-INTEGRITY, in JavaScript: a createHmac
 * call is mostly fixed cost (the native call, the key setup), more than the
 * three SHA-1 blocks of a check's HMAC once the key's pad blocks are hashed
 * (RFC 2104 §4); bench/stun.ts measures verifyIntegrity at about 1.7× faster
 * than createHmac, and a template skips the pad blocks too. The spec checks
 * it against createHmac. Scratch state is module-wide: every use is synchronous.
 */
const SHA1_IV = Int32Array.of(0x67452301, 0xefcdab89, 0x98badcfe, 0x10325476, 0xc3d2e1f0);
const W = new Int32Array(80);
const STATE = new Int32Array(5);
const BLOCKS = new Uint8Array(128);

/** Loads the 64-byte block at src[off] into W[0..15], big-endian. */
function loadBlock(src: Uint8Array, off: number): void {
  for (let i = 0; i < 16; i++, off += 4) W[i] = (src[off]! << 24) | (src[off + 1]! << 16) | (src[off + 2]! << 8) | src[off + 3]!;
}

/** One SHA-1 compression of the block in W[0..15] into `h`. */
function compress(h: Int32Array): void {
  for (let i = 16; i < 80; i++) {
    const x = W[i - 3]! ^ W[i - 8]! ^ W[i - 14]! ^ W[i - 16]!;
    W[i] = (x << 1) | (x >>> 31);
  }
  let a = h[0]!, b = h[1]!, c = h[2]!, d = h[3]!, e = h[4]!;
  let i = 0;
  for (; i < 20; i++) {
    const t = (((a << 5) | (a >>> 27)) + ((b & c) | (~b & d)) + e + 0x5a827999 + W[i]!) | 0;
    e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = t;
  }
  for (; i < 40; i++) {
    const t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + 0x6ed9eba1 + W[i]!) | 0;
    e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = t;
  }
  for (; i < 60; i++) {
    const t = (((a << 5) | (a >>> 27)) + ((b & c) | (b & d) | (c & d)) + e + 0x8f1bbcdc + W[i]!) | 0;
    e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = t;
  }
  for (; i < 80; i++) {
    const t = (((a << 5) | (a >>> 27)) + (b ^ c ^ d) + e + 0xca62c1d6 + W[i]!) | 0;
    e = d; d = c; c = (b << 30) | (b >>> 2); b = a; a = t;
  }
  h[0] = (h[0]! + a) | 0;
  h[1] = (h[1]! + b) | 0;
  h[2] = (h[2]! + c) | 0;
  h[3] = (h[3]! + d) | 0;
  h[4] = (h[4]! + e) | 0;
}

/**
 * A MESSAGE-INTEGRITY key, RFC 8489 §14.5: HMAC-SHA1 (RFC 2104) keyed with
 * the password's UTF-8 bytes for short-term credentials (§9.1.1; OpaqueString
 * leaves the ASCII ice-pwd of RFC 8839 §5.4 unchanged), or a long-term key
 * given as bytes. The key's inner and outer pad blocks are hashed once.
 */
class IntegrityKey {
  readonly #inner = new Int32Array(5);
  readonly #outer = new Int32Array(5);

  constructor(key: Buffer | string) {
    let k: Uint8Array = typeof key === 'string' ? Buffer.from(key, 'utf8') : key;
    // RFC 2104 §2: a key longer than the block is hashed first (an ice-pwd may have 256 characters).
    if (k.length > 64) k = createHash('sha1').update(k).digest();
    padState(this.#inner, k, 0x36);
    padState(this.#outer, k, 0x5c);
  }

  /**
   * Writes to out[at, at + 20) the MESSAGE-INTEGRITY value of a message whose
   * MESSAGE-INTEGRITY attribute starts at `miOff`: the HMAC of msg[0, miOff)
   * with the header length read as if the message ended right after
   * MESSAGE-INTEGRITY (RFC 8489 §14.5), whatever the length field holds.
   */
  sign(msg: Uint8Array, miOff: number, out: Uint8Array, at: number): void {
    const h = STATE;
    h.set(this.#inner);
    // The first word of the message: the type, and the adjusted length.
    const first = (msg[0]! << 24) | (msg[1]! << 16) | (miOff + 24 - HEADER_LENGTH);
    let off = 0;
    for (; off + 64 <= miOff; off += 64) {
      loadBlock(msg, off);
      if (off === 0) W[0] = first;
      compress(h);
    }
    // FIPS 180-4 §5.1.1 padding: the rest, 0x80, zeros, and the length in bits of the pad block and
    // the message, in the last 8 bytes (the high 32 bits are zero: a STUN message is under 64 KiB).
    const rest = miOff - off;
    const blocks = rest < 56 ? 1 : 2;
    BLOCKS.fill(0, 0, blocks * 64);
    for (let i = 0; i < rest; i++) BLOCKS[i] = msg[off + i]!;
    BLOCKS[rest] = 0x80;
    const bits = (64 + miOff) * 8;
    const end = blocks * 64;
    BLOCKS[end - 4] = bits >>> 24;
    BLOCKS[end - 3] = (bits >>> 16) & 0xff;
    BLOCKS[end - 2] = (bits >>> 8) & 0xff;
    BLOCKS[end - 1] = bits & 0xff;
    loadBlock(BLOCKS, 0);
    if (off === 0) W[0] = first;
    compress(h);
    if (blocks === 2) {
      loadBlock(BLOCKS, 64);
      compress(h);
    }
    // The outer hash: the opad block, then the 20-byte inner digest, padded into one block.
    W.set(h);
    W[5] = 0x80000000;
    W.fill(0, 6, 15);
    W[15] = (64 + 20) * 8;
    h.set(this.#outer);
    compress(h);
    for (let i = 0; i < 5; i++, at += 4) {
      const v = h[i]!;
      out[at] = v >>> 24;
      out[at + 1] = (v >>> 16) & 0xff;
      out[at + 2] = (v >>> 8) & 0xff;
      out[at + 3] = v & 0xff;
    }
  }
}

/** `h` := the SHA-1 state after the block key XOR pad (RFC 2104 §2, ipad 0x36, opad 0x5c). */
function padState(h: Int32Array, key: Uint8Array, pad: number): void {
  BLOCKS.fill(pad, 0, 64);
  for (let i = 0; i < key.length; i++) BLOCKS[i]! ^= key[i]!;
  h.set(SHA1_IV);
  loadBlock(BLOCKS, 0);
  compress(h);
}

const pad4 = (n: number) => (n + 3) & ~3;

/** Writes the header's type, magic cookie and transaction id (the length comes with `seal`). */
function putHeader(out: Buffer, type: number, transactionId: Buffer): void {
  if (transactionId.length !== 12) throw new InvalidArgumentError('transactionId', 'must be 12 bytes (RFC 8489 §5)');
  out.writeUInt16BE(type, 0);
  out.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(out, 8);
}

/** Writes an attribute's type and length at `off`; returns the offset of its value. */
function putAttribute(out: Buffer, off: number, type: number, length: number): number {
  out.writeUInt16BE(type, off);
  out.writeUInt16BE(length, off + 2);
  return off + 4;
}

/**
 * Completes a message laid out as header, attributes, MESSAGE-INTEGRITY (if
 * `key`) and FINGERPRINT, exactly `out.length` bytes, with type, cookie,
 * transaction id and the other attributes written: the header length, then
 * MESSAGE-INTEGRITY (RFC 8489 §14.5), then FINGERPRINT over everything
 * before it (§14.7).
 */
function seal(out: Buffer, key: IntegrityKey | undefined): Buffer {
  const fpOff = out.length - 8;
  if (key) {
    const miOff = fpOff - 24;
    putAttribute(out, miOff, ATTR.MESSAGE_INTEGRITY, 20);
    key.sign(out, miOff, out, miOff + 4);
  }
  out.writeUInt16BE(out.length - HEADER_LENGTH, 2);
  putAttribute(out, fpOff, ATTR.FINGERPRINT, 4);
  out.writeUInt32BE((crcTo(out, fpOff) ^ FINGERPRINT_XOR) >>> 0, fpOff + 4);
  return out;
}

export interface BindingRequestFields {
  transactionId: Buffer;
  username: string;
  password: string;
  priority: number;
  controlling: boolean;
  tieBreaker: bigint;
  useCandidate: boolean;
}

/**
 * The longest USERNAME accepted, as the `stun` package had it: two 256-character
 * ufrags and the colon (RFC 8839 §5.4, RFC 8445 §7.2.2), over the 509 bytes of RFC 8489 §14.3.
 */
const MAX_USERNAME_BYTES = 513;

/**
 * The checks of one candidate pair, RFC 8445 §7.1.1: USERNAME, PRIORITY,
 * ICE-CONTROLLING or ICE-CONTROLLED, USE-CANDIDATE if set, MESSAGE-INTEGRITY,
 * FINGERPRINT. Everything but the transaction id is the same from one check
 * (or consent tick) of the pair to the next, so the attribute bytes and the
 * key's HMAC pad blocks are computed once; `build` copies them, writes the
 * transaction id, and computes MESSAGE-INTEGRITY and FINGERPRINT.
 */
export class BindingRequestTemplate {
  readonly #bytes: Buffer;
  readonly #key: IntegrityKey;

  constructor(f: Omit<BindingRequestFields, 'transactionId'>) {
    const username = usernameBytes(f.username);
    // The header, MESSAGE-INTEGRITY and FINGERPRINT are written by `build`.
    this.#bytes = Buffer.alloc(requestLength(username, f.useCandidate));
    putRequestAttributes(this.#bytes, username, f);
    this.#key = new IntegrityKey(f.password);
  }

  /** The check with this transaction id, in a new Buffer (kept by the caller for retransmissions, RFC 8489 §6.2.1). */
  build(transactionId: Buffer): Buffer {
    const out = Buffer.allocUnsafe(this.#bytes.length);
    this.#bytes.copy(out);
    putHeader(out, BINDING_REQUEST, transactionId);
    return seal(out, this.#key);
  }
}

/**
 * A connectivity check, RFC 8445 §7.1.1: USERNAME, PRIORITY, role, USE-CANDIDATE, MESSAGE-INTEGRITY, FINGERPRINT.
 * Written straight into the message rather than through a BindingRequestTemplate, whose copy would cost more than
 * it saves for a single message.
 */
export function encodeBindingRequest(f: BindingRequestFields): Buffer {
  const username = usernameBytes(f.username);
  const out = Buffer.allocUnsafe(requestLength(username, f.useCandidate));
  putHeader(out, BINDING_REQUEST, f.transactionId);
  putRequestAttributes(out, username, f);
  return seal(out, new IntegrityKey(f.password));
}

function usernameBytes(username: string): Buffer {
  const bytes = Buffer.from(username, 'utf8');
  if (bytes.length > MAX_USERNAME_BYTES) throw new InvalidArgumentError('username', `longer than ${MAX_USERNAME_BYTES} bytes`);
  return bytes;
}

function requestLength(username: Buffer, useCandidate: boolean): number {
  return HEADER_LENGTH + 4 + pad4(username.length) + 8 + 12 + (useCandidate ? 4 : 0) + 24 + 8;
}

/** Writes the attributes of a check that precede MESSAGE-INTEGRITY, in RFC 8445 §7.1.1 order, padding zeroed (RFC 8489 §14). */
function putRequestAttributes(out: Buffer, username: Buffer, f: Omit<BindingRequestFields, 'transactionId'>): void {
  let off = putAttribute(out, HEADER_LENGTH, ATTR.USERNAME, username.length);
  username.copy(out, off);
  out.fill(0, off + username.length, off + pad4(username.length));
  off = putAttribute(out, off + pad4(username.length), ATTR.PRIORITY, 4);
  out.writeUInt32BE(f.priority >>> 0, off);
  off = putAttribute(out, off + 4, f.controlling ? ATTR.ICE_CONTROLLING : ATTR.ICE_CONTROLLED, 8);
  out.writeBigUInt64BE(f.tieBreaker, off);
  if (f.useCandidate) putAttribute(out, off + 8, ATTR.USE_CANDIDATE, 0);
}

/** Success response to a check, RFC 8445 §7.3.1: XOR-MAPPED-ADDRESS of the source, integrity with the local password. */
export function encodeBindingSuccess(transactionId: Buffer, address: string, port: number, password: string): Buffer {
  const ip = ipBytes(address);
  if (!ip) throw new InvalidArgumentError('address', `not an IP address: ${address}`);
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new InvalidArgumentError('port', `not a port: ${port}`);
  const out = Buffer.allocUnsafe(HEADER_LENGTH + 8 + ip.length + 24 + 8);
  putHeader(out, BINDING_SUCCESS, transactionId);
  // XOR-MAPPED-ADDRESS, RFC 8489 §14.2: the port XOR the cookie's top half, the address XOR the
  // cookie (IPv4) or the cookie and the transaction id (IPv6), which are bytes 4–19 of the header.
  const v = putAttribute(out, HEADER_LENGTH, ATTR.XOR_MAPPED_ADDRESS, 4 + ip.length);
  out[v] = 0;
  out[v + 1] = ip.length === 4 ? 0x01 : 0x02;
  out.writeUInt16BE(port ^ (MAGIC_COOKIE >>> 16), v + 2);
  for (let i = 0; i < ip.length; i++) out[v + 4 + i] = ip[i]! ^ out[4 + i]!;
  return seal(out, new IntegrityKey(password));
}

/** The 4 or 16 bytes of an IP address, or undefined if `address` is not one. */
function ipBytes(address: string): Uint8Array | undefined {
  if (isIPv4(address)) return Uint8Array.from(address.split('.'), Number);
  const ip = canonicalIp(address);
  if (ip === undefined) return undefined;
  const bytes = new Uint8Array(16);
  // canonicalIp writes dotted decimal only in an IPv4-mapped address (RFC 5952 §5), and at most one "::".
  if (ip.includes('.')) {
    bytes[10] = bytes[11] = 0xff;
    bytes.set(ip.slice(ip.lastIndexOf(':') + 1).split('.').map(Number), 12);
    return bytes;
  }
  const [head, tail] = ip.split('::') as [string, string | undefined];
  const front = head === '' ? [] : head.split(':');
  const back = tail === undefined || tail === '' ? [] : tail.split(':');
  const groups = tail === undefined ? front : [...front, ...new Array<string>(8 - front.length - back.length).fill('0'), ...back];
  groups.forEach((g, i) => {
    const n = parseInt(g, 16);
    bytes[2 * i] = n >> 8;
    bytes[2 * i + 1] = n & 0xff;
  });
  return bytes;
}

/**
 * Error response. `password` is given only when the request was authenticated
 * (487 Role Conflict); 400 and 401 cannot carry MESSAGE-INTEGRITY (RFC 8489 §9.1.3).
 */
export function encodeBindingError(transactionId: Buffer, code: number, reason: string, password?: string): Buffer {
  return encodeError(transactionId, code, reason, undefined, password);
}

/**
 * A 420 (Unknown Attribute) response listing the comprehension-required
 * attributes the request carried that we do not understand, RFC 8489 §6.3.1
 * and §14.9; with MESSAGE-INTEGRITY when the request was authenticated.
 */
export function encodeUnknownAttributes(transactionId: Buffer, types: number[], password?: string): Buffer {
  return encodeError(transactionId, 420, 'Unknown Attribute', types, password);
}

function encodeError(transactionId: Buffer, code: number, reason: string, unknown: number[] | undefined, password: string | undefined): Buffer {
  // RFC 8489 §14.8: class 3–6, number 0–99, a reason phrase of fewer than 128 characters.
  if (!Number.isInteger(code) || code < 300 || code > 699) throw new InvalidArgumentError('code', `not an error code: ${code}`);
  if (reason.length >= 128) throw new InvalidArgumentError('reason', 'longer than 127 characters');
  const text = Buffer.from(reason, 'utf8');
  const unknownLength = unknown ? 4 + pad4(2 * unknown.length) : 0;
  const out = Buffer.allocUnsafe(HEADER_LENGTH + 8 + pad4(text.length) + unknownLength + (password === undefined ? 0 : 24) + 8);
  putHeader(out, BINDING_ERROR, transactionId);
  const v = putAttribute(out, HEADER_LENGTH, ATTR.ERROR_CODE, 4 + text.length);
  out.writeUInt16BE(0, v);
  out[v + 2] = Math.floor(code / 100);
  out[v + 3] = code % 100;
  text.copy(out, v + 4);
  let off = v + 4 + pad4(text.length);
  out.fill(0, v + 4 + text.length, off);
  if (unknown) {
    // RFC 8489 §14.9: a list of 16-bit types, padded like any attribute (no longer by repeating one).
    const u = putAttribute(out, off, ATTR.UNKNOWN_ATTRIBUTES, 2 * unknown.length);
    unknown.forEach((t, i) => out.writeUInt16BE(t, u + 2 * i));
    out.fill(0, u + 2 * unknown.length, u + pad4(2 * unknown.length));
  }
  return seal(out, password === undefined ? undefined : new IntegrityKey(password));
}

/** Binding indication used as a keepalive, RFC 8445 §11 (FINGERPRINT only). */
export function encodeBindingIndication(): Buffer {
  const out = Buffer.allocUnsafe(HEADER_LENGTH + 8);
  putHeader(out, BINDING_INDICATION, newTransactionId());
  return seal(out, undefined);
}

/* ------------------------------------------------------------------------ *
 * TURN (RFC 8656) additions: methods, attributes, long-term credentials.
 * ------------------------------------------------------------------------ */

/** TURN methods, RFC 8656 §17 (Binding is 0x001). */
export const TURN_METHOD = {
  ALLOCATE: 0x003,
  REFRESH: 0x004,
  SEND: 0x006,
  DATA: 0x007,
  CREATE_PERMISSION: 0x008,
  CHANNEL_BIND: 0x009,
} as const;

/** TURN attributes, RFC 8656 §18. */
export const TURN_ATTR = {
  CHANNEL_NUMBER: 0x000c,
  LIFETIME: 0x000d,
  XOR_PEER_ADDRESS: 0x0012,
  DATA: 0x0013,
  XOR_RELAYED_ADDRESS: 0x0016,
  REQUESTED_ADDRESS_FAMILY: 0x0017,
  EVEN_PORT: 0x0018,
  REQUESTED_TRANSPORT: 0x0019,
  DONT_FRAGMENT: 0x001a,
  RESERVATION_TOKEN: 0x0022,
} as const;

/** IANA protocol number of UDP, the value of REQUESTED-TRANSPORT (RFC 8656 §18.7). */
export const PROTOCOL_UDP = 17;

/** Message type from method and class, RFC 8489 §5 (the inverse of methodOf/classOf). */
export function messageType(method: number, cls: StunClass): number {
  const c = cls === 'request' ? 0x000 : cls === 'indication' ? 0x010 : cls === 'success' ? 0x100 : 0x110;
  return ((method & 0xf80) << 2) | ((method & 0x070) << 1) | (method & 0x00f) | c;
}

/**
 * Long-term credential key, RFC 8489 §9.2.2: MD5(username ":" realm ":" password).
 * (OpaqueString/SASLprep is the identity for the ASCII credentials TURN servers use.)
 */
export function longTermKey(username: string, realm: string, password: string): Buffer {
  return createHash('md5').update(`${username}:${realm}:${password}`, 'utf8').digest();
}

export interface TransportAddressValue {
  address: string;
  port: number;
  family: 'IPv4' | 'IPv6';
}

/**
 * An XOR-…-ADDRESS attribute (XOR-MAPPED-ADDRESS, XOR-PEER-ADDRESS,
 * XOR-RELAYED-ADDRESS) decoded from the raw bytes, RFC 8489 §14.2: the port is
 * XORed with the top of the magic cookie, an IPv4 address with the cookie, an
 * IPv6 address with the cookie followed by the transaction id. Addresses come
 * back in canonical form (`canonicalIp`: RFC 5952, as inet_ntop prints them).
 */
export function getXorAddressAttribute(m: DecodedStun, type: number): TransportAddressValue | undefined {
  const buf = m.raw;
  const off = findAttribute(buf, type);
  if (off < 0) return undefined;
  const len = buf.readUInt16BE(off + 2);
  const v = off + 4;
  if (len < 8) return undefined;
  const family = buf[v + 1];
  const port = buf.readUInt16BE(v + 2) ^ (MAGIC_COOKIE >>> 16);
  if (family === 0x01 && len === 8) {
    const a = (buf.readUInt32BE(v + 4) ^ MAGIC_COOKIE) >>> 0;
    return { address: `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`, port, family: 'IPv4' };
  }
  if (family === 0x02 && len === 20) {
    // The mask, cookie then transaction id, is bytes 4–19 of the header.
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) {
      groups.push((((buf[v + 4 + i]! ^ buf[4 + i]!) << 8) | (buf[v + 5 + i]! ^ buf[5 + i]!)).toString(16));
    }
    // Eight hex groups are always an IPv6 address.
    return { address: canonicalIp(groups.join(':'))!, port, family: 'IPv6' };
  }
  return undefined;
}

/**
 * One spelling per IP address, so that addresses from the wire, from the
 * application and from the socket compare equal: `canonicalIp` (RFC 5952, as
 * inet_ntop prints them, which is what Node gives as a datagram's source).
 * Anything that is not an IP address comes back unchanged.
 */
export function normalizeAddress(address: string): string {
  return canonicalIp(address) ?? address;
}

/** An unsigned 32-bit attribute (LIFETIME, REQUESTED-TRANSPORT, CHANNEL-NUMBER ...), or undefined. */
export function getUint32Attribute(m: DecodedStun, type: number): number | undefined {
  const off = findAttribute(m.raw, type);
  if (off < 0 || m.raw.readUInt16BE(off + 2) !== 4) return undefined;
  return m.raw.readUInt32BE(off + 4);
}

/** The value bytes of an attribute (a view into the message), or undefined. */
export function getAttributeValue(m: DecodedStun, type: number): Buffer | undefined {
  const off = findAttribute(m.raw, type);
  if (off < 0) return undefined;
  return m.raw.subarray(off + 4, off + 4 + m.raw.readUInt16BE(off + 2));
}

/** LIFETIME in seconds, RFC 8656 §18.2. */
export function getLifetime(m: DecodedStun): number | undefined {
  return getUint32Attribute(m, TURN_ATTR.LIFETIME);
}

/** CHANNEL-NUMBER, RFC 8656 §18.1: the number is the top 16 bits (the rest is RFFU). */
export function getChannelNumber(m: DecodedStun): number | undefined {
  const v = getUint32Attribute(m, TURN_ATTR.CHANNEL_NUMBER);
  return v === undefined ? undefined : v >>> 16;
}

export function getRealm(m: DecodedStun): string | undefined {
  return getAttributeValue(m, ATTR.REALM)?.toString('utf8');
}

export function getNonce(m: DecodedStun): string | undefined {
  return getAttributeValue(m, ATTR.NONCE)?.toString('utf8');
}

/** DATA of a Data indication, RFC 8656 §18.4 (a view into the message). */
export function getData(m: DecodedStun): Buffer | undefined {
  return getAttributeValue(m, TURN_ATTR.DATA);
}

export function getXorRelayedAddress(m: DecodedStun): TransportAddressValue | undefined {
  return getXorAddressAttribute(m, TURN_ATTR.XOR_RELAYED_ADDRESS);
}

export function getXorPeerAddress(m: DecodedStun): TransportAddressValue | undefined {
  return getXorAddressAttribute(m, TURN_ATTR.XOR_PEER_ADDRESS);
}

/** Long-term credentials as sent on every request after the 401 challenge, RFC 8489 §9.2.4. */
export interface LongTermAuth {
  username: string;
  realm: string;
  nonce: string;
  /** longTermKey(username, realm, password). */
  key: Buffer;
}

/** The attributes a TURN request may carry (each optional), in the order they are encoded. */
export interface TurnRequestFields {
  /** REQUESTED-TRANSPORT protocol number (Allocate: PROTOCOL_UDP). */
  requestedTransport?: number;
  /** LIFETIME in seconds (Allocate, Refresh; 0 deallocates). */
  lifetime?: number;
  /** CHANNEL-NUMBER (ChannelBind). */
  channel?: number;
  /** XOR-PEER-ADDRESS (CreatePermission, ChannelBind). */
  peer?: { address: string; port: number };
  software?: string;
}

/**
 * A TURN request, RFC 8656: the method's attributes, then (after the 401
 * challenge) USERNAME, REALM, NONCE and MESSAGE-INTEGRITY keyed with the
 * long-term key (RFC 8489 §9.2.4). No FINGERPRINT: TURN does not need it to
 * demultiplex (the 5-tuple to the server says it is TURN traffic).
 */
export function encodeTurnRequest(method: number, transactionId: Buffer, f: TurnRequestFields, auth?: LongTermAuth): Buffer {
  const m = stun.createMessage(messageType(method, 'request'), transactionId);
  if (f.requestedTransport !== undefined) m.addAttribute(TURN_ATTR.REQUESTED_TRANSPORT, (f.requestedTransport << 24) >>> 0);
  if (f.lifetime !== undefined) m.addAttribute(TURN_ATTR.LIFETIME, f.lifetime >>> 0);
  if (f.channel !== undefined) m.addAttribute(TURN_ATTR.CHANNEL_NUMBER, (f.channel << 16) >>> 0);
  if (f.peer !== undefined) m.addAttribute(TURN_ATTR.XOR_PEER_ADDRESS, f.peer.address, f.peer.port);
  if (f.software !== undefined) m.addSoftware(f.software);
  if (auth !== undefined) {
    m.addUsername(auth.username);
    m.addAttribute(ATTR.REALM, auth.realm);
    m.addAttribute(ATTR.NONCE, auth.nonce);
    // `stun` hands the key to createHmac, which takes the 16-byte MD5 key as a Buffer.
    (m.addMessageIntegrity as unknown as (key: Buffer) => unknown).call(m, auth.key);
  }
  return m.toBuffer();
}

/** A Send indication, RFC 8656 §11.1: XOR-PEER-ADDRESS and DATA, no authentication. */
export function encodeSendIndication(transactionId: Buffer, peer: { address: string; port: number }, data: Buffer): Buffer {
  const m = stun.createMessage(messageType(TURN_METHOD.SEND, 'indication'), transactionId);
  m.addAttribute(TURN_ATTR.XOR_PEER_ADDRESS, peer.address, peer.port);
  m.addAttribute(TURN_ATTR.DATA, data);
  return m.toBuffer();
}
