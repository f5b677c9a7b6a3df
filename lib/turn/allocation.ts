/**
 * One TURN allocation (RFC 8656) as a sans-I/O state machine: the ICE core
 * embeds one per relayed candidate, the `TurnClient` shell one per client.
 *
 * Inputs are the packets from the server (`receive`), the clock (`io.now`,
 * `handleTimeout`) and the API calls; outputs go through the `AllocationIo`
 * passed to each call (packets to the server, events, random transaction
 * ids) and `nextTimeout()`. The state is plain data: no closures, promises,
 * timers or sockets, and no clock or randomness of its own.
 *
 * - Allocate (§7.1): REQUESTED-TRANSPORT UDP; the first answer is normally a
 *   401 challenge with REALM and NONCE, after which every request carries
 *   the long-term credentials (RFC 8489 §9.2, lib/turn/auth.ts). A 438 Stale
 *   Nonce is retried once with the new nonce (RFC 8489 §9.2.5).
 * - Refresh (§7.2) `refreshMarginMs` before expiry, no later than half-way;
 *   Refresh with LIFETIME 0 deallocates (§7.3) on close().
 * - CreatePermission (§9) per peer IP and ChannelBind (§12) per peer
 *   transport address, each kept refreshed.
 * - Data to a peer in ChannelData when a channel is bound (§12.4), else in a
 *   Send indication (§11.1), queued until the peer's permission is installed
 *   (the server would drop it, §11.2); from a peer in a Data indication
 *   (§11.4) or ChannelData, returned by receive().
 *
 * Over UDP requests are retransmitted (RFC 8489 §6.2.1); over TCP/TLS they
 * are sent once with one timeout (§6.2.2) and the shell frames the stream
 * (§12.5) so that receive() always sees one whole message.
 */
import {
  PROTOCOL_UDP,
  TURN_METHOD,
  decodeStun,
  encodeSendIndication,
  getErrorCode,
  getLifetime,
  verifyFingerprint,
  type DecodedStun,
  type TurnRequestFields,
} from '../stun/message.js';
import { TurnError } from '../errors.js';
import { addressKey, canonicalIp, type TransportAddress } from '../transport/address.js';
import { MAX_CHANNEL, MIN_CHANNEL, decodeChannelData, encodeChannelData } from './framing.js';
import { longTermKey } from '../stun/message.js';
import { LongTermCredentials, responseAcceptable } from './auth.js';
import { decodeAllocateSuccess, decodeDataIndication, describeError } from './codec.js';
import { newTransaction, retransmit, timeoutReason, type Purpose, type Transaction } from './transaction.js';

export { ERROR_MEANINGS, udpWaits } from './codec.js';
export {
  newTurnStats, type AllocationConfig, type AllocationEvent, type AllocationIo, type AllocationSnapshot, type AllocationState, type TurnStats,
} from './types.js';
import {
  newTurnStats, type AllocationConfig, type AllocationEvent, type AllocationIo, type AllocationSnapshot, type AllocationState, type TurnStats,
} from './types.js';

/** Packets queued per peer IP while its permission is being installed. */
export const MAX_QUEUED = 64;
/** Upper bound of the deallocation after close(), RFC 8656 §7.3 (with timeoutMs, whichever is less). */
const CLOSE_BUDGET_MS = 1000;

interface Permission {
  address: string;
  installed: boolean;
  /** Infinity while a CreatePermission is out. */ refreshAt: number;
  /** Data sent before the permission was installed (RFC 8656 §11.2). */ queue: Array<{ data: Buffer; port: number }>;
}

interface Channel {
  number: number;
  peer: { address: string; port: number };
  bound: boolean;
  /** Infinity while a ChannelBind is out. */ refreshAt: number;
}

