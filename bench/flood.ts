/**
 * A connected session under a hostile flood (issue 17, item 2), on real
 * loopback UDP. The ice-agent side under test (controlled, echoing) runs
 * in a child process of its own (this file, forked with --expose-gc), so
 * that its RSS and heap are nobody else's; its peer (controlling) runs here
 * and sends `echoRate` datagrams a second on the selected pair, counting the
 * echoes. A third party, here too, sends the hostile mix below to the
 * target's port from `ports` sockets at `rate` a second. The same session
 * setup without the flood, for the same length, is the quiet run measured
 * side by side: RSS and heap (after GC) growth over the window, the echo
 * ratio and round trip, and what the target's `getStats()` counted.
 *
 * The mix (built before the clock starts, with a seeded generator; the STUN
 * is written by spec/support/fuzz-stun.ts, not by lib/stun), in equal shares:
 * - garbage: 1–200 random bytes;
 * - RTP-like data (first byte 0x80) from sources that never passed a check;
 * - truncated checks: a well-formed signed check cut short;
 * - lying lengths: a header length that does not match the datagram, or an
 *   attribute length that overruns the message under a valid FINGERPRINT;
 * - a bad FINGERPRINT on an otherwise valid check;
 * - wrong MESSAGE-INTEGRITY: the session's USERNAME, a MAC under another key;
 * - unknown USERNAME: a random ufrag pair, a MAC under a random key;
 * - no MESSAGE-INTEGRITY: the session's USERNAME, nothing else;
 * - peer-reflexive: checks signed with the target's real password (an
 *   attacker who read the signalling), ICE-CONTROLLING, a random
 *   PRIORITY, no USE-CANDIDATE, from every port: each new port is a
 *   peer-reflexive candidate the target may learn, answer and check;
 * - forged Binding success responses to no transaction of the target's;
 * - Binding indications, and requests of a STUN method ICE does not handle
 *   (TURN Allocate).
 * Each datagram comes from the next of the `ports` sockets in turn.
 *
 * ICE_AGENT_BENCH_HEAPDIR=DIR: the target writes a heap snapshot at each
 * memory mark (flood-1-0.heapsnapshot, flood-1-1 ...: compare them to see
 * what is kept) and a sampling profile of every allocation over the windows
 * (flood-1.heapprofile, for Chrome DevTools: what makes the garbage). They
 * cost time: figures of such a run are for diagnosis only.
 * Nothing here asserts: it reports.
 */
import { fork } from 'node:child_process';
import dgram from 'node:dgram';
import { readFileSync, writeFileSync } from 'node:fs';
import { Session as InspectorSession } from 'node:inspector';
import { join } from 'node:path';
import { constants, performance, PerformanceObserver } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { crc32 } from 'node:zlib';
import { Agent, serializeCandidate, type AgentStats } from '../lib/index.js';
import { Rpc, serveRpc, isMain } from './media-client.js';
import { buildStun, encodeAttr, ipv4Bytes, xorAddress, type Attr } from '../spec/support/fuzz-stun.js';
import { figure, socketDrops, type Figure, withTimeout } from './stats.js';

const HERE = fileURLToPath(import.meta.url);
const HEAPDIR = process.env.ICE_AGENT_BENCH_HEAPDIR;
const LOOPBACK = '127.0.0.1';
/** Echo datagrams: 0x80 (RTP-like, RFC 7983), a 4-byte sequence number, this marker, padding. */
const MARK = 0x45434830; // 'ECH0'
const ECHO_SIZE = 100;
const MiB = (b: number) => b / 2 ** 20;
const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

// ----------------------------------------------------------------- target

interface Offer {
  ufrag: string;
  pwd: string;
  candidates: string[];
}

interface Memory {
  rss: number;
  heapUsed: number;
  heapTotal: number;
  external: number;
  arrayBuffers: number;
  /** V8's young generation (its semi-spaces grow under a high allocation rate and stay grown: RSS, not retained objects). */
  newSpace: number;
  /** /proc/PID/status RssAnon and RssFile. */
  rssAnon: number;
  rssFile: number;
  /** V8's heap spaces: committed size and used size of each (new_space, old_space, code_space, large_object_space ...). */
  spaces: Record<string, { size: number; used: number }>;
}

