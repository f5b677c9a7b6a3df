/**
 * The ICE agent (RFC 8445; libnice's NiceAgent): the public API and its
 * events. Each call validates its arguments, hands the work to the sans-I/O
 * core (lib/core/core.ts) and lets the shell (lib/shell/shell.ts) do the I/O
 * that follows: the shell owns the sockets, the one timer and the name
 * lookups, and turns the core's events into this EventEmitter's events.
 */
import { EventEmitter } from 'node:events';
import type { Candidate } from './core/candidate.js';
import type { PairInfo, SelectedPair } from './core/core.js';
import { SessionError, verifySession, type SessionSnapshot } from './core/session.js';
import type { ComponentState, Credentials } from './core/state.js';
import { type AgentOptions, type ResolvedOptions, type TurnServer, resolveOptions, sharedOptions, validateTurnServer } from './options.js';
import type { AgentStats } from './stats.js';
import type { StreamStats } from './core/report.js';
import { InvalidArgumentError, InvalidStateError, type GatheringError, type ServerError } from './errors.js';
import { ComponentSocket } from './socket.js';
import { connectDtls as startDtls, type DtlsConnectOptions, type DtlsSocket } from './dtls/index.js';
import type { TransportAddress } from './transport/address.js';
import type { DatagramSocket } from './transport/network.js';
import { Shell, type RecvCallback } from './shell/shell.js';
import type { ConnectOptions } from './shell/connect.js';

export type { PairInfo, SelectedPair, RecvCallback, ConnectOptions };

/** The events, named after libnice's signals. */
export interface AgentEvents {
  /** A local candidate was gathered (libnice `new-candidate-full`); `candidate.streamId` says which stream. */
  'new-candidate': (candidate: Candidate) => void;
  /** Gathering of a stream finished (libnice `candidate-gathering-done`). */
  'candidate-gathering-done': (streamId: number) => void;
  /** libnice `component-state-changed`. */
  'component-state-changed': (streamId: number, componentId: number, state: ComponentState) => void;
  /** A nominated pair was selected for a component (libnice `new-selected-pair-full`). */
  'new-selected-pair': (streamId: number, componentId: number, local: Candidate, remote: Candidate) => void;
  /** The first authenticated check of the remote peer arrived on a stream (libnice `initial-binding-request-received`). */
  'initial-binding-request-received': (streamId: number) => void;
  /** A peer-reflexive remote candidate was learned from an incoming check (libnice `new-remote-candidate-full`). */
  'new-remote-candidate': (candidate: Candidate) => void;
  /** A STUN or TURN server failed (unreachable, refused, wrong credentials); gathering goes on without it. */
  'server-error': (streamId: number, componentId: number, error: ServerError) => void;
  /** RFC 7675: no response on the pair carrying data for `consentTimeout`; the component is now failed and sends nothing. */
  'consent-lost': (streamId: number, componentId: number) => void;
  /** A local address could not be used (binding failed); gathering goes on with the others. */
  'gathering-error': (streamId: number, componentId: number, error: GatheringError) => void;
  /** A remote candidate that parses but that this agent cannot use (TCP, an unresolved name, an unknown type). */
  'remote-candidate-skipped': (streamId: number, candidate: Candidate, reason: string) => void;
  /** What `exportSession()` would return has changed (candidates, selection, credentials, TURN state): store a new snapshot. */
  'session-changed': () => void;
}

export interface Agent {
  on<K extends keyof AgentEvents>(event: K, listener: AgentEvents[K]): this;
  once<K extends keyof AgentEvents>(event: K, listener: AgentEvents[K]): this;
  off<K extends keyof AgentEvents>(event: K, listener: AgentEvents[K]): this;
  emit<K extends keyof AgentEvents>(event: K, ...args: Parameters<AgentEvents[K]>): boolean;
}

/** close() waits this long at most for TURN servers to answer the deallocation, beyond their own bound. */
const CLOSE_GRACE_MS = 250;

let agentCount = 0;

