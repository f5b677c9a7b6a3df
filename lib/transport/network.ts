/**
 * The I/O seam: everything the shell (`Agent`) and the TURN client need from
 * the outside world — datagram sockets, stream connections, name lookups, the
 * list of local addresses, a clock, timers and randomness. `nodeNetwork` is
 * the real one (node:dgram, node:net, node:tls, node:dns, node:os); the
 * in-memory network of `lib/sim` gives the same interface for deterministic
 * tests, and a shared UDP port (mux) gives datagram sockets that are views of
 * one real socket. Nothing above this seam imports a socket module.
 */
import type { TransportAddress } from './address.js';

/** A bound UDP socket (or a view of one). `from` addresses are in canonical form (lib/transport/address.ts). */
export interface DatagramSocket {
  /** The bound local address and port. */
  readonly local: TransportAddress;
  /**
   * Sends one datagram. Returns false when it certainly cannot go (socket
   * closed, larger than the protocol allows); true means handed to the network.
   */
  send(data: Uint8Array, to: TransportAddress): boolean;
  /** The one receive handler; set before data can arrive. */
  onMessage(handler: (data: Buffer, from: TransportAddress) => void): void;
  /** Resolves once the socket is really gone (no handle left). Idempotent. */
  close(): Promise<void>;
  /**
   * A view of a shared socket (UdpMux) has this: the agent calls it for every
   * remote address that passed authentication, so that the socket routes that
   * source to this view from now on.
   */
  claim?(remote: TransportAddress): void;
}

/** A connected TCP or TLS stream (a TURN server over TCP/TLS; ICE-TCP). */
export interface StreamSocket {
  readonly local: TransportAddress;
  readonly remote: TransportAddress;
  /** Queues bytes; false once the stream is closed. */
  write(data: Uint8Array): boolean;
  /** Bytes queued and not yet handed to the network, where the implementation knows (bounds ICE-TCP's sending). */
  readonly bufferedAmount?: number;
  onData(handler: (chunk: Buffer) => void): void;
  /** Called once when the stream ends, for whatever reason (`error` set when it broke). */
  onClose(handler: (error?: Error) => void): void;
  /** Resolves once the connection is really gone. Idempotent. */
  close(): Promise<void>;
}

/** A listening TCP socket (ICE-TCP passive candidates). */
export interface StreamListener {
  readonly local: TransportAddress;
  onConnection(handler: (socket: StreamSocket) => void): void;
  close(): Promise<void>;
}

export interface StreamConnectOptions {
  remote: TransportAddress;
  /** Connect from this local address (and port, where supported; 0 = any). */
  local?: { address: string; port?: number };
  /** Aborting gives up the connection attempt: the promise rejects once its socket is gone. */
  signal?: AbortSignal;
  /** TLS on top of TCP (`turns:`). */
  tls?: {
    servername?: string;
    ca?: string | Buffer | Array<string | Buffer>;
    rejectUnauthorized?: boolean;
  };
}

/** A network interface address, as `os.networkInterfaces()` reports it. */
export interface InterfaceAddress {
  address: string;
  internal: boolean;
}

export type TimerHandle = unknown;

/** Socket buffer sizes in bytes (SO_RCVBUF / SO_SNDBUF; the kernel may double or cap them, see net.core.rmem_max). */
export interface DatagramBindOptions {
  receiveBufferSize?: number;
  sendBufferSize?: number;
}

export interface Network {
  /** Milliseconds on a monotonic clock. */
  now(): number;
  /** Runs `fn` once after `ms`. Real timers are unref'd: a library must not keep a process alive. */
  setTimer(fn: () => void, ms: number): TimerHandle;
  clearTimer(handle: TimerHandle): void;
  /**
   * Optional: moves a pending timer to fire `ms` from now instead; false if
   * it already fired or was cleared. Where it is missing, the agent lets a
   * timer whose deadline moved later fire early and arms it again.
   */
  moveTimer?(handle: TimerHandle, ms: number): boolean;
  /** Cryptographically strong random bytes (a seeded generator in the simulation). */
  randomBytes(n: number): Buffer;
  /** The host's interface addresses. */
  interfaces(): InterfaceAddress[];
  /**
   * Binds a UDP socket on `address` (port 0: any free port). Rejects with an
   * Error whose `code` is the system's (EADDRINUSE, EADDRNOTAVAIL, ...).
   * `opts` asks for kernel buffer sizes (a network without kernel buffers,
   * such as lib/sim, ignores them).
   */
  bindDatagram(address: string, port: number, opts?: DatagramBindOptions): Promise<DatagramSocket>;
  /** Opens a TCP (or TLS) connection. Rejects with an Error with `code` (ECONNREFUSED, ...). */
  connectStream(opts: StreamConnectOptions): Promise<StreamSocket>;
  /** Listens for TCP connections on `address` (port 0: any free port). */
  listenStream(address: string, port: number): Promise<StreamListener>;
  /** Resolves a host name to one address of the family (4 or 6; any when undefined). */
  lookup(host: string, family?: 4 | 6): Promise<string>;
}

/** A random number in [0, 1) from the network's random source. */
export function randomUnit(net: Pick<Network, 'randomBytes'>): number {
  return net.randomBytes(4).readUInt32BE(0) / 0x100000000;
}