function procStatus(): { rssAnon: number; rssFile: number } {
  const s = readFileSync('/proc/self/status', 'utf8');
  const kB = (k: string) => Number(new RegExp(`^${k}:\\s+(\\d+) kB`, 'm').exec(s)?.[1] ?? NaN) * 1024;
  return { rssAnon: kB('RssAnon'), rssFile: kB('RssFile') };
}

/** Memory after a full GC (three, with turns of the event loop between: weak callbacks, finalizers). */
async function memoryAfterGc(): Promise<Memory> {
  for (let i = 0; i < 3; i++) {
    globalThis.gc!();
    await new Promise((r) => setImmediate(r));
  }
  const m = process.memoryUsage();
  const heapSpaces = getHeapSpaceStatistics();
  const newSpace = heapSpaces.find((x) => x.space_name === 'new_space')?.space_size ?? NaN;
  const spaces = Object.fromEntries(heapSpaces.map((x) => [x.space_name, { size: x.space_size, used: x.space_used_size }]));
  return {
    rss: m.rss, heapUsed: m.heapUsed, heapTotal: m.heapTotal, external: m.external, arrayBuffers: m.arrayBuffers, newSpace, ...procStatus(), spaces,
  } satisfies Memory;
}

/**
 * The baseline of what receiving the flood costs Node itself: a plain `dgram`
 * socket in a process of its own that reads every datagram and drops it.
 */
function sinkRole(): void {
  const socket = dgram.createSocket({ type: 'udp4' });
  let received = 0;
  socket.on('message', () => {
    received++;
  });
  serveRpc({
    init: () => new Promise((resolve) => socket.bind(0, LOOPBACK, () => resolve(socket.address().port))),
    memory: memoryAfterGc,
    received: () => received,
    close: () => new Promise((resolve) => socket.close(() => resolve(true))),
  });
}

interface TargetStatus {
  stats: AgentStats;
  state: string;
  selected: string | undefined;
  remoteCandidates: number;
  pairs: number;
  /** Datagrams the target's application got from sources other than its peer (sources that passed a check). */
  deliveredFromOthers: number;
  cpuMs: number;
  /** Garbage collections so far: scavenges (young generation) and the others, and their pauses. */
  gc: { minor: number; major: number; ms: number };
}

function targetRole(): void {
  let agent: Agent | undefined;
  let stream = 0;
  let peer = '';
  let fromOthers = 0;
  let profiler: InspectorSession | undefined;
  const gc = { minor: 0, major: 0, ms: 0 };
  new PerformanceObserver((list) => {
    for (const e of list.getEntries()) {
      const kind = (e as unknown as { detail?: { kind?: number } }).detail?.kind;
      if (kind === constants.NODE_PERFORMANCE_GC_MINOR) gc.minor++;
      else gc.major++;
      gc.ms += e.duration;
    }
  }).observe({ entryTypes: ['gc'] });
  const describe = () => {
    const p = agent!.getSelectedPair(stream, 1);
    return p ? `${p.local.address}:${p.local.port} ${p.remote.address}:${p.remote.port}` : undefined;
  };
  serveRpc({
    init: async () => {
      agent = new Agent({ controllingMode: false, localAddresses: [LOOPBACK] });
      stream = agent.addStream(1);
      await agent.gatherCandidates(stream);
      const { ufrag, pwd } = agent.getLocalCredentials(stream);
      return { ufrag, pwd, candidates: agent.getLocalCandidates(stream, 1).map((c) => serializeCandidate(c)) } satisfies Offer;
    },
    /** The peer's description; resolves when the component is ready. */
    answer: async (o: Offer & { peer: string }) => {
      const a = agent!;
      peer = o.peer;
      a.attachRecv(stream, 1, (data, from) => {
        // An echo server for its peer only: a source that passed a check is not the peer.
        if (`${from.address}:${from.port}` === peer) a.send(stream, 1, data);
        else fromOthers++;
      });
      const ready = new Promise<void>((resolve, reject) => {
        a.on('component-state-changed', (_s, _c, st) => {
          if (st === 'ready') resolve();
          if (st === 'failed') reject(new Error('the target failed to connect'));
        });
      });
      a.setRemoteCredentials(stream, o.ufrag, o.pwd);
      a.setRemoteCandidates(stream, 1, o.candidates);
      await withTimeout(ready, 10_000, 'target ready');
      const local = a.getSelectedPair(stream, 1)!.local;
      return { port: local.port };
    },
    memory: memoryAfterGc,
    status: () => {
      const a = agent!;
      const cpu = process.cpuUsage();
      return {
        stats: a.getStats(), state: a.getComponentState(stream, 1), selected: describe(),
        remoteCandidates: a.getRemoteCandidates(stream, 1).length, pairs: a.getPairs(stream).length,
        deliveredFromOthers: fromOthers, cpuMs: (cpu.user + cpu.system) / 1000, gc: { ...gc },
      } satisfies TargetStatus;
    },
    snapshot: (path: string) => writeHeapSnapshot(path),
    /** A sampling allocation profile (every allocation, the ones collected since included) until allocStop writes it. */
    allocStart: async () => {
      profiler = new InspectorSession();
      profiler.connect();
      const post = (method: string, params?: object) => new Promise((resolve, reject) => profiler!.post(method, params ?? {}, (e, r) => (e ? reject(e) : resolve(r))));
      await post('HeapProfiler.enable');
      await post('HeapProfiler.startSampling', { samplingInterval: 1024, includeObjectsCollectedByMajorGC: true, includeObjectsCollectedByMinorGC: true });
      return true;
    },
    allocStop: async (path: string) => {
      const p = profiler!;
      const r = await new Promise<{ profile: unknown }>((resolve, reject) => p.post('HeapProfiler.stopSampling', (e, x) => (e ? reject(e) : resolve(x as { profile: unknown }))));
      writeFileSync(path, JSON.stringify(r.profile));
      p.disconnect();
      profiler = undefined;
      return true;
    },
    close: async () => {
      await agent?.close();
      agent = undefined;
      return true;
    },
  });
}

