/**
 * A deliberately simple TCP for the in-memory network: enough for ICE-TCP
 * (RFC 6544) and TURN over TCP tests, not a model of TCP itself.
 *
 * - Connect: a SYN travels the path like a datagram (NAT mappings are made
 *   and filtering applies, with the NAT's TCP mapping lifetime); a listener
 *   answers SYN-ACK and its onConnection fires when the SYN arrives; no
 *   listener answers RST (ECONNREFUSED); no answer at all (unroutable,
 *   filtered) fails with ETIMEDOUT after the network's `tcpConnectTimeout`;
 *   `opts.signal` aborts an attempt (ABORT_ERR). Simultaneous open is not
 *   modelled (ICE-TCP's tcptype so is not gathered, lib/core/tcp.ts).
 * - Data: segments are never lost and never reordered (each link is FIFO for
 *   TCP); each write() arrives as one chunk after the path's delay. No flow
 *   control, no congestion, no MSS splitting.
 * - close() sends FIN; the peer's onClose fires (without error) when it
 *   arrives. A segment for a connection that does not exist is answered with
 *   RST, which closes the other end with ECONNRESET.
 * - TLS (`opts.tls`) is accepted and carried as plain TCP: no handshake, no
 *   certificate checks.
 */
import { addressKey, canonicalIp, isV6, type TransportAddress } from '../transport/address.js';
import type { StreamConnectOptions, StreamListener, StreamSocket } from '../transport/network.js';
import type { SimEvent } from './clock.js';
import type { SimHost } from './host.js';
import { systemError, type Fabric, type Packet, type SegmentKind } from './types.js';

const connKey = (local: TransportAddress, remote: TransportAddress) => `${addressKey(local.address, local.port)}>${addressKey(remote.address, remote.port)}`;

/** One end of a simulated TCP connection. */
export class SimStreamSocket implements StreamSocket {
  readonly local: TransportAddress;
  readonly remote: TransportAddress;
  readonly #stack: TcpStack;
  #state: 'connecting' | 'open' | 'closed' = 'connecting';
  #dataHandler: ((chunk: Buffer) => void) | undefined;
  #buffered: Buffer[] = [];
  #closeHandlers: Array<(error?: Error) => void> = [];
  #closeError: Error | undefined;
  #gone: Promise<void> | undefined;

  /** @internal */
  constructor(stack: TcpStack, local: TransportAddress, remote: TransportAddress) {
    this.#stack = stack;
    this.local = local;
    this.remote = remote;
  }

  get state(): 'connecting' | 'open' | 'closed' {
    return this.#state;
  }

