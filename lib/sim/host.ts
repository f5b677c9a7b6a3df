/**
 * A host of the in-memory network and its `Network` (lib/transport/network.ts):
 * the seam an `Agent` (or a TURN client, or a test) does all its I/O through.
 *
 * - Clock and timers are the simulation's virtual clock, shared by every host.
 * - `randomBytes` comes from a generator derived from the network's seed and
 *   the host's identity, so each host's bytes are reproducible and
 *   independent of what other hosts do.
 * - `interfaces()` lists the host's addresses, then loopback (127.0.0.1, and
 *   ::1 if the host has an IPv6 address) as internal.
 * - `bindDatagram` accepts the host's own addresses and loopback (127/8, ::1).
 *   The wildcards '0.0.0.0' and '::' bind the host's *first* address of that
 *   family (the socket's `local` says which): there is no routing table to
 *   pick a source address per destination. Port 0 picks a free port from the
 *   Linux ephemeral range 32768-60999. Errors carry Node's `code`
 *   (EADDRINUSE, EADDRNOTAVAIL, EINVAL, ERR_SOCKET_BAD_PORT).
 * - Datagrams are delivered as fresh Buffer copies, `from` canonical;
 *   `send` returns false once closed, for payloads over 65507 bytes (IPv4) /
 *   65527 (IPv6), for a bad destination and for one of the other family.
 * - `lookup` answers IP literals, 'localhost' and names from
 *   `SimNetwork.addName`; anything else fails with ENOTFOUND.
 * - Streams (`connectStream`, `listenStream`) are a simple reliable, in-order
 *   byte stream (lib/sim/stream.ts); TLS is accepted and simulated as plain TCP.
 *
 * Code under simulation must not wait for real I/O or real timers: the run
 * loop only lets promise continuations (and setImmediate callbacks) run
 * between virtual events.
 */
import { addressKey, canonicalIp, isV6, type TransportAddress } from '../transport/address.js';
import type {
  StreamConnectOptions, DatagramSocket, InterfaceAddress, Network, StreamListener, StreamSocket, TimerHandle,
} from '../transport/network.js';
import type { SimNat } from './nat.js';
import type { Prng } from './random.js';
import { TcpStack } from './stream.js';
import { systemError, type Fabric, type HostLike, type Link, type LinkOptions, type Packet } from './types.js';

const MAX_UDP_PAYLOAD_V4 = 65507;
const MAX_UDP_PAYLOAD_V6 = 65527;
/** Linux's default ip_local_port_range. */
export const EPHEMERAL_PORTS: readonly [number, number] = [32768, 60999];

export function isLoopback(ip: string): boolean {
  return ip === '::1' || (!isV6(ip) && ip.startsWith('127.'));
}

/** Counters of one host (datagrams). */
export interface SimHostStats {
  sent: number;
  received: number;
}

/** A bound UDP socket of a simulated host. */
export class SimDatagramSocket implements DatagramSocket {
  readonly local: TransportAddress;
  readonly #host: SimHost;
  readonly #max: number;
  #handler: ((data: Buffer, from: TransportAddress) => void) | undefined;
  #closing: Promise<void> | undefined;

  /** @internal */
  constructor(host: SimHost, local: TransportAddress) {
    this.#host = host;
    this.local = local;
    this.#max = isV6(local.address) ? MAX_UDP_PAYLOAD_V6 : MAX_UDP_PAYLOAD_V4;
  }

  /** Whether close() was called. */
  get closed(): boolean {
    return this.#closing !== undefined;
  }

