#!/usr/bin/env node
/**
 * An SFU-style media server in one process on ONE UDP port: a `UdpMux` on
 * `--host`, and one ICE-lite agent on it per joining peer. Every datagram a
 * peer sends is forwarded to every other peer, and also returned to its
 * sender (the CLI peer's data phase counts echoes of its own datagrams, so
 * that `done` completes).
 *
 *   node dist/examples/sfu.js [--host 127.0.0.1] [--port 0] [--http-port 0] [--room N] [--announce ADDR]
 *
 * Signalling is HTTP on loopback, in the shapes of the line protocol
 * (peer-protocol.md), WHIP-like:
 *
 *   POST /join           body: the peer's `description` line
 *                        → 201, `Location: /sessions/ID`, body: the SFU agent's `description` line
 *   DELETE /sessions/ID  → 204: the session's agent is closed
 *   GET /stats           → the mux's counters and, per session, the SFU's own
 *                          counters and the selected pair's W3C stats
 *
 * With `--room N` the SFU is a room of N: answers to /join are held until N
 * peers have joined, and datagrams are held (in arrival order) until all N
 * sessions are ready, so that every datagram of every peer reaches every
 * other peer even though each CLI peer starts sending the moment it connects.
 *
 * stdout carries one line, `{"type":"listening","http":URL,"udp":"ADDR:PORT"}`,
 * once the server is up; logs go to stderr. SIGINT, SIGTERM or the end of
 * stdin (Ctrl-D) stop it. examples/sfu-join.ts joins a CLI peer to it.
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import { isIP } from 'node:net';
import { parseArgs } from 'node:util';
import { fileURLToPath } from 'node:url';
import { realpathSync } from 'node:fs';
import {
  Agent, UdpMux, parseCandidate, serializeCandidate, type Candidate, type CandidatePairStats, type CandidateStats,
  type UdpMuxStats,
} from '../lib/index.js';

const COMPONENT = 1;
/** A description is a few candidates: anything larger is not one. */
const MAX_BODY = 64 * 1024;

export interface SfuOptions {
  /** The one local address to listen on (UDP and HTTP). Default 127.0.0.1. */
  host?: string;
  /** The UDP port of the mux (0: any free port). */
  port?: number;
  /** The HTTP port (0: any free port). */
  httpPort?: number;
  /** Hold answers and data until this many peers have joined and are ready (0: no room, forward at once). */
  room?: number;
  /** Announce this address in place of `host` (the SFU behind a 1:1 NAT). */
  announce?: string;
  log?: (line: string) => void;
}

/** A description as the line protocol writes it. */
export interface Description {
  type: 'description';
  ufrag: string;
  pwd: string;
  candidates: string[];
}

export interface SessionStats {
  id: string;
  /** The peer's ufrag, from its description (a driver matches sessions to peers by it). */
  remoteUfrag: string;
  state: string;
  /** Datagrams received from the peer. */
  received: number;
  /** Datagrams returned to the peer itself. */
  echoed: number;
  /** Datagrams of other sessions sent to this peer, by source session id. */
  forwardedFrom: Record<string, number>;
  /** The SFU side's candidates: all on the mux's one address and port. */
  localCandidates: string[];
  /** The selected pair's W3C stats (packetsSent counts echoes and forwards, packetsReceived the peer's datagrams). */
  selectedPair?: CandidatePairStats & { local?: string; remote?: string };
}

export interface SfuStats {
  udp: string;
  room: number;
  open: boolean;
  mux: UdpMuxStats;
  sessions: SessionStats[];
}

type ResolvedSfuOptions = Required<Omit<SfuOptions, 'announce'>> & { announce: string | undefined };

interface Session {
  id: string;
  agent: Agent;
  stream: number;
  remoteUfrag: string;
  ready: boolean;
  received: number;
  echoed: number;
  forwardedFrom: Map<string, number>;
}

class HttpError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

export class Sfu {
  readonly mux: UdpMux;
  readonly #http: Server;
  readonly #opts: ResolvedSfuOptions;
  readonly #sessions = new Map<string, Session>();
  /** Answers held until the room is full. */
  #waiting: Array<() => void> = [];
  #joined = 0;
  /** Datagrams held until every member of the room is ready, in arrival order. */
  #held: Array<[Session, Buffer]> = [];
  #open: boolean;
  #nextId = 1;
  #closing: Promise<void> | undefined;

