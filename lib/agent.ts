/**
 * The ICE agent (RFC 8445 §2; libnice's NiceAgent): options, streams, events,
 * the pacer that sends one new check every Ta (§6.1.4.2), and what a valid or
 * nominated pair means for its component (§7.2.5.3, §8.1).
 */
import { EventEmitter } from 'node:events';
import { randomBytes } from 'node:crypto';
import createDebug from 'debug';
import { type Candidate, FoundationRegistry } from './candidate.js';
import { parseCandidate } from './candidate-attribute.js';
import type { CandidatePair, PairState } from './pair.js';
import type { Checklist } from './checklist.js';
import { Checker, type CheckHost } from './check.js';
import { type Component, type ComponentState, type RecvCallback } from './component.js';
import { type Credentials, Stream, newCredentials } from './stream.js';
import { type AgentOptions, type ResolvedOptions, type TurnServer, resolveOptions, validateTurnServer } from './options.js';
import { type Nominator, createNominator } from './nomination.js';
import { Scheduler, type ScheduledTask, type Clock } from './scheduler.js';
import { type AgentStats, createStats } from './stats.js';
import { retransmitWaits } from './stun/transaction.js';
import { type DecodedStun, encodeBindingIndication, isStunFrame } from './stun/message.js';
import { consentDelay, liveness } from './consent.js';
import type { PacketTransport, RemoteAddress as RemoteInfo, SendFilter } from './transport/transport.js';
import { InvalidArgumentError, InvalidStateError, type TurnError, UnknownStreamError } from './errors.js';
import { RelayTransport } from './transport/relay.js';
import { gatherStream, type GatherHost } from './gather/gatherer.js';

const debug = createDebug('ice-agent:agent');

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
  'server-error': (streamId: number, componentId: number, error: TurnError) => void;
  /** RFC 7675: no response on the selected pair for `consentTimeout`; the component is now failed and sends nothing. */
  'consent-lost': (streamId: number, componentId: number) => void;
}

export interface SelectedPair {
  local: Candidate;
  remote: Candidate;
}

/** A snapshot of one candidate pair, for diagnostics and stats. */
export interface PairInfo {
  componentId: number;
  local: Candidate;
  remote: Candidate;
  state: PairState;
  priority: bigint;
  valid: boolean;
  nominated: boolean;
}

export interface Agent {
  on<K extends keyof AgentEvents>(event: K, listener: AgentEvents[K]): this;
  once<K extends keyof AgentEvents>(event: K, listener: AgentEvents[K]): this;
  off<K extends keyof AgentEvents>(event: K, listener: AgentEvents[K]): this;
  emit<K extends keyof AgentEvents>(event: K, ...args: Parameters<AgentEvents[K]>): boolean;
}

/** Hooks only tests need: a fake clock for the scheduler, and a filter on outgoing datagrams to simulate loss. */
export interface AgentInternals {
  clock?: Clock;
  sendFilter?: SendFilter;
}

export class Agent extends EventEmitter {
  readonly options: Readonly<ResolvedOptions>;
  #controlling: boolean;
  readonly #tieBreaker: bigint;
  #nominator: Nominator;
  readonly #scheduler: Scheduler;
  readonly #stats: AgentStats = createStats();
  readonly #streams = new Map<number, Stream>();
  readonly #foundations = new FoundationRegistry();
  readonly #checker: Checker;
  readonly #waits: number[];
  #nextStreamId = 1;
  #closed = false;
  #closing: Promise<void> | undefined;
  #pumpTask: ScheduledTask | undefined;
  #nextCheckAt = 0;
  #rr = 0;
  #gatherings = new Map<number, Promise<void>>();
  readonly #internals: AgentInternals;
  /** STUN client transactions other than checks (server-reflexive gathering), by transaction id. */
  readonly #clientTx = new Map<string, (m: DecodedStun, rinfo: RemoteInfo) => void>();

