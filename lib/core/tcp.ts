/**
 * ICE-TCP (RFC 6544) in the core: TCP host candidates, their priorities
 * (§4.2), which pairs form (§6.2), and the connections pairs are checked on
 * (§7). Sans-I/O like the rest of the core: a connection is a transport
 * (kind `tcp-conn`) the shell opens when a check asks for it (an `open-tcp`
 * event, as TURN links are `open-link`), or one it accepted on a passive
 * candidate's listening socket (`tcpAccepted`). The shell frames every
 * ICE-TCP connection with RFC 4571 (lib/transport/tcp.ts): the core sees
 * whole frames and writes whole frames.
 *
 * - A passive candidate (a listening socket) never connects; an active one
 *   (port 9, §4.5) connects once per pair, when the pair is checked (§7.1).
 * - A connection accepted on a passive socket carries whichever pair its
 *   first authenticated check names: usually a new one, with a
 *   peer-reflexive remote of tcptype active (the peer's ephemeral port,
 *   §7.2). Our triggered check and later our data go back on it.
 * - Checks on a connection are sent once: TCP retransmits, STUN must not
 *   (§7.1, RFC 8489 §6.2.2); the whole retransmission horizon is one wait.
 * - Losing a connection fails its pair; the selected pair's loss ends the
 *   component as lost consent does (RFC 7675: nothing carries its data any more).
 * - A connection nobody authenticates is bounded: closed after
 *   `UNAUTHENTICATED_TIMEOUT_MS`, or when its first frame is not an
 *   authenticated check, or when its listener has `MAX_UNAUTHENTICATED`
 *   newer ones; each counted in `stats.dropped`.
 *
 * Simultaneous open (tcptype so) is paired (§6.2) but never gathered: see
 * the README "ICE-TCP" paragraph for why.
 */
import { formatAddress, isV6, type TransportAddress } from '../transport/address.js';
import { countDrop, countRare, type DropCounters } from '../stats.js';
import { type CandidateType, type TcpType, computePriority, foundationKey, foundationOf } from './candidate.js';
import { canCheck } from './checklist.js';
import { type Ctx, log, nextId } from './context.js';
import { consentLost } from './consent.js';
import { addLocalCandidate } from './gathering.js';
import { evaluate, pairFailed, setSendPair, updateSelection } from './selection.js';
import { none, type ComponentData, type LocalCand, type Pair, type RemoteCand, type StreamData, type TcpInfo, type TransportRecord } from './state.js';

/** RFC 6544 §4.5: the port of an active candidate, which has none until its connection opens (9, discard). */
export const ACTIVE_PORT = 9;
/** Connections accepted on one passive candidate and not yet bound to a pair; one more closes the oldest. */
export const MAX_UNAUTHENTICATED = 16;
/** How long an accepted connection may stay without a pair (pion's TCPMux waits 30 s; a check comes at once). */
export const UNAUTHENTICATED_TIMEOUT_MS = 10_000;
/** Frames written on a connection that is still opening (checks, early data); more are refused. */
const MAX_QUEUED = 8;

export type TcpDrop = keyof Pick<DropCounters, 'tcpFrameTooLong' | 'tcpIdle' | 'tcpUnauthenticated' | 'tcpFlood'>;

/**
 * RFC 6544 §4.2 direction preference: host (and relayed) candidates prefer
 * active 6, passive 4, so 2; server- and peer-reflexive ones, behind a NAT
 * where simultaneous open is what gets through, so 6, active 4, passive 2.
 */
export function directionPreference(type: CandidateType | string, tcpType: TcpType): number {
  const hostLike = type === 'host' || type === 'relay';
  if (tcpType === 'active') return hostLike ? 6 : 4;
  if (tcpType === 'passive') return hostLike ? 4 : 2;
  return hostLike ? 2 : 6;
}

