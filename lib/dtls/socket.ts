/**
 * DtlsSocket: a DTLS 1.2 client session (node-dtls-client, PSK) carried by
 * a ComponentSocket, and `connectDtls`, which starts one.
 *
 * Receive side: the component socket gets every non-STUN datagram from a
 * checked source; the session takes only DTLS records (first byte 20–63,
 * RFC 7983) and leaves everything else to the component's other consumers
 * (attachRecv, other component sockets), which see every datagram anyway.
 * Send side: node-dtls-client's records go out on the selected pair through
 * the component socket, beside whatever else the application sends.
 *
 * node-dtls-client does not retransmit handshake flights; the session does
 * (RFC 6347 §4.2.4): its last flight again, byte for byte, after 500 ms,
 * then 1 s, 2 s ... until the server answers it or the timeout.
 */
import { EventEmitter } from 'node:events';
import type { RemoteInfo } from 'node:dgram';
import createDebug from 'debug';
import type { Agent } from '../agent.js';
import type { ComponentSocket, AddressInfo } from '../socket.js';
import { InvalidArgumentError, InvalidStateError, type ConnectionError, type IceError } from '../errors.js';
import { DtlsError, alertCode, type DtlsFailure } from './errors.js';
import {
  CONTENT_ALERT, CONTENT_CHANGE_CIPHER_SPEC, DEFAULT_CIPHER_SUITES, HS_CLIENT_KEY_EXCHANGE, HS_SERVER_HELLO,
  PSK_CIPHER_SUITES, cipherSuiteName, isDtlsRecord, readRecords, type DtlsCipherSuite,
} from './records.js';
import { LoopbackLink, MemoryLink, type DtlsLibraryOptions, type DtlsLibrarySocket, type DtlsTransport, type LibraryLink } from './shim.js';

const debug = createDebug('ice-agent:dtls');

/** Handshake timeout when none is given, ms. */
export const DEFAULT_DTLS_TIMEOUT = 5000;
/** First handshake retransmission timeout, ms (doubling, capped at RTO_MAX). */
const RTO_INITIAL = 500;
const RTO_MAX = 4000;
/** Largest plaintext of one record (RFC 6347 §4.1, 2^14). */
const MAX_PLAINTEXT = 16384;
/** node-dtls-client's own handshake timer, which the session replaces with its own: the largest setTimeout delay. */
const LIBRARY_TIMEOUT = 2 ** 31 - 1;

export interface DtlsConnectOptions {
  /**
   * The pre-shared key, `{ identity: key }`, exactly one entry (node-dtls-client
   * offers one identity). A Buffer/Uint8Array is the key's bytes; a string is
   * taken byte for byte (ASCII), as node-dtls-client does — pass
   * `Buffer.from(hex, 'hex')` for a hex key.
   */
  psk: Record<string, Buffer | Uint8Array | string>;
  /** Cipher suites to offer, best first (default: every plain-PSK AEAD and AES-CBC suite node-dtls-client has; no 3DES). */
  ciphers?: readonly DtlsCipherSuite[];
  /** The whole handshake (including waiting for a selected pair) must finish within this many ms (default 5000). */
  timeout?: number;
  /** Aborting rejects the handshake (reason `aborted`); it has no effect once the promise resolved. */
  signal?: AbortSignal;
  /**
   * How node-dtls-client's datagrams reach the component: `memory` (default:
   * a dgram-like object, no socket) or `loopback` (a relay socket on
   * 127.0.0.1; one extra loopback hop each way). See lib/dtls/shim.ts.
   */
  transport?: DtlsTransport;
}

export interface DtlsSocketEvents {
  /** A decrypted application_data record from the server. */
  message: (data: Buffer, rinfo: RemoteInfo) => void;
  /**
   * The session ended abnormally after the handshake: an alert from the peer,
   * consent lost, the component failed or was closed under it. Emitted only
   * when there is a listener (as a ComponentSocket's); `socket.error` keeps it.
   * 'close' follows.
   */
  error: (err: DtlsError) => void;
  /** The session is over (close(), the peer's close_notify, or after 'error'). */
  close: () => void;
}

export interface DtlsSocket {
  on<K extends keyof DtlsSocketEvents>(event: K, listener: DtlsSocketEvents[K]): this;
  once<K extends keyof DtlsSocketEvents>(event: K, listener: DtlsSocketEvents[K]): this;
  off<K extends keyof DtlsSocketEvents>(event: K, listener: DtlsSocketEvents[K]): this;
  emit<K extends keyof DtlsSocketEvents>(event: K, ...args: Parameters<DtlsSocketEvents[K]>): boolean;
}

