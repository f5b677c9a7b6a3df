/**
 * Session continuity: a live session exported as JSON-safe, versioned data,
 * and re-created from it in another process with no gathering, no checks and
 * no ICE restart. What makes it possible is that the core's state is plain
 * data: the snapshot is that state with times turned into "ms left" and
 * bigints into strings; transactions in flight are left out (their answers
 * would come to the old process).
 *
 * The snapshot holds the session's passwords (ICE and TURN): store it as you
 * would store them. It carries a SHA-256 checksum over its content, or an
 * HMAC-SHA256 when the application gives a key (then a snapshot changed by
 * someone without the key is refused as tampered).
 */
import { LazyMap } from './lazy.js';
import { createHash, createHmac, timingSafeEqual } from 'node:crypto';
import { IceError } from '../errors.js';
import { Allocation } from '../turn/allocation.js';
import type { AllocationSnapshot } from '../turn/types.js';
import type { TransportAddress } from '../transport/address.js';
import type { Candidate } from './candidate.js';
import { NEVER, none, append, newComponent, type AllocationRecord, type ComponentData, type CoreData, type Credentials, type Pair, type PairCounters, type StreamData, type TransportRecord, type TurnServerConfig } from './state.js';

export const SESSION_FORMAT = 'ice-agent-session';
export const SESSION_VERSION = 1;

/** A snapshot was refused: another format or version, corrupted, tampered, or its ports cannot be bound. */
export class SessionError extends IceError {
  readonly reason: 'format' | 'version' | 'corrupted' | 'tampered' | 'bind';
  /** With reason `bind`: the local address and port that could not be bound. */
  readonly address: string | undefined;
  readonly port: number | undefined;
  constructor(reason: SessionError['reason'], message: string, where?: TransportAddress) {
    super('ERR_ICE_SESSION', message);
    this.reason = reason;
    this.address = where?.address;
    this.port = where?.port;
  }
}

interface SnapshotPair extends Omit<Pair, 'priority' | 'txKey' | 'counters'> {
  priority: string;
  counters: PairCounters;
}

interface SnapshotComponent {
  id: number;
  state: ComponentData['state'];
  local: ComponentData['local'];
  remote: Array<{ id: number; c: Candidate }>;
  retired: Array<{ id: number; c: Candidate }>;
  selectedPairId?: number;
  sendPairId?: number;
  consentPairId?: number;
  consentLost: boolean;
  authorized: string[];
  relayServers: TurnServerConfig[];
}

interface SnapshotStream {
  id: number;
  generation: number;
  local: Credentials;
  previousLocal?: Credentials;
  remote?: Credentials;
  previousRemote?: Credentials;
  restartPending: boolean;
  remoteUsed: boolean;
  remoteEndOfCandidates: boolean;
  initialRequestSeen: boolean;
  components: SnapshotComponent[];
  pairs: SnapshotPair[];
}

interface SnapshotAllocation {
  id: number;
  streamId: number;
  componentId: number;
  url: string;
  linkId: number;
  relayId?: number;
  server: TransportAddress;
  username: string;
  password: string;
  timeoutMs: number;
  state: AllocationSnapshot;
}

export interface SessionBody {
  format: typeof SESSION_FORMAT;
  version: number;
  controlling: boolean;
  /** The 64-bit tie-breaker (RFC 8445 §7.1.3), decimal. */
  tieBreaker: string;
  nextId: number;
  nextStreamId: number;
  foundations: Array<[string, string]>;
  streams: SnapshotStream[];
  /** Host and relayed transports (TCP links to TURN servers do not survive a process). */
  transports: Array<Omit<TransportRecord, 'servers' | 'allocationId'> & { allocationId?: number }>;
  allocations: SnapshotAllocation[];
}

export interface SessionSnapshot extends SessionBody {
  /** `sha256:<hex>` of the content, or `hmac-sha256:<hex>` with the application's key. */
  checksum: string;
}

/** Canonical JSON (sorted keys), so that the checksum does not depend on property order. */
function canonical(v: unknown): string {
  if (Array.isArray(v)) return `[${v.map(canonical).join(',')}]`;
  if (v !== null && typeof v === 'object') {
    return `{${Object.keys(v).sort().filter((k) => (v as Record<string, unknown>)[k] !== undefined)
      .map((k) => `${JSON.stringify(k)}:${canonical((v as Record<string, unknown>)[k])}`).join(',')}}`;
  }
  return JSON.stringify(v);
}

