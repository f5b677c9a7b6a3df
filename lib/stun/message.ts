/**
 * STUN message codec for ICE, a thin wrapper over the `stun` package.
 *
 * `stun` encodes and decodes attributes; what it does not do well for an ICE
 * agent is done here:
 * - framing checks (RFC 8489 §6: top two bits zero, magic cookie, length a
 *   multiple of 4 that matches the datagram) before any decoding, so garbage
 *   never reaches the decoder;
 * - MESSAGE-INTEGRITY and FINGERPRINT verified over the bytes as received
 *   (RFC 8489 §14.5, §14.7). `stun`'s own validators re-encode the decoded
 *   message, which is slower and breaks on attributes it does not re-encode
 *   byte for byte;
 * - reading PRIORITY as an unsigned 32-bit value (`stun`'s getter loses it).
 */
import stun, { type StunResponse } from 'stun';
import { createHash, createHmac, timingSafeEqual, randomBytes } from 'node:crypto';

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
  XOR_MAPPED_ADDRESS: 0x0020,
  PRIORITY: 0x0024,
  USE_CANDIDATE: 0x0025,
  SOFTWARE: 0x8022,
  FINGERPRINT: 0x8028,
  ICE_CONTROLLED: 0x8029,
  ICE_CONTROLLING: 0x802a,
} as const;

export type StunClass = 'request' | 'indication' | 'success' | 'error';

