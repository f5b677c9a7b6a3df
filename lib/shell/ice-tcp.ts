/**
 * The shell's part of ICE-TCP (RFC 6544; the rules are lib/core/tcp.ts):
 * listening sockets for passive candidates, the connections the core asks
 * for (`open-tcp`) and those the listeners accept, each framed with RFC 4571
 * (lib/transport/tcp.ts) and fed to the core one frame at a time, as
 * datagrams are. The shell (lib/shell/shell.ts) owns the socket table and the
 * one timer; this is the glue it delegates to, as it does to a TURN link.
 */
import type { CoreEvent } from '../core/core.js';
import type { TransportAddress } from '../transport/address.js';
import type { DatagramSocket, StreamListener, StreamSocket } from '../transport/network.js';
import { FramedStream, listenHost } from '../transport/tcp.js';
import type { Shell } from './shell.js';

/** What the agent keeps per transport id: at most one of the handles (none while a connection is being opened). */
export interface SocketEntry {
  datagram?: DatagramSocket;
  stream?: StreamSocket;
  framed?: FramedStream;
  listener?: StreamListener;
  /** An ICE-TCP connection being opened: aborting gives it up. */
  abort?: AbortController;
  streamId: number;
}

export class IceTcpShell {
  readonly #h: Shell;

  constructor(shell: Shell) {
    this.#h = shell;
  }

  /** Gathers the TCP host candidates of one address: a listening socket (passive), and the active candidate. */
  async gather(streamId: number, componentId: number, address: string, rank: number, range: { min: number; max: number } | undefined): Promise<void> {
    const h = this.#h;
    const listener = await h.track(listenHost(h.net, address, range)).catch((err: NodeJS.ErrnoException) => {
      h.gatherer.bindFailed(streamId, componentId, address, Object.assign(err, { message: `TCP: ${err.message}` }));
      return undefined;
    });
    if (!h.alive(streamId)) {
      await listener?.close();
      return;
    }
    const ids = h.core.addTcpHost(streamId, componentId, address, listener?.local, rank, h.net.now());
    const passive = ids.passive;
    if (listener && passive !== undefined) {
      h.sockets.set(passive, { listener, streamId });
      listener.onConnection((sock) => this.#accepted(passive, sock));
    } else {
      await listener?.close();
    }
    h.settle();
  }

  /** A connection on a passive candidate's listener: the core decides whether it stays. */
  #accepted(baseId: number, sock: StreamSocket): void {
    const h = this.#h;
    const id = h.closed ? undefined : h.core.tcpAccepted(baseId, sock.remote, sock.local, h.net.now());
    if (id === undefined) {
      void sock.close();
    } else {
      this.#attach(id, sock, sock.remote);
    }
    if (!h.closed) h.settle();
  }

  /** The core asked for a connection (a pair's check, RFC 6544 §7.1). */
  open(e: Extract<CoreEvent, { type: 'open-tcp' }>): void {
    const h = this.#h;
    const t = h.core.d.transports.get(e.transportId);
    if (!t || h.closed) return;
    const abort = new AbortController();
    const onClose = () => abort.abort();
    h.abort.signal.addEventListener('abort', onClose, { once: true });
    h.sockets.set(e.transportId, { abort, streamId: t.streamId });
    const mine = () => !h.closed && h.sockets.get(e.transportId)?.abort === abort;
    h.track(h.net.connectStream({ remote: e.remote, local: { address: e.localAddress }, signal: abort.signal })).then((sock) => {
      h.abort.signal.removeEventListener('abort', onClose);
      if (!mine() || !h.core.d.transports.has(e.transportId)) {
        void sock.close();
        return;
      }
      this.#attach(e.transportId, sock, e.remote);
      h.core.tcpOpened(e.transportId, sock.local, h.net.now());
      h.settle();
    }, (err: NodeJS.ErrnoException) => {
      h.abort.signal.removeEventListener('abort', onClose);
      if (!mine()) return;
      h.sockets.delete(e.transportId);
      h.core.transportClosed(e.transportId, err.code === 'ECONNREFUSED' ? 'connection refused' : err.message, h.net.now());
      h.settle();
    });
  }

  /** Frames in, frames out: each whole frame goes to the core as a datagram would. */
  #attach(id: number, sock: StreamSocket, from: TransportAddress): void {
    const h = this.#h;
    const t = h.core.d.transports.get(id)!;
    const framed = new FramedStream(sock);
    h.sockets.set(id, { framed, streamId: t.streamId });
    const core = h.core;
    framed.start((frame) => {
      try {
        core.receive(id, from, frame, h.net.now());
      } catch (err) {
        // The core never throws on network input; if it ever does, the frame is lost, not the process.
        h.log.write('agent', 'error', `internal error on an ICE-TCP frame: ${(err as Error).stack}`);
      }
      if (core.dirty) h.settle();
    }, (reason) => {
      // A byte stream out of step cannot be resynchronised: the connection goes, and is counted.
      if (h.sockets.get(id)?.framed === framed) h.sockets.delete(id);
      void framed.close();
      core.tcpDropped(id, 'tcpFrameTooLong', reason, h.net.now());
      h.settle();
    });
    sock.onClose((err) => {
      if (h.closed || h.sockets.get(id)?.framed !== framed) return;
      h.sockets.delete(id);
      core.transportClosed(id, err ? err.message : 'closed by the peer', h.net.now());
      h.settle();
    });
  }
}

/** Closes whatever handle an entry holds (an opening connection is aborted). */
export function closeEntry(s: SocketEntry): Promise<void> {
  s.abort?.abort();
  const handle = s.datagram ?? s.framed ?? s.stream ?? s.listener;
  return handle ? handle.close() : Promise.resolve();
}
