/**
 * Types shared by the parts of the in-memory network, and its errors.
 */
import { IceError } from '../errors.js';
import type { TransportAddress } from '../transport/address.js';
import type { VirtualClock } from './clock.js';
import type { Prng } from './random.js';

/**
 * How one link (a host's or a NAT's attachment to the network it lives in)
 * treats each datagram that crosses it, in either direction. A datagram
 * crosses every link on its path: public host to public host is two links
 * (the sender's and the receiver's), a host behind a NAT to a public host is
 * three (host, NAT, server). Each crossing draws its own loss and jitter.
 */
export interface LinkOptions {
  /** Fixed one-way delay of a crossing, in virtual ms. Default 0. */
  delay: number;
  /** Extra delay drawn uniformly from [0, jitter) per crossing, in virtual ms. Default 0. */
  jitter: number;
  /** Probability in [0, 1] that a crossing loses the datagram. Default 0. TCP segments are never lost. */
  loss: number;
  /**
   * Whether jitter may reorder datagrams on this link (default true, as on a
   * real network). When false, a datagram never overtakes the one sent
   * before it over the same link in the same direction. TCP is always in order.
   */
  reorder: boolean;
}

export const DEFAULT_LINK: LinkOptions = Object.freeze({ delay: 0, jitter: 0, loss: 0, reorder: true });

/** Checks a partial link configuration, throwing a RangeError naming the field. */
export function checkLink(p: Partial<LinkOptions>, where: string): void {
  for (const k of ['delay', 'jitter'] as const) {
    const v = p[k];
    if (v !== undefined && !(Number.isFinite(v) && v >= 0)) throw new RangeError(`${where}: ${k} must be a finite number >= 0, got ${v}`);
  }
  if (p.loss !== undefined && !(p.loss >= 0 && p.loss <= 1)) throw new RangeError(`${where}: loss must be in [0, 1], got ${p.loss}`);
  if (p.reorder !== undefined && typeof p.reorder !== 'boolean') throw new RangeError(`${where}: reorder must be a boolean`);
}

/** A link's live state: its options (changeable while the simulation runs) and its FIFO bookkeeping. */
export class Link {
  opts: LinkOptions;
  /** @internal last arrival time per direction (0 = up, 1 = down), for reorder:false. */
  readonly lastUdp: [number, number] = [0, 0];
  /** @internal the same for TCP, always FIFO. */
  readonly lastTcp: [number, number] = [0, 0];
  constructor(opts: LinkOptions) {
    this.opts = { ...opts };
  }
  set(p: Partial<LinkOptions>, where: string): void {
    checkLink(p, where);
    this.opts = { ...this.opts, ...stripUndefined(p) };
  }
}

export function stripUndefined<T extends object>(o: T): Partial<T> {
  const out: Partial<T> = {};
  for (const [k, v] of Object.entries(o)) if (v !== undefined) (out as Record<string, unknown>)[k] = v;
  return out;
}

export type SimProtocol = 'udp' | 'tcp';

/** What a TCP segment of the simulated stream carries. */
export type SegmentKind = 'syn' | 'synack' | 'data' | 'fin' | 'rst';

/** @internal One datagram (or TCP segment) in flight. */
export interface Packet {
  readonly id: number;
  readonly proto: SimProtocol;
  src: TransportAddress;
  dst: TransportAddress;
  readonly data: Buffer;
  readonly segment?: SegmentKind;
}

/** Why a datagram did not arrive. */
export type DropReason =
  /** Lost on a link (the `loss` probability). */
  | 'loss'
  /** Refused by a NAT's filtering (a mapping exists, but not for this remote). */
  | 'filtered'
  /** Arrived at a NAT's public address on a port with no (live) mapping. */
  | 'no-mapping'
  /** Sent by a host behind a NAT to that NAT's own public address, and the NAT does not hairpin. */
  | 'hairpin'
  /** Nobody has the destination address (in the realm where it was looked for). */
  | 'unroutable'
  /** The destination host has no socket on that port (no ICMP is simulated). */
  | 'unreachable';