export interface DtlsSocketStats {
  /** DTLS datagrams sent on the component (handshake retransmissions included). */
  datagramsSent: number;
  /** DTLS datagrams received from the component and handed to node-dtls-client. */
  datagramsReceived: number;
  /** Datagrams on the component that were not DTLS (RFC 7983) and were left to other consumers. */
  notDtls: number;
  /** Handshake flights sent again. */
  retransmissions: number;
}

type Stage = 'pair' | 'hello' | 'server-hello' | 'key-exchange' | 'finished' | 'established';

let library: Promise<typeof import('node-dtls-client')> | undefined;
/** node-dtls-client, loaded on first use so that agents without DTLS never load it. */
function loadLibrary(): Promise<typeof import('node-dtls-client')> {
  library ??= import('node-dtls-client');
  return library;
}

/** Validates the options; throws InvalidArgumentError naming the bad field. */
function checkOptions(opts: DtlsConnectOptions): { identity: string; key: Buffer; ciphers: DtlsCipherSuite[]; timeout: number; transport: DtlsTransport } {
  if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError('options', 'must be an object with a psk');
  const psk = opts.psk;
  if (psk === null || typeof psk !== 'object' || Array.isArray(psk)) throw new InvalidArgumentError('psk', 'must be an object { identity: key }');
  const ids = Object.keys(psk);
  if (ids.length !== 1) throw new InvalidArgumentError('psk', `must hold exactly one identity (node-dtls-client offers one), got ${ids.length}`);
  const identity = ids[0]!;
  // eslint-disable-next-line no-control-regex
  if (identity.length === 0 || identity.length > 65535 || !/^[\x20-\x7e]*$/.test(identity)) {
    throw new InvalidArgumentError('psk', 'the identity must be 1 to 65535 printable ASCII characters');
  }
  const v = psk[identity];
  let key: Buffer;
  if (typeof v === 'string') key = Buffer.from(v, 'latin1');
  else if (v instanceof Uint8Array) key = Buffer.from(v);
  else throw new InvalidArgumentError('psk', 'the key must be a Buffer, Uint8Array or string');
  if (key.length === 0 || key.length > 65535) throw new InvalidArgumentError('psk', 'the key must be 1 to 65535 bytes');
  let ciphers = [...DEFAULT_CIPHER_SUITES];
  if (opts.ciphers !== undefined) {
    if (!Array.isArray(opts.ciphers) || opts.ciphers.length === 0) throw new InvalidArgumentError('ciphers', 'must be a non-empty array of cipher suite names');
    for (const c of opts.ciphers) {
      if (typeof c !== 'string' || !Object.hasOwn(PSK_CIPHER_SUITES, c)) {
        throw new InvalidArgumentError('ciphers', `unknown or unsupported cipher suite ${JSON.stringify(c)} (node-dtls-client does plain PSK only: ${Object.keys(PSK_CIPHER_SUITES).join(', ')})`);
      }
    }
    ciphers = [...opts.ciphers];
  }
  const timeout = opts.timeout ?? DEFAULT_DTLS_TIMEOUT;
  if (typeof timeout !== 'number' || !(timeout > 0) || timeout > LIBRARY_TIMEOUT) throw new InvalidArgumentError('timeout', 'must be a positive number of ms');
  if (opts.signal !== undefined && !(opts.signal instanceof AbortSignal)) throw new InvalidArgumentError('signal', 'must be an AbortSignal');
  const transport = opts.transport ?? 'memory';
  if (transport !== 'memory' && transport !== 'loopback') throw new InvalidArgumentError('transport', "must be 'memory' or 'loopback'");
  return { identity, key, ciphers, timeout, transport };
}

/**
 * Starts a DTLS client on the component (see Agent#connectDtls). Argument
 * errors throw at once; everything else rejects with a DtlsError.
 */
export function connectDtls(agent: Agent, streamId: number, componentId: number, opts: DtlsConnectOptions): Promise<DtlsSocket> {
  const o = checkOptions(opts);
  const cs = agent.createSocket(streamId, componentId);
  const sock = new DtlsSocket(cs);
  return sock._handshake(agent, o, opts.signal);
}

