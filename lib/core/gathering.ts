/**
 * Gathering inside the core (RFC 8445 §5.1.1): host candidates for the
 * transports the shell bound, announced at once; then, in parallel,
 * server-reflexive candidates from every STUN server on every host transport
 * of the server's family (a Binding request, RFC 8489 retransmissions bounded
 * by `serverTimeout`, §5.1.1.2) and a relayed candidate from every TURN server
 * (lib/core/relay.ts). A server that fails is reported and gathering goes on;
 * `candidate-gathering-done` comes when every server has answered, failed or
 * timed out. Every transaction is a deadline in the state, owned by its stream.
 */
import { isV6, type TransportAddress } from '../transport/address.js';
import { ServerError, TurnError } from '../errors.js';
import { Allocation } from '../turn/allocation.js';
import { udpWaits } from '../turn/codec.js';
import {
  type DecodedStun, HEADER_LENGTH, MAGIC_COOKIE, crc32, getErrorCode, getXorMappedAddress,
} from '../stun/message.js';
import { type Candidate, computePriority, foundationKey, foundationOf, hostLocalPreference, localPreferenceOf } from './candidate.js';
import { addPair, canPair } from './checklist.js';
import { append, type Ctx, emit, log, nextId, publicCandidate, streamSet } from './context.js';
import { describePair } from './pair.js';
import { formatAddress } from '../transport/address.js';
import { newPair } from './pair.js';
import { permitFor, startAllocation } from './relay.js';
import { evaluate, pairsAdded } from './selection.js';
import { none, type ComponentData, type LocalCand, type RemoteCand, type SrflxTx, type StreamData, type TransportRecord } from './state.js';
import { addTcpSrflx } from './tcp.js';
import { countDrop, countRare } from '../stats.js';

export interface StunServerPlan {
  url: string;
  /** The resolved address, or undefined with `error` saying why there is none. */
  address?: string;
  port: number;
  error?: string;
}

export interface TurnServerPlan {
  url: string;
  address?: string;
  port: number;
  transport: 'udp' | 'tcp';
  secure: boolean;
  username: string;
  credential: string;
  ca?: string | Buffer | Array<string | Buffer>;
  rejectUnauthorized?: boolean;
  servername?: string;
  error?: string;
  /** For one component only (setRelayInfo); every component when undefined. */
  componentId?: number;
}

/** The servers of one gathering, resolved by the shell (name lookups are I/O). */
export interface ServerPlan {
  stun: StunServerPlan[];
  turn: TurnServerPlan[];
}

/** A host transport the shell bound for a component: its host candidate (§5.1.1.1) is announced at once. */
export function addHostTransport(ctx: Ctx, s: StreamData, c: ComponentData, local: TransportAddress, rank: number): number {
  const t: TransportRecord = {
    id: nextId(ctx), kind: 'host', protocol: 'udp', streamId: s.id, componentId: c.id, local: { ...local },
    allocationId: undefined, rank, servers: none(),
  };
  ctx.d.transports.set(t.id, t);
  if (!ctx.o.forceRelay) {
    // An announced address (1:1 NAT, virtual IP) is what the peer can reach; the base stays the bound one.
    const address = ctx.o.announcedAddresses[local.address] ?? local.address;
    addLocalCandidate(ctx, s, c, t.id, {
      type: 'host',
      transport: 'udp',
      foundation: foundationOf(ctx.d.foundations, foundationKey('host', local.address, 'udp')),
      component: c.id,
      priority: computePriority('host', hostLocalPreference(rank), c.id),
      address,
      port: local.port,
      base: { ...local },
      streamId: s.id,
    });
  }
  return t.id;
}

/** Announces a local candidate and pairs it with the remote candidates known so far (trickle). */
export function addLocalCandidate(ctx: Ctx, s: StreamData, c: ComponentData, transportId: number, cand: Candidate): LocalCand {
  const l: LocalCand = { id: nextId(ctx), transportId, c: cand };
  c.local = append(c.local, l);
  log(ctx, 'gather', 'debug', () => `stream ${s.id} component ${c.id}: local candidate ${cand.type} ${formatAddress(cand.address, cand.port)} priority ${cand.priority}`);
  emit(ctx, { type: 'new-candidate', candidate: publicCandidate(s, l) });
  for (const r of c.remote) formPair(ctx, s, c, l, r);
  return l;
}

