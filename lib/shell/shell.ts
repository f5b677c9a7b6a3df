/**
 * The shell around the sans-I/O core (lib/core/core.ts): what the core may
 * not touch — sockets, one timer, name lookups — all through a `Network`
 * (lib/transport/network.ts). It feeds the core every datagram with the
 * transport it came on, arms its one timer for the core's next deadline (and
 * the shell's own deadlines), hands the core's events to the Agent's
 * listeners one at a time, and opens or closes the links the core asks for.
 * The Agent (lib/agent.ts) is the API in front of it; gathering
 * (lib/shell/gather.ts), remote names (lib/shell/remote-names.ts), connect()
 * waiters (lib/shell/connect.ts) and ICE-TCP (lib/shell/ice-tcp.ts) are the
 * shell's other parts, each holding a reference to this one.
 */
import type { Agent } from '../agent.js';
import { logEnabled, logWrite, type Log, type LogLevel } from '../log.js';
import { IceCore, type CoreEvent } from '../core/core.js';
import { none, type ComponentState } from '../core/state.js';
import { LazyMap, LazySet } from '../core/lazy.js';
import { warmUp } from '../core/warmup.js';
import type { ResolvedOptions } from '../options.js';
import { ConnectionError, InvalidStateError, type ConnectionFailure } from '../errors.js';
import type { ComponentSocket } from '../socket.js';
import { MuxView } from '../transport/mux.js';
import { StreamFramer } from '../turn/framing.js';
import type { TransportAddress } from '../transport/address.js';
import type { DatagramSocket, Network, TimerHandle } from '../transport/network.js';
import { Connections } from './connect.js';
import { Gatherer } from './gather.js';
import { IceTcpShell, closeEntry, type SocketEntry } from './ice-tcp.js';
import { RemoteNames } from './remote-names.js';

/** The receive callback of `agent.attachRecv` (libnice's `nice_agent_attach_recv`). */
export type RecvCallback = (data: Buffer, from: { address: string; port: number }) => void;

/** Per component: the attachRecv callback and the open component sockets. */
export interface Receivers {
  callback: RecvCallback | undefined;
  sockets: LazySet<ComponentSocket>;
}

interface Deadline {
  at: number;
  fn: () => void;
}

export class Shell implements Log {
  readonly agent: Agent;
  readonly options: Readonly<ResolvedOptions>;
  readonly net: Network;
  readonly core: IceCore;
  readonly sockets = new LazyMap<number, SocketEntry>();
  /** Per stream, per component. */
  readonly receivers = new LazyMap<number, Array<Receivers | undefined>>();
  /** Sockets still being bound or connected: close() waits for them and closes what arrives. */
  #pending: LazySet<Promise<unknown>> | undefined;
  closed = false;
  /** The core's revision when `session-changed` last fired. */
  revision = 0;
  /** Set by close() while it waits for the core to finish (TURN deallocations). */
  closeDone: (() => void) | undefined;
  /** The shell's own deadlines (name lookups, connect() timeouts, the close grace), on the same one timer as the core's. */
  #deadlines: LazySet<Deadline> | undefined;
  /** Aborted at close(): connections being opened give up. Created on first use (most agents open none). */
  #abortController: AbortController | undefined;
  /** The shell's parts, each made on first use: a media server's lite agents never need most of them. */
  #gatherer: Gatherer | undefined;
  #names: RemoteNames | undefined;
  #connections: Connections | undefined;
  /** ICE-TCP listeners and connections. */
  #tcpShell: IceTcpShell | undefined;
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  #settling = false;
  #queue: CoreEvent[] = none();

  constructor(agent: Agent, options: Readonly<ResolvedOptions>) {
    this.agent = agent;
    this.options = options;
    this.net = options.network;
    warmUp();
    // The shell is the core's environment itself (CoreEnv: transmit, deliver, randomBytes, log): no
    // object and closures of their own per agent.
    this.core = new IceCore(options, this, this.net.now());
  }

  /** The agent's log: the shell itself (enabled, write), no object of its own per agent. */
  get log(): Log {
    return this;
  }

  /** Log: whether a line would go anywhere (the agent's logger and logLevel, or DEBUG). */
  enabled(module: string, level: Exclude<LogLevel, 'silent'>): boolean {
    return logEnabled(this.options.logger, this.options.logLevel, module, level);
  }

