/**
 * Media-server scale: one server process holding N ICE-lite sessions on ONE
 * UDP port (a UdpMux on 127.0.0.1), each with a full-ICE client agent in
 * other processes (bench/media-client.ts, many agents per process, each on
 * its own socket), clients keeping consent at the browser rate (a request
 * every 5 s × 0.8–1.2, the default). Reported:
 *
 * - connect all: every offer sent to the server at once; each client process
 *   runs at most `concurrency` connects at a time (10,000 first checks at
 *   once would overflow the server socket's receive buffer and wait for
 *   retransmissions);
 * - server heap and RSS per session, after GC, and the server's file
 *   descriptors (the goal is one per local address, whatever N);
 * - server CPU while idle (consent only) against a plain `dgram` echo server
 *   answering the same packet rate in the same window, from the same client
 *   processes;
 * - the flood: Binding requests for random unknown ufrags from many source
 *   ports at the mux while the sessions stay up, and the server's RSS and
 *   heap before and after.
 *
 * The server and the echo server are this file, forked with a role argument
 * (the server with --expose-gc); they and the clients take commands over the
 * fork IPC channel. Both servers' sockets get a 4 MiB receive buffer
 * (the mux's receiveBufferSize option). Datagrams the kernel still drops at the server's
 * socket are reported per phase: on a busy machine they are where a starved
 * server shows. Nothing here asserts: it reports.
 */
import { fork } from 'node:child_process';
import { getHeapSpaceStatistics, writeHeapSnapshot } from 'node:v8';
import { join } from 'node:path';
import { createSocket } from 'node:dgram';
import { readdirSync, readFileSync, writeFileSync } from 'node:fs';
import { Session } from 'node:inspector';
import { performance } from 'node:perf_hooks';
import { fileURLToPath } from 'node:url';
import { Agent, DEFAULT_OPTIONS, UdpMux, serializeCandidate, type UdpMuxStats } from '../lib/index.js';
import { BindingRequestTemplate, encodeBindingRequest } from '../lib/stun/binding.js';
import { nodeNetwork } from '../lib/transport/node-network.js';
import type { DatagramSocket, Network } from '../lib/transport/network.js';
import type { TransportAddress } from '../lib/transport/address.js';
import { Rpc, serveRpc, isMain, cpuWindow, type Offer } from './media-client.js';
import { socketDrops, withTimeout } from './stats.js';

export interface MediaOptions {
  sessions: number;
  clientProcesses: number;
  /** Connects in progress at once, per client process. */
  concurrency: number;
  idleSeconds: number;
  flood: { requests: number; ports: number; rate: number };
  log?: (line: string) => void;
}

interface Memory {
  heapUsed: number;
  rss: number;
  external: number;
  fds: number;
}

export interface MediaResult {
  sessions: number;
  /** Server sessions ready after connect-all. */
  connected: number;
  /** Client agents whose connect() resolved / rejected. */
  clientsConnected: number;
  clientsFailed: number;
  clientProcesses: number;
  concurrency: number;
  connectAllMs: number;
  /** When the last answer reached its client (the server made every session by then). */
  answersMs: number;
  heapPerSessionKiB: number;
  rssPerSessionKiB: number;
  /** File descriptors the server opened for its sessions (the mux's sockets included), and its local addresses. */
  serverFds: number;
  localAddresses: number;
  idle: {
    seconds: number;
    serverCpuMs: number;
    echoCpuMs: number;
    /** The kernel's share (system time) of each: datagrams and timer wake-ups are system calls. */
    serverSystemMs: number;
    echoSystemMs: number;
    /** Of each, the main thread's (the JavaScript, the sockets' system calls; the rest is V8's helper threads). NaN off Linux. */
    serverMainThreadMs: number;
    echoMainThreadMs: number;
    /** Server CPU / echo server CPU, same window, same packet rate. */
    ratio: number;
    serverCpuPercentOfCore: number;
    echoCpuPercentOfCore: number;
    /** Datagrams per second each received in the window. */
    serverPacketsPerSec: number;
    echoPacketsPerSec: number;
    /** The client processes together, and the whole machine (every core, every process), for context. */
    clientsCpuPercentOfCore: number;
    machineBusyPercent: number;
  };
  flood: {
    requests: number;
    ports: number;
    sendMs: number;
    /** Requests the mux saw and counted as for an unknown ufrag (the rest the kernel dropped at a full buffer). */
    countedByMux: number;
    answered: number;
    serverCpuPercentOfCore: number;
    rssBeforeMiB: number;
    rssAfterMiB: number;
    heapBeforeMiB: number;
    heapAfterMiB: number;
    routesBefore: number;
    routesAfter: number;
    /** Server sessions ready at the end of the flood, and one consent interval later; failed (consent lost) then. */
    serverReadyRightAfter: number;
    serverReadyAfter: number;
    serverFailedAfter: number;
    /** Client agents ready, and failed, one consent interval after the flood. */
    clientsReadyAfter: number;
    clientsFailedAfter: number;
  };
  /**
   * The JavaScript of one answered consent request, the socket stubbed (no
   * system call), in a process of its own holding as many sessions, taken in
   * a random order: the mux's route, the core's checks, the signed response,
   * the shell's bookkeeping.
   * Beside the idle figures it tells how much of the server's cost per
   * packet is this code at all.
   */
  hotPathUs: number;
  /** Bytes the JavaScript of one such request allocates (young generation). */
  hotPathBytes: number;
  /** Datagrams the kernel dropped at the server socket's full receive buffer, in each phase (and at the echo server's while idle). */
  kernelDrops: { connect: number; idle: number; flood: number; echoIdle: number };
  error?: string;
}

