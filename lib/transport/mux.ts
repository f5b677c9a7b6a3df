/**
 * One UDP port for every session (pion's `UDPMux`, libjuice's `conn_mux`,
 * mediasoup's `WebRtcServer`): a media server creates a `UdpMux` once, on a
 * fixed port if it likes (3478, 10000 ...), and hands it to each agent
 * (`new Agent({ udpMux })`). Every agent's streams then receive and send on
 * the mux's sockets, one per local address, instead of binding their own.
 *
 * Demultiplexing: a datagram from a remote address that some view claimed
 * goes to that view; from any other source, only a STUN Binding request is
 * looked at, and it goes to the view whose local ufrag its USERNAME names
 * (RFC 8445 §7.2.2: "LFRAG:RFRAG" as the receiver sees it). Only an
 * authenticated request makes a route: the agent checks MESSAGE-INTEGRITY and
 * then claims the source (`DatagramSocket.claim`). Anything else — requests
 * for unknown ufrags, data from unknown sources — is dropped and counted, and
 * allocates nothing, so a flood from thousands of sources costs nothing that
 * stays. The route table is bounded (`maxRoutes`, oldest evicted first).
 *
 * A view serves one component of one stream (its ufrag names the stream, and
 * nothing in a check names the component): streams with more components give
 * their other components sockets of their own (use rtcp-mux, as browsers do).
 */
import { addressKey, type TransportAddress } from './address.js';
import type { DatagramBindOptions, DatagramSocket, Network } from './network.js';
import { nodeNetwork } from './node-network.js';
import { BINDING_REQUEST, decodeStun, getUsername, isStunFrame } from '../stun/message.js';
import { InvalidArgumentError, InvalidStateError, show } from '../errors.js';
import { LazySet } from '../core/lazy.js';

export interface UdpMuxOptions {
  /** Local addresses to listen on, one socket each (e.g. `['10.0.0.5']`). */
  addresses: string[];
  /** The one port for all of them (0: any free port, possibly different per address). Default 0. */
  port?: number;
  /** Routes kept at most (authenticated remote addresses); the oldest goes first. Default 100,000. */
  maxRoutes?: number;
  /**
   * Kernel receive buffer of each socket in bytes (SO_RCVBUF). A mux takes
   * every session's traffic on one socket: the default (about 208 KiB on
   * Linux) overflows when thousands of checks or a flood arrive at once. The
   * kernel caps it at net.core.rmem_max. Default: the system's.
   */
  receiveBufferSize?: number;
  /** Kernel send buffer of each socket in bytes (SO_SNDBUF). Default: the system's. */
  sendBufferSize?: number;
  network?: Network;
}

export interface UdpMuxStats {
  received: number;
  /** Datagrams routed by their remote address (a route an authenticated request made). */
  routedByAddress: number;
  /** Binding requests routed by the local ufrag in their USERNAME. */
  routedByUfrag: number;
  /** Binding requests naming no ufrag of any open view. */
  unknownUfrag: number;
  /** Datagrams from a source without a route that are not a Binding request with a USERNAME. */
  unknownSource: number;
  routes: number;
  evictions: number;
  views: number;
}

/** One shared socket and its routes. */
class Port {
  readonly mux: UdpMux;
  readonly socket: DatagramSocket;
  /** remote address key -> view; insertion order is age (a claim moves it to the end). */
  readonly routes = new Map<string, MuxView>();
  readonly byUfrag = new Map<string, MuxView>();

  constructor(mux: UdpMux, socket: DatagramSocket) {
    this.mux = mux;
    this.socket = socket;
  }
}

