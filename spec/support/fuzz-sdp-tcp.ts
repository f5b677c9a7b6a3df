/**
 * Fuzz targets for the SDP helpers (lib/sdp) and ICE-TCP's RFC 4571 framing
 * (lib/transport/tcp.ts), beside those of fuzz-targets.ts, which lists them
 * in TARGETS.
 */
import fc from 'fast-check';
import assert from 'node:assert/strict';
import { isDeepStrictEqual } from 'node:util';
import { SdpParseError, generateSdp, parseSdp, type IceDescription } from '../../lib/sdp/index.js';
import { FramedStream, MAX_FRAME } from '../../lib/transport/tcp.js';
import type { StreamSocket } from '../../lib/transport/network.js';
import type { TransportAddress } from '../../lib/transport/address.js';
import { description } from '../fixtures/sdp/arbitrary.js';
import { bytes } from './fuzz-stun.js';
import type { FuzzTarget } from './fuzz-targets.js';

const sync = (property: fc.IRawProperty<any>) => async () => ({ property });

/* ------------------------------------------------------------------ *
 * SDP (lib/sdp)
 * ------------------------------------------------------------------ */

export const sdpRoundTrip: FuzzTarget = {
  name: 'sdp.roundtrip',
  claim: 'parseSdp ∘ generateSdp is the identity on valid ICE descriptions, whole and partial (no session header)',
  weight: 1,
  create: sync(fc.property(fc.boolean().chain((partial) => description(partial).map((d) => ({ d, partial }))), ({ d, partial }) => {
    assert.ok(isDeepStrictEqual(parseSdp(generateSdp(d, { partial }), { partial }), d));
  })),
};

/** Edits of a valid SDP's text: a character changed, inserted or deleted, a line duplicated, dropped or swapped. */
const sdpEditArb = fc.oneof(
  fc.record({ kind: fc.constant('char' as const), at: fc.nat(), c: fc.constantFrom(' ', ':', '=', '\r', '\n', 'a', '0', '\u00e9', '\u0000', '-', '/') }),
  fc.record({ kind: fc.constant('delete' as const), at: fc.nat(), n: fc.integer({ min: 1, max: 8 }) }),
  fc.record({ kind: fc.constantFrom('dup' as const, 'drop' as const, 'swap' as const), at: fc.nat() }),
);
type SdpEdit = typeof sdpEditArb extends fc.Arbitrary<infer T> ? T : never;

function editSdp(text: string, edits: readonly SdpEdit[]): string {
  let s = text;
  for (const e of edits) {
    if (e.kind === 'char') {
      const i = e.at % (s.length + 1);
      s = s.slice(0, i) + e.c + s.slice(i + (e.at % 2));
    } else if (e.kind === 'delete') {
      const i = e.at % (s.length + 1);
      s = s.slice(0, i) + s.slice(i + e.n);
    } else {
      const lines = s.split('\r\n');
      const i = e.at % lines.length;
      if (e.kind === 'dup') lines.splice(i, 0, lines[i]!);
      else if (e.kind === 'drop') lines.splice(i, 1);
      else if (i + 1 < lines.length) [lines[i], lines[i + 1]] = [lines[i + 1]!, lines[i]!];
      s = lines.join('\r\n');
    }
  }
  return s;
}

export const sdpAny: FuzzTarget = {
  name: 'sdp.any',
  claim: 'parseSdp on any string (edited valid SDPs among them) gives a description or an SdpParseError naming a line and a field; ' +
    'what it accepts generates an SDP that parses back to the same description',
  weight: 2,
  create: sync(fc.property(
    fc.oneof(
      { arbitrary: description(false).chain((d) => fc.array(sdpEditArb, { minLength: 1, maxLength: 4 }).map((e) => editSdp(generateSdp(d), e))), weight: 4 },
      { arbitrary: fc.string({ maxLength: 200 }), weight: 1 },
      { arbitrary: fc.anything() as fc.Arbitrary<unknown>, weight: 1 },
    ),
    (text) => {
      let d: IceDescription;
      try {
        d = parseSdp(text as string);
      } catch (e) {
        assert.ok(e instanceof SdpParseError, `not an SdpParseError: ${e instanceof Error ? `${e.name}: ${e.message}` : String(e)}`);
        assert.ok(Number.isInteger(e.line) && e.line >= 0, 'a line number');
        assert.ok(typeof e.field === 'string' && e.field.length > 0, 'a field');
        return;
      }
      assert.ok(isDeepStrictEqual(parseSdp(generateSdp(d)), d), 'what parses generates the same description again');
    },
  )),
};