const HERE = fileURLToPath(import.meta.url);
/**
 * ICE_AGENT_BENCH_PROFILE=DIR: the server writes CPU profiles of the connect,
 * idle and flood phases to DIR (server-PHASE.cpuprofile), and heap snapshots
 * before the first session and, at the end, with all of them up (compare
 * them by constructor to see what a session holds). Profiling costs CPU:
 * figures of such a run are for diagnosis only.
 */
const PROFILE = process.env.ICE_AGENT_BENCH_PROFILE;
const CLIENT = fileURLToPath(new URL('./media-client.js', import.meta.url));

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));
const MiB = (b: number) => b / 2 ** 20;

type Cpu = { cpuMs: number; userMs: number; systemMs: number; mainThreadMs: number; wallMs: number; packets: number };
type Status = { ready: number; states: Record<string, number>; mux: UdpMuxStats };

/** Busy and total CPU jiffies of the whole machine. */
function machine(): { busy: number; total: number } {
  const f = readFileSync('/proc/stat', 'utf8').split('\n')[0]!.trim().split(/\s+/).slice(1).map(Number);
  const total = f.reduce((a, b) => a + b, 0);
  return { busy: total - f[3]! - (f[4] ?? 0), total };
}

export async function benchMedia(o: MediaOptions): Promise<MediaResult> {
  const log = o.log ?? (() => {});
  const server = new Rpc(fork(HERE, ['server'], { execArgv: ['--expose-gc'] }));
  const echo = new Rpc(fork(HERE, ['echo']));
  const clients = Array.from({ length: o.clientProcesses }, () => new Rpc(fork(CLIENT, [])));
  const flooder = new Rpc(fork(CLIENT, []));
  const all = [server, echo, flooder, ...clients];
  const profile = async (phase: string, what: 'start' | 'stop') => {
    if (PROFILE) await server.call(what === 'start' ? 'profileStart' : 'profileStop', join(PROFILE, `server-${phase}.cpuprofile`));
  };
  try {
    const mux = await server.call<{ address: string; port: number }>('init');
    const echoAt = await echo.call<{ address: string; port: number }>('init');

    // Client agents, gathered before the clock starts (their sockets are the clients' cost, not the server's).
    log(`media: ${o.sessions} client agents in ${o.clientProcesses} processes ...`);
    const shares = clients.map((_, k) => Math.floor(o.sessions / clients.length) + (k < o.sessions % clients.length ? 1 : 0));
    let first = 0;
    const offers = await Promise.all(clients.map((c, k) => {
      const arg = { first, count: shares[k]!, concurrency: o.concurrency };
      first += shares[k]!;
      return c.call<Offer[]>('create', arg);
    }));

    // Connect all: every offer to the server at once; answers go back to their client as they come.
    log('media: connecting all ...');
    await profile('connect', 'start');
    const sys0 = { ...machine(), drops: socketDrops(mux.port) };
    const connected = clients.map((c) => c.event((m) => m.event === 'connected'));
    const t0 = performance.now();
    const exchanges: Promise<unknown>[] = [];
    for (let i = 0, more = true; more; i += 500) {
      more = false;
      offers.forEach((list, k) => {
        if (i >= list.length) return;
        more = true;
        exchanges.push(server.call<Offer[]>('offer', list.slice(i, i + 500)).then((answers) => clients[k]!.call('answer', answers)));
      });
    }
    await Promise.all(exchanges);
    const answersMs = performance.now() - t0;
    const outcome = await withTimeout(Promise.all(connected), 300_000, 'connect all');
    const connectAllMs = performance.now() - t0;
    await profile('connect', 'stop');
    const sys1 = { ...machine(), drops: socketDrops(mux.port) };
    const clientsConnected = outcome.reduce((a, m) => a + Number(m.connected), 0);
    const clientsFailed = outcome.reduce((a, m) => a + Number(m.failed), 0);
    const errors = outcome.flatMap((m) => m.errors as string[]);
    const status = await server.call<Status>('status');
    log(`media: ${clientsConnected} connected, ${clientsFailed} failed in ${(connectAllMs / 1000).toFixed(1)} s (answers out after ${(answersMs / 1000).toFixed(1)} s); server: ${JSON.stringify(status.states)}${errors.length ? `; ${errors[0]}` : ''}`);

    // Memory and descriptors, after GC, with every session up.
    const mem = await server.call<{ base: Memory; now: Memory; fdsBeforeMux: number }>('memory');

    // Idle: consent only, against the echo server at the same packet rate, in the same window.
    log(`media: idle CPU over ${o.idleSeconds} s, against a dgram echo server ...`);
    const packet = consentSizedRequest();
    await Promise.all(clients.map((c) => c.call('echoStart', { ...echoAt, packet: [...packet] })));
    await sleep(2000); // both streams are steady by then: let the JIT settle too
    await profile('idle', 'start');
    const sys2 = { ...machine(), drops: socketDrops(mux.port), echo: socketDrops(echoAt.port) };
    await Promise.all([server, echo, ...clients].map((p) => p.call('cpuStart')));
    await sleep(o.idleSeconds * 1000);
    const [sc, ec, ...cc] = await Promise.all([server, echo, ...clients].map((p) => p.call<Cpu>('cpuStop')));
    const sys3 = { ...machine(), drops: socketDrops(mux.port), echo: socketDrops(echoAt.port) };
    await profile('idle', 'stop');
    await Promise.all(clients.map((c) => c.call('echoStop')));

    // The flood, with the sessions up.
    log(`media: flood of ${o.flood.requests} requests from ${o.flood.ports} ports ...`);
    const before = await server.call<{ now: Memory }>('memory');
    const st0 = await server.call<Status>('status');
    await profile('flood', 'start');
    const sys4 = { ...machine(), drops: socketDrops(mux.port) };
    await server.call('cpuStart');
    const fl = await flooder.call<{ sent: number; ms: number }>('flood', { ...mux, ...o.flood });
    // What is still in the server's socket buffer is read within milliseconds; half a second is ample.
    await sleep(500);
    const fc = await server.call<Cpu>('cpuStop');
    const sys5 = { ...machine(), drops: socketDrops(mux.port) };
    await profile('flood', 'stop');
    const st1 = await server.call<Status>('status');
    const after = await server.call<{ now: Memory }>('memory');
    const fe = await flooder.call<{ answers: number }>('floodEnd');
    // A session whose consent requests the flood crowded out is `disconnected` until the next one gets through
    // (RFC 7675); one that lost consent stays failed. One consent interval (× 1.2) later, only those are left.
    await sleep(DEFAULT_OPTIONS.consentInterval * 1.2 + 1000);
    const st2 = await server.call<Status>('status');
    const clientStates = await Promise.all(clients.map((c) => c.call<Record<string, number>>('states')));
    log(`media: right after the flood, server: ${JSON.stringify(st1.states)}; a consent interval later: ${JSON.stringify(st2.states)}; clients: ${JSON.stringify(clientStates)}`);

    // The hot path alone, in a fresh process: the same number of sessions, the socket stubbed.
    log('media: the JavaScript of one request, socket stubbed ...');
    const hot = new Rpc(fork(HERE, ['hotpath']));
    all.push(hot);
    const hp = await hot.call<{ us: number; bytes: number }>('run', o.sessions);

    return {
      sessions: o.sessions,
      hotPathUs: hp.us,
      hotPathBytes: hp.bytes,
      connected: status.ready,
      clientsConnected,
      clientsFailed,
      clientProcesses: o.clientProcesses,
      concurrency: o.concurrency,
      connectAllMs,
      answersMs,
      heapPerSessionKiB: (mem.now.heapUsed - mem.base.heapUsed) / o.sessions / 1024,
      rssPerSessionKiB: (mem.now.rss - mem.base.rss) / o.sessions / 1024,
      serverFds: mem.now.fds - mem.fdsBeforeMux,
      localAddresses: 1,
      idle: {
        seconds: sc!.wallMs / 1000,
        serverCpuMs: sc!.cpuMs,
        echoCpuMs: ec!.cpuMs,
        serverSystemMs: sc!.systemMs,
        echoSystemMs: ec!.systemMs,
        serverMainThreadMs: sc!.mainThreadMs,
        echoMainThreadMs: ec!.mainThreadMs,
        ratio: sc!.cpuMs / ec!.cpuMs,
        serverCpuPercentOfCore: (sc!.cpuMs / sc!.wallMs) * 100,
        echoCpuPercentOfCore: (ec!.cpuMs / ec!.wallMs) * 100,
        serverPacketsPerSec: sc!.packets / (sc!.wallMs / 1000),
        echoPacketsPerSec: ec!.packets / (ec!.wallMs / 1000),
        clientsCpuPercentOfCore: (cc.reduce((a, c) => a + c.cpuMs, 0) / sc!.wallMs) * 100,
        machineBusyPercent: ((sys3.busy - sys2.busy) / (sys3.total - sys2.total)) * 100,
      },
      flood: {
        requests: fl.sent,
        ports: o.flood.ports,
        sendMs: fl.ms,
        countedByMux: st1.mux.unknownUfrag - st0.mux.unknownUfrag,
        answered: fe.answers,
        serverCpuPercentOfCore: (fc.cpuMs / fc.wallMs) * 100,
        rssBeforeMiB: MiB(before.now.rss),
        rssAfterMiB: MiB(after.now.rss),
        heapBeforeMiB: MiB(before.now.heapUsed),
        heapAfterMiB: MiB(after.now.heapUsed),
        routesBefore: st0.mux.routes,
        routesAfter: st1.mux.routes,
        serverReadyRightAfter: st1.ready,
        serverReadyAfter: st2.ready,
        serverFailedAfter: st2.states.failed ?? 0,
        clientsReadyAfter: clientStates.reduce((a, s) => a + (s.ready ?? 0), 0),
        clientsFailedAfter: clientStates.reduce((a, s) => a + (s.failed ?? 0), 0),
      },
      kernelDrops: { connect: sys1.drops - sys0.drops, idle: sys3.drops - sys2.drops, flood: sys5.drops - sys4.drops, echoIdle: sys3.echo - sys2.echo },
      ...(errors.length ? { error: errors[0] } : {}),
    };
  } finally {
    await Promise.allSettled(clients.map((c) => withTimeout(c.call('close'), 30_000, 'closing clients')));
    await Promise.allSettled([withTimeout(server.call('close'), 60_000, 'closing the server')]);
    for (const r of all) r.child.kill();
  }
}