function checksum(body: SessionBody, key: string | Buffer | undefined): string {
  const text = canonical(body);
  return key === undefined
    ? `sha256:${createHash('sha256').update(text).digest('hex')}`
    : `hmac-sha256:${createHmac('sha256', key).update(text).digest('hex')}`;
}

/** The state as a snapshot; `now` turns deadlines into time left. */
export function exportSession(d: CoreData, now: number, key?: string | Buffer): SessionSnapshot {
  const streams: SnapshotStream[] = [...d.streams.values()].map((s) => ({
    id: s.id, generation: s.generation, local: { ...s.local },
    ...(s.previousLocal ? { previousLocal: { ...s.previousLocal } } : {}),
    ...(s.remote ? { remote: { ...s.remote } } : {}),
    ...(s.previousRemote ? { previousRemote: { ...s.previousRemote } } : {}),
    restartPending: s.restartPending, remoteUsed: s.remoteUsed, remoteEndOfCandidates: s.remoteEndOfCandidates,
    initialRequestSeen: s.initialRequestSeen,
    components: [...s.components.values()].map((c) => ({
      id: c.id, state: c.state,
      local: c.local.map((l) => ({ id: l.id, transportId: l.transportId, c: structuredClone(l.c) })),
      remote: c.remote.map((r) => ({ id: r.id, c: structuredClone(r.c) })),
      retired: c.retired.map((r) => ({ id: r.id, c: structuredClone(r.c) })),
      ...(c.selectedPairId !== undefined ? { selectedPairId: c.selectedPairId } : {}),
      ...(c.sendPairId !== undefined ? { sendPairId: c.sendPairId } : {}),
      ...(c.consent ? { consentPairId: c.consent.pairId } : {}),
      consentLost: c.consentLost, authorized: [...c.authorized], relayServers: structuredClone(c.relayServers),
    })),
    pairs: s.pairs.map((p) => {
      // An ICE-TCP connection does not survive the process: the pair is exported without it.
      const { txKey: _tx, connId: _conn, priority, counters, ...rest } = p;
      void _tx;
      void _conn;
      return { ...rest, priority: priority.toString(), counters: { ...counters } };
    }),
  }));
  const transports = [...d.transports.values()]
    // TCP links to TURN servers and ICE-TCP listeners and connections do not survive a process.
    .filter((t) => t.kind === 'host' || t.kind === 'relay')
    .map((t) => ({
      id: t.id, kind: t.kind, protocol: t.protocol, streamId: t.streamId, componentId: t.componentId, local: { ...t.local }, rank: t.rank,
      ...(t.allocationId !== undefined ? { allocationId: t.allocationId } : {}),
    }));
  const allocations: SnapshotAllocation[] = [];
  for (const rec of d.allocations.values()) {
    const state = rec.machine.snapshot(now);
    if (!state || d.transports.get(rec.linkId)?.kind !== 'host') continue;
    const cfg = rec.machine.config;
    allocations.push({
      id: rec.id, streamId: rec.streamId, componentId: rec.componentId, url: rec.url, linkId: rec.linkId,
      ...(rec.relayId !== undefined ? { relayId: rec.relayId } : {}),
      server: { ...cfg.server }, username: cfg.username, password: cfg.password, timeoutMs: cfg.timeoutMs, state,
    });
  }
  const body: SessionBody = {
    format: SESSION_FORMAT, version: SESSION_VERSION, controlling: d.controlling, tieBreaker: d.tieBreaker.toString(),
    nextId: d.nextId, nextStreamId: d.nextStreamId, foundations: [...d.foundations], streams, transports, allocations,
  };
  return { ...body, checksum: checksum(body, key) };
}

