/**
 * A hand-driven ICE peer on a real loopback UDP socket: it sends checks built
 * by hand (so tests can forge, truncate, append) and answers the agent's
 * checks as the test decides. Every wait is for a datagram, with a timeout.
 */
import dgram from 'node:dgram';
import { createHmac } from 'node:crypto';
import { ATTR, type DecodedStun, crc32, decodeStun, getUsername, newTransactionId } from '../../lib/stun/message.js';
import { encodeBindingError, encodeBindingRequest, encodeBindingSuccess } from '../../lib/stun/binding.js';

export interface Received {
  data: Buffer;
  from: { address: string; port: number };
  /** Decoded when it is STUN. */
  stun: DecodedStun | undefined;
}

export interface CheckFields {
  username: string;
  password: string;
  controlling?: boolean;
  tieBreaker?: bigint;
  useCandidate?: boolean;
  priority?: number;
}

export class RawPeer {
  readonly socket: dgram.Socket;
  readonly port: number;
  readonly received: Received[] = [];
  #waiters: Array<{ pred: (r: Received) => boolean; resolve: (r: Received) => void }> = [];

  private constructor(socket: dgram.Socket) {
    this.socket = socket;
    this.port = socket.address().port;
    socket.on('message', (data, rinfo) => {
      const r: Received = { data, from: { address: rinfo.address, port: rinfo.port }, stun: decodeStun(data) };
      this.received.push(r);
      for (const w of [...this.#waiters]) {
        if (!w.pred(r)) continue;
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        w.resolve(r);
      }
    });
  }

  static open(): Promise<RawPeer> {
    return new Promise((resolve) => {
      const s = dgram.createSocket('udp4');
      s.bind(0, '127.0.0.1', () => resolve(new RawPeer(s)));
    });
  }

  /** The candidate line of this peer's address. */
  candidate(priority = 2130706431, foundation = '77'): string {
    return `candidate:${foundation} 1 udp ${priority} 127.0.0.1 ${this.port} typ host`;
  }

  /** The next datagram matching `pred` (already received ones that came after `since` count too). */
  next(pred: (r: Received) => boolean = () => true, ms = 3000, since = this.received.length): Promise<Received> {
    const seen = this.received.slice(since).find(pred);
    if (seen) return Promise.resolve(seen);
    return new Promise((resolve, reject) => {
      const w = {
        pred,
        resolve: (r: Received) => {
          clearTimeout(timer);
          resolve(r);
        },
      };
      const timer = setTimeout(() => {
        this.#waiters.splice(this.#waiters.indexOf(w), 1);
        reject(new Error(`no matching datagram within ${ms} ms`));
      }, ms);
      this.#waiters.push(w);
    });
  }

  /** The next Binding request from the agent. */
  nextRequest(ms = 3000, since = this.received.length): Promise<Received> {
    return this.next((r) => r.stun?.cls === 'request', ms, since);
  }

  send(data: Buffer, port: number): void {
    this.socket.send(data, port, '127.0.0.1');
  }

  /** Builds a connectivity check (RFC 8445 §7.1.1). */
  static check(f: CheckFields, transactionId = newTransactionId()): Buffer {
    return encodeBindingRequest({
      transactionId,
      username: f.username,
      password: f.password,
      priority: f.priority ?? 1845501695,
      controlling: f.controlling ?? true,
      tieBreaker: f.tieBreaker ?? 1n,
      useCandidate: f.useCandidate ?? false,
    });
  }

  /** Sends a check and resolves with the agent's answer. */
  async request(buf: Buffer, port: number, ms = 3000): Promise<DecodedStun> {
    const tid = buf.subarray(8, 20);
    const since = this.received.length;
    this.send(buf, port);
    const r = await this.next((x) => x.stun !== undefined && x.stun.cls !== 'request' && x.stun.transactionId.equals(tid), ms, since);
    return r.stun!;
  }

  /** Answers a request of the agent with a success (XOR-MAPPED-ADDRESS of its source). */
  answer(req: Received, password: string): void {
    const m = req.stun!;
    this.socket.send(encodeBindingSuccess(m.transactionId, req.from.address, req.from.port, password), req.from.port, req.from.address);
  }

  answerError(req: Received, code: number, reason: string, password?: string): void {
    const m = req.stun!;
    this.socket.send(encodeBindingError(m.transactionId, code, reason, password), req.from.port, req.from.address);
  }

  close(): Promise<void> {
    return new Promise((r) => this.socket.close(() => r()));
  }
}

/** The USERNAME of a request. */
export function usernameOf(r: Received): string | undefined {
  return r.stun ? getUsername(r.stun) : undefined;
}

/**
 * Appends an attribute after MESSAGE-INTEGRITY and recomputes FINGERPRINT, as
 * an on-path attacker could: MESSAGE-INTEGRITY still verifies (RFC 8489 §14.5
 * computes it up to itself), so only the rule that attributes after it are
 * ignored keeps the addition out.
 */
export function appendAfterIntegrity(msg: Buffer, type: number, value: Buffer = Buffer.alloc(0)): Buffer {
  const fpOff = msg.length - 8;
  if (msg.readUInt16BE(fpOff) !== ATTR.FINGERPRINT) throw new Error('expected FINGERPRINT last');
  const pad = (4 - (value.length % 4)) % 4;
  const attr = Buffer.alloc(4 + value.length + pad);
  attr.writeUInt16BE(type, 0);
  attr.writeUInt16BE(value.length, 2);
  value.copy(attr, 4);
  const body = Buffer.concat([msg.subarray(0, fpOff), attr]);
  const out = Buffer.concat([body, Buffer.alloc(8)]);
  out.writeUInt16BE(out.length - 20, 2);
  out.writeUInt16BE(ATTR.FINGERPRINT, body.length);
  out.writeUInt16BE(4, body.length + 2);
  out.writeUInt32BE((crc32(out.subarray(0, body.length)) ^ 0x5354554e) >>> 0, body.length + 4);
  return out;
}

/** Inserts a comprehension-required attribute before MESSAGE-INTEGRITY, re-signing the request. */
export function withAttributeBeforeIntegrity(f: CheckFields, type: number, value: Buffer, transactionId = newTransactionId()): Buffer {
  // Build the request with the extra attribute by hand: header, USERNAME, PRIORITY, role, extra, MI, FINGERPRINT.
  const base = RawPeer.check(f, transactionId);
  const miOff = findOffset(base, ATTR.MESSAGE_INTEGRITY);
  const pad = (4 - (value.length % 4)) % 4;
  const extra = Buffer.alloc(4 + value.length + pad);
  extra.writeUInt16BE(type, 0);
  extra.writeUInt16BE(value.length, 2);
  value.copy(extra, 4);
  const head = Buffer.concat([base.subarray(0, miOff), extra]);
  const withMi = Buffer.concat([head, Buffer.alloc(24)]);
  withMi.writeUInt16BE(withMi.length - 20, 2);
  const mac = createHmac('sha1', f.password).update(withMi.subarray(0, head.length)).digest();
  withMi.writeUInt16BE(ATTR.MESSAGE_INTEGRITY, head.length);
  withMi.writeUInt16BE(20, head.length + 2);
  mac.copy(withMi, head.length + 4);
  const out = Buffer.concat([withMi, Buffer.alloc(8)]);
  out.writeUInt16BE(out.length - 20, 2);
  out.writeUInt16BE(ATTR.FINGERPRINT, withMi.length);
  out.writeUInt16BE(4, withMi.length + 2);
  out.writeUInt32BE((crc32(out.subarray(0, withMi.length)) ^ 0x5354554e) >>> 0, withMi.length + 4);
  return out;
}

function findOffset(buf: Buffer, type: number): number {
  let off = 20;
  while (off + 4 <= buf.length) {
    if (buf.readUInt16BE(off) === type) return off;
    off += 4 + ((buf.readUInt16BE(off + 2) + 3) & ~3);
  }
  throw new Error(`attribute ${type} not found`);
}