export class Allocation {
  readonly config: AllocationConfig;
  state: AllocationState = 'new';
  readonly stats: TurnStats;
  /** XOR-RELAYED-ADDRESS, once allocated. */
  relayed: { address: string; port: number; family: 'IPv4' | 'IPv6' } | undefined = undefined;
  /** XOR-MAPPED-ADDRESS, once allocated (if the server sent it). */
  mapped: { address: string; port: number } | undefined = undefined;
  /** Seconds, as last granted. */
  lifetime = 0;
  /** Realm, nonce and key once challenged (RFC 8489 §9.2). */
  readonly credentials: LongTermCredentials;

  private readonly rto: number;
  private readonly refreshMarginMs: number;
  private readonly permissionRefreshMs: number;
  private readonly channelRefreshMs: number;
  private transactions = new Map<string, Transaction>();
  private permissions = new Map<string, Permission>();
  /** By addressKey of the peer. */
  private channels = new Map<string, Channel>();
  /** Channel number → addressKey of the peer. */
  private channelPeers = new Map<number, string>();
  private nextChannel = MIN_CHANNEL;
  private allocateDeadline = Infinity;
  private refreshAt = Infinity;
  private expiresAt = Infinity;
  private closeDeadline = Infinity;
  private closeRequested = false;

  /**
   * What an allocated machine needs to go on in another process (session
   * export, lib/core/session.ts): credentials, addresses, and every deadline
   * as time left. Requests in flight are not kept: a refresh or permission
   * whose answer was lost is sent again at once on restore.
   */
  snapshot(now: number): AllocationSnapshot | undefined {
    if (this.state !== 'allocated' || !this.relayed) return undefined;
    const left = (t: number) => (t === Infinity ? 0 : Math.max(0, t - now));
    return {
      realm: this.credentials.realm ?? '', nonce: this.credentials.nonce ?? '', relayed: { ...this.relayed },
      ...(this.mapped ? { mapped: { ...this.mapped } } : {}),
      lifetime: this.lifetime, refreshIn: left(this.refreshAt), expiresIn: left(this.expiresAt),
      permissions: [...this.permissions.values()].filter((p) => p.installed).map((p) => ({ address: p.address, refreshIn: left(p.refreshAt) })),
      channels: [...this.channels.values()].filter((c) => c.bound).map((c) => ({ number: c.number, peer: { ...c.peer }, refreshIn: left(c.refreshAt) })),
    };
  }

  /** An allocated machine from a snapshot (the same 5-tuple must reach the server: the same local socket). */
  static restore(config: AllocationConfig, snap: AllocationSnapshot, now: number): Allocation {
    const a = new Allocation(config);
    a.credentials.realm = snap.realm;
    a.credentials.nonce = snap.nonce;
    a.credentials.key = longTermKey(config.username, snap.realm, config.password);
    a.relayed = { ...snap.relayed };
    a.mapped = snap.mapped && { ...snap.mapped };
    a.lifetime = snap.lifetime;
    a.state = 'allocated';
    a.refreshAt = now + snap.refreshIn;
    a.expiresAt = now + snap.expiresIn;
    for (const p of snap.permissions) a.permissions.set(p.address, { address: p.address, installed: true, refreshAt: now + p.refreshIn, queue: [] });
    for (const c of snap.channels) {
      const key = addressKey(c.peer.address, c.peer.port);
      a.channels.set(key, { number: c.number, peer: { ...c.peer }, bound: true, refreshAt: now + c.refreshIn });
      a.channelPeers.set(c.number, key);
      a.nextChannel = Math.max(a.nextChannel, c.number + 1 > MAX_CHANNEL ? MIN_CHANNEL : c.number + 1);
    }
    return a;
  }

  /** `stats`: count into this object (a shell's), else a new one. */
  constructor(config: AllocationConfig, stats: TurnStats = newTurnStats()) {
    this.config = config;
    this.stats = stats;
    this.credentials = new LongTermCredentials(config.username, config.password);
    this.rto = config.rto ?? 500;
    this.refreshMarginMs = config.refreshMarginMs ?? 60_000;
    this.permissionRefreshMs = config.permissionRefreshMs ?? 240_000;
    this.channelRefreshMs = config.channelRefreshMs ?? 540_000;
  }