export class DtlsSocket extends EventEmitter {
  readonly streamId: number;
  readonly componentId: number;
  /** The negotiated cipher suite, e.g. `TLS_PSK_WITH_AES_128_GCM_SHA256`. */
  cipherSuite: string | undefined;
  /** ms from the first ClientHello to the server's Finished. */
  handshakeMs: number | undefined;
  /** What ended the session abnormally, if something did. */
  error: DtlsError | undefined;
  /** How node-dtls-client is attached (`memory` or `loopback`). */
  transport: DtlsTransport | undefined;
  readonly stats: DtlsSocketStats = { datagramsSent: 0, datagramsReceived: 0, notDtls: 0, retransmissions: 0 };

  readonly #cs: ComponentSocket;
  #link: LibraryLink | undefined;
  #lib: DtlsLibrarySocket | undefined;
  /** node-dtls-client is alive (not killed, not closed). */
  #libAlive = false;
  #stage: Stage = 'pair';
  #finished = false;
  #closed: Promise<void>;
  #resolveClosed!: () => void;
  #settle: { resolve: (s: DtlsSocket) => void; reject: (e: DtlsError) => void } | undefined;
  #timeoutMs = 0;
  #timer: NodeJS.Timeout | undefined;
  #rtxTimer: NodeJS.Timeout | undefined;
  #rto = RTO_INITIAL;
  /** The datagrams of our current handshake flight, and whether something came in since it was sent. */
  #flight: Buffer[] = [];
  #heardSinceFlight = true;
  #helloAt = 0;
  #serverSpoke = false;
  #serverEncrypted = false;
  /** A plaintext alert from the peer (epoch 0), which names its code exactly. */
  #peerAlert: number | undefined;
  #lastRinfo: RemoteInfo | undefined;
  #unabort: (() => void) | undefined;

  /** @internal Use agent.connectDtls(). */
  constructor(cs: ComponentSocket) {
    super();
    this.#cs = cs;
    this.streamId = cs.streamId;
    this.componentId = cs.componentId;
    this.#closed = new Promise((r) => (this.#resolveClosed = r));
  }

  get closed(): boolean {
    return this.#finished;
  }

  /** The local address of the selected pair (the component socket's). */
  address(): AddressInfo {
    return this.#cs.address();
  }

  /** The remote address of the selected pair: the DTLS server, or whatever forwards to it. */
  remoteAddress(): AddressInfo {
    return this.#cs.remoteAddress();
  }

