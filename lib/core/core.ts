/**
 * The sans-I/O ICE core: one state machine per agent (the shape of libjuice's
 * agent_input()/agent_bookkeeping() and str0m's handle_input/poll_output).
 *
 * Inputs: API calls, datagrams (with the transport they arrived on and their
 * source), and "the time is now T" (`handleTimeout`). Outputs: datagrams, sent
 * through the environment's `transmit` as they are produced; application data,
 * through `deliver`; events, queued and taken by the shell after each input
 * (`takeEvents`), so that no listener runs inside the core; and the next time
 * the core must be woken (`nextTimeout`). The core reads no clock, owns no
 * timer or socket, and takes its randomness from the environment; its state
 * (`d`) is plain data. Every method returns normally for any datagram: nothing
 * from the network can make it throw. API misuse throws typed errors before
 * any state changes.
 */
import { LazyMap } from './lazy.js';
import { answerConsent } from './lite-answer.js';
import { nextDeadline, runDue } from './deadlines.js';
import { addressKey, type TransportAddress } from '../transport/address.js';
import type { ResolvedOptions } from '../options.js';
import { InvalidArgumentError, InvalidStateError, UnknownStreamError } from '../errors.js';
import { BINDING_REQUEST, decodeStun, isStunFrame, verifyFingerprint } from '../stun/message.js';
import { countDrop, countRare, createCounters, snapshotStats, type AgentStats } from '../stats.js';
import { checkRemoteCandidate, copyCandidate, usableRemote, unusableReason, type Candidate } from './candidate.js';
import { pairById, pairFrom } from './checklist.js';
import { type CoreEnv, type CoreEvent, type Ctx, publicCandidate, remoteById, setState } from './context.js';
import { createRole, type Role } from './nomination.js';
import { onRequest, onResponse } from './check.js';
import { addHostTransport, srflxResponse, startServers, type ServerPlan } from './gathering.js';
import {
  closeAllocation, linkLost, relayReceive, serverAt, startAllocation, transmitVia,
} from './relay.js';
import { addRemote, newCredentials, restartGeneration, setRemoteCredentials } from './remote.js';
import { evaluate, flushTraffic, renominate } from './selection.js';
import { NEVER, none, newComponent, type ComponentData, type ComponentState, type CoreData, type Credentials, type StreamData, type TransportRecord } from './state.js';
import { retransmitWaits } from '../stun/transaction.js';
import { pairList, statsReport, type PairInfo, type StreamStats } from './report.js';
import { exportSession, importSession, type SessionSnapshot } from './session.js';
import {
  addTcpHost, baseIdOf, closeConnection, tcpAccepted, tcpClosed, tcpOpened,
  type TcpDrop,
} from './tcp.js';

export type { CoreEnv, CoreEvent, PairInfo, ServerPlan };

export interface SelectedPair {
  local: Candidate;
  remote: Candidate;
}

/** What addRemoteCandidates did with each candidate. */
export interface RemoteResult {
  added: number;
  /** Candidates that parse but this agent cannot use (TCP, mDNS names, unknown types), with the reason. */
  skipped: Array<{ candidate: Candidate; reason: string }>;
}

/** RFC 8445 §5.3: ufrag 4-256 ice-chars, pwd 22-256 ice-chars. */
export function validateCredentials(ufrag: unknown, pwd: unknown): Credentials {
  const iceChars = /^[A-Za-z0-9+/]+$/;
  if (typeof ufrag !== 'string' || ufrag.length < 4 || ufrag.length > 256 || !iceChars.test(ufrag)) {
    throw new InvalidArgumentError('ufrag', 'must be 4 to 256 ice-chars (RFC 8445 §5.3)');
  }
  if (typeof pwd !== 'string' || pwd.length < 22 || pwd.length > 256 || !iceChars.test(pwd)) {
    throw new InvalidArgumentError('pwd', 'must be 22 to 256 ice-chars (RFC 8445 §5.3)');
  }
  return { ufrag, pwd };
}

export class IceCore implements Ctx {
  readonly o: Readonly<ResolvedOptions>;
  readonly d: CoreData;
  readonly env: CoreEnv;
  role: Role;
  now: number;
  events: CoreEvent[] = [];
  readonly waits: readonly number[];
  /**
   * Set when an input may have changed deadlines or queued events; the data
   * path (a datagram of application data, a send on a direct pair) leaves it
   * alone, so that the shell does no bookkeeping per data packet.
   */
  dirty = false;