  write(data: Uint8Array): boolean {
    if (this.#state !== 'open' || !(data instanceof Uint8Array)) return false;
    this.#stack.send(this, 'data', Buffer.from(data));
    return true;
  }

  onData(handler: (chunk: Buffer) => void): void {
    this.#dataHandler = handler;
    const queued = this.#buffered;
    this.#buffered = [];
    for (const chunk of queued) handler(chunk);
  }

  onClose(handler: (error?: Error) => void): void {
    if (this.#state === 'closed') queueMicrotask(() => handler(this.#closeError));
    else this.#closeHandlers.push(handler);
  }

  close(): Promise<void> {
    if (this.#state === 'open') this.#stack.send(this, 'fin');
    this.terminate(undefined);
    return (this.#gone ??= Promise.resolve());
  }

  /** @internal */
  open(): void {
    if (this.#state === 'connecting') this.#state = 'open';
  }

  /** @internal */
  data(chunk: Buffer): void {
    if (this.#state !== 'open') return;
    if (this.#dataHandler) this.#dataHandler(chunk);
    else this.#buffered.push(chunk);
  }

  /** @internal Closes this end (no segment sent) and tells the onClose handlers. */
  terminate(error: Error | undefined): void {
    if (this.#state === 'closed') return;
    this.#state = 'closed';
    this.#closeError = error;
    this.#stack.forget(this);
    const handlers = this.#closeHandlers;
    this.#closeHandlers = [];
    for (const h of handlers) h(error);
  }
}

/** A listening socket of a simulated host. */
export class SimStreamListener implements StreamListener {
  readonly local: TransportAddress;
  readonly #stack: TcpStack;
  #handler: ((socket: StreamSocket) => void) | undefined;
  #queued: SimStreamSocket[] = [];
  #gone: Promise<void> | undefined;

  /** @internal */
  constructor(stack: TcpStack, local: TransportAddress) {
    this.#stack = stack;
    this.local = local;
  }

  onConnection(handler: (socket: StreamSocket) => void): void {
    this.#handler = handler;
    const queued = this.#queued;
    this.#queued = [];
    for (const s of queued) handler(s);
  }

  close(): Promise<void> {
    this.#stack.unlisten(this);
    return (this.#gone ??= Promise.resolve());
  }

  /** @internal */
  accept(socket: SimStreamSocket): void {
    if (this.#handler) this.#handler(socket);
    else this.#queued.push(socket);
  }
}

interface Pending {
  socket: SimStreamSocket;
  resolve: (s: StreamSocket) => void;
  reject: (e: Error) => void;
  timer: SimEvent;
}

/** @internal The TCP side of one SimHost. */
export class TcpStack {
  readonly #host: SimHost;
  readonly #fabric: Fabric;
  readonly #listeners = new Map<string, SimStreamListener>();
  readonly #conns = new Map<string, SimStreamSocket>();
  readonly #pending = new Map<SimStreamSocket, Pending>();
  /** Local ports in use by connections (address|port -> count). */
  readonly #ports = new Map<string, number>();

  constructor(host: SimHost, fabric: Fabric) {
    this.#host = host;
    this.#fabric = fabric;
  }

  #portInUse(address: string, port: number): boolean {
    const k = addressKey(address, port);
    return this.#listeners.has(k) || (this.#ports.get(k) ?? 0) > 0;
  }

  listen(address: string, port: number): SimStreamListener {
    const ip = this.#host.localAddress(address, port, 'listen');
    let p = port;
    if (p === 0) p = this.#host.ephemeralPort((q) => this.#portInUse(ip, q)) ?? 0;
    if (p === 0 || this.#portInUse(ip, p)) throw systemError('EADDRINUSE', 'listen', ip, p);
    const l = new SimStreamListener(this, { address: ip, port: p });
    this.#listeners.set(addressKey(ip, p), l);
    return l;
  }

  unlisten(l: SimStreamListener): void {
    const k = addressKey(l.local.address, l.local.port);
    if (this.#listeners.get(k) === l) this.#listeners.delete(k);
  }

  connect(opts: StreamConnectOptions): Promise<StreamSocket> {
    const address = canonicalIp(opts?.remote?.address);
    const rport = opts?.remote?.port;
    if (address === undefined || !Number.isInteger(rport) || rport < 1 || rport > 65535) {
      return Promise.reject(systemError('EINVAL', 'connect', String(opts?.remote?.address), rport));
    }
    let localIp: string;
    let localPort = opts.local?.port ?? 0;
    try {
      if (opts.local?.address !== undefined) {
        localIp = this.#host.localAddress(opts.local.address, localPort, 'connect');
      } else {
        const loop = address === '::1' || (!isV6(address) && address.startsWith('127.'));
        const first = loop ? (isV6(address) ? '::1' : '127.0.0.1') : this.#host.addresses.find((a) => isV6(a) === isV6(address));
        if (first === undefined) throw systemError('EAFNOSUPPORT', 'connect', address, rport, `host ${this.#host.name} has no address of that family`);
        localIp = this.#host.localAddress(first, localPort, 'connect');
      }
      if (isV6(localIp) !== isV6(address)) throw systemError('EAFNOSUPPORT', 'connect', address, rport);
      if (localPort === 0) localPort = this.#host.ephemeralPort((q) => this.#portInUse(localIp, q)) ?? 0;
      if (localPort === 0 || this.#portInUse(localIp, localPort)) throw systemError('EADDRINUSE', 'connect', localIp, localPort);
    } catch (err) {
      return Promise.reject(err);
    }
    const remote = { address, port: rport };
    const socket = new SimStreamSocket(this, { address: localIp, port: localPort }, remote);
    this.#register(socket);
    return new Promise((resolve, reject) => {
      const timer = this.#fabric.clock.at(this.#fabric.clock.now() + this.#fabric.tcpConnectTimeout, () => {
        this.#pending.delete(socket);
        socket.terminate(undefined);
        reject(systemError('ETIMEDOUT', 'connect', address, rport));
      }, true);
      this.#pending.set(socket, { socket, resolve, reject, timer });
      // Aborting gives the attempt up at once, as Node's does (the SYN already sent is not recalled).
      const onAbort = () => {
        if (this.#pending.get(socket)?.timer !== timer) return;
        this.#pending.delete(socket);
        this.#fabric.clock.cancel(timer);
        socket.terminate(undefined);
        reject(Object.assign(new Error('connection attempt aborted'), { code: 'ABORT_ERR' }));
      };
      if (opts.signal?.aborted) {
        onAbort();
        return;
      }
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      this.send(socket, 'syn');
    });
  }

  #register(socket: SimStreamSocket): void {
    this.#conns.set(connKey(socket.local, socket.remote), socket);
    const pk = addressKey(socket.local.address, socket.local.port);
    this.#ports.set(pk, (this.#ports.get(pk) ?? 0) + 1);
  }

  forget(socket: SimStreamSocket): void {
    const k = connKey(socket.local, socket.remote);
    if (this.#conns.get(k) !== socket) return;
    this.#conns.delete(k);
    const pk = addressKey(socket.local.address, socket.local.port);
    const n = (this.#ports.get(pk) ?? 1) - 1;
    if (n > 0) this.#ports.set(pk, n);
    else this.#ports.delete(pk);
  }

  send(socket: { local: TransportAddress; remote: TransportAddress }, segment: SegmentKind, data: Buffer = Buffer.alloc(0)): void {
    this.#host.transmit({ proto: 'tcp', src: socket.local, dst: socket.remote, data, segment });
  }

  /** A segment arrived at this host. Returns false when nothing here wanted it. */
  receive(pkt: Packet): boolean {
    const socket = this.#conns.get(connKey(pkt.dst, pkt.src));
    const reply = { local: pkt.dst, remote: pkt.src };
    switch (pkt.segment) {
      case 'syn': {
        const l = this.#listeners.get(addressKey(pkt.dst.address, pkt.dst.port));
        if (socket !== undefined || l === undefined) {
          this.send(reply, 'rst');
          return l !== undefined;
        }
        const s = new SimStreamSocket(this, { ...pkt.dst }, { ...pkt.src });
        s.open();
        this.#register(s);
        this.send(s, 'synack');
        l.accept(s);
        return true;
      }
      case 'synack': {
        const p = socket && this.#pending.get(socket);
        if (p === undefined) {
          this.send(reply, 'rst');
          return false;
        }
        this.#pending.delete(socket!);
        this.#fabric.clock.cancel(p.timer);
        socket!.open();
        p.resolve(socket!);
        return true;
      }
      case 'rst': {
        if (socket === undefined) return false;
        const p = this.#pending.get(socket);
        if (p !== undefined) {
          this.#pending.delete(socket);
          this.#fabric.clock.cancel(p.timer);
          socket.terminate(undefined);
          p.reject(systemError('ECONNREFUSED', 'connect', socket.remote.address, socket.remote.port));
        } else {
          socket.terminate(systemError('ECONNRESET', 'read'));
        }
        return true;
      }
      case 'fin':
        if (socket === undefined) return false;
        socket.terminate(undefined);
        return true;
      case 'data':
        if (socket === undefined || socket.state !== 'open') {
          this.send(reply, 'rst');
          return false;
        }
        socket.data(Buffer.from(pkt.data));
        return true;
      default:
        return false;
    }
  }
}
