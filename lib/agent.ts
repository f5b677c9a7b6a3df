/**
 * The ICE agent (RFC 8445; libnice's NiceAgent): the public API and events,
 * and the shell around the sans-I/O core (lib/core/core.ts). The shell owns
 * what the core may not touch — sockets, one timer, name lookups — all
 * through a `Network` (lib/transport/network.ts): it binds the host sockets,
 * feeds the core every datagram with the transport it came on, arms its one
 * timer for the core's next deadline, turns the core's events into
 * EventEmitter events, and opens or closes the links the core asks for.
 */
import { LazyMap, LazySet } from './core/lazy.js';
import { EventEmitter } from 'node:events';
import { AgentLog } from './log.js';
import type { Candidate } from './core/candidate.js';
import { IceCore, type CoreEvent, type PairInfo, type SelectedPair } from './core/core.js';
import { warmUp } from './core/warmup.js';
import { SessionError, verifySession, type SessionSnapshot } from './core/session.js';
import type { ComponentState, Credentials } from './core/state.js';
import { type AgentOptions, type ResolvedOptions, type TurnServer, resolveOptions, validateTurnServer } from './options.js';
import type { AgentStats } from './stats.js';
import type { StreamStats } from './core/report.js';
import {
  ConnectionError, GatheringError, InvalidArgumentError, InvalidStateError, type ConnectionFailure, type ServerError,
} from './errors.js';
import { ComponentSocket } from './socket.js';
import { connectDtls as startDtls, type DtlsConnectOptions, type DtlsSocket } from './dtls/index.js';
import { MuxView } from './transport/mux.js';
import { bindHost, hostAddresses } from './gather/host.js';
import { planServers, type TurnServerEntry } from './gather/servers.js';
import { MulticastDnsResolver, isMdnsName, type MdnsResolver } from './gather/mdns.js';
import { nodeNetwork } from './transport/node-network.js';
import { StreamFramer } from './turn/framing.js';
import type { TransportAddress } from './transport/address.js';
import type { DatagramSocket, Network, TimerHandle } from './transport/network.js';
import { IceTcpShell, closeEntry, type SocketEntry } from './ice-tcp.js';


export type { PairInfo, SelectedPair };

/** The receive callback of `agent.attachRecv` (libnice's `nice_agent_attach_recv`). */
export type RecvCallback = (data: Buffer, from: { address: string; port: number }) => void;

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

interface Receivers {
  callback: RecvCallback | undefined;
  sockets: Set<ComponentSocket>;
}

interface ConnectWaiter {
  streamId: number;
  /** Settles the promise if the stream is ready or `failure` is given. */
  check(failure?: { componentId: number | undefined; reason: ConnectionFailure; message: string }): void;
}

export interface ConnectOptions {
  /** Aborting rejects the promise (reason `aborted`); the session itself goes on. */
  signal?: AbortSignal;
  /** Reject (reason `timeout`) if not every component is ready within this many ms. */
  timeout?: number;
}

interface Gathering {
  promise: Promise<void>;
  resolve: () => void;
}

let agentCount = 0;

export class Agent extends EventEmitter {
  readonly options: Readonly<ResolvedOptions>;
  /** The agent's name in its log lines (`name`, or `agent-N`). */
  readonly id: string;
  readonly #log: AgentLog;
  readonly #net: Network;
  readonly #core: IceCore;
  readonly #sockets = new Map<number, SocketEntry>();
  /** Per stream, per component: the attachRecv callback and the open component sockets. */
  readonly #receivers = new Map<number, Array<Receivers | undefined>>();
  readonly #connects = new LazySet<ConnectWaiter>();
  readonly #gatherings = new LazyMap<number, Gathering>();
  /** Sockets still being bound or connected: close() waits for them and closes what arrives. */
  readonly #pending = new LazySet<Promise<unknown>>();
  /** The mDNS resolver this agent created (closed with it). */
  #mdns: MulticastDnsResolver | undefined;
  /** mDNS resolutions under way per stream, and the end-of-candidates that wait for them. */
  readonly #mdnsPending = new LazyMap<number, number>();
  readonly #deferredEoc = new LazySet<number>();
  /** Aborted at close(): connections being opened give up. Created on first use (most agents open none). */
  #abortController: AbortController | undefined;
  /** The shell's own deadlines (name lookups, the close grace), armed on the same one timer as the core's. */
  readonly #deadlines = new LazySet<{ at: number; fn: () => void }>();
  /** ICE-TCP listeners and connections (lib/ice-tcp.ts). */
  #tcpShell: IceTcpShell | undefined;
  #timer: TimerHandle | undefined;
  #timerAt = Infinity;
  #settling = false;
  #queue: CoreEvent[] = [];
  #closed = false;
  /** The core's revision when `session-changed` last fired. */
  #revision = 0;
  #closing: Promise<void> | undefined;
  #closeDone: (() => void) | undefined;

