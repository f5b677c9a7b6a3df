/**
 * A signalling server for two ICE peers, in the shapes the pion examples and
 * GStreamer webrtcbin's demo signalling use:
 *
 *   POST /offer                         {"type":"offer","sdp":"v=0..."}   → 201 {"session":"<id>"}
 *   POST /answer?session=ID             {"type":"answer","sdp":"v=0..."}  → 204
 *   POST /ice?session=ID&role=offerer   {"candidate":"candidate:...","sdpMid":"0","sdpMLineIndex":0} → 204
 *                                       ("candidate":"" is end-of-candidates, as in the W3C API)
 *   GET  /ws?session=ID&role=answerer   WebSocket: pushes the other side's
 *                                       {"sdp":{"type":..,"sdp":..}} and {"ice":{"candidate":..,..}}
 *
 * The offer is pushed to the answerer, the answer to the offerer, each
 * side's candidates to the other, in the order they were posted; what
 * arrives before the other side's WebSocket is queued. Every SDP is checked
 * with lib/sdp's strict parser and every candidate with parseCandidate.
 * Bounded: at most `maxSessions` sessions, `maxQueued` messages waiting per
 * side, `maxBodyBytes` per request, and a session idle for `idleTimeout`
 * is dropped. Hostile input gets a 4xx and the server goes on. The session
 * id (a random UUID) is the only credential: whoever knows it may signal in
 * that session. It listens on 127.0.0.1 only. Run:
 * `node dist/examples/signalling-server.js [port]`.
 */
import { EventEmitter } from 'node:events';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import { randomUUID } from 'node:crypto';
import type { Duplex } from 'node:stream';
import { pathToFileURL } from 'node:url';
import { WebSocketServer, type WebSocket } from 'ws';
import { CandidateParseError, parseCandidate } from '../lib/index.js';
import { SdpParseError, parseSdp } from '../lib/sdp/index.js';

export type Role = 'offerer' | 'answerer';

/** A trickled candidate (the W3C `RTCIceCandidateInit`, which pion's `ICECandidateInit` mirrors). */
export interface IceCandidateInit {
  candidate: string;
  sdpMid?: string | null;
  sdpMLineIndex?: number | null;
  usernameFragment?: string | null;
}

/** What the WebSocket pushes (GStreamer webrtcbin's sendrecv demo messages). */
export type SignalMessage = { sdp: { type: 'offer' | 'answer'; sdp: string } } | { ice: IceCandidateInit };

export interface SignallingServerOptions {
  /** TCP port on 127.0.0.1; 0 (the default) picks a free one. */
  port?: number;
  maxSessions?: number;
  /** Largest request body, bytes. */
  maxBodyBytes?: number;
  /** A session without a request or a WebSocket connection for this long is dropped, ms. */
  idleTimeout?: number;
  /** Messages waiting for one side's WebSocket, at most. */
  maxQueued?: number;
}

export interface SignallingServerEvents {
  'session-expired': [id: string];
}

interface Session {
  id: string;
  answered: boolean;
  /** m= sections of the offer, to check `sdpMLineIndex` and `sdpMid` of trickled candidates. */
  mLines: number;
  mids: Set<string>;
  sockets: Record<Role, WebSocket | undefined>;
  /** Messages for each side, waiting for its WebSocket. */
  queues: Record<Role, string[]>;
  timer: NodeJS.Timeout | undefined;
}

/** An HTTP error answer: status and a JSON body `{ error, ...extra }`. */
class HttpError extends Error {
  constructor(readonly status: number, message: string, readonly extra: Record<string, unknown> = {}) {
    super(message);
  }
}

const ROLES: readonly Role[] = ['offerer', 'answerer'];
const other = (r: Role): Role => (r === 'offerer' ? 'answerer' : 'offerer');
/** Beyond this many bytes of an oversized body, stop draining it and drop the connection. */
const MAX_DRAIN = 1 << 20;