/** Checks format, version and checksum; throws a SessionError, changes nothing. */
export function verifySession(snap: unknown, key?: string | Buffer): SessionSnapshot {
  const s = snap as Partial<SessionSnapshot> | null;
  if (s === null || typeof s !== 'object' || s.format !== SESSION_FORMAT) throw new SessionError('format', 'not an ice-agent session snapshot');
  if (s.version !== SESSION_VERSION) throw new SessionError('version', `snapshot version ${String(s.version)}; this library reads version ${SESSION_VERSION}`);
  const { checksum: sum, ...body } = s as SessionSnapshot;
  if (typeof sum !== 'string') throw new SessionError('corrupted', 'the snapshot has no checksum');
  const keyed = sum.startsWith('hmac-sha256:');
  if (keyed && key === undefined) throw new SessionError('tampered', 'the snapshot is keyed (HMAC): give its key to restore it');
  const want = checksum(body, keyed ? key : undefined);
  const ok = want.length === sum.length && timingSafeEqual(Buffer.from(want), Buffer.from(sum));
  if (!ok) throw new SessionError(keyed ? 'tampered' : 'corrupted', keyed ? 'the snapshot does not match its HMAC: changed without the key' : 'the snapshot does not match its checksum');
  return s as SessionSnapshot;
}

/**
 * The state of a verified snapshot. Consent (or keepalives) resume at once:
 * the selected pair is usable right away, and the first consent answer tells
 * the peer's consent again (RFC 7675); no check, no gathering, no Allocate.
 */
export function importSession(snap: SessionSnapshot, now: number): Omit<CoreData, 'stats' | 'closing'> {
  const streams = new LazyMap<number, StreamData>();
  for (const ss of snap.streams) {
    const components = new LazyMap<number, ComponentData>();
    for (const sc of ss.components) {
      const c = newComponent(sc.id);
      c.state = sc.state;
      c.local = sc.local.map((l) => ({ id: l.id, transportId: l.transportId, c: structuredClone(l.c) }));
      c.remote = sc.remote.map((r) => ({ id: r.id, c: structuredClone(r.c), addedAt: -Infinity }));
      c.retired = sc.retired.map((r) => ({ id: r.id, c: structuredClone(r.c), addedAt: -Infinity }));
      c.selectedPairId = sc.selectedPairId;
      c.sendPairId = sc.sendPairId;
      c.tx.pairId = sc.sendPairId;
      c.consentLost = sc.consentLost;
      for (const a of sc.authorized) c.authorized.add(a);
      c.relayServers = structuredClone(sc.relayServers);
      if (sc.consentPairId !== undefined) c.consent = { pairId: sc.consentPairId, nextAt: now, lastResponseAt: now };
      if (c.selectedPairId !== undefined) c.firstValidAt = now;
      components.set(c.id, c);
    }
    streams.set(ss.id, {
      id: ss.id, generation: ss.generation, local: { ...ss.local }, previousLocal: ss.previousLocal, remote: ss.remote,
      previousRemote: ss.previousRemote, restartPending: ss.restartPending, remoteUsed: ss.remoteUsed, lastCheckAt: NEVER,
      remoteEndOfCandidates: ss.remoteEndOfCandidates, lastRemoteCandidateAt: now, gathering: 'complete', pendingServerJobs: 0,
      initialRequestSeen: ss.initialRequestSeen, components,
      pairs: ss.pairs.map((p) => ({
        ...p, priority: BigInt(p.priority), txKey: undefined, counters: { ...p.counters },
        // A check that was in flight went with the old process: the pair waits to be checked again.
        state: p.state === 'in-progress' ? 'waiting' : p.state,
      })),
      triggered: none(), freeAt: undefined,
    });
  }
  const transports = new LazyMap<number, TransportRecord>();
  for (const t of snap.transports) transports.set(t.id, { ...t, local: { ...t.local }, allocationId: t.allocationId, servers: none() });
  const allocations = new LazyMap<number, AllocationRecord>();
  for (const a of snap.allocations) {
    const machine = Allocation.restore({
      url: a.url, server: { ...a.server }, transport: 'udp', username: a.username, password: a.password, timeoutMs: a.timeoutMs,
    }, a.state, now);
    allocations.set(a.id, { id: a.id, streamId: a.streamId, componentId: a.componentId, url: a.url, linkId: a.linkId, relayId: a.relayId, machine, pending: false });
    const link = transports.get(a.linkId);
    if (link) link.servers = append(link.servers, { address: a.server.address, port: a.server.port, allocationId: a.id });
  }
  return {
    controlling: snap.controlling, tieBreaker: BigInt(snap.tieBreaker), nextStreamId: snap.nextStreamId, nextId: snap.nextId,
    streams, transports, checks: new LazyMap(), srflx: new LazyMap(), allocations, foundations: new LazyMap(snap.foundations),
    nextCheckAt: now, pacerIdle: false, rr: 0, burstWindowAt: NEVER, burstCount: 0, revision: 0,
  };
}
