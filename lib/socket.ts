/**
 * A component as a socket (libnice's `nice_agent_get_io_stream`, pion's
 * `Conn`): an EventEmitter with `send`, `'message'`, `close()`, `address()`
 * and `remoteAddress()`, shaped like a connected `dgram.Socket` so that DTLS,
 * QUIC or RTP code written for one can sit on a component. Any number may be
 * open on one component, beside `attachRecv`; each gets every datagram.
 * Also an async iterator of datagrams, for scripts.
 */
import { EventEmitter } from 'node:events';
import { isV6 } from './transport/address.js';
import { InvalidStateError, type IceError } from './errors.js';
import type { Candidate } from './core/candidate.js';

/** What dgram gives as `rinfo`. */
export interface RemoteInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
  size: number;
}

export interface AddressInfo {
  address: string;
  family: 'IPv4' | 'IPv6';
  port: number;
}

export interface ComponentSocketEvents {
  /** A datagram from the peer (only from addresses that passed a check). */
  message: (data: Buffer, rinfo: RemoteInfo) => void;
  /** The component has a selected pair (again, after a restart or failover: `address()` may change). */
  connect: () => void;
  /** The component failed (every pair failed, or consent was lost); sends return false until it recovers. */
  error: (err: IceError) => void;
  /** The socket was closed (by close(), removeStream or the agent's close()). */
  close: () => void;
}

export interface ComponentSocket {
  on<K extends keyof ComponentSocketEvents>(event: K, listener: ComponentSocketEvents[K]): this;
  once<K extends keyof ComponentSocketEvents>(event: K, listener: ComponentSocketEvents[K]): this;
  off<K extends keyof ComponentSocketEvents>(event: K, listener: ComponentSocketEvents[K]): this;
  emit<K extends keyof ComponentSocketEvents>(event: K, ...args: Parameters<ComponentSocketEvents[K]>): boolean;
}

/** What the agent gives a socket. */
export interface SocketHost {
  send(data: Uint8Array): boolean;
  selected(): { local: Candidate; remote: Candidate } | undefined;
  detach(socket: ComponentSocket): void;
}

/** Datagrams an async iterator holds for a slow reader before it drops the oldest. */
const ITERATOR_QUEUE = 1024;

function info(c: Candidate): AddressInfo {
  return { address: c.address, family: isV6(c.address) ? 'IPv6' : 'IPv4', port: c.port };
}

export class ComponentSocket extends EventEmitter {
  readonly streamId: number;
  readonly componentId: number;
  #host: SocketHost | undefined;
  /** Datagrams dropped by the async iterator because its reader fell behind. */
  iteratorDropped = 0;

  constructor(streamId: number, componentId: number, host: SocketHost) {
    super();
    this.streamId = streamId;
    this.componentId = componentId;
    this.#host = host;
  }

  get closed(): boolean {
    return this.#host === undefined;
  }

  /**
   * Sends one datagram on the component's selected pair (before nomination,
   * its best valid pair). False when it cannot go: no pair yet, component
   * failed, socket closed, or the datagram is too large. The callback, if
   * given, gets an error in those cases, on the next tick, as dgram's does.
   */
  send(data: Uint8Array, callback?: (err: Error | null) => void): boolean {
    const ok = this.#host !== undefined && this.#host.send(data);
    if (callback) {
      process.nextTick(callback, ok ? null : new InvalidStateError(this.#host ? 'no pair to send on' : 'the socket is closed'));
    }
    return ok;
  }

  /** The local address of the selected pair (as `dgram.Socket#address()`); throws before there is one. */
  address(): AddressInfo {
    const p = this.#selectedOrThrow();
    return info(p.local);
  }

  /** The remote address of the selected pair (as a connected `dgram.Socket#remoteAddress()`). */
  remoteAddress(): AddressInfo {
    return info(this.#selectedOrThrow().remote);
  }

  #selectedOrThrow(): { local: Candidate; remote: Candidate } {
    const p = this.#host?.selected();
    if (!p) throw Object.assign(new InvalidStateError('not connected: the component has no selected pair'), { code: 'ERR_SOCKET_DGRAM_NOT_CONNECTED' });
    return p;
  }

  /** Closes this socket only (the component and the other sockets on it go on). */
  close(callback?: () => void): void {
    if (callback) this.once('close', callback);
    if (!this.#host) return;
    const host = this.#host;
    this.#host = undefined;
    host.detach(this);
    process.nextTick(() => this.emit('close'));
  }

  /** @internal The agent delivers a datagram. */
  _deliver(data: Buffer, from: { address: string; port: number }): void {
    this.emit('message', data, { address: from.address, family: isV6(from.address) ? 'IPv6' : 'IPv4', port: from.port, size: data.length });
  }

  /** @internal The agent reports a state change of the component. */
  _state(connected: boolean, failure?: IceError): void {
    if (connected) this.emit('connect');
    else if (failure && this.listenerCount('error') > 0) this.emit('error', failure);
  }

  /** @internal The agent or the stream went away. */
  _gone(): void {
    if (!this.#host) return;
    this.#host = undefined;
    process.nextTick(() => this.emit('close'));
  }

  /** Datagrams as they arrive, `{ data, rinfo }`; ends when the socket closes. */
  async *[Symbol.asyncIterator](): AsyncGenerator<{ data: Buffer; rinfo: RemoteInfo }, void, undefined> {
    const queue: Array<{ data: Buffer; rinfo: RemoteInfo }> = [];
    let wake: (() => void) | undefined;
    let ended = this.closed;
    const onMessage = (data: Buffer, rinfo: RemoteInfo) => {
      if (queue.length >= ITERATOR_QUEUE) {
        queue.shift();
        this.iteratorDropped++;
      }
      queue.push({ data, rinfo });
      wake?.();
    };
    const onClose = () => {
      ended = true;
      wake?.();
    };
    this.on('message', onMessage);
    this.on('close', onClose);
    try {
      for (;;) {
        if (queue.length > 0) yield queue.shift()!;
        else if (ended) return;
        else await new Promise<void>((r) => (wake = r));
        wake = undefined;
      }
    } finally {
      this.off('message', onMessage);
      this.off('close', onClose);
    }
  }
}
