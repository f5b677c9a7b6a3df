/**
 * What the core's modules share: the state, the options, the current role,
 * the time of the input being handled, the environment (the only way out:
 * transmit, deliver, randomness) and the queue of events for the shell. Plus
 * the small primitives every module uses: candidate lookups, component state
 * changes, sending through a transport (a relayed one wraps for its TURN server).
 */
import type { ResolvedOptions } from '../options.js';
import type { Log, LogLevel } from '../log.js';
import { addressKey, isAddressKey, type TransportAddress } from '../transport/address.js';
import type { ServerError } from '../errors.js';
import type { AllocationEvent, AllocationIo } from '../turn/allocation.js';
import { copyCandidate, type Candidate } from './candidate.js';
import type { Role } from './nomination.js';
import type {
  AllocationRecord, ComponentData, ComponentState, CoreData, LocalCand, Pair, RemoteCand, StreamData,
} from './state.js';
import { countDrop } from '../stats.js';


/** The core's only ways to the outside world. */
export interface CoreEnv {
  /** Sends bytes on a host socket or a TCP/TLS link; false when they certainly cannot go. */
  transmit(transportId: number, to: TransportAddress, data: Uint8Array): boolean;
  /** Application data from a checked source; false when nobody takes it (no receive callback). */
  deliver(streamId: number, componentId: number, data: Buffer, from: TransportAddress): boolean;
  randomBytes(n: number): Buffer;
  /** Where the core's log lines go (lib/log.ts): the agent's id is in front of each. */
  log: Log;
}

/** What the core tells the shell; the first eight are the agent's public events. */
export type CoreEvent =
  | { type: 'new-candidate'; candidate: Candidate }
  | { type: 'candidate-gathering-done'; streamId: number }
  | { type: 'component-state-changed'; streamId: number; componentId: number; state: ComponentState }
  | { type: 'new-selected-pair'; streamId: number; componentId: number; local: Candidate; remote: Candidate }
  | { type: 'initial-binding-request-received'; streamId: number }
  | { type: 'new-remote-candidate'; candidate: Candidate }
  | { type: 'consent-lost'; streamId: number; componentId: number }
  | { type: 'server-error'; streamId: number; componentId: number; error: ServerError }
  /** Open a TCP (or TLS) connection to a TURN server for transport `transportId`; answer with linkOpened/linkFailed. */
  | { type: 'open-link'; transportId: number; remote: TransportAddress; localAddress: string | undefined; tls: boolean; servername: string | undefined; ca: string | Buffer | Array<string | Buffer> | undefined; rejectUnauthorized: boolean | undefined }
  /**
   * ICE-TCP (RFC 6544 §7.1): open a TCP connection from `localAddress` to
   * `remote` for transport `transportId` (a pair's check needs it), framed
   * with RFC 4571; answer with tcpOpened, or transportClosed if it fails.
   */
  | { type: 'open-tcp'; transportId: number; localAddress: string; remote: TransportAddress }
  /** A remote address passed authentication on a transport (a shared socket learns its route from this). */
  | { type: 'source-authorized'; transportId: number; address: string; port: number }
  /** The core no longer needs this transport (a link whose allocation is gone, an ICE-TCP connection it let go). */
  | { type: 'close-transport'; transportId: number };

export interface Ctx {
  readonly o: Readonly<ResolvedOptions>;
  readonly d: CoreData;
  readonly env: CoreEnv;
  role: Role;
  /** The time of the input being handled. */
  now: number;
  readonly events: CoreEvent[];
  /** Retransmission waits of a connectivity check (RFC 8489 §6.2.1 with the agent's timeouts). */
  readonly waits: readonly number[];
}

export { append } from './state.js';

export function nextId(ctx: Ctx): number {
  return ctx.d.nextId++;
}

/** A number in [0, 1) from the environment's randomness. */
export function random(ctx: Ctx): number {
  return ctx.env.randomBytes(4).readUInt32BE(0) / 0x100000000;
}

/** RFC 8445 §5.3 ice-chars: ALPHA / DIGIT / "+" / "/". */
const ICE_CHARS = 'ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/';

export function randomIceString(ctx: Ctx, length: number): string {
  const bytes = ctx.env.randomBytes(length);
  let s = '';
  for (let i = 0; i < length; i++) s += ICE_CHARS[bytes[i]! & 63];
  return s;
}

// Loops rather than find(): on the path of every request, response and data packet (a find's closure is an allocation).

export function localById(c: ComponentData, id: number): LocalCand | undefined {
  for (const x of c.local) if (x.id === id) return x;
  return undefined;
}

