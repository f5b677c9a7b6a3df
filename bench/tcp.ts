/**
 * ICE-TCP (RFC 6544) on loopback: time to ready of two agents in one
 * process offering TCP only (gather start → both ready; UDP-only agents in
 * the same run for comparison), and an echo with 32 datagrams in flight
 * through `send`/`attachRecv` on a ready TCP pair, against the same echo
 * over a plain pair of TCP sockets carrying RFC 4571 frames (2-byte length,
 * Nagle off as ours), in the same run. The ratio is ice-agent's overhead
 * on ICE-TCP.
 */
import net from 'node:net';
import { performance } from 'node:perf_hooks';
import { Agent, type AgentOptions, type NominationMode } from '../lib/index.js';
import { connectOnce } from './connect.js';
import { figure, type Figure, withTimeout } from './stats.js';
import { type EchoEnds, runEcho } from './datapath.js';

const TCP_ONLY: AgentOptions = { localAddresses: ['127.0.0.1'], iceTcp: true, iceUdp: false };

function ready(agent: Agent, streamId: number): Promise<void> {
  return new Promise((resolve, reject) => {
    const on = (s: number, _c: number, st: string) => {
      if (s !== streamId) return;
      if (st === 'ready') { agent.off('component-state-changed', on); resolve(); }
      if (st === 'failed') { agent.off('component-state-changed', on); reject(new Error('failed')); }
    };
    agent.on('component-state-changed', on);
  });
}

/** Two TCP-only agents, connected; `ms` from the start of gathering to both ready. */
async function tcpPair(mode: NominationMode): Promise<{ a: Agent; b: Agent; sa: number; sb: number; ms: number }> {
  const a = new Agent({ ...TCP_ONLY, nominationMode: mode, controllingMode: true });
  const b = new Agent({ ...TCP_ONLY, nominationMode: mode });
  const sa = a.addStream(1);
  const sb = b.addStream(1);
  const t0 = performance.now();
  const done = Promise.all([ready(a, sa), ready(b, sb)]);
  const ca = a.getLocalCredentials(sa);
  const cb = b.getLocalCredentials(sb);
  a.setRemoteCredentials(sa, cb.ufrag, cb.pwd);
  b.setRemoteCredentials(sb, ca.ufrag, ca.pwd);
  await Promise.all([a.gatherCandidates(sa), b.gatherCandidates(sb)]);
  a.setRemoteCandidates(sa, 1, b.getLocalCandidates(sb, 1));
  b.setRemoteCandidates(sb, 1, a.getLocalCandidates(sa, 1));
  try {
    await withTimeout(done, 10000, 'ICE-TCP connect');
  } catch (err) {
    await Promise.all([a.close(), b.close()]);
    throw err;
  }
  return { a, b, sa, sb, ms: performance.now() - t0 };
}

async function iceEnds(): Promise<EchoEnds> {
  const { a, b, sa, sb } = await tcpPair('aggressive');
  b.attachRecv(sb, 1, (d) => b.send(sb, 1, d));
  return {
    send: (x) => a.send(sa, 1, x),
    onEcho: (cb) => a.attachRecv(sa, 1, () => cb()),
    close: async () => { await Promise.all([a.close(), b.close()]); },
  };
}

/** RFC 4571 deframing for the reference pair: calls `cb` with each frame. */
function deframe(sock: net.Socket, cb: (frame: Buffer) => void): void {
  let pending = Buffer.alloc(0);
  sock.on('data', (chunk: Buffer) => {
    const buf = pending.length ? Buffer.concat([pending, chunk]) : chunk;
    let at = 0;
    while (buf.length - at >= 2) {
      const len = buf.readUInt16BE(at);
      if (buf.length - at - 2 < len) break;
      cb(buf.subarray(at + 2, at + 2 + len));
      at += 2 + len;
    }
    pending = at < buf.length ? Buffer.from(buf.subarray(at)) : Buffer.alloc(0);
  });
}

function frame(data: Buffer): Buffer {
  const out = Buffer.allocUnsafe(2 + data.length);
  out.writeUInt16BE(data.length, 0);
  data.copy(out, 2);
  return out;
}

/** A plain TCP socket pair on loopback with RFC 4571 framing; `ms` from listen to connected. */
async function rawPair(): Promise<{ x: net.Socket; y: net.Socket; server: net.Server; ms: number }> {
  const t0 = performance.now();
  const server = net.createServer();
  await new Promise<void>((r) => server.listen(0, '127.0.0.1', () => r()));
  const accepted = new Promise<net.Socket>((r) => server.once('connection', r));
  const x = net.connect((server.address() as net.AddressInfo).port, '127.0.0.1');
  await new Promise<void>((r) => x.once('connect', () => r()));
  const y = await accepted;
  const ms = performance.now() - t0;
  x.setNoDelay(true);
  y.setNoDelay(true);
  return { x, y, server, ms };
}

async function rawEnds(): Promise<EchoEnds> {
  const { x, y, server } = await rawPair();
  deframe(y, (f) => y.write(frame(f)));
  return {
    send: (buf) => x.write(frame(buf)),
    onEcho: (cb) => deframe(x, () => cb()),
    close: async () => {
      x.destroy();
      y.destroy();
      await new Promise<void>((r) => server.close(() => r()));
    },
  };
}

export interface TcpResult {
  connect: Array<{ mode: NominationMode; iceTcpMs: Figure; iceUdpMs: Figure; plainTcpConnectMs: Figure }>;
  echo: Array<{ size: number; count: number; ice: { dgramsPerSec: Figure; mbps: Figure }; raw: { dgramsPerSec: Figure; mbps: Figure }; ratio: number }>;
}

export async function benchTcp(repeats: number, count: number): Promise<TcpResult> {
  const connect: TcpResult['connect'] = [];
  for (const mode of ['regular', 'aggressive'] as const) {
    const tcp: number[] = [];
    const udp: number[] = [];
    const plain: number[] = [];
    for (let i = 0; i <= repeats; i++) {
      const p = await tcpPair(mode);
      await Promise.all([p.a.close(), p.b.close()]);
      const u = await connectOnce(mode, false);
      const r = await rawPair();
      r.x.destroy();
      r.y.destroy();
      await new Promise<void>((res) => r.server.close(() => res()));
      if (i > 0) { tcp.push(p.ms); udp.push(u); plain.push(r.ms); } // the first round warms up
    }
    connect.push({ mode, iceTcpMs: figure(tcp, 'ms'), iceUdpMs: figure(udp, 'ms'), plainTcpConnectMs: figure(plain, 'ms') });
  }
  const echo: TcpResult['echo'] = [];
  for (const size of [100, 1200]) {
    const ice: number[] = [];
    const raw: number[] = [];
    for (let i = 0; i <= repeats; i++) {
      const e1 = await iceEnds();
      const r1 = await runEcho(e1, count, size);
      await e1.close();
      const e2 = await rawEnds();
      const r2 = await runEcho(e2, count, size);
      await e2.close();
      if (i > 0) { ice.push(r1); raw.push(r2); }
    }
    const mbps = (xs: number[]) => xs.map((x) => (x * size * 8) / 1e6);
    const iceF = figure(ice, 'dgram/s');
    const rawF = figure(raw, 'dgram/s');
    echo.push({
      size, count,
      ice: { dgramsPerSec: iceF, mbps: figure(mbps(ice), 'Mbps') },
      raw: { dgramsPerSec: rawF, mbps: figure(mbps(raw), 'Mbps') },
      ratio: iceF.median / rawF.median,
    });
  }
  return { connect, echo };
}