export class Agent extends EventEmitter {
  readonly options: Readonly<ResolvedOptions>;
  /** The agent's name in its log lines (`name`, or `agent-N`). */
  readonly id: string;
  /** Sockets, the one timer and the rest of the I/O (lib/shell/). */
  readonly #sh: Shell;
  #closing: Promise<void> | undefined;

  constructor(options: AgentOptions = {}) {
    super();
    // EventEmitter's constructor gives every emitter a prototype-less dictionary of listeners, about
    // 180 bytes, listeners or not. Node's EventEmitter treats an undefined `_events` as "none yet" (the
    // prototype's own value) and makes the dictionary on the first on(): a media server's agents that
    // nobody listens to keep none.
    (this as unknown as { _events: unknown })._events = undefined;
    this.options = sharedOptions(resolveOptions(options));
    this.id = this.options.name ?? `agent-${++agentCount}`;
    this.#sh = new Shell(this, this.options);
    this.#sh.log.write('agent', 'debug', `created: ${this.options.iceLite ? 'lite' : 'full'}, ${this.options.controllingMode ? 'controlling' : 'controlled'}, ${this.options.nominationMode} nomination`);
  }

  /** Current role; it may flip on a role conflict (§7.3.1.1). */
  get controllingMode(): boolean {
    return this.#sh.core.d.controlling;
  }

  get closed(): boolean {
    return this.#sh.closed;
  }

  // ---------------------------------------------------------------- streams

  /** Adds a stream of `nComponents` components (1 = RTP, 2 = RTCP); returns its id (libnice `nice_agent_add_stream`). */
  addStream(nComponents = 1): number {
    const sh = this.#sh;
    sh.open();
    const id = sh.core.addStream(nComponents);
    sh.receivers.set(id, []);
    return id;
  }

  /** Removes a stream: its checks stop and its sockets close (libnice `nice_agent_remove_stream`). */
  removeStream(streamId: number): Promise<void> {
    const sh = this.#sh;
    sh.open();
    const hosts = sh.core.removeStream(streamId, sh.net.now());
    sh.streamGone(streamId, 'removed');
    sh.receivers.delete(streamId);
    sh.gatherDone(streamId);
    const closing = hosts.map((id) => sh.closeSocket(id));
    sh.settle();
    return Promise.all(closing).then(() => undefined);
  }