/** One observation of the network, for logs and assertions (`SimNetwork.observe`). */
export interface SimPacketEvent {
  /** Virtual time in ms. */
  time: number;
  /** Sequence number of the datagram, unique in this network. */
  id: number;
  /** 'send' when a socket hands it over, 'deliver' when a socket receives it, 'drop' when it vanishes. */
  kind: 'send' | 'deliver' | 'drop';
  proto: SimProtocol;
  /** Source and destination as they are at that point (after NAT translation on the way). */
  from: TransportAddress;
  to: TransportAddress;
  /** Payload length in bytes. */
  size: number;
  /** The payload (do not modify it). */
  data: Buffer;
  reason?: DropReason;
}

/** Counters of the whole network (datagrams; TCP segments are counted in `segments`). */
export interface SimStats {
  /** Datagrams handed to the network by sockets. */
  sent: number;
  /** Datagrams given to a receiving socket. */
  delivered: number;
  /** Lost on a link. */
  lost: number;
  /** Dropped by a NAT: filtering, no mapping, or hairpin refused. */
  filtered: number;
  /** Sent to an address nobody has. */
  unroutable: number;
  /** Arrived at a host with no socket on that port. */
  unreachable: number;
  /** TCP segments sent. */
  segments: number;
}

/** `run({ until, timeout })` reached the virtual timeout before `until()` held. */
export class SimTimeoutError extends IceError {
  /** Virtual time when it gave up. */
  readonly virtualTime: number;
  /** The timeout in virtual ms. */
  readonly timeout: number;
  /** Whether the queue had run dry (nothing left that could make `until()` true). */
  readonly idle: boolean;
  constructor(timeout: number, virtualTime: number, idle: boolean) {
    super('ERR_ICE_SIM_TIMEOUT', `simulation: condition not met within ${timeout} virtual ms (at ${virtualTime} ms${idle ? '; nothing left scheduled' : ''})`);
    this.timeout = timeout;
    this.virtualTime = virtualTime;
    this.idle = idle;
  }
}

const ERRNO: Record<string, number> = {
  EADDRINUSE: -98, EADDRNOTAVAIL: -99, EINVAL: -22, ECONNREFUSED: -111, ECONNRESET: -104,
  ETIMEDOUT: -110, EOPNOTSUPP: -95, ENOTFOUND: -3008, EAFNOSUPPORT: -97,
};

/** An Error shaped like Node's system errors (`code`, `errno`, `syscall`, `address`, `port`). */
export function systemError(code: string, syscall: string, address?: string, port?: number, detail?: string): NodeJS.ErrnoException & { address?: string; port?: number } {
  const where = address === undefined ? '' : port === undefined ? ` ${address}` : ` ${address}:${port}`;
  const err = new Error(`${syscall} ${code}${where}${detail ? ` (${detail})` : ''}`) as NodeJS.ErrnoException & { address?: string; port?: number };
  err.code = code;
  err.errno = ERRNO[code];
  err.syscall = syscall;
  if (address !== undefined) err.address = address;
  if (port !== undefined) err.port = port;
  return err;
}

/** @internal What a host needs from the network it is attached to. */
export interface Fabric {
  readonly clock: VirtualClock;
  /** Hands a packet from `host`'s socket to the network (the host's own link is crossed first). */
  transmit(host: HostLike, pkt: Omit<Packet, 'id'>): void;
  /** Resolves a name registered with addName. */
  resolve(name: string): readonly string[] | undefined;
  /** Virtual ms after which an unanswered TCP connect fails with ETIMEDOUT. */
  readonly tcpConnectTimeout: number;
}

/** @internal The part of SimHost the network calls. */
export interface HostLike {
  readonly addresses: readonly string[];
  readonly link: Link;
  readonly rng: Prng;
  /** Delivers a packet that arrived over the host's link; returns false if no socket took it. */
  receive(pkt: Packet): boolean;
}
