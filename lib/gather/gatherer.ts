/**
 * Gathering of one stream's candidates (RFC 8445 §5.1.1): host candidates
 * first, announced at once; then, in parallel, server-reflexive candidates
 * from every STUN server on every host socket and a relayed candidate from
 * every TURN server, each bounded by `serverTimeout`. A server that fails is
 * reported and gathering goes on. The agent owns the stream and its events;
 * this module owns the sockets and allocations it opens for it.
 */
import { isIP, isIPv6 } from 'node:net';
import { lookup } from 'node:dns/promises';
import createDebug from 'debug';
import { type Candidate, computePriority, foundationKey, hostLocalPreference } from '../candidate.js';
import type { Component } from '../component.js';
import type { Stream } from '../stream.js';
import type { ResolvedOptions, TurnServer } from '../options.js';
import type { Scheduler } from '../scheduler.js';
import type { AgentStats } from '../stats.js';
import type { DecodedStun } from '../stun/message.js';
import { TurnError } from '../errors.js';
import { parseIceServerUrl } from '../turn/url.js';
import { TurnClient } from '../turn/client.js';
import { RelayTransport } from '../transport/relay.js';
import { UdpTransport } from '../transport/udp.js';
import type { PacketTransport, RemoteAddress as RemoteInfo, SendFilter } from '../transport/transport.js';
import { hostAddresses } from './host.js';
import { stunBinding } from './srflx.js';

const debug = createDebug('ice-agent:gather');

/** What gathering needs from its agent. */
export interface GatherHost {
  readonly options: Readonly<ResolvedOptions>;
  readonly scheduler: Scheduler;
  readonly stats: AgentStats;
  readonly sendFilter: SendFilter | undefined;
  readonly closed: boolean;
  /** STUN client transactions on host sockets, by transaction id (the checker routes their responses here). */
  readonly clientTx: Map<string, (m: DecodedStun, rinfo: RemoteInfo) => void>;
  /** The stream is still part of an open agent. */
  alive(s: Stream): boolean;
  foundation(key: string): string;
  onPacket(s: Stream, c: Component, t: PacketTransport, msg: Buffer, rinfo: RemoteInfo): void;
  emitCandidate(cand: Candidate): void;
  formPair(s: Stream, c: Component, local: Candidate, remote: Candidate): void;
  emitServerError(s: Stream, c: Component, err: TurnError): void;
}

/**
 * Gathers every candidate of a stream; resolves when every server has
 * answered, failed or timed out. False when the agent closed or the stream
 * was removed meanwhile.
 */
export async function gatherStream(h: GatherHost, s: Stream): Promise<boolean> {
  const addrs = hostAddresses(h.options);
  const relayOnly = h.options.forceRelay;
  if (!relayOnly) {
    for (const c of s.components.values()) {
      for (let rank = 0; rank < addrs.length; rank++) {
        if (!(await gatherHost(h, s, c, addrs[rank]!, rank))) return false;
      }
    }
  }
  const jobs: Promise<void>[] = [];
  for (const c of s.components.values()) {
    if (!relayOnly) {
      for (const t of c.transports) {
        for (const url of h.options.stunServers) jobs.push(gatherSrflx(h, s, c, t as UdpTransport, url));
      }
    }
    for (const server of [...h.options.turnServers, ...c.relayServers]) jobs.push(gatherRelay(h, s, c, server, addrs));
  }
  await Promise.all(jobs);
  return h.alive(s);
}

/** One host candidate (§5.1.1.1); false when the agent or stream went away meanwhile. */
async function gatherHost(h: GatherHost, s: Stream, c: Component, address: string, rank: number): Promise<boolean> {
  let t: UdpTransport;
  try {
    t = await UdpTransport.bind(address, h.options.portRange);
  } catch (err) {
    debug('cannot bind %s: %s', address, (err as Error).message);
    return true;
  }
  if (!h.alive(s)) {
    await t.close();
    return false;
  }
  attachTransport(h, s, c, t);
  addLocal(h, s, c, {
    type: 'host',
    transport: 'udp',
    foundation: h.foundation(foundationKey('host', address, 'udp')),
    component: c.id,
    priority: computePriority('host', hostLocalPreference(rank), c.id),
    address: t.address,
    port: t.port,
    base: { address: t.address, port: t.port },
    streamId: s.id,
  });
  return true;
}

function attachTransport(h: GatherHost, s: Stream, c: Component, t: PacketTransport): void {
  c.transports.push(t);
  t.filter = h.sendFilter;
  t.onPacket((msg, rinfo) => h.onPacket(s, c, t, msg, rinfo));
}

/** Announces a local candidate and pairs it with the remote ones known so far (trickle). */
function addLocal(h: GatherHost, s: Stream, c: Component, cand: Candidate): void {
  c.localCandidates.push(cand);
  h.emitCandidate(cand);
  for (const r of c.remoteCandidates) h.formPair(s, c, cand, r);
}

