/**
 * What the simulated STUN and TURN servers share: one UDP socket per
 * address:port (a TURN server answers Binding too, and may sit on the same
 * port as a STUN server, as coturn does), and a few STUN encoding helpers.
 */
import stun from 'stun';
import type { TransportAddress } from '../transport/address.js';
import { canonicalIp } from '../transport/address.js';
import {
  BINDING_REQUEST, BINDING_SUCCESS, HEADER_LENGTH, MAGIC_COOKIE, decodeStun, verifyFingerprint, type DecodedStun,
} from '../stun/message.js';
import type { SimDatagramSocket, SimHost } from './host.js';

/** Handles one datagram; returns true if it took it. */
export type DatagramHandler = (data: Buffer, from: TransportAddress, msg: DecodedStun | undefined) => boolean;

/** @internal One server socket and who answers on it. */
export class ServerPort {
  readonly host: SimHost;
  readonly socket: SimDatagramSocket;
  /** Answers Binding requests (a STUN server); when absent, the TURN server does. */
  binding: DatagramHandler | undefined;
  /** Everything else (a TURN server, or a STUN server ignoring it). */
  turn: DatagramHandler | undefined;
  /** Whether a TURN server owns `turn`. */
  turnTaken = false;

  constructor(host: SimHost, socket: SimDatagramSocket) {
    this.host = host;
    this.socket = socket;
    socket.onMessage((data, from) => {
      const msg = decodeStun(data);
      if (msg !== undefined && msg.type === BINDING_REQUEST && this.binding?.(data, from, msg)) return;
      this.turn?.(data, from, msg);
    });
  }

  send(data: Buffer, to: TransportAddress): void {
    this.socket.send(data, to);
  }
}

/**
 * A Binding success response, RFC 8489 §7.3.1: XOR-MAPPED-ADDRESS of the
 * source as the server saw it, SOFTWARE if given, FINGERPRINT.
 */
export function bindingResponse(msg: DecodedStun, from: TransportAddress, software?: string): Buffer {
  const m = stun.createMessage(BINDING_SUCCESS, Buffer.from(msg.transactionId));
  m.addXorAddress(from.address, from.port);
  if (software !== undefined) m.addSoftware(software);
  m.addFingerprint();
  return m.toBuffer();
}

/** Whether a Binding request should be answered: framed, and its FINGERPRINT (if any) right (RFC 8489 §7.3). */
export function acceptableRequest(msg: DecodedStun): boolean {
  return msg.cls === 'request' && verifyFingerprint(msg.raw) !== 'bad';
}

/** Adds MESSAGE-INTEGRITY keyed with a long-term key (a Buffer; `stun` passes it to createHmac). */
export function addIntegrity(m: { addMessageIntegrity(key: string): unknown }, key: Buffer): void {
  (m.addMessageIntegrity as unknown as (key: Buffer) => unknown).call(m, key);
}

/**
 * Every XOR-PEER-ADDRESS of a message, RFC 8656 §9.1 (CreatePermission may
 * carry several), decoded by hand: IPv4 and IPv6, canonical form.
 */
export function xorAddresses(msg: DecodedStun, type: number): TransportAddress[] | undefined {
  const buf = msg.raw;
  const out: TransportAddress[] = [];
  let off = HEADER_LENGTH;
  while (off + 4 <= buf.length) {
    const t = buf.readUInt16BE(off);
    const len = buf.readUInt16BE(off + 2);
    const v = off + 4;
    if (t === type) {
      if (len < 8) return undefined;
      const family = buf[v + 1];
      const port = buf.readUInt16BE(v + 2) ^ (MAGIC_COOKIE >>> 16);
      if (family === 0x01 && len === 8) {
        const a = (buf.readUInt32BE(v + 4) ^ MAGIC_COOKIE) >>> 0;
        out.push({ address: `${a >>> 24}.${(a >>> 16) & 255}.${(a >>> 8) & 255}.${a & 255}`, port });
      } else if (family === 0x02 && len === 20) {
        const groups: string[] = [];
        for (let i = 0; i < 16; i += 2) {
          const hi = buf[v + 4 + i]! ^ buf[4 + i]!;
          const lo = buf[v + 5 + i]! ^ buf[5 + i]!;
          groups.push(((hi << 8) | lo).toString(16));
        }
        out.push({ address: canonicalIp(groups.join(':'))!, port });
      } else {
        return undefined;
      }
    }
    off = v + ((len + 3) & ~3);
  }
  return out;
}

/** An IP address as a bigint and its bit length (32 or 128), for prefix matching. */
function ipBits(ip: string): { value: bigint; bits: number } | undefined {
  const c = canonicalIp(ip);
  if (c === undefined) return undefined;
  if (!c.includes(':')) {
    return { value: c.split('.').reduce((acc, o) => (acc << 8n) | BigInt(Number(o)), 0n), bits: 32 };
  }
  let text = c;
  const tail = text.slice(text.lastIndexOf(':') + 1);
  if (tail.includes('.')) {
    const o = tail.split('.').map(Number);
    text = `${text.slice(0, text.lastIndexOf(':') + 1)}${((o[0]! << 8) | o[1]!).toString(16)}:${((o[2]! << 8) | o[3]!).toString(16)}`;
  }
  const [head, rest] = text.split('::') as [string, string | undefined];
  const h = head === '' ? [] : head.split(':');
  const r = rest === undefined || rest === '' ? [] : rest.split(':');
  const groups = rest === undefined ? h : [...h, ...new Array<string>(8 - h.length - r.length).fill('0'), ...r];
  return { value: groups.reduce((acc, g) => (acc << 16n) | BigInt(parseInt(g, 16)), 0n), bits: 128 };
}

/** A prefix test built from 'a.b.c.d', 'a.b.c.d/n', '2001:db8::/32' ...; throws RangeError on a bad prefix. */
export function prefixMatcher(prefix: string): (ip: string) => boolean {
  const [addr, len] = prefix.split('/') as [string, string | undefined];
  const base = ipBits(addr);
  const n = len === undefined ? base?.bits : Number(len);
  if (base === undefined || n === undefined || !Number.isInteger(n) || n < 0 || n > base.bits) throw new RangeError(`not an IP prefix: ${prefix}`);
  const shift = BigInt(base.bits - n);
  return (ip: string) => {
    const b = ipBits(ip);
    return b !== undefined && b.bits === base.bits && b.value >> shift === base.value >> shift;
  };
}