/** A datagram of the size of a client's consent request (8-character ufrags, as the agents generate). */
function consentSizedRequest(): Buffer {
  return encodeBindingRequest({
    transactionId: Buffer.alloc(12, 7), username: 'abcdefgh:ijklmnop', password: 'abcdefghijklmnopqrstuvwx',
    priority: 2130706431, controlling: true, tieBreaker: 1n, useCandidate: false,
  });
}

function fds(): number {
  return readdirSync('/proc/self/fd').length;
}

function gc(): void {
  const g = (globalThis as { gc?: () => void }).gc;
  if (!g) throw new Error('the media server needs --expose-gc');
  g();
  g();
}

function memory(): Memory {
  gc();
  const m = process.memoryUsage();
  return { heapUsed: m.heapUsed, rss: m.rss, external: m.external, fds: fds() };
}

/**
 * The receive buffer of the server's one socket (and the echo server's). The
 * default (net.core.rmem_default, 208 KiB here) holds a few hundred small
 * datagrams: a tenth of a second of this traffic, so that any scheduling
 * delay of the server process loses consent requests. Media servers set
 * SO_RCVBUF high; the kernel caps it at net.core.rmem_max.
 */
const RECV_BUFFER = 4 * 2 ** 20;

function post(session: Session, method: string): Promise<unknown> {
  return new Promise((resolve, reject) => session.post(method, (err, r) => (err ? reject(err) : resolve(r))));
}