  send(data: Uint8Array, to: TransportAddress): boolean {
    if (this.#closing !== undefined || !(data instanceof Uint8Array) || data.length > this.#max) return false;
    const address = canonicalIp(to?.address);
    if (address === undefined || !Number.isInteger(to.port) || to.port < 1 || to.port > 65535) return false;
    if (isV6(address) !== isV6(this.local.address)) return false;
    this.#host.stats.sent++;
    this.#host.transmit({ proto: 'udp', src: this.local, dst: { address, port: to.port }, data: Buffer.from(data) });
    return true;
  }

  onMessage(handler: (data: Buffer, from: TransportAddress) => void): void {
    this.#handler = handler;
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#handler = undefined;
    this.#host.unbindUdp(this);
    this.#closing = Promise.resolve();
    return this.#closing;
  }

  /** @internal Whether a receive handler is set. */
  get listening(): boolean {
    return this.#handler !== undefined;
  }

  /** @internal */
  deliver(data: Buffer, from: TransportAddress): void {
    this.#handler?.(data, from);
  }
}

/** The `Network` of one simulated host. */
class SimHostNetwork implements Network {
  readonly #host: SimHost;
  readonly #fabric: Fabric;

  constructor(host: SimHost, fabric: Fabric) {
    this.#host = host;
    this.#fabric = fabric;
  }

  now(): number {
    return this.#fabric.clock.now();
  }

  setTimer(fn: () => void, ms: number): TimerHandle {
    return this.#fabric.clock.setTimer(fn, ms);
  }

  clearTimer(handle: TimerHandle): void {
    this.#fabric.clock.cancel(handle);
  }

  randomBytes(n: number): Buffer {
    if (!Number.isInteger(n) || n < 0) throw new RangeError(`randomBytes: size must be an integer >= 0, got ${n}`);
    return this.#host.rng.bytes(n);
  }

  interfaces(): InterfaceAddress[] {
    const out: InterfaceAddress[] = this.#host.addresses.map((address) => ({ address, internal: false }));
    out.push({ address: '127.0.0.1', internal: true });
    if (this.#host.addresses.some(isV6)) out.push({ address: '::1', internal: true });
    return out;
  }

  async bindDatagram(address: string, port: number): Promise<DatagramSocket> {
    return this.#host.bindUdp(address, port);
  }

  async connectStream(opts: StreamConnectOptions): Promise<StreamSocket> {
    return this.#host.tcp.connect(opts);
  }

  async listenStream(address: string, port: number): Promise<StreamListener> {
    return this.#host.tcp.listen(address, port);
  }

  async lookup(host: string, family?: 4 | 6): Promise<string> {
    const fits = (ip: string) => family === undefined || (family === 6) === isV6(ip);
    const literal = canonicalIp(host);
    if (literal !== undefined && fits(literal)) return literal;
    const name = String(host).toLowerCase().replace(/\.$/, '');
    const list = name === 'localhost' ? ['127.0.0.1', '::1'] : this.#fabric.resolve(name) ?? [];
    const found = literal === undefined ? list.find(fits) : undefined;
    if (found === undefined) {
      const err = systemError('ENOTFOUND', 'getaddrinfo', String(host));
      (err as { hostname?: string }).hostname = String(host);
      throw err;
    }
    return found;
  }
}

export interface SimHostOptions extends Partial<LinkOptions> {
  /** The NAT this host sits behind; its addresses are then private to that NAT's inside. */
  nat?: SimNat;
  /** A label for logs (default: the first address). */
  name?: string;
}

/** A simulated host: one or more addresses, a link, sockets, and a `network` to hand to an Agent. */
export class SimHost implements HostLike {
  readonly name: string;
  readonly addresses: readonly string[];
  readonly nat: SimNat | undefined;
  /** The host's I/O seam: pass it as the Agent's (or a TURN client's) network. */
  readonly network: Network;
  readonly stats: SimHostStats = { sent: 0, received: 0 };
  /** @internal */
  readonly link: Link;
  /** @internal */
  readonly rng: Prng;
  /** @internal */
  readonly tcp: TcpStack;
  readonly #fabric: Fabric;
  readonly #portRng: Prng;
  readonly #udp = new Map<string, SimDatagramSocket>();

  /** @internal Created by SimNetwork.addHost. */
  constructor(fabric: Fabric, addresses: string[], nat: SimNat | undefined, link: Link, rng: Prng, name?: string) {
    this.#fabric = fabric;
    this.addresses = Object.freeze([...addresses]);
    this.nat = nat;
    this.link = link;
    this.rng = rng;
    this.#portRng = rng.fork('ports');
    this.name = name ?? addresses[0]!;
    this.network = new SimHostNetwork(this, fabric);
    this.tcp = new TcpStack(this, fabric);
  }