/** Forms the pair (local, remote) if they can be paired (§6.1.2.2) and the checklist set has room. */
export function formPair(ctx: Ctx, s: StreamData, c: ComponentData, local: LocalCand, remote: RemoteCand): void {
  if (ctx.o.forceRelay && local.c.type !== 'relay') return;
  if (!canPair(local.c, remote.c)) return;
  const pair = newPair(nextId(ctx), s.generation, local, remote, ctx.d.controlling);
  const r = addPair(streamSet(ctx), s, pair, remote, local.c.priority, ctx.d.controlling, ctx.o.maxPairs);
  if (!r.added) {
    if (r.reason === 'full') countDrop(ctx.d.stats, 'tableFull');
    return;
  }
  log(ctx, 'check', 'trace', () => `stream ${s.id} component ${c.id}: pair ${describePair(pair, local, remote)} formed`);
  if (local.c.type === 'relay') permitFor(ctx, local, remote);
  pairsAdded(ctx, s, c);
}

function serverError(ctx: Ctx, s: StreamData, c: ComponentData, error: ServerError): void {
  log(ctx, 'gather', 'warn', `stream ${s.id} component ${c.id}: ${error.message}`);
  countRare(ctx.d.stats, 'serverErrors');
  emit(ctx, { type: 'server-error', streamId: s.id, componentId: c.id, error });
}

/**
 * The first retransmission timeout of a request to a STUN or TURN server
 * during gathering: 250 ms (Chromium's initial STUN RTO), less for a short
 * `serverTimeout`. The waits then double within the timeout (RFC 8489
 * §6.2.1, lib/turn/codec.ts udpWaits): with the default 2 s, four
 * transmissions, at 0, 250, 750 and 1750 ms, so that a lossy path (20% each
 * way) still gets an answer 98% of the time.
 */
function serverRto(timeoutMs: number): number {
  return Math.max(1, Math.min(250, Math.floor(timeoutMs / 8)));
}

/** A Binding request to a STUN server (RFC 8489 §6): no credentials, FINGERPRINT only. */
function encodeServerBinding(transactionId: Buffer): Buffer {
  const b = Buffer.alloc(HEADER_LENGTH + 8);
  b.writeUInt16BE(0x0001, 0);
  b.writeUInt16BE(8, 2);
  b.writeUInt32BE(MAGIC_COOKIE, 4);
  transactionId.copy(b, 8);
  b.writeUInt16BE(0x8028, 20);
  b.writeUInt16BE(4, 22);
  b.writeUInt32BE((crc32(b.subarray(0, 20)) ^ 0x5354554e) >>> 0, 24);
  return b;
}

/** Starts every server job of a stream's gathering; with none, gathering is complete at once. */
export function startServers(ctx: Ctx, s: StreamData, plan: ServerPlan): void {
  const d = ctx.d;
  for (const c of s.components.values()) {
    const hosts = [...d.transports.values()].filter((t) => t.kind === 'host' && t.streamId === s.id && t.componentId === c.id);
    if (!ctx.o.forceRelay) {
      for (const sv of plan.stun) {
        if (sv.address === undefined) {
          serverError(ctx, s, c, new ServerError('stun', sv.url, undefined, sv.error ?? 'no address'));
          continue;
        }
        // A server of the other family serves the other family's sockets.
        for (const t of hosts) if (isV6(t.local.address) === isV6(sv.address)) startSrflx(ctx, s, c, t, sv.url, { address: sv.address, port: sv.port });
      }
    }
    for (const sv of plan.turn) {
      if (sv.componentId !== undefined && sv.componentId !== c.id) continue;
      if (sv.address === undefined) {
        serverError(ctx, s, c, new TurnError(sv.url, undefined, sv.error ?? 'no address'));
        continue;
      }
      startRelay(ctx, s, c, hosts, sv, sv.address);
    }
  }
  if (s.pendingServerJobs === 0) finishGathering(ctx, s);
}

