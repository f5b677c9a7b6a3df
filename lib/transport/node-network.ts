/**
 * The real network (lib/transport/network.ts) on Node's sockets. Every
 * handle's close() resolves only once libuv has released it, so that a
 * caller's close() can promise that nothing is left.
 */
import dgram from 'node:dgram';
import net from 'node:net';
import tls from 'node:tls';
import os from 'node:os';
import { randomBytes } from 'node:crypto';
import { lookup } from 'node:dns/promises';
import { lookup as dnsLookup, type LookupOneOptions } from 'node:dns';
import { isIP } from 'node:net';
import createDebug from 'debug';
import { canonicalIp, isV6, type TransportAddress } from './address.js';
import { TimerQueue, type QueuedTimer } from './timers.js';
import type {
  StreamConnectOptions, DatagramBindOptions, DatagramSocket, InterfaceAddress, Network, StreamListener, StreamSocket, TimerHandle,
} from './network.js';

const debug = createDebug('ice-agent:transport');

/** Largest UDP payload: 65535 - 8 (UDP header) - 20 (IPv4 header); IPv6 jumbograms aside, 65527. */
const MAX_UDP_PAYLOAD_V4 = 65507;
const MAX_UDP_PAYLOAD_V6 = 65527;

/**
 * The 'close' callback comes on the next tick, before libuv releases the
 * handle in the loop's close phase; two turns of setImmediate let that phase
 * pass, so that when close() resolves the handle is really gone.
 */
function afterHandleGone(resolve: () => void): void {
  setImmediate(() => setImmediate(resolve));
}

/**
 * The `lookup` of our datagram sockets. Every address we send to is an IP
 * literal already (the core keeps them canonical), yet dgram resolves each
 * destination through dns.lookup, which answers a literal on the next tick:
 * a closure, a tick and a second pass through the send path per datagram,
 * measurable at ten thousand sessions on one port. A literal is answered
 * here at once; anything else still goes to dns.lookup.
 */
type LookupCallback = (err: NodeJS.ErrnoException | null, address: string, family: number) => void;
function literalLookup(hostname: string, options: number | LookupOneOptions, callback: LookupCallback): void {
  const family = isIP(hostname);
  if (family !== 0) callback(null, hostname, family);
  else dnsLookup(hostname, options as LookupOneOptions, callback);
}

class NodeDatagramSocket implements DatagramSocket {
  readonly local: TransportAddress;
  readonly #socket: dgram.Socket;
  readonly #max: number;
  #closing: Promise<void> | undefined;

  constructor(socket: dgram.Socket, local: TransportAddress) {
    this.#socket = socket;
    this.local = local;
    this.#max = isV6(local.address) ? MAX_UDP_PAYLOAD_V6 : MAX_UDP_PAYLOAD_V4;
  }

  send(data: Uint8Array, to: TransportAddress): boolean {
    if (this.#closing !== undefined || data.length > this.#max) return false;
    try {
      this.#socket.send(data, to.port, to.address);
      return true;
    } catch (err) {
      // Synchronous throws: a bad address or port (the callers validate both) or a closed socket.
      debug('send to %s:%d failed: %s', to.address, to.port, (err as Error).message);
      return false;
    }
  }

  onMessage(handler: (data: Buffer, from: TransportAddress) => void): void {
    // rinfo carries address and port already in inet_ntop's (canonical) form.
    this.#socket.on('message', handler);
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = new Promise((resolve) => {
      this.#socket.removeAllListeners('message');
      try {
        this.#socket.close(() => afterHandleGone(resolve));
      } catch {
        afterHandleGone(resolve);
      }
    });
    return this.#closing;
  }
}

class NodeStreamSocket implements StreamSocket {
  readonly local: TransportAddress;
  readonly remote: TransportAddress;
  readonly #socket: net.Socket;
  readonly #gone: Promise<void>;
  #closeHandlers: Array<(error?: Error) => void> = [];
  #error: Error | undefined;
  #closed = false;

  constructor(socket: net.Socket) {
    this.#socket = socket;
    this.local = { address: canonicalIp(socket.localAddress ?? '') ?? '', port: socket.localPort ?? 0 };
    this.remote = { address: canonicalIp(socket.remoteAddress ?? '') ?? '', port: socket.remotePort ?? 0 };
    socket.setNoDelay(true);
    socket.on('error', (err) => {
      this.#error = err;
      debug('stream %s:%d error: %s', this.remote.address, this.remote.port, err.message);
    });
    this.#gone = new Promise((resolve) => socket.once('close', () => {
      this.#closed = true;
      const handlers = this.#closeHandlers;
      this.#closeHandlers = [];
      for (const h of handlers) h(this.#error);
      afterHandleGone(resolve);
    }));
  }

  get bufferedAmount(): number {
    return this.#socket.writableLength;
  }

  write(data: Uint8Array): boolean {
    if (this.#closed || this.#socket.destroyed) return false;
    this.#socket.write(data);
    return true;
  }

  onData(handler: (chunk: Buffer) => void): void {
    this.#socket.on('data', handler);
  }

  onClose(handler: (error?: Error) => void): void {
    if (this.#closed) handler(this.#error);
    else this.#closeHandlers.push(handler);
  }

  close(): Promise<void> {
    this.#socket.destroy();
    return this.#gone;
  }
}

class NodeStreamListener implements StreamListener {
  readonly local: TransportAddress;
  readonly #server: net.Server;
  #closing: Promise<void> | undefined;
  readonly #sockets = new Set<NodeStreamSocket>();

  constructor(server: net.Server, local: TransportAddress) {
    this.#server = server;
    this.local = local;
  }

  onConnection(handler: (socket: StreamSocket) => void): void {
    this.#server.on('connection', (s: net.Socket) => {
      const socket = new NodeStreamSocket(s);
      this.#sockets.add(socket);
      socket.onClose(() => this.#sockets.delete(socket));
      handler(socket);
    });
  }

  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closing = new Promise((resolve) => {
      this.#server.close(() => afterHandleGone(resolve));
    });
    return this.#closing;
  }
}