  getStreamIds(): number[] {
    this.#sh.open();
    return [...this.#sh.core.d.streams.keys()];
  }

  getLocalCredentials(streamId: number): Credentials {
    return { ...this.#sh.core.stream(streamId).local };
  }

  /** Replaces the generated local credentials (before checks start). RFC 8445 §5.3 sizes. */
  setLocalCredentials(streamId: number, ufrag: string, pwd: string): void {
    this.#sh.core.setLocalCredentials(streamId, ufrag, pwd);
    this.#sh.refreshUfrags(streamId);
  }

  /**
   * Sets the remote credentials. New values on a stream whose current ones
   * were already used are an ICE restart by the peer (RFC 8445 §9): unless
   * this agent restarted the stream itself first (`restartStream`), it
   * restarts too, with new local credentials that the application must signal
   * back (read them with `getLocalCredentials`).
   */
  setRemoteCredentials(streamId: number, ufrag: string, pwd: string): void {
    const sh = this.#sh;
    sh.core.setRemoteCredentials(streamId, ufrag, pwd, sh.net.now());
    sh.refreshUfrags(streamId);
    sh.settle();
  }

  getRemoteCredentials(streamId: number): Credentials | undefined {
    const r = this.#sh.core.stream(streamId).remote;
    return r ? { ...r } : undefined;
  }

  /**
   * ICE restart of one stream (RFC 8445 §9; libnice `nice_agent_restart_stream`):
   * new local credentials, a fresh checklist, remote candidates forgotten. Data
   * keeps flowing on the current selected pair until the new generation
   * nominates its own. Checks start again once the remote's new credentials arrive.
   */
  restartStream(streamId: number): void {
    const sh = this.#sh;
    sh.core.restartStream(streamId, sh.net.now());
    sh.refreshUfrags(streamId);
    sh.settle();
  }

  /** Restarts every stream (libnice `nice_agent_restart`). */
  restart(): void {
    const sh = this.#sh;
    sh.open();
    for (const id of sh.core.d.streams.keys()) {
      sh.core.restartStream(id, sh.net.now());
      sh.refreshUfrags(id);
    }
    sh.settle();
  }

  /**
   * The peer has no more candidates for this stream (RFC 8838 §8 end-of-candidates;
   * libnice `nice_agent_peer_candidate_gathering_done`). With trickle, components
   * can fail only after this.
   */
  peerCandidateGatheringDone(streamId: number): void {
    const sh = this.#sh;
    sh.core.stream(streamId);
    if (sh.namesInUse && sh.names.deferEndOfCandidates(streamId)) return;
    sh.core.peerCandidateGatheringDone(streamId, sh.net.now());
    sh.settle();
  }

  // -------------------------------------------------------------- gathering

  /**
   * Gathers candidates (RFC 8445 §5.1.1): host candidates on one UDP socket per
   * local address per component, announced at once; then server-reflexive and
   * relayed ones. `new-candidate` fires for each, then `candidate-gathering-done`;
   * the promise resolves then — or when the stream is removed or the agent closed.
   */
  gatherCandidates(streamId: number): Promise<void> {
    return this.#sh.gatherer.gather(streamId);
  }

  /**
   * A TURN server for one component, in addition to the agent's `turnServers`
   * (libnice `nice_agent_set_relay_info`). Takes effect at the next gathering.
   */
  setRelayInfo(streamId: number, componentId: number, server: TurnServer): void {
    const c = this.#sh.core.component(streamId, componentId);
    c.relayServers = [...c.relayServers, validateTurnServer(server, 'server')];
  }

  getLocalCandidates(streamId: number, componentId: number): Candidate[] {
    return this.#sh.core.localCandidates(streamId, componentId);
  }

  getRemoteCandidates(streamId: number, componentId: number): Candidate[] {
    return this.#sh.core.remoteCandidates(streamId, componentId);
  }

  // ------------------------------------------------------ remote candidates

  /**
   * Adds remote candidates (objects or RFC 8839 strings) and pairs them with
   * the local ones (libnice `nice_agent_set_remote_candidates`). Everything is
   * validated first: a malformed element throws and nothing is added.
   * Candidates that parse but cannot be used here (TCP, unresolved names,
   * unknown types) are skipped. Returns the number added.
   */
  setRemoteCandidates(streamId: number, componentId: number, candidates: ReadonlyArray<Candidate | string>): number {
    if (!Array.isArray(candidates)) throw new InvalidArgumentError('candidates', 'must be an array');
    const sh = this.#sh;
    const r = sh.core.addRemoteCandidates(streamId, componentId, candidates, 'candidates', sh.net.now());
    if (r.skipped.length > 0) sh.names.skipped(streamId, r.skipped);
    sh.settle();
    return r.added;
  }

  /** Adds one remote candidate (e.g. trickled); true when it was added. */
  addRemoteCandidate(streamId: number, candidate: Candidate | string): boolean {
    const sh = this.#sh;
    const r = sh.core.addRemoteCandidates(streamId, undefined, [candidate], 'candidate', sh.net.now());
    if (r.skipped.length > 0) sh.names.skipped(streamId, r.skipped);
    sh.settle();
    return r.added === 1;
  }

  // ------------------------------------------------------------- data path

  /**
   * Sends a datagram on the component's selected pair, or before nomination on
   * its best valid pair (as libnice does). Returns false when there is no pair
   * to send on yet, or the datagram cannot go.
   */
  send(streamId: number, componentId: number, data: Buffer | Uint8Array): boolean {
    const sh = this.#sh;
    if (!(data instanceof Uint8Array)) {
      sh.core.component(streamId, componentId);
      throw new InvalidArgumentError('data', 'must be a Buffer or Uint8Array');
    }
    const ok = sh.core.send(streamId, componentId, data, sh.net.now());
    if (sh.core.dirty) sh.settle();
    return ok;
  }

  /**
   * Sets the receive callback of a component (libnice `nice_agent_attach_recv`);
   * `undefined` detaches it. Only data from a remote address that passed a
   * connectivity check reaches it.
   */
  attachRecv(streamId: number, componentId: number, callback: RecvCallback | undefined): void {
    this.#sh.core.component(streamId, componentId);
    if (callback !== undefined && typeof callback !== 'function') {
      throw new InvalidArgumentError('callback', 'must be a function or undefined');
    }
    this.#sh.receiversOf(streamId, componentId).callback = callback;
  }

  /**
   * A socket on a component (libnice `nice_agent_get_io_stream`): `send`,
   * `'message'`, `close()`, `address()`/`remoteAddress()` of the selected
   * pair, as a connected `dgram.Socket`; also an async iterator of datagrams.
   * Any number may be open on one component, beside `attachRecv`.
   */
  createSocket(streamId: number, componentId: number): ComponentSocket {
    const sh = this.#sh;
    sh.core.component(streamId, componentId);
    const r = sh.receiversOf(streamId, componentId);
    const sock = new ComponentSocket(streamId, componentId, {
      send: (data) => !sh.closed && sh.core.d.streams.has(streamId) && this.send(streamId, componentId, data),
      selected: () => (sh.closed || !sh.core.d.streams.has(streamId) ? undefined : this.getSelectedPair(streamId, componentId)),
      detach: (s) => r.sockets.delete(s),
    });
    r.sockets.add(sock);
    return sock;
  }

  /**
   * A DTLS 1.2 client (PSK, node-dtls-client) on the component's selected
   * pair, through a component socket; resolves with the connected DtlsSocket,
   * rejects with a DtlsError naming the cause (lib/dtls/).
   */
  connectDtls(streamId: number, componentId: number, options: DtlsConnectOptions): Promise<DtlsSocket> {
    if (this.#sh.closed) throw new InvalidStateError('the agent is closed');
    return startDtls(this, streamId, componentId, options);
  }

  /**
   * Resolves with the selected pair of every component of the stream once all
   * are ready; rejects with a ConnectionError naming the component and the
   * reason if one fails or loses consent, on abort, on timeout, or when the
   * stream or the agent goes away. Starts nothing: gathering and signalling
   * are the application's.
   */
  connect(streamId: number, opts: ConnectOptions = {}): Promise<SelectedPair[]> {
    return this.#sh.connections.connect(streamId, opts);
  }

  /**
   * Renomination (option `renomination`, draft-thatcher-ice-renomination):
   * the controlling agent nominates another valid pair — the one between
   * these candidates' addresses, or by default the best valid one — and data
   * moves to it once it is selected (`new-selected-pair`), with no ICE
   * restart. False when there is no such pair or renomination does not apply.
   */
  renominate(streamId: number, componentId: number, between?: { local: TransportAddress; remote: TransportAddress }): boolean {
    const sh = this.#sh;
    const ok = sh.core.renominate(streamId, componentId, sh.net.now(), between);
    sh.settle();
    return ok;
  }

  getSelectedPair(streamId: number, componentId: number): SelectedPair | undefined {
    return this.#sh.core.selectedPair(streamId, componentId);
  }

  /** The stream's checklist and valid list, highest priority first. */
  getPairs(streamId: number): PairInfo[] {
    return this.#sh.core.pairs(streamId);
  }

  getComponentState(streamId: number, componentId: number): ComponentState {
    return this.#sh.core.componentState(streamId, componentId);
  }

  /**
   * A snapshot of the agent's counters (every dropped packet by reason) and,
   * per stream and component, W3C-style stats of every candidate pair and
   * candidate. JSON-safe.
   */
  getStats(): AgentStats & { streams: StreamStats[] } {
    return this.#sh.core.stats();
  }

  // --------------------------------------------------------------- session

  /**
   * The live session as a JSON-safe, versioned snapshot: role and tie-breaker,
   * every stream's credentials (both generations during a restart), local and
   * remote candidates with their bases and ports, the checklist and valid
   * list, selected pairs, TURN allocations (5-tuple, realm, nonce, lifetime
   * left, permissions, channels). It holds the session's passwords: store it
   * like one. With `key`, it carries an HMAC-SHA256 that `restore` checks.
   * `session-changed` says when it is worth storing again.
   */
  exportSession(opts: { key?: string | Buffer } = {}): SessionSnapshot {
    const sh = this.#sh;
    sh.open();
    return sh.core.exportSession(sh.net.now(), opts.key);
  }

  /**
   * Resumes an exported session in this process: binds the same local ports
   * (a SessionError naming the port when one cannot be had, and nothing left
   * bound), re-creates the state without gathering and without checks, and
   * resumes consent at once: data flows again with no ICE restart and no
   * signalling. TURN allocations over UDP go on (same 5-tuple) and are
   * refreshed. A snapshot of another version, corrupted or tampered: a
   * SessionError, nothing bound.
   */
  static async restore(snapshot: unknown, options: AgentOptions & { sessionKey?: string | Buffer } = {}): Promise<Agent> {
    const { sessionKey, ...rest } = options;
    const snap = verifySession(snapshot, sessionKey);
    const agent = new Agent({ ...rest, controllingMode: snap.controlling });
    const sh = agent.#sh;
    const bound: Array<[number, number, DatagramSocket]> = [];
    try {
      for (const t of snap.transports) {
        if (t.kind !== 'host') continue;
        try {
          bound.push([t.id, t.streamId, await sh.net.bindDatagram(t.local.address, t.local.port)]);
        } catch (err) {
          throw new SessionError('bind', `cannot bind ${t.local.address}:${t.local.port} again: ${(err as Error).message}`, t.local);
        }
      }
    } catch (err) {
      await Promise.all(bound.map(([, , s]) => s.close()));
      await agent.close();
      throw err;
    }
    sh.core.importSession(snap, sh.net.now());
    for (const s of snap.streams) sh.receivers.set(s.id, []);
    for (const [id, streamId, sock] of bound) sh.attachDatagram(id, streamId, sock);
    sh.revision = sh.core.d.revision;
    sh.settle();
    return agent;
  }

  // ----------------------------------------------------------------- close

  /**
   * Stops every check and timer and closes every socket; resolves when they
   * are gone. Events stop at once. TURN allocations are released first
   * (Refresh with lifetime 0, RFC 8656 §7.3), waiting at most
   * min(serverTimeout, 1 s) for the servers' answers — unless `release` is
   * false: a session exported for another process keeps its allocations.
   */
  close(opts: { release?: boolean } = {}): Promise<void> {
    if (this.#closing) return this.#closing;
    const sh = this.#sh;
    sh.closed = true;
    sh.gatherEndAll();
    for (const id of sh.receivers.keys()) sh.streamGone(id, 'closed');
    sh.receivers.clear();
    sh.core.close(sh.net.now(), opts.release ?? true);
    this.#closing = (async () => {
      sh.settle();
      if (!sh.core.closed) {
        // The allocations end by themselves within their bound; the grace deadline is a backstop.
        await new Promise<void>((resolve) => {
          const cancel = sh.after(Math.min(this.options.serverTimeout, 1000) + CLOSE_GRACE_MS, resolve);
          sh.closeDone = () => {
            cancel();
            resolve();
          };
          sh.checkClosed();
        });
      }
      sh.stopTimer();
      sh.abort.abort(); // made now if it was not: a shell part created after close() gets it aborted
      // Sockets still being bound or connected are closed when they arrive (the code awaiting them sees `closed`).
      await Promise.allSettled(sh.pending);
      await Promise.all([...sh.sockets.keys()].map((id) => sh.closeSocket(id)));
      if (sh.namesInUse) await sh.names.close();
    })();
    return this.#closing;
  }
}
