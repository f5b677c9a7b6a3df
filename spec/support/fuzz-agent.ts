/**
 * The agent's inbound path as a whole, fuzzed: two agents in a live, ready
 * session on the in-memory network (lib/sim), and a third host that sends
 * each of them hostile datagrams. After every batch the session must still
 * be ready and echo data, no exception may have escaped the core, and
 * `getStats()` must account for every datagram that arrived.
 *
 * The accounting, from IceCore.receive and #inbound (lib/core/core.ts) and
 * onRequest/onResponse (lib/core/check.ts), for a host transport without
 * STUN/TURN servers (this session has none): each datagram adds one to
 * `packetsReceived` and then ends in exactly one of PRIMARY below — a
 * framed STUN message with a valid FINGERPRINT under `dropped.malformed`
 * (attributes overrun), `dropped.unsupported` (not Binding) or one of the
 * three STUN counters (requests, indications, responses: their own drops,
 * such as `dropped.badIntegrity`, come on top); anything else is data,
 * delivered (`dataPacketsReceived`) or dropped (`dropped.badFingerprint`,
 * `dropped.malformed`, `dropped.unauthorizedSource`, `dropped.noReceiver`).
 * With STUN/TURN servers, the servers' own datagrams are
 * `serverPacketsReceived`, and those for a transport that is gone are
 * `dropped.closed`; what a TURN server relays counts where its content ends.
 * Every request is answered: `responsesSent` or `errorResponsesSent` grows
 * by one; a success authorizes the source for data while the component's
 * set of sources has room.
 */
import fc from 'fast-check';
import { IceCore } from '../../lib/core/core.js';
import { decodeStun, isStunFrame, verifyFingerprint } from '../../lib/stun/message.js';
import type { Agent, AgentStats } from '../../lib/index.js';
import type { DatagramSocket } from '../../lib/transport/network.js';
import type { SimPacketEvent } from '../../lib/sim/index.js';
import { closePair, exchange, runUntilState, simPair, type SimPair } from './sim-pair.js';
import {
  attrArb, buildStun, hostileStunArb, mutate, mutationsArb, tidArb, u16, xorAddress, ipv4Bytes,
  type Attr, type Mutation,
} from './fuzz-stun.js';
import type { FuzzTarget } from './fuzz-targets.js';

/** Where each datagram on a host transport ends up: exactly one of these grows. */
export const PRIMARY = [
  'dropped.malformed', 'dropped.unsupported', 'stunRequestsReceived', 'stunIndicationsReceived', 'stunResponsesReceived',
  'dropped.badFingerprint', 'dropped.unauthorizedSource', 'dataPacketsReceived', 'dropped.noReceiver',
  'serverPacketsReceived', 'dropped.closed',
] as const;
type Bucket = (typeof PRIMARY)[number];

const COUNTERS = ['packetsReceived', 'responsesSent', 'errorResponsesSent', ...PRIMARY] as const;
type Counters = Record<(typeof COUNTERS)[number], number>;

function read(s: AgentStats, path: string): number {
  const [a, b] = path.split('.') as [keyof AgentStats, string | undefined];
  return b === undefined ? (s[a] as number) : (s[a] as unknown as Record<string, number>)[b]!;
}

export function counters(agent: Agent): Counters {
  const s = agent.getStats();
  return Object.fromEntries(COUNTERS.map((k) => [k, read(s, k)])) as Counters;
}

/**
 * Exceptions thrown out of IceCore.receive. The shell catches them (a bad
 * datagram must not take the process down), so they are watched here, at
 * the core's boundary.
 */
export const escaped: unknown[] = [];
let watching = false;
export function watchCoreExceptions(): void {
  if (watching) return;
  watching = true;
  const receive = IceCore.prototype.receive;
  IceCore.prototype.receive = function (this: IceCore, ...args: Parameters<IceCore['receive']>) {
    try {
      return receive.apply(this, args);
    } catch (e) {
      escaped.push(e);
      throw e;
    }
  };
}

