/**
 * STUN message codec for ICE: decoding and verification (this file), the
 * Binding encoders (binding.ts) and MESSAGE-INTEGRITY (integrity.ts).
 *
 * The Binding messages sent at every connectivity check and consent tick
 * (RFC 8445 §7, RFC 7675) and their answers are written and read directly on
 * the bytes: through the `stun` package a check cost tens of
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
import { createRequire } from 'node:module';
import type stunModule from 'stun';
import { createHash, randomFillSync } from 'node:crypto';
import { canonicalIp } from '../transport/address.js';
import { HEADER_LENGTH, IntegrityKey, integrityKey } from './integrity.js';

/**
 * The `stun` package encodes the TURN requests, which are few; loading it
 * costs a few hundred milliseconds of a fresh process's start-up (its
 * dependency tree), which a restored session or a first connection without
 * TURN should not wait for. So it is loaded on first use.
 */
let stunPackage: typeof stunModule | undefined;
function stun(): typeof stunModule {
  stunPackage ??= createRequire(import.meta.url)('stun') as typeof stunModule;
  return stunPackage;
}

export const MAGIC_COOKIE = 0x2112a442;
export { HEADER_LENGTH } from './integrity.js';

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
  /** draft-thatcher-ice-renomination: a 24-bit nomination count (comprehension-optional). */
  NOMINATION: 0xc001,
  SOFTWARE: 0x8022,
  FINGERPRINT: 0x8028,
  ICE_CONTROLLED: 0x8029,
  ICE_CONTROLLING: 0x802a,
} as const;

/** FINGERPRINT is the CRC-32 XOR this value ("STUN"), RFC 8489 §14.7. */
export const FINGERPRINT_XOR = 0x5354554e;

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
  return off < 0 ? 'missing' : verifyIntegrityAt(buf, off, key);
}

/** verifyIntegrity with the MESSAGE-INTEGRITY attribute already found at `off` (a caller that walked the attributes). */
export function verifyIntegrityAt(buf: Buffer, off: number, key: Buffer | string): CheckResult {
  if (buf.readUInt16BE(off + 2) !== 20 || off + 24 > buf.length) return 'bad';
  (typeof key === 'string' ? integrityKey(key) : new IntegrityKey(key)).sign(buf, off, EXPECTED_MAC, 0);
  // Compared in constant time (every byte, whatever differs first), in place: no view of the message per check.
  let diff = 0;
  for (let i = 0; i < 20; i++) diff |= EXPECTED_MAC[i]! ^ buf[off + 4 + i]!;
  return diff === 0 ? 'ok' : 'bad';
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
export function crcTo(buf: Uint8Array, end: number): number {
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

/** NOMINATION's 24-bit count (draft-thatcher-ice-renomination §4), or undefined. */
export function getNomination(m: DecodedStun): number | undefined {
  const off = findAttribute(m.raw, ATTR.NOMINATION);
  if (off < 0 || m.raw.readUInt16BE(off + 2) !== 4) return undefined;
  return m.raw.readUInt32BE(off + 4) & 0xffffff;
}

export function hasAttribute(m: DecodedStun, type: number): boolean {
  return findAttribute(m.raw, type) >= 0;
}

/**
 * Whether the USERNAME attribute at `off` (from findAttribute) is `ufrag`, a
 * colon and more: a check naming this local ufrag (RFC 8445 §7.2.2, the part
 * before the first colon). Compared as bytes, with no string made (this runs
 * for every request a server answers); a non-ASCII ufrag is decoded instead.
 */
export function usernameNamesUfrag(buf: Buffer, off: number, ufrag: string): boolean {
  const len = buf.readUInt16BE(off + 2);
  const n = ufrag.length;
  const at = off + 4;
  for (let i = 0; i < n; i++) {
    const c = ufrag.charCodeAt(i);
    if (c > 0x7f) {
      const username = buf.toString('utf8', at, at + len);
      const colon = username.indexOf(':');
      return colon > 0 && username.slice(0, colon) === ufrag;
    }
    if (c === 0x3a || i >= len || buf[at + i] !== c) return false;
  }
  return n > 0 && len > n && buf[at + n] === 0x3a;
}

/** Offset of a well-formed 64-bit tie-breaker attribute (ICE-CONTROLLING/ICE-CONTROLLED), or -1; read it only when it is compared. */
export function tieBreakerAt(m: DecodedStun, type: number): number {
  const off = findAttribute(m.raw, type);
  return off < 0 || m.raw.readUInt16BE(off + 2) !== 8 ? -1 : off;
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
/** What unknownComprehensionRequired returns for a message with none (most): one shared, frozen list. */
const NO_UNKNOWN: number[] = Object.freeze([]) as unknown as number[];

export function unknownComprehensionRequired(m: DecodedStun, known: ReadonlySet<number>): number[] {
  const buf = m.raw;
  let unknown = NO_UNKNOWN;
  let phase = BEFORE_MI;
  for (let off = HEADER_LENGTH; off + 4 <= buf.length; off += 4 + ((buf.readUInt16BE(off + 2) + 3) & ~3)) {
    const t = buf.readUInt16BE(off);
    const next = advance(phase, t);
    if (next < 0) continue;
    phase = next;
    if (t < 0x8000 && !known.has(t) && !unknown.includes(t)) {
      if (unknown === NO_UNKNOWN) unknown = [];
      unknown.push(t);
    }
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
  const m = stun().createMessage(messageType(method, 'request'), transactionId);
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
  const m = stun().createMessage(messageType(TURN_METHOD.SEND, 'indication'), transactionId);
  m.addAttribute(TURN_ATTR.XOR_PEER_ADDRESS, peer.address, peer.port);
  m.addAttribute(TURN_ATTR.DATA, data);
  return m.toBuffer();
}
