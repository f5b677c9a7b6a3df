/**
 * An in-memory network on a virtual clock: hosts, NATs, STUN and TURN
 * servers, connected without a single socket and reproducible from a seed
 * (in the spirit of pion's `vnet`). Each host's `network` implements the
 * library's I/O seam (lib/transport/network.ts), so an `Agent` runs on it
 * unchanged.
 *
 * Topology: the internet is one flat address space (a "realm"); each NAT has
 * an inside realm of its own, which may reuse addresses of other NATs'
 * insides (two homes can both be 192.168.1.0/24). A datagram is routed in the
 * realm of its sender: to a host there, or to a NAT's public address there
 * (then in through that NAT); otherwise, inside a NAT, out through it into
 * the realm outside; on the internet, to nowhere ('unroutable'). So hosts
 * behind one NAT reach each other directly on their private addresses, and a
 * host behind a NAT reaches a host behind another NAT through both.
 *
 * Links: every host and every NAT has a link to the realm it lives in, with
 * delay, jitter and loss (LinkOptions). A datagram crosses each link on its
 * path and each crossing is one event on the virtual clock; NAT translation
 * happens when the datagram reaches the NAT. Events fire in (virtual time,
 * sequence) order, so with `reorder` on (the default) jitter can reorder.
 * One seeded generator draws every loss, jitter, NAT port and TURN port;
 * hosts' randomBytes come from generators derived from the same seed.
 */
import { canonicalIp } from '../transport/address.js';
import { InvalidArgumentError } from '../errors.js';
import { VirtualClock, type SimEvent } from './clock.js';
import { Prng, type Seed } from './random.js';
import { SimNat, type SimNatOptions } from './nat.js';
import { SimHost, isLoopback, type SimHostOptions } from './host.js';
import { SimStunServer, type SimStunServerOptions } from './stun-server.js';
import { SimTurnServer, type SimTurnServerOptions } from './turn-server.js';
import { ServerPort } from './server-port.js';
import {
  DEFAULT_LINK, Link, SimTimeoutError, checkLink, stripUndefined,
  type DropReason, type Fabric, type LinkOptions, type Packet, type SimPacketEvent, type SimStats,
} from './types.js';

export interface SimNetworkOptions extends Partial<LinkOptions> {
  /** Seed of every random draw (default 1). The same seed and scenario give the same run. */
  seed?: Seed;
  /** Virtual ms after which an unanswered TCP connect fails with ETIMEDOUT. Default 20 000. */
  tcpConnectTimeout?: number;
}

/** Options of `SimNetwork.run()`. */
export interface RunOptions {
  /** Run exactly this much virtual time (events at the end time included), then resolve. */
  for?: number;
  /** Run until this returns true (checked before every event). */
  until?: () => boolean;
  /**
   * With `until` (or with neither option: run until nothing is left to do):
   * reject with SimTimeoutError once this much virtual time passed. Default 60 000.
   */
  timeout?: number;
}

/** A realm: one address space (the internet, or a NAT's inside). */
interface Realm {
  readonly name: string;
  /** The NAT whose inside this is (undefined: the internet). */
  readonly nat: SimNat | undefined;
  readonly endpoints: Map<string, SimHost | SimNat>;
}

/** Lets the microtasks, nextTicks and immediates queued by callbacks run. */
const settle = () => new Promise<void>((resolve) => setImmediate(resolve));

/**
 * The whole simulated network: build the topology (addNat, addHost,
 * addStunServer, addTurnServer, addName), hand each host's `network` to the
 * code under test, then drive virtual time with `run()`. Nothing happens
 * between run() calls: timers wait and datagrams stay in flight.
 */
export class SimNetwork {
  /** Link options of every host and NAT that does not set its own. */
  readonly defaults: LinkOptions;
  readonly stats: SimStats = { sent: 0, delivered: 0, lost: 0, filtered: 0, unroutable: 0, unreachable: 0, segments: 0 };
  readonly #clock = new VirtualClock();
  readonly #rng: Prng;
  readonly #internet: Realm = { name: 'internet', nat: undefined, endpoints: new Map() };
  readonly #inside = new Map<SimNat, Realm>();
  readonly #realmOf = new Map<SimHost, Realm>();
  readonly #names = new Map<string, string[]>();
  readonly #servers = new Map<string, ServerPort>();
  readonly #observers = new Set<(e: SimPacketEvent) => void>();
  readonly #fabric: Fabric;
  #packetId = 0;
  #running = false;