// ------------------------------------------------------------ the server

function serverRole(): void {
  let mux: UdpMux;
  let base: Memory;
  let fdsBeforeMux = 0;
  let inspector: Session | undefined;
  // The sessions, and nothing else per session: what the server holds is what the agents hold.
  const agents: Agent[] = [];
  serveRpc({
    init: async () => {
      fdsBeforeMux = fds();
      mux = await UdpMux.bind({ addresses: ['127.0.0.1'], receiveBufferSize: RECV_BUFFER });
      // One session made and closed first, so that module set-up is not counted per session.
      const warm = new Agent({ iceLite: true, udpMux: mux });
      await warm.gatherCandidates(warm.addStream(1));
      await warm.close();
      base = memory();
      if (PROFILE) writeHeapSnapshot(join(PROFILE, 'server-base.heapsnapshot'));
      return mux.addresses[0];
    },
    offer: async (offers: Offer[]) => {
      const answers: Offer[] = [];
      await Promise.all(offers.map(async (off) => {
        const agent = new Agent({ iceLite: true, udpMux: mux });
        const stream = agent.addStream(1);
        // status() reads stream 1 of every agent: no per-session bookkeeping of our own.
        if (stream !== 1) throw new Error(`expected stream id 1, got ${stream}`);
        agents.push(agent);
        await agent.gatherCandidates(stream);
        agent.setRemoteCredentials(stream, off.ufrag, off.pwd);
        agent.setRemoteCandidates(stream, 1, off.candidates);
        const { ufrag, pwd } = agent.getLocalCredentials(stream);
        answers.push({ id: off.id, ufrag, pwd, candidates: agent.getLocalCandidates(stream, 1).map((c) => serializeCandidate(c)) });
      }));
      return answers;
    },
    status: () => {
      const states: Record<string, number> = {};
      for (const a of agents) {
        const st = a.getComponentState(1, 1);
        states[st] = (states[st] ?? 0) + 1;
      }
      return { sessions: agents.length, ready: states.ready ?? 0, states, mux: mux.stats };
    },
    memory: () => ({ base, now: memory(), fdsBeforeMux }),
    ...cpuWindow(() => mux.stats.received),
    // In-process CPU profiles of one phase (ICE_AGENT_BENCH_PROFILE).
    profileStart: async () => {
      inspector ??= new Session();
      inspector.connect();
      await post(inspector, 'Profiler.enable');
      await post(inspector, 'Profiler.start');
      return true;
    },
    profileStop: async (file: string) => {
      const r = await post(inspector!, 'Profiler.stop') as { profile: unknown };
      writeFileSync(file, JSON.stringify(r.profile));
      inspector!.disconnect();
      return file;
    },
    close: async () => {
      // Last, with the sessions still up: writing it stops the process for seconds, long enough to lose consent.
      if (PROFILE) {
        gc();
        writeHeapSnapshot(join(PROFILE, 'server-sessions.heapsnapshot'));
      }
      await Promise.all(agents.map((a) => a.close()));
      await mux.close();
      return true;
    },
  });
}

