/**
 * A TURN client for one allocation (RFC 8656), the way an ICE agent uses it to
 * gather a relayed candidate and to send and receive through the relay.
 *
 * This is the thin I/O shell over the sans-I/O `Allocation` machine
 * (lib/turn/allocation.ts), which holds the protocol: Allocate with the
 * long-term credentials, refreshes, permissions, channels, data. The shell
 * resolves the server's name, owns the UDP socket or the TCP/TLS connection
 * (framed as in §12.5), drops packets that do not come from the server, keeps
 * exactly one timer armed for the machine's next deadline, and turns the
 * machine's events into EventEmitter events and promises. All its I/O goes
 * through a `Network` (lib/transport/network.ts).
 */
import { EventEmitter } from 'node:events';
import createDebug from 'debug';
import { InvalidArgumentError, InvalidOptionError, InvalidStateError, TurnError } from '../errors.js';
import { addressKey, canonicalIp, isV6, type TransportAddress } from '../transport/address.js';
import type { DatagramSocket, Network, StreamSocket, TimerHandle } from '../transport/network.js';
import { nodeNetwork } from '../transport/node-network.js';
import { parseIceServerUrl, type IceServerUrl } from './url.js';
import { StreamFramer } from './framing.js';
import { Allocation, newTurnStats, type AllocationEvent, type AllocationIo, type TurnStats } from './allocation.js';

export type { TurnStats } from './allocation.js';

const debug = createDebug('ice-agent:turn');

export interface TurnClientOptions {
  /** `turn:host[:port][?transport=udp|tcp]` or `turns:host[:port]` (RFC 7065). */
  url: string;
  username: string;
  password: string;
  /**
   * Local address to send from: the UDP socket is bound to it, a TCP/TLS
   * connection is made from it. Default: any address of the server's family.
   */
  localAddress?: string;
  /** Sockets, connections, name lookups, the clock and the timer come from here. Default: the host's (nodeNetwork). */
  network?: Network;
  /** Bounds allocate() as a whole, and each later request. Default 3000 ms. */
  timeoutMs?: number;
  /** Initial retransmission timeout over UDP (RFC 8489 §6.2.1), doubled each time. Default 500 ms. */
  rto?: number;
  /** LIFETIME to ask for in Allocate and Refresh, in seconds; default: the server's choice (RFC 8656 §7.1). */
  lifetime?: number;
  /**
   * Refresh the allocation this long before it expires, but never later than
   * half-way through its lifetime (so a short lifetime, as test servers give,
   * is refreshed in time too). Default 60000 ms.
   */
  refreshMarginMs?: number;
  /** Re-send CreatePermission this often; permissions last 300 s (RFC 8656 §9). Default 240000 ms. */
  permissionRefreshMs?: number;
  /** Re-send ChannelBind this often; channels last 600 s (RFC 8656 §12). Default 540000 ms. */
  channelRefreshMs?: number;
  /** TLS (`turns:`): trusted CA certificates, e.g. a test server's self-signed certificate. */
  ca?: string | Buffer | Array<string | Buffer>;
  /** TLS (`turns:`): verify the server certificate (default true). */
  rejectUnauthorized?: boolean;
  /** TLS (`turns:`): SNI and certificate name; default the URL's host when it is a name. */
  servername?: string;
  /** SOFTWARE attribute to send, if any. */
  software?: string;
}

export interface PeerAddress {
  address: string;
  port: number;
}

export interface TurnAllocation {
  /** XOR-RELAYED-ADDRESS: the relayed transport address (the relayed candidate, RFC 8445 §5.1.1.2). */
  relayed: PeerAddress & { family: 'IPv4' | 'IPv6' };
  /** XOR-MAPPED-ADDRESS: the client's address as the server sees it (the relayed candidate's related address). */
  mapped: PeerAddress | undefined;
  /** Allocation lifetime in seconds, as last granted. */
  lifetime: number;
}