export class UdpMux {
  readonly #ports: Port[];
  readonly #maxRoutes: number;
  readonly #stats: Omit<UdpMuxStats, 'routes' | 'views'> = {
    received: 0, routedByAddress: 0, routedByUfrag: 0, unknownUfrag: 0, unknownSource: 0, evictions: 0,
  };
  readonly #views = new Set<MuxView>();
  #closing: Promise<void> | undefined;

  private constructor(sockets: DatagramSocket[], maxRoutes: number) {
    const ports = sockets.map((s) => new Port(this, s));
    this.#ports = ports;
    this.#maxRoutes = maxRoutes;
    for (const p of ports) p.socket.onMessage((data, from) => this.#receive(p, data, from));
  }

  /** Binds the mux's sockets. Rejects (closing what it bound) if any address or the port is unusable. */
  static async bind(opts: UdpMuxOptions): Promise<UdpMux> {
    if (!opts || !Array.isArray(opts.addresses) || opts.addresses.length === 0) {
      throw new InvalidArgumentError('addresses', 'must be a non-empty array of local IP addresses');
    }
    const port = opts.port ?? 0;
    if (!Number.isInteger(port) || port < 0 || port > 65535) throw new InvalidArgumentError('port', `must be 0-65535, got ${port}`);
    const maxRoutes = opts.maxRoutes ?? 100_000;
    if (!Number.isInteger(maxRoutes) || maxRoutes < 1) throw new InvalidArgumentError('maxRoutes', 'must be a positive integer');
    const sizes: DatagramBindOptions = {};
    for (const k of ['receiveBufferSize', 'sendBufferSize'] as const) {
      const v = opts[k];
      if (v === undefined) continue;
      if (!Number.isInteger(v) || v < 1 || v > 0x7fffffff) throw new InvalidArgumentError(k, `must be a positive integer of bytes, got ${show(v)}`);
      sizes[k] = v;
    }
    const net = opts.network ?? nodeNetwork;
    const sockets: DatagramSocket[] = [];
    try {
      for (const a of opts.addresses) sockets.push(await net.bindDatagram(a, port, sizes));
    } catch (err) {
      await Promise.all(sockets.map((s) => s.close()));
      throw err;
    }
    return new UdpMux(sockets, maxRoutes);
  }

  /** The local transport addresses the mux listens on. */
  get addresses(): TransportAddress[] {
    return this.#ports.map((p) => ({ ...p.socket.local }));
  }

  get closed(): boolean {
    return this.#closing !== undefined;
  }

  get stats(): UdpMuxStats {
    let routes = 0;
    for (const p of this.#ports) routes += p.routes.size;
    return { ...this.#stats, routes, views: this.#views.size };
  }

  /**
   * A view of the socket on `address` for one component of one stream: what
   * an agent uses as its host socket there. @internal (the agent calls it).
   */
  open(address: string): MuxView {
    if (this.#closing) throw new InvalidStateError('the UDP mux is closed');
    const port = this.#ports.find((p) => p.socket.local.address === address);
    if (!port) throw new InvalidArgumentError('address', `the mux does not listen on ${address}`);
    const view = new MuxView(port);
    this.#views.add(view);
    return view;
  }

  #receive(port: Port, data: Buffer, from: TransportAddress): void {
    this.#stats.received++;
    const routed = port.routes.get(addressKey(from.address, from.port));
    if (routed) {
      this.#stats.routedByAddress++;
      routed._deliver(data, from);
      return;
    }
    // A new source: only a Binding request can tell whom it is for (RFC 8445 §7.2.2 USERNAME).
    const m = data.length >= 20 && data[0]! < 2 && isStunFrame(data) ? decodeStun(data) : undefined;
    const username = m && m.method === BINDING_REQUEST && m.cls === 'request' ? getUsername(m) : undefined;
    if (username === undefined) {
      this.#stats.unknownSource++;
      return;
    }
    const colon = username.indexOf(':');
    const view = colon > 0 ? port.byUfrag.get(username.slice(0, colon)) : undefined;
    if (!view) {
      this.#stats.unknownUfrag++;
      return;
    }
    this.#stats.routedByUfrag++;
    view._deliver(data, from);
  }

  /** @internal */
  _claim(view: MuxView, port: Port, remote: TransportAddress): void {
    const key = addressKey(remote.address, remote.port);
    const current = port.routes.get(key);
    if (current && current !== view) current._routes.delete(key);
    port.routes.delete(key);
    port.routes.set(key, view);
    view._routes.add(key);
    while (port.routes.size > this.#maxRoutes) {
      const [oldest, owner] = port.routes.entries().next().value as [string, MuxView];
      port.routes.delete(oldest);
      owner._routes.delete(oldest);
      this.#stats.evictions++;
    }
  }

  /** @internal */
  _setUfrags(view: MuxView, port: Port, ufrags: readonly string[]): void {
    const old = view._ufrags;
    for (const u of typeof old === 'string' ? [old] : old) if (port.byUfrag.get(u) === view) port.byUfrag.delete(u);
    // One ufrag (no restart under way) is kept as the string itself: no array per view.
    view._ufrags = ufrags.length === 1 ? ufrags[0]! : [...ufrags];
    for (const u of ufrags) port.byUfrag.set(u, view);
  }

  /** @internal A view closed: its routes and ufrags go; the shared socket stays. */
  _detach(view: MuxView, port: Port): void {
    this._setUfrags(view, port, []);
    for (const key of view._routes) if (port.routes.get(key) === view) port.routes.delete(key);
    view._routes.clear();
    this.#views.delete(view);
  }

  /** Closes the shared sockets (every view stops receiving); resolves when they are gone. */
  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const v of [...this.#views]) await v.close();
      await Promise.all(this.#ports.map((p) => p.socket.close()));
    })();
    return this.#closing;
  }
}

const NO_UFRAGS = Object.freeze([]) as unknown as string[];

/** One component's view of a shared socket: a DatagramSocket for the agent. */
export class MuxView implements DatagramSocket {
  readonly #port: Port;
  #handler: ((data: Buffer, from: TransportAddress) => void) | undefined;
  #closed = false;
  /** @internal */ _routes = new LazySet<string>();
  /** @internal The ufrags it is routed by: one as a string, else a list. */ _ufrags: string | string[] = NO_UFRAGS;

  constructor(port: Port) {
    this.#port = port;
  }

  get local(): TransportAddress {
    return this.#port.socket.local;
  }

  /** The local ufrags requests must name to reach this view (the stream's current and, during a restart, previous one). */
  setUfrags(ufrags: readonly string[]): void {
    if (!this.#closed) this.#port.mux._setUfrags(this, this.#port, ufrags);
  }

  send(data: Uint8Array, to: TransportAddress): boolean {
    return !this.#closed && this.#port.socket.send(data, to);
  }

  onMessage(handler: (data: Buffer, from: TransportAddress) => void): void {
    this.#handler = handler;
  }

  claim(remote: TransportAddress): void {
    if (!this.#closed) this.#port.mux._claim(this, this.#port, remote);
  }

  /** @internal */
  _deliver(data: Buffer, from: TransportAddress): void {
    this.#handler?.(data, from);
  }

  close(): Promise<void> {
    if (!this.#closed) {
      this.#closed = true;
      this.#handler = undefined;
      this.#port.mux._detach(this, this.#port);
    }
    return Promise.resolve();
  }
}