  constructor(options: Readonly<ResolvedOptions>, env: CoreEnv, now: number) {
    this.o = options;
    this.env = env;
    this.now = now;
    this.waits = retransmitWaits(options.stunInitialTimeout, options.stunMaxRetransmissions, options.stunMaxTimeout);
    this.role = createRole(options.controllingMode && !options.iceLite, options.nominationMode, options.nominationTimeout, options.iceLite);
    this.d = {
      // A lite agent is always the controlled one against a full agent (RFC 8445 §6.1.1).
      controlling: options.controllingMode && !options.iceLite,
      // RFC 8445 §7.1.3 / §16.1: a 64-bit random tie-breaker for role conflicts.
      tieBreaker: env.randomBytes(8).readBigUInt64BE(),
      nextStreamId: 1,
      nextId: 1,
      streams: new LazyMap(),
      transports: new LazyMap(),
      checks: new LazyMap(),
      srflx: new LazyMap(),
      allocations: new LazyMap(),
      foundations: new LazyMap(),
      nextCheckAt: 0,
      pacerIdle: true,
      rr: 0,
      burstWindowAt: NEVER,
      burstCount: 0,
      closing: false,
      revision: 0,
      stats: createCounters(),
    };
  }

  /** The events produced since the last call, in order. */
  takeEvents(): CoreEvent[] {
    const e = this.events;
    // Most inputs queue nothing: no new array for them (this runs after every datagram).
    if (e.length === 0) return none();
    this.events = [];
    return e;
  }

  // ------------------------------------------------------------ streams

  stream(id: number): StreamData {
    if (this.d.closing) throw new InvalidStateError('the agent is closed');
    if (!Number.isInteger(id)) throw new InvalidArgumentError('streamId', `must be an integer, got ${JSON.stringify(id)}`);
    const s = this.d.streams.get(id);
    if (!s) throw new UnknownStreamError(id);
    return s;
  }

  component(streamId: number, componentId: number): ComponentData {
    const s = this.stream(streamId);
    if (!Number.isInteger(componentId)) throw new InvalidArgumentError('componentId', `must be an integer, got ${JSON.stringify(componentId)}`);
    const c = s.components.get(componentId);
    if (!c) throw new UnknownStreamError(streamId, componentId);
    return c;
  }

  addStream(nComponents: number): number {
    if (this.d.closing) throw new InvalidStateError('the agent is closed');
    if (!Number.isInteger(nComponents) || nComponents < 1 || nComponents > 256) {
      throw new InvalidArgumentError('nComponents', `must be an integer from 1 to 256, got ${nComponents}`);
    }
    const id = this.d.nextStreamId++;
    const components = new LazyMap<number, ComponentData>();
    for (let c = 1; c <= nComponents; c++) components.set(c, newComponent(c));
    this.d.streams.set(id, {
      id, generation: 0, local: newCredentials(this), previousLocal: undefined, remote: undefined, previousRemote: undefined,
      restartPending: false, remoteUsed: false, lastCheckAt: NEVER, remoteEndOfCandidates: false, lastRemoteCandidateAt: 0,
      gathering: 'new', pendingServerJobs: 0, initialRequestSeen: false, components, pairs: none(), triggered: none(), freeAt: undefined,
    });
    return id;
  }

  /** Removes a stream; returns the host transports the shell must close (links close through events). */
  removeStream(id: number, now: number): number[] {
    this.stream(id);
    this.now = now;
    for (const [k, tx] of this.d.checks) if (tx.streamId === id) this.d.checks.delete(k);
    for (const [k, tx] of this.d.srflx) if (tx.streamId === id) this.d.srflx.delete(k);
    for (const rec of [...this.d.allocations.values()]) if (rec.streamId === id) closeAllocation(this, rec);
    this.d.streams.delete(id);
    const hosts: number[] = [];
    for (const t of [...this.d.transports.values()]) {
      if (t.streamId !== id || t.kind === 'link') continue;
      // Host sockets, ICE-TCP listeners and connections: the shell's to close.
      if (t.kind !== 'relay') hosts.push(t.id);
      this.d.transports.delete(t.id);
    }
    return hosts;
  }

  // -------------------------------------------------------- credentials

  setLocalCredentials(id: number, ufrag: string, pwd: string): void {
    const s = this.stream(id);
    const creds = validateCredentials(ufrag, pwd);
    if (s.remoteUsed || s.pairs.some((p) => p.state !== 'frozen' && p.state !== 'waiting')) {
      throw new InvalidStateError(`stream ${id}: local credentials cannot change once checks have run (restart the stream instead)`);
    }
    s.local = creds;
  }

  setRemoteCredentials(id: number, ufrag: string, pwd: string, now: number): boolean {
    const s = this.stream(id);
    const creds = validateCredentials(ufrag, pwd);
    this.now = now;
    return setRemoteCredentials(this, s, creds);
  }