  constructor(opts: SimNetworkOptions = {}) {
    checkLink(opts, 'SimNetwork');
    this.defaults = { ...DEFAULT_LINK, ...stripUndefined({ delay: opts.delay, jitter: opts.jitter, loss: opts.loss, reorder: opts.reorder }) };
    this.#rng = new Prng(opts.seed ?? 1);
    const tcpConnectTimeout = opts.tcpConnectTimeout ?? 20_000;
    if (!(tcpConnectTimeout > 0)) throw new InvalidArgumentError('tcpConnectTimeout', 'must be > 0');
    this.#fabric = {
      clock: this.#clock,
      tcpConnectTimeout,
      transmit: (host, pkt) => this.#transmit(host as SimHost, pkt),
      resolve: (name) => this.#names.get(name),
    };
  }

  /** Current virtual time in ms (0 at creation). */
  now(): number {
    return this.#clock.now();
  }

  /** Events waiting on the virtual clock (timers and datagrams in flight). */
  get pending(): number {
    return this.#clock.pending;
  }

  /** Adds a NAT. Its public address lives on the internet, or inside `opts.nat`. */
  addNat(opts: SimNatOptions): SimNat {
    checkLink(opts, 'addNat');
    const link = new Link({ ...this.defaults, ...stripUndefined({ delay: opts.delay, jitter: opts.jitter, loss: opts.loss, reorder: opts.reorder }) });
    const nat = new SimNat(opts, link, this.#rng.fork(`nat:${opts.publicAddress}`), () => this.#clock.now());
    const outside = this.#realmFor(opts.nat);
    this.#claim(outside, nat.publicAddress, nat);
    this.#inside.set(nat, { name: `inside ${nat.publicAddress}`, nat, endpoints: new Map() });
    return nat;
  }

  /** Adds a host with one or more addresses, on the internet or behind `opts.nat`. */
  addHost(address: string | readonly string[], opts: SimHostOptions = {}): SimHost {
    checkLink(opts, 'addHost');
    const list = (typeof address === 'string' ? [address] : [...address]).map((a) => {
      const ip = canonicalIp(a);
      if (ip === undefined || ip === '0.0.0.0' || ip === '::' || isLoopback(ip)) throw new InvalidArgumentError('address', `not a usable host address: ${String(a)}`);
      return ip;
    });
    if (list.length === 0) throw new InvalidArgumentError('address', 'a host needs at least one address');
    if (new Set(list).size !== list.length) throw new InvalidArgumentError('address', 'duplicate address');
    const realm = this.#realmFor(opts.nat);
    for (const ip of list) if (realm.endpoints.has(ip)) throw new InvalidArgumentError('address', `${ip} is already in use in ${realm.name}`);
    const link = new Link({ ...this.defaults, ...stripUndefined({ delay: opts.delay, jitter: opts.jitter, loss: opts.loss, reorder: opts.reorder }) });
    const rng = this.#rng.fork(`host:${opts.nat?.publicAddress ?? ''}/${list[0]}`);
    const host = new SimHost(this.#fabric, list, opts.nat, link, rng, opts.name);
    for (const ip of list) realm.endpoints.set(ip, host);
    this.#realmOf.set(host, realm);
    return host;
  }

  /** The host with this address on the internet (or inside `nat`), if any. */
  host(address: string, nat?: SimNat): SimHost | undefined {
    const e = this.#realmFor(nat).endpoints.get(canonicalIp(address) ?? address);
    return e instanceof SimHost ? e : undefined;
  }

  /** Registers a name for every host's `lookup()` (one or more addresses; the first of the asked family wins). */
  addName(name: string, address: string | readonly string[]): void {
    const list = (typeof address === 'string' ? [address] : [...address]).map((a) => {
      const ip = canonicalIp(a);
      if (ip === undefined) throw new InvalidArgumentError('address', `not an IP address: ${String(a)}`);
      return ip;
    });
    this.#names.set(name.toLowerCase().replace(/\.$/, ''), list);
  }

  /**
   * A STUN server (RFC 8489 Binding only) on the internet at address:port. The
   * host for `address` is created (with the link options given) unless a
   * public host has that address already.
   */
  addStunServer(address: string, port = 3478, opts: SimStunServerOptions = {}): SimStunServer {
    const server = new SimStunServer(this.#serverPort(address, port, opts), opts);
    return server;
  }

  /**
   * A TURN server (RFC 8656 over UDP, long-term credentials) at address:port,
   * which answers Binding requests too. It may share address:port with a STUN
   * server added before (that one then keeps answering Binding).
   */
  addTurnServer(address: string, port = 3478, opts: SimTurnServerOptions): SimTurnServer {
    const sp = this.#serverPort(address, port, opts);
    return new SimTurnServer(sp, opts, this.#rng.fork(`turn:${sp.socket.local.address}:${sp.socket.local.port}`), () => this.#clock.now());
  }

  #serverPort(address: string, port: number, link: Partial<LinkOptions>): ServerPort {
    const ip = canonicalIp(address);
    if (ip === undefined) throw new InvalidArgumentError('address', `not an IP address: ${String(address)}`);
    const key = `${ip}|${port}`;
    let sp = this.#servers.get(key);
    if (sp === undefined) {
      const own = stripUndefined({ delay: link.delay, jitter: link.jitter, loss: link.loss, reorder: link.reorder });
      const host = this.host(ip) ?? this.addHost(ip, { ...own, name: `server ${ip}` });
      sp = new ServerPort(host, host.bindUdp(ip, port));
      this.#servers.set(key, sp);
    }
    return sp;
  }

  /** Calls `fn` for every datagram sent, delivered and dropped. Returns a function that stops it. */
  observe(fn: (e: SimPacketEvent) => void): () => void {
    this.#observers.add(fn);
    return () => this.#observers.delete(fn);
  }

  /** Runs `fn` after `ms` virtual ms (for scenarios: cut a link at t = 10 s ...). Cancel with `cancel`. */
  after(ms: number, fn: () => void): SimEvent {
    return this.#clock.at(this.#clock.now() + Math.max(0, ms), fn, true);
  }

  cancel(handle: SimEvent): void {
    this.#clock.cancel(handle);
  }

  /**
   * Advances virtual time, firing timers and delivering datagrams in order.
   * After each event that ran outside code, pending promise continuations
   * run (one setImmediate turn) before the next, as in Node. A callback that
   * throws makes run() reject with its error.
   *
   * - `{ for: ms }`: exactly that much virtual time.
   * - `{ until, timeout }`: until `until()` is true; SimTimeoutError when
   *   `timeout` virtual ms pass first (at once in real time if nothing is left).
   * - `{}`: until no event is left (SimTimeoutError after `timeout`).
   */
  async run(opts: RunOptions = {}): Promise<void> {
    if (this.#running) throw new Error('SimNetwork.run() is already running');
    if (opts.for !== undefined && (opts.until !== undefined || opts.timeout !== undefined)) {
      throw new InvalidArgumentError('opts', 'give either `for` or `until`/`timeout`');
    }
    const span = opts.for ?? opts.timeout ?? 60_000;
    if (!(span >= 0 && Number.isFinite(span))) throw new InvalidArgumentError(opts.for !== undefined ? 'for' : 'timeout', 'must be a finite number >= 0');
    const end = this.#clock.now() + span;
    this.#running = true;
    try {
      await settle();
      for (;;) {
        if (opts.until?.()) return;
        const next = this.#clock.nextTime();
        if (next === undefined && opts.for === undefined && opts.until === undefined) return;
        if (next === undefined || next > end) {
          this.#clock.advanceTo(end);
          if (opts.for !== undefined) {
            await settle();
            return;
          }
          if (opts.until?.()) return;
          throw new SimTimeoutError(span, end, next === undefined);
        }
        const ev = this.#clock.pop()!;
        ev.fn();
        if (ev.user) await settle();
      }
    } finally {
      this.#running = false;
    }
  }

  /* -------------------------------- routing ------------------------------- */

  #realmFor(nat: SimNat | undefined): Realm {
    if (nat === undefined) return this.#internet;
    const r = this.#inside.get(nat);
    if (r === undefined) throw new InvalidArgumentError('nat', 'that NAT belongs to another SimNetwork');
    return r;
  }

  #claim(realm: Realm, ip: string, who: SimHost | SimNat): void {
    if (realm.endpoints.has(ip)) throw new InvalidArgumentError('address', `${ip} is already in use in ${realm.name}`);
    realm.endpoints.set(ip, who);
  }

  #emit(kind: SimPacketEvent['kind'], pkt: Packet, reason?: DropReason): void {
    if (this.#observers.size === 0) return;
    const e: SimPacketEvent = {
      time: this.#clock.now(), id: pkt.id, kind, proto: pkt.proto,
      from: { ...pkt.src }, to: { ...pkt.dst }, size: pkt.data.length, data: pkt.data,
      ...(reason ? { reason } : {}),
    };
    for (const fn of this.#observers) fn(e);
  }

  #drop(pkt: Packet, reason: DropReason): void {
    if (pkt.proto === 'udp') {
      if (reason === 'loss') this.stats.lost++;
      else if (reason === 'filtered' || reason === 'no-mapping' || reason === 'hairpin') this.stats.filtered++;
      else if (reason === 'unroutable') this.stats.unroutable++;
      else this.stats.unreachable++;
    }
    this.#emit('drop', pkt, reason);
  }

  /** Crosses a link: loss, then delay + jitter; `next` runs at the arrival time. */
  #cross(link: Link, dir: 0 | 1, pkt: Packet, next: (pkt: Packet) => void, user = false): void {
    const o = link.opts;
    const tcp = pkt.proto === 'tcp';
    if (!tcp && o.loss > 0 && this.#rng.next() < o.loss) {
      this.#drop(pkt, 'loss');
      return;
    }
    let at = this.#clock.now() + o.delay + (o.jitter > 0 ? this.#rng.next() * o.jitter : 0);
    if (tcp) {
      at = Math.max(at, link.lastTcp[dir]);
      link.lastTcp[dir] = at;
    } else if (!o.reorder) {
      at = Math.max(at, link.lastUdp[dir]);
      link.lastUdp[dir] = at;
    }
    this.#clock.at(at, () => next(pkt), user);
  }

  #transmit(host: SimHost, p: Omit<Packet, 'id'>): void {
    const pkt: Packet = { ...p, id: this.#packetId++ };
    if (pkt.proto === 'udp') this.stats.sent++;
    else this.stats.segments++;
    this.#emit('send', pkt);
    // Loopback and the host's own addresses never leave it.
    if (isLoopback(pkt.dst.address) || host.addresses.includes(pkt.dst.address)) {
      this.#clock.at(this.#clock.now(), () => this.#arrive(host, pkt), true);
      return;
    }
    if (isLoopback(pkt.src.address)) {
      this.#drop(pkt, 'unroutable');
      return;
    }
    const realm = this.#realmOf.get(host)!;
    this.#cross(host.link, 0, pkt, (q) => this.#route(realm, q));
  }

  /** A packet is in `realm`, addressed to pkt.dst. */
  #route(realm: Realm, pkt: Packet): void {
    const target = realm.endpoints.get(pkt.dst.address);
    if (target instanceof SimHost) {
      this.#cross(target.link, 1, pkt, (q) => this.#arrive(target, q), true);
      return;
    }
    if (target instanceof SimNat) {
      this.#cross(target.link, 1, pkt, (q) => {
        const r = target.inbound(q);
        if (typeof r === 'string') this.#drop(q, r);
        else this.#route(this.#inside.get(target)!, r);
      });
      return;
    }
    const nat = realm.nat;
    if (nat === undefined) {
      this.#drop(pkt, 'unroutable');
      return;
    }
    const out = nat.outbound(pkt);
    if (typeof out === 'string') {
      this.#drop(pkt, out);
      return;
    }
    const outside = this.#realmFor(nat.parent);
    this.#cross(nat.link, 0, out, (q) => this.#route(outside, q));
  }

  #arrive(host: SimHost, pkt: Packet): void {
    // A handler that throws did receive the datagram: count it, then let run() reject.
    let taken = true;
    try {
      taken = host.receive(pkt);
    } finally {
      if (taken) {
        if (pkt.proto === 'udp') this.stats.delivered++;
        this.#emit('deliver', pkt);
      } else {
        this.#drop(pkt, 'unreachable');
      }
    }
  }
}
