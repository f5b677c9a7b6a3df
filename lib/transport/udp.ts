/**
 * A UDP socket bound to one local address: the base of host candidates
 * (RFC 8445 §5.1.1.1). Binding inside a port range, error containment, and
 * a close() that resolves when the handle is really gone.
 */
import dgram from 'node:dgram';
import { isIPv6 } from 'node:net';
import createDebug from 'debug';

const debug = createDebug('ice-agent:transport');

import type { PacketHandler, PacketTransport, SendFilter } from './transport.js';

export type { PacketHandler, SendFilter };

export class UdpTransport implements PacketTransport {
  readonly kind = 'udp' as const;
  readonly socket: dgram.Socket;
  readonly address: string;
  readonly port: number;
  #closed = false;
  #closing: Promise<void> | undefined;
  filter: SendFilter | undefined;

  private constructor(socket: dgram.Socket, address: string, port: number) {
    this.socket = socket;
    this.address = address;
    this.port = port;
  }

  /**
   * Binds a socket on `address`; with a range, tries its ports starting at a
   * random one so that concurrent agents do not all race for the same port.
   */
  static async bind(address: string, range?: { min: number; max: number }): Promise<UdpTransport> {
    const type = isIPv6(address) ? 'udp6' : 'udp4';
    if (!range) return UdpTransport.#tryBind(type, address, 0);
    const span = range.max - range.min + 1;
    const start = Math.floor(Math.random() * span);
    let lastErr: unknown;
    for (let i = 0; i < span; i++) {
      const port = range.min + ((start + i) % span);
      try {
        return await UdpTransport.#tryBind(type, address, port);
      } catch (err) {
        lastErr = err;
        if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
      }
    }
    throw lastErr ?? new Error(`no free port in ${range.min}-${range.max}`);
  }

  static #tryBind(type: 'udp4' | 'udp6', address: string, port: number): Promise<UdpTransport> {
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket({ type, ipv6Only: type === 'udp6' });
      const onError = (err: Error) => {
        socket.close();
        reject(err);
      };
      socket.once('error', onError);
      socket.bind({ address, port, exclusive: true }, () => {
        socket.off('error', onError);
        // Errors after binding (ICMP unreachable surfaced as send errors, etc.)
        // are logged and survived: one bad remote must not crash the agent.
        socket.on('error', (err) => debug('socket %s:%d error: %s', address, port, err.message));
        const bound = socket.address();
        resolve(new UdpTransport(socket, address, bound.port));
      });
    });
  }

  onPacket(handler: PacketHandler): void {
    this.socket.on('message', handler);
  }

  send(buf: Buffer, port: number, address: string): void {
    if (this.#closed) return;
    if (this.filter !== undefined && !this.filter(buf, port, address)) return;
    this.socket.send(buf, port, address);
  }

  get closed(): boolean {
    return this.#closed;
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#closing = new Promise((resolve) => {
      this.socket.removeAllListeners('message');
      // The 'close' callback comes on the next tick, before libuv releases the
      // handle in the loop's close phase; two turns of setImmediate let that
      // phase pass, so that when close() resolves the handle is really gone.
      const gone = () => setImmediate(() => setImmediate(resolve));
      try {
        this.socket.close(gone);
      } catch {
        gone();
      }
    });
    return this.#closing;
  }
}
