/**
 * Encoding the Binding messages of ICE (RFC 8445 §7, RFC 7675, §11) straight
 * into bytes, without the `stun` package: requests (one-off, or from a
 * per-pair template), success and error responses, indications.
 */
import { InvalidArgumentError } from '../errors.js';
import { ipv4Into, ipv6Bytes } from '../transport/address.js';
import { IntegrityKey, integrityKey } from './integrity.js';
import {
  ATTR, BINDING_ERROR, BINDING_INDICATION, BINDING_REQUEST, BINDING_SUCCESS, FINGERPRINT_XOR, HEADER_LENGTH, MAGIC_COOKIE,
  crcTo, newTransactionId,
} from './message.js';

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
  /** NOMINATION (draft-thatcher-ice-renomination): the nomination's 24-bit count, with USE-CANDIDATE. */
  nomination?: number;
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
    this.#bytes = Buffer.alloc(requestLength(username, f.useCandidate, f.nomination));
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
  const out = Buffer.allocUnsafe(requestLength(username, f.useCandidate, f.nomination));
  putHeader(out, BINDING_REQUEST, f.transactionId);
  putRequestAttributes(out, username, f);
  return seal(out, integrityKey(f.password));
}

function usernameBytes(username: string): Buffer {
  const bytes = Buffer.from(username, 'utf8');
  if (bytes.length > MAX_USERNAME_BYTES) throw new InvalidArgumentError('username', `longer than ${MAX_USERNAME_BYTES} bytes`);
  return bytes;
}

function requestLength(username: Buffer, useCandidate: boolean, nomination: number | undefined): number {
  return HEADER_LENGTH + 4 + pad4(username.length) + 8 + 12 + (useCandidate ? 4 : 0) + (nomination !== undefined ? 8 : 0) + 24 + 8;
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
  let next = off + 8;
  if (f.useCandidate) next = putAttribute(out, next, ATTR.USE_CANDIDATE, 0);
  if (f.nomination !== undefined) {
    const at = putAttribute(out, next, ATTR.NOMINATION, 4);
    out.writeUInt32BE(f.nomination & 0xffffff, at);
  }
}

/** Success response to a check, RFC 8445 §7.3.1: XOR-MAPPED-ADDRESS of the source, integrity with the local password. */
export function encodeBindingSuccess(transactionId: Buffer, address: string, port: number, password: string): Buffer {
  if (transactionId.length !== 12) throw new InvalidArgumentError('transactionId', 'must be 12 bytes (RFC 8489 §5)');
  return success(transactionId, 0, address, port, password);
}

/** encodeBindingSuccess for the request itself: its transaction id is copied from its header (no view of it made). */
export function encodeBindingSuccessTo(request: Buffer, address: string, port: number, password: string): Buffer {
  if (request.length < HEADER_LENGTH) throw new InvalidArgumentError('request', 'shorter than a STUN header');
  return success(request, 8, address, port, password);
}

function success(tx: Buffer, txAt: number, address: string, port: number, password: string): Buffer {
  const ip = ipBytes(address);
  if (!ip) throw new InvalidArgumentError('address', `not an IP address: ${address}`);
  if (!Number.isInteger(port) || port < 0 || port > 0xffff) throw new InvalidArgumentError('port', `not a port: ${port}`);
  const out = Buffer.allocUnsafe(HEADER_LENGTH + 8 + ip.length + 24 + 8);
  out.writeUInt16BE(BINDING_SUCCESS, 0);
  out.writeUInt32BE(MAGIC_COOKIE, 4);
  tx.copy(out, 8, txAt, txAt + 12);
  // XOR-MAPPED-ADDRESS, RFC 8489 §14.2: the port XOR the cookie's top half, the address XOR the
  // cookie (IPv4) or the cookie and the transaction id (IPv6), which are bytes 4–19 of the header.
  const v = putAttribute(out, HEADER_LENGTH, ATTR.XOR_MAPPED_ADDRESS, 4 + ip.length);
  out[v] = 0;
  out[v + 1] = ip.length === 4 ? 0x01 : 0x02;
  out.writeUInt16BE(port ^ (MAGIC_COOKIE >>> 16), v + 2);
  for (let i = 0; i < ip.length; i++) out[v + 4 + i] = ip[i]! ^ out[4 + i]!;
  return seal(out, integrityKey(password));
}

/** Scratch for an IPv4 address's bytes (used at once, synchronously): a response per request, no allocation. */
const IP4 = new Uint8Array(4);

/** The 4 or 16 bytes of an IP address, or undefined if `address` is not one; the 4 of IPv4 are scratch, valid until the next call. */
function ipBytes(address: string): Uint8Array | undefined {
  // Embedded IPv4 (IPv4-mapped ::ffff:a.b.c.d, IPv4-compatible ::a.b.c.d) is parsed as the groups it stands for.
  return ipv4Into(address, IP4) ? IP4 : ipv6Bytes(address);
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
  return seal(out, password === undefined ? undefined : integrityKey(password));
}

/** Binding indication used as a keepalive, RFC 8445 §11 (FINGERPRINT only); a fresh transaction id unless given. */
export function encodeBindingIndication(transactionId: Buffer = newTransactionId()): Buffer {
  const out = Buffer.allocUnsafe(HEADER_LENGTH + 8);
  putHeader(out, BINDING_INDICATION, transactionId);
  return seal(out, undefined);
}