// ------------------------------------------------------------ hostile mix

/** mulberry32: a small seeded generator, so that every run sends the same mix. */
function prng(seed: number) {
  let a = seed >>> 0;
  const next = () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
  return {
    next,
    int: (lo: number, hi: number) => lo + Math.floor(next() * (hi - lo + 1)),
    bytes: (n: number) => {
      const b = Buffer.alloc(n);
      for (let i = 0; i < n; i++) b[i] = Math.floor(next() * 256);
      return b;
    },
  };
}

export const KINDS = [
  'garbage', 'rtp', 'truncated', 'lyingLength', 'badFingerprint', 'wrongIntegrity', 'unknownUsername',
  'noIntegrity', 'peerReflexive', 'forgedResponse', 'indication', 'unsupported',
] as const;
export type HostileKind = (typeof KINDS)[number];

interface Session {
  /** The target's credentials and its peer's ufrag: what the USERNAME of a check to the target holds. */
  ufrag: string;
  pwd: string;
  peerUfrag: string;
}

/** A STUN header and body with a correct FINGERPRINT after them, whatever the body says (lying lengths included). */
function fingerprinted(type: number, tid: Buffer, body: Buffer): Buffer {
  const h = Buffer.alloc(20);
  h.writeUInt16BE(type, 0);
  h.writeUInt16BE(body.length + 8, 2);
  h.writeUInt32BE(0x2112a442, 4);
  tid.copy(h, 8);
  const before = Buffer.concat([h, body]);
  const fp = Buffer.alloc(4);
  fp.writeUInt32BE((crc32(before) ^ 0x5354554e) >>> 0);
  return Buffer.concat([before, encodeAttr(0x8028, fp)]);
}

