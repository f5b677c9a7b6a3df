/**
 * Relayed candidates (RFC 8445 §5.1.1.2, RFC 8656): each TURN allocation is a
 * transport of its component. What is sent on it is wrapped for the server
 * (Send indication, or ChannelData once a channel is bound, §11-12) and goes
 * out on the allocation's link; what the server relays back is handled as if
 * it had arrived from the peer directly. Allocations that fail or are lost are
 * reported, their candidates and pairs withdrawn at once; unused ones are
 * freed once the checklist completes (§8.3).
 */
import type { TransportAddress } from '../transport/address.js';
import { TurnError } from '../errors.js';
import type { AllocationEvent } from '../turn/allocation.js';
import { computePriority, foundationKey, foundationOf } from './candidate.js';
import { pairById, removePair, validPairs } from './checklist.js';
import { type Ctx, emit, log, nextId, setState, withAllocation } from './context.js';
import { addLocalCandidate, addSrflx, jobDone } from './gathering.js';
import { evaluate, runNomination, updateSelection } from './selection.js';
import { queueFrame } from './tcp.js';
import { none, type AllocationRecord, type LocalCand, type RemoteCand, type StreamData, type TransportRecord } from './state.js';
import { countRare } from '../stats.js';

/** Sends on a transport: a host socket or link directly, a relayed transport through its TURN server. */
export function transmitVia(ctx: Ctx, transportId: number, to: TransportAddress, bytes: Uint8Array): boolean {
  const t = ctx.d.transports.get(transportId);
  if (!t) return false;
  if (t.kind === 'tcp-conn' && t.tcp!.state === 'connecting') return queueFrame(t, bytes);
  // An ICE-TCP base has no socket to send on: its pairs' connections do (lib/core/tcp.ts).
  if (t.kind === 'tcp-base') return false;
  if (t.kind !== 'relay') return ctx.env.transmit(transportId, to, bytes);
  const rec = ctx.d.allocations.get(t.allocationId!);
  if (!rec || rec.machine.state !== 'allocated') return false;
  const data = Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
  return run(ctx, rec, (io) => rec.machine.send(io, data, to));
}

function run<T>(ctx: Ctx, rec: AllocationRecord, fn: Parameters<typeof withAllocation<T>>[2]): T {
  return withAllocation(ctx, rec, fn, (e) => onAllocationEvent(ctx, rec, e));
}

/** A frame from a TURN server: relayed data comes back with the peer it is from. */
export function relayReceive(ctx: Ctx, rec: AllocationRecord, buf: Buffer): { data: Buffer; peer: TransportAddress } | undefined {
  return run(ctx, rec, (io) => rec.machine.receive(io, buf));
}

export function allocationTimeout(ctx: Ctx, rec: AllocationRecord): void {
  run(ctx, rec, (io) => rec.machine.handleTimeout(io));
}

/** Starts the allocation (its link is up). */
export function startAllocation(ctx: Ctx, rec: AllocationRecord): void {
  run(ctx, rec, (io) => rec.machine.start(io));
}

export function closeAllocation(ctx: Ctx, rec: AllocationRecord): void {
  run(ctx, rec, (io) => rec.machine.close(io));
}

export function linkLost(ctx: Ctx, rec: AllocationRecord, reason: string): void {
  run(ctx, rec, (io) => rec.machine.linkClosed(io, reason));
}

/** RFC 8656 §9: the relay forwards only from peers with a permission; one per paired remote candidate. */
export function permitFor(ctx: Ctx, local: LocalCand, remote: RemoteCand): void {
  const rec = relayOf(ctx, local);
  if (rec) run(ctx, rec, (io) => rec.machine.permit(io, remote.c.address));
}

/** RFC 8656 §12: a channel to the selected pair's remote. */
export function bindChannelFor(ctx: Ctx, local: LocalCand, remote: RemoteCand): void {
  const rec = relayOf(ctx, local);
  if (rec) run(ctx, rec, (io) => rec.machine.bindChannel(io, { address: remote.c.address, port: remote.c.port }));
}

function relayOf(ctx: Ctx, local: LocalCand): AllocationRecord | undefined {
  const t = ctx.d.transports.get(local.transportId);
  if (!t || t.kind !== 'relay') return undefined;
  const rec = ctx.d.allocations.get(t.allocationId!);
  return rec && rec.machine.state === 'allocated' ? rec : undefined;
}

function serverError(ctx: Ctx, rec: AllocationRecord, error: TurnError): void {
  log(ctx, 'turn', 'warn', `stream ${rec.streamId} component ${rec.componentId}: ${error.message}`);
  countRare(ctx.d.stats, 'serverErrors');
  emit(ctx, { type: 'server-error', streamId: rec.streamId, componentId: rec.componentId, error });
}