/**
 * RFC 6544 §4.2 local preference: 2^13 × direction-pref + other-pref, with
 * other-pref 8191 for the first local address and one less per rank (unique
 * per address, as §4.2 requires of multihomed hosts). The type preferences
 * stay RFC 8445's (§4.2: "the same formula and candidate type preferences").
 * UDP ranks above TCP by the local preference alone: a UDP host candidate's
 * is 65535 − 128 × rank (lib/core/candidate.ts), at least 57344 for the first
 * 64 addresses, above the best TCP one (6 × 8192 + 8191 = 57343); so a
 * UDP pair wins over a TCP pair between the same hosts.
 */
export function tcpLocalPreference(type: CandidateType | string, tcpType: TcpType, rank: number): number {
  return 0x2000 * directionPreference(type, tcpType) + Math.max(0, 8191 - rank);
}

/**
 * RFC 6544 §6.2 pairing: active with passive, so with so; never active with
 * active or passive with passive. A local passive candidate is pruned from
 * the checklist (it cannot initiate): its pairs come only from connections
 * the peer opens (`learnPair` in check.ts), so it pairs with nothing here.
 */
export function tcpPairable(local: TcpType | undefined, remote: TcpType | undefined): boolean {
  return (local === 'active' && remote === 'passive') || (local === 'so' && remote === 'so');
}

/** The tcptype of a peer-reflexive remote learned on a connection of a local candidate of tcptype `local` (§7.2). */
export function peerTcpType(local: TcpType): TcpType {
  return local === 'passive' ? 'active' : local === 'active' ? 'passive' : 'so';
}

/** The peer's signalled active candidate on `address`, the one a connection from there was opened by (§4.5: port 9). */
export function signalledActive(c: ComponentData, address: string): RemoteCand | undefined {
  return c.remote.find((r) => r.c.transport === 'tcp' && r.c.tcpType === 'active' && r.c.type !== 'prflx' && r.c.address === address);
}

/** The transport pairs are keyed by: a connection's base, else the transport itself. */
export function baseIdOf(t: TransportRecord): number {
  return t.tcp?.baseId ?? t.id;
}

/** §7.1: a check on a connection is sent once and waits for what its retransmissions would have taken together. */
export function reliableTimeout(ctx: Ctx): number {
  return ctx.waits.reduce((a, b) => a + b, 0);
}

function tcpInfo(tcpType: TcpType, baseId: number, now: number, conn?: Partial<TcpInfo>): TcpInfo {
  return {
    tcpType, baseId, remote: undefined, state: 'open', incoming: false, authenticated: true, idleAt: undefined,
    queue: [], pairId: undefined, openedAt: now, ...conn,
  };
}

// ------------------------------------------------------------- gathering

/**
 * The TCP host candidates of one local address (RFC 6544 §5.1): active
 * (port 9) unless this is an ICE-lite agent, which never initiates, and
 * passive on `listener`, the socket the shell listens on (none if it could
 * not listen). An announced address (1:1 NAT) stands in for the local one,
 * as for UDP. Returns the bases' transport ids.
 */
export function addTcpHost(
  ctx: Ctx, s: StreamData, c: ComponentData, address: string, listener: TransportAddress | undefined, rank: number,
): { active: number | undefined; passive: number | undefined } {
  const out: { active: number | undefined; passive: number | undefined } = { active: undefined, passive: undefined };
  const bases: Array<[TcpType, TransportAddress]> = [];
  if (ctx.role.sendsChecks) bases.push(['active', { address, port: ACTIVE_PORT }]);
  if (listener) bases.push(['passive', { address: listener.address, port: listener.port }]);
  for (const [tcpType, local] of bases) {
    const id = nextId(ctx);
    ctx.d.transports.set(id, {
      id, kind: 'tcp-base', protocol: 'tcp', streamId: s.id, componentId: c.id, local, allocationId: undefined, rank, servers: none(),
      tcp: tcpInfo(tcpType, id, ctx.now),
    });
    out[tcpType as 'active' | 'passive'] = id;
    addLocalCandidate(ctx, s, c, id, {
      type: 'host',
      transport: 'tcp',
      // libnice too gives active and passive candidates of one address foundations of their own.
      foundation: foundationOf(ctx.d.foundations, `${foundationKey('host', local.address, 'tcp')}|${tcpType}`),
      component: c.id,
      priority: computePriority('host', tcpLocalPreference('host', tcpType, rank), c.id),
      address: ctx.o.announcedAddresses[local.address] ?? local.address,
      port: local.port,
      base: { ...local },
      tcpType,
      streamId: s.id,
    });
  }
  return out;
}

