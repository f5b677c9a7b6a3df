/**
 * A TURN server of the in-memory network: RFC 8656 over UDP, with the
 * long-term credential mechanism of RFC 8489 §9.2, as an ICE agent uses it
 * for relayed candidates (RFC 8445 §5.1.1.2).
 *
 * - Allocate (§7.2): without MESSAGE-INTEGRITY, 401 with REALM and NONCE;
 *   then USERNAME, REALM, NONCE and MESSAGE-INTEGRITY keyed with
 *   MD5(username:realm:password) are checked (400 if missing, 438 for a stale
 *   nonce, 401 otherwise); REQUESTED-TRANSPORT must be UDP (442); a second
 *   Allocate on a 5-tuple that has one is 437. Success carries
 *   XOR-RELAYED-ADDRESS (the server's address, a fresh port),
 *   XOR-MAPPED-ADDRESS, LIFETIME and MESSAGE-INTEGRITY.
 * - Lifetimes (§7.2, §7.3): min(requested, maxLifetime), but never below the
 *   default `lifetime`; Refresh with LIFETIME 0 deletes the allocation.
 * - CreatePermission (§9): one or more XOR-PEER-ADDRESS, per IP, 300 s.
 *   ChannelBind (§12): 0x4000-0x4FFF, 600 s, installs the permission too;
 *   rebinding a channel to another peer (or a peer to another channel) is 400.
 * - Send indications and ChannelData go out of the relayed address to
 *   permitted peers; datagrams to the relayed address from permitted peers
 *   come back as ChannelData when a channel is bound to that peer, else as a
 *   Data indication (§11, §12). Anything else is dropped silently.
 * - Requests are answered once per transaction: a retransmission gets the
 *   same response (RFC 8489 §6.3.1). Responses carry FINGERPRINT when the
 *   request did; error responses to authenticated requests carry
 *   MESSAGE-INTEGRITY.
 * - Binding requests are answered as the STUN server does (unless a STUN
 *   server shares the port).
 *
 * Allocations, permissions and channels expire at their lifetime on the
 * virtual clock (noticed on the next datagram or look at `stats`). Not
 * modelled: TCP allocations (RFC 6062), EVEN-PORT / RESERVATION-TOKEN,
 * DONT-FRAGMENT (ignored), quotas, IPv6 relays for IPv4 clients (RFC 8656 §6).
 */
import stun from 'stun';
import { addressKey, formatAddress, isV6, type TransportAddress } from '../transport/address.js';
import {
  ATTR, BINDING_REQUEST, TURN_ATTR, TURN_METHOD, PROTOCOL_UDP, getChannelNumber, getData, getNonce, getRealm,
  getUint32Attribute, getUsername, hasAttribute, longTermKey, messageType, verifyIntegrity, type DecodedStun,
} from '../stun/message.js';
import { decodeChannelData, encodeChannelData, isValidChannel } from '../turn/framing.js';
import { InvalidArgumentError } from '../errors.js';
import type { SimDatagramSocket, SimHost } from './host.js';
import type { Prng } from './random.js';
import { acceptableRequest, addIntegrity, bindingResponse, prefixMatcher, xorAddresses, type ServerPort } from './server-port.js';
import type { SimTurnAllocation, SimTurnServerOptions, SimTurnServerStats } from './turn-types.js';

export type { SimTurnAllocation, SimTurnServerOptions, SimTurnServerStats } from './turn-types.js';

interface Allocation {
  key: string;
  client: TransportAddress;
  username: string;
  relay: SimDatagramSocket;
  expiresAt: number;
  permissions: Map<string, number>;
  channels: Map<number, { peer: TransportAddress; expiresAt: number }>;
  channelOf: Map<string, number>;
}

interface Auth {
  username: string;
  key: Buffer;
}

/** An error response to build: the code, and the credentials when the request was authenticated (then it carries MESSAGE-INTEGRITY). */
type Reply = { code: number; reason: string; auth?: Auth };