export type TurnClientState = 'new' | 'allocating' | 'allocated' | 'closed';

export interface TurnClientEvents {
  /** Data relayed from `peer` (Data indication or ChannelData). */
  data: (data: Buffer, peer: PeerAddress) => void;
  /** A refresh succeeded: `allocation` (detail: lifetime in s), `permission` (detail: peer IP) or `channel` (detail: channel number). */
  refresh: (kind: 'allocation' | 'permission' | 'channel', detail: number | string) => void;
  /** A permission or channel refresh failed; it is retried sooner. The allocation itself is still there. */
  'refresh-failed': (kind: 'permission' | 'channel', err: TurnError) => void;
  /** The allocation is gone (refresh refused or unanswered, TCP connection lost); the client has closed. */
  failed: (err: TurnError) => void;
  /** close() finished (or the client closed after `failed`). */
  close: () => void;
}

export interface TurnClient {
  on<K extends keyof TurnClientEvents>(event: K, listener: TurnClientEvents[K]): this;
  once<K extends keyof TurnClientEvents>(event: K, listener: TurnClientEvents[K]): this;
  off<K extends keyof TurnClientEvents>(event: K, listener: TurnClientEvents[K]): this;
  emit<K extends keyof TurnClientEvents>(event: K, ...args: Parameters<TurnClientEvents[K]>): boolean;
}

/** The connection to the server, whatever its transport. */
interface Link {
  readonly local: PeerAddress;
  send(buf: Buffer): void;
  close(): Promise<void>;
}

/** A promise with its settlers, and whether it is settled. */
class Deferred<T> {
  settled = false;
  resolve!: (v: T) => void;
  reject!: (e: Error) => void;
  readonly promise = new Promise<T>((resolve, reject) => {
    this.resolve = (v) => void ((this.settled = true), resolve(v));
    this.reject = (e) => void ((this.settled = true), reject(e));
  });
}

function checkPeer(argument: string, peer: PeerAddress): PeerAddress {
  const address = peer !== null && typeof peer === 'object' ? canonicalIp(peer.address) : undefined;
  if (address === undefined) throw new InvalidArgumentError(argument, 'must be { address: <IP address>, port }');
  if (!Number.isInteger(peer.port) || peer.port < 1 || peer.port > 65535) {
    throw new InvalidArgumentError(argument, `port ${peer.port} is not in 1-65535`);
  }
  return { address, port: peer.port };
}

function positive(name: string, v: number | undefined, dflt: number): number {
  if (v === undefined) return dflt;
  if (typeof v !== 'number' || !Number.isFinite(v) || v <= 0) throw new InvalidOptionError(name, `must be a positive number, got ${v}`);
  return v;
}

export class TurnClient extends EventEmitter {
  /** The server URL as given. */
  readonly url: string;
  readonly server: Readonly<IceServerUrl>;
  /** Counters, shared with the allocation machine. */
  readonly stats: TurnStats = newTurnStats();

  readonly #opts: TurnClientOptions;
  readonly #net: Network;
  readonly #timeoutMs: number;
  #state: TurnClientState = 'new';
  #machine: Allocation | undefined;
  #allocation: TurnAllocation | undefined;
  #link: Link | undefined;
  /** Name lookup, bind or connect in flight (it cannot be cancelled: close() waits for it and releases what it gives). */
  #setup: Promise<void> | undefined;
  #setupDeadline = Infinity;
  #setupStep = '';
  /** A lookup, bind or connect is being awaited. */
  #setupPending = false;
  #allocating: Deferred<TurnAllocation> | undefined;
  /** Why allocate() failed, for its rejection once the teardown is done. */
  #failure: TurnError | undefined;
  #closing: Promise<void> | undefined;
  #machineClosed: Deferred<void> | undefined;
  /** The one timer, armed for the earliest of the setup deadline and the machine's next deadline. */
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  #permissionWaits = new Map<string, Deferred<void>>();
  #channelWaits = new Map<string, Deferred<number>>();

