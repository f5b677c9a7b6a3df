/**
 * DTLS over an ICE pair: node-dtls-client ↔ gnutls-serv (DTLS PSK echo) with
 * the records carried by `agent.connectDtls` over two in-process agents (the
 * second forwards its component to gnutls-serv on loopback), against the
 * same node-dtls-client talking to the same gnutls-serv directly over
 * loopback, alternated in the same run. Per repeat: handshake time,
 * round-trip time (one record in flight, 100 B) and echo throughput (32
 * records in flight, 200 B). The `loopback` transport of the shim (a relay
 * socket on 127.0.0.1 instead of the in-memory one) is measured alongside.
 */
import { performance } from 'node:perf_hooks';
import type { Agent } from '../lib/index.js';
import { connectedPair } from './pair.js';
import { figure, type Figure, withTimeout } from './stats.js';
import { startGnutls, forwardComponent, gnutlsAvailable, DEFAULT_USERS, type Gnutls } from '../spec/support/gnutls.js';

const IDENTITY = 'alice';
const KEY = Buffer.from(DEFAULT_USERS.alice, 'hex');
const WINDOW = 32;

/** The little a measurement needs of a DTLS client socket. */
interface Client {
  send(b: Buffer): void;
  onMessage(cb: (b: Buffer) => void): void;
  offMessage(): void;
  close(): Promise<void>;
}

interface Session {
  client: Client;
  handshakeMs: number;
  teardown(): Promise<void>;
}

/** node-dtls-client on its own UDP socket, straight to gnutls-serv. */
async function direct(g: Gnutls): Promise<Session> {
  const { dtls } = await import('node-dtls-client');
  const t0 = performance.now();
  const s = dtls.createSocket({ type: 'udp4', address: '127.0.0.1', port: g.port, psk: { [IDENTITY]: KEY }, timeout: 5000 });
  await withTimeout(new Promise<void>((resolve, reject) => {
    s.once('connected', () => resolve());
    s.once('error', reject);
  }), 10000, 'direct handshake');
  const handshakeMs = performance.now() - t0;
  let cb: ((b: Buffer) => void) | undefined;
  s.on('message', (m: Buffer) => cb?.(m));
  s.on('error', () => {});
  return {
    handshakeMs,
    client: {
      send: (b) => s.send(b),
      onMessage: (f) => (cb = f),
      offMessage: () => (cb = undefined),
      close: () => new Promise<void>((r) => s.close(() => r())),
    },
    teardown: async () => {},
  };
}

/** connectDtls over an ICE pair; the controlled agent forwards its component to gnutls-serv. */
async function overIce(g: Gnutls, transport: 'memory' | 'loopback'): Promise<Session> {
  const { a, b, sa, sb } = await connectedPair({ nominationMode: 'aggressive' }, 10000);
  const fw = await forwardComponent(b, sb, 1, g.port);
  const t0 = performance.now();
  const d = await a.connectDtls(sa, 1, { psk: { [IDENTITY]: KEY }, transport, timeout: 5000 });
  const handshakeMs = performance.now() - t0;
  let cb: ((b: Buffer) => void) | undefined;
  d.on('message', (m) => cb?.(m));
  d.on('error', () => {});
  return {
    handshakeMs,
    client: {
      send: (x) => void d.send(x),
      onMessage: (f) => (cb = f),
      offMessage: () => (cb = undefined),
      close: async () => {
        const before = fw.toService;
        await d.close();
        // The close_notify must reach gnutls-serv (it serves one session at a time) before the forwarder goes.
        for (let i = 0; i < 100 && fw.toService === before; i++) await new Promise((r) => setTimeout(r, 5));
      },
    },
    teardown: async () => {
      await fw.close();
      await Promise.all([a.close(), b.close()] as Array<ReturnType<Agent['close']>>);
    },
  };
}

/** Median round-trip time of `n` records sent one at a time, µs. */
async function rtt(c: Client, n: number): Promise<number> {
  const buf = Buffer.alloc(100, 0x80);
  const samples: number[] = [];
  await withTimeout(new Promise<void>((resolve) => {
    let t = 0;
    const one = () => {
      t = performance.now();
      c.send(buf);
    };
    c.onMessage(() => {
      samples.push((performance.now() - t) * 1000);
      if (samples.length === n) resolve();
      else one();
    });
    one();
  }), 30000, 'rtt');
  c.offMessage();
  return figure(samples, 'µs').median;
}