// ------------------------------------------------------ the echo server

function echoRole(): void {
  const socket = createSocket({ type: 'udp4', recvBufferSize: RECV_BUFFER });
  let packets = 0;
  socket.on('message', (msg, rinfo) => {
    packets++;
    socket.send(msg, rinfo.port, rinfo.address);
  });
  serveRpc({
    init: () => new Promise((resolve) => socket.bind(0, '127.0.0.1', () => resolve(socket.address()))),
    ...cpuWindow(() => packets),
    close: () => new Promise((resolve) => socket.close(() => resolve(true))),
  });
}

// ------------------------------------------------- the hot path alone

/** A shared socket that sends nowhere: the mux's datagrams are fed in by hand, its answers counted. */
function stubNetwork(): { network: Network; feed: () => (data: Buffer, from: TransportAddress) => void; sent: () => number } {
  let handler: ((data: Buffer, from: TransportAddress) => void) | undefined;
  let sent = 0;
  const sock: DatagramSocket = {
    local: { address: '127.0.0.1', port: 3478 },
    send: () => { sent++; return true; },
    onMessage: (h) => { handler = h; },
    close: () => Promise.resolve(),
  };
  // Node's network but for the socket; its methods bound once (a bind per call would be the hot path's biggest allocation).
  const bound = new Map<PropertyKey, unknown>([['bindDatagram', () => Promise.resolve(sock)]]);
  const network = new Proxy(nodeNetwork, {
    get: (t, prop) => {
      if (!bound.has(prop)) {
        const v = Reflect.get(t, prop) as unknown;
        bound.set(prop, typeof v === 'function' ? (v as (...a: unknown[]) => unknown).bind(t) : v);
      }
      return bound.get(prop);
    },
  });
  return { network, feed: () => handler!, sent: () => sent };
}

