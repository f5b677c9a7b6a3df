/**
 * ICE-TCP connections on the shell's side of the seam: RFC 4571 framing on
 * a stream connection (RFC 6544 §3: every STUN message and every datagram of
 * data on an ICE-TCP connection is one frame, a 2-byte big-endian length and
 * that many bytes), and listening sockets for passive candidates.
 *
 * RFC 4571 frames are at most 65535 bytes. Ours are at most `MAX_FRAME`
 * (8192, pion's receive MTU for ICE-TCP): far above any STUN message ICE
 * sends (well under 1 KiB) and any datagram that fits a path MTU (data that
 * may move to UDP later must), and it bounds what one connection may make us
 * buffer. A length field above it means garbage or a peer out of step — a
 * byte stream cannot be resynchronised — so the connection is closed and the
 * agent counts it (`dropped.tcpFrameTooLong`). Sending is bounded too: with
 * more than `MAX_BUFFERED` bytes already queued on the socket a frame is
 * refused, as a full socket buffer drops a UDP datagram.
 */
import type { Network, StreamListener, StreamSocket } from './network.js';

/** Our limit on an RFC 4571 frame's length (RFC 4571 allows 65535). */
export const MAX_FRAME = 8192;
/** Bytes queued on a connection above which a frame is refused rather than buffered. */
export const MAX_BUFFERED = 1 << 20;

/** A stream connection carrying RFC 4571 frames. */
export class FramedStream {
  readonly socket: StreamSocket;
  readonly #max: number;
  /** Bytes of a frame not complete yet (at most 2 + max). */
  #partial: Buffer | undefined;
  #failed = false;

  constructor(socket: StreamSocket, maxFrame = MAX_FRAME) {
    this.socket = socket;
    this.#max = Math.min(maxFrame, 0xffff);
  }

  /** Writes one frame; false when it cannot go (over the limit, too much queued, closed). */
  send(frame: Uint8Array): boolean {
    if (this.#failed || frame.length > this.#max || (this.socket.bufferedAmount ?? 0) > MAX_BUFFERED) return false;
    const out = Buffer.allocUnsafe(2 + frame.length);
    out.writeUInt16BE(frame.length, 0);
    out.set(frame, 2);
    return this.socket.write(out);
  }

  /**
   * Delivers every whole frame to `onFrame`, in order, however the bytes
   * arrive; a length over the limit calls `onError` once and nothing more
   * is delivered (the caller closes the connection).
   */
  start(onFrame: (frame: Buffer) => void, onError: (reason: string) => void): void {
    this.socket.onData((chunk) => {
      if (this.#failed) return;
      let buf = chunk;
      if (this.#partial) {
        buf = Buffer.concat([this.#partial, chunk]);
        this.#partial = undefined;
      }
      let at = 0;
      while (buf.length - at >= 2) {
        const len = buf.readUInt16BE(at);
        if (len > this.#max) {
          this.#failed = true;
          onError(`an RFC 4571 frame of ${len} bytes (the limit is ${this.#max})`);
          return;
        }
        if (buf.length - at - 2 < len) break;
        // A view, not a copy: each chunk is a buffer of its own (the socket does not reuse it), as each UDP datagram is.
        const frame = buf.subarray(at + 2, at + 2 + len);
        at += 2 + len;
        onFrame(frame);
        if (this.#failed) return;
      }
      if (at < buf.length) this.#partial = Buffer.from(buf.subarray(at));
    });
  }

  /** Stops delivering (the connection is being let go). */
  stop(): void {
    this.#failed = true;
    this.#partial = undefined;
  }

  close(): Promise<void> {
    this.stop();
    return this.socket.close();
  }
}

/**
 * Listens for TCP on `address` (a passive candidate's socket), inside `range`
 * if given, from a random port of it as `bindHost` does for UDP.
 */
export async function listenHost(net: Network, address: string, range: { min: number; max: number } | undefined): Promise<StreamListener> {
  if (!range) return net.listenStream(address, 0);
  const span = range.max - range.min + 1;
  const start = net.randomBytes(4).readUInt32BE(0) % span;
  for (let i = 0; i < span; i++) {
    try {
      return await net.listenStream(address, range.min + ((start + i) % span));
    } catch (err) {
      if ((err as NodeJS.ErrnoException).code !== 'EADDRINUSE') throw err;
    }
  }
  throw Object.assign(new Error(`no free TCP port in ${range.min}-${range.max} on ${address}`), { code: 'EADDRINUSE' });
}
