/**
 * TURN framing: ChannelData messages (RFC 8656 §12.4) and the splitting of a
 * TCP/TLS byte stream into STUN messages and ChannelData messages (§12.5).
 *
 * The first two bits tell them apart (RFC 8656 §12.5, RFC 7983): 0b00 is STUN,
 * 0b01 is ChannelData (channel numbers 0x4000-0x7FFF, of which 0x4000-0x4FFF
 * are valid, §12).
 */
import { HEADER_LENGTH } from '../stun/message.js';

export const MIN_CHANNEL = 0x4000;
export const MAX_CHANNEL = 0x4fff;
export const CHANNEL_HEADER_LENGTH = 4;

export function isValidChannel(n: number): boolean {
  return Number.isInteger(n) && n >= MIN_CHANNEL && n <= MAX_CHANNEL;
}

/**
 * A ChannelData message: channel number, length of the application data, the
 * data. Over TCP/TLS the message MUST be padded to a multiple of four bytes
 * (§12.5); over UDP padding is optional and we leave it out.
 */
export function encodeChannelData(channel: number, data: Buffer, pad: boolean): Buffer {
  const padded = pad ? (data.length + 3) & ~3 : data.length;
  const out = Buffer.alloc(CHANNEL_HEADER_LENGTH + padded);
  out.writeUInt16BE(channel, 0);
  out.writeUInt16BE(data.length, 2);
  data.copy(out, CHANNEL_HEADER_LENGTH);
  return out;
}

/**
 * Decodes a ChannelData datagram: undefined when the channel number is outside
 * 0x4000-0x4FFF or the length field claims more than the datagram holds.
 * Trailing bytes beyond the length are padding and are ignored (§12.5).
 */
export function decodeChannelData(buf: Buffer): { channel: number; data: Buffer } | undefined {
  if (buf.length < CHANNEL_HEADER_LENGTH) return undefined;
  const channel = buf.readUInt16BE(0);
  if (!isValidChannel(channel)) return undefined;
  const len = buf.readUInt16BE(2);
  if (CHANNEL_HEADER_LENGTH + len > buf.length) return undefined;
  return { channel, data: buf.subarray(CHANNEL_HEADER_LENGTH, CHANNEL_HEADER_LENGTH + len) };
}

/**
 * Splits a stream into whole frames. Over TCP there are no datagram
 * boundaries, so each frame's length comes from its header (§12.5): a STUN
 * message is 20 + the header's length field; a ChannelData message is 4 + its
 * length field rounded up to 4 (the padding is part of the stream). A frame
 * starting with 0b10 or 0b11 means the stream is out of sync, which cannot be
 * recovered: `push` then reports an error and the connection must be closed.
 */
export class StreamFramer {
  #pending: Buffer[] = [];
  #pendingBytes = 0;
  #failed = false;

  /**
   * Feeds bytes in; calls `onFrame` for each complete frame (a STUN message,
   * or a ChannelData message without its padding). Returns false once the
   * stream is unusable.
   */
  push(chunk: Buffer, onFrame: (frame: Buffer) => void): boolean {
    if (this.#failed) return false;
    this.#pending.push(chunk);
    this.#pendingBytes += chunk.length;
    let buf = this.#pending.length === 1 ? this.#pending[0]! : Buffer.concat(this.#pending, this.#pendingBytes);
    let off = 0;
    for (;;) {
      if (buf.length - off < 4) break;
      const first = buf[off]! >> 6;
      let frameLen: number;
      let wireLen: number;
      if (first === 0) {
        frameLen = HEADER_LENGTH + buf.readUInt16BE(off + 2);
        wireLen = frameLen;
      } else if (first === 1) {
        frameLen = CHANNEL_HEADER_LENGTH + buf.readUInt16BE(off + 2);
        wireLen = (frameLen + 3) & ~3;
      } else {
        this.#failed = true;
        this.#pending = [];
        this.#pendingBytes = 0;
        return false;
      }
      if (buf.length - off < wireLen) break;
      onFrame(buf.subarray(off, off + frameLen));
      off += wireLen;
    }
    buf = buf.subarray(off);
    this.#pending = buf.length > 0 ? [buf] : [];
    this.#pendingBytes = buf.length;
    return true;
  }

  /** Bytes received but not yet part of a whole frame. */
  get buffered(): number {
    return this.#pendingBytes;
  }
}