function hotPathRole(): void {
  serveRpc({
    run: async (n: number) => {
      const { network, feed, sent } = stubNetwork();
      const mux = await UdpMux.bind({ addresses: ['127.0.0.1'], network });
      const sessions: Array<{ from: TransportAddress; requests: Buffer[] }> = [];
      const agents: Agent[] = [];
      for (let i = 0; i < n; i++) {
        const agent = new Agent({ iceLite: true, udpMux: mux, network });
        agents.push(agent);
        const stream = agent.addStream(1);
        await agent.gatherCandidates(stream);
        const from = { address: '127.0.0.2', port: 20000 + (i % 40000) };
        agent.setRemoteCredentials(stream, `cl${String(i).padStart(6, '0')}`, 'clientpasswordclientpassword');
        agent.setRemoteCandidates(stream, 1, [`candidate:1 1 udp 2130706431 ${from.address} ${from.port} typ host`]);
        const { ufrag, pwd } = agent.getLocalCredentials(stream);
        const tpl = new BindingRequestTemplate({ username: `${ufrag}:cl${String(i).padStart(6, '0')}`, password: pwd, priority: 1845501695, controlling: true, tieBreaker: 1n, useCandidate: true });
        const id = () => Buffer.from(Array.from({ length: 12 }, () => Math.floor(Math.random() * 256)));
        feed()(tpl.build(id()), from); // the nomination: the session is ready
        sessions.push({ from, requests: [0, 1, 2, 3].map(() => tpl.build(id())) });
      }
      const deliver = feed();
      // Rounds over every session in a random order, as consent requests come (sessions in creation order
      // would find their objects side by side in memory, which a server's traffic does not); the best round.
      const order = sessions.map((_, i) => i);
      for (let i = order.length - 1; i > 0; i--) {
        const j = Math.floor(Math.random() * (i + 1));
        [order[i], order[j]] = [order[j]!, order[i]!];
      }
      let best = Infinity;
      for (let round = 0; round < 5; round++) {
        const s0 = sent();
        const t0 = performance.now();
        for (let r = 0; r < 4; r++) for (const i of order) deliver(sessions[i]!.requests[r]!, sessions[i]!.from);
        const us = ((performance.now() - t0) * 1000) / (4 * n);
        if (sent() - s0 !== 4 * n) throw new Error(`answered ${sent() - s0} of ${4 * n}`);
        best = Math.min(best, us);
      }
      const young = () => getHeapSpaceStatistics().find((x) => x.space_name === 'new_space')!.space_used_size;
      let bytes = Infinity;
      for (let k = 0; k < 5; k++) {
        const a = young();
        for (let i = 0; i < 200; i++) deliver(sessions[i % n]!.requests[0]!, sessions[i % n]!.from);
        const b = young();
        if (b >= a) bytes = Math.min(bytes, (b - a) / 200); // a scavenge in between shows as a drop: that sample is skipped
      }
      await Promise.all(agents.map((a) => a.close()));
      await mux.close();
      return { us: best, bytes };
    },
  });
}

if (isMain(import.meta.url)) {
  if (process.argv[2] === 'server') serverRole();
  else if (process.argv[2] === 'echo') echoRole();
  else if (process.argv[2] === 'hotpath') hotPathRole();
}