  constructor(opts: TurnClientOptions) {
    super();
    if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError('opts', 'must be an options object');
    const server = parseIceServerUrl(opts.url);
    if (server.scheme !== 'turn' && server.scheme !== 'turns') {
      throw new InvalidOptionError('url', `a TURN client needs a turn: or turns: URL, got ${server.scheme}:`);
    }
    if (typeof opts.username !== 'string' || opts.username === '') throw new InvalidOptionError('username', 'must be a non-empty string');
    if (typeof opts.password !== 'string') throw new InvalidOptionError('password', 'must be a string');
    if (opts.localAddress !== undefined && canonicalIp(opts.localAddress) === undefined) {
      throw new InvalidOptionError('localAddress', `"${opts.localAddress}" is not an IP address`);
    }
    if (opts.lifetime !== undefined && (!Number.isInteger(opts.lifetime) || opts.lifetime <= 0)) {
      throw new InvalidOptionError('lifetime', 'must be a positive whole number of seconds');
    }
    if (opts.network !== undefined && (opts.network === null || typeof opts.network !== 'object')) {
      throw new InvalidOptionError('network', 'must be a Network');
    }
    for (const name of ['rto', 'refreshMarginMs', 'permissionRefreshMs', 'channelRefreshMs'] as const) positive(name, opts[name], 1);
    this.url = opts.url;
    this.server = server;
    this.#opts = opts;
    this.#net = opts.network ?? nodeNetwork;
    this.#timeoutMs = positive('timeoutMs', opts.timeoutMs, 3000);
  }

  /** Creates a client and allocates; on failure nothing is left open. */
  static async allocate(opts: TurnClientOptions): Promise<TurnClient> {
    const client = new TurnClient(opts);
    await client.allocate();
    return client;
  }

  get state(): TurnClientState {
    return this.#state;
  }

  /** The allocation once allocate() has succeeded (lifetime updated on each refresh). */
  get allocation(): TurnAllocation | undefined {
    return this.#allocation;
  }

  /** Local address of the socket or connection to the server (the base of the relayed candidate's path). */
  get localAddress(): PeerAddress | undefined {
    return this.#link?.local;
  }

  /** The bound channel number for `peer`, if any. */
  channelFor(peer: PeerAddress): number | undefined {
    return this.#machine?.channelFor(peer);
  }

  /** Whether a permission for `address` is installed on the server. */
  hasPermission(address: string): boolean {
    return this.#machine?.hasPermission(address) === true;
  }