  constructor(options: AgentOptions = {}, internals: AgentInternals = {}) {
    super();
    this.options = Object.freeze(resolveOptions(options));
    this.#controlling = this.options.controllingMode;
    // §7.1.3 (RFC 8445 §16.1): a 64-bit random tie-breaker for role conflicts.
    this.#tieBreaker = randomBytes(8).readBigUInt64BE();
    this.#nominator = createNominator(this.#controlling, this.options.nominationMode, this.options.nominationTimeout);
    this.#internals = internals;
    this.#scheduler = new Scheduler(internals.clock);
    this.#waits = retransmitWaits(this.options.stunInitialTimeout, this.options.stunMaxRetransmissions, this.options.stunMaxTimeout);
    this.#checker = new Checker(this.#checkHost());
  }

  /** Current role; it may flip on a role conflict (§7.3.1.1). */
  get controllingMode(): boolean {
    return this.#controlling;
  }

  get closed(): boolean {
    return this.#closed;
  }

  // ---------------------------------------------------------------- streams

  /** Adds a stream of `nComponents` components (1 = RTP, 2 = RTCP); returns its id (libnice `nice_agent_add_stream`). */
  addStream(nComponents = 1): number {
    this.#assertOpen();
    if (!Number.isInteger(nComponents) || nComponents < 1 || nComponents > 256) {
      throw new InvalidArgumentError('nComponents', `must be an integer from 1 to 256, got ${nComponents}`);
    }
    const id = this.#nextStreamId++;
    this.#streams.set(id, new Stream(id, nComponents, this.#stats, this.options.maxPairs, this.options.iceTrickle));
    return id;
  }

  /** Removes a stream: its checks stop and its sockets close (libnice `nice_agent_remove_stream`). */
  async removeStream(streamId: number): Promise<void> {
    const s = this.#stream(streamId);
    this.#streams.delete(streamId);
    this.#checker.cancel((p) => p.stream === s);
    await this.#closeStream(s);
  }