/** The bucket a datagram from a source must land in, by the rules above (`authorized`: the source passed a check). */
export function expectedBucket(data: Buffer, authorized: boolean): Bucket {
  const framed = data.length >= 20 && data[0]! < 4 && isStunFrame(data);
  const fingerprint = framed ? verifyFingerprint(data) : 'missing';
  if (fingerprint === 'ok') {
    const m = decodeStun(data);
    if (m === undefined) return 'dropped.malformed';
    if (m.method !== 0x001) return 'dropped.unsupported';
    return m.cls === 'request' ? 'stunRequestsReceived' : m.cls === 'indication' ? 'stunIndicationsReceived' : 'stunResponsesReceived';
  }
  if (authorized) return 'dataPacketsReceived';
  if (fingerprint === 'bad') return 'dropped.badFingerprint';
  if (data.length > 0 && data[0]! < 4) return 'dropped.malformed';
  return 'dropped.unauthorizedSource';
}

/** A hostile datagram, described so that fast-check can shrink it; made into bytes against the live session. */
export type Hostile =
  /** Garbage, a random STUN message, or one mutated (truncated, lying lengths, flipped bits ...). */
  | { kind: 'bytes'; data: Buffer }
  /** A genuine check, response or indication of the session, replayed from the attacker's address, maybe mutated. */
  | { kind: 'captured'; index: number; mutations: Mutation[] | undefined }
  /** A check or indication with the target's real credentials (USERNAME, MESSAGE-INTEGRITY) and random attributes. */
  | { kind: 'signed'; indication: boolean; priority: number; useCandidate: boolean; attrs: Attr[]; mutations: Mutation[] | undefined }
  /** A forged answer to one of the target's own requests (an attacker who sees them but has no password). */
  | { kind: 'answer'; index: number; error: number | undefined; attrs: Attr[]; integrity: 'none' | 'wrong'; mutations: Mutation[] | undefined };

/** What bytesOf writes into a signed check itself: the role, MESSAGE-INTEGRITY(-SHA256), FINGERPRINT. */
const WRITTEN_BY_US = new Set([0x8029, 0x802a, 0x0008, 0x001c, 0x8028]);

export const hostileArb: fc.Arbitrary<Hostile> = fc.oneof(
  hostileStunArb.map((data) => ({ kind: 'bytes' as const, data })),
  fc.record({ kind: fc.constant('captured' as const), index: fc.nat(), mutations: fc.option(mutationsArb, { nil: undefined }) }),
  fc.record({
    kind: fc.constant('signed' as const), indication: fc.boolean(), priority: fc.integer({ min: 0, max: 0xffffffff }),
    useCandidate: fc.boolean(),
    // Role attributes come from the session (the peer's role): a role conflict is the peer's business, not an attacker's.
    attrs: fc.array(attrArb.filter((a) => !WRITTEN_BY_US.has(a.type)), { maxLength: 4 }),
    mutations: fc.option(mutationsArb, { nil: undefined }),
  }),
  fc.record({
    kind: fc.constant('answer' as const), index: fc.nat(),
    error: fc.option(fc.oneof(fc.constantFrom(400, 401, 420, 487, 500), fc.integer({ min: 300, max: 699 })), { nil: undefined }),
    attrs: fc.array(attrArb, { maxLength: 3 }), integrity: fc.constantFrom('none' as const, 'wrong' as const),
    mutations: fc.option(mutationsArb, { nil: undefined }),
  }),
);

/**
 * A batch of datagrams, each to A or B, each from the batch's fresh port
 * (`via` 0: unauthorized until it passes a check) or one of three ports kept
 * for the whole session (which soon pass one: their garbage goes down the
 * data path).
 */
export const batchArb = fc.array(fc.record({
  to: fc.constantFrom('a' as const, 'b' as const), via: fc.integer({ min: 0, max: 3 }), hostile: hostileArb, tid: tidArb, port: u16,
}), { minLength: 1, maxLength: 8 });

const ATTACKER = '198.51.100.66';
/** Genuine STUN messages kept for replay and for forging answers: the newest ones. */
const POOL = 128;

interface Side {
  agent: Agent;
  peer: Agent;
  address: { address: string; port: number };
  /** The attacker's ports that passed a check on this side: their data is delivered. */
  authorized: Set<number>;
  last: Counters;
  /** Requests this side sent (for forged answers). */
  requests: Buffer[];
}

export interface InboundSession {
  property: fc.IRawProperty<any>;
  /** Datagrams the attacker sent so far. */
  readonly injected: number;
  /** Where the attacker's datagrams were counted, and how many were answered with success. */
  readonly buckets: Record<string, number>;
  close(): Promise<void>;
}