  /**
   * The first Allocate, without credentials: the 401 answer gives realm and
   * nonce (RFC 8656 §7.1, RFC 8489 §9.2.3). `budgetMs` (default timeoutMs)
   * bounds the whole Allocate, challenge and retries included.
   */
  start(io: AllocationIo, budgetMs = this.config.timeoutMs): void {
    if (this.state !== 'new') return;
    this.state = 'allocating';
    this.allocateDeadline = io.now + budgetMs;
    const fields: TurnRequestFields = { requestedTransport: PROTOCOL_UDP, lifetime: this.config.lifetime, software: this.config.software };
    this.request(io, 'allocate', '', false, fields, budgetMs, false);
  }

  /** The earliest deadline (ms on the caller's clock), Infinity if none. */
  nextTimeout(): number {
    let t = Math.min(this.closeDeadline, this.allocateDeadline);
    for (const tx of this.transactions.values()) t = Math.min(t, tx.nextAt);
    if (this.state === 'allocated') {
      t = Math.min(t, this.refreshAt);
      for (const p of this.permissions.values()) t = Math.min(t, p.refreshAt);
      for (const c of this.channels.values()) t = Math.min(t, c.refreshAt);
    }
    return t;
  }

  /** Retransmissions, request timeouts, refreshes: whatever is due at `io.now`. */
  handleTimeout(io: AllocationIo): void {
    const now = io.now;
    for (const tx of [...this.transactions.values()]) {
      if (tx.nextAt > now || this.transactions.get(tx.id) !== tx) continue;
      if (retransmit(tx, now)) {
        this.stats.retransmissions++;
        io.send(tx.raw);
      } else {
        this.transactions.delete(tx.id);
        this.answered(io, tx, this.error(undefined, timeoutReason(tx)));
      }
    }
    if (this.state === 'allocating' && now >= this.allocateDeadline) {
      this.fail(io, this.error(undefined, `Allocate: no success within ${this.config.timeoutMs} ms`));
    }
    if (this.state === 'closing' && now >= this.closeDeadline) this.end(io, { type: 'closed' });
    if (this.state !== 'allocated') return;
    if (now >= this.refreshAt) {
      this.refreshAt = Infinity;
      this.request(io, 'refresh', '', false, { lifetime: this.config.lifetime }, this.config.timeoutMs, false);
    }
    for (const p of this.permissions.values()) {
      if (now < p.refreshAt) continue;
      p.refreshAt = Infinity;
      this.request(io, 'permission', p.address, true, { peer: { address: p.address, port: 0 } }, this.config.timeoutMs, false);
    }
    for (const [key, c] of this.channels) {
      if (now < c.refreshAt) continue;
      c.refreshAt = Infinity;
      this.request(io, 'channel', key, true, { channel: c.number, peer: c.peer }, this.config.timeoutMs, false);
    }
  }

  /**
   * One datagram (UDP) or one whole frame (TCP/TLS) from the server (the
   * shell has checked the source). STUN is handled here; relayed application
   * data is returned. Never throws: bad input is counted in stats.
   */
  receive(io: AllocationIo, data: Buffer): { data: Buffer; peer: TransportAddress } | undefined {
    try {
      const kind = data.length > 0 ? data[0]! >> 6 : -1;
      if (kind === 0) {
        const m = decodeStun(data);
        if (m === undefined) this.stats.malformed++;
        else return this.onStun(io, m);
      } else if (kind === 1) {
        const cd = decodeChannelData(data);
        if (cd === undefined) {
          this.stats.malformed++;
          return undefined;
        }
        // Accepted while the ChannelBind is still out, too: the server may relay before its answer arrives.
        const ch = this.channels.get(this.channelPeers.get(cd.channel) ?? '');
        if (ch === undefined) {
          this.stats.unexpected++;
          return undefined;
        }
        this.stats.channelDataReceived++;
        return { data: cd.data, peer: { address: ch.peer.address, port: ch.peer.port } };
      } else {
        this.stats.malformed++;
      }
    } catch {
      this.stats.malformed++;
    }
    return undefined;
  }