function startSrflx(ctx: Ctx, s: StreamData, c: ComponentData, t: TransportRecord, url: string, server: TransportAddress): void {
  const tid = ctx.env.randomBytes(12);
  const waits = udpWaits(serverRto(ctx.o.serverTimeout), ctx.o.serverTimeout);
  const tx: SrflxTx = {
    key: tid.toString('hex'), streamId: s.id, componentId: c.id, transportId: t.id, url, server,
    bytes: encodeServerBinding(tid), attempt: 0, waits, nextAt: ctx.now + waits[0]!,
  };
  ctx.d.srflx.set(tx.key, tx);
  t.servers = append(t.servers, { address: server.address, port: server.port, allocationId: undefined });
  s.pendingServerJobs++;
  ctx.env.transmit(t.id, server, tx.bytes);
}

function startRelay(ctx: Ctx, s: StreamData, c: ComponentData, hosts: TransportRecord[], sv: TurnServerPlan, address: string): void {
  const d = ctx.d;
  const host = hosts.find((t) => isV6(t.local.address) === isV6(address));
  if (!host) {
    serverError(ctx, s, c, new TurnError(sv.url, undefined, `no local ${isV6(address) ? 'IPv6' : 'IPv4'} address to reach the server from`));
    return;
  }
  const server = { address, port: sv.port };
  let link = host;
  if (sv.transport === 'tcp') {
    // A connection of its own, from the host address; the shell opens it and answers linkOpened/linkFailed.
    link = {
      id: nextId(ctx), kind: 'link', protocol: 'tcp', streamId: s.id, componentId: c.id, local: { address: host.local.address, port: 0 },
      allocationId: undefined, rank: host.rank, servers: none(),
    };
    d.transports.set(link.id, link);
  }
  const machine = new Allocation({
    url: sv.url,
    server,
    transport: sv.transport === 'udp' ? 'udp' : sv.secure ? 'tls' : 'tcp',
    username: sv.username,
    password: sv.credential,
    timeoutMs: ctx.o.serverTimeout,
    rto: serverRto(ctx.o.serverTimeout),
  });
  const rec = { id: nextId(ctx), streamId: s.id, componentId: c.id, url: sv.url, linkId: link.id, relayId: undefined, machine, pending: true };
  d.allocations.set(rec.id, rec);
  link.servers = append(link.servers, { ...server, allocationId: rec.id });
  if (link.kind === 'link') link.allocationId = rec.id;
  s.pendingServerJobs++;
  if (link.kind === 'link') {
    ctx.events.push({
      type: 'open-link', transportId: link.id, remote: server, localAddress: host.local.address, tls: sv.secure,
      servername: sv.servername, ca: sv.ca, rejectUnauthorized: sv.rejectUnauthorized,
    });
  } else startAllocation(ctx, rec);
}

/** A server job ended (answered, failed, timed out). */
export function jobDone(ctx: Ctx, s: StreamData): void {
  if (s.pendingServerJobs > 0) s.pendingServerJobs--;
  if (s.pendingServerJobs === 0 && s.gathering === 'gathering') finishGathering(ctx, s);
}

function finishGathering(ctx: Ctx, s: StreamData): void {
  s.gathering = 'complete';
  log(ctx, 'gather', 'info', () => `stream ${s.id}: gathering done, ${[...s.components.values()].reduce((n, c) => n + c.local.length, 0)} local candidates`);
  emit(ctx, { type: 'candidate-gathering-done', streamId: s.id });
  ctx.d.pacerIdle = false;
  evaluate(ctx, s);
}