  constructor(options: AgentOptions = {}) {
    super();
    this.options = Object.freeze(resolveOptions(options));
    this.#net = this.options.network;
    this.id = this.options.name ?? `agent-${++agentCount}`;
    this.#log = new AgentLog(this.id, this.options.logger, this.options.logLevel);
    warmUp();
    this.#core = new IceCore(this.options, {
      transmit: (id, to, data) => this.#transmit(id, to, data),
      deliver: (s, c, data, from) => {
        const r = this.#receivers.get(s)?.[c];
        if (!r) return false;
        if (r.sockets.size > 0) for (const sock of r.sockets) sock._deliver(data, from);
        if (r.callback) r.callback(data, from);
        return r.callback !== undefined || r.sockets.size > 0;
      },
      randomBytes: (n) => this.#net.randomBytes(n),
      log: this.#log,
    }, this.#net.now());
    this.#log.write('agent', 'debug', `created: ${this.options.iceLite ? 'lite' : 'full'}, ${this.options.controllingMode ? 'controlling' : 'controlled'}, ${this.options.nominationMode} nomination`);
  }

  get #abort(): AbortController {
    return (this.#abortController ??= new AbortController());
  }

  /** The ICE-TCP glue (lib/ice-tcp.ts), made when TCP is first used: per agent, it would cost memory for nothing. */
  get #tcp(): IceTcpShell {
    return (this.#tcpShell ??= new IceTcpShell({
      core: this.#core, net: this.#net, log: this.#log, sockets: this.#sockets, signal: this.#abort.signal,
      closed: () => this.#closed, alive: (id) => this.#alive(id), settle: () => this.#settle(), track: (p) => this.#track(p),
      bindFailed: (s, c, a, e) => this.#bindFailed(s, c, a, e),
    }));
  }

  /** Current role; it may flip on a role conflict (§7.3.1.1). */
  get controllingMode(): boolean {
    return this.#core.d.controlling;
  }

  get closed(): boolean {
    return this.#closed;
  }

  // ---------------------------------------------------------------- streams

  /** Adds a stream of `nComponents` components (1 = RTP, 2 = RTCP); returns its id (libnice `nice_agent_add_stream`). */
  addStream(nComponents = 1): number {
    this.#open();
    const id = this.#core.addStream(nComponents);
    this.#receivers.set(id, []);
    return id;
  }

  /** Removes a stream: its checks stop and its sockets close (libnice `nice_agent_remove_stream`). */
  removeStream(streamId: number): Promise<void> {
    this.#open();
    const hosts = this.#core.removeStream(streamId, this.#net.now());
    this.#streamGone(streamId, 'removed');
    this.#receivers.delete(streamId);
    this.#gatherings.get(streamId)?.resolve();
    this.#gatherings.delete(streamId);
    const closing = hosts.map((id) => this.#closeSocket(id));
    this.#settle();
    return Promise.all(closing).then(() => undefined);
  }

  getStreamIds(): number[] {
    this.#open();
    return [...this.#core.d.streams.keys()];
  }

  getLocalCredentials(streamId: number): Credentials {
    return { ...this.#core.stream(streamId).local };
  }

  /** Replaces the generated local credentials (before checks start). RFC 8445 §5.3 sizes. */
  setLocalCredentials(streamId: number, ufrag: string, pwd: string): void {
    this.#core.setLocalCredentials(streamId, ufrag, pwd);
    this.#refreshUfrags(streamId);
  }

  /**
   * Sets the remote credentials. New values on a stream whose current ones
   * were already used are an ICE restart by the peer (RFC 8445 §9): unless
   * this agent restarted the stream itself first (`restartStream`), it
   * restarts too, with new local credentials that the application must signal
   * back (read them with `getLocalCredentials`).
   */
  setRemoteCredentials(streamId: number, ufrag: string, pwd: string): void {
    this.#core.setRemoteCredentials(streamId, ufrag, pwd, this.#net.now());
    this.#refreshUfrags(streamId);
    this.#settle();
  }

  /** A shared port routes new sources by the local ufrag: tell its views the stream's current (and previous) one. */
  #refreshUfrags(streamId: number): void {
    if (!this.options.udpMux) return;
    const s = this.#core.d.streams.get(streamId);
    if (!s) return;
    const ufrags = [s.local.ufrag, ...(s.previousLocal ? [s.previousLocal.ufrag] : [])];
    for (const sock of this.#sockets.values()) {
      if (sock.streamId === streamId && sock.datagram instanceof MuxView) sock.datagram.setUfrags(ufrags);
    }
  }

  getRemoteCredentials(streamId: number): Credentials | undefined {
    const r = this.#core.stream(streamId).remote;
    return r ? { ...r } : undefined;
  }

  /**
   * ICE restart of one stream (RFC 8445 §9; libnice `nice_agent_restart_stream`):
   * new local credentials, a fresh checklist, remote candidates forgotten. Data
   * keeps flowing on the current selected pair until the new generation
   * nominates its own. Checks start again once the remote's new credentials arrive.
   */
  restartStream(streamId: number): void {
    this.#core.restartStream(streamId, this.#net.now());
    this.#refreshUfrags(streamId);
    this.#settle();
  }

  /** Restarts every stream (libnice `nice_agent_restart`). */
  restart(): void {
    this.#open();
    for (const id of this.#core.d.streams.keys()) {
      this.#core.restartStream(id, this.#net.now());
      this.#refreshUfrags(id);
    }
    this.#settle();
  }

  /**
   * The peer has no more candidates for this stream (RFC 8838 §8 end-of-candidates;
   * libnice `nice_agent_peer_candidate_gathering_done`). With trickle, components
   * can fail only after this.
   */
  peerCandidateGatheringDone(streamId: number): void {
    this.#core.stream(streamId);
    if ((this.#mdnsPending.get(streamId) ?? 0) > 0) {
      this.#deferredEoc.add(streamId);
      return;
    }
    this.#core.peerCandidateGatheringDone(streamId, this.#net.now());
    this.#settle();
  }

  // -------------------------------------------------------------- gathering

  /**
   * Gathers candidates (RFC 8445 §5.1.1): host candidates on one UDP socket per
   * local address per component, announced at once; then server-reflexive and
   * relayed ones. `new-candidate` fires for each, then `candidate-gathering-done`;
   * the promise resolves then — or when the stream is removed or the agent closed.
   */
  gatherCandidates(streamId: number): Promise<void> {
    const stream = this.#core.stream(streamId);
    const existing = this.#gatherings.get(streamId);
    if (existing) return existing.promise;
    // A restored session (Agent.restore) has its candidates already.
    if (stream.gathering === 'complete') return Promise.resolve();
    let resolve!: () => void;
    const promise = new Promise<void>((r) => (resolve = r));
    this.#gatherings.set(streamId, { promise, resolve });
    this.#gather(streamId).catch((err: unknown) => {
      this.#log.write('gather', 'error', `gathering of stream ${streamId} ended: ${(err as Error).message}`);
      resolve();
    });
    return promise;
  }

  #alive(streamId: number): boolean {
    return !this.#closed && this.#core.d.streams.has(streamId);
  }

  async #gather(streamId: number): Promise<void> {
    this.#core.beginGathering(streamId);
    this.#settle();
    const o = this.options;
    const components = [...this.#core.stream(streamId).components.keys()];
    // On a mux, component 1 has its addresses already: interfaces are listed (os.networkInterfaces(),
    // about 0.2 ms) only for what binds sockets of its own.
    const ownSockets = o.udpMux === undefined || o.iceTcp || components.length > 1;
    const addrs = ownSockets ? hostAddresses(o, this.#net.interfaces()) : [];
    for (const componentId of components) {
      // Component 1 on the shared port: a check's USERNAME names the stream, not the component.
      const muxed = o.udpMux !== undefined && componentId === 1;
      if (muxed && o.iceUdp) {
        o.udpMux!.addresses.forEach((local, rank) => {
          const view = o.udpMux!.open(local.address);
          const id = this.#core.addHostTransport(streamId, componentId, view.local, rank, this.#net.now());
          this.#attachDatagram(id, streamId, view);
        });
        this.#refreshUfrags(streamId);
        this.#settle();
      }
      for (let rank = 0; rank < addrs.length; rank++) {
        if (o.iceUdp && !muxed) {
          const sock = await this.#track(bindHost(this.#net, addrs[rank]!, o.portRange)).catch((err: NodeJS.ErrnoException) => {
            this.#bindFailed(streamId, componentId, addrs[rank]!, err);
            return undefined;
          });
          if (sock && !this.#alive(streamId)) await sock.close();
          if (!this.#alive(streamId)) return;
          if (sock) {
            const id = this.#core.addHostTransport(streamId, componentId, sock.local, rank, this.#net.now());
            this.#attachDatagram(id, streamId, sock);
            this.#settle();
          }
        }
        // ICE-TCP host candidates (RFC 6544 §5.1) of the same address; relayed-only agents have none.
        if (o.iceTcp && !o.forceRelay) {
          await this.#tcp.gather(streamId, componentId, addrs[rank]!, rank, o.portRange);
          if (!this.#alive(streamId)) return;
        }
      }
    }
    if (!this.#alive(streamId)) return;
    const relays: TurnServerEntry[] = o.turnServers.map((t) => [t, undefined]);
    for (const c of this.#core.stream(streamId).components.values()) for (const t of c.relayServers) relays.push([t, c.id]);
    // An ICE-lite agent has host candidates only (RFC 8445 §2.5).
    // With iceUdp off there is no UDP socket to ask STUN servers from, and relayed candidates are UDP.
    const plan = o.iceLite || !o.iceUdp ? { stun: [], turn: [] } : await planServers(o.stunServers, relays, (h) => this.#lookup(h));
    if (!this.#alive(streamId)) return;
    this.#core.startServers(streamId, plan, this.#net.now());
    this.#settle();
  }

  /** No silent failure: an address that cannot be bound is an event (and a warning), not only a debug line. */
  #bindFailed(streamId: number, componentId: number, address: string, err: NodeJS.ErrnoException): void {
    if (this.#closed) return;
    const why = err.code === 'EADDRNOTAVAIL' ? 'the address is not on this host' : err.message;
    const e = new GatheringError(streamId, componentId, address, err.code, why);
    this.#log.write('gather', 'warn', e.message);
    this.emit('gathering-error', streamId, componentId, e);
  }

  #skipped(streamId: number, skipped: Array<{ candidate: Candidate; reason: string }>): void {
    for (const s of skipped) {
      const resolver = isMdnsName(s.candidate.address) && s.candidate.transport === 'udp' ? this.#mdnsResolver() : undefined;
      if (resolver) this.#resolveMdns(streamId, s.candidate, resolver);
      else this.#skip(streamId, s.candidate, s.reason);
    }
  }

  #skip(streamId: number, candidate: Candidate, reason: string): void {
    this.#log.write('agent', 'warn', `stream ${streamId}: remote candidate skipped: ${reason}`);
    this.emit('remote-candidate-skipped', streamId, candidate, reason);
  }

  /** The mDNS resolver: the injected one, or multicast-dns on the host's network, created on first use. */
  #mdnsResolver(): MdnsResolver | undefined {
    const o = this.options.mdns;
    if (o === false || this.#closed) return undefined;
    if (typeof o === 'object') return o;
    if (o === undefined && this.#net !== nodeNetwork) return undefined;
    this.#mdns ??= new MulticastDnsResolver();
    return this.#mdns;
  }

  /**
   * A `.local` candidate: resolved, then added with the address it stands for;
   * the peer's end-of-candidates waits for the resolutions under way, so that
   * a component is not failed for want of a candidate still being looked up.
   */
  #resolveMdns(streamId: number, cand: Candidate, resolver: MdnsResolver): void {
    this.#mdnsPending.set(streamId, (this.#mdnsPending.get(streamId) ?? 0) + 1);
    resolver.resolve(cand.address, this.options.serverTimeout).then((ip) => {
      if (!this.#alive(streamId)) return;
      this.#log.write('agent', 'debug', `stream ${streamId}: ${cand.address} is ${ip} (mDNS)`);
      const r = this.#core.addRemoteCandidates(streamId, undefined, [{ ...cand, address: ip }], 'candidate', this.#net.now());
      this.#skipped(streamId, r.skipped);
    }, (err: Error) => {
      if (this.#alive(streamId)) this.#skip(streamId, cand, `mDNS name ${cand.address} did not resolve: ${err.message}`);
    }).finally(() => {
      const left = (this.#mdnsPending.get(streamId) ?? 1) - 1;
      this.#mdnsPending.set(streamId, left);
      if (left === 0 && this.#deferredEoc.delete(streamId) && this.#alive(streamId)) this.#core.peerCandidateGatheringDone(streamId, this.#net.now());
      if (!this.#closed) this.#settle();
    });
  }

  /** A name lookup bounded by `serverTimeout`, on the shell's one timer. */
  #lookup(host: string): Promise<string> {
    return new Promise((resolve, reject) => {
      const cancel = this.#after(this.options.serverTimeout, () => reject(new Error(`no answer within ${this.options.serverTimeout} ms`)));
      // Not tracked for close(): a name lookup holds no handle of ours, and the deadline bounds the wait.
      this.#net.lookup(host).then((a) => { cancel(); resolve(a); }, (e: Error) => { cancel(); reject(e); });
    });
  }

  /** Remembers a promise of I/O until it settles (close() waits for them). */
  #track<T>(p: Promise<T>): Promise<T> {
    this.#pending.add(p);
    const forget = () => this.#pending.delete(p);
    p.then(forget, forget);
    return p;
  }

  /**
   * A TURN server for one component, in addition to the agent's `turnServers`
   * (libnice `nice_agent_set_relay_info`). Takes effect at the next gathering.
   */
  setRelayInfo(streamId: number, componentId: number, server: TurnServer): void {
    const c = this.#core.component(streamId, componentId);
    c.relayServers.push(validateTurnServer(server, 'server'));
  }

  getLocalCandidates(streamId: number, componentId: number): Candidate[] {
    return this.#core.localCandidates(streamId, componentId);
  }

  getRemoteCandidates(streamId: number, componentId: number): Candidate[] {
    return this.#core.remoteCandidates(streamId, componentId);
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
    const r = this.#core.addRemoteCandidates(streamId, componentId, candidates, 'candidates', this.#net.now());
    this.#skipped(streamId, r.skipped);
    this.#settle();
    return r.added;
  }

  /** Adds one remote candidate (e.g. trickled); true when it was added. */
  addRemoteCandidate(streamId: number, candidate: Candidate | string): boolean {
    const r = this.#core.addRemoteCandidates(streamId, undefined, [candidate], 'candidate', this.#net.now());
    this.#skipped(streamId, r.skipped);
    this.#settle();
    return r.added === 1;
  }

  // ------------------------------------------------------------- data path

  /**
   * Sends a datagram on the component's selected pair, or before nomination on
   * its best valid pair (as libnice does). Returns false when there is no pair
   * to send on yet, or the datagram cannot go.
   */
  send(streamId: number, componentId: number, data: Buffer | Uint8Array): boolean {
    if (!(data instanceof Uint8Array)) {
      this.#core.component(streamId, componentId);
      throw new InvalidArgumentError('data', 'must be a Buffer or Uint8Array');
    }
    const ok = this.#core.send(streamId, componentId, data, this.#net.now());
    if (this.#core.dirty) this.#settle();
    return ok;
  }

  /**
   * Sets the receive callback of a component (libnice `nice_agent_attach_recv`);
   * `undefined` detaches it. Only data from a remote address that passed a
   * connectivity check reaches it.
   */
  attachRecv(streamId: number, componentId: number, callback: RecvCallback | undefined): void {
    this.#core.component(streamId, componentId);
    if (callback !== undefined && typeof callback !== 'function') {
      throw new InvalidArgumentError('callback', 'must be a function or undefined');
    }
    this.#receiversOf(streamId, componentId).callback = callback;
  }

  #receiversOf(streamId: number, componentId: number): Receivers {
    const list = this.#receivers.get(streamId)!;
    return (list[componentId] ??= { callback: undefined, sockets: new Set() });
  }

  /**
   * A socket on a component (libnice `nice_agent_get_io_stream`): `send`,
   * `'message'`, `close()`, `address()`/`remoteAddress()` of the selected
   * pair, as a connected `dgram.Socket`; also an async iterator of datagrams.
   * Any number may be open on one component, beside `attachRecv`.
   */
  createSocket(streamId: number, componentId: number): ComponentSocket {
    this.#core.component(streamId, componentId);
    const r = this.#receiversOf(streamId, componentId);
    const sock = new ComponentSocket(streamId, componentId, {
      send: (data) => !this.#closed && this.#core.d.streams.has(streamId) && this.send(streamId, componentId, data),
      selected: () => (this.#closed || !this.#core.d.streams.has(streamId) ? undefined : this.getSelectedPair(streamId, componentId)),
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
    if (this.#closed) throw new InvalidStateError('the agent is closed');
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
    const s = this.#core.stream(streamId);
    if (opts.timeout !== undefined && (typeof opts.timeout !== 'number' || !(opts.timeout > 0))) {
      throw new InvalidArgumentError('timeout', 'must be a positive number of ms');
    }
    const ids = [...s.components.keys()];
    return new Promise<SelectedPair[]>((resolve, reject) => {
      let cancelTimer: (() => void) | undefined;
      const onAbort = () => waiter.check({ componentId: undefined, reason: 'aborted', message: 'connect() aborted' });
      const waiter: ConnectWaiter = {
        streamId,
        check: (failure) => {
          if (failure) {
            reject(new ConnectionError(streamId, failure.componentId, failure.reason, failure.message));
          } else {
            const pairs = ids.map((c) => this.#core.selectedPair(streamId, c));
            if (pairs.some((p, i) => p === undefined || this.#core.componentState(streamId, ids[i]!) !== 'ready')) return;
            resolve(pairs as SelectedPair[]);
          }
          this.#connects.delete(waiter);
          cancelTimer?.();
          opts.signal?.removeEventListener('abort', onAbort);
        },
      };
      this.#connects.add(waiter);
      if (opts.signal?.aborted) return onAbort();
      opts.signal?.addEventListener('abort', onAbort, { once: true });
      if (opts.timeout !== undefined) {
        cancelTimer = this.#after(opts.timeout, () => waiter.check({ componentId: undefined, reason: 'timeout', message: `not connected within ${opts.timeout} ms` }));
      }
      waiter.check();
    });
  }

  /** Tells connect() waiters and component sockets about a component's new state. */
  #componentChanged(streamId: number, componentId: number, state: ComponentState, consentLost: boolean): void {
    const r = this.#receivers.get(streamId)?.[componentId];
    const failure = state === 'failed'
      ? { componentId, reason: (consentLost ? 'consent-lost' : 'failed') as ConnectionFailure, message: consentLost ? 'consent lost (RFC 7675)' : 'every candidate pair failed' }
      : undefined;
    if (r) for (const sock of r.sockets) sock._state(state === 'ready', failure && new ConnectionError(streamId, componentId, failure.reason, failure.message));
    for (const w of [...this.#connects]) if (w.streamId === streamId) w.check(failure);
  }

  /** The stream or the agent went away: sockets close, connect() waiters are told. */
  #streamGone(streamId: number, reason: ConnectionFailure): void {
    for (const r of this.#receivers.get(streamId) ?? []) for (const sock of r?.sockets ?? []) sock._gone();
    for (const w of [...this.#connects]) {
      if (w.streamId === streamId) w.check({ componentId: undefined, reason, message: reason === 'closed' ? 'the agent was closed' : 'the stream was removed' });
    }
  }

  /**
   * Renomination (option `renomination`, draft-thatcher-ice-renomination):
   * the controlling agent nominates another valid pair — the one between
   * these candidates' addresses, or by default the best valid one — and data
   * moves to it once it is selected (`new-selected-pair`), with no ICE
   * restart. False when there is no such pair or renomination does not apply.
   */
  renominate(streamId: number, componentId: number, between?: { local: TransportAddress; remote: TransportAddress }): boolean {
    const ok = this.#core.renominate(streamId, componentId, this.#net.now(), between);
    this.#settle();
    return ok;
  }

  getSelectedPair(streamId: number, componentId: number): SelectedPair | undefined {
    return this.#core.selectedPair(streamId, componentId);
  }

  /** The stream's checklist and valid list, highest priority first. */
  getPairs(streamId: number): PairInfo[] {
    return this.#core.pairs(streamId);
  }

  getComponentState(streamId: number, componentId: number): ComponentState {
    return this.#core.componentState(streamId, componentId);
  }

  /**
   * A snapshot of the agent's counters (every dropped packet by reason) and,
   * per stream and component, W3C-style stats of every candidate pair and
   * candidate. JSON-safe.
   */
  getStats(): AgentStats & { streams: StreamStats[] } {
    return this.#core.stats();
  }

  // -------------------------------------------------------------- I/O glue

  #open(): void {
    if (this.#closed) throw new InvalidStateError('the agent is closed');
  }

  #transmit(id: number, to: TransportAddress, data: Uint8Array): boolean {
    const s = this.#sockets.get(id);
    if (s?.datagram) return s.datagram.send(data, to);
    if (s?.framed) return s.framed.send(data);
    if (s?.stream) return s.stream.write(data);
    return false;
  }

  #attachDatagram(id: number, streamId: number, sock: DatagramSocket): void {
    this.#sockets.set(id, { datagram: sock, streamId });
    const core = this.#core;
    const net = this.#net;
    sock.onMessage((data, from) => {
      try {
        core.receive(id, from, data, net.now());
      } catch (err) {
        // The core never throws on network input; if it ever does, the datagram is lost, not the process.
        this.#log.write('agent', 'error', `internal error on a datagram: ${(err as Error).stack}`);
      }
      if (core.dirty) this.#settle();
    });
  }

  /** The core asked for a TCP/TLS link to a TURN server. */
  #openLink(e: Extract<CoreEvent, { type: 'open-link' }>): void {
    const connecting = this.#track(this.#net.connectStream({
      remote: e.remote,
      signal: this.#abort.signal,
      ...(e.localAddress !== undefined ? { local: { address: e.localAddress } } : {}),
      ...(e.tls ? { tls: { servername: e.servername, ca: e.ca, rejectUnauthorized: e.rejectUnauthorized } } : {}),
    }));
    connecting.then((sock) => {
      if (this.#closed || !this.#core.d.transports.has(e.transportId)) {
        void sock.close();
        return;
      }
      const t = this.#core.d.transports.get(e.transportId)!;
      this.#sockets.set(e.transportId, { stream: sock, streamId: t.streamId });
      const framer = new StreamFramer();
      sock.onData((chunk) => {
        const ok = framer.push(chunk, (frame) => this.#core.receive(e.transportId, e.remote, frame, this.#net.now()));
        // Neither STUN nor ChannelData: the stream is out of step and cannot be resynchronised.
        if (!ok) void sock.close();
        this.#settle();
      });
      sock.onClose((err) => {
        if (this.#closed) return;
        this.#sockets.delete(e.transportId);
        this.#core.transportClosed(e.transportId, err ? err.message : 'connection closed', this.#net.now());
        this.#settle();
      });
      this.#core.linkOpened(e.transportId, sock.local, this.#net.now());
      this.#settle();
    }, (err: NodeJS.ErrnoException) => {
      if (this.#closed) return;
      const why = err.code === 'ECONNREFUSED' ? 'connection refused' : e.tls ? `TLS: ${err.message}` : err.message;
      this.#core.transportClosed(e.transportId, why, this.#net.now());
      this.#settle();
    });
  }

  #closeSocket(id: number): Promise<void> {
    const s = this.#sockets.get(id);
    this.#sockets.delete(id);
    if (!s) return Promise.resolve();
    return closeEntry(s);
  }

  /**
   * After every input: run what is due, hand the core's events to listeners
   * (one at a time, so that a listener that calls back into the agent sees a
   * consistent state and a throwing listener loses nothing), and re-arm the
   * one timer. Re-entrant calls (from listeners) return at once: the outer
   * call finishes the work.
   */
  #settle(): void {
    if (this.#settling) return;
    this.#settling = true;
    try {
      for (;;) {
        const now = this.#net.now();
        if (this.#deadlines.size > 0) {
          for (const dl of [...this.#deadlines]) {
            if (dl.at > now) continue;
            this.#deadlines.delete(dl);
            dl.fn();
          }
        }
        if (this.#core.nextTimeout() <= now) {
          try {
            this.#core.handleTimeout(now);
          } catch (err) {
            this.#log.write('agent', 'error', `internal error in a timeout: ${(err as Error).stack}`);
          }
        }
        const fresh = this.#core.takeEvents();
        // The core's array itself when nothing is queued (the usual case): no copy, no growth.
        if (this.#queue.length === 0) this.#queue = fresh;
        else if (fresh.length > 0) this.#queue.push(...fresh);
        const e = this.#queue.shift();
        if (!e) {
          if (this.#core.nextTimeout() > this.#net.now()) break;
          continue;
        }
        this.#dispatch(e);
      }
    } finally {
      this.#settling = false;
      this.#core.dirty = false;
      this.#arm();
      if (this.#closed) this.#checkClosed();
      else if (this.#core.d.revision !== this.#revision) {
        this.#revision = this.#core.d.revision;
        this.emit('session-changed');
      }
    }
  }

  /** A deadline of the shell's own on the one timer; returns its cancellation. */
  #after(ms: number, fn: () => void): () => void {
    const dl = { at: this.#net.now() + ms, fn };
    this.#deadlines.add(dl);
    this.#arm();
    return () => {
      this.#deadlines.delete(dl);
    };
  }

  #arm(): void {
    const done = this.#closed && this.#core.closed;
    let at = done ? Infinity : this.#core.nextTimeout();
    for (const dl of this.#deadlines) at = Math.min(at, dl.at);
    if (at === this.#timerAt) return;
    // A deadline that moved later (a lite agent's consent expiry, pushed back by every request
    // from the peer) keeps the timer: it fires early, finds nothing due and arms again. That is
    // one wake-up per timeout instead of a clearTimeout and a setTimeout per datagram.
    if (this.#timer !== undefined && at > this.#timerAt && !done) return;
    if (this.#timer !== undefined) this.#net.clearTimer(this.#timer);
    this.#timer = undefined;
    this.#timerAt = at;
    if (at === Infinity) return;
    this.#timer = this.#net.setTimer(() => {
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#settle();
    }, Math.max(0, at - this.#net.now()));
  }

  #dispatch(e: CoreEvent): void {
    switch (e.type) {
      case 'open-link':
        this.#openLink(e);
        return;
      case 'open-tcp':
        this.#tcp.open(e);
        return;
      case 'close-transport':
        void this.#closeSocket(e.transportId);
        return;
      case 'source-authorized':
        this.#sockets.get(e.transportId)?.datagram?.claim?.({ address: e.address, port: e.port });
        return;
    }
    if (this.#closed) return;
    switch (e.type) {
      case 'new-candidate': this.emit('new-candidate', e.candidate); return;
      case 'candidate-gathering-done': {
        // Done: a later gatherCandidates() finds the stream complete and resolves at once.
        const g = this.#gatherings.get(e.streamId);
        this.#gatherings.delete(e.streamId);
        this.emit('candidate-gathering-done', e.streamId);
        g?.resolve();
        return;
      }
      case 'component-state-changed':
        this.emit('component-state-changed', e.streamId, e.componentId, e.state);
        this.#componentChanged(e.streamId, e.componentId, e.state, this.#core.d.streams.get(e.streamId)?.components.get(e.componentId)?.consentLost ?? false);
        return;
      case 'new-selected-pair':
        // A new generation has its pair: the previous ufrag no longer reaches a shared port's view.
        this.#refreshUfrags(e.streamId);
        this.emit('new-selected-pair', e.streamId, e.componentId, e.local, e.remote);
        return;
      case 'initial-binding-request-received': this.emit('initial-binding-request-received', e.streamId); return;
      case 'new-remote-candidate': this.emit('new-remote-candidate', e.candidate); return;
      case 'consent-lost': this.emit('consent-lost', e.streamId, e.componentId); return;
      case 'server-error': this.emit('server-error', e.streamId, e.componentId, e.error); return;
    }
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
    this.#open();
    return this.#core.exportSession(this.#net.now(), opts.key);
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
    const net = agent.options.network;
    const bound: Array<[number, number, DatagramSocket]> = [];
    try {
      for (const t of snap.transports) {
        if (t.kind !== 'host') continue;
        try {
          bound.push([t.id, t.streamId, await net.bindDatagram(t.local.address, t.local.port)]);
        } catch (err) {
          throw new SessionError('bind', `cannot bind ${t.local.address}:${t.local.port} again: ${(err as Error).message}`, t.local);
        }
      }
    } catch (err) {
      await Promise.all(bound.map(([, , s]) => s.close()));
      await agent.close();
      throw err;
    }
    agent.#core.importSession(snap, net.now());
    for (const s of snap.streams) agent.#receivers.set(s.id, []);
    for (const [id, streamId, sock] of bound) agent.#attachDatagram(id, streamId, sock);
    agent.#revision = agent.#core.d.revision;
    agent.#settle();
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
    this.#closed = true;
    for (const g of this.#gatherings.values()) g.resolve();
    this.#gatherings.clear();
    for (const id of this.#receivers.keys()) this.#streamGone(id, 'closed');
    this.#receivers.clear();
    this.#core.close(this.#net.now(), opts.release ?? true);
    this.#closing = (async () => {
      this.#settle();
      if (!this.#core.closed) {
        // The allocations end by themselves within their bound; the grace deadline is a backstop.
        await new Promise<void>((resolve) => {
          const cancel = this.#after(Math.min(this.options.serverTimeout, 1000) + CLOSE_GRACE_MS, resolve);
          this.#closeDone = () => {
            cancel();
            resolve();
          };
          this.#checkClosed();
        });
      }
      if (this.#timer !== undefined) this.#net.clearTimer(this.#timer);
      this.#timer = undefined;
      this.#timerAt = Infinity;
      this.#deadlines.clear();
      this.#abort.abort(); // made now if it was not: a shell created after close() gets it aborted
      // Sockets still being bound or connected are closed when they arrive (the code awaiting them sees #closed).
      await Promise.allSettled([...this.#pending]);
      await Promise.all([...this.#sockets.keys()].map((id) => this.#closeSocket(id)));
      await this.#mdns?.close();
    })();
    return this.#closing;
  }

  #checkClosed(): void {
    if (this.#core.closed && this.#closeDone) {
      const done = this.#closeDone;
      this.#closeDone = undefined;
      done();
    }
  }
}