function reply(res: ServerResponse, status: number, body?: unknown): void {
  const text = body === undefined ? '' : JSON.stringify(body);
  // No Date header: nothing here is cacheable (no-store), and Node keeps the
  // formatted date under a timer for a second, which would outlive close().
  res.sendDate = false;
  res.writeHead(status, {
    'content-type': 'application/json',
    'content-length': Buffer.byteLength(text),
    'cache-control': 'no-store',
  });
  res.end(text);
}

/**
 * Reads a JSON object body of at most `max` bytes. An oversized body is read
 * to its end and thrown away before the 413 goes out: closing a socket with
 * unread data resets it, and the client might never see the answer.
 */
function readJson(req: IncomingMessage, max: number): Promise<Record<string, unknown>> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size <= max) chunks.push(chunk);
      else if (size > max + MAX_DRAIN) req.destroy();
    });
    req.on('error', reject);
    req.on('close', () => reject(new HttpError(413, `the body is over ${max} bytes`)));
    req.on('end', () => {
      if (size > max) return reject(new HttpError(413, `the body is over ${max} bytes`));
      let body: unknown;
      try {
        body = JSON.parse(Buffer.concat(chunks).toString('utf8'));
      } catch {
        return reject(new HttpError(400, 'the body is not JSON'));
      }
      if (typeof body !== 'object' || body === null || Array.isArray(body)) return reject(new HttpError(400, 'the body must be a JSON object'));
      resolve(body as Record<string, unknown>);
    });
  });
}

/** Reads and throws away what is left of a request body (see readJson), so that the answer reaches the client. */
function drain(req: IncomingMessage): Promise<void> {
  if (req.complete) return Promise.resolve();
  return new Promise((resolve) => {
    let size = 0;
    req.on('data', (chunk: Buffer) => {
      size += chunk.length;
      if (size > MAX_DRAIN) req.destroy();
    });
    req.on('end', resolve);
    req.on('close', resolve);
  });
}

/** The SDP of an `{type, sdp}` body, checked by the strict parser (RFC 8866, RFC 8839). */
function description(body: Record<string, unknown>, type: 'offer' | 'answer'): { sdp: string; mLines: number; mids: Set<string> } {
  if (body.type !== type) throw new HttpError(400, `"type" must be "${type}"`);
  if (typeof body.sdp !== 'string') throw new HttpError(400, '"sdp" must be a string');
  try {
    const desc = parseSdp(body.sdp);
    return { sdp: body.sdp, mLines: desc.streams.length, mids: new Set(desc.streams.flatMap((s) => (s.mid === undefined ? [] : [s.mid]))) };
  } catch (err) {
    if (err instanceof SdpParseError) throw new HttpError(400, err.message, { line: err.line, field: err.field });
    throw err;
  }
}

/** A trickled candidate, checked against the candidate-attribute grammar (RFC 8839 §5.1) and the offer's m= sections. */
function candidateInit(body: Record<string, unknown>, session: Session): IceCandidateInit {
  const { candidate, sdpMid, sdpMLineIndex, usernameFragment } = body;
  if (typeof candidate !== 'string') throw new HttpError(400, '"candidate" must be a string ("" for end-of-candidates)');
  if (candidate !== '') {
    try {
      parseCandidate(candidate);
    } catch (err) {
      if (err instanceof CandidateParseError) throw new HttpError(400, err.message, { field: err.field });
      throw err;
    }
  }
  if (sdpMid != null && (typeof sdpMid !== 'string' || !session.mids.has(sdpMid))) throw new HttpError(400, '"sdpMid" names no m= section of the offer');
  if (sdpMLineIndex != null && (!Number.isInteger(sdpMLineIndex) || (sdpMLineIndex as number) < 0 || (sdpMLineIndex as number) >= session.mLines)) {
    throw new HttpError(400, '"sdpMLineIndex" is not an m= section of the offer');
  }
  if (usernameFragment != null && typeof usernameFragment !== 'string') throw new HttpError(400, '"usernameFragment" must be a string');
  const init: IceCandidateInit = { candidate };
  if (sdpMid != null) init.sdpMid = sdpMid as string;
  if (sdpMLineIndex != null) init.sdpMLineIndex = sdpMLineIndex as number;
  if (usernameFragment != null) init.usernameFragment = usernameFragment as string;
  return init;
}