  /** ICE restart of one stream (§9): new local credentials, fresh checklist, remote candidates forgotten. */
  restartStream(id: number, now: number): void {
    const s = this.stream(id);
    this.now = now;
    restartGeneration(this, s, () => false);
    s.restartPending = true;
    s.lastRemoteCandidateAt = now;
  }

  peerCandidateGatheringDone(id: number, now: number): void {
    const s = this.stream(id);
    this.now = now;
    s.remoteEndOfCandidates = true;
    evaluate(this, s);
  }

  // ---------------------------------------------------------- gathering

  beginGathering(id: number): void {
    const s = this.stream(id);
    s.gathering = 'gathering';
    for (const c of s.components.values()) setState(this, s, c, 'gathering');
  }

  addHostTransport(streamId: number, componentId: number, local: TransportAddress, rank: number, now: number): number {
    const s = this.stream(streamId);
    const c = this.component(streamId, componentId);
    this.now = now;
    return addHostTransport(this, s, c, local, rank);
  }

  startServers(streamId: number, plan: ServerPlan, now: number): void {
    const s = this.stream(streamId);
    this.now = now;
    startServers(this, s, plan);
  }

  /**
   * ICE-TCP host candidates on `address` (lib/core/tcp.ts): active, and
   * passive on `listener` if the shell could listen. Returns the bases'
   * transport ids (the passive one is the listener's).
   */
  addTcpHost(streamId: number, componentId: number, address: string, listener: TransportAddress | undefined, rank: number, now: number): { active: number | undefined; passive: number | undefined } {
    const s = this.stream(streamId);
    const c = this.component(streamId, componentId);
    this.now = now;
    return addTcpHost(this, s, c, address, listener, rank);
  }

  /** A connection was accepted on the passive base `baseId`: its transport id, or undefined (close it). */
  tcpAccepted(baseId: number, remote: TransportAddress, local: TransportAddress, now: number): number | undefined {
    this.now = now;
    this.dirty = true;
    return tcpAccepted(this, baseId, remote, local);
  }

  /** The ICE-TCP connection the core asked for (an `open-tcp` event) is open. */
  tcpOpened(transportId: number, local: TransportAddress, now: number): void {
    this.now = now;
    tcpOpened(this, transportId, local);
  }

  /** The shell closed an ICE-TCP connection for what the peer sent (a frame over the limit): counted. */
  tcpDropped(transportId: number, drop: TcpDrop, reason: string, now: number): void {
    this.now = now;
    const t = this.d.transports.get(transportId);
    if (t?.kind === 'tcp-conn') closeConnection(this, t, reason, drop);
  }

  /** The TCP/TLS link the core asked for (an `open-link` event) is up. */
  linkOpened(transportId: number, local: TransportAddress, now: number): void {
    this.now = now;
    const t = this.d.transports.get(transportId);
    const rec = t?.allocationId !== undefined ? this.d.allocations.get(t.allocationId) : undefined;
    if (!t || !rec) return;
    t.local = { ...local };
    startAllocation(this, rec);
  }

  /** A link could not be opened, or a transport closed under us (a TCP connection ended). */
  transportClosed(transportId: number, reason: string, now: number): void {
    this.now = now;
    if (tcpClosed(this, transportId, reason)) return;
    const t = this.d.transports.get(transportId);
    const rec = t?.allocationId !== undefined ? this.d.allocations.get(t.allocationId) : undefined;
    if (t?.kind === 'link' && rec) linkLost(this, rec, reason);
  }

  // -------------------------------------------------- remote candidates

  /** Validates every candidate first (a bad one throws and nothing is added), then adds the usable ones. */
  addRemoteCandidates(streamId: number, componentId: number | undefined, list: ReadonlyArray<Candidate | string>, where: string, now: number): RemoteResult {
    const s = this.stream(streamId);
    if (componentId !== undefined) this.component(streamId, componentId);
    const parsed = list.map((x, i) => checkRemoteCandidate(x, componentId, list.length === 1 && componentId === undefined ? where : `${where}[${i}]`));
    for (const c of parsed) this.component(streamId, c.component);
    this.now = now;
    const out: RemoteResult = { added: 0, skipped: [] };
    for (const cand of parsed) {
      if (!usableRemote(cand, this.o)) {
        out.skipped.push({ candidate: cand, reason: unusableReason(cand, this.o) });
        continue;
      }
      if (addRemote(this, s, s.components.get(cand.component)!, cand)) out.added++;
    }
    evaluate(this, s);
    return out;
  }