  getStreamIds(): number[] {
    return [...this.#streams.keys()];
  }

  getLocalCredentials(streamId: number): Credentials {
    return { ...this.#stream(streamId).local };
  }

  /** Replaces the generated local credentials (before checks start). RFC 8445 §5.3 sizes. */
  setLocalCredentials(streamId: number, ufrag: string, pwd: string): void {
    const s = this.#stream(streamId);
    validateCredentials(ufrag, pwd);
    s.local = { ufrag, pwd };
  }

  /**
   * Sets the remote credentials. New values on a stream that already had some
   * are an ICE restart by the peer (RFC 8445 §9): unless this agent restarted
   * the stream itself first (`restartStream`), it restarts too, with new local
   * credentials that the application must signal back (read them with
   * `getLocalCredentials`).
   */
  setRemoteCredentials(streamId: number, ufrag: string, pwd: string): void {
    const s = this.#stream(streamId);
    validateCredentials(ufrag, pwd);
    const old = s.remote;
    if (old && (old.ufrag !== ufrag || old.pwd !== pwd) && !s.restartPending) {
      debug('stream %d: remote restarted', s.id);
      this.#restart(s);
    }
    s.remote = { ufrag, pwd };
    s.restartPending = false;
    for (const c of s.components.values()) {
      if (s.checklist.pairs.some((p) => p.component === c.id)) this.#pairAdded(s, c);
    }
    this.#wake();
  }

  /**
   * ICE restart of one stream (RFC 8445 §9; libnice `nice_agent_restart_stream`):
   * new local credentials, a fresh checklist, remote candidates forgotten. Data
   * keeps flowing on the current selected pair until the new generation
   * nominates its own, which then replaces it. Checks start again once the
   * remote's new credentials arrive (`setRemoteCredentials`).
   */
  restartStream(streamId: number): void {
    const s = this.#stream(streamId);
    this.#restart(s);
    s.restartPending = true;
  }

  /** Restarts every stream (libnice `nice_agent_restart`). */
  restart(): void {
    this.#assertOpen();
    for (const s of this.#streams.values()) this.restartStream(s.id);
  }

  #restart(s: Stream): void {
    this.#checker.cancel((p) => p.stream === s && p.kind === 'check');
    s.previousLocal = s.local;
    s.local = newCredentials();
    s.resetChecklist();
    for (const c of s.components.values()) {
      c.remoteCandidates = [];
      c.firstValidAt = undefined;
      c.nominationTask?.cancel();
      c.trickleTask?.cancel();
      // c.selected and c.sendPair stay: data continues on the old pair.
      if (c.state === 'failed') this.#setState(s, c, 'connecting');
    }
  }

  /**
   * The peer has no more candidates for this stream (RFC 8838 §8 end-of-candidates;
   * libnice `nice_agent_peer_candidate_gathering_done`). With trickle, components
   * can fail only after this.
   */
  peerCandidateGatheringDone(streamId: number): void {
    const s = this.#stream(streamId);
    s.checklist.remoteGatheringDone = true;
    s.remoteEndOfCandidates = true;
    for (const c of s.components.values()) c.trickleTask?.cancel();
    this.#evaluate(s);
    this.#wake();
  }

  getRemoteCredentials(streamId: number): Credentials | undefined {
    const r = this.#stream(streamId).remote;
    return r ? { ...r } : undefined;
  }

  // -------------------------------------------------------------- gathering

  /**
   * Gathers host candidates (RFC 8445 §5.1.1.1): one UDP socket per local
   * address per component. `new-candidate` fires for each one, then
   * `candidate-gathering-done`; the promise resolves at that point.
   */
  gatherCandidates(streamId: number): Promise<void> {
    const s = this.#stream(streamId);
    const existing = this.#gatherings.get(streamId);
    if (existing) return existing;
    const p = this.#gather(s);
    this.#gatherings.set(streamId, p);
    return p;
  }

  /**
   * Gathering (RFC 8445 §5.1.1, lib/gather/gatherer.ts): host candidates first,
   * announced at once, then server-reflexive and relayed ones. A server that
   * fails gives a `server-error` event and gathering goes on;
   * `candidate-gathering-done` fires when every server has answered or timed out.
   */
  async #gather(s: Stream): Promise<void> {
    s.gathering = 'gathering';
    for (const c of s.components.values()) this.#setState(s, c, 'gathering');
    if (!(await gatherStream(this.#gatherHost(), s))) return;
    s.gathering = 'complete';
    this.#emit('candidate-gathering-done', s.id);
    this.#evaluate(s);
    this.#wake();
  }

  #gatherHost(): GatherHost {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const agent = this;
    return {
      options: this.options,
      scheduler: this.#scheduler,
      stats: this.#stats,
      sendFilter: this.#internals.sendFilter,
      get closed() { return agent.#closed; },
      clientTx: this.#clientTx,
      alive: (s) => !this.#closed && this.#streams.get(s.id) === s,
      foundation: (key) => this.#foundations.get(key),
      onPacket: (s, c, t, msg, rinfo) => this.#onPacket(s, c, t, msg, rinfo),
      emitCandidate: (cand) => this.#emit('new-candidate', { ...cand }),
      formPair: (s, c, l, r) => this.#formPair(s, c, l, r),
      emitServerError: (s, c, err) => this.#emit('server-error', s.id, c.id, err),
    };
  }

  /**
   * A TURN server for one component, in addition to the agent's `turnServers`
   * (libnice `nice_agent_set_relay_info`). Takes effect at the next gathering.
   */
  setRelayInfo(streamId: number, componentId: number, server: TurnServer): void {
    const c = this.#component(streamId, componentId);
    c.relayServers.push(validateTurnServer(server, 'server'));
  }

  getLocalCandidates(streamId: number, componentId: number): Candidate[] {
    return this.#component(streamId, componentId).localCandidates.map((c) => ({ ...c }));
  }

  getRemoteCandidates(streamId: number, componentId: number): Candidate[] {
    return this.#component(streamId, componentId).remoteCandidates.map((c) => ({ ...c }));
  }

  // ------------------------------------------------------ remote candidates

  /**
   * Adds remote candidates (objects or RFC 8839 strings) and pairs them with
   * the local ones (libnice `nice_agent_set_remote_candidates`). Everything is
   * validated first: a bad element throws and nothing is added. Returns the
   * number of candidates added; TCP and FQDN candidates are not supported yet
   * and are skipped.
   */
  setRemoteCandidates(streamId: number, componentId: number, candidates: ReadonlyArray<Candidate | string>): number {
    const s = this.#stream(streamId);
    const c = this.#component(streamId, componentId);
    if (!Array.isArray(candidates)) throw new InvalidArgumentError('candidates', 'must be an array');
    const parsed = candidates.map((x, i) => toRemoteCandidate(x, componentId, `candidates[${i}]`));
    let added = 0;
    for (const cand of parsed) if (this.#addRemote(s, c, cand)) added++;
    this.#wake();
    return added;
  }

  /** Adds one remote candidate; true when it was added. */
  addRemoteCandidate(streamId: number, candidate: Candidate | string): boolean {
    const s = this.#stream(streamId);
    const cand = toRemoteCandidate(candidate, undefined, 'candidate');
    const c = this.#component(streamId, cand.component);
    const added = this.#addRemote(s, c, cand);
    this.#wake();
    return added;
  }

  #addRemote(s: Stream, c: Component, cand: Candidate): boolean {
    if (cand.transport !== 'udp' || !isIpLiteral(cand.address)) return false;
    const existing = c.findRemote(cand.address, cand.port);
    if (existing) {
      // A signalled candidate for an address first learned as peer-reflexive
      // replaces it with its real type, priority and foundation (RFC 8445 §7.3.1.3, RFC 8838 §11.3).
      if (existing.type !== 'prflx' || cand.type === 'prflx') return false;
      c.remoteCandidates[c.remoteCandidates.indexOf(existing)] = cand;
      for (const p of [...s.checklist.pairs, ...s.checklist.valid]) {
        if (p.remote === existing) p.replaceRemote(cand, this.#controlling);
      }
      s.checklist.resort();
      return true;
    }
    if (c.remoteCandidates.length >= this.options.maxRemoteCandidates) {
      this.#stats.dropped.tableFull++;
      return false;
    }
    c.remoteCandidates.push(cand);
    s.lastRemoteCandidateAt = this.#scheduler.now();
    c.trickleTask?.cancel();
    for (const l of c.localCandidates) this.#formPair(s, c, l, cand);
    return true;
  }

  #formPair(s: Stream, c: Component, local: Candidate, remote: Candidate): void {
    if (this.options.forceRelay && local.type !== 'relay') return;
    const pair = s.checklist.addPair(local, remote, this.#controlling, this.#checklistSet());
    if (!pair) return;
    // RFC 8656 §9: the relay forwards only from peers with a permission; ask for one per paired remote.
    if (local.type === 'relay') {
      const t = c.transportFor(local);
      if (t instanceof RelayTransport) t.permit(remote.address);
    }
    this.#pairAdded(s, c);
  }

  #pairAdded(s: Stream, c: Component): void {
    if (c.state === 'disconnected' || c.state === 'gathering' || c.state === 'failed') {
      if (s.canCheck) this.#setState(s, c, 'connecting');
    }
  }

  // ------------------------------------------------------------- data path

  /**
   * Sends a datagram on the component's selected pair, or before nomination on
   * its best valid pair (as libnice does). Returns false when there is no pair
   * to send on yet.
   */
  send(streamId: number, componentId: number, data: Buffer | Uint8Array): boolean {
    const c = this.#component(streamId, componentId);
    if (!(data instanceof Uint8Array)) throw new InvalidArgumentError('data', 'must be a Buffer or Uint8Array');
    return c.send(data as Buffer);
  }

  /**
   * Sets the receive callback of a component (libnice `nice_agent_attach_recv`);
   * `undefined` detaches it. Only data from a remote address that passed a
   * connectivity check reaches it.
   */
  attachRecv(streamId: number, componentId: number, callback: RecvCallback | undefined): void {
    const c = this.#component(streamId, componentId);
    if (callback !== undefined && typeof callback !== 'function') {
      throw new InvalidArgumentError('callback', 'must be a function or undefined');
    }
    c.recv = callback;
  }

  getSelectedPair(streamId: number, componentId: number): SelectedPair | undefined {
    const p = this.#component(streamId, componentId).selected;
    return p ? { local: { ...p.local }, remote: { ...p.remote } } : undefined;
  }

  /**
   * The stream's checklist and valid list (pairs not in the checklist, such as
   * those with a local peer-reflexive candidate, come last), highest priority first.
   */
  getPairs(streamId: number): PairInfo[] {
    const cl = this.#stream(streamId).checklist;
    const pairs = [...cl.pairs, ...cl.valid.filter((p) => !cl.pairs.includes(p))];
    return pairs.map((p) => ({
      componentId: p.component,
      local: { ...p.local },
      remote: { ...p.remote },
      state: p.state,
      priority: p.priority,
      valid: p.valid,
      nominated: p.nominated,
    }));
  }

  getComponentState(streamId: number, componentId: number): ComponentState {
    return this.#component(streamId, componentId).state;
  }

  /** A snapshot of the agent's counters. */
  getStats(): AgentStats {
    return structuredClone(this.#stats);
  }

  // ----------------------------------------------------------------- close

  /** Stops every check and timer and closes every socket; resolves when they are gone. Events stop at once. */
  close(): Promise<void> {
    if (this.#closing) return this.#closing;
    this.#closed = true;
    this.#scheduler.close();
    this.#checker.cancel();
    const streams = [...this.#streams.values()];
    this.#streams.clear();
    this.#closing = Promise.all(streams.map((s) => this.#closeStream(s))).then(() => undefined);
    return this.#closing;
  }

  async #closeStream(s: Stream): Promise<void> {
    const closing: Promise<void>[] = [];
    for (const c of s.components.values()) {
      // Allocations still in progress are abandoned too.
      for (const client of c.turnClients) closing.push(client.close());
      c.nominationTask?.cancel();
      c.livenessTask?.cancel();
      c.trickleTask?.cancel();
      c.recv = undefined;
      for (const t of c.transports) closing.push(t.close());
    }
    await Promise.all(closing);
  }

  // -------------------------------------------------------------- internals

  #assertOpen(): void {
    if (this.#closed) throw new InvalidStateError('the agent is closed');
  }

  #stream(id: number): Stream {
    this.#assertOpen();
    const s = this.#streams.get(id);
    if (!s) throw new UnknownStreamError(id);
    return s;
  }

  #component(streamId: number, componentId: number): Component {
    const c = this.#stream(streamId).components.get(componentId);
    if (!c) throw new UnknownStreamError(streamId, componentId);
    return c;
  }

  #emit<K extends keyof AgentEvents>(event: K, ...args: Parameters<AgentEvents[K]>): void {
    if (this.#closed) return;
    this.emit(event, ...args);
  }

  #setState(s: Stream, c: Component, state: ComponentState): void {
    if (c.state === state) return;
    debug('stream %d component %d: %s -> %s', s.id, c.id, c.state, state);
    c.state = state;
    this.#emit('component-state-changed', s.id, c.id, state);
  }

  #checklistSet(): Checklist[] {
    return [...this.#streams.values()].map((s) => s.checklist);
  }

  /** RFC 7983 demultiplexing: first byte 0-3 is STUN, anything else is the application's. */
  #onPacket(s: Stream, c: Component, t: PacketTransport, msg: Buffer, rinfo: RemoteInfo): void {
    const stats = this.#stats;
    stats.packetsReceived++;
    stats.bytesReceived += msg.length;
    if (this.#closed) return;
    if (msg.length > 0 && msg[0]! < 4) {
      if (isStunFrame(msg)) this.#checker.handle(s, c, t, msg, rinfo);
      else stats.dropped.malformed++;
      return;
    }
    c.deliver(msg, rinfo);
  }

  /** §8.1.2: once the current generation nominated a pair for a component, its other checks stop. */
  #componentDone(s: Stream, componentId: number): boolean {
    return s.checklist.selected(componentId) !== undefined;
  }

  /** Asks the pacer to run as soon as Ta allows (the first check goes out at once). */
  #wake(): void {
    if (this.#closed) return;
    const now = this.#scheduler.now();
    if (now >= this.#nextCheckAt && !this.#pumping) this.#pump();
    else this.#armPump(this.#nextCheckAt);
  }

  #pumping = false;

  #armPump(at: number): void {
    if (this.#pumpTask && this.#pumpTask.at <= at) return;
    this.#pumpTask?.cancel();
    this.#pumpTask = this.#scheduler.at(at, () => {
      this.#pumpTask = undefined;
      this.#pump();
    });
  }

  /**
   * One tick of Ta (§6.1.4.2): the checklists take turns; each gives its
   * triggered check first, else its best ordinary check. When nothing is left
   * to send, components with nothing left to try are failed.
   */
  #pump(): void {
    if (this.#closed) return;
    const now = this.#scheduler.now();
    if (now < this.#nextCheckAt) {
      this.#armPump(this.#nextCheckAt);
      return;
    }
    this.#pumping = true;
    try {
      const streams = [...this.#streams.values()].filter((s) => s.canCheck);
      const set = this.#checklistSet();
      for (let i = 0; i < streams.length; i++) {
        const s = streams[(this.#rr + i) % streams.length]!;
        const pair = s.checklist.next(set, (c) => this.#componentDone(s, c));
        if (!pair) continue;
        this.#rr = (this.#rr + i + 1) % streams.length;
        this.#nextCheckAt = now + this.options.stunPacingTimer;
        this.#checker.send(s, s.components.get(pair.component)!, pair);
        this.#armPump(this.#nextCheckAt);
        return;
      }
      for (const s of streams) this.#evaluate(s);
    } finally {
      this.#pumping = false;
    }
  }

  /**
   * Fails components with nothing left to try, and updates the checklist
   * state. With trickle and no end-of-candidates yet, a component with nothing
   * left to try fails only when no remote candidate arrived for `trickleTimeout`.
   */
  #evaluate(s: Stream): void {
    if (s.gathering !== 'complete') return;
    const cl = s.checklist;
    for (const c of s.components.values()) {
      if (c.state === 'failed') continue;
      // Nothing to judge before the peer gave candidates or said it has none.
      if (c.remoteCandidates.length === 0 && !cl.pairs.some((p) => p.component === c.id) && !s.remoteEndOfCandidates) continue;
      if (cl.componentFailed(c.id)) {
        this.#fail(s, c);
      } else if (!cl.remoteGatheringDone && cl.componentExhausted(c.id) && !c.trickleTask) {
        const at = s.lastRemoteCandidateAt + this.options.trickleTimeout;
        c.trickleTask = this.#scheduler.at(at, () => {
          c.trickleTask = undefined;
          if (cl === s.checklist && cl.componentExhausted(c.id)) this.#fail(s, c);
        });
      }
    }
    cl.updateState();
  }

  #fail(s: Stream, c: Component): void {
    c.nominationTask?.cancel();
    c.trickleTask?.cancel();
    c.trickleTask = undefined;
    if (c.selected && s.checklist.selected(c.id) === undefined && c.state !== 'failed') {
      // A restart that found nothing: the old pair may still carry data.
      return;
    }
    this.#setState(s, c, 'failed');
  }

  /** `valid` entered the valid list or was nominated (§7.2.5.3, §8.1). */
  #pairValid(s: Stream, c: Component, valid: CandidatePair): void {
    const now = this.#scheduler.now();
    c.firstValidAt ??= now;
    this.#updateSelection(s, c);
    this.#runNomination(s, c);
    s.checklist.updateState();
    this.#wake();
  }