  private constructor(mux: UdpMux, http: Server, opts: ResolvedSfuOptions) {
    this.mux = mux;
    this.#http = http;
    this.#opts = opts;
    this.#open = opts.room === 0;
  }

  static async start(options: SfuOptions = {}): Promise<Sfu> {
    const opts: ResolvedSfuOptions = {
      host: options.host ?? '127.0.0.1', port: options.port ?? 0, httpPort: options.httpPort ?? 0,
      room: options.room ?? 0, announce: options.announce, log: options.log ?? (() => {}),
    };
    if (!isIP(opts.host)) throw new Error(`host must be an IP address, got ${JSON.stringify(opts.host)}`);
    if (opts.announce !== undefined && !isIP(opts.announce)) throw new Error(`announce must be an IP address, got ${JSON.stringify(opts.announce)}`);
    // The one UDP socket every session shares, with a kernel buffer larger than the default 208 KiB
    // (capped at net.core.rmem_max) since it takes every session's traffic.
    const mux = await UdpMux.bind({ addresses: [opts.host], port: opts.port, receiveBufferSize: 4 << 20 });
    const http = createServer();
    const sfu = new Sfu(mux, http, opts);
    http.on('request', (req, res) => void sfu.#handle(req, res));
    try {
      await new Promise<void>((resolve, reject) => {
        http.once('error', reject);
        http.listen(opts.httpPort, opts.host, () => {
          http.off('error', reject);
          resolve();
        });
      });
    } catch (err) {
      await mux.close();
      throw err;
    }
    return sfu;
  }

  /** The UDP address every session is on. */
  get udp(): { address: string; port: number } {
    const a = this.mux.addresses[0]!;
    return { address: a.address, port: a.port };
  }

  get url(): string {
    const a = this.#http.address();
    if (a === null || typeof a === 'string') throw new Error('the HTTP server is not listening');
    return `http://${a.family === 'IPv6' ? `[${a.address}]` : a.address}:${a.port}`;
  }

  // ------------------------------------------------------------- signalling

  async #handle(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const path = (req.url ?? '/').split('?')[0]!;
      if (req.method === 'POST' && path === '/join') {
        const { id, answer } = await this.join(parseDescription(await readBody(req)));
        res.writeHead(201, { 'content-type': 'application/json', location: `/sessions/${id}` });
        res.end(`${JSON.stringify(answer)}\n`);
      } else if (req.method === 'DELETE' && path.startsWith('/sessions/')) {
        const id = decodeURIComponent(path.slice('/sessions/'.length));
        if (!this.#sessions.has(id)) throw new HttpError(404, `no session ${id}`);
        await this.leave(id);
        res.writeHead(204).end();
      } else if (req.method === 'GET' && path === '/stats') {
        res.writeHead(200, { 'content-type': 'application/json' });
        res.end(`${JSON.stringify(this.stats())}\n`);
      } else {
        throw new HttpError(404, `no ${req.method} ${path}`);
      }
    } catch (err) {
      const status = err instanceof HttpError ? err.status : 500;
      if (!res.headersSent) res.writeHead(status, { 'content-type': 'application/json' });
      res.end(`${JSON.stringify({ type: 'error', message: (err as Error).message })}\n`);
    }
  }