/**
 * Server-reflexive TCP candidates (RFC 6544 §5.2) the way libnice makes
 * them: a STUN answer over UDP gave the NAT's address, and the passive
 * srflx candidate is that address with the listener's port. That is right
 * only where the NAT keeps ports (and lets SYNs in: a 1:1 NAT, a port
 * forward), so one is made only when the UDP mapping kept our port — the
 * evidence we have that this NAT keeps them. Active srflx candidates are not
 * announced: the passive side learns the NAT's address from our first check
 * as peer-reflexive anyway (§7.2).
 */
export function addTcpSrflx(ctx: Ctx, s: StreamData, c: ComponentData, udp: TransportRecord, mapped: TransportAddress, server: string): void {
  if (!ctx.o.iceTcp || mapped.port !== udp.local.port) return;
  for (const t of [...ctx.d.transports.values()]) {
    if (t.kind !== 'tcp-base' || t.tcp?.tcpType !== 'passive' || t.streamId !== s.id || t.componentId !== c.id) continue;
    if (t.local.address !== udp.local.address) continue;
    if (c.local.some((l) => l.c.transport === 'tcp' && l.c.address === mapped.address && l.c.port === t.local.port)) continue;
    addLocalCandidate(ctx, s, c, t.id, {
      type: 'srflx',
      transport: 'tcp',
      foundation: foundationOf(ctx.d.foundations, `${foundationKey('srflx', t.local.address, 'tcp', server)}|passive`),
      component: c.id,
      priority: computePriority('srflx', tcpLocalPreference('srflx', 'passive', t.rank), c.id),
      address: mapped.address,
      port: t.local.port,
      base: { ...t.local },
      relatedAddress: t.local.address,
      relatedPort: t.local.port,
      tcpType: 'passive',
      streamId: s.id,
    });
  }
}

// ----------------------------------------------------------- connections

/**
 * The transport a check (or data) on `pair` goes on: for UDP the local
 * candidate's, for TCP the pair's connection — opened now (asked of the
 * shell) if the local candidate is active and there is none (§7.1). A
 * passive candidate never connects (§6.2): undefined when its connection is gone.
 */
export function checkTransport(ctx: Ctx, pair: Pair, local: LocalCand, remote: RemoteCand): number | undefined {
  if (local.c.transport !== 'tcp') return local.transportId;
  if (pair.connId !== undefined && ctx.d.transports.has(pair.connId)) return pair.connId;
  pair.connId = undefined;
  const base = ctx.d.transports.get(local.transportId);
  if (base?.kind !== 'tcp-base' || !base.tcp || base.tcp.tcpType !== 'active') return undefined;
  const id = nextId(ctx);
  const to = { address: remote.c.address, port: remote.c.port };
  ctx.d.transports.set(id, {
    id, kind: 'tcp-conn', protocol: 'tcp', streamId: base.streamId, componentId: base.componentId,
    local: { address: base.local.address, port: 0 }, allocationId: undefined, rank: base.rank, servers: none(),
    tcp: tcpInfo(base.tcp.tcpType, base.id, ctx.now, { remote: to, state: 'connecting', pairId: pair.id }),
  });
  pair.connId = id;
  countRare(ctx.d.stats, 'tcpConnectionsOpened');
  log(ctx, 'check', 'debug', () => `stream ${base.streamId} component ${base.componentId}: TCP connection ${base.local.address} -> ${formatAddress(to.address, to.port)} (RFC 6544 §7.1)`);
  ctx.events.push({ type: 'open-tcp', transportId: id, localAddress: base.local.address, remote: to });
  return id;
}