/** A decoded message plus the raw bytes it came from (for integrity checks). */
export interface DecodedStun {
  type: number;
  method: number;
  cls: StunClass;
  transactionId: Buffer;
  raw: Buffer;
  msg: StunResponse;
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

/** Decodes a framed STUN message; undefined for anything malformed (never throws). */
export function decodeStun(buf: Buffer): DecodedStun | undefined {
  if (!isStunFrame(buf) || !attributesWellFormed(buf)) return undefined;
  let msg: StunResponse;
  try {
    msg = stun.decode(buf);
  } catch {
    return undefined;
  }
  const type = buf.readUInt16BE(0);
  return {
    type,
    method: methodOf(type),
    cls: classOf(type),
    transactionId: buf.subarray(8, 20),
    raw: buf,
    msg,
  };
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

/** Offset of the first attribute of `type` in a framed message, or -1. */
export function findAttribute(buf: Buffer, type: number): number {
  let off = HEADER_LENGTH;
  while (off + 4 <= buf.length) {
    if (buf.readUInt16BE(off) === type) return off;
    off += 4 + ((buf.readUInt16BE(off + 2) + 3) & ~3);
  }
  return -1;
}

export type CheckResult = 'ok' | 'missing' | 'bad';

/**
 * MESSAGE-INTEGRITY over the received bytes, RFC 8489 §14.5: HMAC-SHA1 of the
 * message up to the attribute, with the header length adjusted to end just
 * after MESSAGE-INTEGRITY (so a trailing FINGERPRINT is excluded).
 */
export function verifyIntegrity(buf: Buffer, key: Buffer | string): CheckResult {
  const off = findAttribute(buf, ATTR.MESSAGE_INTEGRITY);
  if (off < 0) return 'missing';
  if (buf.readUInt16BE(off + 2) !== 20 || off + 24 > buf.length) return 'bad';
  const header = Buffer.from(buf.subarray(0, HEADER_LENGTH));
  header.writeUInt16BE(off + 24 - HEADER_LENGTH, 2);
  const mac = createHmac('sha1', key).update(header).update(buf.subarray(HEADER_LENGTH, off)).digest();
  return timingSafeEqual(mac, buf.subarray(off + 4, off + 24)) ? 'ok' : 'bad';
}

/** FINGERPRINT, RFC 8489 §14.7: CRC-32 of everything before it, XOR 0x5354554e; must be last. */
export function verifyFingerprint(buf: Buffer): CheckResult {
  const off = findAttribute(buf, ATTR.FINGERPRINT);
  if (off < 0) return 'missing';
  if (off + 8 !== buf.length || buf.readUInt16BE(off + 2) !== 4) return 'bad';
  const want = (crc32(buf.subarray(0, off)) ^ 0x5354554e) >>> 0;
  return buf.readUInt32BE(off + 4) === want ? 'ok' : 'bad';
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
  let c = 0xffffffff;
  for (let i = 0; i < buf.length; i++) c = CRC_TABLE[(c ^ buf[i]!) & 0xff]! ^ (c >>> 8);
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
  try {
    const a = m.msg.getXorAddress();
    return a ? { address: a.address, port: a.port } : undefined;
  } catch {
    return undefined;
  }
}

export function getErrorCode(m: DecodedStun): { code: number; reason: string } | undefined {
  const off = findAttribute(m.raw, ATTR.ERROR_CODE);
  if (off < 0) return undefined;
  const len = m.raw.readUInt16BE(off + 2);
  if (len < 4) return undefined;
  const code = (m.raw[off + 6]! & 0x07) * 100 + m.raw[off + 7]!;
  return { code, reason: m.raw.toString('utf8', off + 8, off + 4 + len) };
}

export function newTransactionId(): Buffer {
  return randomBytes(12);
}

export function tieBreakerBuffer(value: bigint): Buffer {
  const b = Buffer.allocUnsafe(8);
  b.writeBigUInt64BE(value);
  return b;
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

/** A connectivity check, RFC 8445 §7.1.1: USERNAME, PRIORITY, role, USE-CANDIDATE, MESSAGE-INTEGRITY, FINGERPRINT. */
export function encodeBindingRequest(f: BindingRequestFields): Buffer {
  const m = stun.createMessage(BINDING_REQUEST, f.transactionId);
  m.addUsername(f.username);
  m.addAttribute(ATTR.PRIORITY, f.priority >>> 0);
  if (f.controlling) m.addIceControlling(tieBreakerBuffer(f.tieBreaker));
  else m.addIceControlled(tieBreakerBuffer(f.tieBreaker));
  if (f.useCandidate) m.addUseCandidate();
  m.addMessageIntegrity(f.password);
  m.addFingerprint();
  return m.toBuffer();
}

/** Success response to a check, RFC 8445 §7.3.1: XOR-MAPPED-ADDRESS of the source, integrity with the local password. */
export function encodeBindingSuccess(transactionId: Buffer, address: string, port: number, password: string): Buffer {
  const m = stun.createMessage(BINDING_SUCCESS, transactionId);
  m.addXorAddress(address, port);
  m.addMessageIntegrity(password);
  m.addFingerprint();
  return m.toBuffer();
}

/**
 * Error response. `password` is given only when the request was authenticated
 * (487 Role Conflict); 400 and 401 cannot carry MESSAGE-INTEGRITY (RFC 8489 §9.1.3).
 */
export function encodeBindingError(transactionId: Buffer, code: number, reason: string, password?: string): Buffer {
  const m = stun.createMessage(BINDING_ERROR, transactionId);
  m.addError(code, reason);
  if (password !== undefined) m.addMessageIntegrity(password);
  m.addFingerprint();
  return m.toBuffer();
}

/** Binding indication used as a keepalive, RFC 8445 §11 (FINGERPRINT only). */
export function encodeBindingIndication(): Buffer {
  const m = stun.createMessage(BINDING_INDICATION, newTransactionId());
  m.addFingerprint();
  return m.toBuffer();
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
 * IPv6 address with the cookie followed by the transaction id. IPv6 addresses
 * come back in canonical (RFC 5952) form, as `normalizeAddress` gives.
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
    const mask = Buffer.concat([buf.subarray(4, 8), buf.subarray(8, 20)]);
    const groups: string[] = [];
    for (let i = 0; i < 16; i += 2) {
      groups.push((((buf[v + 4 + i]! ^ mask[i]!) << 8) | (buf[v + 5 + i]! ^ mask[i + 1]!)).toString(16));
    }
    return { address: normalizeAddress(groups.join(':')), port, family: 'IPv6' };
  }
  return undefined;
}

/**
 * One spelling per IP address, so that addresses from the wire and from the
 * application compare equal: IPv6 in the WHATWG URL serialisation (lowercase,
 * longest zero run compressed, as RFC 5952), IPv4 unchanged.
 */
export function normalizeAddress(address: string): string {
  if (!address.includes(':')) return address;
  try {
    return new URL(`http://[${address}]/`).hostname.slice(1, -1);
  } catch {
    return address;
  }
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