  private onStun(io: AllocationIo, m: DecodedStun): { data: Buffer; peer: TransportAddress } | undefined {
    if (verifyFingerprint(m.raw) === 'bad') {
      this.stats.malformed++;
      return undefined;
    }
    if (m.cls === 'success' || m.cls === 'error') {
      // Matched by transaction id and method (RFC 8489 §6.3).
      const tx = this.transactions.get(m.transactionId.toString('hex'));
      if (tx === undefined || tx.method !== m.method) {
        this.stats.unexpected++;
        return undefined;
      }
      if (!responseAcceptable(m, tx.key, this.config.transport !== 'udp')) {
        // Forged or corrupted: it must not end the transaction; keep waiting for the real answer.
        this.stats.unexpected++;
        if (m.cls === 'error') tx.ignored = `${getErrorCode(m)?.code ?? 'error'}`;
        return undefined;
      }
      this.transactions.delete(tx.id);
      this.stats.responses++;
      this.answered(io, tx, m);
      return undefined;
    }
    if (m.cls === 'indication' && m.method === TURN_METHOD.DATA && this.state === 'allocated') {
      const got = decodeDataIndication(m);
      if (got === undefined) this.stats.malformed++;
      else this.stats.dataIndications++;
      return got;
    }
    this.stats.unexpected++;
    return undefined;
  }

  /* ---- Permissions (RFC 8656 §9), channels (§12), data (§11, §12.4) ---- */

  /** CreatePermission for a peer IP (the port does not matter, §9), kept refreshed. Idempotent; only while allocated. */
  permit(io: AllocationIo, address: string): void {
    const ip = canonicalIp(address);
    if (this.state !== 'allocated' || ip === undefined || this.permissions.has(ip)) return;
    this.permissions.set(ip, { address: ip, installed: false, refreshAt: Infinity, queue: [] });
    this.request(io, 'permission', ip, false, { peer: { address: ip, port: 0 } }, this.config.timeoutMs, false);
  }

  /** ChannelBind (channel 0x4000-0x4FFF, §12.1) to a peer transport address, kept refreshed. Idempotent; only while allocated. */
  bindChannel(io: AllocationIo, peer: TransportAddress): void {
    const ip = canonicalIp(peer.address);
    if (this.state !== 'allocated' || ip === undefined || !(Number.isInteger(peer.port) && peer.port > 0 && peer.port < 65536)) return;
    const key = addressKey(ip, peer.port);
    if (this.channels.has(key)) return;
    const number = this.freeChannel();
    if (number === undefined) {
      io.emit({ type: 'channel', peer: { address: ip, port: peer.port }, error: this.error(undefined, 'ChannelBind: no free channel number') });
      return;
    }
    const ch: Channel = { number, peer: { address: ip, port: peer.port }, bound: false, refreshAt: Infinity };
    this.channels.set(key, ch);
    this.channelPeers.set(number, key);
    this.request(io, 'channel', key, false, { channel: number, peer: ch.peer }, this.config.timeoutMs, false);
  }

  hasPermission(address: string): boolean {
    return this.permissions.get(canonicalIp(address) ?? '')?.installed === true;
  }

  channelFor(peer: TransportAddress): number | undefined {
    const ch = this.channels.get(addressKey(canonicalIp(peer.address) ?? '', peer.port));
    return ch?.bound ? ch.number : undefined;
  }