function onAllocationEvent(ctx: Ctx, rec: AllocationRecord, e: AllocationEvent): void {
  // Allocations, permissions, channels and refreshed lifetimes are in a session export.
  ctx.d.revision++;
  const s = ctx.d.streams.get(rec.streamId);
  const c = s?.components.get(rec.componentId);
  switch (e.type) {
    case 'allocated': {
      if (!s || !c || ctx.d.closing) return;
      const t: TransportRecord = {
        id: nextId(ctx), kind: 'relay', protocol: 'udp', streamId: s.id, componentId: c.id, local: { address: e.relayed.address, port: e.relayed.port },
        allocationId: rec.id, rank: 0, servers: none(),
      };
      ctx.d.transports.set(t.id, t);
      rec.relayId = t.id;
      // The server saw the host transport's mapping: a server-reflexive candidate too (§5.1.1.2), in
      // case the Binding request of the STUN server was lost (or no STUN server was configured).
      const link = ctx.d.transports.get(rec.linkId);
      if (e.mapped && link) addSrflx(ctx, s, c, link, rec.machine.config.server.address, e.mapped);
      const relays = c.local.filter((l) => l.c.type === 'relay').length;
      addLocalCandidate(ctx, s, c, t.id, {
        type: 'relay',
        transport: 'udp',
        foundation: foundationOf(ctx.d.foundations, foundationKey('relay', t.local.address, 'udp', rec.machine.config.server.address)),
        component: c.id,
        // Relayed candidates keep a local preference of their own, below every host address.
        priority: computePriority('relay', 65535 - relays, c.id),
        address: t.local.address,
        port: t.local.port,
        base: { ...t.local },
        ...(e.mapped ? { relatedAddress: e.mapped.address, relatedPort: e.mapped.port } : {}),
        streamId: s.id,
      });
      finishJob(ctx, rec);
      return;
    }
    case 'failed':
      if (!ctx.d.closing) serverError(ctx, rec, e.error);
      finishJob(ctx, rec);
      return;
    case 'lost':
      if (!ctx.d.closing) serverError(ctx, rec, e.error);
      withdraw(ctx, rec);
      return;
    case 'closed':
      ctx.d.allocations.delete(rec.id);
      if (rec.relayId !== undefined) ctx.d.transports.delete(rec.relayId);
      if (ctx.d.transports.get(rec.linkId)?.kind === 'link') {
        ctx.d.transports.delete(rec.linkId);
        ctx.events.push({ type: 'close-transport', transportId: rec.linkId });
      }
      dropServerRoute(ctx, rec);
      return;
    case 'permission':
    case 'channel':
    case 'refresh-failed':
      if ('error' in e && e.error) log(ctx, 'turn', 'warn', `${rec.url}: ${e.error.message}`);
      return;
    case 'refresh':
      log(ctx, 'turn', 'debug', `${rec.url}: ${e.kind} refreshed (${e.detail})`);
      return;
  }
}

function finishJob(ctx: Ctx, rec: AllocationRecord): void {
  if (!rec.pending) return;
  rec.pending = false;
  const s = ctx.d.streams.get(rec.streamId);
  if (s) jobDone(ctx, s);
}

function dropServerRoute(ctx: Ctx, rec: AllocationRecord): void {
  const link = ctx.d.transports.get(rec.linkId);
  if (link) link.servers = link.servers.filter((x) => x.allocationId !== rec.id);
}

/**
 * The allocation is gone: its relayed candidate and every pair on it are
 * withdrawn at once; if the selected pair was one of them, data moves to the
 * best remaining valid pair and the controlling side nominates again.
 */
function withdraw(ctx: Ctx, rec: AllocationRecord): void {
  const s = ctx.d.streams.get(rec.streamId);
  const c = s?.components.get(rec.componentId);
  if (!s || !c || rec.relayId === undefined) return;
  const gone = new Set(c.local.filter((l) => l.transportId === rec.relayId).map((l) => l.id));
  c.local = c.local.filter((l) => !gone.has(l.id));
  let lostSelected = false;
  for (const p of [...s.pairs]) {
    if (p.component !== c.id || !gone.has(p.localId)) continue;
    if (p.txKey !== undefined) ctx.d.checks.delete(p.txKey);
    if (p.id === c.selectedPairId || p.id === c.sendPairId) lostSelected = true;
    removePair(s, p);
  }
  if (lostSelected) {
    c.selectedPairId = undefined;
    c.sendPairId = undefined;
    c.consent = undefined;
    if (validPairs(s, c.id)[0] && c.state === 'ready') setState(ctx, s, c, 'connected', 'the selected pair\'s allocation was lost');
  }
  updateSelection(ctx, s, c);
  runNomination(ctx, s, c);
  evaluate(ctx, s);
}

/** §8.3: once every component has its selected pair (plus 3 s), allocations no selected pair uses are freed. */
export function freeUnused(ctx: Ctx, s: StreamData): void {
  s.freeAt = undefined;
  for (const rec of [...ctx.d.allocations.values()]) {
    if (rec.streamId !== s.id || rec.relayId === undefined || rec.machine.state !== 'allocated') continue;
    const c = s.components.get(rec.componentId);
    if (!c) continue;
    const sel = pairById(s, c.selectedPairId);
    const inUse = sel !== undefined && c.local.some((l) => l.id === sel.localId && l.transportId === rec.relayId);
    if (inUse) continue;
    log(ctx, 'turn', 'info', `stream ${s.id} component ${c.id}: freeing the unused allocation on ${rec.url} (§8.3)`);
    const gone = new Set(c.local.filter((l) => l.transportId === rec.relayId).map((l) => l.id));
    c.local = c.local.filter((l) => !gone.has(l.id));
    for (const p of [...s.pairs]) if (gone.has(p.localId) && p.id !== c.sendPairId) removePair(s, p);
    closeAllocation(ctx, rec);
  }
}

/** The allocation whose server answers on this transport from `from`, if any. */
export function serverAt(ctx: Ctx, t: TransportRecord, from: TransportAddress): AllocationRecord | undefined {
  for (const sv of t.servers) {
    if (sv.port === from.port && sv.address === from.address && sv.allocationId !== undefined) {
      return ctx.d.allocations.get(sv.allocationId);
    }
  }
  return undefined;
}