/** Sends on a connection still opening: the frame waits (bounded) until it opens. */
export function queueFrame(t: TransportRecord, bytes: Uint8Array): boolean {
  const q = t.tcp!.queue;
  if (q.length >= MAX_QUEUED) return false;
  q.push(Buffer.from(bytes));
  return true;
}

/** The shell opened the connection the core asked for: what waited goes out. */
export function tcpOpened(ctx: Ctx, id: number, local: TransportAddress): void {
  const t = ctx.d.transports.get(id);
  if (t?.kind !== 'tcp-conn' || !t.tcp || t.tcp.state !== 'connecting') return;
  t.tcp.state = 'open';
  t.local = { address: local.address, port: local.port };
  const queued = t.tcp.queue;
  t.tcp.queue = [];
  for (const frame of queued) ctx.env.transmit(id, t.tcp.remote!, frame);
}

/**
 * A connection was accepted on a passive candidate's listener: it becomes a
 * transport, without a pair until its first authenticated check (§7.2). At
 * most MAX_UNAUTHENTICATED wait so per listener: a flood closes the oldest.
 * Undefined when nothing here takes it (the shell closes it).
 */
export function tcpAccepted(ctx: Ctx, baseId: number, remote: TransportAddress, local: TransportAddress): number | undefined {
  const base = ctx.d.transports.get(baseId);
  if (ctx.d.closing || base?.kind !== 'tcp-base' || base.tcp?.tcpType !== 'passive' || !ctx.d.streams.has(base.streamId)) return undefined;
  const waiting = [...ctx.d.transports.values()]
    .filter((t) => t.kind === 'tcp-conn' && t.tcp!.baseId === baseId && t.tcp!.incoming && t.tcp!.pairId === undefined)
    .sort((a, b) => a.tcp!.openedAt - b.tcp!.openedAt);
  while (waiting.length >= MAX_UNAUTHENTICATED) {
    closeConnection(ctx, waiting.shift()!, `more than ${MAX_UNAUTHENTICATED} unauthenticated connections on ${formatAddress(base.local.address, base.local.port)}`, 'tcpFlood');
  }
  const id = nextId(ctx);
  ctx.d.transports.set(id, {
    id, kind: 'tcp-conn', protocol: 'tcp', streamId: base.streamId, componentId: base.componentId,
    local: { address: local.address, port: local.port }, allocationId: undefined, rank: base.rank, servers: none(),
    tcp: tcpInfo('passive', baseId, ctx.now, {
      remote: { address: remote.address, port: remote.port }, incoming: true, authenticated: false,
      idleAt: ctx.now + UNAUTHENTICATED_TIMEOUT_MS,
    }),
  });
  countRare(ctx.d.stats, 'tcpConnectionsAccepted');
  log(ctx, 'check', 'debug', () => `stream ${base.streamId} component ${base.componentId}: TCP connection from ${formatAddress(remote.address, remote.port)} accepted`);
  return id;
}

/** A Binding request on `t` passed MESSAGE-INTEGRITY. */
export function tcpAuthenticated(t: TransportRecord): void {
  if (t.tcp) t.tcp.authenticated = true;
}

/** The first authenticated check on a connection named its pair (§7.2): the pair's checks and data use it from now on. */
export function bindConnection(ctx: Ctx, t: TransportRecord, pair: Pair): void {
  if (t.kind !== 'tcp-conn' || !t.tcp || pair.connId === t.id) return;
  // One connection per pair (§7.1): a pair that has a live one keeps it.
  if (pair.connId !== undefined && ctx.d.transports.has(pair.connId)) return;
  pair.connId = t.id;
  t.tcp.pairId ??= pair.id;
  t.tcp.idleAt = undefined;
}