/** `n` hostile datagrams for a session, in KINDS order round-robin, with what each is. */
export function hostileMix(s: Session, n: number, seed = 17): { data: Buffer[]; kinds: Record<HostileKind, number> } {
  const r = prng(seed);
  const u32 = (x: number) => Buffer.from([x >>> 24, (x >>> 16) & 255, (x >>> 8) & 255, x & 255]);
  const checkAttrs = (username: string): Attr[] => [
    { type: 0x0006, value: Buffer.from(username) },
    { type: 0x0024, value: u32(r.int(1, 0xffffffff)) },
    { type: 0x802a, value: r.bytes(8) }, // ICE-CONTROLLING: the target is controlled
  ];
  const user = `${s.ufrag}:${s.peerUfrag}`;
  const signed = (tid: Buffer) => buildStun({ type: 0x0001, tid, attrs: checkAttrs(user), integrity: { key: Buffer.from(s.pwd), valid: true }, fingerprint: 'good' });
  const kinds = Object.fromEntries(KINDS.map((k) => [k, 0])) as Record<HostileKind, number>;
  const data: Buffer[] = [];
  for (let i = 0; i < n; i++) {
    const kind = KINDS[i % KINDS.length]!;
    kinds[kind]++;
    const tid = r.bytes(12);
    let d: Buffer;
    switch (kind) {
      case 'garbage':
        d = r.bytes(r.int(1, 200));
        break;
      case 'rtp':
        d = r.bytes(r.int(20, 200));
        d[0] = 0x80;
        break;
      case 'truncated': {
        const full = signed(tid);
        d = full.subarray(0, r.int(1, full.length - 1));
        break;
      }
      case 'lyingLength':
        if (r.next() < 0.5) {
          d = signed(tid);
          d.writeUInt16BE((d.readUInt16BE(2) + 4 * r.int(1, 64)) & 0xfffc, 2);
        } else {
          // USERNAME says it is longer than everything after it; the FINGERPRINT is right.
          const v = Buffer.from(user);
          const a = encodeAttr(0x0006, v);
          a.writeUInt16BE(v.length + 4 * r.int(3, 60), 2);
          d = fingerprinted(0x0001, tid, a);
        }
        break;
      case 'badFingerprint':
        d = buildStun({ type: 0x0001, tid, attrs: checkAttrs(user), integrity: { key: Buffer.from(s.pwd), valid: true }, fingerprint: 'bad' });
        break;
      case 'wrongIntegrity':
        d = buildStun({ type: 0x0001, tid, attrs: checkAttrs(user), integrity: { key: r.bytes(24), valid: true }, fingerprint: 'good' });
        break;
      case 'unknownUsername':
        d = buildStun({
          type: 0x0001, tid, attrs: checkAttrs(`${r.bytes(6).toString('base64')}:${r.bytes(6).toString('base64')}`),
          integrity: { key: r.bytes(24), valid: true }, fingerprint: 'good',
        });
        break;
      case 'noIntegrity':
        d = buildStun({ type: 0x0001, tid, attrs: checkAttrs(user), fingerprint: 'good' });
        break;
      case 'peerReflexive':
        d = signed(tid);
        break;
      case 'forgedResponse':
        d = buildStun({
          type: 0x0101, tid, attrs: [{ type: 0x0020, value: xorAddress(ipv4Bytes(LOOPBACK), r.int(1024, 65535), tid) }],
          integrity: r.next() < 0.5 ? { key: r.bytes(24), valid: true } : undefined, fingerprint: 'good',
        });
        break;
      case 'indication':
        d = buildStun({ type: 0x0011, tid, attrs: [], fingerprint: 'good' });
        break;
      case 'unsupported':
        d = buildStun({ type: 0x0003, tid, attrs: [{ type: 0x0019, value: Buffer.from([17, 0, 0, 0]) }], fingerprint: 'good' });
        break;
    }
    data.push(d);
  }
  return { data, kinds };
}

// ------------------------------------------------------------------- runs

/** Every counter of AgentStats, flattened (`dropped.x`), as numbers. */
function flat(s: AgentStats): Record<string, number> {
  const out: Record<string, number> = {};
  for (const [k, v] of Object.entries(s)) {
    if (typeof v === 'number') out[k] = v;
    else if (v && typeof v === 'object') for (const [k2, v2] of Object.entries(v)) if (typeof v2 === 'number') out[`${k}.${k2}`] = v2;
  }
  return out;
}

/** Where each datagram the target receives ends up: one of these grows per datagram (spec/support/fuzz-agent.ts). */
const PRIMARY = [
  'dropped.malformed', 'dropped.unsupported', 'stunRequestsReceived', 'stunIndicationsReceived', 'stunResponsesReceived',
  'dropped.badFingerprint', 'dropped.unauthorizedSource', 'dataPacketsReceived', 'dropped.noReceiver',
  'serverPacketsReceived', 'dropped.closed',
];

/** Packets one agent sent (its peer's share of what the target receives). */
function packetsSent(s: AgentStats): number {
  return s.dataPacketsSent + s.checksSent + s.checkRetransmissions + s.consentChecksSent + s.keepalivesSent + s.responsesSent + s.errorResponsesSent;
}

/** Memory at one mark, relative to the previous one (MiB). */
export interface Growth {
  rssMiB: number;
  /** RSS of anonymous memory (heap, malloc) and of file mappings (the node binary's pages touched) from /proc/PID/status. */
  rssAnonMiB: number;
  rssFileMiB: number;
  heapUsedMiB: number;
  heapTotalMiB: number;
  externalMiB: number;
  /** V8's young generation, committed: it grows under a high allocation rate up to a cap of V8's and stays grown. */
  newSpaceMiB: number;
}