  // --------------------------------------------------------------- data

  /** Sends on the component's send pair; false when there is none or the datagram cannot go. */
  send(streamId: number, componentId: number, data: Uint8Array, now: number): boolean {
    const c = this.component(streamId, componentId);
    const s = this.d.streams.get(streamId)!;
    const pair = pairById(s, c.sendPairId);
    if (!pair || c.consentLost) return false;
    const local = c.local.find((l) => l.id === pair.localId);
    const remote = remoteById(c, pair.remoteId);
    if (!local || !remote) return false;
    // Through a relay, a send may start a permission: deadlines may change.
    if (this.d.transports.get(local.transportId)?.kind === 'relay') this.dirty = true;
    // ICE-TCP: the pair's connection.
    const ok = transmitVia(this, pair.connId ?? local.transportId, remote.c, data);
    if (ok) {
      this.d.stats.dataPacketsSent++;
      this.d.stats.dataBytesSent += data.length;
      c.tx.packets++;
      c.tx.bytes += data.length;
      c.tx.lastAt = now;
    }
    return ok;
  }

  /** A datagram (or, on a TCP/TLS link, one frame) arrived on a transport. Never throws. */
  receive(transportId: number, from: TransportAddress, data: Buffer, now: number): void {
    const t = this.d.transports.get(transportId);
    const st = this.d.stats;
    st.packetsReceived++;
    st.bytesReceived += data.length;
    if (!t || (this.d.closing && t.servers.length === 0 && t.kind !== 'link')) {
      countDrop(st, 'closed');
      return;
    }
    this.now = now;
    if (t.kind === 'link' || t.servers.length > 0) {
      this.dirty = true;
      const rec = t.kind === 'link' ? this.d.allocations.get(t.allocationId!) : serverAt(this, t, from);
      if (t.kind !== 'link' && data.length >= 20 && data[0]! < 4 && isStunFrame(data)) {
        const m = decodeStun(data);
        if (m && srflxResponse(this, t, from, m)) {
          countRare(st, 'serverPacketsReceived');
          return;
        }
      }
      if (rec) {
        // One counter per datagram: what the server relays counts where its content ends (#inbound).
        const inner = relayReceive(this, rec, data);
        const relay = inner && rec.relayId !== undefined ? this.d.transports.get(rec.relayId) : undefined;
        if (!inner) countRare(st, 'serverPacketsReceived');
        else if (relay && !this.d.closing) this.#inbound(relay, inner.peer, inner.data);
        else countDrop(st, 'closed');
        return;
      }
      if (t.kind === 'link') {
        countDrop(st, 'closed');
        return;
      }
    }
    if (this.d.closing) {
      countDrop(st, 'closed');
      return;
    }
    this.#inbound(t, from, data);
    // ICE-TCP: an accepted connection whose first frame did not authenticate it is not ICE (lib/core/tcp.ts).
    if (t.tcp?.incoming && !t.tcp.authenticated && this.d.transports.get(t.id) === t) {
      this.dirty = true;
      closeConnection(this, t, 'its first frame was not an authenticated check', 'tcpUnauthenticated');
    }
  }