/**
 * The local candidate a success response on a connection maps to (§7.2.5.3.1
 * for TCP): the mapped port is the connection's, never an active
 * candidate's 9, so the address alone says whether it is the pair's own
 * local candidate, else a peer-reflexive one already learned.
 */
export function tcpMappedLocal(c: ComponentData, local: LocalCand, mapped: TransportAddress): LocalCand | undefined {
  if (mapped.address === local.c.address || mapped.address === local.c.base?.address) return local;
  return c.local.find((l) => l.c.transport === 'tcp' && l.c.type === 'prflx' && l.transportId === local.transportId && l.c.address === mapped.address);
}

/** The core lets a connection go (the shell closes it); `drop` counts why, when the peer gave cause. */
export function closeConnection(ctx: Ctx, t: TransportRecord, reason: string, drop?: TcpDrop): void {
  if (ctx.d.transports.get(t.id) !== t) return;
  ctx.d.transports.delete(t.id);
  if (drop) countDrop(ctx.d.stats, drop);
  log(ctx, 'check', drop ? 'debug' : 'trace', () => `stream ${t.streamId} component ${t.componentId}: closing TCP connection with ${formatAddress(t.tcp!.remote!.address, t.tcp!.remote!.port)}: ${reason}`);
  ctx.events.push({ type: 'close-transport', transportId: t.id });
  connectionGone(ctx, t, `TCP connection closed: ${reason}`);
}

/** The shell says a connection could not be opened, or closed under us (the peer, an error). False if it is no connection. */
export function tcpClosed(ctx: Ctx, id: number, reason: string): boolean {
  const t = ctx.d.transports.get(id);
  if (t?.kind !== 'tcp-conn' || !t.tcp) return false;
  ctx.d.transports.delete(id);
  const opening = t.tcp.state === 'connecting';
  if (opening) countRare(ctx.d.stats, 'tcpConnectFailures');
  connectionGone(ctx, t, `TCP connection ${opening ? 'failed' : 'closed'}: ${reason}`);
  return true;
}

/** A pair failed for good: its connection goes (the core closes it, the shell is told). */
export function releaseConnection(ctx: Ctx, s: StreamData, pair: Pair): void {
  const id = pair.connId;
  if (id === undefined) return;
  for (const p of s.pairs) if (p.connId === id) p.connId = undefined;
  const t = ctx.d.transports.get(id);
  if (t) closeConnection(ctx, t, 'its pair failed');
}

/**
 * A connection is gone: the pairs it carried lose it. The selected pair's
 * loss ends the component as lost consent does (nothing can carry its data:
 * RFC 7675's rule, without the 30 s); any other pair fails (§7.2.5.2).
 */
function connectionGone(ctx: Ctx, t: TransportRecord, reason: string): void {
  const s = ctx.d.streams.get(t.streamId);
  const c = s?.components.get(t.componentId);
  if (!s || !c) return;
  const carried = s.pairs.filter((p) => p.connId === t.id);
  for (const p of carried) p.connId = undefined;
  if (carried.length === 0 || ctx.d.closing) return;
  const selected = carried.find((p) => p.id === c.selectedPairId);
  if (selected && selected.generation === s.generation) {
    if (!c.consentLost) consentLost(ctx, s, c, reason);
    return;
  }
  if (selected) {
    // An ICE restart is under way (§9): the old pair's connection went first; data moves to the new generation's best.
    c.selectedPairId = undefined;
    setSendPair(ctx, s, c, undefined);
    updateSelection(ctx, s, c);
    return;
  }
  const generating = carried.find((p) => p.inChecklist) ?? carried[0]!;
  pairFailed(ctx, s, c, generating, reason);
}