function serverError(h: GatherHost, s: Stream, c: Component, err: TurnError): void {
  debug('stream %d component %d: %s', s.id, c.id, err.message);
  h.stats.serverErrors++;
  h.emitServerError(s, c, err);
}

/** A server-reflexive candidate for one host socket from one STUN server (§5.1.1.2). */
async function gatherSrflx(h: GatherHost, s: Stream, c: Component, t: UdpTransport, url: string): Promise<void> {
  const server = parseIceServerUrl(url);
  const family = isIPv6(t.address) ? 6 : 4;
  let address: string;
  try {
    address = isIP(server.host) ? server.host : (await lookup(server.host, { family })).address;
  } catch (err) {
    serverError(h, s, c, new TurnError(url, undefined, `cannot resolve ${server.host}: ${(err as Error).message}`));
    return;
  }
  if ((isIPv6(address) ? 6 : 4) !== family) return; // a server of the other family serves the other sockets
  const router = {
    register: (key: string, handler: (m: DecodedStun, r: RemoteInfo) => void) => h.clientTx.set(key, handler),
    unregister: (key: string) => h.clientTx.delete(key),
  };
  const outcome = await stunBinding(t, { address, port: server.port }, h.scheduler, router, h.options.serverTimeout);
  if (!h.alive(s)) return;
  if (!outcome.ok) {
    serverError(h, s, c, new TurnError(url, outcome.code, outcome.reason));
    return;
  }
  const { mapped } = outcome;
  // Not behind a NAT (the mapping is the host address), or a second server
  // reporting the same mapping: nothing new (§5.1.3 removes such duplicates).
  if (c.localCandidates.some((x) => x.address === mapped.address && x.port === mapped.port)) return;
  const host = c.localCandidates.find((x) => x.type === 'host' && x.address === t.address && x.port === t.port);
  const localPref = host ? (host.priority >>> 8) & 0xffff : 0;
  addLocal(h, s, c, {
    type: 'srflx',
    transport: 'udp',
    foundation: h.foundation(foundationKey('srflx', t.address, 'udp', address)),
    component: c.id,
    priority: computePriority('srflx', localPref, c.id),
    address: mapped.address,
    port: mapped.port,
    base: { address: t.address, port: t.port },
    relatedAddress: t.address,
    relatedPort: t.port,
    streamId: s.id,
  });
}

/** A relayed candidate from one TURN server (§5.1.1.2, RFC 8656). */
async function gatherRelay(h: GatherHost, s: Stream, c: Component, server: TurnServer, addrs: string[]): Promise<void> {
  const parsed = parseIceServerUrl(server.url);
  let serverAddress = parsed.host;
  try {
    if (!isIP(serverAddress)) serverAddress = (await lookup(serverAddress)).address;
  } catch (err) {
    serverError(h, s, c, new TurnError(server.url, undefined, `cannot resolve ${parsed.host}: ${(err as Error).message}`));
    return;
  }
  const localAddress = addrs.find((a) => isIPv6(a) === isIPv6(serverAddress));
  const client = new TurnClient({
    url: server.url,
    username: server.username,
    password: server.credential,
    ...(localAddress ? { localAddress } : {}),
    scheduler: h.scheduler,
    timeoutMs: h.options.serverTimeout,
    ...(server.ca !== undefined ? { ca: server.ca } : {}),
    ...(server.rejectUnauthorized !== undefined ? { rejectUnauthorized: server.rejectUnauthorized } : {}),
  });
  c.turnClients.add(client);
  try {
    await client.allocate();
  } catch (err) {
    c.turnClients.delete(client);
    await client.close();
    if (!h.closed) serverError(h, s, c, err instanceof TurnError ? err : new TurnError(server.url, undefined, (err as Error).message));
    return;
  }
  c.turnClients.delete(client);
  if (!h.alive(s)) {
    await client.close();
    return;
  }
  client.on('failed', (err) => serverError(h, s, c, err));
  const rt = new RelayTransport(client);
  attachTransport(h, s, c, rt);
  const mapped = client.allocation!.mapped;
  addLocal(h, s, c, {
    type: 'relay',
    transport: 'udp',
    foundation: h.foundation(foundationKey('relay', rt.address, 'udp', serverAddress)),
    component: c.id,
    // Relayed candidates keep a local preference of their own, below every host address.
    priority: computePriority('relay', 65535 - c.transports.filter((x) => x.kind === 'relay').length, c.id),
    address: rt.address,
    port: rt.port,
    base: { address: rt.address, port: rt.port },
    ...(mapped ? { relatedAddress: mapped.address, relatedPort: mapped.port } : {}),
    streamId: s.id,
  });
}