  /** A new session for a peer's description; resolves with the SFU agent's description (once the room is full). */
  async join(offer: Description): Promise<{ id: string; answer: Description }> {
    if (this.#closing) throw new HttpError(503, 'the SFU is closing');
    const candidates: Candidate[] = [];
    for (const text of offer.candidates) {
      let c: Candidate;
      try {
        c = parseCandidate(text);
      } catch (err) {
        throw new HttpError(400, `candidate ${JSON.stringify(text)}: ${(err as Error).message}`);
      }
      if (c.component === COMPONENT) candidates.push(c);
    }
    const agent = new Agent({
      iceLite: true,
      udpMux: this.mux,
      ...(this.#opts.announce !== undefined ? { announcedAddresses: { [this.#opts.host]: this.#opts.announce } } : {}),
    });
    const session: Session = {
      id: String(this.#nextId++), agent, stream: agent.addStream(1), remoteUfrag: offer.ufrag,
      ready: false, received: 0, echoed: 0, forwardedFrom: new Map(),
    };
    this.#sessions.set(session.id, session);
    agent.on('component-state-changed', (_s, _c, state) => this.#stateChanged(session, state));
    agent.attachRecv(session.stream, COMPONENT, (data) => this.#receive(session, data));
    try {
      await agent.gatherCandidates(session.stream);
      agent.setRemoteCredentials(session.stream, offer.ufrag, offer.pwd);
      // A lite agent never checks them; they say which addresses the peer will check from.
      agent.setRemoteCandidates(session.stream, COMPONENT, candidates);
      agent.peerCandidateGatheringDone(session.stream);
    } catch (err) {
      await this.leave(session.id);
      throw new HttpError(400, (err as Error).message);
    }
    const local = agent.getLocalCredentials(session.stream);
    const answer: Description = {
      type: 'description', ufrag: local.ufrag, pwd: local.pwd,
      candidates: agent.getLocalCandidates(session.stream, COMPONENT).map((c) => serializeCandidate(c)),
    };
    this.#opts.log(`session ${session.id}: peer ${offer.ufrag} joined (${this.#sessions.size} sessions)`);
    // A room of N answers nobody before the N-th: then all connect at about the same time.
    this.#joined++;
    if (this.#opts.room > 0 && this.#joined < this.#opts.room) {
      await new Promise<void>((resolve) => this.#waiting.push(resolve));
    } else {
      for (const w of this.#waiting.splice(0)) w();
    }
    return { id: session.id, answer };
  }

  /** Closes a session's agent; the others go on. */
  async leave(id: string): Promise<void> {
    const s = this.#sessions.get(id);
    if (!s) return;
    this.#sessions.delete(id);
    this.#held = this.#held.filter(([from]) => from !== s);
    this.#opts.log(`session ${id}: gone (${this.#sessions.size} sessions)`);
    await s.agent.close();
  }

  #stateChanged(s: Session, state: string): void {
    this.#opts.log(`session ${s.id}: ${state}`);
    s.ready = state === 'ready' || state === 'disconnected';
    if (state === 'failed') {
      void this.leave(s.id);
      return;
    }
    if (!this.#open && this.#sessions.size >= this.#opts.room && [...this.#sessions.values()].every((x) => x.ready)) {
      this.#open = true;
      this.#opts.log(`room of ${this.#opts.room} open: releasing ${this.#held.length} held datagrams`);
      for (const [from, data] of this.#held.splice(0)) this.#forward(from, data);
    }
  }

  // -------------------------------------------------------------- data path

  #receive(from: Session, data: Buffer): void {
    from.received++;
    if (this.#open) this.#forward(from, data);
    else this.#held.push([from, data]);
  }

  /**
   * To every other ready session first, then back to the sender: when a peer
   * sees the echo of its last datagram, the forwards of it are already out.
   */
  #forward(from: Session, data: Buffer): void {
    for (const to of this.#sessions.values()) {
      if (to === from || !to.ready) continue;
      if (to.agent.send(to.stream, COMPONENT, data)) to.forwardedFrom.set(from.id, (to.forwardedFrom.get(from.id) ?? 0) + 1);
    }
    if (from.agent.send(from.stream, COMPONENT, data)) from.echoed++;
  }

  // ------------------------------------------------------------------ stats

  stats(): SfuStats {
    const sessions: SessionStats[] = [];
    for (const s of this.#sessions.values()) {
      const comp = s.agent.getStats().streams.find((x) => x.id === s.stream)?.components.find((c) => c.id === COMPONENT);
      const pair = comp?.pairs.find((p) => p.selected);
      const cand = (list: CandidateStats[], id: string) => {
        const c = list.find((x) => x.id === id);
        return c ? `${c.address}:${c.port}` : undefined;
      };
      sessions.push({
        id: s.id, remoteUfrag: s.remoteUfrag, state: comp?.state ?? 'closed', received: s.received, echoed: s.echoed,
        forwardedFrom: Object.fromEntries(s.forwardedFrom),
        localCandidates: s.agent.getLocalCandidates(s.stream, COMPONENT).map((c) => serializeCandidate(c)),
        ...(pair && comp ? {
          selectedPair: { ...pair, local: cand(comp.localCandidates, pair.localCandidateId), remote: cand(comp.remoteCandidates, pair.remoteCandidateId) },
        } : {}),
      });
    }
    const u = this.udp;
    return { udp: `${u.address}:${u.port}`, room: this.#opts.room, open: this.#open, mux: this.mux.stats, sessions };
  }

  close(): Promise<void> {
    this.#closing ??= (async () => {
      for (const w of this.#waiting.splice(0)) w();
      this.#http.closeAllConnections();
      await new Promise<void>((resolve) => this.#http.close(() => resolve()));
      await Promise.all([...this.#sessions.keys()].map((id) => this.leave(id)));
      await this.mux.close();
    })();
    return this.#closing;
  }
}

function readBody(req: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    let body = '';
    req.setEncoding('utf8');
    req.on('data', (chunk: string) => {
      body += chunk;
      if (body.length > MAX_BODY) {
        reject(new HttpError(413, `a description is at most ${MAX_BODY} bytes`));
        req.destroy();
      }
    });
    req.on('end', () => resolve(body));
    req.on('error', reject);
  });
}

/** The peer's `description` line, checked field by field (400 on anything else). */
export function parseDescription(body: string): Description {
  let m: unknown;
  try {
    m = JSON.parse(body);
  } catch {
    throw new HttpError(400, 'the body must be a JSON description line');
  }
  const d = m as Partial<Description> | null;
  if (d === null || typeof d !== 'object' || d.type !== 'description') throw new HttpError(400, 'expected {"type":"description",...}');
  if (typeof d.ufrag !== 'string' || typeof d.pwd !== 'string') throw new HttpError(400, 'ufrag and pwd must be strings');
  if (!Array.isArray(d.candidates) || !d.candidates.every((c) => typeof c === 'string')) throw new HttpError(400, 'candidates must be an array of strings');
  return { type: 'description', ufrag: d.ufrag, pwd: d.pwd, candidates: d.candidates };
}

// -------------------------------------------------------------------- CLI

async function main(): Promise<void> {
  const log = (line: string) => process.stderr.write(`sfu: ${line}\n`);
  let values;
  try {
    ({ values } = parseArgs({
      options: {
        host: { type: 'string', default: '127.0.0.1' },
        port: { type: 'string', default: '0' },
        'http-port': { type: 'string', default: '0' },
        room: { type: 'string', default: '0' },
        announce: { type: 'string' },
      },
    }));
  } catch (err) {
    log((err as Error).message);
    process.exit(2);
  }
  const int = (name: string, v: string, max: number) => {
    if (!/^\d+$/.test(v) || Number(v) > max) {
      log(`--${name} must be an integer from 0 to ${max}, got ${JSON.stringify(v)}`);
      process.exit(2);
    }
    return Number(v);
  };
  const sfu = await Sfu.start({
    host: values.host!, port: int('port', values.port!, 65535), httpPort: int('http-port', values['http-port']!, 65535),
    room: int('room', values.room!, 100_000), ...(values.announce !== undefined ? { announce: values.announce } : {}), log,
  });
  const u = sfu.udp;
  process.stdout.write(`${JSON.stringify({ type: 'listening', http: sfu.url, udp: `${u.address}:${u.port}` })}\n`);
  log(`listening: HTTP ${sfu.url}, UDP ${u.address}:${u.port}${values.room !== '0' ? `, room of ${values.room}` : ''}`);
  let stopping = false;
  const stop = async (why: string) => {
    if (stopping) return;
    stopping = true;
    log(`${why}: closing`);
    await sfu.close();
    process.exit(0);
  };
  process.on('SIGINT', () => void stop('SIGINT'));
  process.on('SIGTERM', () => void stop('SIGTERM'));
  process.stdin.on('end', () => void stop('end of stdin'));
  process.stdin.resume();
}

// Run as a program, not when imported (e.g. by a test that starts an Sfu in-process).
const self = fileURLToPath(import.meta.url);
if (process.argv[1] !== undefined && realpathSync(process.argv[1]) === self) {
  main().catch((err: unknown) => {
    process.stderr.write(`sfu: fatal: ${err instanceof Error ? err.stack : String(err)}\n`);
    process.exit(1);
  });
}