/** Connections of `s` (or every stream) whose pairs are gone: an earlier generation's, pruned, removed. */
export function sweepConnections(ctx: Ctx, s?: StreamData): void {
  for (const t of [...ctx.d.transports.values()]) {
    if (t.kind !== 'tcp-conn' || !t.tcp || t.tcp.pairId === undefined || (s && t.streamId !== s.id)) continue;
    const st = ctx.d.streams.get(t.streamId);
    if (!st?.pairs.some((p) => p.connId === t.id)) closeConnection(ctx, t, 'its pair is gone');
  }
}

/**
 * Once every component of `s` has its selected pair (and a few seconds
 * passed, as for relays, §8.3, so that the peer has switched too): the
 * connections of pairs that are gone (an earlier generation's) or did not
 * make the valid list close. Valid pairs keep theirs: with aggressive
 * nomination the peer may have selected one of them.
 */
export function closeUnusedConnections(ctx: Ctx, s: StreamData): void {
  sweepConnections(ctx, s);
  for (const t of [...ctx.d.transports.values()]) {
    if (t.kind !== 'tcp-conn' || !t.tcp || t.streamId !== s.id || t.tcp.pairId === undefined) continue;
    if (!s.pairs.some((p) => p.connId === t.id && p.valid)) closeConnection(ctx, t, 'its pair is not valid and the checks are over');
  }
}

/**
 * RFC 6544 §6.2 leaves a local passive candidate no pair of its own: with
 * nothing else left to check, a component whose peer has an active candidate
 * of the family waits for the peer's connection before it fails — the
 * horizon of one check — and an ICE-lite agent waits for as long as the peer
 * checks. True while it waits.
 */
export function tcpAwaiting(ctx: Ctx, s: StreamData, c: ComponentData): boolean {
  if (!ctx.o.iceTcp || c.tcpWaitDone || !canCheck(s)) return false;
  const passive = c.local.filter((l) => l.c.transport === 'tcp' && l.c.tcpType === 'passive' && l.c.type === 'host');
  const active = (r: RemoteCand) => r.c.transport === 'tcp' && r.c.tcpType === 'active' && passive.some((l) => isV6(l.c.address) === isV6(r.c.address));
  if (passive.length === 0 || !c.remote.some(active)) return false;
  if (!ctx.role.sendsChecks) return true;
  c.tcpWaitAt ??= ctx.now + reliableTimeout(ctx);
  return true;
}

/** Deadlines: unbound connections that stayed too long, components that waited long enough for the peer. */
export function tcpTimeout(ctx: Ctx): void {
  if (!ctx.o.iceTcp) return;
  for (const t of [...ctx.d.transports.values()]) {
    const idle = t.tcp?.idleAt;
    if (t.kind !== 'tcp-conn' || idle === undefined || idle > ctx.now) continue;
    closeConnection(ctx, t, `no pair within ${UNAUTHENTICATED_TIMEOUT_MS} ms`, t.tcp!.authenticated ? undefined : 'tcpIdle');
  }
  for (const s of [...ctx.d.streams.values()]) {
    for (const c of s.components.values()) {
      if (c.tcpWaitAt === undefined || c.tcpWaitAt > ctx.now) continue;
      c.tcpWaitAt = undefined;
      c.tcpWaitDone = true;
      evaluate(ctx, s);
    }
  }
}

export function tcpNextTimeout(ctx: Ctx): number {
  if (!ctx.o.iceTcp) return Infinity;
  let at = Infinity;
  for (const t of ctx.d.transports.values()) if (t.tcp?.idleAt !== undefined && t.tcp.idleAt < at) at = t.tcp.idleAt;
  for (const s of ctx.d.streams.values()) for (const c of s.components.values()) if (c.tcpWaitAt !== undefined && c.tcpWaitAt < at) at = c.tcpWaitAt;
  return at;
}