  /**
   * Sends one application_data record. False when it cannot go (session over,
   * no pair to send on); the callback, if given, gets the error on the next
   * tick. Throws InvalidArgumentError for a non-buffer or more than 16384 bytes.
   */
  send(data: Uint8Array, callback?: (err: Error | null) => void): boolean {
    if (!(data instanceof Uint8Array)) throw new InvalidArgumentError('data', 'must be a Buffer or Uint8Array');
    if (data.byteLength > MAX_PLAINTEXT) throw new InvalidArgumentError('data', `at most ${MAX_PLAINTEXT} bytes per record, got ${data.byteLength}`);
    if (this.#finished || !this.#libAlive || this.#stage !== 'established') {
      if (callback) process.nextTick(callback, new InvalidStateError(this.#finished ? 'the DTLS session is closed' : 'the DTLS handshake is not finished'));
      return false;
    }
    const buf = Buffer.isBuffer(data) ? data : Buffer.from(data.buffer, data.byteOffset, data.byteLength);
    this.#lib!.send(buf, callback ? (err) => callback(err ?? null) : undefined);
    return this.#link!.lastSendOk;
  }

  /** Sends close_notify and ends the session; resolves once it is over (the component socket closed). */
  close(): Promise<void> {
    if (this.#finished) return this.#closed;
    if (this.#libAlive && this.#stage === 'established') {
      this.#libAlive = false;
      // node-dtls-client sends close_notify, closes its (our) socket and emits 'close'.
      this.#lib!.close();
    } else {
      this.#fail('closed', 'close() was called');
    }
    return this.#closed;
  }

  // ---------------------------------------------------------------- handshake

  /** @internal */
  _handshake(agent: Agent, o: ReturnType<typeof checkOptions>, signal: AbortSignal | undefined): Promise<DtlsSocket> {
    return new Promise<DtlsSocket>((resolve, reject) => {
      this.#settle = { resolve, reject };
      this.#timeoutMs = o.timeout;
      const cs = this.#cs;
      cs.on('message', this.#onComponentMessage);
      cs.on('error', this.#onComponentError);
      cs.on('close', this.#onComponentClose);
      if (signal?.aborted) return this.#fail('aborted', 'aborted before the handshake started');
      if (signal) {
        const onAbort = () => this.#fail('aborted', `the handshake was aborted (${this.#progress()})`);
        signal.addEventListener('abort', onAbort, { once: true });
        this.#unabort = () => signal.removeEventListener('abort', onAbort);
      }
      this.#timer = setTimeout(() => this.#onTimeout(), o.timeout);
      if (cs.closed) return this.#fail('closed', 'the component socket was closed');
      if (agent.getComponentState(this.streamId, this.componentId) === 'failed') return this.#fail('ice-failed', 'the component has failed');
      const begin = () => {
        if (this.#finished || this.#stage !== 'pair') return;
        if (agent.getSelectedPair(this.streamId, this.componentId) === undefined) return;
        cs.off('connect', begin);
        this.#stage = 'hello';
        void this.#begin(o);
      };
      cs.on('connect', begin);
      begin();
    });
  }

  async #begin(o: ReturnType<typeof checkOptions>): Promise<void> {
    let lib: typeof import('node-dtls-client');
    try {
      lib = await loadLibrary();
    } catch (err) {
      return this.#fail('handshake', `node-dtls-client could not be loaded: ${(err as Error).message}`, { cause: err });
    }
    if (this.#finished) return;
    const remote = this.#cs.remoteAddress();
    const out = (buf: Buffer) => this.#onLibrarySend(buf);
    const link: LibraryLink = o.transport === 'loopback'
      ? new LoopbackLink(out)
      : new MemoryLink(out, () => this.#cs.address());
    this.#link = link;
    this.transport = link.kind;
    const options: DtlsLibraryOptions = {
      type: remote.family === 'IPv6' ? 'udp6' : 'udp4',
      address: remote.address,
      port: remote.port,
      psk: { [o.identity]: o.key },
      ciphers: o.ciphers,
      timeout: LIBRARY_TIMEOUT,
    };
    this.#helloAt = performance.now();
    let sock: DtlsLibrarySocket;
    try {
      const opened = link.open((opts) => lib.dtls.createSocket(opts), options);
      sock = opened instanceof Promise ? await opened : opened;
    } catch (err) {
      link.close();
      return this.#fail('handshake', `could not attach node-dtls-client: ${(err as Error).message}`, { cause: err });
    }
    this.#lib = sock;
    this.#libAlive = true;
    if (this.#finished) {
      // Ended while the loopback relay was binding: stop the library now that it exists.
      sock.on('error', () => {});
      this.#killLibrary(this.error ?? this.#error('closed', 'the session ended during the handshake'));
      return;
    }
    sock.on('connected', this.#onConnected);
    sock.on('error', this.#onLibraryError);
    sock.on('close', this.#onLibraryClose);
    sock.on('message', this.#onLibraryMessage);
    debug('stream %d component %d: DTLS handshake started (%s) with %s:%d', this.streamId, this.componentId, link.kind, remote.address, remote.port);
  }

  // ------------------------------------------------------------ the wire

  #onLibrarySend(buf: Buffer): boolean {
    this.stats.datagramsSent++;
    if (this.#stage !== 'established') this.#noteOutgoing(buf);
    return this.#cs.send(buf);
  }

  readonly #onComponentMessage = (data: Buffer, rinfo: RemoteInfo): void => {
    if (!isDtlsRecord(data)) {
      this.stats.notDtls++;
      return;
    }
    if (!this.#link || this.#finished) return;
    this.stats.datagramsReceived++;
    this.#lastRinfo = rinfo;
    if (this.#stage !== 'established') this.#noteIncoming(data);
    try {
      this.#link.deliver(data, rinfo);
    } catch (err) {
      // node-dtls-client throws from its message handler on records it cannot parse.
      this.#fail('handshake', `node-dtls-client failed on a record: ${(err as Error).message}`, { cause: err });
    }
  };

  #noteOutgoing(buf: Buffer): void {
    if (this.#heardSinceFlight) {
      // Something came in since our last flight: this starts a new one.
      this.#flight = [];
      this.#heardSinceFlight = false;
      this.#rto = RTO_INITIAL;
    }
    this.#flight.push(buf);
    for (const r of readRecords(buf)) {
      if (r.epoch > 0) this.#stage = 'finished';
      else if (r.handshakeType === HS_CLIENT_KEY_EXCHANGE && this.#stage !== 'finished') this.#stage = 'key-exchange';
    }
    if (this.#rtxTimer === undefined) this.#armRetransmit();
  }

  #noteIncoming(data: Buffer): void {
    this.#heardSinceFlight = true;
    this.#serverSpoke = true;
    for (const r of readRecords(data)) {
      if (r.epoch > 0 || r.type === CONTENT_CHANGE_CIPHER_SPEC) this.#serverEncrypted = true;
      if (r.handshakeType === HS_SERVER_HELLO) {
        if (this.#stage === 'hello') this.#stage = 'server-hello';
        if (r.cipherSuite !== undefined) this.cipherSuite = cipherSuiteName(r.cipherSuite);
      }
      if (r.type === CONTENT_ALERT && r.alertLevel === 2) this.#peerAlert = r.alertDescription;
    }
  }

  #armRetransmit(): void {
    this.#rtxTimer = setTimeout(() => {
      this.#rtxTimer = undefined;
      if (this.#finished || this.#stage === 'established' || this.#flight.length === 0) return;
      this.stats.retransmissions++;
      debug('stream %d component %d: DTLS flight retransmitted after %d ms', this.streamId, this.componentId, this.#rto);
      for (const buf of this.#flight) {
        this.stats.datagramsSent++;
        this.#cs.send(buf);
      }
      this.#rto = Math.min(this.#rto * 2, RTO_MAX);
      this.#armRetransmit();
    }, this.#rto);
  }

  // ------------------------------------------------------------- library events

  readonly #onConnected = (): void => {
    if (this.#finished) return;
    this.#stage = 'established';
    this.handshakeMs = performance.now() - this.#helloAt;
    this.#flight = [];
    this.#clearHandshakeTimers();
    debug('stream %d component %d: DTLS established in %d ms, %s', this.streamId, this.componentId, Math.round(this.handshakeMs), this.cipherSuite);
    const settle = this.#settle;
    this.#settle = undefined;
    settle?.resolve(this);
  };

  readonly #onLibraryMessage = (data: Buffer): void => {
    const r = this.#lastRinfo;
    const rinfo: RemoteInfo = r ? { address: r.address, family: r.family, port: r.port, size: data.length } : { address: '', family: 'IPv4', port: 0, size: data.length };
    this.emit('message', data, rinfo);
  };

  /** node-dtls-client ended the connection: our own DtlsError coming back, or one of its own. */
  readonly #onLibraryError = (err: Error): void => {
    this.#libAlive = false;
    if (err instanceof DtlsError) return this.#finish(err);
    const m = /received fatal alert: (\w+)/.exec(err.message);
    if (m) {
      const code = this.#peerAlert ?? alertCode(m[1]!);
      return this.#finish(this.#error('alert', `the peer sent a fatal alert ${this.#progressSuffix()}`, { alertCode: code, alertFrom: 'peer', cause: err }));
    }
    if (/DTLS handshake failed/.test(err.message)) {
      return this.#finish(this.#error('handshake', "the server's Finished did not verify: the two sides derived different keys (a wrong PSK?)", { alertCode: 51, alertFrom: 'local', cause: err }));
    }
    if (/timed out/.test(err.message)) return this.#finish(this.#error('timeout', err.message, { cause: err }));
    this.#finish(this.#error('handshake', `node-dtls-client: ${err.message}`, { cause: err }));
  };

  readonly #onLibraryClose = (): void => {
    this.#libAlive = false;
    if (this.#stage !== 'established') return this.#finish(this.#error('closed', `the server closed the session during the handshake ${this.#progressSuffix()}`));
    this.#finish(undefined);
  };

  // ------------------------------------------------------------ component events

  readonly #onComponentError = (err: IceError): void => {
    const consent = (err as ConnectionError).reason === 'consent-lost';
    this.#fail(consent ? 'consent-lost' : 'ice-failed', consent ? 'consent lost on the selected pair (RFC 7675)' : 'the ICE component failed', { cause: err });
  };

  readonly #onComponentClose = (): void => {
    this.#fail('closed', 'the component socket was closed (removeStream or the agent closed)');
  };

  #onTimeout(): void {
    this.#timer = undefined;
    if (this.#finished || this.#stage === 'established') return;
    const ms = this.#timeoutMs;
    if (this.#stage === 'pair') return this.#fail('timeout', `the component had no selected pair within ${ms} ms`);
    if (this.#stage === 'finished' && !this.#serverEncrypted) {
      return this.#fail('handshake', `the server did not answer our Finished within ${ms} ms: it could not verify it, ` +
        'which is how a DTLS server answers a wrong PSK or identity (it drops records that fail to decrypt, RFC 6347 §4.1.2.7)');
    }
    if (!this.#serverSpoke) return this.#fail('timeout', `no answer from the DTLS server within ${ms} ms (ClientHello sent ${this.stats.datagramsSent} times)`);
    this.#fail('timeout', `the handshake did not finish within ${ms} ms ${this.#progressSuffix()}`);
  }

  // --------------------------------------------------------------- ending

  #progress(): string {
    switch (this.#stage) {
      case 'pair': return 'waiting for a selected pair';
      case 'hello': return this.#serverSpoke ? 'after a HelloVerifyRequest' : 'no answer to ClientHello yet';
      case 'server-hello': return 'after the ServerHello';
      case 'key-exchange': return 'after our ClientKeyExchange';
      case 'finished': return this.#serverEncrypted ? "waiting for the server's Finished" : 'our Finished unanswered';
      case 'established': return 'established';
    }
  }

  #progressSuffix(): string {
    return this.#stage === 'established' ? '' : `(handshake: ${this.#progress()})`;
  }

  #error(reason: DtlsFailure, message: string, extra: { alertCode?: number | undefined; alertFrom?: 'peer' | 'local'; cause?: unknown } = {}): DtlsError {
    return new DtlsError(reason, message, {
      streamId: this.streamId,
      componentId: this.componentId,
      ...(extra.alertCode !== undefined ? { alertCode: extra.alertCode } : {}),
      ...(extra.alertFrom ? { alertFrom: extra.alertFrom } : {}),
      ...(extra.cause !== undefined ? { cause: extra.cause } : {}),
    });
  }

  /** Ends the session with a DtlsError: node-dtls-client is stopped through its socket's 'error' (which clears its timers). */
  #fail(reason: DtlsFailure, message: string, extra: { alertCode?: number; cause?: unknown } = {}): void {
    if (this.#finished) return;
    const err = this.#error(reason, message, extra);
    if (this.#killLibrary(err)) return; // #onLibraryError finishes
    this.#finish(err);
  }

  #killLibrary(err: DtlsError): boolean {
    if (!this.#libAlive || !this.#link) return false;
    this.#libAlive = false;
    return this.#link.fail(err) && this.#finished;
  }

  #clearHandshakeTimers(): void {
    clearTimeout(this.#timer);
    this.#timer = undefined;
    clearTimeout(this.#rtxTimer);
    this.#rtxTimer = undefined;
    this.#unabort?.();
    this.#unabort = undefined;
  }

  #finish(err: DtlsError | undefined): void {
    if (this.#finished) return;
    this.#finished = true;
    this.#clearHandshakeTimers();
    if (err) this.error = err;
    const cs = this.#cs;
    cs.off('message', this.#onComponentMessage);
    cs.off('error', this.#onComponentError);
    cs.off('close', this.#onComponentClose);
    cs.removeAllListeners('connect');
    this.#link?.close();
    if (this.#lib) {
      this.#lib.off('connected', this.#onConnected);
      this.#lib.off('close', this.#onLibraryClose);
      this.#lib.off('message', this.#onLibraryMessage);
      // node-dtls-client may still report errors of a dying socket; they are no longer news.
      this.#lib.off('error', this.#onLibraryError);
      this.#lib.on('error', () => {});
    }
    cs.close();
    const settle = this.#settle;
    this.#settle = undefined;
    if (settle) {
      const e = err ?? this.#error('closed', 'the session closed during the handshake');
      debug('stream %d component %d: DTLS handshake failed: %s', this.streamId, this.componentId, e.message);
      settle.reject(e);
    } else {
      if (err) {
        debug('stream %d component %d: DTLS session ended: %s', this.streamId, this.componentId, err.message);
        if (this.listenerCount('error') > 0) this.emit('error', err);
      }
    }
    // After the component socket's own 'close' (also on the next tick).
    process.nextTick(() => {
      if (!settle) this.emit('close');
      this.#resolveClosed();
    });
  }
}