  /**
   * Data to a peer: ChannelData if a channel is bound (padded over TCP/TLS,
   * §12.5), a Send indication if the permission is installed, else queued
   * (at most MAX_QUEUED per peer IP) behind a CreatePermission it starts.
   * False when dropped.
   */
  send(io: AllocationIo, data: Buffer, peer: TransportAddress): boolean {
    if (this.state !== 'allocated') {
      this.stats.sendDropped++;
      return false;
    }
    // Map keys are canonical, as the ICE core's addresses are: look up as given first (the data path).
    let ip: string | undefined = peer.address;
    let ch = this.channels.get(addressKey(ip, peer.port));
    if (ch === undefined && !this.permissions.has(ip)) {
      ip = canonicalIp(ip);
      if (ip === undefined) {
        this.stats.sendDropped++;
        return false;
      }
      ch = this.channels.get(addressKey(ip, peer.port));
    }
    if (ch?.bound) {
      io.send(encodeChannelData(ch.number, data, this.config.transport !== 'udp'));
      this.stats.channelDataSent++;
      return true;
    }
    if (this.permissions.get(ip)?.installed) {
      this.sendIndication(io, data, ip, peer.port);
      return true;
    }
    this.permit(io, ip);
    const perm = this.permissions.get(ip)!;
    if (perm.queue.length >= MAX_QUEUED) {
      this.stats.sendDropped++;
      return false;
    }
    perm.queue.push({ data: Buffer.from(data), port: peer.port });
    return true;
  }

  /* ---- Close (§7.3: Refresh with LIFETIME 0 deletes the allocation) ---- */

  /**
   * From 'allocated': Refresh with LIFETIME 0, one 438 retry, all bounded by
   * min(timeoutMs, 1000) ms; then 'closed'. From 'new'/'allocating': 'closed'
   * at once. Emits 'closed' once, whatever the state. Idempotent.
   */
  close(io: AllocationIo): void {
    if (this.closeRequested) return;
    this.closeRequested = true;
    if (this.state !== 'allocated') return this.end(io, { type: 'closed' });
    this.clear();
    this.state = 'closing';
    const budget = Math.min(this.config.timeoutMs, CLOSE_BUDGET_MS);
    this.closeDeadline = io.now + budget;
    this.request(io, 'deallocate', '', false, { lifetime: 0 }, budget, false);
  }

  /** The shell's link to the server broke (TCP/TLS closed): lost if allocated, failed if allocating. */
  linkClosed(io: AllocationIo, reason: string): void {
    if (this.state === 'new' || this.state === 'allocating') this.fail(io, this.error(undefined, `Allocate: ${reason}`));
    else if (this.state === 'allocated') this.end(io, { type: 'lost', error: this.error(undefined, `${reason}: allocation lost`) });
    else if (this.state === 'closing') this.end(io, { type: 'closed' });
  }

  /* ---- Transactions and their outcomes ---- */

  private request(
    io: AllocationIo, purpose: Purpose, subject: string, refresh: boolean,
    fields: TurnRequestFields, budget: number, staleRetried: boolean,
  ): void {
    const tx = newTransaction({
      tid: io.randomBytes(12), now: io.now, purpose, subject, refresh, fields, auth: this.credentials.auth,
      udp: this.config.transport === 'udp', rto: this.rto, budget, staleRetried,
    });
    this.transactions.set(tx.id, tx);
    this.stats.requests++;
    io.send(tx.raw);
  }

  /** A transaction ended with an accepted response, or with `TurnError` (timeout). */
  private answered(io: AllocationIo, tx: Transaction, res: DecodedStun | TurnError): void {
    const code = res instanceof TurnError || res.cls !== 'error' ? undefined : getErrorCode(res)?.code;
    // 438 Stale Nonce: once per request, with the nonce the answer carries (RFC 8489 §9.2.5).
    if (code === 438 && tx.key !== undefined && !tx.staleRetried && this.credentials.staleNonce(res as DecodedStun)) {
      this.stats.staleNonces++;
      const budget = tx.purpose === 'allocate' ? this.allocateDeadline - io.now
        : tx.purpose === 'deallocate' ? this.closeDeadline - io.now : tx.budget;
      if (budget > 0) return this.request(io, tx.purpose, tx.subject, tx.refresh, tx.fields, budget, true);
    }
    const err = res instanceof TurnError ? res : res.cls === 'success' ? undefined : this.errorFromResponse(res);
    switch (tx.purpose) {
      case 'allocate':
        return this.onAllocate(io, tx, res, code, err);
      case 'refresh':
        return this.onRefresh(io, res, err);
      case 'permission':
        return this.onPermission(io, tx, err);
      case 'channel':
        return this.onChannel(io, tx, err);
      case 'deallocate':
        // Answered, refused or unanswered: nothing more to do either way.
        return this.end(io, { type: 'closed' });
    }
  }