  #updateSelection(s: Stream, c: Component): void {
    const cl = s.checklist;
    const selected = cl.selected(c.id);
    // Before the first nomination data goes on the best valid pair (as
    // libnice); during a restart the old selected pair keeps carrying it.
    if (!c.selected) c.sendPair = cl.bestValid(c.id);
    if (c.sendPair && !c.selected && (c.state === 'connecting' || c.state === 'gathering' || c.state === 'disconnected' || c.state === 'failed')) {
      this.#setState(s, c, 'connected');
    }
    if (selected && selected !== c.selected) {
      c.selected = selected;
      c.sendPair = selected;
      c.nominationTask?.cancel();
      // The new generation has its pair: the previous credentials retire (§9).
      s.previousLocal = undefined;
      // §8.1.2: checks of this component's other Frozen/Waiting pairs stop.
      cl.pruneComponent(c.id);
      this.#emit('new-selected-pair', s.id, c.id, { ...selected.local }, { ...selected.remote });
      if (c.state !== 'connected' && c.state !== 'ready') this.#setState(s, c, 'connected');
      this.#setState(s, c, 'ready');
      this.#startLiveness(s, c);
      // Data through a relay goes in ChannelData (RFC 8656 §12): bind a channel to the peer.
      const t = c.transportFor(selected.local.base ?? selected.local);
      if (t instanceof RelayTransport) t.bindChannel(selected.remote.address, selected.remote.port);
    }
  }

  /** Regular nomination by the controlling agent (§8.1.1). */
  #runNomination(s: Stream, c: Component): void {
    if (!this.#nominator.controlling || this.#nominator.mode !== 'regular' || c.firstValidAt === undefined) return;
    c.nominationTask?.cancel();
    c.nominationTask = undefined;
    const cl = s.checklist;
    const d = this.#nominator.decide(
      cl.pairs.filter((p) => p.component === c.id),
      cl.valid.filter((p) => p.component === c.id),
      this.#scheduler.now() - c.firstValidAt,
    );
    if (d.nominate) {
      debug('nominating %s', d.nominate.toString());
      d.nominate.nominating = true;
      cl.triggerNomination(d.nominate);
      this.#wake();
    } else if (d.recheckInMs !== undefined) {
      c.nominationTask = this.#scheduler.after(d.recheckInMs, () => this.#runNomination(s, c));
    }
  }

  #pairFailed(s: Stream, c: Component, pair: CandidatePair): void {
    const cl = s.checklist;
    cl.failed(pair);
    if (pair.valid) {
      // A nomination check that went unanswered: the pair is not usable any more.
      pair.valid = false;
      pair.nominating = false;
      cl.valid = cl.valid.filter((p) => p !== pair);
      if (c.sendPair === pair && !c.selected) c.sendPair = cl.bestValid(c.id);
    }
    this.#runNomination(s, c);
    this.#evaluate(s);
    this.#wake();
  }

  /**
   * Consent freshness (RFC 7675) or keepalives (RFC 8445 §11) on the selected
   * pair, and the liveness rules of lib/consent.ts.
   */
  #startLiveness(s: Stream, c: Component): void {
    c.livenessTask?.cancel();
    c.lastResponseAt = this.#scheduler.now();
    const o = this.options;
    const requests = o.consentFreshness || o.keepaliveConncheck;
    const cfg = {
      expectResponses: requests,
      consentFreshness: o.consentFreshness,
      disconnectedTimeout: o.disconnectedTimeout,
      consentTimeout: o.consentTimeout,
    };
    const delay = () => (o.consentFreshness ? consentDelay(o.consentInterval) : o.keepaliveInterval);
    const tick = () => {
      c.livenessTask = undefined;
      const pair = c.selected;
      if (!pair || this.#closed) return;
      const verdict = liveness(this.#scheduler.now(), c.lastResponseAt, cfg);
      if (verdict === 'expired') {
        this.#consentLost(s, c);
        return;
      }
      if (verdict === 'disconnected' && c.state === 'ready') this.#setState(s, c, 'disconnected');
      if (requests) {
        this.#checker.sendConsent(s, c, pair);
      } else {
        const t = c.transportFor(pair.local.base ?? pair.local);
        t?.send(encodeBindingIndication(), pair.remote.port, pair.remote.address);
        this.#stats.keepalivesSent++;
      }
      // Wake up in time to notice the deadlines even between checks.
      let next = delay();
      if (requests) {
        const silentFor = this.#scheduler.now() - c.lastResponseAt;
        const deadlines = [o.disconnectedTimeout, ...(o.consentFreshness ? [o.consentTimeout] : [])]
          .map((d) => d - silentFor).filter((d) => d > 0);
        next = Math.min(next, ...deadlines);
      }
      c.livenessTask = this.#scheduler.after(next, tick);
    };
    c.livenessTask = this.#scheduler.after(delay(), tick);
  }

  #consentResponse(s: Stream, c: Component, pair: CandidatePair): void {
    if (pair !== c.selected) return;
    c.lastResponseAt = this.#scheduler.now();
    if (c.state === 'disconnected') this.#setState(s, c, 'ready');
  }

  /** RFC 7675 §5.1: consent expired; stop sending on the pair at once. */
  #consentLost(s: Stream, c: Component): void {
    debug('stream %d component %d: consent lost', s.id, c.id);
    this.#stats.consentLost++;
    c.livenessTask?.cancel();
    c.sendPair = undefined;
    c.selected = undefined;
    c.resetAuthorization();
    this.#emit('consent-lost', s.id, c.id);
    this.#setState(s, c, 'failed');
  }

  #switchRole(controlling: boolean): void {
    if (this.#controlling === controlling) return;
    debug('role conflict: now %s', controlling ? 'controlling' : 'controlled');
    this.#controlling = controlling;
    this.#nominator = createNominator(controlling, this.options.nominationMode, this.options.nominationTimeout);
    for (const s of this.#streams.values()) s.checklist.setRole(controlling);
  }

  #checkHost(): CheckHost {
    // eslint-disable-next-line @typescript-eslint/no-this-alias
    const agent = this;
    return {
      stats: this.#stats,
      scheduler: this.#scheduler,
      tieBreaker: this.#tieBreaker,
      get controlling() { return agent.#controlling; },
      get nominator() { return agent.#nominator; },
      retransmitWaits: this.#waits,
      consentWaits: [this.options.consentInterval],
      maxRemoteCandidates: this.options.maxRemoteCandidates,
      foundation: (key) => this.#foundations.get(key),
      checklistSet: () => this.#checklistSet(),
      switchRole: (controlling) => this.#switchRole(controlling),
      wake: () => this.#wake(),
      initialRequest: (s) => {
        if (s.initialRequestSeen) return;
        s.initialRequestSeen = true;
        this.#emit('initial-binding-request-received', s.id);
      },
      remoteLearned: (s, _c, cand) => this.#emit('new-remote-candidate', { ...cand, streamId: s.id }),
      pairAdded: (s, c) => this.#pairAdded(s, c),
      pairValid: (s, c, p) => this.#pairValid(s, c, p),
      pairFailed: (s, c, p) => this.#pairFailed(s, c, p),
      consentResponse: (s, c, p) => this.#consentResponse(s, c, p),
      clientResponse: (key, m, rinfo) => {
        const h = this.#clientTx.get(key);
        if (!h) return false;
        h(m, rinfo);
        return true;
      },
    };
  }
}

function isIpLiteral(a: string): boolean {
  return /^[0-9.]+$/.test(a) || a.includes(':');
}

/** RFC 8445 §5.3: ufrag 4-256 ice-chars, pwd 22-256 ice-chars. */
function validateCredentials(ufrag: string, pwd: string): void {
  const iceChars = /^[A-Za-z0-9+/]+$/;
  if (typeof ufrag !== 'string' || ufrag.length < 4 || ufrag.length > 256 || !iceChars.test(ufrag)) {
    throw new InvalidArgumentError('ufrag', 'must be 4 to 256 ice-chars (RFC 8445 §5.3)');
  }
  if (typeof pwd !== 'string' || pwd.length < 22 || pwd.length > 256 || !iceChars.test(pwd)) {
    throw new InvalidArgumentError('pwd', 'must be 22 to 256 ice-chars (RFC 8445 §5.3)');
  }
}

/** Validates a remote candidate (object or RFC 8839 string) without touching any state. */
function toRemoteCandidate(x: Candidate | string, componentId: number | undefined, where: string): Candidate {
  let c: Candidate;
  if (typeof x === 'string') c = parseCandidate(x);
  else if (x && typeof x === 'object') {
    c = { ...x };
    const bad = (field: string, msg: string) => new InvalidArgumentError(`${where}.${field}`, msg);
    if (!['host', 'srflx', 'prflx', 'relay'].includes(c.type)) throw bad('type', `unknown type ${JSON.stringify(c.type)}`);
    if (c.transport !== 'udp' && c.transport !== 'tcp') throw bad('transport', `must be udp or tcp`);
    if (typeof c.foundation !== 'string' || !/^[A-Za-z0-9+/]{1,32}$/.test(c.foundation)) throw bad('foundation', 'must be 1 to 32 ice-chars');
    if (!Number.isInteger(c.priority) || c.priority < 1 || c.priority > 0xffffffff) throw bad('priority', 'must be an integer 1..2^32-1');
    if (typeof c.address !== 'string' || c.address.length === 0) throw bad('address', 'must be a non-empty string');
    if (!Number.isInteger(c.port) || c.port < 0 || c.port > 65535) throw bad('port', 'must be an integer 0..65535');
    if (!Number.isInteger(c.component) || c.component < 1 || c.component > 256) throw bad('component', 'must be an integer 1..256');
  } else throw new InvalidArgumentError(where, 'must be a candidate object or string');
  if (componentId !== undefined && c.component !== componentId) {
    throw new InvalidArgumentError(`${where}.component`, `is ${c.component}, but the call is for component ${componentId}`);
  }
  delete c.base;
  delete c.streamId;
  return c;
}