const TIMERS = new TimerQueue(() => performance.now());

export class NodeNetwork implements Network {
  now(): number {
    return performance.now();
  }

  /** On the process's one timer queue (lib/transport/timers.ts): one unref'd Node timer for every agent. */
  setTimer(fn: () => void, ms: number): TimerHandle {
    return TIMERS.set(fn, ms);
  }

  clearTimer(handle: TimerHandle): void {
    TIMERS.clear(handle as QueuedTimer);
  }

  moveTimer(handle: TimerHandle, ms: number): boolean {
    return TIMERS.move(handle as QueuedTimer, ms);
  }

  randomBytes(n: number): Buffer {
    return randomBytes(n);
  }

  interfaces(): InterfaceAddress[] {
    const out: InterfaceAddress[] = [];
    for (const list of Object.values(os.networkInterfaces())) {
      for (const ni of list ?? []) out.push({ address: ni.address, internal: ni.internal });
    }
    return out;
  }

  bindDatagram(address: string, port: number, opts: DatagramBindOptions = {}): Promise<DatagramSocket> {
    const type = isV6(address) ? 'udp6' : 'udp4';
    return new Promise((resolve, reject) => {
      const socket = dgram.createSocket({
        type, ipv6Only: type === 'udp6', recvBufferSize: opts.receiveBufferSize, sendBufferSize: opts.sendBufferSize,
        lookup: literalLookup as unknown as dgram.SocketOptions['lookup'],
      });
      const onError = (err: Error) => {
        try {
          socket.close();
        } catch {
          // already closed
        }
        reject(err);
      };
      socket.once('error', onError);
      socket.bind({ address, port, exclusive: true }, () => {
        socket.off('error', onError);
        // Errors after binding (ICMP unreachable surfaced as send errors, ...)
        // are logged and survived: one bad remote must not crash the agent.
        socket.on('error', (err) => debug('socket %s:%d error: %s', address, port, err.message));
        const bound = socket.address();
        resolve(new NodeDatagramSocket(socket, { address: canonicalIp(bound.address) ?? bound.address, port: bound.port }));
      });
    });
  }

  connectStream(opts: StreamConnectOptions): Promise<StreamSocket> {
    return new Promise((resolve, reject) => {
      const { remote, local } = opts;
      let s: net.Socket;
      if (opts.tls) {
        // tls.connect passes localAddress on to the TCP connection, though its typings do not list it.
        const o: tls.ConnectionOptions & { localAddress?: string; localPort?: number } = {
          host: remote.address,
          port: remote.port,
          localAddress: local?.address,
          ca: opts.tls.ca,
          rejectUnauthorized: opts.tls.rejectUnauthorized ?? true,
          servername: opts.tls.servername,
        };
        if (local?.port) o.localPort = local.port;
        s = tls.connect(o);
      } else {
        s = net.connect({
          host: remote.address,
          port: remote.port,
          ...(local?.address !== undefined ? { localAddress: local.address } : {}),
          ...(local?.port ? { localPort: local.port } : {}),
        });
      }
      let failed = false;
      const fail = (err: Error) => {
        if (failed) return;
        failed = true;
        opts.signal?.removeEventListener('abort', onAbort);
        // Reject only once the handle is gone, so a failed connect leaves nothing behind.
        s.once('close', () => afterHandleGone(() => reject(err)));
        s.destroy();
      };
      const onAbort = () => fail(Object.assign(new Error('connection attempt aborted'), { code: 'ABORT_ERR' }));
      s.once('error', fail);
      if (opts.signal?.aborted) onAbort();
      else opts.signal?.addEventListener('abort', onAbort, { once: true });
      s.once(opts.tls ? 'secureConnect' : 'connect', () => {
        if (failed) return;
        s.off('error', fail);
        opts.signal?.removeEventListener('abort', onAbort);
        resolve(new NodeStreamSocket(s));
      });
    });
  }

  listenStream(address: string, port: number): Promise<StreamListener> {
    return new Promise((resolve, reject) => {
      const server = net.createServer();
      server.once('error', reject);
      server.listen({ host: address, port, exclusive: true, ipv6Only: isV6(address) }, () => {
        server.off('error', reject);
        const a = server.address() as net.AddressInfo;
        resolve(new NodeStreamListener(server, { address: canonicalIp(a.address) ?? a.address, port: a.port }));
      });
    });
  }

  async lookup(host: string, family?: 4 | 6): Promise<string> {
    const r = await lookup(host, family === undefined ? {} : { family });
    return canonicalIp(r.address) ?? r.address;
  }
}

/** The host's real network. */
export const nodeNetwork: Network = new NodeNetwork();