const ERROR_REASONS: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 437: 'Allocation Mismatch', 438: 'Stale Nonce',
  440: 'Address Family not Supported', 441: 'Wrong Credentials', 442: 'Unsupported Transport Protocol',
  443: 'Peer Address Family Mismatch', 508: 'Insufficient Capacity',
};

/** How long a response is kept for retransmissions of its request (RFC 8489 §6.3.1: 40 s, Ti). */
const RESPONSE_CACHE_MS = 40_000;

export class SimTurnServer {
  /** The server's transport address (clients send here). */
  readonly address: TransportAddress;
  readonly host: SimHost;
  readonly realm: string;
  /** While true, every datagram (requests and relayed data) is dropped. */
  silent = false;

  /** The server as a TURN URL (RFC 7065), e.g. for an Agent's TURN option. */
  get url(): string {
    return `turn:${formatAddress(this.address.address, this.address.port)}?transport=udp`;
  }
  readonly #port: ServerPort;
  readonly #rng: Prng;
  readonly #now: () => number;
  readonly #users = new Map<string, string>();
  readonly #allocs = new Map<string, Allocation>();
  readonly #cache = new Map<string, { at: number; response: Buffer }>();
  readonly #denied: Array<(ip: string) => boolean> = [];
  readonly #lifetime: number;
  readonly #maxLifetime: number;
  readonly #permissionLifetime: number;
  readonly #channelLifetime: number;
  readonly #nonceLifetime: number;
  readonly #portRange: readonly [number, number];
  readonly #software: string | undefined;
  #nonce = '';
  #nonceAt = 0;
  readonly #stats: Omit<SimTurnServerStats, 'active'> = {
    allocations: 0, deallocations: 0, expired: 0, refreshes: 0, permissions: 0, channels: 0,
    relayedOut: 0, relayedIn: 0, unauthorized: 0, staleNonce: 0, errors: 0, bindings: 0, dropped: 0,
  };

  /** @internal Created by SimNetwork.addTurnServer. */
  constructor(port: ServerPort, opts: SimTurnServerOptions, rng: Prng, now: () => number) {
    if (port.turnTaken) throw new Error(`a TURN server already runs on ${port.socket.local.address}:${port.socket.local.port}`);
    if (opts.username !== undefined) this.#users.set(opts.username, opts.password ?? '');
    for (const [u, p] of Object.entries(opts.users ?? {})) this.#users.set(u, p);
    if (this.#users.size === 0) throw new InvalidArgumentError('username', 'a TURN server needs at least one user (username/password or users)');
    this.#port = port;
    this.#rng = rng;
    this.#now = now;
    this.address = port.socket.local;
    this.host = port.host;
    this.realm = opts.realm ?? 'sim';
    this.#lifetime = opts.lifetime ?? 600;
    this.#maxLifetime = Math.max(opts.maxLifetime ?? 3600, this.#lifetime);
    this.#permissionLifetime = opts.permissionLifetime ?? 300;
    this.#channelLifetime = opts.channelLifetime ?? 600;
    this.#nonceLifetime = opts.nonceLifetime ?? Infinity;
    this.#portRange = opts.relayPortRange ?? [49152, 65535];
    this.#software = opts.software;
    for (const [name, v] of [['lifetime', this.#lifetime], ['permissionLifetime', this.#permissionLifetime], ['channelLifetime', this.#channelLifetime], ['nonceLifetime', this.#nonceLifetime]] as const) {
      if (!(v > 0)) throw new InvalidArgumentError(name, 'must be > 0');
    }
    this.rotateNonce();
    port.turnTaken = true;
    port.turn = (data, from, msg) => {
      this.#onClientDatagram(data, from, msg);
      return true;
    };
  }

  /** Counters, after expiring what is due. */
  get stats(): SimTurnServerStats {
    this.#sweep();
    return { ...this.#stats, active: this.#allocs.size };
  }

  /** The current NONCE. */
  get nonce(): string {
    return this.#nonce;
  }

  /** Makes a new nonce: requests still carrying the old one get 438 Stale Nonce (RFC 8489 §9.2.4). */
  rotateNonce(): void {
    this.#nonce = this.#rng.bytes(8).toString('hex');
    this.#nonceAt = this.#now();
  }

  /** Refuses peers in this prefix ('198.51.100.0/24', '2001:db8::/32', or one address): 403 to CreatePermission/ChannelBind, data dropped. */
  denyPeer(prefix: string): void {
    this.#denied.push(prefixMatcher(prefix));
  }

  /**
   * Forgets every allocation, as a server that restarted would: relayed
   * addresses close, and the clients' next Refresh gets 437 Allocation Mismatch.
   */
  restart(): void {
    for (const a of [...this.#allocs.values()]) this.#delete(a);
    this.#cache.clear();
  }

  /** The live allocations. */
  allocations(): SimTurnAllocation[] {
    this.#sweep();
    const now = this.#now();
    return [...this.#allocs.values()].map((a) => ({
      client: a.client,
      relayed: a.relay.local,
      username: a.username,
      expiresAt: a.expiresAt,
      permissions: [...a.permissions].filter(([, t]) => t > now).map(([address, expiresAt]) => ({ address, expiresAt })),
      channels: [...a.channels].filter(([, c]) => c.expiresAt > now).map(([channel, c]) => ({ channel, peer: c.peer, expiresAt: c.expiresAt })),
    }));
  }

  /* ----------------------------- client side ----------------------------- */

  #onClientDatagram(data: Buffer, from: TransportAddress, msg: DecodedStun | undefined): void {
    if (this.silent) {
      this.#stats.dropped++;
      return;
    }
    this.#sweep();
    const alloc = this.#allocs.get(addressKey(from.address, from.port));
    if (msg === undefined) {
      const cd = decodeChannelData(data);
      const ch = cd && alloc?.channels.get(cd.channel);
      if (cd === undefined || ch === undefined || ch.expiresAt <= this.#now() || !this.#permitted(alloc!, ch.peer.address)) {
        this.#stats.dropped++;
        return;
      }
      this.#relayOut(alloc!, Buffer.from(cd.data), ch.peer);
      return;
    }
    if (msg.type === BINDING_REQUEST) {
      if (!acceptableRequest(msg)) {
        this.#stats.dropped++;
        return;
      }
      this.#stats.bindings++;
      this.#port.send(bindingResponse(msg, from, this.#software), from);
      return;
    }
    if (msg.cls === 'indication' && msg.method === TURN_METHOD.SEND) {
      const peer = xorAddresses(msg, TURN_ATTR.XOR_PEER_ADDRESS)?.[0];
      const payload = getData(msg);
      if (alloc === undefined || peer === undefined || payload === undefined || !this.#permitted(alloc, peer.address)) {
        this.#stats.dropped++;
        return;
      }
      this.#relayOut(alloc, Buffer.from(payload), peer);
      return;
    }
    if (msg.cls !== 'request') {
      this.#stats.dropped++;
      return;
    }
    const cacheKey = `${addressKey(from.address, from.port)}|${msg.transactionId.toString('hex')}`;
    const cached = this.#cache.get(cacheKey);
    if (cached !== undefined) {
      this.#port.send(cached.response, from);
      return;
    }
    let reply: Reply | Buffer | undefined;
    switch (msg.method) {
      case TURN_METHOD.ALLOCATE: reply = this.#withAuth(msg, (auth) => this.#allocate(msg, from, auth)); break;
      case TURN_METHOD.REFRESH: reply = this.#withAuth(msg, (auth) => this.#refresh(msg, alloc, auth)); break;
      case TURN_METHOD.CREATE_PERMISSION: reply = this.#withAuth(msg, (auth) => this.#createPermission(msg, alloc, auth)); break;
      case TURN_METHOD.CHANNEL_BIND: reply = this.#withAuth(msg, (auth) => this.#channelBind(msg, alloc, auth)); break;
      default: reply = undefined;
    }
    if (reply === undefined) {
      this.#stats.dropped++;
      return;
    }
    const response = Buffer.isBuffer(reply) ? reply : this.#error(msg, reply);
    this.#remember(cacheKey, response);
    this.#port.send(response, from);
  }

  #remember(key: string, response: Buffer): void {
    const now = this.#now();
    for (const [k, v] of this.#cache) {
      if (now - v.at < RESPONSE_CACHE_MS) break;
      this.#cache.delete(k);
    }
    this.#cache.set(key, { at: now, response });
  }

  /** RFC 8489 §9.2.4: the long-term credential checks, then `fn` with the user and key. */
  #withAuth(msg: DecodedStun, fn: (auth: Auth) => Buffer | Reply): Buffer | Reply {
    if (!hasAttribute(msg, ATTR.MESSAGE_INTEGRITY)) return { code: 401, reason: 'Unauthorized' };
    const username = getUsername(msg);
    const realm = getRealm(msg);
    const nonce = getNonce(msg);
    if (username === undefined || realm === undefined || nonce === undefined) return { code: 400, reason: 'Bad Request' };
    if (this.#now() - this.#nonceAt >= this.#nonceLifetime) this.rotateNonce();
    if (nonce !== this.#nonce) return { code: 438, reason: 'Stale Nonce' };
    const password = this.#users.get(username);
    if (password === undefined || realm !== this.realm) return { code: 401, reason: 'Unauthorized' };
    const key = longTermKey(username, realm, password);
    if (verifyIntegrity(msg.raw, key) !== 'ok') return { code: 401, reason: 'Unauthorized' };
    return fn({ username, key });
  }

  #success(msg: DecodedStun, auth: Auth, extra: (m: ReturnType<typeof stun.createMessage>) => void): Buffer {
    const m = stun.createMessage(messageType(msg.method, 'success'), Buffer.from(msg.transactionId));
    extra(m);
    if (this.#software !== undefined) m.addSoftware(this.#software);
    addIntegrity(m, auth.key);
    if (hasAttribute(msg, ATTR.FINGERPRINT)) m.addFingerprint();
    return m.toBuffer();
  }

  #error(msg: DecodedStun, r: Reply): Buffer {
    if (r.code === 401) this.#stats.unauthorized++;
    else if (r.code === 438) this.#stats.staleNonce++;
    else this.#stats.errors++;
    const m = stun.createMessage(messageType(msg.method, 'error'), Buffer.from(msg.transactionId));
    // addError refuses error classes other than Binding/Allocate/Refresh; the attribute itself is generic.
    m.addAttribute(ATTR.ERROR_CODE, r.code, ERROR_REASONS[r.code] ?? r.reason);
    if (r.code === 401 || r.code === 438) {
      m.addAttribute(ATTR.REALM, this.realm);
      m.addAttribute(ATTR.NONCE, this.#nonce);
    }
    if (this.#software !== undefined) m.addSoftware(this.#software);
    if (r.auth !== undefined) addIntegrity(m, r.auth.key);
    if (hasAttribute(msg, ATTR.FINGERPRINT)) m.addFingerprint();
    return m.toBuffer();
  }

  /** The granted lifetime in seconds, RFC 8656 §7.2 step 8 and §7.3. */
  #grant(requested: number | undefined): number {
    if (requested === undefined) return this.#lifetime;
    return Math.max(this.#lifetime, Math.min(requested, this.#maxLifetime));
  }

  #allocate(msg: DecodedStun, from: TransportAddress, auth: Auth): Buffer | Reply {
    const key = addressKey(from.address, from.port);
    if (this.#allocs.has(key)) return { code: 437, reason: 'Allocation Mismatch', auth };
    const transport = getUint32Attribute(msg, TURN_ATTR.REQUESTED_TRANSPORT);
    if (transport === undefined) return { code: 400, reason: 'Bad Request', auth };
    if (transport >>> 24 !== PROTOCOL_UDP) return { code: 442, reason: 'Unsupported Transport Protocol', auth };
    const family = getUint32Attribute(msg, TURN_ATTR.REQUESTED_ADDRESS_FAMILY);
    if (family !== undefined && (family >>> 24) !== (isV6(this.address.address) ? 0x02 : 0x01)) return { code: 440, reason: 'Address Family not Supported', auth };
    const relay = this.#bindRelay();
    if (relay === undefined) return { code: 508, reason: 'Insufficient Capacity', auth };
    const lifetime = this.#grant(getUint32Attribute(msg, TURN_ATTR.LIFETIME));
    const alloc: Allocation = {
      key, client: { ...from }, username: auth.username, relay,
      expiresAt: this.#now() + lifetime * 1000,
      permissions: new Map(), channels: new Map(), channelOf: new Map(),
    };
    relay.onMessage((data, peer) => this.#onPeerDatagram(alloc, data, peer));
    this.#allocs.set(key, alloc);
    this.#stats.allocations++;
    return this.#success(msg, auth, (m) => {
      m.addAttribute(TURN_ATTR.XOR_RELAYED_ADDRESS, relay.local.address, relay.local.port);
      m.addAttribute(TURN_ATTR.LIFETIME, lifetime);
      m.addXorAddress(from.address, from.port);
    });
  }

  #bindRelay(): SimDatagramSocket | undefined {
    const [lo, hi] = this.#portRange;
    const used = new Set(this.host.boundPorts().filter((p) => p.address === this.address.address).map((p) => p.port));
    for (let i = 0; i < 64; i++) {
      const p = this.#rng.int(lo, hi);
      if (!used.has(p)) return this.host.bindUdp(this.address.address, p);
    }
    for (let p = lo; p <= hi; p++) if (!used.has(p)) return this.host.bindUdp(this.address.address, p);
    return undefined;
  }

  #owned(alloc: Allocation | undefined, auth: Auth): Reply | undefined {
    if (alloc === undefined) return { code: 437, reason: 'Allocation Mismatch', auth };
    if (alloc.username !== auth.username) return { code: 441, reason: 'Wrong Credentials', auth };
    return undefined;
  }

  #refresh(msg: DecodedStun, alloc: Allocation | undefined, auth: Auth): Buffer | Reply {
    const bad = this.#owned(alloc, auth);
    if (bad) return bad;
    const requested = getUint32Attribute(msg, TURN_ATTR.LIFETIME);
    if (requested === 0) {
      this.#delete(alloc!);
      this.#stats.deallocations++;
      return this.#success(msg, auth, (m) => m.addAttribute(TURN_ATTR.LIFETIME, 0));
    }
    const lifetime = this.#grant(requested);
    alloc!.expiresAt = this.#now() + lifetime * 1000;
    this.#stats.refreshes++;
    return this.#success(msg, auth, (m) => m.addAttribute(TURN_ATTR.LIFETIME, lifetime));
  }

  /** Checks peers: family (443) and denied prefixes (403). */
  #checkPeers(peers: TransportAddress[] | undefined, auth: Auth): Reply | undefined {
    if (peers === undefined || peers.length === 0) return { code: 400, reason: 'Bad Request', auth };
    for (const p of peers) {
      if (isV6(p.address) !== isV6(this.address.address)) return { code: 443, reason: 'Peer Address Family Mismatch', auth };
      if (this.#isDenied(p.address)) return { code: 403, reason: 'Forbidden', auth };
    }
    return undefined;
  }

  #install(alloc: Allocation, ip: string): void {
    const now = this.#now();
    const t = alloc.permissions.get(ip);
    if (t === undefined || t <= now) this.#stats.permissions++;
    alloc.permissions.set(ip, now + this.#permissionLifetime * 1000);
  }

  #createPermission(msg: DecodedStun, alloc: Allocation | undefined, auth: Auth): Buffer | Reply {
    const bad = this.#owned(alloc, auth);
    if (bad) return bad;
    const peers = xorAddresses(msg, TURN_ATTR.XOR_PEER_ADDRESS);
    const wrong = this.#checkPeers(peers, auth);
    if (wrong) return wrong;
    for (const p of peers!) this.#install(alloc!, p.address);
    return this.#success(msg, auth, () => {});
  }

  #channelBind(msg: DecodedStun, alloc: Allocation | undefined, auth: Auth): Buffer | Reply {
    const bad = this.#owned(alloc, auth);
    if (bad) return bad;
    const channel = getChannelNumber(msg);
    const peers = xorAddresses(msg, TURN_ATTR.XOR_PEER_ADDRESS);
    if (channel === undefined || !isValidChannel(channel) || peers?.length !== 1) return { code: 400, reason: 'Bad Request', auth };
    const wrong = this.#checkPeers(peers, auth);
    if (wrong) return wrong;
    const a = alloc!;
    const peer = peers[0]!;
    const now = this.#now();
    const peerKey = addressKey(peer.address, peer.port);
    const bound = a.channels.get(channel);
    const live = bound !== undefined && bound.expiresAt > now;
    if (live && addressKey(bound.peer.address, bound.peer.port) !== peerKey) return { code: 400, reason: 'Bad Request', auth };
    const other = a.channelOf.get(peerKey);
    if (other !== undefined && other !== channel && (a.channels.get(other)?.expiresAt ?? 0) > now) return { code: 400, reason: 'Bad Request', auth };
    if (!live) {
      if (bound !== undefined) a.channelOf.delete(addressKey(bound.peer.address, bound.peer.port));
      this.#stats.channels++;
    }
    if (other !== undefined && other !== channel) a.channels.delete(other);
    a.channels.set(channel, { peer: { ...peer }, expiresAt: now + this.#channelLifetime * 1000 });
    a.channelOf.set(peerKey, channel);
    this.#install(a, peer.address);
    return this.#success(msg, auth, () => {});
  }

  /* ------------------------------ peer side ------------------------------ */

  #isDenied(ip: string): boolean {
    return this.#denied.some((m) => m(ip));
  }

  #permitted(alloc: Allocation, ip: string): boolean {
    const t = alloc.permissions.get(ip);
    return t !== undefined && t > this.#now() && !this.#isDenied(ip);
  }

  #relayOut(alloc: Allocation, data: Buffer, peer: TransportAddress): void {
    this.#stats.relayedOut++;
    alloc.relay.send(data, peer);
  }

  #onPeerDatagram(alloc: Allocation, data: Buffer, from: TransportAddress): void {
    this.#sweep();
    if (this.silent || this.#allocs.get(alloc.key) !== alloc || !this.#permitted(alloc, from.address)) {
      this.#stats.dropped++;
      return;
    }
    const peerKey = addressKey(from.address, from.port);
    const channel = alloc.channelOf.get(peerKey);
    const live = channel !== undefined && (alloc.channels.get(channel)?.expiresAt ?? 0) > this.#now();
    let out: Buffer;
    if (live) {
      out = encodeChannelData(channel, data, false);
    } else {
      const m = stun.createMessage(messageType(TURN_METHOD.DATA, 'indication'), this.#rng.bytes(12));
      m.addAttribute(TURN_ATTR.XOR_PEER_ADDRESS, from.address, from.port);
      m.addAttribute(TURN_ATTR.DATA, data);
      out = m.toBuffer();
    }
    this.#stats.relayedIn++;
    this.#port.send(out, alloc.client);
  }

  /* ------------------------------- expiry -------------------------------- */

  #delete(alloc: Allocation): void {
    this.#allocs.delete(alloc.key);
    void alloc.relay.close();
  }

  #sweep(): void {
    const now = this.#now();
    for (const a of [...this.#allocs.values()]) {
      if (a.expiresAt <= now) {
        this.#delete(a);
        this.#stats.expired++;
        continue;
      }
      for (const [ip, t] of a.permissions) if (t <= now) a.permissions.delete(ip);
      for (const [n, c] of a.channels) {
        if (c.expiresAt > now) continue;
        a.channels.delete(n);
        const pk = addressKey(c.peer.address, c.peer.port);
        if (a.channelOf.get(pk) === n) a.channelOf.delete(pk);
      }
    }
  }
}