export interface FloodRun {
  flood: boolean;
  /** Wall time of the windows (the flood's sending, or as long quiet), seconds. */
  seconds: number;
  /** Hostile datagrams sent (all phases), from how many ports, by kind. */
  hostile: number;
  ports: number;
  kinds: Record<string, number> | undefined;
  echo: { sent: number; echoed: number; ratio: number; rttP50Ms: number; rttP99Ms: number; rttMaxMs: number };
  /** Memory after GC at the baseline and after each phase. */
  marks: Memory[];
  /** Growth over each phase: [0] the first `hostile / phases` datagrams (or as long quiet), [1] the next ... */
  growth: Growth[];
  /** The target's CPU over the windows. */
  cpuPercentOfCore: number;
  /** The target's garbage collections over the windows (the GCs of the memory marks included). */
  gc: { minor: number; major: number; ms: number };
  /** Datagrams to the target the kernel dropped at its socket's full receive buffer in the windows. */
  kernelDrops: number;
  /** What the target counted over the windows (deltas of getStats(); zeros left out), and from whom. */
  counted: {
    packetsReceived: number;
    fromPeer: number;
    /** packetsReceived − what the peer sent: the hostile datagrams the agent saw. */
    hostileCounted: number;
    /** Sum of the one-per-datagram counters (PRIMARY); equal to packetsReceived when every datagram is accounted for. */
    primarySum: number;
    deltas: Record<string, number>;
  };
  remoteCandidates: number;
  pairs: number;
  deliveredFromOthers: number;
  /** What the target sent back to the flood's sockets (answers, and checks towards learned peer-reflexive candidates). */
  toFlooder: number;
  stateAfter: string;
  selectedPairKept: boolean;
}

interface EchoDriver {
  /** Stops sending (the counts stay); `resume` goes on at the same rate from then. */
  pause(): void;
  resume(): void;
  /** Forgets what was sent and echoed so far. */
  reset(): void;
  result(): FloodRun['echo'];
  close(): void;
}

/** `rate` datagrams a second from the peer to the target on the selected pair, each echo timed. */
function echoDriver(a: Agent, stream: number, rate: number): EchoDriver {
  const inFlight = new Map<number, number>();
  let seq = 0;
  let sent = 0;
  let echoed = 0;
  let rtts: number[] = [];
  let sending = true;
  let t0 = performance.now();
  let due = 0;
  a.attachRecv(stream, 1, (data) => {
    if (data.length !== ECHO_SIZE || data[0] !== 0x80 || data.readUInt32BE(5) !== MARK) return;
    const at = inFlight.get(data.readUInt32BE(1));
    if (at === undefined) return;
    inFlight.delete(data.readUInt32BE(1));
    echoed++;
    rtts.push(performance.now() - at);
  });
  // Catch-up pacing: each tick sends what the rate says is due, whatever the timer's jitter.
  const timer = setInterval(() => {
    if (!sending) return;
    const want = Math.floor(((performance.now() - t0) * rate) / 1000);
    for (; due < want; due++) {
      // A buffer each: a send is queued, not copied, so one buffer rewritten would go out with the last number.
      const buf = Buffer.alloc(ECHO_SIZE);
      buf[0] = 0x80;
      buf.writeUInt32BE(seq, 1);
      buf.writeUInt32BE(MARK, 5);
      inFlight.set(seq++, performance.now());
      sent++;
      a.send(stream, 1, buf);
    }
  }, 5);
  const q = (xs: number[], p: number) => (xs.length ? xs[Math.min(xs.length - 1, Math.floor(p * xs.length))]! : NaN);
  return {
    pause() {
      sending = false;
    },
    resume() {
      t0 = performance.now();
      due = 0;
      sending = true;
    },
    reset() {
      inFlight.clear();
      sent = 0;
      echoed = 0;
      rtts = [];
    },
    result() {
      const s = [...rtts].sort((x, y) => x - y);
      return { sent, echoed, ratio: sent ? echoed / sent : NaN, rttP50Ms: q(s, 0.5), rttP99Ms: q(s, 0.99), rttMaxMs: s[s.length - 1] ?? NaN };
    },
    close() {
      clearInterval(timer);
    },
  };
}

