/**
 * A TURN client for one allocation (RFC 8656), the way an ICE agent uses it to
 * gather a relayed candidate and to send and receive through the relay.
 *
 * - Allocate (§7.1): REQUESTED-TRANSPORT UDP; the first answer is normally a
 *   401 challenge carrying REALM and NONCE, after which every request carries
 *   USERNAME, REALM, NONCE and MESSAGE-INTEGRITY keyed with
 *   MD5(username:realm:password) (the long-term credential mechanism,
 *   RFC 8489 §9.2). A 438 Stale Nonce is answered once with the new nonce.
 * - Refresh (§7.2) a little before the lifetime runs out; Refresh with
 *   LIFETIME 0 deallocates (§7.3) on close().
 * - CreatePermission (§9) per peer IP, refreshed before the 300 s permission
 *   lifetime ends; ChannelBind (§12) per peer transport address, refreshed
 *   before the 600 s channel lifetime ends.
 * - Data goes out in a ChannelData message when a channel is bound to the
 *   peer (§12.4), else in a Send indication (§11); it comes back in a Data
 *   indication or ChannelData, emitted as `data`.
 *
 * Transport to the server is UDP (requests retransmitted, RFC 8489 §6.2.1),
 * TCP or TLS (one transmission, one overall timeout, RFC 8489 §6.2.2; the
 * stream is framed as in §12.5). All timers are entries in a Scheduler, the
 * agent's when one is given.
 */
import { EventEmitter } from 'node:events';
import net from 'node:net';
import tls from 'node:tls';
import { lookup } from 'node:dns/promises';
import createDebug from 'debug';
import {
  PROTOCOL_UDP,
  TURN_METHOD,
  decodeStun,
  encodeSendIndication,
  encodeTurnRequest,
  getData,
  getErrorCode,
  getLifetime,
  getNonce,
  getRealm,
  getXorMappedAddress,
  getXorPeerAddress,
  getXorRelayedAddress,
  longTermKey,
  newTransactionId,
  normalizeAddress,
  verifyFingerprint,
  verifyIntegrity,
  type DecodedStun,
  type LongTermAuth,
  type TurnRequestFields,
} from '../stun/message.js';
import { Transaction } from '../stun/transaction.js';
import { Scheduler, type ScheduledTask } from '../scheduler.js';
import { UdpTransport } from '../transport/udp.js';
import { InvalidArgumentError, InvalidOptionError, InvalidStateError, TurnError } from '../errors.js';
import { parseIceServerUrl, type IceServerUrl } from './url.js';
import { MAX_CHANNEL, MIN_CHANNEL, StreamFramer, decodeChannelData, encodeChannelData } from './framing.js';

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
  /** Timers are entries in this scheduler (the agent's); one is created if none is given. */
  scheduler?: Scheduler;
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

/** Counters. "Dropped" packets never throw; they are counted here. */
export interface TurnStats {
  /** Requests started (retransmissions not counted). */
  requests: number;
  retransmissions: number;
  /** Responses matched to a request. */
  responses: number;
  /** 438 Stale Nonce answers retried with the new nonce. */
  staleNonces: number;
  /** Successful allocation refreshes (not counting the deallocation). */
  allocationRefreshes: number;
  permissionsInstalled: number;
  permissionRefreshes: number;
  channelsBound: number;
  channelRefreshes: number;
  sendIndications: number;
  channelDataSent: number;
  dataIndications: number;
  channelDataReceived: number;
  /** send() calls whose data was not sent (no allocation, queue full, permission refused). */
  sendDropped: number;
  /** Packets from the server that did not parse as STUN or ChannelData. */
  malformed: number;
  /** Well-formed packets that were not expected: unknown transaction, bad integrity, unknown channel, another source. */
  unexpected: number;
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
  readonly kind: 'udp' | 'tcp' | 'tls';
  readonly local: PeerAddress;
  send(buf: Buffer): void;
  close(): Promise<void>;
}

interface Pending {
  method: number;
  tx: Transaction;
  /** Key the request was authenticated with: the response must verify with it. */
  key: Buffer | undefined;
  resolve(m: DecodedStun): void;
  reject(err: Error): void;
}

interface Permission {
  address: string;
  installed: boolean;
  promise: Promise<void>;
  task: ScheduledTask | undefined;
  /** Data sent before the permission was installed (the server would drop it, RFC 8656 §11.2). */
  queue: Array<{ data: Buffer; port: number }>;
}

interface Channel {
  number: number;
  peer: PeerAddress;
  bound: boolean;
  promise: Promise<number>;
  task: ScheduledTask | undefined;
}

const METHOD_NAMES: Record<number, string> = {
  [TURN_METHOD.ALLOCATE]: 'Allocate',
  [TURN_METHOD.REFRESH]: 'Refresh',
  [TURN_METHOD.CREATE_PERMISSION]: 'CreatePermission',
  [TURN_METHOD.CHANNEL_BIND]: 'ChannelBind',
};

