/**
 * How node-dtls-client's datagrams reach an ICE component.
 *
 * node-dtls-client has no option to hand it a socket: its `Socket`
 * constructor calls `dgram.createSocket(options)` and binds the result
 * itself. Two ways in, both behind `LibraryLink`:
 *
 * - `memory` (the default): for the synchronous duration of that constructor
 *   call, `dgram.createSocket` returns a `DatagramShim`, a dgram-like object
 *   whose `send` goes straight to the component socket and whose `'message'`
 *   the component's DTLS datagrams are emitted on. The substitution uses
 *   Node's documented mechanism for it (`module.syncBuiltinESMExports()`) and
 *   is undone before the constructor returns, so nothing else ever sees it.
 *   No socket, no port, no extra copy: one function call each way.
 * - `loopback`: a UDP relay socket bound to 127.0.0.1 that node-dtls-client
 *   talks to as if it were the server, for the case where the substitution
 *   does not take (a future node-dtls-client that creates its socket some
 *   other way). node-dtls-client's own socket is bound to 127.0.0.1 too (a
 *   `lookup` option that dgram honours maps its wildcard bind to loopback),
 *   the relay accepts datagrams only from that socket's address and port
 *   (pinned from its first ClientHello), and each datagram costs one extra
 *   loopback hop each way (measured by `bench/dtls.ts`).
 */
import { EventEmitter } from 'node:events';
import dgram, { type RemoteInfo, type Socket as UdpSocket } from 'node:dgram';
import { syncBuiltinESMExports } from 'node:module';
import type { dtls } from 'node-dtls-client';
import { CONTENT_HANDSHAKE, HS_CLIENT_HELLO, readRecords } from './records.js';

export type DtlsLibrarySocket = dtls.Socket;
export type DtlsLibraryOptions = dtls.Options;
export type DtlsTransport = 'memory' | 'loopback';

/** The seam between a DTLS session and node-dtls-client's socket. */
export interface LibraryLink {
  readonly kind: DtlsTransport;
  /** Builds node-dtls-client's socket so that what it sends goes to `out` (returns whether it went). */
  open(create: (options: DtlsLibraryOptions) => DtlsLibrarySocket, options: DtlsLibraryOptions): DtlsLibrarySocket | Promise<DtlsLibrarySocket>;
  /** A DTLS datagram from the component, for node-dtls-client. */
  deliver(data: Buffer, rinfo: RemoteInfo): void;
  /** Makes node-dtls-client tear its connection down (clearing its timers) with `err`; false if it no longer listens. */
  fail(err: Error): boolean;
  /** Whether the last datagram node-dtls-client sent reached the component socket (memory) or the relay (loopback). */
  readonly lastSendOk: boolean;
  close(): void;
}

type Out = (data: Buffer) => boolean;
type Callback = (...args: unknown[]) => void;

/**
 * The part of `dgram.Socket` node-dtls-client uses (`bind`, `send`, `close`,
 * the `listening`/`message`/`close`/`error` events), plus the rest of the
 * usual surface so that a future version calling more of it still works.
 */
export class DatagramShim extends EventEmitter {
  #closed = false;
  #out: Out;
  #local: () => { address: string; family: string; port: number };
  lastSendOk = false;

  constructor(out: Out, local: () => { address: string; family: string; port: number }) {
    super();
    this.#out = out;
    this.#local = local;
  }