  /**
   * Connects to the server and creates the allocation. Bounded by `timeoutMs`
   * overall. Rejects with a TurnError once the client has closed (while a
   * TCP/TLS connect is still in flight, at once: close() then resolves when
   * its socket is gone).
   */
  allocate(): Promise<TurnAllocation> {
    if (this.#allocating) return this.#allocating.promise;
    if (this.#state !== 'new') return Promise.reject(new InvalidStateError(`TURN client is ${this.#state}`));
    this.#state = 'allocating';
    this.#allocating = new Deferred();
    this.#setupDeadline = this.#net.now() + this.#timeoutMs;
    this.#arm();
    this.#setup = this.#connect().catch((err: unknown) => {
      if (this.#state !== 'allocating') return;
      this.#failure = err instanceof TurnError ? err : this.#error((err as Error).message);
      void this.close();
    });
    return this.#allocating.promise;
  }

  /**
   * Installs a permission for a peer IP address (the port is ignored, §9) and
   * keeps it refreshed. Resolves once installed.
   */
  createPermission(peer: string | { address: string }): Promise<void> {
    const address = typeof peer === 'string' ? peer : peer?.address;
    const ip = typeof address === 'string' ? canonicalIp(address) : undefined;
    if (ip === undefined) return Promise.reject(new InvalidArgumentError('peer', 'must be an IP address'));
    const m = this.#machine;
    if (this.#state !== 'allocated' || m === undefined) return Promise.reject(new InvalidStateError(`TURN client is ${this.#state}, not allocated`));
    if (m.hasPermission(ip)) return Promise.resolve();
    let w = this.#permissionWaits.get(ip);
    if (w === undefined) {
      w = new Deferred();
      this.#permissionWaits.set(ip, w);
      this.#run((io) => m.permit(io, ip));
    }
    return w.promise;
  }

  /**
   * Binds a channel (0x4000-0x4FFF) to a peer transport address, §12.1, and
   * keeps it refreshed. From then on send() to that peer uses ChannelData and
   * the server sends its data the same way. Resolves with the channel number.
   */
  bindChannel(peer: PeerAddress): Promise<number> {
    let p: PeerAddress;
    try {
      p = checkPeer('peer', peer);
    } catch (err) {
      return Promise.reject(err);
    }
    const m = this.#machine;
    if (this.#state !== 'allocated' || m === undefined) return Promise.reject(new InvalidStateError(`TURN client is ${this.#state}, not allocated`));
    const bound = m.channelFor(p);
    if (bound !== undefined) return Promise.resolve(bound);
    const key = addressKey(p.address, p.port);
    let w = this.#channelWaits.get(key);
    if (w === undefined) {
      w = new Deferred();
      this.#channelWaits.set(key, w);
      this.#run((io) => m.bindChannel(io, p));
    }
    return w.promise;
  }

  /**
   * Sends `data` to `peer` through the relay: ChannelData when a channel is
   * bound to the peer, else a Send indication. Without a permission for the
   * peer's IP one is created first and the data queued until it is installed
   * (the server drops data to peers without permission, §11.2). Returns false
   * if the data was dropped (no allocation, or the queue is full).
   */
  send(data: Buffer, peer: PeerAddress): boolean {
    const m = this.#machine;
    if (this.#state !== 'allocated' || m === undefined) {
      this.stats.sendDropped++;
      return false;
    }
    const p = checkPeer('peer', peer);
    let ok = false;
    this.#run((io) => {
      ok = m.send(io, data, p);
    });
    return ok;
  }

  /**
   * Deallocates (Refresh with LIFETIME 0, waiting at most min(timeoutMs, 1 s)
   * for the answer), stops the timer and closes the socket or connection (a
   * connect still in flight: once it completes). Resolves when the handles
   * are gone. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    const closing = new Deferred<void>();
    this.#closing = closing.promise;
    this.#state = 'closed';
    this.#setupDeadline = Infinity;
    const d = this.#allocating;
    const err = this.#failure ?? this.#error('Allocate: client closed');
    const settle = () => {
      if (d !== undefined && !d.settled) d.reject(err);
    };
    // allocate() stays bounded by timeoutMs although a lookup or connect cannot be cancelled.
    if (this.#setupPending) settle();
    void this.#teardown().finally(() => {
      settle();
      closing.resolve();
    });
    return closing.promise;
  }

  async #teardown(): Promise<void> {
    const m = this.#machine;
    if (m !== undefined) {
      const done = new Deferred<void>();
      this.#machineClosed = done;
      this.#run((io) => m.close(io));
      await done.promise;
    }
    await this.#setup;
    this.#disarm();
    const closed = this.#error('client closed');
    for (const w of [...this.#permissionWaits.values(), ...this.#channelWaits.values()]) w.reject(closed);
    this.#permissionWaits.clear();
    this.#channelWaits.clear();
    const link = this.#link;
    this.#link = undefined;
    if (link) await link.close();
    this.emit('close');
  }

  /* ---- Feeding the machine ---- */

  /** Calls into the machine, then acts on its events and re-arms the timer. */
  #run(fn: (io: AllocationIo) => void): void {
    const events: AllocationEvent[] = [];
    const link = this.#link;
    fn({
      now: this.#net.now(),
      send: (data) => link?.send(data),
      randomBytes: (n) => this.#net.randomBytes(n),
      emit: (e) => events.push(e),
    });
    for (const e of events) this.#onEvent(e);
    this.#arm();
  }