  /** Log: a line, with the agent's id in front. */
  write(module: string, level: Exclude<LogLevel, 'silent'>, text: string): void {
    logWrite(this.agent.id, this.options.logger, this.options.logLevel, module, level, text);
  }

  /** CoreEnv: application data from a checked source, to the component's sockets and receive callback. */
  deliver(streamId: number, componentId: number, data: Buffer, from: TransportAddress): boolean {
    const r = this.receivers.get(streamId)?.[componentId];
    if (!r) return false;
    if (r.sockets.size > 0) for (const sock of r.sockets) sock._deliver(data, from);
    if (r.callback) r.callback(data, from);
    return r.callback !== undefined || r.sockets.size > 0;
  }

  /** CoreEnv: transaction ids and credentials, from the network (a seeded one in the in-memory network). */
  randomBytes(n: number): Buffer {
    return this.net.randomBytes(n);
  }

  get gatherer(): Gatherer {
    return (this.#gatherer ??= new Gatherer(this));
  }

  /** A stream's gathering is done (or the stream went): with none left running, the part goes until the next one. */
  gatherDone(streamId: number): void {
    const g = this.#gatherer;
    if (!g) return;
    g.done(streamId);
    if (g.idle) this.#gatherer = undefined;
  }

  /** close(): every gathering resolves. */
  gatherEndAll(): void {
    this.#gatherer?.endAll();
    this.#gatherer = undefined;
  }

  get names(): RemoteNames {
    return (this.#names ??= new RemoteNames(this));
  }

  /** Whether remote names were ever looked at (the part exists). */
  get namesInUse(): boolean {
    return this.#names !== undefined;
  }

  get connections(): Connections {
    return (this.#connections ??= new Connections(this));
  }

  /** Tells component sockets and connect() waiters about a component's new state. */
  componentChanged(streamId: number, componentId: number, state: ComponentState, consentLost: boolean): void {
    const r = this.receivers.get(streamId)?.[componentId];
    const failure = state === 'failed'
      ? { componentId, reason: (consentLost ? 'consent-lost' : 'failed') as ConnectionFailure, message: consentLost ? 'consent lost (RFC 7675)' : 'every candidate pair failed' }
      : undefined;
    if (r) for (const sock of r.sockets) sock._state(state === 'ready', failure && new ConnectionError(streamId, componentId, failure.reason, failure.message));
    this.#connections?.settle(streamId, failure);
  }

  /** The stream or the agent went away: component sockets close, connect() waiters are told. */
  streamGone(streamId: number, reason: 'closed' | 'removed'): void {
    for (const r of this.receivers.get(streamId) ?? []) for (const sock of r?.sockets ?? []) sock._gone();
    this.#connections?.settle(streamId, { componentId: undefined, reason, message: reason === 'closed' ? 'the agent was closed' : 'the stream was removed' });
  }

  get abort(): AbortController {
    return (this.#abortController ??= new AbortController());
  }

  get tcp(): IceTcpShell {
    return (this.#tcpShell ??= new IceTcpShell(this));
  }

  /** Throws if the agent is closed: an API call that changes state. */
  open(): void {
    if (this.closed) throw new InvalidStateError('the agent is closed');
  }

  alive(streamId: number): boolean {
    return !this.closed && this.core.d.streams.has(streamId);
  }

  receiversOf(streamId: number, componentId: number): Receivers {
    const list = this.receivers.get(streamId)!;
    return (list[componentId] ??= { callback: undefined, sockets: new LazySet() });
  }

  /** A shared port routes new sources by the local ufrag: tell its views the stream's current (and previous) one. */
  refreshUfrags(streamId: number): void {
    if (!this.options.udpMux) return;
    const s = this.core.d.streams.get(streamId);
    if (!s) return;
    const ufrags = [s.local.ufrag, ...(s.previousLocal ? [s.previousLocal.ufrag] : [])];
    for (const sock of this.sockets.values()) {
      if (sock.streamId === streamId && sock.datagram instanceof MuxView) sock.datagram.setUfrags(ufrags);
    }
  }

  /** Remembers a promise of I/O until it settles (close() waits for them). */
  track<T>(p: Promise<T>): Promise<T> {
    // Made on first use and let go when empty, as the deadlines are: most agents are idle most of the time.
    (this.#pending ??= new LazySet()).add(p);
    const forget = () => {
      this.#pending?.delete(p);
      if (this.#pending?.size === 0) this.#pending = undefined;
    };
    p.then(forget, forget);
    return p;
  }

  // --------------------------------------------------------------- sockets

  transmit(id: number, to: TransportAddress, data: Uint8Array): boolean {
    const s = this.sockets.get(id);
    if (s?.datagram) return s.datagram.send(data, to);
    if (s?.framed) return s.framed.send(data);
    if (s?.stream) return s.stream.write(data);
    return false;
  }

  attachDatagram(id: number, streamId: number, sock: DatagramSocket): void {
    this.sockets.set(id, { datagram: sock, streamId });
    const core = this.core;
    const net = this.net;
    sock.onMessage((data, from) => {
      try {
        core.receive(id, from, data, net.now());
      } catch (err) {
        // The core never throws on network input; if it ever does, the datagram is lost, not the process.
        this.log.write('agent', 'error', `internal error on a datagram: ${(err as Error).stack}`);
      }
      if (core.dirty) this.settle();
    });
  }

  /** The core asked for a TCP/TLS link to a TURN server. */
  #openLink(e: Extract<CoreEvent, { type: 'open-link' }>): void {
    const connecting = this.track(this.net.connectStream({
      remote: e.remote,
      signal: this.abort.signal,
      ...(e.localAddress !== undefined ? { local: { address: e.localAddress } } : {}),
      ...(e.tls ? { tls: { servername: e.servername, ca: e.ca, rejectUnauthorized: e.rejectUnauthorized } } : {}),
    }));
    connecting.then((sock) => {
      if (this.closed || !this.core.d.transports.has(e.transportId)) {
        void sock.close();
        return;
      }
      const t = this.core.d.transports.get(e.transportId)!;
      this.sockets.set(e.transportId, { stream: sock, streamId: t.streamId });
      const framer = new StreamFramer();
      sock.onData((chunk) => {
        const ok = framer.push(chunk, (frame) => this.core.receive(e.transportId, e.remote, frame, this.net.now()));
        // Neither STUN nor ChannelData: the stream is out of step and cannot be resynchronised.
        if (!ok) void sock.close();
        this.settle();
      });
      sock.onClose((err) => {
        if (this.closed) return;
        this.sockets.delete(e.transportId);
        this.core.transportClosed(e.transportId, err ? err.message : 'connection closed', this.net.now());
        this.settle();
      });
      this.core.linkOpened(e.transportId, sock.local, this.net.now());
      this.settle();
    }, (err: NodeJS.ErrnoException) => {
      if (this.closed) return;
      const why = err.code === 'ECONNREFUSED' ? 'connection refused' : e.tls ? `TLS: ${err.message}` : err.message;
      this.core.transportClosed(e.transportId, why, this.net.now());
      this.settle();
    });
  }

  closeSocket(id: number): Promise<void> {
    const s = this.sockets.get(id);
    this.sockets.delete(id);
    if (!s) return Promise.resolve();
    return closeEntry(s);
  }

  // ------------------------------------------------------ the one timer

  /**
   * After every input: run what is due, hand the core's events to listeners
   * (one at a time, so that a listener that calls back into the agent sees a
   * consistent state and a throwing listener loses nothing), and re-arm the
   * one timer. Re-entrant calls (from listeners) return at once: the outer
   * call finishes the work.
   */
  settle(): void {
    if (this.#settling) return;
    this.#settling = true;
    // The core's next deadline, computed once per pass where nothing could have moved it since
    // (nextTimeout walks the whole state: with ten thousand agents it runs after every datagram).
    let next = NaN;
    try {
      for (;;) {
        const now = this.net.now();
        if (this.#deadlines !== undefined) {
          for (const dl of [...this.#deadlines]) {
            if (dl.at > now) continue;
            this.#forget(dl);
            dl.fn();
          }
        }
        next = this.core.nextTimeout();
        if (next <= now) {
          try {
            this.core.handleTimeout(now);
          } catch (err) {
            this.log.write('agent', 'error', `internal error in a timeout: ${(err as Error).stack}`);
          }
          next = NaN;
        }
        const fresh = this.core.takeEvents();
        // The core's array itself when nothing is queued (the usual case): no copy, no growth.
        if (this.#queue.length === 0) this.#queue = fresh;
        else if (fresh.length > 0) this.#queue.push(...fresh);
        if (this.#queue.length === 0) {
          if (!Number.isNaN(next)) break;
          next = this.core.nextTimeout();
          if (next > this.net.now()) break;
          continue;
        }
        const e = this.#queue.shift()!;
        // An emptied queue lets go of its array (grown for a burst of events, it would stay that size).
        if (this.#queue.length === 0) this.#queue = none();
        next = NaN;
        this.#dispatch(e);
      }
    } finally {
      this.#settling = false;
      this.core.dirty = false;
      this.#arm(next);
      if (this.closed) this.checkClosed();
      else if (this.core.d.revision !== this.revision) {
        this.revision = this.core.d.revision;
        this.agent.emit('session-changed');
      }
    }
  }

  #forget(dl: Deadline): void {
    this.#deadlines?.delete(dl);
    if (this.#deadlines?.size === 0) this.#deadlines = undefined;
  }

  /** I/O still under way (sockets being bound or connected): close() waits for them. */
  get pending(): Promise<unknown>[] {
    return this.#pending ? [...this.#pending] : [];
  }

  /** A deadline of the shell's own on the one timer; returns its cancellation. */
  after(ms: number, fn: () => void): () => void {
    const dl = { at: this.net.now() + ms, fn };
    (this.#deadlines ??= new LazySet()).add(dl);
    this.#arm();
    return () => {
      this.#forget(dl);
    };
  }

  /** `next`: the core's nextTimeout() if the caller has it, NaN if not. */
  #arm(next = NaN): void {
    const done = this.closed && this.core.closed;
    let at = done ? Infinity : Number.isNaN(next) ? this.core.nextTimeout() : next;
    if (this.#deadlines !== undefined) for (const dl of this.#deadlines) at = Math.min(at, dl.at);
    if (at === this.#timerAt) return;
    // A deadline that moved later (a lite agent's consent expiry, pushed back by every request
    // from the peer): the network moves the timer if it can (a step in the process's timer heap),
    // else the timer stays, fires early, finds nothing due and arms again — one wake-up per
    // timeout instead of a clearTimeout and a setTimeout per datagram.
    if (this.#timer !== undefined && at > this.#timerAt && !done) {
      if (at !== Infinity && this.net.moveTimer?.(this.#timer, at - this.net.now())) this.#timerAt = at;
      return;
    }
    if (this.#timer !== undefined) this.net.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#timerAt = at;
    if (at === Infinity) return;
    this.#timer = this.net.setTimer(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.settle();
    }, Math.max(0, at - this.net.now()));
  }

  /** The timer and the shell's deadlines go (close()). */
  stopTimer(): void {
    if (this.#timer !== undefined) this.net.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#timerAt = Infinity;
    this.#deadlines = undefined;
  }

  checkClosed(): void {
    if (this.core.closed && this.closeDone) {
      const done = this.closeDone;
      this.closeDone = undefined;
      done();
    }
  }

  #dispatch(e: CoreEvent): void {
    switch (e.type) {
      case 'open-link':
        this.#openLink(e);
        return;
      case 'open-tcp':
        this.tcp.open(e);
        return;
      case 'close-transport':
        void this.closeSocket(e.transportId);
        return;
      case 'source-authorized':
        this.sockets.get(e.transportId)?.datagram?.claim?.({ address: e.address, port: e.port });
        return;
    }
    if (this.closed) return;
    const agent = this.agent;
    switch (e.type) {
      case 'new-candidate': agent.emit('new-candidate', e.candidate); return;
      case 'candidate-gathering-done':
        agent.emit('candidate-gathering-done', e.streamId);
        this.gatherDone(e.streamId);
        return;
      case 'component-state-changed':
        agent.emit('component-state-changed', e.streamId, e.componentId, e.state);
        this.componentChanged(e.streamId, e.componentId, e.state,
          this.core.d.streams.get(e.streamId)?.components.get(e.componentId)?.consentLost ?? false);
        return;
      case 'new-selected-pair':
        // A new generation has its pair: the previous ufrag no longer reaches a shared port's view.
        this.refreshUfrags(e.streamId);
        agent.emit('new-selected-pair', e.streamId, e.componentId, e.local, e.remote);
        return;
      case 'initial-binding-request-received': agent.emit('initial-binding-request-received', e.streamId); return;
      case 'new-remote-candidate': agent.emit('new-remote-candidate', e.candidate); return;
      case 'consent-lost': agent.emit('consent-lost', e.streamId, e.componentId); return;
      case 'server-error': agent.emit('server-error', e.streamId, e.componentId, e.error); return;
    }
  }
}
