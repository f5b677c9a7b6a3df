/**
 * MESSAGE-INTEGRITY keys (RFC 8489 §14.5): HMAC-SHA1 (RFC 2104) over a STUN
 * message, with SHA-1 in JavaScript.
 */
import { createHash } from 'node:crypto';

export const HEADER_LENGTH = 20;

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
 * The key of the last password seen. An answered check verifies the
 * request with the local password and signs the response with the same one:
 * the second key is this one. One entry, so nothing grows per session; a
 * server of many sessions misses it at nearly every request, so a miss
 * rehashes the pad blocks in place (no objects, and an ASCII password, as
 * every ice-pwd is, is read without a Buffer).
 */
let lastPassword: string | undefined;
let lastKey: IntegrityKey | undefined;

/** The IntegrityKey of a short-term credential's password, valid until the next call (use it at once). */
export function integrityKey(password: string): IntegrityKey {
  if (lastKey === undefined) lastKey = new IntegrityKey(password);
  else if (password !== lastPassword) lastKey.rekey(password);
  lastPassword = password;
  return lastKey;
}

/**
 * A MESSAGE-INTEGRITY key, RFC 8489 §14.5: HMAC-SHA1 (RFC 2104) keyed with
 * the password's UTF-8 bytes for short-term credentials (§9.1.1; OpaqueString
 * leaves the ASCII ice-pwd of RFC 8839 §5.4 unchanged), or a long-term key
 * given as bytes. The key's inner and outer pad blocks are hashed once.
 */
export class IntegrityKey {
  readonly #inner = new Int32Array(5);
  readonly #outer = new Int32Array(5);

  constructor(key: Buffer | string) {
    this.rekey(key);
  }

  /** Makes this the key of `key` (integrityKey's one reused key). */
  rekey(key: Buffer | string): void {
    if (typeof key === 'string' && key.length <= 64 && asciiPads(this.#inner, this.#outer, key)) return;
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

/**
 * Both pad states of a password of at most 64 characters, all ASCII (its
 * UTF-8 bytes are its char codes); false, with nothing written, for any other.
 */
function asciiPads(inner: Int32Array, outer: Int32Array, password: string): boolean {
  for (let i = 0; i < password.length; i++) if (password.charCodeAt(i) > 0x7f) return false;
  asciiPad(inner, password, 0x36);
  asciiPad(outer, password, 0x5c);
  return true;
}

function asciiPad(h: Int32Array, password: string, pad: number): void {
  BLOCKS.fill(pad, 0, 64);
  for (let i = 0; i < password.length; i++) BLOCKS[i]! ^= password.charCodeAt(i);
  h.set(SHA1_IV);
  loadBlock(BLOCKS, 0);
  compress(h);
}

/** `h` := the SHA-1 state after the block key XOR pad (RFC 2104 §2, ipad 0x36, opad 0x5c). */
function padState(h: Int32Array, key: Uint8Array, pad: number): void {
  BLOCKS.fill(pad, 0, 64);
  for (let i = 0; i < key.length; i++) BLOCKS[i]! ^= key[i]!;
  h.set(SHA1_IV);
  loadBlock(BLOCKS, 0);
  compress(h);
}