async function bindAll(n: number, onMessage: () => void): Promise<dgram.Socket[]> {
  const out: dgram.Socket[] = [];
  for (let i = 0; i < n; i++) {
    const s = dgram.createSocket('udp4');
    s.on('message', onMessage);
    s.on('error', () => {});
    await new Promise<void>((r) => s.bind(0, LOOPBACK, () => r()));
    out.push(s);
  }
  return out;
}

export interface FloodOptions {
  /** Hostile datagrams per phase. */
  hostile: number;
  /** Phases of `hostile` datagrams each, memory measured after each (the second shows whether growth goes on). */
  phases: number;
  ports: number;
  /** Hostile datagrams a second. */
  rate: number;
  /** Echo datagrams a second. */
  echoRate: number;
  seed?: number;
  log?: (line: string) => void;
}

/** Quiet for a moment: the echo paused, what is in flight and in the target's socket handled. */
const DRAIN_MS = 1000;

/** The same flood, phases and memory marks against the plain `dgram` sink (sinkRole). */
async function runSink(o: FloodOptions): Promise<Growth[]> {
  const sink = new Rpc(fork(HERE, ['sink'], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  let sockets: dgram.Socket[] = [];
  try {
    const port = await sink.call<number>('init');
    // The same mix as a session's (credentials that exist nowhere: to a socket the bytes are bytes).
    const mix = hostileMix({ ufrag: 'sinkufrg', pwd: 'sinkpasswordsinkpassword', peerUfrag: 'peerufrg' }, o.hostile * o.phases, o.seed);
    sockets = await bindAll(o.ports, () => {});
    await sleep(2000);
    const mark = async () => {
      await sleep(DRAIN_MS);
      return sink.call<Memory>('memory');
    };
    const marks: Memory[] = [await mark()];
    let sent = 0;
    for (let p = 0; p < o.phases; p++) {
      const t0 = performance.now();
      let inPhase = 0;
      const end = sent + o.hostile;
      while (sent < end) {
        const batch = Math.min(end - sent, Math.max(1, Math.round(o.rate / 200)));
        for (let i = 0; i < batch; i++, sent++, inPhase++) sockets[sent % sockets.length]!.send(mix.data[sent]!, port, LOOPBACK);
        await sleep(Math.max(0, t0 + (inPhase / o.rate) * 1000 - performance.now()));
      }
      marks.push(await mark());
    }
    return marks.slice(1).map((m, i) => growthOf(marks[i]!, m));
  } finally {
    await Promise.all(sockets.map((x) => new Promise<void>((r) => x.close(() => r()))));
    await sink.call('close').catch(() => {});
    if (sink.child.connected) sink.child.disconnect();
    if (sink.child.exitCode === null && sink.child.signalCode === null) await new Promise((r) => sink.child.once('exit', r));
  }
}

function growthOf(p: Memory, m: Memory): Growth {
  return {
    rssMiB: MiB(m.rss - p.rss), rssAnonMiB: MiB(m.rssAnon - p.rssAnon), rssFileMiB: MiB(m.rssFile - p.rssFile),
    heapUsedMiB: MiB(m.heapUsed - p.heapUsed), heapTotalMiB: MiB(m.heapTotal - p.heapTotal), externalMiB: MiB(m.external - p.external),
    newSpaceMiB: MiB(m.newSpace - p.newSpace),
  };
}

/** One session: with the flood, or quiet for as long as the flood takes at its rate, memory measured at the same marks. */
async function runOnce(o: FloodOptions, flood: boolean, label: string): Promise<FloodRun> {
  const target = new Rpc(fork(HERE, ['target'], { execArgv: ['--expose-gc'], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] }));
  let a: Agent | undefined;
  let driver: EchoDriver | undefined;
  let sockets: dgram.Socket[] = [];
  try {
    // ---- the session: the same setup for both kinds of run
    const b = await target.call<Offer>('init');
    a = new Agent({ controllingMode: true, localAddresses: [LOOPBACK] });
    const sa = a.addStream(1);
    await a.gatherCandidates(sa);
    const ca = a.getLocalCredentials(sa);
    const aReady = new Promise<void>((resolve, reject) => a!.on('component-state-changed', (_s, _c, st) => {
      if (st === 'ready') resolve();
      if (st === 'failed') reject(new Error('the peer failed to connect'));
    }));
    a.setRemoteCredentials(sa, b.ufrag, b.pwd);
    const aLocal = a.getLocalCandidates(sa, 1)[0]!;
    const answered = target.call<{ port: number }>('answer', {
      ufrag: ca.ufrag, pwd: ca.pwd, candidates: a.getLocalCandidates(sa, 1).map((c) => serializeCandidate(c)), peer: `${aLocal.address}:${aLocal.port}`,
    });
    a.setRemoteCandidates(sa, 1, b.candidates);
    const [{ port }] = await Promise.all([answered, withTimeout(aReady, 10_000, 'peer ready')]);

    // ---- the hostile datagrams (built before the clock starts) and their sockets
    const perPhase = flood ? o.hostile : 0;
    const n = perPhase * o.phases;
    const mix = flood ? hostileMix({ ufrag: b.ufrag, pwd: b.pwd, peerUfrag: ca.ufrag }, n, o.seed) : undefined;
    let toFlooder = 0;
    sockets = flood ? await bindAll(o.ports, () => toFlooder++) : [];
    const phaseMs = (o.hostile / o.rate) * 1000;

    // ---- warm-up: the echo running for a while; then, quiet, the baseline
    driver = echoDriver(a, sa, o.echoRate);
    await sleep(2000);
    const mark = async (i: number): Promise<Memory> => {
      driver!.pause();
      await sleep(DRAIN_MS);
      if (HEAPDIR) await target.call('snapshot', join(HEAPDIR, `${label}-${i}.heapsnapshot`));
      return target.call<Memory>('memory');
    };
    const marks: Memory[] = [await mark(0)];
    const s0 = await target.call<TargetStatus>('status');
    const a0 = a.getStats();
    const drops0 = socketDrops(port);
    driver.reset();
    if (HEAPDIR) await target.call('allocStart');

    // ---- the windows
    let sent = 0;
    let windowsMs = 0;
    for (let p = 0; p < o.phases; p++) {
      driver.resume();
      const t0 = performance.now();
      if (mix) {
        const end = sent + perPhase;
        let inPhase = 0;
        while (sent < end) {
          const batch = Math.min(end - sent, Math.max(1, Math.round(o.rate / 200)));
          for (let i = 0; i < batch; i++, sent++, inPhase++) sockets[sent % sockets.length]!.send(mix.data[sent]!, port, LOOPBACK);
          await sleep(Math.max(0, t0 + (inPhase / o.rate) * 1000 - performance.now()));
        }
      } else {
        await sleep(phaseMs);
      }
      windowsMs += performance.now() - t0;
      marks.push(await mark(p + 1));
    }
    if (HEAPDIR) await target.call('allocStop', join(HEAPDIR, `${label}.heapprofile`));
    const echo = driver.result();
    const s1 = await target.call<TargetStatus>('status');
    const a1 = a.getStats();
    const drops1 = socketDrops(port);

    const f0 = flat(s0.stats);
    const f1 = flat(s1.stats);
    const deltas: Record<string, number> = {};
    for (const k of Object.keys(f1)) if (f1[k]! - (f0[k] ?? 0) !== 0) deltas[k] = f1[k]! - (f0[k] ?? 0);
    const packetsReceived = deltas.packetsReceived ?? 0;
    const fromPeer = packetsSent(a1) - packetsSent(a0);
    const growth: Growth[] = marks.slice(1).map((m, i) => growthOf(marks[i]!, m));
    return {
      flood, seconds: windowsMs / 1000, hostile: n, ports: sockets.length, kinds: mix?.kinds,
      echo, marks, growth,
      cpuPercentOfCore: ((s1.cpuMs - s0.cpuMs) / (windowsMs + o.phases * DRAIN_MS)) * 100,
      gc: { minor: s1.gc.minor - s0.gc.minor, major: s1.gc.major - s0.gc.major, ms: s1.gc.ms - s0.gc.ms },
      kernelDrops: drops1 - drops0,
      counted: {
        packetsReceived, fromPeer, hostileCounted: packetsReceived - fromPeer,
        primarySum: PRIMARY.reduce((x, k) => x + (deltas[k] ?? 0), 0), deltas,
      },
      remoteCandidates: s1.remoteCandidates, pairs: s1.pairs, deliveredFromOthers: s1.deliveredFromOthers - s0.deliveredFromOthers,
      toFlooder, stateAfter: s1.state, selectedPairKept: s0.selected === s1.selected,
    };
  } finally {
    driver?.close();
    await Promise.all(sockets.map((s) => new Promise<void>((r) => s.close(() => r()))));
    await a?.close();
    await target.call('close').catch(() => {});
    if (target.child.connected) target.child.disconnect();
    if (target.child.exitCode === null && target.child.signalCode === null) await new Promise((r) => target.child.once('exit', r));
  }
}

export interface FloodResult {
  /** Hostile datagrams per phase, phases, ports, rates. */
  hostile: number;
  phases: number;
  ports: number;
  rate: number;
  echoRate: number;
  runs: FloodRun[];
  /**
   * Growth per 100,000 hostile datagrams (MiB) over the first phase and, with
   * two phases, over the second; the echo ratio over the whole flood. Quiet:
   * the same windows' growth without the flood.
   */
  flood: FloodSummary;
  quiet: FloodSummary;
  /** The same flood into a plain `dgram` socket that drops it: RSS growth per phase (what Node's receive path costs by itself). */
  sink?: { rssMiB: Figure[]; newSpaceMiB: Figure[] };
  error?: string;
}

export interface FloodSummary {
  rssMiB: Figure[];
  /** Of the RSS growth, what V8's young generation took (its semi-spaces, a process setting: --max-semi-space-size). */
  newSpaceMiB: Figure[];
  heapMiB: Figure[];
  echoRatio: Figure;
  rttP99Ms: Figure;
  cpuPercentOfCore: Figure;
}

function summary(runs: FloodRun[], phases: number, hostile: number): FloodSummary {
  // Quiet runs are reported as they are; flood runs per 100,000 hostile datagrams.
  const scale = (r: FloodRun) => (r.flood ? 100_000 / hostile : 1);
  const per = (f: (g: Growth) => number) => Array.from({ length: phases }, (_, i) => figure(runs.filter((r) => r.growth[i]).map((r) => f(r.growth[i]!) * scale(r)), 'MiB'));
  return {
    rssMiB: per((g) => g.rssMiB),
    newSpaceMiB: per((g) => g.newSpaceMiB),
    heapMiB: per((g) => g.heapUsedMiB),
    echoRatio: figure(runs.map((r) => r.echo.ratio), ''),
    rttP99Ms: figure(runs.map((r) => r.echo.rttP99Ms), 'ms'),
    cpuPercentOfCore: figure(runs.map((r) => r.cpuPercentOfCore), '%'),
  };
}

export async function benchFlood(repeats: number, o: FloodOptions): Promise<FloodResult> {
  const log = o.log ?? (() => {});
  const runs: FloodRun[] = [];
  const sinks: Growth[][] = [];
  let error: string | undefined;
  for (let i = 0; i < repeats; i++) {
    try {
      log(`flood: the same into a plain dgram socket (${i + 1}/${repeats}) ...`);
      sinks.push(await runSink(o));
    } catch (e) {
      error = (e as Error).message;
      log(`flood: sink: ${error}`);
    }
    // Alternated, so that the machine's noise hits both alike.
    for (const flood of [true, false]) {
      try {
        log(`flood: ${flood ? `${o.phases} × ${o.hostile} hostile datagrams from ${o.ports} ports at ${o.rate}/s` : 'quiet run, as long'} (${i + 1}/${repeats}) ...`);
        runs.push(await runOnce(o, flood, `${flood ? 'flood' : 'quiet'}-${i + 1}`));
      } catch (e) {
        error = (e as Error).message;
        log(`flood: ${error}`);
      }
    }
  }
  return {
    hostile: o.hostile, phases: o.phases, ports: o.ports, rate: o.rate, echoRate: o.echoRate, runs,
    flood: summary(runs.filter((r) => r.flood), o.phases, o.hostile),
    quiet: summary(runs.filter((r) => !r.flood), o.phases, o.hostile),
    sink: {
      rssMiB: Array.from({ length: o.phases }, (_, i) => figure(sinks.filter((g) => g[i]).map((g) => g[i]!.rssMiB), 'MiB')),
      newSpaceMiB: Array.from({ length: o.phases }, (_, i) => figure(sinks.filter((g) => g[i]).map((g) => g[i]!.newSpaceMiB), 'MiB')),
    },
    ...(error ? { error } : {}),
  };
}

if (isMain(import.meta.url) && process.argv[2] === 'target') targetRole();
if (isMain(import.meta.url) && process.argv[2] === 'sink') sinkRole();