  bind(...args: unknown[]): this {
    const cb = args.find((a): a is Callback => typeof a === 'function');
    process.nextTick(() => {
      if (this.#closed) return;
      this.emit('listening');
      cb?.();
    });
    return this;
  }

  /** `send(msg[, offset, length][, port][, address][, callback])`, as dgram's; the destination is the component's selected pair. */
  send(msg: Buffer | Uint8Array | ReadonlyArray<Buffer | Uint8Array> | string, ...rest: unknown[]): void {
    const cb = typeof rest[rest.length - 1] === 'function' ? (rest[rest.length - 1] as Callback) : undefined;
    let buf: Buffer;
    if (typeof msg === 'string') buf = Buffer.from(msg);
    else if (Array.isArray(msg)) buf = Buffer.concat(msg as Uint8Array[]);
    else {
      const m = msg as Uint8Array;
      const whole = Buffer.isBuffer(m) ? m : Buffer.from(m.buffer, m.byteOffset, m.byteLength);
      // (msg, offset, length, port, ...): offset and length are the first two numbers.
      buf = typeof rest[0] === 'number' && typeof rest[1] === 'number'
        ? whole.subarray(rest[0], rest[0] + rest[1])
        : whole;
    }
    const ok = !this.#closed && this.#out(buf);
    this.lastSendOk = ok;
    if (cb) {
      process.nextTick(cb, ok ? null : Object.assign(new Error(this.#closed ? 'the socket is closed' : 'no pair to send on'), { code: 'ERR_ICE_DTLS_SEND' }), ok ? buf.length : 0);
    }
  }

  close(cb?: () => void): this {
    if (cb) this.once('close', cb);
    if (this.#closed) return this;
    this.#closed = true;
    process.nextTick(() => this.emit('close'));
    return this;
  }

  /** A datagram for node-dtls-client. */
  deliver(data: Buffer, rinfo: RemoteInfo): void {
    if (!this.#closed) this.emit('message', data, rinfo);
  }

  address(): { address: string; family: string; port: number } {
    return this.#local();
  }

  connect(): void {}
  disconnect(): void {}
  ref(): this {
    return this;
  }
  unref(): this {
    return this;
  }
  setRecvBufferSize(): void {}
  setSendBufferSize(): void {}
  getRecvBufferSize(): number {
    return 0;
  }
  getSendBufferSize(): number {
    return 0;
  }
}

/** Writable view of the builtin module's exports (the same object `require('node:dgram')` returns). */
const dgramExports = dgram as unknown as { createSocket: (...args: unknown[]) => unknown };

/**
 * Runs `construct` with `dgram.createSocket` answering `shim` to its first
 * call, for ESM importers (`import * as dgram`, as node-dtls-client 2.x) and
 * CommonJS ones (`require('dgram')`, as 1.x) alike; restores it before
 * returning. Throws if `construct` did not call it.
 */
export function constructWithShim<T>(shim: DatagramShim, construct: () => T): T {
  const real = dgramExports.createSocket;
  let taken = false;
  dgramExports.createSocket = function createSocket(this: unknown, ...args: unknown[]) {
    if (taken) return real.apply(this, args);
    taken = true;
    return shim;
  };
  syncBuiltinESMExports();
  let result: T;
  try {
    result = construct();
  } finally {
    dgramExports.createSocket = real;
    syncBuiltinESMExports();
  }
  if (!taken) throw new Error('node-dtls-client did not create its socket through dgram.createSocket during construction');
  return result;
}

/** The default link: node-dtls-client on a DatagramShim, no socket at all. */
export class MemoryLink implements LibraryLink {
  readonly kind = 'memory' as const;
  readonly #shim: DatagramShim;

  constructor(out: Out, local: () => { address: string; family: string; port: number }) {
    this.#shim = new DatagramShim(out, local);
  }

  get lastSendOk(): boolean {
    return this.#shim.lastSendOk;
  }

  /** Synchronous: the session attaches its listeners before anything can happen. */
  open(create: (options: DtlsLibraryOptions) => DtlsLibrarySocket, options: DtlsLibraryOptions): DtlsLibrarySocket {
    return constructWithShim(this.#shim, () => create(options));
  }

  deliver(data: Buffer, rinfo: RemoteInfo): void {
    this.#shim.deliver(data, rinfo);
  }

  fail(err: Error): boolean {
    if (this.#shim.listenerCount('error') === 0) return false;
    this.#shim.emit('error', err);
    return true;
  }

  close(): void {
    this.#shim.close();
    this.#shim.removeAllListeners();
  }
}

/** dgram's `lookup` option: every name and wildcard resolves to loopback, so node-dtls-client's own socket binds 127.0.0.1. */
function loopbackLookup(_host: string, opts: unknown, cb?: (err: Error | null, address: string, family: number) => void): void {
  const callback = (typeof opts === 'function' ? opts : cb) as (err: Error | null, address: string, family: number) => void;
  process.nextTick(callback, null, '127.0.0.1', 4);
}

/**
 * The fallback link: node-dtls-client sends to a relay socket on 127.0.0.1,
 * which hands its datagrams to the component and the component's DTLS
 * datagrams back to it.
 */
export class LoopbackLink implements LibraryLink {
  readonly kind = 'loopback' as const;
  readonly #out: Out;
  #relay: UdpSocket | undefined;
  #lib: DtlsLibrarySocket | undefined;
  /** node-dtls-client's socket, pinned from its first ClientHello. */
  #peer: { address: string; port: number } | undefined;
  #closed = false;
  lastSendOk = false;
  /** Datagrams the relay refused: from another source than node-dtls-client's socket. */
  refused = 0;

  constructor(out: Out) {
    this.#out = out;
  }

  async open(create: (options: DtlsLibraryOptions) => DtlsLibrarySocket, options: DtlsLibraryOptions): Promise<DtlsLibrarySocket> {
    const relay = dgram.createSocket('udp4');
    this.#relay = relay;
    relay.on('error', () => {}); // a send to a socket that went away; the session's own timers report what matters
    await new Promise<void>((resolve, reject) => {
      relay.once('error', reject);
      relay.bind(0, '127.0.0.1', () => {
        relay.off('error', reject);
        resolve();
      });
    });
    if (this.#closed) throw new Error('closed while binding the loopback relay');
    relay.on('message', (data, rinfo) => {
      if (this.#peer === undefined) {
        // Only a ClientHello (plaintext handshake, epoch 0, msg_type 1) from loopback can pin the peer.
        const first = readRecords(data)[0];
        if (rinfo.address !== '127.0.0.1' || first?.type !== CONTENT_HANDSHAKE || first.epoch !== 0 || first.handshakeType !== HS_CLIENT_HELLO) {
          this.refused++;
          return;
        }
        this.#peer = { address: rinfo.address, port: rinfo.port };
      } else if (rinfo.port !== this.#peer.port || rinfo.address !== this.#peer.address) {
        this.refused++;
        return;
      }
      this.lastSendOk = this.#out(data);
    });
    const { port } = relay.address();
    const lib = create({ ...options, type: 'udp4', address: '127.0.0.1', port, lookup: loopbackLookup } as DtlsLibraryOptions);
    this.#lib = lib;
    return lib;
  }

  deliver(data: Buffer): void {
    if (this.#relay && this.#peer && !this.#closed) this.#relay.send(data, this.#peer.port, this.#peer.address);
  }

  fail(err: Error): boolean {
    // node-dtls-client's udp socket is its own here; its 'error' handler is the only public way to stop it.
    const udp = (this.#lib as unknown as { udp?: EventEmitter } | undefined)?.udp;
    if (!udp || udp.listenerCount('error') === 0) return false;
    udp.emit('error', err);
    return true;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const relay = this.#relay;
    this.#relay = undefined;
    // node-dtls-client's last datagram (its close_notify) may still sit in the relay's receive
    // queue: one more turn of the event loop's poll phase hands it on, then the relay goes.
    if (relay) setImmediate(() => relay.close());
  }
}