/** What the error codes TURN clients meet mean (RFC 8489 §14.8, RFC 8656 §19). */
const ERROR_MEANINGS: Record<number, string> = {
  300: 'try alternate server (redirection is not supported)',
  400: 'bad request',
  401: 'unauthorized: wrong username or password',
  403: 'forbidden',
  420: 'unknown attribute',
  437: 'allocation mismatch',
  438: 'stale nonce',
  440: 'address family not supported',
  441: 'wrong credentials',
  442: 'unsupported transport protocol',
  443: 'peer address family mismatch',
  486: 'allocation quota reached',
  500: 'server error',
  508: 'insufficient capacity',
};

/** Packets queued per peer IP while its permission is being installed. */
const MAX_QUEUED = 64;

const DEFAULTS = {
  timeoutMs: 3000,
  rto: 500,
  refreshMarginMs: 60_000,
  permissionRefreshMs: 240_000,
  channelRefreshMs: 540_000,
};

/**
 * UDP retransmission waits, RFC 8489 §6.2.1: RTO, 2·RTO, 4·RTO …, at most Rc = 7
 * transmissions, cut so that they add up to `budget`.
 */
function udpWaits(rto: number, budget: number): number[] {
  const waits: number[] = [];
  let left = budget;
  let w = rto;
  while (left > 0 && waits.length < 7) {
    const x = Math.min(w, left);
    waits.push(x);
    left -= x;
    w *= 2;
  }
  if (left > 0) waits[waits.length - 1]! += left;
  return waits;
}

function peerKey(address: string, port: number): string {
  return `${address}|${port}`;
}