/** A STUN answer on a host transport from a server of a gathering transaction; false if it is not one. */
export function srflxResponse(ctx: Ctx, t: TransportRecord, from: TransportAddress, m: DecodedStun): boolean {
  const tx = ctx.d.srflx.get(m.transactionId.toString('hex'));
  // RFC 8489 §6.3.1 matches by transaction id; the source check stops spoofing from elsewhere.
  if (!tx || tx.transportId !== t.id || from.address !== tx.server.address || from.port !== tx.server.port) return false;
  if (m.cls !== 'success' && m.cls !== 'error') return false;
  const s = ctx.d.streams.get(tx.streamId);
  const c = s?.components.get(tx.componentId);
  endSrflx(ctx, tx);
  if (!s || !c) return true;
  if (m.cls === 'error') {
    const e = getErrorCode(m);
    serverError(ctx, s, c, new ServerError('stun', tx.url, e?.code, e ? `${e.code} ${e.reason}` : 'error response'));
  } else {
    const mapped = getXorMappedAddress(m);
    if (!mapped) serverError(ctx, s, c, new ServerError('stun', tx.url, undefined, 'response without XOR-MAPPED-ADDRESS'));
    else addSrflx(ctx, s, c, t, tx.server.address, mapped);
  }
  jobDone(ctx, s);
  return true;
}

/**
 * A server-reflexive candidate on host transport `t`, the mapping `mapped`
 * seen by `serverAddress`: from a STUN Binding response, or from the
 * XOR-MAPPED-ADDRESS of a TURN Allocate response (RFC 8445 §5.1.1.2, RFC 8656
 * §7.3), so that a lost Binding exchange on a lossy path does not cost the
 * direct srflx path when the allocation got through.
 */
export function addSrflx(ctx: Ctx, s: StreamData, c: ComponentData, t: TransportRecord, serverAddress: string, mapped: TransportAddress): void {
  if (ctx.o.forceRelay || t.kind !== 'host' || t.protocol !== 'udp') return;
  // Not behind a NAT (the mapping is the host address), or a second server
  // reporting the same mapping: nothing new (§5.1.3 removes such duplicates).
  if (c.local.some((x) => x.c.address === mapped.address && x.c.port === mapped.port)) return;
  const host = c.local.find((x) => x.transportId === t.id && x.c.type === 'host');
  addLocalCandidate(ctx, s, c, t.id, {
    type: 'srflx',
    transport: 'udp',
    foundation: foundationOf(ctx.d.foundations, foundationKey('srflx', t.local.address, 'udp', serverAddress)),
    component: c.id,
    priority: computePriority('srflx', host ? localPreferenceOf(host.c.priority) : hostLocalPreference(t.rank), c.id),
    address: mapped.address,
    port: mapped.port,
    base: { ...t.local },
    relatedAddress: t.local.address,
    relatedPort: t.local.port,
    streamId: s.id,
  });
  // ICE-TCP: a passive srflx candidate from the same mapping, where the NAT keeps ports (lib/core/tcp.ts).
  addTcpSrflx(ctx, s, c, t, mapped, serverAddress);
}

export function srflxTimeout(ctx: Ctx, tx: SrflxTx): void {
  if (tx.attempt + 1 < tx.waits.length) {
    tx.attempt++;
    tx.nextAt = ctx.now + tx.waits[tx.attempt]!;
    ctx.env.transmit(tx.transportId, tx.server, tx.bytes);
    return;
  }
  endSrflx(ctx, tx);
  const s = ctx.d.streams.get(tx.streamId);
  const c = s?.components.get(tx.componentId);
  if (!s || !c) return;
  serverError(ctx, s, c, new ServerError('stun', tx.url, undefined, `no response within ${ctx.o.serverTimeout} ms`));
  jobDone(ctx, s);
}

function endSrflx(ctx: Ctx, tx: SrflxTx): void {
  ctx.d.srflx.delete(tx.key);
  const t = ctx.d.transports.get(tx.transportId);
  if (!t) return;
  const i = t.servers.findIndex((x) => x.allocationId === undefined && x.address === tx.server.address && x.port === tx.server.port);
  if (i >= 0) t.servers.splice(i, 1);
}