  private onAllocate(io: AllocationIo, tx: Transaction, res: DecodedStun | TurnError, code: number | undefined, err: TurnError | undefined): void {
    if (this.state !== 'allocating') return;
    if (err === undefined) return this.allocated(io, res as DecodedStun);
    if (code === 401 && tx.key === undefined) {
      // The challenge (RFC 8656 §7.1); a 401 after credentials were sent means they are wrong (RFC 8489 §9.2.5).
      if (!this.credentials.challenge(res as DecodedStun)) {
        return this.fail(io, this.error(401, 'Allocate: 401 challenge without REALM or NONCE'));
      }
      const left = this.allocateDeadline - io.now;
      if (left <= 0) return this.fail(io, this.error(undefined, `Allocate: no success within ${this.config.timeoutMs} ms`));
      return this.request(io, 'allocate', '', false, tx.fields, left, tx.staleRetried);
    }
    this.fail(io, err);
  }

  private allocated(io: AllocationIo, res: DecodedStun): void {
    const r = decodeAllocateSuccess(res);
    if (r === undefined) return this.fail(io, this.error(undefined, 'Allocate: success response without XOR-RELAYED-ADDRESS'));
    this.relayed = r.relayed;
    this.mapped = r.mapped;
    this.lifetime = r.lifetime;
    this.state = 'allocated';
    this.allocateDeadline = Infinity;
    this.scheduleRefresh(io.now);
    io.emit({ type: 'allocated', relayed: { ...r.relayed }, mapped: r.mapped && { ...r.mapped }, lifetime: r.lifetime });
  }

  /** Refresh `refreshMarginMs` before expiry, but no later than half-way (§7.2: refresh before it expires). */
  private scheduleRefresh(now: number): void {
    const ms = this.lifetime * 1000;
    this.expiresAt = now + ms;
    this.refreshAt = now + Math.max(ms - this.refreshMarginMs, ms / 2);
  }

  private onRefresh(io: AllocationIo, res: DecodedStun | TurnError, err: TurnError | undefined): void {
    if (this.state !== 'allocated') return;
    if (err === undefined) {
      this.lifetime = getLifetime(res as DecodedStun) ?? this.lifetime;
      this.stats.allocationRefreshes++;
      this.scheduleRefresh(io.now);
      io.emit({ type: 'refresh', kind: 'allocation', detail: this.lifetime });
      return;
    }
    // 437: the server no longer knows this allocation (§7.3); nothing to retry.
    if (err.stunCode === 437) return this.end(io, { type: 'lost', error: err });
    // Unanswered or refused otherwise: try again half-way to expiry while there is time.
    const left = this.expiresAt - io.now;
    if (left > 2 * this.config.timeoutMs) this.refreshAt = io.now + left / 2;
    else this.end(io, { type: 'lost', error: err });
  }

  private onPermission(io: AllocationIo, tx: Transaction, err: TurnError | undefined): void {
    const perm = this.permissions.get(tx.subject);
    if (perm === undefined || this.state !== 'allocated') return;
    if (err === undefined) {
      if (!perm.installed) return this.permissionInstalled(io, perm);
      perm.refreshAt = io.now + this.permissionRefreshMs;
      if (!tx.refresh) return; // a ChannelBind installed it first
      this.stats.permissionRefreshes++;
      io.emit({ type: 'refresh', kind: 'permission', detail: perm.address });
      return;
    }
    if (!perm.installed) {
      // Forget it, so that a later permit() tries again; queued data is lost.
      this.permissions.delete(perm.address);
      this.stats.sendDropped += perm.queue.length;
      io.emit({ type: 'permission', address: perm.address, error: err });
      return;
    }
    // Try again soon: the permission lasts 300 s from the last success, well past an eighth of the interval.
    perm.refreshAt = io.now + Math.max(1000, this.permissionRefreshMs / 8);
    io.emit({ type: 'refresh-failed', kind: 'permission', error: err });
  }