  /**
   * RFC 7983 demultiplexing with RFC 8445's test of what is STUN: framed
   * (first two bits zero, magic cookie, length) with a valid FINGERPRINT.
   * Everything else is the application's — whatever its first byte — if it
   * comes from a remote address that passed a check.
   */
  #inbound(t: TransportRecord, from: TransportAddress, data: Buffer): void {
    const st = this.d.stats;
    const looksStun = data.length >= 20 && data[0]! < 4 && isStunFrame(data);
    const fingerprint = looksStun ? verifyFingerprint(data) : 'missing';
    if (fingerprint === 'ok') {
      // A lite session's consent request on its selected pair: answered without decoding (lib/core/lite-answer.ts).
      if (answerConsent(this, t, from, data)) {
        this.dirty = true;
        return;
      }
      const m = decodeStun(data);
      if (!m) {
        countDrop(st, 'malformed');
        return;
      }
      this.dirty = true;
      if (m.method !== BINDING_REQUEST) {
        countDrop(st, 'unsupported');
        return;
      }
      if (m.cls === 'request') onRequest(this, t, from, m);
      else if (m.cls === 'indication') countRare(st, 'stunIndicationsReceived'); // keepalives (§11): nothing to do
      else onResponse(this, t, from, m);
      return;
    }
    const s = this.d.streams.get(t.streamId);
    const c = s?.components.get(t.componentId);
    if (!c) {
      countDrop(st, 'closed');
      return;
    }
    if (from.port !== c.lastSrcPort || from.address !== c.lastSrcAddress) {
      if (!c.authorized.has(addressKey(from.address, from.port))) {
        if (fingerprint === 'bad') countDrop(st, 'badFingerprint');
        else if (data.length > 0 && data[0]! < 4) countDrop(st, 'malformed');
        else countDrop(st, 'unauthorizedSource');
        return;
      }
      c.lastSrcAddress = from.address;
      c.lastSrcPort = from.port;
      // A new source: what came from the previous one goes to its pair, the count starts for this one's.
      flushTraffic(s!, c.rx, 'received');
      const p = pairFrom(s!, baseIdOf(t), from.address, from.port);
      c.rx.pairId = p ? (p.validPairId ?? p.id) : undefined;
    }
    if (!this.env.deliver(t.streamId, t.componentId, data, from)) {
      countDrop(st, 'noReceiver');
      return;
    }
    st.dataPacketsReceived++;
    st.dataBytesReceived += data.length;
    c.rx.packets++;
    c.rx.bytes += data.length;
    c.rx.lastAt = this.now;
  }

  // --------------------------------------------------------------- time

  /** Runs everything that is due at `now` (lib/core/deadlines.ts). */
  handleTimeout(now: number): void {
    this.now = now;
    runDue(this, now);
  }

  /** The earliest deadline of the state; Infinity when nothing is pending (lib/core/deadlines.ts). */
  nextTimeout(): number {
    return nextDeadline(this);
  }

  // ------------------------------------------------------------ queries

  localCandidates(streamId: number, componentId: number): Candidate[] {
    const s = this.stream(streamId);
    return this.component(streamId, componentId).local.map((l) => publicCandidate(s, l));
  }

  remoteCandidates(streamId: number, componentId: number): Candidate[] {
    return this.component(streamId, componentId).remote.map((r) => copyCandidate(r.c));
  }

  selectedPair(streamId: number, componentId: number): SelectedPair | undefined {
    const s = this.stream(streamId);
    const c = this.component(streamId, componentId);
    const p = pairById(s, c.selectedPairId);
    const l = p && c.local.find((x) => x.id === p.localId);
    const r = p && remoteById(c, p.remoteId);
    return l && r ? { local: publicCandidate(s, l), remote: copyCandidate(r.c) } : undefined;
  }

  componentState(streamId: number, componentId: number): ComponentState {
    return this.component(streamId, componentId).state;
  }

  /** The checklist and valid list, highest priority first (valid-only pairs included). */
  pairs(streamId: number): PairInfo[] {
    return pairList(this.stream(streamId));
  }

  /** The agent's counters, and per stream, component, pair and candidate the W3C stats (lib/core/report.ts). JSON-safe. */
  stats(): AgentStats & { streams: StreamStats[] } {
    return { ...snapshotStats(this.d.stats), streams: statsReport(this.d) };
  }

  /**
   * Renomination: nominates the valid pair between these candidates (or, by
   * default, the best valid pair) again; see selection.ts renominate.
   */
  renominate(streamId: number, componentId: number, now: number, between?: { local: TransportAddress; remote: TransportAddress }): boolean {
    const s = this.stream(streamId);
    const c = this.component(streamId, componentId);
    this.now = now;
    return renominate(this, s, c, between);
  }

  // ------------------------------------------------------------ session

  /** The live session as a snapshot (lib/core/session.ts). */
  exportSession(now: number, key?: string | Buffer): SessionSnapshot {
    if (this.d.closing) throw new InvalidStateError('the agent is closed');
    return exportSession(this.d, now, key);
  }

  /** Replaces this (fresh) core's state by a verified snapshot's. */
  importSession(snap: SessionSnapshot, now: number): void {
    this.now = now;
    Object.assign(this.d, importSession(snap, now));
    this.role = createRole(this.d.controlling, this.o.nominationMode, this.o.nominationTimeout, this.o.iceLite);
  }

  // -------------------------------------------------------------- close

  /**
   * Stops every check; TURN allocations are released (Refresh 0, bounded) —
   * unless `release` is false (a session handed over to another process keeps
   * them). `closed` tells when they are done.
   */
  close(now: number, release = true): void {
    this.now = now;
    if (this.d.closing) return;
    this.d.closing = true;
    this.d.checks.clear();
    this.d.srflx.clear();
    if (release) for (const rec of [...this.d.allocations.values()]) closeAllocation(this, rec);
    else this.d.allocations.clear();
  }

  /** After close(): every allocation is released (or given up on). */
  get closed(): boolean {
    return this.d.closing && this.d.allocations.size === 0;
  }
}