/** A ready session, the attacker host, and the property that fuzzes the session's inbound path. */
export async function inboundSession(seed: number): Promise<InboundSession> {
  watchCoreExceptions();
  const p: SimPair = await simPair({ seed, servers: false });
  const pool: Buffer[] = [];
  const requests: Record<'a' | 'b', Buffer[]> = { a: [], b: [] };
  const keep = (list: Buffer[], b: Buffer) => {
    list.push(b);
    if (list.length > POOL) list.shift();
  };
  exchange(p);
  const sides = {} as Record<'a' | 'b', Side>;
  p.net.observe((e) => {
    // The session's own STUN, as it crosses the network: what an on-path attacker sees.
    const ends = [p.hostA.address, p.hostB.address];
    if (e.kind !== 'send' || !ends.includes(e.from.address) || !ends.includes(e.to.address) || e.data.length < 20 || e.data[0]! >= 4) return;
    keep(pool, Buffer.from(e.data));
    const from = e.from.address === p.hostA.address ? 'a' : 'b';
    if (decodeStun(e.data)?.cls === 'request') keep(requests[from], Buffer.from(e.data));
  });
  await runUntilState(p, 'ready', [[p.a, 1, 1], [p.b, 1, 1]]);
  for (const [k, agent, peer] of [['a', p.a, p.b], ['b', p.b, p.a]] as const) {
    const local = agent.getSelectedPair(1, 1)!.local;
    sides[k] = { agent, peer, address: { address: local.address, port: local.port }, authorized: new Set(), last: counters(agent), requests: requests[k] };
  }
  const attacker = p.net.addHost(ATTACKER);
  const kept: DatagramSocket[] = [];
  for (let i = 0; i < 3; i++) kept.push(await attacker.network.bindDatagram(ATTACKER, 0));

  // Echo: A sends back what B sends it; B notes what comes back.
  const bAddr = sides.b.address;
  const aAddr = sides.a.address;
  const echoed = new Set<number>();
  p.a.attachRecv(1, 1, (data, from) => {
    if (from.address === bAddr.address && from.port === bAddr.port) p.a.send(1, 1, data);
  });
  p.b.attachRecv(1, 1, (data, from) => {
    if (from.address === aAddr.address && from.port === aAddr.port && data.length === 5) echoed.add(data.readUInt32BE(1));
  });

  const violations: string[] = [];
  const buckets: Record<string, number> = Object.fromEntries([...PRIMARY, 'responsesSent'].map((k) => [k, 0]));
  let injected = 0;
  let delivered = 0;
  p.net.observe((e: SimPacketEvent) => {
    if (e.kind !== 'deliver') return;
    const side = [sides.a, sides.b].find((s) => s.address.address === e.to.address && s.address.port === e.to.port);
    if (!side) return;
    const now = counters(side.agent);
    const d = Object.fromEntries(COUNTERS.map((k) => [k, now[k] - side.last[k]])) as Counters;
    side.last = now;
    const fromAttacker = e.from.address === ATTACKER;
    if (fromAttacker) delivered++;
    const hex = e.data.toString('hex');
    if (d.packetsReceived !== 1) violations.push(`packetsReceived grew by ${d.packetsReceived} for one datagram ${hex}`);
    const moved = PRIMARY.filter((k) => d[k] !== 0);
    const sum = PRIMARY.reduce((n, k) => n + d[k], 0);
    if (sum !== 1) violations.push(`datagram ${hex} from ${e.from.address}:${e.from.port} accounted ${sum} times (${moved.join(', ') || 'nowhere'})`);
    if (!fromAttacker) return;
    const want = expectedBucket(e.data, side.authorized.has(e.from.port));
    for (const k of moved) buckets[k]!++;
    if (d.responsesSent > 0) buckets.responsesSent!++;
    if (d[want] !== 1) violations.push(`datagram ${hex} counted under ${moved.join(', ') || 'nothing'}, expected ${want}`);
    if (want === 'stunRequestsReceived') {
      if (d.responsesSent + d.errorResponsesSent !== 1) violations.push(`request ${hex} answered ${d.responsesSent + d.errorResponsesSent} times`);
      // An authenticated request authorizes its source for data (lib/core/check.ts onRequest), while the
      // component's set of sources, the peer's address included, is below 2 × maxRemoteCandidates (context.ts authorize).
      const room = side.authorized.size + 1 < 2 * side.agent.options.maxRemoteCandidates;
      if (d.responsesSent === 1 && room) side.authorized.add(e.from.port);
    }
  });

  function bytesOf(h: Hostile, side: Side, tid: Uint8Array, port: number): Buffer {
    switch (h.kind) {
      case 'bytes':
        return h.data;
      case 'captured': {
        const b = pool[h.index % pool.length]!;
        return h.mutations ? mutate(b, h.mutations) : b;
      }
      case 'signed': {
        const mine = side.agent.getLocalCredentials(1);
        const theirs = side.peer.getLocalCredentials(1);
        const attrs: Attr[] = [
          { type: 0x0006, value: Buffer.from(`${mine.ufrag}:${theirs.ufrag}`) },
          { type: 0x0024, value: Buffer.from([h.priority >>> 24, (h.priority >>> 16) & 255, (h.priority >>> 8) & 255, h.priority & 255]) },
          // The peer's role: ICE-CONTROLLED towards the controlling agent, ICE-CONTROLLING towards the controlled one.
          { type: side.agent.controllingMode ? 0x8029 : 0x802a, value: Buffer.from(tid.subarray(0, 8)) },
          ...(h.useCandidate ? [{ type: 0x0025, value: new Uint8Array(0) }] : []),
          ...h.attrs,
        ];
        const b = buildStun({ type: h.indication ? 0x0011 : 0x0001, tid, attrs, integrity: { key: Buffer.from(mine.pwd), valid: true }, fingerprint: 'good' });
        return h.mutations ? mutate(b, h.mutations) : b;
      }
      case 'answer': {
        const req = side.requests.length > 0 ? decodeStun(side.requests[h.index % side.requests.length]!)! : undefined;
        const attrs: Attr[] = [
          ...(h.error !== undefined ? [{ type: 0x0009, value: Buffer.from([0, 0, Math.floor(h.error / 100), h.error % 100]) }] : []),
          { type: 0x0020, value: xorAddress(ipv4Bytes(ATTACKER), port, req?.transactionId ?? tid) },
          ...h.attrs,
        ];
        const b = buildStun({
          type: h.error !== undefined ? 0x0111 : 0x0101, tid: req?.transactionId ?? tid, attrs,
          integrity: h.integrity === 'wrong' ? { key: Buffer.from('not the password'), valid: true } : undefined, fingerprint: 'good',
        });
        return h.mutations ? mutate(b, h.mutations) : b;
      }
    }
  }

  let probe = 0;
  const property = fc.asyncProperty(batchArb, async (batch) => {
    violations.length = 0;
    escaped.length = 0;
    // A new port per batch: one that passed a check earlier would have its garbage delivered as data, not dropped.
    const fresh: DatagramSocket = await attacker.network.bindDatagram(ATTACKER, 0);
    for (const { to, via, hostile, tid, port } of batch) {
      const side = sides[to];
      (via === 0 ? fresh : kept[via - 1]!).send(bytesOf(hostile, side, tid, port), side.address);
      injected++;
    }
    await p.net.run({ until: () => delivered === injected, timeout: 1000 });
    await fresh.close();
    const id = ++probe;
    const data = Buffer.alloc(5);
    data[0] = 0x80;
    data.writeUInt32BE(id, 1);
    if (!p.b.send(1, 1, data)) throw new Error('B refused to send');
    await p.net.run({ until: () => echoed.has(id), timeout: 1000 });
    echoed.delete(id);
    for (const s of [sides.a, sides.b]) {
      const state = s.agent.getComponentState(1, 1);
      if (state !== 'ready') throw new Error(`${s === sides.a ? 'A' : 'B'} is ${state}`);
    }
    if (escaped.length > 0) throw escaped[0];
    if (violations.length > 0) throw new Error(violations.join('\n'));
  });

  return {
    property,
    get injected() {
      return injected;
    },
    buckets,
    close: async () => {
      await Promise.all(kept.map((k) => k.close()));
      await closePair(p);
    },
  };
}

export const agentInbound: FuzzTarget = {
  name: 'agent.inbound',
  claim: 'hostile datagrams into a live, ready session (both agents): no exception escapes the core, the session stays ready ' +
    'and echoes data, packetsReceived grows by one per datagram and each lands in exactly the one counter the rules give',
  weight: 1,
  create: async (seed) => {
    const session = await inboundSession(seed);
    return { property: session.property, close: session.close, detail: () => `${session.injected} datagrams: ${Object.entries(session.buckets).map(([k, n]) => `${k} ${n}`).join(', ')}` };
  },
};