  /** The host's first address. */
  get address(): string {
    return this.addresses[0]!;
  }

  /** Changes the host's link (delay, jitter, loss, reorder) from now on, e.g. `{ loss: 1 }` to cut it off. */
  setLink(p: Partial<LinkOptions>): void {
    this.link.set(p, `host ${this.name}`);
  }

  /** The local addresses of the UDP sockets this host has bound. */
  boundPorts(): TransportAddress[] {
    return [...this.#udp.values()].map((s) => s.local);
  }

  /**
   * Resolves a bind address: the host's own, loopback, or a wildcard (the
   * first address of the family). Throws a coded error otherwise.
   * @internal
   */
  localAddress(address: string, port: number, syscall: string): string {
    if (!Number.isInteger(port) || port < 0 || port > 65535) {
      const err = new RangeError(`Port should be >= 0 and < 65536. Received ${String(port)}.`) as RangeError & { code: string };
      err.code = 'ERR_SOCKET_BAD_PORT';
      throw err;
    }
    const ip = canonicalIp(address);
    if (ip === undefined) throw systemError('EINVAL', syscall, String(address), port, 'not an IP address');
    if (ip === '0.0.0.0' || ip === '::') {
      const first = this.addresses.find((a) => isV6(a) === (ip === '::'));
      if (first === undefined) throw systemError('EADDRNOTAVAIL', syscall, ip, port, `host ${this.name} has no address of that family`);
      return first;
    }
    if (!this.addresses.includes(ip) && !(isLoopback(ip) && (ip !== '::1' || this.addresses.some(isV6)))) {
      throw systemError('EADDRNOTAVAIL', syscall, ip, port, `not an address of host ${this.name}`);
    }
    return ip;
  }

  /** A free port on `address` for `proto`, from the ephemeral range, chosen by the host's generator. @internal */
  ephemeralPort(inUse: (port: number) => boolean): number | undefined {
    const [lo, hi] = EPHEMERAL_PORTS;
    for (let i = 0; i < 32; i++) {
      const p = this.#portRng.int(lo, hi);
      if (!inUse(p)) return p;
    }
    for (let p = lo; p <= hi; p++) if (!inUse(p)) return p;
    return undefined;
  }

  /** Binds a UDP socket synchronously (servers use it; the Network's bindDatagram wraps it). @internal */
  bindUdp(address: string, port: number): SimDatagramSocket {
    const ip = this.localAddress(address, port, 'bind');
    let p = port;
    if (p === 0) {
      const free = this.ephemeralPort((q) => this.#udp.has(addressKey(ip, q)));
      if (free === undefined) throw systemError('EADDRINUSE', 'bind', ip, 0, 'no free port');
      p = free;
    } else if (this.#udp.has(addressKey(ip, p))) {
      throw systemError('EADDRINUSE', 'bind', ip, p);
    }
    const socket = new SimDatagramSocket(this, { address: ip, port: p });
    this.#udp.set(addressKey(ip, p), socket);
    return socket;
  }

  /** @internal */
  unbindUdp(socket: SimDatagramSocket): void {
    const k = addressKey(socket.local.address, socket.local.port);
    if (this.#udp.get(k) === socket) this.#udp.delete(k);
  }

  /** @internal */
  transmit(pkt: Omit<Packet, 'id'>): void {
    this.#fabric.transmit(this, pkt);
  }

  /** @internal */
  receive(pkt: Packet): boolean {
    if (pkt.proto === 'tcp') return this.tcp.receive(pkt);
    const socket = this.#udp.get(addressKey(pkt.dst.address, pkt.dst.port));
    if (socket === undefined || !socket.listening) return false;
    this.stats.received++;
    // A fresh copy per delivery: the receiver may keep or change it.
    socket.deliver(Buffer.from(pkt.data), { address: pkt.src.address, port: pkt.src.port });
    return true;
  }
}