  private permissionInstalled(io: AllocationIo, perm: Permission): void {
    perm.installed = true;
    this.stats.permissionsInstalled++;
    perm.refreshAt = io.now + this.permissionRefreshMs;
    const queued = perm.queue;
    perm.queue = [];
    for (const q of queued) this.sendIndication(io, q.data, perm.address, q.port);
    io.emit({ type: 'permission', address: perm.address });
  }

  private onChannel(io: AllocationIo, tx: Transaction, err: TurnError | undefined): void {
    const ch = this.channels.get(tx.subject);
    if (ch === undefined || this.state !== 'allocated') return;
    if (err === undefined) {
      ch.refreshAt = io.now + this.channelRefreshMs;
      if (tx.refresh) {
        this.stats.channelRefreshes++;
        io.emit({ type: 'refresh', kind: 'channel', detail: ch.number });
        return;
      }
      ch.bound = true;
      this.stats.channelsBound++;
      // A ChannelBind also installs a permission for the peer's IP (§12.1), but that permission
      // lasts 300 s while the channel lasts 600 s: keep it under the permission refresh too.
      let perm = this.permissions.get(ch.peer.address);
      if (perm === undefined) {
        perm = { address: ch.peer.address, installed: false, refreshAt: Infinity, queue: [] };
        this.permissions.set(perm.address, perm);
      }
      if (!perm.installed) this.permissionInstalled(io, perm);
      io.emit({ type: 'channel', peer: { ...ch.peer }, channel: ch.number });
      return;
    }
    if (!ch.bound) {
      this.channels.delete(tx.subject);
      this.channelPeers.delete(ch.number);
      io.emit({ type: 'channel', peer: { ...ch.peer }, error: err });
      return;
    }
    ch.refreshAt = io.now + Math.max(1000, this.channelRefreshMs / 8);
    io.emit({ type: 'refresh-failed', kind: 'channel', error: err });
  }

  /* ---- Endings and helpers ---- */

  /** 'failed' (Allocate did not succeed), 'lost' (the allocation is gone) or 'closed' (after close()): nothing left to do. */
  private end(io: AllocationIo, event: AllocationEvent): void {
    this.clear();
    this.state = 'closed';
    io.emit(event);
  }

  private fail(io: AllocationIo, error: TurnError): void {
    this.end(io, { type: 'failed', error });
  }

  /** Drops all pending work: transactions, permissions (their queued data counted as dropped), channels, deadlines. */
  private clear(): void {
    this.transactions.clear();
    for (const p of this.permissions.values()) this.stats.sendDropped += p.queue.length;
    this.permissions.clear();
    this.channels.clear();
    this.channelPeers.clear();
    this.allocateDeadline = Infinity;
    this.refreshAt = Infinity;
    this.closeDeadline = Infinity;
  }

  private sendIndication(io: AllocationIo, data: Buffer, address: string, port: number): void {
    io.send(encodeSendIndication(io.randomBytes(12), { address, port }, data));
    this.stats.sendIndications++;
  }

  private freeChannel(): number | undefined {
    for (let i = 0; i <= MAX_CHANNEL - MIN_CHANNEL; i++) {
      const n = this.nextChannel;
      this.nextChannel = n === MAX_CHANNEL ? MIN_CHANNEL : n + 1;
      if (!this.channelPeers.has(n)) return n;
    }
    return undefined;
  }

  private error(code: number | undefined, reason: string): TurnError {
    return new TurnError(this.config.url, code, reason);
  }

  private errorFromResponse(res: DecodedStun): TurnError {
    const { code, reason } = describeError(res);
    return this.error(code, reason);
  }
}
