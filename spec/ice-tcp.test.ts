/**
 * ICE-TCP on real sockets: RFC 4571 framing (lib/transport/tcp.ts) against
 * a byte stream cut anywhere, and two agents over loopback TCP only
 * (nodeNetwork: real listeners and connections), with a raw client that
 * sends garbage to a passive candidate. The protocol behaviour itself is
 * spec/ice-tcp-sim.test.ts; libnice interop is spec/interop/libnice-tcp.test.ts.
 */
import t from 'tap';
import net from 'node:net';
import { Agent, type AgentOptions } from '../lib/index.js';
import { FramedStream, MAX_FRAME } from '../lib/transport/tcp.js';
import type { StreamSocket } from '../lib/transport/network.js';

/** A StreamSocket whose incoming bytes the test pushes and whose writes it reads. */
function fakeSocket(): StreamSocket & { push(b: Buffer): void; written: Buffer[]; buffered: number } {
  let onData: ((b: Buffer) => void) | undefined;
  const written: Buffer[] = [];
  const s = {
    local: { address: '127.0.0.1', port: 1 }, remote: { address: '127.0.0.1', port: 2 }, written, buffered: 0,
    get bufferedAmount() { return s.buffered; },
    write(d: Uint8Array) { written.push(Buffer.from(d)); return true; },
    onData(h: (b: Buffer) => void) { onData = h; },
    onClose() {},
    close() { return Promise.resolve(); },
    push(b: Buffer) { onData?.(b); },
  };
  return s;
}

const framed = (body: Buffer) => Buffer.concat([Buffer.from([body.length >> 8, body.length & 255]), body]);

t.test('RFC 4571 framing: whole frames out of a stream cut anywhere; lengths over the limit end it', async (t) => {
  const sock = fakeSocket();
  const f = new FramedStream(sock);
  const got: Buffer[] = [];
  const errors: string[] = [];
  f.start((b) => got.push(b), (e) => errors.push(e));
  const bodies = [Buffer.from('a'), Buffer.alloc(0), Buffer.alloc(1500, 7), Buffer.alloc(MAX_FRAME, 9), Buffer.from('end')];
  const stream = Buffer.concat(bodies.map(framed));
  // Every cut: byte by byte, then in chunks of 3, then all at once.
  for (const step of [1, 3, stream.length]) {
    got.length = 0;
    for (let i = 0; i < stream.length; i += step) sock.push(stream.subarray(i, i + step));
    t.same(got.map((b) => b.toString('hex')), bodies.map((b) => b.toString('hex')), `chunks of ${step}: every frame, in order, intact`);
  }
  t.same(errors, []);
  t.equal(f.send(Buffer.from('xyz')), true);
  t.same(sock.written.at(-1), Buffer.from([0, 3, 0x78, 0x79, 0x7a]), 'send: 2-byte big-endian length, then the frame');
  t.equal(f.send(Buffer.alloc(MAX_FRAME + 1)), false, `a frame over ${MAX_FRAME} bytes is refused`);
  sock.buffered = 2 << 20;
  t.equal(f.send(Buffer.from('x')), false, 'and so is one behind more than 1 MiB still queued');
  sock.buffered = 0;
  sock.push(Buffer.from([0x20, 0x01]));
  t.match(errors, [/frame of 8193 bytes/], 'a length over the limit: an error, once');
  sock.push(framed(Buffer.from('late')));
  t.notOk(got.some((b) => b.toString() === 'late'), 'and nothing after it');
});

t.test('two agents over loopback, TCP only, real sockets: connect, echo, a raw client sending garbage is dropped', async (t) => {
  const opts: AgentOptions = { localAddresses: ['127.0.0.1'], iceTcp: true, iceUdp: false };
  const a = new Agent({ ...opts, controllingMode: true });
  const b = new Agent(opts);
  t.teardown(() => Promise.all([a.close(), b.close()]));
  const sa = a.addStream(1);
  const sb = b.addStream(1);
  await Promise.all([a.gatherCandidates(sa), b.gatherCandidates(sb)]);
  const passive = b.getLocalCandidates(sb, 1).find((c) => c.tcpType === 'passive')!;
  // Garbage first, on the passive candidate's real socket.
  const evil = net.connect(passive.port, '127.0.0.1');
  const evilClosed = new Promise<void>((r) => evil.on('close', () => r()));
  evil.on('error', () => {});
  evil.on('connect', () => evil.write(Buffer.from('\x00\x05hello')));
  await evilClosed;
  t.equal(b.getStats().dropped.tcpUnauthenticated, 1, 'the raw client was closed and counted');

  const ca = a.getLocalCredentials(sa);
  const cb = b.getLocalCredentials(sb);
  a.setRemoteCredentials(sa, cb.ufrag, cb.pwd);
  b.setRemoteCredentials(sb, ca.ufrag, ca.pwd);
  a.setRemoteCandidates(sa, 1, b.getLocalCandidates(sb, 1));
  b.setRemoteCandidates(sb, 1, a.getLocalCandidates(sa, 1));
  const [pa] = await a.connect(sa, { timeout: 5000 });
  await b.connect(sb, { timeout: 5000 });
  t.equal(pa!.local.transport, 'tcp');
  b.attachRecv(sb, 1, (d) => b.send(sb, 1, d));
  let got = 0;
  const all = new Promise<void>((r) => a.attachRecv(sa, 1, () => { if (++got === 100) r(); }));
  for (let i = 0; i < 100; i++) a.send(sa, 1, Buffer.alloc(1200, 0x80));
  await all;
  t.equal(got, 100, '100 datagrams of 1200 bytes echoed over ICE-TCP');
  t.equal(a.getStats().checkRetransmissions + b.getStats().checkRetransmissions, 0, 'no STUN retransmission');
  const stats = a.getStats().streams[0]!.components[0]!;
  t.ok(stats.localCandidates.some((c) => c.tcpType === 'active') && stats.localCandidates.some((c) => c.tcpType === 'passive'), 'stats name the tcptypes');
});