/* ------------------------------------------------------------------ *
 * ICE-TCP framing (lib/transport/tcp.ts)
 * ------------------------------------------------------------------ */

/** A StreamSocket that is only a data source: the framer's input. */
class ChunkSource implements StreamSocket {
  readonly local: TransportAddress = { address: '127.0.0.1', port: 1 };
  readonly remote: TransportAddress = { address: '127.0.0.1', port: 2 };
  written: Buffer[] = [];
  #onData: ((chunk: Buffer) => void) | undefined;
  write(data: Uint8Array): boolean {
    this.written.push(Buffer.from(data));
    return true;
  }
  onData(fn: (chunk: Buffer) => void): void {
    this.#onData = fn;
  }
  onClose(): void {}
  async close(): Promise<void> {}
  push(chunk: Buffer): void {
    this.#onData?.(chunk);
  }
}

/** Cuts `buf` at the given offsets (any, sorted and folded into range): every chunking of the same bytes. */
function chunk(buf: Buffer, cuts: readonly number[]): Buffer[] {
  const at = [...new Set(cuts.map((c) => (buf.length === 0 ? 0 : c % buf.length)))].sort((a, b) => a - b);
  const out: Buffer[] = [];
  let prev = 0;
  for (const c of at) {
    if (c > prev) out.push(buf.subarray(prev, c));
    prev = Math.max(prev, c);
  }
  out.push(buf.subarray(prev));
  return out.map((b) => Buffer.from(b));
}

interface Framed {
  frames: Buffer[];
  errors: string[];
}

function frameAll(chunks: readonly Buffer[], max = MAX_FRAME): Framed {
  const src = new ChunkSource();
  const f = new FramedStream(src, max);
  const out: Framed = { frames: [], errors: [] };
  f.start((frame) => out.frames.push(Buffer.from(frame)), (reason) => out.errors.push(reason));
  for (const c of chunks) src.push(c);
  return out;
}

function rfc4571(frames: readonly Buffer[]): Buffer {
  return Buffer.concat(frames.flatMap((p) => {
    const len = Buffer.alloc(2);
    len.writeUInt16BE(p.length);
    return [len, p];
  }));
}

export const tcpFraming: FuzzTarget = {
  name: 'tcp.framing',
  claim: 'FramedStream (RFC 4571): any chunking of valid frames gives those frames in order; of any byte stream, the same frames ' +
    'and verdict as one push; a length over the limit is one error and nothing after it; send writes exactly the frame',
  weight: 2,
  create: sync(fc.property(
    fc.array(bytes(300), { maxLength: 6 }).map((fs) => fs.map((f) => Buffer.from(f))),
    fc.array(fc.nat(), { maxLength: 10 }),
    fc.uint8Array({ maxLength: 400 }).map((b) => Buffer.from(b)),
    fc.array(fc.nat(), { maxLength: 10 }),
    fc.integer({ min: 0, max: 400 }),
    (frames, cuts, hostile, cuts2, max) => {
      const r = frameAll(chunk(rfc4571(frames), cuts));
      assert.deepEqual(r.errors, []);
      assert.deepEqual(r.frames, frames);
      // Any bytes, any limit: chunking changes nothing, errors come once and end the stream.
      const whole = frameAll([hostile], max);
      const split = frameAll(chunk(hostile, cuts2), max);
      assert.deepEqual(split, whole, 'the chunking does not change what the stream means');
      assert.ok(whole.errors.length <= 1, 'at most one error');
      for (const f of whole.frames) assert.ok(f.length <= max, 'no frame over the limit is delivered');
      // Sending: the frame with its length, or refused over the limit.
      const src = new ChunkSource();
      const out = new FramedStream(src, max);
      for (const f of frames) {
        const ok = out.send(f);
        assert.equal(ok, f.length <= max);
      }
      assert.deepEqual(Buffer.concat(src.written), rfc4571(frames.filter((f) => f.length <= max)));
    },
  )),
};