function checkPeer(argument: string, peer: PeerAddress): PeerAddress {
  if (peer === null || typeof peer !== 'object' || net.isIP(peer.address) === 0) {
    throw new InvalidArgumentError(argument, 'must be { address: <IP address>, port }');
  }
  if (!Number.isInteger(peer.port) || peer.port < 1 || peer.port > 65535) {
    throw new InvalidArgumentError(argument, `port ${peer.port} is not in 1-65535`);
  }
  return { address: normalizeAddress(peer.address), port: peer.port };
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
  readonly stats: TurnStats = {
    requests: 0,
    retransmissions: 0,
    responses: 0,
    staleNonces: 0,
    allocationRefreshes: 0,
    permissionsInstalled: 0,
    permissionRefreshes: 0,
    channelsBound: 0,
    channelRefreshes: 0,
    sendIndications: 0,
    channelDataSent: 0,
    dataIndications: 0,
    channelDataReceived: 0,
    sendDropped: 0,
    malformed: 0,
    unexpected: 0,
  };

  readonly #opts: TurnClientOptions;
  readonly #timeoutMs: number;
  readonly #rto: number;
  readonly #refreshMarginMs: number;
  readonly #permissionRefreshMs: number;
  readonly #channelRefreshMs: number;
  readonly #sched: Scheduler;
  readonly #ownScheduler: boolean;

  #state: TurnClientState = 'new';
  #link: Link | undefined;
  #serverIp: string | undefined;
  #auth: LongTermAuth | undefined;
  #allocation: TurnAllocation | undefined;
  #allocating: Promise<TurnAllocation> | undefined;
  #closing: Promise<void> | undefined;
  #refreshTask: ScheduledTask | undefined;
  #expiresAt = 0;
  /** Every scheduler entry we own, so that close() can cancel them all. */
  #tasks = new Set<ScheduledTask>();
  #pending = new Map<string, Pending>();
  #permissions = new Map<string, Permission>();
  #channelsByPeer = new Map<string, Channel>();
  #channelsByNumber = new Map<number, Channel>();
  #nextChannel = MIN_CHANNEL;

  constructor(opts: TurnClientOptions) {
    super();
    if (opts === null || typeof opts !== 'object') throw new InvalidArgumentError('opts', 'must be an options object');
    const server = parseIceServerUrl(opts.url);
    if (server.scheme !== 'turn' && server.scheme !== 'turns') {
      throw new InvalidOptionError('url', `a TURN client needs a turn: or turns: URL, got ${server.scheme}:`);
    }
    if (typeof opts.username !== 'string' || opts.username === '') throw new InvalidOptionError('username', 'must be a non-empty string');
    if (typeof opts.password !== 'string') throw new InvalidOptionError('password', 'must be a string');
    if (opts.localAddress !== undefined && net.isIP(opts.localAddress) === 0) {
      throw new InvalidOptionError('localAddress', `"${opts.localAddress}" is not an IP address`);
    }
    if (opts.lifetime !== undefined && (!Number.isInteger(opts.lifetime) || opts.lifetime <= 0)) {
      throw new InvalidOptionError('lifetime', 'must be a positive whole number of seconds');
    }
    this.url = opts.url;
    this.server = server;
    this.#opts = opts;
    this.#timeoutMs = positive('timeoutMs', opts.timeoutMs, DEFAULTS.timeoutMs);
    this.#rto = positive('rto', opts.rto, DEFAULTS.rto);
    this.#refreshMarginMs = positive('refreshMarginMs', opts.refreshMarginMs, DEFAULTS.refreshMarginMs);
    this.#permissionRefreshMs = positive('permissionRefreshMs', opts.permissionRefreshMs, DEFAULTS.permissionRefreshMs);
    this.#channelRefreshMs = positive('channelRefreshMs', opts.channelRefreshMs, DEFAULTS.channelRefreshMs);
    this.#ownScheduler = opts.scheduler === undefined;
    this.#sched = opts.scheduler ?? new Scheduler();
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
    const ch = this.#channelsByPeer.get(peerKey(normalizeAddress(peer.address), peer.port));
    return ch?.bound ? ch.number : undefined;
  }

  /** Whether a permission for `address` is installed on the server. */
  hasPermission(address: string): boolean {
    return this.#permissions.get(normalizeAddress(address))?.installed === true;
  }

  /* ---------------------------------------------------------------- *
   * Allocate (RFC 8656 §7.1, §7.2)
   * ---------------------------------------------------------------- */

  /**
   * Connects to the server and creates the allocation. Bounded by `timeoutMs`
   * overall. Rejects with a TurnError; the client is then closed.
   */
  allocate(): Promise<TurnAllocation> {
    if (this.#allocating) return this.#allocating;
    if (this.#state !== 'new') return Promise.reject(new InvalidStateError(`TURN client is ${this.#state}`));
    this.#state = 'allocating';
    this.#allocating = this.#allocate().catch(async (err: unknown) => {
      await this.close();
      throw err;
    });
    return this.#allocating;
  }

  async #allocate(): Promise<TurnAllocation> {
    const deadline = this.#sched.now() + this.#timeoutMs;
    const left = () => {
      const ms = deadline - this.#sched.now();
      if (ms <= 0) throw this.#error(undefined, `Allocate: no success within ${this.#timeoutMs} ms`);
      return ms;
    };
    await this.#connect(deadline);
    const fields: TurnRequestFields = {
      requestedTransport: PROTOCOL_UDP,
      lifetime: this.#opts.lifetime,
      software: this.#opts.software,
    };
    // The first Allocate goes without credentials: the server's 401 tells the realm and a nonce (RFC 8656 §7.1, RFC 8489 §9.2.3).
    let res = await this.#transact(TURN_METHOD.ALLOCATE, fields, undefined, left());
    let staleRetried = false;
    for (;;) {
      if (res.cls === 'success') break;
      const err = getErrorCode(res);
      if (err?.code === 401 && this.#auth === undefined) {
        const realm = getRealm(res);
        const nonce = getNonce(res);
        if (realm === undefined || nonce === undefined) throw this.#error(401, 'Allocate: 401 challenge without REALM or NONCE');
        this.#auth = { username: this.#opts.username, realm, nonce, key: longTermKey(this.#opts.username, realm, this.#opts.password) };
        debug('%s: challenged, realm %s', this.url, realm);
      } else if (err?.code === 438 && this.#auth !== undefined && !staleRetried) {
        // Stale Nonce: retry once with the nonce this answer carries (RFC 8489 §9.2.5).
        staleRetried = true;
        this.#takeNonce(res);
      } else {
        // A 401 after credentials were sent means they are wrong (RFC 8489 §9.2.5).
        throw this.#errorFromResponse('Allocate', res);
      }
      res = await this.#transact(TURN_METHOD.ALLOCATE, fields, this.#auth, left());
    }
    // close() may have come while the answer was on its way.
    if (this.#state !== 'allocating') throw this.#error(undefined, 'Allocate: client closed');
    const relayed = getXorRelayedAddress(res);
    if (relayed === undefined) throw this.#error(undefined, 'Allocate: success response without XOR-RELAYED-ADDRESS');
    const mapped = getXorMappedAddress(res);
    // RFC 8656 §7.1: LIFETIME is in every success response; 600 s is the default should it be missing.
    const lifetime = getLifetime(res) ?? 600;
    this.#allocation = {
      relayed: { address: relayed.address, port: relayed.port, family: relayed.family },
      mapped: mapped && { address: normalizeAddress(mapped.address), port: mapped.port },
      lifetime,
    };
    this.#state = 'allocated';
    debug('%s: allocated %s:%d for %d s', this.url, relayed.address, relayed.port, lifetime);
    this.#scheduleRefresh(lifetime);
    return this.#allocation;
  }

  /** When to refresh: `refreshMarginMs` before expiry, but no later than half-way (RFC 8656 §7: refresh before it expires). */
  #scheduleRefresh(lifetimeSec: number): void {
    const ms = lifetimeSec * 1000;
    this.#expiresAt = this.#sched.now() + ms;
    this.#refreshTask?.cancel();
    this.#refreshTask = this.#after(Math.max(ms - this.#refreshMarginMs, ms / 2), () => void this.#refreshAllocation());
  }

  async #refreshAllocation(): Promise<void> {
    if (this.#state !== 'allocated') return;
    let err: TurnError;
    try {
      const res = await this.#request(TURN_METHOD.REFRESH, { lifetime: this.#opts.lifetime }, this.#timeoutMs);
      if (this.#state !== 'allocated') return;
      if (res.cls === 'success') {
        const lifetime = getLifetime(res) ?? this.#allocation!.lifetime;
        this.#allocation!.lifetime = lifetime;
        this.stats.allocationRefreshes++;
        debug('%s: allocation refreshed for %d s', this.url, lifetime);
        this.#scheduleRefresh(lifetime);
        this.emit('refresh', 'allocation', lifetime);
        return;
      }
      err = this.#errorFromResponse('Refresh', res);
      // 437: the server no longer knows this allocation (RFC 8656 §7.3); nothing to retry.
      if (err.stunCode === 437) return this.#lost(err);
    } catch (e) {
      if (this.#state !== 'allocated') return;
      err = e as TurnError;
    }
    // Unanswered or refused for another reason: try again half-way to expiry while there is time.
    const left = this.#expiresAt - this.#sched.now();
    if (left > 2 * this.#timeoutMs) {
      debug('%s: refresh failed (%s), retrying', this.url, err.message);
      this.#refreshTask = this.#after(left / 2, () => void this.#refreshAllocation());
    } else {
      this.#lost(err);
    }
  }

  /** The allocation is gone: report it and release everything. */
  #lost(err: TurnError): void {
    if (this.#state === 'closed') return;
    debug('%s: allocation lost: %s', this.url, err.message);
    // Say so before closing, so that listeners see 'failed' before 'close'.
    const wasAllocated = this.#state === 'allocated';
    this.#state = 'closed';
    if (wasAllocated) this.emit('failed', err);
    void this.#teardown(false);
  }

  /* ---------------------------------------------------------------- *
   * Permissions (RFC 8656 §9) and channels (§12)
   * ---------------------------------------------------------------- */

  /**
   * Installs a permission for a peer IP address (the port is ignored, §9) and
   * keeps it refreshed. Resolves once installed; a second call for the same
   * address returns the same promise.
   */
  createPermission(peer: string | { address: string }): Promise<void> {
    const address = typeof peer === 'string' ? peer : peer?.address;
    if (typeof address !== 'string' || net.isIP(address) === 0) {
      return Promise.reject(new InvalidArgumentError('peer', 'must be an IP address'));
    }
    if (this.#state !== 'allocated') return Promise.reject(new InvalidStateError(`TURN client is ${this.#state}, not allocated`));
    const key = normalizeAddress(address);
    const existing = this.#permissions.get(key);
    if (existing) return existing.promise;
    const perm: Permission = { address: key, installed: false, promise: Promise.resolve(), task: undefined, queue: [] };
    perm.promise = this.#installPermission(perm);
    this.#permissions.set(key, perm);
    return perm.promise;
  }

  async #installPermission(perm: Permission): Promise<void> {
    let res: DecodedStun;
    try {
      res = await this.#request(TURN_METHOD.CREATE_PERMISSION, { peer: { address: perm.address, port: 0 } }, this.#timeoutMs);
      if (res.cls !== 'success') throw this.#errorFromResponse('CreatePermission', res);
    } catch (err) {
      // Forget it, so that a later call tries again; queued data is lost.
      if (this.#permissions.get(perm.address) === perm) this.#permissions.delete(perm.address);
      this.stats.sendDropped += perm.queue.length;
      perm.queue = [];
      throw err;
    }
    if (this.#state !== 'allocated') return;
    this.#permissionInstalled(perm);
  }

  #permissionInstalled(perm: Permission): void {
    if (!perm.installed) this.stats.permissionsInstalled++;
    perm.installed = true;
    this.#schedulePermissionRefresh(perm, this.#permissionRefreshMs);
    const queued = perm.queue;
    perm.queue = [];
    for (const q of queued) this.#sendIndication(q.data, { address: perm.address, port: q.port });
  }

  #schedulePermissionRefresh(perm: Permission, ms: number): void {
    perm.task?.cancel();
    perm.task = this.#after(ms, () => void this.#refreshPermission(perm));
  }

  async #refreshPermission(perm: Permission): Promise<void> {
    try {
      const res = await this.#request(TURN_METHOD.CREATE_PERMISSION, { peer: { address: perm.address, port: 0 } }, this.#timeoutMs);
      if (res.cls !== 'success') throw this.#errorFromResponse('CreatePermission', res);
      if (this.#state !== 'allocated') return;
      this.stats.permissionRefreshes++;
      this.#schedulePermissionRefresh(perm, this.#permissionRefreshMs);
      this.emit('refresh', 'permission', perm.address);
    } catch (err) {
      if (this.#state !== 'allocated') return;
      // Try again soon: the permission lasts 300 s from the last success, well past one refresh interval's eighth.
      this.#schedulePermissionRefresh(perm, Math.max(1000, this.#permissionRefreshMs / 8));
      this.emit('refresh-failed', 'permission', err as TurnError);
    }
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
    if (this.#state !== 'allocated') return Promise.reject(new InvalidStateError(`TURN client is ${this.#state}, not allocated`));
    const key = peerKey(p.address, p.port);
    const existing = this.#channelsByPeer.get(key);
    if (existing) return existing.promise;
    const number = this.#freeChannel();
    if (number === undefined) return Promise.reject(new InvalidStateError('no free TURN channel number'));
    const ch: Channel = { number, peer: p, bound: false, promise: Promise.resolve(number), task: undefined };
    ch.promise = this.#bind(ch);
    this.#channelsByPeer.set(key, ch);
    this.#channelsByNumber.set(number, ch);
    return ch.promise;
  }

  #freeChannel(): number | undefined {
    for (let i = 0; i <= MAX_CHANNEL - MIN_CHANNEL; i++) {
      const n = this.#nextChannel;
      this.#nextChannel = n === MAX_CHANNEL ? MIN_CHANNEL : n + 1;
      if (!this.#channelsByNumber.has(n)) return n;
    }
    return undefined;
  }

  async #bind(ch: Channel): Promise<number> {
    try {
      const res = await this.#request(TURN_METHOD.CHANNEL_BIND, { channel: ch.number, peer: ch.peer }, this.#timeoutMs);
      if (res.cls !== 'success') throw this.#errorFromResponse('ChannelBind', res);
    } catch (err) {
      this.#channelsByPeer.delete(peerKey(ch.peer.address, ch.peer.port));
      this.#channelsByNumber.delete(ch.number);
      throw err;
    }
    if (this.#state !== 'allocated') return ch.number;
    ch.bound = true;
    this.stats.channelsBound++;
    this.#scheduleChannelRefresh(ch, this.#channelRefreshMs);
    // A ChannelBind also installs a permission for the peer's IP (§12.1), but
    // that permission lasts 300 s while the channel lasts 600 s: keep it under
    // the permission refresh timer too.
    let perm = this.#permissions.get(ch.peer.address);
    if (!perm) {
      perm = { address: ch.peer.address, installed: false, promise: Promise.resolve(), task: undefined, queue: [] };
      this.#permissions.set(perm.address, perm);
    }
    if (!perm.installed) this.#permissionInstalled(perm);
    return ch.number;
  }

  #scheduleChannelRefresh(ch: Channel, ms: number): void {
    ch.task?.cancel();
    ch.task = this.#after(ms, () => void this.#refreshChannel(ch));
  }

  async #refreshChannel(ch: Channel): Promise<void> {
    try {
      const res = await this.#request(TURN_METHOD.CHANNEL_BIND, { channel: ch.number, peer: ch.peer }, this.#timeoutMs);
      if (res.cls !== 'success') throw this.#errorFromResponse('ChannelBind', res);
      if (this.#state !== 'allocated') return;
      this.stats.channelRefreshes++;
      this.#scheduleChannelRefresh(ch, this.#channelRefreshMs);
      this.emit('refresh', 'channel', ch.number);
    } catch (err) {
      if (this.#state !== 'allocated') return;
      this.#scheduleChannelRefresh(ch, Math.max(1000, this.#channelRefreshMs / 8));
      this.emit('refresh-failed', 'channel', err as TurnError);
    }
  }

  /* ---------------------------------------------------------------- *
   * Data (RFC 8656 §11, §12.4)
   * ---------------------------------------------------------------- */

  /**
   * Sends `data` to `peer` through the relay: ChannelData when a channel is
   * bound to the peer, else a Send indication. Without a permission for the
   * peer's IP one is created first and the data queued until it is installed
   * (the server drops data to peers without permission, §11.2). Returns false
   * if the data was dropped (no allocation, or the queue is full).
   */
  send(data: Buffer, peer: PeerAddress): boolean {
    if (this.#state !== 'allocated' || this.#link === undefined) {
      this.stats.sendDropped++;
      return false;
    }
    const p = checkPeer('peer', peer);
    const ch = this.#channelsByPeer.get(peerKey(p.address, p.port));
    if (ch?.bound) {
      // Over TCP/TLS ChannelData must be padded to 4 bytes (§12.5).
      this.#link.send(encodeChannelData(ch.number, data, this.#link.kind !== 'udp'));
      this.stats.channelDataSent++;
      return true;
    }
    let perm = this.#permissions.get(p.address);
    if (perm?.installed) {
      this.#sendIndication(data, p);
      return true;
    }
    if (perm === undefined) {
      this.createPermission(p.address).catch((err: Error) => debug('%s: permission for %s failed: %s', this.url, p.address, err.message));
      perm = this.#permissions.get(p.address)!;
    }
    if (perm.queue.length >= MAX_QUEUED) {
      this.stats.sendDropped++;
      return false;
    }
    perm.queue.push({ data: Buffer.from(data), port: p.port });
    return true;
  }

  #sendIndication(data: Buffer, peer: PeerAddress): void {
    if (this.#link === undefined) return;
    this.#link.send(encodeSendIndication(newTransactionId(), peer, data));
    this.stats.sendIndications++;
  }

  /* ---------------------------------------------------------------- *
   * Close (RFC 8656 §7.3: Refresh with LIFETIME 0 deletes the allocation)
   * ---------------------------------------------------------------- */

  /**
   * Deallocates (Refresh with LIFETIME 0, waiting at most min(timeoutMs, 1 s)
   * for the answer), stops every timer and closes the socket or connection.
   * Resolves when the handles are gone. Idempotent.
   */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    const deallocate = this.#state === 'allocated';
    this.#state = 'closed';
    this.#closing = this.#teardown(deallocate);
    return this.#closing;
  }

  #teardown(deallocate: boolean): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = (async () => {
      // No refresh may start while we deallocate.
      for (const t of this.#tasks) t.cancel();
      this.#tasks.clear();
      this.#refreshTask = undefined;
      if (deallocate && this.#link !== undefined) {
        try {
          const res = await this.#transact(TURN_METHOD.REFRESH, { lifetime: 0 }, this.#auth, Math.min(this.#timeoutMs, 1000), true);
          if (res.cls === 'error' && getErrorCode(res)?.code === 438) {
            this.#takeNonce(res);
            await this.#transact(TURN_METHOD.REFRESH, { lifetime: 0 }, this.#auth, Math.min(this.#timeoutMs, 1000), true);
          }
          debug('%s: deallocated', this.url);
        } catch (err) {
          debug('%s: deallocation unanswered: %s', this.url, (err as Error).message);
        }
      }
      for (const t of this.#tasks) t.cancel();
      this.#tasks.clear();
      const closed = this.#error(undefined, 'client closed');
      for (const [id, p] of this.#pending) {
        this.#pending.delete(id);
        p.tx.finish();
        p.reject(closed);
      }
      for (const perm of this.#permissions.values()) this.stats.sendDropped += perm.queue.length;
      this.#permissions.clear();
      this.#channelsByPeer.clear();
      this.#channelsByNumber.clear();
      const link = this.#link;
      this.#link = undefined;
      if (link) await link.close();
      if (this.#ownScheduler) this.#sched.close();
      this.emit('close');
    })();
    return this.#closing;
  }

  /* ---------------------------------------------------------------- *
   * Transactions
   * ---------------------------------------------------------------- */

  /** An authenticated request, retried once on 438 Stale Nonce; resolves with the success or error response. */
  async #request(method: number, fields: TurnRequestFields, budgetMs: number): Promise<DecodedStun> {
    const res = await this.#transact(method, fields, this.#auth, budgetMs);
    if (res.cls === 'error' && getErrorCode(res)?.code === 438) {
      this.#takeNonce(res);
      return this.#transact(method, fields, this.#auth, budgetMs);
    }
    return res;
  }

  /** Takes the new NONCE (and REALM, if it changed) from a 438 answer, RFC 8489 §9.2.5. */
  #takeNonce(res: DecodedStun): void {
    const nonce = getNonce(res);
    const realm = getRealm(res) ?? this.#auth!.realm;
    if (nonce === undefined || this.#auth === undefined) return;
    this.stats.staleNonces++;
    this.#auth = {
      ...this.#auth,
      nonce,
      realm,
      key: realm === this.#auth.realm ? this.#auth.key : longTermKey(this.#opts.username, realm, this.#opts.password),
    };
    debug('%s: stale nonce, retrying with the new one', this.url);
  }

  /**
   * One STUN transaction: over UDP retransmitted (RTO doubling) within
   * `budgetMs`, over TCP/TLS sent once (RFC 8489 §6.2.2) and timed out after
   * `budgetMs`. Resolves with the response, success or error.
   */
  #transact(
    method: number,
    fields: TurnRequestFields,
    auth: LongTermAuth | undefined,
    budgetMs: number,
    closing = false,
  ): Promise<DecodedStun> {
    const link = this.#link;
    if (link === undefined || (this.#state === 'closed' && !closing)) {
      return Promise.reject(this.#error(undefined, `${METHOD_NAMES[method]}: client closed`));
    }
    return new Promise((resolve, reject) => {
      const tid = newTransactionId();
      const id = tid.toString('hex');
      const buf = encodeTurnRequest(method, tid, fields, auth);
      const waits = link.kind === 'udp' ? udpWaits(this.#rto, budgetMs) : [budgetMs];
      const tx: Transaction = new Transaction(id, waits, this.#sched, {
        transmit: () => {
          if (tx.attempts > 0) this.stats.retransmissions++;
          link.send(buf);
        },
        timeout: () => {
          this.#pending.delete(id);
          reject(this.#error(undefined, `${METHOD_NAMES[method]}: no response within ${Math.round(budgetMs)} ms`));
        },
      });
      this.#pending.set(id, { method, tx, key: auth?.key, resolve, reject });
      this.stats.requests++;
      tx.start();
    });
  }

  /* ---------------------------------------------------------------- *
   * Incoming packets
   * ---------------------------------------------------------------- */

  /** A datagram (UDP) or a whole frame (TCP/TLS) from the server. Never throws on bad input. */
  #onPacket(buf: Buffer): void {
    const kind = buf.length > 0 ? buf[0]! >> 6 : -1;
    if (kind === 0) {
      const m = decodeStun(buf);
      if (m === undefined) {
        this.stats.malformed++;
        return;
      }
      this.#onStun(m);
    } else if (kind === 1) {
      const cd = decodeChannelData(buf);
      if (cd === undefined) {
        this.stats.malformed++;
        return;
      }
      // Accepted while the ChannelBind is still pending, too: the server may send before its answer arrives.
      const ch = this.#channelsByNumber.get(cd.channel);
      if (ch === undefined) {
        this.stats.unexpected++;
        return;
      }
      this.stats.channelDataReceived++;
      this.emit('data', cd.data, { address: ch.peer.address, port: ch.peer.port });
    } else {
      this.stats.malformed++;
    }
  }

  #onStun(m: DecodedStun): void {
    if (verifyFingerprint(m.raw) === 'bad') {
      this.stats.malformed++;
      return;
    }
    if (m.cls === 'success' || m.cls === 'error') {
      const id = m.transactionId.toString('hex');
      const p = this.#pending.get(id);
      if (p === undefined || p.method !== m.method) {
        this.stats.unexpected++;
        return;
      }
      if (p.key !== undefined && !this.#integrityAcceptable(m, p.key)) {
        // A forged or corrupted answer must not end the transaction: keep waiting for the real one.
        this.stats.unexpected++;
        return;
      }
      this.#pending.delete(id);
      p.tx.finish();
      this.stats.responses++;
      p.resolve(m);
      return;
    }
    if (m.cls === 'indication' && m.method === TURN_METHOD.DATA && this.#state === 'allocated') {
      // Data indication, RFC 8656 §11.4: XOR-PEER-ADDRESS and DATA, both required.
      const peer = getXorPeerAddress(m);
      const data = getData(m);
      if (peer === undefined || data === undefined) {
        this.stats.malformed++;
        return;
      }
      this.stats.dataIndications++;
      this.emit('data', data, { address: peer.address, port: peer.port });
      return;
    }
    this.stats.unexpected++;
  }

  /**
   * RFC 8489 §9.2.5: a success response to an authenticated request must carry
   * a MESSAGE-INTEGRITY that verifies with our key. 401 and 438 answers cannot
   * (the server may no longer accept our key), and other errors are accepted
   * unless their MESSAGE-INTEGRITY is present and wrong.
   */
  #integrityAcceptable(m: DecodedStun, key: Buffer): boolean {
    const r = verifyIntegrity(m.raw, key);
    if (m.cls === 'success') return r === 'ok';
    const code = getErrorCode(m)?.code;
    if (code === 401 || code === 438) return true;
    return r !== 'bad';
  }

  /* ---------------------------------------------------------------- *
   * Connection to the server
   * ---------------------------------------------------------------- */

  async #connect(deadline: number): Promise<void> {
    const { host, port } = this.server;
    const remaining = () => Math.max(0, deadline - this.#sched.now());
    const ip = net.isIP(host) !== 0 ? host : await this.#deadline(lookup(host).then((r) => r.address), remaining(), `resolving ${host}`);
    this.#serverIp = normalizeAddress(ip);
    const family = net.isIPv6(ip) ? 6 : 4;
    const local = this.#opts.localAddress;
    if (this.server.transport === 'udp') {
      let t: UdpTransport;
      try {
        t = await UdpTransport.bind(local ?? (family === 6 ? '::' : '0.0.0.0'));
      } catch (err) {
        throw this.#error(undefined, `cannot bind a UDP socket on ${local}: ${(err as Error).message}`);
      }
      if (this.#state === 'closed') {
        await t.close();
        throw this.#error(undefined, 'client closed');
      }
      t.onPacket((msg, rinfo) => {
        // Only the server may speak on this socket (the 5-tuple is the allocation's identity, §2.2).
        if (rinfo.port !== port || normalizeAddress(rinfo.address) !== this.#serverIp) {
          this.stats.unexpected++;
          return;
        }
        this.#onPacket(msg);
      });
      this.#link = {
        kind: 'udp',
        local: { address: t.address, port: t.port },
        send: (buf) => t.send(buf, port, ip),
        close: () => t.close(),
      };
      return;
    }
    const secure = this.server.secure;
    let pendingSocket: net.Socket | undefined;
    const socket = await this.#deadline(
      new Promise<net.Socket>((resolve, reject) => {
        // tls.connect passes localAddress on to the TCP connection, though its typings do not list it.
        const tlsOptions: tls.ConnectionOptions & { localAddress?: string } = {
          host: ip,
          port,
          localAddress: local,
          ca: this.#opts.ca,
          rejectUnauthorized: this.#opts.rejectUnauthorized ?? true,
          // SNI takes names only (RFC 6066 §3); an IP is checked against the certificate's IP SANs.
          servername: this.#opts.servername ?? (net.isIP(host) === 0 ? host : undefined),
        };
        const s = secure ? tls.connect(tlsOptions) : net.connect({ host: ip, port, localAddress: local });
        const onError = (err: Error) => reject(Object.assign(err, { socket: s }));
        s.once('error', onError);
        s.once(secure ? 'secureConnect' : 'connect', () => {
          s.off('error', onError);
          resolve(s);
        });
        pendingSocket = s;
      }),
      remaining(),
      `connecting over ${secure ? 'TLS' : 'TCP'}`,
    ).catch((err: Error & { code?: string }) => {
      pendingSocket?.destroy();
      if (err instanceof TurnError) throw err;
      const why = err.code === 'ECONNREFUSED' ? 'connection refused' : secure ? `TLS: ${err.message}` : err.message;
      throw this.#error(undefined, why);
    });
    if (this.#state === 'closed') {
      socket.destroy();
      throw this.#error(undefined, 'client closed');
    }
    socket.setNoDelay(true);
    const framer = new StreamFramer();
    const gone = new Promise<void>((resolve) => socket.once('close', () => setImmediate(() => setImmediate(resolve))));
    socket.on('data', (chunk: Buffer) => {
      const ok = framer.push(chunk, (frame) => this.#onPacket(frame));
      if (!ok) {
        // Neither STUN nor ChannelData: the stream is out of step and cannot be resynchronised.
        this.stats.malformed++;
        socket.destroy();
      }
    });
    socket.on('error', (err) => debug('%s: connection error: %s', this.url, err.message));
    socket.on('close', () => {
      if (this.#state === 'allocated') {
        this.#lost(this.#error(undefined, 'connection closed by the server: allocation lost'));
      }
      // Pending requests cannot be answered any more.
      for (const [id, p] of this.#pending) {
        this.#pending.delete(id);
        p.tx.finish();
        p.reject(this.#error(undefined, `${METHOD_NAMES[p.method]}: connection closed`));
      }
    });
    this.#link = {
      kind: secure ? 'tls' : 'tcp',
      local: { address: socket.localAddress ?? '', port: socket.localPort ?? 0 },
      send: (buf) => {
        if (!socket.destroyed) socket.write(buf);
      },
      close: () => {
        socket.destroy();
        return gone;
      },
    };
  }

  /** Races `p` against the remaining time; the timer is a scheduler entry. */
  #deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
    return new Promise<T>((resolve, reject) => {
      const task = this.#after(ms, () => reject(this.#error(undefined, `timed out ${what} (${this.#timeoutMs} ms)`)));
      p.then(
        (v) => {
          task.cancel();
          this.#tasks.delete(task);
          resolve(v);
        },
        (e: unknown) => {
          task.cancel();
          this.#tasks.delete(task);
          reject(e);
        },
      );
    });
  }

  /* ---------------------------------------------------------------- *
   * Helpers
   * ---------------------------------------------------------------- */

  /** A scheduler entry we remember, so that teardown cancels it. */
  #after(ms: number, fn: () => void): ScheduledTask {
    const task: ScheduledTask = this.#sched.after(ms, () => {
      this.#tasks.delete(task);
      fn();
    });
    this.#tasks.add(task);
    return task;
  }

  #error(code: number | undefined, reason: string): TurnError {
    return new TurnError(this.url, code, reason);
  }

  #errorFromResponse(method: string, res: DecodedStun): TurnError {
    const e = getErrorCode(res);
    if (e === undefined) return this.#error(undefined, `${method}: error response without ERROR-CODE`);
    const meaning = ERROR_MEANINGS[e.code] ?? 'error';
    const said = e.reason.trim();
    return this.#error(e.code, `${method} failed: ${meaning}${said ? ` (server said "${said}")` : ''}`);
  }
}