/** Records echoed per second with WINDOW in flight (a record lost after 500 ms frees its slot). */
async function throughput(c: Client, count: number, size: number): Promise<number> {
  const buf = Buffer.alloc(size, 0x80);
  let sent = 0;
  let settled = 0;
  const t0 = performance.now();
  await withTimeout(new Promise<void>((resolve) => {
    let sweep: NodeJS.Timeout | undefined;
    const arm = () => {
      clearTimeout(sweep);
      sweep = setTimeout(() => {
        // Nothing for 500 ms: count what is in flight as lost.
        settled = sent;
        pump();
      }, 500);
    };
    const pump = () => {
      while (sent < count && sent - settled < WINDOW) {
        sent++;
        c.send(buf);
      }
      if (settled >= count) {
        clearTimeout(sweep);
        resolve();
      } else arm();
    };
    c.onMessage(() => {
      settled++;
      pump();
    });
    pump();
  }), 60000, 'throughput');
  c.offMessage();
  return count / ((performance.now() - t0) / 1000);
}

export interface DtlsPathFigures {
  handshakeMs: Figure;
  rttUs: Figure;
  recordsPerSec: Figure;
  mbps: Figure;
}

export interface DtlsBenchResult {
  repeats: number;
  rttRecords: number;
  throughputRecords: number;
  size: number;
  direct: DtlsPathFigures;
  ice: DtlsPathFigures;
  iceLoopbackShim: DtlsPathFigures;
  /** ice / direct, of medians (throughput: below 1 is slower; rtt: above 1 is slower). */
  ratio: { throughput: number; rtt: number; handshake: number };
  /** Median RTT added by the ICE pair (two more loopback hops through two agents and the forwarder), µs. */
  addedLatencyUs: number;
  /** What the loopback shim costs over the in-memory one: throughput ratio and added RTT, µs. */
  loopbackShim: { throughputRatio: number; addedLatencyUs: number };
  error?: string;
}

/**
 * `size` stays below 255: gnutls-serv's UDP echo reads at most 254 bytes at a
 * time (udp-serv.c, MAX_BUFFER) and echoes a longer record as several.
 */
export async function benchDtls(repeats: number, rttRecords = 500, throughputRecords = 5000, size = 200): Promise<DtlsBenchResult | { error: string }> {
  if (!gnutlsAvailable()) return { error: 'gnutls-serv is missing (apt-get install gnutls-bin)' };
  const raw = { direct: [] as number[][], ice: [] as number[][], iceLoopbackShim: [] as number[][] };
  // Round 0 warms up (crypto, JIT); then each round runs the three kinds back to back. Each
  // session gets its own gnutls-serv (started outside the measurement): it serves one session
  // at a time and waits out one that did not end with a close_notify it saw.
  for (let i = 0; i <= repeats; i++) {
    for (const kind of ['direct', 'ice', 'iceLoopbackShim'] as const) {
      const g: Gnutls = await startGnutls();
      try {
        const s = kind === 'direct' ? await direct(g) : await overIce(g, kind === 'ice' ? 'memory' : 'loopback');
        try {
          const r = await rtt(s.client, rttRecords);
          const tp = await throughput(s.client, throughputRecords, size);
          if (i > 0) raw[kind].push([s.handshakeMs, r, tp]);
        } finally {
          await s.client.close();
          await s.teardown();
        }
      } finally {
        await g.stop();
      }
    }
  }
  const figs = (rows: number[][]): DtlsPathFigures => ({
    handshakeMs: figure(rows.map((r) => r[0]!), 'ms'),
    rttUs: figure(rows.map((r) => r[1]!), 'µs'),
    recordsPerSec: figure(rows.map((r) => r[2]!), 'records/s'),
    mbps: figure(rows.map((r) => (r[2]! * size * 8) / 1e6), 'Mbps'),
  });
  const direct_ = figs(raw.direct);
  const ice = figs(raw.ice);
  const lo = figs(raw.iceLoopbackShim);
  return {
    repeats,
    rttRecords,
    throughputRecords,
    size,
    direct: direct_,
    ice,
    iceLoopbackShim: lo,
    ratio: {
      throughput: ice.recordsPerSec.median / direct_.recordsPerSec.median,
      rtt: ice.rttUs.median / direct_.rttUs.median,
      handshake: ice.handshakeMs.median / direct_.handshakeMs.median,
    },
    addedLatencyUs: ice.rttUs.median - direct_.rttUs.median,
    loopbackShim: {
      throughputRatio: lo.recordsPerSec.median / ice.recordsPerSec.median,
      addedLatencyUs: lo.rttUs.median - ice.rttUs.median,
    },
  };
}
