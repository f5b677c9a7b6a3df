/**
 * Data path: an echo with a fixed window (as in the peer protocol) through
 * `send`/`attachRecv` on a ready component, against the same echo over two
 * plain dgram sockets in the same process. The ratio is ice-agent's overhead.
 */
import dgram from 'node:dgram';
import { performance } from 'node:perf_hooks';
import { connectedPair } from './pair.js';
import { figure, type Figure, withTimeout } from './stats.js';

/** Datagrams in flight in an echo run (also bench/tcp.ts). */
export const WINDOW = 32;

export interface EchoEnds {
  send(buf: Buffer): void;
  onEcho(cb: (buf?: Buffer) => void): void;
  close(): Promise<void>;
}

/** Runs `count` datagrams of `size` bytes with at most WINDOW in flight; returns datagrams/s. */
export async function runEcho(ends: EchoEnds, count: number, size: number): Promise<number> {
  let sent = 0;
  let echoed = 0;
  const buf = Buffer.alloc(size);
  buf[0] = 0x80;
  const t0 = performance.now();
  await withTimeout(new Promise<void>((resolve) => {
    const sendOne = () => {
      buf.writeUInt32BE(sent++, 1);
      ends.send(buf);
    };
    ends.onEcho(() => {
      echoed++;
      if (echoed === count) resolve();
      else if (sent < count) sendOne();
    });
    while (sent < Math.min(WINDOW, count)) sendOne();
  }), 60000, 'echo');
  return count / ((performance.now() - t0) / 1000);
}

async function agentEnds(): Promise<EchoEnds> {
  const { a, b, sa, sb } = await connectedPair({ nominationMode: 'aggressive' }, 10000);
  b.attachRecv(sb, 1, (d) => b.send(sb, 1, d));
  return {
    send: (x) => a.send(sa, 1, x),
    onEcho: (cb2) => a.attachRecv(sa, 1, cb2),
    close: async () => { await Promise.all([a.close(), b.close()]); },
  };
}

async function rawEnds(): Promise<EchoEnds> {
  const bind = () => new Promise<dgram.Socket>((r) => {
    const s = dgram.createSocket('udp4');
    s.bind(0, '127.0.0.1', () => r(s));
  });
  const x = await bind();
  const y = await bind();
  const xp = x.address().port;
  const yp = y.address().port;
  y.on('message', (m, ri) => y.send(m, ri.port, ri.address));
  return {
    send: (buf) => x.send(buf, yp, '127.0.0.1'),
    onEcho: (cb) => x.on('message', cb),
    close: async () => {
      await new Promise<void>((r) => x.close(() => r()));
      await new Promise<void>((r) => y.close(() => r()));
      void xp;
    },
  };
}

export interface DataPathResult {
  size: number;
  count: number;
  ice: { dgramsPerSec: Figure; mbps: Figure };
  raw: { dgramsPerSec: Figure; mbps: Figure };
  /** ice / raw throughput (1 = no overhead). */
  ratio: number;
}

export async function benchDataPath(repeats: number, count: number): Promise<DataPathResult[]> {
  const out: DataPathResult[] = [];
  for (const size of [100, 1200]) {
    const ice: number[] = [];
    const raw: number[] = [];
    // Interleave the two so that machine noise hits both alike.
    for (let i = 0; i <= repeats; i++) {
      const e1 = await agentEnds();
      const r1 = await runEcho(e1, count, size);
      await e1.close();
      const e2 = await rawEnds();
      const r2 = await runEcho(e2, count, size);
      await e2.close();
      if (i > 0) { ice.push(r1); raw.push(r2); } // the first round warms up
    }
    const mbps = (xs: number[]) => xs.map((x) => (x * size * 8) / 1e6);
    const iceF = figure(ice, 'dgram/s');
    const rawF = figure(raw, 'dgram/s');
    out.push({
      size,
      count,
      ice: { dgramsPerSec: iceF, mbps: figure(mbps(ice), 'Mbps') },
      raw: { dgramsPerSec: rawF, mbps: figure(mbps(raw), 'Mbps') },
      ratio: iceF.median / rawF.median,
    });
  }
  return out;
}