export class SignallingServer extends EventEmitter<SignallingServerEvents> {
  readonly #http = createServer({ maxHeaderSize: 8192 }, (req, res) => this.#request(req, res));
  readonly #wss = new WebSocketServer({ noServer: true, maxPayload: 4096 });
  readonly #sessions = new Map<string, Session>();
  readonly #opts: Required<SignallingServerOptions>;
  #port = 0;

  private constructor(opts: SignallingServerOptions) {
    super();
    this.#opts = { port: 0, maxSessions: 100, maxBodyBytes: 64 * 1024, idleTimeout: 60_000, maxQueued: 256, ...opts };
    // Slow or stalled clients do not hold a connection for long.
    this.#http.headersTimeout = 10_000;
    this.#http.requestTimeout = 15_000;
    this.#http.on('upgrade', (req: IncomingMessage, socket: Duplex, head: Buffer) => this.#upgrade(req, socket, head));
  }

  /** Starts a server on 127.0.0.1; resolves once it listens. */
  static async start(opts: SignallingServerOptions = {}): Promise<SignallingServer> {
    const server = new SignallingServer(opts);
    await new Promise<void>((resolve, reject) => {
      server.#http.once('error', reject);
      server.#http.listen(server.#opts.port, '127.0.0.1', () => {
        server.#http.off('error', reject);
        resolve();
      });
    });
    const address = server.#http.address();
    server.#port = typeof address === 'object' && address !== null ? address.port : 0;
    return server;
  }

  get port(): number {
    return this.#port;
  }

  get url(): string {
    return `http://127.0.0.1:${this.#port}`;
  }

  /** Sessions alive now. */
  get sessions(): number {
    return this.#sessions.size;
  }

  /** Drops every session, closes every WebSocket and HTTP connection; resolves when the server has stopped. */
  async close(): Promise<void> {
    for (const s of [...this.#sessions.values()]) this.#drop(s);
    const closed = new Promise<void>((resolve) => this.#http.close(() => resolve()));
    this.#http.closeAllConnections();
    this.#wss.close();
    await closed;
  }

  async #request(req: IncomingMessage, res: ServerResponse): Promise<void> {
    try {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (!['/offer', '/answer', '/ice'].includes(url.pathname)) throw new HttpError(404, 'no such resource');
      if (req.method !== 'POST') {
        res.setHeader('allow', 'POST');
        throw new HttpError(405, 'only POST');
      }
      const body = await readJson(req, this.#opts.maxBodyBytes);
      if (url.pathname === '/offer') {
        if (this.#sessions.size >= this.#opts.maxSessions) throw new HttpError(429, 'too many sessions');
        const offer = description(body, 'offer');
        const session: Session = {
          id: randomUUID(), answered: false, mLines: offer.mLines, mids: offer.mids,
          sockets: { offerer: undefined, answerer: undefined }, queues: { offerer: [], answerer: [] }, timer: undefined,
        };
        this.#sessions.set(session.id, session);
        this.#touch(session);
        this.#push(session, 'answerer', { sdp: { type: 'offer', sdp: offer.sdp } });
        return reply(res, 201, { session: session.id });
      }
      const session = this.#session(url);
      if (url.pathname === '/answer') {
        const answer = description(body, 'answer');
        if (session.answered) throw new HttpError(409, 'the session is answered already');
        session.answered = true;
        this.#push(session, 'offerer', { sdp: { type: 'answer', sdp: answer.sdp } });
      } else {
        const from = this.#role(url);
        this.#push(session, other(from), { ice: candidateInit(body, session) });
      }
      return reply(res, 204);
    } catch (err) {
      await drain(req);
      if (res.headersSent || res.destroyed) return;
      if (err instanceof HttpError) {
        if (err.status === 413) res.setHeader('connection', 'close');
        return reply(res, err.status, { error: err.message, ...err.extra });
      }
      reply(res, 500, { error: 'internal error' });
    }
  }

  #session(url: URL): Session {
    const id = url.searchParams.get('session');
    if (id === null) throw new HttpError(400, 'no "session" parameter');
    const s = this.#sessions.get(id);
    if (!s) throw new HttpError(404, 'no such session');
    this.#touch(s);
    return s;
  }

  #role(url: URL): Role {
    const role = url.searchParams.get('role');
    if (!ROLES.includes(role as Role)) throw new HttpError(400, '"role" must be "offerer" or "answerer"');
    return role as Role;
  }

  /** Sends to `to` now, or queues until its WebSocket comes. */
  #push(s: Session, to: Role, msg: SignalMessage): void {
    const text = JSON.stringify(msg);
    const ws = s.sockets[to];
    if (ws) return ws.send(text);
    if (s.queues[to].length >= this.#opts.maxQueued) throw new HttpError(429, `more than ${this.#opts.maxQueued} messages wait for the ${to}`);
    s.queues[to].push(text);
  }

  /** Restarts the idle timer of a session (unref'd: a session alone does not keep the process up). */
  #touch(s: Session): void {
    clearTimeout(s.timer);
    s.timer = setTimeout(() => {
      this.#drop(s);
      this.emit('session-expired', s.id);
    }, this.#opts.idleTimeout).unref();
  }

  #drop(s: Session): void {
    clearTimeout(s.timer);
    this.#sessions.delete(s.id);
    for (const r of ROLES) s.sockets[r]?.terminate();
  }

  /** WebSocket upgrades on /ws: refused with a plain HTTP answer before the handshake if anything is wrong. */
  #upgrade(req: IncomingMessage, socket: Duplex, head: Buffer): void {
    socket.on('error', () => socket.destroy());
    let session: Session;
    let role: Role;
    try {
      const url = new URL(req.url ?? '/', 'http://127.0.0.1');
      if (url.pathname !== '/ws') throw new HttpError(404, 'no such resource');
      session = this.#session(url);
      role = this.#role(url);
      if (session.sockets[role]) throw new HttpError(409, `the ${role} is connected already`);
    } catch (err) {
      const e = err instanceof HttpError ? err : new HttpError(400, 'bad request');
      const text = JSON.stringify({ error: e.message });
      socket.end(`HTTP/1.1 ${e.status} ${e.status === 404 ? 'Not Found' : e.status === 409 ? 'Conflict' : 'Bad Request'}\r\n`
        + `content-type: application/json\r\ncontent-length: ${Buffer.byteLength(text)}\r\nconnection: close\r\n\r\n${text}`);
      return;
    }
    this.#wss.handleUpgrade(req, socket, head, (ws) => {
      if (!this.#sessions.has(session.id) || session.sockets[role]) return ws.terminate();
      session.sockets[role] = ws;
      for (const text of session.queues[role].splice(0)) ws.send(text);
      // ws closes the connection itself on a bad or oversized frame (1002, 1009); without a listener the error would be thrown.
      ws.on('error', () => undefined);
      // The channel only pushes: what a client has to say goes over HTTP.
      ws.on('message', () => ws.close(1008, 'send over HTTP'));
      ws.on('close', () => {
        if (session.sockets[role] === ws) session.sockets[role] = undefined;
      });
    });
  }
}

/** `node signalling-server.js [port]`: serves until interrupted. */
if (process.argv[1] !== undefined && import.meta.url === pathToFileURL(process.argv[1]).href) {
  const port = Number(process.argv[2] ?? 8080);
  if (!Number.isInteger(port) || port < 0 || port > 65535) {
    console.error('usage: signalling-server [port]   (0..65535, 8080 by default; 0 picks a free one)');
    process.exit(2);
  }
  const server = await SignallingServer.start({ port });
  console.log(`signalling on ${server.url}`);
  process.once('SIGINT', () => void server.close());
}