export function remoteById(c: ComponentData, id: number): RemoteCand | undefined {
  for (const x of c.remote) if (x.id === id) return x;
  for (const x of c.retired) if (x.id === id) return x;
  return undefined;
}

export function findRemote(c: ComponentData, protocol: string, address: string, port: number): RemoteCand | undefined {
  for (const x of c.remote) if (x.c.port === port && x.c.address === address && x.c.transport === protocol) return x;
  return undefined;
}

export function findLocal(c: ComponentData, address: string, port: number): LocalCand | undefined {
  for (const x of c.local) if (x.c.port === port && x.c.address === address) return x;
  return undefined;
}

/** The source proved it knows our password (or answered our check): it may send data on this transport. */
export function authorize(ctx: Ctx, c: ComponentData, transportId: number, address: string, port: number): void {
  // Every answered request asks: the usual answer (the one source there is) is read without making its key.
  const one = c.authorized.single;
  if (one !== undefined && isAddressKey(one, address, port)) return;
  const key = addressKey(address, port);
  if (c.authorized.has(key)) return;
  // Bounded like the remote candidates it stands beside: a credentialed peer checking from thousands of
  // ports cannot grow it (the sources of signalled and learned candidates fit, twice over).
  if (c.authorized.size >= 2 * ctx.o.maxRemoteCandidates) {
    countDrop(ctx.d.stats, 'tableFull');
    return;
  }
  c.authorized.add(key);
  // A shared socket (UdpMux) routes this source to us from now on.
  ctx.events.push({ type: 'source-authorized', transportId, address, port });
}

/** Forgets who may send data (the component failed or restarted). */
export function resetAuthorization(c: ComponentData): void {
  c.authorized.clear();
  c.lastSrcAddress = '';
  c.lastSrcPort = -1;
}

export function emit(ctx: Ctx, e: CoreEvent): void {
  if (ctx.d.closing) return;
  // What a session export holds changed: candidates, the selected pair, states.
  if (e.type === 'new-candidate' || e.type === 'new-selected-pair' || e.type === 'new-remote-candidate' || e.type === 'component-state-changed') {
    ctx.d.revision++;
  }
  ctx.events.push(e);
}

/**
 * A log line of `module` (its `debug` namespace). `text` may be a function,
 * called only when the line goes somewhere: trace lines are built on the
 * checks' path and should cost nothing when nobody reads them.
 */
export function log(ctx: Ctx, module: string, level: Exclude<LogLevel, 'silent'>, text: string | (() => string)): void {
  if (!ctx.env.log.enabled(module, level)) return;
  ctx.env.log.write(module, level, typeof text === 'string' ? text : text());
}

export function setState(ctx: Ctx, s: StreamData, c: ComponentData, state: ComponentState, reason?: string): void {
  if (c.state === state) return;
  log(ctx, 'agent', state === 'failed' ? 'warn' : 'info',
    () => `stream ${s.id} component ${c.id}: ${c.state} -> ${state}${reason ? ` (${reason})` : ''}`);
  c.state = state;
  emit(ctx, { type: 'component-state-changed', streamId: s.id, componentId: c.id, state });
}

export function publicCandidate(s: StreamData, l: LocalCand): Candidate {
  return { ...copyCandidate(l.c), streamId: s.id };
}

/** The streams in order: the checklist set (§6.1.2). */
export function streamSet(ctx: Ctx): StreamData[] {
  return [...ctx.d.streams.values()];
}

/** Runs `fn` against an allocation and handles the events it emitted after it returned (never re-entering it). */
export function withAllocation<T>(ctx: Ctx, rec: AllocationRecord, fn: (io: AllocationIo) => T, onEvent: (e: AllocationEvent) => void): T {
  const events: AllocationEvent[] = [];
  const server = rec.machine.config.server;
  const io: AllocationIo = {
    now: ctx.now,
    send: (data) => {
      ctx.env.transmit(rec.linkId, server, data);
    },
    randomBytes: (n) => ctx.env.randomBytes(n),
    emit: (e) => events.push(e),
  };
  const out = fn(io);
  for (const e of events) onEvent(e);
  return out;
}

/** The pair's candidates, or undefined if either is gone. */
export function pairCandidates(c: ComponentData, p: Pair): { local: LocalCand; remote: RemoteCand } | undefined {
  const local = localById(c, p.localId);
  const remote = remoteById(c, p.remoteId);
  return local && remote ? { local, remote } : undefined;
}