  #onEvent(e: AllocationEvent): void {
    switch (e.type) {
      case 'allocated':
        if (this.#state !== 'allocating') return;
        this.#state = 'allocated';
        this.#allocation = { relayed: e.relayed, mapped: e.mapped, lifetime: e.lifetime };
        debug('%s: allocated %s:%d for %d s', this.url, e.relayed.address, e.relayed.port, e.lifetime);
        this.#allocating!.resolve(this.#allocation);
        return;
      case 'failed':
        this.#failure = e.error;
        void this.close();
        return;
      case 'lost':
        debug('%s: allocation lost: %s', this.url, e.error.message);
        // 'failed' after the state is closed and before 'close'.
        void this.close();
        this.emit('failed', e.error);
        return;
      case 'refresh':
        if (e.kind === 'allocation' && this.#allocation) this.#allocation.lifetime = e.detail as number;
        this.emit('refresh', e.kind, e.detail);
        return;
      case 'refresh-failed':
        debug('%s: %s refresh failed: %s', this.url, e.kind, e.error.message);
        this.emit('refresh-failed', e.kind, e.error);
        return;
      case 'permission': {
        const w = this.#permissionWaits.get(e.address);
        this.#permissionWaits.delete(e.address);
        if (e.error) w?.reject(e.error);
        else w?.resolve();
        return;
      }
      case 'channel': {
        const key = addressKey(e.peer.address, e.peer.port);
        const w = this.#channelWaits.get(key);
        this.#channelWaits.delete(key);
        if (e.error) w?.reject(e.error);
        else w?.resolve(e.channel!);
        return;
      }
      case 'closed':
        this.#machineClosed?.resolve();
        return;
    }
  }

  #onPacket(buf: Buffer): void {
    const m = this.#machine;
    if (m === undefined) return;
    let got: { data: Buffer; peer: TransportAddress } | undefined;
    this.#run((io) => {
      got = m.receive(io, buf);
    });
    if (got) this.emit('data', got.data, { address: got.peer.address, port: got.peer.port });
  }

  #linkClosed(reason: string): void {
    const m = this.#machine;
    if (m !== undefined) this.#run((io) => m.linkClosed(io, reason));
  }

  #arm(): void {
    const at = Math.min(this.#setupDeadline, this.#machine?.nextTimeout() ?? Infinity);
    if (at === this.#timerAt) return;
    this.#disarm();
    if (at === Infinity) return;
    this.#timerAt = at;
    this.#timer = this.#net.setTimer(() => this.#onTimer(), Math.max(0, Math.ceil(at - this.#net.now())));
  }

  #disarm(): void {
    if (this.#timer !== undefined) this.#net.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
  }

  #onTimer(): void {
    this.#timer = undefined;
    this.#timerAt = Infinity;
    if (this.#state === 'allocating' && this.#net.now() >= this.#setupDeadline) {
      this.#failure = this.#error(`timed out ${this.#setupStep} (${this.#timeoutMs} ms)`);
      void this.close();
      return;
    }
    const m = this.#machine;
    if (m !== undefined) this.#run((io) => m.handleTimeout(io));
    else this.#arm();
  }

  /* ---- Connection to the server ---- */

  async #connect(): Promise<void> {
    const { host, port } = this.server;
    let ip = canonicalIp(host);
    if (ip === undefined) {
      this.#setupStep = `resolving ${host}`;
      try {
        const found = await this.#pending(this.#net.lookup(host));
        ip = canonicalIp(found) ?? found;
      } catch (err) {
        throw this.#error(`cannot resolve ${host}: ${(err as Error).message}`);
      }
      if (this.#state !== 'allocating') return;
    }
    const server: TransportAddress = { address: ip, port };
    const local = this.#opts.localAddress;
    let link: Link;
    if (this.server.transport === 'udp') {
      this.#setupStep = 'binding a UDP socket';
      let sock: DatagramSocket;
      try {
        sock = await this.#pending(this.#net.bindDatagram(local ?? (isV6(ip) ? '::' : '0.0.0.0'), 0));
      } catch (err) {
        throw this.#error(`cannot bind a UDP socket on ${local ?? 'any address'}: ${(err as Error).message}`);
      }
      if (this.#state !== 'allocating') return sock.close();
      sock.onMessage((data, from) => {
        // Only the server may speak on this socket (the 5-tuple is the allocation's identity, §2.2).
        if (from.port !== port || from.address !== ip) {
          this.stats.unexpected++;
          return;
        }
        this.#onPacket(data);
      });
      link = { local: sock.local, send: (buf) => void sock.send(buf, server), close: () => sock.close() };
    } else {
      const secure = this.server.secure;
      this.#setupStep = `connecting over ${secure ? 'TLS' : 'TCP'}`;
      let s: StreamSocket;
      try {
        s = await this.#pending(this.#net.connectStream({
          remote: server,
          ...(local !== undefined ? { local: { address: local } } : {}),
          ...(secure ? {
            tls: {
              ca: this.#opts.ca,
              rejectUnauthorized: this.#opts.rejectUnauthorized ?? true,
              // SNI takes names only (RFC 6066 §3); an IP is checked against the certificate's IP SANs.
              servername: this.#opts.servername ?? (canonicalIp(host) === undefined ? host : undefined),
            },
          } : {}),
        }));
      } catch (err) {
        const e = err as Error & { code?: string };
        throw this.#error(e.code === 'ECONNREFUSED' ? 'connection refused' : secure ? `TLS: ${e.message}` : e.message);
      }
      // close() came while connecting: the connection must not outlive it.
      if (this.#state !== 'allocating') return s.close();
      const framer = new StreamFramer();
      let broken = false;
      s.onData((chunk) => {
        if (broken) return;
        if (!framer.push(chunk, (frame) => this.#onPacket(frame))) {
          // Neither STUN nor ChannelData: the stream is out of step and cannot be resynchronised (§12.5).
          broken = true;
          this.stats.malformed++;
          this.#linkClosed('stream out of sync, connection closed');
          void s.close();
        }
      });
      s.onClose(() => this.#linkClosed('connection closed by the server'));
      link = { local: s.local, send: (buf) => void s.write(buf), close: () => s.close() };
    }
    const budget = this.#setupDeadline - this.#net.now();
    this.#link = link;
    if (budget <= 0) throw this.#error(`timed out ${this.#setupStep} (${this.#timeoutMs} ms)`);
    this.#setupDeadline = Infinity;
    const o = this.#opts;
    const m = new Allocation({
      url: this.url,
      server,
      transport: this.server.secure ? 'tls' : this.server.transport,
      username: o.username,
      password: o.password,
      timeoutMs: this.#timeoutMs,
      rto: o.rto,
      lifetime: o.lifetime,
      refreshMarginMs: o.refreshMarginMs,
      permissionRefreshMs: o.permissionRefreshMs,
      channelRefreshMs: o.channelRefreshMs,
      software: o.software,
    }, this.stats);
    this.#machine = m;
    this.#run((io) => m.start(io, budget));
  }

  /** Awaits one setup step, noting that it is in flight. */
  async #pending<T>(p: Promise<T>): Promise<T> {
    this.#setupPending = true;
    try {
      return await p;
    } finally {
      this.#setupPending = false;
    }
  }

  #error(reason: string): TurnError {
    return new TurnError(this.url, undefined, reason);
  }
}
